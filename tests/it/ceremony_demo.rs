//! The README's first command, as a newcomer runs it: the shipped rehearsal ceremony on
//! the default backend (sim:./rehearsal). Judged by stock openssl and by
//! `officiant transcript verify`; every rehearsal secret is searched for everywhere the
//! run wrote (the canary).

use std::path::Path;
use std::process::Command;

use officiant::ceremony::transcript;

use crate::support;
use crate::support::demo::{self, files_under, outputs, rehearsal_secrets};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn readme_first_command_leaves_keys_openssl_reads_and_a_transcript_that_verifies() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let cmd = "cargo run --release -- run ceremonies/rehearsal-demo.toml --answers ceremonies/rehearsal-demo.answers.toml --out out/demo";
    assert!(
        readme.contains(cmd),
        "README no longer opens with the command this test runs"
    );

    // Same arguments, from a scratch working directory so sim:./rehearsal lands there.
    let work = tempfile::tempdir().unwrap();
    demo::copy_dir(&root().join("ceremonies"), &work.path().join("ceremonies"));
    let out = Command::new(env!("CARGO_BIN_EXE_officiant"))
        .current_dir(work.path())
        .args([
            "run",
            "ceremonies/rehearsal-demo.toml",
            "--answers",
            "ceremonies/rehearsal-demo.answers.toml",
            "--out",
            "out/demo",
        ])
        .env_remove("OFFICIANT_TEST_CRASH_AT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        work.path().join("rehearsal").is_dir(),
        "default backend is not sim:./rehearsal"
    );
    let dir = work.path().join("out/demo");

    let tr_path = dir.join("transcript.jsonl");
    let v = transcript::verify(&tr_path).unwrap();
    let fingerprints: Vec<String> = v
        .entries
        .iter()
        .filter(|e| e.kind == "step-done")
        .flat_map(|e| {
            e.data["result"]["objects"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|o| o["public_key_sha256"].as_str().map(str::to_string))
        .collect();
    assert_eq!(fingerprints.len(), 3, "three keys recorded");

    if let Some(openssl) = support::oracle("openssl") {
        for (file, _) in outputs() {
            let p = dir.join(&file);
            let inform = if file.ends_with(".der") { "DER" } else { "PEM" };
            support::run_ok(
                Command::new(&openssl)
                    .args(["pkey", "-pubin", "-inform", inform, "-noout", "-in"])
                    .arg(&p),
            );
            // The fingerprint in the transcript is the SHA-256 of the DER SPKI openssl sees.
            let der = support::run(
                Command::new(&openssl)
                    .args([
                        "pkey", "-pubin", "-inform", inform, "-outform", "DER", "-in",
                    ])
                    .arg(&p),
            )
            .stdout;
            let fp = hex::encode(officiant::output::sha256(&der));
            assert!(
                fingerprints.contains(&fp),
                "{file}: fingerprint {fp} not in the transcript"
            );
        }
    }

    // The CLI accepts the transcript, and refuses it after any one-byte change.
    let ok = support::run_ok(
        support::officiant()
            .args(["transcript", "verify"])
            .arg(&tr_path),
    );
    assert!(ok.contains("OK"), "{ok}");
    let good = std::fs::read(&tr_path).unwrap();
    // Every byte of the first and last entries, and a spread of bytes in between (the
    // unit test in transcript.rs changes every byte of a small transcript).
    let first_end = good.iter().position(|&b| b == b'\n').unwrap() + 1;
    let last_start = good[..good.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let picks = (0..first_end)
        .chain((first_end..last_start).step_by(11))
        .chain(last_start..good.len());
    for i in picks {
        let mut b = good.clone();
        b[i] = b[i].wrapping_add(1);
        assert!(
            transcript::verify_bytes("t", &b).is_err(),
            "change at byte {i} not detected"
        );
    }
    let bad_path = dir.join("tampered.jsonl");
    for i in [
        0,
        good.len() / 3,
        good.len() / 2,
        good.len() - 2,
        good.len() - 1,
    ] {
        let mut b = good.clone();
        b[i] = b[i].wrapping_add(1);
        std::fs::write(&bad_path, &b).unwrap();
        let r = support::run(
            support::officiant()
                .args(["transcript", "verify"])
                .arg(&bad_path),
        );
        assert!(!r.status.success(), "CLI accepted a change at byte {i}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // Deleted, swapped and truncated lines name the first bad line.
    let lines: Vec<&[u8]> = good.split_inclusive(|&b| b == b'\n').collect();
    let join = |ls: Vec<&[u8]>| ls.concat();
    let mut del = lines.clone();
    del.remove(5);
    let mut swap = lines.clone();
    swap.swap(5, 6);
    for (what, bytes, line) in [
        ("deleted", join(del), 6),
        ("swapped", join(swap), 6),
        (
            "truncated",
            join(lines[..lines.len() - 1].to_vec()),
            lines.len(),
        ),
    ] {
        let e = transcript::verify_bytes("t", &bytes)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("t: line {line}: ")), "{what}: {e}");
    }
    std::fs::remove_file(&bad_path).unwrap();

    // The Markdown for the witnesses shows each fingerprint and a signature block.
    let md = std::fs::read_to_string(dir.join("transcript.md")).unwrap();
    for fp in &fingerprints {
        let groups = officiant::formats::words::hex_groups(&hex::decode(fp).unwrap());
        assert!(md.contains(&groups), "transcript.md lacks {groups}");
    }
    assert!(md.contains("**witness**") && md.contains("**administrator**"));
    assert!(md.contains("Walt Witness (rehearsal) signed off as **witness**"));

    // Canary: no rehearsal PIN or passphrase anywhere the run wrote or printed.
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        ("stdout".into(), stdout.into_bytes()),
        ("stderr".into(), stderr.into_bytes()),
    ];
    for f in files_under(&work.path().join("out"))
        .into_iter()
        .chain(files_under(&work.path().join("rehearsal")))
    {
        haystacks.push((f.display().to_string(), std::fs::read(&f).unwrap()));
    }
    for secret in rehearsal_secrets() {
        for (name, bytes) in &haystacks {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a rehearsal secret appears in {name}"
            );
        }
    }
}
