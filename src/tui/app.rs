//! The console's one state and its one pure `update`. Views read `&AppState`; the run loop
//! feeds [`Event`]s in and carries out the [`Command`]s that come back (worker requests,
//! file writes). Nothing here touches the terminal or the token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use crate::cli::sign::FormatOptions;
use crate::formats::raw::Padding;
use crate::formats::words::Fingerprint;
use crate::hsm::{ObjectClass, ObjectInfo, TokenInfo};
use crate::keys::SignScheme;
use crate::signing::{self, Format};

use super::event::Event;
use super::keymap::{self, Action, Context};
use super::plan::{self, CeremonySummary};
use super::views::widgets::{PathEntry, SecretEntry, TextInput};
use super::worker::{Opened, Question, Reply, Request, WorkerMsg};
use crate::ceremony::engine::{self, StepResult};
use crate::ceremony::script::Script;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Home,
    Ceremony,
    Sign,
}

#[derive(Debug)]
pub enum TokenStatus {
    Opening,
    Ready(TokenInfo),
    Failed(String),
}

/// One object, ready to show.
#[derive(Debug, Clone)]
pub struct ObjectRow {
    pub label: String,
    pub id: String,
    pub class: ObjectClass,
    pub key_type: String,
    pub flags: String,
    pub fingerprint: Option<Fingerprint>,
    pub scheme: Option<SignScheme>,
}

