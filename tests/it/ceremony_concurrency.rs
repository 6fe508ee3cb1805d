//! One run per out dir and per token. A run is held at a point where it has its out dir
//! and its token (`OFFICIANT_TEST_HOLD_AT`, debug builds) while a second run starts:
//! - into the same out dir (on the rehearsal token): refused in one line naming the
//!   first process, the journal untouched; the first completes with its key;
//! - into another out dir on the same SoftHSM token: refused in one line naming the token
//!   and the first process (pkcs11-tool then finds the key once, made by the first);
//!   so are a one-step command (which writes no transcript) and a signer, at the command
//!   line or at the console.
//!
//! Signers share a token: a signer held at its PIN keeps a ceremony out, and signs once
//! it has its PIN.
//!
//! Two runs that initialize a token through one SoftHSM at once: the second waits for the
//! first's init-token (held between picking the empty slot and C_InitToken), then sees
//! the label taken and stops; pkcs11-tool finds one token with it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::good_script::{ANSWERS, GOOD};
use crate::support::{self, oracle, SoftHsm};

/// `officiant run` of `dir/x.toml` into `out` on `backend`.
fn run_cmd(dir: &Path, backend: &str, out: &Path, hsm: Option<&SoftHsm>) -> Command {
    let mut c = support::officiant();
    c.arg("run")
        .arg(dir.join("x.toml"))
        .arg("--answers")
        .arg(dir.join("x.answers.toml"))
        .args(["--backend", backend, "--out"])
        .arg(out)
        .env_remove("OFFICIANT_TEST_CRASH_AT");
    if let Some(h) = hsm {
        h.env(&mut c);
    }
    c
}

