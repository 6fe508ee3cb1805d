//! Espressif Secure Boot V2: the eFuse key digest, the image digest (0xFF-padded to
//! 4 KiB), the 1216-byte signature block and the 4 KiB signature sector that holds up to
//! three of them. Pure: no I/O beyond an `impl Read` for streaming the image, no token.
//! Checked against `espsecure` (tests/esp32_*.rs).

use std::io::Read;

use sha2::{Digest, Sha256};

use crate::keys::{ecdsa_to_fixed, Curve, HashAlg, Hasher, PublicKey, SignScheme};

/// One signature block.
pub const BLOCK_LEN: usize = 1216;
/// The signature sector appended to the padded image, and the padding unit.
pub const SECTOR_LEN: usize = 4096;
/// Blocks a sector can hold (at 0, 1216 and 2432).
pub const MAX_BLOCKS: usize = 3;
/// The bytes the CRC covers; the CRC follows, then 16 zero bytes.
const CRC_AT: usize = 1196;

const MAGIC: u8 = 0xE7;
const VERSION_RSA: u8 = 0x02;
const VERSION_ECDSA: u8 = 0x03;
const SHA_256: u8 = 0;
const SHA_384: u8 = 1;
const CURVE_P256: u8 = 2;
const CURVE_P384: u8 = 3;
const RSA_LEN: usize = 384;
/// RSA key material in a block: n (384) ‖ e (4) ‖ R² mod n (384) ‖ m′ (4).
const RSA_MATERIAL_LEN: usize = 2 * RSA_LEN + 8;

/// Why a Secure Boot V2 key, block, sector or signed image is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The key cannot be used for Secure Boot V2 (only RSA-3072 with e = 65537, P-256 and
    /// P-384 can); the message says why.
    #[error("{0}")]
    Key(String),
    /// The image digest handed in is not as long as the scheme's hash.
    #[error("image digest has {got} bytes, {alg} needs {want}")]
    DigestLen {
        /// The hash's name (`SHA-256`, `SHA-384`).
        alg: &'static str,
        /// Bytes given.
        got: usize,
        /// Bytes the hash has.
        want: usize,
    },
    /// The token's signature has the wrong shape for the key (length, encoding).
    #[error("signature: {0}")]
    Signature(String),
    /// The block's signature does not verify over its image digest with its key.
    #[error("signature does not verify with the public key")]
    BadSignature,
    /// One signature block in the sector is malformed or unfit.
    #[error("signature block {}: {msg}", index + 1)]
    Block {
        /// The block's 0-based slot in the sector (messages count from 1).
        index: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// The 4 KiB signature sector is malformed: slot order, padding, CRC, or a fourth
    /// block.
    #[error("signature sector: {0}")]
    Sector(String),
    /// The image digest stored in the block is not the digest of the image it is appended
    /// to (image altered after signing).
    #[error("the signature block's image digest does not match the image")]
    DigestMismatch,
    /// The file is not a signed image (length not a multiple of 4096, or short read).
    #[error("signed image: {0}")]
    Image(String),
    /// No block in the sector carries the given public key; holds the key's description.
    #[error("no signature block is signed by the given {0} key")]
    NoBlockForKey(String),
}

type Result<T> = std::result::Result<T, Error>;

/// The scheme Secure Boot V2 uses with `key`: RSA-3072 → RSA-PSS SHA-256 (salt 32),
/// P-256 → ECDSA SHA-256, P-384 → ECDSA SHA-384.
pub fn scheme_for(key: &PublicKey) -> Result<SignScheme> {
    match key {
        PublicKey::Rsa { .. } if key.bits() == 3072 => Ok(SignScheme::RsaPss(HashAlg::Sha256)),
        PublicKey::Ec {
            curve: Curve::P256, ..
        } => Ok(SignScheme::Ecdsa(HashAlg::Sha256)),
        PublicKey::Ec {
            curve: Curve::P384, ..
        } => Ok(SignScheme::Ecdsa(HashAlg::Sha384)),
        other => Err(Error::Key(format!(
            "{} key: ESP32 Secure Boot V2 takes RSA-3072, EC P-256 or EC P-384 keys",
            other.describe()
        ))),
    }
}

