//! The connection and the session: opening a device by URI (HTTP connector, USB, the
//! MockHsm), logging in with an authentication key, and what the session is. Objects and
//! keys are the other modules'.

use yubihsm::object::{Filter, Type};
use yubihsm::{Client, Connector, Credentials};

use super::{Error, Result, Target, YubiHsm, YubiUri};
use crate::hsm::TokenInfo;
use crate::secret::Secret;

#[cfg(feature = "mock-hsm")]
pub(super) fn mock_connector() -> Result<Connector> {
    Ok(Connector::mockhsm())
}

#[cfg(not(feature = "mock-hsm"))]
pub(super) fn mock_connector() -> Result<Connector> {
    Err(Error::Unsupported(
        "yubihsm:mock: this build lacks the MockHsm (cargo feature `mock-hsm`, for tests only); use yubihsm:usb or yubihsm:http://HOST:PORT".into(),
    ))
}

impl YubiHsm {
    /// Open the device `uri_rest` (the text after `yubihsm:`) names; no session until a
    /// login.
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

    /// The URI it was opened with.
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

    pub(super) fn open_session(&self, creds: Credentials) -> Result<Client> {
        let id = creds.authentication_key_id;
        // The MockHsm panics on a login with a key it lacks (a device refuses): ask first.
        let fresh = self.fresh_mock && self.client.is_none() && id != 1;
        if fresh || self.mock_key_absent(&[], id) {
            return Err(Error::NoSuchAuthKey { id });
        }
        Client::open(self.connector.clone(), creds, true)
            .map_err(|source| Error::Login { id, source })
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

    /// Whether a session is open.
    pub fn logged_in(&self) -> bool {
        self.client.is_some()
    }

    pub(crate) fn client(&self) -> Result<&Client> {
        self.client.as_ref().ok_or(Error::NotLoggedIn)
    }

    pub(super) fn token_info(&mut self) -> crate::hsm::Result<TokenInfo> {
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
}
