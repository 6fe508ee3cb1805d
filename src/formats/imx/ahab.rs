//! AHAB containers (i.MX 8QXP/8QM, 8ULP, 91/93/95), version 1: the container header
//! (tag `87`), its image array (128-byte entries with each image's hash), and the
//! signature block (tag `90`) that holds the SRK table, the signature (`D8`) and,
//! optionally, a certificate (`AF`) and a key blob (`81`). All little-endian; every
//! part of the signature block starts 8-byte aligned. Layouts from spsdk's
//! `spsdk/image/ahab/` (ahab_container.py, ahab_sign_block.py, ahab_signature.py,
//! ahab_iae.py).
//!
//! The signature covers the container from its first byte up to the signature: header,
//! image array (so every image's hash) and the signature block's header and SRK table.
//! ECDSA signatures are r‖s; RSA follows the SRK record (`22` PSS, `21` PKCS#1 v1.5),
//! with the record's hash.
//!
//! Pure: container bytes and a `keys::Signer` in, bytes out; no I/O, no token (the caller,
//! `signing::imx_ahab`, reads the image and writes the output).

use crate::formats::imx::ahab_srk::{self, Srk, SrkTable, ALG_ECDSA, ALG_RSA_PKCS1, ALG_RSA_PSS};
use crate::keys::{self, Encoding, HashAlg, PublicKey, SignScheme};

/// Container header tag (byte 3).
pub const CONTAINER_TAG: u8 = 0x87;
/// Signature block tag (byte 3 of its header).
pub const SIG_BLOCK_TAG: u8 = 0x90;
/// Signature tag, inside the signature block.
pub const SIGNATURE_TAG: u8 = 0xD8;
/// Certificate (SGK) tag, inside the signature block; Officiant writes none.
pub const CERT_TAG: u8 = 0xAF;
/// Key blob tag (encrypted images), inside the signature block; Officiant writes none.
pub const BLOB_TAG: u8 = 0x81;
/// Container header length: version, length u16, tag, flags u32, software version u16, fuse
/// version, image count, signature block offset u16, reserved u16.
pub const HEADER_LEN: usize = 16;
/// Image array entry length.
pub const ENTRY_LEN: usize = 128;
const BLOCK_HEADER_LEN: usize = 16;
const SIGNATURE_HEADER_LEN: usize = 8;
/// Containers of a boot image sit 1 KiB apart, at most four of them.
pub const CONTAINER_STEP: u64 = 0x400;
/// At most four containers in a boot image.
pub const MAX_CONTAINERS: usize = 4;
/// Where an AHAB image may start in a file: at its start, or behind a 4 KiB FlexSPI
/// configuration block.
pub const IMAGE_OFFSETS: [u64; 2] = [0, 0x1000];

/// Container flags bits 0–1: no SRK set (unsigned).
pub const SRK_SET_NONE: u8 = 0;
/// Container flags bits 0–1: signed by NXP's SRKs.
pub const SRK_SET_NXP: u8 = 1;
/// Container flags bits 0–1: signed by the OEM's SRKs (what Officiant writes).
pub const SRK_SET_OEM: u8 = 2;

const IMAGE_ENCRYPTED: u32 = 1 << 11;

/// Why a container cannot be read, signed or checked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container's header, image array or signature block is malformed; the message
    /// names the part and offset.
    #[error("AHAB container: {0}")]
    Malformed(String),
    /// The container or options do not fit signing (NXP-signed, encrypted, wrong SRK or
    /// key); the message names the flag.
    #[error("{0}")]
    Input(String),
    /// The key refused or failed to sign.
    #[error(transparent)]
    Key(#[from] keys::SignError),
    /// The container's signature is missing or does not verify with its SRK.
    #[error("{0}")]
    Verify(String),
}

fn bad(m: impl Into<String>) -> Error {
    Error::Malformed(m.into())
}

