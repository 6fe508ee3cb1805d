//! The data each step kind carries once parsed: one struct (or enum) per kind, with
//! paths already resolved. Plain data: no parsing (that is the `*_steps` modules') and no
//! token or file access (that is the runner's).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::hsm::{Label, ObjectClass, ObjectId, UserType};
use crate::keys::KeyAlgorithm;

/// init-token: (re-)initialize the token with the script's token label, a new SO PIN and a
/// new user PIN. Destructive.
#[derive(Debug, Clone)]
pub struct InitToken {
    /// The name of the secret (in the answers file, or asked for) that holds the new SO
    /// PIN.
    pub so_pin: String,
    /// The name of the secret (in the answers file, or asked for) that holds the new user
    /// PIN.
    pub user_pin: String,
}

/// login: log in for the steps that follow.
#[derive(Debug, Clone)]
pub struct Login {
    /// Who logs in (the user unless the script says `so`).
    pub user: UserType,
    /// The name of the secret (in the answers file, or asked for) that holds the PIN.
    pub pin: String,
}

/// change-pin: replace a PIN (logging in with the old one first).
#[derive(Debug, Clone)]
pub struct ChangePin {
    /// Whose PIN changes.
    pub user: UserType,
    /// The name of the secret (in the answers file, or asked for) that holds the current
    /// PIN.
    pub old_pin: String,
    /// The name of the secret (in the answers file, or asked for) that holds the new PIN.
    pub new_pin: String,
}

/// generate-key: a key pair made on the token; its private half never leaves it.
#[derive(Debug, Clone)]
pub struct GenerateKey {
    /// The key's algorithm and size.
    pub algorithm: KeyAlgorithm,
    /// The label both halves get.
    pub label: Label,
    /// The id both halves get (on a YubiHSM: its 16-bit object id).
    pub key_id: ObjectId,
    /// The key may be backed up under a wrap key (never the default).
    pub exportable_under_wrap: bool,
}

/// import-key: a private key from a file beside the script, put on the token.
#[derive(Debug, Clone)]
pub struct ImportKey {
    /// The label both halves get.
    pub label: Label,
    /// The id both halves get.
    pub key_id: ObjectId,
    /// Resolved against the script's directory.
    pub key_file: PathBuf,
    /// Secret name of the passphrase (encrypted PKCS#8).
    pub passphrase: Option<String>,
}

/// What write-object stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectType {
    /// A DER or PEM X.509 certificate.
    Cert,
    /// Bytes, stored as they are (PKCS#11 CKO_DATA; YubiHSM opaque).
    Data,
}

/// write-object: a certificate or data object from a file beside the script.
#[derive(Debug, Clone)]
pub struct WriteObject {
    /// The object's label.
    pub label: Label,
    /// The object's id (a certificate takes its key's, as CST expects).
    pub object_id: ObjectId,
    /// Certificate or data.
    pub object_type: ObjectType,
    /// The file, resolved against the script's directory.
    pub file: PathBuf,
    /// CKA_APPLICATION for data objects.
    pub application: Option<String>,
}

/// delete-object: objects deleted by label. Destructive.
#[derive(Debug, Clone)]
pub struct DeleteObject {
    /// The label of the objects to delete.
    pub label: Label,
    /// Only objects of this class; `None`: every object with the label.
    pub class: Option<ObjectClass>,
}

/// export-public-key: a key's public half written into the out dir.
#[derive(Debug, Clone)]
pub struct ExportPublicKey {
    /// The label of the key.
    pub key: Label,
    /// Plain file names in the out dir.
    pub pem: Option<String>,
    /// The DER file's name in the out dir, if one is asked for.
    pub der: Option<String>,
}

/// instruction: something people do, signed off; touches no token.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// What to do, shown to everyone and recorded in the transcript.
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
    /// 64 random bits, positive (as `openssl req -x509` does).
    Random,
    /// This serial (the script's `serial`).
    Fixed(u64),
}

/// issue-certificate: an X.509 certificate for a key on the token, signed on the token by
/// itself or an issuer key.
#[derive(Debug, Clone)]
pub struct IssueCertificate {
    /// What kind of certificate: the extensions and the hash it is signed with.
    pub profile: crate::pki::Profile,
    /// Label of the subject key on the token.
    pub key: Label,
    /// Label of the issuer's key; `None`: self-signed.
    pub issuer_key: Option<Label>,
    /// Output file of an earlier issue-certificate step (required with issuer-key).
    pub issuer_cert: Option<String>,
    /// A CN, or a DN string (`/C=DE/O=Acme/CN=Root` or `CN=Root,O=Acme`).
    pub subject: String,
    /// Its serial number.
    pub serial: Serial,
    /// Days of validity from now (1 to 36500).
    pub validity_days: u32,
    /// The PEM file's name in the out dir, if one is asked for.
    pub pem: Option<String>,
    /// The DER file's name in the out dir, if one is asked for.
    pub der: Option<String>,
    /// Also store the certificate on the token under the key's label and id.
    pub write_to_token: bool,
}

