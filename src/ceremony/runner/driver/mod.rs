//! The driver: performs the engine's effects for one run, in order, through the token,
//! the journal, the transcript and the face's [`Inputs`]. Secrets live in its vault only
//! until their last step. Setting a run up is `runner`'s; a sign-off signed with an SSH
//! key is [`signed`]; what each engine record writes is [`record`].

mod record;
mod signed;
#[cfg(test)]
mod tests;

use crate::ceremony::lock::TokenLock;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use serde_json::{json, Value};

use super::{busy_text, crash_point, execute_step, token_json, Error, StepContext, Vault};
use crate::ceremony::custodians::Desk;
use crate::ceremony::custody::Halt;
use crate::ceremony::engine::{self, Effect, Event, State, StepStatus};
use crate::ceremony::inputs::{Answer, Danger, Inputs, Progress};
use crate::ceremony::journal::{self, Journal, Memo, StepLog};
use crate::ceremony::people::Participant;
use crate::ceremony::script::{Action, Script};
use crate::ceremony::transcript::Writer;
use crate::hsm::{self, Token};

/// Performs the engine's effects for one run.
pub(super) struct Driver<'r> {
    pub(super) script: &'r Script,
    pub(super) token: &'r mut dyn Token,
    pub(super) uri: &'r str,
    pub(super) out: &'r Path,
    pub(super) journal: Option<&'r mut Journal>,
    /// What the journal proves so far (earlier runs' records and this run's).
    pub(super) memo: Memo,
    pub(super) tr: &'r mut Writer,
    /// Secret values by name; the engine only ever sees the names.
    pub(super) vault: Vault,
    /// Per secret name, the last step of this run that needs its value: once that step
    /// is done the value leaves the vault (and is zeroized).
    pub(super) last_use: BTreeMap<String, usize>,
    pub(super) inputs: &'r mut dyn Inputs,
    /// A verified signed sign-off the engine has yet to record: (step, role, name, what
    /// the transcript entry adds).
    pub(super) signed_pending: Option<(usize, String, String, Value)>,
    /// The token locks this run holds (`None`: a run that takes none, a one-step
    /// command): taken when the token opens, and after an init-token under its new serial.
    pub(super) token_locks: Option<Vec<TokenLock>>,
}

