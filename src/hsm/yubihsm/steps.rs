//! The native backend's rules for a planned script, checked before anything is opened:
//! what the crate or the MockHsm cannot do, 16-bit ids and 40-byte labels, and the
//! lock-out check (a rotation must not take away a capability a later step needs).

use yubihsm::Capability;

use super::caps::{self, DeviceOp};
use super::limits::{check_step, NativeStep};
use super::{Error, YubiUri};
use crate::hsm::admin::{PlannedOp, PlannedStep, Refusal};

/// Refuse the first step this device (by its URI) cannot do, naming its field.
pub fn check_plan(uri_rest: &str, steps: &[PlannedStep]) -> Result<(), Refusal> {
    // A URI that does not parse fails when it is opened, with its own message.
    let Ok(uri) = YubiUri::parse(uri_rest) else {
        return Ok(());
    };
    for s in steps {
        let refuse = |field: &str, e: Error| Refusal {
            step: s.index,
            field: field.to_string(),
            message: strip_field(field, &e),
        };
        let native = match &s.op {
            PlannedOp::InitToken => Some(("kind", NativeStep::InitToken)),
            PlannedOp::ChangePin => Some(("kind", NativeStep::ChangePin)),
            PlannedOp::Login { so: true } => Some(("user", NativeStep::SoLogin)),
            PlannedOp::GenerateKey { algorithm } => {
                Some(("algorithm", NativeStep::Generate(*algorithm)))
            }
            PlannedOp::ImportKey { algorithm: Some(a) } => {
                Some(("key-file", NativeStep::Import(*a)))
            }
            _ => None,
        };
        if let Some((field, ns)) = native {
            check_step(&uri, ns).map_err(|e| refuse(field, e))?;
        }
        for (field, id) in &s.names.ids {
            caps::id_from_bytes(id).map_err(|e| refuse(field, e))?;
        }
        for (field, label) in &s.names.labels {
            caps::check_label(field, label).map_err(|e| refuse(field, e))?;
        }
    }
    Ok(())
}

/// The message of a field error without its field prefix (the refusal names the field).
fn strip_field(field: &str, e: &Error) -> String {
    match e {
        Error::Field { message, .. } => message.clone(),
        other => {
            let m = other.to_string();
            m.strip_prefix(&format!("{field}: "))
                .unwrap_or(&m)
                .to_string()
        }
    }
}

/// What one planned step asks of the session's key, for the lock-out check.
enum ScriptOp {
    /// change-auth-key; `Some(caps)` when the replacement gets new capabilities.
    ChangeAuthKey {
        capabilities: Option<Capability>,
    },
    Other(DeviceOp),
}

fn device_ops(op: &PlannedOp) -> Vec<ScriptOp> {
    let one = |d| vec![ScriptOp::Other(d)];
    match op {
        PlannedOp::ChangeAuthKey { capabilities } => vec![ScriptOp::ChangeAuthKey {
            capabilities: capabilities.as_deref().map(caps::bits),
        }],
        PlannedOp::PutAuthKey => one(DeviceOp::PutAuthKey),
        PlannedOp::SetAudit => one(DeviceOp::SetAudit),
        PlannedOp::GenerateKey { algorithm } => one(DeviceOp::GenerateKey {
            rsa: algorithm.is_rsa(),
        }),
        PlannedOp::ImportKey { .. } => one(DeviceOp::ImportKey),
        PlannedOp::PutCertificate | PlannedOp::PutData => one(DeviceOp::PutCertificate),
        PlannedOp::DeleteObject { keys, others } => {
            let mut v = Vec::new();
            if *keys {
                v.push(ScriptOp::Other(DeviceOp::DeleteAsymmetricKey));
            }
            if *others {
                v.push(ScriptOp::Other(DeviceOp::DeleteOpaque));
            }
            v
        }
        _ => vec![],
    }
}

/// Refuse a script whose change-auth-key gives the session's key a capability set that a
/// later step cannot work with. The refusal names the rotating step's `capabilities`.
pub fn check_lockout(steps: &[PlannedStep]) -> Result<(), Refusal> {
    let ops: Vec<(&PlannedStep, ScriptOp)> = steps
        .iter()
        .flat_map(|s| device_ops(&s.op).into_iter().map(move |o| (s, o)))
        .collect();
    for (i, (step, op)) in ops.iter().enumerate() {
        let ScriptOp::ChangeAuthKey {
            capabilities: Some(c),
        } = op
        else {
            continue;
        };
        let mut later = Vec::new();
        for (p, o) in &ops[i + 1..] {
            match o {
                ScriptOp::Other(op) => later.push((p.place.clone(), *op)),
                // the next rotation needs admin capabilities; what follows it is its own
                ScriptOp::ChangeAuthKey { .. } => {
                    later.push((p.place.clone(), DeviceOp::ChangeAuthKey));
                    break;
                }
            }
        }
        // the rotation itself ends by deleting the temporary key with the replacement
        let own = (
            format!("{} (removing its temporary key)", step.place),
            DeviceOp::DeleteAuthKey,
        );
        later.insert(0, own);
        caps::check_no_lockout("capabilities", 0, *c, &later).map_err(|e| Refusal {
            step: step.index,
            field: "capabilities".into(),
            message: strip_field("capabilities", &e).replacen(
                "authentication key 0x0000",
                "the session's key",
                1,
            ),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hsm::admin::Names;
    use crate::keys::KeyAlgorithm;

    fn step(index: usize, id: &str, op: PlannedOp) -> PlannedStep {
        PlannedStep {
            index,
            place: format!("step[{index}] ({id})"),
            op,
            names: Names::default(),
        }
    }

    #[test]
    fn lockout_across_the_script() {
        let steps = vec![
            step(
                1,
                "rotate",
                PlannedOp::ChangeAuthKey {
                    capabilities: Some(vec![
                        "generate-asymmetric-key".into(),
                        "delete-authentication-key".into(),
                    ]),
                },
            ),
            step(
                2,
                "gen",
                PlannedOp::GenerateKey {
                    algorithm: KeyAlgorithm::EcP256,
                },
            ),
            step(3, "operator", PlannedOp::PutAuthKey),
        ];
        let e = check_lockout(&steps).unwrap_err();
        assert_eq!(
            e.to_string(),
            "step[1].capabilities: the session's key would lack put-authentication-key, which step[3] (operator) needs: the ceremony would lock itself out"
        );
        assert!(check_lockout(&steps[..2]).is_ok());
    }

    #[test]
    fn labels_and_ids_have_device_limits() {
        let mut s = step(
            0,
            "gen",
            PlannedOp::GenerateKey {
                algorithm: KeyAlgorithm::EcP256,
            },
        );
        s.names
            .labels
            .push(("label", "x".repeat(41).parse().unwrap()));
        let e = check_plan("mock", std::slice::from_ref(&s)).unwrap_err();
        assert_eq!(e.field, "label");
        assert!(e.message.contains("at most 40"), "{e}");
        s.names.labels.clear();
        s.names
            .ids
            .push(("key-id", crate::hsm::ObjectId::new(vec![1, 2, 3]).unwrap()));
        assert_eq!(check_plan("mock", &[s]).unwrap_err().field, "key-id");
    }
}
