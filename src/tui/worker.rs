//! The worker thread owns the token. Token calls block (RSA-4096 generation takes
//! seconds), so the console sends a [`Request`] and keeps drawing; the answer comes back
//! as [`WorkerMsg`] on the console's event channel. Secrets travel inside
//! [`Secret`] and are dropped (zeroized) as soon as the call returns.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};

use crate::ceremony::engine::{self, Effect, StepResult};
use crate::ceremony::journal::{self, Journal};
use crate::ceremony::runner::{self, StepContext, Vault};
use crate::ceremony::script::Script;
use crate::ceremony::transcript::Writer;
use crate::formats::raw::Padding;
use crate::hsm::{self, BackendUri, ObjectInfo, Token, TokenInfo, UserType};
use crate::keys;
use crate::secret::Secret;
use crate::signing::{self, Format};

use super::event::Event;

#[derive(Debug)]
pub enum Request {
    Refresh,
    /// Log in with `pin` and sign `input` into `output` in `format` with key `key`
    /// (the signing library checks the signature before it writes).
    SignFile {
        key: String,
        format: Format,
        padding: Option<Padding>,
        options: crate::cli::sign::FormatOptions,
        pin: Secret,
        input: PathBuf,
        output: PathBuf,
    },
    /// Verify a signed image, or a detached signature, against the key in `pubkey`.
    VerifyFile {
        format: Format,
        padding: Option<Padding>,
        pubkey: PathBuf,
        input: PathBuf,
        signature: Option<PathBuf>,
    },
    /// Parse and check a script against this token, read the journal in `out` (resume),
    /// open the journal and transcript.
    OpenCeremony {
        script: PathBuf,
        out: PathBuf,
    },
    /// The value of the engine's secret `name`, for the vault of the open ceremony.
    Secret {
        name: String,
        value: Secret,
    },
    /// An effect of the engine to perform (token calls, journal, transcript).
    Effect(Effect),
}

impl Request {
    /// What the progress indicator says while this runs.
    pub fn describe(&self) -> String {
        match self {
            Request::Refresh => "Reading the token".into(),
            Request::SignFile { input, .. } => format!("Signing {}", input.display()),
            Request::VerifyFile { input, .. } => format!("Verifying {}", input.display()),
            Request::OpenCeremony { script, .. } => format!("Checking {}", script.display()),
            Request::Secret { .. } => "Holding a secret".into(),
            Request::Effect(Effect::OpenToken) => "Opening the token".into(),
            Request::Effect(Effect::Relogin { .. }) => "Logging in again to resume".into(),
            Request::Effect(Effect::RunStep { step, .. }) => format!("Running step {}", step + 1),
            Request::Effect(_) => "Recording".into(),
        }
    }
}

#[derive(Debug)]
pub enum WorkerMsg {
    Snapshot {
        info: TokenInfo,
        objects: Vec<ObjectInfo>,
    },
    OpenFailed(String),
    Signed {
        /// The digest the token signed.
        digest: Vec<u8>,
        output: PathBuf,
        notes: Vec<String>,
    },
    Verified {
        /// SHA-256 of the input.
        digest: Vec<u8>,
        ok: bool,
        lines: Vec<String>,
    },
    Failed {
        what: String,
        cause: String,
    },
    /// A ceremony is ready to start (or resume).
    CeremonyOpened(Box<Opened>),
    /// The engine's answer to an effect.
    Engine(engine::Event),
    /// The run ended; the transcript is closed (and rendered, when complete).
    CeremonyClosed {
        transcript: PathBuf,
        complete: bool,
    },
}

#[derive(Debug)]
pub struct Opened {
    pub script: Script,
    pub out: PathBuf,
    pub completed: Vec<(usize, StepResult)>,
    pub interrupted: Option<usize>,
    pub resumed: bool,
}

/// The open ceremony: everything the effects need, and the vault of secret values.
struct Session {
    script: Script,
    out: PathBuf,
    uri: String,
    journal: Journal,
    tr: Writer,
    vault: Vault,
}

/// Open `uri` on a new thread and serve requests until the sender is dropped.
pub fn spawn(uri: String, events: Sender<Event>) -> Sender<Request> {
    let (tx, rx) = channel::<Request>();
    std::thread::spawn(move || {
        let send = |m: WorkerMsg| events.send(Event::Worker(m)).is_ok();
        let mut token = match BackendUri::parse(&uri).and_then(|u| hsm::open(&u, None)) {
            Ok(t) => t,
            Err(e) => {
                send(WorkerMsg::OpenFailed(e.to_string()));
                // Still answer requests so the console never waits forever.
                for req in rx {
                    let what = req.describe();
                    if !send(WorkerMsg::Failed {
                        what,
                        cause: format!("the backend did not open: {e}"),
                    }) {
                        return;
                    }
                }
                return;
            }
        };
        if !send(snapshot(token.as_mut())) {
            return;
        }
        let mut session: Option<Session> = None;
        for req in rx {
            let reply = match req {
                Request::OpenCeremony { script, out } => {
                    match open_ceremony(token.as_mut(), &uri, &script, &out) {
                        Ok((sess, opened)) => {
                            session = Some(sess);
                            Some(WorkerMsg::CeremonyOpened(Box::new(opened)))
                        }
                        Err(cause) => Some(WorkerMsg::Failed {
                            what: format!("Opening {}", script.display()),
                            cause,
                        }),
                    }
                }
                Request::Secret { name, value } => {
                    if let Some(sess) = session.as_mut() {
                        sess.vault.insert(name, value);
                    }
                    None
                }
                Request::Effect(fx) => match session.as_mut() {
                    Some(sess) => effect(token.as_mut(), sess, fx),
                    None => Some(WorkerMsg::Failed {
                        what: "The ceremony".into(),
                        cause: "no ceremony is open".into(),
                    }),
                },
                other => Some(serve(token.as_mut(), other)),
            };
            if let Some(m) = reply {
                if !send(m) {
                    return;
                }
            }
        }
    });
    tx
}

