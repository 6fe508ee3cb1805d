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
    pub evidence_key: Option<String>,
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
    /// The key may be backed up under a wrap key (never the default).
    pub exportable_under_wrap: bool,
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

/// A file a step reads: an output of an earlier step (in the out dir) or a file next to
/// the script. Which one is settled by `plan::check_script`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    /// As written in the script.
    pub name: String,
    /// `base.join(name)`: used when no earlier step writes `name`.
    pub beside_script: PathBuf,
    /// The earlier step that writes `name` into the out dir, if any.
    pub from_step: Option<usize>,
}

impl FileRef {
    /// Where the file is when the step runs.
    pub fn path(&self, out_dir: &Path) -> PathBuf {
        match self.from_step {
            Some(_) => out_dir.join(&self.name),
            None => self.beside_script.clone(),
        }
    }
}

impl Action {
    /// Files the step reads, by field (for resolving against earlier outputs).
    fn file_refs_mut(&mut self) -> Vec<&mut FileRef> {
        match self {
            Action::ExportFuses(x) => match &mut x.export {
                FuseExport::Hab4 { certs, .. } | FuseExport::Ahab { certs, .. } => {
                    certs.iter_mut().collect()
                }
                FuseExport::TfaRotpk { key_file, .. } => key_file.iter_mut().collect(),
                _ => vec![],
            },
            Action::Sign(s) => {
                let mut r = vec![&mut s.input];
                if let Some(x) = s.imx.as_deref_mut() {
                    r.push(&mut x.srk_table);
                    r.extend(x.csf_cert.iter_mut());
                    r.extend(x.img_cert.iter_mut());
                }
                r
            }
            Action::IssueTbbr(t) => {
                let mut r = vec![&mut t.tb_fw, &mut t.soc_fw, &mut t.nt_fw];
                r.extend(t.tos_fw.iter_mut());
                r
            }
            Action::Verify(v) => {
                let mut r = vec![&mut v.input];
                r.extend(v.signature.iter_mut());
                r
            }
            _ => vec![],
        }
    }
}

/// Point every file a step reads at the latest earlier step that writes it.
fn resolve_refs(steps: &mut [Step]) {
    let mut written: BTreeMap<String, usize> = BTreeMap::new();
    for (i, step) in steps.iter_mut().enumerate() {
        for r in step.action.file_refs_mut() {
            r.from_step = written.get(&r.name).copied();
        }
        for (_, name) in step.action.outputs() {
            written.insert(name.to_string(), i);
        }
    }
}

/// Certificate serial: fixed, or random (64 bits, as `openssl req -x509`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serial {
    Random,
    Fixed(u64),
}

#[derive(Debug, Clone)]
pub struct IssueCertificate {
    pub profile: crate::pki::Profile,
    /// Label of the subject key on the token.
    pub key: String,
    /// Label of the issuer's key; `None`: self-signed.
    pub issuer_key: Option<String>,
    /// Output file of an earlier issue-certificate step (required with issuer-key).
    pub issuer_cert: Option<String>,
    /// A CN, or a DN string (`/C=DE/O=Acme/CN=Root` or `CN=Root,O=Acme`).
    pub subject: String,
    pub serial: Serial,
    pub validity_days: u32,
    pub pem: Option<String>,
    pub der: Option<String>,
    /// Also store the certificate on the token under the key's label and id.
    pub write_to_token: bool,
}

#[derive(Debug, Clone)]
pub enum FuseExport {
    /// SRK table and fuse file from 1–4 SRK certificates.
    Hab4 {
        certs: Vec<FileRef>,
        soc: Option<crate::formats::hab4::Soc>,
        /// `SRK_1_2_3_4_table.bin` / `SRK_1_2_3_4_fuse.bin` for four certificates.
        table: String,
        fuse: String,
    },
    /// AHAB SRK table and SRK hash from exactly 4 SRK certificates.
    Ahab {
        certs: Vec<FileRef>,
        /// RSA records as RSA-PSS (spsdk, i.MX 9) instead of PKCS#1 v1.5 (srktool).
        rsa_pss: bool,
        /// srktool -a's fuse file: SHA-512 of the table (i.MX 8QXP/8QM).
        srktool: bool,
        family: Option<crate::formats::imx::ahab_srk::Family>,
        table: String,
        fuse: String,
    },
    /// SHA-256 of the ROT public key's DER SPKI (`rotpk_sha256.bin`).
    TfaRotpk {
        key: Option<String>,
        key_file: Option<FileRef>,
        digest_info: bool,
        file: String,
    },
    /// One eFuse digest file per key.
    Esp32Sbv2 {
        keys: Vec<String>,
        files: Vec<String>,
    },
    /// STM32MP15 PKH of one key.
    Stm32mp15 { key: String, file: String },
    /// STM32MP13/MP25 hash of the key hash table (up to 8 keys, in OTP order).
    Stm32mpPkhth { keys: Vec<String>, file: String },
}

