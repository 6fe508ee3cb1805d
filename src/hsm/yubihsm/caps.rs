//! Capability and domain names as scripts write them (yubihsm-shell's spelling), object
//! ids and labels, all validated with field-path errors before the device is touched; and
//! the lock-out checker the planner calls with the operations still to come.

use yubihsm::{Capability, Domain};

use super::Error;

/// Every capability by the name yubihsm-shell and Yubico's documentation use.
pub const CAPABILITY_NAMES: &[(&str, Capability)] = &[
    ("get-opaque", Capability::GET_OPAQUE),
    ("put-opaque", Capability::PUT_OPAQUE),
    ("put-authentication-key", Capability::PUT_AUTHENTICATION_KEY),
    ("put-asymmetric-key", Capability::PUT_ASYMMETRIC_KEY),
    (
        "generate-asymmetric-key",
        Capability::GENERATE_ASYMMETRIC_KEY,
    ),
    ("sign-pkcs", Capability::SIGN_PKCS),
    ("sign-pss", Capability::SIGN_PSS),
    ("sign-ecdsa", Capability::SIGN_ECDSA),
    ("sign-eddsa", Capability::SIGN_EDDSA),
    ("decrypt-pkcs", Capability::DECRYPT_PKCS),
    ("decrypt-oaep", Capability::DECRYPT_OAEP),
    ("derive-ecdh", Capability::DERIVE_ECDH),
    ("export-wrapped", Capability::EXPORT_WRAPPED),
    ("import-wrapped", Capability::IMPORT_WRAPPED),
    ("put-wrap-key", Capability::PUT_WRAP_KEY),
    ("generate-wrap-key", Capability::GENERATE_WRAP_KEY),
    ("exportable-under-wrap", Capability::EXPORTABLE_UNDER_WRAP),
    ("set-option", Capability::PUT_OPTION),
    ("get-option", Capability::GET_OPTION),
    ("get-pseudo-random", Capability::GET_PSEUDO_RANDOM),
    ("put-mac-key", Capability::PUT_HMAC_KEY),
    ("generate-hmac-key", Capability::GENERATE_HMAC_KEY),
    ("sign-hmac", Capability::SIGN_HMAC),
    ("verify-hmac", Capability::VERIFY_HMAC),
    ("get-log-entries", Capability::GET_LOG_ENTRIES),
    ("sign-ssh-certificate", Capability::SIGN_SSH_CERTIFICATE),
    ("get-template", Capability::GET_TEMPLATE),
    ("put-template", Capability::PUT_TEMPLATE),
    ("reset-device", Capability::RESET_DEVICE),
    ("decrypt-otp", Capability::DECRYPT_OTP),
    ("create-otp-aead", Capability::CREATE_OTP_AEAD),
    ("randomize-otp-aead", Capability::RANDOMIZE_OTP_AEAD),
    (
        "rewrap-from-otp-aead-key",
        Capability::REWRAP_FROM_OTP_AEAD_KEY,
    ),
    ("rewrap-to-otp-aead-key", Capability::REWRAP_TO_OTP_AEAD_KEY),
    (
        "sign-attestation-certificate",
        Capability::SIGN_ATTESTATION_CERTIFICATE,
    ),
    ("put-otp-aead-key", Capability::PUT_OTP_AEAD_KEY),
    ("generate-otp-aead-key", Capability::GENERATE_OTP_AEAD_KEY),
    ("wrap-data", Capability::WRAP_DATA),
    ("unwrap-data", Capability::UNWRAP_DATA),
    ("delete-opaque", Capability::DELETE_OPAQUE),
    (
        "delete-authentication-key",
        Capability::DELETE_AUTHENTICATION_KEY,
    ),
    ("delete-asymmetric-key", Capability::DELETE_ASYMMETRIC_KEY),
    ("delete-wrap-key", Capability::DELETE_WRAP_KEY),
    ("delete-hmac-key", Capability::DELETE_HMAC_KEY),
    ("delete-template", Capability::DELETE_TEMPLATE),
    ("delete-otp-aead-key", Capability::DELETE_OTP_AEAD_KEY),
    (
        "change-authentication-key",
        Capability::CHANGE_AUTHENTICATION_KEY,
    ),
];

/// What a key needs to manage authentication keys (the "administrative" key).
pub fn admin_capabilities() -> Capability {
    Capability::PUT_AUTHENTICATION_KEY | Capability::DELETE_AUTHENTICATION_KEY
}

pub fn capability_by_name(name: &str) -> Option<Capability> {
    CAPABILITY_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

/// Names of the capabilities in `caps`, in table order (unknown bits are not named).
pub fn capability_names(caps: Capability) -> Vec<&'static str> {
    CAPABILITY_NAMES
        .iter()
        .filter(|(_, c)| caps.contains(*c))
        .map(|(n, _)| *n)
        .collect()
}

