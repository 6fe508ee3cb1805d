//! The transition function: `update` and one handler per event.

use super::{Effect, Event, Phase, Record, SignOff, State, StepResult, StepStatus};
use crate::ceremony::people::{self, Participant};
use crate::ceremony::script::Script;

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
