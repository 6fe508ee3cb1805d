//! Public keys: parsed from SPKI, certificates and PKCS#1; encoded back to DER SPKI
//! exactly as OpenSSL writes it (the TF-A ROTPK hash is a hash of those bytes).

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, BitString, UintRef};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifier, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};

use super::{Curve, Error, HashAlg, SignScheme};

/// brainpoolP256t1 (RFC 5639), used by STM32MP ROM code.
pub const BRAINPOOL_P256T1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.8");
/// brainpoolP256r1 (RFC 5639).
pub const BRAINPOOL_P256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.36.3.3.2.8.1.1.7");

/// A public key as Officiant keeps it: the raw values, canonical, so that equal keys
/// compare equal whatever encoding they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// An EC key.
    Ec {
        /// The named curve.
        curve: Curve,
        /// The uncompressed SEC1 point `04 ‖ X ‖ Y`, each coordinate left-padded to
        /// [`Curve::field_bytes`].
        point: Vec<u8>,
    },
    /// An RSA key.
    Rsa {
        /// Modulus, big-endian, no leading zero bytes.
        n: Vec<u8>,
        /// Public exponent, big-endian, no leading zero bytes.
        e: Vec<u8>,
    },
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b[i..].to_vec()
}

impl PublicKey {
    /// An RSA key from its big-endian modulus and exponent (leading zero bytes dropped);
    /// refuses a zero modulus or exponent.
    pub fn rsa(n: &[u8], e: &[u8]) -> Result<Self, Error> {
        let n = strip_zeros(n);
        let e = strip_zeros(e);
        if n.is_empty() || e.is_empty() {
            return Err(Error::Malformed(
                "RSA key with zero modulus or exponent".into(),
            ));
        }
        Ok(PublicKey::Rsa { n, e })
    }

    /// An EC key from a SEC1 point (compressed points are decompressed on NIST curves).
    pub fn ec(curve: Curve, sec1: &[u8]) -> Result<Self, Error> {
        let n = curve.field_bytes();
        let point = match sec1.first() {
            Some(0x04) if sec1.len() == 1 + 2 * n => sec1.to_vec(),
            Some(0x02) | Some(0x03) if sec1.len() == 1 + n => decompress(curve, sec1)?,
            _ => {
                return Err(Error::Malformed(format!(
                    "{} public point has {} bytes, expected {}",
                    curve.name(),
                    sec1.len(),
                    1 + 2 * n
                )))
            }
        };
        // Reject points not on the curve where we can check.
        validate_point(curve, &point)?;
        Ok(PublicKey::Ec { curve, point })
    }

