//! The one effect runner: the only place a ceremony does I/O (token calls, journal,
//! transcript, files, clock), for both faces.
//!
//! A [`Session`] is a ceremony ready to run in its out dir: the script checked, the out
//! dir locked for this process, the journal of an earlier run read. [`Session::run`]
//! drives the pure engine to the end, performing each effect; what differs between the
//! faces (sign-offs, confirmations, secrets, progress) comes through [`Inputs`]. The
//! headless `officiant run` ([`run`]) answers from the answers file; the console's worker
//! answers from the screen; the one-step commands ([`run_single`]) from their flags.
//!
//! The `Driver` that performs the engine's effects for one run is in
//! `driver/`; this file holds what sets a run up and what it leaves (the session, the
//! out dir's files, the transcript's JSON for a token and a result).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::answers::{self, Answers};
use super::engine::{Event, State, StepResult};
use super::inputs::{AnswersFile, Inputs};
use super::journal::{self, Journal, Memo};
use super::lock::{self, OutLock, TokenLock};
use super::plan;
use super::script::{self, Action, Script, ScriptError};
use super::transcript::{self, Writer};
use crate::formats::words::Fingerprint;
use crate::hsm::{self, BackendUri, Token};

pub use super::execute::{execute_step, StepContext, StepError, Vault};
pub use crate::output::crash_point;

mod driver;

use driver::Driver;

/// Why a run could not start or stopped; one line, naming the step, field or file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The script or answers file is refused (parse or plan).
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// Already names the step: `step[3] (gen-p256): …`.
    #[error("{0}")]
    Step(String),
    /// The run could not go on (the token, an input, the out dir); says why.
    #[error("{0}")]
    Run(String),
    /// The transcript could not be read or written.
    #[error(transparent)]
    Transcript(#[from] transcript::Error),
    /// The journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] journal::Error),
    /// The out dir could not be locked for this run.
    #[error(transparent)]
    Lock(#[from] lock::Error),
}

/// What `officiant run` is asked to run.
pub struct RunOptions {
    /// The ceremony script.
    pub script: PathBuf,
    /// The answers file (sign-offs, confirmations, secret sources).
    pub answers: Option<PathBuf>,
    /// The backend URI.
    pub backend: String,
    /// The out dir (outputs, transcript, journal).
    pub out: PathBuf,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The out dir held a finished run of this script: nothing ran.
    pub already_complete: bool,
    /// The run continued an interrupted one.
    pub resumed: bool,
    /// Every output file the script writes, in the out dir.
    pub outputs: Vec<PathBuf>,
    /// The transcript file.
    pub transcript: PathBuf,
    /// The transcript head (hex SHA-256 of the last entry): what the witnesses write down.
    pub head: String,
}

/// The transcript's file name in the out dir.
pub const TRANSCRIPT: &str = "transcript.jsonl";
/// The printable transcript's file name in the out dir.
pub const TRANSCRIPT_MD: &str = "transcript.md";
/// The journal's file name in the out dir.
pub const JOURNAL: &str = "journal.jsonl";

/// Parse and validate everything that needs no token: `officiant check` without a
/// backend, and the first thing `run` does.
pub fn prepare(
    script_path: &Path,
    answers_path: Option<&Path>,
) -> Result<(Script, plan::Plan, Option<Answers>), Error> {
    let s = script::load(script_path)?;
    let p = plan::check_script(&s)?;
    let a = match answers_path {
        Some(ap) => {
            let a = answers::load(ap)?;
            plan::check_answers(&s, &a)?;
            Some(a)
        }
        None => None,
    };
    Ok((s, p, a))
}

/// How a backend is opened: `hsm::open`, or a fake in tests.
pub type Opener<'a> = &'a dyn Fn(&BackendUri, Option<&str>) -> hsm::Result<Box<dyn Token>>;

/// Open the backend for a script and check the plan against it (before any step).
pub fn open_checked(
    script: &Script,
    plan: &plan::Plan,
    backend: &str,
    opener: Opener,
) -> Result<(BackendUri, Box<dyn Token>), Error> {
    let uri = BackendUri::parse(backend).map_err(|e| Error::Run(e.to_string()))?;
    let mut token = opener(&uri, Some(&script.ceremony.token))
        .map_err(|e| Error::Run(format!("cannot open {uri}: {e}")))?;
    check_against(script, plan, token.as_mut(), &uri.to_string())?;
    Ok((uri, token))
}

/// Check a script against an opened token: its capabilities, and the keys the script
/// uses but does not make.
pub fn check_against(
    script: &Script,
    plan: &plan::Plan,
    token: &mut dyn Token,
    uri: &str,
) -> Result<(), Error> {
    let caps = token
        .capabilities()
        .map_err(|e| Error::Run(format!("{uri}: {e}")))?;
    plan::check_capabilities(script, &caps, uri)?;
    if !plan.external_keys.is_empty() || plan.evidence_key_external.is_some() {
        let objects = token
            .list_objects()
            .map_err(|e| Error::Run(format!("{uri}: {e}")))?;
        plan::check_token(script, plan, &objects)?;
    }
    Ok(())
}

/// The headless run on the backend `opts.backend` names.
pub fn run(opts: &RunOptions) -> Result<Summary, Error> {
    run_with(opts, &hsm::open)
}

/// The headless run, opening the backend with `opener`: every input from the answers
/// file.
pub fn run_with(opts: &RunOptions, opener: Opener) -> Result<Summary, Error> {
    run_with_inputs(opts, opener, &mut |answers| {
        Box::new(AnswersFile { answers }) as Box<dyn Inputs + '_>
    })
}

/// The headless run with the inputs `make_inputs` builds over the answers file (a face
/// that prints progress wraps [`AnswersFile`]).
pub fn run_with_inputs(
    opts: &RunOptions,
    opener: Opener,
    make_inputs: &mut dyn for<'a> FnMut(&'a Answers) -> Box<dyn Inputs + 'a>,
) -> Result<Summary, Error> {
    let (script, plan, answers) = prepare(&opts.script, opts.answers.as_deref())?;
    let answers = match answers {
        Some(a) => a,
        None => {
            // No answers file: every need is missing; say which comes first.
            let a = Answers::default();
            plan::check_answers(&script, &a)?;
            a
        }
    };
    let session = Session::open(script, &opts.out)?;
    if session.is_complete() {
        return session.finish_complete();
    }
    let (uri, mut token) = open_checked(&session.script, &plan, &opts.backend, opener)?;
    let extra = json!({
        "answers": answers.path.as_ref().map(|p| p.display().to_string()),
        "answers_sha256": answers.sha256.map(hex::encode),
    });
    let mut inputs = make_inputs(&answers);
    session.run(token.as_mut(), &uri.to_string(), extra, inputs.as_mut())
}

