//! ESP32 Secure Boot V2: pad the image to 4 KiB with 0xFF, append a signature sector
//! with one block, or (`--append`) add a block to an already signed image.
//!
//! One read of the input: it is copied into the (not yet published) output while it
//! is hashed, so the signature covers exactly the bytes written. The output gets its
//! name only after the token's signature has been checked; a file that changed length
//! (or, with --append, sector) underneath is refused.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{stream, Error, Format, Options, SignRecord, SigningKey, VerifyReport};
use crate::formats::esp32::{self, ImageHasher, MAX_BLOCKS, SECTOR_LEN};
use crate::keys::{HashAlg, PublicKey, SignScheme};
use crate::output;

const CHANGED: &str = "input changed while signing";

fn kind(rsa: bool) -> &'static str {
    if rsa {
        "RSA"
    } else {
        "ECDSA"
    }
}

pub(super) fn sign(
    key: &mut SigningKey<'_>,
    opts: &Options,
    input: &Path,
    output: &Path,
) -> Result<SignRecord, Error> {
    let public = key.public_key().clone();
    let scheme = esp32::scheme_for(&public)
        .map_err(|e| Error::Usage(format!("key {:?}: {e}", key.label())))?;
    let file_len = std::fs::metadata(input)
        .map_err(|e| Error::input(input, e))?
        .len();
    let mut notes = Vec::new();

    // With --append: the image is everything before the last 4 KiB, which must be a
    // sector with 1 or 2 blocks of the same kind as this key.
    let (image_len, old_sector) = if opts.append {
        let (image_len, old) =
            old_sector(input, file_len, scheme, &public, key.label(), &mut notes)?;
        (image_len, Some(old))
    } else {
        (file_len, None)
    };

    // One read: the image goes into the output file and through the hashes together,
    // so what the token signs is exactly what the output holds. The running SHA-256 of
    // the image forks into the input's hash, the signed digest (SHA-256 schemes) and
    // the output's hash.
    let pad = esp32::padding_for(image_len);
    let padded_len = image_len + pad;
    let mut stopped: Option<Error> = None;
    let mut done: Option<(Vec<u8>, [u8; 32], [u8; 32])> = None;
    let written = output::write_new_with(output, |f| {
        let mut stop = |e: Error| {
            stopped = Some(e);
            std::io::Error::other("stopped")
        };
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut image_sha = Sha256::new();
        let mut other_hash =
            (scheme.hash() != HashAlg::Sha256).then(|| ImageHasher::new(scheme.hash()));
        let mut tail = Vec::new();
        let n = stream::for_each_chunk(input, |off, c| {
            let body = stream::within(off, c, 0, image_len);
            image_sha.update(body);
            if let Some(h) = other_hash.as_mut() {
                h.update(body);
            }
            w.write_all(body)?;
            tail.extend_from_slice(stream::within(off, c, image_len, u64::MAX));
            if tail.len() > SECTOR_LEN {
                return Err(std::io::Error::other(CHANGED));
            }
            Ok(())
        })?;
        // The length and (--append) the old sector must still be what was checked.
        let same_tail = match &old_sector {
            Some((old, _)) => tail == *old,
            None => tail.is_empty(),
        };
        if n != file_len || !same_tail {
            return Err(std::io::Error::other(CHANGED));
        }
        let in_sha: [u8; 32] = {
            let mut s = image_sha.clone();
            s.update(&tail);
            s.finalize().into()
        };
        let ff = [0xFFu8; SECTOR_LEN];
        let mut left = pad;
        while left > 0 {
            let n = stream::clamp_len(left, SECTOR_LEN);
            image_sha.update(&ff[..n]);
            w.write_all(&ff[..n])?;
            left -= n as u64;
        }
        let digest = match other_hash {
            Some(h) => h.finish().0,
            None => image_sha.clone().finalize().to_vec(),
        };

        let sector = signed_sector(key, scheme, &public, &digest, old_sector.as_ref(), input)
            .map_err(&mut stop)?;
        image_sha.update(sector);
        w.write_all(&sector)?;
        w.flush()?;
        done = Some((digest, in_sha, image_sha.finalize().into()));
        Ok(())
    });
    if let Some(e) = stopped {
        return Err(e);
    }
    written.map_err(|e| match e {
        output::Error::Io { cause, .. } if cause == CHANGED => Error::Changed {
            path: input.to_path_buf(),
        },
        e => e.into(),
    })?;
    // write_new_with returned Ok only after the closure finished, which sets `done`.
    let (digest, in_sha, out_sha) = done.ok_or_else(|| Error::Changed {
        path: input.to_path_buf(),
    })?;
    let key_digest = esp32::key_digest(&public).map_err(|e| Error::format(input, e))?;
    let blocks_now = old_sector.as_ref().map_or(0, |(_, b)| b.len()) + 1;
    notes.push(format!(
        "block {blocks_now}: {} key digest {}",
        scheme.name(),
        hex::encode(key_digest)
    ));

    let mut r = key.record(Format::Esp32Sbv2, input, output, scheme);
    r.signed_digest = hex::encode(&digest);
    r.input_sha256 = hex::encode(in_sha);
    r.output_sha256 = hex::encode(out_sha);
    r.input_bytes = file_len;
    if pad > 0 {
        r.notes
            .push(format!("padded with {pad} bytes of 0xFF to {padded_len}"));
    }
    r.notes.extend(notes);
    Ok(r)
}

