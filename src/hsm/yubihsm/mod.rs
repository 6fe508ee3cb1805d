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

pub mod admin;
pub mod audit;
pub mod caps;
pub mod steps;
pub mod uri;
mod wrap;

use std::fmt;

use yubihsm::object::{self, Filter, Label, Type};
use yubihsm::{asymmetric, Capability, Client, Connector, Credentials, Domain};

use super::{
    Capabilities, DataObject, KeyOptions, NewObject, ObjectClass, ObjectInfo, Selector, Token,
    TokenInfo, UserType, WrapFormat, WrapKeyInfo, WrapKeySpec,
};
use crate::keys::{self, HashAlg, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use crate::secret::Secret;

pub use admin::{DeviceAuthKey, PasswordRole, Rotation, RotationStep, SubStep, WorkingKey};
pub use audit::AuditReport;
pub use steps::check_plan;
pub use uri::{Target, YubiUri};

/// The way that works where the native path cannot.
pub const ALTERNATIVE: &str =
    "use the PKCS#11 backend with Yubico's yubihsm_pkcs11 module (pkcs11:…?module-path=…/yubihsm_pkcs11.so)";

/// Errors of the native backend. Messages name the field, key id or step; never a password.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("yubihsm: URI: {0}")]
    Uri(String),
    #[error("{path}: {message}")]
    Field { path: String, message: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error(
        "authentication key 0x{id:04x}: login failed (wrong password, or no such key): {cause}"
    )]
    Login { id: u16, cause: String },
    #[error("not logged in: log in with an authentication key first")]
    NotLoggedIn,
    #[error("an object with id 0x{id:04x} already exists ({class})")]
    IdExists { id: u16, class: ObjectClass },
    #[error("an object labelled {label:?} already exists ({class})")]
    LabelExists { label: String, class: ObjectClass },
    #[error("no {0} on the device")]
    NotFound(String),
    #[error("YubiHSM {op}: {cause}")]
    Device { op: String, cause: String },
    #[error("{0}")]
    Rotation(Box<admin::RotationError>),
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
            other => super::Error::Backend(other.to_string()),
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

fn device(op: &str) -> impl Fn(yubihsm::client::Error) -> Error + '_ {
    move |e| Error::Device {
        op: op.to_string(),
        cause: e.to_string(),
    }
}

/// One-line refusals for what the crate or the MockHsm cannot do; the planner shows these
/// at `officiant check` time.
pub mod limits {
    use super::ALTERNATIVE;
    use crate::keys::KeyAlgorithm;

    pub fn rsa_pss() -> String {
        format!("RSA-PSS signing is broken in the yubihsm crate 0.42 (inverted length check, non-standard prehash); {ALTERNATIVE}")
    }
    pub fn pkcs1_digest() -> String {
        format!("RSA PKCS#1 v1.5 signing of a digest: the yubihsm crate 0.42 signs only a message it hashes itself with SHA-256; {ALTERNATIVE}")
    }
    pub fn mock_algorithm(alg: KeyAlgorithm) -> String {
        format!("{alg} keys on yubihsm:mock: the MockHsm has only EC P-256 keys; run on a real YubiHSM 2 (yubihsm:usb or yubihsm:http://…) or {ALTERNATIVE}")
    }
    pub fn mock_hash() -> String {
        format!("ECDSA on yubihsm:mock signs SHA-256 digests only; run on a real YubiHSM 2 or {ALTERNATIVE}")
    }
    pub fn mock_audit_log() -> String {
        "audit log on yubihsm:mock: the MockHsm keeps no audit log (it is always empty); read it on a real YubiHSM 2 (yubihsm:usb or yubihsm:http://…)".to_string()
    }
    pub fn device_algorithm(alg: KeyAlgorithm) -> String {
        format!("{alg}: this YubiHSM 2 does not list the algorithm; {ALTERNATIVE}")
    }
    pub fn init_token() -> String {
        "init-token: a YubiHSM 2 has no token to initialize; reset it with yubihsm-shell, then provision it with change-auth-key and put-auth-key steps".to_string()
    }
    pub fn change_pin() -> String {
        "change-pin: a YubiHSM 2 has authentication keys, not PINs; use the change-auth-key step (a safe rotation through a temporary key)".to_string()
    }
    pub fn so_login() -> String {
        "SO login: a YubiHSM 2 has no security officer; log in with an authentication key (yubihsm:…?auth-key=ID)".to_string()
    }
}

/// A step as the planner sees it, for [`check_step`] at `officiant check` time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeStep {
    Generate(KeyAlgorithm),
    Import(KeyAlgorithm),
    Sign(KeyAlgorithm, SignScheme),
    /// A step that needs the device's audit log as evidence.
    ReadAuditLog,
    InitToken,
    ChangePin,
    SoLogin,
}

