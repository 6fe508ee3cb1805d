//! The worker thread owns the token. Token calls block (RSA-4096 generation takes
//! seconds), so the console sends a [`Request`] and keeps drawing; the answer comes back
//! as [`WorkerMsg`] on the console's event channel. Secrets travel inside
//! [`Secret`] and are dropped (zeroized) as soon as the call returns.
//!
//! A ceremony runs here in the one effect runner (`ceremony::runner`), the same one
//! `officiant run` uses: the worker's [`ConsoleInputs`] forwards each question the runner
//! asks (sign-off, confirmation, secret) to the screen and waits for the [`Reply`].

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};

use crate::approvals::{pending, signoff};
use crate::ceremony::custody::CustodyTurn;
use crate::ceremony::engine::{self, StepResult};
use crate::ceremony::inputs::{Answer, Danger, Delivery, Inputs, Progress};
use crate::ceremony::people::Participant;
use crate::ceremony::runner::{self, Session};
use crate::ceremony::script::Script;
use crate::formats::raw::Padding;
use crate::hsm::{self, BackendUri, ObjectInfo, Token, TokenInfo, UserType};
use crate::secret::Secret;
use crate::signing::{self, Format};

use super::event::Event;

#[derive(Debug)]
pub enum Request {
    Refresh,
    /// Log in as the user, then read the token again (private objects are listed only
    /// after a login).
    Login {
        pin: Secret,
    },
    /// Log in with `pin` and sign `input` into `output` in `format` with key `key`
    /// (the signing library checks the signature before it writes).
    SignFile {
        key: String,
        format: Format,
        padding: Option<Padding>,
        options: crate::signing::FormatOptions,
        pin: Secret,
        input: PathBuf,
        output: PathBuf,
        /// The signing transcript the session is recorded in.
        transcript: PathBuf,
    },
    /// Verify a signed image, or a detached signature, against the file in `pubkey`:
    /// the signer's public key, or for imx-hab4 and imx-ahab the SRK table whose hash is
    /// fused (see [`signing::verify_against`]).
    VerifyFile {
        format: Format,
        padding: Option<Padding>,
        pubkey: PathBuf,
        input: PathBuf,
        signature: Option<PathBuf>,
    },
    /// Parse and check a script against this token, lock `out` and read its journal
    /// (resume). The ceremony waits for [`Request::StartCeremony`].
    OpenCeremony {
        script: PathBuf,
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
        dir: PathBuf,
    },
    /// Approve the request file `path` with the ssh-agent's key `key` (its OpenSSH public
    /// key line) as approver `principal`: writes `REQ.PRINCIPAL.sig` beside it.
    ApproveRequest {
        path: PathBuf,
        key: String,
        principal: String,
    },
    /// What [`Request::SignFile`] does, under a signing request and its approvals (none
    /// given: the approval files beside the request).
    SignApproved {
        sign: Box<Request>,
        request: PathBuf,
        approvals: Vec<PathBuf>,
    },
}

/// What the person at the console answered.
#[derive(Debug)]
pub enum Reply {
    Roster(Vec<Participant>),
    SignOff(String),
    /// The reviewer who read the result aloud and found it matched.
    Acknowledge(String),
    Confirm,
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
    SignOff {
        step: usize,
        role: String,
        have: usize,
        need: usize,
    },
    Confirm {
        step: usize,
        danger: Danger,
    },
    Secret {
        step: usize,
        name: String,
        /// The step sets it: type it twice.
        sets: bool,
        /// Asked again: why the last value was refused.
        retry: Option<String>,
    },
    /// The reviewer reads step `step`'s result aloud and acknowledges it.
    Acknowledge {
        step: usize,
        role: String,
    },
    /// Who in `role` (not in `taken`) receives or gives a share of custody step `step`.
    Custodian {
        step: usize,
        role: String,
        turn: CustodyTurn,
        taken: Vec<String>,
    },
    /// Show share `index` of `of` to `custodian` alone, then take it back typed from their
    /// copy. `share` is its text (`T-I-DATA`).
    ShowShare {
        step: usize,
        custodian: String,
        index: u8,
        of: u8,
        threshold: u8,
        share: Secret,
        /// Shown again: why the copy typed back was refused.
        retry: Option<String>,
    },
    /// `custodian` types their share (restore).
    ShareEntry {
        step: usize,
        custodian: String,
        turn: CustodyTurn,
        retry: Option<String>,
    },
}

