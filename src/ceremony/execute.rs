//! Step executors: one step on one token, nothing else (no transcript, no face).
//! `reconcile` means the step started in an interrupted earlier run: look for its work on
//! the token and in the out dir, adopt it when it is provably ours, else do it.
//!
//! Provably ours means the journal says so ([`StepLog`]): a step that creates objects
//! records its token call just before making it (`before_token_call`), and a step
//! records each output file's name and SHA-256 just before writing it (`write_output`).
//! Whatever is found without such a record was not made by this run and stops it.

use std::path::Path;

use super::engine::{CreatedObject, OutputFile, StepResult};
use super::journal::{self, StepLog};
use super::script::{self, Action, GenerateKey, ObjectType, Step};
use crate::hsm::admin::{AuthKeySpec, Rotation};
use crate::hsm::{self, NewObject, ObjectClass, ObjectInfo, Selector, Token, UserType};
use crate::keys::{KeyAlgorithm, PrivateKey, PublicKey};
use crate::output::crash_point;
use crate::secret::Secret;

/// Secret values by logical name, held by the runner (never in the engine's `State`).
pub type Vault = std::collections::BTreeMap<String, Secret>;

/// What a step needs besides the token.
pub struct StepContext<'a> {
    /// The label init-token gives the token.
    pub script_token_label: &'a str,
    /// The out dir, where the step reads earlier outputs and writes its own.
    pub out_dir: &'a Path,
    /// The secrets' values by name (only those the run was given).
    pub vault: &'a Vault,
    /// The journal as this step sees it: what its interrupted attempts recorded, and the
    /// records it writes before its token call and each output file.
    pub log: &'a StepLog<'a>,
}

/// Errors of one step (the caller adds the step's place).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The token refused or failed.
    #[error("{0}")]
    Token(#[from] hsm::Error),
    /// The journal could not be written (the step must not go on without its record).
    #[error(transparent)]
    Journal(#[from] journal::Error),
    /// Anything else, in one line (a file, an adoption that does not fit).
    #[error("{0}")]
    Other(String),
}

impl<'a> StepContext<'a> {
    fn secret(&self, name: &str) -> Result<&'a Secret, StepError> {
        self.vault
            .get(name)
            .ok_or_else(|| StepError::Other(format!("secret {name:?} was not provided")))
    }
}

/// Run one step on a token. `reconcile`: the step started in an earlier run and did not
/// complete; adopt its work if it is there (never create twice), else do it.
/// On a backend with a device audit log, the log is read into the result after the step.
pub fn execute_step(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    step: &Step,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let mut result = execute_action(token, ctx, step, reconcile)?;
    match token.read_device_audit() {
        Some(Ok(report)) => result.device_audit = Some(report),
        Some(Err(e)) => result.notes.push(format!("device audit log not read: {e}")),
        None => {}
    }
    Ok(result)
}

fn auth_key_object(spec: &AuthKeySpec, id: u16, class: &str) -> CreatedObject {
    CreatedObject {
        label: spec.label.clone(),
        id: format!("{id:04x}"),
        class: class.into(),
        key_type: spec.summary(),
        public_key_sha256: None,
    }
}

