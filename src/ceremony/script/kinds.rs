//! The data each step kind carries once parsed: one struct (or enum) per kind, with
//! paths already resolved. Plain data: no parsing (that is the `*_steps` modules') and no
//! token or file access (that is the runner's).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::hsm::{Label, ObjectClass, ObjectId, UserType};
use crate::keys::KeyAlgorithm;
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
    pub label: Label,
    pub key_id: ObjectId,
    /// The key may be backed up under a wrap key (never the default).
    pub exportable_under_wrap: bool,
}

#[derive(Debug, Clone)]
pub struct ImportKey {
    pub label: Label,
    pub key_id: ObjectId,
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
    pub label: Label,
    pub object_id: ObjectId,
    pub object_type: ObjectType,
    pub file: PathBuf,
    /// CKA_APPLICATION for data objects.
    pub application: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeleteObject {
    pub label: Label,
    pub class: Option<ObjectClass>,
}

#[derive(Debug, Clone)]
pub struct ExportPublicKey {
    pub key: Label,
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
    pub key: Label,
    /// Label of the issuer's key; `None`: self-signed.
    pub issuer_key: Option<Label>,
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
        key: Option<Label>,
        key_file: Option<FileRef>,
        digest_info: bool,
        file: String,
    },
    /// One eFuse digest file per key.
    Esp32Sbv2 {
        keys: Vec<Label>,
        files: Vec<String>,
    },
    /// STM32MP15 PKH of one key.
    Stm32mp15 { key: Label, file: String },
    /// STM32MP13/MP25 hash of the key hash table (up to 8 keys, in OTP order).
    Stm32mpPkhth { keys: Vec<Label>, file: String },
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
    pub key: Label,
    /// Resolved against the script's directory (or an earlier step's output).
    pub input: FileRef,
    pub output: String,
    pub padding: Option<crate::formats::raw::Padding>,
    pub load_address: Option<u32>,
    pub entry_point: Option<u32>,
    /// stm32mp13: the key set in OTP order (labels), and the index of `key` in it.
    pub key_table: Vec<Label>,
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
    pub img_key: Option<Label>,
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
    pub key: Label,
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
    pub label: Label,
    pub key_id: u16,
    pub threshold: u8,
    pub shares: u8,
    pub custodian_role: String,
    pub logins: CustodyLogins,
}

/// Keys exported under a wrap key into a directory of the out dir.
#[derive(Debug, Clone)]
pub struct BackupStep {
    pub wrap_key: Label,
    pub keys: Vec<Label>,
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
    pub keys: Vec<Label>,
    /// The wrap key's check value as the backup ceremony's transcript recorded it.
    pub check_value: Option<[u8; 3]>,
    pub keep_wrap_key: bool,
    pub logins: CustodyLogins,
}

impl CustodyLogins {
    pub(super) fn secrets(&self) -> Vec<(&'static str, &str)> {
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

/// A text that is not `cert` or `data`; it holds the text, for the caller's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not cert or data")]
pub struct ObjectTypeError(pub String);

/// `cert` or `data`, as a script's `type` and the CLI's `--type` name them.
impl std::str::FromStr for ObjectType {
    type Err = ObjectTypeError;

    fn from_str(s: &str) -> Result<Self, ObjectTypeError> {
        match s {
            "cert" => Ok(ObjectType::Cert),
            "data" => Ok(ObjectType::Data),
            other => Err(ObjectTypeError(other.to_string())),
        }
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
