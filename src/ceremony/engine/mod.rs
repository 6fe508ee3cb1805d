//! The ceremony as a pure state machine: `update(&mut State, Event) -> Vec<Effect>`.
//!
//! No I/O, no clock, no secrets: a face (the headless runner, the console) feeds events
//! (a sign-off typed or read from the answers file, a step's result from the runner) and
//! performs the effects it gets back. The machine walks the steps in order; before each
//! it asks for the sign-offs, the confirmation (destructive steps) and the secrets the
//! step needs, one at a time, then asks for the step to run.
//!
//! Secrets never enter the state: `Effect::NeedSecret` names one, the face puts the value
//! in its own vault and answers `Event::SecretProvided { name }`.
//!
//! People: before the first step the machine asks for the roster (`NeedRoster`: who is
//! present, in which roles); every sign-off and acknowledgement then names someone on it,
//! compared as a person (see [`super::people`]), and one person never fills two seats of
//! one step. After a step whose result a witness must check, the machine pauses for the
//! reviewer's acknowledgement (`NeedAck`) before it goes on.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::people::{self, Participant};
use super::script::{Action, Script};
use crate::hsm::UserType;

/// What one step is, as the machine needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepPlan {
    /// The step's id in the script.
    pub id: String,
    /// The step kind's name as a script writes it (`generate-key`).
    pub kind: &'static str,
    /// The step's title, or empty.
    pub title: String,
    /// (role, how many distinct people).
    pub sign_off: Vec<(String, usize)>,
    /// A destructive step: it waits for an explicit confirmation.
    pub confirm: bool,
    /// The names of the secrets the step reads, in the order they are asked for.
    pub secrets: Vec<String>,
    /// The role that acknowledges the result after the step ran.
    pub review: Option<String>,
    /// Custody steps: the custodians' role and how many distinct custodians the step
    /// calls on (N shares handed out, or T shares given back); the roll call must seat
    /// them.
    pub custodians: Option<(String, usize)>,
    session: SessionEffect,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
enum SessionEffect {
    None,
    /// init-token: the token has no session afterwards.
    Reset,
    Login {
        user: UserType,
        pin: String,
    },
    ChangePin {
        user: UserType,
        new: String,
    },
}

/// Where a step is in the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StepStatus {
    /// Not run yet; its sign-offs, confirmation and secrets may be under way.
    Pending,
    /// Handed to the runner (`Effect::RunStep`), no answer yet.
    Running,
    /// Ran in this run; its result is recorded.
    Done,
    /// Done in an earlier, interrupted run (from the journal).
    Resumed,
    /// Failed with this one-line error; the run ended with it.
    Failed(String),
}

/// One person's sign-off (or acknowledgement) in one role, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignOff {
    /// The role the person signed in.
    pub role: String,
    /// The person's name as the roll call spells it.
    pub name: String,
}

/// One step of the run: what it is, where it stands, who signed off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepState {
    /// What the step is.
    pub plan: StepPlan,
    /// Where it stands.
    pub status: StepStatus,
    /// The sign-offs given so far, in the order they came.
    pub sign_offs: Vec<SignOff>,
    /// Its confirmation was given (destructive steps only).
    pub confirmed: bool,
    /// Its result, once it ran (or the journal said it had).
    pub result: Option<StepResult>,
    /// The reviewer's acknowledgement of the result ("read aloud and matched").
    pub acknowledged: Option<SignOff>,
}

/// Where the whole run is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// Waiting for `Event::Start`.
    Ready,
    /// Waiting for the token to be opened (`Effect::OpenToken`).
    OpeningToken,
    /// Waiting for the roster (`Event::Roster`).
    RollCall,
    /// Waiting for the answer to the last `Need*` effect.
    Waiting,
    /// Logging in again after a resume.
    Relogin(usize),
    /// Step `.0` is with the runner.
    Running(usize),
    /// Every step is done; nothing more happens.
    Finished,
    /// A step failed with this error; nothing more happens.
    Failed(String),
    /// Someone stopped the run, for this reason; nothing more happens.
    Aborted(String),
}