fn execute_action(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    step: &Step,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    match &step.action {
        Action::PutAuthKey(p) => put_auth_key(token, ctx, p, reconcile),
        Action::ChangeAuthKey(c) => change_auth_key(token, ctx, c, reconcile),
        Action::SetAudit(a) => set_audit(token, a),
        Action::InitToken(s) => init_token(token, ctx, s, reconcile),
        Action::Login(s) => {
            token.login(s.user, ctx.secret(&s.pin)?)?;
            Ok(StepResult::default())
        }
        Action::ChangePin(s) => change_pin(
            token,
            s.user,
            ctx.secret(&s.old_pin)?,
            ctx.secret(&s.new_pin)?,
            reconcile,
        ),
        Action::GenerateKey(g) => generate_key(token, ctx, g, reconcile),
        Action::ImportKey(k) => import_key(token, ctx, k, reconcile),
        Action::WriteObject(w) => write_object(token, ctx, w, reconcile),
        Action::DeleteObject(d) => delete_object(token, d, reconcile),
        Action::ExportPublicKey(x) => export_public_key(token, ctx, x),
        Action::Instruction(_) => Ok(StepResult::default()),
        Action::SetPolicy(p) => set_policy(token, ctx, p, reconcile),
        Action::CoSign(_) => co_sign(ctx),
        a @ (Action::IssueCertificate(_)
        | Action::ExportFuses(_)
        | Action::Sign(_)
        | Action::Verify(_)
        | Action::IssueTbbr(_)) => super::steps::execute(token, ctx, a, reconcile),
        // They deal with custodians: the runner runs them (`super::custody::execute`).
        a @ (Action::GenerateWrapKey(_) | Action::Backup(_) | Action::Restore(_)) => {
            Err(StepError::Other(format!(
                "a {} step runs inside a ceremony, with its custodians",
                a.kind()
            )))
        }
    }
}

/// put-auth-key: a new authentication key, or under reconcile the same one already there.
fn put_auth_key(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    p: &script::PutAuthKey,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let password = ctx.secret(&p.password)?;
    let created = auth_key_object(&p.spec, p.spec.id, "authentication key");
    let (label, id) = (&p.spec.label, p.spec.id.to_be_bytes());
    let classes = [ObjectClass::AuthKey];
    if let Some(found) = before_token_call(token, ctx, reconcile, &classes, label, &id)? {
        named(&found, label, &id)
            .map_err(|why| cannot_adopt(&format!("authentication key {:04x}", p.spec.id), &why))?;
        if token.auth_key(p.spec.id)?.as_ref() != Some(&p.spec) {
            return Err(StepError::Other(format!(
                "the device already has a different authentication key {:04x}",
                p.spec.id
            )));
        }
        return Ok(StepResult {
            objects: vec![created],
            adopted: true,
            ..StepResult::default()
        });
    }
    token.put_auth_key(&p.spec, password)?;
    Ok(StepResult {
        objects: vec![created],
        ..StepResult::default()
    })
}

/// change-auth-key: rotate the session's key; under reconcile a session already on the
/// new password means the rotation finished.
fn change_auth_key(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    c: &script::ChangeAuthKey,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let temp = ctx.secret(&c.temporary_password)?;
    let new = ctx.secret(&c.new_password)?;
    let id = token.session_auth_key().ok_or_else(|| {
        StepError::Token(hsm::Error::NotLoggedIn(
            "change-auth-key rotates the key the session logged in with".into(),
        ))
    })?;
    let rotated = |token: &mut dyn Token| -> Result<CreatedObject, StepError> {
        let spec = token.auth_key(id)?.ok_or_else(|| {
            StepError::Token(hsm::Error::NotFound {
                what: format!("authentication key {id:04x} after the rotation"),
            })
        })?;
        Ok(auth_key_object(&spec, id, "authentication key (rotated)"))
    };
    if reconcile && token.session_uses(new) {
        return Ok(StepResult {
            objects: vec![rotated(token)?],
            adopted: true,
            ..StepResult::default()
        });
    }
    let sub_steps = token.rotate_auth_key(&Rotation {
        temp_id: c.temporary_key_id,
        temp_password: temp,
        new_password: new,
        replacement: c.replacement.clone(),
    })?;
    Ok(StepResult {
        objects: vec![rotated(token)?],
        sub_steps,
        ..StepResult::default()
    })
}

/// set-audit: the force-audit option, as read back from the device.
fn set_audit(token: &mut dyn Token, a: &script::SetAudit) -> Result<StepResult, StepError> {
    let now = token.set_force_audit(a.force)?;
    if now != a.force {
        return Err(StepError::Other(format!(
            "force-audit reads back {} after setting it {}",
            if now { "on" } else { "off" },
            if a.force { "on" } else { "off" }
        )));
    }
    Ok(StepResult {
        notes: vec![format!(
            "force-audit is {} (read back from the device)",
            if now { "on" } else { "off" }
        )],
        ..StepResult::default()
    })
}

