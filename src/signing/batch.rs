//! Many payloads under one login: [`sign_batch`] checks every input and output name
//! before the first signature (so a batch that cannot finish for a reason known up front
//! signs nothing), reserves the batch's uses under an approved request, then signs each
//! payload through [`sign_file`](super::sign_file), or the raw pipeline in `raw`.
//!
//! Must not touch: tokens (the caller's [`SigningKey`] is the only way to the key).

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{check_options, sign_file, Error, Format, Options, SignRecord, SigningKey};
use crate::output;

/// Where [`sign_batch`] writes the output for `input`.
pub fn output_path(format: Format, input: &Path, out_dir: &Path) -> PathBuf {
    let name = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "payload".into());
    let stem = input
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.clone());
    out_dir.join(match format {
        Format::Raw => format!("{name}.sig"),
        Format::Esp32Sbv2 => format!("{stem}-signed.bin"),
        Format::Stm32Mp15 | Format::Stm32Mp13 => format!("{stem}_Signed.stm32"),
        Format::ImxHab4 | Format::ImxAhab => match input.extension() {
            Some(ext) => format!("{stem}-signed.{}", ext.to_string_lossy()),
            None => format!("{stem}-signed.bin"),
        },
    })
}

/// A batch stopped by one input; the records of the inputs signed before it.
#[derive(Debug)]
pub struct BatchError {
    /// Records of the inputs signed (and written) before the error, in input order.
    pub done: Vec<SignRecord>,
    /// What stopped the batch.
    pub error: Error,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.done.is_empty() {
            write!(f, "{}", self.error)
        } else {
            write!(
                f,
                "{} (after {} signed output(s), which are kept)",
                self.error,
                self.done.len()
            )
        }
    }
}

impl std::error::Error for BatchError {}

/// Sign many inputs with one key (one login) into `out_dir`. Every input and output
/// name is checked before the first signature, so a batch that cannot finish for a
/// reason known up front signs nothing.
pub fn sign_batch(
    key: &mut SigningKey<'_>,
    format: Format,
    opts: &Options,
    inputs: &[PathBuf],
    out_dir: &Path,
) -> Result<Vec<SignRecord>, BatchError> {
    sign_batch_with(key, format, opts, inputs, out_dir, |_| Ok(()))
}

/// [`sign_batch`], calling `on_signed` with records as soon as their outputs are
/// written (a transcript appends them there, so a batch killed midway still lists every
/// output it left, give or take the last group). An error from `on_signed` stops the
/// batch.
pub fn sign_batch_with(
    key: &mut SigningKey<'_>,
    format: Format,
    opts: &Options,
    inputs: &[PathBuf],
    out_dir: &Path,
    mut on_signed: impl FnMut(&[SignRecord]) -> Result<(), Error>,
) -> Result<Vec<SignRecord>, BatchError> {
    let early = |error| BatchError {
        done: Vec::new(),
        error,
    };
    let plan = batch_plan(format, opts, inputs, out_dir).map_err(early)?;
    // Under an approved request, the whole batch's uses are taken before its first
    // signature: a batch that has not enough left signs nothing.
    key.reserve(plan.len() as u64).map_err(early)?;
    if format == Format::Raw {
        return super::raw::batch(key, opts, &plan, on_signed);
    }
    let mut done = Vec::with_capacity(plan.len());
    for (input, out) in plan {
        match sign_file(key, format, opts, input, &out) {
            Ok(r) => {
                let noted = on_signed(std::slice::from_ref(&r));
                done.push(r);
                if let Err(error) = noted {
                    return Err(BatchError { done, error });
                }
            }
            Err(error) => return Err(BatchError { done, error }),
        }
    }
    Ok(done)
}

/// Each input with its output in `out_dir`, checked before anything is signed: the
/// options fit the format, every input is a file, no two outputs collide and none exists.
pub(crate) fn batch_plan<'a>(
    format: Format,
    opts: &Options,
    inputs: &'a [PathBuf],
    out_dir: &Path,
) -> Result<Vec<(&'a Path, PathBuf)>, Error> {
    check_options(format, opts)?;
    if !out_dir.is_dir() {
        return Err(Error::Usage(format!(
            "--out-dir {}: not a directory",
            out_dir.display()
        )));
    }
    let mut seen = HashSet::new();
    let mut plan = Vec::with_capacity(inputs.len());
    for input in inputs {
        match std::fs::metadata(input) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(Error::input(input, "not a regular file")),
            Err(e) => return Err(Error::input(input, e)),
        }
        let out = output_path(format, input, out_dir);
        if !seen.insert(out.clone()) {
            return Err(Error::Usage(format!(
                "two inputs would both be written to {}; rename one",
                out.display()
            )));
        }
        if out.symlink_metadata().is_ok() {
            return Err(output::Error::Exists(out).into());
        }
        plan.push((input.as_path(), out));
    }
    Ok(plan)
}
