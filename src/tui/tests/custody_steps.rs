//! Custody steps at the console: each custodian sees only their share and types it back;
//! a restore takes one masked share at a time.

use super::*;

/// A ceremony with a custody step of each kind, and three custodians.
const CUSTODY: &str = r#"
[ceremony]
id = "custody"
title = "Custody rehearsal"
version = 1
token = "officiant-rehearsal"
[roles]
administrator = 1
witness = 1
custodian = 1
[[step]]
id = "gen-wrap"
kind = "generate-wrap-key"
label = "backup-wrap"
key-id = "0200"
threshold = 2
shares = 3
custodian-role = "custodian"
[[step]]
id = "restore"
kind = "restore"
threshold = 2
custodian-role = "custodian"
backup-dir = "bk"
"#;

/// Three shares as the console shows them (fixed, so the snapshots are stable; every
/// group of five characters differs from every other share's).
const SHARES: [&str; 3] = [
    "2-1-SuvoWcmz3Tg+KemGGGirdZ5oW0hgsb3Ra87sjcBSP1wCyktTYlUNeeXGQBp+lK2vuffNHw",
    "2-2-Y7fvGG1xk/hsqOAkgmJSLeO7YvGmes7YaiDc75tsOKiIysJ12CfP1gPtbjCwC724BIZOEQ",
    "2-3-S7dWXcSV2xZeweJ0QSsbXuJxSvvS9SN+L6rBY9rcy0RVumokeZbdQeGIofDkash9aFO9GA",
];

/// The groups of five a share's data is shown in.
fn groups_of(share: &str) -> Vec<String> {
    let data = &share[4..];
    data.chars()
        .collect::<Vec<_>>()
        .chunks(5)
        .filter(|c| c.len() == 5)
        .map(|c| c.iter().collect())
        .collect()
}

fn open_custody(s: &mut AppState) -> FakeRunner {
    let script =
        crate::ceremony::script::parse("custody.toml", Path::new("."), CUSTODY.as_bytes()).unwrap();
    let o = opened_with(script, vec![], None);
    let mut r = runner_for(&o);
    worker(s, o);
    r.press(s, KeyCode::Enter);
    roll_call(
        &mut r,
        s,
        &[
            ("Ada Admin", &[0]),
            ("Walter Witness", &[2]),
            ("Carol Custodian", &[1]),
            ("Dave Custodian", &[1]),
            ("Erin Custodian", &[1]),
        ],
    );
    r
}

/// Pick `name` for a custodian question.
fn pick_custodian(r: &mut FakeRunner, s: &mut AppState, name: &str) {
    let run = s.run.as_ref().unwrap();
    let names: Vec<String> = run.candidates().iter().map(|p| p.name.clone()).collect();
    let at = names
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("{name} is not offered: {names:?}"));
    let Some(Ask::Custodian { pick: now, .. }) = &run.asking else {
        panic!("no custodian asked for: {:?}", run.asking);
    };
    let now = *now;
    for _ in now..at {
        r.press(s, KeyCode::Down);
    }
    for _ in at..now {
        r.press(s, KeyCode::Up);
    }
    r.press(s, KeyCode::Enter);
}

