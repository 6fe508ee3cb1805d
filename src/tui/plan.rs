//! What the console shows of a ceremony script: the home screen's list of scripts, what
//! each step does and creates, and how each secret is asked for. Scripts are parsed by
//! the engine's strict parser (`ceremony::script`); nothing here runs or checks a step.

use std::path::{Path, PathBuf};

use crate::ceremony::script::{self, Action, Script};

/// A ceremony as the home screen lists it.
#[derive(Debug, Clone)]
pub struct CeremonySummary {
    /// The script file, opened again when the ceremony is chosen.
    pub path: PathBuf,
    /// `[ceremony] id` (the file's stem when the script does not parse); names the run's
    /// out directory.
    pub id: String,
    /// `[ceremony] title`.
    pub title: String,
    /// `[ceremony] purpose`, or empty.
    pub purpose: String,
    /// How many steps the script has.
    pub steps: usize,
    /// The roles it needs, `name ×N` where more than one person is needed.
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

/// The summary of one script; a script that does not parse gives a summary with its
/// error (the console lists it, and refuses to open it).
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
        a @ (Action::InitToken(_)
        | Action::Login(_)
        | Action::ChangePin(_)
        | Action::GenerateKey(_)
        | Action::ImportKey(_)
        | Action::WriteObject(_)
        | Action::DeleteObject(_)
        | Action::ExportPublicKey(_)
        | Action::Instruction(_)) => token_step(script, a, &mut what, &mut creates),
        a @ (Action::IssueCertificate(_)
        | Action::ExportFuses(_)
        | Action::Sign(_)
        | Action::Verify(_)
        | Action::IssueTbbr(_)) => root_of_trust_step(a, &mut what, &mut creates),
        a @ (Action::ChangeAuthKey(_)
        | Action::PutAuthKey(_)
        | Action::SetAudit(_)
        | Action::SetPolicy(_)
        | Action::CoSign(_)) => admin_step(a, &mut what, &mut creates),
        a @ (Action::GenerateWrapKey(_) | Action::Backup(_) | Action::Restore(_)) => {
            custody_step(a, &mut what, &mut creates)
        }
        #[allow(unreachable_patterns)]
        _ => what.push(format!("A {} step.", st.action.kind())),
    }
    for (_, name) in st.action.outputs() {
        creates.push(format!("file {name}"));
    }
    (what, creates)
}

/// The token and its objects: what each step does, the key pairs and objects it makes.
fn token_step(script: &Script, action: &Action, what: &mut Vec<String>, creates: &mut Vec<String>) {
    match action {
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
        _ => {}
    }
}

/// Certificates, fuse values, signatures: what each step does.
fn root_of_trust_step(action: &Action, what: &mut Vec<String>, creates: &mut Vec<String>) {
    match action {
        Action::IssueCertificate(c) => {
            what.push(match &c.issuer_key {
                Some(issuer) => format!(
                    "Issues a {} certificate for key {:?}, signed on the token by {issuer:?}.",
                    c.profile.name(),
                    c.key
                ),
                None => format!(
                    "Issues a self-signed {} certificate for key {:?}.",
                    c.profile.name(),
                    c.key
                ),
            });
            what.push(format!(
                "Subject {}; valid {} days.",
                c.subject, c.validity_days
            ));
            if c.write_to_token {
                creates.push(format!("certificate {:?} on the token", c.key));
            }
        }
        Action::ExportFuses(x) => what.push(format!(
            "Computes the {} fuse/OTP value from the public keys: read it aloud and compare.",
            x.export.format_name()
        )),
        Action::Sign(g) => what.push(format!(
            "Signs {} with key {:?} ({}); the signature is checked before it is written.",
            g.input.name, g.key, g.format
        )),
        Action::Verify(v) => what.push(format!(
            "Verifies {} ({}) against the public key of {:?}.",
            v.input.name, v.format, v.key
        )),
        Action::IssueTbbr(t) => what.push(format!(
            "Issues the TF-A TBBR certificate chain (cert_create's) with the ROT key {:?} and the keys under it, over the firmware images' hashes.",
            t.keys.rot
        )),
        _ => {}
    }
}

