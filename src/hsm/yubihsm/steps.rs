//! The native step kinds' fields as a script gives them, validated into device terms
//! before anything is opened (errors carry the field path within the step), and the
//! lock-out check over a whole script.

use yubihsm::Capability;

use super::admin::AuthKeySpec;
use super::caps::{self, PlannedOp};
use super::Error;

/// put-auth-key's fields (and change-auth-key's optional replacement fields).
#[derive(Clone, Debug, Default)]
pub struct AuthKeyFields {
    pub key_id: String,
    pub label: String,
    pub domains: Vec<String>,
    pub capabilities: Vec<String>,
    pub delegated: Vec<String>,
}

/// Validate put-auth-key's fields: `key-id`, `label`, `domains`, `capabilities`,
/// `delegated-capabilities`.
pub fn auth_key_spec(f: &AuthKeyFields) -> Result<AuthKeySpec, Error> {
    Ok(AuthKeySpec {
        id: caps::parse_object_id("key-id", &f.key_id)?,
        label: {
            caps::check_label("label", &f.label)?;
            f.label.clone()
        },
        domains: caps::parse_domains("domains", &f.domains)?,
        capabilities: caps::parse_capabilities("capabilities", &f.capabilities)?,
        delegated: caps::parse_capabilities("delegated-capabilities", &f.delegated)?,
    })
}

/// What one script step does on the native path, for [`check_lockout`].
#[derive(Clone, Debug)]
pub enum ScriptOp {
    /// change-auth-key; `Some(caps)` when the replacement gets new capabilities.
    ChangeAuthKey {
        capabilities: Option<Capability>,
    },
    Other(PlannedOp),
}

/// Refuse a script whose change-auth-key gives the session's key a capability set that a
/// later step cannot work with. `ops` pairs each step's place (`step[3] (rotate)`) with
/// what it does. The error names the rotating step's `capabilities` field.
pub fn check_lockout(ops: &[(String, ScriptOp)]) -> Result<(), Error> {
    for (i, (place, op)) in ops.iter().enumerate() {
        let ScriptOp::ChangeAuthKey {
            capabilities: Some(c),
        } = op
        else {
            continue;
        };
        let mut later = Vec::new();
        for (p, o) in &ops[i + 1..] {
            match o {
                ScriptOp::Other(op) => later.push((p.clone(), *op)),
                // the next rotation needs admin capabilities; what follows it is its own
                ScriptOp::ChangeAuthKey { .. } => {
                    later.push((p.clone(), PlannedOp::ChangeAuthKey));
                    break;
                }
            }
        }
        // the rotation itself ends by deleting the temporary key with the replacement
        let own = (
            format!("{place} (removing its temporary key)"),
            PlannedOp::DeleteAuthKey,
        );
        later.insert(0, own);
        caps::check_no_lockout(&format!("{place}.capabilities"), 0, *c, &later).map_err(
            |e| match e {
                Error::Field { path, message } => Error::Field {
                    path,
                    message: message.replacen("authentication key 0x0000", "the session's key", 1),
                },
                other => other,
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn fields_validate_with_paths() {
        let mut f = AuthKeyFields {
            key_id: "0002".into(),
            label: "operator".into(),
            domains: s(&["1"]),
            capabilities: s(&["sign-ecdsa", "get-opaque", "sign-foo"]),
            delegated: vec![],
        };
        assert_eq!(
            auth_key_spec(&f)
                .unwrap_err()
                .to_string()
                .split(" (names")
                .next()
                .unwrap(),
            "capabilities[2]: unknown capability \"sign-foo\""
        );
        f.capabilities.pop();
        let spec = auth_key_spec(&f).unwrap();
        assert_eq!(spec.id, 2);
        f.domains = s(&["0"]);
        assert_eq!(
            auth_key_spec(&f).unwrap_err().to_string(),
            "domains[0]: domain 0 is out of range (1-16)"
        );
        f.domains = s(&["1"]);
        f.key_id = "10000".into();
        assert!(auth_key_spec(&f)
            .unwrap_err()
            .to_string()
            .starts_with("key-id: "));
    }

    #[test]
    fn lockout_across_the_script() {
        let ops = vec![
            (
                "step[1] (rotate)".to_string(),
                ScriptOp::ChangeAuthKey {
                    capabilities: Some(
                        Capability::DELETE_AUTHENTICATION_KEY | Capability::GENERATE_ASYMMETRIC_KEY,
                    ),
                },
            ),
            (
                "step[2] (gen)".to_string(),
                ScriptOp::Other(PlannedOp::GenerateKey { rsa: false }),
            ),
            (
                "step[3] (operator)".to_string(),
                ScriptOp::Other(PlannedOp::PutAuthKey),
            ),
        ];
        let e = check_lockout(&ops).unwrap_err().to_string();
        assert_eq!(
            e,
            "step[1] (rotate).capabilities: the session's key would lack put-authentication-key, which step[3] (operator) needs: the ceremony would lock itself out"
        );
        assert!(check_lockout(&ops[..2]).is_ok());
    }
}