fn le16(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn le32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn le64(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes([
        b[i],
        b[i + 1],
        b[i + 2],
        b[i + 3],
        b[i + 4],
        b[i + 5],
        b[i + 6],
        b[i + 7],
    ])
}

fn align8(v: usize) -> usize {
    v.div_ceil(8) * 8
}

/// One image array entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageEntry {
    /// Offset of the image from the start of the AHAB image (the first container).
    pub offset: u32,
    /// Image size in bytes.
    pub size: u32,
    /// Address the image is loaded to.
    pub load_address: u64,
    /// Address execution starts at.
    pub entry_point: u64,
    /// Image flags: type, core, hash algorithm (bits 8–10), encrypted (bit 11).
    pub flags: u32,
    /// Metadata word (partition / memory region ids), kept as read.
    pub metadata: u32,
    /// The image's hash, zero-padded to 64 bytes.
    pub hash: [u8; 64],
}

impl ImageEntry {
    fn parse(b: &[u8]) -> ImageEntry {
        let mut hash = [0u8; 64];
        hash.copy_from_slice(&b[32..96]);
        ImageEntry {
            offset: le32(b, 0),
            size: le32(b, 4),
            load_address: le64(b, 8),
            entry_point: le64(b, 16),
            flags: le32(b, 24),
            metadata: le32(b, 28),
            hash,
        }
    }

    /// The hash the flags name (bits 8–10).
    pub fn hash_alg(&self) -> Option<HashAlg> {
        match (self.flags >> 8) & 0x7 {
            0 => Some(HashAlg::Sha256),
            1 => Some(HashAlg::Sha384),
            2 => Some(HashAlg::Sha512),
            _ => None,
        }
    }

    /// Whether flag bit 11 marks the image as encrypted (Officiant signs only plain
    /// images).
    pub fn encrypted(&self) -> bool {
        self.flags & IMAGE_ENCRYPTED != 0
    }

    /// Does `digest` (of the image's `size` bytes) match the entry?
    pub fn hash_matches(&self, digest: &[u8]) -> bool {
        digest.len() <= 64
            && self.hash[..digest.len()] == *digest
            && self.hash[digest.len()..].iter().all(|&b| b == 0)
    }
}

/// A parsed version-1 container (header, image array, signature block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// Header and image array up to the signature block, as in the file.
    head: Vec<u8>,
    /// The signature block as in the file.
    block: Vec<u8>,
    /// The container's length in bytes, header through signature block (u16 at 1).
    pub length: u16,
    /// Container flags (u32 at 4): SRK set (bits 0–1), SRK used (bits 4–5), revocation mask
    /// (bits 8–11).
    pub flags: u32,
    /// Software version (u16 at 8), checked against the anti-rollback fuses.
    pub sw_version: u16,
    /// Fuse version (byte 10).
    pub fuse_version: u8,
    /// The image array, in order.
    pub images: Vec<ImageEntry>,
}

/// Is there a container header at the start of `b`?
pub fn is_container(b: &[u8]) -> bool {
    b.len() >= HEADER_LEN && b[0] == 0 && b[3] == CONTAINER_TAG
}

