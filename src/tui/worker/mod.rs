//! The worker thread owns the token. Token calls block (RSA-4096 generation takes
//! seconds), so the console sends a [`Request`] and keeps drawing; the answer comes back
//! as [`WorkerMsg`] on the console's event channel. Secrets travel inside
//! [`Secret`] and are dropped (zeroized) as soon as the call returns.
//!
//! A ceremony runs here in the one effect runner (`ceremony::runner`), the same one
//! `officiant run` uses: the worker's `ConsoleInputs` forwards each question the runner
//! asks (sign-off, confirmation, secret) to the screen and waits for the [`Reply`].
//!
//! This file holds the messages and the thread; the ceremony's questions are in
//! `ceremony`, the sign and verify requests in `sign`, the Approvals screen's in
//! `approvals`.

mod approvals;
mod ceremony;
mod sign;

use std::path::PathBuf;
use std::sync::mpsc::{channel, Sender};

use crate::approvals::pending;
use crate::ceremony::custody::CustodyTurn;
use crate::ceremony::engine::{self, StepResult};
use crate::ceremony::inputs::Danger;
use crate::ceremony::people::Participant;
use crate::ceremony::runner::Session;
use crate::ceremony::script::Script;
use crate::formats::raw::Padding;
use crate::hsm::{self, BackendUri, ObjectInfo, Token, TokenInfo, UserType};
use crate::secret::Secret;
use crate::signing::Format;

use super::event::Event;
use approvals::serve_approvals;
use ceremony::{open_ceremony, run_ceremony};
use sign::{sign_request, verify_file};

/// What the console asks the worker to do with the token.
#[derive(Debug)]
pub enum Request {
    /// Read the token's info and object list again.
    Refresh,
    /// Log in as the user, then read the token again (private objects are listed only
    /// after a login).
    Login {
        /// The user PIN, dropped once the login returns.
        pin: Secret,
    },
    /// Log in with `pin` and sign `input` into `output` in `format` with key `key`
    /// (the signing library checks the signature before it writes).
    SignFile {
        /// The signing key's label.
        key: String,
        /// The signing format.
        format: Format,
        /// RSA padding for the raw format (`None`: the format's own).
        padding: Option<Padding>,
        /// The format's options (key table, SRK table and index, ...).
        options: crate::signing::FormatOptions,
        /// The user PIN, dropped once the session ends.
        pin: Secret,
        /// The file to sign.
        input: PathBuf,
        /// Where the signed file (or detached signature) goes; never overwritten.
        output: PathBuf,
        /// The signing transcript the session is recorded in.
        transcript: PathBuf,
    },
    /// Verify a signed image, or a detached signature, against the file in `pubkey`:
    /// the signer's public key, or for imx-hab4 and imx-ahab the SRK table whose hash is
    /// fused (see [`crate::signing::verify_against`]).
    VerifyFile {
        /// The format the file is signed in.
        format: Format,
        /// RSA padding for the raw format (`None`: the format's own).
        padding: Option<Padding>,
        /// The public key (PEM) or SRK table.
        pubkey: PathBuf,
        /// The signed file, or the data a detached signature covers.
        input: PathBuf,
        /// The detached signature (raw format only).
        signature: Option<PathBuf>,
    },
    /// Parse and check a script against this token, lock `out` and read its journal
    /// (resume). The ceremony waits for [`Request::StartCeremony`].
    OpenCeremony {
        /// The ceremony script.
        script: PathBuf,
        /// The out dir (outputs, journal, transcript).
        out: PathBuf,
    },
    /// Run (or resume) the opened ceremony.
    StartCeremony,
    /// Let go of the opened ceremony without running it (releases its out dir).
    CloseCeremony,
    /// The answer to the runner's last question.
    Reply(Reply),
    /// Read the signing requests in `dir`, each reviewed against the token's policy, and
    /// the keys in the ssh-agent.
    ListRequests {
        /// The directory of `*.json` requests and their `.sig` approvals.
        dir: PathBuf,
    },
    /// Approve the request file `path` with the ssh-agent's key `key` (its OpenSSH public
    /// key line) as approver `principal`: writes `REQ.PRINCIPAL.sig` beside it.
    ApproveRequest {
        /// The request file.
        path: PathBuf,
        /// The agent key's OpenSSH public key line.
        key: String,
        /// The approver's principal in the allowed signers.
        principal: String,
    },
    /// What [`Request::SignFile`] does, under a signing request and its approvals (none
    /// given: the approval files beside the request).
    SignApproved {
        /// The [`Request::SignFile`] to run.
        sign: Box<Request>,
        /// The signing request file.
        request: PathBuf,
        /// The approval signatures (empty: those beside the request).
        approvals: Vec<PathBuf>,
    },
}