#[derive(Debug)]
pub enum WorkerMsg {
    Snapshot {
        info: TokenInfo,
        objects: Vec<ObjectInfo>,
    },
    OpenFailed(String),
    /// The token as a run sees it now (after init-token, its new label).
    TokenInfo(TokenInfo),
    /// The URI leaves the token open and the module shows several: choose one.
    Tokens(Vec<crate::hsm::TokenSummary>),
    Signed {
        /// The digest the token signed.
        digest: Vec<u8>,
        output: PathBuf,
        notes: Vec<String>,
        /// Where the session was recorded.
        transcript: PathBuf,
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
    /// The signing requests of a directory, reviewed.
    Requests(Box<RequestList>),
    /// An approval was written.
    Approved {
        request: PathBuf,
        signature: PathBuf,
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
        step: usize,
        reason: String,
    },
    /// A token operation of the run started (`Some(what)`) or ended (`None`).
    CeremonyBusy(Option<String>),
    /// The run ended; the transcript is closed (and rendered, when complete).
    CeremonyClosed {
        transcript: PathBuf,
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
    pub dir: PathBuf,
    pub pending: Vec<pending::Pending>,
    /// The ssh-agent's keys, or why there are none.
    pub agent: Result<Vec<pending::AgentKey>, String>,
    /// The token's policy (label, SHA-256), if it holds one.
    pub policy: Option<(String, [u8; 32])>,
    /// When it was reviewed (seconds since 1970): expiry is shown relative to it.
    pub now: u64,
}

#[derive(Debug)]
pub struct Opened {
    pub script: Script,
    pub out: PathBuf,
    pub completed: Vec<(usize, StepResult)>,
    pub interrupted: Option<usize>,
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

/// Run the ceremony to its end in the one runner; the screen answers its questions.
fn run_ceremony(
    sess: Session,
    token: &mut dyn Token,
    uri: &str,
    rx: &Receiver<Request>,
    send: &dyn Fn(WorkerMsg) -> bool,
    agent: Option<&std::path::Path>,
) -> WorkerMsg {
    let out = sess.out.clone();
    let mut inputs = ConsoleInputs { rx, send, agent };
    let res = sess.run(
        token,
        uri,
        serde_json::json!({"face": "console"}),
        &mut inputs,
    );
    match res {
        Ok(summary) => WorkerMsg::CeremonyClosed {
            transcript: out.join(runner::TRANSCRIPT_MD),
            complete: true,
            error: None,
            head: Some(summary.head),
        },
        Err(e) => WorkerMsg::CeremonyClosed {
            transcript: out.join(runner::TRANSCRIPT),
            complete: false,
            error: Some(e.to_string()),
            head: None,
        },
    }
}

/// The console's answers: each question goes to the screen; the worker waits for the
/// reply (other requests meanwhile are refused: the token is in the run's hands).
struct ConsoleInputs<'a> {
    rx: &'a Receiver<Request>,
    send: &'a dyn Fn(WorkerMsg) -> bool,
    /// The ssh-agent signed sign-offs are made with.
    agent: Option<&'a std::path::Path>,
}

impl ConsoleInputs<'_> {
    fn ask(&mut self, q: Question) -> Reply {
        if !(self.send)(WorkerMsg::Ask(q)) {
            return Reply::Abort("the console closed".into());
        }
        loop {
            match self.rx.recv() {
                Ok(Request::Reply(r)) => return r,
                Ok(other) => {
                    let what = other.describe();
                    if !(self.send)(WorkerMsg::Failed {
                        what,
                        cause: "a ceremony is running; finish or abort it first".into(),
                    }) {
                        return Reply::Abort("the console closed".into());
                    }
                }
                Err(_) => return Reply::Abort("the console closed".into()),
            }
        }
    }
}

fn unexpected<T>(r: Reply) -> Answer<T> {
    match r {
        Reply::Abort(reason) => Answer::Abort(reason),
        other => Answer::Abort(format!("the console answered out of turn ({other:?})")),
    }
}

impl Inputs for ConsoleInputs<'_> {
    fn roster(&mut self, _script: &Script) -> Answer<Vec<Participant>> {
        match self.ask(Question::Roster) {
            Reply::Roster(r) => Answer::Given(r),
            other => unexpected(other),
        }
    }

    fn acknowledge(
        &mut self,
        _script: &Script,
        step: usize,
        role: &str,
        _result: &StepResult,
    ) -> Answer<String> {
        match self.ask(Question::Acknowledge {
            step,
            role: role.to_string(),
        }) {
            Reply::Acknowledge(name) => Answer::Given(name),
            other => unexpected(other),
        }
    }

