//! NXP AHAB containers (`formats::imx::ahab` does the format; this is the I/O around
//! it): find the containers of a boot image, check each image's hash against its data,
//! sign every container that is not NXP's with an SRK on the token, and write the image
//! with the new container headers (the images themselves are copied unchanged).

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{stream, Error, Format, Options, SignRecord, SigningKey, VerifyReport};
use crate::formats::imx::ahab::{
    self, Container, CONTAINER_STEP, IMAGE_OFFSETS, MAX_CONTAINERS, SRK_SET_NXP,
};
use crate::formats::imx::ahab_srk::SrkTable;
use crate::output;

const CHANGED: &str = "input changed while signing";
/// Container headers are read from the first bytes of the file.
const HEAD_REGION: usize = 0x10000;

/// The AHAB image's start and its containers (file offset, container).
fn containers(input: &Path) -> Result<(u64, Vec<(u64, Container)>), Error> {
    let head = stream::read_prefix(input, HEAD_REGION).map_err(|e| Error::input(input, e))?;
    let base = IMAGE_OFFSETS
        .into_iter()
        .find(|&o| stream::from(&head, o).is_some_and(ahab::is_container))
        .ok_or_else(|| {
            Error::format(
                input,
                "no AHAB container (version 0, tag 87) at file offset 0x0 or 0x1000",
            )
        })?;
    let mut found: Vec<(u64, Container)> = Vec::new();
    for i in 0..MAX_CONTAINERS as u64 {
        let off = base + i * CONTAINER_STEP;
        if let Some((prev, c)) = found.last() {
            if off < prev + u64::from(c.length) {
                break;
            }
        }
        let Some(b) = stream::from(&head, off).filter(|b| ahab::is_container(b)) else {
            break;
        };
        let c = Container::parse(b).map_err(|e| {
            Error::format(input, format!("container {i} at file offset {off:#x}: {e}"))
        })?;
        found.push((off, c));
    }
    Ok((base, found))
}

/// Check every image's hash in `c` against the file; the first mismatch is the error.
fn check_images(input: &Path, base: u64, n: usize, c: &Container) -> Result<(), Error> {
    for (k, img) in c.images.iter().enumerate() {
        let at = base + u64::from(img.offset);
        let what = format!(
            "container {n}, image {k} ({} bytes at file offset {at:#x})",
            img.size
        );
        let alg = img
            .hash_alg()
            .ok_or_else(|| Error::format(input, format!("{what}: unknown hash type")))?;
        let mut h = alg.hasher();
        stream::for_each_chunk_in(input, at, u64::from(img.size), |b| h.update(b))
            .map_err(|e| Error::format(input, format!("{what}: {e} (image truncated)")))?;
        if !img.hash_matches(&h.finish()) {
            return Err(Error::verify(
                input,
                format!(
                    "{what}: its {} differs from the hash in the image array: image altered",
                    alg.name()
                ),
            ));
        }
    }
    Ok(())
}

/// What [`super::precheck`] can check without the key: the SRK table and index are
/// given and the input holds containers.
pub(super) fn check_input(opts: &Options, input: &Path) -> Result<(), Error> {
    required(opts)?;
    containers(input).map(|_| ())
}

/// The SRK table (parsed) and the index of the signing SRK in it.
fn required(opts: &Options) -> Result<(SrkTable, usize), Error> {
    let h = &opts.hab4;
    let usage = |m: &str| Error::Usage(format!("--format imx-ahab: {m}"));
    let table_bytes = h
        .srk_table
        .as_deref()
        .ok_or_else(|| usage("--srk-table FILE is missing (the AHAB SRK table)"))?;
    let srk_index = h
        .srk_index
        .ok_or_else(|| usage("--srk-index N is missing"))?;
    let table =
        SrkTable::parse(table_bytes).map_err(|e| Error::Usage(format!("--srk-table: {e}")))?;
    Ok((table, srk_index))
}

