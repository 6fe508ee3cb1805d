//! The checks of each step kind against what the steps before it make (labels, ids,
//! wrap keys, exportable keys) and what the files beside the script hold. No token and
//! no answers: `check_script` calls these as it walks the steps.

use super::{custodian_role, err, new_key, Made, Plan};
use crate::ceremony::script::{self, ObjectType, Script, ScriptError};
use crate::hsm::ObjectClass;

/// A key no earlier step makes must already be on the token: after an init-token it
/// cannot be (refused here, naming that step); otherwise the plan checks the token for
/// it before anything runs.
fn key_on_token(
    script: &Script,
    i: usize,
    field: &str,
    label: &str,
    wiped: Option<usize>,
    plan: &mut Plan,
) -> Result<(), ScriptError> {
    if let Some(w) = wiped {
        return Err(err(script, i, field, wiped_key(label, script, w)));
    }
    plan.external_keys.push((i, label.to_string()));
    Ok(())
}

/// Why a key cannot be on the token: init-token step `w` wiped it and no later step makes it.
pub(super) fn wiped_key(label: &str, script: &Script, w: usize) -> String {
    format!(
        "no key labelled {label:?}: no step after init-token {} creates it",
        script.steps[w].place(w)
    )
}

/// A generate-wrap-key step: its custodian role, and a label and id no earlier step makes.
pub(super) fn check_wrap_key(
    script: &Script,
    i: usize,
    g: &script::GenerateWrapKey,
    made: &mut Made<'_>,
) -> Result<(), ScriptError> {
    let place = |j: usize| script.steps[j].place(j);
    let Made {
        wrap_keys,
        wrap_ids,
        ..
    } = made;
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
    Ok(())
}

/// A backup step: a wrap key it can use, and keys that exist and were made exportable.
pub(super) fn check_backup(
    script: &Script,
    i: usize,
    b: &script::BackupStep,
    made: &mut Made<'_>,
    plan: &mut Plan,
) -> Result<(), ScriptError> {
    let place = |j: usize| script.steps[j].place(j);
    let wiped = made.wiped;
    let Made {
        keys,
        wrap_keys,
        exportable,
        ..
    } = made;
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
            None => key_on_token(script, i, &field, label, wiped, plan)?,
        }
    }
    Ok(())
}

/// A restore step: its custodian role, and labels no earlier step made.
pub(super) fn check_restore(
    script: &Script,
    i: usize,
    r: &script::RestoreStep,
    made: &mut Made<'_>,
) -> Result<(), ScriptError> {
    let place = |j: usize| script.steps[j].place(j);
    let Made { keys, .. } = made;
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
    Ok(())
}

/// An import-key step: a readable key file, fit for use when it opens without a passphrase,
/// under a free label and id.
pub(super) fn check_import(
    script: &Script,
    i: usize,
    g: &script::ImportKey,
    made: &mut Made<'_>,
) -> Result<(), ScriptError> {
    let Made { keys, key_ids, .. } = made;
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
        crate::keys::fitness::check(k.public_key(), crate::keys::fitness::Use::General).map_err(
            |e| {
                err(
                    script,
                    i,
                    "key-file",
                    format!("{}: {e}", g.key_file.display()),
                )
            },
        )?;
    }
    new_key(script, i, &g.label, &g.key_id, keys, key_ids)
}

/// A write-object step: a readable file under a label and id free for its object type.
pub(super) fn check_write_object(
    script: &Script,
    i: usize,
    w: &script::WriteObject,
    made: &mut Made<'_>,
) -> Result<(), ScriptError> {
    let place = |j: usize| script.steps[j].place(j);
    let Made {
        objects,
        object_ids,
        ..
    } = made;
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
    Ok(())
}

/// A delete-object step: what it deletes is no longer made by the steps before it.
pub(super) fn forget_deleted(d: &script::DeleteObject, made: &mut Made<'_>) {
    let Made {
        keys,
        key_ids,
        objects,
        object_ids,
        ..
    } = made;
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

/// An export-public-key step: its key is made by an earlier step or already on the token.
pub(super) fn check_export(
    script: &Script,
    i: usize,
    x: &script::ExportPublicKey,
    made: &mut Made<'_>,
    plan: &mut Plan,
) -> Result<(), ScriptError> {
    if !made.keys.contains_key(&x.key) {
        key_on_token(script, i, "key", &x.key, made.wiped, plan)?;
    }
    Ok(())
}

/// A root-of-trust step: the keys it uses exist (or are on the token), and its own checks.
pub(super) fn check_root_of_trust(
    script: &Script,
    i: usize,
    step: &script::Step,
    made: &mut Made<'_>,
    plan: &mut Plan,
) -> Result<(), ScriptError> {
    for (field, label) in crate::ceremony::steps::keys_used(&step.action) {
        if !made.keys.contains_key(label) {
            key_on_token(script, i, field, label, made.wiped, plan)?;
        }
    }
    crate::ceremony::steps::check_step(script, i).map_err(|(field, m)| err(script, i, field, m))?;
    Ok(())
}

/// A put-auth-key step: an id no earlier step puts.
pub(super) fn check_put_auth_key(
    script: &Script,
    i: usize,
    p: &script::PutAuthKey,
    made: &mut Made<'_>,
) -> Result<(), ScriptError> {
    let place = |j: usize| script.steps[j].place(j);
    let Made { auth_keys, .. } = made;
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
    Ok(())
}

/// A co-sign step: at least one role, every one signing with SSH keys.
pub(super) fn check_co_sign(
    script: &Script,
    i: usize,
    step: &script::Step,
) -> Result<(), ScriptError> {
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
    Ok(())
}
