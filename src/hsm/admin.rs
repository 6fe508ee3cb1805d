//! Administrative operations some backends have (the YubiHSM 2 native one today), in
//! backend-neutral terms: authentication keys with capabilities and domains, their safe
//! rotation, the device's own audit log, and the operations a script plans, which a
//! backend checks against its own rules before anything is opened.
//!
//! Nothing here knows a backend: capabilities are names (yubihsm-shell's spelling is the
//! vocabulary), domains are numbers. A backend maps them to its own terms and refuses,
//! through [`super::Capabilities`] and [`super::check_plan`], what it cannot do.

use std::fmt;

use super::{Label, ObjectId};
use crate::keys::{KeyAlgorithm, SignScheme};
use crate::secret::Secret;

/// Every authentication-key capability, by the name yubihsm-shell and Yubico's
/// documentation give it. A script names capabilities from this list only.
pub const CAPABILITIES: [&str; 47] = [
    "get-opaque",
    "put-opaque",
    "put-authentication-key",
    "put-asymmetric-key",
    "generate-asymmetric-key",
    "sign-pkcs",
    "sign-pss",
    "sign-ecdsa",
    "sign-eddsa",
    "decrypt-pkcs",
    "decrypt-oaep",
    "derive-ecdh",
    "export-wrapped",
    "import-wrapped",
    "put-wrap-key",
    "generate-wrap-key",
    "exportable-under-wrap",
    "set-option",
    "get-option",
    "get-pseudo-random",
    "put-mac-key",
    "generate-hmac-key",
    "sign-hmac",
    "verify-hmac",
    "get-log-entries",
    "sign-ssh-certificate",
    "get-template",
    "put-template",
    "reset-device",
    "decrypt-otp",
    "create-otp-aead",
    "randomize-otp-aead",
    "rewrap-from-otp-aead-key",
    "rewrap-to-otp-aead-key",
    "sign-attestation-certificate",
    "put-otp-aead-key",
    "generate-otp-aead-key",
    "wrap-data",
    "unwrap-data",
    "delete-opaque",
    "delete-authentication-key",
    "delete-asymmetric-key",
    "delete-wrap-key",
    "delete-hmac-key",
    "delete-template",
    "delete-otp-aead-key",
    "change-authentication-key",
];

/// A field of a script (or command line) that does not hold a valid value; `path` is the
/// field path within the step (`capabilities[2]`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// The field (`capabilities[2]`), relative to the step.
    pub path: String,
    /// What is wrong with its value.
    pub message: String,
}

fn field(path: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        path: path.into(),
        message: message.into(),
    }
}

/// Capability names, in vocabulary order. `"all"` alone means every capability.
pub fn parse_capabilities(path: &str, names: &[String]) -> Result<Vec<String>, FieldError> {
    if names.len() == 1 && names[0] == "all" {
        return Ok(CAPABILITIES.iter().map(|c| c.to_string()).collect());
    }
    let mut seen = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        if !CAPABILITIES.contains(&n.as_str()) {
            return Err(field(
                format!("{path}[{i}]"),
                format!("unknown capability {n:?} (names as yubihsm-shell spells them, e.g. \"sign-ecdsa\")"),
            ));
        }
        if seen.contains(n) {
            return Err(field(
                format!("{path}[{i}]"),
                format!("capability {n:?} is listed twice"),
            ));
        }
        seen.push(n.clone());
    }
    Ok(CAPABILITIES
        .iter()
        .filter(|c| seen.iter().any(|s| s == *c))
        .map(|c| c.to_string())
        .collect())
}

/// Domain numbers 1–16, sorted (`"all"` alone means 1–16). At least one is needed.
pub fn parse_domains(path: &str, domains: &[String]) -> Result<Vec<u8>, FieldError> {
    if domains.is_empty() {
        return Err(field(path, "at least one domain (1-16) is needed"));
    }
    if domains.len() == 1 && domains[0] == "all" {
        return Ok((1..=16).collect());
    }
    let mut out: Vec<u8> = Vec::with_capacity(domains.len());
    for (i, d) in domains.iter().enumerate() {
        let n: u8 = d.trim().parse().map_err(|_| {
            field(
                format!("{path}[{i}]"),
                format!("domain {d:?} is not a number 1-16"),
            )
        })?;
        if !(1..=16).contains(&n) {
            return Err(field(
                format!("{path}[{i}]"),
                format!("domain {n} is out of range (1-16)"),
            ));
        }
        if out.contains(&n) {
            return Err(field(
                format!("{path}[{i}]"),
                format!("domain {n} is listed twice"),
            ));
        }
        out.push(n);
    }
    out.sort_unstable();
    Ok(out)
}

/// A 16-bit object id as a script writes it: hex (`"0x1002"`, `"1002"`). 0 asks the
/// device to choose and is refused: a ceremony names its ids.
pub fn parse_object_id(path: &str, text: &str) -> Result<u16, FieldError> {
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
        Some(0) => Err(field(
            path,
            "object id 0 lets the device choose; give an id 0x0001-0xffff",
        )),
        Some(id) => Ok(id),
        None => Err(field(
            path,
            format!("object id {text:?} is not 1-4 hex digits (0x0001-0xffff)"),
        )),
    }
}

