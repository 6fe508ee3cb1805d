//! The answers file: what a person would type at the console, for a headless run.
//!
//! ```toml
//! [secrets]                       # logical secret name → source
//! so = "file:rehearsal-secrets/so.pin"   # relative to this file's directory
//! user = "env:USER_PIN"
//!
//! [[confirm]]                     # destructive steps (init-token, delete-object)
//! step = "init"
//!
//! [[participant]]               # the roll call (default: everyone named below)
//! name = "Alice Example"
//! roles = ["witness"]
//!
//! [[sign-off]]
//! step = "gen-p256"
//! role = "witness"
//! name = "Alice Example"
//! # signature = "sigs/alice-gen-p256.sig"   # a role with signed = true: her SSHSIG over
//! #                                         # the sign-off message (see approvals::signoff)
//!
//! [[acknowledge]]                 # the reviewer read the result aloud; it matched
//! step = "gen-p256"
//! name = "Alice Example"
//!
//! [[custodian]]                   # generate-wrap-key: share i goes to the i-th custodian
//! step = "gen-wrap"
//! name = "Carol Custodian"
//! share-file = "/media/carol/wrap.share.txt"   # written 0600, never over a file
//!
//! [[custodian]]                   # restore: each custodian's share, as a secret source
//! step = "restore"
//! name = "Carol Custodian"
//! share = "file:/media/carol/wrap.share.txt"
//! ```
//!
//! Parsed as strictly as a script. Whether every needed answer is present is checked by
//! `plan::check_answers` before any token is opened.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::people::{self, Participant};
use super::script::{parse_toml, Action, Fail, Fields, Script, ScriptError};
use crate::secret::SecretSource;

/// An answers file: what a headless run takes from people (sign-offs, confirmations,
/// acknowledgements, custodians) and where it reads each secret.
#[derive(Debug, Clone, Default)]
pub struct Answers {
    /// The file, when it was read from one.
    pub path: Option<PathBuf>,
    /// SHA-256 of the file's bytes, recorded in the transcript.
    pub sha256: Option<[u8; 32]>,
    /// Secret name → where its value comes from (`env:`, `file:`, `prompt`).
    pub secrets: BTreeMap<String, SecretSource>,
    /// The ids of the destructive steps confirmed.
    pub confirms: BTreeSet<String>,
    /// The roll call, when the file gives it.
    pub participants: Vec<Participant>,
    /// Every `[[sign-off]]`, in file order.
    pub sign_offs: Vec<SignOffAnswer>,
    /// Step id → who acknowledged its result.
    pub acknowledgements: BTreeMap<String, String>,
    /// The custodians of custody steps, in file order (share i of a generate-wrap-key
    /// step goes to its i-th custodian).
    pub custodians: Vec<CustodianAnswer>,
}

/// A custodian of a custody step, and where their share goes or comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustodianAnswer {
    /// The custody step's id.
    pub step: String,
    /// The custodian's name as the roll call spells it.
    pub name: String,
    /// generate-wrap-key: the file their share is written to (their medium).
    pub share_file: Option<PathBuf>,
    /// restore: where their share is read from.
    pub share: Option<SecretSource>,
}

/// One `[[sign-off]]`: a person signs a step off in a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOffAnswer {
    /// The step's id.
    pub step: String,
    /// The role they sign in.
    pub role: String,
    /// Their name.
    pub name: String,
    /// A signed role's SSHSIG file (relative paths resolved against the answers file).
    pub signature: Option<PathBuf>,
}

impl Answers {
    /// Names signing `step` in `role`, in file order.
    pub fn names_for(&self, step: &str, role: &str) -> Vec<&str> {
        self.sign_offs
            .iter()
            .filter(|s| s.step == step && s.role == role)
            .map(|s| s.name.as_str())
            .collect()
    }

