//! What is refused, in one exact line and creating nothing: bad scripts and answers, a
//! wrong or missing share, a share file in the way or in the out dir, a wrap key the SO
//! must put without an SO login.

use super::*;

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
