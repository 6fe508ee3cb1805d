//! Authentication keys: put a new one, and rotate one safely.
//!
//! The crate has no ChangeAuthenticationKey, so a rotation is the sequence careful
//! operators run by hand: put a temporary key, log in with it, delete the old key, put the
//! replacement at the original id, log in with it, delete the temporary key. Each sub-step
//! is checked and recorded; after a failure the device still has a working administrative
//! key, which is proven by logging in with it, and the error names it (id and which
//! password: old, temporary or new).

use std::fmt;

use yubihsm::object::{Filter, Type};
use yubihsm::{authentication, Capability, Client, Credentials, Domain};

use super::caps::{self, admin_capabilities, capability_names, domain_numbers};
use super::{device, Error, Result, YubiHsm};
use crate::secret::Secret;

/// An authentication key to put (no password: that is a [`Secret`] beside it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAuthKey {
    /// Its 16-bit object id.
    pub id: u16,
    /// Its label (at most 40 bytes).
    pub label: String,
    /// The domains it works in.
    pub domains: Domain,
    /// What a session on it may do.
    pub capabilities: Capability,
    /// What the objects it puts may be given.
    pub delegated: Capability,
}

impl DeviceAuthKey {
    /// Domains and capabilities by name (for the transcript's object line).
    pub fn summary(&self) -> String {
        let all = caps::CAPABILITY_NAMES
            .iter()
            .fold(Capability::empty(), |a, (_, c)| a | *c);
        let names = |c: Capability| {
            if c.contains(all) {
                "all".to_string()
            } else {
                format!("[{}]", capability_names(c).join(", "))
            }
        };
        let domains = if self.domains == Domain::all() {
            "all".to_string()
        } else {
            format!("{:?}", domain_numbers(self.domains))
        };
        format!(
            "domains {domains}; capabilities {}; delegated {}",
            names(self.capabilities),
            names(self.delegated)
        )
    }

    /// For transcripts: names, never bits.
    pub fn describe(&self) -> String {
        format!(
            "0x{:04x} {:?} domains {:?} capabilities [{}] delegated [{}]",
            self.id,
            self.label,
            domain_numbers(self.domains),
            capability_names(self.capabilities).join(", "),
            capability_names(self.delegated).join(", ")
        )
    }
}

/// The sub-steps of a safe rotation, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotationStep {
    /// Put the temporary key, with the old key's domains and capabilities.
    PutTemporary,
    /// Open a session on the temporary key.
    LoginTemporary,
    /// Delete the old key (from the temporary key's session).
    DeleteOld,
    /// Put the replacement at the old key's id.
    PutReplacement,
    /// Open a session on the replacement with the new password.
    LoginReplacement,
    /// Delete the temporary key (from the replacement's session).
    DeleteTemporary,
}

impl RotationStep {
    /// Every sub-step, in the order a rotation runs them.
    pub const ALL: [RotationStep; 6] = [
        RotationStep::PutTemporary,
        RotationStep::LoginTemporary,
        RotationStep::DeleteOld,
        RotationStep::PutReplacement,
        RotationStep::LoginReplacement,
        RotationStep::DeleteTemporary,
    ];

    /// The sub-step as the transcript and errors name it ("put temporary key").
    pub fn name(self) -> &'static str {
        match self {
            RotationStep::PutTemporary => "put temporary key",
            RotationStep::LoginTemporary => "log in with temporary key",
            RotationStep::DeleteOld => "delete old key",
            RotationStep::PutReplacement => "put replacement key",
            RotationStep::LoginReplacement => "log in with replacement key",
            RotationStep::DeleteTemporary => "delete temporary key",
        }
    }
}

/// Which password opens a key named after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordRole {
    /// The password the session logged in with before the rotation.
    Old,
    /// The temporary key's password.
    Temporary,
    /// The rotated key's new password.
    New,
}

impl fmt::Display for PasswordRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PasswordRole::Old => "old",
            PasswordRole::Temporary => "temporary",
            PasswordRole::New => "new",
        })
    }
}

pub use crate::hsm::admin::SubStep;

/// The administrative key that works after a failed rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WorkingKey {
    /// Its object id.
    pub id: u16,
    /// Which password opens it.
    pub password: PasswordRole,
}

