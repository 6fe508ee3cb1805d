//! AHAB (i.MX 8QXP/8QM, 8ULP, 91/93/95): the SRK table of four SRK records and the SRK
//! hash burned into the fuses. Unlike HAB4 every length is little-endian.
//!
//! Byte-identical to `nxpcrypto rot export`/`calculate-hash -f mimx9352` (RSA records
//! as RSA-PSS, fuse = SHA-256 of the table) and to `srktool -a -s DIGEST` (RSA records as
//! PKCS#1 v1.5, efuse file = SHA-512 of the table); tests/imx_ahab_fuses.rs runs both.
//! The table also sits inside every signed AHAB container, so it is parsed back here.
//! Pure: certificates in, bytes and text out; no I/O, no token.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256, Sha512};

use crate::keys::{Curve, HashAlg, PublicKey};

/// AHAB tables always hold exactly four SRKs (srktool: "AHAB always expects 4 SRKs").
pub const SRK_COUNT: usize = 4;

/// Table header tag (the header is `D7 · length u16 LE · version`).
pub const TABLE_TAG: u8 = 0xD7;
/// Table header version byte.
pub const TABLE_VERSION: u8 = 0x42;
const RECORD_TAG: u8 = 0xE1;
const RECORD_FIXED: usize = 12;
const FLAG_CA: u8 = 0x80;

/// Signing algorithm byte of a record.
pub const ALG_RSA_PKCS1: u8 = 0x21;
/// Record algorithm: RSA-PSS (spsdk, i.MX 9 ELE).
pub const ALG_RSA_PSS: u8 = 0x22;
/// Record algorithm: ECDSA.
pub const ALG_ECDSA: u8 = 0x27;

/// Why an AHAB SRK table cannot be built or read, or a family or hash width is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The number of certificates given (AHAB needs exactly [`SRK_COUNT`]).
    #[error("an AHAB SRK table needs exactly 4 certificates, got {0}")]
    Count(usize),
    /// One certificate cannot be an AHAB SRK (not X.509, or a key AHAB cannot hold).
    #[error("SRK certificate {}: {msg}", index + 1)]
    Cert {
        /// The certificate's 0-based position in the caller's list (messages count
        /// from 1).
        index: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// The SRKs are not all one key type (algorithm and size).
    #[error("SRK {} is {other} but SRK 1 is {first}: all four AHAB SRKs must be the same key type", index + 1)]
    Mixed {
        /// 0-based position of the first SRK that differs (messages count from 1).
        index: usize,
        /// SRK 1's key type, described.
        first: String,
        /// The differing SRK's key type, described.
        other: String,
    },
    /// Some SRKs are CA keys and some are not; AHAB needs one kind in a table.
    #[error(
        "SRK certificates mix CA and non-CA keys (CA: {ca:?}, non-CA: {non_ca:?}); \
         AHAB needs all four of one kind"
    )]
    CaMix {
        /// 1-based positions of the CA certificates.
        ca: Vec<usize>,
        /// 1-based positions of the non-CA certificates.
        non_ca: Vec<usize>,
    },
    /// Bytes read as an AHAB SRK table are not one (tag, length, record, algorithm,
    /// re-encoding); the message names the part.
    #[error("SRK table: {0}")]
    Malformed(String),
    /// `--family` named no AHAB family Officiant knows; holds the name given.
    #[error("unknown AHAB family {0:?} (imx8qxp, imx8qm, imx8ulp, imx93 or imx95)")]
    Family(String),
    /// The fuse hash given is not the width the family's SRK_HASH fuses hold.
    #[error("{family} burns a {want}-bit SRK hash; the hash given has {got} bits")]
    HashWidth {
        /// The family asked for.
        family: Family,
        /// Bits its SRK_HASH fuses hold (256 or 512).
        want: usize,
        /// Bits in the hash given.
        got: usize,
    },
}

