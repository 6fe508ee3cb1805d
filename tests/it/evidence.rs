//! Evidence anchored, not just chained (issue 11, item 6; issue 12, items 1 and 6).
//!
//! `officiant transcript verify` checks the chain against the head read from paper (hex
//! or PGP words), re-hashes the outputs the transcript records, reports the run status
//! and refuses an incomplete run, checks the evidence key's signature over the head
//! (openssl is the judge of that signature), and checks a YubiHSM's audit-log chain.
//! transcript.md shows the roster and every acknowledgement, and a resumed ceremony once.

use std::path::Path;
use std::process::{Command, Output};

use officiant::ceremony::transcript::{self, Writer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support;
use crate::support::demo::Demo;

fn verify(args: &[&str]) -> Output {
    support::run(
        support::officiant()
            .args(["transcript", "verify"])
            .args(args),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "refused:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Refused: non-zero exit, a one-line cause containing every needle.
#[track_caller]
fn refused(out: &Output, needles: &[&str]) -> String {
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "accepted:\n{}{err}",
        text(&out.stdout)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for n in needles {
        assert!(
            err.contains(n) || text(&out.stdout).contains(n),
            "{n:?} missing from: {}{err}",
            text(&out.stdout)
        );
    }
    err
}

/// A finished fast demo run: (demo, head hex, head words) as `run` printed them.
fn demo_run(edit: impl Fn(&str) -> String) -> (Demo, String, String) {
    let d = Demo::new(true);
    let script = std::fs::read_to_string(&d.script).unwrap();
    std::fs::write(&d.script, edit(&script)).unwrap();
    let out = d.run();
    let stdout = ok(&out);
    let head = stdout
        .lines()
        .find_map(|l| l.strip_prefix("transcript head (SHA-256 of the last entry): "))
        .expect("run prints the head")
        .trim()
        .to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("transcript head"))
        .unwrap();
    let words = lines[at + 2].trim().to_string();
    assert_eq!(words.split_whitespace().count(), 32, "{stdout}");
    (d, head, words)
}

/// Rewrite a transcript entry by entry through a fresh Writer (every hash recomputed),
/// letting `edit` change or drop entries: what someone with write access can do.
fn rechain(from: &Path, to: &Path, edit: impl Fn(&transcript::Entry) -> Option<Value>) {
    let v = transcript::verify(from).unwrap();
    let mut w = Writer::open(to).unwrap();
    for e in &v.entries {
        let Some(data) = edit(e) else { continue };
        if e.kind == "close" {
            w.close(data["status"].as_str().unwrap()).unwrap();
        } else {
            w.append(&e.kind, data).unwrap();
        }
    }
}

#[test]
fn the_head_read_from_paper_anchors_the_chain() {
    let (d, head, words) = demo_run(|s| s.to_string());
    let tr = d.out.join("transcript.jsonl");
    let shown = ok(&verify(&[s(&tr), "--head", &head]));
    assert!(shown.contains("complete"), "{shown}");
    assert!(shown.contains(&head), "{shown}");
    // As the witnesses read it: PGP words, hex groups in upper case.
    ok(&verify(&[s(&tr), "--head", &words]));
    ok(&verify(&[s(&tr), "--head", &words.to_uppercase()]));
    let groups: Vec<String> = hex::decode(&head)
        .unwrap()
        .chunks(4)
        .map(hex::encode_upper)
        .collect();
    ok(&verify(&[s(&tr), "--head", &groups.join(" ")]));

    // A forged transcript with every hash recomputed verifies as a chain, never against
    // the head on paper.
    let forged = d.out.join("forged.jsonl");
    rechain(&tr, &forged, |e| {
        let mut data = e.data.clone();
        if e.kind == "sign-off" {
            data["name"] = json!("Mallory");
        }
        Some(data)
    });
    ok(&verify(&[s(&forged)]));
    refused(&verify(&[s(&forged), "--head", &head]), &["head"]);
    refused(&verify(&[s(&forged), "--head", &words]), &["head"]);
    // A word list with one word wrong, or one missing, is named as such.
    let mut w: Vec<&str> = words.split_whitespace().collect();
    // Two words of the same parity (so both stay valid there) that differ: the list
    // then reads another head. (Bytes 0 and 2 may be equal: swapping them changes
    // nothing.)
    let i = (0..w.len() - 2).find(|&i| w[i] != w[i + 2]).unwrap();
    w.swap(i, i + 2);
    refused(&verify(&[s(&tr), "--head", &w.join(" ")]), &["head"]);
    refused(&verify(&[s(&tr), "--head", &w[1..].join(" ")]), &["head"]);
    refused(&verify(&[s(&tr), "--head", "not a head"]), &["--head"]);
}

#[test]
fn verify_reports_the_run_status_and_refuses_what_did_not_finish() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);

    // Only a close entry: no session was ever opened.
    let mut w = Writer::open(&p("close-only.jsonl")).unwrap();
    w.close("complete").unwrap();
    refused(&verify(&[s(&p("close-only.jsonl"))]), &["open"]);

    // A session that stopped with an error, then one that completed.
    let mut w = Writer::open(&p("two.jsonl")).unwrap();
    w.append("open", json!({"script": "x.toml"})).unwrap();
    w.append(
        "step-failed",
        json!({"step": 0, "id": "a", "error": "disk full"}),
    )
    .unwrap();
    w.append("stopped", json!({"error": "disk full"})).unwrap();
    w.close("stopped").unwrap();
    let first_close = std::fs::read(p("two.jsonl")).unwrap();
    w.append("open", json!({"script": "x.toml", "resumed": true}))
        .unwrap();
    w.close("complete").unwrap();
    let shown = ok(&verify(&[s(&p("two.jsonl"))]));
    assert!(shown.contains("complete"), "{shown}");
    assert!(shown.contains("2 sessions"), "{shown}");

    // Cut at the earlier session's close: the run stopped there.
    std::fs::write(p("cut.jsonl"), &first_close).unwrap();
    refused(&verify(&[s(&p("cut.jsonl"))]), &["stopped"]);
    let shown = ok(&verify(&[s(&p("cut.jsonl")), "--allow-incomplete"]));
    assert!(shown.contains("stopped"), "{shown}");
    assert!(shown.contains("disk full"), "{shown}");

    // A run that was killed: no closing entry at all.
    let mut w = Writer::open(&p("killed.jsonl")).unwrap();
    w.append("open", json!({"script": "x.toml"})).unwrap();
    w.append("step-start", json!({"step": 0, "id": "a"}))
        .unwrap();
    refused(&verify(&[s(&p("killed.jsonl"))]), &["interrupted"]);
    let shown = ok(&verify(&[s(&p("killed.jsonl")), "--allow-incomplete"]));
    assert!(shown.contains("interrupted"), "{shown}");
}

