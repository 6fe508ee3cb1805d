//! The console in a real terminal: tmux runs `officiant` at 80×24, the test types the
//! sign-offs and PINs like an officer would, reads the screen with capture-pane, then
//! checks the token's objects, the answers file the run recorded, and a signature made
//! on the sign screen with openssl.

use std::path::Path;
use std::process::Command;

use officiant::hsm::{self, BackendUri, ObjectClass, UserType};
use officiant::secret::Secret;

use crate::support;
use crate::support::tmux::Tmux;

const PIN: &str = "246810";
const SO_PIN: &str = "97310";

/// (type, step id, role, name) of each transcript entry.
fn kinds(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let d = &v["data"];
            format!(
                "{} {} {} {}",
                v["type"].as_str().unwrap_or(""),
                d["id"].as_str().unwrap_or(""),
                d["role"].as_str().unwrap_or(""),
                d["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// What must match between two runs: each object's class, label, id and key type.
fn shape(objs: &[hsm::ObjectInfo]) -> Vec<String> {
    let mut v: Vec<String> = objs
        .iter()
        .map(|o| {
            format!(
                "{} {} {} {}",
                o.class,
                o.label,
                hex::encode(&o.id),
                o.key_type()
            )
        })
        .collect();
    v.sort();
    v
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if let Ok(b) = std::fs::read(&p) {
            if b.windows(needle.len()).any(|w| w == needle) {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

/// Take the roll call at the console: each (name, role indexes) in turn, then an empty
/// name to end it. Roles are listed in the script's order (alphabetical).
fn roll_call(t: &Tmux, people: &[(&str, &[usize])]) {
    t.wait_for("Who is present", 20);
    for (name, roles) in people {
        t.text(name);
        t.keys(&["Enter"]);
        t.wait_for(&format!("Roles of {name}"), 5);
        let mut at = 0;
        for &r in *roles {
            while at < r {
                t.keys(&["Down"]);
                at += 1;
            }
            t.keys(&["Space"]);
        }
        let before = t.screen();
        t.keys(&["Enter"]);
        t.wait_change(&before, 5);
        t.wait_for(&format!("✓ {name}"), 5);
    }
    t.keys(&["Enter"]);
}

/// Answer whatever the console asks (sign-offs and reviews by the first person offered,
/// the typed confirmation, PINs) until `done(screen)`; returns that screen. Each answer
/// waits for the screen to take it before the next.
fn answer_until(t: &Tmux, label: &str, secs: u64, done: &dyn Fn(&str) -> bool) -> String {
    let t0 = std::time::Instant::now();
    let mut last_secret = "";
    loop {
        let s = t.screen();
        if done(&s) {
            return s;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(secs),
            "the ceremony did not get there within {secs} s; screen:\n{s}"
        );
        // (text to type, the prompt it answers: a secret's prompt must leave the screen
        // before the next look, or a stale look would type the PIN's digits as keys)
        let keys: Option<(&str, Option<&str>)> =
            if s.contains("choose your name") || s.contains("confirms it") {
                Some(("", None))
            } else if s.contains("and Enter to go ahead") {
                Some((label, None))
            } else if s.contains("again, to confirm") {
                Some((last_secret, Some("again, to confirm")))
            } else if s.contains("New SO PIN (so):") {
                last_secret = SO_PIN;
                Some((SO_PIN, Some("New SO PIN (so):")))
            } else if s.contains("PIN (user):") {
                last_secret = PIN;
                Some((PIN, Some("PIN (user):")))
            } else if s.contains("Press Enter to begin") || s.contains("Press Enter to resume") {
                Some(("", None))
            } else {
                None
            };
        match keys {
            Some((text, secret)) => {
                if !text.is_empty() {
                    if secret.is_some() {
                        t.wait_for_no_echo(5);
                    }
                    t.text(text);
                }
                t.keys(&["Enter"]);
                match secret {
                    Some(prompt) => t.wait_gone(prompt, 30),
                    None => {
                        t.wait_change(&s, 30);
                    }
                }
            }
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

#[test]
fn rehearsal_ceremony_in_a_real_terminal() {
    let Some(_tmux) = support::oracle("tmux") else {
        return;
    };
    let Some(openssl) = support::oracle("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("ceremonies")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tui-rehearsal.toml"),
        d.join("ceremonies/rehearsal.toml"),
    )
    .unwrap();
    std::fs::write(d.join("fw.bin"), vec![0x5a; 4096]).unwrap();

    let t = Tmux::new("officiant-e2e", "console");
    let bin = env!("CARGO_BIN_EXE_officiant");
    t.start(
        80,
        24,
        d,
        &format!("{bin} --out records; echo CONSOLE-EXIT=$?; sleep 600"),
    );

    // Home: the fresh rehearsal token and the ceremony found in ceremonies/.
    t.wait_for("not initialized", 20);
    t.wait_for("Rehearsal: firmware sign", 5);

    // Open (the engine checks the script against the token), then begin: the roll call.
    t.keys(&["Enter"]);
    t.wait_for("Press Enter to begin", 10);
    t.keys(&["Enter"]);
    roll_call(
        &t,
        &[
            ("Alice Admin", &[0]),
            ("Walter Witness", &[1]),
            ("Wanda Witness", &[1]),
        ],
    );
    // init: the administrator and a witness pick their names; the token is named and
    // its label typed to confirm; PINs typed twice.
    t.wait_for("administrator signs off \"init\"", 10);
    t.keys(&["Enter"]);
    t.wait_for("witness signs off \"init\"", 5);
    t.keys(&["Enter"]);
    t.wait_for("Type \"officiant-rehearsal\"", 5);
    t.keys(&["y", "Enter"]);
    t.wait_for("exactly to confirm", 5);
    t.keys(&["BSpace"]);
    t.text("officiant-rehearsal");
    t.keys(&["Enter"]);
    t.wait_for("New SO PIN (so)", 5);
    t.wait_for_no_echo(5);
    t.text(SO_PIN);
    let s = t.screen();
    assert!(!s.contains(SO_PIN), "a PIN was echoed:\n{s}");
    answer_until(&t, "officiant-rehearsal", 300, &|s| {
        s.contains("Ceremony complete")
    });
    let done = t.wait_for("Transcript head", 10);
    assert!(done.contains("officiant transcript verify"), "{done}");

    // Record the answers (once the transcript is closed).
    t.wait_for("transcript: records/rehearsal/transcript.md", 10);
    t.keys(&["w"]);
    t.wait_for("answers saved to rehearsal.answers.toml", 5);

    // Sign a payload: choose the input with Tab completion, type the PIN.
    t.keys(&["3"]);
    t.wait_for("Sign and verify", 5);
    t.keys(&["Down", "Down", "Enter"]);
    t.text("fw");
    t.keys(&["Tab"]);
    t.wait_for("fw.bin", 5);
    t.keys(&["Enter"]);
    t.wait_for("fw.bin.sig", 5);
    t.keys(&["g"]);
    t.wait_for("User PIN to sign", 5);
    t.text(PIN);
    t.keys(&["Enter"]);
    let s = t.wait_for("Written", 30);
    assert!(s.contains("✓ signature checked"), "{s}");

    // Verify it at the console against the public key the ceremony exported (past
    // Output, Options, Request and Approvals).
    t.keys(&["Down", "Down", "Down", "Down", "Down", "Enter"]);
    t.text("records/rehearsal/fw-signing-p256.pub.pem");
    t.keys(&["Enter", "Down", "Enter"]);
    t.text("fw.bin.sig");
    t.keys(&["Enter", "v"]);
    t.wait_for("✓ GOOD SIGNATURE", 30);

    t.keys(&["q"]);
    t.wait_for("CONSOLE-EXIT=0", 10);

    // The token holds both key pairs, private halves sensitive and never extractable.
    let uri = BackendUri::parse(&format!("sim:{}", d.join("rehearsal").display())).unwrap();
    let mut tok = hsm::open(&uri, None).unwrap();
    assert_eq!(tok.info().unwrap().label, "officiant-rehearsal");
    tok.login(UserType::User, &Secret::new(PIN.as_bytes().to_vec()))
        .unwrap();
    let objs = tok.list_objects().unwrap();
    for (label, id, kind) in [
        ("fw-signing-p256", 0x01u8, "EC P-256"),
        ("fw-signing-rsa4096", 0x02, "RSA 4096"),
    ] {
        let private = objs
            .iter()
            .find(|o| o.label == label && o.class == ObjectClass::PrivateKey)
            .unwrap_or_else(|| panic!("no private key {label}: {objs:?}"));
        assert_eq!(private.id, vec![id]);
        assert_eq!(private.key_type(), kind);
        assert_eq!(private.flags.never_extractable, Some(true));
    }

    // openssl judges the signature the sign screen wrote.
    let pem = d.join("p256.pem");
    std::fs::write(&pem, tok.public_key("fw-signing-p256").unwrap().to_pem()).unwrap();
    let out = Command::new(openssl)
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pem)
        .arg("-signature")
        .arg(d.join("fw.bin.sig"))
        .arg(d.join("fw.bin"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The recorded answers: the roll call, who signed and reviewed what, the
    // confirmation, secrets only as `prompt`.
    let answers = std::fs::read_to_string(d.join("rehearsal.answers.toml")).unwrap();
    for needle in [
        "[[participant]]\nname = \"Wanda Witness\"",
        "name = \"Alice Admin\"",
        "step = \"gen-rsa\"",
        "[[acknowledge]]\nstep = \"gen-p256\"\nname = \"Walter Witness\"",
        "\"so\" = \"prompt\"",
        "[[confirm]]\nstep = \"init\"",
    ] {
        assert!(
            answers.contains(needle),
            "answers lack {needle:?}:\n{answers}"
        );
    }

    // The transcript: a hash chain officiant verifies, with the roll call, each sign-off,
    // each acknowledgement and each key.
    let out = d.join("records/rehearsal");
    let v = support::run_ok(
        support::officiant()
            .arg("transcript")
            .arg("verify")
            .arg(out.join("transcript.jsonl")),
    );
    assert!(!v.is_empty());
    let md = std::fs::read_to_string(out.join("transcript.md")).unwrap();
    for needle in [
        "Alice Admin",
        "Walter Witness",
        "fw-signing-p256",
        "fw-signing-rsa4096",
    ] {
        assert!(md.contains(needle), "transcript.md lacks {needle}:\n{md}");
    }
    let console_kinds = kinds(&out.join("transcript.jsonl"));
    assert!(
        console_kinds.iter().any(|k| k.starts_with("roster")),
        "{console_kinds:?}"
    );
    assert!(
        console_kinds
            .iter()
            .any(|k| k.starts_with("acknowledge gen-p256 witness Walter Witness")),
        "{console_kinds:?}"
    );

    // Replay the recorded answers headless on a fresh token: secrets from files instead
    // of `prompt`, everything else as recorded.
    std::fs::write(d.join("so.pin"), SO_PIN).unwrap();
    std::fs::write(d.join("user.pin"), PIN).unwrap();
    let replay = answers
        .replace("\"so\" = \"prompt\"", "\"so\" = \"file:so.pin\"")
        .replace("\"user\" = \"prompt\"", "\"user\" = \"file:user.pin\"");
    std::fs::write(d.join("replay.answers.toml"), replay).unwrap();
    support::run_ok(
        support::officiant()
            .current_dir(d)
            .args([
                "run",
                "ceremonies/rehearsal.toml",
                "--backend",
                "sim:replay-token",
            ])
            .args(["--answers", "replay.answers.toml", "--out", "out/replay"]),
    );
    let uri2 = BackendUri::parse(&format!("sim:{}", d.join("replay-token").display())).unwrap();
    let mut tok2 = hsm::open(&uri2, None).unwrap();
    tok2.login(UserType::User, &Secret::new(PIN.as_bytes().to_vec()))
        .unwrap();
    assert_eq!(shape(&tok2.list_objects().unwrap()), shape(&objs));
    // Equivalent transcripts: the same entries in the same order (times, hashes and the
    // new keys' fingerprints differ).
    assert_eq!(kinds(&d.join("out/replay/transcript.jsonl")), console_kinds);

    // Canary: neither PIN is in any file the runs left (but the two the test wrote).
    for pin in [PIN, SO_PIN] {
        let hits: Vec<String> = files_containing(d, pin.as_bytes())
            .into_iter()
            .filter(|h| !h.ends_with(".pin"))
            .collect();
        assert!(hits.is_empty(), "PIN found in {hits:?}");
    }
}

/// The whole HAB4 EC ceremony at the console with a roll call of three; the console is
/// killed in the middle, the ceremony resumed from its journal and finished, its answers
/// saved with `w` (complete, though half of it ran in an earlier session), checked by
/// `officiant check`, and replayed headless to the same objects and the same steps.
#[test]
fn hab4_ec_ceremony_killed_resumed_saved_and_replayed() {
    let Some(_tmux) = support::oracle("tmux") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir(d.join("ceremonies")).unwrap();
    std::fs::copy(
        root.join("ceremonies/hab4-pki-ec.toml"),
        d.join("ceremonies/hab4-pki-ec.toml"),
    )
    .unwrap();
    // The script ends by signing this sample image.
    std::fs::create_dir(d.join("ceremonies/samples")).unwrap();
    std::fs::copy(
        root.join("ceremonies/samples/rt1060-hab4-unsigned.bin"),
        d.join("ceremonies/samples/rt1060-hab4-unsigned.bin"),
    )
    .unwrap();
    let label = "hab4-pki-ec";
    assert!(
        std::fs::read_to_string(d.join("ceremonies/hab4-pki-ec.toml"))
            .unwrap()
            .contains(&format!("token = \"{label}\"")),
        "the script names its token {label}"
    );
    let bin = env!("CARGO_BIN_EXE_officiant");
    let console = |name: &str| {
        let t = Tmux::new(name, "console");
        t.start(
            80,
            24,
            d,
            &format!("{bin} --out records; echo CONSOLE-EXIT=$?; sleep 600"),
        );
        t.wait_for("HAB4", 20);
        // The token is open (until then Enter does nothing): its state line is drawn.
        t.wait_for(" objects", 20);
        t
    };

    // First session: the roll call, then run until a few SRKs exist; then kill -9.
    let t = console("officiant-hab4-a");
    t.keys(&["Enter"]);
    t.wait_for("Press Enter to begin", 10);
    t.keys(&["Enter"]);
    let people: &[(&str, &[usize])] = &[
        ("Ada Admin", &[0]),
        ("Walt Witness", &[1]),
        ("Wanda Witness", &[1]),
    ];
    roll_call(&t, people);
    answer_until(&t, label, 300, &|s| s.contains("✓ done    cert-srk2"));
    let pid = t.program_pid();
    // The shell's own kill (no procps needed).
    assert!(Command::new("sh")
        .args(["-c", &format!("kill -9 {pid}")])
        .status()
        .unwrap()
        .success());
    t.wait_for_line("CONSOLE-EXIT=", 10);
    drop(t);

    // Second session: the resume screen shows what is done; the roll call again (people
    // present now), the session PIN again, then to the end.
    let t = console("officiant-hab4-b");
    t.keys(&["Enter"]);
    let s = t.wait_for("Press Enter to resume", 10);
    assert!(s.contains("↺ resumed"), "{s}");
    t.keys(&["Enter"]);
    roll_call(&t, people);
    answer_until(&t, label, 300, &|s| s.contains("Ceremony complete"));
    t.wait_for("Transcript head", 10);
    t.keys(&["w"]);
    t.wait_for("answers saved to hab4-pki-ec.answers.toml", 10);
    t.keys(&["q"]);
    t.wait_for("CONSOLE-EXIT=0", 10);
    drop(t);

    // The saved answers are complete: check accepts them.
    let saved = d.join("hab4-pki-ec.answers.toml");
    support::run_ok(
        support::officiant()
            .current_dir(d)
            .args(["check", "ceremonies/hab4-pki-ec.toml", "--answers"])
            .arg(&saved),
    );
    let out = d.join("records/hab4-pki-ec");
    let console_steps = done_steps(&out.join("transcript.jsonl"));

    // Replay headless on a fresh token from the saved answers (secrets from files).
    std::fs::write(d.join("so.pin"), SO_PIN).unwrap();
    std::fs::write(d.join("user.pin"), PIN).unwrap();
    let replay = std::fs::read_to_string(&saved)
        .unwrap()
        .replace("\"so\" = \"prompt\"", "\"so\" = \"file:so.pin\"")
        .replace("\"user\" = \"prompt\"", "\"user\" = \"file:user.pin\"");
    std::fs::write(d.join("replay.answers.toml"), replay).unwrap();
    support::run_ok(
        support::officiant()
            .current_dir(d)
            .args([
                "run",
                "ceremonies/hab4-pki-ec.toml",
                "--backend",
                "sim:replay-token",
            ])
            .args(["--answers", "replay.answers.toml", "--out", "out/replay"]),
    );
    assert_eq!(
        done_steps(&d.join("out/replay/transcript.jsonl")),
        console_steps
    );
    let objects = |tokdir: &str| {
        let uri = BackendUri::parse(&format!("sim:{}", d.join(tokdir).display())).unwrap();
        let mut tok = hsm::open(&uri, None).unwrap();
        tok.login(UserType::User, &Secret::new(PIN.as_bytes().to_vec()))
            .unwrap();
        shape(&tok.list_objects().unwrap())
    };
    assert_eq!(objects("replay-token"), objects("rehearsal"));
    // Both transcripts verify; the console's has two sessions, the replay's one.
    for p in [
        out.join("transcript.jsonl"),
        d.join("out/replay/transcript.jsonl"),
    ] {
        support::run_ok(support::officiant().arg("transcript").arg("verify").arg(&p));
    }
}

/// Each step id done or resumed, with who acknowledged its result (the shape of a run,
/// whichever sessions it took).
fn done_steps(path: &Path) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    let mut acks: std::collections::BTreeMap<String, String> = Default::default();
    for l in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let d = &v["data"];
        let id = d["id"].as_str().unwrap_or("").to_string();
        match v["type"].as_str().unwrap_or("") {
            "step-done" => steps.push(id),
            "acknowledge" => {
                acks.insert(id, d["name"].as_str().unwrap_or("").to_string());
            }
            _ => {}
        }
    }
    steps
        .into_iter()
        .map(|id| format!("{id} {}", acks.get(&id).cloned().unwrap_or_default()))
        .collect()
}

#[test]
fn a_small_terminal_says_so() {
    let Some(_tmux) = support::oracle("tmux") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux::new("officiant-small", "console");
    let bin = env!("CARGO_BIN_EXE_officiant");
    t.start(60, 20, dir.path(), &format!("{bin}; sleep 600"));
    t.wait_for("terminal too small: needs 80×24", 20);
}

#[test]
fn no_color_in_a_real_terminal() {
    let Some(_tmux) = support::oracle("tmux") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux::new("officiant-nocolor", "console");
    let bin = env!("CARGO_BIN_EXE_officiant");
    t.start(
        80,
        24,
        dir.path(),
        &format!("env NO_COLOR=1 TERM=xterm-256color {bin}; sleep 600"),
    );
    t.wait_for("REHEARSAL TOKEN", 20);
    t.keys(&["?"]);
    t.wait_for("Help", 5);
    let out = t
        .cmd()
        .args(["capture-pane", "-p", "-e", "-t", t.session])
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    // SGR colour parameters: 30–37, 38;…, 40–47, 48;…, 90–97, 100–107.
    for sgr in screen.split("\x1b[").skip(1) {
        let params = sgr.split('m').next().unwrap_or("");
        for p in params.split(';') {
            let n: u32 = p.parse().unwrap_or(0);
            assert!(
                !matches!(n, 30..=38 | 40..=48 | 90..=97 | 100..=107),
                "colour SGR {params:?} under NO_COLOR"
            );
        }
    }
    // Modifiers still mark what matters (the help overlay's bold titles).
    assert!(screen.contains("\x1b[1m"), "no modifiers at all");
    t.keys(&["Escape", "q"]);
}