/// The key as the block stores it (what the eFuse digest covers): for RSA the 776 bytes
/// at 36..812; for ECDSA curve id ‖ X_le ‖ Y_le.
pub fn key_material(key: &PublicKey) -> Result<Vec<u8>> {
    scheme_for(key)?;
    crate::keys::fitness::check(key, crate::keys::fitness::Use::Esp32)
        .map_err(|e| Error::Key(e.to_string()))?;
    match key {
        PublicKey::Rsa { n, e } => rsa_material(n, e),
        PublicKey::Ec { curve, .. } => {
            let (x, y) = key
                .ec_xy()
                .ok_or_else(|| Error::Key("EC key without a point".into()))?;
            let id = if *curve == Curve::P384 {
                CURVE_P384
            } else {
                CURVE_P256
            };
            let mut m = Vec::with_capacity(1 + x.len() + y.len());
            m.push(id);
            m.extend(x.iter().rev());
            m.extend(y.iter().rev());
            Ok(m)
        }
    }
}

fn rsa_material(n: &[u8], e: &[u8]) -> Result<Vec<u8>> {
    use rsa::BigUint;
    if n.len() != RSA_LEN {
        return Err(Error::Key(format!(
            "RSA modulus of {} bytes, Secure Boot V2 needs 384",
            n.len()
        )));
    }
    if e.len() > 4 {
        return Err(Error::Key(
            "RSA public exponent does not fit 32 bits".into(),
        ));
    }
    let mut e32 = [0u8; 4];
    e32[4 - e.len()..].copy_from_slice(e);
    let e32 = u32::from_be_bytes(e32);
    let n0 = u32::from_be_bytes([n[380], n[381], n[382], n[383]]);
    if n0 & 1 == 0 {
        return Err(Error::Key("RSA modulus is even".into()));
    }
    // n⁻¹ mod 2³² by Newton's iteration (x ← x(2 − n·x) doubles the correct bits; n·n ≡ 1
    // mod 8 gives 3 to start), then m′ = −n⁻¹.
    let mut inv = n0;
    for _ in 0..4 {
        inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
    }
    let m_prime = inv.wrapping_neg();
    let big_n = BigUint::from_bytes_be(n);
    let rr = (BigUint::from(1u32) << (2 * 8 * RSA_LEN)) % &big_n;
    let mut out = Vec::with_capacity(RSA_MATERIAL_LEN);
    out.extend(n.iter().rev());
    out.extend_from_slice(&e32.to_le_bytes());
    out.extend_from_slice(&le_fixed(&rr.to_bytes_le(), RSA_LEN));
    out.extend_from_slice(&m_prime.to_le_bytes());
    Ok(out)
}

/// Little-endian bytes zero-extended to `len` (a value below n always fits).
fn le_fixed(le: &[u8], len: usize) -> Vec<u8> {
    let mut v = le.to_vec();
    v.resize(len, 0);
    v.truncate(len);
    v
}

/// The eFuse key digest (BLOCK_KEYn, purpose SECURE_BOOT_DIGESTn): SHA-256 of the key
/// material, for every key type (SHA-256 also for P-384).
pub fn key_digest(key: &PublicKey) -> Result<[u8; 32]> {
    Ok(Sha256::digest(key_material(key)?).into())
}

/// Streams an image and hashes it as Secure Boot V2 does: padded with 0xFF to a multiple
/// of 4 KiB. Memory use does not grow with the image.
#[derive(Clone)]
pub struct ImageHasher {
    hasher: Hasher,
    len: u64,
}

impl ImageHasher {
    /// `hash` is the scheme's hash: SHA-384 for P-384 keys, SHA-256 otherwise.
    pub fn new(hash: HashAlg) -> Self {
        ImageHasher {
            hasher: hash.hasher(),
            len: 0,
        }
    }

    /// Hash the next `data` bytes of the image.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.len += data.len() as u64;
    }

    /// Image bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// No image bytes seen yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of 0xFF padding the image needs.
    pub fn padding(&self) -> u64 {
        padding_for(self.len)
    }

    /// (digest of the padded image, padded length).
    pub fn finish(mut self) -> (Vec<u8>, u64) {
        let mut pad = self.padding();
        let ff = [0xFFu8; 512];
        while pad > 0 {
            let n = usize::try_from(pad).map_or(ff.len(), |p| p.min(ff.len()));
            self.hasher.update(&ff[..n]);
            pad -= n as u64;
        }
        let padded = self.len + self.padding();
        (self.hasher.finish(), padded)
    }
}