impl FuseExport {
    /// The `format` name as a script writes it.
    pub fn format_name(&self) -> &'static str {
        match self {
            FuseExport::Hab4 { .. } => "hab4",
            FuseExport::Ahab { .. } => "ahab",
            FuseExport::TfaRotpk { .. } => "tfa-rotpk",
            FuseExport::Esp32Sbv2 { .. } => "esp32-sbv2",
            FuseExport::Stm32mp15 { .. } => "stm32mp15",
            FuseExport::Stm32mpPkhth { .. } => "stm32mp-pkhth",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportFuses {
    pub export: FuseExport,
}

#[derive(Debug, Clone)]
pub struct SignStep {
    pub format: crate::signing::Format,
    pub key: String,
    /// Resolved against the script's directory (or an earlier step's output).
    pub input: FileRef,
    pub output: String,
    pub padding: Option<crate::formats::raw::Padding>,
    pub load_address: Option<u32>,
    pub entry_point: Option<u32>,
    /// stm32mp13: the key set in OTP order (labels), and the index of `key` in it.
    pub key_table: Vec<String>,
    /// imx-hab4, imx-ahab (boxed: the other formats carry none).
    pub imx: Option<Box<ImxSign>>,
}

/// The NXP formats' fields of a sign step. For imx-hab4 the step's `key` is the CSF key
/// (`csf-key`); for imx-ahab it is the SRK.
#[derive(Debug, Clone)]
pub struct ImxSign {
    pub srk_table: FileRef,
    /// 0-based index of the SRK in the table.
    pub srk_index: u32,
    /// imx-hab4: the IMG key (none with fast-auth) and the certificates as files (none:
    /// the token's certificates under the keys' labels).
    pub img_key: Option<String>,
    pub csf_cert: Option<FileRef>,
    pub img_cert: Option<FileRef>,
    pub fast_auth: bool,
}

/// The TF-A TBBR certificate chain (cert_create's), every key on the token.
#[derive(Debug, Clone)]
pub struct IssueTbbr {
    pub keys: crate::pki::tbbr::KeyLabels,
    /// BL2, BL31, BL32 (with a Trusted OS key), BL33.
    pub tb_fw: FileRef,
    pub soc_fw: FileRef,
    pub tos_fw: Option<FileRef>,
    pub nt_fw: FileRef,
    pub trusted_nv_counter: u32,
    pub non_trusted_nv_counter: u32,
    pub hash: crate::keys::HashAlg,
    /// cert_create's file names, in chain order.
    pub files: Vec<(crate::pki::tbbr::CertKind, String)>,
}

#[derive(Debug, Clone)]
pub struct VerifyStep {
    pub format: crate::signing::Format,
    pub key: String,
    pub input: FileRef,
    /// Detached signature (raw only).
    pub signature: Option<FileRef>,
}

/// Rotate the session's authentication key (a safe rotation through a temporary key; a
/// backend with authentication keys does it, see `hsm::admin`).
#[derive(Debug, Clone)]
pub struct ChangeAuthKey {
    pub temporary_key_id: u16,
    /// Secret names.
    pub temporary_password: String,
    pub new_password: String,
    /// New label, domains and capabilities for the key; `None` keeps the old key's.
    pub replacement: Option<crate::hsm::admin::AuthKeySpec>,
}

/// Put an authentication key (officer, operator, auditor) on a backend that has them.
#[derive(Debug, Clone)]
pub struct PutAuthKey {
    pub spec: crate::hsm::admin::AuthKeySpec,
    /// Secret name.
    pub password: String,
}

/// The device audit log's force-audit option (a backend with a device audit log).
#[derive(Debug, Clone)]
pub struct SetAudit {
    pub force: bool,
}

/// Store an approval policy on the token (see [`crate::approvals::store`]): as the SO
/// with `so-pin` on a token that has one, with the session's administrative
/// authentication key on a YubiHSM 2.
#[derive(Debug, Clone)]
pub struct SetPolicy {
    /// The policy file (it names its allowed signers file), beside the script.
    pub policy: PathBuf,
    /// Secret name of the SO PIN (PKCS#11 and sim).
    pub so_pin: Option<String>,
}

/// The people of the step's (signed) roles sign the transcript head: the ceremony as
/// recorded so far. Touches no token.
#[derive(Debug, Clone)]
pub struct CoSign {
    pub text: Option<String>,
}

/// The secret names a custody step logs in with where the backend needs the SO to put a
/// wrap key (PKCS#11, the rehearsal token): the SO for the put, then the user again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustodyLogins {
    pub so: Option<String>,
    pub user: Option<String>,
}

/// A new AES-256 wrap key, split T-of-N among the custodians (people in
/// `custodian_role` on the roll call), then put on the token.
#[derive(Debug, Clone)]
pub struct GenerateWrapKey {
    pub label: String,
    pub key_id: u16,
    pub threshold: u8,
    pub shares: u8,
    pub custodian_role: String,
    pub logins: CustodyLogins,
}

/// Keys exported under a wrap key into a directory of the out dir.
#[derive(Debug, Clone)]
pub struct BackupStep {
    pub wrap_key: String,
    pub keys: Vec<String>,
    /// A plain name: the backup goes into `OUT/<dir>/` (manifest.json and one file per
    /// key).
    pub dir: String,
}

/// A backup restored from T custodians' shares.
#[derive(Debug, Clone)]
pub struct RestoreStep {
    pub threshold: u8,
    pub custodian_role: String,
    /// The backup directory: absolute, or relative to the script's directory. Read when
    /// the step runs (the backup medium may be mounted just before).
    pub backup_dir: PathBuf,
    /// As written in the script.
    pub backup_dir_name: String,
    /// The labels the backup must hold, exactly (later steps may use them); empty: any.
    pub keys: Vec<String>,
    /// The wrap key's check value as the backup ceremony's transcript recorded it.
    pub check_value: Option<[u8; 3]>,
    pub keep_wrap_key: bool,
    pub logins: CustodyLogins,
}

impl CustodyLogins {
    fn secrets(&self) -> Vec<(&'static str, &str)> {
        let mut v = Vec::new();
        if let Some(n) = &self.so {
            v.push(("so-login", n.as_str()));
        }
        if let Some(n) = &self.user {
            v.push(("user-login", n.as_str()));
        }
        v
    }
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

impl ExportFuses {
    /// Output files, with the field that names each.
    pub fn outputs(&self) -> Vec<(&'static str, &str)> {
        match &self.export {
            FuseExport::Hab4 { table, fuse, .. } | FuseExport::Ahab { table, fuse, .. } => {
                vec![("certs", table.as_str()), ("certs", fuse.as_str())]
            }
            FuseExport::TfaRotpk { file, .. }
            | FuseExport::Stm32mp15 { file, .. }
            | FuseExport::Stm32mpPkhth { file, .. } => vec![("file", file.as_str())],
            FuseExport::Esp32Sbv2 { files, .. } => {
                files.iter().map(|f| ("files", f.as_str())).collect()
            }
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
            token: c.label("token")?,
            reviewer: c.opt_string("reviewer")?,
            evidence_key: match c.opt_string("evidence-key")? {
                Some(_) => Some(c.label("evidence-key")?),
                None => None,
            },
        };
        let signers = c.opt_string("allowed-signers")?;
        if let Some(f) = &signers {
            c.check_plain("allowed-signers", f)?;
        }
        check_ceremony_id(&h.id).map_err(|m| c.fail("id", m))?;
        c.finish()?;
        Ok((h, signers))
    })()
    .map_err(|m: Fail| err(m.0, m.1))?;
    let (header, allowed_signers) = header;