#[test]
fn each_custodian_sees_only_their_share_then_types_it_back() {
    use crate::ceremony::custody::CustodyTurn;
    let mut s = ready(true);
    let mut r = open_custody(&mut s);
    assert!(r.ran(0), "{:?}", r.log);
    // Every screen from the moment share 1 is hidden, for the search at the end.
    let mut later: Vec<String> = Vec::new();
    let custodians = ["Carol Custodian", "Dave Custodian", "Erin Custodian"];
    for (k, (name, share)) in custodians.iter().zip(SHARES).enumerate() {
        let index = k as u8 + 1;
        // The desk asks who receives the share (the token is idle meanwhile).
        worker(&mut s, WorkerMsg::CeremonyBusy(None));
        r.ask(
            &mut s,
            Question::Custodian {
                step: 0,
                role: "custodian".into(),
                turn: CustodyTurn::Receive { index, of: 3 },
                taken: custodians[..k].iter().map(|c| c.to_string()).collect(),
            },
        );
        let buf = if k == 1 {
            snap("custody_pick_custodian", &s)
        } else {
            render(&s).backend().buffer().clone()
        };
        // Who already holds a share is not offered again.
        for done in &custodians[..k] {
            assert!(!text(&buf).contains(done), "{done} offered twice");
        }
        if k > 0 {
            later.push(text(&buf));
        }
        pick_custodian(&mut r, &mut s, name);
        assert_eq!(r.log.last().unwrap(), &format!("custodian {name}"));
        // The share, alone on a cleared screen.
        r.asked = Some(Question::ShowShare {
            step: 0,
            custodian: name.to_string(),
            index,
            of: 3,
            threshold: 2,
            share: crate::secret::Secret::from_string(share.into()),
            retry: None,
        });
        let cmds = worker(&mut s, WorkerMsg::Ask(r.asked.clone().unwrap()));
        assert!(
            matches!(cmds[..], [Command::ClearScreen]),
            "a share comes on a cleared screen: {cmds:?}"
        );
        let buf = if k == 0 {
            snap("custody_share_shown", &s)
        } else {
            render(&s).backend().buffer().clone()
        };
        let shown = text(&buf);
        assert!(shown.contains(name) && shown.contains("2-"), "{shown}");
        for g in groups_of(share) {
            assert!(shown.contains(&g), "group {g} not on screen:\n{shown}");
        }
        // Nothing of another custodian's share, nor the steps and results around it.
        for other in SHARES.iter().filter(|o| *o != &share) {
            for g in groups_of(other) {
                assert!(!shown.contains(&g), "another share's group {g} on screen");
            }
        }
        assert!(!shown.contains("Steps"), "{shown}");
        if k > 0 {
            later.push(shown);
        }
        // Enter: copied. The share leaves the screen and the terminal is cleared.
        let cmds = press(&mut s, KeyCode::Enter);
        assert!(matches!(cmds[..], [Command::ClearScreen]), "{cmds:?}");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(&share[4..]), "the share is still held: {dbg}");
        // A wrong copy is only the runner's to judge; here the right one.
        typed(&mut s, &share[..20]);
        let buf = if k == 0 {
            snap("custody_share_retype", &s)
        } else {
            render(&s).backend().buffer().clone()
        };
        let t = text(&buf);
        assert!(!t.contains(&share[4..20]), "typing is shown:\n{t}");
        later.push(t);
        // Typed in groups, as copied.
        for chunk in share.as_bytes()[20..].chunks(5) {
            typed(&mut s, std::str::from_utf8(chunk).unwrap());
            typed(&mut s, " ");
        }
        r.press(&mut s, KeyCode::Enter);
        let copy = r.log.last().unwrap().clone();
        let spaced: String = copy["copy ".len()..].split_whitespace().collect();
        assert_eq!(spaced, share, "the copy goes to the runner");
        later.push(text(render(&s).backend().buffer()));
    }
    // The key is on the token; the result names custodians and indices, no share.
    r.done(
        &mut s,
        0,
        StepResult {
            objects: vec![CreatedObject {
                label: "backup-wrap".into(),
                id: "0200".into(),
                class: "wrap key".into(),
                key_type: "AES-256".into(),
                public_key_sha256: None,
            }],
            notes: vec![
                "check value 3dd101".into(),
                "share 1 of 3: Carol Custodian".into(),
            ],
            ..StepResult::default()
        },
    );
    later.push(text(render(&s).backend().buffer()));
    // Share 1 never appears on a later screen: not whole, not one group of it.
    for screen in &later {
        for g in groups_of(SHARES[0]) {
            assert!(
                !screen.contains(&g),
                "share 1's group {g} on a later screen:\n{screen}"
            );
        }
    }
    assert!(later.len() >= 8, "{}", later.len());
}