/// 0xFF bytes that pad `len` to a multiple of 4 KiB.
pub fn padding_for(len: u64) -> u64 {
    let sector = SECTOR_LEN as u64;
    (sector - len % sector) % sector
}

/// Digest of an image read from `r` (padded as [`ImageHasher`] does), and its padded
/// length. Reads in 64 KiB pieces.
pub fn image_digest(hash: HashAlg, mut r: impl Read) -> std::io::Result<(Vec<u8>, u64)> {
    let mut h = ImageHasher::new(hash);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(h.finish())
}

fn check_digest(scheme: SignScheme, digest: &[u8]) -> Result<()> {
    let h = scheme.hash();
    if digest.len() != h.len() {
        return Err(Error::DigestLen {
            alg: h.name(),
            got: digest.len(),
            want: h.len(),
        });
    }
    Ok(())
}

/// One signature block for `key` over the padded image's digest. `signature` is the raw
/// 384-byte RSA-PSS signature, or the ECDSA signature as DER or fixed-width r‖s. The
/// signature is checked against the key first: a block that cannot boot is refused.
pub fn signature_block(
    key: &PublicKey,
    image_digest: &[u8],
    signature: &[u8],
) -> Result<[u8; BLOCK_LEN]> {
    let scheme = scheme_for(key)?;
    check_digest(scheme, image_digest)?;
    let mut b = [0u8; BLOCK_LEN];
    b[0] = MAGIC;
    let material = key_material(key)?;
    let mut at;
    match key {
        PublicKey::Rsa { .. } => {
            if signature.len() != RSA_LEN {
                return Err(Error::Signature(format!(
                    "RSA-3072 signature of {} bytes, expected 384",
                    signature.len()
                )));
            }
            key.verify_digest(scheme, image_digest, signature)
                .map_err(|_| Error::BadSignature)?;
            b[1] = VERSION_RSA;
            b[4..36].copy_from_slice(image_digest);
            at = 36;
            b[at..at + material.len()].copy_from_slice(&material);
            at += material.len();
            for (d, s) in b[at..at + RSA_LEN].iter_mut().zip(signature.iter().rev()) {
                *d = *s;
            }
        }
        PublicKey::Ec { curve, .. } => {
            let rs =
                ecdsa_to_fixed(*curve, signature).map_err(|e| Error::Signature(e.to_string()))?;
            key.verify_digest(scheme, image_digest, &rs)
                .map_err(|_| Error::BadSignature)?;
            b[1] = VERSION_ECDSA;
            b[2] = if *curve == Curve::P384 {
                SHA_384
            } else {
                SHA_256
            };
            at = 4;
            b[at..at + image_digest.len()].copy_from_slice(image_digest);
            at += image_digest.len();
            b[at..at + material.len()].copy_from_slice(&material);
            at += material.len();
            let n = curve.field_bytes();
            for part in rs.chunks_exact(n) {
                for (d, s) in b[at..at + n].iter_mut().zip(part.iter().rev()) {
                    *d = *s;
                }
                at += n;
            }
        }
    }
    let crc = crc32fast::hash(&b[..CRC_AT]);
    b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(b)
}

/// A parsed signature block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The public key stored in the block (RSA-3072 n and e, or the EC point), decoded from
    /// its little-endian form.
    pub key: PublicKey,
    /// RSA-PSS SHA-256, or ECDSA with SHA-256 (P-256) / SHA-384 (P-384), from the block's
    /// version and hash-type bytes.
    pub scheme: SignScheme,
    /// The digest of the padded image the block claims to sign.
    pub image_digest: Vec<u8>,
    /// Big-endian: raw RSA signature, or ECDSA fixed-width r‖s.
    pub signature: Vec<u8>,
    /// The stored CRC32 matches the block's first 1196 bytes.
    pub crc_ok: bool,
    /// The block's bytes as stored.
    pub bytes: Vec<u8>,
}

impl Block {
    /// An RSA-3072 block (version byte 0x02) rather than ECDSA (0x03).
    pub fn is_rsa(&self) -> bool {
        self.scheme.is_rsa()
    }
}

fn reversed(b: &[u8]) -> Vec<u8> {
    b.iter().rev().copied().collect()
}

