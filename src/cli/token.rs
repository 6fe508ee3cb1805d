//! One-step token commands: each runs the same step the engine runs in a ceremony.
//!
//! Each command reads its secrets first, then runs its step through the ceremony runner
//! on a one-step script (`one_step_in`), so it checks, records (the transcript's entries
//! are a ceremony's) and refuses exactly as a ceremony would. The only token calls made
//! here directly are opening, logging in, and the reads of `objects` and
//! `export-pubkey`, which change nothing and record nothing.

use std::path::PathBuf;

use clap::Args;

use serde_json::json;

use super::{BackendArgs, Failure, Outcome};
use crate::ceremony::engine::StepResult;
use crate::ceremony::inputs::{Answer, Danger, Inputs};
use crate::ceremony::people::Participant;
use crate::ceremony::runner::{self, Vault};
use crate::ceremony::script::{
    Action, ChangePin, DeleteObject, GenerateKey, Header, ImportKey, InitToken, ObjectType,
    ObjectTypeError, Script, Step, WriteObject,
};
use crate::formats::words::Fingerprint;
use crate::hsm::names::LabelError;
use crate::hsm::{self, BackendUri, Label, ObjectClass, ObjectId, Token, UserType};
use crate::keys::KeyAlgorithm;
use crate::secret::{Secret, SecretSource};

/// `officiant init-token`: erase the token and set its label, SO PIN and user PIN.
#[derive(Args, Debug)]
pub struct InitTokenArgs {
    /// The backend; `--pin-source` here is the new user PIN (required).
    #[command(flatten)]
    pub b: BackendArgs,
    /// The label the token gets.
    #[arg(long)]
    pub label: String,
    /// Where the new SO PIN comes from: env:NAME, file:PATH or prompt (typed twice).
    #[arg(long)]
    pub so_pin_source: String,
}

/// `officiant change-pin`: replace the user or SO PIN (logs in with the old one).
#[derive(Args, Debug)]
pub struct ChangePinArgs {
    /// The backend (its `--pin-source` is not used: the old PIN has its own flag).
    #[command(flatten)]
    pub b: BackendArgs,
    /// user or so
    #[arg(long, default_value = "user")]
    pub user: String,
    /// Where the current PIN comes from: env:NAME, file:PATH or prompt.
    #[arg(long)]
    pub old_pin_source: String,
    /// Where the new PIN comes from: env:NAME, file:PATH or prompt (typed twice).
    #[arg(long)]
    pub new_pin_source: String,
}

/// `officiant generate-key`: a key pair made on the token (logs in as the user).
#[derive(Args, Debug)]
pub struct GenerateKeyArgs {
    /// The backend and the user PIN's source (required).
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the new key pair (both halves).
    #[arg(long)]
    pub label: String,
    /// Object id in hex.
    #[arg(long)]
    pub id: Option<String>,
    /// ec-p256, ec-p384, ec-p521, rsa-2048, rsa-3072 or rsa-4096.
    #[arg(long)]
    pub algorithm: String,
    /// Let the key be backed up under a wrap key (officiant backup); still never
    /// extractable in the clear. Off by default: such a key can never leave the token.
    #[arg(long)]
    pub exportable_under_wrap: bool,
}

/// `officiant import-key`: a private key from a file onto the token (logs in as the
/// user).
#[derive(Args, Debug)]
pub struct ImportKeyArgs {
    /// The backend and the user PIN's source (required).
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the imported key pair.
    #[arg(long)]
    pub label: String,
    /// Object id in hex (default: derived from the label).
    #[arg(long)]
    pub id: Option<String>,
    /// The private key: PKCS#8 (encrypted or not), PKCS#1 or SEC1, PEM or DER.
    #[arg(long)]
    pub key_file: PathBuf,
    /// Where the key file's passphrase comes from: env:NAME, file:PATH or prompt.
    #[arg(long)]
    pub passphrase_source: Option<String>,
}

