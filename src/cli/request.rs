//! `officiant request create|approve`: signing requests for keys under an approval
//! policy (see [`crate::approvals`]). The request format, its checks and the ssh-agent
//! signature are `approvals`'; this module checks the flags against the token's policy,
//! writes the file (never over one) and prints.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{BackendArgs, Failure, Outcome};
use crate::approvals::request::KeyUse;
use crate::approvals::{agent, store, time, Request, APPROVAL_NAMESPACE};
use crate::formats::words::Fingerprint;
use crate::hsm::{self, BackendUri, UserType};
use crate::secret::SecretSource;

/// `officiant request …`.
#[derive(Subcommand, Debug)]
pub enum RequestCommand {
    /// Write a signing request for approvers to sign.
    Create(CreateArgs),
    /// Approve a request with a key in your ssh-agent (as ssh-keygen -Y sign would).
    Approve(ApproveArgs),
}

/// `officiant request create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The backend whose policy the request is checked against (and bound to).
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of a key to sign with (repeat for more keys).
    #[arg(long = "key", required = true)]
    pub keys: Vec<String>,
    /// Signatures each key may make under the request.
    #[arg(long)]
    pub max_uses: u64,
    /// How long the request stays valid: 60s, 15m, 2h, 7d.
    #[arg(long)]
    pub valid_for: String,
    /// What is to be signed, for the approvers (one line).
    #[arg(long)]
    pub description: String,
    /// The request file to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// `officiant request approve REQUEST`: needs no token, only an ssh-agent.
#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The request file.
    pub request: PathBuf,
    /// The public key (KEY.pub) to approve with, where the agent holds several.
    #[arg(long)]
    pub signer: Option<PathBuf>,
    /// Where to write the approval (default: REQUEST.sig, as ssh-keygen -Y sign).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

/// `officiant request create|approve`. `create` checks each key against the token's
/// policy, writes the request, and prints it, its SHA-256 (hex groups and PGP words),
/// who must approve each key and the `ssh-keygen -Y sign` line that approves it.
/// `approve` refuses an expired request, signs it with the agent's key and prints which
/// key wrote which file. Neither writes over an existing file.
pub fn run(c: RequestCommand) -> Outcome {
    match c {
        RequestCommand::Create(a) => create(a),
        RequestCommand::Approve(a) => approve(a),
    }
}

fn create(a: CreateArgs) -> Outcome {
    let valid_for =
        time::parse_duration(&a.valid_for).map_err(|e| Failure(format!("--valid-for: {e}")))?;
    if a.max_uses == 0 {
        return Err(Failure("--max-uses: must be at least 1".into()));
    }
    if a.output.symlink_metadata().is_ok() {
        return Err(crate::output::Error::Exists(a.output.clone()).into());
    }
    let uri = BackendUri::parse(&a.b.backend)?;
    let mut token = hsm::open(&uri, a.b.token.as_deref())
        .map_err(|e| Failure(format!("cannot open {uri}: {e}")))?;
    super::apply_auth_key(token.as_mut(), &a.b)?;
    if let Some(src) = &a.b.pin_source {
        let pin = SecretSource::parse(src)
            .and_then(|s| s.read("user PIN"))
            .map_err(|e| Failure(format!("--pin-source: {e}")))?;
        token.login(UserType::User, &pin)?;
    }
    let info = token.info()?;
    let stored = store::read_policy(token.as_mut())?.ok_or_else(|| {
        Failure(format!(
            "{uri} holds no approval policy (officiant policy set stores one); its keys sign without requests"
        ))
    })?;
    let mut keys = Vec::with_capacity(a.keys.len());
    for label in &a.keys {
        let rule = stored.policy.keys.get(label).ok_or_else(|| {
            Failure(format!(
                "--key {label:?}: no rule in the token's policy {}, so it signs without a request",
                stored.label
            ))
        })?;
        if let Some(m) = rule.max_uses.filter(|m| a.max_uses > *m) {
            return Err(Failure(format!(
                "--max-uses {}: the policy allows key {label:?} at most {m} uses per request",
                a.max_uses
            )));
        }
        token
            .public_key(label)
            .map_err(|e| Failure(format!("--key {label:?}: {e}")))?;
        keys.push(KeyUse {
            label: label.clone(),
            max_uses: a.max_uses,
        });
    }
    let req = Request::new(
        &info.serial,
        &info.label,
        &stored.sha256,
        keys,
        time::now(),
        valid_for,
        &a.description,
    )
    .map_err(Failure)?;
    let bytes = req.to_canonical();
    crate::output::write_new(&a.output, &bytes)?;
    let f = Fingerprint::of(&crate::output::sha256(&bytes));
    println!("{req}");
    println!(
        "request SHA-256: {}\n                 {}",
        f.groups, f.words
    );
    println!("wrote {}", a.output.display());
    for (label, rule) in req
        .keys
        .iter()
        .filter_map(|k| stored.policy.keys.get(&k.label).map(|r| (&k.label, r)))
    {
        if rule.quorum > 0 {
            println!(
                "key {label:?} needs {} of: {}",
                rule.quorum,
                rule.approvers.join(", ")
            );
        }
    }
    println!(
        "approve with: ssh-keygen -Y sign -f KEY -n {APPROVAL_NAMESPACE} {}   (or officiant request approve)",
        a.output.display()
    );
    Ok(())
}

fn approve(a: ApproveArgs) -> Outcome {
    let bytes = std::fs::read(&a.request)
        .map_err(|e| Failure(format!("{}: cannot read: {e}", a.request.display())))?;
    let req = Request::parse(&a.request.display().to_string(), &bytes)?;
    let now = time::now();
    if now > req.not_after_secs() {
        return Err(Failure(format!(
            "{}: request {} expired at {}; nothing to approve",
            a.request.display(),
            req.id,
            req.not_after
        )));
    }
    let out = a.output.clone().unwrap_or_else(|| {
        let mut p = a.request.clone().into_os_string();
        p.push(".sig");
        PathBuf::from(p)
    });
    if out.symlink_metadata().is_ok() {
        return Err(crate::output::Error::Exists(out).into());
    }
    let signer = match &a.signer {
        Some(p) => Some(
            ssh_key::PublicKey::read_openssh_file(p)
                .map_err(|e| Failure(format!("--signer {}: {e}", p.display())))?,
        ),
        None => None,
    };
    eprintln!("{req}");
    let socket = agent::socket_from_env()?;
    let sig = agent::sign(&socket, signer.as_ref(), APPROVAL_NAMESPACE, &bytes)?;
    crate::output::write_new(&out, agent::armor(&sig)?.as_bytes())?;
    println!(
        "approved request {} with {}: wrote {}",
        req.id,
        crate::approvals::signers::fingerprint(sig.public_key()),
        out.display()
    );
    Ok(())
}
