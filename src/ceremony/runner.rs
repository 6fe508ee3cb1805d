//! The effect runner: the only place the ceremony does I/O (token calls, files, clock).
//!
//! `run` is the headless face: it answers the machine's needs from the answers file.
//! `execute_step` runs one step on a token; it takes nothing but its arguments, so the
//! console can call it on a worker thread (`Token` is `Send`).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::answers::{self, Answers};
use super::engine::{self, CreatedObject, Effect, Event, OutputFile, Record, State, StepResult};
use super::journal::{self, Journal};
use super::plan;
use super::script::{self, Action, ObjectType, Script, ScriptError, Step};
use super::transcript::{self, Writer};
use crate::formats::words::Fingerprint;
use crate::hsm::{self, BackendUri, NewObject, ObjectClass, ObjectInfo, Selector, Token, UserType};
use crate::keys::{KeyAlgorithm, PrivateKey, PublicKey};
use crate::secret::Secret;

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
}

/// Secret values by logical name, held by the face (never in `State`).
pub type Vault = BTreeMap<String, Secret>;

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

pub use crate::output::crash_point;

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
    let caps = token
        .capabilities()
        .map_err(|e| Error::Run(format!("{uri}: {e}")))?;
    plan::check_capabilities(script, &caps, &uri.to_string())?;
    if !plan.external_keys.is_empty() {
        let objects = token
            .list_objects()
            .map_err(|e| Error::Run(format!("{uri}: {e}")))?;
        plan::check_token(script, plan, &objects)?;
    }
    Ok((uri, token))
}

/// How a backend is opened: `hsm::open`, or a fake in tests.
pub type Opener<'a> = &'a dyn Fn(&BackendUri, Option<&str>) -> hsm::Result<Box<dyn Token>>;

/// The headless run on the backend `opts.backend` names.
pub fn run(opts: &RunOptions) -> Result<Summary, Error> {
    run_with(opts, &hsm::open)
}

/// The headless run, opening the backend with `opener`.
/// The transcript's first entry of a run session: what was run, where, by which version.
/// Both faces write it (the console adds `"face": "console"`; the headless runner adds
/// the answers file).
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

