//! Validation of the whole plan before any token is opened: structure (ids, roles,
//! labels, outputs, files), the backend's capabilities, and the answers file. After the
//! token is opened (and before the first step) `check_token` confirms that keys the
//! script uses but does not create are there.
//!
//! This file walks the script (`check_script`: ids, roles, outputs, and what each step
//! makes) and checks the opened token (`check_token`); the checks of each step kind
//! against what the steps before it make are in `kinds`, the backend's rules in
//! `backend`, the answers file in `answers`.

mod answers;
mod backend;
mod kinds;

use std::collections::{BTreeMap, BTreeSet};

use super::script::{self, Action, ObjectType, Script, ScriptError};
use crate::hsm::{Label, ObjectClass, ObjectId, ObjectInfo};

pub use answers::check_answers;
use backend::refusal;
pub use backend::{check_capabilities, planned_steps};
use kinds::{
    check_backup, check_co_sign, check_export, check_import, check_put_auth_key, check_restore,
    check_root_of_trust, check_wrap_key, check_write_object, forget_deleted,
};

/// What validation learned that the runner needs later.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Keys used (step index, label) that no earlier step creates and no init-token
    /// wiped: they must already be on the token.
    pub external_keys: Vec<(usize, String)>,
    /// The evidence key, when no step makes it: it must already be on the token.
    pub evidence_key_external: Option<String>,
}

pub(super) fn err(script: &Script, i: usize, field: &str, message: String) -> ScriptError {
    let step = &script.steps[i];
    let place = if field.is_empty() {
        format!("{}: ", step.place(i))
    } else {
        format!("{}.{field}: ", step.place(i))
    };
    ScriptError {
        file: script.path.display().to_string(),
        place,
        message,
    }
}

/// Structural checks that need neither a token nor answers.
pub fn check_script(script: &Script) -> Result<Plan, ScriptError> {
    let mut plan = Plan::default();
    let mut made = Made::default();
    if let Some(so) = &script.signoffs {
        crate::approvals::signoff::load_signers(&so.allowed_signers).map_err(|m| ScriptError {
            file: script.path.display().to_string(),
            place: "ceremony.allowed-signers: ".into(),
            message: m,
        })?;
    }
    for (i, step) in script.steps.iter().enumerate() {
        check_common(script, i, step, &mut made)?;
        check_action(script, i, step, &mut made, &mut plan)?;
    }
    let wiped = made.wiped;
    let keys = &made.keys;
    if let Some(label) = &script.ceremony.evidence_key {
        let header_err = |message: String| ScriptError {
            file: script.path.display().to_string(),
            place: "ceremony.evidence-key: ".into(),
            message,
        };
        if !keys.contains_key(label) {
            // Made by no step: it must be on the token already, unless the token is wiped.
            if let Some(w) = wiped {
                return Err(header_err(kinds::wiped_key(label, script, w)));
            }
            plan.evidence_key_external = Some(label.to_string());
        }
    }
    crate::hsm::check_plan_anywhere(&planned_steps(script)).map_err(|r| refusal(script, r))?;
    Ok(plan)
}

/// What the steps so far make, by label and id, as `check_script` walks them: each map
/// says which step made the entry.
#[derive(Default)]
pub(super) struct Made<'s> {
    ids: BTreeMap<&'s str, usize>,
    keys: BTreeMap<Label, usize>,
    key_ids: BTreeMap<ObjectId, usize>,
    objects: BTreeMap<(ObjectType, Label), usize>,
    object_ids: BTreeMap<(ObjectType, ObjectId), usize>,
    outputs: BTreeMap<&'s str, usize>,
    /// The last init-token: nothing from before it is on the token.
    wiped: Option<usize>,
    auth_keys: BTreeMap<u16, usize>,
    wrap_keys: BTreeMap<Label, usize>,
    wrap_ids: BTreeMap<u16, usize>,
    /// Keys made exportable under wrap, by label.
    exportable: BTreeSet<Label>,
}

