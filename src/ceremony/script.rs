//! Ceremony scripts: strict TOML parsing. Unknown fields and step kinds are errors; every
//! error names the file, the step (index and id) and the field path.
//!
//! Fields are read by hand from the TOML table (not through serde) so that a wrong type,
//! a missing field and an unknown field all report the exact path.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::hsm::{ObjectClass, UserType};
use crate::keys::KeyAlgorithm;

/// A script error: one line, `FILE: PATH: message` or `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {place}{message}")]
pub struct ScriptError {
    pub file: String,
    /// `step[3] (gen-srk1).algorithm: `, `ceremony.token: `, `12:5: ` or empty.
    pub place: String,
    pub message: String,
}

/// A parsed script. Paths in steps are already resolved against the script's directory.
#[derive(Debug, Clone)]
pub struct Script {
    /// The path as given (shown in messages and the transcript).
    pub path: PathBuf,
    pub sha256: [u8; 32],
    pub ceremony: Header,
    /// Role name → how many distinct people must sign off in that role.
    pub roles: BTreeMap<String, u32>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Header {
    pub id: String,
    pub title: String,
    pub purpose: Option<String>,
    pub version: i64,
    /// Label of the token the ceremony works on (init-token sets it).
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub sign_off: Vec<String>,
    pub action: Action,
}

/// One variant per step kind. To add a kind: a variant here, its struct and parser below,
/// its checks in `plan.rs`, and its executor in `runner.rs` (see `ceremony/mod.rs`).
#[derive(Debug, Clone)]
pub enum Action {
    InitToken(InitToken),
    Login(Login),
    ChangePin(ChangePin),
    GenerateKey(GenerateKey),
    ImportKey(ImportKey),
    WriteObject(WriteObject),
    DeleteObject(DeleteObject),
    ExportPublicKey(ExportPublicKey),
    Instruction(Instruction),
    ChangeAuthKey(ChangeAuthKey),
    PutAuthKey(PutAuthKey),
    SetAudit(SetAudit),
}

pub const KINDS: &[&str] = &[
    "init-token",
    "login",
    "change-pin",
    "generate-key",
    "import-key",
    "write-object",
    "delete-object",
    "export-public-key",
    "instruction",
    "change-auth-key",
    "put-auth-key",
    "set-audit",
];

#[derive(Debug, Clone)]
pub struct InitToken {
    pub so_pin: String,
    pub user_pin: String,
}

#[derive(Debug, Clone)]
pub struct Login {
    pub user: UserType,
    pub pin: String,
}

#[derive(Debug, Clone)]
pub struct ChangePin {
    pub user: UserType,
    pub old_pin: String,
    pub new_pin: String,
}

#[derive(Debug, Clone)]
pub struct GenerateKey {
    pub algorithm: KeyAlgorithm,
    pub label: String,
    pub key_id: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct ImportKey {
    pub label: String,
    pub key_id: Vec<u8>,
    /// Resolved against the script's directory.
    pub key_file: PathBuf,
    /// Secret name of the passphrase (encrypted PKCS#8).
    pub passphrase: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectType {
    Cert,
    Data,
}

#[derive(Debug, Clone)]
pub struct WriteObject {
    pub label: String,
    pub object_id: Vec<u8>,
    pub object_type: ObjectType,
    pub file: PathBuf,
    /// CKA_APPLICATION for data objects.
    pub application: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeleteObject {
    pub label: String,
    pub class: Option<ObjectClass>,
}

#[derive(Debug, Clone)]
pub struct ExportPublicKey {
    pub key: String,
    /// Plain file names in the out dir.
    pub pem: Option<String>,
    pub der: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Instruction {
    pub text: String,
}

/// YubiHSM native: rotate the session's authentication key (a safe rotation through a
/// temporary key; see `hsm::yubihsm::admin`).
#[derive(Debug, Clone)]
pub struct ChangeAuthKey {
    pub temporary_key_id: u16,
    /// Secret names.
    pub temporary_password: String,
    pub new_password: String,
    /// New label, domains and capabilities for the key; `None` keeps the old key's.
    pub replacement: Option<crate::hsm::yubihsm::AuthKeySpec>,
}

/// YubiHSM native: put an authentication key (officer, operator, auditor).
#[derive(Debug, Clone)]
pub struct PutAuthKey {
    pub spec: crate::hsm::yubihsm::AuthKeySpec,
    /// Secret name.
    pub password: String,
}

/// YubiHSM native: the force-audit option.
#[derive(Debug, Clone)]
pub struct SetAudit {
    pub force: bool,
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::InitToken(_) => "init-token",
            Action::Login(_) => "login",
            Action::ChangePin(_) => "change-pin",
            Action::GenerateKey(_) => "generate-key",
            Action::ImportKey(_) => "import-key",
            Action::WriteObject(_) => "write-object",
            Action::DeleteObject(_) => "delete-object",
            Action::ExportPublicKey(_) => "export-public-key",
            Action::Instruction(_) => "instruction",
            Action::ChangeAuthKey(_) => "change-auth-key",
            Action::PutAuthKey(_) => "put-auth-key",
            Action::SetAudit(_) => "set-audit",
        }
    }

    /// Secret names the step reads, with the field that names each.
    pub fn secrets(&self) -> Vec<(&'static str, &str)> {
        match self {
            Action::InitToken(s) => vec![("so-pin", &s.so_pin), ("user-pin", &s.user_pin)],
            Action::Login(s) => vec![("pin", &s.pin)],
            Action::ChangePin(s) => vec![("old-pin", &s.old_pin), ("new-pin", &s.new_pin)],
            Action::ImportKey(s) => s
                .passphrase
                .as_deref()
                .map(|p| vec![("passphrase", p)])
                .unwrap_or_default(),
            Action::ChangeAuthKey(c) => vec![
                ("temporary-password", &c.temporary_password),
                ("new-password", &c.new_password),
            ],
            Action::PutAuthKey(p) => vec![("password", &p.password)],
            _ => vec![],
        }
    }

    /// Destructive steps need an explicit confirmation in the answers (or at the console).
    pub fn destructive(&self) -> bool {
        matches!(
            self,
            Action::InitToken(_) | Action::DeleteObject(_) | Action::ChangeAuthKey(_)
        )
    }

    /// Output file names the step writes into the out dir.
    pub fn outputs(&self) -> Vec<(&'static str, &str)> {
        match self {
            Action::ExportPublicKey(s) => {
                let mut v = Vec::new();
                if let Some(p) = &s.pem {
                    v.push(("pem", p.as_str()));
                }
                if let Some(d) = &s.der {
                    v.push(("der", d.as_str()));
                }
                v
            }
            _ => vec![],
        }
    }
}

impl Step {
    /// `step[3] (gen-srk1)`
    pub fn place(&self, index: usize) -> String {
        format!("step[{index}] ({})", self.id)
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectType::Cert => "cert",
            ObjectType::Data => "data",
        })
    }
}

/// Read and parse a script file.
pub fn load(path: &Path) -> Result<Script, ScriptError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ScriptError {
        file: file.clone(),
        place: String::new(),
        message: format!("cannot read: {}", e.kind()),
    })?;
    let base = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parse(&file, &base, &bytes)
}

