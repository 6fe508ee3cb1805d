//! What each engine record leaves: the journal first (so a resume knows), then the
//! transcript entry. Decides nothing: the engine chose the record.

use serde_json::{json, Value};

use super::Driver;
use crate::ceremony::engine::Record;
use crate::ceremony::journal::{self};
use crate::ceremony::runner::{crash_point, merge, result_json, Error};
use crate::ceremony::script::Action;

impl Driver<'_> {
    /// Journal first (so a resume knows), then the transcript.
    pub(super) fn record(&mut self, r: Record) -> Result<(), Error> {
        let script = self.script;
        let step_info = |i: usize| {
            let s = &script.steps[i];
            (
                s.id.clone(),
                s.action.kind(),
                s.title.clone().unwrap_or_default(),
            )
        };
        match r {
            Record::Resumed { step, result } => {
                let (id, kind, _) = step_info(step);
                self.tr.append(
                    "resumed",
                    json!({"step": step, "id": id, "kind": kind, "result": result_json(&result)}),
                )?;
            }
            Record::SignedOff { step, role, name } => {
                let (id, ..) = step_info(step);
                let mut d = json!({"step": step, "id": id, "role": role, "name": name});
                match self.signed_pending.take() {
                    Some((s, r, n, extra)) if s == step && r == role && n == name => {
                        merge(&mut d, extra)
                    }
                    _ => {}
                }
                self.tr.append("sign-off", d)?;
            }
            Record::Confirmed { step } => {
                let (id, ..) = step_info(step);
                self.tr.append("confirm", json!({"step": step, "id": id}))?;
            }
            Record::StepStarted { step, reconcile } => {
                let (id, kind, title) = step_info(step);
                self.journal(journal::Record::Started {
                    step,
                    id: id.clone(),
                })?;
                let mut d = json!({"step": step, "id": id, "kind": kind, "title": title, "reconcile": reconcile});
                if let Action::Instruction(ins) = &script.steps[step].action {
                    d["text"] = Value::String(ins.text.clone());
                }
                if let Some(desc) = &script.steps[step].description {
                    d["description"] = Value::String(desc.clone());
                }
                self.tr.append("step-start", d)?;
            }
            Record::StepCompleted { step, result } => {
                let (id, kind, _) = step_info(step);
                self.journal(journal::Record::Completed {
                    step,
                    id: id.clone(),
                    result: result.clone(),
                })?;
                crash_point();
                self.tr.append(
                    "step-done",
                    json!({"step": step, "id": id, "kind": kind, "result": result_json(&result)}),
                )?;
            }
            Record::StepFailed { step, error } => {
                let (id, ..) = step_info(step);
                self.journal(journal::Record::Failed {
                    step,
                    id: id.clone(),
                })?;
                self.tr.append(
                    "step-failed",
                    json!({"step": step, "id": id, "error": error}),
                )?;
            }
            Record::Roster(people) => {
                self.tr.append("roster", json!({"participants": people}))?;
            }
            Record::Acknowledged { step, role, name } => {
                let (id, ..) = step_info(step);
                self.journal(journal::Record::Acknowledged {
                    step,
                    id: id.clone(),
                    role: role.clone(),
                    name: name.clone(),
                })?;
                self.tr.append(
                    "acknowledge",
                    json!({"step": step, "id": id, "role": role, "name": name, "statement": "read aloud and matched"}),
                )?;
            }
            Record::RunComplete => {}
            Record::RunStopped { error } => {
                self.tr.append("stopped", json!({"error": error}))?;
            }
        }
        Ok(())
    }
}
