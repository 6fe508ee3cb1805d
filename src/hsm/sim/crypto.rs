//! The rehearsal token's cryptography: key generation, import into PKCS#8, signing.
//! Private keys live only as PKCS#8 DER in zeroizing buffers.
//!
//! rsa 0.9 carries RUSTSEC-2023-0071 (Marvin timing side channel on private-key
//! operations). It is acknowledged here: the rehearsal token is not a security boundary
//! (its keys sit in the clear in its store) and must never hold a production key.

use elliptic_curve::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use elliptic_curve::sec1::ToEncodedPoint;
use rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use sha2::{Sha256, Sha384, Sha512};
use signature::hazmat::PrehashSigner;
use zeroize::Zeroizing;

use crate::hsm::{Error, Result};
use crate::keys::{Curve, HashAlg, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};

fn backend(what: &str) -> impl FnOnce(String) -> Error + '_ {
    move |e| Error::Backend(format!("rehearsal token: {what}: {e}"))
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
                .map_err(|e| backend("RSA key generation")(e.to_string()))?;
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
        .map_err(|e| backend("encoding an EC key")(e.to_string()))?;
    let point = sk.public_key().to_encoded_point(false);
    let public = PublicKey::ec(curve, point.as_bytes())?;
    Ok((doc_bytes(&doc), public))
}

fn rsa_pkcs8(key: &rsa::RsaPrivateKey) -> Result<(Zeroizing<Vec<u8>>, PublicKey)> {
    let doc = key
        .to_pkcs8_der()
        .map_err(|e| backend("encoding an RSA key")(e.to_string()))?;
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

/// Sign a digest with a PKCS#8 key. ECDSA returns fixed-width r‖s.
pub(super) fn sign(
    pkcs8: &[u8],
    alg: KeyAlgorithm,
    scheme: SignScheme,
    digest: &[u8],
) -> Result<Vec<u8>> {
    let h = scheme.hash();
    if digest.len() != h.len() {
        return Err(Error::Refused(format!(
            "digest has {} bytes, {} needs {}",
            digest.len(),
            h.name(),
            h.len()
        )));
    }
    let load = |e: String| backend("reading a stored key")(e);
    match (alg.curve(), scheme) {
        (Some(curve), SignScheme::Ecdsa(_)) => {
            // ECDSA takes the leftmost bits of a long hash and the whole of a short one;
            // the ecdsa crate wants at least half the field, so pad a short digest with
            // zeros on the left (the same integer).
            let half = curve.field_bytes() / 2 + 1;
            let mut e = vec![0u8; half.saturating_sub(digest.len())];
            e.extend_from_slice(digest);
            let fail = |x: ecdsa::Error| backend("ECDSA signing")(x.to_string());
            let rs = match curve {
                Curve::P256 => {
                    let sk =
                        p256::SecretKey::from_pkcs8_der(pkcs8).map_err(|x| load(x.to_string()))?;
                    let s: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(&sk)
                        .sign_prehash(&e)
                        .map_err(fail)?;
                    s.to_bytes().to_vec()
                }
                Curve::P384 => {
                    let sk =
                        p384::SecretKey::from_pkcs8_der(pkcs8).map_err(|x| load(x.to_string()))?;
                    let s: p384::ecdsa::Signature = p384::ecdsa::SigningKey::from(&sk)
                        .sign_prehash(&e)
                        .map_err(fail)?;
                    s.to_bytes().to_vec()
                }
                Curve::P521 => {
                    let sk =
                        p521::SecretKey::from_pkcs8_der(pkcs8).map_err(|x| load(x.to_string()))?;
                    let signer =
                        p521::ecdsa::SigningKey::from_bytes(&sk.to_bytes()).map_err(fail)?;
                    let s: p521::ecdsa::Signature = signer.sign_prehash(&e).map_err(fail)?;
                    s.to_bytes().to_vec()
                }
                other => {
                    return Err(Error::Unsupported(format!(
                        "{} keys on the rehearsal token",
                        other.name()
                    )))
                }
            };
            Ok(rs)
        }
        (None, SignScheme::RsaPss(_) | SignScheme::RsaPkcs1(_)) => {
            let key = rsa::RsaPrivateKey::from_pkcs8_der(pkcs8).map_err(|x| load(x.to_string()))?;
            let pss = matches!(scheme, SignScheme::RsaPss(_));
            let r = match (h, pss) {
                (HashAlg::Sha256, true) => {
                    key.sign_with_rng(&mut OsRng, rsa::Pss::new_with_salt::<Sha256>(32), digest)
                }
                (HashAlg::Sha384, true) => {
                    key.sign_with_rng(&mut OsRng, rsa::Pss::new_with_salt::<Sha384>(48), digest)
                }
                (HashAlg::Sha512, true) => {
                    key.sign_with_rng(&mut OsRng, rsa::Pss::new_with_salt::<Sha512>(64), digest)
                }
                (HashAlg::Sha256, false) => key.sign(rsa::Pkcs1v15Sign::new::<Sha256>(), digest),
                (HashAlg::Sha384, false) => key.sign(rsa::Pkcs1v15Sign::new::<Sha384>(), digest),
                (HashAlg::Sha512, false) => key.sign(rsa::Pkcs1v15Sign::new::<Sha512>(), digest),
            };
            r.map_err(|x| backend("RSA signing")(x.to_string()))
        }
        _ => Err(Error::Unsupported(format!(
            "{} with a {} key",
            scheme.name(),
            alg
        ))),
    }
}