    /// A key from DER SubjectPublicKeyInfo (`openssl pkey -pubout -outform DER`).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, Error> {
        let spki = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| Error::Malformed(format!("SubjectPublicKeyInfo: {e}")))?;
        Self::from_spki(&spki)
    }

    /// A key from a parsed SubjectPublicKeyInfo: rsaEncryption or id-RSASSA-PSS, or
    /// id-ecPublicKey on a named curve Officiant reads. NIST points are checked to lie on
    /// their curve; brainpool points only for length.
    pub fn from_spki(spki: &SubjectPublicKeyInfoRef<'_>) -> Result<Self, Error> {
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::Malformed("public key bit string has unused bits".into()))?;
        let oid = spki.algorithm.oid;
        if oid == rfc5912::RSA_ENCRYPTION || oid == rfc5912::ID_RSASSA_PSS {
            let k = pkcs1::RsaPublicKey::from_der(bits)
                .map_err(|e| Error::Malformed(format!("RSA public key: {e}")))?;
            return Self::rsa(k.modulus.as_bytes(), k.public_exponent.as_bytes());
        }
        if oid == rfc5912::ID_EC_PUBLIC_KEY {
            let params = spki
                .algorithm
                .parameters
                .ok_or_else(|| Error::Malformed("EC key without curve parameters".into()))?;
            let curve_oid: ObjectIdentifier = params
                .decode_as()
                .map_err(|_| Error::Unsupported("EC key with explicit curve parameters".into()))?;
            let curve = Curve::from_oid(&curve_oid)
                .ok_or_else(|| Error::Unsupported(format!("EC curve {curve_oid}")))?;
            return Self::ec(curve, bits);
        }
        Err(Error::Unsupported(format!("public key algorithm {oid}")))
    }

    /// Parse a public key from PEM or DER: SPKI (`PUBLIC KEY`), PKCS#1 (`RSA PUBLIC KEY`),
    /// an X.509 certificate, or a private key (its public half).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if let Some(text) = super::pem_text(bytes) {
            let (label, der) = super::pem_decode(text)?;
            return match label.as_str() {
                "PUBLIC KEY" => Self::from_spki_der(&der),
                "RSA PUBLIC KEY" => {
                    let k = pkcs1::RsaPublicKey::from_der(&der)
                        .map_err(|e| Error::Malformed(format!("RSA public key: {e}")))?;
                    Self::rsa(k.modulus.as_bytes(), k.public_exponent.as_bytes())
                }
                "CERTIFICATE" => Self::from_certificate_der(&der),
                l if l.ends_with("PRIVATE KEY") => Err(Error::Unsupported(format!(
                    "a private key ({l}) where a public key or certificate was expected"
                ))),
                other => Err(Error::Unsupported(format!("PEM block {other:?}"))),
            };
        }
        Self::from_spki_der(bytes)
            .or_else(|_| Self::from_certificate_der(bytes))
            .map_err(|_| {
                Error::Malformed(
                    "neither a PEM block, a DER public key nor a DER certificate".into(),
                )
            })
    }

    /// The subject public key of a DER X.509 certificate.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, Error> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| Error::Malformed(format!("certificate: {e}")))?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| Error::Malformed(format!("certificate key: {e}")))?;
        Self::from_spki_der(&spki)
    }

    /// DER SubjectPublicKeyInfo, byte-identical to `openssl pkey -pubout -outform DER`.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let spki = self.to_spki();
        // Encoding an owned SPKI built from valid parts cannot fail.
        spki.to_der().unwrap_or_default()
    }

    /// The key as an owned SubjectPublicKeyInfo (rsaEncryption with NULL parameters, or
    /// id-ecPublicKey with the named curve and the uncompressed point).
    // ok: `BitString::from_bytes` fails only past DER's length limit (hundreds of
    // megabytes); a public key's bytes are at most a few hundred.
    #[allow(clippy::expect_used)]
    pub fn to_spki(&self) -> SubjectPublicKeyInfoOwned {
        match self {
            PublicKey::Rsa { n, e } => {
                let der = rsa_pkcs1_der(n, e);
                SubjectPublicKeyInfoOwned {
                    algorithm: AlgorithmIdentifier {
                        oid: rfc5912::RSA_ENCRYPTION,
                        parameters: Some(der::asn1::Null.into()),
                    },
                    // ok: a key is far below DER's length limit, the only way this fails.
                    subject_public_key: BitString::from_bytes(&der).expect("key fits DER"),
                }
            }
            PublicKey::Ec { curve, point } => SubjectPublicKeyInfoOwned {
                algorithm: AlgorithmIdentifier {
                    oid: rfc5912::ID_EC_PUBLIC_KEY,
                    parameters: Some(curve.oid().into()),
                },
                // ok: a key is far below DER's length limit, the only way this fails.
                subject_public_key: BitString::from_bytes(point).expect("key fits DER"),
            },
        }
    }

    /// PEM `PUBLIC KEY` (SPKI), as `openssl pkey -pubout` writes it.
    pub fn to_pem(&self) -> String {
        super::pem_encode("PUBLIC KEY", &self.to_spki_der())
    }

    /// SHA-256 of the DER SPKI: the fingerprint shown to witnesses.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(self.to_spki_der()).into()
    }

    /// Modulus size or curve size in bits.
    pub fn bits(&self) -> usize {
        match self {
            PublicKey::Rsa { n, .. } => {
                let lead = n.first().copied().unwrap_or(0);
                n.len() * 8 - lead.leading_zeros() as usize
            }
            PublicKey::Ec { curve, .. } => curve.bits(),
        }
    }

    /// "EC P-256", "RSA 4096".
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { .. } => format!("RSA {}", self.bits()),
            PublicKey::Ec { curve, .. } => format!("EC {}", curve.name()),
        }
    }

    /// X and Y coordinates (EC only), each left-padded to the field size.
    pub fn ec_xy(&self) -> Option<(&[u8], &[u8])> {
        match self {
            PublicKey::Ec { curve, point } => {
                let n = curve.field_bytes();
                Some((&point[1..1 + n], &point[1 + n..1 + 2 * n]))
            }
            PublicKey::Rsa { .. } => None,
        }
    }

    /// The signature scheme this key uses by default: ECDSA with the curve's hash, or
    /// RSA-PSS with SHA-256.
    pub fn default_scheme(&self) -> SignScheme {
        match self {
            PublicKey::Ec { curve, .. } => SignScheme::Ecdsa(curve.default_hash()),
            PublicKey::Rsa { .. } => SignScheme::RsaPss(HashAlg::Sha256),
        }
    }

    /// Verify a signature over a digest. ECDSA signatures may be DER or r‖s.
    pub fn verify_digest(
        &self,
        scheme: SignScheme,
        digest: &[u8],
        sig: &[u8],
    ) -> Result<(), Error> {
        if digest.len() != scheme.hash().len() {
            return Err(Error::DigestLength {
                got: digest.len(),
                hash: scheme.hash(),
            });
        }
        let bad = || Error::BadSignature;
        match (self, scheme) {
            (PublicKey::Ec { curve, point }, SignScheme::Ecdsa(_)) => {
                let rs = super::ecdsa_to_fixed(*curve, sig)?;
                verify_ecdsa(*curve, point, digest, &rs).map_err(|_| bad())
            }
            (PublicKey::Rsa { n, e }, SignScheme::RsaPss(h) | SignScheme::RsaPkcs1(h)) => {
                let key = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(n),
                    rsa::BigUint::from_bytes_be(e),
                )
                .map_err(|e| Error::Unsupported(format!("RSA key: {e}")))?;
                let r = match scheme {
                    SignScheme::RsaPss(_) => key.verify(h.pss(), digest, sig),
                    _ => key.verify(h.pkcs1v15(), digest, sig),
                };
                r.map_err(|_| bad())
            }
            _ => Err(Error::Unsupported(format!(
                "{} with a {} key",
                scheme.name(),
                self.describe()
            ))),
        }
    }
}

