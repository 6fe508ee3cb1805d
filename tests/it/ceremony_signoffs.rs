//! Signed sign-offs: a ceremony whose witnesses sign off with SSH keys made by ssh-keygen.
//! Headless, the signatures come from files named in the answers, made by
//! `ssh-keygen -Y sign` over the message the run writes (a run without one stops there,
//! and resumes there once it is signed); an outsider's key, another namespace, another
//! step's message and another person's key are refused in one line. At the console the
//! person picked from the roll call signs through a real ssh-agent. `ssh-keygen -Y verify`
//! accepts every signature the transcript records, over the message rebuilt from the
//! transcript alone; `officiant transcript verify` checks them too, and catches a
//! transcript rebuilt with a signature swapped or dropped.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use serde_json::Value;

use crate::support::agent::{Agent, Keys};
use crate::support::{officiant, run};
use officiant::secret::Secret;
use officiant::tui::event::Event;
use officiant::tui::worker::{self, Question, Reply, Request, WorkerMsg};

const SO: &str = "so-canary-2718";
const PIN: &str = "user-canary-3141";
const NS: &str = "officiant-signoff";

const SCRIPT: &str = r#"
[ceremony]
id = "signed-demo"
title = "Witnesses sign off with SSH keys"
version = 1
token = "signed"
allowed-signers = "witnesses.allowed_signers"

[roles]
administrator = 1

[roles.witness]
count = 2
signed = true

[[step]]
id = "init"
kind = "init-token"
so-pin = "so"
user-pin = "user"
sign-off = ["administrator", "witness"]

[[step]]
id = "login"
kind = "login"
pin = "user"

[[step]]
id = "gen"
kind = "generate-key"
algorithm = "ec-p256"
label = "k1"
key-id = "01"
sign-off = ["witness"]

[[step]]
id = "co-sign"
kind = "co-sign"
text = "Both witnesses sign the transcript head."
sign-off = ["witness"]
"#;

const ANSWERS: &str = r#"
[secrets]
so = "env:SO"
user = "env:PIN"

[[confirm]]
step = "init"

[[participant]]
name = "Ada Admin"
roles = ["administrator"]

[[participant]]
name = "Walt Witness"
roles = ["witness"]

[[participant]]
name = "Wanda Witness"
roles = ["witness"]

[[sign-off]]
step = "init"
role = "administrator"
name = "Ada Admin"

[[sign-off]]
step = "init"
role = "witness"
name = "Walt Witness"
signature = "sigs/walt-init.sig"

[[sign-off]]
step = "init"
role = "witness"
name = "Wanda Witness"
signature = "sigs/wanda-init.sig"

[[sign-off]]
step = "gen"
role = "witness"
name = "Walt Witness"
signature = "sigs/walt-gen.sig"

[[sign-off]]
step = "gen"
role = "witness"
name = "Wanda Witness"
signature = "sigs/wanda-gen.sig"

[[sign-off]]
step = "co-sign"
role = "witness"
name = "Walt Witness"
signature = "sigs/walt-co-sign.sig"

[[sign-off]]
step = "co-sign"
role = "witness"
name = "Wanda Witness"
signature = "sigs/wanda-co-sign.sig"

[[acknowledge]]
step = "gen"
name = "Walt Witness"
"#;

struct Setup {
    dir: tempfile::TempDir,
    keys: Keys,
}

impl Setup {
    /// Keys for Walt, Wanda and Mallory; the allowed signers name Walt by e-mail and by
    /// his roll-call name, Wanda in lower case (the same person), and not Mallory.
    fn new() -> Option<Setup> {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::new(dir.path())?;
        for who in ["walt", "wanda", "mallory"] {
            keys.make(who);
        }
        std::fs::write(
            dir.path().join("witnesses.allowed_signers"),
            format!(
                "\"walt@example.com,Walt Witness\" namespaces=\"{NS}\" {}\n\"wanda witness\" {}\n",
                keys.public("walt"),
                keys.public("wanda")
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("signed.toml"), SCRIPT).unwrap();
        std::fs::write(dir.path().join("signed.answers.toml"), ANSWERS).unwrap();
        std::fs::create_dir(dir.path().join("sigs")).unwrap();
        Some(Setup { dir, keys })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn out(&self) -> PathBuf {
        self.path("out")
    }

    fn run(&self) -> Output {
        let mut c = officiant();
        c.current_dir(self.dir.path())
            .env("SO", SO)
            .env("PIN", PIN)
            .env_remove("SSH_AUTH_SOCK")
            .args(["run", "signed.toml", "--answers", "signed.answers.toml"])
            .args(["--backend", "sim:token", "--out", "out", "--quiet"]);
        run(&mut c)
    }

    /// The one-line refusal of a run that stops.
    fn stops(&self) -> String {
        let o = self.run();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "the run went on: {err}");
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("officiant: "))
            .collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(!err.contains(SO) && !err.contains(PIN));
        lines[0].to_string()
    }

