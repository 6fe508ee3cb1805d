//! Step executors: one step on one token, nothing else (no journal, no transcript, no
//! face). `reconcile` means the step started in an interrupted earlier run: look for its
//! work on the token and in the out dir, adopt it when it is provably ours, else do it.

use std::path::Path;

use super::engine::{CreatedObject, OutputFile, StepResult};
use super::script::{Action, ObjectType, Step};
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
    pub out_dir: &'a Path,
    pub vault: &'a Vault,
}

/// Errors of one step (the caller adds the step's place).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("{0}")]
    Token(#[from] hsm::Error),
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
        Action::PutAuthKey(p) => {
            let password = ctx.secret(&p.password)?;
            let created = auth_key_object(&p.spec, p.spec.id, "authentication key");
            if reconcile {
                if let Some(existing) = token.auth_key(p.spec.id)? {
                    if existing != p.spec {
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
            }
            token.put_auth_key(&p.spec, password)?;
            Ok(StepResult {
                objects: vec![created],
                ..StepResult::default()
            })
        }
        Action::ChangeAuthKey(c) => {
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
        Action::SetAudit(a) => {
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
        Action::InitToken(s) => {
            token.init_token(
                ctx.script_token_label,
                ctx.secret(&s.so_pin)?,
                ctx.secret(&s.user_pin)?,
            )?;
            Ok(StepResult::default())
        }
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
        Action::GenerateKey(g) => {
            if reconcile {
                if let Some(pk) = existing_key(token, &g.label)? {
                    if KeyAlgorithm::of(&pk) != Some(g.algorithm) {
                        return Err(StepError::Other(format!(
                            "the token already has a key labelled {:?} of another type ({})",
                            g.label,
                            pk.describe()
                        )));
                    }
                    return Ok(key_result(&g.label, &g.key_id, &pk, true));
                }
            }
            let opts = hsm::KeyOptions {
                exportable_under_wrap: g.exportable_under_wrap,
            };
            let pk = token.generate_key_with(g.algorithm, &g.label, &g.key_id, &opts)?;
            Ok(key_result(&g.label, &g.key_id, &pk, false))
        }
        Action::ImportKey(k) => {
            let passphrase = match &k.passphrase {
                Some(n) => Some(ctx.secret(n)?),
                None => None,
            };
            let key = read_private_key(&k.key_file, passphrase)?;
            if reconcile {
                if let Some(pk) = existing_key(token, &k.label)? {
                    if pk.fingerprint() != key.public_key().fingerprint() {
                        return Err(StepError::Other(format!(
                            "the token already has a different key labelled {:?}",
                            k.label
                        )));
                    }
                    return Ok(key_result(&k.label, &k.key_id, &pk, true));
                }
            }
            let pk = token.import_key(&key, &k.label, &k.key_id)?;
            Ok(key_result(&k.label, &k.key_id, &pk, false))
        }
        Action::WriteObject(w) => {
            let bytes = std::fs::read(&w.file).map_err(|e| {
                StepError::Other(format!("cannot read {}: {}", w.file.display(), e.kind()))
            })?;
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
            let mut adopted = false;
            if reconcile {
                adopted = token
                    .list_objects()?
                    .iter()
                    .any(|o| o.label == w.label && o.class == class);
            }
            if !adopted {
                token.put_object(&w.label, &w.object_id, &object)?;
            }
            let pk = match &object {
                NewObject::Certificate(der) => PublicKey::from_certificate_der(der).ok(),
                NewObject::Data { .. } => None,
            };
            Ok(StepResult {
                objects: vec![CreatedObject {
                    label: w.label.clone(),
                    id: hex::encode(&w.object_id),
                    class: class.to_string(),
                    key_type: pk.as_ref().map(PublicKey::describe).unwrap_or_default(),
                    public_key_sha256: pk.map(|p| hex::encode(p.fingerprint())),
                }],
                adopted,
                ..StepResult::default()
            })
        }
        Action::DeleteObject(d) => {
            let n = token.delete_object(&Selector {
                label: d.label.clone(),
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
        Action::ExportPublicKey(x) => {
            let pk = token.public_key(&x.key)?;
            let mut outputs = Vec::new();
            let files: Vec<(&String, Vec<u8>)> = [
                x.pem.as_ref().map(|n| (n, pk.to_pem().into_bytes())),
                x.der.as_ref().map(|n| (n, pk.to_spki_der())),
            ]
            .into_iter()
            .flatten()
            .collect();
            outputs.extend(write_outputs(ctx.out_dir, files, reconcile)?);
            Ok(StepResult {
                outputs,
                ..StepResult::default()
            })
        }
        Action::Instruction(_) => Ok(StepResult::default()),
        a @ (Action::IssueCertificate(_)
        | Action::ExportFuses(_)
        | Action::Sign(_)
        | Action::Verify(_)
        | Action::IssueTbbr(_)) => super::steps::execute(token, ctx, a, reconcile),
    }
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

fn existing_key(token: &mut dyn Token, label: &str) -> Result<Option<PublicKey>, StepError> {
    let objects: Vec<ObjectInfo> = token.list_objects()?;
    let key = objects.into_iter().find(|o| {
        o.label == label && matches!(o.class, ObjectClass::PrivateKey | ObjectClass::PublicKey)
    });
    Ok(match key {
        Some(o) => Some(match o.public_key {
            Some(pk) => pk,
            None => token.public_key(label)?,
        }),
        None => None,
    })
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
    out: &Path,
    files: Vec<(&String, Vec<u8>)>,
    reconcile: bool,
) -> Result<Vec<OutputFile>, StepError> {
    let mut outputs = Vec::with_capacity(files.len());
    for (k, (name, bytes)) in files.into_iter().enumerate() {
        if k > 0 {
            crash_point();
        }
        outputs.push(write_output(out, name, &bytes, reconcile)?);
    }
    Ok(outputs)
}

/// Write an output file; on reconcile an identical existing file is adopted.
pub(crate) fn write_output(
    out: &Path,
    name: &str,
    bytes: &[u8],
    reconcile: bool,
) -> Result<OutputFile, StepError> {
    let path = out.join(name);
    let sha = hex::encode(crate::output::sha256(bytes));
    if reconcile && path.exists() {
        let have = std::fs::read(&path)
            .map_err(|e| StepError::Other(format!("{}: {e}", path.display())))?;
        if have == bytes {
            return Ok(OutputFile {
                path: name.to_string(),
                sha256: sha,
                adopted: true,
            });
        }
        return Err(StepError::Other(format!(
            "{} exists from an interrupted run and differs from what this step writes; move it away and rerun",
            path.display()
        )));
    }
    crate::output::write_new(&path, bytes).map_err(|e| StepError::Other(e.to_string()))?;
    Ok(OutputFile {
        path: name.to_string(),
        sha256: sha,
        adopted: false,
    })
}