/// The whole state a face renders. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct State {
    /// Every step of the script, in order.
    pub steps: Vec<StepState>,
    /// Where the run is.
    pub phase: Phase,
    /// Who is logged in, and under which secret name (never the value).
    pub session: Option<(UserType, String)>,
    /// Secret names the face holds values for.
    pub secrets_ready: BTreeSet<String>,
    /// Who is present, in which roles (empty until the roll call, and for a script
    /// without roles).
    pub roster: Vec<Participant>,
    /// The script's roles (role → people per sign-off): the roll call must fill them.
    pub roles: std::collections::BTreeMap<String, u32>,
    relogin_pending: bool,
    interrupted: Option<usize>,
}

/// A finished step's results: recorded in the journal and the transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    /// Objects the step made on the token (or found made, when adopted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<CreatedObject>,
    /// Files the step wrote into the out dir.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputFile>,
    /// delete-object: how many objects were deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<usize>,
    /// The step found its work already done on the token (an interrupted earlier run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// What a step kind reports for the witnesses (certificate digests, fuse values,
    /// signed files): a JSON object, or null.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
    /// The checked sub-steps of an operation of several device calls (a rotation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_steps: Vec<crate::hsm::admin::SubStep>,
    /// The device's own audit log, read after the step (backends that keep one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_audit: Option<crate::hsm::admin::AuditReport>,
    /// One-line facts for the witnesses ("force-audit is on").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An object a step made on the token, as the transcript records it for the witnesses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedObject {
    /// Its label on the token.
    pub label: String,
    /// Object id, hex.
    pub id: String,
    /// Its class as people read it ("private key", "certificate").
    pub class: String,
    /// "EC P-256", "RSA 4096": empty for objects that are not keys.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_type: String,
    /// SHA-256 of the public key's DER SubjectPublicKeyInfo, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_sha256: Option<String>,
}

/// A file a step wrote into the out dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// File name in the out dir.
    pub path: String,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// The file was already there from an interrupted attempt of this step and was kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
}

/// What a face tells the machine: an answer to an effect, or a step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Begin. `completed`, `interrupted` and `acknowledged` (results already read aloud
    /// and acknowledged) come from the journal of an earlier run.
    Start {
        /// Steps the journal says are done, with their results.
        completed: Vec<(usize, StepResult)>,
        /// The step an earlier run started and did not finish, if any.
        interrupted: Option<usize>,
        /// Results already read aloud and acknowledged, by step.
        acknowledged: Vec<(usize, SignOff)>,
    },
    /// The token is open (answer to `Effect::OpenToken`).
    TokenOpened,
    /// A person signed off step `step` in a role (answer to `Effect::NeedSignOff`).
    SignedOff {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The role they sign in.
        role: String,
        /// Their name as typed; the roll call decides who it is.
        name: String,
    },
    /// A destructive step was confirmed (answer to `Effect::NeedConfirm`).
    Confirmed {
        /// Index of the step in the script (0-based).
        step: usize,
    },
    /// The face now holds the value of secret `name`.
    SecretProvided {
        /// The secret's name in the script.
        name: String,
    },
    /// The token refused the value of secret `name` (a wrong PIN) before the step
    /// changed anything: ask for it again.
    SecretRefused {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The secret's name in the script.
        name: String,
        /// Why the token refused it (one line, shown when it is asked again).
        reason: String,
    },
    /// The people present, in their roles.
    Roster(Vec<Participant>),
    /// The reviewer read step `step`'s result aloud and it matched.
    Acknowledged {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The reviewing role.
        role: String,
        /// The reviewer's name as typed.
        name: String,
    },
    /// Logged in again after a resume (answer to `Effect::Relogin`).
    ReloggedIn,
    /// The runner ran step `step`.
    StepDone {
        /// Index of the step in the script (0-based).
        step: usize,
        /// What it made and wrote.
        result: StepResult,
    },
    /// The runner could not run step `step`.
    StepFailed {
        /// Index of the step in the script (0-based).
        step: usize,
        /// One line naming the step and the cause.
        error: String,
    },
    /// Someone stops the run.
    Abort {
        /// Why, in one line (recorded in the transcript).
        reason: String,
    },
}

