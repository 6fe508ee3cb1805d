//! Key algorithms, curves, hashes and signature schemes, the public/private key
//! encodings every other module shares, and the [`Signer`] a key that signs digests
//! implements (a token key in `hsm`; [`FileSigner`], a private key in memory, here).
//! Pure: bytes in, bytes out. Must not touch `hsm` or files beyond reading a key file.

pub mod ecdsa_tables;
pub mod fitness;
pub mod private;
pub mod public;
pub mod signer;

use std::fmt;

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use sha2::Digest;

pub use private::{FileSigner, PrivateKey};
pub use public::PublicKey;
pub use signer::{sign_checked, Authority, Encoding, SignError, Signer};

/// Why a key, signature or digest was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not a key (DER, PEM, point or integer encoding wrong); the message
    /// names what.
    #[error("malformed key: {0}")]
    Malformed(String),
    /// A well-formed key of a type or curve Officiant cannot use here.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The signature does not verify over the digest with this public key.
    #[error("signature does not verify")]
    BadSignature,
    /// An encrypted private key did not decrypt: wrong passphrase, or the file is corrupt.
    #[error("wrong passphrase or corrupt encrypted key")]
    Decrypt,
    /// The private key file is encrypted and no passphrase was given.
    #[error("encrypted key needs a passphrase")]
    NeedPassphrase,
    /// The digest handed in is not as long as its hash.
    #[error("digest has {got} bytes, {} needs {}", hash.name(), hash.len())]
    DigestLength {
        /// Bytes given.
        got: usize,
        /// The hash the scheme names.
        hash: HashAlg,
    },
    /// The cryptography library refused to sign (its message).
    #[error("signing failed: {0}")]
    Sign(String),
    /// A well-formed key that must not be used here (see [`fitness`]).
    #[error("key refused: {0}")]
    Unfit(String),
}

