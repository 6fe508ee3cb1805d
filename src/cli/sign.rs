//! `officiant sign` and `officiant verify`: argument parsing and printing only; the work
//! is in [`crate::signing`].

use std::path::PathBuf;

use clap::Args;

use super::{BackendArgs, Failure, Outcome};
use crate::approvals::Presented;
use crate::formats::raw::Padding;
use crate::hsm::{self, BackendUri, UserType};
use crate::secret::SecretSource;
use crate::signing::recorded::{sign_recorded, Job, Note, Outputs};
use crate::signing::{self, Format, FormatOptions, SignRecord};

/// `officiant sign`: sign payloads with a key on the token, one login for the batch.
#[derive(Args, Debug)]
pub struct SignArgs {
    /// The backend; with `--pin-source` it logs in once for every input.
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the key pair on the token (imx-hab4: --csf-key and --img-key instead).
    #[arg(long)]
    pub key: Option<String>,
    /// raw | esp32-sbv2 | stm32mp15 | stm32mp13 | imx-hab4 | imx-ahab
    #[arg(long)]
    pub format: String,
    /// Payloads (or unsigned STM32 images, or signed ESP32 images with --append).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file (one input).
    #[arg(short = 'o', long = "output", conflicts_with = "out_dir")]
    pub output: Option<PathBuf>,
    /// Output directory (any number of inputs, one login).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// raw, RSA keys: pss (default; salt = hash length) or pkcs1 (PKCS#1 v1.5).
    #[arg(long)]
    pub padding: Option<String>,
    /// The format's own flags (load address, key table, --append, the i.MX keys, …).
    #[command(flatten)]
    pub fmt: FormatOptions,
    /// Print the per-input records as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Signing request (officiant request create) for a key the token's policy puts
    /// under approval; each signature is one use of it.
    #[arg(long)]
    pub request: Option<PathBuf>,
    /// An approval of the request: `ssh-keygen -Y sign -n officiant-approval REQ` output
    /// (repeat for each approver).
    #[arg(long = "approval", requires = "request")]
    pub approvals: Vec<PathBuf>,
}

/// `officiant verify`: check a signed image or a detached signature; needs no token.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// raw | esp32-sbv2 | stm32mp15 | stm32mp13 | imx-hab4 | imx-ahab
    #[arg(long)]
    pub format: String,
    /// Public key (PEM/DER SPKI or certificate).
    #[arg(long)]
    pub pubkey: Option<PathBuf>,
    /// imx-hab4, imx-ahab: the SRK table file whose hash is in the fuses.
    #[arg(long)]
    pub srk_table: Option<PathBuf>,
    /// The signed image, or the payload of a raw signature.
    pub input: PathBuf,
    /// raw: the detached signature file.
    pub signature: Option<PathBuf>,
    /// raw, RSA: pss or pkcs1 (default: accept either and say which).
    #[arg(long)]
    pub padding: Option<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

fn padding(s: Option<&str>) -> Result<Option<Padding>, Failure> {
    s.map(|p| {
        Padding::parse(p).ok_or_else(|| Failure(format!("--padding {p:?}: expected pss or pkcs1")))
    })
    .transpose()
}

fn print_record(r: &SignRecord, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    println!(
        "signed {} -> {} ({}, {}, key {:?} {})",
        r.input.display(),
        r.output.display(),
        r.format,
        r.scheme,
        r.key_label,
        r.key_fingerprint
    );
    println!("  input  SHA-256 {}", r.input_sha256);
    println!("  output SHA-256 {}", r.output_sha256);
    for n in &r.notes {
        println!("  {n}");
    }
    if let Some(u) = &r.approval {
        println!(
            "  use {} of {} of request {} (approved by {})",
            u.use_number,
            u.of,
            u.request,
            if u.approvers.is_empty() {
                "nobody: quorum 0".to_string()
            } else {
                u.approvers.join(", ")
            }
        );
    }
}

/// The key that signs: `--key`, or for imx-hab4 the CSF key (`--csf-key`; the IMG key
/// comes with the options).
fn key_label(a: &SignArgs, format: Format) -> Result<String, Failure> {
    match (format, &a.key, &a.fmt.nxp.csf_key) {
        (Format::ImxHab4, Some(_), _) => Err(Failure(
            "--format imx-hab4 signs with --csf-key and --img-key, not --key".into(),
        )),
        (Format::ImxHab4, None, Some(k)) => Ok(k.clone()),
        (Format::ImxHab4, None, None) => Err(Failure(
            "--format imx-hab4 needs --csf-key LABEL (and --img-key LABEL, or --fast-auth)".into(),
        )),
        (_, Some(k), _) => Ok(k.clone()),
        (f, None, _) => Err(Failure(format!("--format {f} needs --key LABEL"))),
    }
}

