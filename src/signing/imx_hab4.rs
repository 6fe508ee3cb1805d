//! NXP HAB4 image signing (i.MX 6/7/8M, i.MX RT): the CSF made by a CSF key and an IMG
//! key (`formats::imx::hab4_image` does the format; this is the I/O around it).
//!
//! Signing is a [`Hab4Job`] in steps, so the caller can open one key at a time (two keys
//! on one token cannot be open at once): [`prepare`] checks everything and reads the
//! input once, hashing the bytes the image signature covers with the IVT's CSF pointer
//! and the boot data length already patched in; [`Hab4Job::sign_image`] has the IMG key
//! sign that digest, [`Hab4Job::sign_csf`] the CSF key the CSF; [`Hab4Job::write`] reads
//! the input a second time into the (not yet published) output, checks that the covered
//! bytes hash as before, and appends the CSF. The output gets its name only after both
//! signatures have verified. Memory stays flat: 1 MiB pieces and the CSF.
//!
//! [`TokenPair`] drives those steps with the CSF and IMG keys of one token, each opened
//! through the approval gate (`TokenSigner`) only while it signs; `signing::recorded`
//! (`officiant sign`, the console) and the ceremony's sign step use it. With
//! `--fast-auth` the SRK signs both, as the one key of an ordinary [`SigningKey`].

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    stream, BatchError, Error, Format, Options, SignRecord, SigningKey, TokenSigner, VerifyReport,
};
use crate::approvals::{Grant, Presented};
use crate::formats::imx::hab4_image::{self, KeyRef, Plan, SignSpec};
use crate::formats::imx::ivt::{Layout, IVT_LEN, IVT_OFFSETS};
use crate::hsm::Token;
use crate::keys::{Authority, PublicKey, SignError, Signer};
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
    // Enough for an IVT at the last candidate offset.
    let want = stream::clamp_len(IVT_OFFSETS[2] + IVT_LEN as u64, usize::MAX);
    let prefix = stream::read_prefix(input, want).map_err(|e| Error::input(input, e))?;
    let candidates: Vec<(u64, &[u8])> = IVT_OFFSETS
        .iter()
        .filter_map(|&o| stream::from(&prefix, o).map(|b| (o, b)))
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

/// A HAB4 signing job: planned and hashed, then signed key by key, then written.
pub struct Hab4Job {
    input: std::path::PathBuf,
    layout: Layout,
    plan: Plan,
    /// SHA-256 of the covered bytes (as the output will hold them) and of the input.
    digest: [u8; 32],
    in_sha: [u8; 32],
    /// The first byte of the free space past the CSF pointer (0x00 or 0xFF).
    blank: Option<u8>,
    csf_label: String,
    img_label: String,
    img_cms: Option<Vec<u8>>,
    csf: Option<Vec<u8>>,
    /// The approved request the CSF key signed under, if any.
    approval: Option<Authority>,
}

/// The options every imx-hab4 signature needs: the SRK table, the SRK's index and the
/// CSF key's certificate.
fn required(opts: &Options) -> Result<(&[u8], usize, &[u8]), Error> {
    super::check_options(Format::ImxHab4, opts)?;
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
        usage("--csf-cert FILE is missing (and the CSF key's certificate was not read from its token)")
    })?;
    Ok((srk_table, srk_index, csf_cert))
}

/// Fill in the certificates not given as files with the token's certificate objects
/// under the keys' labels (where the ceremonies' `write-to-token` puts them): the CSF
/// key's (with fast authentication, the SRK's) and, unless fast authentication, the IMG
/// key's. A missing one is refused in one line naming the flag and the label.
pub fn certificates_from_token(
    token: &mut dyn Token,
    opts: &Options,
    csf: &str,
) -> Result<Options, Error> {
    let mut opts = opts.clone();
    let read = |token: &mut dyn Token, flag: &str, label: &str| -> Result<Vec<u8>, Error> {
        match token.read_certificate(label) {
            Ok(Some(der)) => Ok(der),
            Ok(None) => Err(Error::Usage(format!(
                "--format imx-hab4: give {flag} FILE: the token holds no certificate labelled {label:?}"
            ))),
            Err(e) => Err(Error::Usage(format!(
                "--format imx-hab4: give {flag} FILE: the certificate labelled {label:?} cannot be read from the token ({e})"
            ))),
        }
    };
    if opts.hab4.csf_cert.is_none() {
        opts.hab4.csf_cert = Some(read(token, "--csf-cert", csf)?);
    }
    if !opts.hab4.fast_auth && opts.hab4.img_cert.is_none() {
        if let Some(img) = opts.hab4.img_key.clone() {
            opts.hab4.img_cert = Some(read(token, "--img-cert", &img)?);
        }
    }
    Ok(opts)
}