/// Refuse, before anything is opened, a step the crate or the named device cannot do.
/// Only the URI is known here; a MockHsm served over HTTP is recognized at login.
pub fn check_step(uri: &YubiUri, step: NativeStep) -> Result<()> {
    let mock = uri.target == Target::Mock;
    let mock_alg = |alg: KeyAlgorithm| {
        if mock && alg != KeyAlgorithm::EcP256 {
            Err(Error::Unsupported(limits::mock_algorithm(alg)))
        } else {
            Ok(())
        }
    };
    match step {
        NativeStep::Generate(alg) | NativeStep::Import(alg) => mock_alg(alg),
        NativeStep::Sign(alg, scheme) => match scheme {
            SignScheme::RsaPss(_) => Err(Error::Unsupported(limits::rsa_pss())),
            SignScheme::RsaPkcs1(_) => Err(Error::Unsupported(limits::pkcs1_digest())),
            SignScheme::Ecdsa(h) => {
                mock_alg(alg)?;
                if mock && h != HashAlg::Sha256 {
                    Err(Error::Unsupported(limits::mock_hash()))
                } else {
                    Ok(())
                }
            }
        },
        NativeStep::ReadAuditLog if mock => Err(Error::Unsupported(limits::mock_audit_log())),
        NativeStep::ReadAuditLog => Ok(()),
        NativeStep::InitToken => Err(Error::Unsupported(limits::init_token())),
        NativeStep::ChangePin => Err(Error::Unsupported(limits::change_pin())),
        NativeStep::SoLogin => Err(Error::Unsupported(limits::so_login())),
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

impl YubiHsm {
    pub fn open(uri_rest: &str) -> Result<Self> {
        let uri = YubiUri::parse(uri_rest)?;
        let connector = match &uri.target {
            Target::Http { host, port } => Connector::http(&yubihsm::connector::HttpConfig {
                addr: host.clone(),
                port: *port,
                timeout_ms: 5_000,
            }),
            Target::Usb { serial } => {
                let serial = match serial {
                    Some(s) => Some(s.parse().map_err(|_| {
                        Error::Uri(format!("serial={s:?} is not a YubiHSM serial number"))
                    })?),
                    None => None,
                };
                Connector::usb(&yubihsm::connector::UsbConfig {
                    serial,
                    timeout_ms: yubihsm::connector::UsbConfig::DEFAULT_TIMEOUT_MILLIS,
                })
            }
            Target::Mock => mock_connector()?,
        };
        let fresh_mock = uri.target == Target::Mock;
        let mut h = Self::with_connector(uri, connector);
        h.fresh_mock = fresh_mock;
        Ok(h)
    }

    /// A device behind an existing connector (tests: a MockHsm served over HTTP).
    pub fn with_connector(uri: YubiUri, connector: Connector) -> Self {
        YubiHsm {
            auth_key: uri.auth_key,
            connector,
            client: None,
            creds: None,
            device_algorithms: None,
            mock: uri.target == Target::Mock,
            fresh_mock: false,
            uri,
        }
    }

    pub fn uri(&self) -> &YubiUri {
        &self.uri
    }

    /// True for the MockHsm, also when a test serves it over HTTP: it has no RSA, no
    /// P-384, no audit log, and panics where a device would refuse, so we refuse first.
    pub fn is_mock(&self) -> bool {
        self.mock
    }

    /// The authentication key the session logs in with.
    pub fn auth_key(&self) -> u16 {
        self.auth_key
    }

    /// Choose another authentication key for the next login (the CLI's `--auth-key`).
    pub fn set_auth_key(&mut self, id: u16) {
        if id != self.auth_key {
            self.client = None;
            self.creds = None;
        }
        self.auth_key = id;
    }

    /// Log in with `id` and the password; replaces any open session.
    pub fn login_as(&mut self, id: u16, password: &Secret) -> Result<()> {
        if password.is_empty() {
            return Err(Error::Refused(format!(
                "authentication key 0x{id:04x}: the password is empty"
            )));
        }
        let creds = Credentials::from_password(id, password.expose());
        let client = self.open_session(creds.clone())?;
        if !self.mock {
            // The MockHsm's fixed identity: firmware 2.0.0, serial 0123456789.
            if let Ok(i) = client.device_info() {
                self.mock = (i.major_version, i.minor_version, i.build_version) == (2, 0, 0)
                    && i.serial_number.to_string() == "0123456789";
            }
        }
        self.auth_key = id;
        self.client = Some(client);
        self.creds = Some(creds);
        Ok(())
    }

    fn open_session(&self, creds: Credentials) -> Result<Client> {
        let id = creds.authentication_key_id;
        // The MockHsm panics on a login with a key it lacks (a device refuses): ask first.
        let fresh = self.fresh_mock && self.client.is_none() && id != 1;
        if fresh || self.mock_key_absent(&[], id) {
            return Err(Error::Login {
                id,
                cause: "no such authentication key".into(),
            });
        }
        Client::open(self.connector.clone(), creds, true).map_err(|e| Error::Login {
            id,
            cause: e.to_string(),
        })
    }

    /// On the mock: true unless a live session (ours or one of `others`) sees key `id`.
    pub(crate) fn mock_key_absent(&self, others: &[&Client], id: u16) -> bool {
        if !self.mock {
            return false;
        }
        let filters = [Filter::Id(id), Filter::Type(Type::AuthenticationKey)];
        for c in self.client.iter().chain(others.iter().copied()) {
            if let Ok(found) = c.list_objects(&filters) {
                return found.is_empty();
            }
        }
        // No session to ask: only the very first login, which the caller chose.
        self.client.is_some() || !others.is_empty()
    }

    /// Whether the session is logged in with key `id` and this password (a resumed
    /// rotation asks whether it already finished).
    pub fn session_uses(&self, id: u16, password: &Secret) -> bool {
        match &self.creds {
            Some(c) if self.client.is_some() && c.authentication_key_id == id => {
                let k = yubihsm::authentication::Key::derive_from_password(password.expose());
                c.authentication_key.as_secret_slice() == k.as_secret_slice()
            }
            _ => false,
        }
    }

    pub fn logged_in(&self) -> bool {
        self.client.is_some()
    }

    pub(crate) fn client(&self) -> Result<&Client> {
        self.client.as_ref().ok_or(Error::NotLoggedIn)
    }

    fn algorithms(&mut self) -> Option<&[yubihsm::Algorithm]> {
        if self.is_mock() {
            return None;
        }
        if self.device_algorithms.is_none() {
            if let Ok(info) = self
                .client()
                .and_then(|c| c.device_info().map_err(device("device info")))
            {
                self.device_algorithms = Some(info.algorithms);
            }
        }
        self.device_algorithms.as_deref()
    }

    /// What this device (and the crate) can do on the native path.
    pub fn native_capabilities(&mut self) -> Capabilities {
        let mut c = Capabilities {
            certificates: true,
            data_objects: true,
            auth_keys: true,
            device_audit: true,
            wrap: Some(WrapFormat::YubihsmAesCcm),
            counters: true,
            ..Capabilities::default()
        };
        if self.is_mock() {
            c.generate = vec![KeyAlgorithm::EcP256];
            c.import = vec![KeyAlgorithm::EcP256];
            c.sign = vec![(KeyAlgorithm::EcP256, SignScheme::Ecdsa(HashAlg::Sha256))];
            return c;
        }
        let listed = self.algorithms().map(|a| a.to_vec());
        let algs: Vec<KeyAlgorithm> = KeyAlgorithm::ALL
            .into_iter()
            .filter(|a| match &listed {
                Some(l) => l.contains(&yubihsm::Algorithm::Asymmetric(asym_alg(*a))),
                None => true,
            })
            .collect();
        c.generate = algs.clone();
        c.import = algs.clone();
        for a in algs.into_iter().filter(|a| !a.is_rsa()) {
            for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
                c.sign.push((a, SignScheme::Ecdsa(h)));
            }
        }
        c
    }

    /// Refuse (with the one-line reason) a key algorithm this device cannot create.
    pub fn check_algorithm(&mut self, alg: KeyAlgorithm) -> Result<()> {
        if self.is_mock() {
            if alg != KeyAlgorithm::EcP256 {
                return Err(Error::Unsupported(limits::mock_algorithm(alg)));
            }
            return Ok(());
        }
        if let Some(l) = self.algorithms() {
            if !l.contains(&yubihsm::Algorithm::Asymmetric(asym_alg(alg))) {
                return Err(Error::Unsupported(limits::device_algorithm(alg)));
            }
        }
        Ok(())
    }

    /// Refuse a signature scheme the native path cannot produce.
    pub fn check_sign(&self, alg: KeyAlgorithm, scheme: SignScheme) -> Result<()> {
        match scheme {
            SignScheme::RsaPss(_) => Err(Error::Unsupported(limits::rsa_pss())),
            SignScheme::RsaPkcs1(_) => Err(Error::Unsupported(limits::pkcs1_digest())),
            SignScheme::Ecdsa(h) => {
                if alg.is_rsa() {
                    return Err(Error::Refused(format!(
                        "{} with an {alg} key",
                        scheme.name()
                    )));
                }
                if self.is_mock() && alg != KeyAlgorithm::EcP256 {
                    return Err(Error::Unsupported(limits::mock_algorithm(alg)));
                }
                if self.is_mock() && h != HashAlg::Sha256 {
                    return Err(Error::Unsupported(limits::mock_hash()));
                }
                Ok(())
            }
        }
    }

    /// Domains of the session's own key: new objects go there.
    fn session_domains(&self) -> Result<Domain> {
        let info = self
            .client()?
            .get_object_info(self.auth_key, Type::AuthenticationKey)
            .map_err(device("get object info"))?;
        Ok(info.domains)
    }

    fn find(&self, filters: &[Filter]) -> Result<Vec<object::Entry>> {
        self.client()?
            .list_objects(filters)
            .map_err(device("list objects"))
    }

    fn exists(&self, id: u16, ty: Type) -> Result<bool> {
        Ok(!self.find(&[Filter::Id(id), Filter::Type(ty)])?.is_empty())
    }

    /// Refuse an id or label already taken by an object of type `ty`.
    fn check_free(&self, label: &str, id: u16, ty: Type) -> Result<()> {
        if self.exists(id, ty)? {
            return Err(Error::IdExists {
                id,
                class: class_of(ty, None),
            });
        }
        if !label.is_empty()
            && !self
                .find(&[Filter::Label(label_of(label)?), Filter::Type(ty)])?
                .is_empty()
        {
            return Err(Error::LabelExists {
                label: label.to_string(),
                class: class_of(ty, None),
            });
        }
        Ok(())
    }

    /// The asymmetric key labelled `label`.
    fn key_by_label(&self, label: &str) -> Result<object::Info> {
        caps::check_label("label", label)?;
        let found = self.find(&[
            Filter::Label(label_of(label)?),
            Filter::Type(Type::AsymmetricKey),
        ])?;
        let entry = match found.as_slice() {
            [one] => one,
            [] => return Err(Error::NotFound(format!("key labelled {label:?}"))),
            _ => {
                return Err(Error::Refused(format!(
                    "{} keys are labelled {label:?}; name one by id",
                    found.len()
                )))
            }
        };
        self.client()?
            .get_object_info(entry.object_id, Type::AsymmetricKey)
            .map_err(device("get object info"))
    }

    fn public_key_of(&self, id: u16) -> Result<PublicKey> {
        let pk = self
            .client()?
            .get_public_key(id)
            .map_err(device("get public key"))?;
        public_from_device(pk.algorithm, &pk.bytes)
    }

    /// Generate a key pair at `id` (capability sign-ecdsa for EC; sign-pkcs + sign-pss for
    /// RSA, so Yubico's PKCS#11 module can also sign with it).
    pub fn generate_at(&mut self, alg: KeyAlgorithm, label: &str, id: u16) -> Result<PublicKey> {
        self.generate_at_with(alg, label, id, &KeyOptions::default())
    }

    /// [`Self::generate_at`], with capability exportable-under-wrap when `opts` asks.
    pub fn generate_at_with(
        &mut self,
        alg: KeyAlgorithm,
        label: &str,
        id: u16,
        opts: &KeyOptions,
    ) -> Result<PublicKey> {
        caps::check_label("label", label)?;
        self.check_algorithm(alg)?;
        self.check_free(label, id, Type::AsymmetricKey)?;
        let domains = self.session_domains()?;
        let mut capabilities = sign_caps(alg);
        if opts.exportable_under_wrap {
            capabilities |= Capability::EXPORTABLE_UNDER_WRAP;
        }
        self.client()?
            .generate_asymmetric_key(id, label_of(label)?, domains, capabilities, asym_alg(alg))
            .map_err(device("generate asymmetric key"))?;
        self.public_key_of(id)
    }

    pub fn import_at(&mut self, key: &PrivateKey, label: &str, id: u16) -> Result<PublicKey> {
        caps::check_label("label", label)?;
        let alg = KeyAlgorithm::of(key.public_key()).ok_or_else(|| {
            Error::Unsupported(format!(
                "{}: a YubiHSM 2 takes EC P-256/P-384/P-521 and RSA 2048/3072/4096 keys",
                key.public_key().describe()
            ))
        })?;
        self.check_algorithm(alg)?;
        self.check_free(label, id, Type::AsymmetricKey)?;
        // The device wants the EC scalar, or RSA's primes p‖q, each at full width.
        let bytes: zeroize::Zeroizing<Vec<u8>> = match key {
            PrivateKey::Ec { curve, d, .. } => {
                let n = curve.field_bytes();
                if d.len() > n {
                    return Err(Error::Refused(format!(
                        "{} private scalar is {} bytes",
                        curve.name(),
                        d.len()
                    )));
                }
                let mut v = zeroize::Zeroizing::new(vec![0u8; n]);
                v[n - d.len()..].copy_from_slice(d);
                v
            }
            PrivateKey::Rsa { key, .. } => {
                let half = asym_alg(alg).key_len() / 2;
                let p = strip(&key.p);
                let q = strip(&key.q);
                if p.len() > half || q.len() > half {
                    return Err(Error::Refused(format!(
                        "{alg} primes are longer than {half} bytes"
                    )));
                }
                let mut v = zeroize::Zeroizing::new(vec![0u8; 2 * half]);
                v[half - p.len()..half].copy_from_slice(p);
                v[2 * half - q.len()..].copy_from_slice(q);
                v
            }
        };
        let domains = self.session_domains()?;
        self.client()?
            .put_asymmetric_key(
                id,
                label_of(label)?,
                domains,
                sign_caps(alg),
                asym_alg(alg),
                bytes.to_vec(),
            )
            .map_err(device("put asymmetric key"))?;
        let pk = self.public_key_of(id)?;
        if &pk != key.public_key() {
            return Err(Error::Device {
                op: "put asymmetric key".into(),
                cause: format!(
                    "the device reports a different public key for 0x{id:04x} than the file's"
                ),
            });
        }
        Ok(pk)
    }

    /// Store a certificate (opaque, X.509 algorithm) or data (opaque, data algorithm) at
    /// `id`; a certificate goes under its key's id, as Yubico's PKCS#11 module expects.
    pub fn put_object_at(&mut self, label: &str, id: u16, obj: &NewObject) -> Result<()> {
        caps::check_label("label", label)?;
        let (alg, bytes) = match obj {
            NewObject::Certificate(der) => {
                let cert_key = PublicKey::from_certificate_der(der)?;
                // Under a key's id, the certificate must be that key's.
                if self.exists(id, Type::AsymmetricKey)? && self.public_key_of(id)? != cert_key {
                    return Err(Error::Refused(format!(
                        "the certificate {label:?} is for another key than the one at id 0x{id:04x}"
                    )));
                }
                (yubihsm::opaque::Algorithm::X509Certificate, der.clone())
            }
            NewObject::Data { value, .. } => (yubihsm::opaque::Algorithm::Data, value.clone()),
        };
        if bytes.is_empty() {
            return Err(Error::Refused(format!("object {label:?} is empty")));
        }
        if self.exists(id, Type::Opaque)? {
            return Err(Error::IdExists {
                id,
                class: ObjectClass::Opaque,
            });
        }
        let domains = self.session_domains()?;
        self.client()?
            .put_opaque(
                id,
                label_of(label)?,
                domains,
                Capability::empty(),
                alg,
                bytes,
            )
            .map_err(device("put opaque"))?;
        Ok(())
    }

    /// Every object the session can see, with its YubiHSM details.
    pub fn objects(&self) -> Result<Vec<(object::Info, ObjectInfo)>> {
        let client = self.client()?;
        let mut out = Vec::new();
        for e in self.find(&[])? {
            let info = client
                .get_object_info(e.object_id, e.object_type)
                .map_err(device("get object info"))?;
            let label = info.label.try_as_str().unwrap_or("").to_string();
            let mut public_key = None;
            let mut class = class_of(info.object_type, Some(info.algorithm));
            match (info.object_type, info.algorithm) {
                (Type::AsymmetricKey, _) => public_key = self.public_key_of(info.object_id).ok(),
                (
                    Type::Opaque,
                    yubihsm::Algorithm::Opaque(yubihsm::opaque::Algorithm::X509Certificate),
                ) => {
                    public_key = client
                        .get_opaque(info.object_id)
                        .ok()
                        .and_then(|der| PublicKey::from_certificate_der(&der).ok());
                    class = ObjectClass::Certificate;
                }
                _ => {}
            }
            // PKCS#11's names for what the device says: a key never leaves the device in
            // the clear; "local" is origin generated (not imported, not restored from a
            // wrapped backup); "never extractable" is generated and not exportable under
            // wrap (Yubico's PKCS#11 module reads them the same way).
            let key = info.object_type == Type::AsymmetricKey;
            let generated = info.origin == object::Origin::Generated;
            let exportable = info
                .capabilities
                .contains(Capability::EXPORTABLE_UNDER_WRAP);
            let flags = super::KeyFlags {
                sensitive: key.then_some(true),
                always_sensitive: key.then_some(generated),
                extractable: key.then_some(exportable),
                never_extractable: key.then_some(generated && !exportable),
                local: key.then_some(generated),
                ..Default::default()
            };
            out.push((
                info.clone(),
                ObjectInfo {
                    class,
                    label,
                    id: info.object_id.to_be_bytes().to_vec(),
                    public_key,
                    flags,
                },
            ));
        }
        Ok(out)
    }

    pub fn sign_with(&mut self, label: &str, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>> {
        let info = self.key_by_label(label)?;
        let alg = match info.algorithm {
            yubihsm::Algorithm::Asymmetric(a) => key_alg(a),
            _ => None,
        }
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "key {label:?}: algorithm {:?} is not one officiant signs with",
                info.algorithm
            ))
        })?;
        self.check_sign(alg, scheme)?;
        if digest.len() != scheme.hash().len() {
            return Err(Error::Refused(format!(
                "digest is {} bytes; {} needs {}",
                digest.len(),
                scheme.hash().name(),
                scheme.hash().len()
            )));
        }
        let der = self
            .client()?
            .sign_ecdsa_prehash_raw(info.object_id, digest)
            .map_err(device("sign ECDSA"))?;
        let curve = alg
            .curve()
            .ok_or_else(|| Error::Refused(format!("{alg} is not EC")))?;
        Ok(keys::ecdsa_to_fixed(curve, &der)?)
    }

    /// RSA PKCS#1 v1.5 over SHA-256 of `message` (the crate hashes it itself, so this
    /// cannot sign a precomputed digest; the crate marks it untested). The MockHsm has no
    /// RSA: refused there with the line naming the way that works.
    pub fn sign_pkcs1_sha256_message(&mut self, label: &str, message: &[u8]) -> Result<Vec<u8>> {
        let info = self.key_by_label(label)?;
        let alg = match info.algorithm {
            yubihsm::Algorithm::Asymmetric(a) => key_alg(a),
            _ => None,
        };
        match alg {
            Some(a) if a.is_rsa() => {}
            _ => {
                return Err(Error::Refused(format!(
                    "key {label:?} is not an RSA key; PKCS#1 v1.5 needs one"
                )))
            }
        }
        if self.is_mock() {
            return Err(Error::Unsupported(limits::mock_algorithm(
                alg.unwrap_or(KeyAlgorithm::Rsa2048),
            )));
        }
        let sig = self
            .client()?
            .sign_rsa_pkcs1v15_sha256(info.object_id, message)
            .map_err(device("sign PKCS#1 v1.5"))?;
        Ok(sig.as_ref().to_vec())
    }

    /// Opaque data objects (not certificates) labelled exactly `label`, or all of them.
    fn opaque_data(&self, label: Option<&str>) -> Result<Vec<object::Info>> {
        let mut filters = vec![
            Filter::Type(Type::Opaque),
            Filter::Algorithm(yubihsm::Algorithm::Opaque(yubihsm::opaque::Algorithm::Data)),
        ];
        if let Some(l) = label {
            filters.push(Filter::Label(label_of(l)?));
        }
        let client = self.client()?;
        let mut out = Vec::new();
        for e in self.find(&filters)? {
            out.push(
                client
                    .get_object_info(e.object_id, Type::Opaque)
                    .map_err(device("get object info"))?,
            );
        }
        Ok(out)
    }

    /// An opaque object id nobody uses yet, drawn at random from the upper half (keys
    /// and their certificates are usually numbered from the bottom).
    fn free_opaque_id(&self) -> Result<u16> {
        use rand_core::RngCore;
        let used: Vec<u16> = self
            .find(&[Filter::Type(Type::Opaque)])?
            .into_iter()
            .map(|e| e.object_id)
            .collect();
        for _ in 0..64 {
            let id = 0x8000 | (rand_core::OsRng.next_u32() as u16 & 0x7fff);
            if id != 0xffff && !used.contains(&id) {
                return Ok(id);
            }
        }
        Err(Error::Refused(
            "no free opaque object id found in the upper half of the id space".into(),
        ))
    }

    /// Store `value` as an opaque data object at a free id.
    fn put_opaque_data(&self, label: &str, value: &[u8]) -> Result<u16> {
        caps::check_label("label", label)?;
        if value.is_empty() {
            return Err(Error::Refused(format!("object {label:?} is empty")));
        }
        let id = self.free_opaque_id()?;
        let domains = self.session_domains()?;
        self.client()?
            .put_opaque(
                id,
                label_of(label)?,
                domains,
                Capability::empty(),
                yubihsm::opaque::Algorithm::Data,
                value.to_vec(),
            )
            .map_err(device("put opaque"))?;
        Ok(id)
    }

    /// The counter objects labelled `label`, with their values.
    fn counters(&self, label: &str) -> Result<Vec<(u16, u64)>> {
        let mut out = Vec::new();
        for info in self.opaque_data(Some(label))? {
            let bytes = self
                .client()?
                .get_opaque(info.object_id)
                .map_err(device("get opaque"))?;
            let v = super::counter_value(label, &bytes).map_err(|e| Error::Device {
                op: "read counter".into(),
                cause: e.to_string(),
            })?;
            out.push((info.object_id, v));
        }
        Ok(out)
    }

    /// Delete objects by label (and class), refusing to remove the last key able to manage
    /// authentication keys or the session's own key.
    pub fn delete_selected(&mut self, sel: &Selector) -> Result<usize> {
        caps::check_label("label", &sel.label)?;
        let want = label_of(&sel.label)?;
        let mut targets = Vec::new();
        for e in self.find(&[Filter::Label(want)])? {
            let class = class_of(e.object_type, None);
            let matches = match &sel.class {
                None => true,
                Some(ObjectClass::PrivateKey) | Some(ObjectClass::PublicKey) => {
                    e.object_type == Type::AsymmetricKey
                }
                Some(ObjectClass::Certificate)
                | Some(ObjectClass::Data)
                | Some(ObjectClass::Opaque) => e.object_type == Type::Opaque,
                Some(c) => *c == class,
            };
            if matches {
                targets.push((e.object_id, e.object_type));
            }
        }
        let auth: Vec<u16> = targets
            .iter()
            .filter(|(_, t)| *t == Type::AuthenticationKey)
            .map(|(id, _)| *id)
            .collect();
        if !auth.is_empty() {
            self.ensure_admin_remains(&auth)?;
        }
        for (id, ty) in &targets {
            self.client()?
                .delete_object(*id, *ty)
                .map_err(device("delete object"))?;
        }
        Ok(targets.len())
    }
}

