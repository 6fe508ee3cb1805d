//! Signs a certificate's TBS bytes with a key that stays on the token: we hash, the token
//! signs the digest, and we wrap the result the way X.509 wants it (ECDSA as DER).

use const_oid::ObjectIdentifier;
use der::asn1::Any;
use der::Decode;
use spki::AlgorithmIdentifierOwned;

use super::Error;
use crate::hsm::Token;
use crate::keys::{self, HashAlg, PublicKey, SignScheme};

const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");

/// The last arc of id-sha256/384/512 (2.16.840.1.101.3.4.2.x).
fn sha_arc(h: HashAlg) -> u8 {
    match h {
        HashAlg::Sha256 => 1,
        HashAlg::Sha384 => 2,
        HashAlg::Sha512 => 3,
    }
}

/// RSASSA-PSS-params with every field explicit except the default trailer field, exactly
/// as OpenSSL and cert_create write them: hash (with NULL), MGF1 over the same hash, salt
/// = hash length.
fn pss_params(h: HashAlg) -> Vec<u8> {
    let hash_alg = [
        0x30,
        0x0d,
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        sha_arc(h),
        0x05,
        0x00,
    ];
    let mut out = vec![0x30, 0x34, 0xa0, 0x0f];
    out.extend_from_slice(&hash_alg);
    // [1] { SEQUENCE { id-mgf1, hashAlg } }
    out.extend_from_slice(&[
        0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
    ]);
    out.extend_from_slice(&hash_alg);
    // Salt lengths 32/48/64 fit in one byte below 0x80.
    out.extend_from_slice(&[0xa2, 0x03, 0x02, 0x01, h.len() as u8]);
    out
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
        SignScheme::RsaPss(h) => AlgorithmIdentifierOwned {
            oid: RSASSA_PSS,
            parameters: Some(
                Any::from_der(&pss_params(h)).map_err(|e| Error::Encode(e.to_string()))?,
            ),
        },
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

/// A key on a token, checked to be the one the caller expects, that signs TBS bytes.
pub struct TokenSigner<'t> {
    token: &'t mut dyn Token,
    label: String,
    scheme: SignScheme,
    public: PublicKey,
}

impl<'t> TokenSigner<'t> {
    /// Look the key up on the token. `expected`, when given, must be its public key (the
    /// issuer certificate's key, or the subject key of a self-signed certificate).
    pub fn new(
        token: &'t mut dyn Token,
        label: &str,
        scheme: SignScheme,
        expected: Option<&PublicKey>,
    ) -> Result<Self, Error> {
        let public = token
            .public_key(label)
            .map_err(|e| Error::Token(format!("signing key {label:?}: {e}")))?;
        // A key the approval policy puts under a quorum signs only through
        // `officiant sign --request`; certificates take no request yet.
        crate::approvals::authorize(token, label, None).map_err(|e| {
            Error::Token(format!(
                "signing key {label:?}: {e} (certificates cannot be issued under a request)"
            ))
        })?;
        if let Some(exp) = expected {
            if *exp != public {
                return Err(Error::Mismatch(format!(
                    "the key labelled {label:?} on the token is not the issuer's key"
                )));
            }
        }
        let fits = matches!(
            (&public, scheme),
            (PublicKey::Ec { .. }, SignScheme::Ecdsa(_))
                | (
                    PublicKey::Rsa { .. },
                    SignScheme::RsaPss(_) | SignScheme::RsaPkcs1(_)
                )
        );
        if !fits {
            return Err(Error::Unsupported(format!(
                "{} with the {} key {label:?}",
                scheme.name(),
                public.describe()
            )));
        }
        Ok(TokenSigner {
            token,
            label: label.to_string(),
            scheme,
            public,
        })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn scheme(&self) -> SignScheme {
        self.scheme
    }

    pub fn algorithm(&self) -> Result<AlgorithmIdentifierOwned, Error> {
        signature_algorithm(self.scheme)
    }

    /// Hash `tbs`, sign the digest on the token, return the signature as X.509 carries it
    /// (ECDSA: DER Ecdsa-Sig-Value). The signature is verified before it is returned.
    pub fn sign(&mut self, tbs: &[u8]) -> Result<Vec<u8>, Error> {
        let digest = self.scheme.hash().digest(tbs);
        let raw = self
            .token
            .sign(&self.label, self.scheme, &digest)
            .map_err(|e| Error::Token(format!("signing with {:?}: {e}", self.label)))?;
        let sig = match self.scheme {
            SignScheme::Ecdsa(_) => {
                keys::ecdsa_fixed_to_der(&raw).map_err(|e| Error::Token(e.to_string()))?
            }
            _ => raw,
        };
        self.public
            .verify_digest(self.scheme, &digest, &sig)
            .map_err(|_| {
                Error::Mismatch(format!(
                    "the token's signature with {:?} does not verify with its public key",
                    self.label
                ))
            })?;
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pss_params_match_openssl_sha256_encoding() {
        // What `openssl asn1parse` shows in cert_create's RSA certificates (52 bytes).
        let p = pss_params(HashAlg::Sha256);
        assert_eq!(p.len(), 54);
        assert_eq!(&p[..2], &[0x30, 0x34]);
        assert_eq!(&p[p.len() - 5..], &[0xa2, 0x03, 0x02, 0x01, 0x20]);
        Any::from_der(&p).unwrap();
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
