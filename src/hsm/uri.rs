//! Backend URIs: `sim:DIR`, `pkcs11:…` (RFC 7512), `yubihsm:…`. Printing a URI never
//! shows a secret.

use std::fmt;
use std::path::PathBuf;

use super::{Error, Result};

/// A backend as a URI names it (chosen at run time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendUri {
    /// The built-in rehearsal token stored in a directory.
    Sim(PathBuf),
    /// The text after `pkcs11:` (parsed by the PKCS#11 backend).
    Pkcs11(String),
    /// The text after `yubihsm:` (parsed by the YubiHSM backend).
    YubiHsm(String),
}

/// The built-in default backend.
pub const DEFAULT_BACKEND: &str = "sim:./rehearsal";

impl BackendUri {
    /// `sim:DIR`, `pkcs11:…` or `yubihsm:…`; the backend parses the rest when it opens.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(dir) = s.strip_prefix("sim:") {
            if dir.is_empty() {
                return Err(Error::Unsupported(
                    "sim: URI needs a directory (sim:DIR)".into(),
                ));
            }
            crate::secret::on_rehearsal_token();
            return Ok(BackendUri::Sim(PathBuf::from(dir)));
        }
        if let Some(rest) = s.strip_prefix("pkcs11:") {
            return Ok(BackendUri::Pkcs11(rest.to_string()));
        }
        if let Some(rest) = s.strip_prefix("yubihsm:") {
            return Ok(BackendUri::YubiHsm(rest.to_string()));
        }
        Err(Error::Unsupported(format!(
            "backend URI {:?}: expected sim:DIR, pkcs11:… or yubihsm:…",
            redact(s)
        )))
    }
}

/// Attributes whose values a message may show: what names a token, a slot, an object
/// or a module, and where a PIN comes from. Every other attribute's value is hidden:
/// `pin-value`, `password` and whatever spelling of them a user tries.
const SHOWN: [&str; 17] = [
    "token",
    "serial",
    "manufacturer",
    "model",
    "slot-id",
    "slot-description",
    "slot-manufacturer",
    "object",
    "id",
    "type",
    "module-path",
    "module-name",
    "pin-source",
    "library-manufacturer",
    "library-description",
    "library-version",
    "auth-key",
];

/// A URI as messages may show it: the value of every attribute not known to be
/// harmless (see `SHOWN`) becomes `[redacted]`, whatever its case or percent-encoding.
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        let end = rest.find([';', '&', '?']).unwrap_or(rest.len());
        let (attr, tail) = rest.split_at(end);
        match attr.split_once('=') {
            Some((name, _)) if !shown(name) => {
                out.push_str(name);
                out.push_str("=[redacted]");
            }
            _ => out.push_str(attr),
        }
        let Some(sep) = tail.chars().next() else {
            break;
        };
        out.push(sep);
        rest = &tail[sep.len_utf8()..];
    }
    out
}

/// Whether an attribute name (perhaps after a scheme, `pkcs11:token`) is in [`SHOWN`].
fn shown(name: &str) -> bool {
    let bare = name.rsplit(':').next().unwrap_or(name);
    let mut decoded = Vec::with_capacity(bare.len());
    let b = bare.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                decoded.push(v);
                i += 3;
            }
            (c, _) => {
                decoded.push(c);
                i += 1;
            }
        }
    }
    let name = String::from_utf8_lossy(&decoded).to_ascii_lowercase();
    SHOWN.contains(&name.as_str())
}

impl BackendUri {
    /// The same PKCS#11 URI naming the token with this serial (what a token picker
    /// chose); `None` for other backends.
    pub fn with_serial(&self, serial: &str) -> Option<BackendUri> {
        let BackendUri::Pkcs11(rest) = self else {
            return None;
        };
        let enc: String = serial
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        Some(BackendUri::Pkcs11(
            if rest.is_empty() || rest.starts_with('?') {
                format!("serial={enc}{rest}")
            } else {
                format!("serial={enc};{rest}")
            },
        ))
    }
}

impl fmt::Display for BackendUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendUri::Sim(d) => write!(f, "sim:{}", d.display()),
            BackendUri::Pkcs11(r) => write!(f, "pkcs11:{}", redact(r)),
            BackendUri::YubiHsm(r) => write!(f, "yubihsm:{}", redact(r)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_chosen_serial_goes_into_the_uri() {
        let u = super::BackendUri::parse("pkcs11:?module-path=/m.so").unwrap();
        assert_eq!(
            u.with_serial("a1 b").unwrap().to_string(),
            "pkcs11:serial=a1%20b?module-path=/m.so"
        );
        let u = super::BackendUri::parse("pkcs11:model=X?module-path=/m.so").unwrap();
        assert_eq!(
            u.with_serial("7").unwrap().to_string(),
            "pkcs11:serial=7;model=X?module-path=/m.so"
        );
        assert!(super::BackendUri::parse("sim:d")
            .unwrap()
            .with_serial("7")
            .is_none());
    }

    use super::*;

    #[test]
    fn pin_value_never_printed() {
        let u = BackendUri::parse("pkcs11:token=A;pin-value=1234?module-path=/x.so").unwrap();
        let shown = u.to_string();
        assert!(!shown.contains("1234"), "{shown}");
        assert!(shown.contains("module-path=/x.so"), "{shown}");
    }

    #[test]
    fn every_spelling_of_a_secret_is_hidden() {
        for name in [
            "pin-value",
            "PIN-VALUE",
            "Pin-Value",
            "pin%2Dvalue",
            "password",
            "Passwd",
        ] {
            let shown = redact(&format!(
                "token=A;{name}=c4n4ry?module-path=/x.so&{name}=c4n4ry"
            ));
            assert!(!shown.contains("c4n4ry"), "{shown}");
            assert!(
                shown.contains("token=A") && shown.contains("module-path=/x.so"),
                "{shown}"
            );
        }
        let y = redact("http://127.0.0.1:12345?auth-key=2&PASSWORD=c4n4ry");
        assert_eq!(y, "http://127.0.0.1:12345?auth-key=2&PASSWORD=[redacted]");
        assert_eq!(redact("pkcs11:token=A"), "pkcs11:token=A");
    }
}