pub(super) fn sign(
    key: &mut SigningKey<'_>,
    opts: &Options,
    input: &Path,
    output: &Path,
) -> Result<SignRecord, Error> {
    let (table, srk_index) = required(opts)?;
    let file_len = std::fs::metadata(input)
        .map_err(|e| Error::input(input, e))?
        .len();
    let (base, found) = containers(input)?;
    let head = stream::read_prefix(input, HEAD_REGION).map_err(|e| Error::input(input, e))?;
    // The end of the header area: the next container, or the first image.
    let first_image = found
        .iter()
        .flat_map(|(_, c)| c.images.iter().map(|i| base + u64::from(i.offset)))
        .min()
        .unwrap_or(file_len);
    let mut patches: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut notes = Vec::new();
    for (n, (off, c)) in found.iter().enumerate() {
        if c.srk_set() == SRK_SET_NXP {
            notes.push(format!("container {n} at {off:#x}: signed by NXP, kept"));
            continue;
        }
        check_images(input, base, n, c)?;
        let signed = ahab::sign(c, &table, srk_index, &mut *key.signer)
            .map_err(|e| Error::format(input, format!("container {n} at {off:#x}: {e}")))?;
        let limit = found
            .get(n + 1)
            .map_or(first_image, |(o, _)| *o)
            .min(first_image);
        let end = off + signed.len() as u64;
        if end > limit {
            return Err(Error::format(
                input,
                format!("container {n} at {off:#x}: signed, it needs {} bytes, but the next container or image starts at {limit:#x}", signed.len()),
            ));
        }
        // Bytes past the old container that the new one takes must be free space.
        let old_end = off + u64::from(c.length);
        let grown = usize::try_from(end.saturating_sub(old_end)).ok();
        let taken = stream::from(&head, old_end).and_then(|b| b.get(..grown?));
        if let Some(b) = taken {
            if let Some(i) = b.iter().position(|&x| x != 0 && x != 0xFF) {
                return Err(Error::format(
                    input,
                    format!("container {n}: the signature block would overwrite data at file offset {:#x}", old_end + i as u64),
                ));
            }
        }
        let mut bytes = signed;
        bytes.resize(bytes.len().max(usize::from(c.length)), 0);
        notes.push(format!(
            "container {n} at {off:#x}: {} image(s), signed by SRK {srk_index} ({})",
            c.images.len(),
            table.srks()[srk_index].describe()
        ));
        patches.push((*off, bytes));
    }
    if patches.is_empty() {
        return Err(Error::format(
            input,
            "no container to sign: every one is NXP's",
        ));
    }

    let mut done: Option<([u8; 32], [u8; 32])> = None;
    let written = output::write_new_with(output, |f| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut in_sha = Sha256::new();
        let mut out_sha = Sha256::new();
        let mut buf = Vec::new();
        let n = stream::for_each_chunk(input, |o, c| {
            in_sha.update(c);
            buf.clear();
            buf.extend_from_slice(c);
            for (at, new) in &patches {
                stream::overlay(&mut buf, o, new, *at);
            }
            out_sha.update(&buf);
            w.write_all(&buf)
        })?;
        if n != file_len {
            return Err(std::io::Error::other(CHANGED));
        }
        w.flush()?;
        done = Some((in_sha.finalize().into(), out_sha.finalize().into()));
        Ok(())
    });
    written.map_err(|e| match e {
        output::Error::Io { cause, .. } if cause == CHANGED => Error::Changed {
            path: input.to_path_buf(),
        },
        e => e.into(),
    })?;
    let (in_sha, out_sha) = done.ok_or_else(|| Error::Changed {
        path: input.to_path_buf(),
    })?;
    let scheme = ahab::scheme_for(&table.srks()[srk_index]).map_err(|e| Error::format(input, e))?;
    let mut r = key.record(Format::ImxAhab, input, output, scheme);
    r.input_sha256 = hex::encode(in_sha);
    r.output_sha256 = hex::encode(out_sha);
    r.input_bytes = file_len;
    r.signed_digest = String::new();
    r.notes = notes;
    r.notes.push(format!(
        "SRK table SHA-256 (the i.MX 8ULP/9x fuse value) {}",
        hex::encode(table.sha256())
    ));
    Ok(r)
}

/// Check every container of a signed AHAB image against the SRK table file.
pub fn verify(input: &Path, srk_table: &[u8]) -> Result<VerifyReport, Error> {
    let table =
        SrkTable::parse(srk_table).map_err(|e| Error::Usage(format!("--srk-table: {e}")))?;
    let (base, found) = containers(input)?;
    let mut lines = vec![format!(
        "imx-ahab: {} container(s) from file offset {base:#x}; --srk-table SHA-256 {}",
        found.len(),
        hex::encode(table.sha256())
    )];
    let mut checked = 0;
    for (n, (off, c)) in found.iter().enumerate() {
        if c.srk_set() == SRK_SET_NXP {
            lines.push(format!(
                "container {n} at {off:#x}: signed by NXP (not checked here)"
            ));
            continue;
        }
        let line = ahab::verify(c, &table)
            .map_err(|e| Error::verify(input, format!("container {n} at {off:#x}: {e}")))?;
        check_images(input, base, n, c)?;
        lines.push(format!(
            "container {n} at {off:#x}: {line}; {} image hash(es) match",
            c.images.len()
        ));
        checked += 1;
    }
    if checked == 0 {
        return Err(Error::verify(
            input,
            "no OEM container to check: every one is NXP's",
        ));
    }
    Ok(VerifyReport { lines })
}
