//! Names with rules, checked once when they are built from text: an object's [`Label`],
//! its [`ObjectId`], and an [`ObjectClass`] as a user spells it (`private`, `public`,
//! `cert`, `data`). Code that holds a `Label` or an `ObjectId` never checks it again;
//! each shows as it was given (`Display`), and reads as text or bytes (`Deref`).
//!
//! These are the rules every backend shares. A backend's own limits (a YubiHSM label
//! holds 40 bytes, its ids are 16 bits) are that backend's, checked when a plan meets it
//! ([`super::check_plan`]) and again at the device. What a type refuses is reported by
//! its caller, which names the field (`step[3] (gen).label: …`, `--id: …`).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use super::ObjectClass;

/// Invisible characters that make two spellings of one text look alike: zero-width and
/// joiner characters, bidi controls, soft hyphen, variation selectors, BOM, tags.
pub fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Bidi controls and zero-width characters, refused in labels and names shown to
/// witnesses (they make text read differently from what it is). A soft hyphen is
/// invisible but reads as nothing else, so it is not among them.
pub fn deceptive(c: char) -> bool {
    invisible(c) && c != '\u{00AD}'
}

/// The longest label, in bytes of UTF-8 (a backend may hold fewer).
pub const MAX_LABEL_BYTES: usize = 128;

/// An object's label as the token and the witnesses see it: 1 to [`MAX_LABEL_BYTES`]
/// bytes, no control, bidi or zero-width character (they make a label read as another).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Label(String);

/// Why a text is not a [`Label`]; the message is the field's, after its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// Empty, longer than [`MAX_LABEL_BYTES`], or with a control character.
    #[error("must be 1 to 128 printable characters")]
    NotPrintable,
    /// A bidi control or zero-width character (see [`deceptive`]).
    #[error(
        "has the invisible character U+{:04X} (bidi control or zero-width): a label must read as what it is",
        u32::from(*.0)
    )]
    Invisible(char),
}

impl Label {
    /// The label as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Label {
    type Err = LabelError;

    fn from_str(s: &str) -> Result<Self, LabelError> {
        if s.is_empty() || s.len() > MAX_LABEL_BYTES || s.chars().any(char::is_control) {
            return Err(LabelError::NotPrintable);
        }
        if let Some(c) = s.chars().find(|&c| deceptive(c)) {
            return Err(LabelError::Invisible(c));
        }
        Ok(Label(s.to_string()))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// As a string's: messages quote a label with `{:?}`.
impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Deref for Label {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Label {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Maps keyed by label are looked up with any text.
impl Borrow<str> for Label {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<Label> for String {
    fn from(l: Label) -> String {
        l.0
    }
}

impl PartialEq<str> for Label {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Label {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Label {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Label> for String {
    fn eq(&self, other: &Label) -> bool {
        *self == other.0
    }
}

impl PartialEq<Label> for str {
    fn eq(&self, other: &Label) -> bool {
        *self == other.0
    }
}

/// The longest object id, in bytes (a backend may hold fewer).
pub const MAX_ID_BYTES: usize = 32;

/// An object's id (PKCS#11 CKA_ID; on a YubiHSM the 16-bit object id, big-endian): 1 to
/// [`MAX_ID_BYTES`] bytes, written in hex (`"1001"`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(Vec<u8>);

/// A text that is not an [`ObjectId`]: not hex, or not 1 to [`MAX_ID_BYTES`] bytes. The
/// caller's message says which field and quotes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an object id in hex (1 to 32 bytes)")]
pub struct ObjectIdError;

impl ObjectId {
    /// An id of these bytes (1 to [`MAX_ID_BYTES`]).
    pub fn new(bytes: Vec<u8>) -> Result<Self, ObjectIdError> {
        if bytes.is_empty() || bytes.len() > MAX_ID_BYTES {
            return Err(ObjectIdError);
        }
        Ok(ObjectId(bytes))
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for ObjectId {
    type Err = ObjectIdError;

    fn from_str(s: &str) -> Result<Self, ObjectIdError> {
        ObjectId::new(hex::decode(s).map_err(|_| ObjectIdError)?)
    }
}

/// Lower-case hex, as ids are written.
impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

/// As its bytes'.
impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Deref for ObjectId {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for ObjectId {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Maps keyed by id are looked up with any bytes.
impl Borrow<[u8]> for ObjectId {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

/// A text that names no object class a user may choose; it holds the text, for the
/// caller's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not private, public, cert or data")]
pub struct ObjectClassError(pub String);

/// The classes a user names (a script's `type`, the CLI's `--type`): `private`,
/// `public`, `cert`, `data`. `Display` is the class's name for people ("private key").
impl FromStr for ObjectClass {
    type Err = ObjectClassError;

    fn from_str(s: &str) -> Result<Self, ObjectClassError> {
        match s {
            "private" => Ok(ObjectClass::PrivateKey),
            "public" => Ok(ObjectClass::PublicKey),
            "cert" => Ok(ObjectClass::Certificate),
            "data" => Ok(ObjectClass::Data),
            other => Err(ObjectClassError(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_once_when_built() {
        let l: Label = "SRK1_sha256_4096_65537_v3_ca".parse().unwrap();
        assert_eq!(l.to_string(), "SRK1_sha256_4096_65537_v3_ca");
        assert_eq!(format!("{l:?}"), "\"SRK1_sha256_4096_65537_v3_ca\"");
        assert_eq!(&*l, "SRK1_sha256_4096_65537_v3_ca");
        assert!("x".repeat(128).parse::<Label>().is_ok());
        for bad in ["", "a\nb", "tab\there"] {
            assert_eq!(
                bad.parse::<Label>(),
                Err(LabelError::NotPrintable),
                "{bad:?}"
            );
        }
        assert_eq!(
            "x".repeat(129).parse::<Label>(),
            Err(LabelError::NotPrintable)
        );
        let e = "fw\u{202E}gpj.exe".parse::<Label>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "has the invisible character U+202E (bidi control or zero-width): a label must read as what it is"
        );
        // A soft hyphen reads as nothing else: allowed.
        assert!("soft\u{00AD}hyphen".parse::<Label>().is_ok());
    }

    #[test]
    fn ids_are_hex_of_1_to_32_bytes() {
        let id: ObjectId = "1001".parse().unwrap();
        assert_eq!(&*id, &[0x10, 0x01]);
        assert_eq!(id.to_string(), "1001");
        assert_eq!("ABcd".parse::<ObjectId>().unwrap().to_string(), "abcd");
        for bad in ["", "1", "0x10", "zz", &"00".repeat(33)] {
            assert!(bad.parse::<ObjectId>().is_err(), "{bad:?}");
        }
        assert!(ObjectId::new(vec![0; 32]).is_ok());
        assert!(ObjectId::new(vec![]).is_err());
    }

    #[test]
    fn classes_as_users_name_them() {
        assert_eq!("cert".parse(), Ok(ObjectClass::Certificate));
        assert_eq!("private".parse(), Ok(ObjectClass::PrivateKey));
        let e = "key".parse::<ObjectClass>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"key\" is not private, public, cert or data"
        );
    }
}
