//! The command line (DESIGN.md's contract). Parsing here; each family of commands has its
//! own handler module. Handlers return a one-line error; `main` prints it and exits 1.
//!
//! What it owns: the flags, reading each secret from its source (`env:`, `file:`,
//! `prompt`; never from argv), and what a command prints. What it must not do: the
//! work itself. A token step runs in the ceremony runner (one-step commands build a
//! one-step script, [`token`]), signing in `signing::recorded`, fuse values in
//! `formats`, backups in `custody`, requests in `approvals`; the console (no
//! subcommand) is `tui`'s.

pub mod custody;
pub mod fuses;
pub mod policy;
pub mod request;
pub mod run;
pub mod sign;
pub mod tbbr;
pub mod token;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// A command's failure: one line for stderr.
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

/// What every command handler returns. `Ok`: exit status 0. `Err`: `main` prints
/// `officiant: CAUSE` on stderr and exits 1.
pub type Outcome = Result<(), Failure>;

/// The whole command line: the console's flags, or a subcommand.
// One paragraph only: a second one would become the long `--help` text instead of `about`.
#[derive(Parser, Debug)]
#[command(
    name = "officiant",
    version,
    about = "HSM key ceremonies: scripted, witnessed, replayable"
)]
pub struct Cli {
    /// Backend for the console (default: sim:./rehearsal).
    #[arg(long, global = false)]
    pub backend: Option<String>,
    /// Console: where each ceremony's journal, transcript and outputs go (`DIR/<id>`).
    #[arg(long, global = false, default_value = "out")]
    pub out: PathBuf,
    /// Console: where the ceremony scripts are listed from.
    #[arg(long, global = false, default_value = "ceremonies")]
    pub ceremonies: PathBuf,
    /// Console: where the Approvals screen reads signing requests from.
    #[arg(long, global = false, default_value = "requests")]
    pub requests: PathBuf,
    /// The subcommand; none opens the console.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The flags every token command shares (flattened into each): which backend and token,
/// how to log in, and which transcript the command appends to.
#[derive(Args, Debug, Clone)]
pub struct BackendArgs {
    /// Backend URI: sim:DIR, pkcs11:…, yubihsm:…
    #[arg(long, default_value = crate::hsm::uri::DEFAULT_BACKEND)]
    pub backend: String,
    /// Where the user PIN (YubiHSM: password) comes from: env:NAME, file:PATH or prompt.
    #[arg(long)]
    pub pin_source: Option<String>,
    /// YubiHSM authentication key id.
    #[arg(long)]
    pub auth_key: Option<u16>,
    /// Token label, where the backend URI names none.
    #[arg(long)]
    pub token: Option<String>,
    /// Transcript file to append to (default: ./officiant-transcript.jsonl).
    #[arg(long)]
    pub transcript: Option<PathBuf>,
}

/// Every subcommand; each variant's doc is its line in `officiant --help`, and
/// [`dispatch`] sends it to its handler.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a ceremony script headless.
    Run(run::RunArgs),
    /// Parse and validate a ceremony script; touch nothing.
    Check(run::CheckArgs),
    /// Initialize a token (label, SO PIN, user PIN).
    InitToken(token::InitTokenArgs),
    /// Change the user or SO PIN.
    ChangePin(token::ChangePinArgs),
    /// Generate a signing key pair on the token.
    GenerateKey(token::GenerateKeyArgs),
    /// Import a private key from a file (PKCS#8, encrypted PKCS#8, PKCS#1, SEC1).
    ImportKey(token::ImportKeyArgs),
    /// Store a certificate or data object.
    WriteObject(token::WriteObjectArgs),
    /// Delete objects by label.
    DeleteObject(token::DeleteObjectArgs),
    /// List the token's objects.
    Objects(token::ObjectsArgs),
    /// Export a key's public half (PEM, or DER with --der).
    #[command(name = "export-pubkey", alias = "export-public-key")]
    ExportPubkey(token::ExportPubkeyArgs),
    /// Compute fuse/OTP values from public keys or certificates (no token needed).
    #[command(subcommand)]
    Fuses(fuses::FusesCommand),
    /// Sign payloads with a key on the token.
    Sign(sign::SignArgs),
    /// Verify a signed image or a detached signature against a public key.
    Verify(sign::VerifyArgs),
    /// Arm TF-A: the TBBR certificate chain (cert_create's), signed by keys on the token.
    TfaTbbr(tbbr::TfaTbbrArgs),
    /// Transcript tools.
    #[command(subcommand)]
    Transcript(run::TranscriptCommand),
    /// Wrap keys for backup, split among custodians.
    #[command(subcommand)]
    WrapKey(custody::WrapKeyCommand),
    /// Export keys under a wrap key into a backup directory.
    Backup(custody::BackupArgs),
    /// Restore a backup onto a token from the custodians' shares.
    Restore(custody::RestoreArgs),
    /// The approval policy on the token: which keys need whose approval.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Signing requests for keys under an approval policy.
    #[command(subcommand)]
    Request(request::RequestCommand),
}

/// Run the parsed command line.
pub fn dispatch(cli: Cli) -> Outcome {
    match cli.command {
        None => crate::tui::run_console_with(
            cli.backend.as_deref(),
            &cli.ceremonies,
            &cli.out,
            &cli.requests,
        )
        .map_err(Failure::from),
        Some(Command::Run(a)) => run::run(a),
        Some(Command::Check(a)) => run::check(a),
        Some(Command::Transcript(c)) => run::transcript(c),
        Some(Command::InitToken(a)) => token::init_token(a),
        Some(Command::ChangePin(a)) => token::change_pin(a),
        Some(Command::GenerateKey(a)) => token::generate_key(a),
        Some(Command::ImportKey(a)) => token::import_key(a),
        Some(Command::WriteObject(a)) => token::write_object(a),
        Some(Command::DeleteObject(a)) => token::delete_object(a),
        Some(Command::Objects(a)) => token::objects(a),
        Some(Command::ExportPubkey(a)) => token::export_pubkey(a),
        Some(Command::Fuses(c)) => fuses::run(c),
        Some(Command::Sign(a)) => sign::sign(a),
        Some(Command::Verify(a)) => sign::verify(a),
        Some(Command::TfaTbbr(a)) => tbbr::tfa_tbbr(a),
        Some(Command::WrapKey(c)) => custody::wrap_key(c),
        Some(Command::Backup(a)) => custody::backup(a),
        Some(Command::Restore(a)) => custody::restore(a),
        Some(Command::Policy(c)) => policy::run(c),
        Some(Command::Request(c)) => request::run(c),
    }
}

/// `--auth-key` selects the YubiHSM authentication key the PIN source's password belongs
/// to; other backends have no such thing and refuse it rather than ignore it.
pub(crate) fn apply_auth_key(
    token: &mut dyn crate::hsm::Token,
    b: &BackendArgs,
) -> Result<(), Failure> {
    if let Some(id) = b.auth_key {
        token.use_auth_key(id).map_err(|_| {
            Failure(format!(
                "--auth-key {id}: only yubihsm: backends have authentication keys"
            ))
        })?;
    }
    Ok(())
}