/// `officiant write-object`: a certificate or data file stored as an object (logs in as
/// the user).
#[derive(Args, Debug)]
pub struct WriteObjectArgs {
    /// The backend and the user PIN's source (required).
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the new object.
    #[arg(long)]
    pub label: String,
    /// Object id in hex (default: derived from the label).
    #[arg(long)]
    pub id: Option<String>,
    /// cert or data
    #[arg(long = "type")]
    pub kind: String,
    /// The file whose bytes become the object's value.
    #[arg(long)]
    pub file: PathBuf,
}

/// `officiant delete-object`: delete every object with a label (of one type with
/// `--type`); logs in as the user.
#[derive(Args, Debug)]
pub struct DeleteObjectArgs {
    /// The backend and the user PIN's source (required).
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the objects to delete.
    #[arg(long)]
    pub label: String,
    /// private, public, cert, data (default: every object with the label)
    #[arg(long = "type")]
    pub kind: Option<String>,
}

/// `officiant objects`: list the token's objects (private ones only with a PIN source).
#[derive(Args, Debug)]
pub struct ObjectsArgs {
    /// The backend; with `--pin-source` it logs in first.
    #[command(flatten)]
    pub b: BackendArgs,
    /// Print a JSON array (class, label, id, key type, bits, flags, public key SHA-256).
    #[arg(long)]
    pub json: bool,
}

/// `officiant export-pubkey`: a key's public half, as PEM on stdout or into a file.
#[derive(Args, Debug)]
pub struct ExportPubkeyArgs {
    /// The backend; with `--pin-source` it logs in first.
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the key.
    #[arg(long)]
    pub key: String,
    /// Write DER SubjectPublicKeyInfo instead of PEM (needs -o).
    #[arg(long)]
    pub der: bool,
    /// The file to write (never over an existing one); default: PEM on stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

/// Whether a command logs in before its step.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Login {
    Required,
    IfGiven,
    No,
}

fn source(flag: &str, s: &str) -> Result<SecretSource, Failure> {
    SecretSource::parse(s).map_err(|e| Failure(format!("--{flag}: {e}")))
}

pub(super) fn read_secret(flag: &str, s: &str, what: &str) -> Result<Secret, Failure> {
    source(flag, s)?
        .read(what)
        .map_err(|e| Failure(format!("--{flag}: {e}")))
}

/// A secret the command sets: typed twice at a prompt.
fn read_new_secret(flag: &str, s: &str, what: &str) -> Result<Secret, Failure> {
    source(flag, s)?
        .read_new(what)
        .map_err(|e| Failure(format!("--{flag}: {e}")))
}

fn hex_id(id: &Option<String>, label: &str) -> Result<ObjectId, Failure> {
    let bad = |h: &str| Failure(format!("--id: {h:?} is not 1 to 32 bytes of hex"));
    match id {
        // Without --id, the id is derived from the label so reruns name the same object.
        None => ObjectId::new(crate::output::sha256(label.as_bytes())[..2].to_vec())
            .map_err(|_| bad("")),
        Some(h) => h.parse().map_err(|_| bad(h)),
    }
}

/// `--label`: a label as a ceremony's script takes it.
fn label(text: &str) -> Result<Label, Failure> {
    text.parse()
        .map_err(|e: LabelError| Failure(format!("--label: {e}")))
}

pub(super) fn open(
    b: &BackendArgs,
    token_label: Option<&str>,
    login: Login,
) -> Result<(BackendUri, Box<dyn Token>), Failure> {
    let uri = BackendUri::parse(&b.backend)?;
    let label = b.token.as_deref().or(token_label);
    let mut token =
        hsm::open(&uri, label).map_err(|e| Failure(format!("cannot open {uri}: {e}")))?;
    super::apply_auth_key(token.as_mut(), b)?;
    match (&b.pin_source, login) {
        (Some(src), Login::Required | Login::IfGiven) => {
            let pin = read_secret("pin-source", src, "user PIN")?;
            token.login(UserType::User, &pin)?;
        }
        (None, Login::Required) => {
            return Err(Failure(
                "this command logs in: give --pin-source env:NAME, file:PATH or prompt".into(),
            ))
        }
        _ => {}
    }
    Ok((uri, token))
}