/// Authentication keys, the audit option, the approval policy, co-signing.
fn admin_step(action: &Action, what: &mut Vec<String>, creates: &mut Vec<String>) {
    match action {
        Action::ChangeAuthKey(c) => {
            what.push(format!(
                "Rotates the authentication key this session logged in with: puts a temporary key at {:04x}, deletes the old key, puts the replacement at its id, then deletes the temporary key.",
                c.temporary_key_id
            ));
            if let Some(r) = &c.replacement {
                what.push(format!("The rotated key gets: {}.", r.summary()));
            }
        }
        Action::PutAuthKey(p) => {
            what.push(format!(
                "Puts authentication key {:04x} {:?}: {}.",
                p.spec.id,
                p.spec.label,
                p.spec.summary()
            ));
            creates.push(format!(
                "authentication key {:?} id {:04x}",
                p.spec.label, p.spec.id
            ));
        }
        Action::SetAudit(a) => what.push(format!(
            "Turns the device's force-audit option {}: with it on, the device refuses to work once its audit log is full until the log is read.",
            if a.force { "on" } else { "off" }
        )),
        Action::SetPolicy(p) => {
            what.push(format!(
                "Stores the approval policy {} on the token{}: which keys need approvals, from whom, how many. Its SHA-256 is read aloud.",
                p.policy.display(),
                if p.so_pin.is_some() { " as the SO" } else { "" }
            ));
            creates.push("data object officiant-policy.N (the next version)".into());
        }
        Action::CoSign(c) => {
            if let Some(t) = &c.text {
                what.push(t.clone());
            }
            what.push("Each person signs the transcript head (the ceremony as recorded so far) with their SSH key.".into());
        }
        _ => {}
    }
}

/// Wrap keys, backup and restore: the custodians' part, what is made.
fn custody_step(action: &Action, what: &mut Vec<String>, creates: &mut Vec<String>) {
    match action {
        Action::GenerateWrapKey(g) => {
            what.push(format!(
                "Makes an AES-256 wrap key and splits it {} of {}: each of {} custodians ({}) is called in turn, sees only their own share on a cleared screen and types it back from their copy. The token gets the key only after every share is handed out.",
                g.threshold, g.shares, g.shares, g.custodian_role
            ));
            creates.push(format!("wrap key {:?} id {:04x}", g.label, g.key_id));
        }
        Action::Backup(b) => what.push(format!(
            "Exports {} under wrap key {:?} into {}/ (one wrapped file per key and manifest.json); nothing leaves the token in the clear.",
            b.keys.join(", "),
            b.wrap_key,
            b.dir
        )),
        Action::Restore(r) => {
            what.push(format!(
                "{} custodians ({}) type their shares one at a time; the wrap key they rebuild is checked against the backup in {} before anything is created, then every backed-up key is restored and proved against its recorded public key{}.",
                r.threshold,
                r.custodian_role,
                r.backup_dir_name,
                if r.keep_wrap_key {
                    ""
                } else {
                    ", and the wrap key deleted"
                }
            ));
            for k in &r.keys {
                creates.push(format!("key pair {k:?} (restored)"));
            }
        }
        _ => {}
    }
}

/// How the console asks for secret `name` of step `i`: the prompt, whether it is a new
/// secret (typed twice), and whether it is a token PIN (the token's length rule applies;
/// a passphrase or an auth key password has none).
pub fn secret_prompt(script: &Script, i: usize, name: &str) -> (String, bool, bool) {
    let field = script.steps[i]
        .action
        .secrets()
        .into_iter()
        .find(|(_, n)| *n == name)
        .map(|(f, _)| f)
        .unwrap_or("pin");
    let twice = script.steps[i].action.sets_secret(name);
    let (what, pin) = match field {
        "so-pin" if !twice => ("SO PIN", true),
        "so-pin" => ("New SO PIN", true),
        "user-pin" => ("New user PIN", true),
        "new-pin" => ("New PIN", true),
        "old-pin" => ("Current PIN", true),
        "passphrase" => ("Key file passphrase", false),
        "temporary-password" => ("Temporary auth key password", false),
        "new-password" => ("New auth key password", false),
        "password" => ("Auth key password", false),
        "so-login" => ("SO PIN", true),
        "user-login" => ("User PIN", true),
        _ => ("PIN", true),
    };
    (format!("{what} ({name})"), twice, pin)
}
