//! `run`, `check` and `transcript verify`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Failure, Outcome};
use crate::ceremony::runner::{self, RunOptions};
use crate::ceremony::transcript;

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
    /// Also check against this backend's capabilities (opens it; changes nothing).
    #[arg(long)]
    pub backend: Option<String>,
    /// Also check that the answers file has every answer the run needs.
    #[arg(long)]
    pub answers: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum TranscriptCommand {
    /// Check a transcript's hash chain.
    Verify { file: PathBuf },
}

pub fn run(a: RunArgs) -> Outcome {
    let opts = RunOptions {
        script: a.script,
        answers: a.answers,
        backend: a.backend,
        out: a.out,
    };
    let s = runner::run(&opts)?;
    if s.already_complete {
        println!("ceremony already complete in {}", opts.out.display());
    } else if s.resumed {
        println!("ceremony resumed and complete");
    } else {
        println!("ceremony complete");
    }
    for o in &s.outputs {
        println!("output      {}", o.display());
    }
    println!("transcript  {}", s.transcript.display());
    println!("transcript head (SHA-256 of the last entry): {}", s.head);
    Ok(())
}

pub fn check(a: CheckArgs) -> Outcome {
    let (script, plan, _) = runner::prepare(&a.script, a.answers.as_deref())?;
    if let Some(b) = &a.backend {
        runner::open_checked(&script, &plan, b, &crate::hsm::open)?;
    }
    println!(
        "{}: {} steps, OK{}",
        a.script.display(),
        script.steps.len(),
        a.backend
            .as_deref()
            .map(|b| format!(" for {}", crate::hsm::uri::redact(b)))
            .unwrap_or_default()
    );
    Ok(())
}

pub fn transcript(c: TranscriptCommand) -> Outcome {
    match c {
        TranscriptCommand::Verify { file } => {
            let v = transcript::verify(&file).map_err(|e| Failure(e.to_string()))?;
            println!(
                "{}: OK, {} entries, head {}",
                file.display(),
                v.entries.len(),
                v.head
            );
            Ok(())
        }
    }
}