pub(super) fn transcript_path(b: &BackendArgs) -> PathBuf {
    b.transcript
        .clone()
        .unwrap_or_else(|| PathBuf::from("officiant-transcript.jsonl"))
}

/// Run one step exactly as a ceremony would, and append it to the transcript.
fn one_step(
    b: &BackendArgs,
    command: &str,
    step: Step,
    vault: Vault,
    login: Login,
    token_label: Option<&str>,
) -> Result<StepResult, Failure> {
    one_step_in(
        b,
        command,
        step,
        vault,
        login,
        token_label,
        &PathBuf::from("."),
    )
}

/// [`one_step`] with the step's output files written into `out_dir`: the same runner a
/// ceremony uses, on a one-step script, with the command's secrets as its inputs.
pub(super) fn one_step_in(
    b: &BackendArgs,
    command: &str,
    step: Step,
    vault: Vault,
    login: Login,
    token_label: Option<&str>,
    out_dir: &std::path::Path,
) -> Result<StepResult, Failure> {
    // A --transcript that is not one is refused before the token is touched.
    crate::ceremony::transcript::check_appendable(&transcript_path(b))
        .map_err(|e| Failure(e.to_string()))?;
    let (uri, mut token) = open(b, token_label, login)?;
    let script = Script {
        path: PathBuf::from(format!("officiant {command}")),
        sha256: [0; 32],
        ceremony: Header {
            id: command.to_string(),
            title: format!("officiant {command}"),
            purpose: None,
            version: 1,
            token: token_label.unwrap_or("").to_string(),
            reviewer: None,
            evidence_key: None,
        },
        roles: Default::default(),
        steps: vec![step],
        signoffs: None,
    };
    let open = json!({"command": command, "backend": uri.to_string(), "officiant": env!("CARGO_PKG_VERSION")});
    let mut inputs = Given { vault };
    runner::run_single(
        &script,
        token.as_mut(),
        &uri.to_string(),
        open,
        &transcript_path(b),
        out_dir,
        &mut inputs,
    )
    .map_err(|e| Failure(e.to_string()))
}

/// A one-step command's inputs: the secrets its flags named (read before the token was
/// opened), and the command itself as the confirmation of a destructive step.
struct Given {
    vault: Vault,
}

impl Inputs for Given {
    fn roster(&mut self, _: &Script) -> Answer<Vec<Participant>> {
        Answer::Given(Vec::new())
    }
    fn acknowledge(&mut self, _: &Script, _: usize, _: &str, _: &StepResult) -> Answer<String> {
        Answer::Abort("a one-step command has no reviewer".into())
    }
    fn sign_off(&mut self, _: &Script, _: usize, role: &str, _: usize, _: usize) -> Answer<String> {
        Answer::Abort(format!("a one-step command has no {role} to sign off"))
    }
    fn confirm(&mut self, _: &Script, _: usize, _: &Danger) -> Answer<()> {
        Answer::Given(())
    }
    fn secret(
        &mut self,
        script: &Script,
        step: usize,
        name: &str,
        _: bool,
        retry: Option<&str>,
    ) -> Answer<Secret> {
        if let Some(why) = retry {
            return Answer::Abort(format!("{}: {why}", script.steps[step].place(step)));
        }
        match self.vault.remove(name) {
            Some(v) => Answer::Given(v),
            None => Answer::Abort(format!("secret {name:?} was not given")),
        }
    }
    fn rejected(&mut self, script: &Script, step: usize, reason: &str) -> Answer<()> {
        Answer::Abort(format!("{}: {reason}", script.steps[step].place(step)))
    }
}