#[test]
fn out_dir_files_are_rehashed_against_the_transcript() {
    let (d, head, _) = demo_run(|s| s.to_string());
    let tr = d.out.join("transcript.jsonl");
    let shown = ok(&verify(&[s(&tr), "--head", &head, "--out", s(&d.out)]));
    assert!(shown.contains("6 output files match"), "{shown}");
    // Swap one output for other bytes, remove another.
    let swapped = d.out.join("demo-ecdsa-p256.pub.der");
    std::fs::remove_file(&swapped).unwrap();
    std::fs::write(&swapped, b"not the key").unwrap();
    std::fs::remove_file(d.out.join("demo-imported-p384.pub.pem")).unwrap();
    let out = verify(&[s(&tr), "--head", &head, "--out", s(&d.out)]);
    let err = refused(
        &out,
        &["demo-ecdsa-p256.pub.der", "demo-imported-p384.pub.pem"],
    );
    assert!(err.contains("2 output files"), "{err}");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("differs"), "{stdout}");
    assert!(stdout.contains("missing"), "{stdout}");
}

/// The message the evidence key signs: the head before the signature, as text.
fn evidence_message(head: &str) -> String {
    format!("officiant transcript head {head}\n")
}

#[test]
fn the_evidence_key_signs_the_head_and_verify_checks_it() {
    let (d, head, _) = demo_run(|s| {
        s.replace(
            "token = \"officiant-demo\"",
            "token = \"officiant-demo\"\nevidence-key = \"demo-ecdsa-p256\"",
        )
    });
    let tr = d.out.join("transcript.jsonl");
    let v = transcript::verify(&tr).unwrap();
    let n = v.entries.len();
    let ev = &v.entries[n - 2];
    assert_eq!(
        ev.kind, "evidence",
        "the signature comes right before close"
    );
    assert_eq!(v.entries[n - 1].kind, "close");
    assert_eq!(ev.data["key"], "demo-ecdsa-p256");
    assert_eq!(ev.data["head"].as_str().unwrap(), ev.prev, "signed head");
    assert_eq!(
        ev.data["message"].as_str().unwrap(),
        evidence_message(&ev.prev)
    );

    // openssl judges the signature with the key the ceremony exported.
    let pubkey = d.out.join("demo-ecdsa-p256.pub.pem");
    let dir = tempfile::tempdir().unwrap();
    let (msg, sig) = (dir.path().join("msg"), dir.path().join("sig.der"));
    std::fs::write(&msg, evidence_message(&ev.prev)).unwrap();
    std::fs::write(
        &sig,
        hex::decode(ev.data["signature"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    if support::oracle("openssl").is_some() {
        let out = support::run(Command::new("openssl").args([
            "dgst",
            "-sha256",
            "-verify",
            s(&pubkey),
            "-signature",
            s(&sig),
            s(&msg),
        ]));
        assert!(
            text(&out.stdout).contains("Verified OK"),
            "{}",
            text(&out.stderr)
        );
    }

    let shown = ok(&verify(&[s(&tr), "--head", &head, "--pubkey", s(&pubkey)]));
    assert!(shown.contains("evidence signature"), "{shown}");
    assert!(shown.contains("valid"), "{shown}");
    // Without --pubkey: present, and said to be unchecked.
    let shown = ok(&verify(&[s(&tr)]));
    assert!(shown.contains("unchecked"), "{shown}");
    // Another key is not the evidence key.
    let other = d.out.join("demo-imported-p384.pub.pem");
    refused(&verify(&[s(&tr), "--pubkey", s(&other)]), &["evidence"]);
    // A forger who drops the signature and recomputes the chain is caught by --pubkey.
    let forged = d.out.join("forged.jsonl");
    rechain(&tr, &forged, |e| {
        (e.kind != "evidence").then(|| e.data.clone())
    });
    refused(
        &verify(&[s(&forged), "--pubkey", s(&pubkey)]),
        &["evidence"],
    );
    // And one who keeps it but edits what it covers.
    rechain(&tr, &d.out.join("forged2.jsonl"), |e| {
        let mut data = e.data.clone();
        if e.kind == "sign-off" {
            data["name"] = json!("Mallory");
        }
        Some(data)
    });
    refused(
        &verify(&[s(&d.out.join("forged2.jsonl")), "--pubkey", s(&pubkey)]),
        &["evidence"],
    );
}

#[test]
fn an_evidence_key_the_script_never_makes_is_refused_by_check() {
    let d = Demo::new(true);
    let script = std::fs::read_to_string(&d.script).unwrap();
    std::fs::write(
        &d.script,
        script.replace(
            "token = \"officiant-demo\"",
            "token = \"officiant-demo\"\nevidence-key = \"no-such-key\"",
        ),
    )
    .unwrap();
    let out = support::run(support::officiant().arg("check").arg(&d.script));
    refused(&out, &["ceremony.evidence-key", "no-such-key"]);
}

/// One YubiHSM log entry as the device returns it (32 bytes), chained to `prev`.
fn log_entry(item: u16, cmd: u8, tick: u32, prev: &[u8; 16]) -> ([u8; 32], Value) {
    let mut raw = [0u8; 32];
    raw[0..2].copy_from_slice(&item.to_be_bytes());
    raw[2] = cmd;
    raw[3..5].copy_from_slice(&8u16.to_be_bytes());
    raw[5..7].copy_from_slice(&1u16.to_be_bytes());
    raw[7..9].copy_from_slice(&0x10u16.to_be_bytes());
    raw[9..11].copy_from_slice(&0xffffu16.to_be_bytes());
    raw[11] = cmd | 0x80;
    raw[12..16].copy_from_slice(&tick.to_be_bytes());
    let mut h = Sha256::new();
    h.update(&raw[..16]);
    h.update(prev);
    raw[16..].copy_from_slice(&h.finalize()[..16]);
    let v = json!({
        "item": item, "command": format!("Code{cmd}"), "length": 8, "session_key": 1,
        "target_key": 16, "second_key": 65535, "result": "Success", "tick": tick,
        "digest": hex::encode(&raw[16..]), "raw": hex::encode(raw),
    });
    (raw, v)
}

fn audit_transcript(path: &Path, reports: &[Vec<Value>]) {
    let mut w = Writer::open(path).unwrap();
    w.append("open", json!({"script": "y.toml"})).unwrap();
    for (i, entries) in reports.iter().enumerate() {
        w.append("step-start", json!({"step": i, "id": format!("s{i}")}))
            .unwrap();
        w.append(
            "step-done",
            json!({"step": i, "id": format!("s{i}"), "kind": "generate-key", "result": {
                "device_audit": {"unlogged_boot_events": 0, "unlogged_auth_events": 0,
                                 "entries": entries, "note": null}}}),
        )
        .unwrap();
    }
    w.close("complete").unwrap();
}

#[test]
fn the_device_audit_log_chain_is_checked_across_steps() {
    let dir = tempfile::tempdir().unwrap();
    let mut prev = [0x5au8; 16];
    let mut all = Vec::new();
    for item in 7..13u16 {
        let (raw, v) = log_entry(item, 0x46, 1000 + u32::from(item), &prev);
        prev.copy_from_slice(&raw[16..]);
        all.push(v);
    }
    let reports = vec![all[..2].to_vec(), all[2..5].to_vec(), all[5..].to_vec()];
    let good = dir.path().join("good.jsonl");
    audit_transcript(&good, &reports);
    let shown = ok(&verify(&[s(&good)]));
    assert!(shown.contains("device audit log"), "{shown}");
    assert!(shown.contains("6 entries"), "{shown}");
    assert!(shown.contains("chain intact"), "{shown}");

    // An entry altered (its raw bytes and fields) without recomputing the device's digests.
    let mut bad = reports.clone();
    let mut raw = hex::decode(bad[1][1]["raw"].as_str().unwrap()).unwrap();
    raw[12..16].copy_from_slice(&5u32.to_be_bytes());
    bad[1][1]["raw"] = json!(hex::encode(&raw));
    bad[1][1]["tick"] = json!(5);
    let p = dir.path().join("altered.jsonl");
    audit_transcript(&p, &bad);
    refused(&verify(&[s(&p)]), &["device audit", "item 10"]);

    // A field that disagrees with the device's bytes.
    let mut bad = reports.clone();
    bad[2][0]["target_key"] = json!(99);
    let p = dir.path().join("field.jsonl");
    audit_transcript(&p, &bad);
    refused(&verify(&[s(&p)]), &["device audit", "item 12"]);

    // An entry dropped between two steps.
    let mut bad = reports.clone();
    bad[1].remove(0);
    let p = dir.path().join("dropped.jsonl");
    audit_transcript(&p, &bad);
    refused(&verify(&[s(&p)]), &["device audit", "item 9"]);
}

#[test]
fn transcript_md_shows_roster_acknowledgements_and_a_resume_once() {
    let d = Demo::new(true);
    // Killed at a crash point after the first steps, then resumed.
    let out = d
        .command()
        .env("OFFICIANT_TEST_CRASH_AT", "12")
        .output()
        .unwrap();
    assert!(!out.status.success());
    ok(&d.run());
    let md = std::fs::read_to_string(d.out.join("transcript.md")).unwrap();
    // Roster in the header, before the first session.
    let first_session = md.find("## Session").expect("a session heading");
    let header = &md[..first_session];
    assert!(header.contains("Ada Admin (rehearsal)"), "{header}");
    assert!(header.contains("Walt Witness (rehearsal)"), "{header}");
    assert!(header.contains("witness"), "{header}");
    // Each acknowledgement under its step.
    let acks = md.matches("read aloud and matched").count();
    assert_eq!(acks, 6, "{md}");
    // A step completed before the crash appears once; the resume is one marker.
    let init = md
        .lines()
        .filter(|l| l.contains("`init`") && l.starts_with("### "))
        .count();
    assert_eq!(init, 1, "{md}");
    assert!(!md.contains("completed in an earlier session"), "{md}");
    let resumes = md
        .lines()
        .filter(|l| l.to_lowercase().contains("resumed"))
        .count();
    assert_eq!(resumes, 1, "{md}");
    assert_eq!(md.matches("Script SHA-256").count(), 1, "{md}");
}
