//! Scripts, answers files, journals and transcripts (with a signed sign-off).

use super::*;

fn transcript_seed() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("transcript.jsonl");
    let mut w = officiant::ceremony::transcript::Writer::open(&p).unwrap();
    w.append(
        "start",
        serde_json::json!({"script": "demo.toml", "sha256": "00ff"}),
    )
    .unwrap();
    w.append(
        "step",
        serde_json::json!({"id": "gen", "sign-off": ["alice"], "objects": [{"label": "k"}]}),
    )
    .unwrap();
    w.close("complete").unwrap();
    std::fs::read(&p).unwrap()
}

const JOURNAL: &str = concat!(
    r#"{"record":"run","script":"demo.toml","script_sha256":"ab01"}"#,
    "\n",
    r#"{"record":"started","step":0,"id":"gen"}"#,
    "\n",
    r#"{"record":"completed","step":0,"id":"gen","result":{"deleted":1,"adopted":true}}"#,
    "\n",
    r#"{"record":"started","step":1,"id":"x"}"#,
    "\n",
    r#"{"record":"failed","step":1,"id":"x"}"#,
    "\n",
    r#"{"record":"complete"}"#,
    "\n",
);

#[test]
fn script() {
    let mut seeds = files("ceremonies", |n| {
        n.ends_with(".toml") && !n.contains(".answers.")
    });
    seeds.extend(files("tests/fixtures", |n| n.ends_with(".toml")));
    assert!(seeds.len() >= 9);
    assert_valid("script", entry::script_check, &seeds);
    check("script", entry::script_check, &bytes(&seeds), 0, 400);
}

#[test]
fn answers() {
    let seeds = files("ceremonies", |n| n.ends_with(".answers.toml"));
    assert!(seeds.len() >= 8);
    assert_valid("answers", entry::answers_check, &seeds);
    check("answers", entry::answers_check, &bytes(&seeds), 0, 300);
}

#[test]
fn journal() {
    let seeds = vec![("built journal".to_string(), JOURNAL.as_bytes().to_vec())];
    assert_valid("journal", entry::journal_load, &seeds);
    check("journal", entry::journal_load, &bytes(&seeds), 400, 300);
}

#[test]
fn transcript() {
    let seeds = vec![("built transcript".to_string(), transcript_seed())];
    assert_valid("transcript", entry::transcript_verify, &seeds);
    check(
        "transcript",
        entry::transcript_verify,
        &bytes(&seeds),
        0,
        600,
    );
}

/// A transcript with one signed sign-off that verifies: an Ed25519 key made from a fixed
/// seed signs the message (ssh-key's SSHSIG).
fn signoff_seed() -> Vec<u8> {
    use officiant::approvals::signoff;
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]);
    let key = ssh_key::PrivateKey::from(pair);
    let allowed = format!(
        "\"Walt Witness\" {}\n",
        key.public_key().to_openssh().unwrap()
    );
    let script = "ab".repeat(32);
    let msg = signoff::message(&script, "gen", "h0");
    let sig = key
        .sign("officiant-signoff", ssh_key::HashAlg::Sha512, &msg)
        .unwrap();
    let entry = |seq: u64, kind: &str, data: serde_json::Value, hash: &str| {
        serde_json::json!({"seq": seq, "time": "2026-11-22T02:00:00Z", "prev": "", "type": kind, "data": data, "hash": hash})
            .to_string()
    };
    let lines = [
        entry(
            0,
            "open",
            serde_json::json!({"script_sha256": script}),
            "h0",
        ),
        entry(
            1,
            "allowed-signers",
            serde_json::json!({
                "text": allowed,
                "sha256": hex::encode(officiant::output::sha256(allowed.as_bytes())),
                "roles": ["witness"],
            }),
            "h1",
        ),
        entry(
            2,
            "sign-off",
            serde_json::json!({
                "id": "gen",
                "name": "Walt Witness",
                "role": "witness",
                "principal": "Walt Witness",
                "key": officiant::approvals::signers::fingerprint(key.public_key().key_data()),
                "head": "h0",
                "signature": officiant::approvals::agent::armor(&sig).unwrap(),
            }),
            "h2",
        ),
    ];
    format!("{}\n", lines.join("\n")).into_bytes()
}

#[test]
fn signoff_transcript() {
    let seeds = vec![("signed sign-off".to_string(), signoff_seed())];
    assert_valid("signoff_transcript", entry::signoff_transcript, &seeds);
    check(
        "signoff_transcript",
        entry::signoff_transcript,
        &bytes(&seeds),
        0,
        600,
    );
}