    /// The message file the run wrote for `step`.
    fn message(&self, step: &str) -> PathBuf {
        let prefix = format!("sign-off.{step}.");
        let found: Vec<PathBuf> = std::fs::read_dir(self.out())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with(&prefix) && n.ends_with(".txt")
            })
            .collect();
        assert_eq!(found.len(), 1, "{found:?}");
        found[0].clone()
    }

    /// `who` signs `step`'s message (with `key`, in `namespace`) into `sigs/NAME-STEP.sig`.
    fn sign_as(&self, name: &str, step: &str, key: &str, namespace: &str, message: &Path) {
        let sig = self.keys.sign(key, namespace, message);
        std::fs::write(self.path(&format!("sigs/{name}-{step}.sig")), sig).unwrap();
    }
}

fn entries(transcript: &Path) -> Vec<Value> {
    std::fs::read_to_string(transcript)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The sign-off message rebuilt from the transcript alone, as the README defines it.
fn message_of(script_sha256: &str, step: &str, head: &str) -> String {
    format!("officiant-signoff v1\nscript-sha256 {script_sha256}\nstep {step}\nhead {head}\n")
}

/// ssh-keygen accepts every signed sign-off in the transcript; returns how many.
fn ssh_keygen_accepts_all(keys: &Keys, allowed: &Path, transcript: &Path) -> usize {
    let mut script_sha = String::new();
    let mut n = 0;
    for e in entries(transcript) {
        let d = &e["data"];
        if e["type"] == "open" {
            script_sha = d["script_sha256"].as_str().unwrap().to_string();
        }
        if e["type"] != "sign-off" || d.get("signature").is_none() {
            continue;
        }
        let sig = keys.dir.join(format!("t{n}.sig"));
        std::fs::write(&sig, d["signature"].as_str().unwrap()).unwrap();
        let msg = message_of(
            &script_sha,
            d["id"].as_str().unwrap(),
            d["head"].as_str().unwrap(),
        );
        let principal = d["principal"].as_str().unwrap();
        let (ok, text) = keys.verify(allowed, principal, NS, &sig, msg.as_bytes());
        assert!(ok, "ssh-keygen refused {principal} on {}: {text}", d["id"]);
        n += 1;
    }
    n
}

#[test]
fn headless_sign_offs_come_from_signature_files() {
    let Some(s) = Setup::new() else { return };
    // No signature yet: the run stops at init's first witness with the message to sign.
    let e = s.stops();
    assert!(e.contains("step[0] (init): no signature file"), "{e}");
    assert!(
        e.contains("walt-init.sig for Walt Witness's sign-off as witness"),
        "{e}"
    );
    let init = s.message("init");
    let shown = format!("out/{}", init.file_name().unwrap().to_string_lossy());
    assert!(
        e.contains(&format!("sign {shown} with ssh-keygen -Y sign")),
        "{e}"
    );
    let text = std::fs::read_to_string(&init).unwrap();
    assert!(
        text.starts_with("officiant-signoff v1\nscript-sha256 "),
        "{text}"
    );
    assert!(text.contains("\nstep init\nhead "), "{text}");

    // Refused: an outsider's key, another namespace, another person's key.
    s.sign_as("walt", "init", "mallory", NS, &init);
    let e = s.stops();
    assert!(
        e.contains("Walt Witness's signature is by key SHA256:")
            && e.contains("do not let Walt Witness sign off"),
        "{e}"
    );
    s.sign_as("walt", "init", "walt", "file", &init);
    let e = s.stops();
    assert!(e.contains("made for namespace \"file\""), "{e}");
    s.sign_as("walt", "init", "walt", NS, &init);
    s.sign_as("wanda", "init", "walt", NS, &init);
    let e = s.stops();
    assert!(e.contains("do not let Wanda Witness sign off"), "{e}");
    // The message did not move while the run stopped and resumed.
    assert_eq!(s.message("init"), init);
    s.sign_as("wanda", "init", "wanda", NS, &init);

    // init runs; gen waits for its own message. Init's signature is not over it.
    let e = s.stops();
    assert!(e.contains("step[2] (gen): no signature file"), "{e}");
    let gen = s.message("gen");
    assert_ne!(std::fs::read(&gen).unwrap(), std::fs::read(&init).unwrap());
    std::fs::copy(s.path("sigs/walt-init.sig"), s.path("sigs/walt-gen.sig")).unwrap();
    let e = s.stops();
    assert!(
        e.contains("Walt Witness's signature is not over this sign-off's message"),
        "{e}"
    );
    s.sign_as("walt", "gen", "walt", NS, &gen);
    s.sign_as("wanda", "gen", "wanda", NS, &gen);

    // The co-sign step: both witnesses sign the head after gen's review.
    let e = s.stops();
    assert!(e.contains("step[3] (co-sign): no signature file"), "{e}");
    let co = s.message("co-sign");
    s.sign_as("walt", "co-sign", "walt", NS, &co);
    s.sign_as("wanda", "co-sign", "wanda", NS, &co);
    let o = s.run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let transcript = s.out().join("transcript.jsonl");
    let all = entries(&transcript);
    // Wanda signs as the allowed signers spell her: the same person.
    let principals: Vec<(String, String)> = all
        .iter()
        .filter(|e| e["type"] == "sign-off" && e["data"].get("signature").is_some())
        .map(|e| {
            (
                e["data"]["name"].as_str().unwrap().to_string(),
                e["data"]["principal"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(principals.contains(&("Wanda Witness".into(), "wanda witness".into())));
    assert!(principals.contains(&("Walt Witness".into(), "Walt Witness".into())));
    // The co-sign step reports the head its witnesses signed.
    let done = all
        .iter()
        .find(|e| e["type"] == "step-done" && e["data"]["id"] == "co-sign")
        .unwrap();
    let head = done["data"]["result"]["details"]["co_signed_head"]["hex"]
        .as_str()
        .unwrap();
    assert!(std::fs::read_to_string(&co)
        .unwrap()
        .contains(&format!("head {head}\n")));

    // Six sign-offs, and Walt's good init signature once more: it was recorded in the
    // session that stopped on Wanda's.
    let n = ssh_keygen_accepts_all(&s.keys, &s.path("witnesses.allowed_signers"), &transcript);
    assert_eq!(n, 7);
    let mut c = officiant();
    c.arg("transcript").arg("verify").arg(&transcript);
    let o = run(&mut c);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(out.matches(": good signature").count(), 7, "{out}");
    assert!(
        out.contains("signed sign-off of gen by Wanda Witness (principal \"wanda witness\")"),
        "{out}"
    );
    let md = std::fs::read_to_string(s.out().join("transcript.md")).unwrap();
    assert!(
        md.contains("SSH signature by principal `wanda witness`"),
        "{md}"
    );

    forged_transcripts_are_caught(&s, &transcript);
}

/// Rewrite a transcript line by line with `edit`, rebuilding the hash chain as a forger
/// would.
fn rechain(lines: &[Value], edit: impl Fn(usize, &mut Value)) -> String {
    let mut prev = "0".repeat(64);
    let mut out = String::new();
    for (i, e) in lines.iter().enumerate() {
        let mut e = e.clone();
        edit(i, &mut e);
        let s = |v: &Value| serde_json::to_string(v).unwrap();
        let body = format!(
            "{{\"seq\":{},\"time\":{},\"prev\":{},\"type\":{},\"data\":{}",
            e["seq"],
            s(&e["time"]),
            s(&Value::String(prev.clone())),
            s(&e["type"]),
            s(&e["data"])
        );
        let hash = hex::encode(officiant::output::sha256(format!("{body}}}").as_bytes()));
        out.push_str(&format!("{body},\"hash\":\"{hash}\"}}\n"));
        prev = hash;
    }
    out
}

fn forged_transcripts_are_caught(s: &Setup, transcript: &Path) {
    let lines = entries(transcript);
    let verify = |text: &str| {
        let p = s.path("forged.jsonl");
        std::fs::write(&p, text).unwrap();
        let mut c = officiant();
        c.arg("transcript").arg("verify").arg(&p);
        run(&mut c)
    };
    // Untouched but rebuilt: still good (the rebuild is faithful).
    let o = verify(&rechain(&lines, |_, _| {}));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let find = |step: &str, name: &str| {
        lines
            .iter()
            .rposition(|e| {
                e["type"] == "sign-off" && e["data"]["id"] == step && e["data"]["name"] == name
            })
            .unwrap()
    };
    // Wanda's init signature put on her gen sign-off: a valid signature by her key, over
    // another message.
    let (from, to) = (find("init", "Wanda Witness"), find("gen", "Wanda Witness"));
    let old = lines[from]["data"]["signature"].clone();
    let o = verify(&rechain(&lines, |i, e| {
        if i == to {
            e["data"]["signature"] = old.clone();
        }
    }));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!(
            "line {}: sign-off of step \"gen\" by \"Wanda Witness\"",
            to + 1
        )) && err.contains("not over this sign-off's message"),
        "{err}"
    );
    // A signed role's sign-off with its signature dropped.
    let o = verify(&rechain(&lines, |i, e| {
        if i == to {
            e["data"].as_object_mut().unwrap().remove("signature");
        }
    }));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("has no signature"), "{err}");
    // The allowed signers swapped for a file that lets Mallory sign as Walt.
    let mallory = format!("\"Walt Witness\" {}\n", s.keys.public("mallory"));
    let o = verify(&rechain(&lines, |_, e| {
        if e["type"] == "allowed-signers" {
            e["data"]["text"] = Value::String(mallory.clone());
        }
    }));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("do not match their SHA-256"), "{err}");
}

/// The worker the console runs, driven as the screen would: the roll call, sign-offs
/// picked from it, the PINs, the review. Signed sign-offs go through the ssh-agent.
struct Console {
    tx: std::sync::mpsc::Sender<Request>,
    rx: Receiver<Event>,
}

impl Console {
    fn next(&self) -> WorkerMsg {
        match self.rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Event::Worker(m)) => m,
            other => panic!("the worker said nothing: {other:?}"),
        }
    }

    fn send(&self, r: Request) {
        self.tx.send(r).unwrap();
    }
}