/// A ceremony ready to run in its out dir: the out dir locked for this process (before
/// the journal is read), and what an earlier run of the same script left.
pub struct Session {
    /// The checked script.
    pub script: Script,
    /// The out dir, locked for this process while the session lives.
    pub out: PathBuf,
    /// What an earlier run of the script in this out dir left, if any.
    pub earlier: Option<journal::Loaded>,
    _lock: OutLock,
}

impl Session {
    /// Lock `out` and read its journal. Refuses an out dir that holds another script's
    /// run, or files and no journal.
    pub fn open(script: Script, out: &Path) -> Result<Self, Error> {
        let lock = OutLock::take(out)?;
        let script_hex = hex::encode(script.sha256);
        let earlier = journal::load(&out.join(JOURNAL))?;
        match &earlier {
            Some(l) if l.script_sha256 != script_hex => {
                return Err(Error::Run(format!(
                    "{} holds a run of a different script (SHA-256 {}, this script {}); use a new --out",
                    out.display(),
                    l.script_sha256,
                    script_hex
                )))
            }
            Some(_) => {}
            None => {
                // A run that died writing its first journal record (a full disk) leaves
                // a journal with no whole line: that is no run, and nothing else.
                let torn_first_record = |e: &std::fs::DirEntry| {
                    e.file_name() == JOURNAL
                        && std::fs::read(e.path()).is_ok_and(|b| !b.contains(&b'\n'))
                };
                let busy = std::fs::read_dir(out)
                    .map_err(|e| Error::Run(format!("{}: {e}", out.display())))?
                    .flatten()
                    .any(|e| !torn_first_record(&e));
                if busy {
                    return Err(Error::Run(format!(
                        "out dir {} is not empty and holds no journal of this run; use a new --out",
                        out.display()
                    )));
                }
            }
        }
        Ok(Session {
            script,
            out: out.to_path_buf(),
            earlier,
            _lock: lock,
        })
    }

    /// The journal says this ceremony already ran to the end here.
    pub fn is_complete(&self) -> bool {
        self.earlier.as_ref().is_some_and(|l| l.complete)
    }

    /// An earlier, interrupted run is resumed.
    pub fn resumed(&self) -> bool {
        self.earlier.is_some()
    }

    /// Steps an earlier run completed, and the one it was running when interrupted.
    pub fn resume_point(&self) -> (Vec<(usize, StepResult)>, Option<usize>) {
        self.earlier
            .as_ref()
            .map(|l| (l.completed.clone(), l.interrupted))
            .unwrap_or_default()
    }

