//! The approval policy: which keys need approval, from whom, how many, how often.
//!
//! Written by people as TOML, read strictly (a wrong type, a missing or an unknown field
//! is an error naming its path, `keys.fw-release.quorum`):
//!
//! ```toml
//! allowed-signers = "approvers.allowed_signers"   # OpenSSH format, beside this file
//!
//! [keys.fw-release]
//! approvers = ["alice", "bob", "carol"]   # principals in allowed-signers
//! quorum = 2                              # distinct approvers per request; 0 = none needed
//! max-uses = 10                           # optional: most signatures one request may make
//! not-before = 2026-01-01T00:00:00Z       # optional: the key's validity window
//! not-after = 2027-01-01T00:00:00Z
//! ```
//!
//! Stored on the token as one canonical JSON document ([`Policy::to_stored`]) that carries
//! the approvers' keys with it: the lines of the allowed signers file that name an
//! approver, rewritten for that approver alone. The policy's identity is the SHA-256 of
//! those bytes; a request names it, so a request made under another policy is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::signers::{AllowedSigners, Entry};
use super::{time, APPROVAL_NAMESPACE};

/// A policy error: `FILE: PATH: message` (PATH may be empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {place}{message}")]
pub struct Error {
    /// The policy file, as given.
    pub file: String,
    /// `keys.fw.quorum: ` or empty.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

/// What one key needs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KeyRule {
    /// Principals of the allowed signers file, sorted, distinct.
    pub approvers: Vec<String>,
    /// Distinct approvers needed per request (0: none).
    pub quorum: u32,
    /// Most signatures one request may make with this key; none: the request's own count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u64>,
    /// RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// RFC 3339 UTC; after it the key signs under no request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

impl KeyRule {
    /// The validity window in seconds since 1970. The strings were checked on parse.
    pub fn window(&self) -> (Option<u64>, Option<u64>) {
        let t = |s: &Option<String>| s.as_deref().and_then(|s| time::parse(s).ok());
        (t(&self.not_before), t(&self.not_after))
    }

    /// "quorum 2 of alice, bob, carol; at most 10 uses per request" for people.
    pub fn describe(&self) -> String {
        let mut s = if self.quorum == 0 {
            "no approval needed".to_string()
        } else {
            format!("quorum {} of {}", self.quorum, self.approvers.join(", "))
        };
        if let Some(m) = self.max_uses {
            s.push_str(&format!("; at most {m} uses per request"));
        }
        if let Some(t) = &self.not_before {
            s.push_str(&format!("; not before {t}"));
        }
        if let Some(t) = &self.not_after {
            s.push_str(&format!("; not after {t}"));
        }
        s
    }
}

/// A checked policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Key label → rule. Keys not named here sign as if there were no policy.
    pub keys: BTreeMap<String, KeyRule>,
    /// The approvers' keys (only lines naming an approver, one principal per line).
    pub signers: AllowedSigners,
    /// `signers` as stored: an allowed signers file `ssh-keygen -Y verify -f` reads.
    pub signers_text: String,
}

/// The stored form (field order is the canonical order).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Stored {
    format: String,
    allowed_signers: String,
    keys: BTreeMap<String, KeyRule>,
}

const FORMAT: &str = "officiant-policy/1";

/// Most approvers one key may name, and the longest principal and key label.
const MAX_APPROVERS: usize = 32;
const MAX_NAME: usize = 64;
const MAX_LABEL: usize = 128;

impl Policy {
    /// Read a policy file and the allowed signers file it names.
    pub fn load(path: &Path) -> Result<Policy, Error> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error {
            file: file.clone(),
            place: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        let base = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        Self::parse(&file, &base, &text)
    }