    /// The `n`-th sign-off (0-based, in file order) of `step` in `role`.
    pub fn sign_off_for(&self, step: &str, role: &str, n: usize) -> Option<&SignOffAnswer> {
        self.sign_offs
            .iter()
            .filter(|s| s.step == step && s.role == role)
            .nth(n)
    }

    /// Who acknowledged `step`'s result.
    pub fn acknowledgement(&self, step: &str) -> Option<&str> {
        self.acknowledgements.get(step).map(String::as_str)
    }

    /// The custodians of custody step `step`, in file order.
    pub fn custodians_for(&self, step: &str) -> Vec<&CustodianAnswer> {
        self.custodians.iter().filter(|c| c.step == step).collect()
    }

    /// The roll call: the file's `[[participant]]`s, or else everyone the file names,
    /// each once (as a person), with every role they sign off or review in.
    pub fn roster(&self, script: &Script) -> Vec<Participant> {
        if !self.participants.is_empty() {
            return self.participants.clone();
        }
        let mut out: Vec<Participant> = Vec::new();
        let mut add = |name: &str, role: &str| match out
            .iter_mut()
            .find(|p| people::person_key(&p.name) == people::person_key(name))
        {
            Some(p) if !p.roles.iter().any(|r| r == role) => p.roles.push(role.to_string()),
            Some(_) => {}
            None => out.push(Participant {
                name: name.trim().to_string(),
                roles: vec![role.to_string()],
            }),
        };
        for s in &self.sign_offs {
            add(&s.name, &s.role);
        }
        for (step, name) in &self.acknowledgements {
            let role = script
                .steps
                .iter()
                .find(|s| &s.id == step)
                .and_then(|s| s.review.as_deref());
            if let Some(role) = role {
                add(name, role);
            }
        }
        for c in &self.custodians {
            let role = script
                .steps
                .iter()
                .find(|s| s.id == c.step)
                .and_then(|s| match &s.action {
                    Action::GenerateWrapKey(g) => Some(g.custodian_role.as_str()),
                    Action::Restore(r) => Some(r.custodian_role.as_str()),
                    _ => None,
                });
            if let Some(role) = role {
                add(&c.name, role);
            }
        }
        out
    }
}

/// Read and parse an answers file.
pub fn load(path: &Path) -> Result<Answers, ScriptError> {
    let (file, base, bytes) = super::script::read_source(path)?;
    let mut a = parse(&file, &base, &bytes)?;
    a.path = Some(path.to_path_buf());
    Ok(a)
}

/// Parse answers-file bytes: `file` names it in errors, `base` resolves its relative paths.
pub fn parse(file: &str, base: &Path, bytes: &[u8]) -> Result<Answers, ScriptError> {
    let err = |f: Fail| ScriptError {
        file: file.into(),
        place: f.0,
        message: f.1,
    };
    let text =
        std::str::from_utf8(bytes).map_err(|_| err(Fail(String::new(), "not UTF-8".into())))?;
    let table = parse_toml(file, text)?;
    let mut top = Fields::new(table, String::new());
    let secrets_t = top.opt_table("secrets").map_err(err)?;
    let confirms_t = top.array_of_tables("confirm").map_err(err)?;
    let signs_t = top.array_of_tables("sign-off").map_err(err)?;
    let people_t = top.array_of_tables("participant").map_err(err)?;
    let acks_t = top.array_of_tables("acknowledge").map_err(err)?;
    let custodians_t = top.array_of_tables("custodian").map_err(err)?;
    top.finish().map_err(err)?;

    let mut a = Answers {
        sha256: Some(crate::output::sha256(bytes)),
        ..Answers::default()
    };
    read_secrets(&mut a, secrets_t.unwrap_or_default(), base).map_err(err)?;
    read_confirms(&mut a, confirms_t).map_err(err)?;
    read_sign_offs(&mut a, signs_t, base).map_err(err)?;
    read_participants(&mut a, people_t).map_err(err)?;
    read_acknowledgements(&mut a, acks_t).map_err(err)?;
    read_custodians(&mut a, custodians_t, base).map_err(err)?;
    Ok(a)
}