/// What export-fuses computes: one variant per vendor format, with the files it writes into
/// the out dir.
#[derive(Debug, Clone)]
pub enum FuseExport {
    /// SRK table and fuse file from 1–4 SRK certificates.
    Hab4 {
        /// The SRK certificates, in SRK order.
        certs: Vec<FileRef>,
        /// The SoC whose U-Boot fuse commands are shown, if named.
        soc: Option<crate::formats::hab4::Soc>,
        /// `SRK_1_2_3_4_table.bin` / `SRK_1_2_3_4_fuse.bin` for four certificates.
        table: String,
        /// The fuse file's name (the SRK table's hash).
        fuse: String,
    },
    /// AHAB SRK table and SRK hash from exactly 4 SRK certificates.
    Ahab {
        /// The four SRK certificates, in SRK order.
        certs: Vec<FileRef>,
        /// RSA records as RSA-PSS (spsdk, i.MX 9) instead of PKCS#1 v1.5 (srktool).
        rsa_pss: bool,
        /// srktool -a's fuse file: SHA-512 of the table (i.MX 8QXP/8QM).
        srktool: bool,
        /// The family whose U-Boot fuse commands are shown, if named.
        family: Option<crate::formats::imx::ahab_srk::Family>,
        /// The SRK table's file name.
        table: String,
        /// The SRK hash's file name.
        fuse: String,
    },
    /// SHA-256 of the ROT public key's DER SPKI (`rotpk_sha256.bin`).
    TfaRotpk {
        /// The ROT key by its label on the token, or…
        key: Option<Label>,
        /// …the ROT public key as a file.
        key_file: Option<FileRef>,
        /// Write the hash behind the 19-byte SHA-256 DigestInfo header some platforms
        /// store (51 bytes in all) rather than the 32 bytes alone.
        digest_info: bool,
        /// The output file's name.
        file: String,
    },
    /// One eFuse digest file per key.
    Esp32Sbv2 {
        /// Up to 3 keys, by label, in eFuse block order.
        keys: Vec<Label>,
        /// One digest file name per key.
        files: Vec<String>,
    },
    /// STM32MP15 PKH of one key.
    Stm32mp15 {
        /// The key, by label.
        key: Label,
        /// The PKH file's name.
        file: String,
    },
    /// STM32MP13/MP25 hash of the key hash table (up to 8 keys, in OTP order).
    Stm32mpPkhth {
        /// The keys, by label, in OTP order.
        keys: Vec<Label>,
        /// The hash file's name.
        file: String,
    },
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

/// export-fuses: the fuse or OTP values a device is provisioned with, computed from public
/// keys or certificates and read aloud.
#[derive(Debug, Clone)]
pub struct ExportFuses {
    /// Which format, with its inputs and output files.
    pub export: FuseExport,
}

/// sign: a payload signed with a key on the token, in a vendor format; the signature is
/// checked before it is written.
#[derive(Debug, Clone)]
pub struct SignStep {
    /// The output format (raw, esp32-sbv2, stm32mp15, imx-hab4, …).
    pub format: crate::signing::Format,
    /// The signing key's label (imx-hab4: the CSF key; imx-ahab: the SRK).
    pub key: Label,
    /// Resolved against the script's directory (or an earlier step's output).
    pub input: FileRef,
    /// The signed file's name in the out dir.
    pub output: String,
    /// raw with an RSA key: PSS (the default) or PKCS#1 v1.5.
    pub padding: Option<crate::formats::raw::Padding>,
    /// stm32mp15/13: the image's load address for the header.
    pub load_address: Option<u32>,
    /// stm32mp15/13: the image's entry point for the header.
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
    /// The SRK table file (an export-fuses output, or a file beside the script).
    pub srk_table: FileRef,
    /// 0-based index of the SRK in the table.
    pub srk_index: u32,
    /// imx-hab4: the IMG key (none with fast-auth) and the certificates as files (none:
    /// the token's certificates under the keys' labels).
    pub img_key: Option<Label>,
    /// The CSF certificate as a file; `None`: the token's under the CSF key's label.
    pub csf_cert: Option<FileRef>,
    /// The IMG certificate as a file; `None`: the token's under the IMG key's label.
    pub img_cert: Option<FileRef>,
    /// HAB fast authentication: the SRK (a non-CA key) signs the CSF and the image.
    pub fast_auth: bool,
}

/// The TF-A TBBR certificate chain (cert_create's), every key on the token.
#[derive(Debug, Clone)]
pub struct IssueTbbr {
    /// The chain's keys by label: ROT, trusted and non-trusted world, and the images' keys.
    pub keys: crate::pki::tbbr::KeyLabels,
    /// BL2, BL31, BL32 (with a Trusted OS key), BL33.
    pub tb_fw: FileRef,
    /// BL31, whose hash goes into the SoC firmware content certificate.
    pub soc_fw: FileRef,
    /// BL32, with a Trusted OS key.
    pub tos_fw: Option<FileRef>,
    /// BL33, whose hash goes into the non-trusted firmware content certificate.
    pub nt_fw: FileRef,
    /// The trusted NV counter the certificates carry.
    pub trusted_nv_counter: u32,
    /// The non-trusted NV counter the certificates carry.
    pub non_trusted_nv_counter: u32,
    /// The hash of the images and of the certificates' signatures.
    pub hash: crate::keys::HashAlg,
    /// cert_create's file names, in chain order.
    pub files: Vec<(crate::pki::tbbr::CertKind, String)>,
}

/// verify: a signed file (or a detached signature) checked against a key on the token.
#[derive(Debug, Clone)]
pub struct VerifyStep {
    /// The signed file's format.
    pub format: crate::signing::Format,
    /// The label of the key whose public half verifies it.
    pub key: Label,
    /// The signed file (an earlier step's output, or a file beside the script).
    pub input: FileRef,
    /// Detached signature (raw only).
    pub signature: Option<FileRef>,
}

/// Rotate the session's authentication key (a safe rotation through a temporary key; a
/// backend with authentication keys does it, see `hsm::admin`).
#[derive(Debug, Clone)]
pub struct ChangeAuthKey {
    /// A free object id for the temporary key the rotation goes through.
    pub temporary_key_id: u16,
    /// Secret names.
    pub temporary_password: String,
    /// The name of the secret (in the answers file, or asked for) that holds the rotated
    /// key's new password.
    pub new_password: String,
    /// New label, domains and capabilities for the key; `None` keeps the old key's.
    pub replacement: Option<crate::hsm::admin::AuthKeySpec>,
}

/// Put an authentication key (officer, operator, auditor) on a backend that has them.
#[derive(Debug, Clone)]
pub struct PutAuthKey {
    /// The key: id, label, domains, capabilities and delegated capabilities.
    pub spec: crate::hsm::admin::AuthKeySpec,
    /// Secret name.
    pub password: String,
}

/// The device audit log's force-audit option (a backend with a device audit log).
#[derive(Debug, Clone)]
pub struct SetAudit {
    /// On: the device refuses to work once its audit log is full, until the log is read.
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
    /// What the signers attest, shown and recorded with the signatures.
    pub text: Option<String>,
}

/// The secret names a custody step logs in with where the backend needs the SO to put a
/// wrap key (PKCS#11, the rehearsal token): the SO for the put, then the user again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustodyLogins {
    /// The name of the secret (in the answers file, or asked for) that holds the SO PIN,
    /// for the SO's login before the wrap key is put.
    pub so: Option<String>,
    /// The name of the secret (in the answers file, or asked for) that holds the user PIN,
    /// for the user's login after.
    pub user: Option<String>,
}