    /// Parse policy TOML; `base` resolves the allowed signers path.
    pub fn parse(file: &str, base: &Path, text: &str) -> Result<Policy, Error> {
        let err = |place: &str, message: String| Error {
            file: file.to_string(),
            place: if place.is_empty() {
                String::new()
            } else {
                format!("{place}: ")
            },
            message,
        };
        let mut top: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            err("", format!("malformed TOML: {}", e.message().trim()))
        })?;
        let signers_path = match top.remove("allowed-signers") {
            Some(toml::Value::String(s)) if !s.is_empty() => s,
            Some(v) => {
                return Err(err(
                    "allowed-signers",
                    format!("expected a file name, found {}", v.type_str()),
                ))
            }
            None => return Err(err("", "missing field allowed-signers".into())),
        };
        let keys_table = match top.remove("keys") {
            Some(toml::Value::Table(t)) => t,
            Some(v) => {
                return Err(err(
                    "keys",
                    format!("expected [keys.LABEL] tables, found {}", v.type_str()),
                ))
            }
            None => return Err(err("", "missing [keys.LABEL] tables".into())),
        };
        if let Some(k) = top.keys().next() {
            return Err(err(k, "unknown field".into()));
        }
        if keys_table.is_empty() {
            return Err(err("keys", "names no key".into()));
        }
        let mut keys = BTreeMap::new();
        for (label, v) in keys_table {
            let place = format!("keys.{}", quote_key(&label));
            check_label(&label).map_err(|m| err(&place, m))?;
            let toml::Value::Table(t) = v else {
                return Err(err(
                    &place,
                    format!("expected a table, found {}", v.type_str()),
                ));
            };
            let rule = parse_rule(t, &place).map_err(|(p, m)| err(&p, m))?;
            keys.insert(label, rule);
        }

        let signers_file = base.join(&signers_path);
        let shown = signers_file.display().to_string();
        let signers_src = std::fs::read_to_string(&signers_file)
            .map_err(|e| err("allowed-signers", format!("cannot read {shown}: {e}")))?;
        let all = AllowedSigners::parse(&shown, &signers_src)
            .map_err(|e| err("allowed-signers", e.to_string()))?;
        Self::build(keys, &all).map_err(|(p, m)| err(&p, m))
    }

    /// Check the rules against the signers; keep only the approvers' lines.
    fn build(
        keys: BTreeMap<String, KeyRule>,
        all: &AllowedSigners,
    ) -> Result<Policy, (String, String)> {
        // Every approver must have a key for approvals; no key may belong to two
        // approvers (its holder would count twice).
        let mut owner: Vec<(&Entry, String)> = Vec::new();
        let approvers: BTreeSet<&str> = keys
            .values()
            .flat_map(|r| r.approvers.iter().map(String::as_str))
            .collect();
        for (label, rule) in &keys {
            for (i, a) in rule.approvers.iter().enumerate() {
                if !all
                    .lines_for(a)
                    .any(|e| e.allows_namespace(APPROVAL_NAMESPACE))
                {
                    return Err((
                        format!("keys.{}.approvers[{i}]", quote_key(label)),
                        format!(
                            "{a:?} has no key in the allowed signers file for namespace {APPROVAL_NAMESPACE}"
                        ),
                    ));
                }
            }
        }
        let mut lines = Vec::new();
        for a in &approvers {
            for e in all.lines_for(a) {
                if let Some((_, other)) = owner.iter().find(|(o, _)| o.key == e.key) {
                    if other != a {
                        return Err((
                            "allowed-signers".into(),
                            format!(
                                "line {}: key {} belongs to both {other:?} and {a:?}; each approver needs keys of their own",
                                e.line,
                                e.fingerprint()
                            ),
                        ));
                    }
                }
                owner.push((e, a.to_string()));
                lines.push(e.render_for(a));
            }
        }
        let mut signers_text = lines.join("\n");
        if !signers_text.is_empty() {
            signers_text.push('\n');
        }
        let signers = AllowedSigners::parse("policy", &signers_text)
            .map_err(|e| ("allowed-signers".to_string(), e.to_string()))?;
        Ok(Policy {
            keys,
            signers,
            signers_text,
        })
    }

    /// The canonical bytes stored on the token: compact JSON in a fixed field order,
    /// keys sorted, then a newline.
    pub fn to_stored(&self) -> Vec<u8> {
        let s = Stored {
            format: FORMAT.into(),
            allowed_signers: self.signers_text.clone(),
            keys: self.keys.clone(),
        };
        // ok: a struct of strings, integers and maps always serializes.
        let mut v = serde_json::to_vec(&s).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// SHA-256 of [`Self::to_stored`]: the policy's identity.
    pub fn sha256(&self) -> [u8; 32] {
        crate::output::sha256(&self.to_stored())
    }

    /// Read the stored form back, checking that it is canonical and consistent.
    pub fn from_stored(what: &str, bytes: &[u8]) -> Result<Policy, Error> {
        let err = |message: String| Error {
            file: what.to_string(),
            place: String::new(),
            message,
        };
        let s: Stored = serde_json::from_slice(bytes)
            .map_err(|e| err(format!("not an Officiant policy: {e}")))?;
        if s.format != FORMAT {
            return Err(err(format!(
                "policy format {:?} (this officiant reads {FORMAT})",
                s.format
            )));
        }
        let signers =
            AllowedSigners::parse(what, &s.allowed_signers).map_err(|e| err(e.to_string()))?;
        for (label, rule) in &s.keys {
            check_label(label).map_err(|m| err(format!("keys.{label}: {m}")))?;
            check_rule(rule).map_err(|(f, m)| err(format!("keys.{label}.{f}: {m}")))?;
        }
        let p = Self::build(s.keys, &signers).map_err(|(p, m)| err(format!("{p}: {m}")))?;
        if p.to_stored() != bytes {
            return Err(err("not in canonical form".into()));
        }
        Ok(p)
    }
}

