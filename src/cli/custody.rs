//! Key custody commands: `wrap-key generate`, `backup`, `restore`. Each calls the one
//! service in `crate::custody` and records itself in the transcript as a one-step run,
//! the same entries `one_step` writes (a share is never among them: the transcript gets
//! share indices, T, N, the share files' names and the wrap key's check value).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::token::{open, read_secret, transcript_path, Login};
use super::{BackendArgs, Failure, Outcome};
use crate::ceremony::engine::{CreatedObject, OutputFile, StepResult};
use crate::ceremony::transcript;
use crate::custody::{self, backup, restore, shamir, wrap_key, Logins};
use crate::formats::words::Fingerprint;
use crate::hsm::Token;
use crate::secret::{Secret, SecretSource};

/// `officiant wrap-key …`.
#[derive(Subcommand, Debug)]
pub enum WrapKeyCommand {
    /// Put a new AES-256 wrap key on the token and split it T-of-N into share files.
    Generate(WrapKeyGenerateArgs),
}

/// `officiant wrap-key generate`.
#[derive(Args, Debug)]
pub struct WrapKeyGenerateArgs {
    /// The backend; with `--pin-source` it logs in as the user (a YubiHSM: its auth key).
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the new wrap key (also names the share files).
    #[arg(long)]
    pub label: String,
    /// Object id, 4 hex digits (default: derived from the label).
    #[arg(long)]
    pub id: Option<String>,
    /// How many shares rebuild the key (at least 2).
    #[arg(long)]
    pub threshold: u8,
    /// How many shares to make, one per custodian (at most 255).
    #[arg(long)]
    pub shares: u8,
    /// Where the share files go (one per custodian, mode 0600).
    #[arg(long)]
    pub share_dir: PathBuf,
    /// SO PIN (PKCS#11 and the rehearsal token: only the SO may put a trusted wrap key).
    #[arg(long)]
    pub so_pin_source: Option<String>,
}

/// `officiant backup`.
#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The backend and the user PIN's source (required).
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the wrap key to export under.
    #[arg(long)]
    pub wrap_key: String,
    /// Label of a key to back up (repeat for several).
    #[arg(long = "key", required = true)]
    pub keys: Vec<String>,
    /// The backup directory (created): manifest.json and one wrapped file per key.
    #[arg(long)]
    pub out_dir: PathBuf,
}

/// `officiant restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The backend; its `--pin-source` is the user PIN the restore logs in with.
    #[command(flatten)]
    pub b: BackendArgs,
    /// Where a custodian's share comes from: env:NAME, file:PATH or prompt (repeat, at
    /// least T times).
    #[arg(long = "share-source", required = true)]
    pub share_sources: Vec<String>,
    /// The backup directory (manifest.json and the wrapped keys).
    #[arg(long)]
    pub in_dir: PathBuf,
    /// Leave the wrap key on the token afterwards (default: delete it).
    #[arg(long)]
    pub keep_wrap_key: bool,
    /// SO PIN (PKCS#11 and the rehearsal token: only the SO may put a trusted wrap key).
    #[arg(long)]
    pub so_pin_source: Option<String>,
}

/// Run `body` as step `kind` of a one-step transcript session on an opened token.
fn recorded(
    b: &BackendArgs,
    command: &str,
    kind: &str,
    login: Login,
    body: impl FnOnce(&mut dyn Token) -> Result<StepResult, Failure>,
) -> Result<StepResult, Failure> {
    let (uri, mut token) = open(b, None, login)?;
    let mut tr = transcript::Writer::open(&transcript_path(b))?;
    tr.append(
        "open",
        json!({"command": command, "backend": uri.to_string(), "officiant": env!("CARGO_PKG_VERSION")}),
    )?;
    let info = token.info()?;
    tr.append("token", crate::ceremony::runner::token_json(&info))?;
    tr.append(
        "step-start",
        json!({"step": 0, "id": kind, "kind": kind, "title": ""}),
    )?;
    match body(token.as_mut()) {
        Ok(r) => {
            tr.append(
                "step-done",
                json!({"step": 0, "id": kind, "kind": kind, "result": crate::ceremony::runner::result_json(&r)}),
            )?;
            tr.close("complete")?;
            Ok(r)
        }
        Err(e) => {
            tr.append("step-failed", json!({"step": 0, "id": kind, "error": e.0}))?;
            tr.close("stopped")?;
            Err(e)
        }
    }
}

