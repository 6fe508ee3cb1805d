//! The ceremony screen as a component: its state (a mirror of the runner's engine, plus
//! what only the screen has: the step on view, the scroll, the question being answered)
//! and its `on_action`. The run itself is the worker's (the one effect runner); this
//! screen answers its questions: the roll call, sign-offs picked from the roll call, the
//! typed confirmation of a destructive step, secrets, and the reviewer's acknowledgement
//! of each result; and for custody steps the custodians: each picked from the roll call,
//! each share shown to its custodian alone on a cleared screen and typed back from their
//! copy after it is hidden, or (restore) typed in masked, one custodian at a time.

use std::path::PathBuf;

use super::app::{self, AppState, Command, ConfirmAction, Popup, Screen, TypedConfirm};
use super::keymap::{Action, Context};
use super::plan;
use super::views::widgets::{SecretEntry, TextInput};
use super::worker::{Opened, Question, Reply, Request, WorkerMsg};
use crate::ceremony::custody::CustodyTurn;
use crate::ceremony::engine;
use crate::ceremony::inputs::Danger;
use crate::ceremony::people::{self, Participant};
use crate::ceremony::script::Script;
use crate::custody::shamir::Share;
use crate::secret::Secret;

/// A step's state as the step list shows it: the engine's status, plus `Skipped` for a
/// step that will not run because the run ended before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepStatus {
    /// Not reached yet.
    Pending,
    /// The runner is carrying it out (or asking about it).
    Running,
    /// Done in this run.
    Done,
    /// Done in an earlier, interrupted run (read from the journal).
    Resumed,
    /// It failed; the run stopped there.
    Failed,
    /// The run ended (finished, failed or aborted) before it.
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
    /// The status in a word, beside the symbol (`FAILED` in capitals, to stand out).
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

/// The person being added to the roll call: their name, and the roles ticked so far.
#[derive(Debug)]
pub struct RoleChoice {
    /// The name as typed (already cleaned and checked against the roll call).
    pub name: String,
    /// Every role the script has, and whether it is ticked for this person (Space).
    pub roles: Vec<(String, bool)>,
    /// The role under the cursor.
    pub at: usize,
}

/// The roll call being taken.
#[derive(Debug, Default)]
pub struct RollCall {
    /// Who has been added so far, with their roles.
    pub people: Vec<Participant>,
    /// The name field (Enter on an empty name ends the roll call).
    pub name: TextInput,
    /// The roles of the person being added, once their name is entered.
    pub choosing: Option<RoleChoice>,
}

/// The runner's question on screen, with what the screen needs to answer it.
/// Each variant answers one runner question (the worker's `Question`) and the field
/// `step` in each is the step asked about (index into the script's steps).
#[derive(Debug)]
pub enum Ask {
    /// Who is present and in which roles, before the first step.
    Roster(RollCall),
    /// Pick the person (`pick` indexes [`CeremonyRun::candidates`]).
    SignOff {
        /// The step to sign off.
        step: usize,
        /// The role that signs.
        role: String,
        /// Sign-offs of this role the step has.
        have: usize,
        /// Sign-offs of this role the step needs.
        need: usize,
        /// The candidate under the cursor.
        pick: usize,
    },
    /// The reviewer checks a step's result and says so (`pick` indexes
    /// [`CeremonyRun::candidates`]).
    Acknowledge {
        /// The step whose result is reviewed.
        step: usize,
        /// The reviewer's role (`[ceremony] reviewer`).
        role: String,
        /// The candidate under the cursor.
        pick: usize,
    },
    /// A secret the step needs, typed masked (twice when it sets a new one).
    Secret {
        /// The step that needs it.
        step: usize,
        /// The secret's name in the script (the runner's vault key, never its value).
        name: String,
        /// The masked field.
        entry: SecretEntry,
        /// Why it is asked again (a wrong PIN), if it is.
        retry: Option<String>,
    },
    /// Answered in the typed-confirmation popup.
    Confirm {
        /// The destructive step.
        step: usize,
        /// What it destroys, on which token.
        danger: Danger,
    },
    /// Pick the custodian who receives or gives a share (`pick` indexes
    /// [`CeremonyRun::candidates`]).
    Custodian {
        /// The custody step.
        step: usize,
        /// The custodians' role.
        role: String,
        /// Which share, of how many, and whether it is handed out or typed in.
        turn: CustodyTurn,
        /// Custodians who already had their turn (not offered again).
        taken: Vec<String>,
        /// The candidate under the cursor.
        pick: usize,
    },
    /// A share on screen for its custodian alone, until they press Enter.
    Share(ShownShare),
    /// The share hidden again; its custodian types it back from their copy.
    Retype {
        /// The custody step.
        step: usize,
        /// Whose share it is.
        custodian: String,
        /// The share's index (1-based).
        index: u8,
        /// How many shares there are.
        of: u8,
        /// The masked field the copy is typed into.
        entry: SecretEntry,
    },
    /// A custodian types their share (restore).
    ShareEntry {
        /// The restore step.
        step: usize,
        /// Whose share it is.
        custodian: String,
        /// Which turn this is, of how many.
        turn: CustodyTurn,
        /// The masked field; its form is checked here, the share set by the runner.
        entry: SecretEntry,
    },
}

