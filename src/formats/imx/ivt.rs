//! The HAB4 Image Vector Table and boot data: where an image says it is loaded, where its
//! CSF goes and how long it is. Layout from spsdk's `seg_ivt.py`/`seg_bdt.py` and NXP's
//! HAB4 API: IVT header `D1 0020 4x` (big-endian), then seven little-endian u32s; boot
//! data three little-endian u32s.
//!
//! A file's offsets relate to the addresses by the IVT's self pointer: file offset =
//! address − (self − the IVT's file offset).
//!
//! Pure: the caller reads the file and hands in the bytes at each candidate offset.

/// Where an IVT is looked for in a file: at the start (U-Boot's `u-boot.imx`,
/// `nxpimage hab export`), after a 1 KiB boot-medium header, after a 4 KiB FlexSPI
/// configuration block.
pub const IVT_OFFSETS: [u64; 3] = [0, 0x400, 0x1000];
/// An IVT is 32 bytes: the 4-byte header and seven u32s.
pub const IVT_LEN: usize = 32;
/// Boot data is 12 bytes: start, length, plugin flag.
pub const BOOT_DATA_LEN: usize = 12;
/// The IVT header's tag byte.
pub const IVT_TAG: u8 = 0xD1;

/// Why a file holds no usable IVT.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// None of [`IVT_OFFSETS`] holds an IVT header.
    #[error("no IVT: none of file offsets 0x0, 0x400, 0x1000 holds an IVT header (D1 00 20 4x)")]
    NoIvt,
    /// An IVT was found but its pointers or boot data do not fit the file.
    #[error("the IVT at file offset {ivt:#x}: {msg}")]
    Bad {
        /// The IVT's file offset.
        ivt: u64,
        /// Which pointer or field is wrong, and why.
        msg: String,
    },
}

/// An Image Vector Table as the ROM reads it: header `D1 00 20 4x`, then seven
/// little-endian u32 words (addresses, not file offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ivt {
    /// Header version byte, `0x40`–`0x4F` (HAB 4.x).
    pub version: u8,
    /// Address of the first instruction the ROM jumps to.
    pub entry: u32,
    /// Word 2, reserved (kept as read).
    pub reserved1: u32,
    /// Address of the Device Configuration Data, 0 when none.
    pub dcd: u32,
    /// Address of the boot data.
    pub boot_data: u32,
    /// The IVT's own address (`self`): ties addresses to file offsets.
    pub self_addr: u32,
    /// Address of the CSF, 0 in an unsigned image.
    pub csf: u32,
    /// Word 7, reserved (kept as read).
    pub reserved2: u32,
}

fn le(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl Ivt {
    /// The IVT in `b` (32 bytes at least), if its header is one.
    pub fn parse(b: &[u8]) -> Option<Ivt> {
        if b.len() < IVT_LEN || b[0] != IVT_TAG || b[1..3] != [0x00, 0x20] || b[3] & 0xF0 != 0x40 {
            return None;
        }
        Some(Ivt {
            version: b[3],
            entry: le(b, 4),
            reserved1: le(b, 8),
            dcd: le(b, 12),
            boot_data: le(b, 16),
            self_addr: le(b, 20),
            csf: le(b, 24),
            reserved2: le(b, 28),
        })
    }

    /// The 32 bytes as written: header, then the seven words little-endian.
    pub fn to_bytes(&self) -> [u8; IVT_LEN] {
        let mut b = [0u8; IVT_LEN];
        b[..4].copy_from_slice(&[IVT_TAG, 0x00, 0x20, self.version]);
        for (i, v) in [
            self.entry,
            self.reserved1,
            self.dcd,
            self.boot_data,
            self.self_addr,
            self.csf,
            self.reserved2,
        ]
        .into_iter()
        .enumerate()
        {
            b[4 + 4 * i..8 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
}

/// The boot data the IVT points at: three little-endian u32s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootData {
    /// Address of the start of the image (may lie before the file's first byte).
    pub start: u32,
    /// Bytes from `start` the ROM loads; covers the CSF.
    pub length: u32,
    /// Plugin flag (non-zero: the image is a HAB plugin); kept as read.
    pub plugin: u32,
}

impl BootData {
    /// The boot data in `b` (12 bytes at least); `None` when shorter.
    pub fn parse(b: &[u8]) -> Option<BootData> {
        (b.len() >= BOOT_DATA_LEN).then(|| BootData {
            start: le(b, 0),
            length: le(b, 4),
            plugin: le(b, 8),
        })
    }

    /// The 12 bytes as written, little-endian.
    pub fn to_bytes(&self) -> [u8; BOOT_DATA_LEN] {
        let mut b = [0u8; BOOT_DATA_LEN];
        b[..4].copy_from_slice(&self.start.to_le_bytes());
        b[4..8].copy_from_slice(&self.length.to_le_bytes());
        b[8..].copy_from_slice(&self.plugin.to_le_bytes());
        b
    }

    /// One past the last loaded address.
    pub fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.length)
    }
}

/// A checked IVT and boot data in a file of `file_len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// File offset of the IVT (one of [`IVT_OFFSETS`]).
    pub ivt_offset: u64,
    /// The IVT found at `ivt_offset`, its pointers checked against the file.
    pub ivt: Ivt,
    /// The boot data the IVT points at.
    pub boot: BootData,
    /// The file's length in bytes.
    pub file_len: u64,
}

