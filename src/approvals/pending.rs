//! Signing requests waiting in a directory, as an approver reviews them at the console:
//! each request's fields, what the token's policy asks of each key, the approvals already
//! beside it (`REQ.json.sig` as `ssh-keygen -Y sign` writes it, or `REQ.json.NAME.sig`)
//! and whether each counts, and the approver's own keys in the ssh-agent. Reading is
//! [`scan`]'s; the decision to sign stays [`super::decision`]'s.

use std::path::{Path, PathBuf};

use ssh_key::PublicKey;

use super::decision::{self, Presented};
use super::signers;
use super::store::StoredPolicy;
use super::{read_signature, time, Request, APPROVAL_NAMESPACE, MAX_FILE};

/// Most request files listed from one directory.
pub const MAX_REQUESTS: usize = 200;

/// One request file as an approver sees it.
#[derive(Clone, Debug)]
pub struct Pending {
    /// The request file.
    pub path: PathBuf,
    /// The request, or why the file is not one.
    pub request: Result<Request, String>,
    /// SHA-256 of the file (what approvals sign).
    pub sha256: [u8; 32],
    /// The request is past its not-after.
    pub expired: bool,
    /// Why the request cannot be used on this token (another token, another policy).
    pub unusable: Option<String>,
    /// Per key: its label, what the policy asks, and the approvals that count so far.
    pub keys: Vec<KeyStatus>,
    /// Each approval file beside the request: who made it, or why it does not count.
    pub approvals: Vec<(PathBuf, Result<String, String>)>,
}

/// One key of a request, as the review shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStatus {
    /// The key's label on the token.
    pub label: String,
    /// Signatures the request asks for with this key.
    pub max_uses: u64,
    /// The policy's rule in words, or that the key has none.
    pub rule: String,
    /// Distinct approvers the policy needs for this key (0: none).
    pub quorum: u32,
    /// Distinct approvers whose approvals count for this key.
    pub approved_by: Vec<String>,
}

impl Pending {
    /// Every key has its quorum of approvals.
    pub fn approved(&self) -> bool {
        !self.keys.is_empty()
            && self
                .keys
                .iter()
                .all(|k| k.approved_by.len() as u64 >= u64::from(k.quorum))
    }

    /// The approval files that count, for a signing session.
    pub fn valid_approvals(&self) -> Vec<PathBuf> {
        self.approvals
            .iter()
            .filter(|(_, v)| v.is_ok())
            .map(|(p, _)| p.clone())
            .collect()
    }
}

/// The approval files beside request `req`: `REQ.sig` and `REQ.*.sig`, sorted.
pub fn approval_files(req: &Path) -> Vec<PathBuf> {
    let Some(name) = req.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let dir = match req.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let ours = n == format!("{name}.sig")
                || (n.starts_with(&format!("{name}.")) && n.ends_with(".sig"));
            (ours && e.path().is_file()).then(|| dir.join(n))
        })
        .collect();
    out.sort();
    out
}

/// Where an approval by `principal` is written: `REQ.PRINCIPAL.sig` (characters a file
/// name should not hold become `_`).
pub fn approval_path(req: &Path, principal: &str) -> PathBuf {
    let safe: String = principal
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut p = req.as_os_str().to_owned();
    p.push(format!(".{}.sig", safe.trim_start_matches('.')));
    PathBuf::from(p)
}

/// The token's side of a review: its serial and policy.
pub struct TokenSide<'a> {
    /// The token's serial number: a request for another token is unusable here.
    pub serial: &'a str,
    /// The token's stored policy, if it has one.
    pub policy: Option<&'a StoredPolicy>,
}

/// The request files (`*.json`) in `dir`, sorted by name, each reviewed against the
/// token at `now`.
pub fn scan(dir: &Path, token: &TokenSide<'_>, now: u64) -> Result<Vec<Pending>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.truncate(MAX_REQUESTS);
    Ok(files.iter().map(|p| review(p, token, now)).collect())
}

