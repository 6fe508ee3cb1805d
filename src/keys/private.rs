//! Private keys read from files for import: PKCS#8 (plain or encrypted), PKCS#1, SEC1,
//! PEM or DER. Every secret component lives in a zeroizing buffer; `Debug` shows only the
//! key type.

use std::fmt;

use zeroize::Zeroizing;

use super::{Curve, Error, PublicKey};
use crate::secret::Secret;

/// RSA private components, big-endian, as PKCS#11 `C_CreateObject` and YubiHSM
/// `put_asymmetric_key` want them.
pub struct RsaPrivate {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
    pub d: Zeroizing<Vec<u8>>,
    pub p: Zeroizing<Vec<u8>>,
    pub q: Zeroizing<Vec<u8>>,
    pub dp: Zeroizing<Vec<u8>>,
    pub dq: Zeroizing<Vec<u8>>,
    pub qinv: Zeroizing<Vec<u8>>,
}

pub enum PrivateKey {
    /// `d` left-padded to the field size.
    Ec {
        curve: Curve,
        d: Zeroizing<Vec<u8>>,
        public: PublicKey,
    },
    Rsa {
        key: Box<RsaPrivate>,
        public: PublicKey,
    },
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey({}, [redacted])",
            self.public_key().describe()
        )
    }
}

impl PrivateKey {
    pub fn public_key(&self) -> &PublicKey {
        match self {
            PrivateKey::Ec { public, .. } | PrivateKey::Rsa { public, .. } => public,
        }
    }

    /// Parse a private key file's bytes. `passphrase` is needed for encrypted PKCS#8.
    pub fn from_bytes(bytes: &[u8], passphrase: Option<&Secret>) -> Result<Self, Error> {
        let _ = (bytes, passphrase);
        Err(Error::Unsupported(
            "private key parsing is not built yet".into(),
        ))
    }
}
