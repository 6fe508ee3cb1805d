//! Crash safety of init-token on SoftHSM: the demo killed at every crash point up to the
//! login after init-token (debug hook OFFICIANT_TEST_CRASH_AT; init-token has its own
//! points after C_InitToken and after C_InitPIN), then rerun with the same arguments.
//! A kill inside init-token leaves a token with the ceremony's label; the rerun accepts
//! it (its SO PIN opens it, it holds no objects) and says so, instead of refusing the
//! label forever. pkcs11-tool judges the token: one token with the label, each key once.

use std::process::Command;

use crate::support::demo::DemoOn;
use crate::support::{oracle, run, run_ok};

/// How many tokens pkcs11-tool lists with the demo's label.
fn tokens_labelled(c: &DemoOn) -> usize {
    let h = c.hsm.as_ref().unwrap();
    let mut cmd = Command::new(oracle("pkcs11-tool").unwrap());
    let list = run_ok(h.env(&mut cmd).arg("--module").arg(&h.module).arg("-L"));
    list.lines()
        .filter(|l| l.trim_start().starts_with("token label") && l.ends_with(": officiant-demo"))
        .count()
}

/// The notes of the last step-done entry of init (step 0) in the transcript.
fn init_notes(c: &DemoOn) -> Vec<String> {
    std::fs::read_to_string(c.d.out.join("transcript.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rev()
        .find(|e| e["type"] == "step-done" && e["data"]["step"] == 0)
        .and_then(|e| {
            e["data"]["result"]["notes"]
                .as_array()
                .map(|n| n.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        })
        .unwrap_or_default()
}

#[test]
fn init_token_killed_at_every_point_then_resumed_on_softhsm() {
    if oracle("pkcs11-tool").is_none() {
        return;
    }
    let mut inside = 0;
    for k in 1..80 {
        let Some(c) = DemoOn::new(true) else {
            return;
        };
        let first = c.crash_at(k);
        assert!(
            first.status.code().is_none(),
            "point {k}: expected an abort, got {}: {}",
            first.status,
            String::from_utf8_lossy(&first.stderr)
        );
        // Killed inside init-token after the token took its label.
        let left_a_token = tokens_labelled(&c) == 1 && !c.d.journal_has("completed", 0);
        let past_login = c.d.journal_has("completed", 1);
        let again = run(&mut c.command());
        assert!(
            again.status.success(),
            "point {k}: rerun failed: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        c.check_complete(&format!("crash at point {k}"));
        assert_eq!(tokens_labelled(&c), 1, "point {k}: tokens with the label");
        if left_a_token {
            inside += 1;
            let notes = init_notes(&c);
            assert!(
                notes.iter().any(|n| n.contains(
                    "was initialized by the interrupted run: its SO PIN opens it and it holds no objects"
                )),
                "point {k}: {notes:?}"
            );
        }
        if past_login {
            // Both kills inside init-token (after C_InitToken, after C_InitPIN).
            assert!(
                inside >= 2,
                "only {inside} kills inside init-token left a token"
            );
            return;
        }
    }
    panic!("the sweep never got past the login");
}
