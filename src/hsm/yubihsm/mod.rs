//! YubiHSM 2 native backend through the `yubihsm` crate 0.42.
//!
//! URIs (see [`uri`]): `yubihsm:http://HOST:PORT`, `yubihsm:usb[?serial=N]`,
//! `yubihsm:mock` (tests; our `mock-hsm` feature), each with `?auth-key=ID` (default 1).
//! Login is `Token::login(UserType::User, password)` with that authentication key.
//!
//! Beyond the [`Token`] trait this backend does what PKCS#11 cannot express
//! ([`admin`], [`audit`]): authentication keys with capabilities and domains, a safe
//! auth-key rotation, and the device's audit log. What the crate or the MockHsm cannot do
//! is refused with one line naming the way that works ([`limits`]).
//!
//! # Layout
//!
//! This file holds the [`YubiHsm`] handle, its errors and its `Token` impl; the work is
//! in the module of each job: `session` (the connector, login and the session's key),
//! `algorithms` (what the device and the crate can do), `objects` (finding, storing,
//! listing and deleting objects), `keygen` (generating and importing keys), `sign`,
//! `data` (opaque data objects and counters), `wrap` (wrap keys and backup), [`admin`]
//! and [`audit`]; [`limits`] says what the crate or the MockHsm cannot do, [`steps`]
//! checks a planned script against it, [`caps`] maps capability names and ids.

pub mod admin;
mod algorithms;
pub mod audit;
pub mod caps;
mod data;
mod keygen;
pub mod limits;
mod objects;
mod session;
mod sign;
pub mod steps;
pub mod uri;
mod wrap;

use std::fmt;

use yubihsm::{Client, Connector, Credentials};

use super::{
    Capabilities, DataObject, KeyOptions, NewObject, ObjectClass, ObjectInfo, Selector, Token,
    TokenInfo, UserType, WrapKeyInfo, WrapKeySpec,
};
use crate::hsm::{Label, ObjectId};
use crate::keys::{self, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use crate::secret::Secret;

pub use admin::{DeviceAuthKey, PasswordRole, Rotation, RotationStep, SubStep, WorkingKey};
pub use audit::AuditReport;
pub use limits::{check_step, NativeStep};
pub use steps::check_plan;
pub use uri::{Target, YubiUri};

/// The way that works where the native path cannot.
pub const ALTERNATIVE: &str =
    "use the PKCS#11 backend with Yubico's yubihsm_pkcs11 module (pkcs11:…?module-path=…/yubihsm_pkcs11.so)";

/// Errors of the native backend. Messages name the field, key id or step; never a password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `yubihsm:` URI that does not parse.
    #[error("yubihsm: URI: {0}")]
    Uri(String),
    /// A field (of a script step, a command) that does not hold a valid value.
    #[error("{path}: {message}")]
    Field {
        /// The field's path (`capabilities[2]`).
        path: String,
        /// What is wrong with its value.
        message: String,
    },
    /// What the crate, the MockHsm or this device cannot do, with the way that works
    /// ([`limits`]).
    #[error("{0}")]
    Unsupported(String),
    /// Refused as asked: an empty password, a mismatch, a rule of the device.
    #[error("refused: {0}")]
    Refused(String),
    #[error(
        "authentication key 0x{id:04x}: login failed (wrong password, or no such key): {source}"
    )]
    /// The device refused the login.
    Login {
        /// The authentication key.
        id: u16,
        /// The crate's error.
        #[source]
        source: yubihsm::client::Error,
    },
    /// A login refused before the device is asked (the MockHsm panics on a key it lacks).
    #[error(
        "authentication key 0x{id:04x}: login failed (wrong password, or no such key): no such authentication key"
    )]
    NoSuchAuthKey {
        /// The authentication key.
        id: u16,
    },
    /// The operation needs a session.
    #[error("not logged in: log in with an authentication key first")]
    NotLoggedIn,
    /// An object of the type already has the id.
    #[error("an object with id 0x{id:04x} already exists ({class})")]
    IdExists {
        /// The object id.
        id: u16,
        /// The class of the object that has it.
        class: ObjectClass,
    },
    /// An object of the type already has the label.
    #[error("an object labelled {label:?} already exists ({class})")]
    LabelExists {
        /// The label.
        label: String,
        /// The class of the object that has it.
        class: ObjectClass,
    },
    /// The object asked for is not on the device; says what.
    #[error("no {0} on the device")]
    NotFound(String),
    /// A device call failed: the operation, and the crate's error.
    #[error("YubiHSM {op}: {source}")]
    Device {
        /// The device operation ("put asymmetric key").
        op: String,
        /// The crate's error.
        #[source]
        source: yubihsm::client::Error,
    },
    /// The device answered, but not as it must (a public key, a counter's bytes).
    #[error("YubiHSM {op}: {detail}")]
    DeviceAnswer {
        /// The device operation.
        op: String,
        /// What was wrong with the answer.
        detail: String,
    },
    /// A rotation failed part-way: which sub-step, and the key that works now.
    #[error("{0}")]
    Rotation(Box<admin::RotationError>),
    /// A key's bytes or parameters are not usable.
    #[error("{0}")]
    Key(#[from] keys::Error),
}