    /// The engine's first event: what the journal says was done and acknowledged.
    pub fn start_event(&self) -> Event {
        let (completed, interrupted) = self.resume_point();
        Event::Start {
            completed,
            interrupted,
            acknowledged: self
                .earlier
                .as_ref()
                .map(|l| l.acknowledged.clone())
                .unwrap_or_default(),
        }
    }

    /// A complete run asked to run again: nothing to do but finish its closing steps
    /// (a run killed while writing transcript.md after the journal said complete).
    pub fn finish_complete(self) -> Result<Summary, Error> {
        remove_stale_temps(&self.script, &self.out);
        let transcript_path = self.out.join(TRANSCRIPT);
        let v = if self.out.join(TRANSCRIPT_MD).exists() {
            transcript::verify(&transcript_path)?
        } else {
            render_transcript_md(&self.out)?
        };
        Ok(Summary {
            already_complete: true,
            resumed: false,
            outputs: outputs_of(&self.script, &self.out),
            transcript: transcript_path,
            head: v.head,
        })
    }

    /// Run (or resume) the ceremony on `token`. `extra` adds fields to the transcript's
    /// opening entry (the answers file, the face).
    pub fn run(
        self,
        token: &mut dyn Token,
        backend: &str,
        extra: Value,
        inputs: &mut dyn Inputs,
    ) -> Result<Summary, Error> {
        if self.is_complete() {
            return self.finish_complete();
        }
        let out = self.out.clone();
        let resumed = self.resumed();
        if resumed {
            remove_stale_temps(&self.script, &out);
        }
        let mut journal = Journal::open(&out.join(JOURNAL))?;
        if !resumed {
            journal.append(&journal::Record::Run {
                script: self.script.path.display().to_string(),
                script_sha256: hex::encode(self.script.sha256),
            })?;
        }
        let transcript_path = out.join(TRANSCRIPT);
        let mut tr = Writer::open(&transcript_path)?;
        let mut open = open_entry(&self.script, backend, resumed, &tr);
        merge(&mut open, extra);
        tr.append("open", open)?;
        // Signed sign-offs are verified against the allowed signers as recorded here.
        if let Some(so) = &self.script.signoffs {
            let (_, text) = crate::approvals::signoff::load_signers(&so.allowed_signers)
                .map_err(|m| Error::Run(format!("ceremony.allowed-signers: {m}")))?;
            tr.append(
                "allowed-signers",
                json!({
                    "file": so.allowed_signers.display().to_string(),
                    "sha256": hex::encode(crate::output::sha256(text.as_bytes())),
                    "roles": so.roles,
                    "namespace": crate::approvals::SIGNOFF_NAMESPACE,
                    "text": text,
                }),
            )?;
        }
        let start = self.start_event();
        let memo = self
            .earlier
            .as_ref()
            .map(|l| l.memo.clone())
            .unwrap_or_default();
        let mut driver = Driver {
            script: &self.script,
            token,
            uri: backend,
            out: &out,
            journal: Some(&mut journal),
            memo,
            tr: &mut tr,
            vault: Vault::new(),
            last_use: BTreeMap::new(),
            inputs,
            signed_pending: None,
            token_locks: Some(Vec::new()),
        };
        let failure = driver.drive(start)?;
        if let Some(e) = failure {
            return Err(Error::Step(e));
        }
        crash_point();
        let v = render_transcript_md(&out)?;
        Ok(Summary {
            already_complete: false,
            resumed,
            outputs: outputs_of(&self.script, &out),
            transcript: transcript_path,
            head: v.head,
        })
    }
}

/// Run an in-memory script (a one-step command) on an open token, with its transcript
/// appended to `transcript` and its outputs in `out`; no journal, no out-dir lock, the token
/// locked as a ceremony locks it. Returns the last step's result.
pub fn run_single(
    script: &Script,
    token: &mut dyn Token,
    backend: &str,
    open: Value,
    transcript: &Path,
    out: &Path,
    inputs: &mut dyn Inputs,
) -> Result<StepResult, Error> {
    // A one-step command holds its token as a ceremony does: refused, before anything
    // is written, while another run has it.
    let info = token
        .info()
        .map_err(|e| Error::Run(format!("{backend}: {e}")))?;
    let locks: Vec<TokenLock> = TokenLock::take(&info)?.into_iter().collect();
    let mut tr = Writer::open(transcript)?;
    tr.append("open", open)?;
    let mut driver = Driver {
        script,
        token,
        uri: backend,
        out,
        journal: None,
        memo: Memo::default(),
        tr: &mut tr,
        vault: Vault::new(),
        last_use: BTreeMap::new(),
        inputs,
        signed_pending: None,
        token_locks: Some(locks),
    };
    let mut state = State::new(script);
    if let Some(e) = driver.drive_state(
        &mut state,
        Event::Start {
            completed: vec![],
            interrupted: None,
            acknowledged: vec![],
        },
    )? {
        return Err(Error::Step(e));
    }
    Ok(state
        .steps
        .last()
        .and_then(|s| s.result.clone())
        .unwrap_or_default())
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(o), Value::Object(e)) = (into.as_object_mut(), extra) {
        o.extend(e);
    }
}