    let mut roles = BTreeMap::new();
    let mut signed_roles = std::collections::BTreeSet::new();
    if let Some(t) = roles_table {
        for (name, v) in t {
            let (n, signed) = parse_role(&name, v).map_err(|m| err(m.0, m.1))?;
            if signed {
                signed_roles.insert(name.clone());
            }
            roles.insert(name, n);
        }
    }
    let signoffs = match (allowed_signers, signed_roles.is_empty()) {
        (Some(f), false) => Some(SignedRoles {
            allowed_signers: base.join(f),
            roles: signed_roles,
        }),
        (None, true) => None,
        (None, false) => {
            let r: Vec<&str> = signed_roles.iter().map(String::as_str).collect();
            return Err(err(
                "ceremony: ".into(),
                format!(
                    "missing field allowed-signers: role {} signs with SSH keys; name the OpenSSH allowed_signers file that holds them",
                    r.join(", ")
                ),
            ));
        }
        (Some(_), true) => {
            return Err(err(
                "ceremony.allowed-signers: ".into(),
                "no role signs with an SSH key: mark one [roles.NAME] signed = true, or leave allowed-signers out".into(),
            ))
        }
    };

    let mut header = header;
    match &header.reviewer {
        Some(r) if !roles.contains_key(r) => {
            return Err(err(
                "ceremony.reviewer: ".into(),
                format!("{r:?} is not one of the script's [roles]"),
            ))
        }
        Some(_) => {}
        None if roles.contains_key("witness") => header.reviewer = Some("witness".into()),
        None => {}
    }
    if steps_raw.is_empty() {
        return Err(err(String::new(), "the script has no [[step]]".into()));
    }
    let mut steps = Vec::with_capacity(steps_raw.len());
    for (i, t) in steps_raw.into_iter().enumerate() {
        let mut step = parse_step(i, t, base).map_err(|m| err(m.0, m.1))?;
        step.review = match step.review.take() {
            // `review = "role"`: that role, which must exist.
            Some(r) if r != DEFAULT_REVIEW => {
                if !roles.contains_key(&r) {
                    return Err(err(
                        format!("step[{i}] ({}).review: ", step.id),
                        format!("{r:?} is not one of the script's [roles]"),
                    ));
                }
                Some(r)
            }
            Some(_) if step.action.reviewable() => header.reviewer.clone(),
            _ => None,
        };
        steps.push(step);
    }
    resolve_refs(&mut steps);
    Ok(Script {
        path: PathBuf::from(file),
        sha256,
        ceremony: header,
        roles,
        steps,
        signoffs,
    })
}

/// One `[roles]` entry: `witness = 2`, or `[roles.witness] count = 2, signed = true`.
fn parse_role(name: &str, v: toml::Value) -> Result<(u32, bool), Fail> {
    let count = |n: i64, place: String| {
        if (1..=16).contains(&n) {
            Ok(n as u32)
        } else {
            Err(Fail(
                place,
                "expected how many people sign off in this role (1 to 16)".into(),
            ))
        }
    };
    match v {
        toml::Value::Integer(n) => Ok((count(n, format!("roles.{name}: "))?, false)),
        toml::Value::Table(t) => {
            let mut f = Fields::new(t, format!("roles.{name}."));
            let n = match f.take("count") {
                None => 1,
                Some(toml::Value::Integer(n)) => count(n, format!("roles.{name}.count: "))?,
                Some(_) => {
                    return Err(f.fail(
                        "count",
                        "expected how many people sign off in this role (1 to 16)".into(),
                    ))
                }
            };
            let signed = f.opt_bool("signed")?.unwrap_or(false);
            f.finish()?;
            Ok((n, signed))
        }
        _ => Err(Fail(
            format!("roles.{name}: "),
            "expected how many people sign off in this role (1 to 16), or a table with count and signed".into(),
        )),
    }
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

/// The placeholder a step's `review` holds until the script's roles are known.
const DEFAULT_REVIEW: &str = "\u{0}default";

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
    // Resolved against the roles once the whole script is read.
    let review = match f.take("review") {
        None | Some(toml::Value::Boolean(true)) => Some(DEFAULT_REVIEW.to_string()),
        Some(toml::Value::Boolean(false)) => None,
        Some(toml::Value::String(r)) if r != DEFAULT_REVIEW => Some(r),
        Some(v) => {
            return Err(f.fail(
                "review",
                format!(
                    "expected false, true or a role name, found {}",
                    v.type_str()
                ),
            ))
        }
    };
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
            exportable_under_wrap: f.opt_bool("exportable-under-wrap")?.unwrap_or(false),
        }),
        "import-key" => Action::ImportKey(ImportKey {
            label: f.label("label")?,
            key_id: f.hex_id("key-id")?,
            key_file: f.file_inside("key-file", base)?,
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
            file: f.file_inside("file", base)?,
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
        "issue-certificate" => Action::IssueCertificate(parse_issue(&mut f, i, &id)?),
        "export-fuses" => Action::ExportFuses(parse_fuses(&mut f, base)?),
        "sign" => Action::Sign(parse_sign(&mut f, base)?),
        "issue-tbbr" => Action::IssueTbbr(Box::new(parse_tbbr(&mut f, base)?)),
        "verify" => Action::Verify(VerifyStep {
            format: f.sign_format("format")?,
            key: f.label("key")?,
            input: f.file_ref("input", base)?,
            signature: f.opt_file_ref("signature", base)?,
        }),
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
        "co-sign" => Action::CoSign(CoSign {
            text: f.opt_string("text")?,
        }),
        "generate-wrap-key" => Action::GenerateWrapKey(parse_generate_wrap_key(&mut f)?),
        "backup" => Action::Backup(BackupStep {
            wrap_key: f.label("wrap-key")?,
            keys: f.labels("keys", 64)?,
            dir: f
                .opt_file_name("dir")?
                .unwrap_or_else(|| "backup".to_string()),
        }),
        "restore" => Action::Restore(parse_restore(&mut f, base)?),
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
        review,
        action,
    })
}