/// Start `cmd` held at crash point `at` (a number or a name) until `release` exists;
/// returns once it holds.
fn start_held(mut cmd: Command, at: &str, release: &Path) -> Child {
    let held = PathBuf::from(format!("{}.held", release.display()));
    let mut child = cmd
        .env(
            "OFFICIANT_TEST_HOLD_AT",
            format!("{at}:{}", release.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !held.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let o = child.wait_with_output().unwrap();
            panic!(
                "the first run ended ({status}) before crash point {at}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "never held");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn write_files(dir: &Path, script: &str, answers: &str) {
    std::fs::write(dir.join("x.toml"), script).unwrap();
    std::fs::write(dir.join("x.answers.toml"), answers).unwrap();
    for (f, v) in [
        ("so.pin", "concurrency-so-1"),
        ("user.pin", "concurrency-user-1"),
    ] {
        std::fs::write(dir.join(f), v).unwrap();
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn refused_line(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "the second run was not refused: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

#[test]
fn a_second_run_into_the_same_out_dir_is_refused_and_the_first_completes() {
    let d = tempfile::tempdir().unwrap();
    write_files(d.path(), GOOD, ANSWERS);
    let backend = format!("sim:{}", d.path().join("token").display());
    let out = d.path().join("out");
    let release = d.path().join("release");
    // Point 3: the token is open and init-token has begun; the out dir is locked from
    // the start.
    let first = start_held(run_cmd(d.path(), &backend, &out, None), "3", &release);
    let journal = std::fs::read(out.join("journal.jsonl")).unwrap();

    let second = run_cmd(d.path(), &backend, &out, None).output().unwrap();
    let err = refused_line(&second);
    assert!(
        err.contains(&format!(
            "out dir {} is in use by another officiant run (process {}: officiant run",
            out.display(),
            first.id()
        )),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("journal.jsonl")).unwrap(),
        journal,
        "the refused run wrote to the journal"
    );

    std::fs::write(&release, b"").unwrap();
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("k1.pem").exists());
    // The evidence is whole: the chain verifies and the run is complete.
    let v = support::run_ok(
        support::officiant()
            .args(["transcript", "verify"])
            .arg(out.join("transcript.jsonl")),
    );
    assert!(v.contains("complete"), "{v}");
}

/// A script for a token that is already initialized: one key, no init-token.
const SHARED: &str = r#"
[ceremony]
id = "shared"
title = "One key on a shared token"
version = 1
token = "shared"

[roles]
administrator = 1
witness = 1

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
sign-off = ["administrator", "witness"]
"#;

const SHARED_ANSWERS: &str = r#"
[secrets]
user = "file:user.pin"

[[sign-off]]
step = "gen"
role = "administrator"
name = "Ada"

[[sign-off]]
step = "gen"
role = "witness"
name = "Walt"

[[acknowledge]]
step = "gen"
name = "Walt"
"#;

#[test]
fn a_second_run_on_the_same_softhsm_token_is_refused_whatever_its_out_dir() {
    let hsm = SoftHsm::new().expect("SoftHSM is this test's token: install softhsm2");
    let pkcs11_tool = oracle("pkcs11-tool").expect("pkcs11-tool is this test's judge");
    let d = tempfile::tempdir().unwrap();
    write_files(d.path(), SHARED, SHARED_ANSWERS);
    let uri = hsm.uri();
    let mut init = support::officiant();
    hsm.env(&mut init)
        .args(["init-token", "--backend", &uri, "--label", "shared"])
        .arg("--so-pin-source")
        .arg(format!("file:{}", d.path().join("so.pin").display()))
        .arg("--pin-source")
        .arg(format!("file:{}", d.path().join("user.pin").display()))
        .arg("--transcript")
        .arg(d.path().join("init.jsonl"));
    support::run_ok(&mut init);
    let backend = format!("pkcs11:token=shared?module-path={}", hsm.module.display());
    let release = d.path().join("release");
    // Point 2: after the token entry (the token lock is taken as the run opens it). The
    // first run's XDG_RUNTIME_DIR does not exist (as under sudo with another user's):
    // it falls back to the same private /tmp directory the second, without one, uses.
    let mut a = run_cmd(d.path(), &backend, &d.path().join("out-a"), Some(&hsm));
    a.env("XDG_RUNTIME_DIR", d.path().join("no-such-runtime-dir"));
    let first = start_held(a, "2", &release);

    let second = run_cmd(d.path(), &backend, &d.path().join("out-b"), Some(&hsm))
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    let err = refused_line(&second);
    assert!(
        err.contains("token \"shared\" (serial ")
            && err.contains(&format!(
                "is in use by another officiant run (process {}: officiant run",
                first.id()
            )),
        "{err}"
    );

    let busy = format!(
        "token \"shared\" (serial {}",
        err.split("(serial ")
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap()
    );
    let held_by_first = format!(
        "is in use by another officiant run (process {}: officiant run",
        first.id()
    );
    // A one-step command that changes the token: refused before it writes anything.
    let one_step_transcript = d.path().join("one-step.jsonl");
    let mut gen = support::officiant();
    hsm.env(&mut gen)
        .args(["generate-key", "--backend", &backend])
        .args(["--label", "k2", "--id", "02", "--algorithm", "ec-p256"])
        .arg("--pin-source")
        .arg(format!("file:{}", d.path().join("user.pin").display()))
        .arg("--transcript")
        .arg(&one_step_transcript);
    let err = refused_line(&gen.output().unwrap());
    assert!(err.contains(&busy) && err.contains(&held_by_first), "{err}");
    assert!(
        !one_step_transcript.exists(),
        "the refused command wrote a transcript"
    );
    // A signer: refused while a ceremony has the token.
    std::fs::write(d.path().join("fw.bin"), b"firmware").unwrap();
    let o = sign_cmd(d.path(), &backend, &hsm, &d.path().join("user.pin"))
        .output()
        .unwrap();
    let err = refused_line(&o);
    assert!(err.contains(&busy) && err.contains(&held_by_first), "{err}");
    // And so is the console's Sign screen (its worker, in this process).
    let cause = console_sign(&hsm, &backend, d.path());
    assert!(
        cause.contains(&busy) && cause.contains(&held_by_first),
        "{cause}"
    );

    std::fs::write(&release, b"").unwrap();
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // A signer waiting for its PIN (a FIFO) has the token: a ceremony is refused naming
    // it, and the signer then signs.
    let fifo = d.path().join("pin.fifo");
    support::run_ok(Command::new("mkfifo").arg(&fifo));
    let mut signer = sign_cmd(d.path(), &backend, &hsm, &fifo)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer_end = fifo.clone();
    // Opening the FIFO to write returns once the signer opens it to read its PIN: it
    // holds the token lock by then.
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::OpenOptions::new().write(true).open(writer_end));
    });
    let t0 = Instant::now();
    let mut pin_pipe = loop {
        if let Ok(w) = rx.recv_timeout(Duration::from_millis(50)) {
            break w.unwrap();
        }
        if let Some(status) = signer.try_wait().unwrap() {
            let o = signer.wait_with_output().unwrap();
            panic!(
                "the signer ended ({status}) before reading its PIN: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the signer never read its PIN"
        );
    };
    let third = run_cmd(d.path(), &backend, &d.path().join("out-c"), Some(&hsm))
        .output()
        .unwrap();
    let err = refused_line(&third);
    assert!(
        err.contains(&busy)
            && err.contains(&format!(
                "is in use by another officiant run (process {}: officiant sign",
                signer.id()
            )),
        "{err}"
    );
    std::io::Write::write_all(&mut pin_pipe, b"concurrency-user-1\n").unwrap();
    drop(pin_pipe);
    let o = signer.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(d.path().join("fw.bin.sig").exists());

    let mut list = Command::new(pkcs11_tool);
    hsm.env(&mut list)
        .arg("--module")
        .arg(&hsm.module)
        .args([
            "--token-label",
            "shared",
            "--list-objects",
            "--login",
            "--pin",
        ])
        .arg("concurrency-user-1");
    let listed = support::run_ok(&mut list);
    assert_eq!(
        listed.matches("Private Key Object").count(),
        1,
        "one key, made by the first run: {listed}"
    );
}

/// `officiant sign` of `dir/fw.bin` with the run's key `k1`, its PIN read from `pin`.
fn sign_cmd(dir: &Path, backend: &str, hsm: &SoftHsm, pin: &Path) -> Command {
    let mut c = support::officiant();
    hsm.env(&mut c)
        .args([
            "sign",
            "--backend",
            backend,
            "--key",
            "k1",
            "--format",
            "raw",
        ])
        .arg("--pin-source")
        .arg(format!("file:{}", pin.display()))
        .arg("--transcript")
        .arg(dir.join("sign.jsonl"))
        .arg("-o")
        .arg(dir.join("fw.bin.sig"))
        .arg(dir.join("fw.bin"));
    c
}

#[test]
fn two_init_tokens_on_one_softhsm_do_not_pick_the_same_slot() {
    let hsm = SoftHsm::new().expect("SoftHSM is this test's token: install softhsm2");
    let pkcs11_tool = oracle("pkcs11-tool").expect("pkcs11-tool is this test's judge");
    let d = tempfile::tempdir().unwrap();
    write_files(d.path(), GOOD, ANSWERS);
    let backend = hsm.uri();
    let release = d.path().join("release");
    let first = start_held(
        run_cmd(d.path(), &backend, &d.path().join("out-a"), Some(&hsm)),
        "pkcs11-init-token",
        &release,
    );
    let mut second = run_cmd(d.path(), &backend, &d.path().join("out-b"), Some(&hsm))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for the second to reach its init-token: it waits there.
    std::thread::sleep(Duration::from_millis(1500));
    if let Some(status) = second.try_wait().unwrap() {
        let o = second.wait_with_output().unwrap();
        panic!(
            "the second run did not wait for the first's init-token ({status}): {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    std::fs::write(&release, b"").unwrap();
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = refused_line(&second.wait_with_output().unwrap());
    assert!(
        err.contains("a token labelled \"tok\" already exists"),
        "{err}"
    );
    let mut list = Command::new(pkcs11_tool);
    let slots = support::run_ok(
        hsm.env(&mut list)
            .arg("--module")
            .arg(&hsm.module)
            .arg("-L"),
    );
    assert_eq!(
        slots
            .lines()
            .filter(|l| l.trim_start().starts_with("token label") && l.ends_with(": tok"))
            .count(),
        1,
        "{slots}"
    );
    assert!(d.path().join("out-a").join("k1.pem").exists());
}

/// Sign `dir/fw.bin` with `k1` from the console's worker on `backend`; what it reported
/// as the failure (a signature made fails the test).
fn console_sign(hsm: &SoftHsm, backend: &str, dir: &Path) -> String {
    use officiant::tui::event::Event;
    use officiant::tui::worker::{self, Request, WorkerMsg};
    let _in_process = hsm.in_process();
    let (etx, rx) = std::sync::mpsc::channel();
    let tx = worker::spawn_with(backend.to_string(), etx, None);
    tx.send(Request::SignFile {
        key: "k1".into(),
        format: officiant::signing::Format::Raw,
        padding: None,
        options: Default::default(),
        pin: officiant::secret::Secret::from_string("concurrency-user-1".into()),
        input: dir.join("fw.bin"),
        output: dir.join("fw-console.bin.sig"),
        transcript: dir.join("console-sign.jsonl"),
    })
    .unwrap();
    let cause = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Event::Worker(WorkerMsg::Failed { cause, .. })) => break cause,
            Ok(Event::Worker(WorkerMsg::Signed { output, .. })) => {
                panic!(
                    "the console signed {} while a ceremony had the token",
                    output.display()
                )
            }
            Ok(_) => {}
            Err(e) => panic!("the worker went quiet: {e}"),
        }
    };
    assert!(!dir.join("fw-console.bin.sig").exists());
    // The worker closes the module before the next in-process SoftHSM user may start.
    drop(tx);
    while rx.recv_timeout(Duration::from_secs(60)).is_ok() {}
    cause
}