/// A share shown to its custodian. The text is a [`Secret`]: zeroized when the screen
/// moves on, redacted in `Debug`.
#[derive(Debug)]
pub struct ShownShare {
    /// The custody step.
    pub step: usize,
    /// The one custodian who may look.
    pub custodian: String,
    /// The share's index (1-based).
    pub index: u8,
    /// How many shares there are.
    pub of: u8,
    /// How many shares rebuild the key.
    pub threshold: u8,
    /// The share as the custodian copies it.
    pub text: Secret,
}

/// How the run ended.
#[derive(Debug, Clone)]
pub struct Closed {
    /// The run's transcript file.
    pub transcript: PathBuf,
    /// Every step done (else it failed or was aborted; the journal can resume it).
    pub complete: bool,
    /// The transcript head (hex), when complete.
    pub head: Option<String>,
}

/// A ceremony at the console.
#[derive(Debug)]
pub struct CeremonyRun {
    /// The script as the runner parsed it.
    pub script: Script,
    /// The runner's engine state, as it last reported it.
    pub engine: engine::State,
    /// The run's out directory (journal, transcript, outputs).
    pub out: PathBuf,
    /// The runner found an interrupted run's journal there and resumes it.
    pub resumed: bool,
    /// Steps done in earlier, interrupted runs.
    pub done_before: usize,
    /// The operator started the run (the worker's runner drives it from then on).
    pub started: bool,
    /// The runner's question on screen, waiting for an answer.
    pub asking: Option<Ask>,
    /// Why the runner refused the last answer (shown with the question asked again).
    pub rejected: Option<String>,
    /// How the run ended, once the runner has closed its transcript.
    pub closed: Option<Closed>,
    /// The step shown in the detail pane.
    pub view: usize,
    /// The detail pane follows the run (off once the operator moves it with ↑/↓).
    pub follow: bool,
    /// Lines scrolled in the detail pane.
    pub scroll: u16,
}