fn snapshot(token: &mut dyn Token) -> WorkerMsg {
    let info = match token.info() {
        Ok(i) => i,
        Err(e) => return WorkerMsg::OpenFailed(e.to_string()),
    };
    // An uninitialized token, or one that needs a login to list, still shows its info.
    let objects = token.list_objects().unwrap_or_default();
    WorkerMsg::Snapshot { info, objects }
}

/// Run one request on the token.
pub fn serve(token: &mut dyn Token, req: Request) -> WorkerMsg {
    let what = req.describe();
    let failed = |cause: String| WorkerMsg::Failed {
        what: what.clone(),
        cause,
    };
    match req {
        Request::Refresh => snapshot(token),
        Request::SignFile {
            key,
            format,
            padding,
            options,
            pin,
            input,
            output,
        } => match options
            .to_options(padding)
            .map_err(|e| e.0)
            .and_then(|opts| sign_file(token, &key, format, &opts, &pin, &input, &output))
        {
            Ok(rec) => WorkerMsg::Signed {
                digest: hex::decode(&rec.signed_digest).unwrap_or_default(),
                output: rec.output,
                notes: rec.notes,
            },
            Err(cause) => failed(cause),
        },
        Request::VerifyFile {
            format,
            padding,
            pubkey,
            input,
            signature,
        } => {
            let digest = crate::output::sha256_file(&input)
                .map(|d| d.to_vec())
                .unwrap_or_default();
            match keys::load_public_key(&pubkey) {
                Err(cause) => failed(cause),
                Ok(key) => {
                    match signing::verify_file(format, &key, &input, signature.as_deref(), padding)
                    {
                        Ok(r) => WorkerMsg::Verified {
                            digest,
                            ok: true,
                            lines: r.lines,
                        },
                        Err(e) => WorkerMsg::Verified {
                            digest,
                            ok: false,
                            lines: vec![e.to_string()],
                        },
                    }
                }
            }
        }
        Request::OpenCeremony { .. } | Request::Secret { .. } | Request::Effect(_) => {
            failed("the ceremony requests are served by the worker loop".into())
        }
    }
}