/// `[secrets]`: name = source; a relative `file:` source is beside the answers file.
fn read_secrets(a: &mut Answers, secrets_t: toml::Table, base: &Path) -> Result<(), Fail> {
    // Errors are already in place: the caller adds the file.
    let err = |f: Fail| f;
    for (name, v) in secrets_t {
        let place = format!("secrets.{name}: ");
        let s = v.as_str().ok_or_else(|| {
            err(Fail(
                place.clone(),
                "expected a source string (env:NAME, file:PATH or prompt)".into(),
            ))
        })?;
        let src = SecretSource::parse(s).map_err(|e| err(Fail(place.clone(), e.to_string())))?;
        let src = match src {
            SecretSource::File(p) if p.is_relative() => SecretSource::File(base.join(p)),
            other => other,
        };
        a.secrets.insert(name, src);
    }
    Ok(())
}

/// `[[confirm]]`: the destructive steps confirmed.
fn read_confirms(a: &mut Answers, confirms_t: Vec<toml::Table>) -> Result<(), Fail> {
    // Errors are already in place: the caller adds the file.
    let err = |f: Fail| f;
    for (i, t) in confirms_t.into_iter().enumerate() {
        let mut f = Fields::new(t, format!("confirm[{i}]."));
        let step = f.string("step").map_err(err)?;
        f.finish().map_err(err)?;
        a.confirms.insert(step);
    }
    Ok(())
}

/// `[[sign-off]]`: step, role, name (and a signature file for a signed role).
fn read_sign_offs(a: &mut Answers, signs_t: Vec<toml::Table>, base: &Path) -> Result<(), Fail> {
    // Errors are already in place: the caller adds the file.
    let err = |f: Fail| f;
    for (i, t) in signs_t.into_iter().enumerate() {
        let mut f = Fields::new(t, format!("sign-off[{i}]."));
        let s = SignOffAnswer {
            step: f.string("step").map_err(err)?,
            role: f.string("role").map_err(err)?,
            name: f.string("name").map_err(err)?,
            signature: f
                .opt_string("signature")
                .map_err(err)?
                .map(|p| base.join(p)),
        };
        f.finish().map_err(err)?;
        if s.name.trim().is_empty() || s.name.chars().any(|c| c.is_control()) {
            return Err(err(f.fail("name", "must be a person's name".into())));
        }
        if a.sign_offs.contains(&s) {
            return Err(err(f.fail(
                "name",
                format!(
                    "{:?} already signs off step {:?} as {}",
                    s.name, s.step, s.role
                ),
            )));
        }
        a.sign_offs.push(s);
    }
    Ok(())
}

/// `[[participant]]`: the roll call; two spellings of one person are refused.
fn read_participants(a: &mut Answers, people_t: Vec<toml::Table>) -> Result<(), Fail> {
    // Errors are already in place: the caller adds the file.
    let err = |f: Fail| f;
    for (i, t) in people_t.into_iter().enumerate() {
        let mut f = Fields::new(t, format!("participant[{i}]."));
        let name = f.string("name").map_err(err)?;
        let roles = f
            .opt_string_list("roles")
            .map_err(err)?
            .ok_or_else(|| err(f.fail("roles", "missing field roles".into())))?;
        f.finish().map_err(err)?;
        let name = people::clean_name(&name).map_err(|m| err(f.fail("name", m)))?;
        if let Some(p) = people::find(&a.participants, &name) {
            return Err(err(
                f.fail("name", format!("{name:?} and {:?} are one person", p.name))
            ));
        }
        a.participants.push(Participant { name, roles });
    }
    Ok(())
}

