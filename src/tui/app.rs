//! The console's one state and its one pure `update`, which is a dispatcher: keys become
//! keymap actions ([`super::keymap`], the single source of what keys do, the footer and
//! the help), global actions are handled here, the rest go to the screen's component
//! ([`super::home`], [`super::ceremony`], [`super::sign`], [`super::approvals`]), each
//! with its own state and
//! its own `on_action`. Views read `&AppState`; the run loop carries out the
//! [`Command`]s that come back. Nothing here touches the terminal or the token.

use std::path::PathBuf;
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::approvals::{self, ApprovalsState};
use super::ceremony::{self, CeremonyRun};
use super::event::Event;
use super::home::{self, HomeState, ObjectRow};
use super::keymap::{self, Action, Context};
use super::plan::CeremonySummary;
use super::sign::{self, SignState};
use super::views::widgets::{SecretEntry, TextInput};
use super::worker::{Request, WorkerMsg};
use crate::ceremony::inputs::Danger;
use crate::hsm::TokenInfo;

/// The screen in the body (the header's tabs; keys 1–4 switch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    /// The token, the ceremonies found and the token's objects ([`super::home`]).
    Home,
    /// The open ceremony run ([`super::ceremony`]); reachable once one is opened.
    Ceremony,
    /// Sign and verify files with a key on the token ([`super::sign`]).
    Sign,
    /// Signing requests to review and approve ([`super::approvals`]).
    Approvals,
}

/// The console's token, as the header and the home screen show it.
#[derive(Debug)]
pub enum TokenStatus {
    /// The worker is opening the backend; nothing is known yet.
    Opening,
    /// Open: what the token reported about itself (label, serial, PIN rules, rehearsal).
    Ready(TokenInfo),
    /// The backend did not open: the cause, shown until `r` tries again.
    Failed(String),
}

/// What a yes/no [`Popup::Confirm`] does on `y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmAction {
    /// Abort the ceremony run (the runner records the abort and closes its transcript).
    Abort,
    /// Leave the console in the middle of a run (aborting it first).
    Quit,
    /// Approve the request on the Approvals screen with the chosen agent key.
    Approve,
}

/// The typed confirmation of a destructive step: the officer types `word` (the token's
/// label) to go ahead; Esc asks whether to abort instead.
#[derive(Debug)]
pub struct TypedConfirm {
    /// The step that asks (index into the script's steps).
    pub step: usize,
    /// What the runner says the step destroys, and on which token.
    pub danger: Danger,
    /// What must be typed to go ahead: the token's label (the script's, if the token
    /// reports none).
    pub word: String,
    /// What has been typed so far.
    pub input: TextInput,
}

/// The overlay that has the keyboard, drawn over the screen by [`super::views::popups`].
/// Only one at a time; `None` in [`AppState::popup`] gives the keys back to the screen.
#[derive(Debug)]
pub enum Popup {
    /// Every key binding, generated from the keymap (`?`); scrolls with PgUp/PgDn.
    Help,
    /// Something failed: what, why, and what to do next. Enter or Esc closes it.
    Error {
        /// What failed, in a few words (`Step "gen-srk1" failed`).
        title: String,
        /// The error as the runner, the token or the check reported it.
        cause: String,
        /// What the operator should do now (from the cause: `next_for`).
        next: String,
    },
    /// A yes/no question (abort, quit).
    Confirm {
        /// The question, shown first.
        question: String,
        /// What happens on yes.
        detail: String,
        /// Drawn in the destructive style (red, ⚠).
        destructive: bool,
        /// What `y` does.
        action: ConfirmAction,
    },
    /// A destructive step, confirmed by typing the token's label.
    Destroy(TypedConfirm),
    /// The user PIN before signing.
    SignPin(SecretEntry),
    /// The user PIN to list the token's private objects.
    LoginPin(SecretEntry),
    /// The backend's module shows several tokens: which one.
    PickToken {
        /// The tokens the module lists, in its order.
        tokens: Vec<crate::hsm::TokenSummary>,
        /// The one under the cursor.
        at: usize,
    },
}

/// A token operation under way. `seq` tells the run loop a new one started (its elapsed
/// time restarts).
#[derive(Debug)]
pub struct Busy {
    /// What the status line says is under way ("Opening the token").
    pub what: String,
    /// Time since it started, from the last [`Event::Tick`].
    pub elapsed: Duration,
    /// Which operation this is: one more for each operation started.
    pub seq: u64,
}

