//! The `Token` trait and one module per backend. A backend says what it supports
//! ([`Capabilities`]); the planner refuses a step it cannot do before anything happens.

pub mod admin;
pub mod names;
pub mod pkcs11;
pub mod sim;
pub mod uri;
pub mod wrap;
pub mod yubihsm;

use std::fmt;

use crate::keys::{self, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use crate::secret::Secret;

pub use names::{Label, ObjectId};
pub use uri::BackendUri;
pub use wrap::{CheckValue, WrapFormat, WrapKeyInfo, WrapKeySpec};

/// What a token operation can fail with, on any backend. Messages are one line; none holds
/// a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token refused the PIN.
    #[error("wrong {user} PIN{}", retries_note(*.retries_left))]
    WrongPin {
        /// Whose PIN.
        user: UserType,
        /// Tries left before the PIN locks, where the token says (PKCS#11 reports only
        /// "last one").
        retries_left: Option<u32>,
    },
    /// Too many wrong PINs: the token refuses every PIN of this user now.
    #[error("{user} PIN is locked (too many wrong attempts); {hint}")]
    PinLocked {
        /// Whose PIN.
        user: UserType,
        /// Who can unlock it, and at what cost.
        hint: String,
    },
    /// The operation needs a login first; says which operation.
    #[error("not logged in: {0}")]
    NotLoggedIn(String),
    /// The token has no label, SO PIN or user PIN yet (init-token first).
    #[error("token is not initialized: {0}")]
    NotInitialized(String),
    /// An object of the class already has the label (labels are unique within a class).
    #[error("an object labelled {label:?} already exists on the token ({class})")]
    LabelExists {
        /// The label asked for.
        label: String,
        /// The class of the object that has it.
        class: ObjectClass,
    },
    /// An object of the class already has the id.
    #[error("an object with id {id} already exists on the token ({class})")]
    IdExists {
        /// The id asked for, hex.
        id: String,
        /// The class of the object that has it.
        class: ObjectClass,
    },
    /// The object asked for is not on the token.
    #[error("no {what} on the token")]
    NotFound {
        /// What was looked for ("private key labelled \"k\"").
        what: String,
    },
    /// The backend (or its library, or the token) cannot do this; says what, and where
    /// possible what can.
    #[error("unsupported by this backend: {0}")]
    Unsupported(String),
    /// The token or Officiant refused the request as asked (a bad length, a mismatch, a
    /// rule).
    #[error("refused: {0}")]
    Refused(String),
    /// A key's bytes or parameters are not usable ([`keys::Error`]).
    #[error("{0}")]
    Key(#[from] keys::Error),
    /// A backend failure that is our own finding (no library error beneath it).
    #[error("backend: {0}")]
    Backend(String),
    /// A PKCS#11 call failed: what we were doing, and cryptoki's error (the function and
    /// its `CKR_*` code, or why the module could not be called).
    #[error("backend: {what}: {}", pkcs11::describe(source))]
    Pkcs11 {
        /// What we were doing ("signing with \"k\"").
        what: String,
        /// cryptoki's error.
        #[source]
        source: Box<cryptoki::error::Error>,
    },
    /// A PKCS#11 URI that does not parse or names no module.
    #[error("backend: {0}")]
    Pkcs11Uri(#[source] pkcs11::UriError),
    /// A YubiHSM 2 call failed (the device's or the crate's error is its source).
    #[error("backend: {0}")]
    YubiHsm(#[source] Box<yubihsm::Error>),
    /// A DER value for a token could not be encoded or decoded.
    #[error("backend: {what}: {source}")]
    Der {
        /// What was being encoded or decoded.
        what: String,
        /// The DER library's error.
        #[source]
        source: der::Error,
    },
    /// The rehearsal token's store: a file it could not read, write or lock.
    #[error("backend: {what}: {source}")]
    StoreIo {
        /// Which file and what was done with it.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The rehearsal token's store: written atomically, and that failed.
    #[error("backend: {0}")]
    StoreWrite(#[source] crate::output::Error),
    /// The rehearsal token's store is not JSON of its format.
    #[error("backend: rehearsal store {file} is corrupt ({source}); remove the directory to start afresh")]
    StoreCorrupt {
        /// The store file.
        file: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The rehearsal token's store could not be encoded.
    #[error("backend: encoding the rehearsal store: {0}")]
    StoreEncode(#[source] serde_json::Error),
    /// The rehearsal token's software crypto failed (key generation, encoding, signing).
    #[error("backend: rehearsal token: {what}: {source}")]
    SimCrypto {
        /// What the rehearsal token was doing.
        what: String,
        /// The crypto library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The rehearsal token's RFC 5649 key wrap failed (aes-kw's error, kept as it is: the
    /// crate implements `std::error::Error` only with its `std` feature).
    #[error("backend: rehearsal token: key wrap: {0}")]
    SimKeyWrap(aes_kw::Error),
    /// An operation of several device calls that failed part-way; the source says which
    /// call failed and what state the device was left in.
    #[error(transparent)]
    PartDone(Box<dyn std::error::Error + Send + Sync + 'static>),
}

fn retries_note(r: Option<u32>) -> String {
    match r {
        Some(0) => " (no retries left: the PIN is now locked)".into(),
        Some(1) => " (1 retry left before the PIN locks)".into(),
        Some(n) => format!(" ({n} retries left before the PIN locks)"),
        None => String::new(),
    }
}

/// A token operation's result.
pub type Result<T> = std::result::Result<T, Error>;

/// Who logs in.
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

/// What kind of object a token holds, in backend-neutral terms.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectClass {
    /// The private half of a key pair (PKCS#11 CKO_PRIVATE_KEY; YubiHSM asymmetric key).
    PrivateKey,
    /// The public half of a key pair (PKCS#11 CKO_PUBLIC_KEY).
    PublicKey,
    /// An X.509 certificate.
    Certificate,
    /// A data object (PKCS#11 CKO_DATA).
    Data,
    /// YubiHSM opaque object (certificates are stored as opaque with the X.509 algorithm).
    Opaque,
    /// YubiHSM authentication key.
    AuthKey,
    /// An AES key that wraps other keys for backup (PKCS#11: CKO_SECRET_KEY with
    /// CKA_WRAP; YubiHSM: a wrap key).
    WrapKey,
    /// A class Officiant does not use, by the backend's name for it.
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
            ObjectClass::WrapKey => f.write_str("wrap key"),
            ObjectClass::Other(s) => f.write_str(s),
        }
    }
}

/// The attributes an officer checks on a key (PKCS#11 names; `None` = not reported).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyFlags {
    /// The key's secret is never revealed in the clear (CKA_SENSITIVE).
    pub sensitive: Option<bool>,
    /// It has been sensitive since it was made (CKA_ALWAYS_SENSITIVE).
    pub always_sensitive: Option<bool>,
    /// It may leave the token, wrapped (CKA_EXTRACTABLE).
    pub extractable: Option<bool>,
    /// It has never been extractable (CKA_NEVER_EXTRACTABLE).
    pub never_extractable: Option<bool>,
    /// It was generated on the token, not imported (CKA_LOCAL).
    pub local: Option<bool>,
    /// It is shown only after a login (CKA_PRIVATE).
    pub private: Option<bool>,
}

/// One object as a token lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// What kind of object.
    pub class: ObjectClass,
    /// Its label (bytes that are not UTF-8 shown replaced).
    pub label: String,
    /// CKA_ID bytes (YubiHSM: the 16-bit object id, big-endian).
    pub id: Vec<u8>,
    /// For key objects (both halves) and certificates: the public key.
    pub public_key: Option<PublicKey>,
    /// Its key attributes (keys), or only private and local (others).
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
    /// The token's label; empty when it is not initialized.
    pub label: String,
    /// The token's serial number as it reports it (may be empty).
    pub serial: String,
    /// Who made it, as it reports.
    pub manufacturer: String,
    /// Its model, as it reports.
    pub model: String,
    /// It has a label and an SO PIN.
    pub initialized: bool,
    /// True for the built-in rehearsal token: not a security boundary.
    pub rehearsal: bool,
    /// The shortest PIN it takes, in bytes.
    pub min_pin_len: usize,
    /// The longest PIN it takes, in bytes (0: not said).
    pub max_pin_len: usize,
}

/// What a token can do, read before a ceremony starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Key algorithms `generate_key` makes.
    pub generate: Vec<KeyAlgorithm>,
    /// Key algorithms `import_key` accepts.
    pub import: Vec<KeyAlgorithm>,
    /// (key algorithm, scheme) pairs the token signs with.
    pub sign: Vec<(KeyAlgorithm, SignScheme)>,
    /// `init_token` works (PKCS#11, the rehearsal token).
    pub init_token: bool,
    /// There is a security officer to log in as.
    pub so_login: bool,
    /// Certificates can be stored (`put_object`).
    pub certificates: bool,
    /// Data objects can be stored (`put_object`, `put_data`).
    pub data_objects: bool,
    /// Authentication keys with capabilities and domains ([`admin`]).
    pub auth_keys: bool,
    /// A device audit log read into the transcript after each step.
    pub device_audit: bool,
    /// Key backup under a wrap key, in this format (None: the backend cannot).
    pub wrap: Option<WrapFormat>,
    /// Putting a wrap key needs the SO logged in (PKCS#11: only the SO may set
    /// CKA_TRUSTED, which keys marked CKA_WRAP_WITH_TRUSTED require of their wrap key).
    pub wrap_key_needs_so: bool,
    /// Data objects the token itself keeps from being modified or destroyed
    /// ([`Token::put_data`] with `immutable`; PKCS#11 CKA_MODIFIABLE and CKA_DESTROYABLE
    /// false). False where the token cannot promise it (YubiHSM: any key with
    /// delete-opaque removes an opaque object).
    pub immutable_data: bool,
    /// Counters ([`Token::read_counter`], [`Token::write_counter`]).
    pub counters: bool,
}

impl Capabilities {
    /// Whether the token signs with `alg` keys in `scheme`.
    pub fn can_sign(&self, alg: KeyAlgorithm, scheme: SignScheme) -> bool {
        self.sign.contains(&(alg, scheme))
    }
}

/// How a new key pair may be used beyond signing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// The private key may leave the token encrypted under a wrap key, for backup, and
    /// never otherwise (PKCS#11: CKA_EXTRACTABLE with CKA_WRAP_WITH_TRUSTED, still
    /// sensitive; YubiHSM: capability exportable-under-wrap). Never the default: a key
    /// generated without it can never be exported.
    pub exportable_under_wrap: bool,
}

/// A non-key object to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewObject {
    /// DER X.509 certificate (PKCS#11: CKO_CERTIFICATE with subject, issuer, serial;
    /// YubiHSM: opaque with the X.509 algorithm).
    Certificate(Vec<u8>),
    /// PKCS#11 CKO_DATA with CKA_APPLICATION.
    Data {
        /// CKA_APPLICATION: who the data is for.
        application: String,
        /// The bytes, stored as they are.
        value: Vec<u8>,
    },
}

/// A data object as [`Token::read_data`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataObject {
    /// Its label.
    pub label: String,
    /// Its bytes.
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
    /// The label of the objects meant.
    pub label: String,
    /// `None`: every object with the label (a key pair's two halves and its certificate).
    pub class: Option<ObjectClass>,
}

