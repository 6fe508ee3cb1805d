//! Backend URIs: `sim:DIR`, `pkcs11:…` (RFC 7512), `yubihsm:…`. Printing a URI never
//! shows a secret.

use std::fmt;
use std::path::PathBuf;

use super::{Error, Result};

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
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(dir) = s.strip_prefix("sim:") {
            if dir.is_empty() {
                return Err(Error::Unsupported(
                    "sim: URI needs a directory (sim:DIR)".into(),
                ));
            }
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

/// Remove `pin-value=…` (and any other attribute that names a value-bearing secret).
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("pin-value=") {
        out.push_str(&rest[..i + "pin-value=".len()]);
        out.push_str("[redacted]");
        rest = &rest[i + "pin-value=".len()..];
        let end = rest.find([';', '&', '?']).unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
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
}
