//! NXP HAB4: the SRK table (`SRK_1_2_3_4_table.bin`) and the SRK fuse hash
//! (`SRK_1_2_3_4_fuse.bin`) from one to four SRK certificates, and the fuse words and
//! U-Boot `fuse prog` lines that burn the hash. Byte-identical to `srktool` and
//! `nxpcrypto rot export/calculate-hash` (tests/it/fuses_hab4.rs runs both).
//!
//! Pure: certificates in, bytes and text out; no I/O, no token. The image side of HAB4
//! (IVT, CSF) lives in `formats::imx`.

use std::fmt;
use std::str::FromStr;

use const_oid::db::rfc5280;
use der::Decode;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::Certificate;

use crate::keys::{Curve, PublicKey};

/// HAB4 allows at most four SRKs in a table.
pub const MAX_SRKS: usize = 4;

const TABLE_TAG: u8 = 0xD7;
const TABLE_VERSION: u8 = 0x40;
const KEY_TAG: u8 = 0xE1;
const ALG_RSA_PKCS1: u8 = 0x21;
const ALG_ECDSA: u8 = 0x27;
const FLAG_CA: u8 = 0x80;

/// Why an SRK table cannot be built or read, or a SoC name is unknown.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The number of certificates given, outside 1 to [`MAX_SRKS`] (also used when the
    /// records would not fit the table's u16 length).
    #[error("an SRK table needs 1 to 4 certificates, got {0}")]
    Count(usize),
    /// One certificate cannot be an SRK (not X.509, or a key HAB4 cannot hold).
    #[error("SRK certificate {}: {msg}", index + 1)]
    Cert {
        /// The certificate's 0-based position in the caller's list (messages count
        /// from 1).
        index: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// Some SRKs are CA keys and some are not; HAB4 needs one kind in a table.
    #[error(
        "SRK certificates mix CA and non-CA keys (CA: {ca:?}, non-CA: {non_ca:?}); \
         HAB4 needs all SRKs of one kind"
    )]
    CaMix {
        /// 1-based positions of the CA certificates.
        ca: Vec<usize>,
        /// 1-based positions of the non-CA certificates.
        non_ca: Vec<usize>,
    },
    /// `--soc` named no family Officiant knows; holds the name given.
    #[error("unknown SoC family {0:?} (imx6, imx7, imx8m or imx7ulp)")]
    Soc(String),
    /// Bytes read as an SRK table are not one (wrong tag, length, record or algorithm); the
    /// message names the part.
    #[error("SRK table: {0}")]
    Malformed(String),
}

