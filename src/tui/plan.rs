//! Reading ceremony scripts into the console's view model, and writing the answers file a
//! recorded run leaves. The strict parser is the engine's (src/ceremony/); until the
//! console drives the engine this reads only what the screens show, and refuses to run
//! step kinds it does not know.

use std::path::{Path, PathBuf};

use toml::Value;

use crate::hsm::UserType;
use crate::keys::KeyAlgorithm;

use super::app::{CeremonyRun, StepRow, StepStatus};

/// A ceremony as the home screen lists it.
#[derive(Debug, Clone)]
pub struct CeremonySummary {
    pub path: PathBuf,
    pub id: String,
    pub title: String,
    pub purpose: String,
    pub steps: usize,
    pub roles: Vec<String>,
    /// Why the script could not be read (shown instead of the details).
    pub error: Option<String>,
}

/// What the console does for a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepAction {
    InitToken {
        label: String,
        so: String,
        user: String,
    },
    Login {
        user: UserType,
        pin: String,
    },
    Generate {
        alg: KeyAlgorithm,
        label: String,
        id: Vec<u8>,
    },
    Instruction,
    Unsupported(String),
}

impl StepAction {
    /// The secrets the step asks for: (logical name, prompt, type twice).
    pub fn secrets(&self) -> Vec<(String, String, bool)> {
        match self {
            StepAction::InitToken { so, user, .. } => vec![
                (so.clone(), "New SO PIN".into(), true),
                (user.clone(), "New user PIN".into(), true),
            ],
            StepAction::Login { user, pin } => {
                vec![(pin.clone(), format!("{user} PIN"), false)]
            }
            _ => Vec::new(),
        }
    }

    /// Steps that destroy what is on the token ask for an explicit yes.
    pub fn destructive(&self) -> bool {
        matches!(self, StepAction::InitToken { .. })
    }
}

/// Every `*.toml` in `dir`, sorted by file name. A missing directory is an empty list.
pub fn scan(dir: &Path) -> Vec<CeremonySummary> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.into_iter().map(|p| summarize(&p)).collect()
}

fn read_table(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {}", path.display(), e.kind()))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("{}: {}", path.display(), e.message()))
}

fn s(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

pub fn summarize(path: &Path) -> CeremonySummary {
    let mut out = CeremonySummary {
        path: path.to_path_buf(),
        id: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        title: String::new(),
        purpose: String::new(),
        steps: 0,
        roles: Vec::new(),
        error: None,
    };
    match read_table(path) {
        Ok(t) => {
            let c = t.get("ceremony");
            let get = |k: &str| s(c.and_then(|c| c.get(k))).to_string();
            if !get("id").is_empty() {
                out.id = get("id");
            }
            out.title = get("title");
            out.purpose = get("purpose");
            out.steps = t.get("step").and_then(Value::as_array).map_or(0, Vec::len);
            out.roles = t
                .get("roles")
                .and_then(Value::as_table)
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
        }
        Err(e) => out.error = Some(e),
    }
    out
}

/// Read a script into a run ready to start.
pub fn load(path: &Path) -> Result<CeremonyRun, String> {
    let t = read_table(path)?;
    let sum = summarize(path);
    let token_label = s(t.get("ceremony").and_then(|c| c.get("token"))).to_string();
    let roles = t.get("roles").and_then(Value::as_table);
    let steps = t
        .get("step")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no [[step]]", path.display()))?;
    let mut rows = Vec::new();
    for (i, st) in steps.iter().enumerate() {
        let get = |k: &str| s(st.get(k)).to_string();
        let id = get("id");
        let place = format!("{}: step[{i}] ({id})", path.display());
        let kind = get("kind");
        let mut sign_off = Vec::new();
        for role in st
            .get("sign-off")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            // A role may need more than one person (`[roles] witness = 2`).
            let n = roles
                .and_then(|r| r.get(role))
                .and_then(Value::as_integer)
                .unwrap_or(1)
                .max(1);
            for _ in 0..n {
                sign_off.push(role.to_string());
            }
        }
        let label = get("label");
        let (action, detail, creates) = match kind.as_str() {
            "init-token" => (
                StepAction::InitToken {
                    label: token_label.clone(),
                    so: get("so-pin"),
                    user: get("user-pin"),
                },
                vec![
                    format!("Erases the token and labels it {token_label:?}."),
                    "Sets a new SO PIN and user PIN (typed twice, masked).".into(),
                ],
                vec![format!("token {token_label:?}")],
            ),
            "login" => {
                let user = super::app::parse_user(&get("user")).unwrap_or(UserType::User);
                (
                    StepAction::Login {
                        user,
                        pin: get("pin"),
                    },
                    vec![format!("Logs in as {user} (PIN typed, masked).")],
                    Vec::new(),
                )
            }
            "generate-key" => {
                let alg = super::app::parse_alg(&get("algorithm"))
                    .ok_or_else(|| format!("{place}.algorithm: unknown {:?}", get("algorithm")))?;
                let id =
                    hex::decode(get("key-id")).map_err(|_| format!("{place}.key-id: not hex"))?;
                (
                    StepAction::Generate {
                        alg,
                        label: label.clone(),
                        id: id.clone(),
                    },
                    vec![format!(
                        "Generates a key pair ({alg}) on the token; the private half never leaves it."
                    )],
                    vec![format!(
                        "key pair {label:?} id {} ({alg})",
                        hex::encode(&id)
                    )],
                )
            }
            "instruction" => (StepAction::Instruction, vec![get("text")], Vec::new()),
            other => {
                let mut creates = Vec::new();
                for k in ["pem", "der", "file", "table", "fuse", "out"] {
                    if !get(k).is_empty() {
                        creates.push(format!("file {}", get(k)));
                    }
                }
                (
                    StepAction::Unsupported(other.to_string()),
                    vec![format!("{other} {label}").trim().to_string()],
                    creates,
                )
            }
        };
        let mut detail = detail;
        if !get("description").is_empty() {
            detail.insert(0, get("description"));
        }
        rows.push(StepRow {
            title: if get("title").is_empty() {
                format!("{kind} {label}").trim().to_string()
            } else {
                get("title")
            },
            id,
            kind,
            detail,
            creates,
            sign_off,
            status: StepStatus::Pending,
            action,
        });
    }
    Ok(CeremonyRun {
        id: sum.id,
        title: sum.title,
        path: path.to_path_buf(),
        steps: rows,
        current: 0,
        need: None,
        pending_roles: Vec::new(),
        secrets: Vec::new(),
        results: Vec::new(),
        signoffs: Vec::new(),
        secret_keys: Vec::new(),
        confirms: Vec::new(),
        started: false,
        aborted: false,
    })
}

fn q(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The answers file of a recorded run: sign-offs with names, confirmations, and secrets
/// as `prompt` (the console never writes a secret's value).
pub fn answers_toml(run: &CeremonyRun) -> String {
    let mut out = format!(
        "# Answers recorded by the officiant console for ceremony {}.\n\
         # Secrets are `prompt`: replace with env:NAME or file:PATH to replay unattended.\n\n[secrets]\n",
        q(&run.id)
    );
    for k in &run.secret_keys {
        out.push_str(&format!("{} = \"prompt\"\n", q(k)));
    }
    for c in &run.confirms {
        out.push_str(&format!("\n[[confirm]]\nstep = {}\n", q(c)));
    }
    for so in &run.signoffs {
        out.push_str(&format!(
            "\n[[sign-off]]\nstep = {}\nrole = {}\nname = {}\n",
            q(&so.step),
            q(&so.role),
            q(&so.name)
        ));
    }
    out
}