/// The smallest terminal the console draws in.
pub const MIN_SIZE: (u16, u16) = (80, 24);

/// Everything the console shows, in one place: `update` changes it, the views read it.
/// It holds no token and no file handle; the worker thread has those.
#[derive(Debug)]
pub struct AppState {
    /// The screen in the body.
    pub screen: Screen,
    /// The backend URI, as shown in the header (a PIN in it is redacted).
    pub backend: String,
    /// Whether the token is open, and what it said about itself.
    pub token: TokenStatus,
    /// The token's objects from the last snapshot (private ones only after a login).
    pub objects: Vec<ObjectRow>,
    /// The ceremony scripts found at start-up (`--ceremonies DIR`).
    pub ceremonies: Vec<CeremonySummary>,
    /// The home screen's panes and selections.
    pub home: HomeState,
    /// The ceremony opened on the ceremony screen, if any (one at a time).
    pub run: Option<CeremonyRun>,
    /// The sign screen's fields and last result.
    pub sign: SignState,
    /// The Approvals screen's listing and choices.
    pub approvals: ApprovalsState,
    /// Where the Approvals screen reads signing requests from.
    pub requests_dir: PathBuf,
    /// The overlay that has the keyboard, if any.
    pub popup: Option<Popup>,
    /// Lines the help overlay is scrolled.
    pub help_scroll: u16,
    /// The token operation under way (the status line shows it; most keys wait).
    pub busy: Option<Busy>,
    busy_seq: u64,
    /// One line of news at the bottom ("answers saved to …").
    pub notice: Option<String>,
    /// False under NO_COLOR.
    pub color: bool,
    /// Where ceremony runs write (one directory per ceremony id).
    pub out_root: PathBuf,
    /// The run loop leaves after drawing this frame.
    pub quit: bool,
    /// Quit once the run has recorded its abort and closed its transcript.
    pub quit_after_close: bool,
}

/// What the run loop must do for `update`.
#[derive(Debug)]
pub enum Command {
    /// Send this request to the worker thread (token work, the ceremony runner).
    Worker(Request),
    /// Open the console's backend again, as this URI (a token was chosen).
    Reopen(String),
    /// Write the answers file of the ceremony in `out` (from its transcript) under a new
    /// name beside `base` (`base`, then `…-2`, `…-3`).
    SaveAnswers {
        /// The ceremony's script (the answers are keyed by its steps).
        script: Box<crate::ceremony::script::Script>,
        /// The run's out directory, whose transcript holds the answers given.
        out: PathBuf,
        /// The first name tried (`<ceremony id>.answers.toml`).
        base: PathBuf,
    },
    /// Clear the terminal before the next frame (a share appears or goes: nothing of it
    /// may linger in the terminal's cells).
    ClearScreen,
}

impl AppState {
    /// The console at start-up: home screen, token opening, nothing selected. `backend`
    /// is shown as given (already redacted by the caller).
    pub fn new(backend: &str, ceremonies: Vec<CeremonySummary>, color: bool) -> Self {
        AppState {
            screen: Screen::Home,
            backend: backend.to_string(),
            token: TokenStatus::Opening,
            objects: Vec::new(),
            ceremonies,
            home: HomeState::default(),
            run: None,
            sign: SignState::default(),
            approvals: ApprovalsState::default(),
            requests_dir: super::approvals::default_dir(),
            popup: None,
            help_scroll: 0,
            busy: None,
            busy_seq: 0,
            notice: None,
            color,
            out_root: PathBuf::from("out"),
            quit: false,
            quit_after_close: false,
        }
    }

    /// The contexts keys are looked up in, most specific first.
    pub fn contexts(&self) -> Vec<Context> {
        match &self.popup {
            Some(Popup::Help) => return vec![Context::Dismiss, Context::Scroll],
            Some(Popup::Error { .. }) => return vec![Context::Dismiss],
            Some(Popup::Confirm { .. }) => return vec![Context::Confirm],
            Some(Popup::PickToken { .. }) => return vec![Context::Picker],
            Some(Popup::SignPin(_) | Popup::LoginPin(_) | Popup::Destroy(_)) => {
                return vec![Context::Entry]
            }
            None => {}
        }
        match self.screen {
            Screen::Home => vec![Context::Home, Context::Global],
            Screen::Ceremony => ceremony::contexts(self.run.as_ref()),
            Screen::Sign => {
                if self.sign.editing {
                    vec![Context::Path, Context::Entry]
                } else {
                    vec![Context::Sign, Context::Global]
                }
            }
            Screen::Approvals => vec![Context::Approvals, Context::Scroll, Context::Global],
        }
    }

