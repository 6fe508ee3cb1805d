//! `run`, `check` and `transcript verify`.
//!
//! `run` is the headless face of the one ceremony runner (`ceremony::runner`): the same
//! runner the console's worker drives, with an answers file for its questions and a
//! line printed per step. Nothing here carries out a step, parses a script or checks a
//! transcript itself.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Failure, Outcome};
use crate::ceremony::custody::CustodyTurn;
use crate::ceremony::engine::{self, StepResult};
use crate::ceremony::evidence;
use crate::ceremony::inputs::{Answer, AnswersFile, Danger, Delivery, Inputs, Progress};
use crate::ceremony::people::Participant;
use crate::ceremony::runner::{self, RunOptions};
use crate::ceremony::script::Script;
use crate::formats::words::Fingerprint;
use crate::secret::Secret;

/// `officiant run SCRIPT`: the ceremony, headless.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The ceremony script (TOML).
    pub script: PathBuf,
    /// Backend URI: sim:DIR, pkcs11:…, yubihsm:…
    #[arg(long, default_value = crate::hsm::uri::DEFAULT_BACKEND)]
    pub backend: String,
    /// The answers file: what people would type at the console (sign-offs, secrets' sources, …).
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// Where the journal, transcript and output files go (a rerun resumes from its journal).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Print only the end (transcript and head), not a line per step.
    #[arg(long)]
    pub quiet: bool,
}

/// `officiant check SCRIPT`: parse and plan a script; open the backend only if given.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The ceremony script (TOML).
    pub script: PathBuf,
    /// Also check against this backend's capabilities (opens it; changes nothing).
    #[arg(long)]
    pub backend: Option<String>,
    /// Also check that the answers file has every answer the run needs.
    #[arg(long)]
    pub answers: Option<PathBuf>,
}

/// `officiant transcript …`.
#[derive(Subcommand, Debug)]
pub enum TranscriptCommand {
    /// Check a transcript: its hash chain, and what anchors it (the head from paper, the
    /// output files, the evidence key's signature, the run's status).
    Verify(VerifyTranscriptArgs),
}

/// `officiant transcript verify FILE`.
#[derive(Args, Debug)]
pub struct VerifyTranscriptArgs {
    /// The transcript (transcript.jsonl).
    pub file: PathBuf,
    /// The transcript head as read from paper: hex (in groups or not) or PGP words.
    #[arg(long)]
    pub head: Option<String>,
    /// Re-hash every output file the transcript records, in this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The evidence key's public key: check the signature over the head.
    #[arg(long)]
    pub pubkey: Option<PathBuf>,
    /// Accept a run that stopped or was interrupted (its status is still shown).
    #[arg(long)]
    pub allow_incomplete: bool,
}

/// `officiant run`. Prints a line per step (unless `--quiet`), then whether the ceremony
/// completed (or resumed, or was already complete), each output file, the transcript
/// and its head in hex, hex groups and PGP words, and the `transcript verify` command
/// that checks it. A step that fails or an answer missing stops the run (exit 1); the
/// journal lets the same command resume it.
pub fn run(a: RunArgs) -> Outcome {
    let opts = RunOptions {
        script: a.script,
        answers: a.answers,
        backend: a.backend,
        out: a.out,
    };
    let quiet = a.quiet;
    let s = runner::run_with_inputs(&opts, &crate::hsm::open, &mut |answers| {
        Box::new(Printed {
            inner: AnswersFile { answers },
            quiet,
            shown: Vec::new(),
        }) as Box<dyn Inputs + '_>
    })?;
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
    if let Ok(b) = hex::decode(&s.head) {
        let f = Fingerprint::of(&b);
        println!("  {}", f.groups);
        println!("  {}", f.words);
    }
    println!(
        "verify: officiant transcript verify {} --head {} --out {}",
        s.transcript.display(),
        s.head,
        opts.out.display()
    );
    Ok(())
}

/// The headless face: answers from the file, and a line per step as it starts and ends
/// (keys' fingerprints and fuse values with their PGP words) unless `quiet`.
struct Printed<'a> {
    inner: AnswersFile<'a>,
    quiet: bool,
    /// Each step's status as last printed.
    shown: Vec<engine::StepStatus>,
}

