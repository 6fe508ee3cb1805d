//! The approval stage end to end, through the officiant binary, on the rehearsal token
//! and on SoftHSMv2: keys made by ssh-keygen, approvals made by `ssh-keygen -Y sign`
//! (and by `officiant request approve` through a real ssh-agent, accepted by
//! `ssh-keygen -Y verify`), signatures checked by openssl.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{oracle, run, run_ok, SoftHsm};

const SO: &str = "so-canary-5150";
const PIN: &str = "user-canary-8642";

enum Backend {
    Sim(PathBuf),
    Soft(SoftHsm),
}

struct Pipeline {
    dir: tempfile::TempDir,
    backend: Backend,
    keygen: PathBuf,
    n: std::cell::Cell<usize>,
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl Pipeline {
    /// A token with keys `fw` (quorum 2 of alice, bob, carol; at most 5 uses) and `free`
    /// (no rule), and the policy set.
    fn new(soft: bool) -> Option<Pipeline> {
        let keygen = oracle("ssh-keygen")?;
        let dir = tempfile::tempdir().unwrap();
        let backend = if soft {
            Backend::Soft(SoftHsm::new()?)
        } else {
            Backend::Sim(dir.path().join("token"))
        };
        let p = Pipeline {
            dir,
            backend,
            keygen,
            n: Default::default(),
        };
        for who in ["alice", "bob", "carol", "mallory"] {
            run_ok(
                Command::new(&p.keygen)
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", who, "-f"])
                    .arg(p.path(who)),
            );
        }
        let line = |who: &str| {
            let k = std::fs::read_to_string(p.path(&format!("{who}.pub"))).unwrap();
            k.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
        };
        std::fs::write(
            p.path("approvers.allowed_signers"),
            format!(
                "alice {}\nbob namespaces=\"officiant-approval\" {}\ncarol {}\n",
                line("alice"),
                line("bob"),
                line("carol")
            ),
        )
        .unwrap();
        p.write_policy("policy.toml", 5);
        p.ok(&[
            "init-token",
            "--label",
            "ci",
            "--so-pin-source",
            "env:SO",
            "--pin-source",
            "env:PIN",
        ]);
        for key in ["fw", "free"] {
            p.ok(&[
                "generate-key",
                "--pin-source",
                "env:PIN",
                "--label",
                key,
                "--algorithm",
                "ec-p256",
            ]);
        }
        let out = p.ok(&[
            "policy",
            "set",
            "--policy",
            p.path("policy.toml").to_str().unwrap(),
            "--so-pin-source",
            "env:SO",
        ]);
        assert!(
            out.contains("the token keeps this policy from being modified or destroyed"),
            "{out}"
        );
        Some(p)
    }

    fn write_policy(&self, name: &str, max_uses: u32) {
        std::fs::write(
            self.path(name),
            format!(
                "allowed-signers = \"approvers.allowed_signers\"\n\n[keys.fw]\napprovers = [\"alice\", \"bob\", \"carol\"]\nquorum = 2\nmax-uses = {max_uses}\n"
            ),
        )
        .unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn uri(&self) -> String {
        match &self.backend {
            Backend::Sim(d) => format!("sim:{}", d.display()),
            Backend::Soft(s) => format!("pkcs11:token=ci?module-path={}", s.module.display()),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = support::officiant();
        c.current_dir(self.dir.path())
            .env("SO", SO)
            .env("PIN", PIN)
            .env_remove("SSH_AUTH_SOCK");
        if let Backend::Soft(s) = &self.backend {
            s.env(&mut c);
        }
        c
    }

    /// officiant with `--backend` after the (sub)command words.
    fn officiant(&self, args: &[&str]) -> Output {
        let words = args.iter().take_while(|a| !a.starts_with('-')).count();
        let mut c = self.cmd();
        c.args(&args[..words])
            .args(["--backend", &self.uri()])
            .args(&args[words..]);
        run(&mut c)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.officiant(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    }

    /// The one-line refusal of a command that must fail.
    fn refused(&self, args: &[&str]) -> String {
        let o = self.officiant(args);
        assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
        let e = stderr(&o);
        let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("officiant: ")).collect();
        assert_eq!(lines.len(), 1, "{e}");
        lines[0].trim_start_matches("officiant: ").to_string()
    }

    fn request(&self, keys: &[&str], max_uses: u32, valid_for: &str) -> PathBuf {
        let i = self.n.get() + 1;
        self.n.set(i);
        let name = format!("req{i}.json");
        let mut args = vec!["request", "create"];
        for k in keys {
            args.extend(["--key", k]);
        }
        let m = max_uses.to_string();
        args.extend([
            "--max-uses",
            &m,
            "--valid-for",
            valid_for,
            "--description",
            "release 1.2.3 of the main firmware",
            "-o",
            &name,
        ]);
        self.ok(&args);
        self.path(&name)
    }

    /// `ssh-keygen -Y sign -f WHO -n NAMESPACE REQ`, saved as its own file.
    fn approve(&self, who: &str, namespace: &str, req: &Path) -> PathBuf {
        run_ok(
            Command::new(&self.keygen)
                .args(["-Y", "sign", "-f"])
                .arg(self.path(who))
                .args(["-n", namespace])
                .arg(req),
        );
        let i = self.n.get() + 1;
        self.n.set(i);
        let to = self.path(&format!("{who}-{namespace}-{i}.sig"));
        let mut made = req.as_os_str().to_owned();
        made.push(".sig");
        std::fs::rename(made, &to).unwrap();
        to
    }

    fn payload(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, format!("payload {name}")).unwrap();
        p
    }

    /// `officiant sign --key KEY --format raw IN… (--out-dir out | -o IN.sig)` with a
    /// request and approvals.
    fn sign_args(key: &str, inputs: &[&str], req: Option<&Path>, sigs: &[&Path]) -> Vec<String> {
        let mut a: Vec<String> = ["sign", "--pin-source", "env:PIN", "--key", key]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--format".into(), "raw".into()]);
        a.extend(["--transcript".into(), "t.jsonl".into()]);
        if let Some(r) = req {
            a.extend(["--request".into(), r.display().to_string()]);
        }
        for s in sigs {
            a.extend(["--approval".into(), s.display().to_string()]);
        }
        a.extend(inputs.iter().map(|s| s.to_string()));
        if inputs.len() == 1 {
            a.extend(["-o".into(), format!("{}.sig", inputs[0])]);
        } else {
            a.extend(["--out-dir".into(), ".".into()]);
        }
        a
    }

    fn sign(&self, key: &str, inputs: &[&str], req: Option<&Path>, sigs: &[&Path]) -> Output {
        for i in inputs {
            if !self.path(i).exists() {
                self.payload(i);
            }
        }
        let a = Self::sign_args(key, inputs, req, sigs);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        self.officiant(&a)
    }

    fn sign_ok(&self, key: &str, inputs: &[&str], req: Option<&Path>, sigs: &[&Path]) -> String {
        let o = self.sign(key, inputs, req, sigs);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    }

    fn sign_refused(
        &self,
        key: &str,
        inputs: &[&str],
        req: Option<&Path>,
        sigs: &[&Path],
    ) -> String {
        let o = self.sign(key, inputs, req, sigs);
        assert!(!o.status.success(), "signed: {}", stdout(&o));
        for i in inputs {
            assert!(!self.path(&format!("{i}.sig")).exists(), "{i}.sig written");
        }
        let e = stderr(&o);
        let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("officiant: ")).collect();
        assert_eq!(lines.len(), 1, "{e}");
        lines[0].trim_start_matches("officiant: ").to_string()
    }

    /// openssl checks a raw signature with the key's exported public half.
    fn openssl_verifies(&self, key: &str, input: &str) {
        let Some(openssl) = oracle("openssl") else {
            return;
        };
        let pem = self.path(&format!("{key}.pub.pem"));
        if !pem.exists() {
            self.ok(&["export-pubkey", "--key", key, "-o", pem.to_str().unwrap()]);
        }
        run_ok(
            Command::new(openssl)
                .args(["dgst", "-sha256", "-verify"])
                .arg(&pem)
                .arg("-signature")
                .arg(self.path(&format!("{input}.sig")))
                .arg(self.path(input)),
        );
    }
}

/// Every case the issue lists, on one backend.
fn approvals_end_to_end(soft: bool) {
    let Some(p) = Pipeline::new(soft) else { return };

    // A key under a quorum refuses to sign without a request.
    let e = p.sign_refused("fw", &["a.bin"], None, &[]);
    assert_eq!(
        e,
        "key \"fw\" needs 2 approval(s) from {alice, bob, carol}: give --request REQ.json and --approval SIG for each"
    );
    // A key without a rule signs as before.
    p.sign_ok("free", &["free.bin"], None, &[]);
    p.openssl_verifies("free", "free.bin");

    let req = p.request(&["fw"], 2, "10m");
    let alice = p.approve("alice", "officiant-approval", &req);
    let bob = p.approve("bob", "officiant-approval", &req);
    let carol = p.approve("carol", "officiant-approval", &req);
    let mallory = p.approve("mallory", "officiant-approval", &req);
    let bob_file = p.approve("bob", "file", &req);
    let alice_again = p.approve("alice", "officiant-approval", &req);

    // Quorum unmet.
    let e = p.sign_refused("fw", &["a.bin"], Some(&req), &[&alice]);
    assert_eq!(
        e,
        "key \"fw\": 2 approval(s) needed from {alice, bob, carol}, have 1 valid: alice"
    );
    // An outsider does not count.
    let e = p.sign_refused("fw", &["a.bin"], Some(&req), &[&alice, &mallory]);
    assert!(
        e.starts_with("key \"fw\": 2 approval(s) needed from {alice, bob, carol}, have 1 valid: alice (not counted: ")
            && e.contains("not an approver of this key"),
        "{e}"
    );
    // The same approver twice counts once.
    let e = p.sign_refused("fw", &["a.bin"], Some(&req), &[&alice, &alice_again]);
    assert!(
        e.contains("have 1 valid: alice") && e.contains("a second approval by alice"),
        "{e}"
    );
    // Another namespace does not count.
    let e = p.sign_refused("fw", &["a.bin"], Some(&req), &[&alice, &bob_file]);
    assert!(
        e.contains("have 1 valid: alice")
            && e.contains("made for namespace \"file\", not \"officiant-approval\""),
        "{e}"
    );
    // A signature over another request does not count.
    let req_other = p.request(&["fw"], 1, "10m");
    let bob_other = p.approve("bob", "officiant-approval", &req_other);
    let e = p.sign_refused("fw", &["a.bin"], Some(&req), &[&alice, &bob_other]);
    assert!(e.contains("does not verify over request"), "{e}");

    // Quorum met: two uses, in two processes; the third is refused.
    let out = p.sign_ok("fw", &["a.bin"], Some(&req), &[&alice, &mallory, &bob]);
    assert!(out.contains("use 1 of 2 of request"), "{out}");
    assert!(out.contains("(approved by alice, bob)"), "{out}");
    p.openssl_verifies("fw", "a.bin");
    let out = p.sign_ok("fw", &["b.bin"], Some(&req), &[&carol, &bob]);
    assert!(
        out.contains("use 2 of 2 of request") && out.contains("(approved by bob, carol)"),
        "{out}"
    );
    let e = p.sign_refused("fw", &["c.bin"], Some(&req), &[&alice, &bob]);
    let id = req_id(&req);
    assert_eq!(
        e,
        format!("request {id}: all 2 use(s) of key \"fw\" are spent")
    );

    // Across a batch: a batch needing more uses than are left signs nothing.
    let req3 = p.request(&["fw"], 3, "10m");
    let a3 = p.approve("alice", "officiant-approval", &req3);
    let c3 = p.approve("carol", "officiant-approval", &req3);
    let e = p.sign_refused("fw", &["d1", "d2", "d3", "d4"], Some(&req3), &[&a3, &c3]);
    assert_eq!(
        e,
        format!(
            "request {}: key \"fw\" has 3 of 3 use(s) left, 4 needed",
            req_id(&req3)
        )
    );
    let out = p.sign_ok("fw", &["d1", "d2"], Some(&req3), &[&a3, &c3]);
    assert!(out.contains("use 2 of 3"), "{out}");
    let e = p.sign_refused("fw", &["d3", "d4"], Some(&req3), &[&a3, &c3]);
    assert!(e.ends_with("has 1 of 3 use(s) left, 2 needed"), "{e}");
    p.sign_ok("fw", &["d3"], Some(&req3), &[&a3, &c3]);

    // A tampered request: the approvals are over other bytes.
    let req4 = p.request(&["fw"], 1, "10m");
    let a4 = p.approve("alice", "officiant-approval", &req4);
    let b4 = p.approve("bob", "officiant-approval", &req4);
    let text = std::fs::read_to_string(&req4).unwrap();
    let tampered = p.path("tampered.json");
    std::fs::write(&tampered, text.replace("\"max-uses\":1", "\"max-uses\":9")).unwrap();
    let e = p.sign_refused("fw", &["e.bin"], Some(&tampered), &[&a4, &b4]);
    assert!(
        e.contains("have none valid") && e.contains("does not verify over request"),
        "{e}"
    );
    std::fs::write(&tampered, text.replace("\",\"", "\", \"")).unwrap();
    let e = p.sign_refused("fw", &["e.bin"], Some(&tampered), &[&a4, &b4]);
    assert!(e.contains("not in canonical form"), "{e}");

    // A request for another key, or none for a key without a rule.
    let e = p.sign_refused("free", &["f.bin"], Some(&req4), &[&a4, &b4]);
    assert!(
        e.contains("key \"free\" has no rule in the token's approval policy"),
        "{e}"
    );

    // An expired request.
    let req5 = p.request(&["fw"], 1, "1s");
    let a5 = p.approve("alice", "officiant-approval", &req5);
    let b5 = p.approve("bob", "officiant-approval", &req5);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let e = p.sign_refused("fw", &["g.bin"], Some(&req5), &[&a5, &b5]);
    assert!(
        e.contains(&format!("request {} expired at ", req_id(&req5))),
        "{e}"
    );

    // The policy changed after the request: version 2, another hash.
    p.write_policy("policy2.toml", 7);
    let out = p.ok(&[
        "policy",
        "set",
        "--policy",
        "policy2.toml",
        "--so-pin-source",
        "env:SO",
    ]);
    assert!(out.contains("policy officiant-policy.2 on token"), "{out}");
    let e = p.sign_refused("fw", &["e.bin"], Some(&req4), &[&a4, &b4]);
    assert!(
        e.contains("the token's policy is now") && e.contains("(changed since)"),
        "{e}"
    );
    let shown = p.ok(&["policy", "show"]);
    assert!(shown.contains("at most 7 uses per request"), "{shown}");

    // Every use is in the transcript, with the request and the approvers; it verifies.
    let t = std::fs::read_to_string(p.path("t.jsonl")).unwrap();
    let uses: Vec<serde_json::Value> = t
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "signed" && v["data"]["key_label"] == "fw")
        .collect();
    assert_eq!(uses.len(), 5);
    assert_eq!(uses[0]["data"]["approval"]["request"], id.as_str());
    assert_eq!(
        uses[0]["data"]["approval"]["approvers"],
        serde_json::json!(["alice", "bob"])
    );
    assert_eq!(uses[1]["data"]["approval"]["use"], 2);
    run_ok(p.cmd().args(["transcript", "verify", "t.jsonl"]));
    // The policy set entries are in the default transcript; no PIN is anywhere.
    let setup = std::fs::read_to_string(p.path("officiant-transcript.jsonl")).unwrap();
    assert_eq!(setup.matches("\"type\":\"policy-set\"").count(), 2);
    for text in [&t, &setup, &out, &shown] {
        assert!(!text.contains(SO) && !text.contains(PIN));
    }
}

