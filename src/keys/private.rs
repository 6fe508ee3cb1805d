//! Private keys read from files: PKCS#8 (plain or encrypted), PKCS#1, SEC1, PEM or DER,
//! for import onto a token; and the one software implementation of digest signing, used
//! by the rehearsal token and by [`FileSigner`] (a file key as a [`super::Signer`]).
//! Every secret component lives in a zeroizing buffer; `Debug` shows only the key type.
//!
//! rsa 0.9 carries RUSTSEC-2023-0071 (Marvin timing side channel on private-key
//! operations). It is acknowledged here: software signing serves the rehearsal token and
//! tests, which are no security boundary and must never hold a production key.

use std::fmt;

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::Decode;
use zeroize::Zeroizing;

use super::{Curve, Error, PublicKey, SignScheme};
use crate::secret::Secret;

/// RSA private components, big-endian, as PKCS#11 `C_CreateObject` and YubiHSM
/// `put_asymmetric_key` want them.
pub struct RsaPrivate {
    /// Modulus.
    pub n: Vec<u8>,
    /// Public exponent (65537 for every key Officiant generates).
    pub e: Vec<u8>,
    /// Private exponent.
    pub d: Zeroizing<Vec<u8>>,
    /// First prime factor.
    pub p: Zeroizing<Vec<u8>>,
    /// Second prime factor.
    pub q: Zeroizing<Vec<u8>>,
    /// d mod (p − 1), the CRT exponent for p.
    pub dp: Zeroizing<Vec<u8>>,
    /// d mod (q − 1), the CRT exponent for q.
    pub dq: Zeroizing<Vec<u8>>,
    /// q⁻¹ mod p, the CRT coefficient.
    pub qinv: Zeroizing<Vec<u8>>,
}

/// A private key in memory, read from a file to be imported (or signing as a
/// [`FileSigner`]). Secret parts zeroize on drop; `Debug` prints only the key type.
pub enum PrivateKey {
    /// `d` left-padded to the field size.
    Ec {
        /// The key's curve.
        curve: Curve,
        /// The private scalar, big-endian.
        d: Zeroizing<Vec<u8>>,
        /// Its public half, derived from `d`.
        public: PublicKey,
    },
    /// An RSA private key with its CRT components.
    Rsa {
        /// The components, boxed so the enum stays small.
        key: Box<RsaPrivate>,
        /// Its public half (n, e).
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
    /// The key's public half.
    pub fn public_key(&self) -> &PublicKey {
        match self {
            PrivateKey::Ec { public, .. } | PrivateKey::Rsa { public, .. } => public,
        }
    }

    /// Parse a private key file's bytes, PEM or DER (detected): PKCS#8, encrypted
    /// PKCS#8 (PBES2: AES-CBC or DES-EDE3-CBC with PBKDF2), PKCS#1 `RSA PRIVATE KEY`,
    /// SEC1 `EC PRIVATE KEY` (an `EC PARAMETERS` block before it is skipped).
    /// `passphrase` is needed for encrypted PKCS#8 and ignored otherwise.
    pub fn from_bytes(bytes: &[u8], passphrase: Option<&Secret>) -> Result<Self, Error> {
        if let Some(text) = super::pem_text(bytes) {
            let block = private_pem_block(text)?;
            let der = &block.der;
            return match block.label.as_str() {
                "PRIVATE KEY" => from_pkcs8(der),
                "ENCRYPTED PRIVATE KEY" => from_encrypted_pkcs8(der, passphrase),
                "RSA PRIVATE KEY" => from_pkcs1(der),
                "EC PRIVATE KEY" => from_sec1(der, block.curve),
                other => Err(Error::Unsupported(format!("PEM block {other:?}"))),
            };
        }
        if RawEncrypted::from_der(bytes).is_ok() {
            return from_encrypted_pkcs8(bytes, passphrase);
        }
        if pkcs8::PrivateKeyInfo::from_der(bytes).is_ok() {
            return from_pkcs8(bytes);
        }
        if pkcs1::RsaPrivateKey::from_der(bytes).is_ok() {
            return from_pkcs1(bytes);
        }
        if sec1::EcPrivateKey::from_der(bytes).is_ok() {
            return from_sec1(bytes, None);
        }
        Err(Error::Malformed(
            "neither PEM nor a DER PKCS#8, encrypted PKCS#8, PKCS#1 or SEC1 private key".into(),
        ))
    }

    /// An unencrypted PKCS#8 `PrivateKeyInfo` (what the rehearsal token stores).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        from_pkcs8(der)
    }

