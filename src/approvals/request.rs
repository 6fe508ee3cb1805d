//! A signing request: what a pipeline asks approvers to allow. One JSON line in one
//! defined byte form, so that an approval (an SSHSIG over the file, `ssh-keygen -Y sign
//! -n officiant-approval REQ.json`) is over exactly these fields:
//!
//! ```json
//! {"type":"officiant-approval-request","version":1,"id":"…32 hex…","token-serial":"…","token-label":"…","policy-sha256":"…64 hex…","keys":[{"label":"fw","max-uses":3}],"created":"2026-11-22T02:18:53Z","not-after":"2026-11-22T02:19:53Z","description":"…"}
//! ```
//!
//! The canonical form is serde_json's compact encoding of these fields in this order,
//! followed by one newline. A file that parses but is not byte-for-byte its own canonical
//! form is refused, so nothing can be added, reordered or reformatted after approvers
//! have seen it.

use std::fmt;

use super::time;

/// A request file that cannot be used: `FILE: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct Error {
    /// The request file, as given.
    pub file: String,
    /// What is wrong with it.
    pub message: String,
}

/// The `type` field every request carries.
pub const TYPE: &str = "officiant-approval-request";
/// The request format's version; others are refused.
pub const VERSION: u32 = 1;
/// Keys one request may name.
pub const MAX_KEYS: usize = 16;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 1000;

/// One key the request asks to use, and how many signatures it may make.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct KeyUse {
    /// The key's label on the token.
    pub label: String,
    /// Signatures the request asks for with it (at least 1).
    pub max_uses: u64,
}

/// A signing request as approvers read and sign it; see the module doc for its one byte
/// form.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Request {
    /// Always [`TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// 16 random bytes, lower-case hex.
    pub id: String,
    /// Serial number of the token the request is for.
    pub token_serial: String,
    /// Label of that token (for people; the serial decides).
    pub token_label: String,
    /// SHA-256 of the token's stored policy when the request was made, hex.
    pub policy_sha256: String,
    /// The keys the request asks to use, at most [`MAX_KEYS`], labels distinct.
    pub keys: Vec<KeyUse>,
    /// RFC 3339 UTC.
    pub created: String,
    /// RFC 3339 UTC; the request is refused after it.
    pub not_after: String,
    /// Why the signatures are wanted, for approvers (at most [`MAX_DESCRIPTION`]
    /// characters).
    pub description: String,
}

impl fmt::Display for Request {
    /// What an approver reads before approving: several lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "request     {}", self.id)?;
        writeln!(
            f,
            "token       {:?} (serial {})",
            self.token_label, self.token_serial
        )?;
        for k in &self.keys {
            writeln!(
                f,
                "key         {:?}: up to {} signature(s)",
                k.label, k.max_uses
            )?;
        }
        writeln!(f, "valid until {} (made {})", self.not_after, self.created)?;
        writeln!(f, "policy      {}", self.policy_sha256)?;
        write!(f, "description {}", self.description)
    }
}

impl Request {
    /// A new request with a random id, valid from now for `valid_for` seconds.
    pub fn new(
        token_serial: &str,
        token_label: &str,
        policy_sha256: &[u8; 32],
        keys: Vec<KeyUse>,
        now: u64,
        valid_for: u64,
        description: &str,
    ) -> Result<Request, String> {
        use rand_core::RngCore;
        let mut id = [0u8; 16];
        rand_core::OsRng.fill_bytes(&mut id);
        let r = Request {
            kind: TYPE.into(),
            version: VERSION,
            id: hex::encode(id),
            token_serial: token_serial.into(),
            token_label: token_label.into(),
            policy_sha256: hex::encode(policy_sha256),
            keys,
            created: time::format(now),
            not_after: time::format(now.saturating_add(valid_for)),
            description: description.into(),
        };
        r.check()?;
        Ok(r)
    }

    /// The canonical bytes: what is written, and what approvers sign.
    pub fn to_canonical(&self) -> Vec<u8> {
        // ok: strings, integers and a list of them always serialize.
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Read a request file's bytes: strict fields, and the canonical form exactly.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Request, Error> {
        let err = |message: String| Error {
            file: file.to_string(),
            message,
        };
        let r: Request = serde_json::from_slice(bytes)
            .map_err(|e| err(format!("not an Officiant signing request: {e}")))?;
        if r.kind != TYPE {
            return Err(err(format!("type {:?}, not {TYPE:?}", r.kind)));
        }
        if r.version != VERSION {
            return Err(err(format!(
                "request version {} (this officiant reads {VERSION})",
                r.version
            )));
        }
        r.check().map_err(err)?;
        if r.to_canonical() != bytes {
            return Err(err(
                "not in canonical form (changed after it was made?); approvals are over the exact bytes officiant request create writes".into(),
            ));
        }
        Ok(r)
    }

    /// When it expires, in seconds since 1970.
    pub fn not_after_secs(&self) -> u64 {
        // Checked by `check`.
        time::parse(&self.not_after).unwrap_or(0)
    }