/// Parse script bytes. `file` names it in errors; `base` resolves relative paths.
pub fn parse(file: &str, base: &Path, bytes: &[u8]) -> Result<Script, ScriptError> {
    let sha256 = crate::output::sha256(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| ScriptError {
        file: file.into(),
        place: String::new(),
        message: format!("not UTF-8 (byte {})", e.valid_up_to()),
    })?;
    let table = parse_toml(file, text)?;
    let err = |place: String, message: String| ScriptError {
        file: file.into(),
        place,
        message,
    };
    let mut top = Fields::new(table, String::new());
    let ceremony_table = top.table("ceremony").map_err(|m| err(m.0, m.1))?;
    let roles_table = top.opt_table("roles").map_err(|m| err(m.0, m.1))?;
    let steps_raw = top.array_of_tables("step").map_err(|m| err(m.0, m.1))?;
    top.finish().map_err(|m| err(m.0, m.1))?;

    let mut c = Fields::new(ceremony_table, "ceremony.".into());
    let header = (|| {
        let h = Header {
            id: c.string("id")?,
            title: c.string("title")?,
            purpose: c.opt_string("purpose")?,
            version: c.integer("version")?,
            token: c.string("token")?,
        };
        c.finish()?;
        Ok(h)
    })()
    .map_err(|m: Fail| err(m.0, m.1))?;
    if header.token.is_empty() {
        return Err(err("ceremony.token: ".into(), "must not be empty".into()));
    }

    let mut roles = BTreeMap::new();
    if let Some(t) = roles_table {
        for (name, v) in t {
            let n = v
                .as_integer()
                .filter(|n| (1..=16).contains(n))
                .ok_or_else(|| {
                    err(
                        format!("roles.{name}: "),
                        "expected how many people sign off in this role (1 to 16)".into(),
                    )
                })?;
            roles.insert(name, n as u32);
        }
    }

    if steps_raw.is_empty() {
        return Err(err(String::new(), "the script has no [[step]]".into()));
    }
    let mut steps = Vec::with_capacity(steps_raw.len());
    for (i, t) in steps_raw.into_iter().enumerate() {
        steps.push(parse_step(i, t, base).map_err(|m| err(m.0, m.1))?);
    }
    Ok(Script {
        path: PathBuf::from(file),
        sha256,
        ceremony: header,
        roles,
        steps,
    })
}

