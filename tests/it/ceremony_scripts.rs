//! Bad scripts and answers: each is refused before any token is opened, with one exact
//! line naming the file, the step (index and id) and the field.

use std::path::Path;

use officiant::ceremony::runner;

use crate::support;

use crate::support::good_script::{ANSWERS, GOOD};

/// Write script and answers into `dir`; return the error line of `prepare`.
fn error_of(dir: &Path, script: &str, answers: &str) -> String {
    let s = dir.join("x.toml");
    let a = dir.join("x.answers.toml");
    std::fs::write(&s, script).unwrap();
    std::fs::write(&a, answers).unwrap();
    std::fs::write(dir.join("so.pin"), "canary-so-1").unwrap();
    std::fs::write(dir.join("user.pin"), "canary-user-1").unwrap();
    match runner::prepare(&s, Some(&a)) {
        Ok(_) => "OK".to_string(),
        Err(e) => e.to_string().replace(&dir.display().to_string(), "DIR"),
    }
}

#[test]
fn good_script_passes() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(error_of(d.path(), GOOD, ANSWERS), "OK");
}

#[test]
fn bad_scripts_each_have_their_exact_message() {
    let d = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, String)> = vec![
        (
            "malformed TOML",
            GOOD.replace("label = \"k1\"", "label = \"k1"),
            ANSWERS.into(),
        ),
        (
            "unknown field",
            GOOD.replace("key-id = \"01\"", "key-id = \"01\"\nexportable = true"),
            ANSWERS.into(),
        ),
        (
            "unknown step kind",
            GOOD.replace("kind = \"login\"", "kind = \"log-in\""),
            ANSWERS.into(),
        ),
        (
            "bad algorithm",
            GOOD.replace("ec-p256", "rsa-1024"),
            ANSWERS.into(),
        ),
        (
            "duplicate label",
            GOOD.replace(
                "[[step]]\nid = \"export\"",
                "[[step]]\nid = \"gen-again\"\nkind = \"generate-key\"\nalgorithm = \"ec-p384\"\nlabel = \"k1\"\nkey-id = \"02\"\n\n[[step]]\nid = \"export\"",
            ),
            ANSWERS.into(),
        ),
        (
            "duplicate step id",
            GOOD.replace("id = \"login\"", "id = \"init\""),
            ANSWERS.into(),
        ),
        (
            "unknown role in a sign-off",
            GOOD.replace(
                "sign-off = [\"administrator\", \"witness\"]",
                "sign-off = [\"administrator\", \"auditor\"]",
            ),
            ANSWERS.into(),
        ),
        (
            "missing secret answer",
            GOOD.into(),
            ANSWERS.replace("user = \"file:user.pin\"\n", ""),
        ),
        (
            "missing sign-off answer",
            GOOD.into(),
            ANSWERS.replace("role = \"witness\"\nname = \"Walt\"", "role = \"administrator\"\nname = \"Bob\""),
        ),
        (
            "missing confirmation",
            GOOD.into(),
            ANSWERS.replace("[[confirm]]\nstep = \"init\"\n", ""),
        ),
        (
            "wrong type",
            GOOD.replace("key-id = \"01\"", "key-id = 1"),
            ANSWERS.into(),
        ),
        (
            "missing field",
            GOOD.replace("key = \"k1\"\n", ""),
            ANSWERS.into(),
        ),
        (
            "output path escapes the out dir",
            GOOD.replace("pem = \"k1.pem\"", "pem = \"../k1.pem\""),
            ANSWERS.into(),
        ),
        (
            "answers name a step the script lacks",
            GOOD.into(),
            ANSWERS.replace("step = \"gen-p256\"\nrole = \"witness\"", "step = \"gen-p255\"\nrole = \"witness\""),
        ),
        (
            "secret file missing",
            GOOD.into(),
            ANSWERS.replace("file:user.pin", "file:nope.pin"),
        ),
        (
            "secret env var not set",
            GOOD.into(),
            ANSWERS.replace("file:user.pin", "env:OFFICIANT_TEST_UNSET_VAR"),
        ),
        (
            "unknown field in answers",
            GOOD.into(),
            ANSWERS.replace("name = \"Walt\"", "name = \"Walt\"\nwhen = \"now\""),
        ),
    ];
    let mut report = String::new();
    for (what, script, answers) in &cases {
        report.push_str(&format!(
            "{what}: {}\n",
            error_of(d.path(), script, answers)
        ));
    }
    let expected = "\
malformed TOML: DIR/x.toml:28:12: malformed TOML: invalid basic string
unknown field: DIR/x.toml: step[2] (gen-p256).exportable: unknown field
unknown step kind: DIR/x.toml: step[1] (login).kind: unknown step kind \"log-in\" (expected one of init-token, login, change-pin, generate-key, import-key, write-object, delete-object, export-public-key, instruction, issue-certificate, export-fuses, sign, verify, issue-tbbr, change-auth-key, put-auth-key, set-audit, set-policy, co-sign, generate-wrap-key, backup, restore)
bad algorithm: DIR/x.toml: step[2] (gen-p256).algorithm: unknown algorithm \"rsa-1024\" (expected ec-p256, ec-p384, ec-p521, rsa-2048, rsa-3072, rsa-4096)
duplicate label: DIR/x.toml: step[3] (gen-again).label: key label \"k1\" is already created by step[2] (gen-p256)
duplicate step id: DIR/x.toml: step[1] (init).id: duplicate step id (already used by step[0] (init))
unknown role in a sign-off: DIR/x.toml: step[2] (gen-p256).sign-off[1]: role \"auditor\" is not declared in [roles] (declared: administrator, witness)
missing secret answer: DIR/x.answers.toml: step[0] (init).user-pin: no source for secret \"user\" (add it under [secrets])
missing sign-off answer: DIR/x.answers.toml: step[2] (gen-p256): missing sign-off by witness (0 of 1; add [[sign-off]] step = \"gen-p256\", role = \"witness\", name = \"…\")
missing confirmation: DIR/x.answers.toml: step[0] (init): missing confirmation for destructive step init-token (add [[confirm]] step = \"init\")
wrong type: DIR/x.toml: step[2] (gen-p256).key-id: expected a string, found integer
missing field: DIR/x.toml: step[3] (export): missing field key
output path escapes the out dir: DIR/x.toml: step[3] (export).pem: \"../k1.pem\" must be a plain file name (it is written into the out dir)
answers name a step the script lacks: DIR/x.answers.toml: sign-off[2].step: no step \"gen-p255\" in DIR/x.toml
secret file missing: DIR/x.answers.toml: step[0] (init).user-pin: secret \"user\" comes from file:DIR/nope.pin, which does not exist
secret env var not set: DIR/x.answers.toml: step[0] (init).user-pin: secret \"user\" comes from env:OFFICIANT_TEST_UNSET_VAR, which is not set
unknown field in answers: DIR/x.answers.toml: sign-off[2].when: unknown field
";
    assert_eq!(report, expected, "\n{report}");
}

#[test]
fn check_command_prints_one_line_and_fails() {
    let d = tempfile::tempdir().unwrap();
    let s = d.path().join("x.toml");
    std::fs::write(&s, GOOD.replace("ec-p256", "rsa-1024")).unwrap();
    let out = support::run(support::officiant().arg("check").arg(&s));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("step[2] (gen-p256).algorithm: unknown algorithm \"rsa-1024\""),
        "{err}"
    );

    std::fs::write(&s, GOOD).unwrap();
    let ok = support::run_ok(support::officiant().arg("check").arg(&s));
    assert!(ok.contains("4 steps, OK"), "{ok}");
}

#[test]
fn shipped_ceremonies_check_with_their_answers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".toml") && !name.ends_with(".answers.toml") {
            let answers = dir.join(name.replace(".toml", ".answers.toml"));
            assert!(
                answers.is_file(),
                "{name} ships without {}",
                answers.display()
            );
            runner::prepare(&p, Some(&answers)).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 1);
}