#[cfg(feature = "mock-hsm")]
fn mock_connector() -> Result<Connector> {
    Ok(Connector::mockhsm())
}

#[cfg(not(feature = "mock-hsm"))]
fn mock_connector() -> Result<Connector> {
    Err(Error::Unsupported(
        "yubihsm:mock: this build lacks the MockHsm (cargo feature `mock-hsm`, for tests only); use yubihsm:usb or yubihsm:http://HOST:PORT".into(),
    ))
}

fn strip(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[i..]
}

fn label_of(label: &str) -> Result<Label> {
    caps::check_label("label", label)?;
    Label::from_bytes(label.as_bytes()).map_err(|e| Error::Field {
        path: "label".into(),
        message: e.to_string(),
    })
}

fn sign_caps(alg: KeyAlgorithm) -> Capability {
    if alg.is_rsa() {
        Capability::SIGN_PKCS | Capability::SIGN_PSS
    } else {
        Capability::SIGN_ECDSA
    }
}

/// The device's name for each of our key algorithms: the one table (exhaustive, so a new
/// algorithm cannot be forgotten); [`key_alg`] reads it backwards.
fn asym_alg(alg: KeyAlgorithm) -> asymmetric::Algorithm {
    match alg {
        KeyAlgorithm::EcP256 => asymmetric::Algorithm::EcP256,
        KeyAlgorithm::EcP384 => asymmetric::Algorithm::EcP384,
        KeyAlgorithm::EcP521 => asymmetric::Algorithm::EcP521,
        KeyAlgorithm::Rsa2048 => asymmetric::Algorithm::Rsa2048,
        KeyAlgorithm::Rsa3072 => asymmetric::Algorithm::Rsa3072,
        KeyAlgorithm::Rsa4096 => asymmetric::Algorithm::Rsa4096,
    }
}

