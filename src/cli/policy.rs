//! `officiant policy set|show`: the approval policy on the token (see
//! [`crate::approvals`]). Parsing, storing and reading the policy are
//! `approvals::policy` and `approvals::store`; this module logs in, records `set` in the
//! transcript and prints.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{BackendArgs, Failure, Outcome};
use crate::approvals::store::{self, StoredPolicy};
use crate::approvals::Policy;
use crate::ceremony::transcript;
use crate::formats::words::Fingerprint;
use crate::hsm::{self, BackendUri, Token, UserType};
use crate::secret::SecretSource;

/// `officiant policy …`.
#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Store a policy on the token (as the SO; on a YubiHSM, an admin authentication key).
    Set(SetArgs),
    /// Show the policy the token holds.
    Show(ShowArgs),
}

/// `officiant policy set`.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// The backend; on a YubiHSM, `--auth-key` and `--pin-source` of an admin key.
    #[command(flatten)]
    pub b: BackendArgs,
    /// The policy file (TOML; it names its allowed signers file).
    #[arg(long)]
    pub policy: PathBuf,
    /// Where the SO PIN comes from (PKCS#11 and sim): env:NAME, file:PATH or prompt.
    #[arg(long)]
    pub so_pin_source: Option<String>,
}

/// `officiant policy show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The backend; with `--pin-source` it logs in first.
    #[command(flatten)]
    pub b: BackendArgs,
    /// Also write the approvers' keys as an allowed signers file (for ssh-keygen -Y verify).
    #[arg(long)]
    pub export_signers: Option<PathBuf>,
    /// Print one JSON object (version, SHA-256, rules, allowed signers, token).
    #[arg(long)]
    pub json: bool,
}

fn open(b: &BackendArgs) -> Result<(BackendUri, Box<dyn Token>), Failure> {
    let uri = BackendUri::parse(&b.backend)?;
    let mut token = hsm::open(&uri, b.token.as_deref())
        .map_err(|e| Failure(format!("cannot open {uri}: {e}")))?;
    super::apply_auth_key(token.as_mut(), b)?;
    Ok((uri, token))
}

fn read(flag: &str, src: &str, what: &str) -> Result<crate::secret::Secret, Failure> {
    SecretSource::parse(src)
        .and_then(|s| s.read(what))
        .map_err(|e| Failure(format!("--{flag}: {e}")))
}

fn print_policy(s: &StoredPolicy, token_label: &str, serial: &str) {
    let f = Fingerprint::of(&s.sha256);
    println!(
        "policy {} on token {token_label:?} (serial {serial})",
        s.label
    );
    println!("policy SHA-256: {}\n                {}", f.groups, f.words);
    for (label, rule) in &s.policy.keys {
        println!("key {label:?}: {}", rule.describe());
    }
    for e in &s.policy.signers.entries {
        println!(
            "approver {} {} {}",
            e.principals,
            e.key.algorithm().as_str(),
            e.fingerprint()
        );
    }
}

/// `officiant policy set|show`. `set` checks the policy file before touching the token,
/// logs in as the SO (a YubiHSM: an admin auth key), stores the next version, records
/// it in the transcript and prints it (label, SHA-256 in hex groups and PGP words, each
/// rule and approver); it warns on stderr when the token cannot protect the object.
/// `show` prints the same, or fails (exit 1) when the token holds no policy.
pub fn run(c: PolicyCommand) -> Outcome {
    match c {
        PolicyCommand::Set(a) => set(a),
        PolicyCommand::Show(a) => show(a),
    }
}

