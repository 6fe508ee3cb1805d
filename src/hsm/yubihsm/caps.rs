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

/// The capability a name from [`CAPABILITY_NAMES`] stands for.
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

/// The device bits of capability names (names from [`crate::hsm::admin::CAPABILITIES`];
/// an unknown name, which the script parser already refused, adds nothing).
pub fn bits(names: &[String]) -> Capability {
    names
        .iter()
        .filter_map(|n| capability_by_name(n))
        .fold(Capability::empty(), |a, c| a | c)
}

/// Domain bits of domain numbers 1–16.
pub fn domain_bits(numbers: &[u8]) -> Domain {
    numbers
        .iter()
        .filter_map(|n| Domain::at(usize::from(*n)).ok())
        .fold(Domain::empty(), |a, d| a | d)
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

/// A backend-neutral authentication key in device terms.
pub fn device_key(spec: &crate::hsm::admin::AuthKeySpec) -> super::DeviceAuthKey {
    super::DeviceAuthKey {
        id: spec.id,
        label: spec.label.clone(),
        domains: domain_bits(&spec.domains),
        capabilities: bits(&spec.capabilities),
        delegated: bits(&spec.delegated),
    }
}

/// A device authentication key in backend-neutral terms.
pub fn neutral_key(k: &super::DeviceAuthKey) -> crate::hsm::admin::AuthKeySpec {
    let names = |c: Capability| {
        capability_names(c)
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    crate::hsm::admin::AuthKeySpec {
        id: k.id,
        label: k.label.clone(),
        domains: domain_numbers(k.domains),
        capabilities: names(k.capabilities),
        delegated: names(k.delegated),
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

/// A device operation a later step performs, for the lock-out check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceOp {
    /// generate-asymmetric-key.
    GenerateKey {
        /// An RSA key (signs with sign-pkcs and sign-pss, not sign-ecdsa).
        rsa: bool,
    },
    /// put-asymmetric-key.
    ImportKey,
    /// put-opaque (a certificate or data).
    PutCertificate,
    /// Read a public key (no capability needed).
    ExportPublicKey,
    /// sign-ecdsa.
    SignEcdsa,
    /// sign-pkcs.
    SignPkcs1,
    /// put-authentication-key.
    PutAuthKey,
    /// delete-authentication-key.
    DeleteAuthKey,
    /// A rotation: put and delete authentication keys.
    ChangeAuthKey,
    /// delete-asymmetric-key.
    DeleteAsymmetricKey,
    /// delete-opaque.
    DeleteOpaque,
    /// set-option (force-audit).
    SetAudit,
    /// get-log-entries.
    ReadAuditLog,
}

impl DeviceOp {
    /// The capabilities the session's authentication key needs for this operation.
    pub fn needs(self) -> Capability {
        match self {
            DeviceOp::GenerateKey { .. } => Capability::GENERATE_ASYMMETRIC_KEY,
            DeviceOp::ImportKey => Capability::PUT_ASYMMETRIC_KEY,
            DeviceOp::PutCertificate => Capability::PUT_OPAQUE,
            DeviceOp::ExportPublicKey => Capability::empty(),
            DeviceOp::SignEcdsa => Capability::SIGN_ECDSA,
            DeviceOp::SignPkcs1 => Capability::SIGN_PKCS,
            DeviceOp::PutAuthKey => Capability::PUT_AUTHENTICATION_KEY,
            DeviceOp::DeleteAuthKey => Capability::DELETE_AUTHENTICATION_KEY,
            // Safe rotation puts a temporary key, deletes the old, puts the replacement.
            DeviceOp::ChangeAuthKey => admin_capabilities(),
            DeviceOp::DeleteAsymmetricKey => Capability::DELETE_ASYMMETRIC_KEY,
            DeviceOp::DeleteOpaque => Capability::DELETE_OPAQUE,
            DeviceOp::SetAudit => Capability::PUT_OPTION,
            DeviceOp::ReadAuditLog => Capability::GET_LOG_ENTRIES,
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
    later: &[(String, DeviceOp)],
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
    fn the_device_table_is_the_neutral_vocabulary() {
        let ours: Vec<&str> = CAPABILITY_NAMES.iter().map(|(n, _)| *n).collect();
        assert_eq!(ours, crate::hsm::admin::CAPABILITIES.to_vec());
        let all = CAPABILITY_NAMES
            .iter()
            .fold(Capability::empty(), |a, (_, c)| {
                assert!(!a.contains(*c), "two names for one bit");
                a | *c
            });
        let spec = crate::hsm::admin::AuthKeySpec {
            id: 2,
            label: "op".into(),
            domains: vec![1, 16],
            capabilities: s(&["put-authentication-key", "sign-ecdsa"]),
            delegated: crate::hsm::admin::CAPABILITIES
                .iter()
                .map(|c| c.to_string())
                .collect(),
        };
        let dev = device_key(&spec);
        assert_eq!(dev.delegated, all);
        assert_eq!(neutral_key(&dev), spec);
    }

    #[test]
    fn ids_and_labels() {
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
        let later = vec![("step[5] (put-auth-key)".to_string(), DeviceOp::PutAuthKey)];
        let e = check_no_lockout("step[2].capabilities", 1, Capability::SIGN_ECDSA, &later)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "step[2].capabilities: authentication key 0x0001 would lack put-authentication-key, which step[5] (put-auth-key) needs: the ceremony would lock itself out"
        );
        assert!(check_no_lockout("c", 1, admin_capabilities(), &later).is_ok());
    }
}