    /// The entry for key `label`, with its index (which names its use counter).
    pub fn key(&self, label: &str) -> Option<(usize, &KeyUse)> {
        self.keys.iter().enumerate().find(|(_, k)| k.label == label)
    }

    /// Field checks shared by `new` and `parse`: the message names the field.
    fn check(&self) -> Result<(), String> {
        let is_hex = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !is_hex(&self.id, 32) {
            return Err("id: expected 32 lower-case hex digits".into());
        }
        if !is_hex(&self.policy_sha256, 64) {
            return Err("policy-sha256: expected 64 lower-case hex digits".into());
        }
        if self.token_serial.is_empty() {
            return Err("token-serial: empty (the token reports no serial number)".into());
        }
        for (f, s) in [
            ("token-serial", &self.token_serial),
            ("token-label", &self.token_label),
        ] {
            if s.len() > 64 || s.chars().any(char::is_control) {
                return Err(format!("{f}: at most 64 printable characters"));
            }
        }
        if self.keys.is_empty() || self.keys.len() > MAX_KEYS {
            return Err(format!("keys: name 1 to {MAX_KEYS} keys"));
        }
        for (i, k) in self.keys.iter().enumerate() {
            if k.label.is_empty() || k.label.len() > 128 || k.label.chars().any(char::is_control) {
                return Err(format!("keys[{i}].label: 1 to 128 printable characters"));
            }
            if k.max_uses == 0 {
                return Err(format!("keys[{i}].max-uses: must be at least 1"));
            }
            if self.keys[..i].iter().any(|o| o.label == k.label) {
                return Err(format!("keys[{i}].label: {:?} is named twice", k.label));
            }
        }
        let created = time::parse(&self.created).map_err(|e| format!("created: {e}"))?;
        let not_after = time::parse(&self.not_after).map_err(|e| format!("not-after: {e}"))?;
        if time::format(created) != self.created || time::format(not_after) != self.not_after {
            return Err("created, not-after: write times in UTC with a Z".into());
        }
        if not_after <= created {
            return Err("not-after: must be later than created".into());
        }
        let n = self.description.chars().count();
        if n == 0 || n > MAX_DESCRIPTION {
            return Err(format!("description: 1 to {MAX_DESCRIPTION} characters"));
        }
        // Shown to approvers in a terminal: no escape sequences, no hidden lines.
        if self.description.chars().any(char::is_control) {
            return Err(
                "description: control characters (line breaks, escapes) are not allowed".into(),
            );
        }
        Ok(())
    }

    /// The label of the counter on the token that counts uses of key number `index`.
    /// At most 40 bytes (a YubiHSM label).
    pub fn counter_label(&self, index: usize) -> String {
        format!("uses.{}.{index}", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Request {
        Request::new(
            "0123456789abcdef",
            "ci-token",
            &[7u8; 32],
            vec![KeyUse {
                label: "fw".into(),
                max_uses: 3,
            }],
            1_700_000_000,
            60,
            "release 1.2.3 — firmware \"main\"",
        )
        .unwrap()
    }

    #[test]
    fn canonical_form_round_trips() {
        let r = sample();
        let b = r.to_canonical();
        assert!(b.ends_with(b"}\n"));
        assert!(b.starts_with(b"{\"type\":\"officiant-approval-request\",\"version\":1,\"id\":\""));
        assert_eq!(Request::parse("r", &b).unwrap(), r);
        assert_eq!(r.not_after, "2023-11-14T22:14:20Z");
        assert!(r.counter_label(15).len() <= 40);
    }

    #[test]
    fn anything_but_the_canonical_bytes_is_refused() {
        let b = sample().to_canonical();
        let text = String::from_utf8(b.clone()).unwrap();
        for changed in [
            text.trim_end().to_string(),
            text.replace("\",\"", "\", \""),
            text.replacen('{', "{ ", 1),
            format!("{text}\n"),
            serde_json::to_string_pretty(&sample()).unwrap() + "\n",
        ] {
            let e = Request::parse("r", changed.as_bytes()).unwrap_err();
            assert!(
                e.message.contains("canonical") || e.message.contains("not an Officiant"),
                "{changed}: {e}"
            );
        }
        let extra = text.replacen("\"version\":1,", "\"version\":1,\"extra\":1,", 1);
        let e = Request::parse("r", extra.as_bytes()).unwrap_err();
        assert!(e.message.contains("unknown field `extra`"), "{e}");
    }

    #[test]
    fn fields_are_checked() {
        let mut r = sample();
        r.description = "line\nbreak".into();
        let e = Request::parse("r", &r.to_canonical()).unwrap_err();
        assert!(e.message.starts_with("description: control"), "{e}");
        let mut r = sample();
        r.keys[0].max_uses = 0;
        let e = Request::parse("r", &r.to_canonical()).unwrap_err();
        assert!(e.message.starts_with("keys[0].max-uses"), "{e}");
        let mut r = sample();
        r.not_after = r.created.clone();
        let e = Request::parse("r", &r.to_canonical()).unwrap_err();
        assert!(e.message.starts_with("not-after"), "{e}");
        let mut r = sample();
        r.id = r.id.to_uppercase();
        assert!(Request::parse("r", &r.to_canonical()).is_err());
    }
}