impl Container {
    /// Parse the container at the start of `data` (which must hold all of it).
    pub fn parse(data: &[u8]) -> Result<Container, Error> {
        if data.len() < HEADER_LEN || data[3] != CONTAINER_TAG {
            return Err(bad("no container header (tag 87)"));
        }
        if data[0] != 0 {
            return Err(bad(format!(
                "container version {:#04x}: Officiant reads version 1 (0x00) containers, not AHAB v2",
                data[0]
            )));
        }
        let length = le16(data, 1);
        let len = usize::from(length);
        let n = usize::from(data[11]);
        let sbo = usize::from(le16(data, 12));
        if len > data.len() {
            return Err(bad(format!(
                "its length field says {len} bytes, {} are there",
                data.len()
            )));
        }
        if n == 0 || n > 8 {
            return Err(bad(format!("{n} images (1 to 8 expected)")));
        }
        let want_sbo = align8(HEADER_LEN + n * ENTRY_LEN);
        if sbo != want_sbo {
            return Err(bad(format!(
                "signature block offset {sbo:#x}, expected {want_sbo:#x} for {n} images"
            )));
        }
        if sbo + BLOCK_HEADER_LEN > len {
            return Err(bad(format!(
                "length {len} ends before its signature block at {sbo:#x}"
            )));
        }
        let images = (0..n)
            .map(|i| ImageEntry::parse(&data[HEADER_LEN + i * ENTRY_LEN..]))
            .collect();
        let block = &data[sbo..len];
        if block[0] != 0 || block[3] != SIG_BLOCK_TAG {
            return Err(bad(format!(
                "no signature block (tag 90) at offset {sbo:#x}"
            )));
        }
        if usize::from(le16(block, 1)) != block.len() {
            return Err(bad(format!(
                "signature block length {} does not end where the container does ({} bytes)",
                le16(block, 1),
                block.len()
            )));
        }
        let c = Container {
            head: data[..sbo].to_vec(),
            block: block.to_vec(),
            length,
            flags: le32(data, 4),
            sw_version: le16(data, 8),
            fuse_version: data[10],
            images,
        };
        // Every part the block points at must be inside it.
        for (what, off, tag) in [
            ("certificate", c.block_field(0), CERT_TAG),
            ("SRK table", c.block_field(1), ahab_srk::TABLE_TAG),
            ("signature", c.block_field(2), SIGNATURE_TAG),
            ("key blob", c.block_field(3), BLOB_TAG),
        ] {
            if off == 0 {
                continue;
            }
            let o = usize::from(off);
            let part = c.block.get(o..o + 4).ok_or_else(|| {
                bad(format!(
                    "{what} offset {o:#x} lies outside the signature block"
                ))
            })?;
            let plen = usize::from(le16(part, 1));
            // The SRK table's header is inverted: its tag comes first.
            let found = if tag == ahab_srk::TABLE_TAG {
                part[0]
            } else {
                part[3]
            };
            if found != tag || plen < 4 || o + plen > c.block.len() {
                return Err(bad(format!(
                    "the {what} at signature block offset {o:#x} is damaged (tag {found:#04x}, length {plen})"
                )));
            }
        }
        Ok(c)
    }

    /// Signature block offsets: 0 certificate, 1 SRK table, 2 signature, 3 blob.
    fn block_field(&self, i: usize) -> u16 {
        le16(&self.block, 4 + 2 * i)
    }

    fn block_part(&self, i: usize) -> Option<&[u8]> {
        let o = usize::from(self.block_field(i));
        if o == 0 {
            return None;
        }
        let len = usize::from(le16(&self.block, o + 1));
        self.block.get(o..o + len)
    }

    /// Which SRK set signs: [`SRK_SET_NONE`], [`SRK_SET_NXP`] or [`SRK_SET_OEM`] (flags
    /// bits 0–1).
    pub fn srk_set(&self) -> u8 {
        (self.flags & 0x3) as u8
    }

    /// 0-based index of the SRK that signs (flags bits 4–5).
    pub fn used_srk(&self) -> u8 {
        ((self.flags >> 4) & 0x3) as u8
    }

    /// SRKs to revoke once this container boots, one bit per SRK (flags bits 8–11).
    pub fn revoke_mask(&self) -> u8 {
        ((self.flags >> 8) & 0xF) as u8
    }

    /// The SRK table the signature block carries.
    pub fn srk_table(&self) -> Option<&[u8]> {
        self.block_part(1)
    }

    /// The signature's data (after its 8-byte header).
    pub fn signature(&self) -> Option<&[u8]> {
        self.block_part(2)
            .and_then(|s| s.get(SIGNATURE_HEADER_LEN..))
    }

    /// Whether the signature block points at a certificate (an SGK signs instead of the
    /// SRK).
    pub fn has_certificate(&self) -> bool {
        self.block_field(0) != 0
    }

    /// Whether the signature block points at a key blob (encrypted images).
    pub fn has_blob(&self) -> bool {
        self.block_field(3) != 0
    }

    /// The container's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = self.head.clone();
        v.extend_from_slice(&self.block);
        v
    }

    /// What the signature covers: from the container's start to the signature.
    pub fn signed_data(&self) -> Option<Vec<u8>> {
        let sig = usize::from(self.block_field(2));
        (sig != 0).then(|| {
            let mut v = self.head.clone();
            v.extend_from_slice(&self.block[..sig]);
            v
        })
    }
}

