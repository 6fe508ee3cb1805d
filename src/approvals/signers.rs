//! OpenSSH `allowed_signers` files and SSHSIG verification against them, as
//! `ssh-keygen -Y verify -f FILE -I PRINCIPAL -n NAMESPACE` decides (ssh-keygen(1),
//! ALLOWED SIGNERS; OpenSSH's sshsig.c).
//!
//! A line is `principals [options] keytype base64 [comment]`. `principals` is a pattern
//! list (`*`, `?`, `!negation`, comma-separated; a field may be double-quoted); options
//! are `cert-authority`, `namespaces="pattern-list"`, `valid-after="…"` and
//! `valid-before="…"`, keywords case-insensitive. Where ssh-keygen skips a line it
//! cannot read, this parser refuses the whole file and names the line: an approval
//! policy is not built on a file half understood. Also refused: `cert-authority`
//! (approvals name keys, not certificate authorities) and times without a trailing `Z`
//! (ssh-keygen reads those in the local time zone, which Officiant does not guess).
//!
//! [`verify`] is what approvals and signed sign-offs build on: which of some principals
//! an SSHSIG over given bytes, in a given namespace, comes from.

use std::fmt;

use ssh_key::public::KeyData;
use ssh_key::{PublicKey, SshSig};

/// A file that does not parse: `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct Error {
    /// The file, as given.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong on that line.
    pub message: String,
}

/// One line of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the file it came from.
    pub line: usize,
    /// The principals pattern list, unquoted.
    pub principals: String,
    /// The `namespaces=` pattern list, if any.
    pub namespaces: Option<String>,
    /// `valid-after=` / `valid-before=`, seconds since 1970 (UTC).
    pub valid_after: Option<u64>,
    /// End of validity (`valid-before=`), inclusive.
    pub valid_before: Option<u64>,
    /// The line's public key.
    pub key: KeyData,
}

impl Entry {
    /// Whether this line lets `principal` sign with `key` in `namespace` at `time`.
    pub fn allows(&self, principal: &str, key: &KeyData, namespace: &str, time: u64) -> bool {
        self.names(principal)
            && &self.key == key
            && self.allows_namespace(namespace)
            && self.valid_at(time)
    }

    /// The principal matches the line's pattern list (and no negation in it).
    pub fn names(&self, principal: &str) -> bool {
        match_pattern_list(principal, &self.principals) == 1
    }

    /// The line's `namespaces=` list (absent: any namespace) admits `namespace`.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces
            .as_deref()
            .is_none_or(|n| match_pattern_list(namespace, n) == 1)
    }

    /// `time` (seconds since 1970, UTC) lies within the line's
    /// `valid-after`/`valid-before`.
    pub fn valid_at(&self, time: u64) -> bool {
        self.valid_after.is_none_or(|a| time >= a) && self.valid_before.is_none_or(|b| time <= b)
    }

    /// The line as this parser would read it back, for `principal` alone: what a
    /// policy stores. Times are written as `YYYYMMDDHHMMSSZ`.
    pub fn render_for(&self, principal: &str) -> String {
        let mut opts = Vec::new();
        if let Some(n) = &self.namespaces {
            opts.push(format!("namespaces=\"{n}\""));
        }
        if let Some(t) = self.valid_after {
            opts.push(format!("valid-after=\"{}\"", compact_time(t)));
        }
        if let Some(t) = self.valid_before {
            opts.push(format!("valid-before=\"{}\"", compact_time(t)));
        }
        let key = PublicKey::from(self.key.clone())
            .to_openssh()
            .unwrap_or_default();
        if opts.is_empty() {
            format!("{principal} {key}")
        } else {
            format!("{principal} {} {key}", opts.join(","))
        }
    }

    /// `SHA256:…` fingerprint of the key, as ssh-keygen -l prints it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.key)
    }
}

/// `SHA256:…`, as `ssh-keygen -l` prints a key.
pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
}

fn compact_time(secs: u64) -> String {
    // 2026-11-22T02:18:53Z -> 20261122021853Z
    super::time::format(secs)
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'Z')
        .collect()
}

/// A parsed allowed signers file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedSigners {
    /// The key lines, in file order (comments and blank lines dropped).
    pub entries: Vec<Entry>,
}

impl AllowedSigners {
    /// Parse the whole file; any line that is not a comment, blank or a valid entry is
    /// an error naming it.
    pub fn parse(file: &str, text: &str) -> Result<Self, Error> {
        let mut entries = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let fail = |message: String| Error {
                file: file.to_string(),
                line: i + 1,
                message,
            };
            if let Some(e) = parse_line(raw).map_err(fail)? {
                entries.push(Entry { line: i + 1, ..e });
            }
        }
        Ok(AllowedSigners { entries })
    }

    /// The lines that name `principal` (whatever their key, namespaces and times).
    pub fn lines_for<'a>(&'a self, principal: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.names(principal))
    }

    /// ssh-keygen's check: some line lets `principal` sign with `key` in `namespace` at
    /// `time`.
    pub fn allows(&self, principal: &str, key: &KeyData, namespace: &str, time: u64) -> bool {
        self.entries
            .iter()
            .any(|e| e.allows(principal, key, namespace, time))
    }
}