/// What the machine asks of a face: an input, a token call, a record to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Open the token and record what it is; answer `Event::TokenOpened`.
    OpenToken,
    /// Who is present, and in which roles (once, before the first step).
    NeedRoster,
    /// Ask someone in `role` to sign off step `step`; answer `Event::SignedOff`.
    NeedSignOff {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The role that signs.
        role: String,
        /// Sign-offs in that role so far.
        have: usize,
        /// Sign-offs the role must give.
        need: usize,
    },
    /// Ask for the confirmation of destructive step `step`; answer `Event::Confirmed`.
    NeedConfirm {
        /// Index of the step in the script (0-based).
        step: usize,
    },
    /// Ask for the value of secret `name`; answer `Event::SecretProvided` (the value stays
    /// with the face).
    NeedSecret {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The secret's name in the script.
        name: String,
        /// Asked again: why the last value was refused (a wrong PIN).
        retry: Option<String>,
    },
    /// The reviewer (`role`) reads step `step`'s result aloud and acknowledges it.
    NeedAck {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The reviewing role.
        role: String,
    },
    /// After a resume: log in again as the session of the completed steps had it.
    Relogin {
        /// The step the session is restored for.
        step: usize,
        /// Who logs in.
        user: UserType,
        /// The name of the secret that holds the PIN (never its value).
        pin: String,
    },
    /// Execute step `step`. `reconcile`: it started in an earlier run and did not
    /// complete; look on the token and in the out dir for its work before redoing it.
    RunStep {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The step started in an earlier run and did not finish.
        reconcile: bool,
    },
    /// An input was not accepted (e.g. one person in two roles); the need is asked again.
    Rejected {
        /// Index of the step in the script (0-based).
        step: usize,
        /// Why, in one line, for the person who gave it.
        reason: String,
    },
    /// Write this to the journal, then the transcript.
    Record(Record),
    /// The run is complete.
    Finish,
    /// The run stopped.
    Fail {
        /// The failed step, if a step failed.
        step: Option<usize>,
        /// One line naming the cause.
        error: String,
    },
}

/// What the runner writes to the journal and the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A step done in an earlier run, adopted with its result.
    Resumed {
        /// Index of the step in the script (0-based).
        step: usize,
        /// Its result as the journal recorded it.
        result: StepResult,
    },
    /// The people present, in their roles (the roll call).
    Roster(Vec<Participant>),
    /// A result read aloud and acknowledged.
    Acknowledged {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The reviewing role.
        role: String,
        /// The reviewer's name as the roll call spells it.
        name: String,
    },
    /// A sign-off, accepted.
    SignedOff {
        /// Index of the step in the script (0-based).
        step: usize,
        /// The role signed in.
        role: String,
        /// The person's name as the roll call spells it.
        name: String,
    },
    /// A destructive step confirmed.
    Confirmed {
        /// Index of the step in the script (0-based).
        step: usize,
    },
    /// A step handed to the runner (the journal's mark before it touches anything).
    StepStarted {
        /// Index of the step in the script (0-based).
        step: usize,
        /// It continues an interrupted attempt.
        reconcile: bool,
    },
    /// A step done.
    StepCompleted {
        /// Index of the step in the script (0-based).
        step: usize,
        /// What it made and wrote.
        result: StepResult,
    },
    /// A step failed (a wrong PIN among them: the attempt is evidence).
    StepFailed {
        /// Index of the step in the script (0-based).
        step: usize,
        /// One line naming the cause.
        error: String,
    },
    /// Every step done: the journal is closed as complete.
    RunComplete,
    /// The run stopped before its end.
    RunStopped {
        /// Why, in one line.
        error: String,
    },
}

impl StepPlan {
    /// Step `i` of `script` as the machine needs it: its sign-offs, secrets, review and the
    /// session it leaves.
    pub fn of(script: &Script, i: usize) -> Self {
        let s = &script.steps[i];
        let session = match &s.action {
            Action::InitToken(_) => SessionEffect::Reset,
            Action::Login(l) => SessionEffect::Login {
                user: l.user,
                pin: l.pin.clone(),
            },
            Action::ChangePin(c) => SessionEffect::ChangePin {
                user: c.user,
                new: c.new_pin.clone(),
            },
            // A YubiHSM auth-key rotation changes the session key's password.
            Action::ChangeAuthKey(c) => SessionEffect::ChangePin {
                user: UserType::User,
                new: c.new_password.clone(),
            },
            // set-policy with an SO PIN leaves the SO logged in.
            Action::SetPolicy(p) => match &p.so_pin {
                Some(pin) => SessionEffect::Login {
                    user: UserType::So,
                    pin: pin.clone(),
                },
                None => SessionEffect::None,
            },
            _ => SessionEffect::None,
        };
        StepPlan {
            id: s.id.clone(),
            kind: s.action.kind(),
            title: s.title.clone().unwrap_or_else(|| s.id.clone()),
            sign_off: s
                .sign_off
                .iter()
                .map(|r| {
                    (
                        r.clone(),
                        script.roles.get(r).copied().unwrap_or(1) as usize,
                    )
                })
                .collect(),
            confirm: s.action.destructive(),
            review: s.review.clone(),
            custodians: super::plan::custody_need(&s.action).map(|(r, n)| (r.to_string(), n)),
            secrets: s
                .action
                .secrets()
                .into_iter()
                .map(|(_, n)| n.to_string())
                .collect(),
            session,
        }
    }
}

