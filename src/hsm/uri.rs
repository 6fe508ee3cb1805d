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
    use super::*;

    #[test]
    fn pin_value_never_printed() {
        let u = BackendUri::parse("pkcs11:token=A;pin-value=1234?module-path=/x.so").unwrap();
        let shown = u.to_string();
        assert!(!shown.contains("1234"), "{shown}");
        assert!(shown.contains("module-path=/x.so"), "{shown}");
    }
}