/// What the person at the console answered.
#[derive(Debug)]
pub enum Reply {
    /// The participants of the roll call, with their roles.
    Roster(Vec<Participant>),
    /// The participant who signs off (picked from the roster).
    SignOff(String),
    /// The reviewer who read the result aloud and found it matched.
    Acknowledge(String),
    /// Proceed with the dangerous step (its token label was typed).
    Confirm,
    /// The secret asked for (PIN, passphrase, auth-key password).
    Secret(Secret),
    /// The custodian who receives or gives a share.
    Custodian(String),
    /// The share as the custodian typed it back from their copy.
    ShareCopy(Secret),
    /// The share a custodian gives (restore).
    Share(Secret),
    /// Stop the run (recorded in the transcript with this reason).
    Abort(String),
}

impl Request {
    /// What the progress indicator says while this runs.
    pub fn describe(&self) -> String {
        match self {
            Request::Refresh => "Reading the token".into(),
            Request::Login { .. } => "Logging in".into(),
            Request::SignFile { input, .. } => format!("Signing {}", input.display()),
            Request::VerifyFile { input, .. } => format!("Verifying {}", input.display()),
            Request::OpenCeremony { script, .. } => format!("Checking {}", script.display()),
            Request::StartCeremony => "Opening the token".into(),
            Request::CloseCeremony | Request::Reply(_) => "Recording".into(),
            Request::ListRequests { dir } => format!("Reading the requests in {}", dir.display()),
            Request::ApproveRequest { principal, .. } => {
                format!("Approving as {principal} with the ssh-agent (touch the key if it blinks)")
            }
            Request::SignApproved { sign, .. } => sign.describe(),
        }
    }
}

/// A question of the runner, for the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// The roll call: who is present, in which roles.
    Roster,
    /// A sign-off in `role` before step `step`: `have` of the `need` given.
    SignOff {
        /// The step (0-based).
        step: usize,
        /// The role that signs.
        role: String,
        /// Sign-offs in this role given so far.
        have: usize,
        /// Sign-offs in this role needed.
        need: usize,
    },
    /// Confirm the destructive step `step`, which would destroy what `danger` names.
    Confirm {
        /// The step (0-based).
        step: usize,
        /// What it destroys: token label, serial, slot, objects.
        danger: Danger,
    },
    /// A secret for step `step`.
    Secret {
        /// The step (0-based).
        step: usize,
        /// Which secret ("user PIN", "passphrase of ...").
        name: String,
        /// The step sets it: type it twice.
        sets: bool,
        /// Asked again: why the last value was refused.
        retry: Option<String>,
    },
    /// The reviewer reads step `step`'s result aloud and acknowledges it.
    Acknowledge {
        /// The step (0-based).
        step: usize,
        /// The role that reviews.
        role: String,
    },
    /// Who in `role` (not in `taken`) receives or gives a share of custody step `step`.
    Custodian {
        /// The step (0-based).
        step: usize,
        /// The custodians' role.
        role: String,
        /// Whether they receive a share (which of how many) or give one.
        turn: CustodyTurn,
        /// Custodians who already had their turn.
        taken: Vec<String>,
    },
    /// Show share `index` of `of` to `custodian` alone, then take it back typed from their
    /// copy. `share` is its text (`T-I-DATA`).
    ShowShare {
        /// The step (0-based).
        step: usize,
        /// Who receives it.
        custodian: String,
        /// The share's index (1-based).
        index: u8,
        /// How many shares there are.
        of: u8,
        /// How many rebuild the key.
        threshold: u8,
        /// The share's text, zeroized when the question is dropped.
        share: Secret,
        /// Shown again: why the copy typed back was refused.
        retry: Option<String>,
    },
    /// `custodian` types their share (restore).
    ShareEntry {
        /// The step (0-based).
        step: usize,
        /// Who gives it.
        custodian: String,
        /// Which of the shares the step takes this one is.
        turn: CustodyTurn,
        /// Asked again: why the last share was refused.
        retry: Option<String>,
    },
}

