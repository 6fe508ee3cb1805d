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

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{self, oracle, run, run_ok, SoftHsm};

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
        let v: serde_json::Value = serde_json::from_str(&run_ok(&mut c)).unwrap();
        let mut list: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                format!(
                    "{} {} {}",
                    o["class"].as_str().unwrap(),
                    o["label"].as_str().unwrap(),
                    o["public_key_sha256"].as_str().unwrap_or("")
                )
            })
            .collect();
        list.sort();
        list
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

/// The wrap key the share texts rebuild, by rusty_secrets (the payload is id, domains,
/// capabilities and delegated capabilities, 20 bytes, then the key).
fn rebuilt_key(shares: &[&str]) -> Vec<u8> {
    let secret =
        rusty_secrets::recover_secret(shares.iter().map(|s| s.to_string()).collect()).unwrap();
    secret[20..].to_vec()
}

/// OpenSSL's check value of an AES-256 key: AES-ECB of a zero block, first 3 bytes.
fn openssl_kcv(work: &Path, key: &[u8]) -> String {
    let openssl = oracle("openssl").expect("openssl is the judge here: install it");
    let zero = work.join("zero-block.bin");
    std::fs::write(&zero, [0u8; 16]).unwrap();
    let out = run(Command::new(openssl)
        .args([
            "enc",
            "-aes-256-ecb",
            "-nopad",
            "-K",
            &hex::encode(key),
            "-in",
        ])
        .arg(&zero));
    assert!(out.status.success());
    hex::encode(&out.stdout[..3])
}

fn openssl_verifies(public_pem: &Path, sig: &Path, data: &Path) {
    let openssl = oracle("openssl").expect("openssl is the judge here: install it");
    let out = run_ok(
        Command::new(openssl)
            .args(["dgst", "-sha256", "-verify"])
            .arg(public_pem)
            .arg("-signature")
            .arg(sig)
            .arg(data),
    );
    assert!(out.contains("Verified OK"), "{out}");
}