/// The scheme an SRK record names.
pub fn scheme_for(srk: &Srk) -> Result<SignScheme, Error> {
    match srk.algorithm {
        ALG_ECDSA => Ok(SignScheme::Ecdsa(srk.hash)),
        ALG_RSA_PSS => Ok(SignScheme::RsaPss(srk.hash)),
        ALG_RSA_PKCS1 => Ok(SignScheme::RsaPkcs1(srk.hash)),
        a => Err(bad(format!("SRK signing algorithm {a:#04x}"))),
    }
}

/// `container`, signed by SRK `srk_index` of `table` with `signer`: its signature block
/// rebuilt (SRK table, signature), its flags set to the OEM SRK set and that SRK (the
/// revocation mask kept). Returns the new container bytes.
pub fn sign(
    container: &Container,
    table: &SrkTable,
    srk_index: usize,
    signer: &mut dyn keys::Signer,
) -> Result<Vec<u8>, Error> {
    let input = |m: String| Error::Input(m);
    if container.srk_set() == SRK_SET_NXP {
        return Err(input(
            "the container is signed by NXP; Officiant signs OEM containers".into(),
        ));
    }
    if container.has_blob() || container.images.iter().any(ImageEntry::encrypted) {
        return Err(input(
            "the container has encrypted images (a key blob); Officiant signs plain containers"
                .into(),
        ));
    }
    let srk = table.srks().get(srk_index).ok_or_else(|| {
        input(format!(
            "--srk-index {srk_index}: the AHAB SRK table holds 4 SRKs (index 0 to 3)"
        ))
    })?;
    if container.revoke_mask() & (1 << srk_index) != 0 {
        return Err(input(format!(
            "the container's revocation mask {:#x} revokes SRK {srk_index}",
            container.revoke_mask()
        )));
    }
    if signer.public_key() != &srk.key {
        return Err(input(format!(
            "key {:?} ({}) is not SRK {srk_index} of --srk-table ({})",
            signer.label(),
            signer.public_key().describe(),
            srk.key.describe()
        )));
    }
    let scheme = scheme_for(srk)?;
    let sig_len = match &srk.key {
        PublicKey::Ec { curve, .. } => 2 * curve.field_bytes(),
        PublicKey::Rsa { n, .. } => n.len(),
    };
    let table_bytes = table.table_bytes();
    let srk_off = BLOCK_HEADER_LEN;
    let sig_off = align8(srk_off + table_bytes.len());
    let sig_total = SIGNATURE_HEADER_LEN + sig_len;
    let block_len = sig_off + sig_total;
    let sbo = container.head.len();
    let total = u16::try_from(sbo + block_len).map_err(|_| {
        input(format!(
            "a {}-byte container does not fit its length field",
            sbo + block_len
        ))
    })?;
    let u16_of = |v: usize| u16::try_from(v).map_err(|_| bad("offset overflow"));
    let mut block = vec![0u8; block_len];
    block[0] = 0;
    block[1..3].copy_from_slice(&u16_of(block_len)?.to_le_bytes());
    block[3] = SIG_BLOCK_TAG;
    // certificate 0, SRK table, signature, blob 0, key identifier 0.
    block[6..8].copy_from_slice(&u16_of(srk_off)?.to_le_bytes());
    block[8..10].copy_from_slice(&u16_of(sig_off)?.to_le_bytes());
    block[srk_off..srk_off + table_bytes.len()].copy_from_slice(table_bytes);
    block[sig_off + 1..sig_off + 3].copy_from_slice(&u16_of(sig_total)?.to_le_bytes());
    block[sig_off + 3] = SIGNATURE_TAG;
    let mut head = container.head.clone();
    head[1..3].copy_from_slice(&total.to_le_bytes());
    // srk_index < 4: table.srks().get(srk_index) succeeded above, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation)]
    let used = srk_index as u32;
    let flags = (container.flags & !0x33) | u32::from(SRK_SET_OEM) | (used << 4);
    head[4..8].copy_from_slice(&flags.to_le_bytes());
    let mut tbs = head.clone();
    tbs.extend_from_slice(&block[..sig_off]);
    let digest = scheme.hash().digest(&tbs);
    let sig = keys::sign_checked(signer, scheme, &digest, Encoding::Raw)?;
    if sig.len() != sig_len {
        return Err(Error::Verify(format!(
            "the signature has {} bytes, {sig_len} expected",
            sig.len()
        )));
    }
    block[sig_off + SIGNATURE_HEADER_LEN..].copy_from_slice(&sig);
    head.extend_from_slice(&block);
    Ok(head)
}

