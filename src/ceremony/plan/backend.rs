//! The plan as a backend sees it: each step's operation and the labels and ids it names
//! (`planned_steps`, checked by `hsm::check_plan`), and the capabilities the opened
//! token reports (`check_capabilities`). Knows no backend by name.

use super::err;
use crate::ceremony::script::{self, Action, ObjectType, Script, ScriptError};
use crate::hsm::admin::{Names, PlannedOp, PlannedStep, Refusal};
use crate::hsm::{Capabilities, ObjectClass, UserType};

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

pub(super) fn refusal(script: &Script, r: Refusal) -> ScriptError {
    err(script, r.step, &r.field, r.message)
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