/// What `officiant run` does before its first step, on the token the console holds:
/// parse and check the script, check it against the token, and find an earlier run's
/// journal in `out` to resume.
fn open_ceremony(
    token: &mut dyn Token,
    uri: &str,
    path: &std::path::Path,
    out: &std::path::Path,
) -> Result<(Session, Opened), String> {
    let (script, plan, _) = runner::prepare(path, None).map_err(|e| e.to_string())?;
    let caps = token.capabilities().map_err(|e| e.to_string())?;
    crate::ceremony::plan::check_capabilities(&script, &caps, uri).map_err(|e| e.to_string())?;
    if !plan.external_keys.is_empty() {
        let objects = token.list_objects().map_err(|e| e.to_string())?;
        crate::ceremony::plan::check_token(&script, &plan, &objects).map_err(|e| e.to_string())?;
    }
    let script_hex = hex::encode(script.sha256);
    let journal_path = out.join(runner::JOURNAL);
    let earlier = journal::load(&journal_path).map_err(|e| e.to_string())?;
    match &earlier {
        Some(l) if l.script_sha256 != script_hex => {
            return Err(format!(
                "{} holds a run of a different script; move it away to start afresh",
                out.display()
            ))
        }
        Some(l) if l.complete => {
            return Err(format!(
                "this ceremony already ran to completion in {} (see its transcript.md)",
                out.display()
            ))
        }
        Some(_) => {}
        None => {
            let busy = std::fs::read_dir(out)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            if busy {
                return Err(format!(
                    "{} is not empty and holds no journal of this ceremony",
                    out.display()
                ));
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {}", out.display(), e.kind()))?;
    if earlier.is_some() {
        runner::remove_stale_temps(&script, out);
    }
    let mut journal = Journal::open(&journal_path).map_err(|e| e.to_string())?;
    if earlier.is_none() {
        journal
            .append(&journal::Record::Run {
                script: script.path.display().to_string(),
                script_sha256: script_hex.clone(),
            })
            .map_err(|e| e.to_string())?;
    }
    let mut tr = Writer::open(&out.join(runner::TRANSCRIPT)).map_err(|e| e.to_string())?;
    let mut open = runner::open_entry(&script, uri, earlier.is_some(), &tr);
    open["face"] = serde_json::json!("console");
    tr.append("open", open).map_err(|e| e.to_string())?;
    let resumed = earlier.is_some();
    let (completed, interrupted) = earlier
        .map(|l| (l.completed, l.interrupted))
        .unwrap_or_default();
    let opened = Opened {
        script: script.clone(),
        out: out.to_path_buf(),
        completed,
        interrupted,
        resumed,
    };
    Ok((
        Session {
            script,
            out: out.to_path_buf(),
            uri: uri.to_string(),
            journal,
            tr,
            vault: Vault::new(),
        },
        opened,
    ))
}

/// Perform one engine effect, as the headless runner does; the answer (if the effect
/// has one) goes back to the console's engine.
fn effect(token: &mut dyn Token, sess: &mut Session, fx: Effect) -> Option<WorkerMsg> {
    let fail = |what: &str, cause: String| {
        Some(WorkerMsg::Failed {
            what: what.to_string(),
            cause,
        })
    };
    match fx {
        Effect::OpenToken => match token.info() {
            Ok(info) => match sess.tr.append("token", runner::token_json(&info)) {
                Ok(()) => Some(WorkerMsg::Engine(engine::Event::TokenOpened)),
                Err(e) => fail("Writing the transcript", e.to_string()),
            },
            Err(e) => fail("Reading the token", format!("{}: {e}", sess.uri)),
        },
        Effect::Relogin { step, user, pin } => {
            let res = match sess.vault.get(&pin) {
                Some(p) => token.login(user, p).map_err(|e| e.to_string()),
                None => Err(format!("secret {pin:?} is not available")),
            };
            Some(WorkerMsg::Engine(match res {
                Ok(()) => engine::Event::ReloggedIn,
                Err(e) => engine::Event::StepFailed {
                    step,
                    error: format!(
                        "{}: logging in again to resume: {e}",
                        sess.script.steps[step].place(step)
                    ),
                },
            }))
        }
        Effect::RunStep { step, reconcile } => {
            let ctx = StepContext {
                script_token_label: &sess.script.ceremony.token,
                out_dir: &sess.out,
                vault: &sess.vault,
            };
            let st = &sess.script.steps[step];
            let ev = match runner::execute_step(token, &ctx, st, reconcile) {
                Ok(result) => {
                    if st.action.kind() == "init-token" {
                        if let Ok(info) = token.info() {
                            if let Err(e) = sess.tr.append("token", runner::token_json(&info)) {
                                return fail("Writing the transcript", e.to_string());
                            }
                        }
                    }
                    engine::Event::StepDone { step, result }
                }
                Err(e) => engine::Event::StepFailed {
                    step,
                    error: format!("{}: {e}", st.place(step)),
                },
            };
            Some(WorkerMsg::Engine(ev))
        }
        Effect::Record(r) => {
            match runner::record(&sess.script, &mut sess.journal, &mut sess.tr, r) {
                Ok(()) => None,
                Err(e) => fail("Writing the journal and transcript", e.to_string()),
            }
        }
        Effect::Finish => {
            // Secrets are not needed any more.
            sess.vault.clear();
            let res = runner::close_complete(&mut sess.journal, &mut sess.tr)
                .and_then(|()| runner::render_transcript_md(&sess.out))
                .map_err(|e| e.to_string());
            match res {
                Ok(_) => Some(WorkerMsg::CeremonyClosed {
                    transcript: sess.out.join(runner::TRANSCRIPT_MD),
                    complete: true,
                }),
                Err(e) => fail("Closing the transcript", e),
            }
        }
        Effect::Fail { .. } => {
            sess.vault.clear();
            match sess.tr.close("stopped") {
                Ok(()) => Some(WorkerMsg::CeremonyClosed {
                    transcript: sess.out.join(runner::TRANSCRIPT),
                    complete: false,
                }),
                Err(e) => fail("Closing the transcript", e.to_string()),
            }
        }
        // Needs are the console's to answer, never the worker's.
        Effect::NeedSignOff { .. }
        | Effect::NeedConfirm { .. }
        | Effect::NeedSecret { .. }
        | Effect::Rejected { .. } => None,
    }
}

fn sign_file(
    token: &mut dyn Token,
    key: &str,
    format: Format,
    opts: &signing::Options,
    pin: &Secret,
    input: &std::path::Path,
    output: &std::path::Path,
) -> Result<signing::SignRecord, String> {
    token
        .login(UserType::User, pin)
        .map_err(|e| e.to_string())?;
    let k =
        hsm::TokenKey::open(token, key).map_err(|e| keys::SignError::key(key, e).to_string())?;
    let mut k = signing::SigningKey::new(k);
    signing::sign_file(&mut k, format, opts, input, output).map_err(|e| e.to_string())
}
