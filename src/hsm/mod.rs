//! The `Token` trait and one module per backend. A backend says what it supports
//! ([`Capabilities`]); the planner refuses a step it cannot do before anything happens.

pub mod pkcs11;
pub mod sim;
pub mod uri;
pub mod yubihsm;

use std::fmt;

use crate::keys::{self, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use crate::secret::Secret;

pub use uri::BackendUri;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("wrong {user} PIN{}", retries_note(*.retries_left))]
    WrongPin {
        user: UserType,
        retries_left: Option<u32>,
    },
    #[error("{user} PIN is locked (too many wrong attempts); {hint}")]
    PinLocked { user: UserType, hint: String },
    #[error("not logged in: {0}")]
    NotLoggedIn(String),
    #[error("token is not initialized: {0}")]
    NotInitialized(String),
    #[error("an object labelled {label:?} already exists on the token ({class})")]
    LabelExists { label: String, class: ObjectClass },
    #[error("an object with id {id} already exists on the token ({class})")]
    IdExists { id: String, class: ObjectClass },
    #[error("no {what} on the token")]
    NotFound { what: String },
    #[error("unsupported by this backend: {0}")]
    Unsupported(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Key(#[from] keys::Error),
    #[error("backend: {0}")]
    Backend(String),
}

fn retries_note(r: Option<u32>) -> String {
    match r {
        Some(0) => " (no retries left: the PIN is now locked)".into(),
        Some(1) => " (1 retry left before the PIN locks)".into(),
        Some(n) => format!(" ({n} retries left before the PIN locks)"),
        None => String::new(),
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserType {
    /// The normal user (PKCS#11 CKU_USER; YubiHSM: an authentication key).
    User,
    /// The security officer (PKCS#11 CKU_SO).
    So,
}

impl fmt::Display for UserType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserType::User => "user",
            UserType::So => "SO",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectClass {
    PrivateKey,
    PublicKey,
    Certificate,
    Data,
    /// YubiHSM opaque object (certificates are stored as opaque with the X.509 algorithm).
    Opaque,
    /// YubiHSM authentication key.
    AuthKey,
    Other(String),
}

impl fmt::Display for ObjectClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectClass::PrivateKey => f.write_str("private key"),
            ObjectClass::PublicKey => f.write_str("public key"),
            ObjectClass::Certificate => f.write_str("certificate"),
            ObjectClass::Data => f.write_str("data"),
            ObjectClass::Opaque => f.write_str("opaque"),
            ObjectClass::AuthKey => f.write_str("authentication key"),
            ObjectClass::Other(s) => f.write_str(s),
        }
    }
}

/// The attributes an officer checks on a key (PKCS#11 names; `None` = not reported).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyFlags {
    pub sensitive: Option<bool>,
    pub always_sensitive: Option<bool>,
    pub extractable: Option<bool>,
    pub never_extractable: Option<bool>,
    pub local: Option<bool>,
    pub private: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub class: ObjectClass,
    pub label: String,
    /// CKA_ID bytes (YubiHSM: the 16-bit object id, big-endian).
    pub id: Vec<u8>,
    /// For key objects (both halves) and certificates: the public key.
    pub public_key: Option<PublicKey>,
    pub flags: KeyFlags,
}

impl ObjectInfo {
    /// "EC P-256", "RSA 4096", or empty for non-key objects.
    pub fn key_type(&self) -> String {
        self.public_key
            .as_ref()
            .map(|k| k.describe())
            .unwrap_or_default()
    }
}

/// What a backend reports about itself and the token it opened.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// The backend URI with any secret removed.
    pub backend: String,
    pub label: String,
    pub serial: String,
    pub manufacturer: String,
    pub model: String,
    pub initialized: bool,
    /// True for the built-in rehearsal token: not a security boundary.
    pub rehearsal: bool,
    pub min_pin_len: usize,
    pub max_pin_len: usize,
}