fn parse_issue(f: &mut Fields, i: usize, id: &str) -> Result<IssueCertificate, Fail> {
    use crate::pki::Profile;
    let name = f.string("profile")?;
    let mut profile = match name.as_str() {
        "hab4-ca" | "hab4-srk" | "hab4-csf" | "hab4-img" | "ca" | "signer" => {
            Profile::parse(&name)
        }
        _ => None,
    }
    .ok_or_else(|| {
        f.fail(
            "profile",
            format!("unknown profile {name:?} (expected hab4-ca, hab4-srk, hab4-csf, hab4-img, ca or signer)"),
        )
    })?;
    match (f.opt_bool("ca-mode")?, profile) {
        (Some(ca), Profile::Hab4Srk { .. }) => profile = Profile::Hab4Srk { ca },
        (Some(_), _) => return Err(f.fail("ca-mode", "is only for profile hab4-srk".into())),
        (None, _) => {}
    }
    let key = f.label("key")?;
    let issuer_key = match f.opt_string("issuer-key")? {
        Some(_) => Some(f.relabel("issuer-key")?),
        None => None,
    };
    let issuer_cert = f.opt_file_name("issuer-cert")?;
    let subject = f.string("subject")?;
    if subject.trim().is_empty() {
        return Err(f.fail("subject", "must not be empty".into()));
    }
    let serial = match f.take("serial") {
        None => Serial::Random,
        Some(toml::Value::Integer(n)) if n > 0 => Serial::Fixed(n as u64),
        Some(toml::Value::String(h)) => {
            let digits = h.strip_prefix("0x").unwrap_or(&h);
            match u64::from_str_radix(digits, 16) {
                Ok(n) if n > 0 && h.starts_with("0x") => Serial::Fixed(n),
                _ => {
                    return Err(f.fail(
                        "serial",
                        format!("{h:?} is not a positive serial (an integer or \"0x…\" hex, at most 64 bits)"),
                    ))
                }
            }
        }
        Some(_) => {
            return Err(f.fail(
                "serial",
                "expected a positive integer or \"0x…\" hex".into(),
            ))
        }
    };
    let validity_days = match f.take("validity-days") {
        None => 3650,
        Some(toml::Value::Integer(n)) if (1..=36_500).contains(&n) => n as u32,
        Some(_) => {
            return Err(f.fail(
                "validity-days",
                "expected a whole number of days from 1 to 36500".into(),
            ))
        }
    };
    let pem = f.opt_file_name("pem")?;
    let der = f.opt_file_name("der")?;
    let write_to_token = f.opt_bool("write-to-token")?.unwrap_or(false);
    if pem.is_none() && der.is_none() {
        return Err(Fail(
            format!("step[{i}] ({id}): "),
            "issue-certificate needs pem = \"FILE\" or der = \"FILE\" (or both)".into(),
        ));
    }
    match (&issuer_key, &issuer_cert) {
        (Some(_), None) => {
            return Err(f.fail(
                "issuer-cert",
                "missing: with issuer-key, name the issuer's certificate (an output of an earlier issue-certificate step)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(f.fail(
                "issuer-key",
                "missing: with issuer-cert, name the issuer's key label".into(),
            ))
        }
        _ => {}
    }
    if let Some(want_self) = profile.self_signed() {
        if want_self != issuer_key.is_none() {
            let field = if want_self { "issuer-key" } else { "profile" };
            return Err(f.fail(
                field,
                if want_self {
                    format!(
                        "profile {} is self-signed: give no issuer-key",
                        profile.name()
                    )
                } else {
                    format!(
                        "profile {} needs an issuer (issuer-key and issuer-cert)",
                        profile.name()
                    )
                },
            ));
        }
    }
    Ok(IssueCertificate {
        profile,
        key,
        issuer_key,
        issuer_cert,
        subject,
        serial,
        validity_days,
        pem,
        der,
        write_to_token,
    })
}

