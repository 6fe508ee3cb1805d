//! Validation of the whole plan before any token is opened: structure (ids, roles,
//! labels, outputs, files), the backend's capabilities, and the answers file. After the
//! token is opened (and before the first step) `check_token` confirms that keys the
//! script uses but does not create are there.

use std::collections::{BTreeMap, BTreeSet};

use super::answers::Answers;
use super::script::{self, Action, ObjectType, Script, ScriptError};
use crate::hsm::admin::{Names, PlannedOp, PlannedStep, Refusal};
use crate::hsm::{Capabilities, ObjectClass, ObjectInfo, UserType};
use crate::secret::SecretSource;

/// What validation learned that the runner needs later.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Keys used (step index, label) that no earlier step creates and no init-token
    /// wiped: they must already be on the token.
    pub external_keys: Vec<(usize, String)>,
    /// The evidence key, when no step makes it: it must already be on the token.
    pub evidence_key_external: Option<String>,
}

fn err(script: &Script, i: usize, field: &str, message: String) -> ScriptError {
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
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    // label → step that created it, per kind of object.
    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut key_ids: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut objects: BTreeMap<(ObjectType, String), usize> = BTreeMap::new();
    let mut object_ids: BTreeMap<(ObjectType, Vec<u8>), usize> = BTreeMap::new();
    let mut outputs: BTreeMap<&str, usize> = BTreeMap::new();
    let mut wiped: Option<usize> = None;
    let mut auth_keys: BTreeMap<u16, usize> = BTreeMap::new();
    // Wrap key label → step that makes it; wrap key id → step.
    let mut wrap_keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut wrap_ids: BTreeMap<u16, usize> = BTreeMap::new();
    // Keys made exportable under wrap, by label.
    let mut exportable: BTreeSet<String> = BTreeSet::new();
    let place = |j: usize| script.steps[j].place(j);
    if let Some(so) = &script.signoffs {
        crate::approvals::signoff::load_signers(&so.allowed_signers).map_err(|m| ScriptError {
            file: script.path.display().to_string(),
            place: "ceremony.allowed-signers: ".into(),
            message: m,
        })?;
    }

    for (i, step) in script.steps.iter().enumerate() {
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
        match &step.action {
            Action::InitToken(_) => {
                keys.clear();
                key_ids.clear();
                objects.clear();
                object_ids.clear();
                wrap_keys.clear();
                wrap_ids.clear();
                exportable.clear();
                wiped = Some(i);
            }
            Action::GenerateKey(g) => {
                new_key(script, i, &g.label, &g.key_id, &mut keys, &mut key_ids)?;
                if g.exportable_under_wrap {
                    exportable.insert(g.label.clone());
                }
            }
            Action::GenerateWrapKey(g) => {
                custodian_role(script, i, &g.custodian_role)?;
                if let Some(&j) = wrap_keys.get(&g.label) {
                    return Err(err(
                        script,
                        i,
                        "label",
                        format!("wrap key {:?} is already made by {}", g.label, place(j)),
                    ));
                }
                if let Some(&j) = wrap_ids.get(&g.key_id) {
                    return Err(err(
                        script,
                        i,
                        "key-id",
                        format!(
                            "wrap key id {:04x} is already made by {}",
                            g.key_id,
                            place(j)
                        ),
                    ));
                }
                wrap_keys.insert(g.label.clone(), i);
                wrap_ids.insert(g.key_id, i);
            }
            Action::Backup(b) => {
                if !wrap_keys.contains_key(&b.wrap_key) {
                    if let Some(w) = wiped {
                        return Err(err(
                            script,
                            i,
                            "wrap-key",
                            format!(
                                "no wrap key labelled {:?}: no generate-wrap-key step after init-token {} makes it",
                                b.wrap_key,
                                place(w)
                            ),
                        ));
                    }
                }
                for (k, label) in b.keys.iter().enumerate() {
                    let field = format!("keys[{k}]");
                    if b.keys[..k].contains(label) {
                        return Err(err(
                            script,
                            i,
                            &field,
                            format!("key {label:?} is named twice"),
                        ));
                    }
                    match keys.get(label) {
                        Some(_) if exportable.contains(label) => {}
                        Some(&j) => {
                            return Err(err(
                                script,
                                i,
                                &field,
                                format!(
                                    "key {label:?} is made by {} without exportable-under-wrap = true: it can never leave the token",
                                    place(j)
                                ),
                            ))
                        }
                        None => {
                            if let Some(w) = wiped {
                                return Err(err(
                                    script,
                                    i,
                                    &field,
                                    format!(
                                        "no key labelled {label:?}: no step after init-token {} creates it",
                                        place(w)
                                    ),
                                ));
                            }
                            plan.external_keys.push((i, label.clone()));
                        }
                    }
                }
            }
            Action::Restore(r) => {
                custodian_role(script, i, &r.custodian_role)?;
                for label in &r.keys {
                    if let Some(&j) = keys.get(label) {
                        return Err(err(
                            script,
                            i,
                            "keys",
                            format!("key label {label:?} is already created by {}", place(j)),
                        ));
                    }
                    keys.insert(label.clone(), i);
                }
            }
            Action::ImportKey(g) => {
                if !g.key_file.is_file() {
                    return Err(err(
                        script,
                        i,
                        "key-file",
                        format!("cannot read {}", g.key_file.display()),
                    ));
                }
                // A key readable without its passphrase is judged now, before any token.
                let bytes = zeroize::Zeroizing::new(std::fs::read(&g.key_file).unwrap_or_default());
                if let Ok(k) = crate::keys::PrivateKey::from_bytes(&bytes, None) {
                    crate::keys::fitness::check(k.public_key(), crate::keys::fitness::Use::General)
                        .map_err(|e| {
                            err(
                                script,
                                i,
                                "key-file",
                                format!("{}: {e}", g.key_file.display()),
                            )
                        })?;
                }
                new_key(script, i, &g.label, &g.key_id, &mut keys, &mut key_ids)?
            }
            Action::WriteObject(w) => {
                if !w.file.is_file() {
                    return Err(err(
                        script,
                        i,
                        "file",
                        format!("cannot read {}", w.file.display()),
                    ));
                }
                let t = w.object_type;
                if let Some(&j) = objects.get(&(t, w.label.clone())) {
                    return Err(err(
                        script,
                        i,
                        "label",
                        format!(
                            "{t} object label {:?} is already created by {}",
                            w.label,
                            place(j)
                        ),
                    ));
                }
                if let Some(&j) = object_ids.get(&(t, w.object_id.clone())) {
                    return Err(err(
                        script,
                        i,
                        "object-id",
                        format!(
                            "{t} object id {} is already created by {}",
                            hex::encode(&w.object_id),
                            place(j)
                        ),
                    ));
                }
                objects.insert((t, w.label.clone()), i);
                object_ids.insert((t, w.object_id.clone()), i);
            }
            Action::DeleteObject(d) => {
                let keys_too = matches!(
                    d.class,
                    None | Some(ObjectClass::PrivateKey) | Some(ObjectClass::PublicKey)
                );
                if keys_too {
                    if let Some(j) = keys.remove(&d.label) {
                        key_ids.retain(|_, s| *s != j);
                    }
                }
                for t in [ObjectType::Cert, ObjectType::Data] {
                    let matches = matches!(
                        (&d.class, t),
                        (None, _)
                            | (Some(ObjectClass::Certificate), ObjectType::Cert)
                            | (Some(ObjectClass::Data), ObjectType::Data)
                    );
                    if matches {
                        if let Some(j) = objects.remove(&(t, d.label.clone())) {
                            object_ids.retain(|_, s| *s != j);
                        }
                    }
                }
            }
            Action::ExportPublicKey(x) => {
                if !keys.contains_key(&x.key) {
                    if let Some(w) = wiped {
                        return Err(err(
                            script,
                            i,
                            "key",
                            format!(
                                "no key labelled {:?}: no step after init-token {} creates it",
                                x.key,
                                place(w)
                            ),
                        ));
                    }
                    plan.external_keys.push((i, x.key.clone()));
                }
            }
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
            | Action::IssueTbbr(_) => {
                for (field, label) in super::steps::keys_used(&step.action) {
                    if !keys.contains_key(label) {
                        if let Some(w) = wiped {
                            return Err(err(
                                script,
                                i,
                                field,
                                format!(
                                    "no key labelled {label:?}: no step after init-token {} creates it",
                                    place(w)
                                ),
                            ));
                        }
                        plan.external_keys.push((i, label.to_string()));
                    }
                }
                super::steps::check_step(script, i)
                    .map_err(|(field, m)| err(script, i, field, m))?;
            }
            Action::PutAuthKey(p) => {
                if let Some(&j) = auth_keys.get(&p.spec.id) {
                    return Err(err(
                        script,
                        i,
                        "key-id",
                        format!(
                            "authentication key {:04x} is already created by {}",
                            p.spec.id,
                            place(j)
                        ),
                    ));
                }
                auth_keys.insert(p.spec.id, i);
            }
            Action::SetPolicy(p) => {
                crate::approvals::Policy::load(&p.policy)
                    .map_err(|e| err(script, i, "policy", e.to_string()))?;
            }
            Action::CoSign(_) => {
                if step.sign_off.is_empty() {
                    return Err(err(
                        script,
                        i,
                        "sign-off",
                        "a co-sign step needs at least one role to sign (a role with signed = true)".into(),
                    ));
                }
                for (k, role) in step.sign_off.iter().enumerate() {
                    if !script.is_signed(role) {
                        return Err(err(
                            script,
                            i,
                            &format!("sign-off[{k}]"),
                            format!("role {role:?} does not sign with SSH keys; a co-sign step takes roles with signed = true"),
                        ));
                    }
                }
            }
            Action::Login(_)
            | Action::ChangePin(_)
            | Action::ChangeAuthKey(_)
            | Action::SetAudit(_) => {}
        }
    }
    if let Some(label) = &script.ceremony.evidence_key {
        let header_err = |message: String| ScriptError {
            file: script.path.display().to_string(),
            place: "ceremony.evidence-key: ".into(),
            message,
        };
        if !keys.contains_key(label) {
            // Made by no step: it must be on the token already, unless the token is wiped.
            if let Some(w) = wiped {
                return Err(header_err(format!(
                    "no key labelled {label:?}: no step after init-token {} creates it",
                    place(w)
                )));
            }
            plan.evidence_key_external = Some(label.clone());
        }
    }
    crate::hsm::check_plan_anywhere(&planned_steps(script)).map_err(|r| refusal(script, r))?;
    Ok(plan)
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

/// Each step as a backend's rules see it: what it does on the token, and the labels and
/// ids it names (with their fields).
pub fn planned_steps(script: &Script) -> Vec<PlannedStep> {
    script
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut names = Names::default();
            let op = match &s.action {
                Action::InitToken(_) => PlannedOp::InitToken,
                Action::ChangePin(_) => PlannedOp::ChangePin,
                Action::Login(l) => PlannedOp::Login {
                    so: l.user == UserType::So,
                },
                Action::GenerateKey(g) => {
                    names.labels.push(("label", g.label.clone()));
                    names.ids.push(("key-id", g.key_id.clone()));
                    PlannedOp::GenerateKey {
                        algorithm: g.algorithm,
                    }
                }
                Action::ImportKey(k) => {
                    names.labels.push(("label", k.label.clone()));
                    names.ids.push(("key-id", k.key_id.clone()));
                    PlannedOp::ImportKey {
                        algorithm: std::fs::read(&k.key_file)
                            .ok()
                            .and_then(|b| crate::keys::PrivateKey::from_bytes(&b, None).ok())
                            .and_then(|key| crate::keys::KeyAlgorithm::of(key.public_key())),
                    }
                }
                Action::WriteObject(w) => {
                    names.labels.push(("label", w.label.clone()));
                    names.ids.push(("object-id", w.object_id.clone()));
                    match w.object_type {
                        ObjectType::Cert => PlannedOp::PutCertificate,
                        ObjectType::Data => PlannedOp::PutData,
                    }
                }
                Action::DeleteObject(d) => PlannedOp::DeleteObject {
                    keys: matches!(
                        d.class,
                        None | Some(ObjectClass::PrivateKey) | Some(ObjectClass::PublicKey)
                    ),
                    others: matches!(
                        d.class,
                        None | Some(ObjectClass::Certificate) | Some(ObjectClass::Data)
                    ),
                },
                Action::ExportPublicKey(_) => PlannedOp::ExportPublicKey,
                Action::PutAuthKey(_) => PlannedOp::PutAuthKey,
                Action::ChangeAuthKey(c) => PlannedOp::ChangeAuthKey {
                    capabilities: c.replacement.as_ref().map(|r| r.capabilities.clone()),
                },
                Action::SetAudit(_) => PlannedOp::SetAudit,
                Action::SetPolicy(_) => PlannedOp::PutData,
                _ => PlannedOp::None,
            };
            PlannedStep {
                index: i,
                place: s.place(i),
                op,
                names,
            }
        })
        .collect()
}

