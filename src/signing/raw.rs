//! `--format raw`: a detached signature over the whole file, as stock `openssl dgst
//! -verify` checks it (ECDSA as DER, RSA-PSS with salt = hash length, or PKCS#1 v1.5).
//! One payload is hashed, signed, checked and written in turn; a batch runs as a
//! two-stage pipeline ([`batch`]) so that checking and writing overlap the token's work.
//!
//! Must not touch: tokens (signatures come through [`SigningKey`]); the byte encodings
//! live in `formats::raw`.

use std::path::{Path, PathBuf};

use super::batch::BatchError;
use super::{stream, Error, Format, Options, SignRecord, SigningKey, Unchecked, VerifyReport};
use crate::formats::raw;
use crate::keys::ecdsa_tables::Tables;
use crate::keys::{HashAlg, PublicKey, SignScheme};
use crate::output;

/// Signatures per group in a raw batch: written side by side, so the disk syncs of a
/// group share one flush.
const RAW_GROUP: usize = 64;

/// Batches of at least this many payloads check ECDSA signatures with fixed-base tables
/// of the key (see `keys::ecdsa_tables`): building them costs about as much as a few
/// dozen ordinary checks.
const TABLES_FROM: usize = 64;

/// A raw batch as a two-stage pipeline. This thread hashes each payload and has the
/// token sign it; a checker thread verifies each signature with the public key read
/// before signing, encodes it and writes each group of checked signatures. Nothing
/// reaches a file unchecked: the token's answer travels as [`Unchecked`]. The checker
/// keeps input order, so `done` lists outputs in the order given.
pub(super) fn batch(
    key: &mut SigningKey<'_>,
    opts: &Options,
    plan: &[(&Path, PathBuf)],
    mut on_signed: impl FnMut(&[SignRecord]) -> Result<(), Error>,
) -> Result<Vec<SignRecord>, BatchError> {
    use std::sync::mpsc;
    let public = key.public_key().clone();
    let (jobs, job_rx) = mpsc::sync_channel::<(SignRecord, Unchecked)>(2 * RAW_GROUP);
    let (groups_tx, groups) = mpsc::channel::<(Vec<SignRecord>, Option<Error>)>();
    std::thread::scope(|scope| {
        let tables = plan.len() >= TABLES_FROM;
        scope.spawn(move || {
            // Built here, while the token makes the first signatures.
            let tables = tables.then(|| Tables::for_key(&public)).flatten();
            checker(&public, tables.as_ref(), job_rx, groups_tx)
        });
        let mut done: Vec<SignRecord> = Vec::with_capacity(plan.len());
        // The checker's error comes first in input order, then the signer's; a failed
        // `on_signed` stops the signing but not the noting of what is already written.
        let mut checker_error = None;
        let mut sign_error = None;
        let mut note_error = None;
        let mut note = |(batch, e): (Vec<SignRecord>, Option<Error>),
                        done: &mut Vec<SignRecord>,
                        note_error: &mut Option<Error>| {
            if !batch.is_empty() && note_error.is_none() {
                if let Err(e) = on_signed(&batch) {
                    *note_error = Some(e);
                }
            }
            done.extend(batch);
            if checker_error.is_none() {
                checker_error = e;
            }
        };
        for (input, out) in plan {
            while let Ok(g) = groups.try_recv() {
                note(g, &mut done, &mut note_error);
            }
            if note_error.is_some() {
                break;
            }
            match sign_one(key, opts, input, out) {
                Ok(job) => {
                    // A closed channel means the checker stopped on an error; it
                    // reports it below.
                    if jobs.send(job).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    sign_error = Some(e);
                    break;
                }
            }
        }
        drop(jobs);
        while let Ok(g) = groups.recv() {
            note(g, &mut done, &mut note_error);
        }
        match checker_error.or(sign_error).or(note_error) {
            None => Ok(done),
            Some(error) => Err(BatchError { done, error }),
        }
    })
}

/// The checking stage of [`batch`]: verify, encode, write a group, report it.
/// Stops at the first bad signature, after writing the checked ones before it.
fn checker(
    public: &PublicKey,
    tables: Option<&Tables>,
    jobs: std::sync::mpsc::Receiver<(SignRecord, Unchecked)>,
    groups: std::sync::mpsc::Sender<(Vec<SignRecord>, Option<Error>)>,
) {
    let mut open = true;
    while open {
        let mut checked: Vec<(SignRecord, Vec<u8>)> = Vec::with_capacity(RAW_GROUP);
        let mut failed = None;
        while checked.len() < RAW_GROUP {
            let Ok((record, unchecked)) = jobs.recv() else {
                open = false;
                break;
            };
            match finish(public, tables, record, unchecked) {
                Ok(x) => checked.push(x),
                Err(e) => {
                    failed = Some(e);
                    open = false;
                    break;
                }
            }
        }
        let (written, error) = write_group(checked, failed);
        if groups.send((written, error)).is_err() {
            return;
        }
    }
}