/// Parse capability names; `field` is the script path (`step[3].capabilities`).
/// `"all"` alone means every named capability.
pub fn parse_capabilities(field: &str, names: &[String]) -> Result<Capability, Error> {
    if names.len() == 1 && names[0] == "all" {
        return Ok(CAPABILITY_NAMES
            .iter()
            .fold(Capability::empty(), |a, (_, c)| a | *c));
    }
    let mut caps = Capability::empty();
    for (i, n) in names.iter().enumerate() {
        let c = capability_by_name(n).ok_or_else(|| Error::Field {
            path: format!("{field}[{i}]"),
            message: format!("unknown capability {n:?} (names as yubihsm-shell spells them, e.g. \"sign-ecdsa\")"),
        })?;
        if caps.contains(c) {
            return Err(Error::Field {
                path: format!("{field}[{i}]"),
                message: format!("capability {n:?} is listed twice"),
            });
        }
        caps |= c;
    }
    Ok(caps)
}

/// Parse domain numbers 1–16 (`"all"` alone means 1–16). At least one domain is needed.
pub fn parse_domains(field: &str, domains: &[String]) -> Result<Domain, Error> {
    if domains.is_empty() {
        return Err(Error::Field {
            path: field.to_string(),
            message: "at least one domain (1-16) is needed".into(),
        });
    }
    if domains.len() == 1 && domains[0] == "all" {
        return Ok(Domain::all());
    }
    let mut out = Domain::empty();
    for (i, d) in domains.iter().enumerate() {
        let n: usize = d.trim().parse().map_err(|_| Error::Field {
            path: format!("{field}[{i}]"),
            message: format!("domain {d:?} is not a number 1-16"),
        })?;
        let dom = Domain::at(n).map_err(|_| Error::Field {
            path: format!("{field}[{i}]"),
            message: format!("domain {n} is out of range (1-16)"),
        })?;
        if out.contains(dom) {
            return Err(Error::Field {
                path: format!("{field}[{i}]"),
                message: format!("domain {n} is listed twice"),
            });
        }
        out |= dom;
    }
    Ok(out)
}

/// Domain numbers (1-16) in `d`.
pub fn domain_numbers(d: Domain) -> Vec<u8> {
    (1..=16u8)
        .filter(|n| {
            Domain::at(usize::from(*n))
                .map(|x| d.contains(x))
                .unwrap_or(false)
        })
        .collect()
}

/// An object id as a script writes it: hex (`"0x1002"`, `"1002"`, as pkcs11-tool's
/// `--id` and CST's labels do). 0 asks the device to choose and is refused: a ceremony
/// names its ids.
pub fn parse_object_id(field: &str, text: &str) -> Result<u16, Error> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let id = if !t.is_empty() && t.len() <= 4 && t.chars().all(|c| c.is_ascii_hexdigit()) {
        u16::from_str_radix(t, 16).ok()
    } else {
        None
    };
    match id {
        Some(0) => Err(Error::Field {
            path: field.to_string(),
            message: "object id 0 lets the device choose; give an id 0x0001-0xffff".into(),
        }),
        Some(id) => Ok(id),
        None => Err(Error::Field {
            path: field.to_string(),
            message: format!("object id {text:?} is not 1-4 hex digits (0x0001-0xffff)"),
        }),
    }
}

/// The Token trait's `id: &[u8]` (CKA_ID style) as a 16-bit YubiHSM object id.
pub fn id_from_bytes(id: &[u8]) -> Result<u16, Error> {
    let v = match id {
        [b] => u16::from(*b),
        [hi, lo] => u16::from_be_bytes([*hi, *lo]),
        _ => {
            return Err(Error::Field {
                path: "id".into(),
                message: format!(
                    "YubiHSM object ids are 16-bit: give 1 or 2 bytes, not {}",
                    id.len()
                ),
            })
        }
    };
    if v == 0 {
        return Err(Error::Field {
            path: "id".into(),
            message: "object id 0 lets the device choose; give an id 0x0001-0xffff".into(),
        });
    }
    Ok(v)
}

/// YubiHSM labels are at most 40 bytes of UTF-8.
pub fn check_label(field: &str, label: &str) -> Result<(), Error> {
    if label.len() > yubihsm::object::LABEL_SIZE {
        return Err(Error::Field {
            path: field.to_string(),
            message: format!(
                "label {label:?} is {} bytes; a YubiHSM label holds at most {}",
                label.len(),
                yubihsm::object::LABEL_SIZE
            ),
        });
    }
    if label.contains('\0') {
        return Err(Error::Field {
            path: field.to_string(),
            message: "label contains a NUL byte".into(),
        });
    }
    Ok(())
}

/// An operation a later ceremony step performs on the native path, for the lock-out check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlannedOp {
    GenerateKey { rsa: bool },
    ImportKey,
    PutCertificate,
    ExportPublicKey,
    SignEcdsa,
    SignPkcs1,
    PutAuthKey,
    DeleteAuthKey,
    ChangeAuthKey,
    DeleteAsymmetricKey,
    DeleteOpaque,
    SetAudit,
    ReadAuditLog,
}

