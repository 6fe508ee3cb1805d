//! Ceremony scripts: strict TOML parsing. Unknown fields and step kinds are errors; every
//! error names the file, the step (index and id) and the field path.
//!
//! Fields are read by hand from the TOML table (not through serde) so that a wrong type,
//! a missing field and an unknown field all report the exact path.
//!
//! This file owns the script's shape ([`Script`], [`Step`], [`Action`]) and what each
//! action says about itself (secrets, outputs, whether it is destructive). The reading is
//! elsewhere: `reader` (the file, the header, the roles, dispatch by kind), one module
//! per family of step kinds, and `fields` (typed field readers with exact paths). The
//! data of each kind is in [`kinds`]. Nothing here touches a token or the out dir.

mod admin_steps;
mod custody_steps;
mod fields;
mod fuse_steps;
pub mod kinds;
mod pki_steps;
mod reader;
mod sign_steps;
mod token_steps;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::hsm::Label;

pub(crate) use fields::{Fail, Fields};
pub use kinds::*;
pub use reader::{parse, parse_toml};

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
    /// Roles whose sign-offs are SSH signatures (`[roles.NAME] signed = true`), and the
    /// allowed signers file that names their keys; `None` when no role is signed.
    pub signoffs: Option<SignedRoles>,
}

/// Signed sign-offs: which roles sign with an SSH key, and whose keys count
/// (see [`crate::approvals::signoff`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRoles {
    /// `[ceremony] allowed-signers`, resolved against the script's directory.
    pub allowed_signers: PathBuf,
    pub roles: std::collections::BTreeSet<String>,
}

impl Script {
    /// Whether sign-offs in `role` are SSH signatures.
    pub fn is_signed(&self, role: &str) -> bool {
        self.signoffs
            .as_ref()
            .is_some_and(|s| s.roles.contains(role))
    }
}

#[derive(Debug, Clone)]
pub struct Header {
    pub id: String,
    pub title: String,
    pub purpose: Option<String>,
    pub version: i64,
    /// Label of the token the ceremony works on (init-token sets it).
    pub token: String,
    /// The role that reads each result aloud and acknowledges it (`[ceremony] reviewer`;
    /// default `witness` when the script has that role; none: no review pauses).
    pub reviewer: Option<String>,
    /// Label of the key on the token that signs the transcript head at the end
    /// (`[ceremony] evidence-key`); see `ceremony::evidence`.
    pub evidence_key: Option<Label>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub sign_off: Vec<String>,
    /// The role that acknowledges this step's result after it ran (`review = false`
    /// for none, `review = "role"` for another than the ceremony's reviewer).
    pub review: Option<String>,
    pub action: Action,
}

/// One variant per step kind. To add a kind: a variant here, its struct in [`kinds`], its
/// parser in its family's `*_steps` module, its checks in `plan.rs`, and its executor in
/// `execute.rs` (see `ceremony/mod.rs`).
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
    IssueCertificate(IssueCertificate),
    ExportFuses(ExportFuses),
    Sign(SignStep),
    Verify(VerifyStep),
    IssueTbbr(Box<IssueTbbr>),
    ChangeAuthKey(ChangeAuthKey),
    PutAuthKey(PutAuthKey),
    SetAudit(SetAudit),
    SetPolicy(SetPolicy),
    CoSign(CoSign),
    GenerateWrapKey(GenerateWrapKey),
    Backup(BackupStep),
    Restore(RestoreStep),
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
    "issue-certificate",
    "export-fuses",
    "sign",
    "verify",
    "issue-tbbr",
    "change-auth-key",
    "put-auth-key",
    "set-audit",
    "set-policy",
    "co-sign",
    "generate-wrap-key",
    "backup",
    "restore",
];

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
            Action::IssueCertificate(_) => "issue-certificate",
            Action::ExportFuses(_) => "export-fuses",
            Action::Sign(_) => "sign",
            Action::Verify(_) => "verify",
            Action::IssueTbbr(_) => "issue-tbbr",
            Action::ChangeAuthKey(_) => "change-auth-key",
            Action::PutAuthKey(_) => "put-auth-key",
            Action::SetAudit(_) => "set-audit",
            Action::SetPolicy(_) => "set-policy",
            Action::CoSign(_) => "co-sign",
            Action::GenerateWrapKey(_) => "generate-wrap-key",
            Action::Backup(_) => "backup",
            Action::Restore(_) => "restore",
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
            Action::SetPolicy(p) => p
                .so_pin
                .as_deref()
                .map(|n| vec![("so-pin", n)])
                .unwrap_or_default(),
            Action::GenerateWrapKey(g) => g.logins.secrets(),
            Action::Restore(r) => r.logins.secrets(),
            _ => vec![],
        }
    }

    /// The fields of [`Self::secrets`] whose secret the step sets rather than uses: asked
    /// for twice at a prompt or at the console.
    pub fn is_new_secret(field: &str) -> bool {
        matches!(
            field,
            "so-pin" | "user-pin" | "new-pin" | "temporary-password" | "new-password" | "password"
        )
    }

    /// Whether secret `name` is one this step sets.
    pub fn sets_secret(&self, name: &str) -> bool {
        // set-policy logs in with the SO PIN; it sets none.
        if matches!(self, Action::SetPolicy(_)) {
            return false;
        }
        self.secrets()
            .into_iter()
            .any(|(field, n)| n == name && Self::is_new_secret(field))
    }

    /// Whether the step makes something a witness must check after it ran (a key, a
    /// certificate, a fuse value, a signature, a file, a deletion): it pauses for the
    /// reviewer's acknowledgement.
    pub fn reviewable(&self) -> bool {
        !matches!(
            self,
            Action::InitToken(_)
                | Action::Login(_)
                | Action::ChangePin(_)
                | Action::Instruction(_)
                | Action::SetAudit(_)
                | Action::CoSign(_)
        )
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
            Action::IssueCertificate(s) => {
                let mut v = Vec::new();
                if let Some(p) = &s.pem {
                    v.push(("pem", p.as_str()));
                }
                if let Some(d) = &s.der {
                    v.push(("der", d.as_str()));
                }
                v
            }
            Action::ExportFuses(x) => x.outputs(),
            Action::Sign(s) => vec![("output", s.output.as_str())],
            Action::IssueTbbr(t) => t.files.iter().map(|(_, n)| ("kind", n.as_str())).collect(),
            Action::Backup(b) => vec![("dir", b.dir.as_str())],
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

/// Read and parse a script file.
pub fn load(path: &Path) -> Result<Script, ScriptError> {
    let (file, base, bytes) = read_source(path)?;
    parse(&file, &base, &bytes)
}

/// A script or answers file's name for errors, the directory its relative paths resolve
/// against, and its bytes.
pub(crate) fn read_source(path: &Path) -> Result<(String, PathBuf, Vec<u8>), ScriptError> {
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
    Ok((file, base, bytes))
}
