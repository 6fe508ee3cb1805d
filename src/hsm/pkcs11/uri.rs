//! RFC 7512 PKCS#11 URIs: `pkcs11:token=…;serial=…?module-path=…&pin-source=…`.
//!
//! Only the text after `pkcs11:` arrives here. Values are percent-decoded. A PIN never
//! leaves this module as text: `pin-value` is refused outside tests, `pin-source` is a
//! [`SecretSource`] read at the last moment.

use std::path::{Path, PathBuf};

use crate::secret::{Secret, SecretSource};

/// The environment switch that lets tests put `pin-value` in a URI.
pub const ALLOW_PIN_VALUE_ENV: &str = "OFFICIANT_ALLOW_PIN_VALUE";

/// `pin-value` is for tests only: the switch works in debug builds, never in a release.
fn pin_value_allowed() -> bool {
    cfg!(debug_assertions) && std::env::var(ALLOW_PIN_VALUE_ENV).as_deref() == Ok("1")
}

/// Where `module-name` is looked up, in this order.
pub const MODULE_DIRS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/softhsm",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib",
];

/// Why a PKCS#11 URI (RFC 7512) is refused; each message names the attribute.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UriError {
    /// A `%` not followed by two hex digits.
    #[error("PKCS#11 URI attribute {0:?} has a bad percent-escape")]
    BadEscape(String),
    /// A value that is not UTF-8 once unescaped.
    #[error("PKCS#11 URI attribute {0:?} is not UTF-8")]
    NotUtf8(String),
    /// An attribute without `=`.
    #[error("PKCS#11 URI attribute {0:?} is not name=value")]
    NoValue(String),
    /// An attribute given twice.
    #[error("PKCS#11 URI attribute {0:?} appears twice")]
    Duplicate(String),
    /// An attribute RFC 7512 or Officiant does not define.
    #[error("PKCS#11 URI attribute {0:?} is not one Officiant knows")]
    Unknown(String),
    /// A `slot-id` that is not a decimal number.
    #[error("PKCS#11 URI slot-id {0:?} is not a decimal number")]
    BadSlotId(String),
    #[error(
        "PKCS#11 URI pin-value is refused (the PIN would sit in argv and shell history); \
         use pin-source=file:PATH or pin-source=env:NAME"
    )]
    /// `pin-value` outside tests (see `ALLOW_PIN_VALUE_ENV`).
    PinValueRefused,
    /// Shows the value only when it is a source (`prompt`), never what may be a PIN.
    #[error("PKCS#11 URI pin-source {} is not file:PATH, env:NAME or an absolute path", .0.as_ref().map_or("(value not shown: it may be the PIN itself)".to_string(), |s| format!("{s:?}")))]
    BadPinSource(Option<String>),
    #[error(
        "PKCS#11 URI names no module: add ?module-path=/path/to/module.so or ?module-name=NAME"
    )]
    /// Neither `module-path` nor `module-name`.
    NoModule,
    /// `module-name` is in none of [`MODULE_DIRS`].
    #[error("PKCS#11 module-name {name:?} not found in {dirs}")]
    ModuleNotFound {
        /// The module name given.
        name: String,
        /// The directories looked in.
        dirs: String,
    },
}

/// A parsed PKCS#11 URI. `Debug` never shows `pin-value`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token's label.
    pub token: Option<String>,
    /// `serial`: the token's serial number.
    pub serial: Option<String>,
    /// `manufacturer`: the token's manufacturer.
    pub manufacturer: Option<String>,
    /// `model`: the token's model.
    pub model: Option<String>,
    /// `slot-id`: the slot, by number (numbers move: SoftHSM renumbers at C_InitToken).
    pub slot_id: Option<u64>,
    /// `slot-description`.
    pub slot_description: Option<String>,
    /// `slot-manufacturer`.
    pub slot_manufacturer: Option<String>,
    /// Object attributes: kept for callers that name a key by URI; ignored for token selection.
    pub object: Option<String>,
    /// `id`: an object's CKA_ID, unescaped.
    pub id: Option<Vec<u8>>,
    /// `type`: `private`, `public`, `cert`, `data` or `secret-key`.
    pub object_type: Option<String>,
    /// `module-path`: the module file.
    pub module_path: Option<PathBuf>,
    /// `module-name`: a module looked up in [`MODULE_DIRS`].
    pub module_name: Option<String>,
    /// `pin-source`: where the user PIN comes from (`file:`, `env:`, or an absolute path).
    pub pin_source: Option<SecretSource>,
    pin_value: Option<Secret>,
}