impl CeremonyRun {
    /// A ceremony the worker opened (plan checked, journal read), not yet started.
    pub fn new(o: Opened) -> Self {
        let mut run = CeremonyRun {
            done_before: o.completed.len(),
            script: o.script,
            engine: o.state,
            out: o.out,
            resumed: o.resumed,
            started: false,
            asking: None,
            rejected: None,
            closed: None,
            view: 0,
            follow: true,
            scroll: 0,
        };
        run.view = run.focus();
        run
    }
    /// The operator pressed Enter to start it.
    pub fn started(&self) -> bool {
        self.started
    }
    /// Over: every step done, failed, aborted, or the transcript closed.
    pub fn finished(&self) -> bool {
        self.engine.is_over() || self.closed.is_some()
    }
    /// Started and not over: quitting or leaving now asks first.
    pub fn in_progress(&self) -> bool {
        self.started() && !self.finished()
    }
    /// The step the run is at: the failed or running one, the one asked about, else the
    /// next to run.
    pub fn focus(&self) -> usize {
        let st = &self.engine.steps;
        if let Some(step) = self.asking.as_ref().and_then(Ask::step) {
            return step;
        }
        st.iter()
            .position(|s| matches!(s.status, engine::StepStatus::Failed(_)))
            .or_else(|| self.engine.current())
            .unwrap_or(st.len().saturating_sub(1))
    }
    /// Step `i`'s status for the step list (a step never reached in an ended run is
    /// `Skipped`). `i` must be a step of the script.
    pub fn status(&self, i: usize) -> StepStatus {
        match &self.engine.steps[i].status {
            engine::StepStatus::Pending if self.finished() && self.started => StepStatus::Skipped,
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
    /// The people who may answer the question asked now (a sign-off: those on the roll
    /// call in the role who have not signed this step; an acknowledgement: those in the
    /// reviewer's role).
    pub fn candidates(&self) -> Vec<&Participant> {
        let (role, signed): (&String, Vec<&str>) = match &self.asking {
            Some(Ask::SignOff { step, role, .. }) => (
                role,
                self.engine.steps[*step]
                    .sign_offs
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect(),
            ),
            Some(Ask::Acknowledge { role, .. }) => (role, Vec::new()),
            Some(Ask::Custodian { role, taken, .. }) => {
                (role, taken.iter().map(String::as_str).collect())
            }
            _ => return Vec::new(),
        };
        self.engine
            .roster
            .iter()
            .filter(|p| p.roles.iter().any(|r| r == role))
            .filter(|p| {
                !signed
                    .iter()
                    .any(|s| people::person_key(s) == people::person_key(&p.name))
            })
            .collect()
    }
    fn follow_run(&mut self) {
        if self.follow {
            let f = self.focus();
            if f != self.view {
                self.view = f;
                self.scroll = 0;
            }
        }
    }
}

impl Ask {
    /// The step the question is about (`None` for the roll call).
    pub fn step(&self) -> Option<usize> {
        match self {
            Ask::Roster(_) => None,
            Ask::SignOff { step, .. }
            | Ask::Acknowledge { step, .. }
            | Ask::Secret { step, .. }
            | Ask::Confirm { step, .. }
            | Ask::Custodian { step, .. }
            | Ask::Share(ShownShare { step, .. })
            | Ask::Retype { step, .. }
            | Ask::ShareEntry { step, .. } => Some(*step),
        }
    }
}

/// The contexts of the ceremony screen, most specific first.
pub fn contexts(run: Option<&CeremonyRun>) -> Vec<Context> {
    match run.and_then(|r| r.asking.as_ref()) {
        Some(Ask::Roster(rc)) if rc.choosing.is_some() => vec![Context::Roles],
        Some(Ask::Roster(_) | Ask::Secret { .. }) => vec![Context::Entry, Context::Scroll],
        // A custodian's screens: nothing else to read, nothing to scroll.
        Some(Ask::Share(_)) => vec![Context::Share],
        Some(Ask::Retype { .. } | Ask::ShareEntry { .. }) => vec![Context::Entry],
        Some(Ask::SignOff { .. } | Ask::Acknowledge { .. } | Ask::Custodian { .. }) => {
            vec![Context::Picker, Context::Scroll]
        }
        _ => vec![Context::Ceremony, Context::Scroll, Context::Global],
    }
}

/// Whether a ceremony-screen key does something now.
pub fn available(run: Option<&CeremonyRun>, action: Action) -> bool {
    let Some(run) = run else {
        return !matches!(action, Action::Select | Action::Abort | Action::SaveAnswers);
    };
    let failed = run.closed.as_ref().is_some_and(|c| !c.complete);
    match action {
        Action::Select => !run.started() || failed,
        Action::Abort => run.asking.is_some() || !run.started() || run.in_progress(),
        Action::SaveAnswers => run.started(),
        _ => true,
    }
}

/// Worker messages that belong to a run (they set their own progress indicator).
pub fn of_run(msg: &WorkerMsg) -> bool {
    matches!(
        msg,
        WorkerMsg::CeremonyState(_)
            | WorkerMsg::Ask(_)
            | WorkerMsg::Rejected { .. }
            | WorkerMsg::TokenInfo(_)
    )
}

/// What the worker reports of a ceremony: opened (the screen switches to it), the
/// engine's new state, a question to put on screen, a refused answer, the token busy
/// or idle, and the end of the run (a failure opens the error popup; the object list
/// is read again).
pub fn on_worker(s: &mut AppState, msg: WorkerMsg) -> Vec<Command> {
    match msg {
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
        }
        WorkerMsg::CeremonyState(st) => {
            if let Some(run) = s.run.as_mut() {
                run.engine = *st;
                run.follow_run();
            }
        }
        WorkerMsg::Ask(q) => return ask(s, q),
        WorkerMsg::TokenInfo(info) => s.token = super::app::TokenStatus::Ready(info),
        WorkerMsg::Rejected { reason, .. } => {
            if let Some(run) = s.run.as_mut() {
                run.rejected = Some(reason);
            }
        }
        WorkerMsg::CeremonyBusy(what) => match what {
            Some(w) => s.set_busy(w),
            None => s.busy = None,
        },
        WorkerMsg::CeremonyClosed {
            transcript,
            complete,
            error,
            head,
        } => return closed(s, transcript, complete, error, head),
        _ => {}
    }
    Vec::new()
}

fn closed(
    s: &mut AppState,
    transcript: PathBuf,
    complete: bool,
    error: Option<String>,
    head: Option<String>,
) -> Vec<Command> {
    s.notice = Some(format!("transcript: {}", transcript.display()));
    if s.quit_after_close {
        s.quit = true;
    }
    if let Some(run) = s.run.as_mut() {
        run.closed = Some(Closed {
            transcript,
            complete,
            head,
        });
        run.asking = None;
        run.follow_run();
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
                let next = app::next_for(&e, step.is_some());
                s.error(&format!("{what} failed"), e, next);
            }
        }
    }
    // Keep the object browser true to the token.
    app::start(s, Request::Refresh)
}