impl Layout {
    /// The IVT among `candidates` ((file offset, its 32 bytes) in file order) that comes
    /// first; `boot_data_at` reads the 12 bytes at a file offset (None: outside the
    /// file). The IVT's self pointer and boot data must lie inside the image the boot
    /// data describes, and the boot data (and DCD) inside the file.
    pub fn find(
        candidates: &[(u64, &[u8])],
        file_len: u64,
        mut boot_data_at: impl FnMut(u64) -> Option<Vec<u8>>,
    ) -> Result<Layout, Error> {
        let (ivt_offset, ivt) = candidates
            .iter()
            .find_map(|(off, b)| Ivt::parse(b).map(|i| (*off, i)))
            .ok_or(Error::NoIvt)?;
        let bad = |msg: String| Error::Bad {
            ivt: ivt_offset,
            msg,
        };
        let base = i128::from(ivt.self_addr) - i128::from(ivt_offset);
        let to_file = |addr: u32| -> Option<u64> {
            u64::try_from(i128::from(addr) - base)
                .ok()
                .filter(|&o| o < file_len)
        };
        let bd_off = to_file(ivt.boot_data)
            .filter(|&o| o + BOOT_DATA_LEN as u64 <= file_len)
            .ok_or_else(|| {
                bad(format!(
                    "its boot data pointer {:#010x} lies outside the file ({file_len} bytes, IVT self pointer {:#010x})",
                    ivt.boot_data, ivt.self_addr
                ))
            })?;
        if (ivt_offset..ivt_offset + IVT_LEN as u64).contains(&bd_off)
            || (bd_off..bd_off + BOOT_DATA_LEN as u64).contains(&ivt_offset)
        {
            return Err(bad(format!(
                "its boot data pointer {:#010x} overlaps the IVT itself",
                ivt.boot_data
            )));
        }
        let boot = boot_data_at(bd_off)
            .and_then(|b| BootData::parse(&b))
            .ok_or_else(|| {
                bad(format!(
                    "cannot read its boot data at file offset {bd_off:#x}"
                ))
            })?;
        let self_addr = u64::from(ivt.self_addr);
        if self_addr < u64::from(boot.start) || self_addr + IVT_LEN as u64 > boot.end() {
            return Err(bad(format!(
                "its self pointer {:#010x} lies outside the image the boot data describes ({:#010x}, {} bytes)",
                ivt.self_addr, boot.start, boot.length
            )));
        }
        let bd = u64::from(ivt.boot_data);
        if bd < u64::from(boot.start) || bd + BOOT_DATA_LEN as u64 > boot.end() {
            return Err(bad(format!(
                "its boot data ({:#010x}) lies outside the image it describes ({:#010x}, {} bytes)",
                ivt.boot_data, boot.start, boot.length
            )));
        }
        if ivt.dcd != 0 && to_file(ivt.dcd).is_none() {
            return Err(bad(format!(
                "its DCD pointer {:#010x} lies outside the file",
                ivt.dcd
            )));
        }
        Ok(Layout {
            ivt_offset,
            ivt,
            boot,
            file_len,
        })
    }