impl Error {
    /// The 0-based certificate index the error is about, if any (the CLI names the file).
    pub fn cert_index(&self) -> Option<usize> {
        match self {
            Error::Cert { index, .. } | Error::Mixed { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// How RSA SRK records name their signature scheme: srktool writes PKCS#1 v1.5, spsdk
/// (and i.MX 9 ELE) RSA-PSS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaRecord {
    /// `21`: RSA PKCS#1 v1.5, as srktool writes it.
    Pkcs1,
    /// `22`: RSA-PSS, as spsdk writes it (and i.MX 9's ELE expects).
    Pss,
}

/// One SRK, read from a certificate or a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srk {
    /// The SRK's public key.
    pub key: PublicKey,
    /// Whether the record's flags byte says CA (`0x80`).
    pub ca: bool,
    /// The record's signing algorithm byte (`21`, `22`, `27`).
    pub algorithm: u8,
    /// The hash the record names: SHA-384 for P-384, SHA-512 for P-521, else SHA-256.
    pub hash: HashAlg,
}

impl Srk {
    /// "EC P-256 (ECDSA, SHA-256)", for messages.
    pub fn describe(&self) -> String {
        let alg = match self.algorithm {
            ALG_RSA_PKCS1 => "RSA PKCS#1 v1.5",
            ALG_RSA_PSS => "RSA-PSS",
            _ => "ECDSA",
        };
        match &self.key {
            PublicKey::Rsa { e, .. } => {
                let exp = if e.len() <= 8 {
                    e.iter()
                        .fold(0u64, |v, &b| v << 8 | u64::from(b))
                        .to_string()
                } else {
                    format!("0x{}", hex::encode(e))
                };
                format!(
                    "{} e={exp} ({alg}, {})",
                    self.key.describe(),
                    self.hash.name()
                )
            }
            PublicKey::Ec { .. } => {
                format!("{} ({alg}, {})", self.key.describe(), self.hash.name())
            }
        }
    }
}

/// A validated AHAB SRK table: four SRKs of one type, all CA or all non-CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrkTable {
    srks: Vec<Srk>,
    bytes: Vec<u8>,
}

/// The record's size code and the widths of its two parameters.
fn key_size(key: &PublicKey) -> Result<(u8, usize, usize), String> {
    match key {
        PublicKey::Ec { curve, .. } => match curve {
            Curve::P256 => Ok((1, 32, 32)),
            Curve::P384 => Ok((2, 48, 48)),
            Curve::P521 => Ok((3, 66, 66)),
            other => Err(format!(
                "EC {} key: AHAB SRKs are EC P-256, P-384 or P-521",
                other.name()
            )),
        },
        PublicKey::Rsa { e, .. } => {
            let code = match key.bits() {
                2048 => 5,
                3072 => 6,
                4096 => 7,
                bits => {
                    return Err(format!(
                        "RSA-{bits} key: AHAB SRKs are RSA 2048, 3072 or 4096 bits"
                    ))
                }
            };
            Ok((code, key.bits() / 8, e.len()))
        }
    }
}

fn hash_code(h: HashAlg) -> u8 {
    match h {
        HashAlg::Sha256 => 0,
        HashAlg::Sha384 => 1,
        HashAlg::Sha512 => 2,
    }
}

fn hash_of_code(c: u8) -> Option<HashAlg> {
    match c {
        0 => Some(HashAlg::Sha256),
        1 => Some(HashAlg::Sha384),
        2 => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// The SRK for `key` as spsdk and srktool describe it.
pub fn srk_for_key(key: PublicKey, ca: bool, rsa: RsaRecord) -> Result<Srk, String> {
    key_size(&key)?;
    let (algorithm, hash) = match &key {
        PublicKey::Ec { curve, .. } => (ALG_ECDSA, curve.default_hash()),
        PublicKey::Rsa { .. } => (
            match rsa {
                RsaRecord::Pkcs1 => ALG_RSA_PKCS1,
                RsaRecord::Pss => ALG_RSA_PSS,
            },
            HashAlg::Sha256,
        ),
    };
    Ok(Srk {
        key,
        ca,
        algorithm,
        hash,
    })
}

/// Read one SRK certificate (PEM or DER): its key and srktool's CA flag.
pub fn srk_from_certificate(bytes: &[u8], rsa: RsaRecord) -> Result<Srk, String> {
    let der = certificate_der(bytes)?;
    let cert = <x509_cert::Certificate as der::Decode>::from_der(&der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let ca = crate::formats::hab4::is_ca(&cert)?;
    let key = PublicKey::from_certificate_der(&der).map_err(|e| format!("certificate key: {e}"))?;
    srk_for_key(key, ca, rsa)
}

/// The DER of a certificate given as PEM or DER.
pub fn certificate_der(bytes: &[u8]) -> Result<Vec<u8>, String> {
    match crate::keys::pem_text(bytes) {
        Some(text) => {
            let (label, der) = crate::keys::pem_decode(text).map_err(|e| e.to_string())?;
            if label != "CERTIFICATE" {
                return Err(format!(
                    "expected a PEM CERTIFICATE, found a PEM {label:?} block"
                ));
            }
            Ok(der)
        }
        None => Ok(bytes.to_vec()),
    }
}

/// Build the table from four certificates (each PEM or DER), in SRK order.
pub fn srk_table(certs: &[Vec<u8>], rsa: RsaRecord) -> Result<SrkTable, Error> {
    if certs.len() != SRK_COUNT {
        return Err(Error::Count(certs.len()));
    }
    let srks = certs
        .iter()
        .enumerate()
        .map(|(index, b)| srk_from_certificate(b, rsa).map_err(|msg| Error::Cert { index, msg }))
        .collect::<Result<Vec<_>, _>>()?;
    SrkTable::from_srks(srks)
}

fn record(srk: &Srk) -> Result<Vec<u8>, String> {
    let (size, w1, w2) = key_size(&srk.key)?;
    let (p1, p2): (Vec<u8>, Vec<u8>) = match &srk.key {
        PublicKey::Rsa { n, e } => (left_pad(n, w1)?, e.clone()),
        PublicKey::Ec { .. } => {
            let (x, y) = srk.key.ec_xy().ok_or("EC key without coordinates")?;
            (x.to_vec(), y.to_vec())
        }
    };
    let len = RECORD_FIXED + w1 + w2;
    let mut r = Vec::with_capacity(len);
    r.push(RECORD_TAG);
    r.extend_from_slice(&u16_le(len)?);
    r.push(srk.algorithm);
    r.push(hash_code(srk.hash));
    r.push(size);
    r.push(0);
    r.push(if srk.ca { FLAG_CA } else { 0 });
    r.extend_from_slice(&u16_le(w1)?);
    r.extend_from_slice(&u16_le(w2)?);
    r.extend_from_slice(&p1);
    r.extend_from_slice(&p2);
    Ok(r)
}

fn left_pad(v: &[u8], n: usize) -> Result<Vec<u8>, String> {
    if v.len() > n {
        return Err(format!("value of {} bytes does not fit {n}", v.len()));
    }
    let mut out = vec![0u8; n - v.len()];
    out.extend_from_slice(v);
    Ok(out)
}

fn u16_le(v: usize) -> Result<[u8; 2], String> {
    u16::try_from(v)
        .map(u16::to_le_bytes)
        .map_err(|_| format!("length {v} does not fit an SRK record"))
}

/// The key type a table must not mix: algorithm, size, hash and (RSA) exponent width,
/// so that all four records have one length (spsdk's verifier insists on it).
fn kind(s: &Srk) -> (u8, usize, HashAlg, usize) {
    let e = match &s.key {
        PublicKey::Rsa { e, .. } => e.len(),
        PublicKey::Ec { .. } => 0,
    };
    (s.algorithm, s.key.bits(), s.hash, e)
}

impl SrkTable {
    /// A table from already-read SRKs (a ceremony holds keys, not files).
    pub fn from_srks(srks: Vec<Srk>) -> Result<Self, Error> {
        if srks.len() != SRK_COUNT {
            return Err(Error::Count(srks.len()));
        }
        for (index, s) in srks.iter().enumerate().skip(1) {
            if kind(s) != kind(&srks[0]) {
                return Err(Error::Mixed {
                    index,
                    first: srks[0].describe(),
                    other: s.describe(),
                });
            }
        }
        let ca: Vec<usize> = (0..SRK_COUNT)
            .filter(|&i| srks[i].ca)
            .map(|i| i + 1)
            .collect();
        let non_ca: Vec<usize> = (0..SRK_COUNT)
            .filter(|&i| !srks[i].ca)
            .map(|i| i + 1)
            .collect();
        if !ca.is_empty() && !non_ca.is_empty() {
            return Err(Error::CaMix { ca, non_ca });
        }
        let mut body = Vec::new();
        for (index, s) in srks.iter().enumerate() {
            body.extend(record(s).map_err(|msg| Error::Cert { index, msg })?);
        }
        let total = 4 + body.len();
        let total16 = u16::try_from(total)
            .map_err(|_| Error::Malformed(format!("{total} bytes do not fit a table")))?;
        let mut bytes = Vec::with_capacity(total);
        bytes.push(TABLE_TAG);
        bytes.extend_from_slice(&total16.to_le_bytes());
        bytes.push(TABLE_VERSION);
        bytes.extend(body);
        Ok(SrkTable { srks, bytes })
    }

    /// Parse a table (from a file or a signed container). Every record must be
    /// well-formed and the four of one type; trailing bytes past the table's own length
    /// are not read.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let bad = |m: String| Error::Malformed(m);
        if data.len() < 4 {
            return Err(bad(format!(
                "{} bytes, shorter than its header",
                data.len()
            )));
        }
        if data[0] != TABLE_TAG || data[3] != TABLE_VERSION {
            return Err(bad(format!(
                "header {:02X} .. {:02X}, expected tag D7 and version 42",
                data[0], data[3]
            )));
        }
        let total = usize::from(u16::from_le_bytes([data[1], data[2]]));
        if total > data.len() || total < 4 {
            return Err(bad(format!(
                "its length field says {total} bytes, {} are there",
                data.len()
            )));
        }
        let mut srks = Vec::new();
        let mut at = 4;
        while at < total {
            let n = srks.len() + 1;
            if srks.len() == SRK_COUNT {
                return Err(bad(format!("more than {SRK_COUNT} records")));
            }
            let rest = &data[at..total];
            if rest.len() < RECORD_FIXED || rest[0] != RECORD_TAG {
                return Err(bad(format!(
                    "record {n} at offset {at}: no E1 record header"
                )));
            }
            let len = usize::from(u16::from_le_bytes([rest[1], rest[2]]));
            if len < RECORD_FIXED || len > rest.len() {
                return Err(bad(format!("record {n}: length {len} outside the table")));
            }
            let r = &rest[..len];
            let (alg, hash, size, flags) = (r[3], r[4], r[5], r[7]);
            let l1 = usize::from(u16::from_le_bytes([r[8], r[9]]));
            let l2 = usize::from(u16::from_le_bytes([r[10], r[11]]));
            if RECORD_FIXED + l1 + l2 != len {
                return Err(bad(format!(
                    "record {n}: parameter lengths {l1} + {l2} do not fill its {len} bytes"
                )));
            }
            let (p1, p2) = r[RECORD_FIXED..].split_at(l1);
            let hash = hash_of_code(hash)
                .ok_or_else(|| bad(format!("record {n}: unknown hash code {hash:#04x}")))?;
            let key = match (alg, size) {
                (ALG_ECDSA, 1..=3) => {
                    let curve = [Curve::P256, Curve::P384, Curve::P521][usize::from(size - 1)];
                    let mut point = vec![0x04];
                    point.extend_from_slice(p1);
                    point.extend_from_slice(p2);
                    PublicKey::ec(curve, &point)
                        .map_err(|e| bad(format!("record {n}: {e}")))?
                }
                (ALG_RSA_PKCS1 | ALG_RSA_PSS, 5..=7) => PublicKey::rsa(p1, p2)
                    .map_err(|e| bad(format!("record {n}: {e}")))?,
                _ => {
                    return Err(bad(format!(
                        "record {n}: signing algorithm {alg:#04x} with key size code {size:#04x} is not an RSA or ECDSA SRK"
                    )))
                }
            };
            let srk = Srk {
                key,
                ca: flags & FLAG_CA != 0,
                algorithm: alg,
                hash,
            };
            // A parsed record must be exactly what we would write for its key.
            if record(&srk).map_err(|m| bad(format!("record {n}: {m}")))? != r {
                return Err(bad(format!(
                    "record {n}: fields inconsistent with its key (size code, widths or flags)"
                )));
            }
            srks.push(srk);
            at += len;
        }
        let table = Self::from_srks(srks)?;
        if table.bytes != data[..total] {
            return Err(bad("does not re-encode to the same bytes".into()));
        }
        Ok(table)
    }

    /// The four SRKs in table order (SRK 1 first).
    pub fn srks(&self) -> &[Srk] {
        &self.srks
    }

    /// True when the SRKs are CA keys (they sign SGK certificates).
    pub fn is_ca(&self) -> bool {
        self.srks.first().is_some_and(|s| s.ca)
    }

    /// The table file (`SRK_1_2_3_4_table.bin`).
    pub fn table_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// spsdk's fuse value, and the one i.MX 8ULP and 9x burn: SHA-256 of the table.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.bytes).into()
    }

    /// srktool `-a`'s efuse file, and the value i.MX 8QXP/8QM burn: SHA-512 of the table.
    pub fn sha512(&self) -> [u8; 64] {
        Sha512::digest(&self.bytes).into()
    }
}

/// AHAB SoC families and where their SRK_HASH fuses are (U-Boot's
/// doc/imx/ahab/guides: mx8_mx8x_secure_boot.txt and mx8ulp_9x_secure_boot.txt).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// i.MX 8QuadXPlus: 512-bit SRK_HASH at fuse bank 0, words 730–745.
    Imx8qxp,
    /// i.MX 8QuadMax: 512-bit SRK_HASH at fuse bank 0, words 722–737.
    Imx8qm,
    /// i.MX 8ULP: 256-bit SRK_HASH at bank 15, words 0–7.
    Imx8ulp,
    /// i.MX 93: 256-bit SRK_HASH at bank 16, words 0–7.
    Imx93,
    /// i.MX 95: as i.MX 93.
    Imx95,
}

impl Family {
    /// Every family, in the order `--family` lists them.
    pub const ALL: [Family; 5] = [
        Family::Imx8qxp,
        Family::Imx8qm,
        Family::Imx8ulp,
        Family::Imx93,
        Family::Imx95,
    ];

