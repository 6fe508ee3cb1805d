//! `officiant sign` and `officiant verify`.

use std::path::PathBuf;

use clap::Args;

use super::{BackendArgs, Failure, Outcome};

#[derive(Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    #[arg(long)]
    pub key: String,
    #[arg(long)]
    pub format: String,
    pub inputs: Vec<PathBuf>,
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[arg(long)]
    pub format: String,
    #[arg(long)]
    pub pubkey: PathBuf,
    pub input: PathBuf,
    pub signature: Option<PathBuf>,
}

pub fn sign(a: SignArgs) -> Outcome {
    let _ = a;
    Err(Failure("sign is not built yet".into()))
}

pub fn verify(a: VerifyArgs) -> Outcome {
    let _ = a;
    Err(Failure("verify is not built yet".into()))
}
