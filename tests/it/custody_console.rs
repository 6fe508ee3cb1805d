//! Key custody at the console, in a real terminal (tmux at 80×24): the custodians are
//! taken at the roll call, each is called in turn, reads their share off a cleared
//! screen and types it back; no later screen, nor the terminal's history, shows an
//! earlier custodian's share. The console is killed (SIGKILL) while a share is on
//! screen and opened again: the run resumes, hands every share out afresh (the key was
//! never stored), and the token ends with one wrap key, which the shares typed in the
//! second session rebuild (rusty_secrets; openssl's check value is the transcript's).

use std::path::Path;
use std::process::Command;

use crate::support;
use crate::support::tmux::Tmux;

const PIN: &str = "246810";
const SO_PIN: &str = "97310";

const SCRIPT: &str = r#"
[ceremony]
id = "custody-console"
title = "Custody at the console"
version = 1
token = "officiant-rehearsal"

[roles]
administrator = 1
custodian = 1
witness = 1

[[step]]
id = "login"
kind = "login"
pin = "user"

[[step]]
id = "gen"
kind = "generate-key"
algorithm = "ec-p256"
label = "root-p256"
key-id = "01"
exportable-under-wrap = true

[[step]]
id = "gen-wrap"
kind = "generate-wrap-key"
label = "backup-wrap"
key-id = "0200"
threshold = 2
shares = 3
custodian-role = "custodian"
so-login = "so"
user-login = "user"

[[step]]
id = "backup"
kind = "backup"
wrap-key = "backup-wrap"
keys = ["root-p256"]
"#;

/// The share on screen, as its custodian copies it: `T-I-` and the groups.
fn share_on(screen: &str) -> String {
    let mut head = String::new();
    let mut data = String::new();
    for line in screen.lines() {
        let inner = line.trim_matches('│').trim();
        if head.is_empty() && inner.len() == 4 && inner.ends_with('-') {
            head = inner.to_string();
        } else if !head.is_empty() {
            let mut words = inner.split_whitespace();
            if words.next().is_some_and(|n| n.parse::<u8>().is_ok()) {
                data.extend(words);
            }
        }
        if line.contains("Letters are case-sensitive") {
            break;
        }
    }
    assert!(
        !head.is_empty() && data.len() > 60,
        "no share on:\n{screen}"
    );
    format!("{head}{data}")
}

/// Groups of five of a share's data, as the screen shows them.
fn groups(share: &str) -> Vec<String> {
    share[4..]
        .chars()
        .collect::<Vec<_>>()
        .chunks(5)
        .filter(|c| c.len() == 5)
        .map(|c| c.iter().collect())
        .collect()
}

fn shows_any(screen: &str, share: &str) -> Option<String> {
    groups(share).into_iter().find(|g| screen.contains(g))
}

/// Hand out the three shares: pick the first custodian offered, copy the share off the
/// screen, hide it, type it back. `earlier`: shares that must not appear again. Returns
/// the shares in order; with `kill_at`, stops with share `kill_at` on screen.
fn hand_out(t: &Tmux, earlier: &mut Vec<String>, kill_at: Option<usize>) -> Vec<String> {
    let mut got = Vec::new();
    for i in 1..=3usize {
        let s = t.wait_for(&format!("Share {i} of 3 (gen-wrap) goes to"), 60);
        for e in earlier.iter() {
            assert!(
                shows_any(&s, e).is_none(),
                "an earlier share on the picker:\n{s}"
            );
        }
        t.keys(&["Enter"]);
        let s = t.wait_for(&format!("Share {i} of 3 · for"), 10);
        let share = share_on(&s);
        for e in earlier.iter() {
            assert!(
                shows_any(&s, e).is_none(),
                "an earlier share with share {i}:\n{s}"
            );
        }
        if kill_at == Some(i) {
            earlier.push(share.clone());
            got.push(share);
            return got;
        }
        t.keys(&["Enter"]);
        // The share leaves (the screen is blanked first, then the entry comes).
        let blanked = t.wait_change(&s, 10);
        assert_eq!(shows_any(&blanked, &share), None, "{blanked}");
        let s = t.wait_for("The share is hidden", 10);
        assert_eq!(
            shows_any(&s, &share),
            None,
            "the share stays on screen:\n{s}"
        );
        t.text(&share);
        let typed = t.screen();
        assert_eq!(
            shows_any(&typed, &share),
            None,
            "typing is echoed:\n{typed}"
        );
        t.keys(&["Enter"]);
        earlier.push(share.clone());
        got.push(share);
    }
    got
}

