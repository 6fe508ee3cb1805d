//! STM32MP image headers (the `STM2` header the ROM code reads in front of TF-A BL2 and
//! other payloads): v1 for STM32MP15 (256 bytes), v2 for STM32MP13/MP25 (0x200 bytes with
//! extension headers). Pure: bytes in, bytes out. Offsets are FORMATS.md's.
//!
//! The signature (ECDSA r‖s, big-endian) covers header bytes 0x48 up to the end of the
//! header, then the first `image length` payload bytes. The checksum (a byte sum of the
//! payload) sits at 0x44, outside the signed range.

use crate::keys::{Curve, PublicKey};

/// The header's first four bytes, `STM2`.
pub const MAGIC: [u8; 4] = *b"STM2";
/// First header byte the signature covers.
pub const SIGNED_FROM: usize = 0x48;
/// Header v1 length (STM32MP15).
pub const V1_LEN: usize = 256;
/// Header v2 length (STM32MP13, MP25), extensions included.
pub const V2_LEN: usize = 0x200;
/// Header version field values (u32 at 72): v1, v2 (MP13), v2.2 (MP25).
pub const VERSION_V1: u32 = 0x0001_0000;
/// v2.0, STM32MP13.
pub const VERSION_V2: u32 = 0x0002_0000;
/// v2.2, STM32MP25 (same layout as v2.0).
pub const VERSION_V2_2: u32 = 0x0002_0200;
/// Option flag (v1, u32 at 100) bit 0: the ROM skips the signature check.
pub const NO_SIG_CHECK: u32 = 1;
/// Algorithm ids (v1 u32 at 104; v2 in the authentication extension).
pub const ALGO_P256: u32 = 1;
/// brainpoolP256t1.
pub const ALGO_BRAINPOOL_P256: u32 = 2;
/// v2 extension flags (u32 at 100).
pub const EXT_AUTH: u32 = 1;
/// v2 extension flag bit 31: a padding extension fills the header to 0x200.
pub const EXT_PADDING: u32 = 1 << 31;
/// v2 extension header types, as the bytes appear in the file.
pub const AUTH_EXT_TYPE: [u8; 4] = [b'S', b'T', 0x00, 0x02];
/// Padding extension type (`53 54 FF FF`).
pub const PADDING_EXT_TYPE: [u8; 4] = [b'S', b'T', 0xFF, 0xFF];
/// The ROM's key hash table holds at most 8 keys.
pub const MAX_KEYS: usize = 8;

const SIG: usize = 4;
const CHECKSUM: usize = 68;
const HEADER_VERSION: usize = 72;
const IMAGE_LENGTH: usize = 76;
const ENTRY_POINT: usize = 80;
const RESERVED1: usize = 84;
const LOAD_ADDRESS: usize = 88;
const RESERVED2: usize = 92;
const IMAGE_VERSION: usize = 96;
const OPTION_FLAGS: usize = 100; // v1; v2: extension flags
const V1_ALGORITHM: usize = 104;
const V1_PUBKEY: usize = 108;
const V1_BINARY_TYPE: usize = 255;
const V2_EXT_LENGTH: usize = 104;
const V2_BINARY_TYPE: usize = 108;
const V2_EXT_START: usize = 0x80;
/// Authentication extension: type, length, key index, key count, algorithm, X‖Y, table.
const AUTH_FIXED: usize = 4 + 4 + 4 + 4 + 4 + 64;

