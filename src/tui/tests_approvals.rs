//! The Approvals screen at 80×24 (insta snapshots of the text), driven only by `update`
//! with the worker's answers injected: the requests with their keys, limits, expiry and
//! approvals, the approver's agent key, the confirmation before approving, the refusals
//! that come before any signing, and a request taken to the sign screen.

use std::path::PathBuf;

use ratatui::crossterm::event::KeyCode;

use super::app::{AppState, Command, Popup, Screen};
use super::tests::{press, ready, scratch_dir, snap, typed, worker, worker_req};
use super::worker::{Request, RequestList, WorkerMsg};
use crate::approvals::pending::{AgentKey, KeyStatus, Pending};
use crate::approvals::request::{KeyUse, Request as SigningRequest};

/// 2026-11-22T02:00:00Z: the time of the review.
const NOW: u64 = 1_795_312_800;

fn request(id: char, description: &str, valid_for: u64) -> SigningRequest {
    let mut r = SigningRequest::new(
        "0000-REHEARSAL",
        "officiant-rehearsal",
        &[0x5a; 32],
        vec![KeyUse {
            label: "fw-signing-p256".into(),
            max_uses: 3,
        }],
        NOW - 60,
        valid_for,
        description,
    )
    .unwrap();
    r.id = id.to_string().repeat(32);
    r
}

fn listing() -> RequestList {
    let dir = PathBuf::from("requests");
    let open = Pending {
        path: dir.join("release-1.2.3.json"),
        request: Ok(request('a', "release 1.2.3 of the main firmware", 660)),
        sha256: [0xc3; 32],
        expired: false,
        unusable: None,
        keys: vec![KeyStatus {
            label: "fw-signing-p256".into(),
            max_uses: 3,
            rule: "quorum 2 of alice, bob, carol; at most 10 uses per request".into(),
            quorum: 2,
            approved_by: vec!["alice".into()],
        }],
        approvals: vec![
            (
                dir.join("release-1.2.3.json.alice.sig"),
                Ok("alice".to_string()),
            ),
            (
                dir.join("release-1.2.3.json.sig"),
                Err("made for namespace \"file\"".to_string()),
            ),
        ],
    };
    let expired = Pending {
        path: dir.join("nightly-0412.json"),
        request: Ok(request('b', "nightly build 0412", 30)),
        expired: true,
        keys: vec![KeyStatus {
            approved_by: vec![],
            ..open.keys[0].clone()
        }],
        approvals: vec![],
        ..open.clone()
    };
    let broken = Pending {
        path: dir.join("notes.json"),
        request: Err("not an Officiant signing request: expected value at line 1 column 1".into()),
        expired: false,
        keys: vec![],
        approvals: vec![],
        ..open.clone()
    };
    RequestList {
        dir,
        pending: vec![open, expired, broken],
        agent: Ok(vec![
            AgentKey {
                fingerprint: "SHA256:Kbx9exoeyHZLLcO/gz1sNRH2Iw/mnGyAhdQjIgT3Jyk".into(),
                comment: "bob@laptop".into(),
                openssh: "ssh-ed25519 AAAAbob".into(),
                approver: vec!["bob".into()],
            },
            AgentKey {
                fingerprint: "SHA256:ovpY5oGEOrPEML67Wxg+fku3iP6ZJECufpmA2VJI1i8".into(),
                comment: "bob@github".into(),
                openssh: "ssh-ed25519 AAAAother".into(),
                approver: vec![],
            },
        ]),
        policy: Some(("officiant-policy.1".into(), [0x5a; 32])),
        now: NOW,
    }
}

/// The console on the Approvals screen with the listing in.
fn on_screen() -> AppState {
    let mut s = ready(true);
    let cmds = press(&mut s, KeyCode::Char('4'));
    assert_eq!(s.screen, Screen::Approvals);
    match worker_req(cmds) {
        Request::ListRequests { dir } => assert_eq!(dir, PathBuf::from("requests")),
        other => panic!("{other:?}"),
    }
    worker(&mut s, WorkerMsg::Requests(Box::new(listing())));
    s
}

