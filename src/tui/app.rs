//! The console's one state and its one pure `update`. Views read `&AppState`; the run loop
//! feeds [`Event`]s in and carries out the [`Command`]s that come back (worker requests,
//! file writes). Nothing here touches the terminal or the token.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use crate::formats::words::Fingerprint;
use crate::hsm::{ObjectClass, ObjectInfo, TokenInfo, UserType};
use crate::keys::{HashAlg, KeyAlgorithm, SignScheme};

use super::event::Event;
use super::keymap::{self, Action, Context};
use super::plan::{CeremonySummary, StepAction};
use super::views::widgets::{PathEntry, SecretEntry, TextInput};
use super::worker::{Request, WorkerMsg};

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
            StepStatus::Failed => "✗",
            StepStatus::Skipped => "–",
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Done => "done",
            StepStatus::Failed => "FAILED",
            StepStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug)]
pub struct StepRow {
    pub id: String,
    pub kind: String,
    pub title: String,
    /// What the step will do, line by line.
    pub detail: Vec<String>,
    /// Objects and files it creates.
    pub creates: Vec<String>,
    pub sign_off: Vec<String>,
    pub status: StepStatus,
    pub action: StepAction,
}

/// A result worth reading aloud.
#[derive(Debug, Clone)]
pub struct ResultItem {
    pub step: String,
    pub what: String,
    pub fingerprint: Option<Fingerprint>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOff {
    pub step: String,
    pub role: String,
    pub name: String,
}

/// What the ceremony waits for from the person at the keyboard.
#[derive(Debug)]
pub enum Need {
    /// `role` confirms by typing their name.
    SignOff { role: String, input: TextInput },
    /// A secret for the current step; `key` names it in the answers file.
    Secret { key: String, entry: SecretEntry },
}

#[derive(Debug)]
pub struct CeremonyRun {
    pub id: String,
    pub title: String,
    pub path: PathBuf,
    pub steps: Vec<StepRow>,
    /// The step that runs next (or is running).
    pub current: usize,
    pub need: Option<Need>,
    /// Sign-offs still to collect for the current step.
    pub pending_roles: Vec<String>,
    /// Secrets collected for the current step, in the order the step asks.
    pub secrets: Vec<crate::secret::Secret>,
    pub results: Vec<ResultItem>,
    pub signoffs: Vec<SignOff>,
    /// Names of the secrets the operator typed (answers file: `prompt`).
    pub secret_keys: Vec<String>,
    /// Destructive steps the operator confirmed (answers file: `[[confirm]]`).
    pub confirms: Vec<String>,
    pub started: bool,
    pub aborted: bool,
}

impl CeremonyRun {
    pub fn finished(&self) -> bool {
        self.aborted || self.current >= self.steps.len()
    }
    pub fn in_progress(&self) -> bool {
        self.started && !self.finished()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignField {
    Key,
    Format,
    Input,
    Output,
    PublicKey,
    Signature,
}

pub const SIGN_FIELDS: [SignField; 6] = [
    SignField::Key,
    SignField::Format,
    SignField::Input,
    SignField::Output,
    SignField::PublicKey,
    SignField::Signature,
];

/// Formats the console signs with. The firmware formats arrive with src/signing/.
pub const FORMATS: [&str; 2] = ["raw", "raw-pkcs1"];

#[derive(Debug)]
pub enum SignResult {
    Signed {
        digest: Fingerprint,
        output: PathBuf,
        verified: bool,
    },
    Verified {
        digest: Fingerprint,
        ok: bool,
        detail: String,
    },
}

#[derive(Debug)]
pub struct SignState {
    pub field: usize,
    pub key: usize,
    pub format: usize,
    pub input: PathEntry,
    pub output: PathEntry,
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
    /// Go ahead with the current (destructive) step.
    Step,
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
                pubkey: PathEntry::default(),
                signature: PathEntry::default(),
                editing: false,
                result: None,
            },
            popup: None,
            busy: None,
            notice: None,
            color,
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

    /// Keys usable for signing: objects that carry a public key and are private keys.
    pub fn signing_keys(&self) -> Vec<&ObjectRow> {
        self.objects
            .iter()
            .filter(|o| o.class == ObjectClass::PrivateKey && o.scheme.is_some())
            .collect()
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
    s.busy = None;
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
        WorkerMsg::Done(what) => {
            s.notice = Some(what.clone());
            step_finished(s, Ok(ResultItemOrNone::Text(what)))
        }
        WorkerMsg::Generated { label, public_key } => {
            let item = ResultItemOrNone::Key {
                what: format!("{label}: {}", public_key.describe()),
                fingerprint: Fingerprint::of(&public_key.fingerprint()),
            };
            step_finished(s, Ok(item))
        }
        WorkerMsg::Signed {
            digest,
            output,
            verified,
        } => {
            s.sign.result = Some(SignResult::Signed {
                digest: Fingerprint::of(&digest),
                output,
                verified,
            });
            Vec::new()
        }
        WorkerMsg::Verified { digest, ok, detail } => {
            s.sign.result = Some(SignResult::Verified {
                digest: Fingerprint::of(&digest),
                ok,
                detail,
            });
            Vec::new()
        }
        WorkerMsg::Failed { what, cause } => {
            let in_step = s.run.as_ref().is_some_and(|r| {
                r.steps.get(r.current).map(|st| st.status) == Some(StepStatus::Running)
            });
            if in_step {
                step_finished(s, Err(cause.clone()));
            }
            let next = next_for(&cause, in_step);
            s.error(&format!("{what} failed"), cause, next);
            Vec::new()
        }
    }
}

/// What to tell the operator to do next, from the cause.
fn next_for(cause: &str, in_step: bool) -> String {
    let lower = cause.to_lowercase();
    let first = if lower.contains("wrong") && lower.contains("pin") {
        "Check the PIN with the custodian; mind the retries left before it locks."
    } else if lower.contains("locked") {
        "Stop: the PIN is locked. The security officer must unlock it; do not retry."
    } else if lower.contains("already exists") {
        "An object with this label or id is already on the token: check the object browser (1) before going on."
    } else if lower.contains("not logged in") {
        "Log in first (the ceremony's login step), then retry."
    } else {
        "Read the cause above; fix it, then retry."
    };
    if in_step {
        format!("{first} The step is marked failed; nothing after it ran. Press Enter to retry it, or a to abort.")
    } else {
        first.to_string()
    }
}

enum ResultItemOrNone {
    Text(String),
    Key {
        what: String,
        fingerprint: Fingerprint,
    },
}

fn step_finished(s: &mut AppState, outcome: Result<ResultItemOrNone, String>) -> Vec<Command> {
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    let Some(step) = run.steps.get_mut(run.current) else {
        return Vec::new();
    };
    if step.status != StepStatus::Running {
        return Vec::new();
    }
    run.secrets.clear();
    match outcome {
        Ok(item) => {
            step.status = StepStatus::Done;
            let (what, fingerprint) = match item {
                ResultItemOrNone::Text(t) => (t, None),
                ResultItemOrNone::Key { what, fingerprint } => (what, Some(fingerprint)),
            };
            run.results.push(ResultItem {
                step: step.id.clone(),
                what,
                fingerprint,
            });
            run.current += 1;
            if run.aborted {
                skip_rest(run);
            }
            // Keep the object browser true to the token.
            vec![Command::Worker(Request::Refresh)]
        }
        Err(_) => {
            step.status = StepStatus::Failed;
            Vec::new()
        }
    }
}

fn skip_rest(run: &mut CeremonyRun) {
    for st in run.steps.iter_mut().skip(run.current) {
        if st.status == StepStatus::Pending || st.status == StepStatus::Failed {
            st.status = StepStatus::Skipped;
        }
    }
    run.need = None;
    run.pending_roles.clear();
    run.secrets.clear();
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
    if !yes {
        return Vec::new();
    }
    match action {
        ConfirmAction::Quit => s.quit = true,
        ConfirmAction::Step => {
            if let Some(run) = s.run.as_mut() {
                let id = run.steps[run.current].id.clone();
                run.confirms.push(id);
                return next_need(s);
            }
        }
        ConfirmAction::Abort => {
            if let Some(run) = s.run.as_mut() {
                run.aborted = true;
                // A step already on the token finishes; it is recorded, nothing follows.
                let running =
                    run.steps.get(run.current).map(|st| st.status) == Some(StepStatus::Running);
                if !running {
                    skip_rest(run);
                }
                s.notice = Some("ceremony aborted".into());
            }
        }
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
        Action::Select if s.home.pane == HomePane::Ceremonies => {
            if s.run.as_ref().is_some_and(|r| r.in_progress()) {
                s.screen = Screen::Ceremony;
                return Vec::new();
            }
            match s.ceremonies.get(s.home.ceremony) {
                Some(c) => match super::plan::load(&c.path) {
                    Ok(run) => {
                        s.run = Some(run);
                        s.screen = Screen::Ceremony;
                    }
                    Err(e) => s.error(
                        "The ceremony script is not valid",
                        e,
                        "Fix the script (`officiant check SCRIPT` names the field), then reopen it.",
                    ),
                },
                None => s.notice = Some("no ceremonies found in ceremonies/".into()),
            }
        }
        _ => {}
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

fn on_ceremony(s: &mut AppState, action: Action) -> Vec<Command> {
    let busy = s.busy.is_some();
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    match action {
        Action::Abort => {
            if !run.finished() {
                s.popup =
                    Some(Popup::Confirm {
                        question: "Abort the ceremony?".into(),
                        detail: format!(
                        "Steps after {:?} will be skipped. Keys already made stay on the token.",
                        run.steps.get(run.current).map(|st| st.id.as_str()).unwrap_or("")
                    ),
                        destructive: true,
                        action: ConfirmAction::Abort,
                    });
            }
            Vec::new()
        }
        Action::Select if !busy && !run.finished() => {
            run.started = true;
            let step = &mut run.steps[run.current];
            if step.status == StepStatus::Failed {
                step.status = StepStatus::Pending;
            }
            run.pending_roles = step.sign_off.clone();
            next_need(s)
        }
        Action::SaveAnswers => {
            let path = PathBuf::from(format!("{}.answers.toml", run.id));
            vec![Command::Save {
                path,
                contents: super::plan::answers_toml(run),
            }]
        }
        Action::Resume => {
            s.error(
                "Resume is not available here yet",
                "resuming reads the engine's journal, which this build of the console does not have",
                "Run `officiant run SCRIPT --answers FILE` to resume headless.",
            );
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Ask for the next sign-off or secret of the current step, or run it.
fn next_need(s: &mut AppState) -> Vec<Command> {
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    if let Some(role) = run.pending_roles.first().cloned() {
        run.need = Some(Need::SignOff {
            role,
            input: TextInput::default(),
        });
        return Vec::new();
    }
    let (min, max) = match &s.token {
        TokenStatus::Ready(i) => (i.min_pin_len, i.max_pin_len),
        _ => (0, 0),
    };
    let step = &mut run.steps[run.current];
    if step.action.destructive() && !run.confirms.contains(&step.id) {
        run.need = None;
        s.popup = Some(Popup::Confirm {
            question: format!("Run {:?}? This erases the token.", step.id),
            detail: "Every key and object on the token is destroyed. There is no undo.".into(),
            destructive: true,
            action: ConfirmAction::Step,
        });
        return Vec::new();
    }
    let secrets = step.action.secrets();
    if let Some((key, prompt, confirm)) = secrets.get(run.secrets.len()) {
        run.need = Some(Need::Secret {
            key: key.clone(),
            entry: SecretEntry::new(prompt, *confirm, min, max),
        });
        return Vec::new();
    }
    run.need = None;
    step.status = StepStatus::Running;
    let mut taken = std::mem::take(&mut run.secrets).into_iter();
    let req = match &step.action {
        StepAction::Instruction => {
            step.status = StepStatus::Done;
            run.results.push(ResultItem {
                step: step.id.clone(),
                what: "instruction confirmed".into(),
                fingerprint: None,
            });
            run.current += 1;
            return Vec::new();
        }
        StepAction::InitToken { label, .. } => match (taken.next(), taken.next()) {
            (Some(so_pin), Some(user_pin)) => Request::InitToken {
                label: label.clone(),
                so_pin,
                user_pin,
            },
            _ => return Vec::new(),
        },
        StepAction::Login { user, .. } => match taken.next() {
            Some(pin) => Request::Login { user: *user, pin },
            None => return Vec::new(),
        },
        StepAction::Generate { alg, label, id } => Request::Generate {
            alg: *alg,
            label: label.clone(),
            id: id.clone(),
        },
        StepAction::Unsupported(kind) => {
            step.status = StepStatus::Failed;
            let cause = format!("step {:?}: kind {kind:?} runs only through the ceremony engine, not merged into this console yet", step.id);
            s.error(
                "This step cannot run here",
                cause,
                "Run the ceremony headless with `officiant run`, or abort (a).",
            );
            return Vec::new();
        }
    };
    start(s, req)
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
            s.popup = Some(Popup::Confirm {
                question: "Abort the ceremony?".into(),
                detail: "Steps not yet run will be skipped. Keys already made stay on the token."
                    .into(),
                destructive: true,
                action: ConfirmAction::Abort,
            });
            Vec::new()
        }
        (Action::Cancel, _) => {
            // Back out of this step: what was collected for it is forgotten.
            run.need = None;
            run.secrets.clear();
            run.pending_roles.clear();
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
        (Action::Submit, Some(Need::SignOff { role, input })) => {
            let name = input.value.trim().to_string();
            if name.is_empty() {
                input.error = Some(format!("type the {role}'s name to sign off"));
                return Vec::new();
            }
            let step = run.steps[run.current].id.clone();
            run.signoffs.push(SignOff {
                step,
                role: role.clone(),
                name,
            });
            run.pending_roles.remove(0);
            next_need(s)
        }
        (Action::Submit, Some(Need::Secret { key, entry })) => {
            if let Some(secret) = entry.submit() {
                if !run.secret_keys.contains(key) {
                    run.secret_keys.push(key.clone());
                }
                run.secrets.push(secret);
                return next_need(s);
            }
            Vec::new()
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
            } else {
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
            let missing = [
                ("Input", &sg.input),
                ("Public key", &sg.pubkey),
                ("Signature", &sg.signature),
            ]
            .into_iter()
            .find(|(_, e)| e.input.value.trim().is_empty());
            if let Some((name, _)) = missing {
                s.error(
                    "Verify needs three files",
                    format!("{name} is empty"),
                    "Fill Input, Public key and Signature (Enter to type, Tab completes).",
                );
            } else {
                let req = Request::VerifyFile {
                    pubkey: PathBuf::from(sg.pubkey.input.value.trim()),
                    input: PathBuf::from(sg.input.input.value.trim()),
                    signature: PathBuf::from(sg.signature.input.value.trim()),
                    pkcs1: FORMATS[sg.format] == "raw-pkcs1",
                };
                return start(s, req);
            }
        }
        _ => {}
    }
    Vec::new()
}

fn sign_with(s: &mut AppState, pin: crate::secret::Secret) -> Vec<Command> {
    let keys = s.signing_keys();
    let Some(key) = keys.get(s.sign.key) else {
        return Vec::new();
    };
    let mut scheme = key.scheme.unwrap_or(SignScheme::RsaPss(HashAlg::Sha256));
    if FORMATS[s.sign.format] == "raw-pkcs1" {
        if let SignScheme::RsaPss(h) = scheme {
            scheme = SignScheme::RsaPkcs1(h);
        }
    }
    let input = PathBuf::from(s.sign.input.input.value.trim());
    let output = match s.sign.output.input.value.trim() {
        "" => default_output(&input),
        o => PathBuf::from(o),
    };
    let req = Request::SignFile {
        key: key.label.clone(),
        scheme,
        pin,
        input,
        output,
    };
    s.sign.result = None;
    start(s, req)
}

fn default_output(input: &Path) -> PathBuf {
    let mut o = input.as_os_str().to_owned();
    o.push(".sig");
    PathBuf::from(o)
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
                let out = default_output(Path::new(s.sign.input.input.value.trim()));
                s.sign.output.input.value = out.display().to_string();
            }
        }
        Action::Complete => e.complete(),
        Action::DeleteChar => {
            e.input.backspace();
            e.choices.clear();
        }
        _ => {}
    }
    Vec::new()
}

/// Which key algorithm a script names, for the plan reader.
pub fn parse_alg(s: &str) -> Option<KeyAlgorithm> {
    KeyAlgorithm::parse(s)
}

/// The user a login step logs in as.
pub fn parse_user(s: &str) -> Option<UserType> {
    match s {
        "user" => Some(UserType::User),
        "so" => Some(UserType::So),
        _ => None,
    }
}
