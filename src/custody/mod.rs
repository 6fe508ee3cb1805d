//! Key custody: a wrap key split among T-of-N custodians, keys backed up under it, and a
//! restore onto the same or another token from any T shares.
//!
//! Both faces (and, later, the ceremony steps) call the three services here; they take
//! an opened token and return a report with nothing secret in it:
//! - [`wrap_key::generate_wrap_key`]: draw an AES-256 key, put it on the token, split it;
//!   returns the shares (for the face to hand to custodians) and the key's check value;
//! - [`backup::backup`]: one wrapped file per key plus `manifest.json` (labels, ids,
//!   algorithms, public keys, the wrap key's check value) in an out dir;
//! - [`restore::restore`]: rebuild the wrap key from shares, check it against the
//!   manifest before anything is created, put it, import every key, prove each restored
//!   key by a signature the manifest's public key verifies, delete the wrap key.
//!
//! Formats: [`shamir`] (shares as Yubico's tools write them), [`payload`] (what the
//! shares carry), [`manifest`] (the backup's index). The wrap key's check value is
//! defined in `crate::hsm::wrap`. Those three are pure; only the services touch the
//! token and files.
//!
//! Must not touch: the terminal, the transcript (the caller records the report), and
//! any secret in an error, a report or a log: shares and the wrap key live in zeroizing
//! buffers and leave only as share files or to the face that hands them out.

pub mod backup;
pub mod manifest;
pub mod payload;
pub mod restore;
pub mod shamir;
pub mod wrap_key;

use crate::hsm::{self, Token, UserType};
use crate::secret::Secret;

/// Errors of the custody services. They name the key, file or share; never a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shares are malformed, too few, or do not fit together.
    #[error(transparent)]
    Shares(#[from] shamir::Error),
    /// The shares' payload (wrap key and its description) does not decode.
    #[error(transparent)]
    Payload(#[from] payload::Error),
    /// The backup's `manifest.json` is missing or malformed.
    #[error(transparent)]
    Manifest(#[from] manifest::Error),
    /// The token refused or failed an operation.
    #[error("{0}")]
    Token(#[from] hsm::Error),
    /// A share, key or manifest file could not be written (or already exists).
    #[error(transparent)]
    Output(#[from] crate::output::Error),
    /// The service will not go on: wrong check value, an object already there, a restored
    /// key that does not sign as its manifest says; the message names it.
    #[error("{0}")]
    Refused(String),
}

/// The custody services' result.
pub type Result<T> = std::result::Result<T, Error>;

/// The PINs a service may log in with when a step needs another user than the session
/// has (PKCS#11: the SO puts a trusted wrap key, the user imports keys). `None`: the
/// caller has logged in already, and the service does not switch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Logins<'a> {
    /// The user PIN, to switch to the user (importing keys).
    pub user: Option<&'a Secret>,
    /// The security officer PIN, to switch to the SO (putting a trusted wrap key).
    pub so: Option<&'a Secret>,
}

impl Logins<'_> {
    /// Log in as `who` if a PIN for it was given; `needed` says whether going on without
    /// one is an error (and why).
    fn login(&self, token: &mut dyn Token, who: UserType, needed: Option<&str>) -> Result<()> {
        let pin = match who {
            UserType::User => self.user,
            UserType::So => self.so,
        };
        match (pin, needed) {
            (Some(p), _) => Ok(token.login(who, p)?),
            (None, Some(why)) => Err(Error::Refused(format!(
                "{why} needs the {who} logged in: give the {who} PIN"
            ))),
            (None, None) => Ok(()),
        }
    }
}

/// The backend's wrap format, or a refusal naming the backend.
fn wrap_format(token: &mut dyn Token) -> Result<hsm::WrapFormat> {
    let caps = token.capabilities()?;
    caps.wrap.ok_or_else(|| {
        Error::Token(hsm::Error::Unsupported(
            "backing keys up under a wrap key: the token has no AES key wrap (CKM_AES_KEY_WRAP_PAD)"
                .into(),
        ))
    })
}

/// A label as a file name: letters, digits, `.`, `_` and `-` kept, anything else `_`.
pub fn file_stem(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Never a hidden file, `.` or `..`.
    if s.starts_with('.') || s.is_empty() {
        format!("_{s}")
    } else {
        s
    }
}
