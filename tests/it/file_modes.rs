//! Files (issue 11, item 10): the rehearsal store is 0600 in a 0700 directory whatever
//! the umask or an existing directory's mode; transcript and journal are never
//! world-writable; a PIN file others can read is warned about; `--transcript` never
//! truncates a file that is not a transcript; an STM32 image with bytes after its signed
//! payload does not verify.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::support;
use crate::support::demo::Demo;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Run the officiant binary with umask 000 (through sh, which sets it for the child).
fn with_umask_0(args: &[&str], cwd: &Path) -> Output {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_officiant"))
        .args(args)
        .current_dir(cwd)
        .env_remove("OFFICIANT_TEST_CRASH_AT");
    support::run(&mut c)
}

#[test]
fn the_rehearsal_store_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("so.pin"), "so-canary-1\n").unwrap();
    std::fs::write(d.join("user.pin"), "user-canary-2\n").unwrap();
    for p in ["so.pin", "user.pin"] {
        std::fs::set_permissions(d.join(p), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    // A fresh directory, and one that exists already, open to everyone.
    std::fs::create_dir(d.join("open")).unwrap();
    std::fs::set_permissions(d.join("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
    for tok in ["fresh", "open"] {
        let out = with_umask_0(
            &[
                "init-token",
                "--backend",
                &format!("sim:{tok}"),
                "--label",
                "t",
                "--so-pin-source",
                "file:so.pin",
                "--pin-source",
                "file:user.pin",
                "--transcript",
                &format!("{tok}-transcript.jsonl"),
            ],
            d,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mode(&d.join(tok)), 0o700, "{tok}: directory");
        for e in std::fs::read_dir(d.join(tok)).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
        let t = d.join(format!("{tok}-transcript.jsonl"));
        assert_eq!(mode(&t) & 0o022, 0, "transcript {:o}", mode(&t));
    }
}

#[test]
fn transcript_and_journal_are_never_world_writable() {
    let demo = Demo::new(true);
    let work = demo
        .script
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let out = with_umask_0(
        &[
            "run",
            demo.script.to_str().unwrap(),
            "--answers",
            demo.answers.to_str().unwrap(),
            "--backend",
            &format!("sim:{}", demo.token.display()),
            "--out",
            demo.out.to_str().unwrap(),
        ],
        &work,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["transcript.jsonl", "journal.jsonl", "transcript.md"] {
        let m = mode(&demo.out.join(f));
        assert_eq!(m & 0o022, 0, "{f} is {m:o}");
    }
}

#[test]
fn a_pin_file_others_can_read_is_warned_about_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("so.pin"), "so-canary-1\n").unwrap();
    std::fs::write(d.join("user.pin"), "user-canary-2\n").unwrap();
    std::fs::set_permissions(d.join("so.pin"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(d.join("user.pin"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = support::run(
        support::officiant()
            .args(["init-token", "--backend", "sim:tok", "--label", "t"])
            .args([
                "--so-pin-source",
                "file:so.pin",
                "--pin-source",
                "file:user.pin",
            ])
            .args(["--transcript", "t.jsonl"])
            .current_dir(d),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("user.pin")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("warning"), "{err}");
    assert!(
        !err.contains("so.pin"),
        "a private PIN file is not warned about: {err}"
    );
    assert!(!err.contains("canary"), "{err}");
}

#[test]
fn transcript_flag_never_truncates_a_file_that_is_not_a_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("so.pin"), "so-canary-1\n").unwrap();
    std::fs::write(d.join("user.pin"), "user-canary-2\n").unwrap();
    for p in ["so.pin", "user.pin"] {
        std::fs::set_permissions(d.join(p), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let notes = "meeting notes\nkeep this line";
    for (name, body) in [
        ("notes.txt", notes.to_string()),
        ("notes-nl.txt", format!("{notes}\n")),
        ("fake.jsonl", "{\"seq\":0}\n{\"seq\":1,\"ti".to_string()),
    ] {
        std::fs::write(d.join(name), &body).unwrap();
        let out = support::run(
            support::officiant()
                .args(["init-token", "--backend", "sim:tok", "--label", "t"])
                .args([
                    "--so-pin-source",
                    "file:so.pin",
                    "--pin-source",
                    "file:user.pin",
                ])
                .args(["--transcript", name])
                .current_dir(d),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: accepted");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(name) && err.contains("transcript"), "{err}");
        assert_eq!(
            std::fs::read_to_string(d.join(name)).unwrap(),
            body,
            "{name} changed"
        );
    }
    // The token was not touched either.
    assert!(!d.join("tok/store.json").exists());
}

#[test]
fn an_stm32_image_with_bytes_after_the_signed_payload_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = d.join("tok");
    drop(support::rehearsal::ready_token(&token));
    let pin = d.join("user.pin");
    std::fs::write(&pin, support::rehearsal::USER_PIN).unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let backend = format!("sim:{}", token.display());
    let pin_src = format!("file:{}", pin.display());
    support::run_ok(support::officiant().args([
        "generate-key",
        "--backend",
        &backend,
        "--label",
        "stm",
        "--algorithm",
        "ec-p256",
        "--pin-source",
        &pin_src,
        "--transcript",
        d.join("t.jsonl").to_str().unwrap(),
    ]));
    let pubkey = d.join("stm.pub.pem");
    support::run_ok(support::officiant().args([
        "export-pubkey",
        "--backend",
        &backend,
        "--key",
        "stm",
        "-o",
        pubkey.to_str().unwrap(),
    ]));
    let input = d.join("bl2.bin");
    std::fs::write(&input, vec![0x5a; 5000]).unwrap();
    let image = d.join("bl2.stm32");
    support::run_ok(support::officiant().args([
        "sign",
        "--backend",
        &backend,
        "--key",
        "stm",
        "--format",
        "stm32mp15",
        "--load-address",
        "0x2ffc2400",
        "--entry-point",
        "0x2ffc2500",
        "--pin-source",
        &pin_src,
        "--transcript",
        d.join("t.jsonl").to_str().unwrap(),
        input.to_str().unwrap(),
        "-o",
        image.to_str().unwrap(),
    ]));
    let verify = |p: &Path| {
        support::run(support::officiant().args([
            "verify",
            "--format",
            "stm32mp15",
            "--pubkey",
            pubkey.to_str().unwrap(),
            p.to_str().unwrap(),
        ]))
    };
    assert!(verify(&image).status.success());
    let mut b = std::fs::read(&image).unwrap();
    b.extend_from_slice(b"APPENDED");
    let tail = d.join("tail.stm32");
    std::fs::write(&tail, &b).unwrap();
    let out = verify(&tail);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("8 bytes after the signed payload"), "{err}");
}