    fn sign_off(
        &mut self,
        _script: &Script,
        step: usize,
        role: &str,
        have: usize,
        need: usize,
    ) -> Answer<String> {
        match self.ask(Question::SignOff {
            step,
            role: role.to_string(),
            have,
            need,
        }) {
            Reply::SignOff(name) => Answer::Given(name),
            other => unexpected(other),
        }
    }

    /// The person is picked from the roll call, as for any sign-off; then their key in
    /// the ssh-agent signs (the one the allowed signers let them sign off with). A person
    /// with no such key is told so and asked again.
    fn signed_sign_off(
        &mut self,
        _script: &Script,
        step: usize,
        role: &str,
        have: usize,
        need: usize,
        ask: &signoff::Ask,
    ) -> Answer<signoff::Signed> {
        loop {
            let name = match self.ask(Question::SignOff {
                step,
                role: role.to_string(),
                have,
                need,
            }) {
                Reply::SignOff(name) => name,
                other => return unexpected(other),
            };
            let signed = match self.agent {
                None => Err(crate::approvals::agent::Error::NoAgent.to_string()),
                Some(socket) => {
                    (self.send)(WorkerMsg::CeremonyBusy(Some(format!(
                        "{name} signs off with their ssh-agent key (touch it if it blinks)"
                    ))));
                    let r = signoff::sign_with_agent(
                        socket,
                        &ask.signers,
                        &name,
                        &ask.message,
                        crate::approvals::time::now(),
                    );
                    (self.send)(WorkerMsg::CeremonyBusy(None));
                    r
                }
            };
            match signed {
                Ok(signature) => return Answer::Given(signoff::Signed { name, signature }),
                Err(reason) => {
                    if !(self.send)(WorkerMsg::Rejected { step, reason }) {
                        return Answer::Abort("the console closed".into());
                    }
                }
            }
        }
    }

    fn confirm(&mut self, _script: &Script, step: usize, danger: &Danger) -> Answer<()> {
        match self.ask(Question::Confirm {
            step,
            danger: danger.clone(),
        }) {
            Reply::Confirm => Answer::Given(()),
            other => unexpected(other),
        }
    }

    fn secret(
        &mut self,
        _script: &Script,
        step: usize,
        name: &str,
        sets: bool,
        retry: Option<&str>,
    ) -> Answer<Secret> {
        match self.ask(Question::Secret {
            step,
            name: name.to_string(),
            sets,
            retry: retry.map(str::to_string),
        }) {
            Reply::Secret(v) => Answer::Given(v),
            other => unexpected(other),
        }
    }

    fn rejected(&mut self, _script: &Script, step: usize, reason: &str) -> Answer<()> {
        (self.send)(WorkerMsg::Rejected {
            step,
            reason: reason.to_string(),
        });
        Answer::Given(())
    }

    fn custodian(
        &mut self,
        _script: &Script,
        step: usize,
        role: &str,
        turn: CustodyTurn,
        taken: &[String],
    ) -> Answer<String> {
        match self.ask(Question::Custodian {
            step,
            role: role.to_string(),
            turn,
            taken: taken.to_vec(),
        }) {
            Reply::Custodian(name) => Answer::Given(name),
            other => unexpected(other),
        }
    }

    fn deliver_share(&mut self, _script: &Script, step: usize, d: &Delivery<'_>) -> Answer<Secret> {
        match self.ask(Question::ShowShare {
            step,
            custodian: d.custodian.to_string(),
            index: d.share.index(),
            of: d.of,
            threshold: d.share.threshold(),
            share: d.share.to_text(),
            retry: d.retry.map(str::to_string),
        }) {
            Reply::ShareCopy(copy) => Answer::Given(copy),
            other => unexpected(other),
        }
    }

    fn receive_share(
        &mut self,
        _script: &Script,
        step: usize,
        custodian: &str,
        turn: CustodyTurn,
        retry: Option<&str>,
    ) -> Answer<Secret> {
        match self.ask(Question::ShareEntry {
            step,
            custodian: custodian.to_string(),
            turn,
            retry: retry.map(str::to_string),
        }) {
            Reply::Share(s) => Answer::Given(s),
            other => unexpected(other),
        }
    }

