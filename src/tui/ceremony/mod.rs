//! The ceremony screen as a component: its state (a mirror of the runner's engine, plus
//! what only the screen has: the step on view, the scroll, the question being answered)
//! and its `on_action`. The run itself is the worker's (the one effect runner); this
//! screen answers its questions: the roll call, sign-offs picked from the roll call, the
//! typed confirmation of a destructive step, secrets, and the reviewer's acknowledgement
//! of each result; and for custody steps the custodians: each picked from the roll call,
//! each share shown to its custodian alone on a cleared screen and typed back from their
//! copy after it is hidden, or (restore) typed in masked, one custodian at a time.
//!
//! Here the screen's state; `questions`: what the run asks and tells, and the answers
//! sent back; `keys`: what each key does on this screen.

mod keys;
mod questions;

pub use keys::{available, contexts, on_action, on_destroy, on_entry, type_char};
pub use questions::{abort_run, of_run, on_worker, reask};

use std::path::PathBuf;

use super::app;
use super::views::widgets::{SecretEntry, TextInput};
use super::worker::Opened;
use crate::ceremony::custody::CustodyTurn;
use crate::ceremony::engine;
use crate::ceremony::inputs::Danger;
use crate::ceremony::people::{self, Participant};
use crate::ceremony::script::Script;
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