/// One token opened through one backend. Objects are named by label; labels and ids are
/// unique within a class, but a certificate may share its key's label and id (as CST and
/// Yubico's PKCS#11 module expect).
///
/// What makes a named object takes a [`Label`] and an [`ObjectId`], checked when they were
/// built ([`names`]); a backend checks only its own limits. What looks an object up
/// takes its label as text: an object another tool made may carry any label.
pub trait Token: Send {
    /// What the token says about itself (label, serial, model, PIN lengths).
    fn info(&mut self) -> Result<TokenInfo>;
    /// What the token can do; a plan is checked against it before the first step.
    fn capabilities(&mut self) -> Result<Capabilities>;

    /// Initialize (or re-initialize) the token: sets its label, SO PIN and user PIN.
    fn init_token(&mut self, label: &str, so_pin: &Secret, user_pin: &Secret) -> Result<()>;
    /// An init-token interrupted by a crash, run again: the token labelled `label` that
    /// the interrupted call left is accepted when the SO PIN opens it and it holds no
    /// objects, and its user PIN is set (again). `Ok(Some(note))` says what was found;
    /// `Ok(None)`: nothing to resume here, initialize as usual. Backends whose
    /// [`Token::init_token`] is one atomic change need nothing else.
    fn resume_init_token(
        &mut self,
        label: &str,
        so_pin: &Secret,
        user_pin: &Secret,
    ) -> Result<Option<String>> {
        let _ = (label, so_pin, user_pin);
        Ok(None)
    }
    /// Log in as `user`; a wrong PIN says how many tries are left where the token tells.
    fn login(&mut self, user: UserType, pin: &Secret) -> Result<()>;
    /// End the login (nothing if none).
    fn logout(&mut self) -> Result<()>;
    /// Change the PIN of `user` (who must be the one logged in, or will be logged in with
    /// `old`).
    fn change_pin(&mut self, user: UserType, old: &Secret, new: &Secret) -> Result<()>;