/// Take the roll call: Ada administrator, Walt witness, three custodians.
fn roll_call(t: &Tmux) {
    t.wait_for("Who is present", 20);
    // Roles in the script's order: administrator, custodian, witness.
    for (name, downs) in [
        ("Ada Admin", 0),
        ("Walt Witness", 2),
        ("Carol Custodian", 1),
        ("Dave Custodian", 1),
        ("Erin Custodian", 1),
    ] {
        t.text(name);
        t.keys(&["Enter"]);
        t.wait_for(&format!("Roles of {name}"), 5);
        for _ in 0..downs {
            t.keys(&["Down"]);
        }
        t.keys(&["Space", "Enter"]);
        t.wait_for(&format!("✓ {name}"), 5);
    }
    t.keys(&["Enter"]);
}

/// Answer the secret prompt, and wait for it to close (a later look must not see it).
fn secret(t: &Tmux, prompt: &str, value: &str) {
    t.wait_for(prompt, 30);
    t.text(value);
    t.keys(&["Enter"]);
    t.wait_gone(prompt, 30);
}

/// The reviewer (the only witness) acknowledges step `step`'s result, and the review
/// leaves (two reviews in a row look alike: an Enter must not land on the next one
/// before it is drawn, or between them where it does nothing).
fn acknowledge(t: &Tmux, step: &str) {
    let reviewing =
        |s: &str| s.contains("Read the result above aloud") && s.contains(&format!("✓ {step}  ["));
    t.wait_until(&format!("review of {step}"), 60, reviewing);
    t.keys(&["Enter"]);
    t.wait_until(&format!("end of the review of {step}"), 30, |s| {
        !reviewing(s)
    });
}

fn kcv(openssl: &Path, work: &Path, shares: &[&str]) -> String {
    let secret =
        rusty_secrets::recover_secret(shares.iter().map(|s| s.to_string()).collect()).unwrap();
    let zero = work.join("zero-block.bin");
    std::fs::write(&zero, [0u8; 16]).unwrap();
    let out = support::run(
        Command::new(openssl)
            .args(["enc", "-aes-256-ecb", "-nopad", "-K"])
            .arg(hex::encode(&secret[20..]))
            .arg("-in")
            .arg(&zero),
    );
    assert!(out.status.success());
    hex::encode(&out.stdout[..3])
}