/// A custody step's custodians are people in a role the script declares.
fn custodian_role(script: &Script, i: usize, role: &str) -> Result<(), ScriptError> {
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

fn refusal(script: &Script, r: Refusal) -> ScriptError {
    err(script, r.step, &r.field, r.message)
}

fn new_key(
    script: &Script,
    i: usize,
    label: &str,
    id: &[u8],
    keys: &mut BTreeMap<String, usize>,
    key_ids: &mut BTreeMap<Vec<u8>, usize>,
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
                "key id {} is already created by {}",
                hex::encode(id),
                script.steps[j].place(j)
            ),
        ));
    }
    keys.insert(label.to_string(), i);
    key_ids.insert(id.to_vec(), i);
    Ok(())
}

/// Refuse steps the backend cannot do, naming the step.
pub fn check_capabilities(
    script: &Script,
    caps: &Capabilities,
    backend: &str,
) -> Result<(), ScriptError> {
    if let Ok(uri) = crate::hsm::BackendUri::parse(backend) {
        crate::hsm::check_plan(&uri, &planned_steps(script)).map_err(|r| refusal(script, r))?;
    }
    for (i, step) in script.steps.iter().enumerate() {
        let refuse = |field: &str, what: String| {
            Err(err(
                script,
                i,
                field,
                format!("{what} is not supported by {backend}"),
            ))
        };
        match &step.action {
            Action::InitToken(_) if !caps.init_token => return refuse("kind", "init-token".into()),
            Action::Login(l) if l.user == UserType::So && !caps.so_login => {
                return refuse("user", "SO login".into())
            }
            Action::ChangePin(c) if c.user == UserType::So && !caps.so_login => {
                return refuse("user", "changing the SO PIN".into())
            }
            Action::GenerateKey(g) if !caps.generate.contains(&g.algorithm) => {
                return refuse("algorithm", format!("generating {} keys", g.algorithm))
            }
            Action::GenerateKey(g) if g.exportable_under_wrap && caps.wrap.is_none() => {
                return refuse(
                    "exportable-under-wrap",
                    "backing keys up under a wrap key".into(),
                )
            }
            Action::ImportKey(_) if caps.import.is_empty() => {
                return refuse("kind", "importing keys".into())
            }
            Action::IssueCertificate(c) if c.write_to_token && !caps.certificates => {
                return refuse("write-to-token", "storing certificates".into())
            }
            Action::WriteObject(w) if w.object_type == ObjectType::Cert && !caps.certificates => {
                return refuse("type", "storing certificates".into())
            }
            Action::WriteObject(w) if w.object_type == ObjectType::Data && !caps.data_objects => {
                return refuse("type", "storing data objects".into())
            }
            Action::PutAuthKey(_) | Action::ChangeAuthKey(_) if !caps.auth_keys => {
                return refuse("kind", "managing authentication keys".into())
            }
            Action::SetAudit(_) if !caps.device_audit => {
                return refuse("kind", "a device audit log".into())
            }
            Action::SetPolicy(_) if !caps.data_objects => {
                return refuse("kind", "storing a policy (a data object)".into())
            }
            Action::SetPolicy(p) if caps.auth_keys && p.so_pin.is_some() => {
                return Err(err(
                    script,
                    i,
                    "so-pin",
                    format!("{backend} has no SO: a YubiHSM 2 stores the policy with the session's administrative authentication key (log in with it in an earlier step); leave so-pin out"),
                ))
            }
            Action::SetPolicy(p) if !caps.auth_keys && p.so_pin.is_none() => {
                return Err(err(
                    script,
                    i,
                    "so-pin",
                    "missing: the policy is stored as the SO; name the SO PIN's secret (so-pin = \"so\")".into(),
                ))
            }
            Action::GenerateWrapKey(_) | Action::Backup(_) | Action::Restore(_)
                if caps.wrap.is_none() =>
            {
                return refuse(
                    "kind",
                    "backing keys up under a wrap key (AES key wrap)".into(),
                )
            }
            Action::GenerateWrapKey(script::GenerateWrapKey { logins, .. })
            | Action::Restore(script::RestoreStep { logins, .. })
                if caps.wrap_key_needs_so && logins.so.is_none() =>
            {
                return Err(err(
                    script,
                    i,
                    "so-login",
                    format!(
                        "on {backend} only the SO may put the trusted wrap key: name the SO PIN's secret in so-login and the user PIN's in user-login (the user logs in again after the put)"
                    ),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every secret, confirmation and sign-off the run needs must be in the answers, and the
/// answers must not name steps or roles the script does not have.
pub fn check_answers(script: &Script, answers: &Answers) -> Result<(), ScriptError> {
    let file = answers
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "(no answers file)".into());
    let aerr = |place: String, message: String| ScriptError {
        file: file.clone(),
        place,
        message,
    };
    let by_id: BTreeMap<&str, usize> = script
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    for (k, s) in answers.sign_offs.iter().enumerate() {
        let Some(&i) = by_id.get(s.step.as_str()) else {
            return Err(aerr(
                format!("sign-off[{k}].step: "),
                format!("no step {:?} in {}", s.step, script.path.display()),
            ));
        };
        if !script.steps[i].sign_off.contains(&s.role) {
            return Err(aerr(
                format!("sign-off[{k}].role: "),
                format!(
                    "{} does not ask role {:?} to sign off",
                    script.steps[i].place(i),
                    s.role
                ),
            ));
        }
        match (&s.signature, script.is_signed(&s.role)) {
            (None, true) => {
                return Err(aerr(
                    format!("sign-off[{k}]: "),
                    format!(
                        "role {:?} signs with SSH keys: add signature = \"FILE\" (ssh-keygen -Y sign -n {} over the sign-off message the run writes)",
                        s.role,
                        crate::approvals::SIGNOFF_NAMESPACE
                    ),
                ))
            }
            (Some(_), false) => {
                return Err(aerr(
                    format!("sign-off[{k}].signature: "),
                    format!("role {:?} does not sign with SSH keys; leave signature out", s.role),
                ))
            }
            _ => {}
        }
    }
    for c in &answers.confirms {
        match by_id.get(c.as_str()) {
            None => {
                return Err(aerr(
                    "confirm: ".into(),
                    format!("no step {c:?} in {}", script.path.display()),
                ))
            }
            Some(&i) if !script.steps[i].action.destructive() => {
                return Err(aerr(
                    "confirm: ".into(),
                    format!("{} needs no confirmation", script.steps[i].place(i)),
                ))
            }
            Some(_) => {}
        }
    }
    for step in answers.acknowledgements.keys() {
        if !by_id.contains_key(step.as_str()) {
            return Err(aerr(
                "acknowledge: ".into(),
                format!("no step {step:?} in {}", script.path.display()),
            ));
        }
    }
    for (k, c) in answers.custodians.iter().enumerate() {
        let place = |f: &str| format!("custodian[{k}].{f}: ");
        let Some(&i) = by_id.get(c.step.as_str()) else {
            return Err(aerr(
                place("step"),
                format!("no step {:?} in {}", c.step, script.path.display()),
            ));
        };
        let st = &script.steps[i];
        match &st.action {
            Action::GenerateWrapKey(_) => {
                if c.share.is_some() {
                    return Err(aerr(
                        place("share"),
                        format!("{} hands shares out: give share-file (where this custodian's share is written)", st.place(i)),
                    ));
                }
                if c.share_file.is_none() {
                    return Err(aerr(
                        place("share-file"),
                        format!(
                            "missing: {} writes this custodian's share there (their medium)",
                            st.place(i)
                        ),
                    ));
                }
            }
            Action::Restore(_) => {
                if c.share_file.is_some() {
                    return Err(aerr(
                        place("share-file"),
                        format!("{} takes shares in: give share (a source: file:PATH, env:NAME or prompt)", st.place(i)),
                    ));
                }
                if c.share.is_none() {
                    return Err(aerr(
                        place("share"),
                        format!("missing: where {} reads this custodian's share from (file:PATH, env:NAME or prompt)", st.place(i)),
                    ));
                }
            }
            _ => {
                return Err(aerr(
                    place("step"),
                    format!(
                        "{} is not a custody step (generate-wrap-key or restore)",
                        st.place(i)
                    ),
                ))
            }
        }
    }
    let roster = answers.roster(script);
    for (i, step) in script.steps.iter().enumerate() {
        let place = step.place(i);
        // One person, one seat per step, however the name is spelt; and on the roll call
        // in the role they sign in.
        let mut seated: BTreeMap<String, &str> = BTreeMap::new();
        for s in answers.sign_offs.iter().filter(|s| s.step == step.id) {
            let key = crate::ceremony::people::person_key(&s.name);
            if let Some(role) = seated.insert(key, &s.role) {
                return Err(aerr(
                    format!("{place}: "),
                    format!(
                        "{:?} signs off as {} and as {role}: one person cannot sign one step twice",
                        s.name, s.role
                    ),
                ));
            }
            match crate::ceremony::people::find(&roster, &s.name) {
                Some(p) if p.roles.contains(&s.role) => {}
                _ => {
                    return Err(aerr(
                        format!("{place}: "),
                        format!("{:?} is not on the roll call as {}", s.name, s.role),
                    ))
                }
            }
        }
        if let Some(role) = &step.review {
            match answers.acknowledgement(&step.id) {
                None => {
                    return Err(aerr(
                        format!("{place}: "),
                        format!(
                            "missing acknowledgement of the result by {role} (add [[acknowledge]] step = {:?}, name = \"…\")",
                            step.id
                        ),
                    ))
                }
                Some(name) => match crate::ceremony::people::find(&roster, name) {
                    Some(p) if p.roles.contains(role) => {}
                    _ => {
                        return Err(aerr(
                            format!("{place}: "),
                            format!("{name:?} acknowledges the result but is not on the roll call as {role}"),
                        ))
                    }
                },
            }
        }
        for role in &step.sign_off {
            let need = script.roles.get(role).copied().unwrap_or(1) as usize;
            let have = answers.names_for(&step.id, role).len();
            if have < need {
                return Err(aerr(
                    format!("{place}: "),
                    format!(
                        "missing sign-off by {role} ({have} of {need}; add [[sign-off]] step = {:?}, role = {role:?}, name = \"…\")",
                        step.id
                    ),
                ));
            }
        }
        if let Some((role, n)) = custody_need(&step.action) {
            let given = answers.custodians_for(&step.id);
            if given.len() != n {
                let what = if matches!(step.action, Action::GenerateWrapKey(_)) {
                    format!("hands out {n} shares, one per custodian")
                } else {
                    format!("takes {n} shares (its threshold), one per custodian")
                };
                return Err(aerr(
                    format!("{place}: "),
                    format!(
                        "{what}; the answers name {} (add [[custodian]] step = {:?}, name = \"…\", {})",
                        given.len(),
                        step.id,
                        if matches!(step.action, Action::GenerateWrapKey(_)) {
                            "share-file = \"…\""
                        } else {
                            "share = \"file:…\""
                        }
                    ),
                ));
            }
            for (k, c) in given.iter().enumerate() {
                match crate::ceremony::people::find(&roster, &c.name) {
                    Some(p) if p.roles.iter().any(|r| r == role) => {}
                    _ => {
                        return Err(aerr(
                            format!("{place}: "),
                            format!("custodian {:?} is not on the roll call as {role}", c.name),
                        ))
                    }
                }
                let key = crate::ceremony::people::person_key(&c.name);
                if given[..k]
                    .iter()
                    .any(|o| crate::ceremony::people::person_key(&o.name) == key)
                {
                    return Err(aerr(
                        format!("{place}: "),
                        format!(
                            "{:?} is named twice as a custodian: one share per person",
                            c.name
                        ),
                    ));
                }
                if c.share_file.is_some() && given[..k].iter().any(|o| o.share_file == c.share_file)
                {
                    return Err(aerr(
                        format!("{place}: "),
                        format!(
                            "custodians {:?} and another would share the file {}",
                            c.name,
                            c.share_file
                                .as_deref()
                                .unwrap_or(std::path::Path::new(""))
                                .display()
                        ),
                    ));
                }
            }
        }
        if step.action.destructive() && !answers.confirms.contains(&step.id) {
            return Err(aerr(
                format!("{place}: "),
                format!(
                    "missing confirmation for destructive step {} (add [[confirm]] step = {:?})",
                    step.action.kind(),
                    step.id
                ),
            ));
        }
        for (field, name) in step.action.secrets() {
            let missing = match answers.secrets.get(name) {
                None => Some(format!(
                    "no source for secret {name:?} (add it under [secrets])"
                )),
                Some(SecretSource::Env(var)) if std::env::var_os(var).is_none() => Some(format!(
                    "secret {name:?} comes from env:{var}, which is not set"
                )),
                Some(SecretSource::File(p)) if !p.is_file() => Some(format!(
                    "secret {name:?} comes from file:{}, which does not exist",
                    p.display()
                )),
                Some(_) => None,
            };
            if let Some(m) = missing {
                return Err(aerr(format!("{place}.{field}: "), m));
            }
        }
    }
    // The roll call the answers give (or imply) must fit the script, like one typed at
    // the console.
    if !script.roles.is_empty() {
        let needs: Vec<Vec<(String, usize)>> = script
            .steps
            .iter()
            .map(|s| {
                s.sign_off
                    .iter()
                    .map(|r| {
                        (
                            r.clone(),
                            script.roles.get(r).copied().unwrap_or(1) as usize,
                        )
                    })
                    .collect()
            })
            .collect();
        crate::ceremony::people::check_roster(&roster, &script.roles, &needs)
            .map_err(|m| aerr("participant: ".into(), m))?;
        for s in &script.steps {
            if let Some((role, n)) = custody_need(&s.action) {
                crate::ceremony::people::check_custodians(&roster, &s.id, role, n)
                    .map_err(|m| aerr("participant: ".into(), m))?;
            }
        }
    }
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
