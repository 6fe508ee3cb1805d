//! A resumed run adopts only what it made. The demo is killed around its generate-key
//! step (debug hook OFFICIANT_TEST_CRASH_AT) and a published rehearsal key is imported
//! under the step's label and id before the rerun: the rerun must stop, say why, and
//! leave the key alone. Killed after the token made the key, the rerun adopts it. On the
//! rehearsal token and on SoftHSM (judged there by pkcs11-tool's own listing).

use std::process::Output;

use officiant::hsm::{self, BackendUri, ObjectClass, UserType};
use officiant::keys::{PrivateKey, PublicKey};
use officiant::secret::Secret;

use crate::support::demo::DemoOn;
use crate::support::{self, oracle};
use crate::support::{key_fixture, run, run_ok};

/// gen-p256, the demo's first generate-key step.
const GEN: usize = 3;
const LABEL: &str = "demo-ecdsa-p256";

/// What these tests ask of a demo run beyond [`DemoOn`]: a key planted, the keys
/// under the step's label, the step's result.
trait Probe {
    fn plant_imported_key(&self);
    fn private_keys(&self) -> Vec<String>;
    fn gen_done(&self) -> Option<serde_json::Value>;
}

impl Probe for DemoOn {
    /// Import the published P-256 fixture key under the step's label and id, as an
    /// imported key (pkcs11-tool on SoftHSM).
    fn plant_imported_key(&self) {
        let key = key_fixture("p256.pk8.pem");
        match self.pkcs11_tool() {
            Some(mut c) => {
                run_ok(
                    c.arg("--write-object")
                        .arg(&key)
                        .args(["--type", "privkey", "--label", LABEL, "--id", "01"]),
                );
                let mut c = self.pkcs11_tool().unwrap();
                run_ok(
                    c.arg("--write-object")
                        .arg(key_fixture("p256.pub.pem"))
                        .args(["--type", "pubkey", "--label", LABEL, "--id", "01"]),
                );
            }
            None => {
                let mut t = hsm::open(&BackendUri::Sim(self.d.token.clone()), None).unwrap();
                t.login(
                    UserType::User,
                    &Secret::new(self.d.secret("user.pin").into()),
                )
                .unwrap();
                let k = PrivateKey::from_bytes(&std::fs::read(key).unwrap(), None).unwrap();
                t.import_key(
                    &k,
                    &crate::support::label(LABEL),
                    &crate::support::object_id(&[1]),
                )
                .unwrap();
            }
        }
    }

    /// The private key objects labelled LABEL: (the vendor's or our listing of it).
    fn private_keys(&self) -> Vec<String> {
        match self.pkcs11_tool() {
            Some(mut c) => {
                let list = run_ok(c.arg("--list-objects"));
                support::pkcs11_tool_blocks(&list)
                    .into_iter()
                    .filter(|b| b.starts_with("Private Key Object"))
                    .filter(|b| b.contains(&format!("label:      {LABEL}\n")))
                    .collect()
            }
            None => {
                let mut t = hsm::open(&BackendUri::Sim(self.d.token.clone()), None).unwrap();
                t.login(
                    UserType::User,
                    &Secret::new(self.d.secret("user.pin").into()),
                )
                .unwrap();
                t.list_objects()
                    .unwrap()
                    .into_iter()
                    .filter(|o| o.label == LABEL && o.class == ObjectClass::PrivateKey)
                    .map(|o| format!("{:?} local={:?}", o.public_key, o.flags.local))
                    .collect()
            }
        }
    }