    /// The `--family` spelling: `imx8qxp`, `imx8qm`, `imx8ulp`, `imx93` or `imx95`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Imx8qxp => "imx8qxp",
            Family::Imx8qm => "imx8qm",
            Family::Imx8ulp => "imx8ulp",
            Family::Imx93 => "imx93",
            Family::Imx95 => "imx95",
        }
    }

    /// Width of SRK_HASH: 512 bits (SHA-512) on i.MX 8QXP/8QM, 256 (SHA-256) on 8ULP/9x.
    pub fn hash_bits(self) -> usize {
        match self {
            Family::Imx8qxp | Family::Imx8qm => 512,
            _ => 256,
        }
    }

    /// (bank, word) of fuse word `i` (0-based), as U-Boot's `fuse prog` numbers them.
    pub fn location(self, i: u32) -> (u32, u32) {
        match self {
            Family::Imx8qxp => (0, 730 + i),
            Family::Imx8qm => (0, 722 + i),
            Family::Imx8ulp => (15, i),
            Family::Imx93 | Family::Imx95 => (16, i),
        }
    }
}

impl FromStr for Family {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| Error::Family(s.to_string()))
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Fuse words: word i is the little-endian u32 of hash bytes 4i..4i+4 (`od -t x4`).
pub fn fuse_words(hash: &[u8]) -> Vec<u32> {
    hash.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// U-Boot lines that burn `hash` on `family`; refused when the hash is not the width
/// the family's SRK_HASH fuses hold.
pub fn fuse_commands(hash: &[u8], family: Family) -> Result<Vec<String>, Error> {
    if hash.len() * 8 != family.hash_bits() {
        return Err(Error::HashWidth {
            family,
            want: family.hash_bits(),
            got: hash.len() * 8,
        });
    }
    Ok(fuse_words(hash)
        .iter()
        .zip(0u32..)
        .map(|(w, i)| {
            let (bank, word) = family.location(i);
            format!("fuse prog -y {bank} {word} 0x{w:08X}")
        })
        .collect())
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "test fixtures: small literal values and loop counters"
)]
mod tests {
    use super::*;