impl std::fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Uri")
            .field("token", &self.token)
            .field("serial", &self.serial)
            .field("slot_id", &self.slot_id)
            .field("module_path", &self.module_path)
            .field("module_name", &self.module_name)
            .field("pin_source", &self.pin_source)
            .field("pin_value", &self.pin_value.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

impl Pkcs11Uri {
    /// Parse the text after `pkcs11:`.
    pub fn parse(rest: &str) -> Result<Self, UriError> {
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, q),
            None => (rest, ""),
        };
        let mut uri = Pkcs11Uri::default();
        let attrs = path
            .split(';')
            .chain(query.split('&'))
            .filter(|a| !a.is_empty());
        for attr in attrs {
            let (name, raw) = attr
                .split_once('=')
                .ok_or_else(|| UriError::NoValue(attr.to_string()))?;
            let bytes = percent_decode(name, raw)?;
            if name == "id" {
                set(&mut uri.id, name, bytes)?;
                continue;
            }
            if name == "pin-value" {
                if !pin_value_allowed() {
                    return Err(UriError::PinValueRefused);
                }
                set(&mut uri.pin_value, name, Secret::new(bytes))?;
                continue;
            }
            let text = String::from_utf8(bytes).map_err(|_| UriError::NotUtf8(name.into()))?;
            match name {
                "token" => set(&mut uri.token, name, text)?,
                "serial" => set(&mut uri.serial, name, text)?,
                "manufacturer" => set(&mut uri.manufacturer, name, text)?,
                "model" => set(&mut uri.model, name, text)?,
                "slot-description" => set(&mut uri.slot_description, name, text)?,
                "slot-manufacturer" => set(&mut uri.slot_manufacturer, name, text)?,
                "slot-id" => {
                    let n = text
                        .parse()
                        .map_err(|_| UriError::BadSlotId(text.clone()))?;
                    set(&mut uri.slot_id, name, n)?
                }
                "object" => set(&mut uri.object, name, text)?,
                "type" => set(&mut uri.object_type, name, text)?,
                "module-path" => set(&mut uri.module_path, name, PathBuf::from(text))?,
                "module-name" => set(&mut uri.module_name, name, text)?,
                "pin-source" => {
                    let src = parse_pin_source(&text)?;
                    set(&mut uri.pin_source, name, src)?
                }
                // Library attributes describe the module already chosen by module-path.
                "library-manufacturer" | "library-description" | "library-version" => {}
                _ if name.starts_with("x-") => {}
                _ => return Err(UriError::Unknown(name.to_string())),
            }
        }
        Ok(uri)
    }

    /// True when the URI itself says which token to use.
    pub fn names_token(&self) -> bool {
        self.token.is_some() || self.serial.is_some()
    }

    /// The module file: `module-path`, or `module-name` looked up in [`MODULE_DIRS`].
    pub fn module(&self) -> Result<PathBuf, UriError> {
        if let Some(p) = &self.module_path {
            return Ok(p.clone());
        }
        let name = self.module_name.as_deref().ok_or(UriError::NoModule)?;
        let candidates = [
            format!("lib{name}.so"),
            format!("{name}.so"),
            name.to_string(),
        ];
        for dir in MODULE_DIRS {
            for file in &candidates {
                let p = Path::new(dir).join(file);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        Err(UriError::ModuleNotFound {
            name: name.to_string(),
            dirs: MODULE_DIRS.join(", "),
        })
    }

    /// The user PIN the URI carries (`pin-source`, or `pin-value` in tests), if any.
    pub fn pin(&self) -> Result<Option<Secret>, crate::secret::Error> {
        if let Some(v) = &self.pin_value {
            return Ok(Some(v.clone()));
        }
        match &self.pin_source {
            Some(src) => src
                .read("user PIN (pin-source of the PKCS#11 URI)")
                .map(Some),
            None => Ok(None),
        }
    }
}

fn set<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), UriError> {
    if slot.is_some() {
        return Err(UriError::Duplicate(name.to_string()));
    }
    *slot = Some(value);
    Ok(())
}

/// RFC 7512 allows `pin-source` to be a file path; we also take our own `file:`/`env:`.
fn parse_pin_source(text: &str) -> Result<SecretSource, UriError> {
    if text.starts_with('/') {
        return Ok(SecretSource::File(PathBuf::from(text)));
    }
    if let Some(path) = text.strip_prefix("file://") {
        if path.starts_with('/') {
            return Ok(SecretSource::File(PathBuf::from(path)));
        }
    }
    match SecretSource::parse(text) {
        Ok(s @ (SecretSource::Env(_) | SecretSource::File(_))) => Ok(s),
        Ok(SecretSource::Prompt) => Err(UriError::BadPinSource(Some(text.to_string()))),
        Err(_) => Err(UriError::BadPinSource(None)),
    }
}