impl Error {
    /// The 0-based certificate index the error is about, if any (the CLI names the file).
    pub fn cert_index(&self) -> Option<usize> {
        match self {
            Error::Cert { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// One SRK as it goes into the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Srk {
    /// The SRK's public key (RSA or EC P-256/P-384/P-521).
    pub key: PublicKey,
    /// Whether the record's flags byte says CA (`0x80`): srktool's rule, basicConstraints
    /// CA:TRUE with keyUsage absent or holding keyCertSign.
    pub ca: bool,
}

/// A validated SRK table: 1–4 keys, all CA or all non-CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrkTable {
    srks: Vec<Srk>,
    records: Vec<Vec<u8>>,
}

/// Build the table from certificates (each PEM or DER), in SRK order.
pub fn srk_table(certs: &[Vec<u8>]) -> Result<SrkTable, Error> {
    if certs.is_empty() || certs.len() > MAX_SRKS {
        return Err(Error::Count(certs.len()));
    }
    let srks = certs
        .iter()
        .enumerate()
        .map(|(index, bytes)| srk_from_certificate(bytes).map_err(|msg| Error::Cert { index, msg }))
        .collect::<Result<Vec<_>, _>>()?;
    SrkTable::from_srks(srks)
}

/// Read one SRK certificate: its public key and srktool's CA flag.
pub fn srk_from_certificate(bytes: &[u8]) -> Result<Srk, String> {
    let der = match crate::keys::pem_text(bytes) {
        Some(text) => {
            let (label, der) = crate::keys::pem_decode(text).map_err(|e| e.to_string())?;
            if label != "CERTIFICATE" {
                return Err(format!(
                    "expected a PEM CERTIFICATE, found a PEM {label:?} block"
                ));
            }
            der
        }
        None => bytes.to_vec(),
    };
    let cert = Certificate::from_der(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let ca = is_ca(&cert)?;
    let spki = der::Encode::to_der(&cert.tbs_certificate.subject_public_key_info)
        .map_err(|e| format!("certificate key: {e}"))?;
    let key = PublicKey::from_spki_der(&spki).map_err(|e| format!("certificate key: {e}"))?;
    srk_record(&key, ca)?; // refuse unsupported keys here, where the index is known
    Ok(Srk { key, ca })
}

/// srktool's rule (OpenSSL `X509_check_ca() == 1`): basicConstraints with CA:TRUE, and
/// keyUsage either absent or holding keyCertSign.
pub fn is_ca(cert: &Certificate) -> Result<bool, String> {
    let mut bc_ca = false;
    let mut ku_ok = true;
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.extn_id == rfc5280::ID_CE_BASIC_CONSTRAINTS {
            let bc = BasicConstraints::from_der(ext.extn_value.as_bytes())
                .map_err(|e| format!("malformed basicConstraints: {e}"))?;
            bc_ca = bc.ca;
        } else if ext.extn_id == rfc5280::ID_CE_KEY_USAGE {
            let ku = KeyUsage::from_der(ext.extn_value.as_bytes())
                .map_err(|e| format!("malformed keyUsage: {e}"))?;
            ku_ok = ku.0.contains(KeyUsages::KeyCertSign);
        }
    }
    Ok(bc_ca && ku_ok)
}

/// One SRK record (`E1 …`) for `key`.
pub fn srk_record(key: &PublicKey, ca: bool) -> Result<Vec<u8>, String> {
    crate::keys::fitness::check(key, crate::keys::fitness::Use::Hab4).map_err(|e| e.to_string())?;
    let flags = if ca { FLAG_CA } else { 0 };
    match key {
        PublicKey::Rsa { n, e } => {
            let bits = key.bits();
            if !(1024..=4096).contains(&bits) {
                return Err(format!(
                    "RSA-{bits} key: HAB4 SRKs are RSA 1024 to 4096 bits"
                ));
            }
            // PublicKey keeps n and e without leading zeros: srktool's shortest form.
            let len = 12 + n.len() + e.len();
            let mut r = Vec::with_capacity(len);
            r.push(KEY_TAG);
            r.extend_from_slice(&u16_be(len)?);
            r.extend_from_slice(&[ALG_RSA_PKCS1, 0, 0, 0, flags]);
            r.extend_from_slice(&u16_be(n.len())?);
            r.extend_from_slice(&u16_be(e.len())?);
            r.extend_from_slice(n);
            r.extend_from_slice(e);
            Ok(r)
        }
        PublicKey::Ec { curve, point } => {
            let curve_code = match curve {
                Curve::P256 => 0x4B,
                Curve::P384 => 0x4D,
                Curve::P521 => 0x4E,
                other => {
                    return Err(format!(
                        "EC {} key: HAB4 SRKs are EC P-256, P-384 or P-521",
                        other.name()
                    ))
                }
            };
            // The point is 04 ‖ X ‖ Y with each coordinate left-padded to the field size.
            let xy = point.get(1..).unwrap_or_default();
            let len = 12 + xy.len();
            let mut r = Vec::with_capacity(len);
            r.push(KEY_TAG);
            r.extend_from_slice(&u16_be(len)?);
            r.extend_from_slice(&[ALG_ECDSA, 0, 0, 0, flags, curve_code, 0]);
            r.extend_from_slice(&u16_be(curve.bits())?);
            r.extend_from_slice(xy);
            Ok(r)
        }
    }
}

fn u16_be(v: usize) -> Result<[u8; 2], String> {
    u16::try_from(v)
        .map(u16::to_be_bytes)
        .map_err(|_| format!("length {v} does not fit an SRK record"))
}

impl SrkTable {
    /// A table from already-read SRKs (the ceremony engine holds keys, not files).
    pub fn from_srks(srks: Vec<Srk>) -> Result<Self, Error> {
        if srks.is_empty() || srks.len() > MAX_SRKS {
            return Err(Error::Count(srks.len()));
        }
        let ca: Vec<usize> = (0..srks.len()).filter(|&i| srks[i].ca).collect();
        let non_ca: Vec<usize> = (0..srks.len()).filter(|&i| !srks[i].ca).collect();
        if !ca.is_empty() && !non_ca.is_empty() {
            return Err(Error::CaMix {
                ca: ca.iter().map(|i| i + 1).collect(),
                non_ca: non_ca.iter().map(|i| i + 1).collect(),
            });
        }
        let records = srks
            .iter()
            .enumerate()
            .map(|(index, s)| srk_record(&s.key, s.ca).map_err(|msg| Error::Cert { index, msg }))
            .collect::<Result<Vec<_>, _>>()?;
        let total = 4 + records.iter().map(Vec::len).sum::<usize>();
        if total > usize::from(u16::MAX) {
            return Err(Error::Count(srks.len()));
        }
        Ok(SrkTable { srks, records })
    }

    /// Parse a table file (or the copy a signed image's CSF carries). Every record must
    /// be exactly what [`srk_record`] writes for its key, and the whole must re-encode to
    /// the same bytes; bytes past the table's own length are not read.
    pub fn parse(data: &[u8]) -> Result<Self, Error> {
        let bad = |m: String| Error::Malformed(m);
        if data.len() < 4 || data[0] != TABLE_TAG || data[3] != TABLE_VERSION {
            return Err(bad("no D7 .. 40 table header".into()));
        }
        let total = usize::from(u16::from_be_bytes([data[1], data[2]]));
        if total < 4 || total > data.len() {
            return Err(bad(format!(
                "its length field says {total} bytes, {} are there",
                data.len()
            )));
        }
        let mut srks = Vec::new();
        let mut at = 4;
        while at < total {
            let n = srks.len() + 1;
            if srks.len() == MAX_SRKS {
                return Err(bad(format!("more than {MAX_SRKS} records")));
            }
            let rest = &data[at..total];
            if rest.len() < 12 || rest[0] != KEY_TAG {
                return Err(bad(format!(
                    "record {n} at offset {at}: no E1 record header"
                )));
            }
            let len = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
            if len < 12 || len > rest.len() {
                return Err(bad(format!("record {n}: length {len} outside the table")));
            }
            let r = &rest[..len];
            let ca = r[7] & FLAG_CA != 0;
            let key = match r[3] {
                ALG_RSA_PKCS1 => {
                    let nl = usize::from(u16::from_be_bytes([r[8], r[9]]));
                    let el = usize::from(u16::from_be_bytes([r[10], r[11]]));
                    if 12 + nl + el != len {
                        return Err(bad(format!(
                            "record {n}: modulus and exponent lengths do not fill it"
                        )));
                    }
                    PublicKey::rsa(&r[12..12 + nl], &r[12 + nl..])
                        .map_err(|e| bad(format!("record {n}: {e}")))?
                }
                ALG_ECDSA => {
                    let curve = match r[8] {
                        0x4B => Curve::P256,
                        0x4D => Curve::P384,
                        0x4E => Curve::P521,
                        c => return Err(bad(format!("record {n}: unknown curve code {c:#04x}"))),
                    };
                    let mut point = vec![0x04];
                    point.extend_from_slice(&r[12..]);
                    PublicKey::ec(curve, &point).map_err(|e| bad(format!("record {n}: {e}")))?
                }
                a => return Err(bad(format!("record {n}: unknown key algorithm {a:#04x}"))),
            };
            if srk_record(&key, ca).map_err(|m| bad(format!("record {n}: {m}")))? != r {
                return Err(bad(format!("record {n}: fields inconsistent with its key")));
            }
            srks.push(Srk { key, ca });
            at += len;
        }
        let table = Self::from_srks(srks).map_err(|e| bad(e.to_string()))?;
        if table.table_bytes() != data[..total] {
            return Err(bad("does not re-encode to the same bytes".into()));
        }
        Ok(table)
    }

    /// The SRKs in table order (SRK 1 first).
    pub fn srks(&self) -> &[Srk] {
        &self.srks
    }

    /// True when the SRKs are CA keys (they sign CSF/IMG certificates).
    pub fn is_ca(&self) -> bool {
        self.srks.first().is_some_and(|s| s.ca)
    }

    /// The table file: header `D7 len 40`, then each record.
    pub fn table_bytes(&self) -> Vec<u8> {
        let total = 4 + self.records.iter().map(Vec::len).sum::<usize>();
        let mut out = Vec::with_capacity(total);
        out.push(TABLE_TAG);
        // from_srks refused a table whose total exceeds u16::MAX, so this cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let total = total as u16;
        out.extend_from_slice(&total.to_be_bytes());
        out.push(TABLE_VERSION);
        for r in &self.records {
            out.extend_from_slice(r);
        }
        out
    }

    /// The fuse hash: SHA-256 over the SHA-256 of each record (not of the table file).
    pub fn fuse_hash(&self) -> [u8; 32] {
        let mut outer = Sha256::new();
        for r in &self.records {
            outer.update(Sha256::digest(r));
        }
        outer.finalize().into()
    }
}

/// `SRK_1_2_3_4_table.bin` for four SRKs, `SRK_1_2_table.bin` for two (the names
/// hab4_pki_tree.sh and CST's documentation use).
pub fn table_file_name(srks: usize) -> String {
    format!("SRK_{}_table.bin", srk_numbers(srks))
}

/// `SRK_1_2_3_4_fuse.bin` for four SRKs.
pub fn fuse_file_name(srks: usize) -> String {
    format!("SRK_{}_fuse.bin", srk_numbers(srks))
}

fn srk_numbers(srks: usize) -> String {
    (1..=srks.clamp(1, MAX_SRKS))
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("_")
}

/// SoC families and where their SRK_HASH fuses live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Soc {
    /// i.MX 6: bank 3, words 0–7.
    Imx6,
    /// i.MX 7D/7S: bank 6 words 0–3, then bank 7 words 0–3.
    Imx7,
    /// i.MX 8M, 8M Mini, 8M Nano, 8M Plus: banks 6 and 7, as i.MX 7.
    Imx8m,
    /// i.MX 7ULP: bank 5, words 0–7.
    Imx7ulp,
}

impl Soc {
    /// Every family, in the order `--soc` lists them.
    pub const ALL: [Soc; 4] = [Soc::Imx6, Soc::Imx7, Soc::Imx8m, Soc::Imx7ulp];