    /// Generate a signing key pair (private half sensitive and never extractable).
    fn generate_key(
        &mut self,
        alg: KeyAlgorithm,
        label: &Label,
        id: &ObjectId,
    ) -> Result<PublicKey>;
    /// Generate a signing key pair with `opts` (sensitive always; exportable only under a
    /// wrap key, and only when `opts` says so). A backend without key backup refuses the
    /// option rather than ignore it.
    fn generate_key_with(
        &mut self,
        alg: KeyAlgorithm,
        label: &Label,
        id: &ObjectId,
        opts: &KeyOptions,
    ) -> Result<PublicKey> {
        if opts.exportable_under_wrap {
            return Err(Error::Unsupported(
                "keys exportable under wrap on this backend".into(),
            ));
        }
        self.generate_key(alg, label, id)
    }
    /// Import a key pair from a file's private key (sensitive on the token from then on).
    fn import_key(&mut self, key: &PrivateKey, label: &Label, id: &ObjectId) -> Result<PublicKey>;
    /// Store a certificate or data object (see [`NewObject`]).
    fn put_object(&mut self, label: &Label, id: &ObjectId, object: &NewObject) -> Result<()>;
    /// Every object the session can see, with public keys and key flags.
    fn list_objects(&mut self) -> Result<Vec<ObjectInfo>>;
    /// The DER value of the certificate labelled `label`, if the token has one.
    fn read_certificate(&mut self, label: &str) -> Result<Option<Vec<u8>>> {
        let _ = label;
        Err(Error::Unsupported("reading certificates".into()))
    }
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

