//! The signing service: one key that signs (a [`Signer`]: a key on an opened, logged-in
//! token, or a file key); many payloads. For each payload: hash it as a stream, have the
//! key sign the digest, verify the signature with the key's public half, and only then
//! write the output (atomically, never over an existing file). Each payload yields a
//! [`SignRecord`] with the input's and output's SHA-256 for the transcript.
//!
//! `officiant sign` and the ceremony engine's `sign` step both call [`sign_file`] /
//! [`sign_batch`]; `officiant verify` and the `verify` step call [`verify_file`].
//!
//! Must not touch: tokens (`hsm`): the caller opens the key (`TokenSigner`) and hands
//! it over as a [`SigningKey`].

mod esp32;
pub mod imx_ahab;
pub mod imx_hab4;
pub mod options;
pub mod recorded;
mod stm32;
pub mod stream;
mod token;

pub use options::FormatOptions;
pub use token::TokenSigner;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::approvals;
use crate::formats::{raw, stm32_image};
use crate::keys::ecdsa_tables::Tables;
use crate::keys::{Curve, HashAlg, PublicKey, SignError, SignScheme, Signer};
use crate::output;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {cause}")]
    Input { path: PathBuf, cause: String },
    /// The key refused or failed to sign; the source names it and keeps its own error.
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("key {label:?}: the token's signature does not verify with the key's own public key; nothing written")]
    TokenSignatureBad { label: String },
    #[error("{path}: {cause}")]
    Format { path: PathBuf, cause: String },
    #[error("{path}: changed while it was being signed (its SHA-256 differs between reads); nothing written")]
    Changed { path: PathBuf },
    #[error("{0}")]
    Output(#[from] output::Error),
    #[error("{0}")]
    Usage(String),
    /// `verify` found the signature or image bad; the message says which part.
    #[error("{path}: {cause}")]
    Verify { path: PathBuf, cause: String },
    /// The token's approval policy does not let this key sign (now, or this many times).
    #[error("{0}")]
    Approval(#[from] approvals::Error),
}

impl Error {
    fn input(path: &Path, e: impl fmt::Display) -> Self {
        Error::Input {
            path: path.to_path_buf(),
            cause: e.to_string(),
        }
    }
    fn format(path: &Path, e: impl fmt::Display) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            cause: e.to_string(),
        }
    }
    fn verify(path: &Path, e: impl fmt::Display) -> Self {
        Error::Verify {
            path: path.to_path_buf(),
            cause: e.to_string(),
        }
    }
}

/// Output formats of `sign`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    #[serde(rename = "raw")]
    Raw,
    #[serde(rename = "esp32-sbv2")]
    Esp32Sbv2,
    #[serde(rename = "stm32mp15")]
    Stm32Mp15,
    #[serde(rename = "stm32mp13")]
    Stm32Mp13,
    #[serde(rename = "imx-hab4")]
    ImxHab4,
    #[serde(rename = "imx-ahab")]
    ImxAhab,
}

impl Format {
    /// What a key verifying or signing this format must be fit for.
    pub fn key_use(self) -> crate::keys::fitness::Use {
        match self {
            Format::Esp32Sbv2 => crate::keys::fitness::Use::Esp32,
            _ => crate::keys::fitness::Use::General,
        }
    }

    pub const ALL: [Format; 6] = [
        Format::Raw,
        Format::Esp32Sbv2,
        Format::Stm32Mp15,
        Format::Stm32Mp13,
        Format::ImxHab4,
        Format::ImxAhab,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Esp32Sbv2 => "esp32-sbv2",
            Format::Stm32Mp15 => "stm32mp15",
            Format::Stm32Mp13 => "stm32mp13",
            Format::ImxHab4 => "imx-hab4",
            Format::ImxAhab => "imx-ahab",
        }
    }

    /// The names, for messages: "raw, esp32-sbv2, …".
    pub fn names() -> String {
        Self::ALL.map(Format::name).join(", ")
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!("--format {s:?}: expected one of {}", Self::names()))
            })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// STM32MP header fields for a raw payload, and v2's key set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stm32Options {
    pub load_address: Option<u32>,
    pub entry_point: Option<u32>,
    /// Anti-rollback version (default 0).
    pub image_version: Option<u32>,
    /// Binary type (default 0x10, TF-A BL2).
    pub binary_type: Option<u8>,
    /// v2: index of the signing key in `key_table` (default: found by its hash).
    pub key_index: Option<u32>,
    /// v2: the whole key set, in OTP table order (default: the signing key alone).
    pub key_table: Vec<PublicKey>,
}

