//! The rehearsal token's cryptography: key generation, import into PKCS#8, and signing
//! through `keys::PrivateKey` (the same code a file key signs with). Private keys live
//! only as PKCS#8 DER in zeroizing buffers.
//!
//! rsa 0.9 carries RUSTSEC-2023-0071 (Marvin timing side channel on private-key
//! operations). It is acknowledged here: the rehearsal token is not a security boundary
//! (its keys sit in the clear in its store) and must never hold a production key.

use elliptic_curve::pkcs8::EncodePrivateKey;
use elliptic_curve::sec1::ToEncodedPoint;
use rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use zeroize::Zeroizing;

use crate::hsm::{Error, Result};
use crate::keys::{self, Curve, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};

/// The software crypto's error, with what the rehearsal token was doing.
fn backend<E>(what: &str) -> impl FnOnce(E) -> Error + '_
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| Error::SimCrypto {
        what: what.to_string(),
        source: Box::new(e),
    }
}

fn doc_bytes(doc: &der::SecretDocument) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(doc.as_bytes().to_vec())
}

/// Generate a key pair; returns (PKCS#8 DER, public key).
pub(super) fn generate(alg: KeyAlgorithm) -> Result<(Zeroizing<Vec<u8>>, PublicKey)> {
    match alg {
        KeyAlgorithm::EcP256 => ec_pkcs8(p256::SecretKey::random(&mut OsRng), Curve::P256),
        KeyAlgorithm::EcP384 => ec_pkcs8(p384::SecretKey::random(&mut OsRng), Curve::P384),
        KeyAlgorithm::EcP521 => ec_pkcs8(p521::SecretKey::random(&mut OsRng), Curve::P521),
        KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            let bits = alg.rsa_bits().unwrap_or(2048);
            let key = rsa::RsaPrivateKey::new(&mut OsRng, bits)
                .map_err(|e| backend("RSA key generation")(e))?;
            rsa_pkcs8(&key)
        }
    }
}

fn ec_pkcs8<C>(
    sk: elliptic_curve::SecretKey<C>,
    curve: Curve,
) -> Result<(Zeroizing<Vec<u8>>, PublicKey)>
where
    C: elliptic_curve::CurveArithmetic + const_oid::AssociatedOid,
    elliptic_curve::AffinePoint<C>:
        elliptic_curve::sec1::FromEncodedPoint<C> + elliptic_curve::sec1::ToEncodedPoint<C>,
    elliptic_curve::FieldBytesSize<C>: elliptic_curve::sec1::ModulusSize,
{
    let doc = sk
        .to_pkcs8_der()
        .map_err(|e| backend("encoding an EC key")(e))?;
    let point = sk.public_key().to_encoded_point(false);
    let public = PublicKey::ec(curve, point.as_bytes())?;
    Ok((doc_bytes(&doc), public))
}

fn rsa_pkcs8(key: &rsa::RsaPrivateKey) -> Result<(Zeroizing<Vec<u8>>, PublicKey)> {
    let doc = key
        .to_pkcs8_der()
        .map_err(|e| backend("encoding an RSA key")(e))?;
    let public = PublicKey::rsa(&key.n().to_bytes_be(), &key.e().to_bytes_be())?;
    Ok((doc_bytes(&doc), public))
}

/// Turn a parsed private key into PKCS#8, checking that its halves belong together.
pub(super) fn import(key: &PrivateKey) -> Result<(Zeroizing<Vec<u8>>, PublicKey)> {
    let mismatch = || {
        Error::Key(crate::keys::Error::Malformed(
            "the private key does not match its public half".into(),
        ))
    };
    let bad_scalar = |c: Curve| {
        Error::Key(crate::keys::Error::Malformed(format!(
            "{} private scalar out of range",
            c.name()
        )))
    };
    let (pkcs8, public) = match key {
        PrivateKey::Ec { curve, d, .. } => match curve {
            Curve::P256 => ec_pkcs8(
                p256::SecretKey::from_slice(d).map_err(|_| bad_scalar(*curve))?,
                *curve,
            )?,
            Curve::P384 => ec_pkcs8(
                p384::SecretKey::from_slice(d).map_err(|_| bad_scalar(*curve))?,
                *curve,
            )?,
            Curve::P521 => ec_pkcs8(
                p521::SecretKey::from_slice(d).map_err(|_| bad_scalar(*curve))?,
                *curve,
            )?,
            other => {
                return Err(Error::Unsupported(format!(
                    "the rehearsal token has no {} keys (P-256, P-384, P-521, RSA only)",
                    other.name()
                )))
            }
        },
        PrivateKey::Rsa { key: k, .. } => {
            let big = |b: &[u8]| rsa::BigUint::from_bytes_be(b);
            let rk = rsa::RsaPrivateKey::from_components(
                big(&k.n),
                big(&k.e),
                big(&k.d),
                vec![big(&k.p), big(&k.q)],
            )
            .map_err(|e| Error::Key(crate::keys::Error::Malformed(format!("RSA key: {e}"))))?;
            rk.validate()
                .map_err(|e| Error::Key(crate::keys::Error::Malformed(format!("RSA key: {e}"))))?;
            rsa_pkcs8(&rk)?
        }
    };
    if &public != key.public_key() {
        return Err(mismatch());
    }
    if KeyAlgorithm::of(&public).is_none() {
        return Err(Error::Unsupported(format!(
            "{} keys on the rehearsal token (ec-p256/384/521, rsa-2048/3072/4096 only)",
            public.describe()
        )));
    }
    Ok((pkcs8, public))
}

/// Sign a digest with a stored PKCS#8 key: the one software implementation in
/// `keys::private`. ECDSA returns fixed-width r‖s.
pub(super) fn sign(pkcs8: &[u8], scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>> {
    let key = PrivateKey::from_pkcs8_der(pkcs8).map_err(|e| backend("reading a stored key")(e))?;
    key.sign_digest(scheme, digest).map_err(|e| match e {
        keys::Error::DigestLength { .. } => Error::Refused(e.to_string()),
        keys::Error::Unsupported(m) => Error::Unsupported(m),
        other => backend("signing")(other),
    })
}