/// What a token can do, read before a ceremony starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub generate: Vec<KeyAlgorithm>,
    /// Key algorithms `import_key` accepts.
    pub import: Vec<KeyAlgorithm>,
    /// (key algorithm, scheme) pairs the token signs with.
    pub sign: Vec<(KeyAlgorithm, SignScheme)>,
    pub init_token: bool,
    pub so_login: bool,
    pub certificates: bool,
    pub data_objects: bool,
    /// Data objects the token itself keeps from being modified or destroyed
    /// ([`Token::put_data`] with `immutable`; PKCS#11 CKA_MODIFIABLE and CKA_DESTROYABLE
    /// false). False where the token cannot promise it (YubiHSM: any key with
    /// delete-opaque removes an opaque object).
    pub immutable_data: bool,
    /// Counters ([`Token::read_counter`], [`Token::write_counter`]).
    pub counters: bool,
}

impl Capabilities {
    pub fn can_sign(&self, alg: KeyAlgorithm, scheme: SignScheme) -> bool {
        self.sign.contains(&(alg, scheme))
    }
}

/// A non-key object to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewObject {
    /// DER X.509 certificate (PKCS#11: CKO_CERTIFICATE with subject, issuer, serial;
    /// YubiHSM: opaque with the X.509 algorithm).
    Certificate(Vec<u8>),
    /// PKCS#11 CKO_DATA with CKA_APPLICATION.
    Data { application: String, value: Vec<u8> },
}

/// A data object as [`Token::read_data`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataObject {
    pub label: String,
    pub value: Vec<u8>,
    /// The token reports that it keeps this object from being modified or destroyed
    /// (always false on a token without [`Capabilities::immutable_data`]).
    pub immutable: bool,
}

/// A counter's value as the backends store it: 8 bytes, big-endian.
pub(crate) fn counter_value(label: &str, bytes: &[u8]) -> Result<u64> {
    let b: [u8; 8] = bytes.try_into().map_err(|_| {
        Error::Backend(format!(
            "object {label:?} holds {} bytes, not a counter (8 bytes)",
            bytes.len()
        ))
    })?;
    Ok(u64::from_be_bytes(b))
}

/// The checks before a counter write: it holds `expected` (absent: 0) and `value` is
/// above it.
pub(crate) fn check_counter_step(
    label: &str,
    now: Option<u64>,
    expected: u64,
    value: u64,
) -> Result<()> {
    let now = now.unwrap_or(0);
    if now != expected {
        return Err(Error::Refused(format!(
            "counter {label:?} is at {now}, not {expected}: another session wrote it since it was read"
        )));
    }
    if value <= now {
        return Err(Error::Refused(format!(
            "counter {label:?} is at {now}; a counter only goes up (asked for {value})"
        )));
    }
    Ok(())
}

/// Which objects a `delete_object` or lookup means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    pub label: String,
    /// `None`: every object with the label (a key pair's two halves and its certificate).
    pub class: Option<ObjectClass>,
}

/// One token opened through one backend. Objects are named by label; labels and ids are
/// unique within a class, but a certificate may share its key's label and id (as CST and
/// Yubico's PKCS#11 module expect).
pub trait Token: Send {
    fn info(&mut self) -> Result<TokenInfo>;
    fn capabilities(&mut self) -> Result<Capabilities>;

    /// Initialize (or re-initialize) the token: sets its label, SO PIN and user PIN.
    fn init_token(&mut self, label: &str, so_pin: &Secret, user_pin: &Secret) -> Result<()>;
    fn login(&mut self, user: UserType, pin: &Secret) -> Result<()>;
    fn logout(&mut self) -> Result<()>;
    /// Change the PIN of `user` (who must be the one logged in, or will be logged in with
    /// `old`).
    fn change_pin(&mut self, user: UserType, old: &Secret, new: &Secret) -> Result<()>;