/// Why a signature does not count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Made for another namespace (the file signed with `ssh-keygen -Y sign -n OTHER`).
    Namespace {
        /// The namespace the signature names.
        found: String,
    },
    /// Does not verify over these bytes: made over other bytes, altered, or broken.
    BadSignature,
    /// Verifies, but no candidate principal may sign with this key now.
    NotAllowed {
        /// `SHA256:…` fingerprint of the signing key.
        key: String,
    },
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::Namespace { found } => write!(f, "made for namespace {found:?}"),
            Rejected::BadSignature => f.write_str("does not verify over these bytes"),
            Rejected::NotAllowed { key } => write!(f, "key {key} is not allowed to sign here"),
        }
    }
}

/// The principals among `candidates` that the SSHSIG `sig` over `message` in `namespace`
/// comes from, at `time`: what `ssh-keygen -Y verify -I P -n NAMESPACE` accepts, for
/// each candidate P.
pub fn verify(
    signers: &AllowedSigners,
    candidates: &[String],
    namespace: &str,
    message: &[u8],
    sig: &SshSig,
    time: u64,
) -> Result<Vec<String>, Rejected> {
    if sig.namespace() != namespace {
        return Err(Rejected::Namespace {
            found: sig.namespace().to_string(),
        });
    }
    let key = PublicKey::from(sig.public_key().clone());
    key.verify(namespace, message, sig)
        .map_err(|_| Rejected::BadSignature)?;
    let who: Vec<String> = candidates
        .iter()
        .filter(|p| signers.allows(p, sig.public_key(), namespace, time))
        .cloned()
        .collect();
    if who.is_empty() {
        return Err(Rejected::NotAllowed {
            key: fingerprint(sig.public_key()),
        });
    }
    Ok(who)
}

const WHITESPACE: &[char] = &[' ', '\t', '\r', '\n'];

/// One line: `None` for a blank or comment line.
fn parse_line(raw: &str) -> Result<Option<Entry>, String> {
    let line = raw.trim_start_matches(WHITESPACE);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (principals, rest) = principals_field(line)?;
    if principals.is_empty() {
        return Err("empty principals field".into());
    }
    let rest = rest.trim_start_matches(WHITESPACE);
    // As sshkey_read: a key type first, or else options, then the key.
    let (opts, key_text) = if starts_with_key_type(rest) {
        (None, rest)
    } else {
        let end = options_end(rest)?;
        (
            Some(&rest[..end]),
            rest[end..].trim_start_matches(WHITESPACE),
        )
    };
    if key_text.is_empty() {
        return Err("missing key after the principals and options".into());
    }
    let key = parse_key(key_text)?;
    let mut e = Entry {
        line: 0,
        principals,
        namespaces: None,
        valid_after: None,
        valid_before: None,
        key,
    };
    if let Some(o) = opts {
        parse_options(o, &mut e)?;
    }
    Ok(Some(e))
}

/// The principals field (strdelimw: up to whitespace, or a double-quoted run) and the
/// rest of the line after it.
fn principals_field(line: &str) -> Result<(String, &str), String> {
    let stop = line.find(|c: char| WHITESPACE.contains(&c) || c == '"');
    match stop {
        None => Err("only a principals field: no key".into()),
        Some(i) if line.as_bytes()[i] == b'"' => {
            let after = &line[i + 1..];
            let close = after
                .find('"')
                .ok_or_else(|| "unterminated quote in the principals field".to_string())?;
            let field = format!("{}{}", &line[..i], &after[..close]);
            Ok((field, &after[close + 1..]))
        }
        Some(i) => Ok((line[..i].to_string(), &line[i..])),
    }
}

const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-dss",
];

fn starts_with_key_type(s: &str) -> bool {
    let first = s.split(WHITESPACE).next().unwrap_or("");
    KEY_TYPES.contains(&first) || first.contains("-cert-v01@openssh.com")
}

/// Where the options field ends: the first whitespace outside double quotes
/// (sshkey_advance_past_options).
fn options_end(s: &str) -> Result<usize, String> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if !quoted && WHITESPACE.contains(&c) => return Ok(i),
            _ => {}
        }
    }
    if quoted {
        return Err("unterminated quote in the options".into());
    }
    // Options running to the end of the line leave no key.
    Err(format!(
        "{:?} is neither a key type nor followed by a key",
        s.trim_end()
    ))
}