    fn progress(&mut self, _script: &Script, p: Progress<'_>) {
        let m = match p {
            Progress::State(st) => WorkerMsg::CeremonyState(Box::new(st.clone())),
            Progress::Busy(what) => WorkerMsg::CeremonyBusy(Some(what.to_string())),
            Progress::Idle => WorkerMsg::CeremonyBusy(None),
            Progress::Token(info) => WorkerMsg::TokenInfo(info.clone()),
        };
        (self.send)(m);
    }
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
        Request::SignFile {
            key,
            format,
            padding,
            options,
            pin,
            input,
            output,
            transcript,
        } => {
            let signed = options.to_options(padding).and_then(|opts| {
                let job = SignJob {
                    key: &key,
                    format,
                    opts: &opts,
                    input: &input,
                    output: &output,
                    transcript: &transcript,
                };
                sign_file(token, uri, &job, &pin)
            });
            match signed {
                Ok(rec) => WorkerMsg::Signed {
                    digest: hex::decode(&rec.signed_digest).unwrap_or_default(),
                    output: rec.output,
                    notes: rec.notes,
                    transcript,
                },
                Err(cause) => failed(cause),
            }
        }
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
            let anchor = if format.anchored_by_srk_table() {
                signing::TrustAnchor::SrkTable(&pubkey)
            } else {
                signing::TrustAnchor::PublicKey(&pubkey)
            };
            match signing::verify_against(format, anchor, &input, signature.as_deref(), padding) {
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
        Request::SignApproved {
            sign,
            request,
            approvals,
        } => match *sign {
            Request::SignFile {
                key,
                format,
                padding,
                options,
                pin,
                input,
                output,
                transcript,
            } => {
                let approvals = if approvals.is_empty() {
                    pending::approval_files(&request)
                } else {
                    approvals
                };
                let signed = crate::approvals::Presented::load(&request, &approvals)
                    .map_err(|e| e.to_string())
                    .and_then(|presented| {
                        let opts = options.to_options(padding)?;
                        let job = SignJob {
                            key: &key,
                            format,
                            opts: &opts,
                            input: &input,
                            output: &output,
                            transcript: &transcript,
                        };
                        sign_file_under(token, uri, &job, &pin, Some(&presented))
                    });
                match signed {
                    Ok(rec) => WorkerMsg::Signed {
                        digest: hex::decode(&rec.signed_digest).unwrap_or_default(),
                        output: rec.output,
                        notes: rec.notes,
                        transcript,
                    },
                    Err(cause) => failed(cause),
                }
            }
            _ => failed("only a file signing can be approved".into()),
        },
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

/// What `officiant run` does before its first step, on the token the console holds:
/// parse and check the script, check it against the token, lock the out dir and read
/// its journal to resume.
fn open_ceremony(
    token: &mut dyn Token,
    uri: &str,
    path: &std::path::Path,
    out: &std::path::Path,
) -> Result<(Session, Opened), String> {
    let (script, plan, _) = runner::prepare(path, None).map_err(|e| e.to_string())?;
    runner::check_against(&script, &plan, token, uri).map_err(|e| e.to_string())?;
    let sess = Session::open(script, out).map_err(|e| e.to_string())?;
    if sess.is_complete() {
        return Err(format!(
            "this ceremony already ran to completion in {} (see its transcript.md)",
            out.display()
        ));
    }
    let (completed, interrupted) = sess.resume_point();
    let opened = Opened {
        script: sess.script.clone(),
        out: out.to_path_buf(),
        completed,
        interrupted,
        resumed: sess.resumed(),
        state: engine::preview(&sess.script, sess.start_event()),
    };
    Ok((sess, opened))
}

/// What the sign screen asked to sign.
struct SignJob<'a> {
    key: &'a str,
    format: Format,
    opts: &'a signing::Options,
    input: &'a std::path::Path,
    output: &'a std::path::Path,
    transcript: &'a std::path::Path,
}

/// Log in, then sign through the same recorded session `officiant sign` uses.
fn sign_file(
    token: &mut dyn Token,
    uri: &str,
    j: &SignJob<'_>,
    pin: &Secret,
) -> Result<signing::SignRecord, String> {
    sign_file_under(token, uri, j, pin, None)
}

/// [`sign_file`] under a signing request and its approvals (the approval gate decides);
/// the grant is added to the record's notes.
fn sign_file_under(
    token: &mut dyn Token,
    uri: &str,
    j: &SignJob<'_>,
    pin: &Secret,
    request: Option<&crate::approvals::Presented>,
) -> Result<signing::SignRecord, String> {
    token
        .login(UserType::User, pin)
        .map_err(|e| e.to_string())?;
    if let Some(dir) = j.transcript.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let inputs = [j.input.to_path_buf()];
    let job = signing::recorded::Job {
        backend: uri,
        key: j.key,
        request,
        format: j.format,
        opts: j.opts,
        inputs: &inputs,
        outputs: signing::recorded::Outputs::File(j.output),
        transcript: j.transcript,
    };
    let mut granted = Vec::new();
    let mut done = signing::recorded::sign_recorded(token, &job, &mut |n| {
        if let signing::recorded::Note::Approved { grant, used } = n {
            granted.push(format!("{grant}; {used} use(s) before this one"));
        }
    })
    .map_err(|e| e.to_string())?;
    let mut rec = done
        .pop()
        .ok_or_else(|| "the signing session recorded no signature".to_string())?;
    rec.notes.extend(granted);
    Ok(rec)
}

/// The Approvals screen's requests: review a directory, or approve one request through
/// the ssh-agent. The token's policy says who the approvers are.
fn serve_approvals(
    token: &mut dyn Token,
    agent: Option<&std::path::Path>,
    req: Request,
) -> WorkerMsg {
    let what = req.describe();
    let failed = |cause: String| WorkerMsg::Failed {
        what: what.clone(),
        cause,
    };
    let now = pending::now();
    let info = match token.info() {
        Ok(i) => i,
        Err(e) => return failed(e.to_string()),
    };
    let policy = match crate::approvals::store::read_policy(token) {
        Ok(p) => p,
        Err(e) => return failed(e.to_string()),
    };
    match req {
        Request::ListRequests { dir } => {
            let side = pending::TokenSide {
                serial: &info.serial,
                policy: policy.as_ref(),
            };
            let list = match pending::scan(&dir, &side, now) {
                Ok(l) => l,
                Err(e) => return failed(e),
            };
            let agent = match agent {
                None => Err(crate::approvals::agent::Error::NoAgent.to_string()),
                Some(sock) => crate::approvals::agent::identities(sock)
                    .map(|k| pending::agent_keys(&k, policy.as_ref(), now))
                    .map_err(|e| e.to_string()),
            };
            WorkerMsg::Requests(Box::new(RequestList {
                dir,
                pending: list,
                agent,
                policy: policy.map(|p| (p.label, p.sha256)),
                now,
            }))
        }
        Request::ApproveRequest {
            path,
            key,
            principal,
        } => {
            let Some(sock) = agent else {
                return failed(crate::approvals::agent::Error::NoAgent.to_string());
            };
            let side = pending::TokenSide {
                serial: &info.serial,
                policy: policy.as_ref(),
            };
            // Reviewed again now: the file as it is, not as it was listed.
            let p = pending::review(&path, &side, now);
            let req = match &p.request {
                Ok(r) => r.clone(),
                Err(e) => return failed(format!("{}: {e}", path.display())),
            };
            if p.expired {
                return failed(format!(
                    "request {} expired at {}; nothing to approve",
                    req.id, req.not_after
                ));
            }
            if let Some(why) = &p.unusable {
                return failed(format!("request {}: {why}", req.id));
            }
            let public = match ssh_key::PublicKey::from_openssh(&key) {
                Ok(k) => k,
                Err(e) => return failed(format!("the chosen key: {e}")),
            };
            let allowed = pending::agent_keys(std::slice::from_ref(&public), policy.as_ref(), now);
            if !allowed
                .first()
                .is_some_and(|k| k.approver.contains(&principal))
            {
                return failed(format!(
                    "the token's policy does not let key {} approve as {principal}",
                    crate::approvals::signers::fingerprint(public.key_data())
                ));
            }
            let out = pending::approval_path(&path, &principal);
            if out.symlink_metadata().is_ok() {
                return failed(format!(
                    "{} exists: {principal} approved this request already",
                    out.display()
                ));
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) if crate::output::sha256(&b) == p.sha256 => b,
                Ok(_) => {
                    return failed(format!("{} changed while it was reviewed", path.display()))
                }
                Err(e) => return failed(format!("{}: {e}", path.display())),
            };
            let signed = crate::approvals::agent::sign(
                sock,
                Some(&public),
                crate::approvals::APPROVAL_NAMESPACE,
                &bytes,
            )
            .map_err(|e| e.to_string())
            .and_then(|sig| crate::approvals::agent::armor(&sig).map_err(|e| e.to_string()))
            .and_then(|text| {
                crate::output::write_new(&out, text.as_bytes()).map_err(|e| e.to_string())
            });
            match signed {
                Ok(()) => WorkerMsg::Approved {
                    request: path,
                    signature: out,
                    principal,
                },
                Err(e) => failed(e),
            }
        }
        _ => failed("not an approval request".into()),
    }
}