/// Parse TOML into a table; syntax errors carry `LINE:COL`.
pub fn parse_toml(file: &str, text: &str) -> Result<toml::Table, ScriptError> {
    text.parse::<toml::Table>().map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ScriptError {
            file: format!("{file}:{line}:{col}"),
            place: String::new(),
            message: format!("malformed TOML: {}", e.message().trim()),
        }
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let col = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, col)
}

fn parse_step(i: usize, t: toml::Table, base: &Path) -> Result<Step, Fail> {
    // The id first, so every later error can name the step.
    let id = match t.get("id") {
        Some(toml::Value::String(s)) if valid_id(s) => s.clone(),
        Some(toml::Value::String(s)) => {
            return Err(Fail(
                format!("step[{i}].id: "),
                format!("{s:?} is not a valid step id (letters, digits, '-', '_', '.')"),
            ))
        }
        Some(_) => return Err(Fail(format!("step[{i}].id: "), "expected a string".into())),
        None => return Err(Fail(format!("step[{i}]: "), "missing field id".into())),
    };
    let mut f = Fields::new(t, format!("step[{i}] ({id})."));
    f.seen("id");
    let kind = f.string("kind")?;
    let title = f.opt_string("title")?;
    let description = f.opt_string("description")?;
    let sign_off = f.opt_string_list("sign-off")?.unwrap_or_default();
    let action = match kind.as_str() {
        "init-token" => Action::InitToken(InitToken {
            so_pin: f.string("so-pin")?,
            user_pin: f.string("user-pin")?,
        }),
        "login" => Action::Login(Login {
            user: f.user("user")?,
            pin: f.string("pin")?,
        }),
        "change-pin" => Action::ChangePin(ChangePin {
            user: f.user("user")?,
            old_pin: f.string("old-pin")?,
            new_pin: f.string("new-pin")?,
        }),
        "generate-key" => Action::GenerateKey(GenerateKey {
            algorithm: f.algorithm("algorithm")?,
            label: f.label("label")?,
            key_id: f.hex_id("key-id")?,
        }),
        "import-key" => Action::ImportKey(ImportKey {
            label: f.label("label")?,
            key_id: f.hex_id("key-id")?,
            key_file: base.join(f.string("key-file")?),
            passphrase: f.opt_string("passphrase")?,
        }),
        "write-object" => Action::WriteObject(WriteObject {
            label: f.label("label")?,
            object_id: f.hex_id("object-id")?,
            object_type: match f.string("type")?.as_str() {
                "cert" => ObjectType::Cert,
                "data" => ObjectType::Data,
                other => {
                    return Err(f.fail(
                        "type",
                        format!("unknown object type {other:?} (expected cert or data)"),
                    ))
                }
            },
            file: base.join(f.string("file")?),
            application: f.opt_string("application")?,
        }),
        "delete-object" => Action::DeleteObject(DeleteObject {
            label: f.label("label")?,
            class: match f.opt_string("type")?.as_deref() {
                None => None,
                Some("private") => Some(ObjectClass::PrivateKey),
                Some("public") => Some(ObjectClass::PublicKey),
                Some("cert") => Some(ObjectClass::Certificate),
                Some("data") => Some(ObjectClass::Data),
                Some(other) => {
                    return Err(f.fail(
                        "type",
                        format!(
                        "unknown object type {other:?} (expected private, public, cert or data)"
                    ),
                    ))
                }
            },
        }),
        "export-public-key" => {
            let s = ExportPublicKey {
                key: f.label("key")?,
                pem: f.opt_file_name("pem")?,
                der: f.opt_file_name("der")?,
            };
            if s.pem.is_none() && s.der.is_none() {
                return Err(Fail(
                    format!("step[{i}] ({id}): "),
                    "export-public-key needs pem = \"FILE\" or der = \"FILE\" (or both)".into(),
                ));
            }
            Action::ExportPublicKey(s)
        }
        "instruction" => Action::Instruction(Instruction {
            text: f.string("text")?,
        }),
        "change-auth-key" => {
            use crate::hsm::yubihsm::{caps, steps};
            let native = |e: crate::hsm::yubihsm::Error| match e {
                crate::hsm::yubihsm::Error::Field { path, message } => Fail(
                    format!("step[{i}] ({id}).{path}: "),
                    message,
                ),
                other => Fail(format!("step[{i}] ({id}): "), other.to_string()),
            };
            let temp = f.string("temporary-key-id")?;
            let temporary_key_id =
                caps::parse_object_id("temporary-key-id", &temp).map_err(native)?;
            let temporary_password = f.string("temporary-password")?;
            let new_password = f.string("new-password")?;
            let label = f.opt_string("label")?;
            let domains = f.opt_scalar_list("domains")?;
            let capabilities = f.opt_string_list("capabilities")?;
            let delegated = f.opt_string_list("delegated-capabilities")?;
            let replacement = match (label, domains, capabilities, delegated) {
                (None, None, None, None) => None,
                (Some(label), Some(domains), Some(capabilities), delegated) => {
                    let spec = steps::auth_key_spec(&steps::AuthKeyFields {
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
            use crate::hsm::yubihsm::steps;
            let fields = steps::AuthKeyFields {
                key_id: f.string("key-id")?,
                label: f.string("label")?,
                domains: f.opt_scalar_list("domains")?.unwrap_or_default(),
                capabilities: f.opt_string_list("capabilities")?.unwrap_or_default(),
                delegated: f
                    .opt_string_list("delegated-capabilities")?
                    .unwrap_or_default(),
            };
            let spec = steps::auth_key_spec(&fields).map_err(|e| match e {
                crate::hsm::yubihsm::Error::Field { path, message } => {
                    Fail(format!("step[{i}] ({id}).{path}: "), message)
                }
                other => Fail(format!("step[{i}] ({id}): "), other.to_string()),
            })?;
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
        other => {
            return Err(f.fail(
                "kind",
                format!(
                    "unknown step kind {other:?} (expected one of {})",
                    KINDS.join(", ")
                ),
            ))
        }
    };
    f.finish()?;
    Ok(Step {
        id,
        title,
        description,
        sign_off,
        action,
    })
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// (place, message) before the file name is attached.
#[derive(Debug)]
pub(crate) struct Fail(pub String, pub String);

/// A TOML table read field by field; `finish` rejects whatever was not read.
pub(crate) struct Fields {
    table: toml::Table,
    prefix: String,
    seen: Vec<String>,
}

impl Fields {
    pub(crate) fn new(table: toml::Table, prefix: String) -> Self {
        Fields {
            table,
            prefix,
            seen: Vec::new(),
        }
    }

    pub(crate) fn fail(&self, field: &str, msg: String) -> Fail {
        Fail(format!("{}{field}: ", self.prefix), msg)
    }

    fn seen(&mut self, field: &str) {
        self.seen.push(field.to_string());
    }

    fn take(&mut self, field: &str) -> Option<toml::Value> {
        self.seen(field);
        self.table.get(field).cloned()
    }

    pub(crate) fn opt_string(&mut self, field: &str) -> Result<Option<String>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.fail(field, format!("expected a string, found {}", v.type_str()))),
        }
    }

    fn missing(&self, field: &str) -> Fail {
        let place = self.prefix.trim_end_matches('.');
        let place = if place.is_empty() {
            String::new()
        } else {
            format!("{place}: ")
        };
        Fail(place, format!("missing field {field}"))
    }

    pub(crate) fn string(&mut self, field: &str) -> Result<String, Fail> {
        self.opt_string(field)?.ok_or_else(|| self.missing(field))
    }

    pub(crate) fn integer(&mut self, field: &str) -> Result<i64, Fail> {
        match self.take(field) {
            None => Err(self.missing(field)),
            Some(toml::Value::Integer(n)) => Ok(n),
            Some(v) => Err(self.fail(
                field,
                format!("expected an integer, found {}", v.type_str()),
            )),
        }
    }

    pub(crate) fn opt_string_list(&mut self, field: &str) -> Result<Option<Vec<String>>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::String(s) => Ok(s),
                    v => Err(self.fail(
                        &format!("{field}[{i}]"),
                        format!("expected a string, found {}", v.type_str()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.fail(
                field,
                format!("expected an array of strings, found {}", v.type_str()),
            )),
        }
    }

    /// A list of strings or integers (YubiHSM domains: `[1, 2]` or `["all"]`), as strings.
    pub(crate) fn opt_scalar_list(&mut self, field: &str) -> Result<Option<Vec<String>>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(vec![s])),
            Some(toml::Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::String(s) => Ok(s),
                    toml::Value::Integer(n) => Ok(n.to_string()),
                    v => Err(self.fail(
                        &format!("{field}[{i}]"),
                        format!("expected a number or string, found {}", v.type_str()),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.fail(field, format!("expected an array, found {}", v.type_str()))),
        }
    }

    fn user(&mut self, field: &str) -> Result<UserType, Fail> {
        match self.opt_string(field)?.as_deref() {
            None | Some("user") => Ok(UserType::User),
            Some("so") => Ok(UserType::So),
            Some(other) => Err(self.fail(
                field,
                format!("unknown user {other:?} (expected user or so)"),
            )),
        }
    }

    fn algorithm(&mut self, field: &str) -> Result<KeyAlgorithm, Fail> {
        let s = self.string(field)?;
        KeyAlgorithm::parse(&s).ok_or_else(|| {
            let all: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.name()).collect();
            self.fail(
                field,
                format!("unknown algorithm {s:?} (expected {})", all.join(", ")),
            )
        })
    }

    fn label(&mut self, field: &str) -> Result<String, Fail> {
        let s = self.string(field)?;
        if s.is_empty() || s.len() > 128 || s.chars().any(|c| c.is_control()) {
            return Err(self.fail(field, "must be 1 to 128 printable characters".into()));
        }
        Ok(s)
    }

    fn hex_id(&mut self, field: &str) -> Result<Vec<u8>, Fail> {
        let s = self.string(field)?;
        match hex::decode(&s) {
            Ok(b) if !b.is_empty() && b.len() <= 32 => Ok(b),
            _ => Err(self.fail(
                field,
                format!("{s:?} is not an object id in hex (1 to 32 bytes, e.g. \"1001\")"),
            )),
        }
    }

    fn opt_file_name(&mut self, field: &str) -> Result<Option<String>, Fail> {
        let Some(s) = self.opt_string(field)? else {
            return Ok(None);
        };
        let plain = !s.is_empty()
            && s != "."
            && s != ".."
            && !s.starts_with('.')
            && !s.contains(['/', '\\'])
            && !s.chars().any(|c| c.is_control());
        if !plain {
            return Err(self.fail(
                field,
                format!("{s:?} must be a plain file name (it is written into the out dir)"),
            ));
        }
        Ok(Some(s))
    }

    pub(crate) fn table(&mut self, field: &str) -> Result<toml::Table, Fail> {
        self.opt_table(field)?
            .ok_or_else(|| Fail(String::new(), format!("missing [{field}] table")))
    }

    pub(crate) fn opt_table(&mut self, field: &str) -> Result<Option<toml::Table>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(t)),
            Some(v) => Err(self.fail(field, format!("expected a table, found {}", v.type_str()))),
        }
    }

    pub(crate) fn array_of_tables(&mut self, field: &str) -> Result<Vec<toml::Table>, Fail> {
        match self.take(field) {
            None => Ok(vec![]),
            Some(toml::Value::Array(a)) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::Table(t) => Ok(t),
                    v => Err(self.fail(
                        &format!("{field}[{i}]"),
                        format!("expected a table, found {}", v.type_str()),
                    )),
                })
                .collect(),
            Some(v) => Err(self.fail(
                field,
                format!("expected [[{field}]] tables, found {}", v.type_str()),
            )),
        }
    }

    /// Reject any field that was not read.
    pub(crate) fn finish(&self) -> Result<(), Fail> {
        if let Some(k) = self.table.keys().find(|k| !self.seen.contains(k)) {
            return Err(self.fail(k, "unknown field".into()));
        }
        Ok(())
    }
}