fn parse_key(text: &str) -> Result<KeyData, String> {
    let mut it = text.split(WHITESPACE).filter(|t| !t.is_empty());
    let (Some(kind), Some(blob)) = (it.next(), it.next()) else {
        return Err("the key needs a type and its base64".into());
    };
    if kind.contains("-cert-v01@openssh.com") {
        return Err(format!(
            "{kind}: certificates are not supported; list each approver's key"
        ));
    }
    if !KEY_TYPES.contains(&kind) {
        return Err(format!("unknown key type {kind:?}"));
    }
    let key = PublicKey::from_openssh(&format!("{kind} {blob}"))
        .map_err(|e| format!("{kind} key does not decode: {e}"))?;
    if key.algorithm().as_str() != kind {
        return Err(format!(
            "the key is {}, not the {kind} the line says",
            key.algorithm().as_str()
        ));
    }
    if kind == "ssh-dss" {
        return Err("ssh-dss (DSA) keys cannot sign SSHSIG signatures".into());
    }
    Ok(key.key_data().clone())
}

/// `cert-authority`, `namespaces="…"`, `valid-after="…"`, `valid-before="…"`, separated
/// by commas (sshsig.c's sshsigopt_parse).
fn parse_options(mut s: &str, e: &mut Entry) -> Result<(), String> {
    loop {
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("cert-authority") {
            return Err(
                "cert-authority: certificate authorities are not supported; list each approver's key"
                    .into(),
            );
        } else if let Some(rest) = keyword(s, &lower, "namespaces") {
            if e.namespaces.is_some() {
                return Err("more than one namespaces= option".into());
            }
            let (v, r) = dequote(rest)?;
            e.namespaces = Some(v);
            s = r;
        } else if let Some(rest) = keyword(s, &lower, "valid-after") {
            if e.valid_after.is_some() {
                return Err("more than one valid-after= option".into());
            }
            let (v, r) = dequote(rest)?;
            e.valid_after = Some(parse_ssh_time(&v).map_err(|m| format!("valid-after: {m}"))?);
            s = r;
        } else if let Some(rest) = keyword(s, &lower, "valid-before") {
            if e.valid_before.is_some() {
                return Err("more than one valid-before= option".into());
            }
            let (v, r) = dequote(rest)?;
            e.valid_before = Some(parse_ssh_time(&v).map_err(|m| format!("valid-before: {m}"))?);
            s = r;
        } else {
            let name: String = s.chars().take_while(|c| *c != '=' && *c != ',').collect();
            return Err(format!("unknown option {name:?}"));
        }
        match s.strip_prefix(',') {
            None if s.is_empty() => return Ok(()),
            None => return Err(format!("unexpected {s:?} after an option")),
            Some("") => return Err("a comma ends the options".into()),
            Some(r) => s = r,
        }
    }
}

/// `name=` at the start of `s` (case-insensitive): the text after the `=`.
fn keyword<'a>(s: &'a str, lower: &str, name: &str) -> Option<&'a str> {
    lower
        .strip_prefix(name)
        .filter(|r| r.starts_with('='))
        .map(|_| &s[name.len() + 1..])
}

/// A double-quoted value (`\"` inside is a quote): the value and the rest.
fn dequote(s: &str) -> Result<(String, &str), String> {
    let body = s
        .strip_prefix('"')
        .ok_or_else(|| "an option's value must be in double quotes".to_string())?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, o)) => {
                    out.push('\\');
                    out.push(o);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated quote in an option's value".into())
}

/// `YYYYMMDD[Z]` or `YYYYMMDDHHMM[SS][Z]` (ssh-keygen's forms); only the `Z` forms.
fn parse_ssh_time(s: &str) -> Result<u64, String> {
    let Some(d) = s.strip_suffix('Z') else {
        return Err(format!(
            "{s:?}: give the time in UTC with a trailing Z (ssh-keygen would read it in the local time zone)"
        ));
    };
    let bad = || format!("{s:?} is not YYYYMMDDZ, YYYYMMDDHHMMZ or YYYYMMDDHHMMSSZ");
    if !d.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&d.len()) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| d.get(r).and_then(|x| x.parse::<u32>().ok());
    let (y, mo, day) = (n(0..4), n(4..6), n(6..8));
    let (h, mi, sec) = match d.len() {
        8 => (Some(0), Some(0), Some(0)),
        12 => (n(8..10), n(10..12), Some(0)),
        _ => (n(8..10), n(10..12), n(12..14)),
    };
    match (y, mo, day, h, mi, sec) {
        (Some(y), Some(mo), Some(day), Some(h), Some(mi), Some(sec)) => {
            super::time::civil_to_secs(i64::from(y), mo, day, h, mi, sec).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

/// OpenSSH's match_pattern: `*` any run, `?` any one character.
pub fn match_pattern(s: &str, pattern: &str) -> bool {
    fn go(s: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| go(&s[i..], rest)),
            Some(('?', rest)) => !s.is_empty() && go(&s[1..], rest),
            Some((c, rest)) => s.first() == Some(c) && go(&s[1..], rest),
        }
    }
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    go(&s, &p)
}