impl Stm32Options {
    fn has_payload_fields(&self) -> bool {
        self.load_address.is_some()
            || self.entry_point.is_some()
            || self.image_version.is_some()
            || self.binary_type.is_some()
    }
}

/// NXP HAB4 (`imx-hab4`): the SRK table and index, the certificates, and the IMG key
/// (the signing key itself is the CSF key).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hab4Options {
    /// The SRK table file's bytes.
    pub srk_table: Option<Vec<u8>>,
    /// 0-based index of the SRK in the table.
    pub srk_index: Option<usize>,
    /// When given, must name the signing key (the CSF key).
    pub csf_key: Option<String>,
    pub csf_cert: Option<Vec<u8>>,
    pub img_key: Option<String>,
    pub img_cert: Option<Vec<u8>>,
    pub fast_auth: bool,
    pub unlock: Vec<crate::formats::imx::csf::Unlock>,
    /// CSF header version (0x40–0x45).
    pub version: Option<u8>,
}

impl Hab4Options {
    fn any(&self) -> bool {
        *self != Hab4Options::default()
    }
}

/// What to sign and how, beyond the key and the format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// RSA padding for `raw` (default PSS).
    pub padding: Option<raw::Padding>,
    /// ESP32: add a block to an already signed image instead of signing a plain one.
    pub append: bool,
    pub stm32: Stm32Options,
    /// Boxed: most signing requests carry none, and requests travel by value.
    pub hab4: Box<Hab4Options>,
}

/// One signed payload, for the transcript.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignRecord {
    pub input: PathBuf,
    pub output: PathBuf,
    pub format: Format,
    pub key_label: String,
    /// SHA-256 of the key's DER SubjectPublicKeyInfo, hex.
    pub key_fingerprint: String,
    pub scheme: String,
    /// The digest the token signed, hex.
    pub signed_digest: String,
    pub input_sha256: String,
    pub output_sha256: String,
    pub input_bytes: u64,
    /// What the operator should know (fields kept, flags changed, blocks present).
    pub notes: Vec<String>,
    /// The approved request this signature is one use of (keys under a policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::keys::Authority>,
}

/// The key a signing session uses: any [`Signer`] ([`TokenSigner`] on an opened,
/// logged-in token, which answers to the token's approval policy; `keys::FileSigner` in
/// tests), with its public half as read before the first signature. Every signature is
/// checked against that public half.
pub struct SigningKey<'s> {
    signer: Box<dyn Signer + 's>,
    public: PublicKey,
}

impl<'s> SigningKey<'s> {
    pub fn new(signer: impl Signer + 's) -> Self {
        let public = signer.public_key().clone();
        SigningKey {
            signer: Box::new(signer),
            public,
        }
    }