impl State {
    /// A run of `script` before `Event::Start`: every step pending.
    pub fn new(script: &Script) -> Self {
        State {
            steps: (0..script.steps.len())
                .map(|i| StepState {
                    plan: StepPlan::of(script, i),
                    status: StepStatus::Pending,
                    sign_offs: vec![],
                    confirmed: false,
                    result: None,
                    acknowledged: None,
                })
                .collect(),
            phase: Phase::Ready,
            session: None,
            secrets_ready: BTreeSet::new(),
            roster: Vec::new(),
            roles: script.roles.clone(),
            relogin_pending: false,
            interrupted: None,
        }
    }

    /// The step being prepared or run, if any.
    pub fn current(&self) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| matches!(s.status, StepStatus::Pending | StepStatus::Running))
    }

    /// The run finished, failed or was stopped: no event changes it any more.
    pub fn is_over(&self) -> bool {
        matches!(
            self.phase,
            Phase::Finished | Phase::Failed(_) | Phase::Aborted(_)
        )
    }

    fn apply_session(&mut self, i: usize) {
        self.session = session_after(self.session.take(), &self.steps[i].plan.session);
    }

    /// For each secret name, the last step of this run that needs its value: the steps
    /// that read it, and the step before which a resumed run logs in again with the
    /// session's PIN. Once that step is done the face can drop the value. Call after
    /// `Event::Start` (which says what is already done and how the session stands).
    pub fn secret_last_uses(&self) -> std::collections::BTreeMap<String, usize> {
        let mut last = std::collections::BTreeMap::new();
        let mut session = self.session.clone();
        let mut relogin = self.relogin_pending;
        for (i, st) in self.steps.iter().enumerate() {
            if !matches!(st.status, StepStatus::Pending | StepStatus::Running) {
                continue;
            }
            // As `advance`: the first step that needs the session logs in again.
            let logs_in = matches!(st.plan.kind, "init-token" | "login" | "change-pin");
            if relogin && needs_session(st.plan.kind) {
                if let Some((_, pin)) = &session {
                    last.insert(pin.clone(), i);
                }
                relogin = false;
            }
            relogin &= !logs_in;
            for n in &st.plan.secrets {
                last.insert(n.clone(), i);
            }
            session = session_after(session, &st.plan.session);
        }
        last
    }

    /// A done step whose result still waits for its reviewer.
    fn unacknowledged(&self) -> Option<(usize, String)> {
        self.steps.iter().enumerate().find_map(|(i, s)| {
            let done = matches!(s.status, StepStatus::Done | StepStatus::Resumed);
            match (&s.plan.review, &s.acknowledged) {
                (Some(role), None) if done => Some((i, role.clone())),
                _ => None,
            }
        })
    }

    /// Ask for the next missing input, or run the next step, or finish.
    fn advance(&mut self) -> Vec<Effect> {
        if let Some((step, role)) = self.unacknowledged() {
            self.phase = Phase::Waiting;
            return vec![Effect::NeedAck { step, role }];
        }
        let Some(i) = self.current() else {
            self.phase = Phase::Finished;
            return vec![Effect::Record(Record::RunComplete), Effect::Finish];
        };
        let st = &self.steps[i];
        for (role, need) in &st.plan.sign_off {
            let have = st.sign_offs.iter().filter(|s| &s.role == role).count();
            if have < *need {
                self.phase = Phase::Waiting;
                return vec![Effect::NeedSignOff {
                    step: i,
                    role: role.clone(),
                    have,
                    need: *need,
                }];
            }
        }
        if st.plan.confirm && !st.confirmed {
            self.phase = Phase::Waiting;
            return vec![Effect::NeedConfirm { step: i }];
        }
        // A step that logs in (change-pin logs in with the old PIN) or wipes the token
        // makes the old session moot.
        let relogin = self.relogin_pending && needs_session(st.plan.kind);
        if relogin {
            if let Some((user, pin)) = self.session.clone() {
                if !self.secrets_ready.contains(&pin) {
                    self.phase = Phase::Waiting;
                    return vec![Effect::NeedSecret {
                        step: i,
                        name: pin,
                        retry: None,
                    }];
                }
                self.phase = Phase::Relogin(i);
                return vec![Effect::Relogin { step: i, user, pin }];
            }
        }
        if let Some(name) = st
            .plan
            .secrets
            .iter()
            .find(|n| !self.secrets_ready.contains(*n))
        {
            self.phase = Phase::Waiting;
            return vec![Effect::NeedSecret {
                step: i,
                name: name.clone(),
                retry: None,
            }];
        }
        let reconcile = self.interrupted == Some(i);
        self.steps[i].status = StepStatus::Running;
        self.phase = Phase::Running(i);
        vec![
            Effect::Record(Record::StepStarted { step: i, reconcile }),
            Effect::RunStep { step: i, reconcile },
        ]
    }

    fn waiting_on(&self, step: usize) -> bool {
        self.phase == Phase::Waiting && self.current() == Some(step)
    }

    /// The roster entry for a sign-off or acknowledgement in `role` by `name`, or why not.
    fn seat(&self, role: &str, name: &str) -> Result<String, String> {
        let name = people::clean_name(name)?;
        if self.roster.is_empty() {
            // A script without roles takes no roll call.
            return Ok(name);
        }
        let Some(p) = people::find(&self.roster, &name) else {
            let names: Vec<&str> = self.roster.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "{name} is not on the roll call ({})",
                names.join(", ")
            ));
        };
        if !p.roles.iter().any(|r| r == role) {
            return Err(format!(
                "{} is on the roll call as {}, not {role}",
                p.name,
                p.roles.join(" and ")
            ));
        }
        Ok(p.name.clone())
    }

    fn sign_off_needs(&self) -> Vec<Vec<(String, usize)>> {
        self.steps.iter().map(|s| s.plan.sign_off.clone()).collect()
    }

    /// Every custody step finds its custodians on the roll call.
    fn check_custodians(&self, roster: &[Participant]) -> Result<(), String> {
        for s in &self.steps {
            if let Some((role, n)) = &s.plan.custodians {
                people::check_custodians(roster, &s.plan.id, role, *n)?;
            }
        }
        Ok(())
    }
}