fn optional_secret(
    flag: &str,
    src: &Option<String>,
    what: &str,
) -> Result<Option<Secret>, Failure> {
    src.as_deref()
        .map(|s| read_secret(flag, s, what))
        .transpose()
}

fn wrap_key_id(id: &Option<String>, label: &str) -> Result<u16, Failure> {
    match id {
        // As for other objects: derived from the label, so reruns name the same id.
        None => {
            let h = crate::output::sha256(label.as_bytes());
            Ok(u16::from_be_bytes([h[0], h[1]]))
        }
        Some(h) => crate::hsm::wrap::parse_wrap_key_id(h)
            .ok_or_else(|| Failure(format!("--id: {h:?} is not 4 hex digits"))),
    }
}

/// `officiant wrap-key generate`. Checks the flags and that no share file is in the
/// way, writes the share files, then puts the key on the token (a failure there removes
/// the share files again). Prints the key's id and check value and each share file.
pub fn wrap_key(c: WrapKeyCommand) -> Outcome {
    match c {
        WrapKeyCommand::Generate(a) => wrap_key_generate(a),
    }
}

fn wrap_key_generate(a: WrapKeyGenerateArgs) -> Outcome {
    let id = wrap_key_id(&a.id, &a.label)?;
    if a.threshold < 2 || a.threshold > a.shares {
        return Err(Failure(format!(
            "--threshold {} --shares {}: need 2 ≤ threshold ≤ shares ≤ 255",
            a.threshold, a.shares
        )));
    }
    if !a.share_dir.is_dir() {
        return Err(Failure(format!(
            "--share-dir {}: not a directory",
            a.share_dir.display()
        )));
    }
    // Refuse before the key exists if a share file is in the way.
    for i in 1..=a.shares {
        let p = wrap_key::share_file(&a.share_dir, &a.label, i, a.shares as usize);
        if p.symlink_metadata().is_ok() {
            return Err(Failure(format!(
                "--share-dir: {} exists; refusing to overwrite a share",
                p.display()
            )));
        }
    }
    let so = optional_secret("so-pin-source", &a.so_pin_source, "SO PIN")?;
    let mut files = Vec::new();
    let mut check = String::new();
    recorded(
        &a.b,
        "wrap-key generate",
        "generate-wrap-key",
        Login::IfGiven,
        |token| {
            let logins = Logins {
                user: None,
                so: so.as_ref(),
            };
            let fail = |e: custody::Error| Failure(e.to_string());
            // The shares are written before the token gets the key: a key on the token
            // always has its shares.
            let spec = wrap_key::plan(token, &a.label, id, a.threshold, a.shares).map_err(fail)?;
            let drawn = wrap_key::draw(&spec, a.threshold, a.shares, &[]).map_err(fail)?;
            files =
                wrap_key::write_share_files(&a.share_dir, &a.label, &drawn.shares).map_err(fail)?;
            if let Err(e) = drawn.put(token, &logins) {
                for f in &files {
                    let _ = std::fs::remove_file(f);
                }
                return Err(Failure(format!(
                    "{e}; the share files were removed again (nothing is on the token)"
                )));
            }
            let new = drawn.into_new();
            check = hex::encode(new.check_value);
            let share_files: Vec<serde_json::Value> = new
                .shares
                .iter()
                .zip(&files)
                .map(|(s, p)| json!({"index": s.index(), "file": p.display().to_string()}))
                .collect();
            Ok(StepResult {
                objects: vec![CreatedObject {
                    label: new.spec.label.clone(),
                    id: format!("{:04x}", new.spec.id),
                    class: "wrap key".into(),
                    key_type: "AES-256".into(),
                    public_key_sha256: None,
                }],
                details: json!({
                    "threshold": new.threshold,
                    "shares": new.shares.len(),
                    "share_indices": new.shares.iter().map(shamir::Share::index).collect::<Vec<_>>(),
                    "share_files": share_files,
                    "check_value": check,
                    "check_value_method": custody::manifest::CHECK_VALUE_METHOD,
                    "domains": new.spec.domains,
                    "capabilities": new.spec.capabilities,
                    "delegated_capabilities": new.spec.delegated_capabilities,
                }),
                ..StepResult::default()
            })
        },
    )?;
    println!(
        "wrap key {} (id {id:04x}) on the token; check value {check}",
        a.label
    );
    println!(
        "{} shares, any {} rebuild it, one file per custodian:",
        a.shares, a.threshold
    );
    for f in &files {
        println!("  {}", f.display());
    }
    Ok(())
}

