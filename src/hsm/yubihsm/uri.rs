//! The text after `yubihsm:`:
//!
//! - `http://HOST:PORT` — a yubihsm-connector (default port 12345)
//! - `usb` — the first YubiHSM 2 on USB; `usb?serial=0123456789` picks one
//! - `mock` — the `yubihsm` crate's MockHsm (builds with our `mock-hsm` feature only)
//!
//! Each takes `?auth-key=ID` (decimal, or hex with `0x`; default 1, the factory key):
//! the authentication key the session logs in with. Passwords never go in the URI.

use super::Error;

/// Which device a URI names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// yubihsm-connector over HTTP.
    Http {
        /// The connector's host.
        host: String,
        /// Its port (12345 by default).
        port: u16,
    },
    /// A device on USB.
    Usb {
        /// Its serial number, when several are plugged in.
        serial: Option<String>,
    },
    /// The crate's MockHsm (builds with the `mock-hsm` feature only).
    Mock,
}

/// A parsed `yubihsm:` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YubiUri {
    /// Which device.
    pub target: Target,
    /// The authentication key id to log in with.
    pub auth_key: u16,
}

/// The factory authentication key.
pub const DEFAULT_AUTH_KEY: u16 = 1;

impl YubiUri {
    /// Parse the text after `yubihsm:` (`usb?serial=N`, `http://HOST:PORT`, `mock`, each
    /// with `?auth-key=ID`).
    pub fn parse(rest: &str) -> Result<Self, Error> {
        let (base, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let mut auth_key = DEFAULT_AUTH_KEY;
        let mut serial = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "auth-key" => auth_key = parse_auth_key(v)?,
                "serial" if base == "usb" => {
                    if v.is_empty() || v.len() > 10 || !v.chars().all(|c| c.is_ascii_digit()) {
                        return Err(Error::Uri(format!(
                            "serial={v:?}: a YubiHSM serial number is up to 10 digits"
                        )));
                    }
                    serial = Some(v.to_string());
                }
                "password" | "pin-value" | "pin" => {
                    return Err(Error::Uri(format!(
                        "{k}=…: a password never goes in the URI; give it with --pin-source or the answers file"
                    )))
                }
                other => {
                    return Err(Error::Uri(format!(
                        "unknown attribute {other:?} (yubihsm: URIs take auth-key=ID, and serial=N for usb)"
                    )))
                }
            }
        }
        let target = if base == "usb" {
            Target::Usb { serial }
        } else if base == "mock" {
            Target::Mock
        } else if let Some(hp) = base.strip_prefix("http://") {
            let hp = hp.trim_end_matches('/');
            let (host, port) = match hp.rsplit_once(':') {
                Some((h, p)) => (
                    h,
                    p.parse::<u16>()
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| Error::Uri(format!("port {p:?} is not 1-65535")))?,
                ),
                None => (hp, 12345),
            };
            if host.is_empty() || host.contains('/') {
                return Err(Error::Uri(format!(
                    "{base:?}: expected http://HOST:PORT of a yubihsm-connector"
                )));
            }
            Target::Http {
                host: host.to_string(),
                port,
            }
        } else if base.starts_with("https://") {
            return Err(Error::Uri(
                "https: the yubihsm crate speaks plain http to yubihsm-connector; use http://127.0.0.1:12345 on the connector's host".into(),
            ));
        } else {
            return Err(Error::Uri(format!(
                "{base:?}: expected yubihsm:http://HOST:PORT, yubihsm:usb or yubihsm:mock"
            )));
        };
        Ok(YubiUri { target, auth_key })
    }
}

fn parse_auth_key(v: &str) -> Result<u16, Error> {
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16).ok(),
        None => v.parse::<u16>().ok(),
    };
    match parsed {
        Some(id) if id != 0 => Ok(id),
        _ => Err(Error::Uri(format!(
            "auth-key={v:?}: expected an authentication key id 1-65535"
        ))),
    }
}

impl std::fmt::Display for YubiUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            Target::Http { host, port } => write!(f, "yubihsm:http://{host}:{port}")?,
            Target::Usb { serial: None } => f.write_str("yubihsm:usb")?,
            Target::Usb { serial: Some(s) } => write!(f, "yubihsm:usb?serial={s}")?,
            Target::Mock => f.write_str("yubihsm:mock")?,
        }
        let sep = if matches!(self.target, Target::Usb { serial: Some(_) }) {
            '&'
        } else {
            '?'
        };
        write!(f, "{sep}auth-key={}", self.auth_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = YubiUri::parse("http://127.0.0.1:12345").unwrap();
        assert_eq!(
            u.target,
            Target::Http {
                host: "127.0.0.1".into(),
                port: 12345
            }
        );
        assert_eq!(u.auth_key, 1);
        let u = YubiUri::parse("usb?serial=0012345678&auth-key=0x0002").unwrap();
        assert_eq!(
            u.target,
            Target::Usb {
                serial: Some("0012345678".into())
            }
        );
        assert_eq!(u.auth_key, 2);
        assert_eq!(u.to_string(), "yubihsm:usb?serial=0012345678&auth-key=2");
        assert_eq!(YubiUri::parse("mock?auth-key=3").unwrap().auth_key, 3);
    }

    #[test]
    fn bad_forms_are_named() {
        for (s, want) in [
            ("mock?auth-key=0", "auth-key=\"0\""),
            ("http://h:99999", "port \"99999\""),
            ("mock?password=x", "never goes in the URI"),
            ("mock?colour=red", "unknown attribute \"colour\""),
            ("serial", "expected yubihsm:http"),
            ("usb?serial=abc", "serial=\"abc\""),
        ] {
            let e = YubiUri::parse(s).unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
        assert!(!YubiUri::parse("mock?password=hunter2")
            .unwrap_err()
            .to_string()
            .contains("hunter2"));
    }
}
