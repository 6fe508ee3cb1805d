//! The driver's vault: each secret leaves it after the last step that needs it.

use super::*;
use crate::ceremony::engine::StepResult;
use crate::ceremony::people::Participant;
use crate::ceremony::runner::TRANSCRIPT;
use crate::ceremony::script;
use crate::secret::Secret;

const SCRIPT: &str = r#"
[ceremony]
id = "t"
title = "T"
version = 1
token = "tok"
[[step]]
id = "init"
kind = "init-token"
so-pin = "so"
user-pin = "u0"
[[step]]
id = "login"
kind = "login"
user = "user"
pin = "u0"
[[step]]
id = "pin"
kind = "change-pin"
user = "user"
old-pin = "u0"
new-pin = "u1"
[[step]]
id = "gen"
kind = "generate-key"
algorithm = "ec-p256"
label = "k"
key-id = "01"
[[step]]
id = "export"
kind = "export-public-key"
key = "k"
pem = "k.pem"
"#;

fn value(name: &str) -> Secret {
    Secret::new(format!("canary-{name}-2718").into_bytes())
}

/// Answers every secret by name; nothing else is asked of a script without roles.
struct Given;

impl Inputs for Given {
    fn roster(&mut self, _: &Script) -> Answer<Vec<Participant>> {
        Answer::Abort("no roll call".into())
    }
    fn sign_off(&mut self, _: &Script, _: usize, _: &str, _: usize, _: usize) -> Answer<String> {
        Answer::Abort("no sign-off".into())
    }
    fn confirm(&mut self, _: &Script, _: usize, _: &Danger) -> Answer<()> {
        Answer::Given(())
    }
    fn secret(
        &mut self,
        _: &Script,
        _: usize,
        name: &str,
        _: bool,
        _: Option<&str>,
    ) -> Answer<Secret> {
        Answer::Given(value(name))
    }
    fn acknowledge(&mut self, _: &Script, _: usize, _: &str, _: &StepResult) -> Answer<String> {
        Answer::Abort("no review".into())
    }
    fn rejected(&mut self, _: &Script, _: usize, reason: &str) -> Answer<()> {
        Answer::Abort(reason.into())
    }
}

/// Drive the script on `token` from `start` as `Driver::drive_state` does, and list
/// the secret names the vault holds when each step starts and after it is done.
fn watch(
    script: &Script,
    token: &mut dyn Token,
    out: &Path,
    start: Event,
) -> Vec<(String, usize, Vec<String>)> {
    let mut tr = Writer::open(&out.join(TRANSCRIPT)).unwrap();
    let mut inputs = Given;
    let mut driver = Driver {
        script,
        token,
        uri: "sim",
        out,
        journal: None,
        memo: Memo::default(),
        tr: &mut tr,
        vault: Vault::new(),
        last_use: BTreeMap::new(),
        inputs: &mut inputs,
        signed_pending: None,
        token_locks: None,
    };
    let mut state = State::new(script);
    let mut seen = Vec::new();
    let mut queue: VecDeque<Effect> = driver.update(&mut state, start).into();
    while let Some(effect) = queue.pop_front() {
        let held = |d: &Driver| d.vault.keys().cloned().collect::<Vec<_>>();
        let event = match effect {
            Effect::Finish => break,
            Effect::Fail { error, .. } => panic!("{error}"),
            Effect::RunStep { step, .. } => {
                seen.push(("running".to_string(), step, held(&driver)));
                driver.perform(effect).unwrap()
            }
            other => driver.perform(other).unwrap(),
        };
        if let Some(ev) = event {
            let done = match &ev {
                Event::StepDone { step, .. } => Some(*step),
                _ => None,
            };
            queue.extend(driver.update(&mut state, ev));
            if let Some(step) = done {
                seen.push(("done".to_string(), step, held(&driver)));
            }
        }
    }
    seen
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_vault_drops_each_secret_after_its_last_step() {
    let dir = tempfile::tempdir().unwrap();
    let s = script::parse("t.toml", dir.path(), SCRIPT.as_bytes()).unwrap();
    let mut token = hsm::sim::open(&dir.path().join("tok")).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let seen = watch(
        &s,
        token.as_mut(),
        &out,
        Event::Start {
            completed: vec![],
            interrupted: None,
            acknowledged: vec![],
        },
    );
    let want = [
        ("running", 0, names(&["so", "u0"])),
        // The SO PIN's only use is init-token; the first user PIN goes with the step
        // that changes it.
        ("done", 0, names(&["u0"])),
        ("running", 1, names(&["u0"])),
        ("done", 1, names(&["u0"])),
        ("running", 2, names(&["u0", "u1"])),
        ("done", 2, names(&[])),
        ("running", 3, names(&[])),
        ("done", 3, names(&[])),
        ("running", 4, names(&[])),
        ("done", 4, names(&[])),
    ];
    let want: Vec<(String, usize, Vec<String>)> = want
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b, c))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn a_resumed_run_keeps_the_session_pin_until_it_has_logged_in_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = script::parse("t.toml", dir.path(), SCRIPT.as_bytes()).unwrap();
    let mut token = hsm::sim::open(&dir.path().join("tok")).unwrap();
    token.init_token("tok", &value("so"), &value("u0")).unwrap();
    token
        .change_pin(hsm::UserType::User, &value("u0"), &value("u1"))
        .unwrap();
    token.logout().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let seen = watch(
        &s,
        token.as_mut(),
        &out,
        Event::Start {
            completed: (0..3).map(|i| (i, StepResult::default())).collect(),
            interrupted: None,
            acknowledged: vec![],
        },
    );
    let want: Vec<(String, usize, Vec<String>)> = vec![
        // Asked for the log-in again before gen, dropped once gen is done.
        ("running".into(), 3, names(&["u1"])),
        ("done".into(), 3, names(&[])),
        ("running".into(), 4, names(&[])),
        ("done".into(), 4, names(&[])),
    ];
    assert_eq!(seen, want);
}