pub fn run_with(opts: &RunOptions, opener: Opener) -> Result<Summary, Error> {
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
    let out = &opts.out;
    let script_hex = hex::encode(script.sha256);
    let journal_path = out.join(JOURNAL);
    let transcript_path = out.join(TRANSCRIPT);
    let earlier = journal::load(&journal_path)?;
    match &earlier {
        Some(l) if l.script_sha256 != script_hex => {
            return Err(Error::Run(format!(
            "{} holds a run of a different script (SHA-256 {}, this script {}); use a new --out",
            out.display(),
            l.script_sha256,
            script_hex
        )))
        }
        Some(l) if l.complete => {
            // Killed while writing transcript.md after the journal said complete: the
            // temp file of that write is litter here too.
            remove_stale_temps(&script, out);
            let v = if out.join(TRANSCRIPT_MD).exists() {
                transcript::verify(&transcript_path)?
            } else {
                render_transcript_md(out)?
            };
            return Ok(Summary {
                already_complete: true,
                resumed: false,
                outputs: outputs_of(&script, out),
                transcript: transcript_path,
                head: v.head,
            });
        }
        Some(_) => {}
        None => {
            if out.exists() {
                let busy = std::fs::read_dir(out)
                    .map_err(|e| Error::Run(format!("{}: {e}", out.display())))?
                    .next()
                    .is_some();
                if busy {
                    return Err(Error::Run(format!(
                        "out dir {} is not empty and holds no journal of this run; use a new --out",
                        out.display()
                    )));
                }
            }
        }
    }

    let (uri, mut token) = open_checked(&script, &plan, &opts.backend, opener)?;
    std::fs::create_dir_all(out).map_err(|e| Error::Run(format!("{}: {e}", out.display())))?;
    if earlier.is_some() {
        remove_stale_temps(&script, out);
    }
    let mut journal = Journal::open(&journal_path)?;
    if earlier.is_none() {
        journal.append(&journal::Record::Run {
            script: script.path.display().to_string(),
            script_sha256: script_hex.clone(),
        })?;
    }
    let mut tr = Writer::open(&transcript_path)?;
    let mut open = open_entry(&script, &uri.to_string(), earlier.is_some(), &tr);
    open["answers"] = json!(answers.path.as_ref().map(|p| p.display().to_string()));
    open["answers_sha256"] = json!(answers.sha256.map(hex::encode));
    tr.append("open", open)?;

    let resumed = earlier.is_some();
    let (completed, interrupted) = earlier
        .map(|l| (l.completed, l.interrupted))
        .unwrap_or_default();
    let mut state = State::new(&script);
    let mut vault = Vault::new();
    let mut queue: VecDeque<Effect> = engine::update(
        &mut state,
        Event::Start {
            completed,
            interrupted,
        },
    )
    .into();
    let mut failure: Option<String> = None;
    while let Some(effect) = queue.pop_front() {
        // Answering a need writes nothing, so the disk looks the same just before it as
        // at the boundary before: only boundaries around writes are crash points.
        let writes = !matches!(
            effect,
            Effect::NeedSignOff { .. } | Effect::NeedConfirm { .. } | Effect::NeedSecret { .. }
        );
        if writes {
            crash_point();
        }
        let event = match effect {
            Effect::OpenToken => {
                let info = token
                    .info()
                    .map_err(|e| Error::Run(format!("{uri}: {e}")))?;
                tr.append("token", token_json(&info))?;
                Some(Event::TokenOpened)
            }
            Effect::NeedSignOff {
                step, role, have, ..
            } => {
                let id = &script.steps[step].id;
                match answers.names_for(id, &role).get(have) {
                    Some(name) => Some(Event::SignedOff {
                        step,
                        role,
                        name: name.to_string(),
                    }),
                    None => Some(Event::Abort {
                        reason: format!(
                            "{}: missing sign-off by {role} in the answers file",
                            script.steps[step].place(step)
                        ),
                    }),
                }
            }
            Effect::NeedConfirm { step } => {
                if answers.confirms.contains(&script.steps[step].id) {
                    Some(Event::Confirmed { step })
                } else {
                    Some(Event::Abort {
                        reason: format!(
                            "{}: destructive step not confirmed in the answers file",
                            script.steps[step].place(step)
                        ),
                    })
                }
            }
            Effect::NeedSecret { step, name } => {
                let place = script.steps[step].place(step);
                match answers.secrets.get(&name) {
                    None => Some(Event::Abort {
                        reason: format!(
                            "{place}: no source for secret {name:?} in the answers file"
                        ),
                    }),
                    Some(src) => match read_step_secret(src, &script.steps[step], &name, &place) {
                        Ok(v) => {
                            vault.insert(name.clone(), v);
                            Some(Event::SecretProvided { name })
                        }
                        Err(e) => Some(Event::Abort {
                            reason: format!("{place}: secret {name:?}: {e}"),
                        }),
                    },
                }
            }
            Effect::Relogin { step, user, pin } => {
                let mut res = match vault.get(&pin) {
                    Some(p) => token.login(user, p).map_err(|e| e.to_string()),
                    None => Err(format!("secret {pin:?} is not available")),
                };
                // A YubiHSM rotation interrupted after it finished: the key has the new
                // password already (the step then adopts its work).
                if let (Err(e), Action::ChangeAuthKey(c)) = (&res, &script.steps[step].action) {
                    if token.yubihsm().is_some() {
                        // Not asked for yet on this run: read it from its source now.
                        if !vault.contains_key(&c.new_password) {
                            if let Some(v) = answers.secrets.get(&c.new_password).and_then(|src| {
                                src.read(&format!("secret {:?}", c.new_password)).ok()
                            }) {
                                vault.insert(c.new_password.clone(), v);
                            }
                        }
                        res = match vault.get(&c.new_password) {
                            Some(p) if token.login(user, p).is_ok() => Ok(()),
                            _ => Err(format!(
                                "{e}; nor with its new password: the interrupted rotation left temporary key {:04x} (temporary password) as the working administrative key; finish by hand with yubihsm-shell",
                                c.temporary_key_id
                            )),
                        };
                    }
                }
                Some(match res {
                    Ok(()) => Event::ReloggedIn,
                    Err(e) => Event::StepFailed {
                        step,
                        error: format!(
                            "{}: logging in again to resume: {e}",
                            script.steps[step].place(step)
                        ),
                    },
                })
            }
            Effect::RunStep { step, reconcile } => {
                let ctx = StepContext {
                    script_token_label: &script.ceremony.token,
                    out_dir: out,
                    vault: &vault,
                };
                Some(
                    match execute_step(token.as_mut(), &ctx, &script.steps[step], reconcile) {
                        Ok(result) => {
                            if matches!(script.steps[step].action, Action::InitToken(_)) {
                                let info = token
                                    .info()
                                    .map_err(|e| Error::Run(format!("{uri}: {e}")))?;
                                tr.append("token", token_json(&info))?;
                            }
                            Event::StepDone { step, result }
                        }
                        Err(e) => Event::StepFailed {
                            step,
                            error: format!("{}: {e}", script.steps[step].place(step)),
                        },
                    },
                )
            }
            Effect::Rejected { step, reason } => Some(Event::Abort {
                reason: format!("{}: {reason}", script.steps[step].place(step)),
            }),
            Effect::Record(r) => {
                record(&script, &mut journal, &mut tr, r)?;
                None
            }
            Effect::Finish => {
                close_complete(&mut journal, &mut tr)?;
                None
            }
            Effect::Fail { error, .. } => {
                tr.close("stopped")?;
                failure = Some(error);
                None
            }
        };
        if let Some(ev) = event {
            queue.extend(engine::update(&mut state, ev));
        }
    }
    drop(vault);
    if let Some(e) = failure {
        return Err(Error::Step(e));
    }
    crash_point();
    let v = render_transcript_md(out)?;
    Ok(Summary {
        already_complete: false,
        resumed,
        outputs: outputs_of(&script, out),
        transcript: transcript_path,
        head: v.head,
    })
}