/// `[[acknowledge]]`: who read each step's result aloud.
fn read_acknowledgements(a: &mut Answers, acks_t: Vec<toml::Table>) -> Result<(), Fail> {
    // Errors are already in place: the caller adds the file.
    let err = |f: Fail| f;
    for (i, t) in acks_t.into_iter().enumerate() {
        let mut f = Fields::new(t, format!("acknowledge[{i}]."));
        let step = f.string("step").map_err(err)?;
        let name = f.string("name").map_err(err)?;
        f.finish().map_err(err)?;
        let name = people::clean_name(&name).map_err(|m| err(f.fail("name", m)))?;
        if a.acknowledgements.insert(step.clone(), name).is_some() {
            return Err(err(
                f.fail("step", format!("step {step:?} is acknowledged twice"))
            ));
        }
    }
    Ok(())
}

/// `[[custodian]]`: who holds a share of a custody step, and where it goes or comes from.
fn read_custodians(
    a: &mut Answers,
    custodians_t: Vec<toml::Table>,
    base: &Path,
) -> Result<(), Fail> {
    // Errors are already in place: the caller adds the file.
    let err = |f: Fail| f;
    for (i, t) in custodians_t.into_iter().enumerate() {
        let mut f = Fields::new(t, format!("custodian[{i}]."));
        let step = f.string("step").map_err(err)?;
        let name = f.string("name").map_err(err)?;
        let share_file = f.opt_string("share-file").map_err(err)?;
        let share = f.opt_string("share").map_err(err)?;
        f.finish().map_err(err)?;
        let name = people::clean_name(&name).map_err(|m| err(f.fail("name", m)))?;
        let share_file = match share_file {
            Some(p) if p.is_empty() || p.chars().any(|c| c.is_control()) => {
                return Err(err(f.fail("share-file", "must be a file path".into())))
            }
            Some(p) => Some(base.join(p)),
            None => None,
        };
        let share = match share {
            None => None,
            Some(s) => Some(
                match SecretSource::parse(&s).map_err(|e| err(f.fail("share", e.to_string())))? {
                    SecretSource::File(p) if p.is_relative() => SecretSource::File(base.join(p)),
                    other => other,
                },
            ),
        };
        a.custodians.push(CustodianAnswer {
            step,
            name,
            share_file,
            share,
        });
    }
    Ok(())
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The answers file of a run as its transcript records it, across every session: the
/// roll call, each confirmation, each step's sign-offs and acknowledgement from the last
/// session that gave them, and every secret the script names as `prompt` (a value is
/// never written). `officiant check --answers` accepts it for a run that went to the end,
/// and `officiant run` replays it.
pub fn from_transcript(script: &Script, entries: &[super::transcript::Entry]) -> String {
    write_answers(script, &Recorded::of(entries))
}

/// A step's sign-offs in one session, as (role, name, signed).
type SignOffs = Vec<(String, String, bool)>;

/// What a transcript recorded that an answers file holds.
struct Recorded {
    roster: Vec<Participant>,
    confirms: BTreeSet<String>,
    /// Step id → (session, its sign-offs in that session): the last session's count.
    signs: BTreeMap<String, (usize, SignOffs)>,
    acks: BTreeMap<String, String>,
    /// Step id → its custodians, in share order, as the step's result names them.
    custodians: BTreeMap<String, Vec<String>>,
}

impl Recorded {
    fn of(entries: &[super::transcript::Entry]) -> Self {
        let mut session = 0usize;
        let mut roster: Vec<Participant> = Vec::new();
        let mut confirms: BTreeSet<String> = BTreeSet::new();
        let mut signs: BTreeMap<String, (usize, SignOffs)> = BTreeMap::new();
        let mut acks: BTreeMap<String, String> = BTreeMap::new();
        // Step id → its custodians, in share order, as the step's result names them.
        let mut custodians: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        for e in entries {
            match e.kind.as_str() {
                "open" => session += 1,
                "roster" => {
                    let people: Vec<Participant> =
                        serde_json::from_value(e.data["participants"].clone()).unwrap_or_default();
                    for p in people {
                        match roster
                            .iter_mut()
                            .find(|r| people::person_key(&r.name) == people::person_key(&p.name))
                        {
                            Some(r) => {
                                for role in p.roles {
                                    if !r.roles.contains(&role) {
                                        r.roles.push(role);
                                    }
                                }
                            }
                            None => roster.push(p),
                        }
                    }
                }
                "confirm" => {
                    confirms.insert(text(&e.data, "id"));
                }
                "sign-off" => {
                    let id = text(&e.data, "id");
                    let entry = signs.entry(id).or_insert((session, Vec::new()));
                    if entry.0 != session {
                        *entry = (session, Vec::new());
                    }
                    entry.1.push((
                        text(&e.data, "role"),
                        text(&e.data, "name"),
                        e.data.get("signature").is_some(),
                    ));
                }
                "acknowledge" => {
                    acks.insert(text(&e.data, "id"), text(&e.data, "name"));
                }
                "step-done" => {
                    let list: Vec<String> = e.data["result"]["details"]["custodians"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c["custodian"].as_str().map(str::to_string))
                        .collect();
                    if !list.is_empty() {
                        custodians.insert(text(&e.data, "id"), list);
                    }
                }
                _ => {}
            }
        }
        Recorded {
            roster,
            confirms,
            signs,
            acks,
            custodians,
        }
    }
}

/// The answers file for `script` from what was recorded, in script order.
fn write_answers(script: &Script, r: &Recorded) -> String {
    let Recorded {
        roster,
        confirms,
        signs,
        acks,
        custodians,
    } = r;
    let mut out = format!(
        "# Answers recorded at the officiant console for ceremony {}.\n\
         # Secrets are `prompt`: replace each with env:NAME or file:PATH to replay unattended.\n\n[secrets]\n",
        q(&script.ceremony.id)
    );
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for s in &script.steps {
        for (_, n) in s.action.secrets() {
            names.insert(n);
        }
    }
    for n in names {
        out.push_str(&format!("{} = \"prompt\"\n", q(n)));
    }
    for p in roster {
        let roles: Vec<String> = p.roles.iter().map(|r| q(r)).collect();
        out.push_str(&format!(
            "\n[[participant]]\nname = {}\nroles = [{}]\n",
            q(&p.name),
            roles.join(", ")
        ));
    }
    // In script order, so the file reads like the ceremony.
    for s in &script.steps {
        if confirms.contains(&s.id) {
            out.push_str(&format!("\n[[confirm]]\nstep = {}\n", q(&s.id)));
        }
        if let Some((_, list)) = signs.get(&s.id) {
            for (k, (role, name, signed)) in list.iter().enumerate() {
                out.push_str(&format!(
                    "\n[[sign-off]]\nstep = {}\nrole = {}\nname = {}\n",
                    q(&s.id),
                    q(role),
                    q(name)
                ));
                if *signed {
                    // Signed at the console over that run's transcript; a replay signs
                    // the message its own run writes.
                    out.push_str(&format!(
                        "signature = {}\n",
                        q(&format!("{}.{role}.{}.sig", s.id, k + 1))
                    ));
                }
            }
        }
        if let Some(name) = acks.get(&s.id) {
            out.push_str(&format!(
                "\n[[acknowledge]]\nstep = {}\nname = {}\n",
                q(&s.id),
                q(name)
            ));
        }
        // The custodians, never their shares: a replay writes each share to a file
        // beside this one (point share-file at the custodian's medium), or asks for it.
        for (k, name) in custodians.get(&s.id).into_iter().flatten().enumerate() {
            let whence = match &s.action {
                Action::GenerateWrapKey(_) => format!(
                    "share-file = {}",
                    q(&format!("shares/{}-{}.share.txt", s.id, k + 1))
                ),
                _ => "share = \"prompt\"".to_string(),
            };
            out.push_str(&format!(
                "\n[[custodian]]\nstep = {}\nname = {}\n{whence}\n",
                q(&s.id),
                q(name)
            ));
        }
    }
    out
}