/// `officiant sign`. Checks the flags, opens the token, logs in once, then signs each
/// input (the signing service checks every signature before it writes, and records each
/// in the transcript: `--transcript`, else `OUT_DIR/transcript.jsonl` or
/// `./officiant-transcript.jsonl`). Prints a record per input (JSON lines with
/// `--json`); the first failure stops the batch (exit 1; what was signed before it stays,
/// recorded).
pub fn sign(a: SignArgs) -> Outcome {
    let format = Format::parse(&a.format)?;
    let label = key_label(&a, format)?;
    let opts = a
        .fmt
        .to_options(padding(a.padding.as_deref())?)
        .map_err(Failure)?;
    match (&a.output, &a.out_dir) {
        (Some(_), None) if a.inputs.len() != 1 => {
            return Err(Failure(format!(
                "-o takes one input, got {}; use --out-dir DIR for a batch",
                a.inputs.len()
            )))
        }
        (None, None) => {
            return Err(Failure(
                "where to write: -o OUT (one input) or --out-dir DIR".into(),
            ))
        }
        _ => {}
    }

    let uri = BackendUri::parse(&a.b.backend)?;
    let mut token = hsm::open(&uri, a.b.token.as_deref())
        .map_err(|e| Failure(format!("cannot open {uri}: {e}")))?;
    super::apply_auth_key(token.as_mut(), &a.b)?;
    // Signers share the token; a ceremony or a command changing it waits for them.
    let _held = crate::ceremony::lock::TokenLock::take_shared(&token.info()?)
        .map_err(|e| Failure(e.to_string()))?;
    // One login for the whole batch. Without --pin-source the backend may log in from
    // the URI's pin-source, or the token's signing refusal says what is missing.
    if let Some(src) = &a.b.pin_source {
        let pin = SecretSource::parse(src)
            .and_then(|s| s.read("user PIN"))
            .map_err(|e| Failure(format!("--pin-source: {e}")))?;
        token.login(UserType::User, &pin)?;
    }
    let presented = match &a.request {
        Some(r) => Some(Presented::load(r, &a.approvals)?),
        None => None,
    };
    // The transcript: --transcript, else next to the outputs.
    let tpath = a.b.transcript.clone().unwrap_or_else(|| match &a.out_dir {
        Some(d) => d.join("transcript.jsonl"),
        None => PathBuf::from("officiant-transcript.jsonl"),
    });
    let outputs = match (&a.output, &a.out_dir) {
        (Some(out), _) => Outputs::File(out),
        (None, Some(dir)) => Outputs::Dir(dir),
        (None, None) => return Err(Failure("where to write: -o OUT or --out-dir DIR".into())),
    };
    let backend = uri.to_string();
    let job = Job {
        backend: &backend,
        key: &label,
        request: presented.as_ref(),
        format,
        opts: &opts,
        inputs: &a.inputs,
        outputs,
        transcript: &tpath,
    };
    let json = a.json;
    sign_recorded(token.as_mut(), &job, &mut |n| match n {
        Note::Approved { grant, used } => eprintln!("{grant}; {used} used before this run"),
        Note::Signed(r) => print_record(r, json),
    })
    .map_err(|e| Failure(e.to_string()))?;
    Ok(())
}

/// `officiant verify`. Prints the verifier's report (JSON with `--json`); a bad
/// signature, a wrong key or an unreadable file is the error (exit 1).
pub fn verify(a: VerifyArgs) -> Outcome {
    let format = Format::parse(&a.format)?;
    // The flags name the anchor; signing::verify_against checks it suits the format.
    let anchor = match (&a.pubkey, &a.srk_table) {
        (Some(_), Some(_)) => {
            return Err(Failure(
                "give --pubkey (raw, esp32-sbv2, stm32mp15, stm32mp13) or --srk-table (imx-hab4, imx-ahab), not both".into(),
            ))
        }
        (Some(p), None) if !format.anchored_by_srk_table() => signing::TrustAnchor::PublicKey(p),
        (None, Some(t)) if format.anchored_by_srk_table() => signing::TrustAnchor::SrkTable(t),
        (_, Some(_)) => {
            return Err(Failure(format!(
                "--srk-table is for imx-hab4 and imx-ahab, not {format}"
            )))
        }
        _ if format.anchored_by_srk_table() => {
            return Err(Failure(format!(
                "--format {format} checks the image against --srk-table FILE (the SRK table whose hash is fused), not --pubkey"
            )))
        }
        _ => return Err(Failure(format!("--format {format} needs --pubkey FILE"))),
    };
    let report = signing::verify_against(
        format,
        anchor,
        &a.input,
        a.signature.as_deref(),
        padding(a.padding.as_deref())?,
    )?;
    if a.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        for l in &report.lines {
            println!("{l}");
        }
    }
    Ok(())
}
