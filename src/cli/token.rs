//! One-step token commands: each runs the same step the engine runs in a ceremony.

use std::path::PathBuf;

use clap::Args;

use super::{BackendArgs, Failure, Outcome};

#[derive(Args, Debug)]
pub struct InitTokenArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    #[arg(long)]
    pub label: String,
    #[arg(long)]
    pub so_pin_source: String,
}

#[derive(Args, Debug)]
pub struct ChangePinArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    /// user or so
    #[arg(long, default_value = "user")]
    pub user: String,
    #[arg(long)]
    pub old_pin_source: String,
    #[arg(long)]
    pub new_pin_source: String,
}

#[derive(Args, Debug)]
pub struct GenerateKeyArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    #[arg(long)]
    pub label: String,
    /// Object id in hex.
    #[arg(long)]
    pub id: Option<String>,
    #[arg(long)]
    pub algorithm: String,
}

#[derive(Args, Debug)]
pub struct ImportKeyArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    #[arg(long)]
    pub label: String,
    #[arg(long)]
    pub id: Option<String>,
    #[arg(long)]
    pub key_file: PathBuf,
    #[arg(long)]
    pub passphrase_source: Option<String>,
}

#[derive(Args, Debug)]
pub struct WriteObjectArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    #[arg(long)]
    pub label: String,
    #[arg(long)]
    pub id: Option<String>,
    /// cert or data
    #[arg(long = "type")]
    pub kind: String,
    #[arg(long)]
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct DeleteObjectArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    #[arg(long)]
    pub label: String,
    /// private, public, cert, data (default: every object with the label)
    #[arg(long = "type")]
    pub kind: Option<String>,
}

#[derive(Args, Debug)]
pub struct ObjectsArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ExportPubkeyArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    #[arg(long)]
    pub key: String,
    #[arg(long)]
    pub der: bool,
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

fn todo() -> Outcome {
    Err(Failure("not built yet".into()))
}

pub fn init_token(_a: InitTokenArgs) -> Outcome {
    todo()
}
pub fn change_pin(_a: ChangePinArgs) -> Outcome {
    todo()
}
pub fn generate_key(_a: GenerateKeyArgs) -> Outcome {
    todo()
}
pub fn import_key(_a: ImportKeyArgs) -> Outcome {
    todo()
}
pub fn write_object(_a: WriteObjectArgs) -> Outcome {
    todo()
}
pub fn delete_object(_a: DeleteObjectArgs) -> Outcome {
    todo()
}
pub fn objects(_a: ObjectsArgs) -> Outcome {
    todo()
}
pub fn export_pubkey(_a: ExportPubkeyArgs) -> Outcome {
    todo()
}