/// A rotation that failed part-way: which sub-step, why, and which administrative key works
/// now (proven by logging in).
#[derive(Debug)]
pub struct RotationError {
    /// The sub-step that failed.
    pub failed: RotationStep,
    /// Why, in one line (the device's error, or an injected failure in tests).
    pub cause: String,
    /// `None` only if no candidate key could be logged in with (the error says so loudly).
    pub working: Option<WorkingKey>,
    /// Every sub-step attempted, with the clean-up after the failure.
    pub records: Vec<SubStep>,
    /// Keys left behind that the operator should delete once logged in.
    pub leftover: Vec<u16>,
}

impl std::error::Error for RotationError {}

impl fmt::Display for RotationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "change-auth-key failed at \"{}\": {}; ",
            self.failed.name(),
            self.cause
        )?;
        match self.working {
            Some(w) => write!(
                f,
                "the device still has a working administrative key: 0x{:04x} with the {} password (verified by logging in)",
                w.id, w.password
            )?,
            None => f.write_str(
                "NO administrative key could be logged in with afterwards: stop and recover the device with yubihsm-shell",
            )?,
        }
        for id in &self.leftover {
            write!(f, "; delete leftover authentication key 0x{id:04x}")?;
        }
        Ok(())
    }
}

/// A safe rotation of the session's own authentication key.
pub struct Rotation<'a> {
    /// A free id for the temporary key.
    pub temp_id: u16,
    /// The temporary key's password.
    pub temp_password: &'a Secret,
    /// The rotated key's new password.
    pub new_password: &'a Secret,
    /// Label, domains and capabilities of the replacement; `None` keeps the old key's.
    pub replacement: Option<DeviceAuthKey>,
}

const TEMP_LABEL: &str = "officiant rotation (temporary)";

fn auth_key(password: &Secret) -> authentication::Key {
    authentication::Key::derive_from_password(password.expose())
}

impl YubiHsm {
    /// The details of an authentication key.
    pub fn auth_key_spec(&self, id: u16) -> Result<DeviceAuthKey> {
        let info = self
            .client()?
            .get_object_info(id, Type::AuthenticationKey)
            .map_err(|_| Error::NotFound(format!("authentication key 0x{id:04x}")))?;
        Ok(DeviceAuthKey {
            id,
            label: info.label.try_as_str().unwrap_or("").to_string(),
            domains: info.domains,
            capabilities: info.capabilities,
            delegated: info.delegated_capabilities,
        })
    }

    /// Every authentication key on the device.
    pub fn auth_keys(&self) -> Result<Vec<DeviceAuthKey>> {
        let entries = self
            .client()?
            .list_objects(&[Filter::Type(Type::AuthenticationKey)])
            .map_err(device("list objects"))?;
        entries
            .iter()
            .map(|e| self.auth_key_spec(e.object_id))
            .collect()
    }

    /// Put a new authentication key. Refuses an id already taken, an empty password, and
    /// capabilities the session key may not delegate (the device refuses those too; the
    /// MockHsm does not, so we check here).
    pub fn put_auth_key(&mut self, spec: &DeviceAuthKey, password: &Secret) -> Result<()> {
        caps::check_label("label", &spec.label)?;
        if password.is_empty() {
            return Err(Error::Refused(format!(
                "authentication key 0x{:04x}: the password is empty",
                spec.id
            )));
        }
        let session = self.auth_key_spec(self.auth_key)?;
        caps::check_delegation(
            "capabilities",
            session.id,
            session.delegated,
            spec.capabilities,
        )?;
        caps::check_delegation(
            "delegated-capabilities",
            session.id,
            session.delegated,
            spec.delegated,
        )?;
        if !(spec.domains - session.domains).is_empty() {
            return Err(Error::Field {
                path: "domains".into(),
                message: format!(
                    "authentication key 0x{:04x} has domains {:?} only",
                    session.id,
                    domain_numbers(session.domains)
                ),
            });
        }
        put_key(self.client()?, spec, password)
    }