/// A new AES-256 wrap key, split T-of-N among the custodians (people in
/// `custodian_role` on the roll call), then put on the token.
#[derive(Debug, Clone)]
pub struct GenerateWrapKey {
    /// The wrap key's label.
    pub label: Label,
    /// The wrap key's 16-bit id (4 hex digits in the script).
    pub key_id: u16,
    /// How many shares rebuild the key (T, 2 to N).
    pub threshold: u8,
    /// How many shares are handed out (N, one per custodian, up to 255).
    pub shares: u8,
    /// The role whose people hold the shares.
    pub custodian_role: String,
    /// Where the backend needs the SO to put the key: the logins around it.
    pub logins: CustodyLogins,
}

/// Keys exported under a wrap key into a directory of the out dir.
#[derive(Debug, Clone)]
pub struct BackupStep {
    /// The wrap key's label.
    pub wrap_key: Label,
    /// The keys to back up, by label (each made exportable under wrap).
    pub keys: Vec<Label>,
    /// A plain name: the backup goes into `OUT/<dir>/` (manifest.json and one file per
    /// key).
    pub dir: String,
}

/// A backup restored from T custodians' shares.
#[derive(Debug, Clone)]
pub struct RestoreStep {
    /// How many custodians give their share (T).
    pub threshold: u8,
    /// The role whose people hold the shares.
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
    /// Keep the rebuilt wrap key on the token after the restore (deleted by default).
    pub keep_wrap_key: bool,
    /// Where the backend needs the SO to put the key: the logins around it.
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