#[test]
fn console_sign_offs_are_signed_by_the_ssh_agent() {
    let Some(s) = Setup::new() else { return };
    let Some(agent) = Agent::start(s.dir.path()) else {
        return;
    };
    // Walt's and Mallory's keys are in the agent; Wanda's is not, yet.
    agent.add(&s.path("walt"));
    agent.add(&s.path("mallory"));
    let (etx, erx) = channel();
    let tx = worker::spawn_with(
        format!("sim:{}", s.path("token").display()),
        etx,
        Some(agent.sock.clone()),
    );
    let c = Console { tx, rx: erx };
    assert!(matches!(c.next(), WorkerMsg::Snapshot { .. }));
    c.send(Request::OpenCeremony {
        script: s.path("signed.toml"),
        out: s.out(),
    });
    loop {
        match c.next() {
            WorkerMsg::CeremonyOpened(_) => break,
            WorkerMsg::Failed { cause, .. } => panic!("{cause}"),
            _ => {}
        }
    }
    c.send(Request::StartCeremony);
    let mut rejected: Vec<String> = Vec::new();
    let mut wanda_added = false;
    let (complete, error) = loop {
        let q = match c.next() {
            WorkerMsg::Ask(q) => q,
            WorkerMsg::Rejected { reason, .. } => {
                rejected.push(reason);
                continue;
            }
            WorkerMsg::CeremonyClosed {
                complete, error, ..
            } => break (complete, error),
            WorkerMsg::Failed { cause, .. } => panic!("{cause}"),
            _ => continue,
        };
        let reply = match q {
            Question::Roster => Reply::Roster(
                [
                    ("Ada Admin", "administrator"),
                    ("Walt Witness", "witness"),
                    ("Wanda Witness", "witness"),
                ]
                .iter()
                .map(|(n, r)| officiant::ceremony::people::Participant {
                    name: n.to_string(),
                    roles: vec![r.to_string()],
                })
                .collect(),
            ),
            Question::SignOff { role, have, .. } if role == "administrator" => {
                let _ = have;
                Reply::SignOff("Ada Admin".into())
            }
            // The first witness is Wanda, whose key is not in the agent: told, asked
            // again; then her key is added.
            Question::SignOff { have: 0, .. } if !wanda_added => {
                if rejected.is_empty() {
                    Reply::SignOff("Wanda Witness".into())
                } else {
                    agent.add(&s.path("wanda"));
                    wanda_added = true;
                    Reply::SignOff("Wanda Witness".into())
                }
            }
            Question::SignOff { have: 0, .. } => Reply::SignOff("Wanda Witness".into()),
            Question::SignOff { .. } => Reply::SignOff("Walt Witness".into()),
            Question::Confirm { .. } => Reply::Confirm,
            Question::Secret { name, .. } => Reply::Secret(Secret::new(
                if name == "so" { SO } else { PIN }.as_bytes().to_vec(),
            )),
            Question::Acknowledge { .. } => Reply::Acknowledge("Walt Witness".into()),
            #[allow(unreachable_patterns)]
            other => panic!("unexpected question {other:?}"),
        };
        c.send(Request::Reply(reply));
    };
    assert!(complete, "{error:?}");
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(
        rejected[0].contains("none of its 2 key(s) may sign off for Wanda Witness"),
        "{rejected:?}"
    );
    // ssh-keygen accepts the agent's signatures, and so does transcript verify.
    let transcript = s.out().join("transcript.jsonl");
    let n = ssh_keygen_accepts_all(&s.keys, &s.path("witnesses.allowed_signers"), &transcript);
    assert_eq!(n, 6);
    let mut v = officiant();
    v.arg("transcript").arg("verify").arg(&transcript);
    let o = run(&mut v);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .matches(": good signature")
            .count(),
        6
    );
}