/// Key algorithm as scripts and the CLI name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 (secp256r1).
    #[serde(rename = "ec-p256")]
    EcP256,
    /// ECDSA on NIST P-384 (secp384r1).
    #[serde(rename = "ec-p384")]
    EcP384,
    /// ECDSA on NIST P-521 (secp521r1).
    #[serde(rename = "ec-p521")]
    EcP521,
    /// RSA, 2048-bit modulus, e = 65537.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA, 3072-bit modulus, e = 65537.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA, 4096-bit modulus, e = 65537.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order messages list them.
    pub const ALL: [KeyAlgorithm; 6] = [
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::EcP521,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    /// The name scripts and `--algorithm` use: `ec-p256` … `rsa-4096`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcP256 => "ec-p256",
            KeyAlgorithm::EcP384 => "ec-p384",
            KeyAlgorithm::EcP521 => "ec-p521",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }

    /// The algorithm a script or `--algorithm` names; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == s)
    }

    /// The curve of an EC algorithm; `None` for RSA.
    pub fn curve(self) -> Option<Curve> {
        match self {
            KeyAlgorithm::EcP256 => Some(Curve::P256),
            KeyAlgorithm::EcP384 => Some(Curve::P384),
            KeyAlgorithm::EcP521 => Some(Curve::P521),
            _ => None,
        }
    }

    /// The modulus size in bits of an RSA algorithm; `None` for EC.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyAlgorithm::Rsa2048 => Some(2048),
            KeyAlgorithm::Rsa3072 => Some(3072),
            KeyAlgorithm::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// An RSA algorithm.
    pub fn is_rsa(self) -> bool {
        self.rsa_bits().is_some()
    }

    /// The algorithm of an existing public key, if it is one we name.
    pub fn of(key: &PublicKey) -> Option<Self> {
        match key {
            PublicKey::Ec { curve, .. } => match curve {
                Curve::P256 => Some(KeyAlgorithm::EcP256),
                Curve::P384 => Some(KeyAlgorithm::EcP384),
                Curve::P521 => Some(KeyAlgorithm::EcP521),
                _ => None,
            },
            PublicKey::Rsa { .. } => match key.bits() {
                2048 => Some(KeyAlgorithm::Rsa2048),
                3072 => Some(KeyAlgorithm::Rsa3072),
                4096 => Some(KeyAlgorithm::Rsa4096),
                _ => None,
            },
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Elliptic curves Officiant reads. Keys are generated only on the NIST curves; brainpool
/// keys are read (STM32MP) but not yet checked in software.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1, prime256v1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
    /// brainpoolP256r1 (RFC 5639).
    BrainpoolP256r1,
    /// brainpoolP256t1 (RFC 5639, twisted): the STM32MP ROM's second algorithm.
    BrainpoolP256t1,
}

impl Curve {
    /// The name messages use: `P-256`, `brainpoolP256t1`, ….
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
            Curve::BrainpoolP256r1 => "brainpoolP256r1",
            Curve::BrainpoolP256t1 => "brainpoolP256t1",
        }
    }

    /// The named-curve OID in a SubjectPublicKeyInfo.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => rfc5912::SECP_256_R_1,
            Curve::P384 => rfc5912::SECP_384_R_1,
            Curve::P521 => rfc5912::SECP_521_R_1,
            Curve::BrainpoolP256r1 => public::BRAINPOOL_P256R1,
            Curve::BrainpoolP256t1 => public::BRAINPOOL_P256T1,
        }
    }

    /// The curve of a named-curve OID; `None` for curves Officiant does not read.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [
            Curve::P256,
            Curve::P384,
            Curve::P521,
            Curve::BrainpoolP256r1,
            Curve::BrainpoolP256t1,
        ]
        .into_iter()
        .find(|c| c.oid() == *oid)
    }

    /// Bytes in one coordinate (and in r or s).
    pub fn field_bytes(self) -> usize {
        match self {
            Curve::P256 | Curve::BrainpoolP256r1 | Curve::BrainpoolP256t1 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// Order size in bits: 256, 384 or 521.
    pub fn bits(self) -> usize {
        match self {
            Curve::P256 | Curve::BrainpoolP256r1 | Curve::BrainpoolP256t1 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    /// SHA-256 for 256-bit curves, SHA-384 for P-384, SHA-512 for P-521.
    pub fn default_hash(self) -> HashAlg {
        match self {
            Curve::P384 => HashAlg::Sha384,
            Curve::P521 => HashAlg::Sha512,
            _ => HashAlg::Sha256,
        }
    }
}

/// Hash algorithms of the SHA-2 family that signatures and fingerprints use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-384 (48 bytes).
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashAlg {
    /// The name messages use: `SHA-256`, `SHA-384`, `SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "SHA-256",
            HashAlg::Sha384 => "SHA-384",
            HashAlg::Sha512 => "SHA-512",
        }
    }

    /// Digest length in bytes.
    #[allow(clippy::len_without_is_empty)] // a digest is never empty
    pub fn len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// The digest of `data`, [`HashAlg::len`] bytes.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            HashAlg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            HashAlg::Sha384 => sha2::Sha384::digest(data).to_vec(),
            HashAlg::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// A streaming hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            HashAlg::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlg::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashAlg::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// The DER DigestInfo prefix that PKCS#1 v1.5 puts before the hash (the rsa crate's
    /// own table).
    pub fn digest_info_prefix(self) -> Box<[u8]> {
        self.pkcs1v15().prefix
    }

    /// RSASSA-PKCS1-v1_5 padding for a digest of this hash.
    pub(crate) fn pkcs1v15(self) -> rsa::Pkcs1v15Sign {
        match self {
            HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            HashAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }

    /// RSASSA-PSS with MGF1 over this hash and salt length = hash length (what tokens,
    /// OpenSSL and cert_create use with SHA-256).
    pub(crate) fn pss(self) -> rsa::Pss {
        match self {
            HashAlg::Sha256 => rsa::Pss::new_with_salt::<sha2::Sha256>(32),
            HashAlg::Sha384 => rsa::Pss::new_with_salt::<sha2::Sha384>(48),
            HashAlg::Sha512 => rsa::Pss::new_with_salt::<sha2::Sha512>(64),
        }
    }
}

/// A streaming hash; feed it with `update`, read it with `finish`.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-384 state.
    Sha384(sha2::Sha384),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Hash the next `data` bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How a token signs a digest. ECDSA signatures cross the `Token` boundary as fixed-width
/// r‖s; [`ecdsa_fixed_to_der`] makes the DER that OpenSSL and X.509 want.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignScheme {
    /// ECDSA over a digest of this hash; r‖s fixed-width, big-endian, each
    /// [`Curve::field_bytes`] long.
    Ecdsa(HashAlg),
    /// RSASSA-PSS, MGF1 with the same hash, salt length = hash length.
    RsaPss(HashAlg),
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(HashAlg),
}

impl SignScheme {
    /// The hash the digest must be made with.
    pub fn hash(self) -> HashAlg {
        match self {
            SignScheme::Ecdsa(h) | SignScheme::RsaPss(h) | SignScheme::RsaPkcs1(h) => h,
        }
    }

    /// How messages and transcripts name it: `ECDSA with SHA-256`, `RSA-PSS with SHA-256`,
    /// ….
    pub fn name(self) -> String {
        match self {
            SignScheme::Ecdsa(h) => format!("ECDSA with {}", h.name()),
            SignScheme::RsaPss(h) => format!("RSA-PSS with {}", h.name()),
            SignScheme::RsaPkcs1(h) => format!("RSA PKCS#1 v1.5 with {}", h.name()),
        }
    }

    /// An RSA scheme (PSS or PKCS#1 v1.5).
    pub fn is_rsa(self) -> bool {
        !matches!(self, SignScheme::Ecdsa(_))
    }
}

/// Convert fixed-width r‖s to a DER `ECDSA-Sig-Value`.
pub fn ecdsa_fixed_to_der(rs: &[u8]) -> Result<Vec<u8>, Error> {
    use der::asn1::UintRef;
    use der::Encode;
    if rs.is_empty() || !rs.len().is_multiple_of(2) {
        return Err(Error::Malformed(format!("ECDSA r‖s of {} bytes", rs.len())));
    }
    let (r, s) = rs.split_at(rs.len() / 2);
    #[derive(der::Sequence)]
    struct SigValue<'a> {
        r: UintRef<'a>,
        s: UintRef<'a>,
    }
    let strip = |b: &'_ [u8]| -> Vec<u8> {
        let i = b.iter().position(|&x| x != 0).unwrap_or(b.len() - 1);
        b[i..].to_vec()
    };
    let (r, s) = (strip(r), strip(s));
    let v = SigValue {
        r: UintRef::new(&r).map_err(|e| Error::Malformed(e.to_string()))?,
        s: UintRef::new(&s).map_err(|e| Error::Malformed(e.to_string()))?,
    };
    v.to_der().map_err(|e| Error::Malformed(e.to_string()))
}