impl From<Error> for super::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Unsupported(m) => super::Error::Unsupported(m),
            Error::NotLoggedIn => super::Error::NotLoggedIn(
                "log in with an authentication key (yubihsm: …?auth-key=ID) first".into(),
            ),
            Error::IdExists { id, class } => super::Error::IdExists {
                id: format!("{id:04x}"),
                class,
            },
            Error::LabelExists { label, class } => super::Error::LabelExists { label, class },
            Error::NotFound(what) => super::Error::NotFound { what },
            Error::Key(k) => super::Error::Key(k),
            Error::Rotation(r) => super::Error::PartDone(r),
            Error::Field { .. } | Error::Refused(_) | Error::Uri(_) => {
                super::Error::Refused(e.to_string())
            }
            other => super::Error::YubiHsm(Box::new(other)),
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

fn device(op: &str) -> impl Fn(yubihsm::client::Error) -> Error + '_ {
    move |e| Error::Device {
        op: op.to_string(),
        source: e,
    }
}

/// An opened YubiHSM 2 (or MockHsm). Holds at most one authenticated session.
pub struct YubiHsm {
    uri: YubiUri,
    connector: Connector,
    /// The authentication key the session uses (or will use).
    auth_key: u16,
    client: Option<Client>,
    /// Derived session credentials of the logged-in key (never the password), kept to
    /// prove after a failed rotation which key still works.
    creds: Option<Credentials>,
    /// Algorithms the device lists (None until asked, or on the mock).
    device_algorithms: Option<Vec<yubihsm::Algorithm>>,
    /// A MockHsm, directly or served over HTTP (recognized by its fixed device info).
    mock: bool,
    /// A MockHsm this handle created: it has only the factory key 0x0001 until a session
    /// puts more.
    fresh_mock: bool,
}

impl fmt::Debug for YubiHsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("YubiHsm")
            .field("uri", &self.uri.to_string())
            .field("auth_key", &self.auth_key)
            .field("logged_in", &self.client.is_some())
            .finish()
    }
}

/// Open the device a `yubihsm:` URI names (the text after `yubihsm:`).
pub fn open(uri_rest: &str) -> super::Result<Box<dyn Token>> {
    Ok(Box::new(YubiHsm::open(uri_rest)?))
}

impl Token for YubiHsm {
    fn info(&mut self) -> super::Result<TokenInfo> {
        self.token_info()
    }

    fn capabilities(&mut self) -> super::Result<Capabilities> {
        Ok(self.native_capabilities())
    }

    fn init_token(&mut self, _label: &str, _so: &Secret, _user: &Secret) -> super::Result<()> {
        Err(Error::Unsupported(limits::init_token()).into())
    }

    fn login(&mut self, user: UserType, pin: &Secret) -> super::Result<()> {
        if user == UserType::So {
            return Err(Error::Unsupported(limits::so_login()).into());
        }
        let id = self.auth_key;
        Ok(self.login_as(id, pin)?)
    }

    fn logout(&mut self) -> super::Result<()> {
        self.client = None;
        self.creds = None;
        Ok(())
    }

    fn change_pin(&mut self, _user: UserType, _old: &Secret, _new: &Secret) -> super::Result<()> {
        Err(Error::Unsupported(limits::change_pin()).into())
    }

    fn generate_key(
        &mut self,
        alg: KeyAlgorithm,
        label: &Label,
        id: &ObjectId,
    ) -> super::Result<PublicKey> {
        self.generate_key_with(alg, label, id, &KeyOptions::default())
    }

    fn generate_key_with(
        &mut self,
        alg: KeyAlgorithm,
        label: &Label,
        id: &ObjectId,
        opts: &KeyOptions,
    ) -> super::Result<PublicKey> {
        let id = caps::id_from_bytes(id)?;
        Ok(self.generate_at_with(alg, label, id, opts)?)
    }

    fn put_wrap_key(&mut self, spec: &WrapKeySpec, key: &Secret) -> super::Result<WrapKeySpec> {
        Ok(self.put_wrap_key_at(spec, key)?)
    }

    fn wrap_key_spec(&mut self, spec: &WrapKeySpec) -> super::Result<WrapKeySpec> {
        Ok(self.resolve_wrap_spec(spec)?)
    }

    fn wrap_key(&mut self, label: &str) -> super::Result<Option<WrapKeyInfo>> {
        Ok(self.wrap_key_by_label(label)?)
    }