impl ObjectRow {
    pub fn of(o: &ObjectInfo) -> Self {
        let f = &o.flags;
        let mut flags = Vec::new();
        for (name, v) in [
            ("sensitive", f.sensitive),
            ("never-extractable", f.never_extractable),
            ("extractable", f.extractable),
            ("local", f.local),
        ] {
            if v == Some(true) {
                flags.push(name);
            }
        }
        ObjectRow {
            label: o.label.clone(),
            id: hex::encode(&o.id),
            class: o.class.clone(),
            key_type: o.key_type(),
            flags: flags.join(" "),
            fingerprint: o
                .public_key
                .as_ref()
                .map(|k| Fingerprint::of(&k.fingerprint())),
            scheme: o.public_key.as_ref().map(|k| k.default_scheme()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HomePane {
    Ceremonies,
    Objects,
}

#[derive(Debug)]
pub struct HomeState {
    pub pane: HomePane,
    pub ceremony: usize,
    pub object: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    Running,
    Done,
    /// Done in an earlier, interrupted run (read from the journal).
    Resumed,
    Failed,
    Skipped,
}

impl StepStatus {
    /// A symbol that carries the state without colour (NO_COLOR).
    pub fn symbol(self) -> &'static str {
        match self {
            StepStatus::Pending => "·",
            StepStatus::Running => "▶",
            StepStatus::Done => "✓",
            StepStatus::Resumed => "↺",
            StepStatus::Failed => "✗",
            StepStatus::Skipped => "–",
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Resumed => "resumed",
            StepStatus::Failed => "FAILED",
            StepStatus::Skipped => "skipped",
        }
    }
}

/// What the ceremony waits for from the person at the keyboard (an engine `Need*`).
#[derive(Debug)]
pub enum Need {
    /// The `have+1`-th of `need` people in `role` signs off step `step` by name.
    SignOff {
        step: usize,
        role: String,
        have: usize,
        need: usize,
        input: TextInput,
    },
    /// The value of the engine's secret `name`.
    Secret {
        step: usize,
        name: String,
        entry: SecretEntry,
    },
}

/// Steps an earlier run completed, and the one it was running when interrupted.
pub type FromJournal = (Vec<(usize, StepResult)>, Option<usize>);

/// A ceremony at the console: the engine's script and state, plus what only a face has
/// (the need on screen, the journal read before starting, how the run ended).
#[derive(Debug)]
pub struct CeremonyRun {
    pub script: Script,
    pub engine: engine::State,
    pub out: PathBuf,
    /// From the journal, until the operator starts: steps done and the one interrupted.
    pub journal: Option<FromJournal>,
    pub resumed: bool,
    pub need: Option<Need>,
    /// Why the engine refused the last input (shown with the need it asks again).
    pub rejected: Option<String>,
    /// The transcript once the run has ended, and whether it completed.
    pub closed: Option<(PathBuf, bool)>,
    /// The operator started the run (the worker's runner drives it from then on).
    pub started: bool,
    /// The runner waits for an answer from this screen.
    pub asking: bool,
}

impl CeremonyRun {
    pub fn new(o: Opened) -> Self {
        let engine = engine::State::new(&o.script);
        CeremonyRun {
            script: o.script,
            engine,
            out: o.out,
            journal: Some((o.completed, o.interrupted)),
            resumed: o.resumed,
            need: None,
            rejected: None,
            closed: None,
            started: false,
            asking: false,
        }
    }
    pub fn started(&self) -> bool {
        self.started
    }
    pub fn finished(&self) -> bool {
        self.engine.is_over() || self.closed.is_some()
    }
    pub fn in_progress(&self) -> bool {
        self.started() && !self.finished()
    }
    /// The step on screen: the failed or running one, else the next to run.
    pub fn focus(&self) -> usize {
        let st = &self.engine.steps;
        st.iter()
            .position(|s| matches!(s.status, engine::StepStatus::Failed(_)))
            .or_else(|| self.engine.current())
            .unwrap_or(st.len().saturating_sub(1))
    }
    pub fn status(&self, i: usize) -> StepStatus {
        match &self.engine.steps[i].status {
            engine::StepStatus::Pending if self.finished() => StepStatus::Skipped,
            engine::StepStatus::Pending => StepStatus::Pending,
            engine::StepStatus::Running => StepStatus::Running,
            engine::StepStatus::Done => StepStatus::Done,
            engine::StepStatus::Resumed => StepStatus::Resumed,
            engine::StepStatus::Failed(_) => StepStatus::Failed,
        }
    }
    /// Steps done (this run or resumed).
    pub fn done(&self) -> usize {
        (0..self.engine.steps.len())
            .filter(|i| matches!(self.status(*i), StepStatus::Done | StepStatus::Resumed))
            .count()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignField {
    Key,
    Format,
    Input,
    Output,
    /// `officiant sign`'s format flags (`--load-address 0x… --entry-point 0x…`,
    /// `--append`, `--key-table F`…), parsed by the command line's own definition.
    Options,
    PublicKey,
    Signature,
}

pub const SIGN_FIELDS: [SignField; 7] = [
    SignField::Key,
    SignField::Format,
    SignField::Input,
    SignField::Output,
    SignField::Options,
    SignField::PublicKey,
    SignField::Signature,
];

/// Formats the console signs and verifies: the signing library's, with raw RSA in both
/// paddings.
pub const FORMATS: [&str; 5] = ["raw", "raw-pkcs1", "esp32-sbv2", "stm32mp15", "stm32mp13"];

/// The signing library's format and RSA padding for entry `i` of [`FORMATS`].
pub fn format_of(i: usize) -> (Format, Option<Padding>) {
    match FORMATS.get(i).copied().unwrap_or("raw") {
        "raw-pkcs1" => (Format::Raw, Some(Padding::Pkcs1)),
        "esp32-sbv2" => (Format::Esp32Sbv2, None),
        "stm32mp15" => (Format::Stm32Mp15, None),
        "stm32mp13" => (Format::Stm32Mp13, None),
        _ => (Format::Raw, None),
    }
}

#[derive(Debug)]
pub enum SignResult {
    Signed {
        digest: Fingerprint,
        output: PathBuf,
        notes: Vec<String>,
    },
    Verified {
        digest: Fingerprint,
        ok: bool,
        lines: Vec<String>,
    },
}

#[derive(Debug)]
pub struct SignState {
    pub field: usize,
    pub key: usize,
    pub format: usize,
    pub input: PathEntry,
    pub output: PathEntry,
    pub options: PathEntry,
    pub pubkey: PathEntry,
    pub signature: PathEntry,
    pub editing: bool,
    pub result: Option<SignResult>,
}

impl SignState {
    pub fn entry_mut(&mut self, f: SignField) -> Option<&mut PathEntry> {
        match f {
            SignField::Input => Some(&mut self.input),
            SignField::Output => Some(&mut self.output),
            SignField::Options => Some(&mut self.options),
            SignField::PublicKey => Some(&mut self.pubkey),
            SignField::Signature => Some(&mut self.signature),
            _ => None,
        }
    }
    pub fn focused(&self) -> SignField {
        SIGN_FIELDS[self.field.min(SIGN_FIELDS.len() - 1)]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmAction {
    Abort,
    Quit,
    /// Go ahead with destructive step `n` (the engine's NeedConfirm).
    Step(usize),
}

#[derive(Debug)]
pub enum Popup {
    Help,
    Error {
        title: String,
        cause: String,
        next: String,
    },
    Confirm {
        question: String,
        detail: String,
        destructive: bool,
        action: ConfirmAction,
    },
    /// The user PIN before signing.
    SignPin(SecretEntry),
}

/// A token operation under way.
#[derive(Debug)]
pub struct Busy {
    pub what: String,
    pub elapsed: Duration,
}

#[derive(Debug)]
pub struct AppState {
    pub screen: Screen,
    pub backend: String,
    pub token: TokenStatus,
    pub objects: Vec<ObjectRow>,
    pub ceremonies: Vec<CeremonySummary>,
    pub home: HomeState,
    pub run: Option<CeremonyRun>,
    pub sign: SignState,
    pub popup: Option<Popup>,
    pub busy: Option<Busy>,
    /// One line of news at the bottom ("answers saved to …").
    pub notice: Option<String>,
    /// False under NO_COLOR.
    pub color: bool,
    /// Where ceremony runs write (one directory per ceremony id).
    pub out_root: PathBuf,
    pub quit: bool,
}

/// What the run loop must do for `update`.
#[derive(Debug)]
pub enum Command {
    Worker(Request),
    /// Write a new file (never over an existing one).
    Save {
        path: PathBuf,
        contents: String,
    },
}

impl AppState {
    pub fn new(backend: &str, ceremonies: Vec<CeremonySummary>, color: bool) -> Self {
        AppState {
            screen: Screen::Home,
            backend: backend.to_string(),
            token: TokenStatus::Opening,
            objects: Vec::new(),
            ceremonies,
            home: HomeState {
                pane: HomePane::Ceremonies,
                ceremony: 0,
                object: 0,
            },
            run: None,
            sign: SignState {
                field: 0,
                key: 0,
                format: 0,
                input: PathEntry::default(),
                output: PathEntry::default(),
                options: PathEntry::default(),
                pubkey: PathEntry::default(),
                signature: PathEntry::default(),
                editing: false,
                result: None,
            },
            popup: None,
            busy: None,
            notice: None,
            color,
            out_root: PathBuf::from("out"),
            quit: false,
        }
    }

    /// The contexts keys are looked up in, most specific first.
    pub fn contexts(&self) -> Vec<Context> {
        match &self.popup {
            Some(Popup::Help | Popup::Error { .. }) => return vec![Context::Dismiss],
            Some(Popup::Confirm { .. }) => return vec![Context::Confirm],
            Some(Popup::SignPin(_)) => return vec![Context::Entry],
            None => {}
        }
        match self.screen {
            Screen::Home => vec![Context::Home, Context::Global],
            Screen::Ceremony => {
                if self.run.as_ref().is_some_and(|r| r.need.is_some()) {
                    vec![Context::Entry]
                } else {
                    vec![Context::Ceremony, Context::Global]
                }
            }
            Screen::Sign => {
                if self.sign.editing {
                    vec![Context::Path, Context::Entry]
                } else {
                    vec![Context::Sign, Context::Global]
                }
            }
        }
    }

    /// Key pairs to sign with, one per label: private halves when the token lists them,
    /// else public halves (a token lists private objects only after a login; signing
    /// logs in first).
    pub fn signing_keys(&self) -> Vec<&ObjectRow> {
        let mut out: Vec<&ObjectRow> = Vec::new();
        for class in [ObjectClass::PrivateKey, ObjectClass::PublicKey] {
            for o in self
                .objects
                .iter()
                .filter(|o| o.class == class && o.scheme.is_some())
            {
                if !out.iter().any(|k| k.label == o.label) {
                    out.push(o);
                }
            }
        }
        out
    }

    fn error(&mut self, title: &str, cause: impl Into<String>, next: impl Into<String>) {
        self.popup = Some(Popup::Error {
            title: title.to_string(),
            cause: cause.into(),
            next: next.into(),
        });
    }
}

/// The one entry point: apply `ev` to `s`, return the work the loop must do.
pub fn update(s: &mut AppState, ev: Event) -> Vec<Command> {
    match ev {
        Event::Resize => Vec::new(),
        Event::Tick(d) => {
            if let Some(b) = s.busy.as_mut() {
                b.elapsed = d;
            }
            Vec::new()
        }
        Event::Worker(msg) => on_worker(s, msg),
        Event::Key(k) => on_key(s, k),
    }
}

fn start(s: &mut AppState, req: Request) -> Vec<Command> {
    s.busy = Some(Busy {
        what: req.describe(),
        elapsed: Duration::ZERO,
    });
    vec![Command::Worker(req)]
}

fn on_worker(s: &mut AppState, msg: WorkerMsg) -> Vec<Command> {
    // A run's messages say themselves when its token work starts and ends.
    let of_run = matches!(
        msg,
        WorkerMsg::CeremonyState(_) | WorkerMsg::Ask(_) | WorkerMsg::Rejected { .. }
    );
    if !of_run {
        s.busy = None;
    }
    match msg {
        WorkerMsg::Snapshot { info, objects } => {
            s.objects = objects.iter().map(ObjectRow::of).collect();
            s.token = TokenStatus::Ready(info);
            s.home.object = s.home.object.min(s.objects.len().saturating_sub(1));
            Vec::new()
        }
        WorkerMsg::OpenFailed(cause) => {
            s.token = TokenStatus::Failed(cause.clone());
            s.error(
                "The token did not open",
                cause,
                "Check the backend URI (--backend) and that the token is present, then press r.",
            );
            Vec::new()
        }
        WorkerMsg::Signed {
            digest,
            output,
            notes,
        } => {
            s.sign.result = Some(SignResult::Signed {
                digest: Fingerprint::of(&digest),
                output,
                notes,
            });
            Vec::new()
        }
        WorkerMsg::Verified { digest, ok, lines } => {
            s.sign.result = Some(SignResult::Verified {
                digest: Fingerprint::of(&digest),
                ok,
                lines,
            });
            Vec::new()
        }
        WorkerMsg::CeremonyOpened(opened) => {
            let run = CeremonyRun::new(*opened);
            if run.resumed {
                s.notice = Some(format!(
                    "resuming the interrupted run in {}",
                    run.out.display()
                ));
            }
            s.run = Some(run);
            s.screen = Screen::Ceremony;
            Vec::new()
        }
        WorkerMsg::CeremonyState(st) => {
            if let Some(run) = s.run.as_mut() {
                run.engine = *st;
            }
            Vec::new()
        }
        WorkerMsg::Ask(q) => {
            ask(s, q);
            Vec::new()
        }
        WorkerMsg::Rejected { reason, .. } => {
            if let Some(run) = s.run.as_mut() {
                run.rejected = Some(reason);
            }
            Vec::new()
        }
        WorkerMsg::CeremonyBusy(what) => {
            s.busy = what.map(|what| Busy {
                what,
                elapsed: Duration::ZERO,
            });
            Vec::new()
        }
        WorkerMsg::CeremonyClosed {
            transcript,
            complete,
            error,
            ..
        } => {
            s.notice = Some(format!("transcript: {}", transcript.display()));
            if let Some(run) = s.run.as_mut() {
                run.closed = Some((transcript, complete));
                run.need = None;
                run.asking = false;
                let by_operator = matches!(run.engine.phase, engine::Phase::Aborted(_));
                if let (Some(e), false) = (error, by_operator) {
                    if s.popup.is_none() {
                        let step = run
                            .engine
                            .steps
                            .iter()
                            .position(|st| matches!(st.status, engine::StepStatus::Failed(_)));
                        let what = step
                            .map(|i| format!("Step {:?}", run.script.steps[i].id))
                            .unwrap_or_else(|| "The ceremony".into());
                        let next = next_for(&e, step.is_some());
                        s.error(&format!("{what} failed"), e, next);
                    }
                }
            }
            // Keep the object browser true to the token.
            start(s, Request::Refresh)
        }
        WorkerMsg::Failed { what, cause } => {
            let next = next_for(&cause, false);
            s.error(&format!("{what} failed"), cause, next);
            Vec::new()
        }
    }
}

/// What to tell the operator to do next, from the cause.
fn next_for(cause: &str, in_step: bool) -> String {
    let lower = cause.to_lowercase();
    let first = if lower.contains("wrong") && lower.contains("pin") {
        "Check the PIN with its custodian; mind the retries left before it locks."
    } else if lower.contains("locked") {
        "Stop: the PIN is locked. The security officer must unlock it; do not retry."
    } else if lower.contains("already exists") {
        "An object with this label or id is already on the token: check the object browser (1) before going on."
    } else if lower.contains("not logged in") {
        "Log in first (the ceremony's login step), then retry."
    } else if lower.contains("journal") || lower.contains("out dir") || lower.contains("not empty")
    {
        "Move the out directory away (or finish the run it holds), then open the ceremony again."
    } else {
        "Read the cause above; fix it, then retry."
    };
    if in_step {
        format!("{first} Nothing after this step ran. Press Enter to resume from the journal (the step is checked on the token before it is redone), or q to leave.")
    } else {
        first.to_string()
    }
}

/// The runner's question goes on screen.
fn ask(s: &mut AppState, q: Question) {
    let (min, max) = match &s.token {
        TokenStatus::Ready(i) => (i.min_pin_len, i.max_pin_len),
        _ => (0, 0),
    };
    let Some(run) = s.run.as_mut() else {
        return;
    };
    run.asking = true;
    match q {
        Question::SignOff {
            step,
            role,
            have,
            need,
        } => {
            run.need = Some(Need::SignOff {
                step,
                role,
                have,
                need,
                input: TextInput::default(),
            });
        }
        Question::Secret { step, name, .. } => {
            let (prompt, twice) = plan::secret_prompt(&run.script, step, &name);
            run.need = Some(Need::Secret {
                step,
                name,
                entry: SecretEntry::new(&prompt, twice, min, max),
            });
        }
        Question::Confirm { step } => {
            run.need = None;
            let id = run.script.steps[step].id.clone();
            s.popup = Some(Popup::Confirm {
                question: format!("Run {id:?}? It cannot be undone."),
                detail: match run.script.steps[step].action.kind() {
                    "init-token" => "Every key and object on the token is destroyed.".into(),
                    _ => "The objects it names are deleted from the token.".into(),
                },
                destructive: true,
                action: ConfirmAction::Step(step),
            });
        }
    }
}

/// Send the answer to the runner's question.
fn reply(s: &mut AppState, r: Reply) -> Vec<Command> {
    if let Some(run) = s.run.as_mut() {
        run.need = None;
        run.rejected = None;
        run.asking = false;
    }
    vec![Command::Worker(Request::Reply(r))]
}

fn on_key(s: &mut AppState, k: KeyEvent) -> Vec<Command> {
    let ctx = s.contexts();
    let action = keymap::action_for(&ctx, &k);
    // Text fields take printable keys.
    let entry = ctx.contains(&Context::Entry);
    if entry && action.is_none() {
        if let KeyCode::Char(c) = k.code {
            type_char(s, c);
        }
        return Vec::new();
    }
    let Some(action) = action else {
        return Vec::new();
    };
    if entry {
        return on_entry(s, action);
    }
    match action {
        Action::Dismiss => {
            s.popup = None;
            Vec::new()
        }
        Action::Yes | Action::No => on_confirm(s, action == Action::Yes),
        Action::Help => {
            s.popup = Some(Popup::Help);
            Vec::new()
        }
        Action::Quit => {
            if s.run.as_ref().is_some_and(|r| r.in_progress()) {
                s.popup = Some(Popup::Confirm {
                    question: "Quit in the middle of the ceremony?".into(),
                    detail:
                        "The steps not yet run will not run. Keys already made stay on the token."
                            .into(),
                    destructive: true,
                    action: ConfirmAction::Quit,
                });
            } else {
                s.quit = true;
            }
            Vec::new()
        }
        Action::GoHome | Action::Back => {
            s.screen = Screen::Home;
            Vec::new()
        }
        Action::GoCeremony => {
            if s.run.is_some() {
                s.screen = Screen::Ceremony;
            } else {
                s.notice = Some("choose a ceremony on the home screen first (Enter)".into());
            }
            Vec::new()
        }
        Action::GoSign => {
            s.screen = Screen::Sign;
            Vec::new()
        }
        _ => match s.screen {
            Screen::Home => on_home(s, action),
            Screen::Ceremony => on_ceremony(s, action),
            Screen::Sign => on_sign(s, action),
        },
    }
}

fn on_confirm(s: &mut AppState, yes: bool) -> Vec<Command> {
    let Some(Popup::Confirm { action, .. }) = s.popup.take() else {
        return Vec::new();
    };
    match (action, yes) {
        (ConfirmAction::Quit, true) => {
            s.quit = true;
            return abort_run(s, "the console was closed by the operator");
        }
        (ConfirmAction::Abort, true) => {
            s.notice = Some("ceremony aborted".into());
            return abort_run(s, "aborted at the console by the operator");
        }
        (ConfirmAction::Step(_), true) => return reply(s, Reply::Confirm),
        // Declining a destructive step stops the run: the engine cannot skip it.
        (ConfirmAction::Step(_), false) => {
            s.popup = Some(Popup::Confirm {
                question: "Abort the ceremony?".into(),
                detail: "The step was not confirmed, so the ceremony cannot go on.".into(),
                destructive: true,
                action: ConfirmAction::Abort,
            });
        }
        (_, false) => {}
    }
    Vec::new()
}

fn on_home(s: &mut AppState, action: Action) -> Vec<Command> {
    match action {
        Action::FocusNext => {
            s.home.pane = match s.home.pane {
                HomePane::Ceremonies => HomePane::Objects,
                HomePane::Objects => HomePane::Ceremonies,
            };
        }
        Action::Up | Action::Down => {
            let (sel, len) = match s.home.pane {
                HomePane::Ceremonies => (&mut s.home.ceremony, s.ceremonies.len()),
                HomePane::Objects => (&mut s.home.object, s.objects.len()),
            };
            *sel = step_sel(*sel, len, action == Action::Down);
        }
        Action::Refresh if s.busy.is_none() => return start(s, Request::Refresh),
        Action::Select if s.home.pane == HomePane::Ceremonies && s.busy.is_none() => {
            if s.run.as_ref().is_some_and(|r| r.in_progress()) {
                s.screen = Screen::Ceremony;
                return Vec::new();
            }
            match s.ceremonies.get(s.home.ceremony) {
                Some(c) if c.error.is_some() => {
                    let cause = c.error.clone().unwrap_or_default();
                    s.error(
                        "The ceremony script is not valid",
                        cause,
                        "Fix the field it names (`officiant check SCRIPT`), then restart the console.",
                    );
                }
                Some(c) => {
                    let req = Request::OpenCeremony {
                        script: c.path.clone(),
                        out: s.out_root.join(&c.id),
                    };
                    return start(s, req);
                }
                None => s.notice = Some("no ceremonies found in ceremonies/".into()),
            }
        }
        _ => {}
    }
    Vec::new()
}

/// Stop the ceremony: answer the runner's pending question with an abort, or let go of a
/// ceremony opened and not started.
fn abort_run(s: &mut AppState, reason: &str) -> Vec<Command> {
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    if run.asking {
        return reply(s, Reply::Abort(reason.to_string()));
    }
    if !run.started {
        run.started = true;
        run.engine.phase = engine::Phase::Aborted(reason.to_string());
        return vec![Command::Worker(Request::CloseCeremony)];
    }
    Vec::new()
}

fn step_sel(sel: usize, len: usize, down: bool) -> usize {
    if len == 0 {
        0
    } else if down {
        (sel + 1).min(len - 1)
    } else {
        sel.saturating_sub(1)
    }
}

fn ask_abort(s: &mut AppState) {
    if s.busy.is_some() {
        s.notice = Some(
            "the token is working: abort when this step has finished (it cannot be interrupted)"
                .into(),
        );
        return;
    }
    s.popup = Some(Popup::Confirm {
        question: "Abort the ceremony?".into(),
        detail: "Steps not yet run will not run. Keys already made stay on the token; the journal lets the run resume later."
            .into(),
        destructive: true,
        action: ConfirmAction::Abort,
    });
}

fn on_ceremony(s: &mut AppState, action: Action) -> Vec<Command> {
    let busy = s.busy.is_some();
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    match action {
        Action::Abort if run.in_progress() || !run.started() => {
            ask_abort(s);
            Vec::new()
        }
        Action::Select if !busy && !run.started() => {
            run.started = true;
            vec![Command::Worker(Request::StartCeremony)]
        }
        // After a failure or an abort: open the ceremony again; its journal resumes it.
        Action::Select
            if !busy
                && run.closed.is_some()
                && !matches!(run.engine.phase, engine::Phase::Finished) =>
        {
            let req = Request::OpenCeremony {
                script: run.script.path.clone(),
                out: run.out.clone(),
            };
            start(s, req)
        }
        Action::SaveAnswers if run.started() => {
            let path = PathBuf::from(format!("{}.answers.toml", run.script.ceremony.id));
            vec![Command::Save {
                path,
                contents: plan::answers_toml(&run.script, &run.engine),
            }]
        }
        _ => Vec::new(),
    }
}

fn on_entry(s: &mut AppState, action: Action) -> Vec<Command> {
    if let Some(Popup::SignPin(entry)) = s.popup.as_mut() {
        return match action {
            Action::Cancel | Action::Abort => {
                s.popup = None;
                Vec::new()
            }
            Action::DeleteChar => {
                entry.backspace();
                Vec::new()
            }
            Action::Submit => match entry.submit() {
                Some(pin) => {
                    s.popup = None;
                    sign_with(s, pin)
                }
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
    }
    match s.screen {
        Screen::Ceremony => ceremony_entry(s, action),
        Screen::Sign => sign_entry(s, action),
        Screen::Home => Vec::new(),
    }
}

fn ceremony_entry(s: &mut AppState, action: Action) -> Vec<Command> {
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    match (action, run.need.as_mut()) {
        (Action::Abort, _) => {
            ask_abort(s);
            Vec::new()
        }
        (Action::Cancel, Some(Need::SignOff { input, .. })) => {
            input.value.clear();
            Vec::new()
        }
        (Action::Cancel, Some(Need::Secret { step, name, .. })) => {
            let (prompt, twice) = plan::secret_prompt(&run.script, *step, name);
            let (min, max) = match &s.token {
                TokenStatus::Ready(i) => (i.min_pin_len, i.max_pin_len),
                _ => (0, 0),
            };
            if let Some(Need::Secret { entry, .. }) = run.need.as_mut() {
                *entry = SecretEntry::new(&prompt, twice, min, max);
            }
            Vec::new()
        }
        (Action::DeleteChar, Some(Need::SignOff { input, .. })) => {
            input.backspace();
            Vec::new()
        }
        (Action::DeleteChar, Some(Need::Secret { entry, .. })) => {
            entry.backspace();
            Vec::new()
        }
        (Action::Submit, Some(Need::SignOff { role, input, .. })) => {
            let name = input.value.trim().to_string();
            if name.is_empty() {
                input.error = Some(format!("type the {role}'s name to sign off"));
                return Vec::new();
            }
            reply(s, Reply::SignOff(name))
        }
        (Action::Submit, Some(Need::Secret { entry, .. })) => {
            let Some(value) = entry.submit() else {
                return Vec::new();
            };
            // The value goes to the runner's vault; the engine only learns the name.
            reply(s, Reply::Secret(value))
        }
        _ => Vec::new(),
    }
}

fn type_char(s: &mut AppState, c: char) {
    if let Some(Popup::SignPin(entry)) = s.popup.as_mut() {
        entry.push(c);
        return;
    }
    match s.screen {
        Screen::Ceremony => match s.run.as_mut().and_then(|r| r.need.as_mut()) {
            Some(Need::SignOff { input, .. }) => input.push(c),
            Some(Need::Secret { entry, .. }) => entry.push(c),
            None => {}
        },
        Screen::Sign => {
            let f = s.sign.focused();
            if let Some(e) = s.sign.entry_mut(f) {
                e.input.push(c);
                e.choices.clear();
            }
        }
        Screen::Home => {}
    }
}

fn on_sign(s: &mut AppState, action: Action) -> Vec<Command> {
    let nkeys = s.signing_keys().len();
    let sg = &mut s.sign;
    match action {
        Action::Up | Action::Down => {
            sg.field = step_sel(sg.field, SIGN_FIELDS.len(), action == Action::Down);
        }
        Action::Left | Action::Right => {
            let right = action == Action::Right;
            let cycle = |v: usize, n: usize| {
                if n == 0 {
                    0
                } else if right {
                    (v + 1) % n
                } else {
                    (v + n - 1) % n
                }
            };
            match sg.focused() {
                SignField::Key => sg.key = cycle(sg.key, nkeys),
                SignField::Format => sg.format = cycle(sg.format, FORMATS.len()),
                _ => {}
            }
        }
        Action::EditField if sg.entry_mut(sg.focused()).is_some() => sg.editing = true,
        Action::DoSign if s.busy.is_none() => {
            if nkeys == 0 {
                s.error(
                    "No key to sign with",
                    "the token shows no private key with a public half",
                    "Generate or import a key (a ceremony), or log in so private objects are listed.",
                );
            } else if s.sign.input.input.value.trim().is_empty() {
                s.error(
                    "No input file",
                    "choose the file to sign (Input, Enter to type, Tab to complete)",
                    "Move to Input with ↓ and press Enter.",
                );
            } else if checked_options(s).is_some() {
                let (min, max) = match &s.token {
                    TokenStatus::Ready(i) => (i.min_pin_len, i.max_pin_len),
                    _ => (0, 0),
                };
                s.popup = Some(Popup::SignPin(SecretEntry::new(
                    "User PIN to sign",
                    false,
                    min,
                    max,
                )));
            }
        }
        Action::DoVerify if s.busy.is_none() => {
            let sg = &s.sign;
            let (format, padding) = format_of(sg.format);
            // A signed image carries its signature; raw needs the detached file.
            let mut needed = vec![("Input", &sg.input), ("Public key", &sg.pubkey)];
            if format == Format::Raw {
                needed.push(("Signature", &sg.signature));
            }
            let missing = needed
                .into_iter()
                .find(|(_, e)| e.input.value.trim().is_empty());
            if let Some((name, _)) = missing {
                s.error(
                    "Verify needs its files",
                    format!("{name} is empty"),
                    "Fill Input and Public key (and Signature for raw): Enter to type, Tab completes.",
                );
            } else {
                let signature = match sg.signature.input.value.trim() {
                    "" => None,
                    _ if format != Format::Raw => None,
                    p => Some(PathBuf::from(p)),
                };
                let req = Request::VerifyFile {
                    format,
                    padding,
                    pubkey: PathBuf::from(sg.pubkey.input.value.trim()),
                    input: PathBuf::from(sg.input.input.value.trim()),
                    signature,
                };
                return start(s, req);
            }
        }
        _ => {}
    }
    Vec::new()
}

fn sign_with(s: &mut AppState, pin: crate::secret::Secret) -> Vec<Command> {
    let Some(key) = s.signing_keys().get(s.sign.key).map(|k| k.label.clone()) else {
        return Vec::new();
    };
    let (format, padding) = format_of(s.sign.format);
    let input = PathBuf::from(s.sign.input.input.value.trim());
    let output = match s.sign.output.input.value.trim() {
        "" => default_output(format, &input),
        o => PathBuf::from(o),
    };
    // Checked before the PIN was asked; read again here, never guessed.
    let Some(options) = checked_options(s) else {
        return Vec::new();
    };
    let req = Request::SignFile {
        key,
        format,
        padding,
        options,
        pin,
        input,
        output,
    };
    s.sign.result = None;
    start(s, req)
}

/// The sign screen's Options as `officiant sign`'s flags; on a bad flag, the field's
/// error and a popup that names it.
fn checked_options(s: &mut AppState) -> Option<FormatOptions> {
    match FormatOptions::parse_line(&s.sign.options.input.value) {
        Ok(o) => Some(o),
        Err(e) => {
            s.sign.options.input.error = Some(e.clone());
            s.error(
                "Options not understood",
                format!("Options: {e}"),
                "Use officiant sign's flags: --load-address 0x… --entry-point 0x… (stm32), --key-table FILE --key-index N (stm32mp13), --append (esp32-sbv2).",
            );
            None
        }
    }
}

/// Next to the input, named as `officiant sign --out-dir` names it.
fn default_output(format: Format, input: &Path) -> PathBuf {
    let dir = input.parent().unwrap_or(Path::new(""));
    signing::output_path(format, input, dir)
}

fn sign_entry(s: &mut AppState, action: Action) -> Vec<Command> {
    let f = s.sign.focused();
    let is_input = f == SignField::Input;
    let Some(e) = s.sign.entry_mut(f) else {
        s.sign.editing = false;
        return Vec::new();
    };
    match action {
        Action::Submit | Action::Cancel | Action::Abort => {
            e.choices.clear();
            s.sign.editing = false;
            if is_input && s.sign.output.input.value.is_empty() && action == Action::Submit {
                let (format, _) = format_of(s.sign.format);
                let out = default_output(format, Path::new(s.sign.input.input.value.trim()));
                s.sign.output.input.value = out.display().to_string();
            }
        }
        // Options are flags, not a path.
        Action::Complete if f != SignField::Options => e.complete(),
        Action::DeleteChar => {
            e.input.backspace();
            e.choices.clear();
        }
        _ => {}
    }
    Vec::new()
}