    /// Sign `digest`, already hashed with `scheme.hash()`. ECDSA gives fixed-width r‖s,
    /// RSA the modulus-sized integer (PSS: MGF1 over the same hash, salt = hash length).
    /// The result is not checked here; [`super::sign_checked`] does that.
    pub fn sign_digest(&self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, Error> {
        let hash = scheme.hash();
        if digest.len() != hash.len() {
            return Err(Error::DigestLength {
                got: digest.len(),
                hash,
            });
        }
        match (self, scheme) {
            (PrivateKey::Ec { curve, d, .. }, SignScheme::Ecdsa(_)) => {
                sign_ecdsa(*curve, d, digest)
            }
            (PrivateKey::Rsa { key, .. }, SignScheme::RsaPss(h) | SignScheme::RsaPkcs1(h)) => {
                let big = |b: &[u8]| rsa::BigUint::from_bytes_be(b);
                let rk = rsa::RsaPrivateKey::from_components(
                    big(&key.n),
                    big(&key.e),
                    big(&key.d),
                    vec![big(&key.p), big(&key.q)],
                )
                .map_err(|e| Error::Malformed(format!("RSA private key: {e}")))?;
                let sig = match scheme {
                    SignScheme::RsaPss(_) => {
                        rk.sign_with_rng(&mut rand_core::OsRng, h.pss(), digest)
                    }
                    _ => rk.sign(h.pkcs1v15(), digest),
                };
                sig.map_err(|e| Error::Sign(format!("RSA: {e}")))
            }
            _ => Err(Error::Unsupported(format!(
                "{} with a {} key",
                scheme.name(),
                self.public_key().describe()
            ))),
        }
    }
}

/// ECDSA over a digest with the private scalar `d`; fixed-width r‖s.
fn sign_ecdsa(curve: Curve, d: &[u8], digest: &[u8]) -> Result<Vec<u8>, Error> {
    use signature::hazmat::PrehashSigner;
    // ECDSA takes the leftmost bits of a long hash and the whole of a short one; the
    // ecdsa crate wants at least half the field, so pad a short digest with zeros on the
    // left (the same integer).
    let half = curve.field_bytes() / 2 + 1;
    let mut e = vec![0u8; half.saturating_sub(digest.len())];
    e.extend_from_slice(digest);
    let bad_scalar = || Error::Malformed(format!("{} private scalar out of range", curve.name()));
    let fail = |x: ecdsa::Error| Error::Sign(format!("ECDSA: {x}"));
    let rs = match curve {
        Curve::P256 => {
            let k = p256::ecdsa::SigningKey::from_slice(d).map_err(|_| bad_scalar())?;
            let s: p256::ecdsa::Signature = k.sign_prehash(&e).map_err(fail)?;
            s.to_bytes().to_vec()
        }
        Curve::P384 => {
            let k = p384::ecdsa::SigningKey::from_slice(d).map_err(|_| bad_scalar())?;
            let s: p384::ecdsa::Signature = k.sign_prehash(&e).map_err(fail)?;
            s.to_bytes().to_vec()
        }
        Curve::P521 => {
            let k = p521::ecdsa::SigningKey::from_slice(d).map_err(|_| bad_scalar())?;
            let s: p521::ecdsa::Signature = k.sign_prehash(&e).map_err(fail)?;
            s.to_bytes().to_vec()
        }
        Curve::BrainpoolP256r1 | Curve::BrainpoolP256t1 => {
            return Err(Error::Unsupported(format!(
                "signing with {} keys in software",
                curve.name()
            )))
        }
    };
    Ok(rs)
}

/// A private key held in memory, as a [`super::Signer`]: `pki` and the image formats
/// sign with it exactly as with a key on a token. For tests and rehearsals; a
/// production key belongs on a token.
#[derive(Debug)]
pub struct FileSigner {
    label: String,
    key: PrivateKey,
}

impl FileSigner {
    /// `label` names the key in messages and records (a file name, say).
    pub fn new(label: impl Into<String>, key: PrivateKey) -> Self {
        FileSigner {
            label: label.into(),
            key,
        }
    }