/// Check `container`'s signature against the SRK table file `table`. One line for the
/// report; the image hashes are the caller's to check.
pub fn verify(container: &Container, table: &SrkTable) -> Result<String, Error> {
    let v = |m: String| Error::Verify(m);
    match container.srk_set() {
        SRK_SET_OEM => {}
        SRK_SET_NONE => return Err(v("not signed (SRK set: none)".into())),
        SRK_SET_NXP => return Err(v("signed by NXP, not by the OEM SRKs".into())),
        s => return Err(v(format!("unknown SRK set {s}"))),
    }
    if container.has_certificate() {
        return Err(v(
            "signed through a certificate (SGK); Officiant checks containers signed by an SRK"
                .into(),
        ));
    }
    let inner = container
        .srk_table()
        .ok_or_else(|| v("its signature block has no SRK table".into()))?;
    let inner = SrkTable::parse(inner).map_err(|e| v(e.to_string()))?;
    if inner.sha256() != table.sha256() {
        return Err(v(format!(
            "its SRK table (SHA-256 {}) is not --srk-table (SHA-256 {})",
            hex::encode(inner.sha256()),
            hex::encode(table.sha256())
        )));
    }
    let i = usize::from(container.used_srk());
    if container.revoke_mask() & (1 << i) != 0 {
        return Err(v(format!(
            "it is signed by SRK {i}, which its own revocation mask revokes"
        )));
    }
    let srk = &inner.srks()[i];
    let scheme = scheme_for(srk)?;
    let sig = container
        .signature()
        .ok_or_else(|| v("its signature block has no signature".into()))?;
    let tbs = container
        .signed_data()
        .ok_or_else(|| v("its signature block has no signature".into()))?;
    let digest = scheme.hash().digest(&tbs);
    srk.key
        .verify_digest(scheme, &digest, sig)
        .map_err(|_| v(format!("the signature does not verify with SRK {i} ({}): header, image hashes or SRK table altered", srk.describe())))?;
    Ok(format!(
        "signed by SRK {i} of --srk-table ({}), {} over {} bytes: valid",
        srk.describe(),
        scheme.name(),
        tbs.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The unsigned container `nxpimage ahab export` wrote for one 3000-byte image at
    /// 0x2000 (i.MX 93, Cortex-M33, SHA-256): header, one entry, empty signature block.
    fn unsigned() -> Vec<u8> {
        let mut c = vec![0u8; 0xa0];
        c[..4].copy_from_slice(&[0x00, 0xa0, 0x00, 0x87]);
        c[11] = 1;
        c[12] = 0x90;
        c[16..20].copy_from_slice(&0x2000u32.to_le_bytes());
        c[20..24].copy_from_slice(&3000u32.to_le_bytes());
        c[40..44].copy_from_slice(&0x13u32.to_le_bytes());
        c[0x90..0x94].copy_from_slice(&[0x00, 0x10, 0x00, 0x90]);
        c
    }

    #[test]
    fn unsigned_container_parses() {
        let c = Container::parse(&unsigned()).unwrap();
        assert_eq!(c.srk_set(), SRK_SET_NONE);
        assert_eq!(c.images[0].offset, 0x2000);
        assert_eq!(c.images[0].hash_alg(), Some(HashAlg::Sha256));
        assert!(c.srk_table().is_none() && c.signature().is_none());
        assert_eq!(c.to_bytes(), unsigned());
    }

    #[test]
    fn damage_is_refused() {
        let mut b = unsigned();
        b[0] = 2;
        assert!(Container::parse(&b).unwrap_err().to_string().contains("v2"));
        let mut b = unsigned();
        b[12] = 0x98;
        assert!(Container::parse(&b).is_err());
        let mut b = unsigned();
        b[0x96] = 0x40; // SRK table offset past the block
        assert!(Container::parse(&b)
            .unwrap_err()
            .to_string()
            .contains("SRK table"));
        assert!(Container::parse(&unsigned()[..0x9f]).is_err());
    }
}