fn req_id(req: &Path) -> String {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(req).unwrap()).unwrap();
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn approvals_on_the_rehearsal_token() {
    approvals_end_to_end(false);
}

#[test]
fn approvals_on_softhsm() {
    approvals_end_to_end(true);
}

#[test]
fn requests_are_checked_against_the_policy_when_made() {
    let Some(p) = Pipeline::new(false) else {
        return;
    };
    let e = p.refused(&[
        "request",
        "create",
        "--key",
        "free",
        "--max-uses",
        "1",
        "--valid-for",
        "1m",
        "--description",
        "x",
        "-o",
        "r.json",
    ]);
    assert!(
        e.contains("--key \"free\": no rule in the token's policy"),
        "{e}"
    );
    let e = p.refused(&[
        "request",
        "create",
        "--key",
        "fw",
        "--max-uses",
        "6",
        "--valid-for",
        "1m",
        "--description",
        "x",
        "-o",
        "r.json",
    ]);
    assert_eq!(
        e,
        "--max-uses 6: the policy allows key \"fw\" at most 5 uses per request"
    );
    let e = p.refused(&[
        "request",
        "create",
        "--key",
        "fw",
        "--max-uses",
        "1",
        "--valid-for",
        "1 minute",
        "--description",
        "x",
        "-o",
        "r.json",
    ]);
    assert!(e.starts_with("--valid-for: "), "{e}");
    let e = p.refused(&[
        "request",
        "create",
        "--key",
        "fw",
        "--max-uses",
        "1",
        "--valid-for",
        "1m",
        "--description",
        "two\nlines",
        "-o",
        "r.json",
    ]);
    assert!(e.contains("description: control characters"), "{e}");
    assert!(!p.path("r.json").exists());
}