    /// Read a private key file (any form [`PrivateKey::from_bytes`] reads); the label is
    /// the file's path. Errors name the file.
    pub fn from_file(path: &std::path::Path, passphrase: Option<&Secret>) -> Result<Self, String> {
        let bytes = Zeroizing::new(
            std::fs::read(path).map_err(|e| format!("{}: {}", path.display(), e.kind()))?,
        );
        let key = PrivateKey::from_bytes(&bytes, passphrase)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(FileSigner::new(path.display().to_string(), key))
    }
}

impl super::Signer for FileSigner {
    fn label(&self) -> &str {
        &self.label
    }
    fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }
    fn sign_digest(
        &mut self,
        scheme: SignScheme,
        digest: &[u8],
    ) -> Result<Vec<u8>, super::SignError> {
        self.key
            .sign_digest(scheme, digest)
            .map_err(|e| super::SignError::Key {
                label: self.label.clone(),
                source: Box::new(e),
            })
    }
}

const CONVERT_HINT: &str = "convert it with `openssl pkcs8 -topk8 -v2 aes256 -in KEY -out NEW.pem`";

/// PKCS#5 PBES2 (the only password-based scheme we decrypt).
const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
/// PKCS#5 v1.5 PBES1 schemes live under this arc, PKCS#12 PBE under the next.
const PKCS5_ARC: &str = "1.2.840.113549.1.5.";
const PKCS12_PBE_ARC: &str = "1.2.840.113549.1.12.1.";

/// EncryptedPrivateKeyInfo read loosely, so an unsupported scheme is named, not
/// reported as garbage.
#[derive(der::Sequence)]
struct RawEncrypted<'a> {
    algorithm: spki::AlgorithmIdentifierRef<'a>,
    data: der::asn1::OctetStringRef<'a>,
}

struct PemBlock {
    label: String,
    der: Zeroizing<Vec<u8>>,
    /// From a preceding `EC PARAMETERS` block.
    curve: Option<Curve>,
}

/// The first private-key PEM block in `text`, and the curve of any `EC PARAMETERS` block
/// before it.
fn private_pem_block(text: &str) -> Result<PemBlock, Error> {
    super::fitness::one_pem_key(text)?;
    let mut rest = text;
    let mut curve = None;
    let mut seen = Vec::new();
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let after = &block["-----BEGIN ".len()..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| Error::Malformed("PEM header not terminated".into()))?;
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block
            .find(&end_marker)
            .ok_or_else(|| Error::Malformed(format!("PEM block {label:?} has no END line")))?
            + end_marker.len();
        let one = &block[..end];
        if label == "EC PARAMETERS" {
            let (_, der) = super::pem_decode(one)?;
            let oid = ObjectIdentifier::from_der(&der).map_err(|_| {
                Error::Unsupported("EC PARAMETERS with explicit curve parameters".into())
            })?;
            curve = Some(curve_from_oid(&oid)?);
        } else if label.ends_with("PRIVATE KEY") {
            if one.contains("Proc-Type:") && one.contains("ENCRYPTED") {
                return Err(Error::Unsupported(format!(
                    "traditional OpenSSL encrypted PEM (Proc-Type: 4,ENCRYPTED); {CONVERT_HINT}"
                )));
            }
            let (label, der) = super::pem_decode(one)?;
            return Ok(PemBlock {
                label,
                der: Zeroizing::new(der),
                curve,
            });
        } else {
            seen.push(label.to_string());
        }
        rest = &block[end..];
    }
    Err(Error::Malformed(if seen.is_empty() {
        "no private key PEM block".into()
    } else {
        format!("no private key PEM block (found {})", seen.join(", "))
    }))
}

fn curve_from_oid(oid: &ObjectIdentifier) -> Result<Curve, Error> {
    Curve::from_oid(oid).ok_or_else(|| {
        Error::Unsupported(format!(
            "EC curve {oid} (supported: P-256, P-384, P-521, brainpoolP256r1/t1)"
        ))
    })
}

fn malformed(what: &str) -> impl FnOnce(der::Error) -> Error + '_ {
    move |e| Error::Malformed(format!("{what}: {e}"))
}

