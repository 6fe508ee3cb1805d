//! The console's approvals through its worker (what the Approvals and Sign screens send),
//! with a real ssh-agent holding the shipped rehearsal approvers' keys, on a token the
//! shipped signing-policy ceremony set up: the requests directory reviewed against the
//! token's policy, approvals written beside the request that `ssh-keygen -Y verify`
//! accepts, the refusals, and a signature made under the approved request that openssl
//! verifies.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use crate::support::agent::{Agent, Keys};
use crate::support::replay::{on_sim, shipped, Replay};
use crate::support::{officiant, oracle, run_ok};
use officiant::formats::raw::Padding;
use officiant::secret::Secret;
use officiant::signing::{Format, FormatOptions};
use officiant::tui::event::Event;
use officiant::tui::worker::{self, Request, RequestList, WorkerMsg};

struct Console {
    tx: Sender<Request>,
    rx: Receiver<Event>,
}

impl Console {
    /// The worker's answer to `r` (progress messages skipped).
    fn ask(&self, r: Request) -> WorkerMsg {
        self.tx.send(r).unwrap();
        match self.rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Event::Worker(m)) => m,
            other => panic!("the worker said nothing: {other:?}"),
        }
    }

    fn list(&self, dir: &Path) -> RequestList {
        match self.ask(Request::ListRequests {
            dir: dir.to_path_buf(),
        }) {
            WorkerMsg::Requests(l) => *l,
            other => panic!("{other:?}"),
        }
    }

    fn failed(&self, r: Request) -> String {
        match self.ask(r) {
            WorkerMsg::Failed { cause, .. } => cause,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

fn key_of(keys: &Keys, who: &str) -> String {
    std::fs::read_to_string(keys.dir.join(format!("{who}.pub")))
        .unwrap()
        .trim()
        .to_string()
}

/// The shipped approvers' keys, private ones with the mode ssh-keygen wants.
fn shipped_keys(dir: &Path) -> Option<Keys> {
    use std::os::unix::fs::PermissionsExt;
    let keys = Keys::new(dir)?;
    for who in ["alice", "bob", "carol"] {
        let p = dir.join(who);
        std::fs::copy(shipped(&format!("rehearsal-secrets/approver-{who}")), &p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::copy(
            shipped(&format!("rehearsal-secrets/approver-{who}.pub")),
            dir.join(format!("{who}.pub")),
        )
        .unwrap();
    }
    Some(keys)
}

fn request(r: &Replay, backend: &str, out: &Path) {
    let pin = std::fs::read_to_string(shipped("rehearsal-secrets/user.pin")).unwrap();
    let mut c = officiant();
    c.current_dir(r.dir.path())
        .env("PIN", pin.trim())
        .args(["request", "create", "--backend", backend, "--pin-source"])
        .args(["env:PIN", "--key", "fw-release", "--max-uses", "1"])
        .args(["--valid-for", "10m", "--description", "release 2.0"])
        .arg("-o")
        .arg(out);
    run_ok(&mut c);
}

fn sign_under(req: &Path, input: &Path, output: &Path, transcript: &Path) -> Request {
    let pin = std::fs::read_to_string(shipped("rehearsal-secrets/user.pin")).unwrap();
    Request::SignApproved {
        sign: Box::new(Request::SignFile {
            key: "fw-release".into(),
            format: Format::Raw,
            padding: None::<Padding>,
            options: FormatOptions::default(),
            pin: Secret::new(pin.trim().as_bytes().to_vec()),
            input: input.to_path_buf(),
            output: output.to_path_buf(),
            transcript: transcript.to_path_buf(),
        }),
        request: req.to_path_buf(),
        approvals: vec![],
    }
}

#[test]
fn approvers_approve_at_the_console_with_their_agent_keys() {
    let Some(openssl) = oracle("openssl") else {
        return;
    };
    let r = on_sim("signing-policy");
    let d = r.dir.path();
    std::fs::create_dir(d.join("keys")).unwrap();
    let Some(keys) = shipped_keys(&d.join("keys")) else {
        return;
    };
    let Some(agent) = Agent::start(d) else { return };
    agent.add(&keys.dir.join("alice"));
    agent.add(&keys.dir.join("carol"));
    let backend = format!("sim:{}", d.join("token").display());
    let requests = d.join("requests");
    std::fs::create_dir(&requests).unwrap();
    let req = requests.join("release-2.0.json");
    request(&r, &backend, &req);
    // An approval made outside the console, by bob, with ssh-keygen.
    let by_bob = keys.sign("bob", "officiant-approval", &req);
    std::fs::write(requests.join("release-2.0.json.sig"), by_bob).unwrap();
    std::fs::write(requests.join("notes.json"), b"{\"not\": \"a request\"}\n").unwrap();

    let (etx, erx) = channel();
    let tx = worker::spawn_with(backend.clone(), etx, Some(agent.sock.clone()));
    let c = Console { tx, rx: erx };
    match c.rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Event::Worker(WorkerMsg::Snapshot { .. })) => {}
        other => panic!("{other:?}"),
    }

    // The review: the request, what the policy asks, bob's approval; the bad file.
    let l = c.list(&requests);
    assert_eq!(l.pending.len(), 2);
    let notes = &l.pending[0];
    assert!(notes.request.is_err());
    let p = &l.pending[1];
    let rq = p.request.as_ref().unwrap();
    assert_eq!(rq.description, "release 2.0");
    assert!(!p.expired && p.unusable.is_none(), "{p:?}");
    assert_eq!(p.keys[0].label, "fw-release");
    assert_eq!(p.keys[0].quorum, 2);
    assert_eq!(p.keys[0].approved_by, vec!["bob".to_string()]);
    assert_eq!(p.approvals.len(), 1);
    assert_eq!(p.approvals[0].1, Ok("bob".to_string()));
    let agent_keys = l.agent.as_ref().unwrap();
    let approvers: Vec<Vec<String>> = agent_keys.iter().map(|k| k.approver.clone()).collect();
    assert_eq!(
        approvers,
        vec![vec!["alice".to_string()], vec!["carol".to_string()]]
    );

    // Alice approves; ssh-keygen accepts her approval against the policy's signers.
    let alice = key_of(&keys, "alice");
    match c.ask(Request::ApproveRequest {
        path: req.clone(),
        key: alice.clone(),
        principal: "alice".into(),
    }) {
        WorkerMsg::Approved { signature, .. } => {
            assert_eq!(signature, requests.join("release-2.0.json.alice.sig"));
        }
        other => panic!("{other:?}"),
    }
    let (ok, text) = keys.verify(
        &shipped("signing-policy/approvers.allowed_signers"),
        "alice",
        "officiant-approval",
        &requests.join("release-2.0.json.alice.sig"),
        &std::fs::read(&req).unwrap(),
    );
    assert!(ok, "{text}");
    // Twice, or as someone else: refused, nothing written.
    let e = c.failed(Request::ApproveRequest {
        path: req.clone(),
        key: alice.clone(),
        principal: "alice".into(),
    });
    assert!(e.contains("alice approved this request already"), "{e}");
    let e = c.failed(Request::ApproveRequest {
        path: req.clone(),
        key: alice,
        principal: "carol".into(),
    });
    assert!(
        e.contains("does not let key SHA256:") && e.contains("approve as carol"),
        "{e}"
    );
    assert!(!requests.join("release-2.0.json.carol.sig").exists());

    // Two approvals (bob's and alice's) beside the request: it signs, once.
    let l = c.list(&requests);
    assert_eq!(
        l.pending[1].keys[0].approved_by,
        vec!["alice".to_string(), "bob".to_string()]
    );
    let input = d.join("fw.bin");
    std::fs::write(&input, b"firmware 2.0").unwrap();
    let transcript = d.join("signing-transcript.jsonl");
    match c.ask(sign_under(&req, &input, &d.join("fw.sig"), &transcript)) {
        WorkerMsg::Signed { notes, .. } => {
            assert!(
                notes.iter().any(|n| n.contains("approved by alice, bob")),
                "{notes:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    run_ok(
        Command::new(&openssl)
            .args(["dgst", "-sha256", "-verify"])
            .arg(r.file("fw-release.pub.pem"))
            .arg("-signature")
            .arg(d.join("fw.sig"))
            .arg(&input),
    );
    let e = c.failed(sign_under(&req, &input, &d.join("fw2.sig"), &transcript));
    assert!(
        e.contains("all 1 use(s) of key \"fw-release\" are spent"),
        "{e}"
    );
    // The session is in the signing transcript with its approvers.
    let t = std::fs::read_to_string(&transcript).unwrap();
    assert!(t.contains("\"approvers\":[\"alice\",\"bob\"]"), "{t}");
}