    fn p256(seed: u8) -> PublicKey {
        use elliptic_curve::sec1::ToEncodedPoint;
        let sk = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        PublicKey::ec(
            Curve::P256,
            sk.public_key().to_encoded_point(false).as_bytes(),
        )
        .unwrap()
    }

    fn four(ca: [bool; 4]) -> Vec<Srk> {
        (0..4)
            .map(|i| srk_for_key(p256(i as u8 + 1), ca[i], RsaRecord::Pkcs1).unwrap())
            .collect()
    }

    #[test]
    fn table_header_and_record_layout() {
        let t = SrkTable::from_srks(four([true; 4])).unwrap();
        let b = t.table_bytes();
        assert_eq!(&b[..4], &[0xD7, 0x34, 0x01, 0x42]);
        assert_eq!(
            &b[4..16],
            &[0xE1, 0x4C, 0, 0x27, 0, 1, 0, 0x80, 32, 0, 32, 0]
        );
        assert_eq!(SrkTable::parse(b).unwrap(), t);
    }

    #[test]
    fn counts_mixes_and_ca_are_refused() {
        let mut s = four([true; 4]);
        s.pop();
        assert_eq!(SrkTable::from_srks(s).unwrap_err(), Error::Count(3));
        let mut s = four([true; 4]);
        s.push(s[0].clone());
        assert_eq!(SrkTable::from_srks(s).unwrap_err(), Error::Count(5));
        assert!(matches!(
            SrkTable::from_srks(four([true, false, true, true])),
            Err(Error::CaMix { .. })
        ));
        let mut s = four([true; 4]);
        s[2].hash = HashAlg::Sha384;
        assert!(matches!(
            SrkTable::from_srks(s),
            Err(Error::Mixed { index: 2, .. })
        ));
    }

    #[test]
    fn parse_refuses_damage() {
        let t = SrkTable::from_srks(four([false; 4])).unwrap();
        let mut b = t.table_bytes().to_vec();
        b[7] = 0x81; // flags
        assert!(SrkTable::parse(&b).is_err());
        let b = t.table_bytes();
        assert!(SrkTable::parse(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn fuse_lines_per_family() {
        let h = [0x11u8; 32];
        let l = fuse_commands(&h, Family::Imx93).unwrap();
        assert_eq!(l.len(), 8);
        assert_eq!(l[7], "fuse prog -y 16 7 0x11111111");
        assert_eq!(
            fuse_commands(&h, Family::Imx8ulp).unwrap()[0],
            "fuse prog -y 15 0 0x11111111"
        );
        let h = [0u8; 64];
        let l = fuse_commands(&h, Family::Imx8qxp).unwrap();
        assert_eq!(l[15], "fuse prog -y 0 745 0x00000000");
        assert_eq!(
            fuse_commands(&h, Family::Imx8qm).unwrap()[0],
            "fuse prog -y 0 722 0x00000000"
        );
        assert!(fuse_commands(&h, Family::Imx95).is_err());
        assert!("imx8mm".parse::<Family>().is_err());
    }
}