/// A signature sector as read, and its blocks.
type OldSector = (Vec<u8>, Vec<esp32::Block>);

/// The signature sector `--append` adds a block to: the last 4 KiB of a signed image,
/// holding fewer than the most blocks, of `scheme`'s kind, none by this key. Returns the
/// image's length and the sector with its blocks.
fn old_sector(
    input: &Path,
    file_len: u64,
    scheme: SignScheme,
    public: &PublicKey,
    label: &str,
    notes: &mut Vec<String>,
) -> Result<(u64, OldSector), Error> {
    if file_len < SECTOR_LEN as u64 || !file_len.is_multiple_of(SECTOR_LEN as u64) {
        return Err(Error::format(
            input,
            format!("--append needs a signed image (a multiple of 4 KiB ending in a signature sector); this one has {file_len} bytes"),
        ));
    }
    let image_len = file_len - SECTOR_LEN as u64;
    let sector = read_sector(input, image_len)?;
    let blocks = esp32::parse_sector(&sector).map_err(|e| Error::format(input, e))?;
    if blocks.is_empty() {
        return Err(Error::format(
            input,
            "the last 4 KiB hold no signature block: sign it without --append",
        ));
    }
    if blocks.len() >= MAX_BLOCKS {
        return Err(Error::format(
            input,
            format!("the signature sector already holds {MAX_BLOCKS} blocks"),
        ));
    }
    if blocks[0].is_rsa() != scheme.is_rsa() {
        return Err(Error::format(
            input,
            format!(
                "the sector holds {} blocks and key {:?} is {}: one sector may not mix RSA and ECDSA",
                kind(blocks[0].is_rsa()),
                label,
                kind(scheme.is_rsa())
            ),
        ));
    }
    if let Some(i) = blocks.iter().position(|b| b.key == *public) {
        return Err(Error::format(
            input,
            format!("block {} is already signed by key {:?}", i + 1, label),
        ));
    }
    notes.push(format!("appended to {} existing block(s)", blocks.len()));
    Ok((image_len, (sector, blocks)))
}

/// The signature sector to write: a block signed over `digest` by the token, alone or
/// appended to `old` (whose blocks of the same hash must sign the same image).
fn signed_sector(
    key: &mut SigningKey<'_>,
    scheme: SignScheme,
    public: &PublicKey,
    digest: &[u8],
    old: Option<&OldSector>,
    input: &Path,
) -> Result<[u8; SECTOR_LEN], Error> {
    if let Some((_, blocks)) = old {
        for (i, b) in blocks.iter().enumerate() {
            if b.scheme.hash() == scheme.hash() && b.image_digest != digest {
                return Err(Error::format(
                    input,
                    format!("existing block {} signs a different image than the one before the sector: image altered since it was signed", i + 1),
                ));
            }
        }
    }
    let sig = key.sign_digest(scheme, digest)?;
    let block =
        esp32::signature_block(public, digest, &sig).map_err(|_| Error::TokenSignatureBad {
            label: key.label().to_string(),
        })?;
    match old {
        Some((old, _)) => esp32::append_block(old, &block),
        None => esp32::build_sector(&[block]),
    }
    .map_err(|e| Error::format(input, e))
}