    /// Refuse to delete `ids` if no other key able to manage authentication keys remains,
    /// or if one of them is the session's own key.
    pub fn ensure_admin_remains(&self, ids: &[u16]) -> Result<()> {
        if ids.contains(&self.auth_key) {
            return Err(Error::Refused(format!(
                "authentication key 0x{:04x} is the one this session logged in with; rotate it with change-auth-key or log in with another key",
                self.auth_key
            )));
        }
        let remaining = self
            .auth_keys()?
            .into_iter()
            .filter(|k| !ids.contains(&k.id))
            .any(|k| k.capabilities.contains(admin_capabilities()));
        if remaining {
            Ok(())
        } else {
            Err(Error::Refused(format!(
                "deleting authentication key(s) {} would leave no key with put-authentication-key and delete-authentication-key",
                ids.iter().map(|i| format!("0x{i:04x}")).collect::<Vec<_>>().join(", ")
            )))
        }
    }

    /// Delete one authentication key (guarded like [`YubiHsm::ensure_admin_remains`]).
    pub fn delete_auth_key(&mut self, id: u16) -> Result<()> {
        self.auth_key_spec(id)?;
        self.ensure_admin_remains(&[id])?;
        self.client()?
            .delete_object(id, Type::AuthenticationKey)
            .map_err(device("delete authentication key"))
    }

    /// Rotate the session's own authentication key safely; returns the sub-step records.
    pub fn change_auth_key(&mut self, r: &Rotation<'_>) -> Result<Vec<SubStep>> {
        self.change_auth_key_with_hook(r, &mut |_| Ok(()))
    }

    /// [`YubiHsm::change_auth_key`] with a hook run before each sub-step; an `Err` from
    /// the hook fails that sub-step without performing it. Tests use it to inject a
    /// failure at each point.
    pub fn change_auth_key_with_hook(
        &mut self,
        r: &Rotation<'_>,
        hook: &mut dyn FnMut(RotationStep) -> std::result::Result<(), String>,
    ) -> Result<Vec<SubStep>> {
        let plan = self.plan_rotation(r)?;
        let mut records = Vec::new();
        let old_client = self.client()?.clone();
        let mut temp_client: Option<Client> = None;
        let outcome =
            self.run_rotation(r, &plan, hook, &old_client, &mut temp_client, &mut records);
        match outcome {
            Ok(client) => {
                self.client = Some(client);
                self.creds = Some(plan.new_creds);
                self.auth_key = plan.old_id;
                Ok(records)
            }
            Err((failed, cause)) => {
                let (working, leftover) = self.recover_rotation(
                    r,
                    &plan,
                    &old_client,
                    temp_client.as_ref(),
                    failed,
                    &mut records,
                );
                Err(Error::Rotation(Box::new(RotationError {
                    failed,
                    cause,
                    working,
                    records,
                    leftover,
                })))
            }
        }
    }

    /// The checks before a rotation touches the device: the session's key may manage
    /// authentication keys, the temporary id is free, the passwords differ, and the
    /// replacement can delete the temporary key and asks for nothing the old key could
    /// not delegate.
    fn plan_rotation(&self, r: &Rotation<'_>) -> Result<RotationPlan> {
        let old_id = self.auth_key;
        let old_creds = self.creds.clone().ok_or(Error::NotLoggedIn)?;
        let old = self.auth_key_spec(old_id)?;
        if !old.capabilities.contains(admin_capabilities()) {
            return Err(Error::Refused(format!(
                "authentication key 0x{old_id:04x} lacks put-authentication-key or delete-authentication-key, which a safe rotation needs"
            )));
        }
        if r.temp_id == old_id {
            return Err(Error::Field {
                path: "temporary-id".into(),
                message: format!("0x{old_id:04x} is the key being rotated; choose a free id"),
            });
        }
        if r.temp_password.is_empty() || r.new_password.is_empty() {
            return Err(Error::Refused("a rotation password is empty".into()));
        }
        if r.temp_password == r.new_password {
            return Err(Error::Refused(
                "the temporary and new passwords are the same; give two different ones".into(),
            ));
        }
        let exists = !self
            .client()?
            .list_objects(&[Filter::Id(r.temp_id), Filter::Type(Type::AuthenticationKey)])
            .map_err(device("list objects"))?
            .is_empty();
        if exists {
            return Err(Error::Field {
                path: "temporary-id".into(),
                message: format!("authentication key 0x{:04x} already exists", r.temp_id),
            });
        }
        let mut replacement = r.replacement.clone().unwrap_or_else(|| old.clone());
        replacement.id = old_id;
        caps::check_label("label", &replacement.label)?;
        if !replacement
            .capabilities
            .contains(Capability::DELETE_AUTHENTICATION_KEY)
        {
            return Err(Error::Field {
                path: "capabilities".into(),
                message: format!(
                    "the replacement for 0x{old_id:04x} needs delete-authentication-key to remove the temporary key"
                ),
            });
        }
        caps::check_delegation(
            "capabilities",
            old_id,
            old.delegated,
            replacement.capabilities,
        )?;
        caps::check_delegation(
            "delegated-capabilities",
            old_id,
            old.delegated,
            replacement.delegated,
        )?;
        let temp = DeviceAuthKey {
            id: r.temp_id,
            label: TEMP_LABEL.into(),
            domains: old.domains,
            capabilities: old.capabilities,
            delegated: old.delegated,
        };
        Ok(RotationPlan {
            old_id,
            temp,
            replacement,
            old_creds,
            temp_creds: Credentials::new(r.temp_id, auth_key(r.temp_password)),
            new_creds: Credentials::new(old_id, auth_key(r.new_password)),
        })
    }