/// What every step is checked for: a unique id, declared roles each asked once, and
/// output names no other step writes.
fn check_common<'s>(
    script: &Script,
    i: usize,
    step: &'s script::Step,
    made: &mut Made<'s>,
) -> Result<(), ScriptError> {
    let place = |j: usize| script.steps[j].place(j);
    let Made { ids, outputs, .. } = made;
    if let Some(&j) = ids.get(step.id.as_str()) {
        return Err(err(
            script,
            i,
            "id",
            format!("duplicate step id (already used by {})", place(j)),
        ));
    }
    ids.insert(&step.id, i);
    let mut seen_roles = BTreeSet::new();
    for (k, role) in step.sign_off.iter().enumerate() {
        if !script.roles.contains_key(role) {
            let declared: Vec<&str> = script.roles.keys().map(String::as_str).collect();
            return Err(err(
                script,
                i,
                &format!("sign-off[{k}]"),
                format!(
                    "role {role:?} is not declared in [roles] (declared: {})",
                    if declared.is_empty() {
                        "none".to_string()
                    } else {
                        declared.join(", ")
                    }
                ),
            ));
        }
        if !seen_roles.insert(role) {
            return Err(err(
                script,
                i,
                &format!("sign-off[{k}]"),
                format!("role {role:?} is listed twice"),
            ));
        }
    }
    for (field, name) in step.action.outputs() {
        check_output_name(name).map_err(|m| err(script, i, field, m))?;
        if let Some(&j) = outputs.get(name) {
            return Err(err(
                script,
                i,
                field,
                format!("output file {name:?} is already written by {}", place(j)),
            ));
        }
        outputs.insert(name, i);
    }
    Ok(())
}

/// What the step's kind asks of the steps before it.
fn check_action(
    script: &Script,
    i: usize,
    step: &script::Step,
    made: &mut Made<'_>,
    plan: &mut Plan,
) -> Result<(), ScriptError> {
    match &step.action {
        Action::InitToken(_) => {
            made.keys.clear();
            made.key_ids.clear();
            made.objects.clear();
            made.object_ids.clear();
            made.wrap_keys.clear();
            made.wrap_ids.clear();
            made.exportable.clear();
            made.wiped = Some(i);
        }
        Action::GenerateKey(g) => {
            new_key(
                script,
                i,
                &g.label,
                &g.key_id,
                &mut made.keys,
                &mut made.key_ids,
            )?;
            if g.exportable_under_wrap {
                made.exportable.insert(g.label.clone());
            }
        }
        Action::GenerateWrapKey(g) => check_wrap_key(script, i, g, made)?,
        Action::Backup(b) => check_backup(script, i, b, made, plan)?,
        Action::Restore(r) => check_restore(script, i, r, made)?,
        Action::ImportKey(g) => check_import(script, i, g, made)?,
        Action::WriteObject(w) => check_write_object(script, i, w, made)?,
        Action::DeleteObject(d) => forget_deleted(d, made),
        Action::ExportPublicKey(x) => check_export(script, i, x, made, plan)?,
        Action::Instruction(_) => {
            if step.sign_off.is_empty() {
                return Err(err(
                    script,
                    i,
                    "sign-off",
                    "an instruction step needs at least one role to sign off".into(),
                ));
            }
        }
        Action::IssueCertificate(_)
        | Action::ExportFuses(_)
        | Action::Sign(_)
        | Action::Verify(_)
        | Action::IssueTbbr(_) => check_root_of_trust(script, i, step, made, plan)?,
        Action::PutAuthKey(p) => check_put_auth_key(script, i, p, made)?,
        Action::SetPolicy(p) => {
            crate::approvals::Policy::load(&p.policy)
                .map_err(|e| err(script, i, "policy", e.to_string()))?;
        }
        Action::CoSign(_) => check_co_sign(script, i, step)?,
        Action::Login(_)
        | Action::ChangePin(_)
        | Action::ChangeAuthKey(_)
        | Action::SetAudit(_) => {}
    }
    Ok(())
}