/// The transcript's first entry of a run session: what was run, where, by which version.
pub fn open_entry(script: &Script, backend: &str, resumed: bool, tr: &Writer) -> Value {
    json!({
        "script": script.path.display().to_string(),
        "script_sha256": hex::encode(script.sha256),
        "answers": Value::Null,
        "answers_sha256": Value::Null,
        "officiant": env!("CARGO_PKG_VERSION"),
        "backend": backend,
        "ceremony": {
            "id": script.ceremony.id,
            "title": script.ceremony.title,
            "purpose": script.ceremony.purpose,
            "version": script.ceremony.version,
            "token": script.ceremony.token,
        },
        "roles": script.roles,
        "resumed": resumed,
        "torn_tail_discarded": tr.torn_tail_discarded,
    })
}

/// What the progress line says while step `i` runs.
pub fn busy_text(script: &Script, i: usize) -> String {
    let st = &script.steps[i];
    match &st.action {
        Action::InitToken(_) => format!("Initializing token {:?}", script.ceremony.token),
        Action::Login(l) => format!("Logging in as {}", l.user),
        Action::ChangePin(c) => format!("Changing the {} PIN", c.user),
        Action::GenerateKey(g) => format!(
            "Generating the {} key {:?} on the token",
            g.algorithm, g.label
        ),
        Action::ImportKey(k) => format!("Importing {:?}", k.label),
        Action::GenerateWrapKey(g) => {
            format!("Making wrap key {:?} and its {} shares", g.label, g.shares)
        }
        Action::Backup(b) => format!("Backing up {} key(s) under {:?}", b.keys.len(), b.wrap_key),
        Action::Restore(r) => format!("Restoring the backup in {}", r.backup_dir.display()),
        _ => format!("Running {} ({})", st.id, st.action.kind()),
    }
}

/// Verify the closed transcript in `out` and write its printable `transcript.md`.
pub fn render_transcript_md(out: &Path) -> Result<transcript::Verified, Error> {
    let v = transcript::verify(&out.join(TRANSCRIPT))?;
    crate::output::write_new(
        &out.join(TRANSCRIPT_MD),
        transcript::render_markdown(&v).as_bytes(),
    )
    .map_err(|e| Error::Run(e.to_string()))?;
    Ok(v)
}

/// A run killed inside `output::write_new` leaves `.NAME.tmp-PID`; the final name never
/// holds a partial file, so the temp file is only litter. Only our own outputs' temp
/// names are removed.
pub fn remove_stale_temps(script: &Script, out: &Path) {
    let mut names: Vec<String> = script
        .steps
        .iter()
        .flat_map(|s| s.action.outputs())
        .map(|(_, n)| n.to_string())
        .collect();
    names.push(TRANSCRIPT_MD.into());
    let Ok(rd) = std::fs::read_dir(out) else {
        return;
    };
    for e in rd.flatten() {
        let f = e.file_name().to_string_lossy().into_owned();
        let ours = names.iter().any(|n| f.starts_with(&format!(".{n}.tmp-")));
        if ours {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The token's entry in the transcript: label, serial, maker, model, initialized, rehearsal
/// (the same for every face).
pub fn token_json(info: &hsm::TokenInfo) -> Value {
    json!({
        "label": info.label,
        "serial": info.serial,
        "manufacturer": info.manufacturer,
        "model": info.model,
        "initialized": info.initialized,
        "rehearsal": info.rehearsal,
    })
}

fn outputs_of(script: &Script, out: &Path) -> Vec<PathBuf> {
    script
        .steps
        .iter()
        .flat_map(|s| s.action.outputs())
        .map(|(_, n)| out.join(n))
        .collect()
}

/// A result with each fingerprint also as hex groups and PGP words, for the witnesses.
pub fn result_json(r: &StepResult) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Some(objs) = v.get_mut("objects").and_then(Value::as_array_mut) {
        for o in objs {
            let fp = o
                .get("public_key_sha256")
                .and_then(Value::as_str)
                .and_then(|h| hex::decode(h).ok());
            if let Some(b) = fp {
                o["fingerprint"] = serde_json::to_value(Fingerprint::of(&b)).unwrap_or(Value::Null);
            }
        }
    }
    v
}