/// Parse one 1216-byte slot. `Ok(None)` for an empty slot (all 0xFF).
pub fn parse_block(slot: &[u8]) -> std::result::Result<Option<Block>, String> {
    if slot.len() != BLOCK_LEN {
        return Err(format!("{} bytes, expected {BLOCK_LEN}", slot.len()));
    }
    if slot.iter().all(|&x| x == 0xFF) {
        return Ok(None);
    }
    if slot[0] != MAGIC {
        return Err(format!("magic byte {:#04x}, expected 0xe7", slot[0]));
    }
    let stored = u32::from_le_bytes([
        slot[CRC_AT],
        slot[CRC_AT + 1],
        slot[CRC_AT + 2],
        slot[CRC_AT + 3],
    ]);
    let crc_ok = stored == crc32fast::hash(&slot[..CRC_AT]);
    let (key, scheme, image_digest, signature) = match (slot[1], slot[2]) {
        (VERSION_RSA, _) => {
            let m = &slot[36..36 + RSA_MATERIAL_LEN];
            let n = reversed(&m[..RSA_LEN]);
            let e = u32::from_le_bytes([m[384], m[385], m[386], m[387]]).to_be_bytes();
            let key = PublicKey::rsa(&n, &e).map_err(|e| e.to_string())?;
            let scheme = scheme_for(&key).map_err(|e| e.to_string())?;
            // R² mod n and m′ are derived from n: a block whose copies disagree is corrupt.
            if key_material(&key).map_err(|e| e.to_string())? != m {
                return Err("RSA key material is inconsistent (R² mod n or m′ wrong)".into());
            }
            let at = 36 + RSA_MATERIAL_LEN;
            let sig = reversed(&slot[at..at + RSA_LEN]);
            (key, scheme, slot[4..36].to_vec(), sig)
        }
        (VERSION_ECDSA, hash) => {
            let (dlen, curve) = match hash {
                SHA_256 => (32, Curve::P256),
                SHA_384 => (48, Curve::P384),
                h => return Err(format!("unknown ECDSA hash type {h}")),
            };
            let at = 4 + dlen;
            let want_id = if curve == Curve::P384 {
                CURVE_P384
            } else {
                CURVE_P256
            };
            if slot[at] != want_id {
                return Err(format!(
                    "curve id {} with hash type {hash} (only P-256/SHA-256 and \
                     P-384/SHA-384 are supported)",
                    slot[at]
                ));
            }
            let n = curve.field_bytes();
            let p = &slot[at + 1..at + 1 + 2 * n];
            let mut point = vec![0x04];
            point.extend(p[..n].iter().rev());
            point.extend(p[n..].iter().rev());
            let key = PublicKey::ec(curve, &point).map_err(|e| e.to_string())?;
            let s = &slot[at + 1 + 2 * n..at + 1 + 4 * n];
            let mut rs = reversed(&s[..n]);
            rs.extend(s[n..].iter().rev());
            let scheme = scheme_for(&key).map_err(|e| e.to_string())?;
            (key, scheme, slot[4..4 + dlen].to_vec(), rs)
        }
        (v, _) => return Err(format!("unknown block version {v}")),
    };
    Ok(Some(Block {
        key,
        scheme,
        image_digest,
        signature,
        crc_ok,
        bytes: slot.to_vec(),
    }))
}

/// Parse a signature sector (4096 bytes): its blocks in order, stopping at the first
/// empty slot.
pub fn parse_sector(sector: &[u8]) -> Result<Vec<Block>> {
    if sector.len() != SECTOR_LEN {
        return Err(Error::Sector(format!(
            "{} bytes, expected {SECTOR_LEN}",
            sector.len()
        )));
    }
    let mut out = Vec::new();
    for index in 0..MAX_BLOCKS {
        let slot = &sector[index * BLOCK_LEN..(index + 1) * BLOCK_LEN];
        match parse_block(slot).map_err(|msg| Error::Block { index, msg })? {
            Some(b) => out.push(b),
            None => break,
        }
    }
    Ok(out)
}

