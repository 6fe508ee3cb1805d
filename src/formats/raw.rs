//! Raw detached signatures, as stock `openssl dgst -verify` reads them: ECDSA as DER,
//! RSA-PSS (MGF1 with the same hash, salt = hash length) or RSA PKCS#1 v1.5 as the bare
//! modulus-sized integer. The hash is SHA-256, SHA-384 for P-384 and SHA-512 for P-521.
//!
//! Pure: encodings and checks only; hashing the file and asking the key to sign are
//! `signing`'s.

use crate::keys::{self, Curve, HashAlg, PublicKey, SignScheme};

/// Why a raw signature cannot be made or checked with this key and file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// `--padding` was given for an ECDSA key; holds the padding's name.
    #[error("--padding {0} applies to RSA keys only; ECDSA keys have no padding")]
    PaddingOnEc(&'static str),
    /// The key is not one raw signatures support (only P-256/P-384/P-521 and RSA); holds
    /// the key's description.
    #[error("raw signatures with a {0} key are not supported")]
    UnsupportedKey(String),
    /// The ECDSA signature file is not one canonical DER `Ecdsa-Sig-Value`; holds what is
    /// wrong.
    #[error("signature file is not a DER ECDSA signature ({0}): signature altered or wrong file")]
    MalformedEcdsa(String),
    /// The RSA signature file is not exactly as long as the modulus.
    #[error(
        "signature file has {got} bytes, an RSA-{bits} signature has {want}: signature altered or wrong file"
    )]
    RsaLength {
        /// Bytes in the file.
        got: usize,
        /// Bytes an RSA signature of this key has (modulus length, rounded up to bytes).
        want: usize,
        /// Modulus length in bits.
        bits: usize,
    },
    /// Well-formed, but the signature does not verify over the payload with this key.
    #[error(
        "signature does not verify over the payload: payload or signature altered (or another key)"
    )]
    BadSignature,
    /// The token's fixed-width r‖s could not be converted to DER.
    #[error("{0}")]
    Key(keys::Error),
}

/// RSA padding for raw signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// RSASSA-PSS, MGF1 with the same hash, salt length = hash length (the default).
    Pss,
    /// RSASSA-PKCS1-v1_5 (`--padding pkcs1`).
    Pkcs1,
}

impl Padding {
    /// Parse `--padding`: `pss` or `pkcs1`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pss" => Some(Padding::Pss),
            "pkcs1" => Some(Padding::Pkcs1),
            _ => None,
        }
    }

    /// The `--padding` spelling: `pss` or `pkcs1`.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Pss => "pss",
            Padding::Pkcs1 => "pkcs1",
        }
    }
}

/// The scheme a raw signature uses with `key`. `padding` is for RSA (default PSS).
pub fn scheme(key: &PublicKey, padding: Option<Padding>) -> Result<SignScheme, Error> {
    match key {
        PublicKey::Ec { curve, .. } => {
            if let Some(p) = padding {
                return Err(Error::PaddingOnEc(p.name()));
            }
            match curve {
                Curve::P256 | Curve::P384 | Curve::P521 => {
                    Ok(SignScheme::Ecdsa(curve.default_hash()))
                }
                _ => Err(Error::UnsupportedKey(key.describe())),
            }
        }
        PublicKey::Rsa { .. } => Ok(match padding.unwrap_or(Padding::Pss) {
            Padding::Pss => SignScheme::RsaPss(HashAlg::Sha256),
            Padding::Pkcs1 => SignScheme::RsaPkcs1(HashAlg::Sha256),
        }),
    }
}

/// Turn the token's signature (ECDSA: fixed r‖s) into the detached file's bytes.
pub fn encode(key: &PublicKey, token_sig: &[u8]) -> Result<Vec<u8>, Error> {
    match key {
        PublicKey::Ec { .. } => keys::ecdsa_fixed_to_der(token_sig).map_err(Error::Key),
        PublicKey::Rsa { .. } => {
            check_rsa_len(key, token_sig)?;
            Ok(token_sig.to_vec())
        }
    }
}

fn check_rsa_len(key: &PublicKey, sig: &[u8]) -> Result<(), Error> {
    let want = key.bits().div_ceil(8);
    if sig.len() != want {
        return Err(Error::RsaLength {
            got: sig.len(),
            want,
            bits: key.bits(),
        });
    }
    Ok(())
}

/// The token form (ECDSA: fixed r‖s; RSA: as is) of a detached signature file's bytes,
/// refusing anything stock openssl would not read: ECDSA must be canonical DER, RSA as
/// long as the modulus.
pub fn decode(key: &PublicKey, sig: &[u8]) -> Result<Vec<u8>, Error> {
    match key {
        PublicKey::Ec { curve, .. } => {
            if sig.first() != Some(&0x30) {
                return Err(Error::MalformedEcdsa("no DER SEQUENCE".into()));
            }
            let rs = keys::ecdsa_to_fixed(*curve, sig)
                .map_err(|e| Error::MalformedEcdsa(e.to_string()))?;
            // Re-encoding must give the same bytes: openssl rejects non-canonical DER.
            if keys::ecdsa_fixed_to_der(&rs).ok().as_deref() != Some(sig) {
                return Err(Error::MalformedEcdsa("not canonical DER".into()));
            }
            Ok(rs)
        }
        PublicKey::Rsa { .. } => {
            check_rsa_len(key, sig)?;
            Ok(sig.to_vec())
        }
    }
}

/// Check a detached signature file over `digest` (already hashed with `scheme.hash()`).
pub fn verify(key: &PublicKey, scheme: SignScheme, digest: &[u8], sig: &[u8]) -> Result<(), Error> {
    let token_form = decode(key, sig)?;
    key.verify_digest(scheme, digest, &token_form)
        .map_err(|_| Error::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p256() -> PublicKey {
        use elliptic_curve::sec1::ToEncodedPoint;
        let sk = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let pt = sk.public_key().to_encoded_point(false);
        PublicKey::ec(Curve::P256, pt.as_bytes()).unwrap()
    }

    #[test]
    fn padding_is_refused_on_ec_keys() {
        assert_eq!(
            scheme(&p256(), Some(Padding::Pkcs1)),
            Err(Error::PaddingOnEc("pkcs1"))
        );
        assert_eq!(
            scheme(&p256(), None),
            Ok(SignScheme::Ecdsa(HashAlg::Sha256))
        );
    }

    #[test]
    fn ecdsa_roundtrip_and_tamper() {
        use signature::hazmat::PrehashSigner;
        let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let digest = HashAlg::Sha256.digest(b"payload");
        let sig: p256::ecdsa::Signature = sk.sign_prehash(&digest).unwrap();
        let der = encode(&p256(), &sig.to_bytes()).unwrap();
        let s = SignScheme::Ecdsa(HashAlg::Sha256);
        verify(&p256(), s, &digest, &der).unwrap();
        let other = HashAlg::Sha256.digest(b"payloaD");
        assert_eq!(verify(&p256(), s, &other, &der), Err(Error::BadSignature));
        let mut bad = der.clone();
        bad[0] ^= 1;
        assert!(matches!(
            verify(&p256(), s, &digest, &bad),
            Err(Error::MalformedEcdsa(_))
        ));
    }
}