/// init-token; under reconcile what an interrupted initialization left may be ours.
fn init_token(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    s: &script::InitToken,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let (so, user) = (ctx.secret(&s.so_pin)?, ctx.secret(&s.user_pin)?);
    if reconcile {
        // Killed inside the token's initialization: what it left may be ours.
        if let Some(note) = token.resume_init_token(ctx.script_token_label, so, user)? {
            return Ok(StepResult {
                adopted: true,
                notes: vec![note],
                ..StepResult::default()
            });
        }
    }
    token.init_token(ctx.script_token_label, so, user)?;
    Ok(StepResult::default())
}

/// generate-key, or under reconcile the key the interrupted attempt made.
fn generate_key(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    g: &GenerateKey,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    if let Some(found) =
        before_token_call(token, ctx, reconcile, &KEY_CLASSES, &g.label, &g.key_id)?
    {
        let pk = generated_by(token, &found, g)
            .map_err(|why| cannot_adopt(&format!("a key labelled {:?}", g.label), &why))?;
        return Ok(key_result(&g.label, &g.key_id, &pk, true));
    }
    let opts = hsm::KeyOptions {
        exportable_under_wrap: g.exportable_under_wrap,
    };
    let pk = token.generate_key_with(g.algorithm, &g.label, &g.key_id, &opts)?;
    Ok(key_result(&g.label, &g.key_id, &pk, false))
}

/// import-key, or under reconcile the key the interrupted attempt imported.
fn import_key(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    k: &script::ImportKey,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let passphrase = match &k.passphrase {
        Some(n) => Some(ctx.secret(n)?),
        None => None,
    };
    let key = read_private_key(&k.key_file, passphrase)?;
    if let Some(found) =
        before_token_call(token, ctx, reconcile, &KEY_CLASSES, &k.label, &k.key_id)?
    {
        let pk = imported_by(token, &found, &k.label, &k.key_id, key.public_key())
            .map_err(|why| cannot_adopt(&format!("a key labelled {:?}", k.label), &why))?;
        return Ok(key_result(&k.label, &k.key_id, &pk, true));
    }
    let pk = token.import_key(&key, &k.label, &k.key_id)?;
    Ok(key_result(&k.label, &k.key_id, &pk, false))
}

/// write-object: a certificate or data object from a file beside the script.
fn write_object(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    w: &script::WriteObject,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let bytes = std::fs::read(&w.file)
        .map_err(|e| StepError::Other(format!("cannot read {}: {}", w.file.display(), e.kind())))?;
    let (object, class) = match w.object_type {
        ObjectType::Cert => (
            NewObject::Certificate(cert_der(&bytes)?),
            ObjectClass::Certificate,
        ),
        ObjectType::Data => (
            NewObject::Data {
                application: w.application.clone().unwrap_or_else(|| "officiant".into()),
                value: bytes,
            },
            ObjectClass::Data,
        ),
    };
    // A YubiHSM keeps data as opaque objects.
    let classes = match class {
        ObjectClass::Data => vec![ObjectClass::Data, ObjectClass::Opaque],
        _ => vec![class.clone()],
    };
    let found = before_token_call(token, ctx, reconcile, &classes, &w.label, &w.object_id)?;
    let adopted = found.is_some();
    match found {
        Some(found) => written_by(token, &found, &w.label, &w.object_id, &object)
            .map_err(|why| cannot_adopt(&format!("an object labelled {:?}", w.label), &why))?,
        None => token.put_object(&w.label, &w.object_id, &object)?,
    }
    let pk = match &object {
        NewObject::Certificate(der) => PublicKey::from_certificate_der(der).ok(),
        NewObject::Data { .. } => None,
    };
    Ok(StepResult {
        objects: vec![CreatedObject {
            label: w.label.to_string(),
            id: hex::encode(&w.object_id),
            class: class.to_string(),
            key_type: pk.as_ref().map(PublicKey::describe).unwrap_or_default(),
            public_key_sha256: pk.map(|p| hex::encode(p.fingerprint())),
        }],
        adopted,
        ..StepResult::default()
    })
}