/// A TOML key as it would be written in a path (`fw-release` or `"fw release"`).
fn quote_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() || label.len() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(format!(
            "a key label must be 1 to {MAX_LABEL} printable characters"
        ));
    }
    Ok(())
}

/// An approver's name: it is written into the stored allowed signers file as a
/// principal, so it must match itself as a pattern and need no quoting.
fn check_principal(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && p.len() <= MAX_NAME
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{p:?}: an approver is 1 to {MAX_NAME} of A-Z a-z 0-9 . _ - @ +"
        ))
    }
}

/// Checks shared by the TOML and the stored form: (field, message) on failure.
fn check_rule(r: &KeyRule) -> Result<(), (String, String)> {
    if r.approvers.len() > MAX_APPROVERS {
        return Err((
            "approvers".into(),
            format!("at most {MAX_APPROVERS} approvers"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, a) in r.approvers.iter().enumerate() {
        check_principal(a).map_err(|m| (format!("approvers[{i}]"), m))?;
        if !seen.insert(a) {
            return Err((format!("approvers[{i}]"), format!("{a:?} is listed twice")));
        }
    }
    if r.quorum as usize > r.approvers.len() {
        return Err((
            "quorum".into(),
            format!(
                "{} approvals can never be had from {} approver(s)",
                r.quorum,
                r.approvers.len()
            ),
        ));
    }
    if r.max_uses == Some(0) {
        return Err(("max-uses".into(), "must be at least 1".into()));
    }
    let (nb, na) = (
        r.not_before.as_deref().map(time::parse),
        r.not_after.as_deref().map(time::parse),
    );
    if let Some(Err(e)) = &nb {
        return Err(("not-before".into(), e.to_string()));
    }
    if let Some(Err(e)) = &na {
        return Err(("not-after".into(), e.to_string()));
    }
    if let (Some(Ok(b)), Some(Ok(a))) = (nb, na) {
        if b >= a {
            return Err(("not-after".into(), "must be later than not-before".into()));
        }
    }
    Ok(())
}

/// One `[keys.LABEL]` table; errors carry their full path.
fn parse_rule(mut t: toml::Table, place: &str) -> Result<KeyRule, (String, String)> {
    let at = |f: &str| format!("{place}.{f}");
    let approvers = match t.remove("approvers") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => {
            let mut v = Vec::with_capacity(a.len());
            for (i, x) in a.into_iter().enumerate() {
                match x {
                    toml::Value::String(s) => v.push(s),
                    x => {
                        return Err((
                            at(&format!("approvers[{i}]")),
                            format!("expected a string, found {}", x.type_str()),
                        ))
                    }
                }
            }
            v
        }
        Some(x) => {
            return Err((
                at("approvers"),
                format!("expected an array of strings, found {}", x.type_str()),
            ))
        }
    };
    let quorum = match t.remove("quorum") {
        Some(toml::Value::Integer(n)) => match u32::try_from(n) {
            Ok(q) => q,
            Err(_) => return Err((at("quorum"), format!("{n} is not a count of approvers"))),
        },
        Some(x) => {
            return Err((
                at("quorum"),
                format!("expected an integer, found {}", x.type_str()),
            ))
        }
        None => return Err((place.to_string(), "missing field quorum".into())),
    };
    let max_uses = match t.remove("max-uses") {
        None => None,
        Some(toml::Value::Integer(n)) => match u64::try_from(n) {
            Ok(m) if m >= 1 => Some(m),
            _ => return Err((at("max-uses"), "must be at least 1".into())),
        },
        Some(x) => {
            return Err((
                at("max-uses"),
                format!("expected an integer, found {}", x.type_str()),
            ))
        }
    };
    let mut when = |f: &str| -> Result<Option<String>, (String, String)> {
        let s = match t.remove(f) {
            None => return Ok(None),
            Some(toml::Value::Datetime(d)) => d.to_string(),
            Some(toml::Value::String(s)) => s,
            Some(x) => {
                return Err((
                    at(f),
                    format!("expected a date-time, found {}", x.type_str()),
                ))
            }
        };
        let secs = time::parse(&s).map_err(|e| (at(f), e.to_string()))?;
        Ok(Some(time::format(secs)))
    };
    let not_before = when("not-before")?;
    let not_after = when("not-after")?;
    if let Some(k) = t.keys().next() {
        return Err((at(k), "unknown field".into()));
    }
    let mut approvers_sorted = approvers.clone();
    approvers_sorted.sort();
    let rule = KeyRule {
        approvers,
        quorum,
        max_uses,
        not_before,
        not_after,
    };
    check_rule(&rule).map_err(|(f, m)| (at(&f), m))?;
    Ok(KeyRule {
        approvers: approvers_sorted,
        ..rule
    })
}
