//! The one effect runner: the only place a ceremony does I/O (token calls, journal,
//! transcript, files, clock), for both faces.
//!
//! A [`Session`] is a ceremony ready to run in its out dir: the script checked, the out
//! dir locked for this process, the journal of an earlier run read. [`Session::run`]
//! drives the pure engine to the end, performing each effect; what differs between the
//! faces (sign-offs, confirmations, secrets, progress) comes through [`Inputs`]. The
//! headless `officiant run` ([`run`]) answers from the answers file; the console's worker
//! answers from the screen; the one-step commands ([`run_single`]) from their flags.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::answers::{self, Answers};
use super::custodians::Desk;
use super::custody::Halt;
use super::engine::{self, Effect, Event, Record, State, StepResult, StepStatus};
use super::inputs::{Answer, AnswersFile, Danger, Inputs, Progress};
use super::journal::{self, Journal, Memo, StepLog};
use super::lock::{self, OutLock};
use super::people;
use super::people::Participant;
use super::plan;
use super::script::{self, Action, Script, ScriptError};
use super::transcript::{self, Writer};
use crate::formats::words::Fingerprint;
use crate::hsm::{self, BackendUri, Token};

pub use super::execute::{execute_step, StepContext, StepError, Vault};
pub use crate::output::crash_point;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// Already names the step: `step[3] (gen-p256): …`.
    #[error("{0}")]
    Step(String),
    #[error("{0}")]
    Run(String),
    #[error(transparent)]
    Transcript(#[from] transcript::Error),
    #[error(transparent)]
    Journal(#[from] journal::Error),
    #[error(transparent)]
    Lock(#[from] lock::Error),
}

pub struct RunOptions {
    pub script: PathBuf,
    pub answers: Option<PathBuf>,
    pub backend: String,
    pub out: PathBuf,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    pub already_complete: bool,
    pub resumed: bool,
    pub outputs: Vec<PathBuf>,
    pub transcript: PathBuf,
    pub head: String,
}

pub const TRANSCRIPT: &str = "transcript.jsonl";
pub const TRANSCRIPT_MD: &str = "transcript.md";
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
    pub script: Script,
    pub out: PathBuf,
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
/// appended to `transcript` and its outputs in `out`; no journal, no out-dir lock. Returns
/// the last step's result.
pub fn run_single(
    script: &Script,
    token: &mut dyn Token,
    backend: &str,
    open: Value,
    transcript: &Path,
    out: &Path,
    inputs: &mut dyn Inputs,
) -> Result<StepResult, Error> {
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

/// Performs the engine's effects for one run.
struct Driver<'r> {
    script: &'r Script,
    token: &'r mut dyn Token,
    uri: &'r str,
    out: &'r Path,
    journal: Option<&'r mut Journal>,
    /// What the journal proves so far (earlier runs' records and this run's).
    memo: Memo,
    tr: &'r mut Writer,
    /// Secret values by name; the engine only ever sees the names.
    vault: Vault,
    /// Per secret name, the last step of this run that needs its value: once that step
    /// is done the value leaves the vault (and is zeroized).
    last_use: BTreeMap<String, usize>,
    inputs: &'r mut dyn Inputs,
    /// A verified signed sign-off the engine has yet to record: (step, role, name, what
    /// the transcript entry adds).
    signed_pending: Option<(usize, String, String, Value)>,
}

impl Driver<'_> {
    /// Drive the engine from `start` to its end; `Some(error)` when the run stopped.
    fn drive(&mut self, start: Event) -> Result<Option<String>, Error> {
        let mut state = State::new(self.script);
        self.drive_state(&mut state, start)
    }

    fn drive_state(&mut self, state: &mut State, start: Event) -> Result<Option<String>, Error> {
        let mut queue: VecDeque<Effect> = self.update(state, start).into();
        self.inputs.progress(self.script, Progress::State(state));
        let mut failure: Option<String> = None;
        while let Some(effect) = queue.pop_front() {
            let need = matches!(
                effect,
                Effect::NeedSignOff { .. }
                    | Effect::NeedConfirm { .. }
                    | Effect::NeedSecret { .. }
                    | Effect::NeedRoster
                    | Effect::NeedAck { .. }
            );
            // An aborted run asks for nothing more.
            if need && state.is_over() {
                continue;
            }
            // Answering a need writes nothing, so the disk looks the same just before it as
            // at the boundary before: only boundaries around writes are crash points.
            if !need {
                crash_point();
            }
            let event = match effect {
                Effect::Finish => {
                    self.close_complete()?;
                    None
                }
                Effect::Fail { error, .. } => {
                    self.tr.close("stopped")?;
                    failure = Some(error);
                    None
                }
                Effect::NeedSignOff {
                    step,
                    role,
                    have,
                    need,
                } if self.script.is_signed(&role) => {
                    Some(self.signed_sign_off(state, step, role, have, need)?)
                }
                // A custody step deals with the custodians on the roll call.
                Effect::RunStep { step, reconcile }
                    if super::custody::is_custody(&self.script.steps[step].action) =>
                {
                    Some(self.run_custody_step(step, reconcile, &state.roster.clone()))
                }
                Effect::NeedAck { step, role } => {
                    let result = state.steps[step].result.clone().unwrap_or_default();
                    Some(
                        match self.inputs.acknowledge(self.script, step, &role, &result) {
                            Answer::Given(name) => Event::Acknowledged { step, role, name },
                            Answer::Abort(reason) => Event::Abort { reason },
                        },
                    )
                }
                other => self.perform(other)?,
            };
            if let Some(ev) = event {
                queue.extend(self.update(state, ev));
                self.inputs.progress(self.script, Progress::State(state));
            }
        }
        // Secrets are not needed after the run.
        self.vault.clear();
        Ok(failure)
    }

    /// Feed the engine one event. After the start, work out when each secret is last
    /// needed; after a step is done, drop the secrets no later step needs.
    fn update(&mut self, state: &mut State, ev: Event) -> Vec<Effect> {
        let start = matches!(ev, Event::Start { .. });
        let done = match &ev {
            Event::StepDone { step, .. } => Some(*step),
            _ => None,
        };
        let fx = engine::update(state, ev);
        if start {
            self.last_use = state.secret_last_uses();
        }
        if let Some(step) = done.filter(|&i| state.steps[i].status == StepStatus::Done) {
            let last = &self.last_use;
            self.vault
                .retain(|name, _| last.get(name).is_some_and(|&l| l > step));
        }
        fx
    }

    /// Append a record to the journal (if the run keeps one) and take it into the memo.
    fn journal(&mut self, r: journal::Record) -> Result<(), Error> {
        if let Some(j) = self.journal.as_deref_mut() {
            j.append(&r)?;
        }
        self.memo.note(&r);
        Ok(())
    }

    fn place(&self, step: usize) -> String {
        self.script.steps[step].place(step)
    }

    /// A sign-off in a role that signs with SSH keys: write the message, have the face
    /// give a name and a signature, verify it against the allowed signers the transcript
    /// recorded; a refused one is asked again (or stops a face that cannot ask again).
    fn signed_sign_off(
        &mut self,
        state: &State,
        step: usize,
        role: String,
        have: usize,
        need: usize,
    ) -> Result<Event, Error> {
        use crate::approvals::signoff;
        let id = &self.script.steps[step].id;
        let place = self.place(step);
        let entries = signoff::read_entries(self.tr.path()).map_err(Error::Run)?;
        let ctx =
            signoff::Context::of(&entries).map_err(|m| Error::Run(format!("{place}: {m}")))?;
        let message = signoff::message(&ctx.script_sha256, id, &ctx.head);
        let message_file = self.out.join(signoff::message_file_name(id, &ctx.head));
        match crate::output::write_new(&message_file, &message) {
            Ok(()) => {}
            Err(crate::output::Error::Exists(_))
                if std::fs::read(&message_file).is_ok_and(|b| b == message) => {}
            Err(e) => return Err(Error::Run(format!("{place}: {e}"))),
        }
        let ask = signoff::Ask {
            message,
            message_file,
            head: ctx.head.clone(),
            signers: ctx.signers.clone(),
        };
        loop {
            let given =
                match self
                    .inputs
                    .signed_sign_off(self.script, step, &role, have, need, &ask)
                {
                    Answer::Given(g) => g,
                    Answer::Abort(reason) => return Ok(Event::Abort { reason }),
                };
            // The roll call's spelling is the principal.
            let name = people::find(&state.roster, &given.name)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| given.name.trim().to_string());
            let checked = signoff::verify(
                &ctx.signers,
                &name,
                &ask.message,
                &given.signature,
                crate::approvals::time::now(),
            )
            .and_then(|v| {
                if ctx.signed_with(id, &v.key) {
                    Err(format!(
                        "key {} already signed off step {id}; each person signs with their own key",
                        v.key
                    ))
                } else {
                    Ok(v)
                }
            });
            match checked {
                Ok(v) => {
                    let armored = crate::approvals::agent::armor(&given.signature)
                        .map_err(|e| Error::Run(format!("{place}: {e}")))?;
                    self.signed_pending = Some((
                        step,
                        role.clone(),
                        name.clone(),
                        json!({
                            "principal": v.principal,
                            "key": v.key,
                            "namespace": crate::approvals::SIGNOFF_NAMESPACE,
                            "head": ctx.head,
                            "signature": armored,
                        }),
                    ));
                    return Ok(Event::SignedOff { step, role, name });
                }
                Err(reason) => match self.inputs.rejected(self.script, step, &reason) {
                    Answer::Given(()) => continue,
                    Answer::Abort(r) => return Ok(Event::Abort { reason: r }),
                },
            }
        }
    }

    /// One effect; the engine event it answers with, if any.
    fn perform(&mut self, effect: Effect) -> Result<Option<Event>, Error> {
        let abort = |reason: String| Event::Abort { reason };
        Ok(match effect {
            Effect::OpenToken => {
                self.record_token()?;
                Some(Event::TokenOpened)
            }
            Effect::NeedSignOff {
                step,
                role,
                have,
                need,
            } => Some(
                match self.inputs.sign_off(self.script, step, &role, have, need) {
                    Answer::Given(name) => Event::SignedOff { step, role, name },
                    Answer::Abort(r) => abort(r),
                },
            ),
            Effect::NeedRoster => Some(match self.inputs.roster(self.script) {
                Answer::Given(r) => Event::Roster(r),
                Answer::Abort(r) => abort(r),
            }),
            Effect::NeedConfirm { step } => {
                let danger = self.danger(step);
                Some(match self.inputs.confirm(self.script, step, &danger) {
                    Answer::Given(()) => Event::Confirmed { step },
                    Answer::Abort(r) => abort(r),
                })
            }
            Effect::NeedSecret { step, name, retry } => {
                let sets = self.script.steps[step].action.sets_secret(&name);
                Some(
                    match self
                        .inputs
                        .secret(self.script, step, &name, sets, retry.as_deref())
                    {
                        Answer::Given(v) => {
                            self.vault.insert(name.clone(), v);
                            Event::SecretProvided { name }
                        }
                        Answer::Abort(r) => abort(r),
                    },
                )
            }
            Effect::Rejected { step, reason } => {
                match self.inputs.rejected(self.script, step, &reason) {
                    Answer::Given(()) => None,
                    Answer::Abort(r) => Some(abort(r)),
                }
            }
            Effect::Relogin { step, user, pin } => {
                self.inputs
                    .progress(self.script, Progress::Busy("Logging in again to resume"));
                let res = self.relogin(step, user, &pin);
                self.inputs.progress(self.script, Progress::Idle);
                Some(match res {
                    Ok(()) => Event::ReloggedIn,
                    Err(e) => Event::StepFailed {
                        step,
                        error: format!("{}: logging in again to resume: {e}", self.place(step)),
                    },
                })
            }
            Effect::RunStep { step, reconcile } => Some(self.run_step(step, reconcile)?),
            Effect::Record(r) => {
                self.record(r)?;
                None
            }
            // Handled by the loop.
            Effect::Finish | Effect::Fail { .. } | Effect::NeedAck { .. } => None,
        })
    }

    /// What destructive step `step` destroys, read from the token now.
    fn danger(&mut self, step: usize) -> Danger {
        let info = self.token.info().ok();
        let objects = self.token.list_objects().ok().map(|o| o.len());
        let what = match &self.script.steps[step].action {
            Action::InitToken(_) => "every key and object on the token".to_string(),
            Action::DeleteObject(d) => format!(
                "the objects labelled {:?}{}",
                d.label,
                d.class
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ),
            Action::ChangeAuthKey(_) => {
                "the authentication key this session logged in with (replaced by a rotation)"
                    .to_string()
            }
            _ => "what the step names".to_string(),
        };
        Danger {
            token_label: info.as_ref().map(|i| i.label.clone()).unwrap_or_default(),
            serial: info.map(|i| i.serial).unwrap_or_default(),
            objects,
            what,
        }
    }

    fn record_token(&mut self) -> Result<(), Error> {
        let info = self
            .token
            .info()
            .map_err(|e| Error::Run(format!("{}: {e}", self.uri)))?;
        self.tr.append("token", token_json(&info))?;
        self.inputs.progress(self.script, Progress::Token(&info));
        Ok(())
    }

    /// Log in again after a resume as the completed steps left the session.
    fn relogin(&mut self, step: usize, user: hsm::UserType, pin: &str) -> Result<(), String> {
        let first = match self.vault.get(pin) {
            Some(p) => self.token.login(user, p).map_err(|e| e.to_string()),
            None => Err(format!("secret {pin:?} is not available")),
        };
        let Err(e) = first else { return Ok(()) };
        // A rotation interrupted after it finished: the key has its new password already
        // (the step then adopts its work).
        let Action::ChangeAuthKey(c) = &self.script.steps[step].action else {
            return Err(e);
        };
        if !self.vault.contains_key(&c.new_password) {
            let sets = self.script.steps[step].action.sets_secret(&c.new_password);
            if let Answer::Given(v) =
                self.inputs
                    .secret(self.script, step, &c.new_password, sets, None)
            {
                self.vault.insert(c.new_password.clone(), v);
            }
        }
        match self.vault.get(&c.new_password) {
            Some(p) if self.token.login(user, p).is_ok() => Ok(()),
            _ => Err(format!(
                "{e}; nor with its new password: the interrupted rotation left temporary key {:04x} (temporary password) as the working administrative key; finish by hand with the device's own tool",
                c.temporary_key_id
            )),
        }
    }

    fn run_step(&mut self, step: usize, reconcile: bool) -> Result<Event, Error> {
        let st = &self.script.steps[step];
        let busy = busy_text(self.script, step);
        self.inputs.progress(self.script, Progress::Busy(&busy));
        let log = StepLog::new(step, &st.id, self.journal.as_deref_mut(), &mut self.memo);
        let ctx = StepContext {
            script_token_label: &self.script.ceremony.token,
            out_dir: self.out,
            vault: &self.vault,
            log: &log,
        };
        let res = execute_step(self.token, &ctx, st, reconcile);
        self.inputs.progress(self.script, Progress::Idle);
        Ok(match res {
            Ok(result) => {
                if matches!(st.action, Action::InitToken(_)) {
                    self.record_token()?;
                }
                Event::StepDone { step, result }
            }
            Err(e) => Event::StepFailed {
                step,
                error: format!("{}: {e}", st.place(step)),
            },
        })
    }

    /// Run custody step `step`: its shares cross through the face ([`Inputs`]) at the
    /// custodians' desk. A face that stops (an abort) leaves the step interrupted, so the
    /// next run resumes it.
    fn run_custody_step(&mut self, step: usize, reconcile: bool, roster: &[Participant]) -> Event {
        let st = &self.script.steps[step];
        let busy = busy_text(self.script, step);
        self.inputs.progress(self.script, Progress::Busy(&busy));
        let log = StepLog::new(step, &st.id, self.journal.as_deref_mut(), &mut self.memo);
        let ctx = StepContext {
            script_token_label: &self.script.ceremony.token,
            out_dir: self.out,
            vault: &self.vault,
            log: &log,
        };
        let mut desk = Desk::new(&mut *self.inputs, self.script, step, roster, self.out, busy);
        let res = super::custody::execute(self.token, &ctx, st, reconcile, &mut desk);
        self.inputs.progress(self.script, Progress::Idle);
        match res {
            Ok(result) => Event::StepDone { step, result },
            Err(Halt::Abort(reason)) => Event::Abort { reason },
            Err(Halt::Failed(e)) => Event::StepFailed {
                step,
                error: format!("{}: {e}", st.place(step)),
            },
        }
    }

    /// Close a run that went to the end. Transcript first: a journal marked complete
    /// promises a closed transcript.
    fn close_complete(&mut self) -> Result<(), Error> {
        self.sign_evidence()?;
        self.tr.close("complete")?;
        if let Some(j) = self.journal.as_deref_mut() {
            crash_point();
            j.append(&journal::Record::Complete)?;
        }
        Ok(())
    }

    /// With `[ceremony] evidence-key`, the key signs the head of everything recorded so
    /// far: an `evidence` entry right before the closing one (see `ceremony::evidence`).
    /// A failure stops the run (its steps stay done; a rerun signs again).
    fn sign_evidence(&mut self) -> Result<(), Error> {
        let Some(label) = &self.script.ceremony.evidence_key else {
            return Ok(());
        };
        let head = self.tr.head().to_string();
        match super::evidence::sign_head(self.token, label, &head) {
            Ok(data) => Ok(self.tr.append(super::evidence::KIND, data)?),
            Err(e) => {
                let error = format!("ceremony.evidence-key: {e}");
                self.tr.append("stopped", json!({ "error": error }))?;
                self.tr.close("stopped")?;
                Err(Error::Run(error))
            }
        }
    }

    /// Journal first (so a resume knows), then the transcript.
    fn record(&mut self, r: Record) -> Result<(), Error> {
        let script = self.script;
        let step_info = |i: usize| {
            let s = &script.steps[i];
            (
                s.id.clone(),
                s.action.kind(),
                s.title.clone().unwrap_or_default(),
            )
        };
        match r {
            Record::Resumed { step, result } => {
                let (id, kind, _) = step_info(step);
                self.tr.append(
                    "resumed",
                    json!({"step": step, "id": id, "kind": kind, "result": result_json(&result)}),
                )?;
            }
            Record::SignedOff { step, role, name } => {
                let (id, ..) = step_info(step);
                let mut d = json!({"step": step, "id": id, "role": role, "name": name});
                match self.signed_pending.take() {
                    Some((s, r, n, extra)) if s == step && r == role && n == name => {
                        merge(&mut d, extra)
                    }
                    _ => {}
                }
                self.tr.append("sign-off", d)?;
            }
            Record::Confirmed { step } => {
                let (id, ..) = step_info(step);
                self.tr.append("confirm", json!({"step": step, "id": id}))?;
            }
            Record::StepStarted { step, reconcile } => {
                let (id, kind, title) = step_info(step);
                self.journal(journal::Record::Started {
                    step,
                    id: id.clone(),
                })?;
                let mut d = json!({"step": step, "id": id, "kind": kind, "title": title, "reconcile": reconcile});
                if let Action::Instruction(ins) = &script.steps[step].action {
                    d["text"] = Value::String(ins.text.clone());
                }
                if let Some(desc) = &script.steps[step].description {
                    d["description"] = Value::String(desc.clone());
                }
                self.tr.append("step-start", d)?;
            }
            Record::StepCompleted { step, result } => {
                let (id, kind, _) = step_info(step);
                self.journal(journal::Record::Completed {
                    step,
                    id: id.clone(),
                    result: result.clone(),
                })?;
                crash_point();
                self.tr.append(
                    "step-done",
                    json!({"step": step, "id": id, "kind": kind, "result": result_json(&result)}),
                )?;
            }
            Record::StepFailed { step, error } => {
                let (id, ..) = step_info(step);
                self.journal(journal::Record::Failed {
                    step,
                    id: id.clone(),
                })?;
                self.tr.append(
                    "step-failed",
                    json!({"step": step, "id": id, "error": error}),
                )?;
            }
            Record::Roster(people) => {
                self.tr.append("roster", json!({"participants": people}))?;
            }
            Record::Acknowledged { step, role, name } => {
                let (id, ..) = step_info(step);
                self.journal(journal::Record::Acknowledged {
                    step,
                    id: id.clone(),
                    role: role.clone(),
                    name: name.clone(),
                })?;
                self.tr.append(
                    "acknowledge",
                    json!({"step": step, "id": id, "role": role, "name": name, "statement": "read aloud and matched"}),
                )?;
            }
            Record::RunComplete => {}
            Record::RunStopped { error } => {
                self.tr.append("stopped", json!({"error": error}))?;
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceremony::people::Participant;
    use crate::secret::Secret;

    const SCRIPT: &str = r#"
[ceremony]
id = "t"
title = "T"
version = 1
token = "tok"
[[step]]
id = "init"
kind = "init-token"
so-pin = "so"
user-pin = "u0"
[[step]]
id = "login"
kind = "login"
user = "user"
pin = "u0"
[[step]]
id = "pin"
kind = "change-pin"
user = "user"
old-pin = "u0"
new-pin = "u1"
[[step]]
id = "gen"
kind = "generate-key"
algorithm = "ec-p256"
label = "k"
key-id = "01"
[[step]]
id = "export"
kind = "export-public-key"
key = "k"
pem = "k.pem"
"#;

    fn value(name: &str) -> Secret {
        Secret::new(format!("canary-{name}-2718").into_bytes())
    }

    /// Answers every secret by name; nothing else is asked of a script without roles.
    struct Given;

    impl Inputs for Given {
        fn roster(&mut self, _: &Script) -> Answer<Vec<Participant>> {
            Answer::Abort("no roll call".into())
        }
        fn sign_off(
            &mut self,
            _: &Script,
            _: usize,
            _: &str,
            _: usize,
            _: usize,
        ) -> Answer<String> {
            Answer::Abort("no sign-off".into())
        }
        fn confirm(&mut self, _: &Script, _: usize, _: &Danger) -> Answer<()> {
            Answer::Given(())
        }
        fn secret(
            &mut self,
            _: &Script,
            _: usize,
            name: &str,
            _: bool,
            _: Option<&str>,
        ) -> Answer<Secret> {
            Answer::Given(value(name))
        }
        fn acknowledge(&mut self, _: &Script, _: usize, _: &str, _: &StepResult) -> Answer<String> {
            Answer::Abort("no review".into())
        }
        fn rejected(&mut self, _: &Script, _: usize, reason: &str) -> Answer<()> {
            Answer::Abort(reason.into())
        }
    }

    /// Drive the script on `token` from `start` as `Driver::drive_state` does, and list
    /// the secret names the vault holds when each step starts and after it is done.
    fn watch(
        script: &Script,
        token: &mut dyn Token,
        out: &Path,
        start: Event,
    ) -> Vec<(String, usize, Vec<String>)> {
        let mut tr = Writer::open(&out.join(TRANSCRIPT)).unwrap();
        let mut inputs = Given;
        let mut driver = Driver {
            script,
            token,
            uri: "sim",
            out,
            journal: None,
            memo: Memo::default(),
            tr: &mut tr,
            vault: Vault::new(),
            last_use: BTreeMap::new(),
            inputs: &mut inputs,
            signed_pending: None,
        };
        let mut state = State::new(script);
        let mut seen = Vec::new();
        let mut queue: VecDeque<Effect> = driver.update(&mut state, start).into();
        while let Some(effect) = queue.pop_front() {
            let held = |d: &Driver| d.vault.keys().cloned().collect::<Vec<_>>();
            let event = match effect {
                Effect::Finish => break,
                Effect::Fail { error, .. } => panic!("{error}"),
                Effect::RunStep { step, .. } => {
                    seen.push(("running".to_string(), step, held(&driver)));
                    driver.perform(effect).unwrap()
                }
                other => driver.perform(other).unwrap(),
            };
            if let Some(ev) = event {
                let done = match &ev {
                    Event::StepDone { step, .. } => Some(*step),
                    _ => None,
                };
                queue.extend(driver.update(&mut state, ev));
                if let Some(step) = done {
                    seen.push(("done".to_string(), step, held(&driver)));
                }
            }
        }
        seen
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_vault_drops_each_secret_after_its_last_step() {
        let dir = tempfile::tempdir().unwrap();
        let s = script::parse("t.toml", dir.path(), SCRIPT.as_bytes()).unwrap();
        let mut token = hsm::sim::open(&dir.path().join("tok")).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let seen = watch(
            &s,
            token.as_mut(),
            &out,
            Event::Start {
                completed: vec![],
                interrupted: None,
                acknowledged: vec![],
            },
        );
        let want = [
            ("running", 0, names(&["so", "u0"])),
            // The SO PIN's only use is init-token; the first user PIN goes with the step
            // that changes it.
            ("done", 0, names(&["u0"])),
            ("running", 1, names(&["u0"])),
            ("done", 1, names(&["u0"])),
            ("running", 2, names(&["u0", "u1"])),
            ("done", 2, names(&[])),
            ("running", 3, names(&[])),
            ("done", 3, names(&[])),
            ("running", 4, names(&[])),
            ("done", 4, names(&[])),
        ];
        let want: Vec<(String, usize, Vec<String>)> = want
            .into_iter()
            .map(|(a, b, c)| (a.to_string(), b, c))
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn a_resumed_run_keeps_the_session_pin_until_it_has_logged_in_again() {
        let dir = tempfile::tempdir().unwrap();
        let s = script::parse("t.toml", dir.path(), SCRIPT.as_bytes()).unwrap();
        let mut token = hsm::sim::open(&dir.path().join("tok")).unwrap();
        token.init_token("tok", &value("so"), &value("u0")).unwrap();
        token
            .change_pin(hsm::UserType::User, &value("u0"), &value("u1"))
            .unwrap();
        token.logout().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let seen = watch(
            &s,
            token.as_mut(),
            &out,
            Event::Start {
                completed: (0..3).map(|i| (i, StepResult::default())).collect(),
                interrupted: None,
                acknowledged: vec![],
            },
        );
        let want: Vec<(String, usize, Vec<String>)> = vec![
            // Asked for the log-in again before gen, dropped once gen is done.
            ("running".into(), 3, names(&["u1"])),
            ("done".into(), 3, names(&[])),
            ("running".into(), 4, names(&[])),
            ("done".into(), 4, names(&[])),
        ];
        assert_eq!(seen, want);
    }
}