fn key_alg(a: asymmetric::Algorithm) -> Option<KeyAlgorithm> {
    KeyAlgorithm::ALL.into_iter().find(|k| asym_alg(*k) == a)
}

/// The device gives EC points as x‖y and RSA as the modulus (exponent 65537).
fn public_from_device(alg: asymmetric::Algorithm, bytes: &[u8]) -> Result<PublicKey> {
    let k = key_alg(alg)
        .ok_or_else(|| Error::Unsupported(format!("public key of algorithm {alg:?}")))?;
    Ok(match k.curve() {
        Some(curve) => {
            let mut p = Vec::with_capacity(1 + bytes.len());
            p.push(0x04);
            p.extend_from_slice(bytes);
            PublicKey::ec(curve, &p)?
        }
        None => PublicKey::rsa(bytes, &[1, 0, 1])?,
    })
}

fn class_of(ty: Type, alg: Option<yubihsm::Algorithm>) -> ObjectClass {
    match ty {
        Type::AsymmetricKey => ObjectClass::PrivateKey,
        Type::AuthenticationKey => ObjectClass::AuthKey,
        Type::Opaque => match alg {
            Some(yubihsm::Algorithm::Opaque(yubihsm::opaque::Algorithm::X509Certificate)) => {
                ObjectClass::Certificate
            }
            _ => ObjectClass::Opaque,
        },
        Type::WrapKey => ObjectClass::WrapKey,
        Type::HmacKey => ObjectClass::Other("HMAC key".into()),
        Type::Template => ObjectClass::Other("template".into()),
        Type::OtpAeadKey => ObjectClass::Other("OTP AEAD key".into()),
    }
}