/// delete-object; under reconcile nothing left to delete means it was done.
fn delete_object(
    token: &mut dyn Token,
    d: &script::DeleteObject,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let n = token.delete_object(&Selector {
        label: d.label.to_string(),
        class: d.class.clone(),
    })?;
    if n == 0 && !reconcile {
        return Err(StepError::Token(hsm::Error::NotFound {
            what: format!("object labelled {:?}", d.label),
        }));
    }
    Ok(StepResult {
        deleted: Some(n),
        adopted: n == 0,
        ..StepResult::default()
    })
}

/// export-public-key: PEM and/or DER files in the out dir.
fn export_public_key(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    x: &script::ExportPublicKey,
) -> Result<StepResult, StepError> {
    let pk = token.public_key(&x.key)?;
    let mut outputs = Vec::new();
    let files: Vec<(&String, Vec<u8>)> = [
        x.pem.as_ref().map(|n| (n, pk.to_pem().into_bytes())),
        x.der.as_ref().map(|n| (n, pk.to_spki_der())),
    ]
    .into_iter()
    .flatten()
    .collect();
    outputs.extend(write_outputs(ctx, files)?);
    Ok(StepResult {
        outputs,
        ..StepResult::default()
    })
}

fn change_pin(
    token: &mut dyn Token,
    user: UserType,
    old: &Secret,
    new: &Secret,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    match token.change_pin(user, old, new) {
        Ok(()) => Ok(StepResult::default()),
        // Interrupted after the change took effect: the new PIN is already set.
        Err(hsm::Error::WrongPin { .. }) if reconcile => {
            token.login(user, new)?;
            Ok(StepResult {
                adopted: true,
                ..StepResult::default()
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The classes a key pair's objects have.
const KEY_CLASSES: [ObjectClass; 2] = [ObjectClass::PrivateKey, ObjectClass::PublicKey];

/// One id: equal bytes, or the same number (a YubiHSM id is a 16-bit number, so the
/// script's `01` is listed as `0001`).
fn same_id(a: &[u8], b: &[u8]) -> bool {
    let trim = |x: &[u8]| -> Vec<u8> { x.iter().copied().skip_while(|&v| v == 0).collect() };
    a == b || (!a.is_empty() && !b.is_empty() && trim(a) == trim(b))
}

fn describe(o: &ObjectInfo) -> String {
    if o.id.is_empty() {
        format!("{} {:?}", o.class, o.label)
    } else {
        format!("{} {:?} (id {})", o.class, o.label, hex::encode(&o.id))
    }
}

/// "the token holds WHAT that this step cannot adopt: WHY; …" (one line).
fn cannot_adopt(what: &str, why: &str) -> StepError {
    StepError::Other(format!(
        "the token holds {what} that this step cannot adopt: {why}; remove it or use another label, then rerun"
    ))
}

/// Before a step's token call that creates objects of `classes` named `label` and `id`
/// (an empty id names nothing). With nothing of that name on the token, the call is
/// recorded in the journal and the step goes ahead: `Ok(None)`. A first attempt also goes
/// ahead when something is there, unrecorded (the token refuses the name). A reconciled
/// step finds its own work only if an interrupted attempt recorded the call: then
/// `Ok(Some(found))`, and the caller checks it is what the step makes; without the record
/// the call never happened, and what is there is someone else's: the run stops.
pub(crate) fn before_token_call(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    reconcile: bool,
    classes: &[ObjectClass],
    label: &str,
    id: &[u8],
) -> Result<Option<Vec<ObjectInfo>>, StepError> {
    let mut found: Vec<ObjectInfo> = token
        .list_objects()?
        .into_iter()
        .filter(|o| classes.contains(&o.class))
        .filter(|o| o.label == label || (!id.is_empty() && same_id(&o.id, id)))
        .collect();
    // In class order (a key pair's private half first), whatever order the token lists.
    found.sort_by_key(|o| classes.iter().position(|c| c == &o.class));
    if found.is_empty() {
        ctx.log.record_token_call()?;
        return Ok(None);
    }
    if !reconcile {
        return Ok(None);
    }
    if !ctx.log.token_call_recorded() {
        return Err(StepError::Other(format!(
            "the token holds {} that this run did not make (its interrupted attempt stopped before the token call); remove it or use another label, then rerun",
            describe(&found[0])
        )));
    }
    Ok(Some(found))
}

/// Every object found must carry the step's label and id.
fn named(found: &[ObjectInfo], label: &str, id: &[u8]) -> Result<(), String> {
    for o in found {
        let id_ok = same_id(&o.id, id) || (o.id.is_empty() && o.class == ObjectClass::Data);
        if o.label != label || !id_ok {
            return Err(format!(
                "{} is not labelled {label:?} with id {}",
                describe(o),
                hex::encode(id)
            ));
        }
    }
    Ok(())
}

/// The public key of a key pair found on the token (both halves must agree).
fn found_public_key(
    token: &mut dyn Token,
    found: &[ObjectInfo],
    label: &str,
) -> Result<PublicKey, String> {
    let pk = match found.iter().find_map(|o| o.public_key.clone()) {
        Some(pk) => pk,
        None => token.public_key(label).map_err(|e| e.to_string())?,
    };
    if found
        .iter()
        .any(|o| o.public_key.as_ref().is_some_and(|k| k != &pk))
    {
        return Err("its two halves hold different public keys".into());
    }
    Ok(pk)
}

/// What generate-key makes: a private key generated on the token (CKA_LOCAL; YubiHSM
/// origin generated), never extractable (or, asked exportable under wrap: sensitive and
/// exportable), of the algorithm asked for, under the step's label and id.
fn generated_by(
    token: &mut dyn Token,
    found: &[ObjectInfo],
    g: &GenerateKey,
) -> Result<PublicKey, String> {
    named(found, &g.label, &g.key_id)?;
    let private = found
        .iter()
        .find(|o| o.class == ObjectClass::PrivateKey)
        .ok_or("it has no private key")?;
    let f = &private.flags;
    if f.local != Some(true) {
        return Err("it was not generated on the token (imported or restored)".into());
    }
    if g.exportable_under_wrap {
        if f.sensitive != Some(true) || f.never_extractable != Some(false) {
            return Err(
                "it is not the sensitive, exportable-under-wrap key this step generates".into(),
            );
        }
    } else if f.never_extractable != Some(true) {
        return Err("it is not marked never-extractable".into());
    }
    let pk = found_public_key(token, found, &g.label)?;
    if KeyAlgorithm::of(&pk) != Some(g.algorithm) {
        return Err(format!("it is {}, not {}", pk.describe(), g.algorithm));
    }
    Ok(pk)
}

/// What import-key makes: the key file's key under the step's label and id.
fn imported_by(
    token: &mut dyn Token,
    found: &[ObjectInfo],
    label: &str,
    id: &[u8],
    want: &PublicKey,
) -> Result<PublicKey, String> {
    named(found, label, id)?;
    let pk = found_public_key(token, found, label)?;
    if &pk != want {
        return Err(format!(
            "it is not the key in the key file ({})",
            pk.describe()
        ));
    }
    Ok(pk)
}

/// What write-object writes: these bytes under the step's label (and id).
fn written_by(
    token: &mut dyn Token,
    found: &[ObjectInfo],
    label: &str,
    id: &[u8],
    object: &NewObject,
) -> Result<(), String> {
    named(found, label, id)?;
    let have = match object {
        NewObject::Certificate(_) => token.read_certificate(label),
        NewObject::Data { .. } => token
            .read_data(label)
            .map(|d| d.into_iter().find(|d| d.label == label).map(|d| d.value)),
    }
    .map_err(|e| e.to_string())?;
    let want = match object {
        NewObject::Certificate(der) => der,
        NewObject::Data { value, .. } => value,
    };
    if have.as_ref() != Some(want) {
        return Err("its value differs from the file's".into());
    }
    Ok(())
}

fn key_result(label: &str, id: &[u8], pk: &PublicKey, adopted: bool) -> StepResult {
    StepResult {
        objects: vec![CreatedObject {
            label: label.to_string(),
            id: hex::encode(id),
            class: "key pair".into(),
            key_type: pk.describe(),
            public_key_sha256: Some(hex::encode(pk.fingerprint())),
        }],
        adopted,
        ..StepResult::default()
    }
}

/// Read a private key file for import (the bytes are zeroized after parsing).
pub fn read_private_key(path: &Path, passphrase: Option<&Secret>) -> Result<PrivateKey, StepError> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
        StepError::Other(format!(
            "cannot read key file {}: {}",
            path.display(),
            e.kind()
        ))
    })?);
    let key = PrivateKey::from_bytes(&bytes, passphrase)
        .map_err(|e| StepError::Other(format!("key file {}: {e}", path.display())))?;
    crate::keys::fitness::check(key.public_key(), crate::keys::fitness::Use::General)
        .map_err(|e| StepError::Other(format!("key file {}: {e}", path.display())))?;
    Ok(key)
}

/// A certificate file as DER (PEM accepted).
fn cert_der(bytes: &[u8]) -> Result<Vec<u8>, StepError> {
    use der::{Decode, DecodePem, Encode};
    let cert = if bytes.starts_with(b"-----BEGIN") {
        x509_cert::Certificate::from_pem(bytes)
    } else {
        x509_cert::Certificate::from_der(bytes)
    }
    .map_err(|e| StepError::Other(format!("not an X.509 certificate: {e}")))?;
    cert.to_der()
        .map_err(|e| StepError::Other(format!("certificate: {e}")))
}

/// Write a step's output files in order, with a crash point between them (so resume is
/// tested with only some of them written).
pub(crate) fn write_outputs(
    ctx: &StepContext<'_>,
    files: Vec<(&String, Vec<u8>)>,
) -> Result<Vec<OutputFile>, StepError> {
    let mut outputs = Vec::with_capacity(files.len());
    for (k, (name, bytes)) in files.into_iter().enumerate() {
        if k > 0 {
            crash_point();
        }
        outputs.push(write_output(ctx, name, &bytes)?);
    }
    Ok(outputs)
}

/// Write an output file, recording its name and SHA-256 in the journal first. A file
/// already there is this step's only if the journal recorded it (an earlier attempt that
/// was killed, or failed on a later file): then it is adopted when it holds these bytes
/// and replaced when it does not (a re-issued certificate). Any other file stops the run.
pub(crate) fn write_output(
    ctx: &StepContext<'_>,
    name: &str,
    bytes: &[u8],
) -> Result<OutputFile, StepError> {
    let path = ctx.out_dir.join(name);
    let sha = crate::output::sha256(bytes);
    let done = |adopted: bool| OutputFile {
        path: name.to_string(),
        sha256: hex::encode(sha),
        adopted,
    };
    if let Some(have) = existing_output(ctx, name)? {
        if have == sha {
            return Ok(done(true));
        }
        ctx.log.record_output(name, &sha)?;
        crate::output::replace_own(&path, &have, bytes)
            .map_err(|e| StepError::Other(e.to_string()))?;
        return Ok(done(false));
    }
    ctx.log.record_output(name, &sha)?;
    crate::output::write_new(&path, bytes).map_err(|e| StepError::Other(e.to_string()))?;
    Ok(done(false))
}

/// The SHA-256 of output `name` if it exists and this step wrote it (the journal says
/// so); an error naming the file if it exists and the step did not write it.
pub(crate) fn existing_output(
    ctx: &StepContext<'_>,
    name: &str,
) -> Result<Option<[u8; 32]>, StepError> {
    let path = ctx.out_dir.join(name);
    let meta = match path.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StepError::Other(format!("{}: {e}", path.display()))),
    };
    let have = meta
        .file_type()
        .is_file()
        .then(|| crate::output::sha256_file(&path))
        .transpose()
        .map_err(|e| StepError::Other(format!("{}: {e}", path.display())))?;
    match have {
        Some(h) if ctx.log.wrote(name, &h) => Ok(Some(h)),
        _ => Err(StepError::Other(format!(
            "{} exists and this run did not write it (the journal records no such file); move it away and rerun",
            path.display()
        ))),
    }
}