    /// Take `n` uses now for `n` signatures to come (a key under an approved request
    /// reserves them on the token before the first; nothing for other keys).
    pub fn reserve(&mut self, n: u64) -> Result<(), Error> {
        Ok(self.signer.reserve(n)?)
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn label(&self) -> &str {
        self.signer.label()
    }

    /// Have the key sign `digest` and check the result with the public key before anyone
    /// can use it. ECDSA comes back as fixed-width r‖s.
    pub fn sign_digest(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, Error> {
        self.sign_unchecked(scheme, digest)?.check(&self.public)
    }

    /// The key's signature over `digest`, to be checked (possibly on another thread)
    /// before it is used: [`Unchecked::check`] is the only way to its bytes.
    fn sign_unchecked(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Unchecked, Error> {
        if let PublicKey::Ec {
            curve: c @ (Curve::BrainpoolP256t1 | Curve::BrainpoolP256r1),
            ..
        } = &self.public
        {
            return Err(Error::Usage(format!(
                "key {:?} is {}: Officiant cannot check {} signatures in software yet, and it writes no signature it has not checked",
                self.label(),
                self.public.describe(),
                c.name()
            )));
        }
        let sig = self.signer.sign_digest(scheme, digest)?;
        Ok(Unchecked {
            label: self.label().to_string(),
            scheme,
            digest: digest.to_vec(),
            sig,
        })
    }

    fn record(
        &self,
        format: Format,
        input: &Path,
        output: &Path,
        scheme: SignScheme,
    ) -> SignRecord {
        SignRecord {
            input: input.to_path_buf(),
            output: output.to_path_buf(),
            format,
            key_label: self.label().to_string(),
            key_fingerprint: hex::encode(self.public.fingerprint()),
            scheme: scheme.name(),
            signed_digest: String::new(),
            input_sha256: String::new(),
            output_sha256: String::new(),
            input_bytes: 0,
            notes: Vec::new(),
            approval: self.signer.authority(),
        }
    }
}

/// A signature straight from the key (the token), not yet trusted.
struct Unchecked {
    label: String,
    scheme: SignScheme,
    digest: Vec<u8>,
    sig: Vec<u8>,
}

impl Unchecked {
    /// The signature, once it verifies over its digest with `public` (the key's public
    /// half as read from the token before signing).
    fn check(self, public: &PublicKey) -> Result<Vec<u8>, Error> {
        self.check_with(public, None)
    }

    /// [`Self::check`], with fixed-base tables of `public` for a batch.
    fn check_with(self, public: &PublicKey, tables: Option<&Tables>) -> Result<Vec<u8>, Error> {
        let bad = || Error::TokenSignatureBad {
            label: self.label.clone(),
        };
        if let PublicKey::Ec { curve, .. } = public {
            if self.sig.len() != 2 * curve.field_bytes() {
                return Err(bad());
            }
        }
        let fast = tables.and_then(|t| t.verify(self.scheme, &self.digest, &self.sig));
        let ok = match fast {
            Some(ok) => ok,
            None => public
                .verify_digest(self.scheme, &self.digest, &self.sig)
                .is_ok(),
        };
        if !ok {
            return Err(bad());
        }
        Ok(self.sig)
    }
}

/// Sign one input into `output`. Nothing is written unless the token's signature
/// verified with the key's public key.
pub fn sign_file(
    key: &mut SigningKey<'_>,
    format: Format,
    opts: &Options,
    input: &Path,
    output: &Path,
) -> Result<SignRecord, Error> {
    check_options(format, opts)?;
    let meta = std::fs::metadata(input).map_err(|e| Error::input(input, e))?;
    if !meta.is_file() {
        return Err(Error::input(input, "not a regular file"));
    }
    if output.symlink_metadata().is_ok() {
        return Err(output::Error::Exists(output.to_path_buf()).into());
    }
    match format {
        Format::Raw => sign_raw(key, opts, input, output),
        Format::Stm32Mp15 => stm32::sign(key, stm32_image::Layout::V1, opts, input, output),
        Format::Stm32Mp13 => stm32::sign(key, stm32_image::Layout::V2, opts, input, output),
        Format::Esp32Sbv2 => esp32::sign(key, opts, input, output),
        Format::ImxHab4 => imx_hab4::sign_one_key(key, opts, input, output),
        Format::ImxAhab => imx_ahab::sign(key, opts, input, output),
    }
}

/// Everything about signing `input` into `output` that can be checked without the token:
/// the options fit the format, the input is a file (and, for an STM32 format, an image or
/// a payload with the fields it needs), the output does not exist. A face runs this
/// before it asks for a PIN.
pub fn precheck(format: Format, opts: &Options, input: &Path, output: &Path) -> Result<(), Error> {
    check_options(format, opts)?;
    let meta = std::fs::metadata(input).map_err(|e| Error::input(input, e))?;
    if !meta.is_file() {
        return Err(Error::input(input, "not a regular file"));
    }
    if output.symlink_metadata().is_ok() {
        return Err(output::Error::Exists(output.to_path_buf()).into());
    }
    match format {
        Format::Stm32Mp15 => stm32::check_input(stm32_image::Layout::V1, opts, input),
        Format::Stm32Mp13 => stm32::check_input(stm32_image::Layout::V2, opts, input),
        Format::ImxHab4 => imx_hab4::check_input(opts, input),
        Format::ImxAhab => imx_ahab::check_input(opts, input),
        Format::Raw | Format::Esp32Sbv2 => Ok(()),
    }
}

/// Refuse options that do not fit the format (before any token is touched).
pub fn check_options(format: Format, opts: &Options) -> Result<(), Error> {
    if opts.padding.is_some() && format != Format::Raw {
        return Err(Error::Usage(format!(
            "--padding is for --format raw; {format} fixes its own scheme"
        )));
    }
    if opts.append && format != Format::Esp32Sbv2 {
        return Err(Error::Usage(format!(
            "--append is for --format esp32-sbv2, not {format}"
        )));
    }
    let s = &opts.stm32;
    let is_stm32 = matches!(format, Format::Stm32Mp15 | Format::Stm32Mp13);
    if !is_stm32 && (s.has_payload_fields() || s.key_index.is_some() || !s.key_table.is_empty()) {
        return Err(Error::Usage(format!(
            "--load-address, --entry-point, --version, --binary-type, --key-index and --key-table are for stm32mp15/stm32mp13, not {format}"
        )));
    }
    let h = &opts.hab4;
    if format == Format::ImxAhab
        && (h.csf_key.is_some()
            || h.csf_cert.is_some()
            || h.img_key.is_some()
            || h.img_cert.is_some()
            || h.fast_auth
            || !h.unlock.is_empty()
            || h.version.is_some())
    {
        return Err(Error::Usage(
            "imx-ahab signs with --key (an SRK on the token), --srk-table and --srk-index; --csf-key, --csf-cert, --img-key, --img-cert, --fast-auth, --unlock and --hab-version are for imx-hab4".into(),
        ));
    }
    if !matches!(format, Format::ImxHab4 | Format::ImxAhab) && opts.hab4.any() {
        return Err(Error::Usage(format!(
            "--srk-table, --srk-index, --csf-key, --csf-cert, --img-key, --img-cert, --fast-auth, --unlock and --hab-version are for imx-hab4, not {format}"
        )));
    }
    if format == Format::Stm32Mp15 && (s.key_index.is_some() || !s.key_table.is_empty()) {
        return Err(Error::Usage(
            "--key-index and --key-table are for stm32mp13 (header v2); header v1 holds one key"
                .into(),
        ));
    }
    Ok(())
}

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
    pub done: Vec<SignRecord>,
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
        return raw_batch(key, opts, &plan, on_signed);
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
fn raw_batch(
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
            raw_checker(&public, tables.as_ref(), job_rx, groups_tx)
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
            match raw_sign_one(key, opts, input, out) {
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

/// The checking stage of [`raw_batch`]: verify, encode, write a group, report it.
/// Stops at the first bad signature, after writing the checked ones before it.
fn raw_checker(
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
            match finish_raw(public, tables, record, unchecked) {
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

fn sign_raw(
    key: &mut SigningKey<'_>,
    opts: &Options,
    input: &Path,
    output: &Path,
) -> Result<SignRecord, Error> {
    let (record, unchecked) = raw_sign_one(key, opts, input, output)?;
    let (r, bytes) = finish_raw(key.public_key(), None, record, unchecked)?;
    output::write_new(output, &bytes)?;
    Ok(r)
}

/// Hash `input` and have the token sign it: the record so far and the unchecked
/// signature.
fn raw_sign_one(
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
fn finish_raw(
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

/// What `verify` found, one line per check, for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub lines: Vec<String>,
}

/// Verify a signed image (esp32-sbv2, stm32mp15, stm32mp13) or a detached raw signature
/// against `key`. `padding` is for raw RSA signatures (default: PSS, then PKCS#1 v1.5).
pub fn verify_file(
    format: Format,
    key: &PublicKey,
    input: &Path,
    signature: Option<&Path>,
    padding: Option<raw::Padding>,
) -> Result<VerifyReport, Error> {
    // A weak key "verifies" whatever its holder (or anyone, for e = 1) wants.
    crate::keys::fitness::check(key, format.key_use())
        .map_err(|e| Error::Usage(format!("public key: {e}")))?;
    if format != Format::Raw {
        if signature.is_some() {
            return Err(Error::Usage(format!(
                "{format} images carry their signature; give no SIG file"
            )));
        }
        if padding.is_some() {
            return Err(Error::Usage(format!("--padding is for raw, not {format}")));
        }
    }
    match format {
        Format::Raw => {
            let sig_path = signature.ok_or_else(|| {
                Error::Usage(
                    "--format raw needs the detached signature file: verify … IN SIG".into(),
                )
            })?;
            verify_raw(key, input, sig_path, padding)
        }
        Format::Stm32Mp15 => stm32::verify(stm32_image::Layout::V1, key, input),
        Format::Stm32Mp13 => stm32::verify(stm32_image::Layout::V2, key, input),
        Format::Esp32Sbv2 => esp32::verify(key, input),
        Format::ImxHab4 | Format::ImxAhab => Err(Error::Usage(format!(
            "{format} images are checked against their SRK table: verify --format {format} --srk-table FILE IMAGE"
        ))),
    }
}

fn verify_raw(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_output_names() {
        let d = Path::new("/o");
        assert_eq!(
            output_path(Format::Raw, Path::new("/x/fw.bin"), d),
            Path::new("/o/fw.bin.sig")
        );
        assert_eq!(
            output_path(Format::Stm32Mp15, Path::new("tf-a.stm32"), d),
            Path::new("/o/tf-a_Signed.stm32")
        );
        assert_eq!(
            output_path(Format::Esp32Sbv2, Path::new("app.bin"), d),
            Path::new("/o/app-signed.bin")
        );
    }

    #[test]
    fn formats_parse() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.name()).unwrap(), f);
        }
        assert!(Format::parse("tfa").is_err());
    }
}
