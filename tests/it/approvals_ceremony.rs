//! The shipped `signing-policy.toml` ceremony (keys, then the approval policy stored as the
//! SO by a `set-policy` step) replayed headless on the rehearsal token and on SoftHSM:
//! pkcs11-tool judges that the policy object can be neither modified nor destroyed and
//! reads back the bytes whose SHA-256 the step reported, `officiant policy show` reads the
//! same policy, and the shipped rehearsal approvers' keys approve a request with
//! `ssh-keygen -Y sign` that lets the release key sign (openssl verifies the signature).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::replay::{on_sim, on_softhsm, openssl_sha256, shipped, Replay};
use crate::support::{officiant, oracle, run, run_ok};

const TOKEN: &str = "officiant-signing";

/// The set-policy step's reported SHA-256 (hex), from the transcript.
fn reported_sha256(r: &Replay) -> String {
    let t = r.transcript();
    let done = t
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["type"] == "step-done" && e["data"]["id"] == "set-policy")
        .expect("set-policy is done");
    let p = &done["data"]["result"]["details"]["policy"];
    assert_eq!(p["label"], "officiant-policy.1");
    assert_eq!(p["immutable"], true, "{p}");
    let hex = p["sha256"]["hex"].as_str().unwrap().to_string();
    assert_eq!(hex.len(), 64);
    assert!(
        r.read_md().contains(p["sha256"]["words"].as_str().unwrap()),
        "transcript.md shows the PGP words"
    );
    hex
}

trait Md {
    fn read_md(&self) -> String;
}

impl Md for Replay {
    fn read_md(&self) -> String {
        String::from_utf8(self.read("transcript.md")).unwrap()
    }
}

