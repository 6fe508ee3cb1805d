//! What the console shows of a ceremony script (parsed by the engine's strict parser),
//! and the answers file an interactive run records.

use std::path::{Path, PathBuf};

use crate::ceremony::engine;
use crate::ceremony::script::{self, Action, Script};

/// A ceremony as the home screen lists it.
#[derive(Debug, Clone)]
pub struct CeremonySummary {
    pub path: PathBuf,
    pub id: String,
    pub title: String,
    pub purpose: String,
    pub steps: usize,
    pub roles: Vec<String>,
    /// Why the script is not valid (shown instead of the details).
    pub error: Option<String>,
}

/// Every script (`*.toml`, not `*.answers.toml`) in `dir`, sorted by file name. A missing
/// directory is an empty list.
pub fn scan(dir: &Path) -> Vec<CeremonySummary> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n.ends_with(".toml") && !n.ends_with(".answers.toml"))
        })
        .collect();
    paths.sort();
    paths.into_iter().map(|p| summarize(&p)).collect()
}

pub fn summarize(path: &Path) -> CeremonySummary {
    match script::load(path) {
        Ok(s) => CeremonySummary {
            path: path.to_path_buf(),
            id: s.ceremony.id.clone(),
            title: s.ceremony.title.clone(),
            purpose: s.ceremony.purpose.clone().unwrap_or_default(),
            steps: s.steps.len(),
            roles: s
                .roles
                .iter()
                .map(|(r, n)| {
                    if *n > 1 {
                        format!("{r} ×{n}")
                    } else {
                        r.clone()
                    }
                })
                .collect(),
            error: None,
        },
        Err(e) => CeremonySummary {
            path: path.to_path_buf(),
            id: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            title: String::new(),
            purpose: String::new(),
            steps: 0,
            roles: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}

/// What a step will do, and what it creates (objects on the token, files in `out`).
pub fn describe(script: &Script, i: usize) -> (Vec<String>, Vec<String>) {
    let st = &script.steps[i];
    let mut what = Vec::new();
    if let Some(d) = &st.description {
        what.push(d.clone());
    }
    let mut creates = Vec::new();
    match &st.action {
        Action::InitToken(_) => {
            what.push(format!(
                "Erases the token and labels it {:?}; sets a new SO PIN and user PIN.",
                script.ceremony.token
            ));
            creates.push(format!("token {:?}", script.ceremony.token));
        }
        Action::Login(l) => what.push(format!("Logs in as {}.", l.user)),
        Action::ChangePin(c) => what.push(format!("Replaces the {} PIN.", c.user)),
        Action::GenerateKey(g) => {
            what.push(format!(
                "Generates a key pair ({}) on the token; the private half never leaves it.",
                g.algorithm
            ));
            creates.push(format!(
                "key pair {:?} id {}",
                g.label,
                hex::encode(&g.key_id)
            ));
        }
        Action::ImportKey(k) => {
            what.push(format!(
                "Imports the private key in {}.",
                k.key_file.display()
            ));
            creates.push(format!(
                "key pair {:?} id {}",
                k.label,
                hex::encode(&k.key_id)
            ));
        }
        Action::WriteObject(w) => {
            what.push(format!(
                "Stores {} as a {} object.",
                w.file.display(),
                w.object_type
            ));
            creates.push(format!(
                "object {:?} id {}",
                w.label,
                hex::encode(&w.object_id)
            ));
        }
        Action::DeleteObject(d) => {
            what.push(format!("Deletes the objects labelled {:?}.", d.label))
        }
        Action::ExportPublicKey(e) => what.push(format!("Exports the public key of {:?}.", e.key)),
        Action::Instruction(ins) => what.push(ins.text.clone()),
        // Step kinds the engine grows later still show, by name, until described here.
        #[allow(unreachable_patterns)]
        _ => what.push(format!("A {} step.", st.action.kind())),
    }
    for (_, name) in st.action.outputs() {
        creates.push(format!("file {name}"));
    }
    (what, creates)
}

/// How the console asks for secret `name` of step `i`: the prompt, and whether it is a
/// new secret (typed twice).
pub fn secret_prompt(script: &Script, i: usize, name: &str) -> (String, bool) {
    let field = script.steps[i]
        .action
        .secrets()
        .into_iter()
        .find(|(_, n)| *n == name)
        .map(|(f, _)| f)
        .unwrap_or("pin");
    let twice = crate::ceremony::script::Action::is_new_secret(field);
    let what = match field {
        "so-pin" => "New SO PIN",
        "user-pin" => "New user PIN",
        "new-pin" => "New PIN",
        "old-pin" => "Current PIN",
        "passphrase" => "Key file passphrase",
        "temporary-password" => "Temporary auth key password",
        "new-password" => "New auth key password",
        "password" => "Auth key password",
        _ => "PIN",
    };
    (format!("{what} ({name})"), twice)
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The answers file of an interactive run: every sign-off with the name typed, every
/// confirmation, and each secret as `prompt` (the console never writes a value).
pub fn answers_toml(script: &Script, st: &engine::State) -> String {
    let mut out = format!(
        "# Answers recorded at the officiant console for ceremony {}.\n\
         # Secrets are `prompt`: replace each with env:NAME or file:PATH to replay unattended.\n\n[secrets]\n",
        q(&script.ceremony.id)
    );
    for name in &st.secrets_ready {
        out.push_str(&format!("{} = \"prompt\"\n", q(name)));
    }
    for (i, s) in st.steps.iter().enumerate() {
        if s.confirmed {
            out.push_str(&format!(
                "\n[[confirm]]\nstep = {}\n",
                q(&script.steps[i].id)
            ));
        }
    }
    for (i, s) in st.steps.iter().enumerate() {
        for so in &s.sign_offs {
            out.push_str(&format!(
                "\n[[sign-off]]\nstep = {}\nrole = {}\nname = {}\n",
                q(&script.steps[i].id),
                q(&so.role),
                q(&so.name)
            ));
        }
    }
    out
}