#[test]
fn policy_files_are_read_strictly() {
    let Some(p) = Pipeline::new(false) else {
        return;
    };
    let set = |body: &str| {
        std::fs::write(p.path("bad.toml"), body).unwrap();
        p.refused(&[
            "policy",
            "set",
            "--policy",
            "bad.toml",
            "--so-pin-source",
            "env:SO",
        ])
    };
    let head = "allowed-signers = \"approvers.allowed_signers\"\n";
    let e = set(&format!(
        "{head}[keys.fw]\napprovers = [\"alice\"]\nquorum = 1\nquroum = 2\n"
    ));
    assert_eq!(e, "bad.toml: keys.fw.quroum: unknown field");
    let e = set(&format!(
        "{head}[keys.fw]\napprovers = [\"alice\", \"dave\"]\nquorum = 1\n"
    ));
    assert!(
        e.starts_with("bad.toml: keys.fw.approvers[1]: \"dave\" has no key"),
        "{e}"
    );
    let e = set(&format!(
        "{head}[keys.fw]\napprovers = [\"alice\"]\nquorum = 2\n"
    ));
    assert_eq!(
        e,
        "bad.toml: keys.fw.quorum: 2 approvals can never be had from 1 approver(s)"
    );
    let e = set(&format!(
        "{head}[keys.fw]\napprovers = [\"alice\"]\nquorum = \"1\"\n"
    ));
    assert_eq!(
        e,
        "bad.toml: keys.fw.quorum: expected an integer, found string"
    );
    let e = set(&format!("{head}extra = 1\n[keys.fw]\nquorum = 0\n"));
    assert_eq!(e, "bad.toml: extra: unknown field");
    let e = set(&format!(
        "{head}[keys.fw]\nquorum = 0\nnot-before = 2027-01-01T00:00:00Z\nnot-after = 2026-01-01T00:00:00Z\n"
    ));
    assert_eq!(
        e,
        "bad.toml: keys.fw.not-after: must be later than not-before"
    );
    // One key for two approvers would let its holder count twice.
    let signers = std::fs::read_to_string(p.path("approvers.allowed_signers")).unwrap();
    let alice_key = signers.lines().next().unwrap().trim_start_matches("alice ");
    std::fs::write(p.path("shared"), format!("alice,bob {alice_key}\n")).unwrap();
    let e = set(
        "allowed-signers = \"shared\"\n[keys.fw]\napprovers = [\"alice\", \"bob\"]\nquorum = 2\n",
    );
    assert!(e.contains("belongs to both \"alice\" and \"bob\""), "{e}");
    std::fs::write(p.path("broken"), "alice ssh-ed25519 AAAA\n").unwrap();
    let e = set("allowed-signers = \"broken\"\n[keys.fw]\nquorum = 0\n");
    assert!(e.starts_with("bad.toml: allowed-signers: "), "{e}");
    assert!(e.contains("broken:1: "), "{e}");
    // Nothing was stored: the token still holds version 1.
    assert!(p
        .ok(&["policy", "show"])
        .contains("policy officiant-policy.1 on token"));
    // The user PIN cannot set a policy.
    let e = p.refused(&[
        "policy",
        "set",
        "--policy",
        "policy.toml",
        "--pin-source",
        "env:PIN",
    ]);
    assert!(e.contains("--so-pin-source"), "{e}");
}