fn officiant_in(r: &Replay, backend: &str, args: &[&str]) -> Output {
    let mut c = officiant();
    c.current_dir(r.dir.path()).env_remove("SSH_AUTH_SOCK").env(
        "PIN",
        std::fs::read_to_string(shipped("rehearsal-secrets/user.pin"))
            .unwrap()
            .trim(),
    );
    if let Some(h) = &r.softhsm {
        h.env(&mut c);
    }
    let words = args.iter().take_while(|a| !a.starts_with('-')).count();
    c.args(&args[..words])
        .args(["--backend", backend])
        .args(&args[words..]);
    run(&mut c)
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// `officiant policy show --json` agrees with the step.
fn policy_show_agrees(r: &Replay, backend: &str, sha: &str) {
    let out = ok(officiant_in(r, backend, &["policy", "show", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["sha256"], sha);
    assert_eq!(v["immutable"], true);
    assert_eq!(v["keys"]["fw-release"]["quorum"], 2);
    assert_eq!(v["keys"]["fw-nightly"]["quorum"], 1);
    assert!(v["keys"].get("fw-test").is_none());
}

/// A copy of a shipped rehearsal approver's private key that ssh-keygen will use (git
/// does not keep the 0600 mode it insists on).
fn approver_key(dir: &Path, who: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(who);
    std::fs::copy(shipped(&format!("rehearsal-secrets/approver-{who}")), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A request for fw-release, approved by alice and carol with ssh-keygen, signs; one
/// approval does not; fw-test signs without any.
fn the_shipped_approvers_approve(r: &Replay, backend: &str) {
    let (Some(keygen), Some(openssl)) = (oracle("ssh-keygen"), oracle("openssl")) else {
        return;
    };
    let d = r.dir.path();
    std::fs::write(d.join("fw.bin"), b"firmware 1.0").unwrap();
    ok(officiant_in(
        r,
        backend,
        &[
            "request",
            "create",
            "--pin-source",
            "env:PIN",
            "--key",
            "fw-release",
            "--max-uses",
            "1",
            "--valid-for",
            "10m",
            "--description",
            "release 1.0",
            "-o",
            "req.json",
        ],
    ));
    for who in ["alice", "carol"] {
        let key = approver_key(d, who);
        let sig = run_ok(
            Command::new(&keygen)
                .args(["-Y", "sign", "-q", "-f"])
                .arg(&key)
                .args(["-n", "officiant-approval"])
                .stdin(std::fs::File::open(d.join("req.json")).unwrap()),
        );
        std::fs::write(d.join(format!("req.json.{who}.sig")), sig).unwrap();
    }
    let sign = |approvals: &[&str], key: &str, out: &str| {
        let mut args = vec![
            "sign",
            "--pin-source",
            "env:PIN",
            "--key",
            key,
            "--format",
            "raw",
            "fw.bin",
            "-o",
            out,
        ];
        if !approvals.is_empty() {
            args.extend(["--request", "req.json"]);
        }
        for a in approvals {
            args.extend(["--approval", a]);
        }
        officiant_in(r, backend, &args)
    };
    let one = sign(&["req.json.alice.sig"], "fw-release", "one.sig");
    assert!(!one.status.success());
    assert!(
        String::from_utf8_lossy(&one.stderr).contains("have 1 valid: alice"),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    ok(sign(
        &["req.json.alice.sig", "req.json.carol.sig"],
        "fw-release",
        "fw.sig",
    ));
    ok(sign(&[], "fw-test", "test.sig"));
    // openssl judges the release signature with the key the ceremony exported.
    run_ok(
        Command::new(&openssl)
            .args(["dgst", "-sha256", "-verify"])
            .arg(r.file("fw-release.pub.pem"))
            .arg("-signature")
            .arg(d.join("fw.sig"))
            .arg(d.join("fw.bin")),
    );
}

#[test]
fn signing_policy_on_the_rehearsal_token() {
    let r = on_sim("signing-policy");
    let sha = reported_sha256(&r);
    let backend = format!("sim:{}", r.dir.path().join("token").display());
    policy_show_agrees(&r, &backend, &sha);
    the_shipped_approvers_approve(&r, &backend);
}

#[test]
fn signing_policy_on_softhsm() {
    let Some(tool) = oracle("pkcs11-tool") else {
        return;
    };
    let Some(openssl) = oracle("openssl") else {
        return;
    };
    let Some(r) = on_softhsm("signing-policy") else {
        return;
    };
    let sha = reported_sha256(&r);
    let Some(hsm) = r.softhsm.as_ref() else {
        return;
    };
    let backend = format!("pkcs11:token={TOKEN}?module-path={}", hsm.module.display());
    let tool_cmd = || {
        let mut c = Command::new(&tool);
        hsm.env(&mut c)
            .arg("--module")
            .arg(&hsm.module)
            .args(["--token-label", TOKEN]);
        c
    };
    // The object as pkcs11-tool sees it: public, and not modifiable.
    let list = run_ok(tool_cmd().args(["--list-objects", "--type", "data"]));
    let block = list
        .split("Data object")
        .find(|b| b.contains("'officiant-policy.1'"))
        .unwrap_or_else(|| panic!("no policy object:\n{list}"));
    let flags = block
        .lines()
        .find(|l| l.trim_start().starts_with("flags:"))
        .unwrap_or_else(|| panic!("no flags line:\n{block}"));
    assert!(!flags.contains("modifiable"), "{flags}");
    assert!(!flags.contains("private"), "{flags}");
    // The user cannot destroy it (CKR_ACTION_PROHIBITED)…
    let pin = std::fs::read_to_string(shipped("rehearsal-secrets/user.pin")).unwrap();
    let del = run(tool_cmd().args([
        "--login",
        "--pin",
        pin.trim(),
        "--delete-object",
        "--type",
        "data",
        "--label",
        "officiant-policy.1",
    ]));
    assert!(!del.status.success(), "pkcs11-tool deleted the policy");
    // …and what it reads back is what the step reported.
    run_ok(
        tool_cmd()
            .args([
                "--read-object",
                "--type",
                "data",
                "--label",
                "officiant-policy.1",
                "--output-file",
            ])
            .arg(r.dir.path().join("policy.bin")),
    );
    let digest = openssl_sha256(&openssl, &r.dir.path().join("policy.bin"));
    assert_eq!(hex::encode(digest), sha);
    policy_show_agrees(&r, &backend, &sha);
    the_shipped_approvers_approve(&r, &backend);
}

/// The SO PIN set-policy logs in with never reaches the transcript, its rendering or the
/// run's output.
#[test]
fn the_so_pin_stays_out_of_the_record() {
    const SO: &str = "so-canary-6626";
    const USER: &str = "user-canary-7071";
    let dir = tempfile::tempdir().unwrap();
    let answers = std::fs::read_to_string(shipped("signing-policy.answers.toml")).unwrap();
    let answers = answers
        .replace("file:rehearsal-secrets/so.pin", "env:SO")
        .replace("file:rehearsal-secrets/user.pin", "env:USER_PIN");
    assert!(answers.contains("env:SO") && answers.contains("env:USER_PIN"));
    let a = dir.path().join("answers.toml");
    std::fs::write(&a, answers).unwrap();
    let out = dir.path().join("out");
    let mut c = officiant();
    c.env("SO", SO)
        .env("USER_PIN", USER)
        .arg("run")
        .arg(shipped("signing-policy.toml"))
        .arg("--answers")
        .arg(&a)
        .arg("--backend")
        .arg(format!("sim:{}", dir.path().join("token").display()))
        .arg("--out")
        .arg(&out);
    let o = run(&mut c);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut seen = String::from_utf8_lossy(&o.stdout).into_owned();
    seen.push_str(&String::from_utf8_lossy(&o.stderr));
    for f in std::fs::read_dir(&out).unwrap() {
        seen.push_str(&String::from_utf8_lossy(
            &std::fs::read(f.unwrap().path()).unwrap(),
        ));
    }
    assert!(seen.contains("officiant-policy.1"));
    for canary in [SO, USER] {
        assert!(!seen.contains(canary), "{canary} leaked");
    }
}