/// `officiant backup`. Prints how many keys were backed up under which wrap key (its
/// check value) and each file written; a rerun after an interruption adopts the files
/// already written, and says so.
pub fn backup(a: BackupArgs) -> Outcome {
    let mut report = None;
    recorded(&a.b, "backup", "backup", Login::Required, |token| {
        let r = backup::backup(token, &a.wrap_key, &a.keys, &a.out_dir)
            .map_err(|e| Failure(e.to_string()))?;
        let result = StepResult {
            outputs: r
                .files
                .iter()
                .map(|f| OutputFile {
                    path: a.out_dir.join(&f.path).display().to_string(),
                    sha256: f.sha256.clone(),
                    adopted: f.adopted,
                })
                .collect(),
            details: json!({
                "wrap_key": r.manifest.wrap_key,
                "wrap_format": r.manifest.wrap_format,
                "keys": r.manifest.keys.iter().map(|k| json!({
                    "label": k.label, "id": k.id, "algorithm": k.algorithm,
                    "public_key_sha256": fingerprint(&k.public_key_sha256),
                    "file": k.file,
                })).collect::<Vec<_>>(),
            }),
            ..StepResult::default()
        };
        report = Some(r);
        Ok(result)
    })?;
    if let Some(r) = report {
        println!(
            "backed up {} key(s) under wrap key {} (check value {}) into {}:",
            r.manifest.keys.len(),
            r.manifest.wrap_key.label,
            r.manifest.wrap_key.check_value,
            a.out_dir.display()
        );
        for f in &r.files {
            println!(
                "  {}{}",
                f.path,
                if f.adopted {
                    " (from an earlier attempt)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}

fn fingerprint(hex_sha: &str) -> serde_json::Value {
    hex::decode(hex_sha)
        .ok()
        .and_then(|b| serde_json::to_value(Fingerprint::of(&b)).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// `officiant restore`. Reads every share first, rebuilds the wrap key and checks it
/// against the backup before anything is created, then restores each key and proves it
/// against its recorded public key. Prints the shares used, each key restored (or
/// already there) with its proof, and whether the wrap key was deleted.
pub fn restore(a: RestoreArgs) -> Outcome {
    // Secrets first: a custodian at a prompt should not wait on a token.
    let mut shares = Vec::new();
    for (n, src) in a.share_sources.iter().enumerate() {
        let s = SecretSource::parse(src).map_err(|e| Failure(format!("--share-source: {e}")))?;
        let what = format!("share {} of the custodians", n + 1);
        let text = s
            .read(&what)
            .map_err(|e| Failure(format!("--share-source {s}: {e}")))?;
        shares.push(
            shamir::Share::parse(&text, &format!("--share-source {s}"))
                .map_err(|e| Failure(e.to_string()))?,
        );
    }
    let user = optional_secret("pin-source", &a.b.pin_source, "user PIN")?;
    let so = optional_secret("so-pin-source", &a.so_pin_source, "SO PIN")?;
    let mut b = a.b.clone();
    b.pin_source = None;
    let mut report = None;
    recorded(&b, "restore", "restore", Login::No, |token| {
        let prep = restore::prepare(&a.in_dir, &shares).map_err(|e| Failure(e.to_string()))?;
        let logins = Logins {
            user: user.as_ref(),
            so: so.as_ref(),
        };
        let r = restore::restore(token, &logins, &prep, a.keep_wrap_key)
            .map_err(|e| Failure(e.to_string()))?;
        let result = StepResult {
            objects: r
                .keys
                .iter()
                .map(|k| CreatedObject {
                    label: k.label.clone(),
                    id: k.id.clone(),
                    class: "private key".into(),
                    key_type: k.algorithm.clone(),
                    public_key_sha256: Some(k.public_key_sha256.clone()),
                })
                .collect(),
            details: serde_json::to_value(&r).unwrap_or_default(),
            ..StepResult::default()
        };
        report = Some(r);
        Ok(result)
    })?;
    if let Some(r) = report {
        println!(
            "rebuilt wrap key {} from shares {:?} (check value {} matches the backup)",
            r.wrap_key_label, r.share_indices, r.check_value
        );
        for k in &r.keys {
            println!(
                "  {} {} id {}{}: {}",
                k.algorithm,
                k.label,
                k.id,
                if k.adopted { " (already there)" } else { "" },
                k.proof
            );
        }
        println!(
            "wrap key {}",
            if r.wrap_key_deleted {
                "deleted from the token"
            } else {
                "left on the token"
            }
        );
    }
    Ok(())
}