/// A sector from 1–3 blocks: blocks at 0, 1216, 2432; the rest 0xFF. Refuses more than
/// three blocks, a mix of RSA and ECDSA blocks, blocks that do not parse or whose CRC is
/// wrong, and blocks of one hash that sign different images.
pub fn build_sector(blocks: &[[u8; BLOCK_LEN]]) -> Result<[u8; SECTOR_LEN]> {
    if blocks.is_empty() || blocks.len() > MAX_BLOCKS {
        return Err(Error::Sector(format!(
            "a sector holds 1 to {MAX_BLOCKS} blocks, got {}",
            blocks.len()
        )));
    }
    let mut parsed = Vec::with_capacity(blocks.len());
    for (index, b) in blocks.iter().enumerate() {
        let p = parse_block(b)
            .map_err(|msg| Error::Block { index, msg })?
            .ok_or(Error::Block {
                index,
                msg: "empty (all 0xFF)".into(),
            })?;
        if !p.crc_ok {
            return Err(Error::Block {
                index,
                msg: "CRC32 does not match".into(),
            });
        }
        parsed.push(p);
    }
    check_compatible(&parsed)?;
    let mut s = [0xFFu8; SECTOR_LEN];
    for (i, b) in blocks.iter().enumerate() {
        s[i * BLOCK_LEN..(i + 1) * BLOCK_LEN].copy_from_slice(b);
    }
    Ok(s)
}

fn check_compatible(blocks: &[Block]) -> Result<()> {
    let Some(first) = blocks.first() else {
        return Ok(());
    };
    for (index, b) in blocks.iter().enumerate().skip(1) {
        if b.is_rsa() != first.is_rsa() {
            return Err(Error::Sector(format!(
                "block {} is {} but block 1 is {}: one sector may not mix RSA and ECDSA",
                index + 1,
                kind(b),
                kind(first)
            )));
        }
        if b.scheme.hash() == first.scheme.hash() && b.image_digest != first.image_digest {
            return Err(Error::Sector(format!(
                "block {} signs a different image than block 1",
                index + 1
            )));
        }
    }
    Ok(())
}

fn kind(b: &Block) -> &'static str {
    if b.is_rsa() {
        "RSA"
    } else {
        "ECDSA"
    }
}

/// Add `block` to an existing sector (the next empty slot). Refuses a full sector and
/// the same mixes as [`build_sector`].
pub fn append_block(sector: &[u8], block: &[u8; BLOCK_LEN]) -> Result<[u8; SECTOR_LEN]> {
    let existing = parse_sector(sector)?;
    if existing.len() >= MAX_BLOCKS {
        return Err(Error::Sector(format!(
            "already holds {MAX_BLOCKS} signature blocks"
        )));
    }
    let mut all = Vec::with_capacity(existing.len() + 1);
    for (index, b) in existing.iter().enumerate() {
        let arr: [u8; BLOCK_LEN] = b.bytes.as_slice().try_into().map_err(|_| Error::Block {
            index,
            msg: "wrong length".into(),
        })?;
        all.push(arr);
    }
    all.push(*block);
    build_sector(&all)
}

/// Check a parsed block against the digest of the padded image it should sign.
pub fn verify_block(block: &Block, image_digest: &[u8]) -> Result<()> {
    if !block.crc_ok {
        return Err(Error::Sector("block CRC32 does not match".into()));
    }
    check_digest(block.scheme, image_digest)?;
    if block.image_digest != image_digest {
        return Err(Error::DigestMismatch);
    }
    block
        .key
        .verify_digest(block.scheme, image_digest, &block.signature)
        .map_err(|_| Error::BadSignature)
}

/// A signed image read once: its signature blocks and the digests of everything before
/// the signature sector (both hashes, so P-384 blocks and the others can be checked).
#[derive(Clone, Debug)]
pub struct SignedImage {
    /// The signature blocks found in the sector, in slot order (1 to 3).
    pub blocks: Vec<Block>,
    /// Length of the (padded) image before the signature sector.
    pub image_len: u64,
    /// SHA-256 of the padded image (what RSA and P-256 blocks sign).
    pub sha256: Vec<u8>,
    /// SHA-384 of the padded image (what P-384 blocks sign).
    pub sha384: Vec<u8>,
}

impl SignedImage {
    /// The image digest a block with `hash` should carry: SHA-384 for P-384, otherwise
    /// SHA-256.
    pub fn digest(&self, hash: HashAlg) -> &[u8] {
        if hash == HashAlg::Sha384 {
            &self.sha384
        } else {
            &self.sha256
        }
    }
}