    fn delete_wrap_key(&mut self, label: &str) -> super::Result<bool> {
        Ok(self.delete_wrap_key_labelled(label)?)
    }

    fn export_wrapped(&mut self, wrap_label: &str, label: &str) -> super::Result<Vec<u8>> {
        Ok(self.export_wrapped_key(wrap_label, label)?)
    }

    fn import_wrapped(
        &mut self,
        wrap_label: &str,
        blob: &[u8],
        label: &str,
        id: &[u8],
        public: &PublicKey,
    ) -> super::Result<()> {
        let id = caps::id_from_bytes(id)?;
        Ok(self.import_wrapped_key(wrap_label, blob, label, id, public)?)
    }

    fn import_key(
        &mut self,
        key: &PrivateKey,
        label: &Label,
        id: &ObjectId,
    ) -> super::Result<PublicKey> {
        let id = caps::id_from_bytes(id)?;
        Ok(self.import_at(key, label, id)?)
    }

    fn put_object(
        &mut self,
        label: &Label,
        id: &ObjectId,
        object: &NewObject,
    ) -> super::Result<()> {
        let id = caps::id_from_bytes(id)?;
        Ok(self.put_object_at(label, id, object)?)
    }

    fn list_objects(&mut self) -> super::Result<Vec<ObjectInfo>> {
        Ok(self.objects()?.into_iter().map(|(_, o)| o).collect())
    }

    fn read_certificate(&mut self, label: &str) -> super::Result<Option<Vec<u8>>> {
        self.certificate(label)
    }

    fn public_key(&mut self, label: &str) -> super::Result<PublicKey> {
        let info = self.key_by_label(label)?;
        Ok(self.public_key_of(info.object_id)?)
    }

    fn sign(&mut self, label: &str, scheme: SignScheme, digest: &[u8]) -> super::Result<Vec<u8>> {
        Ok(self.sign_with(label, scheme, digest)?)
    }

    fn delete_object(&mut self, sel: &Selector) -> super::Result<usize> {
        Ok(self.delete_selected(sel)?)
    }

    fn use_auth_key(&mut self, id: u16) -> super::Result<()> {
        self.set_auth_key(id);
        Ok(())
    }

    fn auth_key(&mut self, id: u16) -> super::Result<Option<crate::hsm::admin::AuthKeySpec>> {
        match self.auth_key_spec(id) {
            Ok(k) => Ok(Some(caps::neutral_key(&k))),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn session_auth_key(&mut self) -> Option<u16> {
        self.logged_in().then_some(self.auth_key)
    }

    fn session_uses(&mut self, password: &Secret) -> bool {
        YubiHsm::session_uses(self, self.auth_key, password)
    }

    fn put_auth_key(
        &mut self,
        spec: &crate::hsm::admin::AuthKeySpec,
        password: &Secret,
    ) -> super::Result<()> {
        Ok(YubiHsm::put_auth_key(
            self,
            &caps::device_key(spec),
            password,
        )?)
    }

    fn rotate_auth_key(
        &mut self,
        r: &crate::hsm::admin::Rotation<'_>,
    ) -> super::Result<Vec<SubStep>> {
        let rotation = Rotation {
            temp_id: r.temp_id,
            temp_password: r.temp_password,
            new_password: r.new_password,
            replacement: r.replacement.as_ref().map(caps::device_key),
        };
        Ok(self.change_auth_key(&rotation)?)
    }

    fn set_force_audit(&mut self, on: bool) -> super::Result<bool> {
        YubiHsm::set_force_audit(self, on)?;
        Ok(self.force_audit()?)
    }

    fn read_device_audit(&mut self) -> Option<super::Result<AuditReport>> {
        self.logged_in()
            .then(|| self.read_audit_log(true).map_err(super::Error::from))
    }

    fn read_data(&mut self, prefix: &str) -> super::Result<Vec<DataObject>> {
        self.data_objects(prefix)
    }

    fn put_data(&mut self, label: &str, value: &[u8], _immutable: bool) -> super::Result<()> {
        self.store_data(label, value, _immutable)
    }

    fn read_counter(&mut self, label: &str) -> super::Result<Option<u64>> {
        Ok(self.counters(label)?.into_iter().map(|(_, v)| v).max())
    }

    fn write_counter(&mut self, label: &str, expected: u64, value: u64) -> super::Result<()> {
        self.move_counter(label, expected, value)
    }
}

// Only a build without the MockHsm can show its refusal.
#[cfg(all(test, not(feature = "mock-hsm")))]
mod tests {
    use super::*;

    #[test]
    fn mock_needs_the_feature() {
        let e = open("mock")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("lacks the MockHsm (cargo feature `mock-hsm`"),
            "{e}"
        );
    }
}