/// What [`super::precheck`] can check without the token: the options are there (the
/// certificates may come from the token) and the input is an image with an IVT and boot
/// data.
pub(super) fn check_input(opts: &Options, input: &Path) -> Result<(), Error> {
    super::check_options(Format::ImxHab4, opts)?;
    let h = &opts.hab4;
    let usage = |m: &str| Error::Usage(format!("--format imx-hab4: {m}"));
    if h.srk_table.is_none() {
        return Err(usage("--srk-table FILE is missing"));
    }
    if h.srk_index.is_none() {
        return Err(usage("--srk-index N is missing"));
    }
    if !h.fast_auth && h.img_key.is_none() {
        return Err(Error::Usage(
            "--format imx-hab4 needs --img-key LABEL (or --fast-auth)".into(),
        ));
    }
    layout(input).map(|_| ())
}

/// Check the options, the image, the keys' public halves against the certificates, plan
/// the CSF and hash what the image signature will cover. `csf` and `img` are the keys'
/// labels and public halves (fast authentication: no `img`, the CSF key is the SRK).
pub fn prepare(
    opts: &Options,
    input: &Path,
    csf: (&str, &PublicKey),
    img: Option<(&str, &PublicKey)>,
) -> Result<Hab4Job, Error> {
    let (srk_table, srk_index, csf_cert) = required(opts)?;
    let h = &opts.hab4;
    let usage = |m: &str| Error::Usage(format!("--format imx-hab4: {m}"));
    if let Some(l) = &h.csf_key {
        if l != csf.0 {
            return Err(usage(&format!(
                "--csf-key {l:?} is not the signing key {:?}",
                csf.0
            )));
        }
    }
    let meta = std::fs::metadata(input).map_err(|e| Error::input(input, e))?;
    if !meta.is_file() {
        return Err(Error::input(input, "not a regular file"));
    }
    let layout = layout(input)?;
    let at_csf = match (layout.ivt.csf, layout.file_offset(layout.ivt.csf)) {
        (0, _) | (_, None) => Vec::new(),
        (_, Some(off)) if off >= layout.file_len => Vec::new(),
        (_, Some(off)) => {
            stream::read_at(input, off, 0x1000).map_err(|e| Error::input(input, e))?
        }
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
        label: csf.0,
        public: csf.1,
    };
    let img_ref = img.map(|(label, public)| KeyRef { label, public });
    let plan = Plan::new(&layout, &at_csf, &spec, csf_ref, img_ref)
        .map_err(|e| Error::format(input, e))?;
    let Hashed {
        covered: digest,
        input: in_sha,
        blank,
    } = hash_pass(input, &layout, &plan, None)?;
    Ok(Hab4Job {
        input: input.to_path_buf(),
        layout,
        plan,
        digest,
        in_sha,
        blank,
        csf_label: csf.0.to_string(),
        img_label: img.map_or(csf.0, |i| i.0).to_string(),
        img_cms: None,
        csf: None,
        approval: None,
    })
}

/// What one read of the input found.
struct Hashed {
    /// SHA-256 of the bytes the image signature covers, as the output holds them.
    covered: [u8; 32],
    /// SHA-256 of the input.
    input: [u8; 32],
    /// The first byte of the free space past the CSF pointer, if the file reaches it.
    blank: Option<u8>,
}