fn read_sector(input: &Path, at: u64) -> Result<Vec<u8>, Error> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(input).map_err(|e| Error::input(input, e))?;
    f.seek(SeekFrom::Start(at))
        .map_err(|e| Error::input(input, e))?;
    let mut s = vec![0u8; SECTOR_LEN];
    f.read_exact(&mut s).map_err(|e| Error::input(input, e))?;
    Ok(s)
}

pub(super) fn verify(key: &PublicKey, input: &Path) -> Result<VerifyReport, Error> {
    let file_len = std::fs::metadata(input)
        .map_err(|e| Error::input(input, e))?
        .len();
    if file_len < SECTOR_LEN as u64 || !file_len.is_multiple_of(SECTOR_LEN as u64) {
        return Err(Error::verify(
            input,
            format!("{file_len} bytes: a signed image is a multiple of 4 KiB ending in a signature sector (file truncated or not signed)"),
        ));
    }
    let image_len = file_len - SECTOR_LEN as u64;
    let sector = read_sector(input, image_len)?;
    let blocks = esp32::parse_sector(&sector)
        .map_err(|e| Error::verify(input, format!("{e}: signature sector altered")))?;
    if blocks.is_empty() {
        return Err(Error::verify(
            input,
            "the signature sector holds no block (image not signed)",
        ));
    }
    let mut s256 = ImageHasher::new(HashAlg::Sha256);
    let mut s384 = ImageHasher::new(HashAlg::Sha384);
    let need384 = blocks.iter().any(|b| b.scheme.hash() == HashAlg::Sha384);
    stream::for_each_chunk(input, |off, c| {
        let body = stream::within(off, c, 0, image_len);
        s256.update(body);
        if need384 {
            s384.update(body);
        }
        Ok(())
    })
    .map_err(|e| Error::input(input, e))?;
    let d256 = s256.finish().0;
    let d384 = s384.finish().0;
    let mut lines = Vec::new();
    let mut ours = None;
    for (i, b) in blocks.iter().enumerate() {
        let n = i + 1;
        let digest = if b.scheme.hash() == HashAlg::Sha384 {
            &d384
        } else {
            &d256
        };
        let kd = esp32::key_digest(&b.key)
            .map_err(|e| Error::verify(input, format!("block {n}: {e}")))?;
        let sig_ok = b.key.verify_digest(b.scheme, digest, &b.signature).is_ok();
        if !b.crc_ok {
            let why = if b.image_digest != *digest {
                "its image digest field differs from the image: block digest altered"
            } else if sig_ok {
                "the CRC field itself was altered"
            } else {
                "the signature (or key) field was altered"
            };
            return Err(Error::verify(
                input,
                format!("signature block {n}: CRC32 mismatch: {why}"),
            ));
        }
        if b.image_digest != *digest {
            return Err(Error::verify(
                input,
                format!("signature block {n}: image digest in the block differs from the image's {}: image altered", b.scheme.hash().name()),
            ));
        }
        if !sig_ok {
            return Err(Error::verify(
                input,
                format!("signature block {n}: signature does not verify: signature altered"),
            ));
        }
        let mine = b.key == *key;
        if mine && ours.is_none() {
            ours = Some(n);
        }
        lines.push(format!(
            "block {n}: {} {}, key digest {}: valid{}",
            b.key.describe(),
            b.scheme.name(),
            hex::encode(kd),
            if mine { " (the --pubkey key)" } else { "" }
        ));
    }
    let Some(n) = ours else {
        let want = esp32::key_digest(key).map(hex::encode).unwrap_or_default();
        return Err(Error::verify(
            input,
            format!("no signature block carries the --pubkey key (key digest {want}); the blocks are valid but signed by other keys"),
        ));
    };
    lines.insert(
        0,
        format!(
            "esp32-sbv2: {} block(s) over {image_len} image bytes (SHA-256 {}); block {n} verifies with --pubkey",
            blocks.len(),
            hex::encode(&d256)
        ),
    );
    Ok(VerifyReport { lines })
}