/// A real ssh-agent approves through `officiant request approve`; ssh-keygen -Y verify
/// accepts the signature with the policy's own allowed signers, and so does sign.
#[test]
fn approve_through_ssh_agent() {
    let Some(p) = Pipeline::new(false) else {
        return;
    };
    let Some(agent) = crate::support::agent::Agent::start(p.dir.path()) else {
        return;
    };
    for who in ["alice", "carol"] {
        agent.add(&p.path(who));
    }
    let sock = agent.sock.clone();
    let req = p.request(&["fw"], 1, "10m");
    let approve = |who: &str, out: &str| {
        let mut c = p.cmd();
        c.env("SSH_AUTH_SOCK", &sock)
            .args(["request", "approve"])
            .arg(&req)
            .arg("--signer")
            .arg(p.path(&format!("{who}.pub")))
            .args(["-o", out]);
        run(&mut c)
    };
    let o = approve("alice", "alice.sig");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("description release 1.2.3 of the main firmware"));
    let o = approve("carol", "carol.sig");
    assert!(o.status.success(), "{}", stderr(&o));
    // Two keys in the agent and no --signer: the approver must choose.
    let mut c = p.cmd();
    c.env("SSH_AUTH_SOCK", &sock)
        .args(["request", "approve"])
        .arg(&req)
        .args(["-o", "x.sig"]);
    let o = run(&mut c);
    assert!(
        !o.status.success() && stderr(&o).contains("choose one with --signer"),
        "{}",
        stderr(&o)
    );
    // ssh-keygen judges Officiant's approvals against the policy's allowed signers.
    p.ok(&[
        "policy",
        "show",
        "--export-signers",
        "stored.allowed_signers",
    ]);
    for who in ["alice", "carol"] {
        let ok = Command::new(&p.keygen)
            .args(["-Y", "verify", "-f"])
            .arg(p.path("stored.allowed_signers"))
            .args(["-I", who, "-n", "officiant-approval", "-s"])
            .arg(p.path(&format!("{who}.sig")))
            .stdin(std::fs::File::open(&req).unwrap())
            .output()
            .unwrap();
        assert!(ok.status.success(), "{who}: {}", stderr(&ok));
    }
    let out = p.sign_ok(
        "fw",
        &["h.bin"],
        Some(&req),
        &[&p.path("alice.sig"), &p.path("carol.sig")],
    );
    assert!(out.contains("(approved by alice, carol)"), "{out}");
}

/// On a YubiHSM (here the MockHsm, which lives for one process) `policy set` logs in
/// with an administrative authentication key, stores an opaque object, and says that the
/// device cannot keep it from deletion.
#[cfg(feature = "mock-hsm")]
#[test]
fn policy_set_on_the_yubihsm_mock() {
    let Some(p) = Pipeline::new(false) else {
        return;
    };
    let mut c = p.cmd();
    c.env("PW", "password").args([
        "policy",
        "set",
        "--backend",
        "yubihsm:mock",
        "--auth-key",
        "1",
        "--pin-source",
        "env:PW",
        "--policy",
        "policy.toml",
    ]);
    let o = run(&mut c);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("policy officiant-policy.1 on token \"MockHsm\""),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("cannot keep the policy object from deletion"),
        "{}",
        stderr(&o)
    );
    // An SO PIN means nothing to a YubiHSM.
    let mut c = p.cmd();
    c.args([
        "policy",
        "set",
        "--backend",
        "yubihsm:mock",
        "--so-pin-source",
        "env:SO",
        "--policy",
        "policy.toml",
    ]);
    let o = run(&mut c);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("a YubiHSM 2 has no SO"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains(SO) && !stdout(&o).contains("password"));
}
