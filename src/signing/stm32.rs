//! STM32MP images: a raw payload gets a new header; an unsigned image (made by
//! stm32image or mkimage) keeps its header fields and gets the key and signature.
//!
//! Three reads of the input, each a stream: (1) SHA-256 of the input and the payload
//! checksum, which sits in the header; (2) the signed range (header 0x48.. then the
//! payload), now that the header is final; (3) the copy into the output, re-hashing the
//! input to catch a file that changed underneath.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{stream, Error, Format, Options, SignRecord, SigningKey, VerifyReport};
use crate::formats::stm32_image::{self, Checksum, Fields, Header, Layout};
use crate::keys::{HashAlg, PublicKey, SignScheme};
use crate::output;

const SCHEME: SignScheme = SignScheme::Ecdsa(HashAlg::Sha256);
const DEFAULT_BINARY_TYPE: u8 = 0x10;

fn format_of(layout: Layout) -> Format {
    match layout {
        Layout::V1 => Format::Stm32Mp15,
        Layout::V2 => Format::Stm32Mp13,
    }
}

/// Check, without signing, that `input` can be signed in `layout` with `opts` (a raw
/// payload needs its addresses; an image must be unsigned and whole).
pub(super) fn check_input(layout: Layout, opts: &Options, input: &Path) -> Result<(), Error> {
    let len = std::fs::metadata(input)
        .map_err(|e| Error::input(input, e))?
        .len();
    plan(layout, opts, input, len).map(|_| ())
}

/// Where the payload lies in the input, and the header to sign.
struct Plan {
    header: Header,
    /// Input offset of the payload (0 for a raw payload, the header length otherwise).
    payload_at: u64,
    payload_len: u64,
    notes: Vec<String>,
}

fn plan(layout: Layout, opts: &Options, input: &Path, file_len: u64) -> Result<Plan, Error> {
    let name = layout.name();
    let prefix = stream::read_prefix(input, layout.header_len().max(stm32_image::V2_LEN))
        .map_err(|e| Error::input(input, e))?;
    let s = &opts.stm32;
    if prefix.len() >= 4 && prefix[..4] == stm32_image::MAGIC {
        if s.has_payload_fields() {
            return Err(Error::Usage(format!(
                "{}: already an STM32 image (STM2 header): its entry point, load address, version and binary type are kept; drop --load-address/--entry-point/--version/--binary-type",
                input.display()
            )));
        }
        let header = Header::parse(layout, &prefix).map_err(|e| Error::format(input, e))?;
        if header.is_signed() {
            return Err(Error::format(
                input,
                format!("{name} header already carries a signature; sign the unsigned image"),
            ));
        }
        let hl = layout.header_len() as u64;
        let len = u64::from(header.image_length());
        if file_len < hl + len {
            return Err(Error::format(
                input,
                format!(
                    "{name} header: image length field says {len} bytes but the file has {} after the header",
                    file_len - hl
                ),
            ));
        }
        let mut notes = vec![format!(
            "kept the image's header fields: entry point {:#010x}, load address {:#010x}, version {}, binary type {:#04x}",
            header.entry_point(),
            header.load_address(),
            header.image_version(),
            header.binary_type()
        )];
        if layout == Layout::V1 && header.flags() & stm32_image::NO_SIG_CHECK != 0 {
            notes.push(
                "cleared option flag bit 0 (no signature check): a signed image is checked".into(),
            );
        }
        if file_len > hl + len {
            notes.push(format!(
                "{} bytes after the image length are copied unsigned, as they were",
                file_len - hl - len
            ));
        }
        return Ok(Plan {
            header,
            payload_at: hl,
            payload_len: len,
            notes,
        });
    }
    let (Some(load_address), Some(entry_point)) = (s.load_address, s.entry_point) else {
        return Err(Error::Usage(format!(
            "{}: a raw payload (no STM2 header) needs --load-address and --entry-point",
            input.display()
        )));
    };
    let len = u32::try_from(file_len).map_err(|_| {
        Error::format(
            input,
            format!("{file_len} bytes: too large for the {name} image length field"),
        )
    })?;
    let fields = Fields {
        entry_point,
        load_address,
        image_version: s.image_version.unwrap_or(0),
        binary_type: s.binary_type.unwrap_or(DEFAULT_BINARY_TYPE),
    };
    Ok(Plan {
        header: Header::new(layout, &fields, len, 0),
        payload_at: 0,
        payload_len: file_len,
        notes: vec![format!(
            "new header: entry point {:#010x}, load address {:#010x}, version {}, binary type {:#04x}",
            fields.entry_point, fields.load_address, fields.image_version, fields.binary_type
        )],
    })
}