fn from_encrypted_pkcs8(der: &[u8], passphrase: Option<&Secret>) -> Result<PrivateKey, Error> {
    let raw = RawEncrypted::from_der(der).map_err(malformed("encrypted PKCS#8"))?;
    let oid = raw.algorithm.oid;
    let oid_text = oid.to_string();
    if oid != PBES2 {
        if oid_text.starts_with(PKCS5_ARC) || oid_text.starts_with(PKCS12_PBE_ARC) {
            return Err(Error::Unsupported(format!(
                "encrypted PKCS#8 with legacy PBES1 encryption ({oid_text}, as `openssl pkcs8 -v1` writes it); {CONVERT_HINT}"
            )));
        }
        return Err(Error::Unsupported(format!(
            "encrypted PKCS#8 with encryption scheme {oid_text}; {CONVERT_HINT}"
        )));
    }
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(der).map_err(|e| {
        Error::Unsupported(format!(
            "encrypted PKCS#8 parameters ({e}): only PBES2 with PBKDF2 and AES-CBC or DES-EDE3-CBC is supported; {CONVERT_HINT}"
        ))
    })?;
    check_kdf_cost(&info.encryption_algorithm)?;
    let pass = passphrase.ok_or(Error::NeedPassphrase)?;
    let doc = info.decrypt(pass.expose()).map_err(|e| match e {
        // pkcs5 0.7 reports a bad CBC padding (the sign of a wrong passphrase) as
        // EncryptFailed even while decrypting.
        pkcs8::Error::EncryptedPrivateKey(
            pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed,
        ) => Error::Decrypt,
        pkcs8::Error::EncryptedPrivateKey(other) => {
            Error::Unsupported(format!("encrypted PKCS#8 ({other}); {CONVERT_HINT}"))
        }
        _ => Error::Decrypt,
    })?;
    // A wrong passphrase can pass the padding check by chance; then the plaintext is
    // not a key.
    from_pkcs8(doc.as_bytes()).map_err(|e| match e {
        Error::Malformed(_) => Error::Decrypt,
        other => other,
    })
}

/// PBKDF2 iterations accepted (OpenSSL writes 2048, current guidance is 600000).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// scrypt memory (128·r·N bytes) accepted; OpenSSL's own default limit is 32 MiB.
const MAX_SCRYPT_MEMORY: u64 = 256 << 20;

