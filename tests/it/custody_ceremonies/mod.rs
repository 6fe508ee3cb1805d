//! The shipped backup.toml and restore.toml replayed headless with their shipped answers
//! (in a copy of ceremonies/, so the custodians' media are a temp dir) on the rehearsal
//! token, on SoftHSM (two tokens) and on yubihsm:mock (each run a fresh MockHsm: the
//! restore is onto a second device). Judges: rusty_secrets (Yubico's Shamir crate)
//! rebuilds the wrap key from the custodians' share files and OpenSSL computes its check
//! value, which must be the transcript's and the manifest's; the restored key signs and
//! `openssl dgst -verify` accepts it with the original public key; pkcs11-tool lists the
//! restored keys and no wrap key. Canary: no share and no wrap-key byte in stdout, stderr,
//! transcript, journal or out dir. Killed at every crash point of both ceremonies: the
//! rerun completes, no key twice, every share still rebuilds the key on the token.
//! Refusals: too few custodians, a corrupted share, a share of another set, a share file
//! in the way or in the out dir; and each new script and answers error, one exact line.
//!
//! This file holds the rehearsal copy, the targets and `replay` (backup, restore and
//! every judge's verdict); the judges are in `judges`, the tests in `replay` (the three
//! backends), `resume` (a kill at every crash point) and `refusals`.

mod judges;
mod refusals;
mod replay;
mod resume;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{self, oracle, run, run_ok, SoftHsm};
use judges::*;

const CUSTODIANS: [&str; 3] = ["carol", "dave", "erin"];

/// A copy of the shipped files the two ceremonies read, and the custodians' media.
struct Rehearsal {
    dir: tempfile::TempDir,
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

impl Rehearsal {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies");
        let c = dir.path().join("ceremonies");
        std::fs::create_dir_all(c.join("samples")).unwrap();
        for f in [
            "backup.toml",
            "backup.answers.toml",
            "backup.yubihsm-mock.answers.toml",
            "restore.toml",
            "restore.answers.toml",
            "restore.yubihsm-mock.answers.toml",
            "samples/payload.bin",
        ] {
            std::fs::copy(shipped.join(f), c.join(f)).unwrap();
        }
        for d in ["rehearsal-secrets", "yubihsm-rehearsal"] {
            copy_tree(&shipped.join(d), &c.join(d));
        }
        for who in CUSTODIANS {
            std::fs::create_dir_all(dir.path().join("out/custodian-media").join(who)).unwrap();
        }
        Rehearsal { dir }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn share_file(&self, who: &str) -> PathBuf {
        self.p(&format!("out/custodian-media/{who}/backup-wrap.share.txt"))
    }

    fn shares(&self) -> Vec<String> {
        CUSTODIANS
            .iter()
            .map(|w| {
                std::fs::read_to_string(self.share_file(w))
                    .unwrap()
                    .trim()
                    .to_string()
            })
            .collect()
    }

    fn command(&self, hsm: Option<&SoftHsm>) -> Command {
        let mut c = support::officiant();
        c.current_dir(self.dir.path())
            .env_remove("OFFICIANT_TEST_CRASH_AT");
        if let Some(h) = hsm {
            h.env(&mut c);
        }
        c
    }

    /// `officiant run ceremonies/NAME.toml --answers ceremonies/ANSWERS`.
    fn run(
        &self,
        hsm: Option<&SoftHsm>,
        name: &str,
        answers: &str,
        backend: &str,
        out: &str,
        crash_at: Option<usize>,
    ) -> Output {
        let mut c = self.command(hsm);
        c.arg("run")
            .arg(self.p(&format!("ceremonies/{name}.toml")))
            .arg("--answers")
            .arg(self.p(&format!("ceremonies/{answers}")))
            .args(["--backend", backend, "--out"])
            .arg(self.p(out));
        if let Some(n) = crash_at {
            c.env("OFFICIANT_TEST_CRASH_AT", n.to_string());
        }
        run(&mut c)
    }

    fn run_ok(
        &self,
        log: &mut Vec<u8>,
        hsm: Option<&SoftHsm>,
        name: &str,
        answers: &str,
        backend: &str,
        out: &str,
    ) {
        let o = self.run(hsm, name, answers, backend, out, None);
        log.extend(&o.stdout);
        log.extend(&o.stderr);
        assert!(
            o.status.success(),
            "{name} on {backend}:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Initialize a token with the rehearsal PINs (the ceremonies start from one).
    fn init(&self, hsm: Option<&SoftHsm>, backend: &str, label: &str) {
        let mut c = self.command(hsm);
        c.args(["init-token", "--backend", backend, "--label", label])
            .arg("--so-pin-source")
            .arg(format!(
                "file:{}",
                self.p("ceremonies/rehearsal-secrets/so.pin").display()
            ))
            .arg("--pin-source")
            .arg(format!(
                "file:{}",
                self.p("ceremonies/rehearsal-secrets/user.pin").display()
            ))
            .arg("--transcript")
            // One transcript per token: tokens are made two at a time.
            .arg(self.p(&format!(
                "init-{label}-{}.jsonl",
                hex::encode(&officiant::output::sha256(backend.as_bytes())[..6])
            )));
        run_ok(&mut c);
    }

    /// (class, label, fingerprint) of every object, sorted.
    fn objects(&self, hsm: Option<&SoftHsm>, backend: &str) -> Vec<String> {
        let mut c = self.command(hsm);
        c.args(["objects", "--backend", backend, "--json", "--pin-source"])
            .arg(format!(
                "file:{}",
                self.p("ceremonies/rehearsal-secrets/user.pin").display()
            ));
        crate::support::object_lines(&run_ok(&mut c))
    }

    /// A step's result as the transcript of the run in `out` records it (done, or done
    /// before an interruption and recorded when the run resumed).
    fn result(&self, out: &str, step: &str) -> serde_json::Value {
        let t = std::fs::read_to_string(self.p(out).join("transcript.jsonl")).unwrap();
        t.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .rfind(|e| {
                (e["type"] == "step-done" || e["type"] == "resumed") && e["data"]["id"] == step
            })
            .map(|e| e["data"]["result"].clone())
            .unwrap_or_else(|| panic!("no step-done of {step} in {out}"))
    }
}

/// Where a ceremony runs: the backend URI, how to initialize its token first (the URI
/// init-token takes and the label it gives; a MockHsm is ready), and the SoftHSM token
/// directory it lives in, if any.
struct Target<'h> {
    run: String,
    init: Option<(String, String)>,
    hsm: Option<&'h SoftHsm>,
}

impl<'h> Target<'h> {
    fn sim(r: &Rehearsal, name: &str, label: &str) -> Target<'h> {
        let uri = format!("sim:{}", r.p(&format!("tokens/{name}")).display());
        Target {
            run: uri.clone(),
            init: Some((uri, label.to_string())),
            hsm: None,
        }
    }