/// Why a header cannot be read, written or signed. The first field of most variants is the
/// layout's `--format` name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The input ends before the header does; holds its length in bytes.
    #[error("{0} header: input has {1} bytes, shorter than the header")]
    Short(&'static str, usize),
    /// The first four bytes are not `STM2`: not an STM32 image.
    #[error("{0} header: no STM2 magic at offset 0")]
    NoMagic(&'static str),
    /// The header is the other layout's: wrong `--format`.
    #[error(
        "{layout} header: header version {found:#010x} is not {expected} (use --format {other})"
    )]
    WrongVersion {
        /// The `--format` name asked for.
        layout: &'static str,
        /// The header version field (u32 at 72).
        found: u32,
        /// The version that format expects (`v1`, `v2`).
        expected: &'static str,
        /// The `--format` the header belongs to.
        other: &'static str,
    },
    /// The header version field (u32 at 72) is none ST defines: altered, or not an STM32MP
    /// image.
    #[error("{0} header: header version field {1:#010x} altered or unknown")]
    UnknownVersion(&'static str, u32),
    /// The key is not P-256 or brainpoolP256t1; holds the key's description.
    #[error("{0}: a {1} key cannot sign an STM32MP header (P-256 or brainpoolP256t1 only)")]
    KeyType(&'static str, String),
    /// A header field is out of place or altered; the message names the field and its
    /// offset.
    #[error("{0} header: {1}")]
    Field(&'static str, String),
    /// The v2 key hash table does not fit the signing key (count, or `--key-index` entry).
    #[error("stm32mp13 key table: {0}")]
    Table(String),
}

/// Which header: v1 (STM32MP15) or v2 (STM32MP13, MP25).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// STM32MP15: 256-byte header, one key.
    V1,
    /// STM32MP13/MP25: 0x200-byte header with extensions, up to eight keys.
    V2,
}

impl Layout {
    /// Header length in bytes: 256 (v1) or 0x200 (v2).
    pub fn header_len(self) -> usize {
        match self {
            Layout::V1 => V1_LEN,
            Layout::V2 => V2_LEN,
        }
    }

    /// The `--format` name.
    pub fn name(self) -> &'static str {
        match self {
            Layout::V1 => "stm32mp15",
            Layout::V2 => "stm32mp13",
        }
    }
}

/// The fields a new header takes from the command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// Where the ROM jumps after loading (u32 at 80).
    pub entry_point: u32,
    /// Where the ROM loads the payload (u32 at 88).
    pub load_address: u32,
    /// Anti-rollback version, compared by the ROM with the monotonic counter in OTP.
    pub image_version: u32,
    /// Binary type (v1: byte at 255; v2: u32 at 108), e.g. 0x10 for TF-A BL2.
    pub binary_type: u8,
}

/// What v2's authentication extension says about the signing key set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthExtension {
    /// 0-based index of the signing key in `table` (the OTP key set).
    pub key_index: u32,
    /// Algorithm id: [`ALGO_P256`] or [`ALGO_BRAINPOOL_P256`].
    pub algorithm: u32,
    /// The signing key's X‖Y, big-endian, 32 bytes each.
    pub xy: [u8; 64],
    /// One SHA-256(u32le(algorithm) ‖ X ‖ Y) per key, in table order.
    pub table: Vec<[u8; 32]>,
}

/// The algorithm id and X‖Y of a key the ROM accepts.
pub fn header_key(layout: Layout, key: &PublicKey) -> Result<(u32, [u8; 64]), Error> {
    let algo = match key {
        PublicKey::Ec {
            curve: Curve::P256, ..
        } => ALGO_P256,
        PublicKey::Ec {
            curve: Curve::BrainpoolP256t1,
            ..
        } => ALGO_BRAINPOOL_P256,
        _ => return Err(Error::KeyType(layout.name(), key.describe())),
    };
    let mut xy = [0u8; 64];
    if let Some((x, y)) = key.ec_xy() {
        xy[..32].copy_from_slice(x);
        xy[32..].copy_from_slice(y);
    }
    Ok((algo, xy))
}

/// A header as bytes, with typed access to its fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    layout: Layout,
    bytes: Vec<u8>,
}

