//! The machine's state: each step's plan and progress, the phase of the run, who is
//! logged in, the roster; and the rules that read it (what comes next, who may sign).

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Effect, Record, StepResult};
use crate::ceremony::people::{self, Participant};
use crate::ceremony::script::{Action, Script};
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
    pub(super) session: SessionEffect,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) enum SessionEffect {
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
    pub(super) relogin_pending: bool,
    pub(super) interrupted: Option<usize>,
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
            custodians: crate::ceremony::plan::custody_need(&s.action)
                .map(|(r, n)| (r.to_string(), n)),
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

    pub(super) fn apply_session(&mut self, i: usize) {
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
    pub(super) fn unacknowledged(&self) -> Option<(usize, String)> {
        self.steps.iter().enumerate().find_map(|(i, s)| {
            let done = matches!(s.status, StepStatus::Done | StepStatus::Resumed);
            match (&s.plan.review, &s.acknowledged) {
                (Some(role), None) if done => Some((i, role.clone())),
                _ => None,
            }
        })
    }

    /// Ask for the next missing input, or run the next step, or finish.
    pub(super) fn advance(&mut self) -> Vec<Effect> {
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

    pub(super) fn waiting_on(&self, step: usize) -> bool {
        self.phase == Phase::Waiting && self.current() == Some(step)
    }

    /// The roster entry for a sign-off or acknowledgement in `role` by `name`, or why not.
    pub(super) fn seat(&self, role: &str, name: &str) -> Result<String, String> {
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

    pub(super) fn sign_off_needs(&self) -> Vec<Vec<(String, usize)>> {
        self.steps.iter().map(|s| s.plan.sign_off.clone()).collect()
    }

    /// Every custody step finds its custodians on the roll call.
    pub(super) fn check_custodians(&self, roster: &[Participant]) -> Result<(), String> {
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
pub(super) fn needs_session(kind: &str) -> bool {
    !matches!(
        kind,
        "init-token" | "login" | "change-pin" | "instruction" | "co-sign"
    )
}

/// Who is logged in (and with which secret) after a step with this session effect.
pub(super) fn session_after(
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