/// The runner's question goes on screen. A share comes on a cleared screen.
fn ask(s: &mut AppState, q: Question) -> Vec<Command> {
    let (min, max) = s.pin_rules();
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    let clear = matches!(q, Question::ShowShare { .. });
    run.asking = Some(match q {
        Question::Roster => Ask::Roster(RollCall::default()),
        Question::SignOff {
            step,
            role,
            have,
            need,
        } => Ask::SignOff {
            step,
            role,
            have,
            need,
            pick: 0,
        },
        Question::Acknowledge { step, role } => Ask::Acknowledge {
            step,
            role,
            pick: 0,
        },
        Question::Secret {
            step, name, retry, ..
        } => {
            let (prompt, twice, pin) = plan::secret_prompt(&run.script, step, &name);
            let (min, max) = if pin { (min, max) } else { (0, 0) };
            let mut entry = SecretEntry::new(&prompt, twice, min, max);
            // Why it is asked again, until the first key is typed.
            entry.error = retry.clone();
            Ask::Secret {
                step,
                name,
                entry,
                retry,
            }
        }
        Question::Confirm { step, danger } => Ask::Confirm { step, danger },
        Question::Custodian {
            step,
            role,
            turn,
            taken,
        } => Ask::Custodian {
            step,
            role,
            turn,
            taken,
            pick: 0,
        },
        Question::ShowShare {
            step,
            custodian,
            index,
            of,
            threshold,
            share,
            retry,
        } => {
            // Why it is shown again stands on the share's screen.
            run.rejected = retry.or(run.rejected.take());
            Ask::Share(ShownShare {
                step,
                custodian,
                index,
                of,
                threshold,
                text: share,
            })
        }
        Question::ShareEntry {
            step,
            custodian,
            turn,
            retry,
        } => {
            let mut entry = SecretEntry::new(&format!("Share of {custodian}"), false, 0, 0);
            entry.error = retry;
            Ask::ShareEntry {
                step,
                custodian,
                turn,
                entry,
            }
        }
    });
    // A question about a step shows that step, from its top.
    run.follow = true;
    run.view = run.focus();
    run.scroll = 0;
    reask(s);
    if clear {
        vec![Command::ClearScreen]
    } else {
        Vec::new()
    }
}