/// What the worker reports back, as an event on the console's channel.
#[derive(Debug)]
pub enum WorkerMsg {
    /// The token as read now.
    Snapshot {
        /// Label, serial, model, flags.
        info: TokenInfo,
        /// The objects visible in the session (private ones after a login).
        objects: Vec<ObjectInfo>,
    },
    /// The backend could not be opened (the message says why).
    OpenFailed(String),
    /// The token as a run sees it now (after init-token, its new label).
    TokenInfo(TokenInfo),
    /// The URI leaves the token open and the module shows several: choose one.
    Tokens(Vec<crate::hsm::TokenSummary>),
    /// A file was signed, its signature checked and written.
    Signed {
        /// The digest the token signed.
        digest: Vec<u8>,
        /// The signed file or signature written.
        output: PathBuf,
        /// What the format reports (offsets, key slots, ...).
        notes: Vec<String>,
        /// Where the session was recorded.
        transcript: PathBuf,
    },
    /// A verification's verdict.
    Verified {
        /// SHA-256 of the input.
        digest: Vec<u8>,
        /// Whether every signature checked.
        ok: bool,
        /// What was checked, or why it failed.
        lines: Vec<String>,
    },
    /// A request failed before it could report.
    Failed {
        /// What was being done.
        what: String,
        /// Why it failed (one line, no secret).
        cause: String,
    },
    /// The signing requests of a directory, reviewed.
    Requests(Box<RequestList>),
    /// An approval was written.
    Approved {
        /// The request approved.
        request: PathBuf,
        /// The approval signature written beside it.
        signature: PathBuf,
        /// Who approved.
        principal: String,
    },
    /// A ceremony is ready to start (or resume).
    CeremonyOpened(Box<Opened>),
    /// The runner's engine state changed.
    CeremonyState(Box<engine::State>),
    /// The runner asks.
    Ask(Question),
    /// The runner refused the last answer; it asks again.
    Rejected {
        /// The step (0-based).
        step: usize,
        /// Why the answer was refused.
        reason: String,
    },
    /// A token operation of the run started (`Some(what)`) or ended (`None`).
    CeremonyBusy(Option<String>),
    /// The run ended; the transcript is closed (and rendered, when complete).
    CeremonyClosed {
        /// The run's transcript.
        transcript: PathBuf,
        /// Whether every step ran.
        complete: bool,
        /// Why the run stopped (`None` when it completed).
        error: Option<String>,
        /// The transcript head, when complete.
        head: Option<String>,
    },
}

/// The requests an approver reviews, and the keys they may approve with.
#[derive(Debug)]
pub struct RequestList {
    /// The directory read.
    pub dir: PathBuf,
    /// Each request with its review against the token's policy.
    pub pending: Vec<pending::Pending>,
    /// The ssh-agent's keys, or why there are none.
    pub agent: Result<Vec<pending::AgentKey>, String>,
    /// The token's policy (label, SHA-256), if it holds one.
    pub policy: Option<(String, [u8; 32])>,
    /// When it was reviewed (seconds since 1970): expiry is shown relative to it.
    pub now: u64,
}

/// A ceremony checked against the token, its out dir locked and its journal read.
#[derive(Debug)]
pub struct Opened {
    /// The parsed script.
    pub script: Script,
    /// The locked out dir.
    pub out: PathBuf,
    /// Steps the journal records as done, with their results.
    pub completed: Vec<(usize, StepResult)>,
    /// A step the journal shows started and not finished.
    pub interrupted: Option<usize>,
    /// Whether a journal was found (this run resumes).
    pub resumed: bool,
    /// The engine state as the journal leaves it, for the resume screen.
    pub state: engine::State,
}