    /// The six sub-steps in order, each recorded; the first failure stops the rotation
    /// and names its sub-step. `Ok`: the replacement key's session.
    fn run_rotation(
        &self,
        r: &Rotation<'_>,
        plan: &RotationPlan,
        hook: &mut dyn FnMut(RotationStep) -> std::result::Result<(), String>,
        old_client: &Client,
        temp_client: &mut Option<Client>,
        records: &mut Vec<SubStep>,
    ) -> std::result::Result<Client, (RotationStep, String)> {
        let old_id = plan.old_id;
        let mut run = |step: RotationStep,
                       key_id: u16,
                       records: &mut Vec<SubStep>,
                       op: &mut dyn FnMut() -> Result<()>|
         -> std::result::Result<(), String> {
            let res = hook(step)
                .map_err(|e| format!("injected failure: {e}"))
                .and_then(|()| op().map_err(|e| e.to_string()));
            records.push(SubStep {
                step: step.name().to_string(),
                key_id,
                ok: res.is_ok(),
                detail: match &res {
                    Ok(()) => "ok".into(),
                    Err(e) => e.clone(),
                },
            });
            res
        };

        run(RotationStep::PutTemporary, r.temp_id, records, &mut || {
            put_key(old_client, &plan.temp, r.temp_password)
        })
        .map_err(|e| (RotationStep::PutTemporary, e))?;
        run(
            RotationStep::LoginTemporary,
            r.temp_id,
            records,
            &mut || {
                *temp_client = Some(self.open_session(plan.temp_creds.clone())?);
                Ok(())
            },
        )
        .map_err(|e| (RotationStep::LoginTemporary, e))?;
        let tc = temp_client
            .clone()
            .ok_or((RotationStep::LoginTemporary, "no session".to_string()))?;
        run(RotationStep::DeleteOld, old_id, records, &mut || {
            tc.delete_object(old_id, Type::AuthenticationKey)
                .map_err(device("delete authentication key"))
        })
        .map_err(|e| (RotationStep::DeleteOld, e))?;
        run(RotationStep::PutReplacement, old_id, records, &mut || {
            put_key(&tc, &plan.replacement, r.new_password)
        })
        .map_err(|e| (RotationStep::PutReplacement, e))?;
        let mut new_client = None;
        run(RotationStep::LoginReplacement, old_id, records, &mut || {
            new_client = Some(self.open_session(plan.new_creds.clone())?);
            Ok(())
        })
        .map_err(|e| (RotationStep::LoginReplacement, e))?;
        let nc = new_client.ok_or((RotationStep::LoginReplacement, "no session".to_string()))?;
        run(
            RotationStep::DeleteTemporary,
            r.temp_id,
            records,
            &mut || {
                nc.delete_object(r.temp_id, Type::AuthenticationKey)
                    .map_err(device("delete authentication key"))
            },
        )
        .map_err(|e| (RotationStep::DeleteTemporary, e))?;
        Ok(nc)
    }