/// Whether a step of this kind needs the session a resumed run lost: a step that logs in
/// (change-pin with the old PIN) or wipes the token makes the old session moot, and an
/// instruction or a co-sign never touches the token.
fn needs_session(kind: &str) -> bool {
    !matches!(
        kind,
        "init-token" | "login" | "change-pin" | "instruction" | "co-sign"
    )
}

/// Who is logged in (and with which secret) after a step with this session effect.
fn session_after(
    session: Option<(UserType, String)>,
    effect: &SessionEffect,
) -> Option<(UserType, String)> {
    match effect {
        SessionEffect::None => session,
        SessionEffect::Reset => None,
        SessionEffect::Login { user, pin } => Some((*user, pin.clone())),
        SessionEffect::ChangePin { user, new } => match session {
            Some((u, pin)) if u != *user => Some((u, pin)),
            _ => Some((*user, new.clone())),
        },
    }
}

/// The state a run would start from, for showing it before it starts: `start` applied to
/// a fresh state (resumed steps with their results), still `Ready`.
pub fn preview(script: &Script, start: Event) -> State {
    let mut st = State::new(script);
    update(&mut st, start);
    st.phase = Phase::Ready;
    st
}

/// The machine. Events that do not fit the current phase change nothing.
pub fn update(state: &mut State, event: Event) -> Vec<Effect> {
    if state.is_over() {
        return vec![];
    }
    match event {
        Event::Start {
            completed,
            interrupted,
            acknowledged,
        } => on_start(state, completed, interrupted, acknowledged),
        Event::TokenOpened => {
            if state.phase != Phase::OpeningToken {
                return vec![];
            }
            if state.roles.is_empty() {
                return state.advance();
            }
            state.phase = Phase::RollCall;
            vec![Effect::NeedRoster]
        }
        Event::Roster(roster) => on_roster(state, roster),
        Event::Acknowledged { step, role, name } => on_acknowledged(state, step, role, name),
        Event::SecretRefused { step, name, reason } => on_secret_refused(state, step, name, reason),
        Event::SignedOff { step, role, name } => on_signed_off(state, step, role, name),
        Event::Confirmed { step } => {
            if !state.waiting_on(step) || !state.steps[step].plan.confirm {
                return vec![];
            }
            state.steps[step].confirmed = true;
            let mut fx = vec![Effect::Record(Record::Confirmed { step })];
            fx.extend(state.advance());
            fx
        }
        Event::SecretProvided { name } => {
            if state.phase != Phase::Waiting {
                return vec![];
            }
            state.secrets_ready.insert(name);
            state.advance()
        }
        Event::ReloggedIn => {
            if !matches!(state.phase, Phase::Relogin(_)) {
                return vec![];
            }
            state.relogin_pending = false;
            state.advance()
        }
        Event::StepDone { step, result } => on_step_done(state, step, result),
        Event::StepFailed { step, error } => on_step_failed(state, step, error),
        Event::Abort { reason } => on_abort(state, reason),
    }
}

