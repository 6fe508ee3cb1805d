//! `run`, `check` and `transcript verify`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Failure, Outcome};

#[derive(Args, Debug)]
pub struct RunArgs {
    pub script: PathBuf,
    #[arg(long, default_value = crate::hsm::uri::DEFAULT_BACKEND)]
    pub backend: String,
    #[arg(long)]
    pub answers: Option<PathBuf>,
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    pub script: PathBuf,
    #[arg(long)]
    pub backend: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TranscriptCommand {
    /// Check a transcript's hash chain.
    Verify { file: PathBuf },
}

pub fn run(a: RunArgs) -> Outcome {
    let _ = a;
    Err(Failure("run is not built yet".into()))
}

pub fn check(a: CheckArgs) -> Outcome {
    let _ = a;
    Err(Failure("check is not built yet".into()))
}

pub fn transcript(c: TranscriptCommand) -> Outcome {
    let _ = c;
    Err(Failure("transcript verify is not built yet".into()))
}
