//! The shipped backup and restore ceremonies replayed on the rehearsal token, SoftHSM
//! (one token to another) and yubihsm:mock (onto a second device).

use super::*;
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