fn percent_decode(name: &str, raw: &str) -> Result<Vec<u8>, UriError> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| UriError::BadEscape(name.to_string()))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_attributes_decode() {
        let u = Pkcs11Uri::parse(
            "model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=1eb49a0ceef7742f;\
             token=TFA%20Sign;id=%10%02;object=CSF1_1_sha256_4096_usr;type=private\
             ?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:USER_PIN",
        )
        .unwrap();
        assert_eq!(u.token.as_deref(), Some("TFA Sign"));
        assert_eq!(u.model.as_deref(), Some("SoftHSM v2"));
        assert_eq!(u.serial.as_deref(), Some("1eb49a0ceef7742f"));
        assert_eq!(u.id.as_deref(), Some(&[0x10, 0x02][..]));
        assert_eq!(u.object.as_deref(), Some("CSF1_1_sha256_4096_usr"));
        assert_eq!(u.object_type.as_deref(), Some("private"));
        assert_eq!(
            u.module().unwrap(),
            PathBuf::from("/usr/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(u.pin_source, Some(SecretSource::Env("USER_PIN".into())));
        assert!(u.names_token());
    }

    #[test]
    fn pin_source_forms() {
        for (text, want) in [
            ("/run/pin", SecretSource::File("/run/pin".into())),
            ("file:/run/pin", SecretSource::File("/run/pin".into())),
            ("file:///run/pin", SecretSource::File("/run/pin".into())),
            ("env:PIN", SecretSource::Env("PIN".into())),
        ] {
            let u = Pkcs11Uri::parse(&format!("?pin-source={text}")).unwrap();
            assert_eq!(u.pin_source, Some(want), "{text}");
        }
        assert_eq!(
            Pkcs11Uri::parse("?pin-source=prompt")
                .unwrap_err()
                .to_string(),
            "PKCS#11 URI pin-source \"prompt\" is not file:PATH, env:NAME or an absolute path"
        );
    }

    #[test]
    fn pin_value_refused_without_test_switch() {
        // The switch is only ever set by integration tests, in their own process.
        if std::env::var(ALLOW_PIN_VALUE_ENV).is_ok() {
            return;
        }
        let e = Pkcs11Uri::parse("token=A;pin-value=canary-1234").unwrap_err();
        assert_eq!(e, UriError::PinValueRefused);
        assert!(!e.to_string().contains("canary-1234"));
    }

    /// `cargo test --release`: the test switch does nothing in a release build.
    #[cfg(not(debug_assertions))]
    #[test]
    fn pin_value_switch_does_nothing_in_release() {
        std::env::set_var(ALLOW_PIN_VALUE_ENV, "1");
        let e = Pkcs11Uri::parse("token=A;pin-value=canary-1234").unwrap_err();
        assert_eq!(e, UriError::PinValueRefused);
    }

    #[test]
    fn bad_input_names_the_attribute() {
        let cases = [
            (
                "token=%zz",
                "PKCS#11 URI attribute \"token\" has a bad percent-escape",
            ),
            (
                "token=a;token=b",
                "PKCS#11 URI attribute \"token\" appears twice",
            ),
            (
                "slot-id=x",
                "PKCS#11 URI slot-id \"x\" is not a decimal number",
            ),
            (
                "colour=red",
                "PKCS#11 URI attribute \"colour\" is not one Officiant knows",
            ),
            ("token", "PKCS#11 URI attribute \"token\" is not name=value"),
        ];
        for (text, msg) in cases {
            assert_eq!(
                Pkcs11Uri::parse(text).unwrap_err().to_string(),
                msg,
                "{text}"
            );
        }
        assert_eq!(
            Pkcs11Uri::parse("token=A")
                .unwrap()
                .module()
                .unwrap_err()
                .to_string(),
            "PKCS#11 URI names no module: add ?module-path=/path/to/module.so or ?module-name=NAME"
        );
        let e = Pkcs11Uri::parse("?module-name=no-such-module-xyz")
            .unwrap()
            .module()
            .unwrap_err();
        assert!(e.to_string().starts_with("PKCS#11 module-name \"no-such-module-xyz\" not found in /usr/lib/x86_64-linux-gnu/pkcs11, "), "{e}");
    }

    #[test]
    fn debug_hides_pin_value() {
        let u = Pkcs11Uri {
            pin_value: Some(Secret::from_string("canary-1234".into())),
            ..Default::default()
        };
        assert!(!format!("{u:?}").contains("canary-1234"));
    }
}