/// Write checked signatures side by side; the records of those written, and the first
/// error (`failed`, the one that ended the group, comes first).
fn write_group(
    checked: Vec<(SignRecord, Vec<u8>)>,
    mut failed: Option<Error>,
) -> (Vec<SignRecord>, Option<Error>) {
    let items: Vec<(&Path, &[u8])> = checked
        .iter()
        .map(|(r, bytes)| (r.output.as_path(), bytes.as_slice()))
        .collect();
    let results = output::write_new_all(&items);
    let mut written = Vec::with_capacity(checked.len());
    for ((r, _), res) in checked.into_iter().zip(results) {
        match res {
            Ok(()) => written.push(r),
            Err(e) => {
                failed.get_or_insert(e.into());
            }
        }
    }
    (written, failed)
}

pub(super) fn sign(
    key: &mut SigningKey<'_>,
    opts: &Options,
    input: &Path,
    output: &Path,
) -> Result<SignRecord, Error> {
    let (record, unchecked) = sign_one(key, opts, input, output)?;
    let (r, bytes) = finish(key.public_key(), None, record, unchecked)?;
    output::write_new(output, &bytes)?;
    Ok(r)
}

/// Hash `input` and have the token sign it: the record so far and the unchecked
/// signature.
fn sign_one(
    key: &mut SigningKey<'_>,
    opts: &Options,
    input: &Path,
    output: &Path,
) -> Result<(SignRecord, Unchecked), Error> {
    use sha2::Digest;
    let scheme =
        raw::scheme(key.public_key(), opts.padding).map_err(|e| Error::format(input, e))?;
    let hash = scheme.hash();
    let mut h = hash.hasher();
    // SHA-256 schemes hash once; others also keep the SHA-256 the transcript needs.
    let mut s256 = (hash != HashAlg::Sha256).then(sha2::Sha256::new);
    let n = stream::for_each_chunk(input, |_, c| {
        h.update(c);
        if let Some(s) = s256.as_mut() {
            s.update(c);
        }
        Ok(())
    })
    .map_err(|e| Error::input(input, e))?;
    let digest = h.finish();
    let input_sha: Vec<u8> = match s256 {
        Some(s) => s.finalize().to_vec(),
        None => digest.clone(),
    };
    let unchecked = key.sign_unchecked(scheme, &digest)?;
    let mut r = key.record(Format::Raw, input, output, scheme);
    r.signed_digest = hex::encode(&digest);
    r.input_sha256 = hex::encode(input_sha);
    r.input_bytes = n;
    Ok((r, unchecked))
}

/// Check the token's signature and encode it as the detached file's bytes.
fn finish(
    public: &PublicKey,
    tables: Option<&Tables>,
    mut r: SignRecord,
    unchecked: Unchecked,
) -> Result<(SignRecord, Vec<u8>), Error> {
    let bad = Error::TokenSignatureBad {
        label: r.key_label.clone(),
    };
    let sig = unchecked.check_with(public, tables)?;
    let bytes = raw::encode(public, &sig).map_err(|e| Error::format(&r.input, e))?;
    // The file's own bytes (DER, not r‖s) must read back as exactly the signature just
    // verified; a second curve check would add nothing but time.
    if raw::decode(public, &bytes).ok().as_deref() != Some(sig.as_slice()) {
        return Err(bad);
    }
    r.output_sha256 = hex::encode(output::sha256(&bytes));
    Ok((r, bytes))
}

pub(super) fn verify(
    key: &PublicKey,
    input: &Path,
    sig_path: &Path,
    padding: Option<raw::Padding>,
) -> Result<VerifyReport, Error> {
    let sig = std::fs::read(sig_path).map_err(|e| Error::input(sig_path, e))?;
    let candidates: Vec<SignScheme> = match (key, padding) {
        (PublicKey::Rsa { .. }, None) => vec![
            raw::scheme(key, Some(raw::Padding::Pss)).map_err(|e| Error::format(input, e))?,
            raw::scheme(key, Some(raw::Padding::Pkcs1)).map_err(|e| Error::format(input, e))?,
        ],
        _ => vec![raw::scheme(key, padding).map_err(|e| Error::format(input, e))?],
    };
    let hash = candidates[0].hash();
    let mut h = hash.hasher();
    let n = stream::for_each_chunk(input, |_, c| {
        h.update(c);
        Ok(())
    })
    .map_err(|e| Error::input(input, e))?;
    let digest = h.finish();
    let mut last = None;
    for scheme in candidates {
        match raw::verify(key, scheme, &digest, &sig) {
            Ok(()) => {
                return Ok(VerifyReport {
                    lines: vec![format!(
                        "raw: {} signature {} verifies over {} ({n} bytes, {} {}) with {} key {}",
                        scheme.name(),
                        sig_path.display(),
                        input.display(),
                        hash.name(),
                        hex::encode(&digest),
                        key.describe(),
                        hex::encode(key.fingerprint()),
                    )],
                })
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::verify(
        input,
        last.map(|e| e.to_string()).unwrap_or_default(),
    ))
}