impl PlannedOp {
    /// The capabilities the session's authentication key needs for this operation.
    pub fn needs(self) -> Capability {
        match self {
            PlannedOp::GenerateKey { .. } => Capability::GENERATE_ASYMMETRIC_KEY,
            PlannedOp::ImportKey => Capability::PUT_ASYMMETRIC_KEY,
            PlannedOp::PutCertificate => Capability::PUT_OPAQUE,
            PlannedOp::ExportPublicKey => Capability::empty(),
            PlannedOp::SignEcdsa => Capability::SIGN_ECDSA,
            PlannedOp::SignPkcs1 => Capability::SIGN_PKCS,
            PlannedOp::PutAuthKey => Capability::PUT_AUTHENTICATION_KEY,
            PlannedOp::DeleteAuthKey => Capability::DELETE_AUTHENTICATION_KEY,
            // Safe rotation puts a temporary key, deletes the old, puts the replacement.
            PlannedOp::ChangeAuthKey => admin_capabilities(),
            PlannedOp::DeleteAsymmetricKey => Capability::DELETE_ASYMMETRIC_KEY,
            PlannedOp::DeleteOpaque => Capability::DELETE_OPAQUE,
            PlannedOp::SetAudit => Capability::PUT_OPTION,
            PlannedOp::ReadAuditLog => Capability::GET_LOG_ENTRIES,
        }
    }
}

/// Refuse a capability set for the ceremony's own session key (`field` is the step's
/// field path) when a later step needs a capability it would no longer have.
/// `later` pairs each later step's name (`step[5] (put-auth-key)`) with its operation.
pub fn check_no_lockout(
    field: &str,
    key_id: u16,
    caps: Capability,
    later: &[(String, PlannedOp)],
) -> Result<(), Error> {
    for (step, op) in later {
        let missing = op.needs() - caps;
        if !missing.is_empty() {
            return Err(Error::Field {
                path: field.to_string(),
                message: format!(
                    "authentication key 0x{key_id:04x} would lack {}, which {step} needs: the ceremony would lock itself out",
                    capability_names(missing).join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// A new authentication key may only get capabilities the session key may delegate.
pub fn check_delegation(
    field: &str,
    session_key: u16,
    session_delegated: Capability,
    wanted: Capability,
) -> Result<(), Error> {
    let missing = wanted - session_delegated;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Field {
            path: field.to_string(),
            message: format!(
                "authentication key 0x{session_key:04x} cannot delegate {}",
                capability_names(missing).join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn unknown_capability_names_its_index() {
        let e = parse_capabilities(
            "step[3].capabilities",
            &s(&["sign-ecdsa", "get-opaque", "sign-foo"]),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string()
                .lines()
                .next()
                .unwrap()
                .split(" (names")
                .next()
                .unwrap(),
            "step[3].capabilities[2]: unknown capability \"sign-foo\""
        );
    }

    #[test]
    fn names_round_trip() {
        let c = parse_capabilities("c", &s(&["sign-ecdsa", "put-authentication-key"])).unwrap();
        assert_eq!(
            capability_names(c),
            vec!["put-authentication-key", "sign-ecdsa"]
        );
        assert_eq!(CAPABILITY_NAMES.len(), 47);
    }

    #[test]
    fn domains_validated() {
        assert_eq!(
            domain_numbers(parse_domains("d", &s(&["1", "16"])).unwrap()),
            vec![1, 16]
        );
        let e = parse_domains("step[1].domains", &s(&["1", "17"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "step[1].domains[1]: domain 17 is out of range (1-16)"
        );
        assert!(parse_domains("d", &[]).is_err());
        assert!(parse_domains("d", &s(&["2", "2"])).is_err());
    }

    #[test]
    fn ids_and_labels() {
        assert_eq!(parse_object_id("k", "1002").unwrap(), 0x1002);
        assert_eq!(parse_object_id("k", "0xffff").unwrap(), 0xffff);
        assert!(parse_object_id("k", "10000").is_err());
        assert!(parse_object_id("k", "0").is_err());
        assert_eq!(id_from_bytes(&[0x10, 0x02]).unwrap(), 0x1002);
        assert_eq!(id_from_bytes(&[7]).unwrap(), 7);
        assert!(id_from_bytes(&[1, 2, 3]).is_err());
        assert!(id_from_bytes(&[]).is_err());
        assert!(check_label("l", &"x".repeat(40)).is_ok());
        let e = check_label("step[2].label", &"x".repeat(41)).unwrap_err();
        assert!(e.to_string().starts_with("step[2].label: label"), "{e}");
    }

    #[test]
    fn lockout_refused() {
        let later = vec![("step[5] (put-auth-key)".to_string(), PlannedOp::PutAuthKey)];
        let e = check_no_lockout("step[2].capabilities", 1, Capability::SIGN_ECDSA, &later)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "step[2].capabilities: authentication key 0x0001 would lack put-authentication-key, which step[5] (put-auth-key) needs: the ceremony would lock itself out"
        );
        assert!(check_no_lockout("c", 1, admin_capabilities(), &later).is_ok());
    }
}