pub(super) fn step(id: &str, action: Action) -> Step {
    Step {
        id: id.into(),
        title: None,
        description: None,
        sign_off: vec![],
        review: None,
        action,
    }
}

fn print_objects(r: &StepResult) {
    for o in &r.objects {
        println!("{} {} id {} {}", o.class, o.label, o.id, o.key_type);
        if let Some(fp) = o
            .public_key_sha256
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
        {
            let f = Fingerprint::of(&fp);
            println!(
                "public key SHA-256: {}\n                    {}",
                f.groups, f.words
            );
        }
    }
}

/// `officiant init-token`. Reads both PINs, then runs the init-token step (the command
/// is the confirmation of its destruction). Prints `token initialized: LABEL`.
pub fn init_token(a: InitTokenArgs) -> Outcome {
    let so = read_new_secret("so-pin-source", &a.so_pin_source, "new SO PIN")?;
    let user_src =
        a.b.pin_source
            .as_deref()
            .ok_or_else(|| Failure("init-token sets the user PIN too: give --pin-source".into()))?;
    let user = read_new_secret("pin-source", user_src, "new user PIN")?;
    let mut vault = Vault::new();
    vault.insert("so".into(), so);
    vault.insert("user".into(), user);
    let mut b = a.b.clone();
    b.pin_source = None;
    one_step(
        &b,
        "init-token",
        step(
            "init-token",
            Action::InitToken(InitToken {
                so_pin: "so".into(),
                user_pin: "user".into(),
            }),
        ),
        vault,
        Login::No,
        Some(&a.label),
    )?;
    println!("token initialized: {}", a.label);
    Ok(())
}

/// `officiant change-pin`. Prints `user PIN changed` or `SO PIN changed`.
pub fn change_pin(a: ChangePinArgs) -> Outcome {
    let user = match a.user.as_str() {
        "user" => UserType::User,
        "so" => UserType::So,
        other => return Err(Failure(format!("--user: {other:?} is not user or so"))),
    };
    let mut vault = Vault::new();
    vault.insert(
        "old".into(),
        read_secret("old-pin-source", &a.old_pin_source, "current PIN")?,
    );
    vault.insert(
        "new".into(),
        read_new_secret("new-pin-source", &a.new_pin_source, "new PIN")?,
    );
    one_step(
        &a.b,
        "change-pin",
        step(
            "change-pin",
            Action::ChangePin(ChangePin {
                user,
                old_pin: "old".into(),
                new_pin: "new".into(),
            }),
        ),
        vault,
        Login::No,
        None,
    )?;
    println!("{user} PIN changed");
    Ok(())
}

/// `officiant generate-key`. Prints each object made (class, label, id, key type) and
/// its public key's SHA-256 in hex groups and PGP words.
pub fn generate_key(a: GenerateKeyArgs) -> Outcome {
    let algorithm = KeyAlgorithm::parse(&a.algorithm).ok_or_else(|| {
        let all: Vec<&str> = KeyAlgorithm::ALL.iter().map(|k| k.name()).collect();
        Failure(format!(
            "--algorithm: unknown algorithm {:?} (expected {})",
            a.algorithm,
            all.join(", ")
        ))
    })?;
    let key_id = hex_id(&a.id, &a.label)?;
    let r = one_step(
        &a.b,
        "generate-key",
        step(
            "generate-key",
            Action::GenerateKey(GenerateKey {
                algorithm,
                label: label(&a.label)?,
                key_id,
                exportable_under_wrap: a.exportable_under_wrap,
            }),
        ),
        Vault::new(),
        Login::Required,
        None,
    )?;
    print_objects(&r);
    Ok(())
}