    /// Whether `action` does something on this screen now (the footer offers only those).
    pub fn available(&self, action: Action) -> bool {
        match (self.screen, self.popup.is_some()) {
            (Screen::Ceremony, false) => ceremony::available(self.run.as_ref(), action),
            _ => true,
        }
    }

    /// The token's PIN length rules (0: none known).
    pub fn pin_rules(&self) -> (usize, usize) {
        match &self.token {
            TokenStatus::Ready(i) => (i.min_pin_len, i.max_pin_len),
            _ => (0, 0),
        }
    }

    pub(crate) fn error(&mut self, title: &str, cause: impl Into<String>, next: impl Into<String>) {
        self.popup = Some(Popup::Error {
            title: title.to_string(),
            cause: cause.into(),
            next: next.into(),
        });
    }

    /// Show that `what` is under way.
    pub(crate) fn set_busy(&mut self, what: String) {
        self.busy_seq += 1;
        self.busy = Some(Busy {
            what,
            elapsed: Duration::ZERO,
            seq: self.busy_seq,
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

/// Send `req` to the worker and show it as under way.
pub(crate) fn start(s: &mut AppState, req: Request) -> Vec<Command> {
    s.set_busy(req.describe());
    vec![Command::Worker(req)]
}

fn on_worker(s: &mut AppState, msg: WorkerMsg) -> Vec<Command> {
    // A run's messages say themselves when its token work starts and ends.
    if !ceremony::of_run(&msg) {
        s.busy = None;
    }
    match msg {
        WorkerMsg::Snapshot { info, objects } => {
            s.objects = objects.iter().map(ObjectRow::of).collect();
            s.token = TokenStatus::Ready(info);
            s.home.object = s.home.object.min(s.objects.len().saturating_sub(1));
            sign::keys_changed(s);
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
        WorkerMsg::Signed { .. } | WorkerMsg::Verified { .. } => sign::on_worker(s, msg),
        WorkerMsg::Tokens(tokens) => {
            s.popup = Some(Popup::PickToken { tokens, at: 0 });
            Vec::new()
        }
        WorkerMsg::Requests(_) | WorkerMsg::Approved { .. } => approvals::on_worker(s, msg),
        WorkerMsg::Failed { what, cause } => {
            let next = next_for(&cause, false);
            s.error(&format!("{what} failed"), cause, next);
            Vec::new()
        }
        other => ceremony::on_worker(s, other),
    }
}

/// What to tell the operator to do next, from the cause.
pub(crate) fn next_for(cause: &str, in_step: bool) -> String {
    let lower = cause.to_lowercase();
    let first = if lower.contains("wrong") && lower.contains("pin") {
        "Check the PIN with its custodian; mind the retries left before it locks."
    } else if lower.contains("locked") {
        "Stop: the PIN is locked. The security officer must unlock it; do not retry."
    } else if lower.contains("already exists") {
        "An object with this label or id is already on the token: check the object browser (1) before going on."
    } else if lower.contains("not logged in") {
        "Log in first (the ceremony's login step), then retry."
    } else if lower.contains("in use by another") {
        "Another officiant run holds this out directory: let it finish, then open the ceremony again."
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
    if let Some(cmds) = on_popup(s, action) {
        return cmds;
    }
    if entry {
        return match s.screen {
            Screen::Ceremony => ceremony::on_entry(s, action),
            Screen::Sign => sign::on_entry(s, action),
            Screen::Home | Screen::Approvals => Vec::new(),
        };
    }
    match action {
        Action::Help => {
            s.popup = Some(Popup::Help);
            s.help_scroll = 0;
            Vec::new()
        }
        Action::Quit => {
            if s.run.as_ref().is_some_and(|r| r.in_progress()) {
                s.popup = Some(Popup::Confirm {
                    question: "Quit in the middle of the ceremony?".into(),
                    detail:
                        "The steps not yet run will not run. Keys already made stay on the token; the journal lets the run resume later."
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
        Action::GoApprovals => approvals::open(s),
        _ => match s.screen {
            Screen::Home => home::on_action(s, action),
            Screen::Ceremony => ceremony::on_action(s, action),
            Screen::Sign => sign::on_action(s, action),
            Screen::Approvals => approvals::on_action(s, action),
        },
    }
}

/// Keys while a popup has the keyboard; `None` when no popup took the key.
fn on_popup(s: &mut AppState, action: Action) -> Option<Vec<Command>> {
    match s.popup.as_mut()? {
        Popup::Help | Popup::Error { .. } => {
            match action {
                Action::Dismiss => s.popup = None,
                Action::PageUp => s.help_scroll = s.help_scroll.saturating_sub(8),
                Action::PageDown => s.help_scroll = s.help_scroll.saturating_add(8),
                _ => {}
            }
            Some(Vec::new())
        }
        Popup::Confirm { action: what, .. } => {
            let what = *what;
            match action {
                Action::Yes => {
                    s.popup = None;
                    Some(match what {
                        ConfirmAction::Quit => {
                            let cmds =
                                ceremony::abort_run(s, "the console was closed by the operator");
                            // A run told to stop closes its transcript first.
                            if cmds
                                .iter()
                                .any(|c| matches!(c, Command::Worker(Request::Reply(_))))
                            {
                                s.quit_after_close = true;
                            } else {
                                s.quit = true;
                            }
                            cmds
                        }
                        ConfirmAction::Abort => {
                            s.notice = Some("ceremony aborted".into());
                            ceremony::abort_run(s, "aborted at the console by the operator")
                        }
                        ConfirmAction::Approve => approvals::approve_confirmed(s),
                    })
                }
                Action::No => {
                    s.popup = None;
                    // Declining to abort a destructive step goes back to its question.
                    ceremony::reask(s);
                    Some(Vec::new())
                }
                _ => Some(Vec::new()),
            }
        }
        Popup::Destroy(_) => Some(ceremony::on_destroy(s, action)),
        Popup::PickToken { tokens, at } => {
            match action {
                Action::Up | Action::Down => {
                    *at = step_sel(*at, tokens.len(), action == Action::Down);
                }
                Action::Submit => {
                    let chosen = tokens.get(*at).map(|t| t.serial.clone());
                    s.popup = None;
                    let uri = crate::hsm::BackendUri::parse(&s.backend)
                        .ok()
                        .zip(chosen)
                        .and_then(|(u, serial)| u.with_serial(&serial));
                    if let Some(u) = uri {
                        s.backend = u.to_string();
                        s.token = TokenStatus::Opening;
                        s.objects.clear();
                        s.set_busy("Opening the token".into());
                        return Some(vec![Command::Reopen(u.to_string())]);
                    }
                }
                // Keep the console on the backend as given (no token chosen).
                Action::Abort => s.popup = None,
                _ => {}
            }
            Some(Vec::new())
        }
        Popup::SignPin(_) | Popup::LoginPin(_) => Some(on_pin(s, action)),
    }
}

/// Keys in a PIN popup (log in, or sign): Esc closes it, Backspace edits, Enter hands
/// the PIN on and closes the popup: a login goes to the worker (which takes a new
/// snapshot), a signing to the sign screen's request.
fn on_pin(s: &mut AppState, action: Action) -> Vec<Command> {
    let Some(Popup::SignPin(entry) | Popup::LoginPin(entry)) = s.popup.as_mut() else {
        return Vec::new();
    };
    match action {
        Action::Cancel | Action::Abort => s.popup = None,
        Action::DeleteChar => entry.backspace(),
        Action::Submit => {
            if let Some(pin) = entry.submit() {
                let signing = matches!(s.popup, Some(Popup::SignPin(_)));
                s.popup = None;
                return if signing {
                    sign::sign_with(s, pin)
                } else {
                    start(s, Request::Login { pin })
                };
            }
        }
        _ => {}
    }
    Vec::new()
}

fn type_char(s: &mut AppState, c: char) {
    match s.popup.as_mut() {
        Some(Popup::SignPin(e) | Popup::LoginPin(e)) => return e.push(c),
        Some(Popup::Destroy(d)) => return d.input.push(c),
        _ => {}
    }
    match s.screen {
        Screen::Ceremony => ceremony::type_char(s, c),
        Screen::Sign => sign::type_char(s, c),
        Screen::Home | Screen::Approvals => {}
    }
}

/// Move a selection in a list of `len`.
pub(crate) fn step_sel(sel: usize, len: usize, down: bool) -> usize {
    if len == 0 {
        0
    } else if down {
        (sel + 1).min(len - 1)
    } else {
        sel.saturating_sub(1)
    }
}