/// Store the policy on the token (as the SO with the step's PIN, else with the session's
/// key) and read it back; its SHA-256 is the result the witnesses read aloud. On
/// reconcile, a token whose policy is already this one adopts it.
fn set_policy(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    p: &super::script::SetPolicy,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    use crate::approvals::{store, Policy};
    let policy = Policy::load(&p.policy).map_err(|e| StepError::Other(e.to_string()))?;
    if let Some(name) = &p.so_pin {
        token.login(UserType::So, ctx.secret(name)?)?;
    }
    let store_err = |e: store::Error| match e {
        store::Error::Token(t) => StepError::Token(t),
        other => StepError::Other(other.to_string()),
    };
    let want = crate::output::sha256(&policy.to_stored());
    let existing = if reconcile {
        store::read_policy(token)
            .map_err(store_err)?
            .filter(|s| s.sha256 == want)
    } else {
        None
    };
    // As `before_token_call`: only a write this run recorded is adopted.
    if existing.is_some() && !ctx.log.token_call_recorded() {
        return Err(StepError::Other(
            "the token holds this policy but this run did not store it (its interrupted attempt stopped before the token call); remove it, then rerun".into(),
        ));
    }
    let adopted = existing.is_some();
    let stored = match existing {
        Some(s) => s,
        None => {
            ctx.log.record_token_call()?;
            store::write_policy(token, &policy).map_err(store_err)?
        }
    };
    let keys: serde_json::Map<String, serde_json::Value> = stored
        .policy
        .keys
        .iter()
        .map(|(k, r)| (k.clone(), serde_json::Value::String(r.describe())))
        .collect();
    let approvers: Vec<String> = stored
        .policy
        .signers
        .entries
        .iter()
        .map(|e| format!("{} {}", e.principals, e.fingerprint()))
        .collect();
    let note = if stored.immutable {
        "the token keeps this policy from being modified or destroyed".to_string()
    } else {
        "this token cannot keep the policy object from deletion: any key or session allowed to delete data objects can replace it".to_string()
    };
    let stored_note = format!(
        "policy object {:?} (version {}) on the token{}",
        stored.label,
        stored.version,
        if adopted {
            ", written by the interrupted run"
        } else {
            ""
        }
    );
    Ok(StepResult {
        adopted,
        details: serde_json::json!({
            "policy": {
                "label": stored.label,
                "version": stored.version,
                "sha256": crate::formats::words::Fingerprint::of(&stored.sha256),
                "immutable": stored.immutable,
                "keys": keys,
                "approvers": approvers,
            }
        }),
        notes: vec![stored_note, note],
        ..StepResult::default()
    })
}

/// The transcript head the step's sign-offs signed (they are its work), for the
/// witnesses to read aloud.
fn co_sign(ctx: &StepContext<'_>) -> Result<StepResult, StepError> {
    use crate::approvals::signoff;
    let path = ctx.out_dir.join(super::runner::TRANSCRIPT);
    let entries = signoff::read_entries(&path).map_err(StepError::Other)?;
    let head = signoff::anchor(&entries).unwrap_or_default();
    let bytes =
        hex::decode(&head).map_err(|e| StepError::Other(format!("transcript head: {e}")))?;
    Ok(StepResult {
        details: serde_json::json!({
            "co_signed_head": crate::formats::words::Fingerprint::of(&bytes),
        }),
        ..StepResult::default()
    })
}