/// `officiant import-key`. Prints the objects made, as generate-key does.
pub fn import_key(a: ImportKeyArgs) -> Outcome {
    let key_id = hex_id(&a.id, &a.label)?;
    let mut vault = Vault::new();
    if let Some(src) = &a.passphrase_source {
        vault.insert(
            "passphrase".into(),
            read_secret("passphrase-source", src, "key file passphrase")?,
        );
    }
    let r = one_step(
        &a.b,
        "import-key",
        step(
            "import-key",
            Action::ImportKey(ImportKey {
                label: label(&a.label)?,
                key_id,
                key_file: a.key_file.clone(),
                passphrase: a
                    .passphrase_source
                    .as_ref()
                    .map(|_| "passphrase".to_string()),
            }),
        ),
        vault,
        Login::Required,
        None,
    )?;
    print_objects(&r);
    Ok(())
}

/// `officiant write-object`. Prints the object made.
pub fn write_object(a: WriteObjectArgs) -> Outcome {
    let object_type: ObjectType = a
        .kind
        .parse()
        .map_err(|e: ObjectTypeError| Failure(format!("--type: {e}")))?;
    let object_id = hex_id(&a.id, &a.label)?;
    let r = one_step(
        &a.b,
        "write-object",
        step(
            "write-object",
            Action::WriteObject(WriteObject {
                label: label(&a.label)?,
                object_id,
                object_type,
                file: a.file.clone(),
                application: None,
            }),
        ),
        Vault::new(),
        Login::Required,
        None,
    )?;
    print_objects(&r);
    Ok(())
}

/// `officiant delete-object`. Prints `deleted N object(s) labelled LABEL` (0 is not an
/// error).
pub fn delete_object(a: DeleteObjectArgs) -> Outcome {
    let class = a
        .kind
        .as_deref()
        .map(str::parse::<ObjectClass>)
        .transpose()
        .map_err(|e| Failure(format!("--type: {e}")))?;
    let r = one_step(
        &a.b,
        "delete-object",
        step(
            "delete-object",
            Action::DeleteObject(DeleteObject {
                label: label(&a.label)?,
                class,
            }),
        ),
        Vault::new(),
        Login::Required,
        None,
    )?;
    println!(
        "deleted {} object(s) labelled {}",
        r.deleted.unwrap_or(0),
        a.label
    );
    Ok(())
}

/// `officiant objects`. Prints one line per object (class, label, id, key type, public
/// key SHA-256 in hex groups), or JSON with `--json`. Records nothing.
pub fn objects(a: ObjectsArgs) -> Outcome {
    let (_, mut token) = open(&a.b, None, Login::IfGiven)?;
    let list = token.list_objects()?;
    if a.json {
        let v: Vec<serde_json::Value> = list
            .iter()
            .map(|o| {
                json!({
                    "class": o.class,
                    "label": o.label,
                    "id": hex::encode(&o.id),
                    "key_type": o.key_type(),
                    "bits": o.public_key.as_ref().map(|k| k.bits()),
                    "flags": o.flags,
                    "public_key_sha256": o.public_key.as_ref().map(|k| hex::encode(k.fingerprint())),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for o in &list {
            println!(
                "{:<12} {:<32} id {:<8} {:<10} {}",
                o.class.to_string(),
                o.label,
                hex::encode(&o.id),
                o.key_type(),
                o.public_key
                    .as_ref()
                    .map(|k| crate::formats::words::hex_groups(&k.fingerprint()))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `officiant export-pubkey`. With `-o`, writes the file and says so on stderr with the
/// key's SHA-256; without, PEM on stdout. Records nothing.
pub fn export_pubkey(a: ExportPubkeyArgs) -> Outcome {
    let (_, mut token) = open(&a.b, None, Login::IfGiven)?;
    let pk = token.public_key(&a.key)?;
    let bytes = if a.der {
        pk.to_spki_der()
    } else {
        pk.to_pem().into_bytes()
    };
    match &a.output {
        Some(p) => {
            crate::output::write_new(p, &bytes)?;
            let f = Fingerprint::of(&pk.fingerprint());
            eprintln!(
                "wrote {} ({}); public key SHA-256: {}",
                p.display(),
                pk.describe(),
                f.groups
            );
        }
        None if a.der => return Err(Failure("--der writes binary: give -o FILE".into())),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}