/// One read of the input: the covered bytes' and the input's SHA-256, each chunk also
/// going to `out` (patched, up to the CSF) when writing. Past the CSF pointer the file may
/// hold only free space.
fn hash_pass(
    input: &Path,
    layout: &Layout,
    plan: &Plan,
    mut out: Option<&mut dyn Write>,
) -> Result<Hashed, Error> {
    let covered = plan.covered();
    let csf_off = plan.csf_offset();
    let mut in_sha = Sha256::new();
    let mut cov = Sha256::new();
    let mut blank: Option<u8> = None;
    let mut bad: Option<u64> = None;
    let mut buf = Vec::new();
    let n = stream::for_each_chunk(input, |off, c| {
        in_sha.update(c);
        buf.clear();
        buf.extend_from_slice(c);
        plan.patch(off, &mut buf);
        cov.update(stream::within(off, &buf, covered.start, covered.end));
        if let Some(w) = out.as_mut() {
            w.write_all(stream::within(off, &buf, 0, csf_off))?;
        }
        let rest = stream::within(off, &buf, csf_off, u64::MAX);
        let rest_at = off.max(csf_off);
        let uniform = match (blank, rest.first()) {
            (_, None) => Ok(()),
            (Some(b), Some(&f)) if f != b => Err(rest_at),
            _ => Plan::check_blank(rest_at, rest),
        };
        if let Err(at) = uniform {
            bad = Some(at);
            return Err(std::io::Error::other(CHANGED));
        }
        if blank.is_none() {
            blank = rest.first().copied();
        }
        Ok(())
    });
    if let Some(at) = bad {
        return Err(Error::format(
            input,
            format!(
                "the IVT's CSF pointer {:#010x} points into the application: file offset {at:#x} holds data, not free space",
                layout.ivt.csf
            ),
        ));
    }
    let n = n.map_err(|e| Error::input(input, e))?;
    if n != layout.file_len {
        return Err(Error::Changed {
            path: input.to_path_buf(),
        });
    }
    // Zeros from the end of the file to the CSF are covered too.
    let zeros = [0u8; 4096];
    let mut left = csf_off.saturating_sub(layout.file_len);
    while left > 0 {
        let k = stream::clamp_len(left, zeros.len());
        cov.update(&zeros[..k]);
        if let Some(w) = out.as_mut() {
            w.write_all(&zeros[..k])
                .map_err(|e| Error::input(input, e))?;
        }
        left -= k as u64;
    }
    Ok(Hashed {
        covered: cov.finalize().into(),
        input: in_sha.finalize().into(),
        blank,
    })
}

impl Hab4Job {
    /// The label of the key [`Self::sign_image`] wants: the IMG key, or in fast
    /// authentication the SRK (the CSF key).
    pub fn image_key(&self) -> &str {
        &self.img_label
    }

    /// The label of the key [`Self::sign_csf`] wants: the CSF key (fast authentication:
    /// the SRK).
    pub fn csf_key(&self) -> &str {
        &self.csf_label
    }

    /// The image signature, by the IMG key (fast authentication: the SRK).
    pub fn sign_image(&mut self, signer: &mut dyn Signer) -> Result<(), Error> {
        let cms = self
            .plan
            .sign_image(signer, &self.digest)
            .map_err(|e| Error::format(&self.input, e))?;
        self.img_cms = Some(cms);
        Ok(())
    }

    /// The CSF, signed by the CSF key (fast authentication: the SRK), after the image.
    pub fn sign_csf(&mut self, signer: &mut dyn Signer) -> Result<(), Error> {
        let img = self
            .img_cms
            .as_deref()
            .ok_or_else(|| Error::Usage("the image is signed before the CSF".into()))?;
        let csf = self
            .plan
            .build_csf(img, signer)
            .map_err(|e| Error::format(&self.input, e))?;
        self.csf = Some(csf);
        self.approval = signer.authority();
        Ok(())
    }