/// An authentication key: who may do what, in which domains.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthKeySpec {
    /// Its 16-bit object id (1 to 0xffff).
    pub id: u16,
    /// Its label (a YubiHSM holds 40 bytes).
    pub label: String,
    /// Domain numbers 1–16, sorted.
    pub domains: Vec<u8>,
    /// Capability names, in [`CAPABILITIES`] order.
    pub capabilities: Vec<String>,
    /// The capabilities keys it puts may be given, in [`CAPABILITIES`] order.
    pub delegated: Vec<String>,
}

/// put-auth-key's fields as a script gives them (and change-auth-key's replacement).
#[derive(Clone, Debug, Default)]
pub struct AuthKeyFields {
    /// `key-id`: hex, `0x` optional.
    pub key_id: String,
    /// `label`.
    pub label: String,
    /// `domains`: numbers 1-16, or `"all"`.
    pub domains: Vec<String>,
    /// `capabilities`: names from [`CAPABILITIES`], or `"all"`.
    pub capabilities: Vec<String>,
    /// `delegated-capabilities`: as `capabilities`.
    pub delegated: Vec<String>,
}

impl AuthKeySpec {
    /// Validate the fields `key-id`, `label`, `domains`, `capabilities`,
    /// `delegated-capabilities` (backend limits, such as a label's length, are the
    /// backend's to check).
    pub fn from_fields(f: &AuthKeyFields) -> Result<Self, FieldError> {
        if f.label.is_empty() {
            return Err(field("label", "an authentication key needs a label"));
        }
        Ok(AuthKeySpec {
            id: parse_object_id("key-id", &f.key_id)?,
            label: f.label.clone(),
            domains: parse_domains("domains", &f.domains)?,
            capabilities: parse_capabilities("capabilities", &f.capabilities)?,
            delegated: parse_capabilities("delegated-capabilities", &f.delegated)?,
        })
    }

    /// Domains and capabilities by name, for the transcript's object line.
    pub fn summary(&self) -> String {
        let names = |c: &[String]| {
            if c.len() == CAPABILITIES.len() {
                "all".to_string()
            } else {
                format!("[{}]", c.join(", "))
            }
        };
        let domains = if self.domains.len() == 16 {
            "all".to_string()
        } else {
            format!("{:?}", self.domains)
        };
        format!(
            "domains {domains}; capabilities {}; delegated {}",
            names(&self.capabilities),
            names(&self.delegated)
        )
    }

    /// Whether the key has `capability` (a name from [`CAPABILITIES`]).
    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

/// A safe rotation of the session's own authentication key through a temporary key.
pub struct Rotation<'a> {
    /// A free id for the temporary key.
    pub temp_id: u16,
    /// The temporary key's password (it is deleted at the end).
    pub temp_password: &'a Secret,
    /// The rotated key's new password.
    pub new_password: &'a Secret,
    /// Label, domains and capabilities of the replacement; `None` keeps the old key's.
    pub replacement: Option<AuthKeySpec>,
}

/// One recorded sub-step of an operation made of several device calls (a rotation).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubStep {
    /// What was done ("put temporary key").
    pub step: String,
    /// The authentication key it concerned.
    pub key_id: u16,
    /// It succeeded.
    pub ok: bool,
    /// "ok", or the one-line cause.
    pub detail: String,
}

/// One entry of a device's own audit log. Each entry's digest chains the one before.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// The entry's number in the device's log (wraps at 65535).
    pub item: u16,
    /// The command, by name.
    pub command: String,
    /// The command's length in bytes.
    pub length: u16,
    /// The authentication key of the session that sent it.
    pub session_key: u16,
    /// The object it acted on.
    pub target_key: u16,
    /// A second object it involved (a wrap key), or 0.
    pub second_key: u16,
    /// The device's answer, by name.
    pub result: String,
    /// The device's clock tick when it ran (not a time of day).
    pub tick: u32,
    /// Truncated SHA-256 chaining this entry to the one before (hex).
    pub digest: String,
    /// The 32 bytes as the device sent them (hex): what the digest chain is checked
    /// over. Empty in transcripts written before it was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub raw: String,
}

/// Length of a YubiHSM log entry, in bytes.
pub const LOG_ENTRY_LEN: usize = 32;
/// Length of a YubiHSM log entry's truncated digest, in bytes.
pub const LOG_DIGEST_LEN: usize = 16;

/// A YubiHSM log entry's digest: the first 16 bytes of SHA-256 over the entry's first 16
/// bytes (item, command, length, session key, target key, second key, result, tick, all
/// big-endian) and the previous entry's digest (Yubico's `yh_verify_logs`).
pub fn log_digest(fields: &[u8], prev: &[u8]) -> [u8; LOG_DIGEST_LEN] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(fields);
    h.update(prev);
    let mut out = [0u8; LOG_DIGEST_LEN];
    out.copy_from_slice(&h.finalize()[..LOG_DIGEST_LEN]);
    out
}