/// Read a signed image of `total_len` bytes from `r` (streamed; memory stays flat): the
/// padded image, then the 4 KiB signature sector.
pub fn read_signed_image(mut r: impl Read, total_len: u64) -> Result<SignedImage> {
    let sector_len = SECTOR_LEN as u64;
    if total_len < sector_len || padding_for(total_len) != 0 {
        return Err(Error::Image(format!(
            "{total_len} bytes: a signed image is a non-empty multiple of 4096 bytes"
        )));
    }
    let image_len = total_len - sector_len;
    let mut h256 = HashAlg::Sha256.hasher();
    let mut h384 = HashAlg::Sha384.hasher();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = image_len;
    while left > 0 {
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        let n = read_some(&mut r, &mut buf[..want])?;
        h256.update(&buf[..n]);
        h384.update(&buf[..n]);
        left -= n as u64;
    }
    let mut sector = vec![0u8; SECTOR_LEN];
    let mut got = 0;
    while got < SECTOR_LEN {
        got += read_some(&mut r, &mut sector[got..])?;
    }
    Ok(SignedImage {
        blocks: parse_sector(&sector)?,
        image_len,
        sha256: h256.finish(),
        sha384: h384.finish(),
    })
}

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> Result<usize> {
    loop {
        match r.read(buf) {
            Ok(0) => return Err(Error::Image("shorter than its stated length".into())),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Image(e.to_string())),
        }
    }
}

/// Check a signed image as espsecure's verify-signature does: every block must carry the
/// image's digest, and at least one block must verify with `key`. Returns the 0-based
/// indexes of the blocks `key` verifies.
pub fn verify_signed_image(img: &SignedImage, key: &PublicKey) -> Result<Vec<usize>> {
    if img.blocks.is_empty() {
        return Err(Error::Image(
            "the signature sector holds no signature block".into(),
        ));
    }
    let mut ok = Vec::new();
    for (index, b) in img.blocks.iter().enumerate() {
        if !b.crc_ok {
            return Err(Error::Block {
                index,
                msg: "CRC32 does not match".into(),
            });
        }
        if b.image_digest != img.digest(b.scheme.hash()) {
            return Err(Error::Block {
                index,
                msg: "its image digest does not match the image".into(),
            });
        }
        if b.key == *key {
            verify_block(b, img.digest(b.scheme.hash())).map_err(|e| Error::Block {
                index,
                msg: e.to_string(),
            })?;
            ok.push(index);
        }
    }
    if ok.is_empty() {
        return Err(Error::NoBlockForKey(key.describe()));
    }
    Ok(ok)
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

    #[test]
    fn padding_is_to_4k() {
        assert_eq!(padding_for(0), 0);
        assert_eq!(padding_for(1), 4095);
        assert_eq!(padding_for(4096), 0);
        let mut h = ImageHasher::new(HashAlg::Sha256);
        h.update(b"abc");
        let (d, n) = h.finish();
        let mut img = b"abc".to_vec();
        img.resize(4096, 0xFF);
        assert_eq!(n, 4096);
        assert_eq!(d, Sha256::digest(&img).to_vec());
    }

    #[test]
    fn unsupported_keys_are_refused() {
        let k = PublicKey::rsa(&[0xC1; 256], &[1, 0, 1]).unwrap();
        assert!(scheme_for(&k).unwrap_err().to_string().contains("RSA 2048"));
        assert!(key_digest(&k).is_err());
    }

    #[test]
    fn empty_sector_parses_to_nothing() {
        assert!(parse_sector(&[0xFF; SECTOR_LEN]).unwrap().is_empty());
        assert!(parse_sector(&[0x00; SECTOR_LEN]).is_err());
        assert!(parse_sector(&[0xFF; 10]).is_err());
        assert!(build_sector(&[]).is_err());
    }

    /// Arbitrary bytes behind a valid magic and version never panic the parser.
    #[test]
    fn random_sectors_never_panic() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        for round in 0..300 {
            let mut s = [0u8; SECTOR_LEN];
            s.iter_mut().for_each(|b| *b = next());
            s[0] = MAGIC;
            s[1] = [VERSION_RSA, VERSION_ECDSA, 7][round % 3];
            s[2] = (round % 3) as u8;
            s[36] = [CURVE_P256, CURVE_P384, 1][round % 3];
            s[52] = CURVE_P384;
            let _ = parse_sector(&s);
            let _ = append_block(&s, &[0xE7; BLOCK_LEN]);
        }
    }
}
