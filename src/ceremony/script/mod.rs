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
    /// The file as given (with `:LINE:COL` for a TOML syntax error).
    pub file: String,
    /// `step[3] (gen-srk1).algorithm: `, `ceremony.token: `, `12:5: ` or empty.
    pub place: String,
    /// What is wrong, in one line.
    pub message: String,
}

/// A parsed script. Paths in steps are already resolved against the script's directory.
#[derive(Debug, Clone)]
pub struct Script {
    /// The path as given (shown in messages and the transcript).
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, recorded in the transcript.
    pub sha256: [u8; 32],
    /// The `[ceremony]` table.
    pub ceremony: Header,
    /// Role name → how many distinct people must sign off in that role.
    pub roles: BTreeMap<String, u32>,
    /// The `[[step]]`s, in order.
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
    /// The roles marked `signed = true`.
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

/// The `[ceremony]` table: what the ceremony is and where it runs.
#[derive(Debug, Clone)]
pub struct Header {
    /// A plain directory name (the console runs it in `OUT/<id>`).
    pub id: String,
    /// Its title, shown at the console and in the transcript.
    pub title: String,
    /// Why the ceremony is held, if the script says.
    pub purpose: Option<String>,
    /// The script's own version number.
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

/// One `[[step]]`: who signs it off, who reviews its result, and what it does.
#[derive(Debug, Clone)]
pub struct Step {
    /// Unique in the script (letters, digits, `-`, `_`, `.`).
    pub id: String,
    /// A title for people, if given.
    pub title: Option<String>,
    /// A longer text shown before the step and recorded with it.
    pub description: Option<String>,
    /// The roles that sign the step off before it runs, each once.
    pub sign_off: Vec<String>,
    /// The role that acknowledges this step's result after it ran (`review = false`
    /// for none, `review = "role"` for another than the ceremony's reviewer).
    pub review: Option<String>,
    /// What the step does.
    pub action: Action,
}

/// One variant per step kind. To add a kind: a variant here, its struct in [`kinds`], its
/// parser in its family's `*_steps` module, its checks in `plan.rs`, and its executor in
/// `execute.rs` (see `ceremony/mod.rs`).
#[derive(Debug, Clone)]
pub enum Action {
    /// init-token ([`InitToken`]).
    InitToken(InitToken),
    /// login ([`Login`]).
    Login(Login),
    /// change-pin ([`ChangePin`]).
    ChangePin(ChangePin),
    /// generate-key ([`GenerateKey`]).
    GenerateKey(GenerateKey),
    /// import-key ([`ImportKey`]).
    ImportKey(ImportKey),
    /// write-object ([`WriteObject`]).
    WriteObject(WriteObject),
    /// delete-object ([`DeleteObject`]).
    DeleteObject(DeleteObject),
    /// export-public-key ([`ExportPublicKey`]).
    ExportPublicKey(ExportPublicKey),
    /// instruction ([`Instruction`]).
    Instruction(Instruction),
    /// issue-certificate ([`IssueCertificate`]).
    IssueCertificate(IssueCertificate),
    /// export-fuses ([`ExportFuses`]).
    ExportFuses(ExportFuses),
    /// sign ([`SignStep`]).
    Sign(SignStep),
    /// verify ([`VerifyStep`]).
    Verify(VerifyStep),
    /// issue-tbbr ([`IssueTbbr`]).
    IssueTbbr(Box<IssueTbbr>),
    /// change-auth-key ([`ChangeAuthKey`]).
    ChangeAuthKey(ChangeAuthKey),
    /// put-auth-key ([`PutAuthKey`]).
    PutAuthKey(PutAuthKey),
    /// set-audit ([`SetAudit`]).
    SetAudit(SetAudit),
    /// set-policy ([`SetPolicy`]).
    SetPolicy(SetPolicy),
    /// co-sign ([`CoSign`]).
    CoSign(CoSign),
    /// generate-wrap-key ([`GenerateWrapKey`]).
    GenerateWrapKey(GenerateWrapKey),
    /// backup ([`BackupStep`]).
    Backup(BackupStep),
    /// restore ([`RestoreStep`]).
    Restore(RestoreStep),
}

/// Every step kind's name, as a script writes `kind` (and as the error for an unknown one
/// lists them).
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
    /// The kind's name as a script writes it.
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