/// OpenSSH's match_pattern_list (case-sensitive): 1 if a pattern matches, -1 if a
/// negated (`!`) one does, 0 otherwise.
pub fn match_pattern_list(s: &str, list: &str) -> i32 {
    let mut positive = 0;
    for sub in list.split(',') {
        let (negated, pat) = match sub.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, sub),
        };
        if match_pattern(s, pat) {
            if negated {
                return -1;
            }
            positive = 1;
        }
    }
    positive
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIByI32DqnUeMKYiDlK8Mj2aXqxU6GDmay94cUM6NDsX1";

    fn one(line: &str) -> Result<Option<Entry>, String> {
        parse_line(line)
    }

    #[test]
    fn patterns_as_openssh() {
        assert!(match_pattern("alice@example.com", "*@example.com"));
        assert!(match_pattern("bob", "b?b"));
        assert!(!match_pattern("bobby", "b?b"));
        assert!(match_pattern("", "*"));
        assert_eq!(match_pattern_list("alice", "bob,alice"), 1);
        assert_eq!(match_pattern_list("alice", "*,!alice"), -1);
        assert_eq!(match_pattern_list("carol", "*,!alice"), 1);
        assert_eq!(match_pattern_list("Alice", "alice"), 0);
        assert_eq!(match_pattern_list("x", ""), 0);
    }

    #[test]
    fn lines_with_and_without_options() {
        assert_eq!(one("# comment").unwrap(), None);
        assert_eq!(one("   ").unwrap(), None);
        let e = one(&format!("alice,bob {ED} a comment")).unwrap().unwrap();
        assert_eq!(e.principals, "alice,bob");
        assert!(e.namespaces.is_none());
        let e = one(&format!(
            "\"carol smith\" NameSpaces=\"officiant-*\",valid-after=\"20260101Z\",valid-before=\"202701011230Z\" {ED}"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(e.principals, "carol smith");
        assert_eq!(e.namespaces.as_deref(), Some("officiant-*"));
        assert_eq!(e.valid_after, Some(1_767_225_600));
        assert_eq!(e.valid_before, Some(1_798_806_600));
        assert!(e.allows_namespace("officiant-approval"));
        assert!(!e.allows_namespace("file"));
    }

    #[test]
    fn refuses_what_ssh_keygen_would_skip() {
        for (line, why) in [
            ("alice", "no key"),
            (&format!("alice cert-authority {ED}") as &str, "cert-authority"),
            (&format!("alice namespaces=file {ED}"), "double quotes"),
            (&format!("alice namespaces=\"a\",namespaces=\"b\" {ED}"), "more than one"),
            (&format!("alice valid-after=\"20260101\" {ED}"), "trailing Z"),
            (&format!("alice valid-after=\"2026010Z\" {ED}"), "YYYYMMDDZ"),
            (&format!("alice from=\"x\" {ED}"), "unknown option"),
            (&format!("alice namespaces=\"a\", {ED}"), "comma ends"),
            ("alice ssh-ed25519 AAAA", "does not decode"),
            ("alice ssh-ed25519", "type and its base64"),
            ("alice ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIByI32DqnUeMKYiDlK8Mj2aXqxU6GDmay94cUM6NDsX1", "ssh-rsa key does not decode"),
            ("\"alice ssh-ed25519 AAAA", "unterminated quote"),
            ("alice namespaces=\"x\"", "neither a key type"),
        ] {
            let e = one(line).unwrap_err();
            assert!(e.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn render_reads_back_the_same() {
        let e = one(&format!(
            "*@example.com namespaces=\"officiant-approval\",valid-before=\"20270101Z\" {ED} c"
        ))
        .unwrap()
        .unwrap();
        let text = e.render_for("alice@example.com");
        let back = one(&text).unwrap().unwrap();
        assert_eq!(back.principals, "alice@example.com");
        assert_eq!(back.namespaces, e.namespaces);
        assert_eq!(back.valid_before, e.valid_before);
        assert_eq!(back.key, e.key);
    }

    #[test]
    fn file_errors_name_the_line() {
        let text = format!("# approvers\nalice {ED}\nbob frob {ED}\n");
        let e = AllowedSigners::parse("signers", &text).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string().starts_with("signers:3: unknown option"),
            "{e}"
        );
    }
}