/// Refuse key-derivation parameters that would run for hours or allocate gigabytes
/// before the passphrase is even tried (the file says how costly its KDF is).
fn check_kdf_cost(scheme: &pkcs8::pkcs5::EncryptionScheme<'_>) -> Result<(), Error> {
    use pkcs8::pkcs5::{pbes2::Kdf, EncryptionScheme};
    let EncryptionScheme::Pbes2(p) = scheme else {
        return Ok(());
    };
    match &p.kdf {
        Kdf::Pbkdf2(k) if k.iteration_count > MAX_PBKDF2_ITERATIONS => {
            Err(Error::Unsupported(format!(
                "encrypted PKCS#8 with {} PBKDF2 iterations (at most {MAX_PBKDF2_ITERATIONS}); {CONVERT_HINT}",
                k.iteration_count
            )))
        }
        Kdf::Scrypt(k) => {
            let memory = 128u64
                .saturating_mul(u64::from(k.block_size))
                .saturating_mul(k.cost_parameter);
            let work = memory.saturating_mul(u64::from(k.parallelization.max(1)));
            if memory > MAX_SCRYPT_MEMORY || work > 4 * MAX_SCRYPT_MEMORY {
                return Err(Error::Unsupported(format!(
                    "encrypted PKCS#8 with scrypt N={} r={} p={} (needs more than {} MiB); {CONVERT_HINT}",
                    k.cost_parameter,
                    k.block_size,
                    k.parallelization,
                    MAX_SCRYPT_MEMORY >> 20
                )));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn from_pkcs8(der: &[u8]) -> Result<PrivateKey, Error> {
    let info = pkcs8::PrivateKeyInfo::from_der(der).map_err(malformed("PKCS#8 private key"))?;
    let oid = info.algorithm.oid;
    if oid == rfc5912::RSA_ENCRYPTION || oid == rfc5912::ID_RSASSA_PSS {
        return from_pkcs1(info.private_key);
    }
    if oid == rfc5912::ID_EC_PUBLIC_KEY {
        let curve_oid: ObjectIdentifier = info
            .algorithm
            .parameters_oid()
            .map_err(|_| Error::Unsupported("EC key with explicit curve parameters".into()))?;
        return from_sec1(info.private_key, Some(curve_from_oid(&curve_oid)?));
    }
    Err(Error::Unsupported(format!(
        "private key algorithm {oid} (supported: RSA and EC)"
    )))
}

fn from_pkcs1(der: &[u8]) -> Result<PrivateKey, Error> {
    let k = pkcs1::RsaPrivateKey::from_der(der).map_err(malformed("RSA private key"))?;
    if k.other_prime_infos.is_some() {
        return Err(Error::Unsupported("multi-prime RSA keys".into()));
    }
    // Check the numbers belong together (from_components validates n = p·q and that d
    // inverts e), so no backend is ever handed a corrupt key.
    let big = |u: der::asn1::UintRef<'_>| rsa::BigUint::from_bytes_be(u.as_bytes());
    rsa::RsaPrivateKey::from_components(
        big(k.modulus),
        big(k.public_exponent),
        big(k.private_exponent),
        vec![big(k.prime1), big(k.prime2)],
    )
    .map_err(|e| Error::Malformed(format!("RSA private key is inconsistent ({e})")))?;
    let z = |u: der::asn1::UintRef<'_>| Zeroizing::new(u.as_bytes().to_vec());
    let public = PublicKey::rsa(k.modulus.as_bytes(), k.public_exponent.as_bytes())?;
    let key = RsaPrivate {
        n: k.modulus.as_bytes().to_vec(),
        e: k.public_exponent.as_bytes().to_vec(),
        d: z(k.private_exponent),
        p: z(k.prime1),
        q: z(k.prime2),
        dp: z(k.exponent1),
        dq: z(k.exponent2),
        qinv: z(k.coefficient),
    };
    Ok(PrivateKey::Rsa {
        key: Box::new(key),
        public,
    })
}

/// SEC1 `ECPrivateKey`; `outer` is the curve named outside it (PKCS#8 algorithm or an
/// `EC PARAMETERS` block).
fn from_sec1(der: &[u8], outer: Option<Curve>) -> Result<PrivateKey, Error> {
    let k = sec1::EcPrivateKey::from_der(der).map_err(malformed("EC private key"))?;
    let inner = match k.parameters {
        Some(p) => {
            let oid = p.named_curve().ok_or_else(|| {
                Error::Unsupported("EC key with explicit curve parameters".into())
            })?;
            Some(curve_from_oid(&oid)?)
        }
        None => None,
    };
    let curve = match (inner, outer) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::Malformed(format!(
                "EC key names two curves ({} and {})",
                a.name(),
                b.name()
            )))
        }
        (Some(c), _) | (None, Some(c)) => c,
        (None, None) => return Err(Error::Malformed("EC key does not name its curve".into())),
    };
    let n = curve.field_bytes();
    if k.private_key.is_empty() || k.private_key.len() > n {
        return Err(Error::Malformed(format!(
            "{} private scalar has {} bytes",
            curve.name(),
            k.private_key.len()
        )));
    }
    let mut d = Zeroizing::new(vec![0u8; n]);
    d[n - k.private_key.len()..].copy_from_slice(k.private_key);
    let derived = derive_ec_public(curve, &d)?;
    let public = match (derived, k.public_key) {
        (Some(p), Some(stated)) => {
            if PublicKey::ec(curve, stated)? != p {
                return Err(Error::Malformed(
                    "EC private key does not match the public key stored with it".into(),
                ));
            }
            p
        }
        (Some(p), None) => p,
        (None, Some(stated)) => PublicKey::ec(curve, stated)?,
        (None, None) => {
            return Err(Error::Unsupported(format!(
                "{} private key without its public key",
                curve.name()
            )))
        }
    };
    Ok(PrivateKey::Ec { curve, d, public })
}

/// The public point for `d`, where we have the curve arithmetic (NIST curves).
fn derive_ec_public(curve: Curve, d: &[u8]) -> Result<Option<PublicKey>, Error> {
    use elliptic_curve::sec1::ToEncodedPoint;
    let bad = || Error::Malformed(format!("{} private scalar out of range", curve.name()));
    let point = match curve {
        Curve::P256 => p256::SecretKey::from_slice(d)
            .map_err(|_| bad())?
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        Curve::P384 => p384::SecretKey::from_slice(d)
            .map_err(|_| bad())?
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        Curve::P521 => p521::SecretKey::from_slice(d)
            .map_err(|_| bad())?
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec(),
        Curve::BrainpoolP256r1 | Curve::BrainpoolP256t1 => return Ok(None),
    };
    PublicKey::ec(curve, &point).map(Some)
}
