//! NXP HAB4 image signing (i.MX 6/7/8M, i.MX RT): the CSF made by the token's CSF and
//! IMG keys (`formats::imx::hab4_image` does the format; this is the I/O around it).
//!
//! One read of the input: it is copied into the (not yet published) output with the
//! IVT's CSF pointer and the boot data length patched in, and the covered bytes are
//! hashed on the way, so the signature covers exactly what the output holds. The IMG key
//! signs the image digest, then the CSF key signs the CSF; each key is opened on the
//! token in turn. The output gets its name only after both signatures have verified.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{stream, Error, Format, Options, SignRecord, SigningKey, VerifyReport};
use crate::formats::imx::hab4_image::{self, KeyRef, Plan, SignSpec};
use crate::formats::imx::ivt::{Layout, IVT_LEN, IVT_OFFSETS};
use crate::hsm::TokenKey;
use crate::output;

const CHANGED: &str = "input changed while signing";
/// Bytes of the CSF region read for checks (a CSF with four RSA-4096 SRKs and two
/// certificates is under 8 KiB).
const CSF_REGION: usize = 0x10000;

/// The IVT and boot data of `input`.
pub(super) fn layout(input: &Path) -> Result<Layout, Error> {
    let len = std::fs::metadata(input)
        .map_err(|e| Error::input(input, e))?
        .len();
    let prefix = stream::read_prefix(input, IVT_OFFSETS[2] as usize + IVT_LEN)
        .map_err(|e| Error::input(input, e))?;
    let candidates: Vec<(u64, &[u8])> = IVT_OFFSETS
        .iter()
        .filter_map(|&o| prefix.get(o as usize..).map(|b| (o, b)))
        .collect();
    let mut read_err = None;
    let l = Layout::find(&candidates, len, |at| {
        match stream::read_at(input, at, 12) {
            Ok(b) => Some(b),
            Err(e) => {
                read_err = Some(e);
                None
            }
        }
    });
    if let Some(e) = read_err {
        return Err(Error::input(input, e));
    }
    l.map_err(|e| Error::format(input, e))
}