/// `officiant check` names the field of every mistake in a signed role's setup.
#[test]
fn signed_roles_are_checked_before_anything_runs() {
    let Some(s) = Setup::new() else { return };
    let check = |script: &str, answers: Option<&str>| -> String {
        std::fs::write(s.path("x.toml"), script).unwrap();
        let mut c = officiant();
        c.current_dir(s.dir.path())
            .env("SO", SO)
            .env("PIN", PIN)
            .args(["check", "x.toml"]);
        if let Some(a) = answers {
            std::fs::write(s.path("x.answers.toml"), a).unwrap();
            c.args(["--answers", "x.answers.toml"]);
        }
        let o = run(&mut c);
        assert!(!o.status.success(), "{script}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    for (from, to, why) in [
        (
            "allowed-signers = \"witnesses.allowed_signers\"\n",
            "",
            "x.toml: ceremony: missing field allowed-signers: role witness signs with SSH keys",
        ),
        (
            "count = 2\n",
            "cnt = 2\n",
            "x.toml: roles.witness.cnt: unknown field",
        ),
        (
            "signed = true\n",
            "signed = \"yes\"\n",
            "x.toml: roles.witness.signed: expected true or false",
        ),
        (
            "signed = true\n",
            "",
            "x.toml: ceremony.allowed-signers: no role signs with an SSH key",
        ),
        (
            "text = \"Both witnesses sign the transcript head.\"\nsign-off = [\"witness\"]",
            "sign-off = [\"administrator\"]",
            "x.toml: step[3] (co-sign).sign-off[0]: role \"administrator\" does not sign with SSH keys",
        ),
    ] {
        assert!(SCRIPT.contains(from), "{from}");
        let e = check(&SCRIPT.replacen(from, to, 1), None);
        assert!(e.contains(why), "{why}\n{e}");
    }
    // The allowed signers must let someone sign off.
    std::fs::write(
        s.path("approvers.allowed_signers"),
        format!(
            "walt namespaces=\"officiant-approval\" {}\n",
            s.keys.public("walt")
        ),
    )
    .unwrap();
    let e = check(
        &SCRIPT.replace("witnesses.allowed_signers", "approvers.allowed_signers"),
        None,
    );
    assert!(
        e.contains("ceremony.allowed-signers: ")
            && e.contains("no key may sign in namespace officiant-signoff"),
        "{e}"
    );
    // The answers give a signature for each signed sign-off, and none for the others.
    let no_sig = ANSWERS.replacen("signature = \"sigs/walt-init.sig\"\n", "", 1);
    let e = check(SCRIPT, Some(&no_sig));
    assert!(
        e.contains("sign-off[1]: role \"witness\" signs with SSH keys: add signature = \"FILE\""),
        "{e}"
    );
    let extra = ANSWERS.replacen(
        "role = \"administrator\"\nname = \"Ada Admin\"\n",
        "role = \"administrator\"\nname = \"Ada Admin\"\nsignature = \"sigs/ada.sig\"\n",
        1,
    );
    let e = check(SCRIPT, Some(&extra));
    assert!(
        e.contains("sign-off[0].signature: role \"administrator\" does not sign with SSH keys"),
        "{e}"
    );
}

/// set-policy logs in as the SO where there is one; a YubiHSM 2 has none.
#[cfg(feature = "mock-hsm")]
#[test]
fn set_policy_names_the_login_it_needs() {
    let Some(s) = Setup::new() else { return };
    let policy_dir = s.path("p");
    std::fs::create_dir(&policy_dir).unwrap();
    std::fs::write(
        policy_dir.join("approvers.allowed_signers"),
        format!("alice {}\n", s.keys.public("walt")),
    )
    .unwrap();
    std::fs::write(
        policy_dir.join("policy.toml"),
        "allowed-signers = \"approvers.allowed_signers\"\n[keys.k1]\napprovers = [\"alice\"]\nquorum = 1\n",
    )
    .unwrap();
    let script = |so: &str| {
        format!(
            "[ceremony]\nid = \"p\"\ntitle = \"p\"\nversion = 1\ntoken = \"t\"\n\n[[step]]\nid = \"policy\"\nkind = \"set-policy\"\npolicy = \"p/policy.toml\"\n{so}"
        )
    };
    let check = |text: &str, backend: &str| {
        std::fs::write(s.path("p.toml"), text).unwrap();
        let mut c = officiant();
        c.current_dir(s.dir.path())
            .args(["check", "p.toml", "--backend", backend]);
        let o = run(&mut c);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (ok, e) = check(&script("so-pin = \"so\"\n"), "yubihsm:mock");
    assert!(!ok);
    assert!(
        e.contains("step[0] (policy).so-pin: yubihsm:mock has no SO"),
        "{e}"
    );
    let (ok, e) = check(&script(""), "sim:tok");
    assert!(!ok);
    assert!(e.contains("step[0] (policy).so-pin: missing"), "{e}");
    let (ok, e) = check(&script(""), "yubihsm:mock");
    assert!(ok, "{e}");
    // Run on the MockHsm: stored with the session's key, and said to be deletable.
    let login = "[[step]]\nid = \"login\"\nkind = \"login\"\npin = \"pw\"\n\n";
    let text = script("review = false\n").replacen("[[step]]", &format!("{login}[[step]]"), 1);
    std::fs::write(s.path("p.toml"), text).unwrap();
    std::fs::write(s.path("p.answers.toml"), "[secrets]\npw = \"env:PW\"\n").unwrap();
    let mut c = officiant();
    c.current_dir(s.dir.path()).env("PW", "password").args([
        "run",
        "p.toml",
        "--answers",
        "p.answers.toml",
        "--backend",
        "yubihsm:mock",
        "--out",
        "yout",
    ]);
    let o = run(&mut c);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("policy SHA-256: "), "{out}");
    assert!(
        out.contains("cannot keep the policy object from deletion"),
        "{out}"
    );
    assert!(!out.contains("password"));
    // A policy file that does not parse is refused by name before any token.
    std::fs::write(policy_dir.join("policy.toml"), "allowed-signers = 3\n").unwrap();
    let (ok, e) = check(&script("so-pin = \"so\"\n"), "sim:tok");
    assert!(!ok);
    assert!(
        e.contains("step[0] (policy).policy: ")
            && e.contains("allowed-signers: expected a file name"),
        "{e}"
    );
}