/// `Start`: adopt what the journal says is done, then open the token.
fn on_start(
    state: &mut State,
    completed: Vec<(usize, StepResult)>,
    interrupted: Option<usize>,
    acknowledged: Vec<(usize, SignOff)>,
) -> Vec<Effect> {
    if state.phase != Phase::Ready {
        return vec![];
    }
    let mut fx = Vec::new();
    let mut done: Vec<(usize, StepResult)> = completed
        .into_iter()
        .filter(|(i, _)| *i < state.steps.len())
        .collect();
    done.sort_by_key(|(i, _)| *i);
    for (i, result) in done {
        state.steps[i].status = StepStatus::Resumed;
        state.steps[i].result = Some(result.clone());
        state.apply_session(i);
        fx.push(Effect::Record(Record::Resumed { step: i, result }));
    }
    for (i, by) in acknowledged {
        if let Some(st) = state.steps.get_mut(i) {
            st.acknowledged = Some(by);
        }
    }
    state.relogin_pending = state.session.is_some();
    state.interrupted = interrupted;
    state.phase = Phase::OpeningToken;
    fx.push(Effect::OpenToken);
    fx
}

/// `Roster`: the people present, checked against every seat the steps need.
fn on_roster(state: &mut State, roster: Vec<Participant>) -> Vec<Effect> {
    if state.phase != Phase::RollCall {
        return vec![];
    }
    let fits = people::check_roster(&roster, &state.roles, &state.sign_off_needs())
        .and_then(|()| state.check_custodians(&roster));
    if let Err(reason) = fits {
        return vec![Effect::Rejected { step: 0, reason }, Effect::NeedRoster];
    }
    let roster: Vec<Participant> = roster
        .into_iter()
        .map(|p| Participant {
            name: p.name.trim().to_string(),
            roles: p.roles,
        })
        .collect();
    state.roster = roster.clone();
    let mut fx = vec![Effect::Record(Record::Roster(roster))];
    fx.extend(state.advance());
    fx
}

/// `Acknowledged`: the reviewer read the result aloud and it matched.
fn on_acknowledged(state: &mut State, step: usize, role: String, name: String) -> Vec<Effect> {
    if state.phase != Phase::Waiting
        || state.unacknowledged().map(|(i, _)| i) != Some(step)
        || state.steps[step].plan.review.as_deref() != Some(role.as_str())
    {
        return vec![];
    }
    match state.seat(&role, &name) {
        Err(reason) => {
            let mut fx = vec![Effect::Rejected { step, reason }];
            fx.extend(state.advance());
            fx
        }
        Ok(name) => {
            state.steps[step].acknowledged = Some(SignOff {
                role: role.clone(),
                name: name.clone(),
            });
            let mut fx = vec![Effect::Record(Record::Acknowledged { step, role, name })];
            fx.extend(state.advance());
            fx
        }
    }
}

