//! Signs a certificate's TBS bytes with a [`keys::Signer`]: we hash, the signer signs the
//! digest (on a token, or a file key in tests), and the signature comes back checked and
//! encoded the way X.509 wants it (ECDSA as DER). Also the signature AlgorithmIdentifiers
//! we write, and their inverse. No I/O: the signer is the only way to a private key.

use const_oid::ObjectIdentifier;
use spki::AlgorithmIdentifierOwned;

use super::Error;
use crate::keys::{self, Encoding, HashAlg, PublicKey, SignScheme, Signer};

const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");

/// RSASSA-PSS with every RSASSA-PSS-params field explicit except the default trailer
/// field, exactly as OpenSSL and cert_create write them: hash (with NULL), MGF1 over the
/// same hash, salt = hash length. The rsa crate's encoding is that one.
fn pss_algorithm(h: HashAlg) -> Result<AlgorithmIdentifierOwned, Error> {
    use rsa::pss::get_default_pss_signature_algo_id as pss;
    match h {
        HashAlg::Sha256 => pss::<sha2::Sha256>(),
        HashAlg::Sha384 => pss::<sha2::Sha384>(),
        HashAlg::Sha512 => pss::<sha2::Sha512>(),
    }
    .map_err(|e| Error::Encode(format!("RSASSA-PSS parameters: {e}")))
}

/// The AlgorithmIdentifier a certificate signed with `scheme` carries.
pub fn signature_algorithm(scheme: SignScheme) -> Result<AlgorithmIdentifierOwned, Error> {
    let alg = match scheme {
        SignScheme::Ecdsa(h) => AlgorithmIdentifierOwned {
            oid: match h {
                HashAlg::Sha256 => ECDSA_SHA256,
                HashAlg::Sha384 => ECDSA_SHA384,
                HashAlg::Sha512 => ECDSA_SHA512,
            },
            parameters: None,
        },
        SignScheme::RsaPkcs1(h) => AlgorithmIdentifierOwned {
            oid: match h {
                HashAlg::Sha256 => SHA256_RSA,
                HashAlg::Sha384 => SHA384_RSA,
                HashAlg::Sha512 => SHA512_RSA,
            },
            parameters: Some(der::asn1::Null.into()),
        },
        SignScheme::RsaPss(h) => pss_algorithm(h)?,
    };
    Ok(alg)
}

/// The scheme a certificate's signature AlgorithmIdentifier names (the inverse of
/// [`signature_algorithm`], for the schemes we write).
pub fn scheme_of(alg: &AlgorithmIdentifierOwned) -> Option<SignScheme> {
    [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512]
        .into_iter()
        .flat_map(|h| {
            [
                SignScheme::Ecdsa(h),
                SignScheme::RsaPkcs1(h),
                SignScheme::RsaPss(h),
            ]
        })
        .find(|s| signature_algorithm(*s).ok().as_ref() == Some(alg))
}

/// Refuse a scheme the signer's key cannot make (ECDSA with an RSA key, say) before
/// anything is built.
pub(crate) fn check_fits(signer: &dyn Signer, scheme: SignScheme) -> Result<(), Error> {
    let public = signer.public_key();
    let fits = matches!(
        (public, scheme),
        (PublicKey::Ec { .. }, SignScheme::Ecdsa(_))
            | (
                PublicKey::Rsa { .. },
                SignScheme::RsaPss(_) | SignScheme::RsaPkcs1(_)
            )
    );
    if fits {
        Ok(())
    } else {
        Err(Error::Unsupported(format!(
            "{} with the {} key {:?}",
            scheme.name(),
            public.describe(),
            signer.label()
        )))
    }
}

/// Hash `tbs` and have `signer` sign the digest; the signature as X.509 carries it
/// (ECDSA: DER Ecdsa-Sig-Value), verified with the signer's public key before it is
/// returned. `role` names the key in errors ("issuer", a TBBR certificate).
pub(crate) fn sign_tbs(
    signer: &mut dyn Signer,
    scheme: SignScheme,
    tbs: &[u8],
    role: &str,
) -> Result<Vec<u8>, Error> {
    let digest = scheme.hash().digest(tbs);
    keys::sign_checked(signer, scheme, &digest, Encoding::Der).map_err(|source| Error::Key {
        role: role.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    #[test]
    fn pss_params_match_openssl_sha256_encoding() {
        // What `openssl asn1parse` shows in cert_create's and `openssl req -sigopt
        // rsa_padding_mode:pss` RSA-PSS certificates: SEQUENCE { id-RSASSA-PSS,
        // SEQUENCE { [0] sha256 NULL, [1] { mgf1 { sha256 NULL } }, [2] INTEGER 32 } }.
        let alg = signature_algorithm(SignScheme::RsaPss(HashAlg::Sha256)).unwrap();
        let p = alg.parameters.as_ref().unwrap().to_der().unwrap();
        assert_eq!(
            hex::encode(&p),
            "3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108\
             300d06096086480165030402010500a203020120"
        );
        for (h, arc, salt) in [(HashAlg::Sha384, 2, 0x30), (HashAlg::Sha512, 3, 0x40)] {
            let alg = signature_algorithm(SignScheme::RsaPss(h)).unwrap();
            let p = alg.parameters.as_ref().unwrap().to_der().unwrap();
            let hash = format!("300d06096086480165030402{arc:02x}0500");
            assert_eq!(
                hex::encode(&p),
                format!("3034a00f{hash}a11c301a06092a864886f70d010108{hash}a2030201{salt:02x}")
            );
        }
        assert_eq!(alg.oid.to_string(), "1.2.840.113549.1.1.10");
    }

    #[test]
    fn algorithms_round_trip() {
        for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            for s in [
                SignScheme::Ecdsa(h),
                SignScheme::RsaPss(h),
                SignScheme::RsaPkcs1(h),
            ] {
                assert_eq!(scheme_of(&signature_algorithm(s).unwrap()), Some(s));
            }
        }
    }
}
