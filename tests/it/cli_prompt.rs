//! `prompt` as a secret source, in a real terminal (tmux): a PIN typed at the prompt is
//! never echoed, a new PIN or SO PIN is typed twice and a mismatch sets nothing, a
//! headless ceremony asks for the new SO PIN twice, and without a terminal the command
//! says so in one line.

use std::path::Path;

use crate::support;
use crate::support::tmux::Tmux;

const SO: &str = "canary-so-prompt-1801";
const PIN: &str = "canary-pin-prompt-4711";
const WRONG: &str = "canary-wrong-prompt-68000";

/// Type `secret` at the `n`th prompt (counting from 1) of the lines that start with
/// `prompt`, once it shows and the terminal has stopped echoing, and press Enter.
fn answer(t: &Tmux, prompt: &str, n: usize, secret: &str) {
    let t0 = std::time::Instant::now();
    while t
        .history()
        .lines()
        .filter(|l| l.starts_with(prompt))
        .count()
        < n
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "prompt {prompt:?} #{n} did not appear; screen:\n{}",
            t.screen()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    t.wait_for_no_echo(20);
    t.text(secret);
    t.keys(&["Enter"]);
}

/// Run a shell command line in the session and wait for its `EXIT<tag>=N` line.
fn run_line(t: &Tmux, line: &str, tag: &str) {
    t.text(&format!("{line}; echo EXIT{tag}=$?"));
    t.keys(&["Enter"]);
}

fn exit_code(t: &Tmux, tag: &str) -> i32 {
    let needle = format!("EXIT{tag}=");
    let s = t.wait_for_line(&needle, 30);
    s.trim()
        .trim_start_matches(&needle)
        .parse()
        .unwrap_or_else(|_| panic!("{s:?}"))
}

fn no_canary(t: &Tmux, dir: &Path) {
    let all = t.history();
    for c in [SO, PIN, WRONG] {
        assert!(!all.contains(c), "{c} was echoed:\n{all}");
    }
    for e in walk(dir) {
        let bytes = std::fs::read(&e).unwrap();
        for c in [SO, PIN, WRONG] {
            assert!(
                !bytes.windows(c.len()).any(|w| w == c.as_bytes()),
                "{c} in {}",
                e.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}

#[test]
fn pins_at_a_prompt_are_masked_and_new_ones_typed_twice() {
    let (Some(_), Some(_)) = (support::oracle("tmux"), support::oracle("openssl")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fw.bin"), vec![0x42; 3000]).unwrap();
    let bin = env!("CARGO_BIN_EXE_officiant");
    let common = "--backend sim:tok --transcript t.jsonl";
    let t = Tmux::new("officiant-prompt", "prompt");
    t.start_shell(120, 40, d);

    // A mismatched second entry of the new SO PIN sets nothing.
    run_line(
        &t,
        &format!("{bin} init-token --label p --so-pin-source prompt --pin-source prompt {common}"),
        "1",
    );
    answer(&t, "new SO PIN: ", 1, SO);
    answer(&t, "new SO PIN (again): ", 1, "canary-typo");
    assert_eq!(exit_code(&t, "1"), 1);
    assert!(
        t.history()
            .contains("the two entries for new SO PIN do not match"),
        "{}",
        t.history()
    );
    assert!(
        !d.join("tok").join("store.json").exists(),
        "a token was made"
    );

    // Typed twice alike: the token is made with those PINs.
    run_line(
        &t,
        &format!("{bin} init-token --label p --so-pin-source prompt --pin-source prompt {common}"),
        "2",
    );
    answer(&t, "new SO PIN: ", 2, SO);
    answer(&t, "new SO PIN (again): ", 2, SO);
    answer(&t, "new user PIN: ", 1, PIN);
    answer(&t, "new user PIN (again): ", 1, PIN);
    assert_eq!(exit_code(&t, "2"), 0, "{}", t.history());

    // Using a PIN: asked once.
    run_line(
        &t,
        &format!("{bin} generate-key --label k --algorithm ec-p256 --pin-source prompt {common}"),
        "3",
    );
    answer(&t, "user PIN: ", 1, PIN);
    assert_eq!(exit_code(&t, "3"), 0, "{}", t.history());
    run_line(
        &t,
        &format!("{bin} sign --key k --format raw fw.bin -o fw.sig --pin-source prompt {common}"),
        "4",
    );
    answer(&t, "user PIN: ", 2, PIN);
    assert_eq!(exit_code(&t, "4"), 0, "{}", t.history());
    // A wrong PIN at the prompt: refused, retries shown, nothing written.
    run_line(
        &t,
        &format!("{bin} sign --key k --format raw fw.bin -o fw2.sig --pin-source prompt {common}"),
        "5",
    );
    answer(&t, "user PIN: ", 3, WRONG);
    assert_eq!(exit_code(&t, "5"), 1);
    assert!(t.history().contains("wrong user PIN"), "{}", t.history());
    assert!(!d.join("fw2.sig").exists());

    // openssl judges the signature made with the PIN typed at the prompt.
    let pem = d.join("k.pem");
    let out = support::officiant()
        .args(["export-pubkey", "--backend", "sim:tok", "--key", "k", "-o"])
        .arg(&pem)
        .current_dir(d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let ok = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pem)
        .arg("-signature")
        .arg(d.join("fw.sig"))
        .arg(d.join("fw.bin"))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");

    no_canary(&t, d);
}

/// The headless runner asks for a secret the step sets (the SO PIN of init-token) twice
/// when its source is `prompt`.
#[test]
fn a_ceremony_asks_twice_for_a_new_so_pin_at_the_prompt() {
    let Some(_) = support::oracle("tmux") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies");
    for f in ["rehearsal-demo.toml", "rehearsal-demo.answers.toml"] {
        std::fs::copy(src.join(f), d.join(f)).unwrap();
    }
    let secrets = d.join("rehearsal-secrets");
    std::fs::create_dir(&secrets).unwrap();
    for e in std::fs::read_dir(src.join("rehearsal-secrets")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), secrets.join(e.file_name())).unwrap();
    }
    let answers = d.join("rehearsal-demo.answers.toml");
    let text = std::fs::read_to_string(&answers).unwrap();
    let changed = text.replace("so = \"file:rehearsal-secrets/so.pin\"", "so = \"prompt\"");
    assert_ne!(changed, text, "the demo's SO PIN source moved");
    std::fs::write(&answers, changed).unwrap();

    let bin = env!("CARGO_BIN_EXE_officiant");
    let t = Tmux::new("officiant-prompt-run", "run");
    t.start_shell(160, 40, d);
    run_line(
        &t,
        &format!(
            "{bin} run rehearsal-demo.toml --answers rehearsal-demo.answers.toml --backend sim:tok --out out"
        ),
        "R",
    );
    answer(&t, "secret \"so\" for step", 1, SO);
    answer(&t, "secret \"so\" for step", 2, SO);
    assert_eq!(exit_code(&t, "R"), 0, "{}", t.history());
    assert!(t.history().contains("ceremony complete"), "{}", t.history());
    no_canary(&t, d);
}

#[test]
fn prompt_without_a_terminal_is_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("fw.bin"), b"payload").unwrap();
    let out = support::officiant()
        .args([
            "sign",
            "--backend",
            "sim:tok",
            "--key",
            "k",
            "--format",
            "raw",
        ])
        .args(["fw.bin", "-o", "fw.sig", "--pin-source", "prompt"])
        .current_dir(d)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--pin-source: no terminal to prompt for user PIN"),
        "{err}"
    );
    assert!(!d.join("fw.sig").exists());
}