/// Read secret `name` for `step`: typed twice at a prompt when the step sets it.
fn read_step_secret(
    src: &crate::secret::SecretSource,
    step: &Step,
    name: &str,
    place: &str,
) -> Result<Secret, crate::secret::Error> {
    let what = format!("secret {name:?} for {place}");
    if step.action.sets_secret(name) {
        src.read_new(&what)
    } else {
        src.read(&what)
    }
}

/// Close a run that went to the end. Transcript first: a journal marked complete
/// promises a closed transcript.
pub fn close_complete(journal: &mut Journal, tr: &mut Writer) -> Result<(), Error> {
    tr.close("complete")?;
    crash_point();
    journal.append(&journal::Record::Complete)?;
    Ok(())
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

/// Journal first (so a resume knows), then the transcript.
pub fn record(
    script: &Script,
    journal: &mut Journal,
    tr: &mut Writer,
    r: Record,
) -> Result<(), Error> {
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
            tr.append(
                "resumed",
                json!({"step": step, "id": id, "kind": kind, "result": result_json(&result)}),
            )?;
        }
        Record::SignedOff { step, role, name } => {
            let (id, ..) = step_info(step);
            tr.append(
                "sign-off",
                json!({"step": step, "id": id, "role": role, "name": name}),
            )?;
        }
        Record::Confirmed { step } => {
            let (id, ..) = step_info(step);
            tr.append("confirm", json!({"step": step, "id": id}))?;
        }
        Record::StepStarted { step, reconcile } => {
            let (id, kind, title) = step_info(step);
            journal.append(&journal::Record::Started {
                step,
                id: id.clone(),
            })?;
            let mut d = json!({"step": step, "id": id, "kind": kind, "title": title, "reconcile": reconcile});
            if let Action::Instruction(ins) = &script.steps[step].action {
                d["text"] = Value::String(ins.text.clone());
            }
            tr.append("step-start", d)?;
        }
        Record::StepCompleted { step, result } => {
            let (id, kind, _) = step_info(step);
            journal.append(&journal::Record::Completed {
                step,
                id: id.clone(),
                result: result.clone(),
            })?;
            crash_point();
            tr.append(
                "step-done",
                json!({"step": step, "id": id, "kind": kind, "result": result_json(&result)}),
            )?;
        }
        Record::StepFailed { step, error } => {
            let (id, ..) = step_info(step);
            journal.append(&journal::Record::Failed {
                step,
                id: id.clone(),
            })?;
            tr.append(
                "step-failed",
                json!({"step": step, "id": id, "error": error}),
            )?;
        }
        Record::RunComplete => {}
        Record::RunStopped { error } => {
            tr.append("stopped", json!({"error": error}))?;
        }
    }
    Ok(())
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

/// What a step needs besides the token.
pub struct StepContext<'a> {
    /// The label init-token gives the token.
    pub script_token_label: &'a str,
    pub out_dir: &'a Path,
    pub vault: &'a Vault,
}