/// Every file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// No share (whole, or its data) and no wrap-key byte string in `log` or any file under
/// the out dirs.
fn canary(shares: &[String], key: &[u8], log: &[u8], outs: &[PathBuf]) {
    let mut needles: Vec<Vec<u8>> = vec![key.to_vec(), hex::encode(key).into_bytes()];
    for s in shares {
        needles.push(s.as_bytes().to_vec());
        // The data alone, and a long piece of it.
        needles.push(s.as_bytes()[4..].to_vec());
        needles.push(s.as_bytes()[10..30].to_vec());
    }
    for n in &needles {
        assert!(!contains(log, n), "a share or the key in the output");
    }
    for dir in outs {
        for (p, bytes) in files_under(dir) {
            for n in &needles {
                assert!(
                    !contains(&bytes, n),
                    "a share or the key in {}",
                    p.display()
                );
            }
        }
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

#[test]
fn backup_and_restore_replay_on_the_rehearsal_token() {
    let r = replay(
        None,
        |r| {
            (
                Target::sim(r, "src", "officiant-backup"),
                Target::sim(r, "dst", "officiant-restore"),
            )
        },
        false,
    );
    // The answers a console run would record from these transcripts name the custodians
    // (never a share), and check against the scripts.
    use officiant::ceremony::{answers, runner, script, transcript};
    for (name, out) in [("backup", "out/backup"), ("restore", "out/restore")] {
        let s = script::load(&r.p(&format!("ceremonies/{name}.toml"))).unwrap();
        let v = transcript::verify(&r.p(out).join("transcript.jsonl")).unwrap();
        let text = answers::from_transcript(&s, &v.entries);
        for sh in r.shares() {
            assert!(!text.contains(&sh[4..]), "a share in the recorded answers");
        }
        assert!(
            text.contains("name = \"Carol Custodian (rehearsal)\""),
            "{text}"
        );
        let path = r.p(&format!("ceremonies/{name}.recorded.answers.toml"));
        std::fs::write(&path, &text).unwrap();
        runner::prepare(&r.p(&format!("ceremonies/{name}.toml")), Some(&path))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}

#[test]
fn backup_and_restore_replay_on_softhsm_from_one_token_to_another() {
    let hsm = SoftHsm::new().expect("SoftHSM is the judge here: install softhsm2");
    let r = replay(
        Some(&hsm),
        |_| {
            (
                Target::softhsm(&hsm, "officiant-backup"),
                Target::softhsm(&hsm, "officiant-restore"),
            )
        },
        false,
    );
    // pkcs11-tool: on the source the backed-up keys are sensitive and extractable only
    // under wrap, and the wrap key is there; on the target the keys, and no wrap key.
    let tool = oracle("pkcs11-tool").expect("pkcs11-tool is the judge here: install opensc");
    let pin = std::fs::read_to_string(r.p("ceremonies/rehearsal-secrets/user.pin")).unwrap();
    let list = |token: &str| {
        let mut c = Command::new(&tool);
        hsm.env(&mut c)
            .arg("--module")
            .arg(&hsm.module)
            .args(["--token-label", token, "--login", "--pin", pin.trim_end()])
            .arg("--list-objects");
        run_ok(&mut c)
    };
    let source = list("officiant-backup");
    let fw = support::pkcs11_tool_object(&source, "Private Key Object", "fw-signing-p256")
        .unwrap_or_else(|| panic!("{source}"));
    assert!(
        fw.contains("sensitive") && !fw.contains("never extractable"),
        "{fw}"
    );
    assert!(
        support::pkcs11_tool_object(&source, "Secret Key Object", "backup-wrap").is_some(),
        "{source}"
    );
    let target = list("officiant-restore");
    for label in ["fw-signing-p256", "boot-signing-p256"] {
        assert!(
            support::pkcs11_tool_object(&target, "Private Key Object", label).is_some(),
            "{label} not restored:\n{target}"
        );
    }
    assert!(!target.contains("Secret Key Object"), "{target}");
}

#[cfg(feature = "mock-hsm")]
#[test]
fn backup_and_restore_replay_on_the_yubihsm_mock_onto_a_second_device() {
    let r = replay(None, |_| (Target::mock(), Target::mock()), true);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(r.p("out/backup/backup/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["wrap_format"], "yubihsm-aes-ccm");
    // yubihsm-shell's get-wrapped form: one line of base64.
    let yhw = std::fs::read_to_string(r.p("out/backup/backup/fw-signing-p256.yhw")).unwrap();
    assert!(!yhw.trim().contains(char::is_whitespace), "{yhw}");
}

/// Run `point(n)` for n = 1, 2, …, two at a time, until a run is not killed (`point`
/// returns false: there is no crash point n). Returns how many points there were.
fn every_crash_point(point: impl Fn(usize) -> bool + Sync) -> usize {
    let mut n = 1;
    loop {
        let crashed: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = [n, n + 1]
                .into_iter()
                .map(|k| {
                    let point = &point;
                    s.spawn(move || point(k))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        if let Some(k) = crashed.iter().position(|c| !c) {
            return n + k - 1;
        }
        n += 2;
        assert!(n < 400, "more than 399 crash points?");
    }
}

/// Killed at crash point `n` (false if the run got past its last one), run again: the
/// rerun must succeed.
fn kill_then_rerun(n: usize, run: impl Fn(Option<usize>) -> Output) -> bool {
    let first = run(Some(n));
    if first.status.success() {
        return false;
    }
    assert!(
        first.status.code().is_none(),
        "crash point {n}: expected an abort, got {}: {}",
        first.status,
        String::from_utf8_lossy(&first.stderr)
    );
    let again = run(None);
    assert!(
        again.status.success(),
        "rerun after crash point {n}: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    true
}

/// The backup ceremony killed at every crash point (each point its own rehearsal and a
/// new token: `target(r, n, name, label)`), then the restore ceremony likewise, each
/// point onto a new token, from one uninterrupted backup.
fn killed_everywhere<'h>(target: &(dyn Fn(&Rehearsal, usize, &str, &str) -> Target<'h> + Sync)) {
    let n_backup = every_crash_point(|n| {
        let r = Rehearsal::new();
        let t = target(&r, n, "bk", "officiant-backup");
        let backend = t.ready(&r);
        let out = "out/backup";
        let ran = kill_then_rerun(n, |crash| {
            r.run(t.hsm, "backup", "backup.answers.toml", &backend, out, crash)
        });
        if !ran {
            return false;
        }
        let objects = r.objects(t.hsm, &backend);
        let keys = objects
            .iter()
            .filter(|o| o.starts_with("private-key"))
            .count();
        let wraps = objects.iter().filter(|o| o.starts_with("wrap-key")).count();
        assert_eq!((keys, wraps), (2, 1), "crash point {n}: {objects:?}");
        // Every custodian holds a share of the key on the token: any two rebuild the
        // check value the transcript and the manifest record.
        let shares = r.shares();
        let kcv = openssl_kcv(r.dir.path(), &rebuilt_key(&[&shares[2], &shares[1]]));
        assert_eq!(
            r.result(out, "gen-wrap")["details"]["check_value"],
            kcv.as_str(),
            "crash point {n}"
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(r.p(out).join("backup/manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["wrap_key"]["check_value"], kcv.as_str(), "{n}");
        let mut names: Vec<String> = std::fs::read_dir(r.p(out).join("backup"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "crash point {n}: {names:?}");
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        true
    });
    assert!(
        n_backup >= 30,
        "the backup has only {n_backup} crash points"
    );

    // One uninterrupted backup for every restore.
    let r = Rehearsal::new();
    let t = target(&r, 0, "bk", "officiant-backup");
    let backend = t.ready(&r);
    let mut log = Vec::new();
    r.run_ok(
        &mut log,
        t.hsm,
        "backup",
        "backup.answers.toml",
        &backend,
        "out/backup",
    );
    let n_restore = every_crash_point(|n| {
        let t = target(&r, n, &format!("rs{n}"), "officiant-restore");
        let backend = t.ready(&r);
        let out = format!("out/restore-{n}");
        let ran = kill_then_rerun(n, |crash| {
            r.run(
                t.hsm,
                "restore",
                "restore.answers.toml",
                &backend,
                &out,
                crash,
            )
        });
        if !ran {
            return false;
        }
        let objects = r.objects(t.hsm, &backend);
        let keys = objects
            .iter()
            .filter(|o| o.starts_with("private-key"))
            .count();
        assert_eq!(keys, 2, "crash point {n}: each key once: {objects:?}");
        assert!(
            objects.iter().all(|o| !o.starts_with("wrap-key")),
            "crash point {n}: the wrap key is left: {objects:?}"
        );
        openssl_verifies(
            &r.p("out/backup/fw-signing-p256.pub.pem"),
            &r.p(&format!("{out}/payload.bin.sig")),
            &r.p("ceremonies/samples/payload.bin"),
        );
        true
    });
    assert!(
        n_restore >= 20,
        "the restore has only {n_restore} crash points"
    );
    eprintln!("killed and resumed at {n_backup} backup and {n_restore} restore points");
}

#[test]
fn backup_and_restore_ceremonies_resume_after_a_kill_at_every_crash_point_on_sim() {
    killed_everywhere(&|r, _, name, label| Target::sim(r, name, label));
}

#[test]
fn backup_and_restore_ceremonies_resume_after_a_kill_at_every_crash_point_on_softhsm() {
    // A token directory per point: two points run at once, and init-token takes the
    // first free token of its directory.
    let dirs: Vec<SoftHsm> = (0..200)
        .map(|_| SoftHsm::new().expect("SoftHSM is the judge here: install softhsm2"))
        .collect();
    killed_everywhere(&|_, n, name, _| Target::softhsm(&dirs[n], name));
}

const SCRIPT: &str = r#"
[ceremony]
id = "c"
title = "Custody"
version = 1
token = "tok"

[roles]
administrator = 1
custodian = 1

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
exportable-under-wrap = true

[[step]]
id = "gen2"
kind = "generate-key"
algorithm = "ec-p256"
label = "k2"
key-id = "02"

[[step]]
id = "wrap"
kind = "generate-wrap-key"
label = "w"
key-id = "0200"
threshold = 2
shares = 3
custodian-role = "custodian"
so-login = "so"
user-login = "user"

[[step]]
id = "bk"
kind = "backup"
wrap-key = "w"
keys = ["k1"]

[[step]]
id = "rs"
kind = "restore"
threshold = 2
custodian-role = "custodian"
backup-dir = "/media/backup"
"#;

const ANSWERS: &str = r#"
[secrets]
so = "file:so.pin"
user = "file:user.pin"

[[participant]]
name = "Ada"
roles = ["administrator"]

[[participant]]
name = "Carol"
roles = ["custodian"]

[[participant]]
name = "Dave"
roles = ["custodian"]

[[participant]]
name = "Erin"
roles = ["custodian"]

[[custodian]]
step = "wrap"
name = "Carol"
share-file = "media/carol.txt"

[[custodian]]
step = "wrap"
name = "Dave"
share-file = "media/dave.txt"

[[custodian]]
step = "wrap"
name = "Erin"
share-file = "media/erin.txt"

[[custodian]]
step = "rs"
name = "Carol"
share = "file:media/carol.txt"

[[custodian]]
step = "rs"
name = "Erin"
share = "file:media/erin.txt"
"#;

/// Script and answers into `dir`; the error line of `prepare` (or OK).
fn error_of(dir: &Path, script: &str, answers: &str) -> String {
    let s = dir.join("x.toml");
    let a = dir.join("x.answers.toml");
    std::fs::write(&s, script).unwrap();
    std::fs::write(&a, answers).unwrap();
    std::fs::write(dir.join("so.pin"), "canary-so-1").unwrap();
    std::fs::write(dir.join("user.pin"), "canary-user-1").unwrap();
    match officiant::ceremony::runner::prepare(&s, Some(&a)) {
        Ok(_) => "OK".to_string(),
        Err(e) => e.to_string().replace(&dir.display().to_string(), "DIR"),
    }
}

#[test]
fn bad_custody_scripts_and_answers_each_have_their_exact_message() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(error_of(d.path(), SCRIPT, ANSWERS), "OK");
    let s = |from: &str, to: &str| {
        assert!(SCRIPT.contains(from), "{from}");
        (SCRIPT.replacen(from, to, 1), ANSWERS.to_string())
    };
    let a = |from: &str, to: &str| {
        assert!(ANSWERS.contains(from), "{from}");
        (SCRIPT.to_string(), ANSWERS.replacen(from, to, 1))
    };
    let cases: Vec<(&str, (String, String))> = vec![
        (
            "custodian role not declared",
            s("custodian-role = \"custodian\"\nso", "custodian-role = \"keeper\"\nso"),
        ),
        ("threshold above shares", s("threshold = 2\nshares = 3", "threshold = 4\nshares = 3")),
        ("threshold of one", s("threshold = 2\nshares", "threshold = 1\nshares")),
        ("wrap key id not 4 hex digits", s("key-id = \"0200\"", "key-id = \"02\"")),
        ("so-login without user-login", s("user-login = \"user\"\n", "")),
        ("unknown field", s("shares = 3\n", "shares = 3\nshare-dir = \"x\"\n")),
        (
            "backup of a key made without exportable-under-wrap",
            s("keys = [\"k1\"]", "keys = [\"k1\", \"k2\"]"),
        ),
        ("backup of a key twice", s("keys = [\"k1\"]", "keys = [\"k1\", \"k1\"]")),
        ("backup dir outside the out dir", s("keys = [\"k1\"]\n", "keys = [\"k1\"]\ndir = \"../x\"\n")),
        (
            "restore check value not hex",
            s("backup-dir = \"/media/backup\"", "backup-dir = \"/media/backup\"\ncheck-value = \"xyz\""),
        ),
        (
            "restore of a label another step makes",
            s("backup-dir = \"/media/backup\"", "backup-dir = \"/media/backup\"\nkeys = [\"k1\"]"),
        ),
        (
            "fewer custodians than shares",
            a("[[custodian]]\nstep = \"wrap\"\nname = \"Erin\"\nshare-file = \"media/erin.txt\"\n", ""),
        ),
        (
            "fewer shares than the threshold",
            a("[[custodian]]\nstep = \"rs\"\nname = \"Erin\"\nshare = \"file:media/erin.txt\"\n", ""),
        ),
        (
            "custodian not on the roll call in the role",
            a("step = \"wrap\"\nname = \"Dave\"", "step = \"wrap\"\nname = \"Ada\""),
        ),
        (
            "one custodian twice",
            a("step = \"wrap\"\nname = \"Dave\"", "step = \"wrap\"\nname = \" carol\""),
        ),
        ("two custodians one file", a("media/dave.txt", "media/carol.txt")),
        (
            "a share source for a hand-out",
            a("share-file = \"media/carol.txt\"", "share = \"file:media/carol.txt\""),
        ),
        (
            "a share file for a restore",
            a("share = \"file:media/erin.txt\"", "share-file = \"media/erin.txt\""),
        ),
        (
            "custodian of a step that has none",
            a("step = \"wrap\"\nname = \"Carol\"", "step = \"login\"\nname = \"Carol\""),
        ),
        (
            "unknown field in a custodian",
            a("share-file = \"media/erin.txt\"", "share-file = \"media/erin.txt\"\nmedium = \"usb\""),
        ),
    ];
    let mut report = String::new();
    for (what, (script, answers)) in &cases {
        report.push_str(&format!(
            "{what}: {}\n",
            error_of(d.path(), script, answers)
        ));
    }
    let expected = "\
custodian role not declared: DIR/x.toml: step[3] (wrap).custodian-role: role \"keeper\" is not declared in [roles] (declared: administrator, custodian); the custodians are the people in it on the roll call
threshold above shares: DIR/x.toml: step[3] (wrap).threshold: 4 shares cannot rebuild a key split into 3
threshold of one: DIR/x.toml: step[3] (wrap).threshold: expected a whole number from 2 to 255
wrap key id not 4 hex digits: DIR/x.toml: step[3] (wrap).key-id: \"02\" is not a wrap key id (4 hex digits, e.g. \"0200\")
so-login without user-login: DIR/x.toml: step[3] (wrap).so-login: give both so-login (the SO puts the trusted wrap key) and user-login (the user logs in again after it), or neither
unknown field: DIR/x.toml: step[3] (wrap).share-dir: unknown field
backup of a key made without exportable-under-wrap: DIR/x.toml: step[4] (bk).keys[1]: key \"k2\" is made by step[2] (gen2) without exportable-under-wrap = true: it can never leave the token
backup of a key twice: DIR/x.toml: step[4] (bk).keys[1]: key \"k1\" is named twice
backup dir outside the out dir: DIR/x.toml: step[4] (bk).dir: \"../x\" must be a plain file name (it is written into the out dir)
restore check value not hex: DIR/x.toml: step[5] (rs).check-value: \"xyz\" is not a check value (6 hex digits, as the backup's transcript records it)
restore of a label another step makes: DIR/x.toml: step[5] (rs).keys: key label \"k1\" is already created by step[1] (gen)
fewer custodians than shares: DIR/x.answers.toml: step[3] (wrap): hands out 3 shares, one per custodian; the answers name 2 (add [[custodian]] step = \"wrap\", name = \"…\", share-file = \"…\")
fewer shares than the threshold: DIR/x.answers.toml: step[5] (rs): takes 2 shares (its threshold), one per custodian; the answers name 1 (add [[custodian]] step = \"rs\", name = \"…\", share = \"file:…\")
custodian not on the roll call in the role: DIR/x.answers.toml: step[3] (wrap): custodian \"Ada\" is not on the roll call as custodian
one custodian twice: DIR/x.answers.toml: step[3] (wrap): \"carol\" is named twice as a custodian: one share per person
two custodians one file: DIR/x.answers.toml: step[3] (wrap): custodians \"Dave\" and another would share the file DIR/media/carol.txt
a share source for a hand-out: DIR/x.answers.toml: custodian[0].share: step[3] (wrap) hands shares out: give share-file (where this custodian's share is written)
a share file for a restore: DIR/x.answers.toml: custodian[4].share-file: step[5] (rs) takes shares in: give share (a source: file:PATH, env:NAME or prompt)
custodian of a step that has none: DIR/x.answers.toml: custodian[0].step: step[0] (login) is not a custody step (generate-wrap-key or restore)
unknown field in a custodian: DIR/x.answers.toml: custodian[2].medium: unknown field
";
    assert_eq!(report, expected, "\n{report}");
}

/// `answers` with `from` replaced by `to`, written beside it as `name`.
fn answers_variant(r: &Rehearsal, answers: &str, name: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(r.p(&format!("ceremonies/{answers}"))).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(
        r.p(&format!("ceremonies/{name}")),
        text.replacen(from, to, 1),
    )
    .unwrap();
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_wrong_or_missing_share_creates_nothing_on_the_target() {
    let r = Rehearsal::new();
    let src = Target::sim(&r, "src", "officiant-backup").ready(&r);
    let mut log = Vec::new();
    r.run_ok(
        &mut log,
        None,
        "backup",
        "backup.answers.toml",
        &src,
        "out/backup",
    );
    let shares = r.shares();

    // Fewer than T custodians: refused before the token is opened.
    answers_variant(
        &r,
        "restore.answers.toml",
        "one.answers.toml",
        "[[custodian]]\nstep = \"restore\"\nname = \"Erin Custodian (rehearsal)\"",
        "[[participant]]\nname = \"Frank (not a custodian)\"\nroles = [\"witness\"]\n\n[[acknowledge]]\nstep = \"nothing\"",
    );
    let dst = Target::sim(&r, "dst", "officiant-restore").ready(&r);
    let before = r.objects(None, &dst);
    assert!(before.is_empty(), "{before:?}");
    let o = r.run(None, "restore", "one.answers.toml", &dst, "out/one", None);
    assert!(!o.status.success());
    assert_eq!(stderr_of(&o).lines().count(), 1, "{}", stderr_of(&o));
    assert_eq!(r.objects(None, &dst), before);

    // A share with one data character changed (not the last, which may hold only
    // padding bits), and a share of another set: caught by the check value, before
    // anything is created.
    let corrupt_at = |at: usize| {
        let mut c = shares[2].clone().into_bytes();
        c[at] = if c[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(c).unwrap()
    };
    let other = Rehearsal::new();
    let other_src = Target::sim(&other, "src", "officiant-backup").ready(&other);
    other.run_ok(
        &mut log,
        None,
        "backup",
        "backup.answers.toml",
        &other_src,
        "out/backup",
    );
    let foreign = other.shares()[2].clone();
    // Share data is the wrap key's id, domains and capabilities (20 bytes: the first 26
    // characters), then the key.
    for (what, text, why) in [
        (
            "corrupted",
            corrupt_at(4 + 40),
            "do not rebuild the backup's wrap key",
        ),
        ("corrupted-id", corrupt_at(4 + 3), "not its description"),
        ("foreign", foreign, "do not rebuild the backup's wrap key"),
    ] {
        let file = r.p(&format!("{what}.share.txt"));
        std::fs::write(&file, format!("{text}\n")).unwrap();
        answers_variant(
            &r,
            "restore.answers.toml",
            &format!("{what}.answers.toml"),
            "file:../out/custodian-media/erin/backup-wrap.share.txt",
            &format!("file:{}", file.display()),
        );
        let o = r.run(
            None,
            "restore",
            &format!("{what}.answers.toml"),
            &dst,
            &format!("out/{what}"),
            None,
        );
        assert!(!o.status.success(), "{what}");
        let e = stderr_of(&o);
        assert!(
            e.contains("step[2] (restore)") && e.contains(why),
            "{what}: {e}"
        );
        assert!(
            !contains(e.as_bytes(), &text.as_bytes()[4..]),
            "{what}: the share in {e}"
        );
        assert_eq!(
            r.objects(None, &dst),
            before,
            "{what}: something was created"
        );
    }
}

#[test]
fn a_share_file_in_the_way_stops_the_hand_out_and_the_rerun_keeps_what_was_handed_out() {
    let r = Rehearsal::new();
    let src = Target::sim(&r, "src", "officiant-backup").ready(&r);
    // Erin's medium holds a file of that name already: shares 1 and 2 are written, then
    // the hand-out stops; the token has no wrap key and Erin's file is untouched.
    let erin = r.share_file("erin");
    std::fs::write(&erin, "not a share\n").unwrap();
    let o = r.run(
        None,
        "backup",
        "backup.answers.toml",
        &src,
        "out/backup",
        None,
    );
    assert!(!o.status.success());
    let e = stderr_of(&o);
    assert!(
        e.contains("step[4] (gen-wrap)") && e.contains("never written over a file"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&erin).unwrap(), "not a share\n");
    assert!(r
        .objects(None, &src)
        .iter()
        .all(|o| !o.starts_with("wrap-key")));
    let carol = std::fs::read_to_string(r.share_file("carol")).unwrap();
    let dave = std::fs::read_to_string(r.share_file("dave")).unwrap();
    // The rerun resumes the hand-out: Erin's file is still not a share of this step.
    let o = r.run(
        None,
        "backup",
        "backup.answers.toml",
        &src,
        "out/backup",
        None,
    );
    assert!(!o.status.success());
    assert!(stderr_of(&o).contains("move it away"), "{}", stderr_of(&o));
    // Moved away: the rerun completes; Carol's and Dave's shares are the ones they got
    // first, and with Erin's new one every two rebuild the key on the token.
    std::fs::remove_file(&erin).unwrap();
    let mut log = Vec::new();
    r.run_ok(
        &mut log,
        None,
        "backup",
        "backup.answers.toml",
        &src,
        "out/backup",
    );
    assert_eq!(
        std::fs::read_to_string(r.share_file("carol")).unwrap(),
        carol
    );
    assert_eq!(std::fs::read_to_string(r.share_file("dave")).unwrap(), dave);
    let shares = r.shares();
    let kcv = openssl_kcv(r.dir.path(), &rebuilt_key(&[&shares[0], &shares[2]]));
    assert_eq!(
        kcv,
        openssl_kcv(r.dir.path(), &rebuilt_key(&[&shares[1], &shares[2]]))
    );
    assert_eq!(
        r.result("out/backup", "gen-wrap")["details"]["check_value"],
        kcv.as_str()
    );
}

#[test]
fn a_share_file_is_never_written_into_the_out_dir() {
    let r = Rehearsal::new();
    let src = Target::sim(&r, "src", "officiant-backup").ready(&r);
    std::fs::create_dir_all(r.p("out/backup")).unwrap();
    answers_variant(
        &r,
        "backup.answers.toml",
        "leaky.answers.toml",
        "../out/custodian-media/dave/backup-wrap.share.txt",
        "../out/backup/dave.share.txt",
    );
    let o = r.run(
        None,
        "backup",
        "leaky.answers.toml",
        &src,
        "out/backup",
        None,
    );
    assert!(!o.status.success());
    assert!(
        stderr_of(&o).contains("inside the run's out dir"),
        "{}",
        stderr_of(&o)
    );
    assert!(!r.p("out/backup/dave.share.txt").exists());
    assert!(r
        .objects(None, &src)
        .iter()
        .all(|o| !o.starts_with("wrap-key")));
}

#[test]
fn a_token_whose_so_puts_the_wrap_key_needs_so_login_before_anything_runs() {
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("x.toml");
    std::fs::write(
        &script,
        SCRIPT.replace("so-login = \"so\"\nuser-login = \"user\"\n", ""),
    )
    .unwrap();
    let tok = d.path().join("tok");
    let backend = format!("sim:{}", tok.display());
    let out = run(support::officiant()
        .arg("check")
        .arg(&script)
        .args(["--backend", &backend]));
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        e.trim_end(),
        format!(
            "officiant: {}: step[3] (wrap).so-login: on {backend} only the SO may put the trusted wrap key: name the SO PIN's secret in so-login and the user PIN's in user-login (the user logs in again after the put)",
            script.display()
        )
    );
    // A YubiHSM has no SO: the same script is fine there.
    #[cfg(feature = "mock-hsm")]
    run_ok(
        support::officiant()
            .arg("check")
            .arg(&script)
            .args(["--backend", "yubihsm:mock"]),
    );
}