/// `SecretRefused`: a wrong PIN before the step changed anything; ask again.
fn on_secret_refused(state: &mut State, step: usize, name: String, reason: String) -> Vec<Effect> {
    let ours = state.phase == Phase::Running(step) || state.phase == Phase::Relogin(step);
    if !ours {
        return vec![];
    }
    state.secrets_ready.remove(&name);
    state.steps[step].status = StepStatus::Pending;
    state.phase = Phase::Waiting;
    // The attempt is evidence (a wrong PIN costs a retry), and a resume must do
    // the step afresh, not adopt anything.
    vec![
        Effect::Record(Record::StepFailed {
            step,
            error: reason.clone(),
        }),
        Effect::NeedSecret {
            step,
            name,
            retry: Some(reason),
        },
    ]
}

/// `SignedOff`: one seat of the step filled, by someone on the roster who has no other.
fn on_signed_off(state: &mut State, step: usize, role: String, name: String) -> Vec<Effect> {
    if !state.waiting_on(step) {
        return vec![];
    }
    let st = &state.steps[step];
    let Some((_, need)) = st.plan.sign_off.iter().find(|(r, _)| *r == role) else {
        let mut fx = vec![Effect::Rejected {
            step,
            reason: format!("step {} does not ask role {role:?} to sign off", st.plan.id),
        }];
        fx.extend(state.advance());
        return fx;
    };
    let have = st.sign_offs.iter().filter(|s| s.role == role).count();
    let seat = state.seat(&role, &name);
    let reason = match &seat {
        Err(e) if name.trim().is_empty() => Some(format!("a sign-off needs a person's name ({e})")),
        Err(e) => Some(e.clone()),
        Ok(n) => {
            let key = people::person_key(n);
            if let Some(s) = st
                .sign_offs
                .iter()
                .find(|s| people::person_key(&s.name) == key)
            {
                Some(format!(
                    "{n} already signed off step {} as {}; one person cannot sign twice",
                    st.plan.id, s.role
                ))
            } else if have >= *need {
                Some(format!("role {role} has already signed off"))
            } else {
                None
            }
        }
    };
    let name = match (reason, seat) {
        (None, Ok(n)) => n,
        (reason, _) => {
            let mut fx = vec![Effect::Rejected {
                step,
                reason: reason.unwrap_or_default(),
            }];
            fx.extend(state.advance());
            return fx;
        }
    };
    state.steps[step].sign_offs.push(SignOff {
        role: role.clone(),
        name: name.clone(),
    });
    let mut fx = vec![Effect::Record(Record::SignedOff { step, role, name })];
    fx.extend(state.advance());
    fx
}

/// `StepDone`: record the result and go on.
fn on_step_done(state: &mut State, step: usize, result: StepResult) -> Vec<Effect> {
    if state.phase != Phase::Running(step) {
        return vec![];
    }
    state.steps[step].status = StepStatus::Done;
    state.steps[step].result = Some(result.clone());
    state.apply_session(step);
    if matches!(
        state.steps[step].plan.kind,
        "init-token" | "login" | "change-pin"
    ) {
        state.relogin_pending = false;
    }
    let mut fx = vec![Effect::Record(Record::StepCompleted { step, result })];
    fx.extend(state.advance());
    fx
}

/// `StepFailed`: the run ends.
fn on_step_failed(state: &mut State, step: usize, error: String) -> Vec<Effect> {
    let ours = state.phase == Phase::Running(step) || state.phase == Phase::Relogin(step);
    if !ours {
        return vec![];
    }
    state.steps[step].status = StepStatus::Failed(error.clone());
    state.phase = Phase::Failed(error.clone());
    vec![
        Effect::Record(Record::StepFailed {
            step,
            error: error.clone(),
        }),
        Effect::Fail {
            step: Some(step),
            error,
        },
    ]
}

/// `Abort`: the run stops, recorded.
fn on_abort(state: &mut State, reason: String) -> Vec<Effect> {
    state.phase = Phase::Aborted(reason.clone());
    vec![
        Effect::Record(Record::RunStopped {
            error: reason.clone(),
        }),
        Effect::Fail {
            step: state.current(),
            error: reason,
        },
    ]
}

#[cfg(test)]
mod tests;