/// Errors of one step (the caller adds the step's place).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Token(#[from] hsm::Error),
    #[error("{0}")]
    Other(String),
}

impl<'a> StepContext<'a> {
    fn secret(&self, name: &str) -> Result<&'a Secret, StepError> {
        self.vault
            .get(name)
            .ok_or_else(|| StepError::Other(format!("secret {name:?} was not provided")))
    }
}

/// Run one step on a token. `reconcile`: the step started in an earlier run and did not
/// complete; adopt its work if it is there (never create twice), else do it.
/// On a YubiHSM (native) the device's audit log is read into the result after the step.
pub fn execute_step(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    step: &Step,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let mut result = execute_action(token, ctx, step, reconcile)?;
    if let Some(y) = token.yubihsm() {
        if y.logged_in() {
            match y.read_audit_log(true) {
                Ok(report) => result.device_audit = Some(report),
                Err(e) => result.notes.push(format!("device audit log not read: {e}")),
            }
        }
    }
    Ok(result)
}

/// The YubiHSM native backend, for the step kinds only it has.
fn native<'t>(
    token: &'t mut dyn Token,
    kind: &str,
) -> Result<&'t mut hsm::yubihsm::YubiHsm, StepError> {
    token.yubihsm().ok_or_else(|| {
        StepError::Other(format!(
            "{kind} needs the YubiHSM native backend (yubihsm:usb or yubihsm:http://HOST:PORT)"
        ))
    })
}