#[test]
fn custodians_take_their_shares_at_the_console_and_a_killed_hand_out_resumes() {
    let tmux = support::oracle("tmux").expect("tmux is the terminal here: install it");
    let openssl = support::oracle("openssl").expect("openssl is the judge here: install it");
    let _ = tmux;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("ceremonies")).unwrap();
    std::fs::write(d.join("ceremonies/custody.toml"), SCRIPT).unwrap();
    std::fs::write(d.join("so.pin"), SO_PIN).unwrap();
    std::fs::write(d.join("user.pin"), PIN).unwrap();
    let bin = env!("CARGO_BIN_EXE_officiant");
    support::run_ok(
        support::officiant()
            .current_dir(d)
            .args(["init-token", "--backend", "sim:rehearsal", "--label"])
            .args(["officiant-rehearsal", "--so-pin-source", "file:so.pin"])
            .args([
                "--pin-source",
                "file:user.pin",
                "--transcript",
                "init.jsonl",
            ]),
    );

    let t = Tmux::new("officiant-custody", "console");
    t.start_shell(80, 24, d);
    t.text(&format!("{bin} --out records; echo CONSOLE-EXIT=$?"));
    t.keys(&["Enter"]);
    t.wait_for("Custody at the console", 20);
    t.keys(&["Enter"]);
    t.wait_for("Press Enter to begin", 10);
    t.keys(&["Enter"]);
    roll_call(&t);
    secret(&t, "PIN (user)", PIN);
    acknowledge(&t, "gen"); // the key pair
    secret(&t, "SO PIN (so)", SO_PIN);
    let mut seen = Vec::new();
    // Killed with share 2 on screen.
    let first = hand_out(&t, &mut seen, Some(2));
    let pid = t.program_pid();
    support::run_ok(Command::new("kill").args(["-KILL", &pid.to_string()]));
    t.wait_for_line("CONSOLE-EXIT=", 10);

    // Opened again: the journal resumes the run at the interrupted hand-out. (A SIGKILL
    // leaves the terminal as it was, share and all: `reset` first, as after any crash.)
    // The killed console left the terminal raw: Ctrl-J ends the line.
    t.text(&format!(
        "stty sane; reset; {bin} --out records; echo CONSOLE-EXIT=$?"
    ));
    t.keys(&["C-j"]);
    t.wait_for("Custody at the console", 20);
    t.keys(&["Enter"]);
    t.wait_for("Press Enter to resume", 10);
    t.keys(&["Enter"]);
    roll_call(&t);
    secret(&t, "PIN (user)", PIN);
    secret(&t, "SO PIN (so)", SO_PIN);
    let shares = hand_out(&t, &mut seen, None);
    acknowledge(&t, "gen-wrap"); // the wrap key
    acknowledge(&t, "backup"); // the backup
    t.wait_for("Ceremony complete", 60);
    let history = t.history();
    for sh in &seen {
        assert_eq!(
            shows_any(&history, sh),
            None,
            "a share in the terminal's history:\n{history}"
        );
    }
    t.keys(&["q"]);
    t.wait_for_line("CONSOLE-EXIT=", 10);

    // One wrap key on the token: the one whose shares the second session handed out.
    let out = d.join("records/custody-console");
    let transcript = std::fs::read_to_string(out.join("transcript.jsonl")).unwrap();
    let done: serde_json::Value = transcript
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["type"] == "step-done" && e["data"]["id"] == "gen-wrap")
        .expect("gen-wrap done");
    let details = &done["data"]["result"]["details"];
    let kcv_new = kcv(&openssl, d, &[&shares[0], &shares[2]]);
    assert_eq!(details["check_value"], kcv_new.as_str(), "{details}");
    assert_eq!(kcv(&openssl, d, &[&shares[1], &shares[0]]), kcv_new);
    let holders: Vec<String> = details["custodians"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["custodian"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        holders,
        ["Carol Custodian", "Dave Custodian", "Erin Custodian"]
    );
    // The interrupted hand-out's shares are void: they rebuild another key.
    assert_ne!(kcv(&openssl, d, &[&first[0], &shares[1]]), kcv_new);
    let list = support::run_ok(
        support::officiant()
            .current_dir(d)
            .args(["objects", "--backend", "sim:rehearsal", "--json"])
            .args(["--pin-source", "file:user.pin"]),
    );
    assert_eq!(list.matches("\"wrap-key\"").count(), 1, "{list}");
    // No share in anything the runs left.
    for (p, bytes) in walk(d) {
        for sh in &seen {
            for piece in [&sh[4..24], &sh[24..44], &sh[44..64]] {
                assert!(
                    !bytes.windows(20).any(|w| w == piece.as_bytes()),
                    "a share in {}",
                    p.display()
                );
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}