/// A v2 key set: the signing key's index and the table of key hashes.
type KeySet = (u32, Vec<[u8; 32]>);

/// The key table (v2) as hashes, and the signing key's index in it.
fn key_set(layout: Layout, key: &PublicKey, opts: &Options) -> Result<Option<KeySet>, Error> {
    let s = &opts.stm32;
    if layout == Layout::V1 || s.key_table.is_empty() {
        if let Some(i) = s.key_index {
            if i != 0 {
                return Err(Error::Usage(format!(
                    "--key-index {i} without --key-table: a single-key set has index 0"
                )));
            }
        }
        return Ok(None);
    }
    let mut table = Vec::with_capacity(s.key_table.len());
    for (i, k) in s.key_table.iter().enumerate() {
        let (algo, xy) = stm32_image::header_key(layout, k)
            .map_err(|e| Error::Usage(format!("--key-table key {}: {e}", i + 1)))?;
        table.push(stm32_image::key_hash(algo, &xy));
    }
    let pos = s.key_table.iter().position(|k| k == key);
    let index =
        match (s.key_index, pos) {
            (Some(i), _) => i,
            (None, Some(p)) => u32::try_from(p).map_err(|_| {
                Error::Usage(format!(
                    "--key-table: {} keys; the ROM takes 1 to {}",
                    s.key_table.len(),
                    stm32_image::MAX_KEYS
                ))
            })?,
            (None, None) => return Err(Error::Usage(
                "the signing key is not in --key-table; add it (in OTP order) or give --key-index"
                    .into(),
            )),
        };
    Ok(Some((index, table)))
}

pub(super) fn sign(
    key: &mut SigningKey<'_>,
    layout: Layout,
    opts: &Options,
    input: &Path,
    output: &Path,
) -> Result<SignRecord, Error> {
    let file_len = std::fs::metadata(input)
        .map_err(|e| Error::input(input, e))?
        .len();
    let mut p = plan(layout, opts, input, file_len)?;
    let auth = key_set(layout, key.public_key(), opts)?;
    let (start, end) = (p.payload_at, p.payload_at + p.payload_len);

    // Read 1: input SHA-256 and the payload checksum.
    let mut in_sha = Sha256::new();
    let mut sum = Checksum::default();
    stream::for_each_chunk(input, |off, c| {
        in_sha.update(c);
        sum.write_all(stream::within(off, c, start, end))
    })
    .map_err(|e| Error::input(input, e))?;
    let in_sha: [u8; 32] = in_sha.finalize().into();

    p.header.set_checksum(sum.0);
    p.header
        .set_key(
            key.public_key(),
            auth.as_ref().map(|(i, t)| (*i, t.as_slice())),
        )
        .map_err(|e| Error::Usage(e.to_string()))?;

    // Read 2: the signed range.
    let mut h = Sha256::new();
    h.update(p.header.signed_part());
    stream::for_each_chunk(input, |off, c| {
        h.update(stream::within(off, c, start, end));
        Ok(())
    })
    .map_err(|e| Error::input(input, e))?;
    let digest = h.finalize().to_vec();

    let sig = key.sign_digest(SCHEME, &digest)?;
    let rs: [u8; 64] = sig
        .as_slice()
        .try_into()
        .map_err(|_| Error::Usage("token returned a signature that is not P-256 r‖s".into()))?;
    p.header.set_signature(&rs);

    // Read 3: header, then the payload (and anything after it) as it was.
    let mut out_sha = Sha256::new();
    let mut again = Sha256::new();
    let header = p.header.bytes().to_vec();
    let payload_at = p.payload_at;
    output::write_new_with(output, |f| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        w.write_all(&header)?;
        out_sha.update(&header);
        stream::for_each_chunk(input, |off, c| {
            again.update(c);
            let body = stream::within(off, c, payload_at, u64::MAX);
            out_sha.update(body);
            w.write_all(body)
        })?;
        let now: [u8; 32] = again.clone().finalize().into();
        if now != in_sha {
            return Err(std::io::Error::other(CHANGED));
        }
        w.flush()
    })
    .map_err(|e| match e {
        output::Error::Io { cause, .. } if cause == CHANGED => Error::Changed {
            path: input.to_path_buf(),
        },
        e => e.into(),
    })?;

    let mut r = key.record(format_of(layout), input, output, SCHEME);
    r.signed_digest = hex::encode(&digest);
    r.input_sha256 = hex::encode(in_sha);
    r.output_sha256 = hex::encode(out_sha.finalize());
    r.input_bytes = file_len;
    r.notes = p.notes;
    if let Some((i, t)) = auth {
        r.notes
            .push(format!("key {i} of a table of {} keys", t.len()));
    }
    Ok(r)
}