    /// Write the signed image to `output` (atomically, never over a file). The input is
    /// read again; if the bytes the signature covers changed since [`prepare`], nothing
    /// is written.
    pub fn write(self, output: &Path) -> Result<SignRecord, Error> {
        let csf = self
            .csf
            .as_deref()
            .ok_or_else(|| Error::Usage("the CSF is not signed yet".into()))?;
        if output.symlink_metadata().is_ok() {
            return Err(output::Error::Exists(output.to_path_buf()).into());
        }
        let input = &self.input;
        let mut stopped: Option<Error> = None;
        let mut out_sha = [0u8; 32];
        let written = output::write_new_with(output, |f| {
            let mut w = HashingWriter {
                inner: std::io::BufWriter::with_capacity(1 << 20, f),
                sha: Sha256::new(),
            };
            let again = hash_pass(input, &self.layout, &self.plan, Some(&mut w));
            match again {
                Ok(h) if h.covered == self.digest && h.input == self.in_sha => {}
                Ok(_) => {
                    stopped = Some(Error::Changed {
                        path: input.to_path_buf(),
                    });
                    return Err(std::io::Error::other(CHANGED));
                }
                Err(e) => {
                    stopped = Some(e);
                    return Err(std::io::Error::other(CHANGED));
                }
            }
            w.write_all(csf)?;
            // Free space past the CSF's room stays as it was.
            let mut left = self.plan.output_len() - self.plan.csf_offset() - csf.len() as u64;
            let fill = [self.blank.unwrap_or(0); 4096];
            while left > 0 {
                let k = stream::clamp_len(left, fill.len());
                w.write_all(&fill[..k])?;
                left -= k as u64;
            }
            w.inner.flush()?;
            out_sha = w.sha.finalize_reset().into();
            Ok(())
        });
        if let Some(e) = stopped {
            return Err(e);
        }
        written?;
        let b = self.plan.block();
        let mut notes = self.plan.notes.clone();
        notes.push(format!(
            "image block {:#010x} + {:#x} (IVT to CSF) signed by {:?}; CSF signed by {:?}{}",
            b.address,
            b.length,
            self.img_label,
            self.csf_label,
            if self.plan.fast_auth() {
                " (fast authentication: the SRK signs both)"
            } else {
                ""
            }
        ));
        let csf_pub = self.plan.csf_public().clone();
        Ok(SignRecord {
            input: input.clone(),
            output: output.to_path_buf(),
            format: Format::ImxHab4,
            key_label: self.csf_label.clone(),
            key_fingerprint: hex::encode(csf_pub.fingerprint()),
            scheme: crate::formats::imx::cms::scheme_for(&csf_pub).name(),
            signed_digest: hex::encode(self.digest),
            input_sha256: hex::encode(self.in_sha),
            output_sha256: hex::encode(out_sha),
            input_bytes: self.layout.file_len,
            notes,
            approval: self.approval,
        })
    }
}

/// A writer that hashes what passes through it.
struct HashingWriter<W: Write> {
    inner: W,
    sha: Sha256,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `sign_file` with one key: fast authentication, where the SRK signs both. A CSF and an
/// IMG key sign through [`TokenPair`].
pub(super) fn sign_one_key(
    key: &mut SigningKey<'_>,
    opts: &Options,
    input: &Path,
    output: &Path,
) -> Result<SignRecord, Error> {
    if opts.hab4.img_key.is_some() || !opts.hab4.fast_auth {
        return Err(Error::Usage(
            "imx-hab4 signs with two keys (CSF and IMG), opened in turn (signing::imx_hab4::TokenPair); one key signs alone only with --fast-auth".into(),
        ));
    }
    let public = key.public_key().clone();
    let label = key.label().to_string();
    let mut job = prepare(opts, input, (&label, &public), None)?;
    job.sign_image(&mut *key.signer)?;
    job.sign_csf(&mut *key.signer)?;
    job.write(output)
}

/// The CSF and IMG keys of one token, each opened through the approval gate
/// ([`TokenSigner`]) only while it signs: a token lends itself to one key at a time.
pub struct TokenPair<'t> {
    token: &'t mut dyn Token,
    request: Option<&'t Presented>,
    csf: (String, PublicKey),
    img: (String, PublicKey),
}

impl<'t> TokenPair<'t> {
    /// Both keys, each asked of the token's approval policy now (so a refusal comes
    /// before any file is read); the grants with their uses so far, CSF key first, for
    /// the session's record.
    /// A request goes to the keys it names (to the CSF key if it names neither, which
    /// then says why it does not fit).
    pub fn open(
        token: &'t mut dyn Token,
        csf: &str,
        img: &str,
        request: Option<&'t Presented>,
    ) -> Result<(Self, Vec<(Grant, u64)>), Error> {
        let mut grants = Vec::new();
        let mut publics = Vec::with_capacity(2);
        for label in [csf, img] {
            let mut signer =
                TokenSigner::open(&mut *token, label, for_key(request, (csf, img), label))?;
            publics.push(signer.public_key().clone());
            if let Some(g) = signer.grant().cloned() {
                grants.push((g, signer.uses_so_far()?.unwrap_or(0)));
            }
        }
        let img_public = publics.pop();
        let csf_public = publics.pop();
        let (Some(csf_public), Some(img_public)) = (csf_public, img_public) else {
            return Err(Error::Usage("imx-hab4: the keys did not open".into()));
        };
        Ok((
            TokenPair {
                token,
                request,
                csf: (csf.to_string(), csf_public),
                img: (img.to_string(), img_public),
            },
            grants,
        ))
    }

