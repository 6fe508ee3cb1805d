//! `officiant sign` and `officiant verify`: argument parsing and printing only; the work
//! is in [`crate::signing`].

use std::path::PathBuf;

use clap::Args;

use serde_json::json;

use super::{BackendArgs, Failure, Outcome};
use crate::approvals::Presented;
use crate::ceremony::transcript;
use crate::formats::raw::Padding;
use crate::hsm::{self, BackendUri, UserType};
use crate::keys::load_public_key;
use crate::secret::SecretSource;
use crate::signing::{self, Format, FormatOptions, SignRecord, SigningKey, TokenSigner};

#[derive(Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the key pair on the token.
    #[arg(long)]
    pub key: String,
    /// raw | esp32-sbv2 | stm32mp15 | stm32mp13
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

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// raw | esp32-sbv2 | stm32mp15 | stm32mp13
    #[arg(long)]
    pub format: String,
    /// Public key (PEM/DER SPKI or certificate).
    #[arg(long)]
    pub pubkey: PathBuf,
    /// The signed image, or the payload of a raw signature.
    pub input: PathBuf,
    /// raw: the detached signature file.
    pub signature: Option<PathBuf>,
    /// raw, RSA: pss or pkcs1 (default: accept either and say which).
    #[arg(long)]
    pub padding: Option<String>,
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

pub fn sign(a: SignArgs) -> Outcome {
    let format = Format::parse(&a.format)?;
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
    // One login for the whole batch. Without --pin-source the backend may log in from
    // the URI's pin-source, or the token's signing refusal says what is missing.
    if let Some(src) = &a.b.pin_source {
        let pin = SecretSource::parse(src)
            .and_then(|s| s.read("user PIN"))
            .map_err(|e| Failure(format!("--pin-source: {e}")))?;
        token.login(UserType::User, &pin)?;
    }
    let info = token.info()?;
    let presented = match &a.request {
        Some(r) => Some(Presented::load(r, &a.approvals)?),
        None => None,
    };
    let mut signer = TokenSigner::open(token.as_mut(), &a.key, presented.as_ref())?;
    let approval = match signer.grant().cloned() {
        Some(g) => {
            let used = signer.uses_so_far()?.unwrap_or(0);
            eprintln!("{g}; {used} used before this run");
            Some(
                json!({"request": g.request, "key": g.key, "approvers": g.approvers, "limit": g.limit, "used_before": used, "policy_sha256": g.policy_sha256, "counter": g.counter}),
            )
        }
        None => None,
    };
    let mut key = SigningKey::new(signer);

    // The transcript: --transcript, else next to the outputs.
    let tpath = a.b.transcript.clone().unwrap_or_else(|| match &a.out_dir {
        Some(d) => d.join("transcript.jsonl"),
        None => PathBuf::from("officiant-transcript.jsonl"),
    });
    let mut tr = transcript::Writer::open(&tpath)?;
    // The session's opening entries share one disk sync.
    let mut opening = vec![
        (
            "open",
            json!({"command": "sign", "backend": uri.to_string(), "officiant": env!("CARGO_PKG_VERSION")}),
        ),
        (
            "token",
            json!({"label": info.label, "serial": info.serial, "manufacturer": info.manufacturer, "model": info.model, "rehearsal": info.rehearsal}),
        ),
        (
            "sign-start",
            json!({"format": format.name(), "key": a.key, "key_fingerprint": hex::encode(key.public_key().fingerprint()), "inputs": a.inputs.len()}),
        ),
    ];
    if let Some(v) = approval {
        opening.push(("approval", v));
    }
    tr.append_all(opening)?;

    let mut note = |rs: &[SignRecord]| -> Result<(), signing::Error> {
        for r in rs {
            print_record(r, a.json);
        }
        let entries = rs
            .iter()
            .map(|r| ("signed", serde_json::to_value(r).unwrap_or_default()))
            .collect();
        tr.append_all(entries)
            .map_err(|e| signing::Error::Usage(format!("transcript: {e}")))
    };
    let result = match (&a.output, &a.out_dir) {
        (Some(out), _) => signing::sign_file(&mut key, format, &opts, &a.inputs[0], out)
            .map_err(|e| e.to_string())
            .and_then(|r| note(std::slice::from_ref(&r)).map_err(|e| e.to_string())),
        (None, Some(dir)) => {
            signing::sign_batch_with(&mut key, format, &opts, &a.inputs, dir, &mut note)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        (None, None) => Ok(()),
    };
    match result {
        Ok(()) => {
            tr.close("complete")?;
            Ok(())
        }
        Err(e) => {
            tr.append("sign-failed", json!({"error": e}))?;
            tr.close("stopped")?;
            Err(Failure(e))
        }
    }
}

pub fn verify(a: VerifyArgs) -> Outcome {
    let format = Format::parse(&a.format)?;
    let key = load_public_key(&a.pubkey).map_err(|e| Failure(format!("--pubkey {e}")))?;
    crate::keys::fitness::check(&key, format.key_use())
        .map_err(|e| Failure(format!("--pubkey {}: {e}", a.pubkey.display())))?;
    let report = signing::verify_file(
        format,
        &key,
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