impl Inputs for Printed<'_> {
    fn roster(&mut self, script: &Script) -> Answer<Vec<Participant>> {
        self.inner.roster(script)
    }
    fn sign_off(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        have: usize,
        need: usize,
    ) -> Answer<String> {
        self.inner.sign_off(script, step, role, have, need)
    }
    fn signed_sign_off(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        have: usize,
        need: usize,
        ask: &crate::approvals::signoff::Ask,
    ) -> Answer<crate::approvals::signoff::Signed> {
        self.inner
            .signed_sign_off(script, step, role, have, need, ask)
    }
    fn confirm(&mut self, script: &Script, step: usize, danger: &Danger) -> Answer<()> {
        self.inner.confirm(script, step, danger)
    }
    fn secret(
        &mut self,
        script: &Script,
        step: usize,
        name: &str,
        sets: bool,
        retry: Option<&str>,
    ) -> Answer<Secret> {
        self.inner.secret(script, step, name, sets, retry)
    }
    fn acknowledge(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        result: &StepResult,
    ) -> Answer<String> {
        self.inner.acknowledge(script, step, role, result)
    }
    fn rejected(&mut self, script: &Script, step: usize, reason: &str) -> Answer<()> {
        self.inner.rejected(script, step, reason)
    }
    fn custodian(
        &mut self,
        script: &Script,
        step: usize,
        role: &str,
        turn: CustodyTurn,
        taken: &[String],
    ) -> Answer<String> {
        self.inner.custodian(script, step, role, turn, taken)
    }
    fn deliver_share(&mut self, script: &Script, step: usize, d: &Delivery<'_>) -> Answer<Secret> {
        let proof = self.inner.deliver_share(script, step, d);
        if !self.quiet && matches!(proof, Answer::Given(_)) {
            println!(
                "    share {} of {} written for {} (read back and checked)",
                d.share.index(),
                d.of,
                d.custodian
            );
        }
        proof
    }
    fn receive_share(
        &mut self,
        script: &Script,
        step: usize,
        custodian: &str,
        turn: CustodyTurn,
        retry: Option<&str>,
    ) -> Answer<Secret> {
        self.inner
            .receive_share(script, step, custodian, turn, retry)
    }
    fn delivered_share(
        &mut self,
        script: &Script,
        step: usize,
        index: u8,
        of: u8,
    ) -> Option<(String, Result<Secret, String>)> {
        self.inner.delivered_share(script, step, index, of)
    }
    fn progress(&mut self, script: &Script, p: Progress<'_>) {
        let Progress::State(state) = p else { return };
        if self.quiet {
            return;
        }
        let n = state.steps.len();
        self.shown.resize(n, engine::StepStatus::Pending);
        for (i, st) in state.steps.iter().enumerate() {
            if st.status == self.shown[i] {
                continue;
            }
            let id = &script.steps[i].id;
            let kind = script.steps[i].action.kind();
            match &st.status {
                engine::StepStatus::Running => println!("▶ step {}/{n} {id} ({kind})", i + 1),
                engine::StepStatus::Resumed => {
                    println!("↺ step {}/{n} {id}: done in an earlier run", i + 1)
                }
                engine::StepStatus::Done => {
                    println!("✓ step {}/{n} {id}", i + 1);
                    if let Some(r) = &st.result {
                        for l in result_lines(r) {
                            println!("    {l}");
                        }
                    }
                }
                engine::StepStatus::Failed(e) => println!("✗ step {}/{n} {id}: {e}", i + 1),
                engine::StepStatus::Pending => {}
            }
            self.shown[i] = st.status.clone();
        }
    }
}

/// A step's result as lines for a terminal: objects with their public key's SHA-256 in
/// hex groups and PGP words, fuse values likewise, output files with their SHA-256.
pub fn result_lines(r: &StepResult) -> Vec<String> {
    let mut out = Vec::new();
    let fp_lines = |out: &mut Vec<String>, what: &str, bytes: &[u8]| {
        let f = Fingerprint::of(bytes);
        out.push(format!("{what}: {}", f.groups));
        out.push(format!("{}  {}", " ".repeat(what.chars().count()), f.words));
    };
    if r.adopted {
        out.push("found already done (an interrupted run made it)".into());
    }
    for o in &r.objects {
        out.push(
            format!("{} {} id {} {}", o.class, o.label, o.id, o.key_type)
                .trim_end()
                .to_string(),
        );
        if let Some(b) = o
            .public_key_sha256
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
        {
            fp_lines(&mut out, "  public key SHA-256", &b);
        }
    }
    for (name, v) in [
        ("SRK fuse hash", &r.details["fuse"]),
        ("ROTPK hash", &r.details["rotpk"]),
        ("PKH", &r.details["pkh"]),
        ("PKHTH", &r.details["pkhth"]),
        ("policy SHA-256", &r.details["policy"]["sha256"]),
        ("co-signed transcript head", &r.details["co_signed_head"]),
    ] {
        if let Some(b) = v["hex"].as_str().and_then(|h| hex::decode(h).ok()) {
            fp_lines(&mut out, name, &b);
        }
    }
    for k in r.details["keys"].as_array().into_iter().flatten() {
        if let Some(b) = k["digest"]["hex"]
            .as_str()
            .and_then(|h| hex::decode(h).ok())
        {
            fp_lines(
                &mut out,
                &format!("{} digest", k["key"].as_str().unwrap_or("key")),
                &b,
            );
        }
    }
    for o in &r.outputs {
        out.push(format!("→ {}  SHA-256 {}", o.path, o.sha256));
    }
    if let Some(d) = r.deleted {
        out.push(format!("{d} object(s) deleted"));
    }
    for n in &r.notes {
        out.push(n.clone());
    }
    out
}

/// `officiant check`. Parses the script and plans every step (with `--answers`, also
/// that every answer is there; with `--backend`, also the backend's capabilities). On
/// success prints `SCRIPT: N steps, OK [for BACKEND]`; the first problem, naming its
/// field or step, is the error (exit 1). Writes nothing.
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

/// `officiant transcript verify`. Prints the evidence report line by line; exits 1 with
/// the problems joined on one line if the hash chain, the head, an output file, the
/// evidence signature or the run's status does not hold.
pub fn transcript(c: TranscriptCommand) -> Outcome {
    match c {
        TranscriptCommand::Verify(a) => {
            let head = a
                .head
                .as_deref()
                .map(crate::formats::words::parse)
                .transpose()
                .map_err(|e| Failure(format!("--head: {e}")))?;
            let pubkey = a
                .pubkey
                .as_deref()
                .map(crate::keys::load_public_key)
                .transpose()
                .map_err(|e| Failure(format!("--pubkey {e}")))?;
            let opts = evidence::Options {
                head,
                out: a.out,
                pubkey,
                allow_incomplete: a.allow_incomplete,
            };
            let report = evidence::verify(&a.file, &opts).map_err(|e| Failure(e.to_string()))?;
            for l in &report.lines {
                println!("{l}");
            }
            if report.problems.is_empty() {
                Ok(())
            } else {
                Err(Failure(format!(
                    "{}: {}",
                    a.file.display(),
                    report.problems.join("; ")
                )))
            }
        }
    }
}