fn rd(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn wr(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

impl Header {
    /// A new unsigned header for a payload of `image_length` bytes.
    pub fn new(layout: Layout, f: &Fields, image_length: u32, checksum: u32) -> Header {
        let mut b = vec![0u8; layout.header_len()];
        b[..4].copy_from_slice(&MAGIC);
        wr(&mut b, CHECKSUM, checksum);
        wr(&mut b, IMAGE_LENGTH, image_length);
        wr(&mut b, ENTRY_POINT, f.entry_point);
        wr(&mut b, LOAD_ADDRESS, f.load_address);
        wr(&mut b, IMAGE_VERSION, f.image_version);
        match layout {
            Layout::V1 => {
                wr(&mut b, HEADER_VERSION, VERSION_V1);
                b[V1_BINARY_TYPE] = f.binary_type;
            }
            Layout::V2 => {
                wr(&mut b, HEADER_VERSION, VERSION_V2);
                wr(&mut b, V2_BINARY_TYPE, u32::from(f.binary_type));
                write_extensions(&mut b, None);
            }
        }
        Header { layout, bytes: b }
    }

    /// Read the header at the start of `bytes` (which may hold more: the payload).
    pub fn parse(layout: Layout, bytes: &[u8]) -> Result<Header, Error> {
        let name = layout.name();
        if bytes.len() < 4 || bytes[..4] != MAGIC {
            return Err(Error::NoMagic(name));
        }
        if bytes.len() < HEADER_VERSION + 4 {
            return Err(Error::Short(name, bytes.len()));
        }
        let v = rd(bytes, HEADER_VERSION);
        let found = match v {
            VERSION_V1 => Layout::V1,
            VERSION_V2 | VERSION_V2_2 => Layout::V2,
            _ => return Err(Error::UnknownVersion(name, v)),
        };
        if found != layout {
            return Err(Error::WrongVersion {
                layout: name,
                found: v,
                expected: if layout == Layout::V1 { "v1" } else { "v2" },
                other: found.name(),
            });
        }
        if bytes.len() < layout.header_len() {
            return Err(Error::Short(name, bytes.len()));
        }
        Ok(Header {
            layout,
            bytes: bytes[..layout.header_len()].to_vec(),
        })
    }

    /// Which header layout (and so which offsets) this is.
    pub fn layout(&self) -> Layout {
        self.layout
    }
    /// The whole header as it will be written (256 or 0x200 bytes).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The header bytes the signature covers (0x48 to the end of the header).
    pub fn signed_part(&self) -> &[u8] {
        &self.bytes[SIGNED_FROM..]
    }
    /// The signature field (64 bytes at 4): ECDSA r‖s, big-endian; all zeros when unsigned.
    pub fn signature(&self) -> &[u8] {
        &self.bytes[SIG..SIG + 64]
    }
    /// Write ECDSA r‖s (big-endian) into the signature field.
    pub fn set_signature(&mut self, rs: &[u8; 64]) {
        self.bytes[SIG..SIG + 64].copy_from_slice(rs);
    }
    /// Whether the signature field holds anything but zeros.
    pub fn is_signed(&self) -> bool {
        self.signature().iter().any(|&b| b != 0)
    }
    /// The header version field (u32 at 72): [`VERSION_V1`], [`VERSION_V2`] or
    /// [`VERSION_V2_2`].
    pub fn header_version(&self) -> u32 {
        rd(&self.bytes, HEADER_VERSION)
    }
    /// The payload checksum field (u32 at 68): byte sum of the payload, outside the signed
    /// range.
    pub fn checksum(&self) -> u32 {
        rd(&self.bytes, CHECKSUM)
    }
    /// Write the payload checksum field (u32 at 68).
    pub fn set_checksum(&mut self, c: u32) {
        wr(&mut self.bytes, CHECKSUM, c)
    }
    /// Payload length in bytes (u32 at 76): the signature covers this many bytes after the
    /// header.
    pub fn image_length(&self) -> u32 {
        rd(&self.bytes, IMAGE_LENGTH)
    }
    /// Entry point (u32 at 80).
    pub fn entry_point(&self) -> u32 {
        rd(&self.bytes, ENTRY_POINT)
    }
    /// Load address (u32 at 88).
    pub fn load_address(&self) -> u32 {
        rd(&self.bytes, LOAD_ADDRESS)
    }
    /// Anti-rollback version (u32 at 96).
    pub fn image_version(&self) -> u32 {
        rd(&self.bytes, IMAGE_VERSION)
    }
    /// v1: option flags; v2: extension flags.
    pub fn flags(&self) -> u32 {
        rd(&self.bytes, OPTION_FLAGS)
    }
    /// Binary type: v1 the byte at 255, v2 the u32 at 108.
    pub fn binary_type(&self) -> u32 {
        match self.layout {
            Layout::V1 => u32::from(self.bytes[V1_BINARY_TYPE]),
            Layout::V2 => rd(&self.bytes, V2_BINARY_TYPE),
        }
    }

    /// Put the signing key in the header. v1: algorithm and X‖Y, and the "no signature
    /// check" option cleared (a signed image must be checked). v2: the authentication
    /// extension (key index, key count, algorithm, X‖Y, key hash table) then padding.
    pub fn set_key(
        &mut self,
        key: &PublicKey,
        auth: Option<(u32, &[[u8; 32]])>,
    ) -> Result<(), Error> {
        let (algo, xy) = header_key(self.layout, key)?;
        match self.layout {
            Layout::V1 => {
                if auth.is_some() {
                    return Err(Error::Field(
                        "stm32mp15",
                        "header v1 has no key table (--key-index/--key-table are for stm32mp13)"
                            .into(),
                    ));
                }
                let flags = self.flags() & !NO_SIG_CHECK;
                wr(&mut self.bytes, OPTION_FLAGS, flags);
                wr(&mut self.bytes, V1_ALGORITHM, algo);
                self.bytes[V1_PUBKEY..V1_PUBKEY + 64].copy_from_slice(&xy);
            }
            Layout::V2 => {
                let flags = self.flags();
                if flags & !(EXT_AUTH | EXT_PADDING) != 0 {
                    return Err(Error::Field(
                        "stm32mp13",
                        format!("extension flags {flags:#010x} name extensions other than authentication and padding; refusing to rewrite them"),
                    ));
                }
                let own = key_hash(algo, &xy);
                let (key_index, table) = match auth {
                    Some((i, t)) => (i, t.to_vec()),
                    None => (0, vec![own]),
                };
                if table.is_empty() || table.len() > MAX_KEYS {
                    return Err(Error::Table(format!(
                        "{} keys; the ROM takes 1 to {MAX_KEYS}",
                        table.len()
                    )));
                }
                match table.get(key_index as usize) {
                    Some(h) if *h == own => {}
                    Some(_) => {
                        return Err(Error::Table(format!(
                            "entry {key_index} is not the hash of the signing key (--key-index names the wrong key, or the key table lists another key)"
                        )))
                    }
                    None => {
                        return Err(Error::Table(format!(
                            "--key-index {key_index} is outside a table of {} keys",
                            table.len()
                        )))
                    }
                }
                write_extensions(
                    &mut self.bytes,
                    Some(&AuthExtension {
                        key_index,
                        algorithm: algo,
                        xy,
                        table,
                    }),
                );
            }
        }
        Ok(())
    }

    /// The key the header names (algorithm id, X‖Y), if any.
    pub fn key(&self) -> Result<(u32, [u8; 64]), Error> {
        match self.layout {
            Layout::V1 => {
                let mut xy = [0u8; 64];
                xy.copy_from_slice(&self.bytes[V1_PUBKEY..V1_PUBKEY + 64]);
                Ok((rd(&self.bytes, V1_ALGORITHM), xy))
            }
            Layout::V2 => {
                let a = self.auth()?.ok_or_else(|| {
                    Error::Field(
                        "stm32mp13",
                        "no authentication extension (image not signed)".into(),
                    )
                })?;
                Ok((a.algorithm, a.xy))
            }
        }
    }

    /// v2: the authentication extension, if the flags announce one.
    pub fn auth(&self) -> Result<Option<AuthExtension>, Error> {
        if self.layout != Layout::V2 || self.flags() & EXT_AUTH == 0 {
            return Ok(None);
        }
        let b = &self.bytes;
        let at = V2_EXT_START;
        let bad = |m: String| Error::Field("stm32mp13", m);
        if b[at..at + 4] != AUTH_EXT_TYPE {
            return Err(bad("authentication extension type at 0x80 altered".into()));
        }
        let len = rd(b, at + 4) as usize;
        let count = rd(b, at + 12) as usize;
        if count == 0 || count > MAX_KEYS || len != AUTH_FIXED + 32 * count {
            return Err(bad(format!(
                "authentication extension length {len} / key count {count} altered"
            )));
        }
        let mut xy = [0u8; 64];
        xy.copy_from_slice(&b[at + 20..at + 84]);
        let table = b[at + AUTH_FIXED..at + len]
            .chunks_exact(32)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(Some(AuthExtension {
            key_index: rd(b, at + 8),
            algorithm: rd(b, at + 16),
            xy,
            table,
        }))
    }

    /// Check the fields a signer leaves fixed (reserved words, padding, extension
    /// framing): a flipped byte there is named here instead of as a bad signature.
    pub fn check_structure(&self) -> Result<(), Error> {
        let name = self.layout.name();
        let b = &self.bytes;
        let field = |m: String| Err(Error::Field(name, m));
        if rd(b, RESERVED1) != 0 {
            return field("reserved word at 84 altered (not zero)".into());
        }
        if rd(b, RESERVED2) != 0 {
            return field("reserved word at 92 altered (not zero)".into());
        }
        match self.layout {
            Layout::V1 => {
                if self.flags() & !NO_SIG_CHECK != 0 {
                    return field(format!(
                        "option flags {:#x} altered (unknown bits)",
                        self.flags()
                    ));
                }
                let algo = rd(b, V1_ALGORITHM);
                if algo != ALGO_P256 && algo != ALGO_BRAINPOOL_P256 {
                    return field(format!(
                        "algorithm field {algo} altered (1 = P-256, 2 = brainpool)"
                    ));
                }
                if b[V1_PUBKEY + 64..V1_BINARY_TYPE].iter().any(|&x| x != 0) {
                    return field("padding bytes 172..255 altered (not zero)".into());
                }
            }
            Layout::V2 => {
                let flags = self.flags();
                if flags & !(EXT_AUTH | EXT_PADDING) != 0 {
                    return field(format!("extension flags {flags:#x} altered (unknown bits)"));
                }
                if rd(b, V2_EXT_LENGTH) as usize != V2_LEN - V2_EXT_START {
                    return field("extension headers length at 104 altered".into());
                }
                if b[V2_BINARY_TYPE + 4..V2_EXT_START].iter().any(|&x| x != 0) {
                    return field("padding bytes 112..128 altered (not zero)".into());
                }
                let mut at = V2_EXT_START;
                if let Some(a) = self.auth()? {
                    if a.algorithm != ALGO_P256 && a.algorithm != ALGO_BRAINPOOL_P256 {
                        return field(format!("authentication algorithm {} altered", a.algorithm));
                    }
                    at += AUTH_FIXED + 32 * a.table.len();
                }
                if flags & EXT_PADDING != 0 {
                    if b[at..at + 4] != PADDING_EXT_TYPE {
                        return field(format!("padding extension type at {at:#x} altered"));
                    }
                    if rd(b, at + 4) as usize != V2_LEN - at {
                        return field(format!("padding extension length at {:#x} altered", at + 4));
                    }
                    if b[at + 8..].iter().any(|&x| x != 0) {
                        return field("padding extension bytes altered (not zero)".into());
                    }
                }
            }
        }
        Ok(())
    }
}

/// Lay out v2's extension area (0x80..0x200): the authentication extension if given,
/// then a padding extension to 0x200; set the flags and total length to match.
// Every length written is at most V2_LEN (0x200): the authentication extension holds at
// most MAX_KEYS keys (set_key refuses more), AUTH_FIXED + 32 * 8 = 376 bytes, so the
// `as u32` casts cannot truncate.
#[allow(clippy::cast_possible_truncation)]
fn write_extensions(b: &mut [u8], auth: Option<&AuthExtension>) {
    b[V2_EXT_START..].fill(0);
    let mut at = V2_EXT_START;
    let mut flags = EXT_PADDING;
    if let Some(a) = auth {
        let len = AUTH_FIXED + 32 * a.table.len();
        b[at..at + 4].copy_from_slice(&AUTH_EXT_TYPE);
        wr(b, at + 4, len as u32);
        wr(b, at + 8, a.key_index);
        wr(b, at + 12, a.table.len() as u32);
        wr(b, at + 16, a.algorithm);
        b[at + 20..at + 84].copy_from_slice(&a.xy);
        for (i, h) in a.table.iter().enumerate() {
            b[at + AUTH_FIXED + 32 * i..at + AUTH_FIXED + 32 * (i + 1)].copy_from_slice(h);
        }
        at += len;
        flags |= EXT_AUTH;
    }
    b[at..at + 4].copy_from_slice(&PADDING_EXT_TYPE);
    wr(b, at + 4, (V2_LEN - at) as u32);
    wr(b, OPTION_FLAGS, flags);
    wr(b, V2_EXT_LENGTH, (V2_LEN - V2_EXT_START) as u32);
}

/// Per-key hash in the v2 key table: SHA-256(u32le(algorithm) ‖ X ‖ Y).
pub fn key_hash(algorithm: u32, xy: &[u8; 64]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(algorithm.to_le_bytes());
    h.update(xy);
    h.finalize().into()
}

/// The payload checksum: a 32-bit byte sum, fed as a stream.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum(pub u32);

impl std::io::Write for Checksum {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = buf.iter().fold(0u32, |a, &x| a.wrapping_add(u32::from(x)));
        self.0 = self.0.wrapping_add(s);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
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

    fn key(seed: u8) -> PublicKey {
        use elliptic_curve::sec1::ToEncodedPoint;
        let sk = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
        PublicKey::ec(
            Curve::P256,
            sk.public_key().to_encoded_point(false).as_bytes(),
        )
        .unwrap()
    }

    fn fields() -> Fields {
        Fields {
            entry_point: 0x2ffc_2400,
            load_address: 0x2ffc_2400,
            image_version: 3,
            binary_type: 0x10,
        }
    }

    #[test]
    fn v1_offsets() {
        let mut h = Header::new(Layout::V1, &fields(), 1000, 0x1234);
        h.set_key(&key(1), None).unwrap();
        let b = h.bytes();
        assert_eq!(b.len(), 256);
        assert_eq!(&b[..4], b"STM2");
        assert_eq!(&b[72..76], &[0, 0, 1, 0]);
        assert_eq!(rd(b, 76), 1000);
        assert_eq!(rd(b, 68), 0x1234);
        assert_eq!(rd(b, 104), 1);
        assert_eq!(&b[108..140], key(1).ec_xy().unwrap().0);
        assert_eq!(b[255], 0x10);
        h.check_structure().unwrap();
        assert_eq!(Header::parse(Layout::V1, b).unwrap(), h);
        assert!(matches!(
            Header::parse(Layout::V2, b),
            Err(Error::WrongVersion { .. })
        ));
    }

    #[test]
    fn v2_auth_extension_and_padding() {
        let keys: Vec<_> = (1..=3).map(key).collect();
        let table: Vec<[u8; 32]> = keys
            .iter()
            .map(|k| {
                let (a, xy) = header_key(Layout::V2, k).unwrap();
                key_hash(a, &xy)
            })
            .collect();
        let mut h = Header::new(Layout::V2, &fields(), 10, 0);
        h.set_key(&keys[1], Some((1, &table))).unwrap();
        let b = h.bytes();
        assert_eq!(b.len(), 0x200);
        assert_eq!(rd(b, 100), EXT_AUTH | EXT_PADDING);
        assert_eq!(rd(b, 104), 0x180);
        assert_eq!(&b[0x80..0x84], &AUTH_EXT_TYPE);
        let a = h.auth().unwrap().unwrap();
        assert_eq!((a.key_index, a.table.len()), (1, 3));
        let pad = 0x80 + AUTH_FIXED + 96;
        assert_eq!(&b[pad..pad + 4], &PADDING_EXT_TYPE);
        assert_eq!(rd(b, pad + 4) as usize, 0x200 - pad);
        h.check_structure().unwrap();
        // The wrong index is refused.
        let mut h2 = Header::new(Layout::V2, &fields(), 10, 0);
        assert!(matches!(
            h2.set_key(&keys[1], Some((0, &table))),
            Err(Error::Table(_))
        ));
    }

    /// Arbitrary bytes behind the magic and a valid version never panic the reader.
    #[test]
    fn random_headers_never_panic() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        for round in 0..2000 {
            let mut b = vec![0u8; V2_LEN];
            b.iter_mut().for_each(|v| *v = next());
            b[..4].copy_from_slice(&MAGIC);
            let layout = if round % 2 == 0 {
                Layout::V1
            } else {
                Layout::V2
            };
            let v = if layout == Layout::V1 {
                VERSION_V1
            } else {
                VERSION_V2
            };
            b[HEADER_VERSION..HEADER_VERSION + 4].copy_from_slice(&v.to_le_bytes());
            if round % 3 == 0 {
                b[V2_EXT_START..V2_EXT_START + 4].copy_from_slice(&AUTH_EXT_TYPE);
                let count = (round / 3 % 10) as u32;
                wr(&mut b, V2_EXT_START + 12, count);
                wr(&mut b, V2_EXT_START + 4, AUTH_FIXED as u32 + 32 * count);
                wr(&mut b, OPTION_FLAGS, EXT_AUTH | EXT_PADDING);
            }
            let h = Header::parse(layout, &b).unwrap();
            let _ = h.check_structure();
            let _ = h.key();
            let _ = h.auth();
        }
        assert!(Header::parse(Layout::V1, b"STM2").is_err());
        assert!(Header::parse(Layout::V1, b"").is_err());
    }

    #[test]
    fn checksum_is_a_byte_sum() {
        use std::io::Write;
        let mut c = Checksum::default();
        c.write_all(&[0xff; 3]).unwrap();
        c.write_all(&[1]).unwrap();
        assert_eq!(c.0, 0x2fe);
    }
}