/// Accept an ECDSA signature as DER or as fixed-width r‖s; return r‖s for `curve`.
pub fn ecdsa_to_fixed(curve: Curve, sig: &[u8]) -> Result<Vec<u8>, Error> {
    use der::asn1::UintRef;
    use der::Decode;
    let n = curve.field_bytes();
    if sig.len() == 2 * n && sig.first() != Some(&0x30) {
        return Ok(sig.to_vec());
    }
    #[derive(der::Sequence)]
    struct SigValue<'a> {
        r: UintRef<'a>,
        s: UintRef<'a>,
    }
    let v = SigValue::from_der(sig).or_else(|e| {
        if sig.len() == 2 * n {
            Ok(SigValue {
                r: UintRef::new(&sig[..n]).map_err(|_| Error::BadSignature)?,
                s: UintRef::new(&sig[n..]).map_err(|_| Error::BadSignature)?,
            })
        } else {
            Err(Error::Malformed(format!("ECDSA signature: {e}")))
        }
    })?;
    let mut out = vec![0u8; 2 * n];
    for (i, part) in [v.r.as_bytes(), v.s.as_bytes()].into_iter().enumerate() {
        if part.len() > n {
            return Err(Error::BadSignature);
        }
        out[i * n + n - part.len()..(i + 1) * n].copy_from_slice(part);
    }
    Ok(out)
}

/// If `bytes` look like PEM text, return it as `&str`.
pub(crate) fn pem_text(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    s.contains("-----BEGIN ").then_some(s)
}

/// Decode the first PEM block in `text` (text before it, such as OpenSSL's
/// "Bag Attributes" or a certificate's `-text` dump, is skipped). A text holding more
/// than one key or certificate is refused: which one is meant would be a guess.
pub(crate) fn pem_decode(text: &str) -> Result<(String, Vec<u8>), Error> {
    fitness::one_pem_key(text)?;
    let start = text
        .find("-----BEGIN ")
        .ok_or_else(|| Error::Malformed("no PEM block".into()))?;
    let block = &text[start..];
    let label_end = block[11..]
        .find("-----")
        .ok_or_else(|| Error::Malformed("PEM header not terminated".into()))?;
    let label = block[11..11 + label_end].to_string();
    let end_marker = format!("-----END {label}-----");
    let end = block
        .find(&end_marker)
        .ok_or_else(|| Error::Malformed(format!("PEM block {label:?} has no END line")))?;
    let one = &block[..end + end_marker.len()];
    let (l, der) = der::pem::decode_vec(one.as_bytes())
        .map_err(|e| Error::Malformed(format!("PEM block {label:?}: {e}")))?;
    Ok((l.to_string(), der))
}

pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// Load a public key from a file (PEM or DER; SPKI, PKCS#1, certificate). The error
/// names the file.
pub fn load_public_key(path: &std::path::Path) -> Result<PublicKey, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {}", path.display(), e))?;
    PublicKey::from_bytes(&bytes).map_err(|e| format!("{}: {}", path.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_der_roundtrip_keeps_leading_zeros() {
        let mut rs = vec![0u8; 64];
        rs[1] = 0x80; // r has a leading zero byte and a high bit after it
        rs[63] = 1;
        let der = ecdsa_fixed_to_der(&rs).unwrap();
        assert_eq!(ecdsa_to_fixed(Curve::P256, &der).unwrap(), rs);
    }

    #[test]
    fn algorithms_parse_by_name() {
        for a in KeyAlgorithm::ALL {
            assert_eq!(KeyAlgorithm::parse(a.name()), Some(a));
        }
        assert_eq!(KeyAlgorithm::parse("rsa-1024"), None);
    }
}