    /// The CSF key's label and public half.
    pub fn csf(&self) -> (&str, &PublicKey) {
        (&self.csf.0, &self.csf.1)
    }

    /// The IMG key's label and public half.
    pub fn img(&self) -> (&str, &PublicKey) {
        (&self.img.0, &self.img.1)
    }

    /// Sign `input` into `output`: plan and hash, the IMG key signs the image, the CSF
    /// key the CSF, then the output is written.
    pub fn sign_file(
        &mut self,
        opts: &Options,
        input: &Path,
        output: &Path,
    ) -> Result<SignRecord, Error> {
        if output.symlink_metadata().is_ok() {
            return Err(output::Error::Exists(output.to_path_buf()).into());
        }
        let opts = &certificates_from_token(&mut *self.token, opts, &self.csf.0)?;
        if opts.hab4.fast_auth {
            return Err(Error::Usage(
                "--format imx-hab4 --fast-auth signs with the SRK alone: give no --img-key".into(),
            ));
        }
        if let Some(l) = opts.hab4.img_key.as_deref().filter(|&l| l != self.img.0) {
            return Err(Error::Usage(format!(
                "--format imx-hab4: --img-key {l:?} is not the IMG key {:?} opened",
                self.img.0
            )));
        }
        let csf_label = self.csf.0.clone();
        let mut job = prepare(
            opts,
            input,
            (&self.csf.0, &self.csf.1),
            Some((&self.img.0, &self.img.1)),
        )?;
        let img_label = self.img.0.clone();
        let labels = (csf_label.as_str(), img_label.as_str());
        let request = self.request;
        let mut img = self.signer(&img_label, for_key(request, labels, &img_label))?;
        job.sign_image(&mut img)?;
        drop(img);
        let mut csf = self.signer(&csf_label, for_key(request, labels, &csf_label))?;
        job.sign_csf(&mut csf)?;
        drop(csf);
        job.write(output)
    }

    /// [`super::sign_batch_with`] for the pair: every output checked first, then each
    /// input signed and handed to `on_signed` as soon as it is written.
    pub fn sign_batch_with(
        &mut self,
        opts: &Options,
        inputs: &[PathBuf],
        out_dir: &Path,
        mut on_signed: impl FnMut(&[SignRecord]) -> Result<(), Error>,
    ) -> Result<Vec<SignRecord>, BatchError> {
        let plan = super::batch_plan(Format::ImxHab4, opts, inputs, out_dir).map_err(|error| {
            BatchError {
                done: Vec::new(),
                error,
            }
        })?;
        let mut done = Vec::with_capacity(plan.len());
        for (input, out) in plan {
            let r = match self.sign_file(opts, input, &out) {
                Ok(r) => r,
                Err(error) => return Err(BatchError { done, error }),
            };
            let noted = on_signed(std::slice::from_ref(&r));
            done.push(r);
            if let Err(error) = noted {
                return Err(BatchError { done, error });
            }
        }
        Ok(done)
    }

    /// The key labelled `label`, opened again; it must still be the key planned with.
    fn signer(
        &mut self,
        label: &str,
        request: Option<&Presented>,
    ) -> Result<TokenSigner<'_>, Error> {
        let s = TokenSigner::open(&mut *self.token, label, request)?;
        let planned = if label == self.csf.0 {
            &self.csf.1
        } else {
            &self.img.1
        };
        if s.public_key() != planned {
            return Err(Error::Sign(SignError::key(
                label,
                "the key changed on the token since the session opened",
            )));
        }
        Ok(s)
    }
}

/// The request for key `label`: the request if it names the key, or for the CSF key if
/// it names neither key (whose refusal then says why).
fn for_key<'p>(
    request: Option<&'p Presented>,
    (csf, img): (&str, &str),
    label: &str,
) -> Option<&'p Presented> {
    let names = |p: &Presented, l: &str| p.request.key(l).is_some();
    request.filter(|p| names(p, label) || (label == csf && !names(p, img)))
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