impl Driver<'_> {
    /// Drive the engine from `start` to its end; `Some(error)` when the run stopped.
    pub(super) fn drive(&mut self, start: Event) -> Result<Option<String>, Error> {
        let mut state = State::new(self.script);
        self.drive_state(&mut state, start)
    }

    pub(super) fn drive_state(
        &mut self,
        state: &mut State,
        start: Event,
    ) -> Result<Option<String>, Error> {
        let mut queue: VecDeque<Effect> = self.update(state, start).into();
        self.inputs.progress(self.script, Progress::State(state));
        let mut failure: Option<String> = None;
        while let Some(effect) = queue.pop_front() {
            let need = matches!(
                effect,
                Effect::NeedSignOff { .. }
                    | Effect::NeedConfirm { .. }
                    | Effect::NeedSecret { .. }
                    | Effect::NeedRoster
                    | Effect::NeedAck { .. }
            );
            // An aborted run asks for nothing more.
            if need && state.is_over() {
                continue;
            }
            // Answering a need writes nothing, so the disk looks the same just before it as
            // at the boundary before: only boundaries around writes are crash points.
            if !need {
                crash_point();
            }
            let event = match effect {
                Effect::Finish => {
                    self.close_complete()?;
                    None
                }
                Effect::Fail { error, .. } => {
                    self.tr.close("stopped")?;
                    failure = Some(error);
                    None
                }
                Effect::NeedSignOff {
                    step,
                    role,
                    have,
                    need,
                } if self.script.is_signed(&role) => {
                    Some(self.signed_sign_off(state, step, role, have, need)?)
                }
                // A custody step deals with the custodians on the roll call.
                Effect::RunStep { step, reconcile }
                    if crate::ceremony::custody::is_custody(&self.script.steps[step].action) =>
                {
                    Some(self.run_custody_step(step, reconcile, &state.roster.clone()))
                }
                Effect::NeedAck { step, role } => {
                    let result = state.steps[step].result.clone().unwrap_or_default();
                    Some(
                        match self.inputs.acknowledge(self.script, step, &role, &result) {
                            Answer::Given(name) => Event::Acknowledged { step, role, name },
                            Answer::Abort(reason) => Event::Abort { reason },
                        },
                    )
                }
                other => self.perform(other)?,
            };
            if let Some(ev) = event {
                queue.extend(self.update(state, ev));
                self.inputs.progress(self.script, Progress::State(state));
            }
        }
        // Secrets are not needed after the run.
        self.vault.clear();
        Ok(failure)
    }

    /// Feed the engine one event. After the start, work out when each secret is last
    /// needed; after a step is done, drop the secrets no later step needs.
    fn update(&mut self, state: &mut State, ev: Event) -> Vec<Effect> {
        let start = matches!(ev, Event::Start { .. });
        let done = match &ev {
            Event::StepDone { step, .. } => Some(*step),
            _ => None,
        };
        let fx = engine::update(state, ev);
        if start {
            self.last_use = state.secret_last_uses();
        }
        if let Some(step) = done.filter(|&i| state.steps[i].status == StepStatus::Done) {
            let last = &self.last_use;
            self.vault
                .retain(|name, _| last.get(name).is_some_and(|&l| l > step));
        }
        fx
    }

    /// Append a record to the journal (if the run keeps one) and take it into the memo.
    fn journal(&mut self, r: journal::Record) -> Result<(), Error> {
        if let Some(j) = self.journal.as_deref_mut() {
            j.append(&r)?;
        }
        self.memo.note(&r);
        Ok(())
    }

    fn place(&self, step: usize) -> String {
        self.script.steps[step].place(step)
    }

    /// One effect; the engine event it answers with, if any.
    fn perform(&mut self, effect: Effect) -> Result<Option<Event>, Error> {
        let abort = |reason: String| Event::Abort { reason };
        Ok(match effect {
            Effect::OpenToken => {
                self.record_token()?;
                Some(Event::TokenOpened)
            }
            Effect::NeedSignOff {
                step,
                role,
                have,
                need,
            } => Some(
                match self.inputs.sign_off(self.script, step, &role, have, need) {
                    Answer::Given(name) => Event::SignedOff { step, role, name },
                    Answer::Abort(r) => abort(r),
                },
            ),
            Effect::NeedRoster => Some(match self.inputs.roster(self.script) {
                Answer::Given(r) => Event::Roster(r),
                Answer::Abort(r) => abort(r),
            }),
            Effect::NeedConfirm { step } => {
                let danger = self.danger(step);
                Some(match self.inputs.confirm(self.script, step, &danger) {
                    Answer::Given(()) => Event::Confirmed { step },
                    Answer::Abort(r) => abort(r),
                })
            }
            Effect::NeedSecret { step, name, retry } => {
                let sets = self.script.steps[step].action.sets_secret(&name);
                Some(
                    match self
                        .inputs
                        .secret(self.script, step, &name, sets, retry.as_deref())
                    {
                        Answer::Given(v) => {
                            self.vault.insert(name.clone(), v);
                            Event::SecretProvided { name }
                        }
                        Answer::Abort(r) => abort(r),
                    },
                )
            }
            Effect::Rejected { step, reason } => {
                match self.inputs.rejected(self.script, step, &reason) {
                    Answer::Given(()) => None,
                    Answer::Abort(r) => Some(abort(r)),
                }
            }
            Effect::Relogin { step, user, pin } => {
                self.inputs
                    .progress(self.script, Progress::Busy("Logging in again to resume"));
                let res = self.relogin(step, user, &pin);
                self.inputs.progress(self.script, Progress::Idle);
                Some(match res {
                    Ok(()) => Event::ReloggedIn,
                    Err(e) => Event::StepFailed {
                        step,
                        error: format!("{}: logging in again to resume: {e}", self.place(step)),
                    },
                })
            }
            Effect::RunStep { step, reconcile } => Some(self.run_step(step, reconcile)?),
            Effect::Record(r) => {
                self.record(r)?;
                None
            }
            // Handled by the loop.
            Effect::Finish | Effect::Fail { .. } | Effect::NeedAck { .. } => None,
        })
    }

    /// What destructive step `step` destroys, read from the token now.
    fn danger(&mut self, step: usize) -> Danger {
        let info = self.token.info().ok();
        let objects = self.token.list_objects().ok().map(|o| o.len());
        let what = match &self.script.steps[step].action {
            Action::InitToken(_) => "every key and object on the token".to_string(),
            Action::DeleteObject(d) => format!(
                "the objects labelled {:?}{}",
                d.label,
                d.class
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ),
            Action::ChangeAuthKey(_) => {
                "the authentication key this session logged in with (replaced by a rotation)"
                    .to_string()
            }
            _ => "what the step names".to_string(),
        };
        Danger {
            token_label: info.as_ref().map(|i| i.label.clone()).unwrap_or_default(),
            serial: info.map(|i| i.serial).unwrap_or_default(),
            objects,
            what,
        }
    }

    fn record_token(&mut self) -> Result<(), Error> {
        let info = self
            .token
            .info()
            .map_err(|e| Error::Run(format!("{}: {e}", self.uri)))?;
        if let Some(held) = self.token_locks.as_mut() {
            // Asked again after init-token: the same token (a resumed or re-initialized
            // one keeps its serial) is held already.
            let have = TokenLock::key_of(&info).is_some_and(|k| held.iter().any(|h| h.key == k));
            if !have {
                held.extend(TokenLock::take(&info)?);
            }
        }
        self.tr.append("token", token_json(&info))?;
        self.inputs.progress(self.script, Progress::Token(&info));
        Ok(())
    }

    /// Log in again after a resume as the completed steps left the session.
    fn relogin(&mut self, step: usize, user: hsm::UserType, pin: &str) -> Result<(), String> {
        let first = match self.vault.get(pin) {
            Some(p) => self.token.login(user, p).map_err(|e| e.to_string()),
            None => Err(format!("secret {pin:?} is not available")),
        };
        let Err(e) = first else { return Ok(()) };
        // A rotation interrupted after it finished: the key has its new password already
        // (the step then adopts its work).
        let Action::ChangeAuthKey(c) = &self.script.steps[step].action else {
            return Err(e);
        };
        if !self.vault.contains_key(&c.new_password) {
            let sets = self.script.steps[step].action.sets_secret(&c.new_password);
            if let Answer::Given(v) =
                self.inputs
                    .secret(self.script, step, &c.new_password, sets, None)
            {
                self.vault.insert(c.new_password.clone(), v);
            }
        }
        match self.vault.get(&c.new_password) {
            Some(p) if self.token.login(user, p).is_ok() => Ok(()),
            _ => Err(format!(
                "{e}; nor with its new password: the interrupted rotation left temporary key {:04x} (temporary password) as the working administrative key; finish by hand with the device's own tool",
                c.temporary_key_id
            )),
        }
    }

    fn run_step(&mut self, step: usize, reconcile: bool) -> Result<Event, Error> {
        let st = &self.script.steps[step];
        let busy = busy_text(self.script, step);
        self.inputs.progress(self.script, Progress::Busy(&busy));
        let log = StepLog::new(step, &st.id, self.journal.as_deref_mut(), &mut self.memo);
        let ctx = StepContext {
            script_token_label: &self.script.ceremony.token,
            out_dir: self.out,
            vault: &self.vault,
            log: &log,
        };
        // An init-token holds its library from before it picks a slot until the new
        // token is locked by its serial (by `record_token`).
        let init_lock = match (&st.action, &self.token_locks) {
            (Action::InitToken(_), Some(_)) => {
                let info = self
                    .token
                    .info()
                    .map_err(|e| Error::Run(format!("{}: {e}", self.uri)))?;
                TokenLock::for_init(&info)?
            }
            _ => None,
        };
        let res = execute_step(self.token, &ctx, st, reconcile);
        self.inputs.progress(self.script, Progress::Idle);
        Ok(match res {
            Ok(result) => {
                if matches!(st.action, Action::InitToken(_)) {
                    self.record_token()?;
                }
                drop(init_lock);
                Event::StepDone { step, result }
            }
            Err(e) => Event::StepFailed {
                step,
                error: format!("{}: {e}", st.place(step)),
            },
        })
    }

    /// Run custody step `step`: its shares cross through the face ([`Inputs`]) at the
    /// custodians' desk. A face that stops (an abort) leaves the step interrupted, so the
    /// next run resumes it.
    fn run_custody_step(&mut self, step: usize, reconcile: bool, roster: &[Participant]) -> Event {
        let st = &self.script.steps[step];
        let busy = busy_text(self.script, step);
        self.inputs.progress(self.script, Progress::Busy(&busy));
        let log = StepLog::new(step, &st.id, self.journal.as_deref_mut(), &mut self.memo);
        let ctx = StepContext {
            script_token_label: &self.script.ceremony.token,
            out_dir: self.out,
            vault: &self.vault,
            log: &log,
        };
        let mut desk = Desk::new(&mut *self.inputs, self.script, step, roster, self.out, busy);
        let res = crate::ceremony::custody::execute(self.token, &ctx, st, reconcile, &mut desk);
        self.inputs.progress(self.script, Progress::Idle);
        match res {
            Ok(result) => Event::StepDone { step, result },
            Err(Halt::Abort(reason)) => Event::Abort { reason },
            Err(Halt::Failed(e)) => Event::StepFailed {
                step,
                error: format!("{}: {e}", st.place(step)),
            },
        }
    }

    /// Close a run that went to the end. Transcript first: a journal marked complete
    /// promises a closed transcript.
    fn close_complete(&mut self) -> Result<(), Error> {
        self.sign_evidence()?;
        self.tr.close("complete")?;
        if let Some(j) = self.journal.as_deref_mut() {
            crash_point();
            j.append(&journal::Record::Complete)?;
        }
        Ok(())
    }

    /// With `[ceremony] evidence-key`, the key signs the head of everything recorded so
    /// far: an `evidence` entry right before the closing one (see `ceremony::evidence`).
    /// A failure stops the run (its steps stay done; a rerun signs again).
    fn sign_evidence(&mut self) -> Result<(), Error> {
        let Some(label) = &self.script.ceremony.evidence_key else {
            return Ok(());
        };
        let head = self.tr.head().to_string();
        match crate::ceremony::evidence::sign_head(self.token, label, &head) {
            Ok(data) => Ok(self.tr.append(crate::ceremony::evidence::KIND, data)?),
            Err(e) => {
                let error = format!("ceremony.evidence-key: {e}");
                self.tr.append("stopped", json!({ "error": error }))?;
                self.tr.close("stopped")?;
                Err(Error::Run(error))
            }
        }
    }
}