pub(super) fn sign(
    key: &mut SigningKey<'_>,
    opts: &Options,
    input: &Path,
    output: &Path,
) -> Result<SignRecord, Error> {
    let h = &opts.hab4;
    let usage = |m: &str| Error::Usage(format!("--format imx-hab4: {m}"));
    let srk_table = h
        .srk_table
        .as_deref()
        .ok_or_else(|| usage("--srk-table FILE is missing"))?;
    let srk_index = h
        .srk_index
        .ok_or_else(|| usage("--srk-index N is missing"))?;
    let csf_cert = h.csf_cert.as_deref().ok_or_else(|| {
        usage("--csf-cert FILE is missing (Officiant cannot read certificates back from a token)")
    })?;
    if let Some(l) = &h.csf_key {
        if *l != key.label {
            return Err(usage(&format!(
                "--csf-key {l:?} is not the signing key {:?}",
                key.label
            )));
        }
    }
    let layout = layout(input)?;
    let at_csf = match (layout.ivt.csf, layout.file_offset(layout.ivt.csf)) {
        (0, _) | (_, None) => Vec::new(),
        (_, Some(off)) if off >= layout.file_len => Vec::new(),
        (_, Some(off)) => {
            stream::read_at(input, off, 0x1000).map_err(|e| Error::input(input, e))?
        }
    };
    let img_public = match &h.img_key {
        Some(l) => Some(
            TokenKey::open(&mut *key.token, l)
                .map_err(|cause| Error::Token {
                    label: l.clone(),
                    cause,
                })
                .map(|k| crate::keys::Signer::public_key(&k).clone())?,
        ),
        None => None,
    };
    let spec = SignSpec {
        srk_table,
        srk_index,
        csf_cert,
        img_cert: h.img_cert.as_deref(),
        fast_auth: h.fast_auth,
        unlock: h.unlock.clone(),
        version: h.version,
        time: std::time::SystemTime::now(),
    };
    let csf_ref = KeyRef {
        label: &key.label,
        public: &key.public,
    };
    let img_ref = match (&h.img_key, &img_public) {
        (Some(label), Some(public)) => Some(KeyRef { label, public }),
        _ => None,
    };
    let plan = Plan::new(&layout, &at_csf, &spec, csf_ref, img_ref)
        .map_err(|e| Error::format(input, e))?;

    let covered = plan.covered();
    let csf_off = plan.csf_offset();
    let file_len = layout.file_len;
    let mut stopped: Option<Error> = None;
    let mut done: Option<([u8; 32], [u8; 32], [u8; 32])> = None;
    let written = output::write_new_with(output, |f| {
        let mut stop = |e: Error| {
            stopped = Some(e);
            std::io::Error::other("stopped")
        };
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut in_sha = Sha256::new();
        let mut out_sha = Sha256::new();
        let mut cov = Sha256::new();
        let mut blank: Option<u8> = None;
        let mut buf = Vec::new();
        let n = stream::for_each_chunk(input, |off, c| {
            in_sha.update(c);
            buf.clear();
            buf.extend_from_slice(c);
            plan.patch(off, &mut buf);
            cov.update(stream::within(off, &buf, covered.start, covered.end));
            let body = stream::within(off, &buf, 0, csf_off);
            w.write_all(body)?;
            out_sha.update(body);
            // Past the CSF pointer the file may hold only free space.
            let rest = stream::within(off, &buf, csf_off, u64::MAX);
            let rest_at = off.max(csf_off);
            let uniform = match (blank, rest.first()) {
                (_, None) => Ok(()),
                (Some(b), Some(&f)) if f != b => Err(rest_at),
                _ => Plan::check_blank(rest_at, rest),
            };
            if let Err(at) = uniform {
                return Err(stop(Error::format(
                    input,
                    format!("the IVT's CSF pointer {:#010x} points into the application: file offset {at:#x} holds data, not free space", layout.ivt.csf),
                )));
            }
            if blank.is_none() {
                blank = rest.first().copied();
            }
            Ok(())
        })?;
        if n != file_len {
            return Err(std::io::Error::other(CHANGED));
        }
        // Zeros from the end of the file to the CSF are covered too.
        let zeros = [0u8; 4096];
        let mut left = csf_off.saturating_sub(file_len);
        while left > 0 {
            let k = left.min(zeros.len() as u64) as usize;
            cov.update(&zeros[..k]);
            out_sha.update(&zeros[..k]);
            w.write_all(&zeros[..k])?;
            left -= k as u64;
        }
        let digest: [u8; 32] = cov.finalize().into();
        let img_label = h.img_key.clone().unwrap_or_else(|| key.label.clone());
        let img_cms = {
            let mut k = TokenKey::open(&mut *key.token, &img_label).map_err(|cause| {
                stop(Error::Token {
                    label: img_label.clone(),
                    cause,
                })
            })?;
            plan.sign_image(&mut k, &digest)
                .map_err(|e| stop(Error::format(input, e)))?
        };
        let csf = {
            let label = key.label.clone();
            let mut k = TokenKey::open(&mut *key.token, &label)
                .map_err(|cause| stop(Error::Token { label, cause }))?;
            plan.build_csf(&img_cms, &mut k)
                .map_err(|e| stop(Error::format(input, e)))?
        };
        out_sha.update(&csf);
        w.write_all(&csf)?;
        // Free space past the CSF's room stays as it was.
        let mut left = plan.output_len() - csf_off - csf.len() as u64;
        let fill = [blank.unwrap_or(0); 4096];
        while left > 0 {
            let k = left.min(fill.len() as u64) as usize;
            out_sha.update(&fill[..k]);
            w.write_all(&fill[..k])?;
            left -= k as u64;
        }
        w.flush()?;
        done = Some((digest, in_sha.finalize().into(), out_sha.finalize().into()));
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
    let (digest, in_sha, out_sha) = done.ok_or_else(|| Error::Changed {
        path: input.to_path_buf(),
    })?;
    let scheme = crate::formats::imx::cms::scheme_for(&key.public);
    let mut r = key.record(Format::ImxHab4, input, output, scheme);
    r.signed_digest = hex::encode(digest);
    r.input_sha256 = hex::encode(in_sha);
    r.output_sha256 = hex::encode(out_sha);
    r.input_bytes = file_len;
    r.notes = plan.notes.clone();
    let b = plan.block();
    r.notes.push(format!(
        "image block {:#010x} + {:#x} (IVT to CSF) signed by {:?}; CSF signed by {:?}{}",
        b.address,
        b.length,
        h.img_key.as_deref().unwrap_or(&key.label),
        key.label,
        if plan.fast_auth() {
            " (fast authentication: the SRK signs both)"
        } else {
            ""
        }
    ));
    Ok(r)
}

/// Check a signed image against the SRK table file: the CSF, the certificates and every
/// signature over exactly the bytes it covers.
pub fn verify(input: &Path, srk_table: &[u8]) -> Result<VerifyReport, Error> {
    let layout = layout(input)?;
    let off = hab4_image::csf_offset(&layout).map_err(|e| Error::verify(input, e))?;
    let region = stream::read_at(input, off, CSF_REGION).map_err(|e| Error::input(input, e))?;
    let v = hab4_image::verify_csf(&layout, &region, srk_table).map_err(|e| match e {
        hab4_image::Error::Input(m) => Error::Usage(m),
        e => Error::verify(input, e),
    })?;
    let mut lines = v.lines;
    for d in &v.data {
        let mut h = Sha256::new();
        for &(at, len) in &d.ranges {
            stream::for_each_chunk_in(input, at, len, |c| h.update(c))
                .map_err(|e| Error::input(input, e))?;
        }
        let line = d
            .check(&h.finalize().into())
            .map_err(|e| Error::verify(input, e))?;
        lines.push(line);
    }
    // In command order: the data signatures were checked last.
    let order = |l: &String| -> usize {
        match l.strip_prefix("CSF command ") {
            Some(rest) => rest
                .split_once(' ')
                .and_then(|(n, _)| n.parse().ok())
                .unwrap_or(usize::MAX - 1),
            None if l.starts_with("imx-hab4:") => 0,
            None => usize::MAX,
        }
    };
    lines.sort_by_key(order);
    Ok(VerifyReport { lines })
}