    /// A new SoftHSM token labelled `name` (init-token takes the first free one), named
    /// by its label in the URI.
    fn softhsm(hsm: &'h SoftHsm, name: &str) -> Target<'h> {
        Target {
            run: format!("pkcs11:token={name}?module-path={}", hsm.module.display()),
            init: Some((hsm.uri(), name.to_string())),
            hsm: Some(hsm),
        }
    }

    /// Only the MockHsm build has a yubihsm:mock target.
    #[cfg(feature = "mock-hsm")]
    fn mock() -> Target<'h> {
        Target {
            run: "yubihsm:mock".into(),
            init: None,
            hsm: None,
        }
    }

    fn ready(&self, r: &Rehearsal) -> String {
        if let Some((uri, label)) = &self.init {
            r.init(self.hsm, uri, label);
        }
        self.run.clone()
    }
}

/// Backup on `src`, restore on `dst`, and every judge's verdict.
fn replay<'h>(
    hsm: Option<&'h SoftHsm>,
    targets: impl Fn(&Rehearsal) -> (Target<'h>, Target<'h>),
    mock: bool,
) -> Rehearsal {
    let r = Rehearsal::new();
    let (bk_answers, rs_answers) = if mock {
        (
            "backup.yubihsm-mock.answers.toml",
            "restore.yubihsm-mock.answers.toml",
        )
    } else {
        ("backup.answers.toml", "restore.answers.toml")
    };
    let (src, dst) = targets(&r);
    let (src, dst) = (src.ready(&r), dst.ready(&r));
    let mut log = Vec::new();
    r.run_ok(&mut log, hsm, "backup", bk_answers, &src, "out/backup");
    // Each custodian's share, on their own medium only, readable by its owner alone.
    for who in CUSTODIANS {
        let meta = std::fs::metadata(r.share_file(who)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{who}");
    }
    let shares = r.shares();
    let key = rebuilt_key(&[&shares[0], &shares[2]]);
    assert_eq!(key, rebuilt_key(&[&shares[1], &shares[0]]));
    let kcv = openssl_kcv(r.dir.path(), &key);
    let gen = r.result("out/backup", "gen-wrap");
    assert_eq!(gen["details"]["check_value"], kcv.as_str(), "{gen}");
    assert_eq!(gen["details"]["threshold"], 2);
    assert_eq!(gen["details"]["shares"], 3);
    let holders: Vec<String> = gen["details"]["custodians"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c["share"], c["custodian"].as_str().unwrap()))
        .collect();
    assert_eq!(
        holders,
        [
            "1 Carol Custodian (rehearsal)",
            "2 Dave Custodian (rehearsal)",
            "3 Erin Custodian (rehearsal)"
        ]
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.p("out/backup/backup/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["wrap_key"]["check_value"], kcv.as_str());

    r.run_ok(&mut log, hsm, "restore", rs_answers, &dst, "out/restore");
    let rs = r.result("out/restore", "restore");
    assert_eq!(rs["details"]["check_value"], kcv.as_str());
    assert_eq!(rs["details"]["wrap_key_deleted"], true);
    let given: Vec<String> = rs["details"]["custodians"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c["share"], c["custodian"].as_str().unwrap()))
        .collect();
    assert_eq!(
        given,
        [
            "1 Carol Custodian (rehearsal)",
            "3 Erin Custodian (rehearsal)"
        ]
    );
    // The restored key signs; the original public key (exported by the backup) verifies.
    openssl_verifies(
        &r.p("out/backup/fw-signing-p256.pub.pem"),
        &r.p("out/restore/payload.bin.sig"),
        &r.p("ceremonies/samples/payload.bin"),
    );
    assert_eq!(
        std::fs::read(r.p("out/backup/fw-signing-p256.pub.pem")).unwrap(),
        std::fs::read(r.p("out/restore/fw-signing-p256.restored.pub.pem")).unwrap()
    );
    canary(
        &shares,
        &key,
        &log,
        &[r.p("out/backup"), r.p("out/restore")],
    );
    if !mock {
        let objects = r.objects(hsm, &dst);
        assert_eq!(objects.len(), 4, "two key pairs, no wrap key: {objects:?}");
    }
    r
}