    /// Put an AES wrap key (16, 24 or 32 bytes) on the token: it wraps and unwraps keys
    /// and does nothing else. Returns the spec as stored (the backend fills in what the
    /// spec leaves zero). See [`Capabilities::wrap_key_needs_so`] for who must be logged in.
    fn put_wrap_key(&mut self, spec: &WrapKeySpec, key: &Secret) -> Result<WrapKeySpec> {
        let _ = (spec, key);
        Err(Error::Unsupported("wrap keys on this backend".into()))
    }
    /// The spec [`Token::put_wrap_key`] would store for `spec` (what the backend fills in
    /// for the fields the spec leaves zero), putting nothing: the custodians' shares carry
    /// it, and they get their shares before the token gets the key. The default is what
    /// PKCS#11 tokens and the rehearsal token store: label and id, the rest zero.
    fn wrap_key_spec(&mut self, spec: &WrapKeySpec) -> Result<WrapKeySpec> {
        Ok(WrapKeySpec::new(&spec.label, spec.id))
    }
    /// The wrap key labelled `label`, if the token has one.
    fn wrap_key(&mut self, label: &str) -> Result<Option<WrapKeyInfo>> {
        let _ = label;
        Err(Error::Unsupported("wrap keys on this backend".into()))
    }
    /// Delete the wrap key labelled `label` (and anything the backend keeps beside it);
    /// false if there was none.
    fn delete_wrap_key(&mut self, label: &str) -> Result<bool> {
        let _ = label;
        Err(Error::Unsupported("wrap keys on this backend".into()))
    }
    /// After a restore that keeps the wrap key labelled `label`: leave it able to wrap
    /// only. PKCS#11 turns CKA_UNWRAP off (its wrap key is a public object, usable
    /// without a login); a backend whose every use needs a login has nothing to do.
    fn seal_wrap_key(&mut self, label: &str) -> Result<()> {
        let _ = label;
        Ok(())
    }
    /// The private key labelled `label`, encrypted under the wrap key `wrap_label`, in
    /// the backend's [`WrapFormat`]. Refused for a key not generated exportable.
    fn export_wrapped(&mut self, wrap_label: &str, label: &str) -> Result<Vec<u8>> {
        let _ = (wrap_label, label);
        Err(Error::Unsupported(
            "export under wrap on this backend".into(),
        ))
    }
    /// Import a key [`Token::export_wrapped`] made, as `label`/`id`, with `public` its
    /// public half as recorded at backup (PKCS#11 stores it as the public key object; a
    /// YubiHSM restores label and id from the blob and they must be these).
    fn import_wrapped(
        &mut self,
        wrap_label: &str,
        blob: &[u8],
        label: &str,
        id: &[u8],
        public: &PublicKey,
    ) -> Result<()> {
        let _ = (wrap_label, blob, label, id, public);
        Err(Error::Unsupported(
            "import under wrap on this backend".into(),
        ))
    }

    // Administrative operations only some backends have ([`admin`]). The defaults
    // refuse; `Capabilities` says which a backend has, so a plan is refused before
    // anything runs.