fn parse_fuses(f: &mut Fields, base: &Path) -> Result<ExportFuses, Fail> {
    use crate::formats::hab4;
    let format = f.string("format")?;
    let export = match format.as_str() {
        "hab4" => {
            let names = f.opt_string_list("certs")?.unwrap_or_default();
            if names.is_empty() || names.len() > hab4::MAX_SRKS {
                return Err(f.fail(
                    "certs",
                    format!(
                        "hab4 takes 1 to 4 SRK certificates, got {}",
                        names.len()
                    ),
                ));
            }
            let certs = names
                .iter()
                .map(|n| f.check_ref("certs", n, base))
                .collect::<Result<Vec<_>, _>>()?;
            let soc = match f.opt_string("soc")? {
                None => None,
                Some(s) => Some(s.parse::<hab4::Soc>().map_err(|e| f.fail("soc", e.to_string()))?),
            };
            FuseExport::Hab4 {
                table: hab4::table_file_name(certs.len()),
                fuse: hab4::fuse_file_name(certs.len()),
                certs,
                soc,
            }
        }
        "ahab" => {
            use crate::formats::imx::ahab_srk;
            let names = f.opt_string_list("certs")?.unwrap_or_default();
            if names.len() != ahab_srk::SRK_COUNT {
                return Err(f.fail(
                    "certs",
                    format!("ahab takes exactly 4 SRK certificates, got {}", names.len()),
                ));
            }
            let certs = names
                .iter()
                .map(|n| f.check_ref("certs", n, base))
                .collect::<Result<Vec<_>, _>>()?;
            let rsa_pss = f.opt_bool("rsa-pss")?.unwrap_or(false);
            let srktool = f.opt_bool("srktool")?.unwrap_or(false);
            if rsa_pss && srktool {
                return Err(f.fail(
                    "rsa-pss",
                    "srktool writes RSA records as PKCS#1 v1.5: choose rsa-pss or srktool".into(),
                ));
            }
            let family = match f.opt_string("family")? {
                None => None,
                Some(s) => {
                    let fam = s
                        .parse::<ahab_srk::Family>()
                        .map_err(|e| f.fail("family", e.to_string()))?;
                    if (fam.hash_bits() == 512) != srktool {
                        return Err(f.fail(
                            "family",
                            format!(
                                "{fam} burns a {}-bit SRK hash: {}",
                                fam.hash_bits(),
                                if srktool { "drop srktool" } else { "set srktool = true" }
                            ),
                        ));
                    }
                    Some(fam)
                }
            };
            FuseExport::Ahab {
                certs,
                rsa_pss,
                srktool,
                family,
                table: "SRK_1_2_3_4_table.bin".into(),
                fuse: "SRK_1_2_3_4_fuse.bin".into(),
            }
        }
        "tfa-rotpk" => {
            let key = match f.opt_string("key")? {
                Some(_) => Some(f.relabel("key")?),
                None => None,
            };
            let key_file = f.opt_file_ref("key-file", base)?;
            if key.is_some() == key_file.is_some() {
                return Err(f.fail(
                    "key",
                    "tfa-rotpk needs exactly one of key (a label on the token) or key-file".into(),
                ));
            }
            FuseExport::TfaRotpk {
                key,
                key_file,
                digest_info: f.opt_bool("digest-info")?.unwrap_or(false),
                file: f
                    .opt_file_name("file")?
                    .unwrap_or_else(|| "rotpk_sha256.bin".into()),
            }
        }
        "esp32-sbv2" => {
            let keys = f.labels("keys", 3)?;
            let files = match f.opt_string_list("files")? {
                None => keys
                    .iter()
                    .map(|k| format!("{}_digest.bin", file_stem_of(k)))
                    .collect(),
                Some(v) => {
                    if v.len() != keys.len() {
                        return Err(f.fail(
                            "files",
                            format!("{} file names for {} keys", v.len(), keys.len()),
                        ));
                    }
                    for n in &v {
                        if n.is_empty() || n.starts_with('.') || n.contains(['/', '\\']) || n.chars().any(|c| c.is_control()) {
                            return Err(f.fail(
                                "files",
                                format!("{n:?} must be a plain file name (it is written into the out dir)"),
                            ));
                        }
                    }
                    v
                }
            };
            FuseExport::Esp32Sbv2 { keys, files }
        }
        "stm32mp15" => FuseExport::Stm32mp15 {
            key: f.label("key")?,
            file: f.opt_file_name("file")?.unwrap_or_else(|| "pkh.bin".into()),
        },
        "stm32mp-pkhth" => FuseExport::Stm32mpPkhth {
            keys: f.labels("keys", crate::formats::stm32::MAX_KEYS)?,
            file: f
                .opt_file_name("file")?
                .unwrap_or_else(|| "pkhth.bin".into()),
        },
        other => {
            return Err(f.fail(
                "format",
                format!("unknown fuse format {other:?} (expected hab4, ahab, tfa-rotpk, esp32-sbv2, stm32mp15 or stm32mp-pkhth)"),
            ))
        }
    };
    Ok(ExportFuses { export })
}