impl AuditEntry {
    /// The device's bytes of this entry, checked against the fields shown beside them.
    pub fn raw_bytes(&self) -> Result<[u8; LOG_ENTRY_LEN], String> {
        let raw: [u8; LOG_ENTRY_LEN] = hex::decode(&self.raw)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                format!(
                    "item {}: raw entry is not {LOG_ENTRY_LEN} bytes of hex",
                    self.item
                )
            })?;
        let be16 = |at: usize| u16::from_be_bytes([raw[at], raw[at + 1]]);
        let tick = u32::from_be_bytes([raw[12], raw[13], raw[14], raw[15]]);
        let same = be16(0) == self.item
            && be16(3) == self.length
            && be16(5) == self.session_key
            && be16(7) == self.target_key
            && be16(9) == self.second_key
            && tick == self.tick
            && hex::encode(&raw[16..]) == self.digest.to_ascii_lowercase();
        if !same {
            return Err(format!(
                "item {}: the fields shown differ from the device's bytes",
                self.item
            ));
        }
        Ok(raw)
    }
}

/// The device audit log as read after a step.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditReport {
    /// Boots the log could not record (it was full).
    pub unlogged_boot_events: u16,
    /// Logins the log could not record (it was full).
    pub unlogged_auth_events: u16,
    /// The entries, oldest first, each chained to the one before.
    pub entries: Vec<AuditEntry>,
    /// Set when the log cannot be evidence (a test double keeps none).
    pub note: Option<String>,
}

/// A token operation a script plans, as a backend's rules see it before anything is
/// opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlannedOp {
    /// init-token.
    InitToken,
    /// change-pin.
    ChangePin,
    /// A login.
    Login {
        /// As the security officer.
        so: bool,
    },
    /// A key pair generated.
    GenerateKey {
        /// Its algorithm.
        algorithm: KeyAlgorithm,
    },
    /// `None`: the key file could not be read yet (the step reports that itself).
    ImportKey {
        /// The file key's algorithm.
        algorithm: Option<KeyAlgorithm>,
    },
    /// A certificate stored.
    PutCertificate,
    /// A data object stored.
    PutData,
    /// Objects deleted by label.
    DeleteObject {
        /// Key objects among them.
        keys: bool,
        /// Certificates or data among them.
        others: bool,
    },
    /// A public key read.
    ExportPublicKey,
    /// A signature made on the token.
    Sign {
        /// The key's algorithm.
        algorithm: KeyAlgorithm,
        /// The signature scheme.
        scheme: SignScheme,
    },
    /// An authentication key put.
    PutAuthKey,
    /// `Some`: the rotated key gets these capabilities.
    ChangeAuthKey {
        /// Capability names of the replacement, when it gets new ones.
        capabilities: Option<Vec<String>>,
    },
    /// The force-audit option set.
    SetAudit,
    /// The device's audit log read as evidence.
    ReadAuditLog,
    /// Touches no token.
    None,
}

/// What a planned step names on the token, with the field that names it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// (field, label) of each object the step makes.
    pub labels: Vec<(&'static str, Label)>,
    /// (field, id) of each object the step makes.
    pub ids: Vec<(&'static str, ObjectId)>,
}

/// One step of a plan: its place in the script (`step[3] (gen-srk1)`), what it does and
/// what it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    /// The step's index in the script.
    pub index: usize,
    /// `step[3] (gen-srk1)`, for messages.
    pub place: String,
    /// What it does on the token.
    pub op: PlannedOp,
    /// What it names there.
    pub names: Names,
}

/// A backend's refusal of a planned step, naming the step and the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The step's index in the script.
    pub step: usize,
    /// The field within the step (`kind`, `label`, `key-id`, `capabilities` …).
    pub field: String,
    /// Why, in one line (names the way that works where there is one).
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step[{}].{}: {}", self.step, self.field, self.message)
    }
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
        let e = AuthKeySpec::from_fields(&f).unwrap_err().to_string();
        assert!(
            e.starts_with("capabilities[2]: unknown capability \"sign-foo\""),
            "{e}"
        );
        f.capabilities.pop();
        let spec = AuthKeySpec::from_fields(&f).unwrap();
        assert_eq!(spec.id, 2);
        // vocabulary order, whatever the script's order
        assert_eq!(spec.capabilities, s(&["get-opaque", "sign-ecdsa"]));
        f.domains = s(&["0"]);
        assert_eq!(
            AuthKeySpec::from_fields(&f).unwrap_err().to_string(),
            "domains[0]: domain 0 is out of range (1-16)"
        );
        f.domains = s(&["1"]);
        f.key_id = "10000".into();
        assert!(AuthKeySpec::from_fields(&f)
            .unwrap_err()
            .to_string()
            .starts_with("key-id: "));
    }

    #[test]
    fn all_means_every_capability_and_domain() {
        assert_eq!(
            parse_capabilities("c", &s(&["all"])).unwrap().len(),
            CAPABILITIES.len()
        );
        assert_eq!(parse_domains("d", &s(&["all"])).unwrap().len(), 16);
        assert!(parse_capabilities("c", &s(&["sign-ecdsa", "sign-ecdsa"])).is_err());
    }
}