    /// Log in (at the next `login`) with authentication key `id` instead of the default.
    fn use_auth_key(&mut self, id: u16) -> Result<()> {
        Err(Error::Unsupported(format!(
            "authentication key {id}: only yubihsm: backends have authentication keys"
        )))
    }
    /// The authentication key `id`, if the token has one.
    fn auth_key(&mut self, id: u16) -> Result<Option<admin::AuthKeySpec>> {
        Err(Error::Unsupported(format!(
            "authentication key {id:04x}: this backend has no authentication keys"
        )))
    }
    /// The authentication key the session logged in with.
    fn session_auth_key(&mut self) -> Option<u16> {
        None
    }
    /// Whether the session is logged in with `password` (a resumed rotation asks whether
    /// it already finished).
    fn session_uses(&mut self, _password: &Secret) -> bool {
        false
    }
    /// Put an authentication key (backends with [`admin`] operations); the default refuses.
    fn put_auth_key(&mut self, spec: &admin::AuthKeySpec, _password: &Secret) -> Result<()> {
        Err(Error::Unsupported(format!(
            "put-auth-key {:04x}: this backend has no authentication keys",
            spec.id
        )))
    }
    /// Rotate the session's own authentication key safely; returns the sub-steps.
    fn rotate_auth_key(&mut self, _r: &admin::Rotation<'_>) -> Result<Vec<admin::SubStep>> {
        Err(Error::Unsupported(
            "change-auth-key: this backend has no authentication keys".into(),
        ))
    }
    /// Turn the device's force-audit option on or off; returns it as read back.
    fn set_force_audit(&mut self, _on: bool) -> Result<bool> {
        Err(Error::Unsupported(
            "set-audit: this backend has no device audit log".into(),
        ))
    }
    /// The device's own audit log, read (and acknowledged) after a step. `None`: the
    /// backend keeps none, or the session cannot read it now.
    fn read_device_audit(&mut self) -> Option<Result<admin::AuditReport>> {
        None
    }

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
}

/// Check a planned script against the rules of the backend a URI names, before anything
/// is opened: what the backend (or its library, or a test double) cannot do, and the
/// limits on labels and ids it has.
pub fn check_plan(
    uri: &BackendUri,
    steps: &[admin::PlannedStep],
) -> std::result::Result<(), admin::Refusal> {
    match uri {
        BackendUri::YubiHsm(u) => yubihsm::check_plan(u, steps),
        // PKCS#11 and the rehearsal token have no authentication keys or device log.
        BackendUri::Sim(_) | BackendUri::Pkcs11(_) => {
            for s in steps {
                if let admin::PlannedOp::PutAuthKey
                | admin::PlannedOp::ChangeAuthKey { .. }
                | admin::PlannedOp::SetAudit = s.op
                {
                    return Err(admin::Refusal {
                        step: s.index,
                        field: "kind".into(),
                        message: format!(
                            "{} needs the YubiHSM native backend (yubihsm:usb or yubihsm:http://HOST:PORT), not {uri}",
                            match s.op {
                                admin::PlannedOp::PutAuthKey => "put-auth-key",
                                admin::PlannedOp::SetAudit => "set-audit",
                                _ => "change-auth-key",
                            }
                        ),
                    });
                }
            }
            Ok(())
        }
    }
}

/// The rules of a plan that hold on any backend able to run it, checked without one: a
/// rotation must not take away a capability a later step needs.
pub fn check_plan_anywhere(
    steps: &[admin::PlannedStep],
) -> std::result::Result<(), admin::Refusal> {
    yubihsm::steps::check_lockout(steps)
}

/// A token a backend could open, for an operator to choose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSummary {
    /// The token's label.
    pub label: String,
    /// Its serial number.
    pub serial: String,
    /// Its model.
    pub model: String,
    /// It has a label and an SO PIN.
    pub initialized: bool,
}

/// The tokens to choose from when a URI leaves the choice open: a PKCS#11 URI that names
/// no token, with a module that shows several. Empty otherwise (the URI names one device).
pub fn tokens_to_choose(uri: &BackendUri) -> Result<Vec<TokenSummary>> {
    match uri {
        BackendUri::Pkcs11(rest) => {
            let named = pkcs11::uri::Pkcs11Uri::parse(rest)
                .map(|u| u.names_token())
                .unwrap_or(true);
            if named {
                return Ok(Vec::new());
            }
            let mut found: Vec<TokenSummary> = pkcs11::tokens(rest)?
                .into_iter()
                .filter(|t| t.initialized)
                .collect();
            // Slot numbers move (SoftHSM renumbers after C_InitToken); labels read well.
            found.sort_by(|a, b| (&a.label, &a.serial).cmp(&(&b.label, &b.serial)));
            Ok(if found.len() > 1 { found } else { Vec::new() })
        }
        BackendUri::Sim(_) | BackendUri::YubiHsm(_) => Ok(Vec::new()),
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