/// One request file reviewed against the token at `now`.
pub fn review(path: &Path, token: &TokenSide<'_>, now: u64) -> Pending {
    let shown = path.display().to_string();
    let bytes = match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_FILE => Err(format!("larger than {MAX_FILE} bytes")),
        Ok(_) => std::fs::read(path).map_err(|e| format!("cannot read: {e}")),
        Err(e) => Err(format!("cannot read: {e}")),
    };
    let mut p = Pending {
        path: path.to_path_buf(),
        request: Err(String::new()),
        sha256: [0; 32],
        expired: false,
        unusable: None,
        keys: Vec::new(),
        approvals: Vec::new(),
    };
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            p.request = Err(e);
            return p;
        }
    };
    p.sha256 = crate::output::sha256(&bytes);
    let req = match Request::parse(&shown, &bytes) {
        Ok(r) => r,
        Err(e) => {
            p.request = Err(e.message);
            return p;
        }
    };
    p.expired = now > req.not_after_secs();
    p.unusable = match token.policy {
        _ if req.token_serial != token.serial => Some(format!(
            "for the token with serial {}, not this one ({})",
            req.token_serial, token.serial
        )),
        None => Some("this token holds no approval policy".into()),
        Some(s) if req.policy_sha256 != hex::encode(s.sha256) => Some(
            "made under another policy than the token's (changed since): it cannot be used".into(),
        ),
        Some(_) => None,
    };
    let files = approval_files(path);
    let mut sigs = Vec::new();
    for f in &files {
        match read_signature(f) {
            Ok(s) => sigs.push((f.display().to_string(), s)),
            Err(e) => p.approvals.push((f.clone(), Err(e.to_string()))),
        }
    }
    if let Some(s) = token.policy {
        let presented = Presented {
            file: shown,
            request: req.clone(),
            bytes: bytes.clone(),
            approvals: sigs.clone(),
        };
        for k in &req.keys {
            let (rule, quorum, approved_by) = match s.policy.keys.get(&k.label) {
                Some(rule) => {
                    let (by, _) = decision::count(&s.policy, rule, &presented, now);
                    (rule.describe(), rule.quorum, by.into_iter().collect())
                }
                None => ("no rule: signs without a request".to_string(), 0, vec![]),
            };
            p.keys.push(KeyStatus {
                label: k.label.clone(),
                max_uses: k.max_uses,
                rule,
                quorum,
                approved_by,
            });
        }
        // Each approver once, whichever keys name them.
        let approvers: Vec<String> = s
            .policy
            .keys
            .values()
            .flat_map(|r| r.approvers.iter().cloned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for (name, sig) in &sigs {
            let v = signers::verify(
                &s.policy.signers,
                &approvers,
                APPROVAL_NAMESPACE,
                &bytes,
                sig,
                now,
            )
            .map(|who| who.join(", "))
            .map_err(|r| r.to_string());
            p.approvals.push((PathBuf::from(name), v));
        }
        p.approvals.sort_by(|a, b| a.0.cmp(&b.0));
    } else {
        for (name, _) in &sigs {
            p.approvals.push((
                PathBuf::from(name),
                Err("no policy on this token to check it against".into()),
            ));
        }
    }
    p.request = Ok(req);
    p
}

/// An approver's key in the ssh-agent, and whom the policy lets it approve as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentKey {
    /// `SHA256:…`
    pub fingerprint: String,
    /// The key's comment in the agent (often `user@host`).
    pub comment: String,
    /// The OpenSSH public key line (to pick it in the agent again).
    pub openssh: String,
    /// The policy's approvers this key may approve as (none: not an approver's key).
    pub approver: Vec<String>,
}

/// The agent's keys, each with the approvers of `policy` it may approve as now.
pub fn agent_keys(keys: &[PublicKey], policy: Option<&StoredPolicy>, now: u64) -> Vec<AgentKey> {
    keys.iter()
        .map(|k| {
            let approver = policy
                .map(|s| {
                    let mut names: Vec<String> = s
                        .policy
                        .keys
                        .values()
                        .flat_map(|r| r.approvers.iter())
                        .filter(|a| {
                            s.policy
                                .signers
                                .allows(a, k.key_data(), APPROVAL_NAMESPACE, now)
                        })
                        .cloned()
                        .collect();
                    names.sort();
                    names.dedup();
                    names
                })
                .unwrap_or_default();
            AgentKey {
                fingerprint: signers::fingerprint(k.key_data()),
                comment: k.comment().to_string(),
                openssh: k.to_openssh().unwrap_or_default(),
                approver,
            }
        })
        .collect()
}

/// How long until `secs` from `now`, in words ("in 9m", "expired 2h ago").
pub fn until(secs: u64, now: u64) -> String {
    let words = |d: u64| match d {
        d if d < 120 => format!("{d}s"),
        d if d < 7200 => format!("{}m", d / 60),
        d if d < 172_800 => format!("{}h", d / 3600),
        d => format!("{}d", d / 86_400),
    };
    if secs >= now {
        format!("in {}", words(secs - now))
    } else {
        format!("expired {} ago", words(now - secs))
    }
}

/// The time now, for a review (`super::time::now`).
pub fn now() -> u64 {
    time::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_files_sit_beside_their_request() {
        let d = tempfile::tempdir().unwrap();
        let req = d.path().join("r1.json");
        for f in [
            "r1.json",
            "r1.json.sig",
            "r1.json.alice.sig",
            "r1.json.bob.sig",
            "r10.json.sig",
            "r1.json.txt",
            "other.sig",
        ] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        let names: Vec<String> = approval_files(&req)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["r1.json.alice.sig", "r1.json.bob.sig", "r1.json.sig"]
        );
        assert_eq!(
            approval_path(&req, "../carol smith"),
            d.path().join("r1.json._carol_smith.sig")
        );
    }

    #[test]
    fn time_left_in_words() {
        assert_eq!(until(100, 40), "in 60s");
        assert_eq!(until(1000, 100), "in 15m");
        assert_eq!(until(100, 7300), "expired 2h ago");
        assert_eq!(until(1_000_000, 0), "in 11d");
    }
}