const CHANGED: &str = "input changed while signing";

pub(super) fn verify(layout: Layout, key: &PublicKey, input: &Path) -> Result<VerifyReport, Error> {
    let name = layout.name();
    let file_len = std::fs::metadata(input)
        .map_err(|e| Error::input(input, e))?
        .len();
    let prefix =
        stream::read_prefix(input, layout.header_len()).map_err(|e| Error::input(input, e))?;
    let header = Header::parse(layout, &prefix).map_err(|e| Error::verify(input, e))?;
    header
        .check_structure()
        .map_err(|e| Error::verify(input, e))?;
    let hl = layout.header_len() as u64;
    let len = u64::from(header.image_length());
    if file_len < hl + len {
        return Err(Error::verify(
            input,
            format!(
                "{name} header: image length field says {len} bytes but the file has {}: image length altered or file truncated",
                file_len - hl
            ),
        ));
    }
    if file_len > hl + len {
        // The ROM loads the image length only; whatever follows is not signed and must
        // not pass for part of a verified image.
        return Err(Error::verify(
            input,
            format!(
                "{name}: {} bytes after the signed payload (header {hl} + image length {len}, file {file_len}): they are not covered by the signature",
                file_len - hl - len
            ),
        ));
    }
    if !header.is_signed() {
        return Err(Error::verify(
            input,
            format!("{name} image is not signed (signature field is zero)"),
        ));
    }
    let (algo, xy) = header.key().map_err(|e| Error::verify(input, e))?;
    let (want_algo, want_xy) =
        stm32_image::header_key(layout, key).map_err(|e| Error::Usage(e.to_string()))?;
    if (algo, xy) != (want_algo, want_xy) {
        return Err(Error::verify(
            input,
            format!("{name} header: public key field is not the --pubkey key: header key altered or signed by another key"),
        ));
    }
    let mut lines = Vec::new();
    if let Some(a) = header.auth().map_err(|e| Error::verify(input, e))? {
        let own = stm32_image::key_hash(algo, &xy);
        match a.table.get(a.key_index as usize) {
            Some(h) if *h == own => {}
            _ => {
                return Err(Error::verify(
                    input,
                    format!(
                        "{name} authentication extension: key index {} does not name the signing key in the {}-key hash table: key index or table altered",
                        a.key_index,
                        a.table.len()
                    ),
                ))
            }
        }
        let mut t = Sha256::new();
        for h in &a.table {
            t.update(h);
        }
        lines.push(format!(
            "{name}: key {} of {}; key table hash (PKHTH) {}",
            a.key_index,
            a.table.len(),
            hex::encode(t.finalize())
        ));
    }
    let (start, end) = (hl, hl + len);
    let mut sum = Checksum::default();
    let mut h = Sha256::new();
    h.update(header.signed_part());
    stream::for_each_chunk(input, |off, c| {
        let body = stream::within(off, c, start, end);
        h.update(body);
        sum.write_all(body)
    })
    .map_err(|e| Error::input(input, e))?;
    if sum.0 != header.checksum() {
        return Err(Error::verify(
            input,
            format!(
                "{name} header: checksum mismatch (header says {:#010x}, payload sums to {:#010x}): payload altered",
                header.checksum(),
                sum.0
            ),
        ));
    }
    let digest = h.finalize();
    key.verify_digest(SCHEME, &digest, header.signature())
        .map_err(|_| {
            Error::verify(
                input,
                format!(
                    "{name}: signature does not verify over header bytes 0x48..{:#x} and the payload: a signed header field (entry point, load address, version, key, …) or the signature at 0x04..0x44 was altered",
                    layout.header_len()
                ),
            )
        })?;
    lines.insert(
        0,
        format!(
            "{name}: signature verifies over header 0x48..{:#x} + {len} payload bytes (SHA-256 {}) with {} key {}; checksum {:#010x} ok; entry point {:#010x}, load address {:#010x}, version {}, binary type {:#04x}",
            layout.header_len(),
            hex::encode(digest),
            key.describe(),
            hex::encode(key.fingerprint()),
            header.checksum(),
            header.entry_point(),
            header.load_address(),
            header.image_version(),
            header.binary_type()
        ),
    );
    Ok(VerifyReport { lines })
}