/// Show the typed confirmation of the destructive step being asked about (again, after
/// the operator declined to abort).
pub fn reask(s: &mut AppState) {
    let Some(run) = s.run.as_ref() else { return };
    if let Some(Ask::Confirm { step, danger }) = &run.asking {
        let word = if danger.token_label.is_empty() {
            run.script.ceremony.token.clone()
        } else {
            danger.token_label.clone()
        };
        s.popup = Some(Popup::Destroy(TypedConfirm {
            step: *step,
            danger: danger.clone(),
            word,
            input: TextInput::default(),
        }));
    }
}

/// Send the answer to the runner's question.
fn reply(s: &mut AppState, r: Reply) -> Vec<Command> {
    if let Some(run) = s.run.as_mut() {
        run.asking = None;
        run.rejected = None;
    }
    vec![Command::Worker(Request::Reply(r))]
}

/// Stop the ceremony: answer the runner's pending question with an abort, or let go of
/// a ceremony opened and not started.
pub fn abort_run(s: &mut AppState, reason: &str) -> Vec<Command> {
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    if run.asking.is_some() {
        return reply(s, Reply::Abort(reason.to_string()));
    }
    if !run.started {
        run.started = true;
        run.engine.phase = engine::Phase::Aborted(reason.to_string());
        return vec![Command::Worker(Request::CloseCeremony)];
    }
    Vec::new()
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

fn scroll(run: &mut CeremonyRun, action: Action) {
    run.scroll = match action {
        Action::PageUp => run.scroll.saturating_sub(8),
        _ => run.scroll.saturating_add(8),
    };
}

/// What the screen is asking, without borrowing it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asking {
    Nothing,
    Person,
    Roster,
    /// A share on screen.
    Share,
    Other,
}

fn asking(run: &CeremonyRun) -> Asking {
    match &run.asking {
        None => Asking::Nothing,
        Some(Ask::SignOff { .. } | Ask::Acknowledge { .. } | Ask::Custodian { .. }) => {
            Asking::Person
        }
        Some(Ask::Share(_)) => Asking::Share,
        Some(Ask::Roster(_)) => Asking::Roster,
        Some(_) => Asking::Other,
    }
}

/// Keys on the ceremony screen when no text field has the keyboard.
pub fn on_action(s: &mut AppState, action: Action) -> Vec<Command> {
    let busy = s.busy.is_some();
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    let now = asking(run);
    match (action, now) {
        (Action::PageUp | Action::PageDown, _) => scroll(run, action),
        // Choosing a person.
        (Action::Up | Action::Down, Asking::Person) => {
            let len = run.candidates().len();
            if let Some(
                Ask::SignOff { pick, .. }
                | Ask::Acknowledge { pick, .. }
                | Ask::Custodian { pick, .. },
            ) = run.asking.as_mut()
            {
                *pick = app::step_sel(*pick, len, action == Action::Down);
            }
        }
        (Action::Submit, Asking::Person) => return pick_person(s),
        // The custodian has copied the share: hide it (the screen is cleared) and have
        // it typed back.
        (Action::Submit, Asking::Share) => return hide_share(run),
        (Action::Abort, Asking::Person | Asking::Roster | Asking::Other | Asking::Share) => {
            ask_abort(s)
        }
        // The roles of the person being added to the roll call.
        (_, Asking::Roster) => {
            if let Some(Ask::Roster(rc)) = run.asking.as_mut() {
                roles_key(rc, action);
            }
        }
        // Nothing asked: read, start, save.
        (Action::Up | Action::Down, Asking::Nothing) => {
            let n = run.engine.steps.len();
            run.view = app::step_sel(run.view, n, action == Action::Down);
            run.follow = false;
            run.scroll = 0;
        }
        (Action::Abort, Asking::Nothing) if run.in_progress() || !run.started() => ask_abort(s),
        (Action::Select, Asking::Nothing) if !busy && !run.started() => {
            run.started = true;
            run.follow = true;
            return vec![Command::Worker(Request::StartCeremony)];
        }
        // After a failure or an abort: open the ceremony again; its journal resumes it.
        (Action::Select, Asking::Nothing)
            if !busy
                && run.closed.as_ref().is_some_and(|c| !c.complete)
                && !matches!(run.engine.phase, engine::Phase::Finished) =>
        {
            let req = Request::OpenCeremony {
                script: run.script.path.clone(),
                out: run.out.clone(),
            };
            return app::start(s, req);
        }
        (Action::Select, Asking::Nothing) => {
            run.follow = true;
            run.view = run.focus();
            run.scroll = 0;
        }
        (Action::SaveAnswers, Asking::Nothing) if run.started() => {
            return vec![Command::SaveAnswers {
                script: Box::new(run.script.clone()),
                out: run.out.clone(),
                base: PathBuf::from(format!("{}.answers.toml", run.script.ceremony.id)),
            }]
        }
        _ => {}
    }
    Vec::new()
}

