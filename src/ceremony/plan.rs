//! Validation of the whole plan before any token is opened: structure (ids, roles,
//! labels, outputs, files), the backend's capabilities, and the answers file. After the
//! token is opened (and before the first step) `check_token` confirms that keys the
//! script uses but does not create are there.

use std::collections::{BTreeMap, BTreeSet};

use super::answers::Answers;
use super::script::{Action, ObjectType, Script, ScriptError};
use crate::hsm::{Capabilities, ObjectClass, ObjectInfo, UserType};
use crate::secret::SecretSource;

/// What validation learned that the runner needs later.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Keys used (step index, label) that no earlier step creates and no init-token
    /// wiped: they must already be on the token.
    pub external_keys: Vec<(usize, String)>,
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
    let place = |j: usize| script.steps[j].place(j);

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
                wiped = Some(i);
            }
            Action::GenerateKey(g) => {
                new_key(script, i, &g.label, &g.key_id, &mut keys, &mut key_ids)?
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
            Action::Login(_)
            | Action::ChangePin(_)
            | Action::ChangeAuthKey(_)
            | Action::SetAudit(_) => {}
        }
    }
    native_lockout(script)?;
    Ok(plan)
}

/// YubiHSM: refuse a change-auth-key whose new capabilities lock out a later step.
fn native_lockout(script: &Script) -> Result<(), ScriptError> {
    use crate::hsm::yubihsm::caps::PlannedOp;
    use crate::hsm::yubihsm::steps::{check_lockout, ScriptOp};
    let mut ops = Vec::new();
    for (i, s) in script.steps.iter().enumerate() {
        let place = s.place(i);
        let mut push = |op: PlannedOp| ops.push((place.clone(), ScriptOp::Other(op)));
        match &s.action {
            Action::ChangeAuthKey(c) => ops.push((
                place.clone(),
                ScriptOp::ChangeAuthKey {
                    capabilities: c.replacement.as_ref().map(|r| r.capabilities),
                },
            )),
            Action::PutAuthKey(_) => push(PlannedOp::PutAuthKey),
            Action::SetAudit(_) => push(PlannedOp::SetAudit),
            Action::GenerateKey(g) => push(PlannedOp::GenerateKey {
                rsa: g.algorithm.is_rsa(),
            }),
            Action::ImportKey(_) => push(PlannedOp::ImportKey),
            Action::WriteObject(_) => push(PlannedOp::PutCertificate),
            Action::DeleteObject(d) => {
                let keys = matches!(
                    d.class,
                    None | Some(ObjectClass::PrivateKey) | Some(ObjectClass::PublicKey)
                );
                let opaque = matches!(
                    d.class,
                    None | Some(ObjectClass::Certificate) | Some(ObjectClass::Data)
                );
                if keys {
                    push(PlannedOp::DeleteAsymmetricKey);
                }
                if opaque {
                    push(PlannedOp::DeleteOpaque);
                }
            }
            _ => {}
        }
    }
    check_lockout(&ops).map_err(|e| match e {
        crate::hsm::yubihsm::Error::Field { path, message } => ScriptError {
            file: script.path.display().to_string(),
            place: format!("{path}: "),
            message,
        },
        other => ScriptError {
            file: script.path.display().to_string(),
            place: String::new(),
            message: other.to_string(),
        },
    })
}

/// On `yubihsm:` backends: what the crate or the device (or the MockHsm) cannot do, with
/// the line naming the way that works; 16-bit ids and 40-byte labels. Elsewhere: the
/// native step kinds need the native backend.
fn check_native(script: &Script, backend: &str) -> Result<(), ScriptError> {
    use crate::hsm::yubihsm::{caps, check_step, NativeStep, YubiUri};
    let uri = backend
        .strip_prefix("yubihsm:")
        .and_then(|rest| YubiUri::parse(rest).ok());
    for (i, step) in script.steps.iter().enumerate() {
        let Some(uri) = &uri else {
            if matches!(
                step.action,
                Action::ChangeAuthKey(_) | Action::PutAuthKey(_) | Action::SetAudit(_)
            ) {
                return Err(err(
                    script,
                    i,
                    "kind",
                    format!(
                        "{} needs the YubiHSM native backend (yubihsm:usb or yubihsm:http://HOST:PORT), not {backend}",
                        step.action.kind()
                    ),
                ));
            }
            continue;
        };
        let refuse =
            |field: &str, e: crate::hsm::yubihsm::Error| Err(err(script, i, field, e.to_string()));
        let ns = match &step.action {
            Action::InitToken(_) => Some(("kind", NativeStep::InitToken)),
            Action::ChangePin(_) => Some(("kind", NativeStep::ChangePin)),
            Action::Login(l) if l.user == UserType::So => Some(("user", NativeStep::SoLogin)),
            Action::GenerateKey(g) => Some(("algorithm", NativeStep::Generate(g.algorithm))),
            Action::ImportKey(k) => std::fs::read(&k.key_file)
                .ok()
                .and_then(|b| crate::keys::PrivateKey::from_bytes(&b, None).ok())
                .and_then(|key| crate::keys::KeyAlgorithm::of(key.public_key()))
                .map(|a| ("key-file", NativeStep::Import(a))),
            _ => None,
        };
        if let Some((field, ns)) = ns {
            if let Err(e) = check_step(uri, ns) {
                return refuse(field, e);
            }
        }
        let ids: Vec<(&str, &[u8])> = match &step.action {
            Action::GenerateKey(g) => vec![("key-id", &g.key_id)],
            Action::ImportKey(k) => vec![("key-id", &k.key_id)],
            Action::WriteObject(w) => vec![("object-id", &w.object_id)],
            _ => vec![],
        };
        for (field, id) in ids {
            if let Err(e) = caps::id_from_bytes(id) {
                let msg = e.to_string();
                let msg = msg.strip_prefix("id: ").unwrap_or(&msg).to_string();
                return Err(err(script, i, field, msg));
            }
        }
        let labels: Vec<(&str, &str)> = match &step.action {
            Action::GenerateKey(g) => vec![("label", &g.label)],
            Action::ImportKey(k) => vec![("label", &k.label)],
            Action::WriteObject(w) => vec![("label", &w.label)],
            _ => vec![],
        };
        for (field, label) in labels {
            if let Err(e) = caps::check_label(field, label) {
                let msg = e.to_string();
                let msg = msg
                    .strip_prefix(&format!("{field}: "))
                    .unwrap_or(&msg)
                    .to_string();
                return Err(err(script, i, field, msg));
            }
        }
    }
    Ok(())
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
    check_native(script, backend)?;
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
    for (i, step) in script.steps.iter().enumerate() {
        let place = step.place(i);
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
    Ok(())
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
    Ok(())
}