    /// After the sub-step `failed`: find an administrative key that still works (proven
    /// by logging in), make it the session's, and delete a temporary key left next to
    /// it. Returns that key (`None`: none works) and the keys left for the operator.
    fn recover_rotation(
        &mut self,
        r: &Rotation<'_>,
        plan: &RotationPlan,
        old_client: &Client,
        temp_client: Option<&Client>,
        failed: RotationStep,
        records: &mut Vec<SubStep>,
    ) -> (Option<WorkingKey>, Vec<u16>) {
        let old_id = plan.old_id;
        use PasswordRole::*;
        // Which keys may work now, most likely first.
        let candidates: &[(u16, PasswordRole)] = match failed {
            RotationStep::PutTemporary | RotationStep::LoginTemporary => &[(old_id, Old)],
            RotationStep::DeleteOld => &[(old_id, Old), (r.temp_id, Temporary)],
            RotationStep::PutReplacement | RotationStep::LoginReplacement => {
                &[(r.temp_id, Temporary), (old_id, New)]
            }
            RotationStep::DeleteTemporary => &[(old_id, New), (r.temp_id, Temporary)],
        };
        let creds_for = |role: PasswordRole| match role {
            Old => plan.old_creds.clone(),
            Temporary => plan.temp_creds.clone(),
            New => plan.new_creds.clone(),
        };
        let mut working = None;
        let mut live: Vec<&Client> = vec![old_client];
        if let Some(t) = temp_client {
            live.push(t);
        }
        for &(id, role) in candidates {
            if self.mock_key_absent(&live, id) {
                continue;
            }
            if let Ok(client) = self.open_session(creds_for(role)) {
                let admin = client
                    .get_object_info(id, Type::AuthenticationKey)
                    .map(|i| i.capabilities.contains(admin_capabilities()))
                    .unwrap_or(false);
                if admin {
                    working = Some((WorkingKey { id, password: role }, client));
                    break;
                }
            }
        }
        // Tidy what is safe to tidy: a temporary key next to a working old key.
        let mut leftover = Vec::new();
        if let Some((w, client)) = &working {
            let temp_there = !client
                .list_objects(&[Filter::Id(r.temp_id), Filter::Type(Type::AuthenticationKey)])
                .map(|v| v.is_empty())
                .unwrap_or(true);
            if temp_there && w.id != r.temp_id {
                let done = client.delete_object(r.temp_id, Type::AuthenticationKey);
                records.push(SubStep {
                    step: "clean up: delete temporary key".into(),
                    key_id: r.temp_id,
                    ok: done.is_ok(),
                    detail: match &done {
                        Ok(()) => "ok".into(),
                        Err(e) => e.to_string(),
                    },
                });
                if done.is_err() {
                    leftover.push(r.temp_id);
                }
            }
        }
        let working_key = working.as_ref().map(|(w, _)| *w);
        if let Some((w, client)) = working {
            self.client = Some(client);
            self.creds = Some(creds_for(w.password));
            self.auth_key = w.id;
        } else {
            self.client = None;
            self.creds = None;
        }
        (working_key, leftover)
    }
}

/// A checked rotation: the keys it puts and the credentials of each password.
struct RotationPlan {
    old_id: u16,
    temp: DeviceAuthKey,
    replacement: DeviceAuthKey,
    old_creds: Credentials,
    temp_creds: Credentials,
    new_creds: Credentials,
}

fn put_key(client: &Client, spec: &DeviceAuthKey, password: &Secret) -> Result<()> {
    let label =
        yubihsm::object::Label::from_bytes(spec.label.as_bytes()).map_err(|e| Error::Field {
            path: "label".into(),
            message: e.to_string(),
        })?;
    let exists = !client
        .list_objects(&[Filter::Id(spec.id), Filter::Type(Type::AuthenticationKey)])
        .map_err(device("list objects"))?
        .is_empty();
    if exists {
        return Err(Error::IdExists {
            id: spec.id,
            class: crate::hsm::ObjectClass::AuthKey,
        });
    }
    client
        .put_authentication_key(
            spec.id,
            label,
            spec.domains,
            spec.capabilities,
            spec.delegated,
            authentication::Algorithm::YubicoAes,
            auth_key(password),
        )
        .map_err(device("put authentication key"))?;
    Ok(())
}
