//! The step kinds of a backend with authentication keys or an approval policy:
//! change-auth-key, put-auth-key, set-audit, set-policy. Capability and domain names are
//! validated by `hsm::admin`; whether the chosen backend has them is the plan's check.

use super::fields::{Fail, Fields};
use super::reader::At;
use super::*;

/// The action of an administrative step, or `None` when `kind` is not one of this family.
pub(super) fn parse(f: &mut Fields, kind: &str, at: &At<'_>) -> Result<Option<Action>, Fail> {
    let At { index: i, id, base } = *at;
    Ok(Some(match kind {
        "change-auth-key" => {
            use crate::hsm::admin::{self, AuthKeyFields, AuthKeySpec};
            let native = |e: admin::FieldError| {
                Fail(format!("step[{i}] ({id}).{}: ", e.path), e.message)
            };
            let temp = f.string("temporary-key-id")?;
            let temporary_key_id =
                admin::parse_object_id("temporary-key-id", &temp).map_err(native)?;
            let temporary_password = f.string("temporary-password")?;
            let new_password = f.string("new-password")?;
            let label = f.opt_string("label")?;
            let domains = f.opt_scalar_list("domains")?;
            let capabilities = f.opt_string_list("capabilities")?;
            let delegated = f.opt_string_list("delegated-capabilities")?;
            let replacement = match (label, domains, capabilities, delegated) {
                (None, None, None, None) => None,
                (Some(label), Some(domains), Some(capabilities), delegated) => {
                    let spec = AuthKeySpec::from_fields(&AuthKeyFields {
                        key_id: "ffff".into(),
                        label,
                        domains,
                        capabilities,
                        delegated: delegated.unwrap_or_default(),
                    })
                    .map_err(native)?;
                    Some(spec)
                }
                _ => {
                    return Err(Fail(
                        format!("step[{i}] ({id}): "),
                        "a new label, domains or capabilities for the rotated key need all of label, domains and capabilities (or none: keep the old key's)".into(),
                    ))
                }
            };
            if temporary_password == new_password {
                return Err(f.fail(
                    "new-password",
                    "the temporary and new passwords must be different secrets".into(),
                ));
            }
            Action::ChangeAuthKey(ChangeAuthKey {
                temporary_key_id,
                temporary_password,
                new_password,
                replacement,
            })
        }
        "put-auth-key" => {
            use crate::hsm::admin::{AuthKeyFields, AuthKeySpec};
            let fields = AuthKeyFields {
                key_id: f.string("key-id")?,
                label: f.string("label")?,
                domains: f.opt_scalar_list("domains")?.unwrap_or_default(),
                capabilities: f.opt_string_list("capabilities")?.unwrap_or_default(),
                delegated: f
                    .opt_string_list("delegated-capabilities")?
                    .unwrap_or_default(),
            };
            let spec = AuthKeySpec::from_fields(&fields)
                .map_err(|e| Fail(format!("step[{i}] ({id}).{}: ", e.path), e.message))?;
            Action::PutAuthKey(PutAuthKey {
                spec,
                password: f.string("password")?,
            })
        }
        "set-audit" => Action::SetAudit(SetAudit {
            force: match f.string("force-audit")?.as_str() {
                "on" => true,
                "off" => false,
                other => {
                    return Err(f.fail(
                        "force-audit",
                        format!("{other:?}: expected \"on\" or \"off\" (\"fix\" cannot be undone and is not offered)"),
                    ))
                }
            },
        }),
        "set-policy" => {
            let policy = f.string("policy")?;
            f.check_plain("policy", &policy)?;
            Action::SetPolicy(SetPolicy {
                policy: base.join(policy),
                so_pin: f.opt_string("so-pin")?,
            })
        }
        _ => return Ok(None),
    }))
}