impl Token for YubiHsm {
    fn info(&mut self) -> super::Result<TokenInfo> {
        let serial = match (self.is_mock(), self.client()) {
            (false, Ok(c)) => c
                .device_info()
                .map(|i| i.serial_number.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        Ok(TokenInfo {
            backend: self.uri.to_string(),
            label: if self.is_mock() {
                "MockHsm".into()
            } else {
                "YubiHSM 2".into()
            },
            serial,
            manufacturer: "Yubico".into(),
            model: if self.is_mock() {
                "MockHsm (yubihsm crate test double; not a security boundary)".into()
            } else {
                "YubiHSM 2".into()
            },
            initialized: true,
            rehearsal: self.is_mock(),
            min_pin_len: 1,
            max_pin_len: 0,
        })
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
        label: &str,
        id: &[u8],
    ) -> super::Result<PublicKey> {
        self.generate_key_with(alg, label, id, &KeyOptions::default())
    }

    fn generate_key_with(
        &mut self,
        alg: KeyAlgorithm,
        label: &str,
        id: &[u8],
        opts: &KeyOptions,
    ) -> super::Result<PublicKey> {
        let id = caps::id_from_bytes(id)?;
        Ok(self.generate_at_with(alg, label, id, opts)?)
    }

    fn put_wrap_key(&mut self, spec: &WrapKeySpec, key: &Secret) -> super::Result<WrapKeySpec> {
        Ok(self.put_wrap_key_at(spec, key)?)
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

    fn import_key(&mut self, key: &PrivateKey, label: &str, id: &[u8]) -> super::Result<PublicKey> {
        let id = caps::id_from_bytes(id)?;
        Ok(self.import_at(key, label, id)?)
    }

    fn put_object(&mut self, label: &str, id: &[u8], object: &NewObject) -> super::Result<()> {
        let id = caps::id_from_bytes(id)?;
        Ok(self.put_object_at(label, id, object)?)
    }

    fn list_objects(&mut self) -> super::Result<Vec<ObjectInfo>> {
        Ok(self.objects()?.into_iter().map(|(_, o)| o).collect())
    }

    fn read_certificate(&mut self, label: &str) -> super::Result<Option<Vec<u8>>> {
        caps::check_label("label", label)?;
        let found = self.find(&[
            Filter::Label(label_of(label)?),
            Filter::Type(Type::Opaque),
            Filter::Algorithm(yubihsm::Algorithm::Opaque(
                yubihsm::opaque::Algorithm::X509Certificate,
            )),
        ])?;
        let Some(e) = found.first() else {
            return Ok(None);
        };
        Ok(Some(
            self.client()?
                .get_opaque(e.object_id)
                .map_err(device("get opaque"))?,
        ))
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
        let mut out = Vec::new();
        for info in self.opaque_data(None)? {
            let label = info.label.try_as_str().unwrap_or("").to_string();
            if !label.starts_with(prefix) {
                continue;
            }
            let value = self
                .client()?
                .get_opaque(info.object_id)
                .map_err(device("get opaque"))?;
            // Any key with delete-opaque can remove it: nothing here is immutable.
            out.push(DataObject {
                label,
                value,
                immutable: false,
            });
        }
        Ok(out)
    }

    fn put_data(&mut self, label: &str, value: &[u8], _immutable: bool) -> super::Result<()> {
        // A YubiHSM 2 cannot keep an opaque object from deletion (capabilities say
        // `immutable_data: false`): the object is stored plainly.
        caps::check_label("label", label)?;
        if !self
            .find(&[Filter::Label(label_of(label)?), Filter::Type(Type::Opaque)])?
            .is_empty()
        {
            return Err(Error::LabelExists {
                label: label.to_string(),
                class: ObjectClass::Opaque,
            }
            .into());
        }
        self.put_opaque_data(label, value)?;
        Ok(())
    }

    fn read_counter(&mut self, label: &str) -> super::Result<Option<u64>> {
        Ok(self.counters(label)?.into_iter().map(|(_, v)| v).max())
    }

    fn write_counter(&mut self, label: &str, expected: u64, value: u64) -> super::Result<()> {
        let old = self.counters(label)?;
        let now = old.iter().map(|(_, v)| *v).max();
        super::check_counter_step(label, now, expected, value)?;
        // An opaque object cannot be rewritten: put the new value first, then delete the
        // old. A crash between the two leaves both, and a read takes the larger.
        let new = self.put_opaque_data(label, &value.to_be_bytes())?;
        for (id, _) in old.into_iter().filter(|(id, _)| *id != new) {
            self.client()?
                .delete_object(id, Type::Opaque)
                .map_err(device("delete object"))?;
        }
        // Anyone else's new object now means two writers counted from the same value:
        // refuse (a use lost), never both.
        if self.counters(label)?.iter().any(|(id, _)| *id != new) {
            return Err(Error::Refused(format!(
                "counter {label:?} was written by another session at the same time; this write does not count"
            ))
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_map_both_ways() {
        for a in KeyAlgorithm::ALL {
            assert_eq!(key_alg(asym_alg(a)), Some(a));
        }
        assert_eq!(key_alg(asymmetric::Algorithm::EcK256), None);
    }

    #[test]
    fn check_step_refuses_before_opening() {
        let mock = YubiUri::parse("mock").unwrap();
        let usb = YubiUri::parse("usb").unwrap();
        assert!(check_step(&mock, NativeStep::Generate(KeyAlgorithm::EcP256)).is_ok());
        let e = check_step(&mock, NativeStep::Generate(KeyAlgorithm::Rsa4096)).unwrap_err();
        assert_eq!(e.to_string(), limits::mock_algorithm(KeyAlgorithm::Rsa4096));
        assert!(check_step(&usb, NativeStep::Generate(KeyAlgorithm::Rsa4096)).is_ok());
        assert!(check_step(&usb, NativeStep::Import(KeyAlgorithm::Rsa4096)).is_ok());
        let pss = NativeStep::Sign(KeyAlgorithm::Rsa4096, SignScheme::RsaPss(HashAlg::Sha256));
        assert_eq!(
            check_step(&usb, pss).unwrap_err().to_string(),
            limits::rsa_pss()
        );
        assert!(check_step(&usb, NativeStep::ReadAuditLog).is_ok());
        assert_eq!(
            check_step(&mock, NativeStep::ReadAuditLog)
                .unwrap_err()
                .to_string(),
            limits::mock_audit_log()
        );
    }

    #[cfg(not(feature = "mock-hsm"))]
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