fn rsa_pkcs1_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    match (UintRef::new(n), UintRef::new(e)) {
        (Ok(modulus), Ok(public_exponent)) => pkcs1::RsaPublicKey {
            modulus,
            public_exponent,
        }
        .to_der()
        .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn verify_ecdsa(curve: Curve, point: &[u8], digest: &[u8], rs: &[u8]) -> Result<(), ()> {
    use signature::hazmat::PrehashVerifier;
    // A digest shorter than the field is the integer it spells (SEC 1 bits2int): pad it
    // on the left, as the ecdsa crate itself does for digests of at least half the field
    // size. Without this, P-521 with SHA-256 (32 < 66 / 2 bytes) is refused outright.
    let n = curve.field_bytes();
    let padded;
    let digest = if digest.len() < n {
        let mut v = vec![0u8; n - digest.len()];
        v.extend_from_slice(digest);
        padded = v;
        &padded[..]
    } else {
        digest
    };
    match curve {
        Curve::P256 => {
            let k = p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| ())?;
            let s = p256::ecdsa::Signature::from_slice(rs).map_err(|_| ())?;
            k.verify_prehash(digest, &s).map_err(|_| ())
        }
        Curve::P384 => {
            let k = p384::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| ())?;
            let s = p384::ecdsa::Signature::from_slice(rs).map_err(|_| ())?;
            k.verify_prehash(digest, &s).map_err(|_| ())
        }
        Curve::P521 => {
            let k = p521::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(|_| ())?;
            let s = p521::ecdsa::Signature::from_slice(rs).map_err(|_| ())?;
            k.verify_prehash(digest, &s).map_err(|_| ())
        }
        Curve::BrainpoolP256t1 | Curve::BrainpoolP256r1 => Err(()),
    }
}

fn decompress(curve: Curve, sec1: &[u8]) -> Result<Vec<u8>, Error> {
    use elliptic_curve::sec1::ToEncodedPoint;
    let bad = || {
        Error::Malformed(format!(
            "{} compressed point is not on the curve",
            curve.name()
        ))
    };
    let out = match curve {
        Curve::P256 => p256::PublicKey::from_sec1_bytes(sec1)
            .map_err(|_| bad())?
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        Curve::P384 => p384::PublicKey::from_sec1_bytes(sec1)
            .map_err(|_| bad())?
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        Curve::P521 => p521::PublicKey::from_sec1_bytes(sec1)
            .map_err(|_| bad())?
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        Curve::BrainpoolP256t1 | Curve::BrainpoolP256r1 => {
            return Err(Error::Unsupported(format!(
                "compressed {} points",
                curve.name()
            )))
        }
    };
    Ok(out)
}

fn validate_point(curve: Curve, point: &[u8]) -> Result<(), Error> {
    let ok = match curve {
        Curve::P256 => p256::PublicKey::from_sec1_bytes(point).is_ok(),
        Curve::P384 => p384::PublicKey::from_sec1_bytes(point).is_ok(),
        Curve::P521 => p521::PublicKey::from_sec1_bytes(point).is_ok(),
        // No arithmetic for brainpool here; the length was checked by the caller.
        Curve::BrainpoolP256t1 | Curve::BrainpoolP256r1 => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Malformed(format!(
            "{} public point is not on the curve",
            curve.name()
        )))
    }
}

/// Read `AnyRef` parameters as an OID (used by callers that inspect SPKI themselves).
pub fn curve_of_params(params: Option<AnyRef<'_>>) -> Option<Curve> {
    let oid: ObjectIdentifier = params?.decode_as().ok()?;
    Curve::from_oid(&oid)
}