/// Keys while the roles of a person on the roll call are chosen.
fn roles_key(rc: &mut RollCall, action: Action) {
    let Some(c) = rc.choosing.as_mut() else {
        return;
    };
    match action {
        Action::Up | Action::Down => {
            c.at = app::step_sel(c.at, c.roles.len(), action == Action::Down);
        }
        Action::Toggle => {
            if let Some(r) = c.roles.get_mut(c.at) {
                r.1 = !r.1;
            }
        }
        Action::Cancel => rc.choosing = None,
        Action::Submit => add_person(rc),
        _ => {}
    }
}

/// The share leaves the screen (its text is dropped, zeroized) and the terminal is
/// cleared; its custodian types it back from their copy.
fn hide_share(run: &mut CeremonyRun) -> Vec<Command> {
    let Some(Ask::Share(shown)) = run.asking.take() else {
        return Vec::new();
    };
    let prompt = format!("Share {} of {} as you copied it", shown.index, shown.of);
    run.rejected = None;
    run.asking = Some(Ask::Retype {
        step: shown.step,
        custodian: shown.custodian,
        index: shown.index,
        of: shown.of,
        entry: SecretEntry::new(&prompt, false, 0, 0),
    });
    vec![Command::ClearScreen]
}

/// The person picked answers the sign-off or acknowledgement.
fn pick_person(s: &mut AppState) -> Vec<Command> {
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    let name = {
        let people = run.candidates();
        let pick = match &run.asking {
            Some(
                Ask::SignOff { pick, .. }
                | Ask::Acknowledge { pick, .. }
                | Ask::Custodian { pick, .. },
            ) => *pick,
            _ => 0,
        };
        people.get(pick).map(|p| p.name.clone())
    };
    let Some(name) = name else {
        run.rejected = Some(
            "no one on the roll call can answer this; abort (Esc) and take the roll call again"
                .into(),
        );
        return Vec::new();
    };
    match run.asking {
        Some(Ask::Acknowledge { .. }) => reply(s, Reply::Acknowledge(name)),
        Some(Ask::Custodian { .. }) => reply(s, Reply::Custodian(name)),
        _ => reply(s, Reply::SignOff(name)),
    }
}

/// Enter on the roll call: a name opens its role choice; ticked roles add the person;
/// an empty name ends the roll call.
fn add_person(rc: &mut RollCall) {
    if let Some(c) = rc.choosing.take() {
        let roles: Vec<String> = c
            .roles
            .iter()
            .filter(|(_, on)| *on)
            .map(|(r, _)| r.clone())
            .collect();
        if roles.is_empty() {
            rc.name.error = Some(format!("{} needs at least one role", c.name));
            rc.choosing = Some(c);
            return;
        }
        rc.people.push(Participant {
            name: c.name,
            roles,
        });
    }
}