fn execute_action(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    step: &Step,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    match &step.action {
        Action::PutAuthKey(p) => {
            let password = ctx.secret(&p.password)?;
            let y = native(token, "put-auth-key")?;
            let created = CreatedObject {
                label: p.spec.label.clone(),
                id: format!("{:04x}", p.spec.id),
                class: "authentication key".into(),
                key_type: p.spec.summary(),
                public_key_sha256: None,
            };
            if reconcile {
                if let Ok(existing) = y.auth_key_spec(p.spec.id) {
                    if existing != p.spec {
                        return Err(StepError::Other(format!(
                            "the device already has a different authentication key {:04x}",
                            p.spec.id
                        )));
                    }
                    return Ok(StepResult {
                        objects: vec![created],
                        adopted: true,
                        ..StepResult::default()
                    });
                }
            }
            y.put_auth_key(&p.spec, password)
                .map_err(hsm::Error::from)?;
            Ok(StepResult {
                objects: vec![created],
                ..StepResult::default()
            })
        }
        Action::ChangeAuthKey(c) => {
            let temp = ctx.secret(&c.temporary_password)?;
            let new = ctx.secret(&c.new_password)?;
            let y = native(token, "change-auth-key")?;
            let id = y.auth_key();
            let rotated = |spec: &hsm::yubihsm::AuthKeySpec| CreatedObject {
                label: spec.label.clone(),
                id: format!("{id:04x}"),
                class: "authentication key (rotated)".into(),
                key_type: spec.summary(),
                public_key_sha256: None,
            };
            if reconcile && y.session_uses(id, new) {
                let spec = y.auth_key_spec(id).map_err(hsm::Error::from)?;
                return Ok(StepResult {
                    objects: vec![rotated(&spec)],
                    adopted: true,
                    ..StepResult::default()
                });
            }
            let sub_steps = y
                .change_auth_key(&hsm::yubihsm::Rotation {
                    temp_id: c.temporary_key_id,
                    temp_password: temp,
                    new_password: new,
                    replacement: c.replacement.clone(),
                })
                .map_err(|e| StepError::Other(e.to_string()))?;
            let spec = y.auth_key_spec(id).map_err(hsm::Error::from)?;
            Ok(StepResult {
                objects: vec![rotated(&spec)],
                sub_steps,
                ..StepResult::default()
            })
        }
        Action::SetAudit(a) => {
            let y = native(token, "set-audit")?;
            y.set_force_audit(a.force).map_err(hsm::Error::from)?;
            let now = y.force_audit().map_err(hsm::Error::from)?;
            if now != a.force {
                return Err(StepError::Other(format!(
                    "force-audit reads back {} after setting it {}",
                    if now { "on" } else { "off" },
                    if a.force { "on" } else { "off" }
                )));
            }
            Ok(StepResult {
                notes: vec![format!(
                    "force-audit is {} (read back from the device)",
                    if now { "on" } else { "off" }
                )],
                ..StepResult::default()
            })
        }
        Action::InitToken(s) => {
            token.init_token(
                ctx.script_token_label,
                ctx.secret(&s.so_pin)?,
                ctx.secret(&s.user_pin)?,
            )?;
            Ok(StepResult::default())
        }
        Action::Login(s) => {
            token.login(s.user, ctx.secret(&s.pin)?)?;
            Ok(StepResult::default())
        }
        Action::ChangePin(s) => change_pin(
            token,
            s.user,
            ctx.secret(&s.old_pin)?,
            ctx.secret(&s.new_pin)?,
            reconcile,
        ),
        Action::GenerateKey(g) => {
            if reconcile {
                if let Some(pk) = existing_key(token, &g.label)? {
                    if KeyAlgorithm::of(&pk) != Some(g.algorithm) {
                        return Err(StepError::Other(format!(
                            "the token already has a key labelled {:?} of another type ({})",
                            g.label,
                            pk.describe()
                        )));
                    }
                    return Ok(key_result(&g.label, &g.key_id, &pk, true));
                }
            }
            let opts = hsm::KeyOptions {
                exportable_under_wrap: g.exportable_under_wrap,
            };
            let pk = token.generate_key_with(g.algorithm, &g.label, &g.key_id, &opts)?;
            Ok(key_result(&g.label, &g.key_id, &pk, false))
        }
        Action::ImportKey(k) => {
            let passphrase = match &k.passphrase {
                Some(n) => Some(ctx.secret(n)?),
                None => None,
            };
            let key = read_private_key(&k.key_file, passphrase)?;
            if reconcile {
                if let Some(pk) = existing_key(token, &k.label)? {
                    if pk.fingerprint() != key.public_key().fingerprint() {
                        return Err(StepError::Other(format!(
                            "the token already has a different key labelled {:?}",
                            k.label
                        )));
                    }
                    return Ok(key_result(&k.label, &k.key_id, &pk, true));
                }
            }
            let pk = token.import_key(&key, &k.label, &k.key_id)?;
            Ok(key_result(&k.label, &k.key_id, &pk, false))
        }
        Action::WriteObject(w) => {
            let bytes = std::fs::read(&w.file).map_err(|e| {
                StepError::Other(format!("cannot read {}: {}", w.file.display(), e.kind()))
            })?;
            let (object, class) = match w.object_type {
                ObjectType::Cert => (
                    NewObject::Certificate(cert_der(&bytes)?),
                    ObjectClass::Certificate,
                ),
                ObjectType::Data => (
                    NewObject::Data {
                        application: w.application.clone().unwrap_or_else(|| "officiant".into()),
                        value: bytes,
                    },
                    ObjectClass::Data,
                ),
            };
            let mut adopted = false;
            if reconcile {
                adopted = token
                    .list_objects()?
                    .iter()
                    .any(|o| o.label == w.label && o.class == class);
            }
            if !adopted {
                token.put_object(&w.label, &w.object_id, &object)?;
            }
            let pk = match &object {
                NewObject::Certificate(der) => PublicKey::from_certificate_der(der).ok(),
                NewObject::Data { .. } => None,
            };
            Ok(StepResult {
                objects: vec![CreatedObject {
                    label: w.label.clone(),
                    id: hex::encode(&w.object_id),
                    class: class.to_string(),
                    key_type: pk.as_ref().map(PublicKey::describe).unwrap_or_default(),
                    public_key_sha256: pk.map(|p| hex::encode(p.fingerprint())),
                }],
                adopted,
                ..StepResult::default()
            })
        }
        Action::DeleteObject(d) => {
            let n = token.delete_object(&Selector {
                label: d.label.clone(),
                class: d.class.clone(),
            })?;
            if n == 0 && !reconcile {
                return Err(StepError::Token(hsm::Error::NotFound {
                    what: format!("object labelled {:?}", d.label),
                }));
            }
            Ok(StepResult {
                deleted: Some(n),
                adopted: n == 0,
                ..StepResult::default()
            })
        }
        Action::ExportPublicKey(x) => {
            let pk = token.public_key(&x.key)?;
            let mut outputs = Vec::new();
            let files: Vec<(&String, Vec<u8>)> = [
                x.pem.as_ref().map(|n| (n, pk.to_pem().into_bytes())),
                x.der.as_ref().map(|n| (n, pk.to_spki_der())),
            ]
            .into_iter()
            .flatten()
            .collect();
            outputs.extend(write_outputs(ctx.out_dir, files, reconcile)?);
            Ok(StepResult {
                outputs,
                ..StepResult::default()
            })
        }
        Action::Instruction(_) => Ok(StepResult::default()),
        a @ (Action::IssueCertificate(_)
        | Action::ExportFuses(_)
        | Action::Sign(_)
        | Action::Verify(_)
        | Action::IssueTbbr(_)) => super::steps::execute(token, ctx, a, reconcile),
    }
}