    /// The `--soc` spelling: `imx6`, `imx7`, `imx8m` or `imx7ulp`.
    pub fn name(self) -> &'static str {
        match self {
            Soc::Imx6 => "imx6",
            Soc::Imx7 => "imx7",
            Soc::Imx8m => "imx8m",
            Soc::Imx7ulp => "imx7ulp",
        }
    }

    /// (bank, word) of fuse word `i` (0..8), as U-Boot's `fuse prog` numbers them.
    pub fn location(self, i: u32) -> (u32, u32) {
        match self {
            Soc::Imx6 => (3, i),
            Soc::Imx7 | Soc::Imx8m => (6 + i / 4, i % 4),
            Soc::Imx7ulp => (5, i),
        }
    }
}

impl FromStr for Soc {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Soc::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| Error::Soc(s.to_string()))
    }
}

impl fmt::Display for Soc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The eight fuse words: word i is the little-endian u32 of hash bytes 4i..4i+4.
pub fn fuse_words(hash: &[u8; 32]) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (i, c) in hash.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

/// U-Boot lines that burn the hash: `fuse prog -y BANK WORD 0xXXXXXXXX`.
pub fn fuse_commands(hash: &[u8; 32], soc: Soc) -> Vec<String> {
    fuse_words(hash)
        .iter()
        .zip(0u32..)
        .map(|(w, i)| {
            let (bank, word) = soc.location(i);
            format!("fuse prog -y {bank} {word} 0x{w:08X}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuse_words_are_little_endian() {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&[0x55, 0x1e, 0x10, 0x99]);
        assert_eq!(fuse_words(&h)[0], 0x9910_1E55);
    }

    #[test]
    fn banks_per_family() {
        let h = [0u8; 32];
        let l = fuse_commands(&h, Soc::Imx8m);
        assert_eq!(l[0], "fuse prog -y 6 0 0x00000000");
        assert_eq!(l[4], "fuse prog -y 7 0 0x00000000");
        assert_eq!(l[7], "fuse prog -y 7 3 0x00000000");
        assert_eq!(
            fuse_commands(&h, Soc::Imx6)[7],
            "fuse prog -y 3 7 0x00000000"
        );
        assert_eq!(
            fuse_commands(&h, Soc::Imx7ulp)[2],
            "fuse prog -y 5 2 0x00000000"
        );
        assert!("imx9".parse::<Soc>().is_err());
    }

    #[test]
    fn file_names() {
        assert_eq!(table_file_name(4), "SRK_1_2_3_4_table.bin");
        assert_eq!(fuse_file_name(2), "SRK_1_2_fuse.bin");
    }

    #[test]
    fn count_is_checked() {
        assert_eq!(srk_table(&[]).unwrap_err(), Error::Count(0));
        assert_eq!(srk_table(&vec![vec![]; 5]).unwrap_err(), Error::Count(5));
    }

    #[test]
    fn tables_parse_back() {
        let k = PublicKey::rsa(&[0xC1; 256], &[1, 0, 1]).unwrap();
        let t = SrkTable::from_srks(vec![
            Srk {
                key: k.clone(),
                ca: true,
            },
            Srk { key: k, ca: true },
        ])
        .unwrap();
        let mut b = t.table_bytes();
        assert_eq!(SrkTable::parse(&b).unwrap(), t);
        b.push(0); // trailing bytes are not the table's
        assert_eq!(SrkTable::parse(&b).unwrap(), t);
        b[11] = 0; // the CA flag of the first record only
        assert!(SrkTable::parse(&b).is_err());
        assert!(SrkTable::parse(&b[..100]).is_err());
    }

    #[test]
    fn rsa_outside_range_is_refused() {
        let k = PublicKey::rsa(&[0xC1; 64], &[1, 0, 1]).unwrap();
        assert!(srk_record(&k, true).unwrap_err().contains("RSA-512"));
    }
}