/// Keys while a text field of the ceremony screen has the keyboard (the roll call's name,
/// a secret).
pub fn on_entry(s: &mut AppState, action: Action) -> Vec<Command> {
    let roles: Vec<String> = s
        .run
        .as_ref()
        .map(|r| r.script.roles.keys().cloned().collect())
        .unwrap_or_default();
    let Some(run) = s.run.as_mut() else {
        return Vec::new();
    };
    match (action, run.asking.as_mut()) {
        (Action::PageUp | Action::PageDown, _) => scroll(run, action),
        (Action::Abort, _) => ask_abort(s),
        (Action::Cancel, Some(Ask::Roster(rc))) => rc.name.value.clear(),
        (Action::DeleteChar, Some(Ask::Roster(rc))) => {
            // On an empty name, Backspace takes the last person off the roll call.
            if rc.name.value.is_empty() {
                rc.people.pop();
            } else {
                rc.name.backspace();
            }
        }
        (Action::Submit, Some(Ask::Roster(rc))) => {
            if rc.name.value.trim().is_empty() {
                let roster = std::mem::take(&mut rc.people);
                return reply(s, Reply::Roster(roster));
            }
            match people::clean_name(&rc.name.value) {
                Err(e) => rc.name.error = Some(e),
                Ok(name) => {
                    if let Some(p) = people::find(&rc.people, &name) {
                        rc.name.error =
                            Some(format!("{name} is {} already on the roll call", p.name));
                        return Vec::new();
                    }
                    rc.name.value.clear();
                    rc.choosing = Some(RoleChoice {
                        name,
                        roles: roles.into_iter().map(|r| (r, false)).collect(),
                        at: 0,
                    });
                }
            }
        }
        (Action::Cancel, Some(Ask::Secret { entry, .. })) => {
            *entry = SecretEntry::new(&entry.prompt.clone(), entry.twice, entry.min, entry.max);
        }
        (Action::DeleteChar, Some(Ask::Secret { entry, .. })) => entry.backspace(),
        (Action::Submit, Some(Ask::Secret { entry, .. })) => {
            if let Some(value) = entry.submit() {
                // The value goes to the runner's vault; the engine only learns the name.
                return reply(s, Reply::Secret(value));
            }
        }
        (Action::Cancel, Some(Ask::Retype { entry, .. } | Ask::ShareEntry { entry, .. })) => {
            *entry = SecretEntry::new(&entry.prompt.clone(), false, 0, 0);
        }
        (Action::DeleteChar, Some(Ask::Retype { entry, .. } | Ask::ShareEntry { entry, .. })) => {
            entry.backspace()
        }
        // The runner compares the copy with the share (and shows it again if it differs).
        (Action::Submit, Some(Ask::Retype { entry, .. })) => {
            if let Some(copy) = entry.submit() {
                return reply(s, Reply::ShareCopy(copy));
            }
        }
        // The form is checked here; the set and the index by the runner.
        (
            Action::Submit,
            Some(Ask::ShareEntry {
                entry, custodian, ..
            }),
        ) => {
            if let Some(text) = entry.submit() {
                match Share::parse(&text, &format!("the share of {custodian}")) {
                    Ok(_) => return reply(s, Reply::Share(text)),
                    Err(e) => entry.error = Some(e.to_string()),
                }
            }
        }
        _ => {}
    }
    Vec::new()
}

/// A printable key while a ceremony text field has the keyboard (the roll call's name,
/// a secret, a share).
pub fn type_char(s: &mut AppState, c: char) {
    match s.run.as_mut().and_then(|r| r.asking.as_mut()) {
        Some(Ask::Roster(rc)) => rc.name.push(c),
        Some(
            Ask::Secret { entry, .. } | Ask::Retype { entry, .. } | Ask::ShareEntry { entry, .. },
        ) => entry.push(c),
        _ => {}
    }
}

/// The typed confirmation of a destructive step.
pub fn on_destroy(s: &mut AppState, action: Action) -> Vec<Command> {
    let Some(Popup::Destroy(d)) = s.popup.as_mut() else {
        return Vec::new();
    };
    match action {
        Action::DeleteChar => d.input.backspace(),
        Action::Submit if d.input.value.trim() == d.word => {
            s.popup = None;
            return reply(s, Reply::Confirm);
        }
        Action::Submit => {
            d.input.error = Some(format!(
                "type {:?} exactly to confirm; Esc if it should not run",
                d.word
            ))
        }
        // Declining is a different question with different keys: abort, y/n.
        Action::Cancel | Action::Abort => ask_abort(s),
        _ => {}
    }
    Vec::new()
}