/// A label made file-name safe: letters, digits, '-', '_', '.' kept, the rest '_'.
fn file_stem_of(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

/// T and N of a split: 2 ≤ T ≤ N ≤ 255 (`shares` absent: only T is checked).
fn threshold_and_shares(f: &mut Fields, with_shares: bool) -> Result<(u8, u8), Fail> {
    let small = |f: &mut Fields, field: &str| -> Result<u8, Fail> {
        match f.take(field) {
            None => Err(f.missing(field)),
            Some(toml::Value::Integer(n)) if (2..=255).contains(&n) => Ok(n as u8),
            Some(_) => Err(f.fail(field, "expected a whole number from 2 to 255".into())),
        }
    };
    let t = small(f, "threshold")?;
    if !with_shares {
        return Ok((t, t));
    }
    let n = small(f, "shares")?;
    if t > n {
        return Err(f.fail(
            "threshold",
            format!("{t} shares cannot rebuild a key split into {n}"),
        ));
    }
    Ok((t, n))
}

fn custody_logins(f: &mut Fields) -> Result<CustodyLogins, Fail> {
    let l = CustodyLogins {
        so: f.opt_string("so-login")?,
        user: f.opt_string("user-login")?,
    };
    if l.so.is_some() != l.user.is_some() {
        return Err(f.fail(
            "so-login",
            "give both so-login (the SO puts the trusted wrap key) and user-login (the user logs in again after it), or neither".into(),
        ));
    }
    Ok(l)
}

fn custodian_role(f: &mut Fields) -> Result<String, Fail> {
    let r = f.string("custodian-role")?;
    if r.trim().is_empty() {
        return Err(f.fail("custodian-role", "must name a role".into()));
    }
    Ok(r)
}

fn parse_generate_wrap_key(f: &mut Fields) -> Result<GenerateWrapKey, Fail> {
    let label = f.label("label")?;
    let id = f.string("key-id")?;
    let key_id = match (id.len(), u16::from_str_radix(&id, 16)) {
        (4, Ok(v)) if id.chars().all(|c| c.is_ascii_hexdigit()) => v,
        _ => {
            return Err(f.fail(
                "key-id",
                format!("{id:?} is not a wrap key id (4 hex digits, e.g. \"0200\")"),
            ))
        }
    };
    let (threshold, shares) = threshold_and_shares(f, true)?;
    Ok(GenerateWrapKey {
        label,
        key_id,
        threshold,
        shares,
        custodian_role: custodian_role(f)?,
        logins: custody_logins(f)?,
    })
}

fn parse_restore(f: &mut Fields, base: &Path) -> Result<RestoreStep, Fail> {
    let (threshold, _) = threshold_and_shares(f, false)?;
    let custodian_role = custodian_role(f)?;
    let dir = f.string("backup-dir")?;
    if dir.is_empty() || dir.chars().any(|c| c.is_control()) {
        return Err(f.fail(
            "backup-dir",
            "must be a directory path (absolute, or relative to the script)".into(),
        ));
    }
    let keys = match f.opt_string_list("keys")? {
        None => Vec::new(),
        Some(_) => f.labels("keys", 64)?,
    };
    let check_value = match f.opt_string("check-value")? {
        None => None,
        Some(h) => {
            let mut kcv = [0u8; 3];
            let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
            hex::decode_to_slice(&clean, &mut kcv).map_err(|_| {
                f.fail(
                    "check-value",
                    format!("{h:?} is not a check value (6 hex digits, as the backup's transcript records it)"),
                )
            })?;
            Some(kcv)
        }
    };
    Ok(RestoreStep {
        threshold,
        custodian_role,
        backup_dir: base.join(&dir),
        backup_dir_name: dir,
        keys,
        check_value,
        keep_wrap_key: f.opt_bool("keep-wrap-key")?.unwrap_or(false),
        logins: custody_logins(f)?,
    })
}

fn parse_tbbr(f: &mut Fields, base: &Path) -> Result<IssueTbbr, Fail> {
    use crate::keys::HashAlg;
    use crate::pki::tbbr::{CertKind, KeyLabels};
    let keys = KeyLabels {
        rot: f.label("rot-key")?,
        trusted_world: f.label("trusted-world-key")?,
        non_trusted_world: f.label("non-trusted-world-key")?,
        soc_fw: f.label("soc-fw-key")?,
        tos_fw: match f.opt_string("tos-fw-key")? {
            Some(_) => Some(f.relabel("tos-fw-key")?),
            None => None,
        },
        nt_fw: f.label("nt-fw-key")?,
    };
    let tb_fw = f.file_ref("tb-fw", base)?;
    let soc_fw = f.file_ref("soc-fw", base)?;
    let tos_fw = f.opt_file_ref("tos-fw", base)?;
    let nt_fw = f.file_ref("nt-fw", base)?;
    if keys.tos_fw.is_some() != tos_fw.is_some() {
        return Err(f.fail(
            "tos-fw",
            "give both tos-fw-key and tos-fw (the BL32 image), or neither".into(),
        ));
    }
    let counter = |f: &mut Fields, field: &str| -> Result<u32, Fail> {
        match f.take(field) {
            None => Ok(0),
            Some(toml::Value::Integer(n)) if (0..=i64::from(u32::MAX)).contains(&n) => Ok(n as u32),
            Some(_) => Err(f.fail(field, "expected a counter from 0 to 4294967295".into())),
        }
    };
    let trusted_nv_counter = counter(f, "trusted-nv-counter")?;
    let non_trusted_nv_counter = counter(f, "non-trusted-nv-counter")?;
    let hash = match f.opt_string("hash")?.as_deref() {
        None | Some("sha256") => HashAlg::Sha256,
        Some("sha384") => HashAlg::Sha384,
        Some("sha512") => HashAlg::Sha512,
        Some(other) => {
            return Err(f.fail(
                "hash",
                format!("unknown hash {other:?} (expected sha256, sha384 or sha512)"),
            ))
        }
    };
    let files = CertKind::ALL
        .into_iter()
        .filter(|k| {
            keys.tos_fw.is_some() || !matches!(k, CertKind::TosFwKey | CertKind::TosFwContent)
        })
        .map(|k| (k, k.file_name().to_string()))
        .collect();
    Ok(IssueTbbr {
        keys,
        tb_fw,
        soc_fw,
        tos_fw,
        nt_fw,
        trusted_nv_counter,
        non_trusted_nv_counter,
        hash,
        files,
    })
}

fn parse_sign(f: &mut Fields, base: &Path) -> Result<SignStep, Fail> {
    use crate::signing::Format;
    let format = f.sign_format("format")?;
    let key = if format == Format::ImxHab4 {
        if f.opt_string("key")?.is_some() {
            return Err(f.fail(
                "key",
                "imx-hab4 signs with csf-key and img-key (or csf-key alone with fast-auth)".into(),
            ));
        }
        f.label("csf-key")?
    } else {
        f.label("key")?
    };
    let input = f.file_ref("input", base)?;
    let output = match f.opt_file_name("output")? {
        Some(o) => o,
        None => crate::signing::output_path(format, Path::new(&input.name), Path::new(""))
            .display()
            .to_string(),
    };
    let padding = match f.opt_string("padding")? {
        None => None,
        Some(p) => Some(crate::formats::raw::Padding::parse(&p).ok_or_else(|| {
            f.fail(
                "padding",
                format!("unknown padding {p:?} (expected pss or pkcs1)"),
            )
        })?),
    };
    if padding.is_some() && format != Format::Raw {
        return Err(f.fail("padding", format!("is for format raw, not {format}")));
    }
    let load_address = f.opt_u32("load-address")?;
    let entry_point = f.opt_u32("entry-point")?;
    if (load_address.is_some() || entry_point.is_some())
        && !matches!(format, Format::Stm32Mp15 | Format::Stm32Mp13)
    {
        return Err(f.fail(
            "load-address",
            format!("load-address and entry-point are for stm32mp15/stm32mp13, not {format}"),
        ));
    }
    let key_table = match f.opt_string_list("key-table")? {
        None => vec![],
        Some(_) => {
            if format != Format::Stm32Mp13 {
                return Err(f.fail("key-table", format!("is for stm32mp13, not {format}")));
            }
            f.labels("key-table", crate::formats::stm32::MAX_KEYS)?
        }
    };
    let srk_table = f.opt_file_ref("srk-table", base)?;
    let srk_index = f.opt_u32("srk-index")?;
    let img_key = match f.opt_string("img-key")? {
        Some(_) => Some(f.relabel("img-key")?),
        None => None,
    };
    let csf_cert = f.opt_file_ref("csf-cert", base)?;
    let img_cert = f.opt_file_ref("img-cert", base)?;
    let fast_auth = f.opt_bool("fast-auth")?;
    let nxp = matches!(format, Format::ImxHab4 | Format::ImxAhab);
    if nxp {
        if srk_table.is_none() {
            return Err(f.fail(
                "srk-table",
                format!("missing: {format} needs the SRK table (an export-fuses output or a file)"),
            ));
        }
        match srk_index {
            None => {
                return Err(f.fail(
                    "srk-index",
                    format!("missing: {format} needs the SRK's index (0 to 3)"),
                ))
            }
            Some(i) if i > 3 => {
                return Err(f.fail(
                    "srk-index",
                    format!("{i}: an SRK table holds at most 4 SRKs (0 to 3)"),
                ))
            }
            Some(_) => {}
        }
    } else if srk_table.is_some() || srk_index.is_some() {
        return Err(f.fail(
            "srk-table",
            format!("srk-table and srk-index are for imx-hab4 and imx-ahab, not {format}"),
        ));
    }
    let hab4_only = [
        ("img-key", img_key.is_some()),
        ("csf-cert", csf_cert.is_some()),
        ("img-cert", img_cert.is_some()),
        ("fast-auth", fast_auth.is_some()),
    ];
    if format != Format::ImxHab4 {
        if let Some((field, _)) = hab4_only.iter().find(|(_, set)| *set) {
            return Err(f.fail(field, format!("is for imx-hab4, not {format}")));
        }
    }
    let fast_auth = fast_auth.unwrap_or(false);
    // The certificates default to the token's, under the keys' labels.
    if format == Format::ImxHab4 {
        match (fast_auth, &img_key, &img_cert) {
            (true, None, None) | (false, Some(_), _) => {}
            (true, _, _) => return Err(f.fail(
                "fast-auth",
                "with fast-auth the SRK (csf-key) signs everything: give no img-key or img-cert"
                    .into(),
            )),
            (false, None, _) => {
                return Err(f.fail("img-key", "missing: the key that signs the image".into()))
            }
        }
    }
    let imx = match (nxp, srk_table) {
        (true, Some(srk_table)) => Some(Box::new(ImxSign {
            srk_table,
            srk_index: srk_index.unwrap_or(0),
            img_key,
            csf_cert,
            img_cert,
            fast_auth,
        })),
        (true, None) => {
            return Err(f.fail(
                "srk-table",
                format!("missing: {format} needs the SRK table (an export-fuses output or a file)"),
            ))
        }
        (false, _) => None,
    };
    Ok(SignStep {
        format,
        key,
        input,
        output,
        padding,
        load_address,
        entry_point,
        key_table,
        imx,
    })
}

/// A ceremony id names the console's out directory (`OUT/<id>`): one plain directory
/// name, nothing that climbs out or hides.
fn check_ceremony_id(id: &str) -> Result<(), String> {
    let bad = id.is_empty()
        || id == "."
        || id == ".."
        || id.len() > 128
        || id.contains(['/', '\\'])
        || id
            .chars()
            .any(|c| c.is_control() || super::people::deceptive(c));
    if bad {
        return Err(format!(
            "{id:?} must be one plain directory name (not empty, no '/', '\\', \"..\", control, bidi or zero-width characters, at most 128 bytes)"
        ));
    }
    Ok(())
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A label as the token and the witnesses see it: 1 to 128 bytes, no control, bidi or
/// zero-width characters (they make a label read as another).
fn check_label(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 128 || s.chars().any(|c| c.is_control()) {
        return Err("must be 1 to 128 printable characters".into());
    }
    if let Some(c) = s.chars().find(|&c| super::people::deceptive(c)) {
        return Err(format!(
            "has the invisible character U+{:04X} (bidi control or zero-width): a label must read as what it is",
            c as u32
        ));
    }
    Ok(())
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

    pub(crate) fn take(&mut self, field: &str) -> Option<toml::Value> {
        self.seen(field);
        self.table.get(field).cloned()
    }

    pub(crate) fn opt_bool(&mut self, field: &str) -> Result<Option<bool>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(v) => Err(self.fail(
                field,
                format!("expected true or false, found {}", v.type_str()),
            )),
        }
    }

    fn opt_u32(&mut self, field: &str) -> Result<Option<u32>, Fail> {
        match self.take(field) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) if (0..=i64::from(u32::MAX)).contains(&n) => {
                Ok(Some(n as u32))
            }
            Some(toml::Value::String(h)) => h
                .strip_prefix("0x")
                .and_then(|d| u32::from_str_radix(d, 16).ok())
                .map(Some)
                .ok_or_else(|| self.fail(field, format!("{h:?} is not a 32-bit \"0x…\" value"))),
            Some(_) => Err(self.fail(field, "expected a 32-bit integer or \"0x…\" hex".into())),
        }
    }

    /// A label read a second time (after `opt_string` saw it was there).
    fn relabel(&mut self, field: &str) -> Result<String, Fail> {
        self.label(field)
    }

    /// 1 to `max` key labels.
    fn labels(&mut self, field: &str, max: usize) -> Result<Vec<String>, Fail> {
        let v = self.opt_string_list(field)?.unwrap_or_default();
        if v.is_empty() || v.len() > max {
            return Err(self.fail(
                field,
                format!("expected 1 to {max} key labels, got {}", v.len()),
            ));
        }
        for (k, s) in v.iter().enumerate() {
            check_label(s).map_err(|m| self.fail(&format!("{field}[{k}]"), m))?;
        }
        Ok(v)
    }

    fn sign_format(&mut self, field: &str) -> Result<crate::signing::Format, Fail> {
        let s = self.string(field)?;
        crate::signing::Format::parse(&s).map_err(|_| {
            self.fail(
                field,
                format!(
                    "unknown format {s:?} (expected {})",
                    crate::signing::Format::names()
                ),
            )
        })
    }

    pub(crate) fn check_plain(&self, field: &str, s: &str) -> Result<(), Fail> {
        // A relative path below the script's directory (or an out-dir file name).
        let ok = !s.is_empty()
            && !s.starts_with(['/', '.'])
            && !s.contains('\\')
            && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
            && !s.chars().any(|c| c.is_control());
        if ok {
            Ok(())
        } else {
            Err(self.fail(
                field,
                format!("{s:?} must be an earlier step's output or a relative path below the script's directory"),
            ))
        }
    }

    /// A file next to the script: a relative path below the script's directory that
    /// stays there once symlinks are followed (a script must not read `/etc/…` or a
    /// link out of its directory onto a token).
    fn file_inside(&mut self, field: &str, base: &Path) -> Result<PathBuf, Fail> {
        let s = self.string(field)?;
        let plain = !s.is_empty()
            && !s.starts_with(['/', '.'])
            && !s.contains('\\')
            && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
            && !s.chars().any(|c| c.is_control());
        if !plain {
            return Err(self.fail(
                field,
                format!("{s:?} must be a relative path below the script's directory"),
            ));
        }
        let path = base.join(&s);
        // A file that does not exist yet is reported by `check` when it reads it.
        if let (Ok(real), Ok(dir)) = (path.canonicalize(), base.canonicalize()) {
            if !real.starts_with(&dir) {
                return Err(self.fail(
                    field,
                    format!(
                        "{s:?} leads out of the script's directory (to {}) through a symbolic link",
                        real.display()
                    ),
                ));
            }
        }
        Ok(path)
    }

    fn check_ref(&self, field: &str, s: &str, base: &Path) -> Result<FileRef, Fail> {
        self.check_plain(field, s)?;
        Ok(FileRef {
            name: s.to_string(),
            beside_script: base.join(s),
            from_step: None,
        })
    }

    fn file_ref(&mut self, field: &str, base: &Path) -> Result<FileRef, Fail> {
        let s = self.string(field)?;
        self.check_ref(field, &s, base)
    }

    fn opt_file_ref(&mut self, field: &str, base: &Path) -> Result<Option<FileRef>, Fail> {
        match self.opt_string(field)? {
            None => Ok(None),
            Some(s) => self.check_ref(field, &s, base).map(Some),
        }
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
        check_label(&s).map_err(|m| self.fail(field, m))?;
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