fn error_cause(s: &AppState) -> String {
    match &s.popup {
        Some(Popup::Error { cause, .. }) => cause.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_request_is_reviewed_then_approved_with_the_agent_key() {
    let mut s = on_screen();
    let buf = snap("approvals", &s);
    let shown = super::tests::text(&buf);
    for needed in [
        "release 1.2.3 of the main firmware",
        "fw-signing-p256: up to 3 signature(s)",
        "quorum 2 of alice, bob, carol",
        "approved by alice",
        "(in 10m)",
        "✓ release-1.2.3.json.alice.sig by alice",
        "✗ release-1.2.3.json.sig: made for namespace",
        "Approve as bob",
    ] {
        assert!(shown.contains(needed), "{needed:?} not on screen:\n{shown}");
    }
    // The approver is asked before the agent signs.
    assert!(press(&mut s, KeyCode::Char('a')).is_empty());
    snap("approvals_confirm", &s);
    let cmds = press(&mut s, KeyCode::Char('y'));
    match worker_req(cmds) {
        Request::ApproveRequest {
            path,
            key,
            principal,
        } => {
            assert_eq!(path, PathBuf::from("requests/release-1.2.3.json"));
            assert_eq!(key, "ssh-ed25519 AAAAbob");
            assert_eq!(principal, "bob");
        }
        other => panic!("{other:?}"),
    }
    // Written: the listing is read again.
    let cmds = worker(
        &mut s,
        WorkerMsg::Approved {
            request: PathBuf::from("requests/release-1.2.3.json"),
            signature: PathBuf::from("requests/release-1.2.3.json.bob.sig"),
            principal: "bob".into(),
        },
    );
    assert!(matches!(worker_req(cmds), Request::ListRequests { .. }));
    assert!(s
        .notice
        .as_deref()
        .is_some_and(|n| n.contains("approved as bob: wrote requests/release-1.2.3.json.bob.sig")));
}

#[test]
fn nothing_is_signed_that_cannot_count() {
    let mut s = on_screen();
    // A key the policy names no approver for.
    press(&mut s, KeyCode::Right);
    assert!(press(&mut s, KeyCode::Char('a')).is_empty());
    assert!(error_cause(&s).contains("names no approver with key SHA256:ovpY5"));
    press(&mut s, KeyCode::Enter);
    press(&mut s, KeyCode::Left);
    // An expired request, and a file that is no request.
    press(&mut s, KeyCode::Down);
    assert!(press(&mut s, KeyCode::Char('a')).is_empty());
    assert!(error_cause(&s).contains("expired at"));
    press(&mut s, KeyCode::Enter);
    snap("approvals_expired", &s);
    press(&mut s, KeyCode::Down);
    assert!(press(&mut s, KeyCode::Char('a')).is_empty());
    assert!(error_cause(&s).contains("not an Officiant signing request"));
    press(&mut s, KeyCode::Enter);
    // No ssh-agent: said so, and nothing asked.
    let mut l = listing();
    l.agent = Err("ssh-agent: no agent: SSH_AUTH_SOCK is not set".into());
    worker(&mut s, WorkerMsg::Requests(Box::new(l)));
    press(&mut s, KeyCode::Up);
    press(&mut s, KeyCode::Up);
    assert!(press(&mut s, KeyCode::Char('a')).is_empty());
    assert!(error_cause(&s).contains("SSH_AUTH_SOCK is not set"));
    press(&mut s, KeyCode::Enter);
    snap("approvals_no_agent", &s);
}

#[test]
fn a_request_goes_to_the_sign_screen_with_its_approvals() {
    let mut s = on_screen();
    assert!(press(&mut s, KeyCode::Char('s')).is_empty());
    assert_eq!(s.screen, Screen::Sign);
    assert_eq!(s.sign.request.input.value, "requests/release-1.2.3.json");
    // Only the approval that counts.
    assert_eq!(
        s.sign.approvals.input.value,
        "requests/release-1.2.3.json.alice.sig"
    );
    // The request and approval files must exist before the PIN is asked.
    let dir = scratch_dir();
    let input = dir.path().join("fw.bin");
    std::fs::write(&input, b"payload").unwrap();
    s.sign.input.input.value = input.display().to_string();
    s.sign.output.input.value = dir.path().join("fw.bin.sig").display().to_string();
    press(&mut s, KeyCode::Char('g'));
    assert!(error_cause(&s).contains("Request: requests/release-1.2.3.json is not a file"));
    press(&mut s, KeyCode::Enter);
    let req = dir.path().join("r.json");
    let sig = dir.path().join("r.json.alice.sig");
    std::fs::write(&req, b"{}").unwrap();
    s.sign.request.input.value = req.display().to_string();
    press(&mut s, KeyCode::Char('g'));
    assert!(
        error_cause(&s).contains("Approvals: requests/release-1.2.3.json.alice.sig is not a file")
    );
    press(&mut s, KeyCode::Enter);
    std::fs::write(&sig, b"sig").unwrap();
    s.sign.approvals.input.value = sig.display().to_string();
    let shown = super::tests::text(&super::tests::render(&s).backend().buffer().clone())
        .replace(&dir.path().display().to_string(), "/tmp/DIR");
    insta::assert_snapshot!("sign_under_request", shown);
    press(&mut s, KeyCode::Char('g'));
    assert!(matches!(s.popup, Some(Popup::SignPin(_))), "{:?}", s.popup);
    typed(&mut s, "246810");
    let cmds: Vec<Command> = press(&mut s, KeyCode::Enter);
    match worker_req(cmds) {
        Request::SignApproved {
            sign,
            request,
            approvals,
        } => {
            assert_eq!(request, req);
            assert_eq!(approvals, vec![sig.clone()]);
            match *sign {
                Request::SignFile { key, input: i, .. } => {
                    assert_eq!(key, "fw-signing-p256");
                    assert_eq!(i, input);
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
}
