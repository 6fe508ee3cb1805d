//! The one thing `pki` and `formats` need from a key that signs: its public half and a
//! digest signature. A key on a token implements it (`signing::TokenSigner`); so can a file key
//! in tests. Whoever holds a `Signer` never sees where the private key lives.

use super::{ecdsa_fixed_to_der, PublicKey, SignScheme};

/// Why a signer could not sign. The source is kept (a token's own error, typed).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key refused or failed (token error, unsupported scheme, …).
    #[error("key {label:?}: {source}")]
    Key {
        /// The key's label.
        label: String,
        /// The key's own error (a token's, typed), kept as the source.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The signer refused before the key was asked (its own message names the key, such
    /// as an approval whose uses are spent).
    #[error(transparent)]
    Refused(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The key produced a signature that does not verify with its own public key.
    #[error("key {label:?}: its signature does not verify with its own public key")]
    BadSignature {
        /// The key's label.
        label: String,
    },
}

impl SignError {
    /// The key labelled `label` failed with `source` (a token's error, say).
    pub fn key(
        label: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        SignError::Key {
            label: label.to_string(),
            source: source.into(),
        }
    }
}

/// Who allowed a signature made under someone's approval (an approved signing request):
/// what a record of the signature says about its authority.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Authority {
    /// The request's id.
    pub request: String,
    /// The approvers whose signatures counted.
    pub approvers: Vec<String>,
    /// This signature's use number (1-based) of `of`.
    #[serde(rename = "use")]
    pub use_number: u64,
    /// How many uses the request allows in all.
    pub of: u64,
}

/// A key that signs digests. `sign_digest` returns the signature as the key made it
/// (ECDSA: fixed-width r‖s), not yet checked; [`sign_checked`] is what callers use.
pub trait Signer {
    /// A name for messages and records: the token label, or a file name.
    fn label(&self) -> &str;
    /// The key's public half, as read before the first signature: what every signature is
    /// checked against.
    fn public_key(&self) -> &PublicKey;
    /// Sign `digest`, already hashed with `scheme.hash()`.
    fn sign_digest(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, SignError>;
    /// Take `n` uses now for `n` signatures to come. A key whose uses are counted (under
    /// an approved request) reserves them before the first; others need nothing.
    fn reserve(&mut self, n: u64) -> Result<(), SignError> {
        let _ = n;
        Ok(())
    }
    /// The authority of the last signature made, where someone's approval gave it.
    fn authority(&self) -> Option<Authority> {
        None
    }
}

/// How a signature leaves [`sign_checked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// As the key made it: ECDSA fixed-width r‖s, RSA the modulus-sized integer.
    Raw,
    /// As X.509, CMS and OpenSSL carry it: ECDSA as a DER Ecdsa-Sig-Value.
    Der,
}

/// Hash-free signing with a check: sign `digest`, verify the result with the signer's
/// public key, and only then return it in `encoding`.
pub fn sign_checked(
    signer: &mut dyn Signer,
    scheme: SignScheme,
    digest: &[u8],
    encoding: Encoding,
) -> Result<Vec<u8>, SignError> {
    let raw = signer.sign_digest(scheme, digest)?;
    let bad = |s: &dyn Signer| SignError::BadSignature {
        label: s.label().to_string(),
    };
    let sig = match (scheme, encoding) {
        (SignScheme::Ecdsa(_), Encoding::Der) => {
            ecdsa_fixed_to_der(&raw).map_err(|_| bad(signer))?
        }
        _ => raw,
    };
    signer
        .public_key()
        .verify_digest(scheme, digest, &sig)
        .map_err(|_| bad(signer))?;
    Ok(sig)
}