    /// Generate a signing key pair (private half sensitive and never extractable).
    fn generate_key(&mut self, alg: KeyAlgorithm, label: &str, id: &[u8]) -> Result<PublicKey>;
    fn import_key(&mut self, key: &PrivateKey, label: &str, id: &[u8]) -> Result<PublicKey>;
    fn put_object(&mut self, label: &str, id: &[u8], object: &NewObject) -> Result<()>;
    fn list_objects(&mut self) -> Result<Vec<ObjectInfo>>;
    /// The public key of the key pair labelled `label`.
    fn public_key(&mut self, label: &str) -> Result<PublicKey>;
    /// Sign a digest (already hashed with `scheme.hash()`). ECDSA returns fixed r‖s.
    fn sign(&mut self, label: &str, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>>;
    /// Sign a whole message. The default hashes here and signs the digest; a token that
    /// can only hash inside (PKCS#11 hash-and-sign mechanisms) does that instead.
    fn sign_message(&mut self, label: &str, scheme: SignScheme, message: &[u8]) -> Result<Vec<u8>> {
        self.sign(label, scheme, &scheme.hash().digest(message))
    }
    /// Delete the objects `sel` names; returns how many were deleted.
    fn delete_object(&mut self, sel: &Selector) -> Result<usize>;

    // Data objects and counters: what the approval stage keeps on the token (a policy
    // nobody can change, use counters the signer cannot roll back). Small and generic;
    // what they hold is `crate::approvals`' business.

    /// The public data objects (PKCS#11 CKO_DATA, YubiHSM opaque data) whose label starts
    /// with `prefix`, with their values. Needs no login where the token shows public
    /// objects without one.
    fn read_data(&mut self, prefix: &str) -> Result<Vec<DataObject>> {
        let _ = prefix;
        Err(Error::Unsupported("data objects".into()))
    }
    /// Store a public data object labelled `label` (the label must be free). With
    /// `immutable`, the token is asked to keep it from being modified or destroyed, which
    /// it does where [`Capabilities::immutable_data`] says so.
    fn put_data(&mut self, label: &str, value: &[u8], immutable: bool) -> Result<()> {
        let _ = (label, value, immutable);
        Err(Error::Unsupported("data objects".into()))
    }
    /// The counter labelled `label` (a private object: the user logged in), or `None`
    /// before its first write.
    fn read_counter(&mut self, label: &str) -> Result<Option<u64>> {
        let _ = label;
        Err(Error::Unsupported("counters".into()))
    }
    /// Move the counter labelled `label` from `expected` (what it holds now; 0 before
    /// its first write) up to `value`, creating it if needed. Refused when it holds
    /// anything but `expected`, or when `value` is not above it: of two sessions that
    /// read the same value, at most one moves it. A crash during the write leaves the
    /// old or the new value, never no counter.
    fn write_counter(&mut self, label: &str, expected: u64, value: u64) -> Result<()> {
        let _ = (label, expected, value);
        Err(Error::Unsupported("counters".into()))
    }

    /// The YubiHSM native backend's own operations (authentication keys, audit log), where
    /// this token is one.
    fn yubihsm(&mut self) -> Option<&mut yubihsm::YubiHsm> {
        None
    }
}

/// A key pair on an opened token, as a [`keys::Signer`]: what `pki` and the image formats
/// sign with, without knowing which backend holds the key.
pub struct TokenKey<'t> {
    token: &'t mut dyn Token,
    label: String,
    public: PublicKey,
}

impl<'t> TokenKey<'t> {
    /// Find the key pair labelled `label` and read its public half. A key the token's
    /// approval policy puts under a quorum is refused: it signs only through
    /// `crate::signing::SigningKey` with an approved request.
    pub fn open(token: &'t mut dyn Token, label: &str) -> Result<Self> {
        let public = token.public_key(label)?;
        crate::approvals::authorize(token, label, None)
            .map_err(|e| Error::Refused(format!("key {label:?}: {e}")))?;
        Ok(TokenKey {
            token,
            label: label.to_string(),
            public,
        })
    }
}

impl keys::Signer for TokenKey<'_> {
    fn label(&self) -> &str {
        &self.label
    }
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn sign_digest(
        &mut self,
        scheme: SignScheme,
        digest: &[u8],
    ) -> std::result::Result<Vec<u8>, keys::SignError> {
        self.token
            .sign(&self.label, scheme, digest)
            .map_err(|e| keys::SignError::Key {
                label: self.label.clone(),
                source: Box::new(e),
            })
    }
}

/// Open the backend a URI names. `token_label` selects a token where the URI names none.
pub fn open(uri: &BackendUri, token_label: Option<&str>) -> Result<Box<dyn Token>> {
    match uri {
        BackendUri::Sim(dir) => sim::open(dir),
        BackendUri::Pkcs11(u) => pkcs11::open(u, token_label),
        BackendUri::YubiHsm(u) => yubihsm::open(u),
    }
}