/// Open `uri` on a new thread and serve requests until the sender is dropped. Signed
/// sign-offs and approvals use the ssh-agent `SSH_AUTH_SOCK` names now.
pub fn spawn(uri: String, events: Sender<Event>) -> Sender<Request> {
    spawn_with(uri, events, crate::approvals::agent::socket_from_env().ok())
}

/// [`spawn`] with the ssh-agent at `agent` (its socket), or none.
pub fn spawn_with(uri: String, events: Sender<Event>, agent: Option<PathBuf>) -> Sender<Request> {
    let (tx, rx) = channel::<Request>();
    std::thread::spawn(move || {
        let send = |m: WorkerMsg| events.send(Event::Worker(m)).is_ok();
        let mut token = match BackendUri::parse(&uri).and_then(|u| hsm::open(&u, None)) {
            Ok(t) => t,
            Err(e) => {
                send(WorkerMsg::OpenFailed(e.to_string()));
                // Still answer requests so the console never waits forever.
                for req in &rx {
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
        if let Ok(list) = BackendUri::parse(&uri).and_then(|u| hsm::tokens_to_choose(&u)) {
            if !list.is_empty() && !send(WorkerMsg::Tokens(list)) {
                return;
            }
        }
        if !send(snapshot(token.as_mut())) {
            return;
        }
        let mut opened: Option<Session> = None;
        while let Ok(req) = rx.recv() {
            let reply = match req {
                Request::OpenCeremony { script, out } => {
                    // A ceremony opened before and not started lets go of its out dir.
                    opened = None;
                    match open_ceremony(token.as_mut(), &uri, &script, &out) {
                        Ok((sess, o)) => {
                            opened = Some(sess);
                            Some(WorkerMsg::CeremonyOpened(Box::new(o)))
                        }
                        Err(cause) => Some(WorkerMsg::Failed {
                            what: format!("Opening {}", script.display()),
                            cause,
                        }),
                    }
                }
                Request::StartCeremony => match opened.take() {
                    Some(sess) => Some(run_ceremony(
                        sess,
                        token.as_mut(),
                        &uri,
                        &rx,
                        &send,
                        agent.as_deref(),
                    )),
                    None => Some(WorkerMsg::Failed {
                        what: "The ceremony".into(),
                        cause: "no ceremony is open".into(),
                    }),
                },
                Request::CloseCeremony => {
                    opened = None;
                    None
                }
                // No run is asking: a stray answer (the screen raced the run's end).
                Request::Reply(_) => None,
                r @ (Request::ListRequests { .. } | Request::ApproveRequest { .. }) => {
                    Some(serve_approvals(token.as_mut(), agent.as_deref(), r))
                }
                other => Some(serve(token.as_mut(), &uri, other)),
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
pub fn serve(token: &mut dyn Token, uri: &str, req: Request) -> WorkerMsg {
    let what = req.describe();
    let failed = |cause: String| WorkerMsg::Failed {
        what: what.clone(),
        cause,
    };
    match req {
        Request::Refresh => snapshot(token),
        Request::Login { pin } => match token.login(UserType::User, &pin) {
            Ok(()) => snapshot(token),
            Err(e) => failed(e.to_string()),
        },
        sign @ Request::SignFile { .. } => {
            sign_request(token, uri, sign, None).unwrap_or_else(&failed)
        }
        Request::VerifyFile {
            format,
            padding,
            pubkey,
            input,
            signature,
        } => verify_file(format, padding, &pubkey, &input, signature.as_deref())
            .unwrap_or_else(&failed),
        Request::SignApproved {
            sign,
            request,
            approvals,
        } => sign_request(token, uri, *sign, Some((&request, approvals))).unwrap_or_else(&failed),
        Request::OpenCeremony { .. }
        | Request::StartCeremony
        | Request::CloseCeremony
        | Request::Reply(_)
        | Request::ListRequests { .. }
        | Request::ApproveRequest { .. } => {
            failed("the ceremony and approval requests are served by the worker loop".into())
        }
    }
}