    /// The transcript's step-done entry of gen-p256 in the last session, if any.
    fn gen_done(&self) -> Option<serde_json::Value> {
        std::fs::read_to_string(self.d.out.join("transcript.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .rev()
            .find(|e| e["type"] == "step-done" && e["data"]["step"] == GEN)
    }
}

/// The first crash point whose run (in a fresh copy) leaves `reached` true; the run only
/// gets further with a later point, so a binary search finds it.
fn first_point(softhsm: bool, reached: impl Fn(&DemoOn) -> bool) -> Option<(usize, DemoOn)> {
    let probe = |k: usize| {
        let c = DemoOn::new(softhsm)?;
        let o = c.crash_at(k);
        assert!(
            !o.status.success(),
            "point {k}: the run completed before reaching the step"
        );
        Some(c)
    };
    let (mut lo, mut hi) = (1usize, 160usize);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if reached(&probe(mid)?) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let c = probe(lo)?;
    assert!(reached(&c), "no crash point reaches the state asked for");
    Some((lo, c))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn imported_key_is_never_adopted(softhsm: bool) {
    // Killed just after gen-p256 started: the journal holds no token call.
    let Some((k, c)) = first_point(softhsm, |c| c.d.journal_has("started", GEN)) else {
        return;
    };
    assert!(
        !c.d.journal_has("token-call", GEN),
        "point {k}: killed after the token call"
    );
    assert!(
        c.private_keys().is_empty(),
        "point {k}: a key is there already"
    );
    c.plant_imported_key();
    let before = c.private_keys();
    let o = run(&mut c.command());
    assert_eq!(o.status.code(), Some(1), "point {k}: {}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "officiant: step[{GEN}] (gen-p256): the token holds private key \"{LABEL}\" (id 01) that this run did not make (its interrupted attempt stopped before the token call); remove it or use another label, then rerun\n"
        )
    );
    assert!(
        c.gen_done().is_none(),
        "the transcript records the step as done"
    );
    assert_eq!(c.private_keys(), before, "the planted key was touched");
    if softhsm {
        // pkcs11-tool's own reading: the key there is not one the token generated.
        assert!(!before[0].contains("local"), "{}", before[0]);
    }

    // Killed after the token-call record but before the key was made, with the same key
    // planted: the record is there, but the key is not what generate-key makes.
    let Some((k, c)) = first_point(softhsm, |c| c.d.journal_has("token-call", GEN)) else {
        return;
    };
    assert!(c.private_keys().is_empty(), "point {k}: the key was made");
    c.plant_imported_key();
    let o = run(&mut c.command());
    assert_eq!(o.status.code(), Some(1), "point {k}: {}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "officiant: step[{GEN}] (gen-p256): the token holds a key labelled \"{LABEL}\" that this step cannot adopt: it was not generated on the token (imported or restored); remove it or use another label, then rerun\n"
        )
    );
    assert!(c.gen_done().is_none());
}

fn generated_key_is_adopted(softhsm: bool) {
    // The first point after the token-call record is after the token made the key.
    let Some((k, _)) = first_point(softhsm, |c| c.d.journal_has("token-call", GEN)) else {
        return;
    };
    let c = DemoOn::new(softhsm).unwrap();
    let o = c.crash_at(k + 1);
    assert!(!o.status.success());
    assert!(!c.d.journal_has("completed", GEN), "point {}", k + 1);
    let made = c.private_keys();
    assert_eq!(made.len(), 1, "point {}: the key was not made", k + 1);
    if softhsm {
        assert!(made[0].contains("never extractable, local"), "{}", made[0]);
    }
    let o = run(&mut c.command());
    assert!(o.status.success(), "{}", stderr(&o));
    let done = c.gen_done().expect("gen-p256 done");
    assert_eq!(done["data"]["result"]["adopted"], true, "{done}");
    // The adopted key is the one the token made, and the transcript names it.
    let fp = done["data"]["result"]["objects"][0]["public_key_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let pem = c.d.out.join(format!("{LABEL}.pub.pem"));
    let pk = PublicKey::from_bytes(&std::fs::read(pem).unwrap()).unwrap();
    assert_eq!(hex::encode(pk.fingerprint()), fp);
    assert_eq!(c.private_keys(), made);
    c.check_complete(&format!("adopted after point {}", k + 1));
}

#[test]
fn an_imported_key_under_the_label_is_never_adopted_on_sim() {
    imported_key_is_never_adopted(false);
}

#[test]
fn an_imported_key_under_the_label_is_never_adopted_on_softhsm() {
    if oracle("pkcs11-tool").is_none() {
        return;
    }
    imported_key_is_never_adopted(true);
}

#[test]
fn the_key_this_run_generated_is_adopted_on_sim() {
    generated_key_is_adopted(false);
}

#[test]
fn the_key_this_run_generated_is_adopted_on_softhsm() {
    if oracle("pkcs11-tool").is_none() {
        return;
    }
    generated_key_is_adopted(true);
}

const WRITE_SCRIPT: &str = r#"
[ceremony]
id = "write-data"
title = "Store a data object"
version = 1
token = "data-tok"

[[step]]
id = "init"
kind = "init-token"
so-pin = "so"
user-pin = "user"

[[step]]
id = "login"
kind = "login"
user = "user"
pin = "user"

[[step]]
id = "store"
kind = "write-object"
label = "release-notes"
object-id = "05"
type = "data"
file = "notes.txt"
"#;

const WRITE_ANSWERS: &str = r#"
[secrets]
so = "env:T_SO"
user = "env:T_USER"

[[confirm]]
step = "init"
"#;

/// write-object killed at every point and rerun, some reruns after a different data
/// object was put under the step's label: the step adopts only the bytes it writes, and
/// only after its token call was recorded.
#[test]
fn write_object_adopts_only_its_own_bytes() {
    const STORE: usize = 2;
    let (so, user) = ("so-pin-5150", "user-pin-8088");
    let mut foreign_refused = false;
    let mut other_bytes_refused = false;
    let mut adopted = false;
    for k in 1..60 {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("w.toml"), WRITE_SCRIPT).unwrap();
        std::fs::write(d.join("w.answers.toml"), WRITE_ANSWERS).unwrap();
        std::fs::write(d.join("notes.txt"), b"release 1.0\n").unwrap();
        let command = || {
            let mut c = support::officiant();
            c.args(["run", "w.toml", "--answers", "w.answers.toml"])
                .args(["--backend", "sim:tok", "--out", "out"])
                .current_dir(d)
                .env("T_SO", so)
                .env("T_USER", user);
            c
        };
        let first = run(command().env("OFFICIANT_TEST_CRASH_AT", k.to_string()));
        if first.status.success() {
            break;
        }
        let journal = std::fs::read_to_string(d.join("out/journal.jsonl")).unwrap_or_default();
        let records: Vec<serde_json::Value> = journal
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let has = |kind: &str| {
            records
                .iter()
                .any(|r| r["record"] == kind && r["step"] == STORE)
        };
        let open_token = || {
            let mut t = hsm::open(&BackendUri::Sim(d.join("tok")), None).unwrap();
            t.login(UserType::User, &Secret::new(user.into())).unwrap();
            t
        };
        // Public data objects read without a login (and on a token not yet made).
        let stored = || {
            hsm::open(&BackendUri::Sim(d.join("tok")), None)
                .unwrap()
                .read_data("release-notes")
                .unwrap()
                .into_iter()
                .map(|o| o.value)
                .collect::<Vec<_>>()
        };
        let mut expect_refusal = None;
        if has("started") && !has("completed") {
            let had = stored();
            if !has("token-call") {
                // The step never reached its token call: whatever appears is foreign,
                // even the very bytes it would write.
                open_token()
                    .put_data("release-notes", b"release 1.0\n", false)
                    .unwrap();
                expect_refusal = Some(
                    "the token holds data \"release-notes\" that this run did not make (its interrupted attempt stopped before the token call)",
                );
                foreign_refused = true;
            } else if had.is_empty() {
                // Recorded, not yet written: other bytes under the label are not adopted.
                open_token()
                    .put_data("release-notes", b"forged\n", false)
                    .unwrap();
                expect_refusal = Some(
                    "the token holds an object labelled \"release-notes\" that this step cannot adopt: its value differs from the file's",
                );
                other_bytes_refused = true;
            } else {
                assert_eq!(had, vec![b"release 1.0\n".to_vec()], "point {k}");
                adopted = true;
            }
        }
        let before = stored();
        let again = run(&mut command());
        match expect_refusal {
            Some(why) => {
                assert_eq!(again.status.code(), Some(1), "point {k}");
                let err = String::from_utf8_lossy(&again.stderr);
                assert!(
                    err.starts_with(&format!("officiant: step[{STORE}] (store): {why}")),
                    "point {k}: {err}"
                );
                assert_eq!(err.lines().count(), 1, "{err}");
                assert_eq!(stored(), before, "point {k}: the object was touched");
            }
            None => {
                assert!(
                    again.status.success(),
                    "point {k}: {}",
                    String::from_utf8_lossy(&again.stderr)
                );
                assert_eq!(stored(), vec![b"release 1.0\n".to_vec()], "point {k}");
            }
        }
    }
    assert!(foreign_refused && other_bytes_refused && adopted);
}