#[test]
fn a_wrong_copy_shows_the_share_again_with_why() {
    use crate::ceremony::custody::CustodyTurn;
    let mut s = ready(true);
    let mut r = open_custody(&mut s);
    worker(&mut s, WorkerMsg::CeremonyBusy(None));
    r.ask(
        &mut s,
        Question::Custodian {
            step: 0,
            role: "custodian".into(),
            turn: CustodyTurn::Receive { index: 1, of: 3 },
            taken: vec![],
        },
    );
    pick_custodian(&mut r, &mut s, "Carol Custodian");
    let show = |retry: Option<String>| Question::ShowShare {
        step: 0,
        custodian: "Carol Custodian".into(),
        index: 1,
        of: 3,
        threshold: 2,
        share: crate::secret::Secret::from_string(SHARES[0].into()),
        retry,
    };
    r.asked = Some(show(None));
    worker(&mut s, WorkerMsg::Ask(show(None)));
    press(&mut s, KeyCode::Enter);
    typed(
        &mut s,
        &SHARES[0].replace("Ssuvo", "X").replace("Suvo", "Sovo"),
    );
    r.press(&mut s, KeyCode::Enter);
    // The runner finds the copy differs: it says why and shows the share again.
    let why = "the copy of share 1 by Carol Custodian differs from the share shown: copy it again, then type it back";
    worker(
        &mut s,
        WorkerMsg::Rejected {
            step: 0,
            reason: why.into(),
        },
    );
    r.asked = Some(show(Some(why.into())));
    let cmds = worker(&mut s, WorkerMsg::Ask(show(Some(why.into()))));
    assert!(matches!(cmds[..], [Command::ClearScreen]));
    let buf = render(&s).backend().buffer().clone();
    let t = text(&buf);
    assert!(t.contains("differs from the share shown"), "{t}");
    assert!(t.contains("SuvoW"), "{t}");
    assert_eq!(fg_of(&buf, "✗ the copy"), Color::Red);
    // Esc on the share asks whether to abort, in its own question.
    press(&mut s, KeyCode::Esc);
    assert!(
        matches!(s.popup, Some(Popup::Confirm { .. })),
        "{:?}",
        s.popup
    );
}

#[test]
fn a_restore_takes_one_masked_share_at_a_time_with_the_count() {
    use crate::ceremony::custody::CustodyTurn;
    let mut s = ready(true);
    let mut r = open_custody(&mut s);
    // gen-wrap done and acknowledged; the restore step runs.
    r.done(&mut s, 0, StepResult::default());
    worker(&mut s, WorkerMsg::CeremonyBusy(None));
    for (k, (name, share)) in [
        ("Carol Custodian", SHARES[0]),
        ("Erin Custodian", SHARES[2]),
    ]
    .into_iter()
    .enumerate()
    {
        let turn = CustodyTurn::Give { have: k, need: 2 };
        r.ask(
            &mut s,
            Question::Custodian {
                step: 1,
                role: "custodian".into(),
                turn,
                taken: if k == 0 {
                    vec![]
                } else {
                    vec!["Carol Custodian".into()]
                },
            },
        );
        pick_custodian(&mut r, &mut s, name);
        r.ask(
            &mut s,
            Question::ShareEntry {
                step: 1,
                custodian: name.into(),
                turn,
                retry: None,
            },
        );
        // Not a share: refused on the screen, nothing sent.
        typed(&mut s, "2-x-not a share");
        let cmds = r.press(&mut s, KeyCode::Enter);
        assert!(cmds.is_empty(), "{cmds:?}");
        assert!(!r.log.last().unwrap().starts_with("share"), "{:?}", r.log);
        let t = text(render(&s).backend().buffer());
        assert!(t.contains("not a share"), "{t}");
        typed(&mut s, &share[..12]);
        let buf = if k == 1 {
            snap("custody_restore_entry", &s)
        } else {
            render(&s).backend().buffer().clone()
        };
        let t = text(&buf);
        assert!(
            t.contains(&format!("Shares given so far: {k} of the 2")),
            "{t}"
        );
        assert!(!t.contains(&share[4..12]), "typing is shown:\n{t}");
        if k == 1 {
            for g in groups_of(SHARES[0]) {
                assert!(!t.contains(&g), "Carol's share on Erin's screen:\n{t}");
            }
        }
        typed(&mut s, &share[12..]);
        r.press(&mut s, KeyCode::Enter);
        assert_eq!(
            r.log.last().unwrap(),
            &format!("share {share}"),
            "{:?} {:?}",
            r.log,
            s.run.as_ref().unwrap().asking
        );
    }
}