    /// The file offset of `addr`, if it is at or after the file's start (it may be past
    /// its end).
    pub fn file_offset(&self, addr: u32) -> Option<u64> {
        let base = i128::from(self.ivt.self_addr) - i128::from(self.ivt_offset);
        u64::try_from(i128::from(addr) - base).ok()
    }

    /// The address of file offset `off`.
    pub fn address(&self, off: u64) -> Option<u32> {
        let base = i128::from(self.ivt.self_addr) - i128::from(self.ivt_offset);
        u32::try_from(i128::from(off) + base).ok()
    }

    /// File offset of the boot data.
    pub fn boot_data_offset(&self) -> u64 {
        // find() checked that this maps into the file.
        self.file_offset(self.ivt.boot_data).unwrap_or(0)
    }

    /// File offset one past the image the boot data describes.
    pub fn boot_end_offset(&self) -> Option<u64> {
        let base = i128::from(self.ivt.self_addr) - i128::from(self.ivt_offset);
        u64::try_from(i128::from(self.boot.end()) - base).ok()
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

    /// An RT1060-style image as `nxpimage hab export` writes it: IVT at file offset 0,
    /// loaded at 0x60001000, image start 0x60000000.
    fn image() -> Vec<u8> {
        let mut v = vec![0u8; 0x3000];
        let ivt = Ivt {
            version: 0x40,
            entry: 0x6000_2401,
            reserved1: 0,
            dcd: 0,
            boot_data: 0x6000_1020,
            self_addr: 0x6000_1000,
            csf: 0,
            reserved2: 0,
        };
        v[..32].copy_from_slice(&ivt.to_bytes());
        let bd = BootData {
            start: 0x6000_0000,
            length: 0x4000,
            plugin: 0,
        };
        v[32..44].copy_from_slice(&bd.to_bytes());
        v
    }

    fn find(v: &[u8]) -> Result<Layout, Error> {
        let cands: Vec<(u64, &[u8])> = IVT_OFFSETS
            .iter()
            .filter(|&&o| (o as usize) < v.len())
            .map(|&o| (o, &v[o as usize..]))
            .collect();
        Layout::find(&cands, v.len() as u64, |o| {
            v.get(o as usize..o as usize + 12).map(<[u8]>::to_vec)
        })
    }

    #[test]
    fn rt_image_maps_addresses_to_offsets() {
        let v = image();
        let l = find(&v).unwrap();
        assert_eq!(l.ivt_offset, 0);
        assert_eq!(l.file_offset(0x6000_2000), Some(0x1000));
        assert_eq!(l.file_offset(0x6000_0000), None);
        assert_eq!(l.boot_end_offset(), Some(0x3000));
        assert_eq!(Ivt::parse(&v).unwrap().to_bytes(), v[..32]);
    }

    #[test]
    fn refusals() {
        assert_eq!(find(&[0u8; 0x2000]), Err(Error::NoIvt));
        let mut v = image();
        v[16..20].copy_from_slice(&0x7000_0000u32.to_le_bytes());
        assert!(find(&v)
            .unwrap_err()
            .to_string()
            .contains("boot data pointer"));
        let mut v = image();
        v[36..40].copy_from_slice(&0x10u32.to_le_bytes()); // length too short for the IVT
        assert!(find(&v).unwrap_err().to_string().contains("self pointer"));
        let mut v = image();
        v[12..16].copy_from_slice(&0x6100_0000u32.to_le_bytes());
        assert!(find(&v).unwrap_err().to_string().contains("DCD"));
    }

    #[test]
    fn ivt_found_after_a_flexspi_block() {
        let mut v = vec![0xFFu8; 0x1000];
        v.extend(image());
        let l = find(&v).unwrap();
        assert_eq!(l.ivt_offset, 0x1000);
        assert_eq!(l.file_offset(0x6000_1000), Some(0x1000));
    }
}