fn change_pin(
    token: &mut dyn Token,
    user: UserType,
    old: &Secret,
    new: &Secret,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    match token.change_pin(user, old, new) {
        Ok(()) => Ok(StepResult::default()),
        // Interrupted after the change took effect: the new PIN is already set.
        Err(hsm::Error::WrongPin { .. }) if reconcile => {
            token.login(user, new)?;
            Ok(StepResult {
                adopted: true,
                ..StepResult::default()
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn existing_key(token: &mut dyn Token, label: &str) -> Result<Option<PublicKey>, StepError> {
    let objects: Vec<ObjectInfo> = token.list_objects()?;
    let key = objects.into_iter().find(|o| {
        o.label == label && matches!(o.class, ObjectClass::PrivateKey | ObjectClass::PublicKey)
    });
    Ok(match key {
        Some(o) => Some(match o.public_key {
            Some(pk) => pk,
            None => token.public_key(label)?,
        }),
        None => None,
    })
}

fn key_result(label: &str, id: &[u8], pk: &PublicKey, adopted: bool) -> StepResult {
    StepResult {
        objects: vec![CreatedObject {
            label: label.to_string(),
            id: hex::encode(id),
            class: "key pair".into(),
            key_type: pk.describe(),
            public_key_sha256: Some(hex::encode(pk.fingerprint())),
        }],
        adopted,
        ..StepResult::default()
    }
}

/// Read a private key file for import (the bytes are zeroized after parsing).
pub fn read_private_key(path: &Path, passphrase: Option<&Secret>) -> Result<PrivateKey, StepError> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
        StepError::Other(format!(
            "cannot read key file {}: {}",
            path.display(),
            e.kind()
        ))
    })?);
    PrivateKey::from_bytes(&bytes, passphrase)
        .map_err(|e| StepError::Other(format!("key file {}: {e}", path.display())))
}

/// A certificate file as DER (PEM accepted).
fn cert_der(bytes: &[u8]) -> Result<Vec<u8>, StepError> {
    use der::{Decode, DecodePem, Encode};
    let cert = if bytes.starts_with(b"-----BEGIN") {
        x509_cert::Certificate::from_pem(bytes)
    } else {
        x509_cert::Certificate::from_der(bytes)
    }
    .map_err(|e| StepError::Other(format!("not an X.509 certificate: {e}")))?;
    cert.to_der()
        .map_err(|e| StepError::Other(format!("certificate: {e}")))
}

/// Write a step's output files in order, with a crash point between them (so resume is
/// tested with only some of them written).
pub(super) fn write_outputs(
    out: &Path,
    files: Vec<(&String, Vec<u8>)>,
    reconcile: bool,
) -> Result<Vec<OutputFile>, StepError> {
    let mut outputs = Vec::with_capacity(files.len());
    for (k, (name, bytes)) in files.into_iter().enumerate() {
        if k > 0 {
            crash_point();
        }
        outputs.push(write_output(out, name, &bytes, reconcile)?);
    }
    Ok(outputs)
}

/// Write an output file; on reconcile an identical existing file is adopted.
pub(super) fn write_output(
    out: &Path,
    name: &str,
    bytes: &[u8],
    reconcile: bool,
) -> Result<OutputFile, StepError> {
    let path = out.join(name);
    let sha = hex::encode(crate::output::sha256(bytes));
    if reconcile && path.exists() {
        let have = std::fs::read(&path)
            .map_err(|e| StepError::Other(format!("{}: {e}", path.display())))?;
        if have == bytes {
            return Ok(OutputFile {
                path: name.to_string(),
                sha256: sha,
                adopted: true,
            });
        }
        return Err(StepError::Other(format!(
            "{} exists from an interrupted run and differs from what this step writes; move it away and rerun",
            path.display()
        )));
    }
    crate::output::write_new(&path, bytes).map_err(|e| StepError::Other(e.to_string()))?;
    Ok(OutputFile {
        path: name.to_string(),
        sha256: sha,
        adopted: false,
    })
}