/// Names the out dir keeps for the evidence and the run's own state.
const RESERVED: [&str; 3] = [
    super::runner::TRANSCRIPT,
    super::runner::TRANSCRIPT_MD,
    super::runner::JOURNAL,
];

/// An output file name: not one of the evidence files, and one the filesystem takes
/// (NAME_MAX, 255 bytes), so a run never fails at its last step for a name.
fn check_output_name(name: &str) -> Result<(), String> {
    if RESERVED.contains(&name) {
        return Err(format!(
            "output file {name:?} is where the run keeps its transcript or journal; choose another name"
        ));
    }
    if name.len() > 255 {
        return Err(format!(
            "output file name of {} bytes: file names are at most 255 bytes",
            name.len()
        ));
    }
    Ok(())
}

/// A custody step's custodians are people in a role the script declares.
pub(super) fn custodian_role(script: &Script, i: usize, role: &str) -> Result<(), ScriptError> {
    if script.roles.contains_key(role) {
        return Ok(());
    }
    let declared: Vec<&str> = script.roles.keys().map(String::as_str).collect();
    Err(err(
        script,
        i,
        "custodian-role",
        format!(
            "role {role:?} is not declared in [roles] (declared: {}); the custodians are the people in it on the roll call",
            if declared.is_empty() {
                "none".to_string()
            } else {
                declared.join(", ")
            }
        ),
    ))
}

pub(super) fn new_key(
    script: &Script,
    i: usize,
    label: &Label,
    id: &ObjectId,
    keys: &mut BTreeMap<Label, usize>,
    key_ids: &mut BTreeMap<ObjectId, usize>,
) -> Result<(), ScriptError> {
    if let Some(&j) = keys.get(label) {
        return Err(err(
            script,
            i,
            "label",
            format!(
                "key label {label:?} is already created by {}",
                script.steps[j].place(j)
            ),
        ));
    }
    if let Some(&j) = key_ids.get(id) {
        return Err(err(
            script,
            i,
            "key-id",
            format!(
                "key id {id} is already created by {}",
                script.steps[j].place(j)
            ),
        ));
    }
    keys.insert(label.clone(), i);
    key_ids.insert(id.clone(), i);
    Ok(())
}

/// A custody step's custodians: their role, and how many (N shares out, T shares in).
pub fn custody_need(a: &Action) -> Option<(&str, usize)> {
    match a {
        Action::GenerateWrapKey(g) => Some((&g.custodian_role, usize::from(g.shares))),
        Action::Restore(r) => Some((&r.custodian_role, usize::from(r.threshold))),
        _ => None,
    }
}

/// After opening the token, before the first step: keys the script uses but does not
/// create must exist.
pub fn check_token(
    script: &Script,
    plan: &Plan,
    objects: &[ObjectInfo],
) -> Result<(), ScriptError> {
    for (i, label) in &plan.external_keys {
        let found = objects.iter().any(|o| {
            &o.label == label && matches!(o.class, ObjectClass::PrivateKey | ObjectClass::PublicKey)
        });
        if !found {
            return Err(err(
                script,
                *i,
                "key",
                format!("no key labelled {label:?} on the token, and no earlier step creates it"),
            ));
        }
    }
    if let Some(label) = &plan.evidence_key_external {
        let found = objects.iter().any(|o| {
            &o.label == label && matches!(o.class, ObjectClass::PrivateKey | ObjectClass::PublicKey)
        });
        if !found {
            return Err(ScriptError {
                file: script.path.display().to_string(),
                place: "ceremony.evidence-key: ".into(),
                message: format!("no key labelled {label:?} on the token, and no step creates it"),
            });
        }
    }
    Ok(())
}