fn set(a: SetArgs) -> Outcome {
    // A bad policy file fails before the token is touched.
    let policy = Policy::load(&a.policy)?;
    let (uri, mut token) = open(&a.b)?;
    // Writing the next policy version: no other run on this token meanwhile.
    let _held = crate::ceremony::lock::TokenLock::take(&token.info()?)
        .map_err(|e| Failure(e.to_string()))?;
    if token.capabilities()?.auth_keys {
        if a.so_pin_source.is_some() {
            return Err(Failure(
                "--so-pin-source: a YubiHSM 2 has no SO; log in with an administrative key: --auth-key ID --pin-source SRC".into(),
            ));
        }
        let src =
            a.b.pin_source.as_deref().ok_or_else(|| {
                Failure("policy set on a YubiHSM 2 logs in with an administrative authentication key: give --auth-key ID --pin-source SRC".into())
            })?;
        let pw = read("pin-source", src, "authentication key password")?;
        token.login(UserType::User, &pw)?;
    } else {
        if a.b.pin_source.is_some() {
            return Err(Failure(
                "policy set logs in as the SO: give --so-pin-source, not --pin-source".into(),
            ));
        }
        let src = a.so_pin_source.as_deref().ok_or_else(|| {
            Failure(
                "policy set logs in as the SO: give --so-pin-source env:NAME, file:PATH or prompt"
                    .into(),
            )
        })?;
        let so = read("so-pin-source", src, "SO PIN")?;
        token.login(UserType::So, &so)?;
    }
    let caps = token.capabilities()?;
    if !caps.data_objects {
        return Err(Failure(format!(
            "{uri} cannot store data objects, so it cannot hold a policy"
        )));
    }
    let info = token.info()?;
    let tpath =
        a.b.transcript
            .clone()
            .unwrap_or_else(|| PathBuf::from("officiant-transcript.jsonl"));
    let mut tr = transcript::Writer::open(&tpath)?;
    tr.append_all(vec![
        (
            "open",
            json!({"command": "policy set", "backend": uri.to_string(), "officiant": env!("CARGO_PKG_VERSION")}),
        ),
        (
            "token",
            crate::ceremony::runner::token_json(&info),
        ),
    ])?;
    match store::write_policy(token.as_mut(), &policy) {
        Ok(s) => {
            let keys: serde_json::Map<String, serde_json::Value> = s
                .policy
                .keys
                .iter()
                .map(|(k, r)| (k.clone(), json!(r)))
                .collect();
            tr.append(
                "policy-set",
                json!({"label": s.label, "version": s.version, "sha256": hex::encode(s.sha256), "immutable": s.immutable, "keys": keys, "allowed_signers": s.policy.signers_text}),
            )?;
            tr.close("complete")?;
            print_policy(&s, &info.label, &info.serial);
            if s.immutable {
                println!("the token keeps this policy from being modified or destroyed");
            } else {
                eprintln!(
                    "warning: {uri} cannot keep the policy object from deletion: any key or session allowed to delete data objects can replace it"
                );
            }
            Ok(())
        }
        Err(e) => {
            tr.append("policy-set-failed", json!({"error": e.to_string()}))?;
            tr.close("stopped")?;
            Err(Failure(e.to_string()))
        }
    }
}

fn show(a: ShowArgs) -> Outcome {
    let (uri, mut token) = open(&a.b)?;
    if let Some(src) = &a.b.pin_source {
        let pin = read("pin-source", src, "user PIN")?;
        token.login(UserType::User, &pin)?;
    }
    let info = token.info()?;
    let Some(s) = store::read_policy(token.as_mut())? else {
        return Err(Failure(format!(
            "{uri} holds no approval policy (officiant policy set stores one); its keys sign without requests"
        )));
    };
    if let Some(p) = &a.export_signers {
        crate::output::write_new(p, s.policy.signers_text.as_bytes())?;
        eprintln!("wrote the approvers' keys to {}", p.display());
    }
    if a.json {
        let v = json!({
            "label": s.label,
            "version": s.version,
            "sha256": hex::encode(s.sha256),
            "immutable": s.immutable,
            "keys": s.policy.keys,
            "allowed_signers": s.policy.signers_text,
            "token": {"label": info.label, "serial": info.serial},
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_policy(&s, &info.label, &info.serial);
    }
    Ok(())
}
