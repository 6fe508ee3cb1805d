//! The machine driven by hand: events in, effects out, for each rule a face relies on.

use super::*;
use crate::ceremony::people::Participant;
use crate::ceremony::script;
use crate::hsm::UserType;
use std::path::Path;

const S: &str = r#"
[ceremony]
id = "t"
title = "T"
version = 1
token = "tok"
[roles]
admin = 1
witness = 2
[[step]]
id = "init"
kind = "init-token"
so-pin = "so"
user-pin = "u0"
sign-off = ["admin"]
[[step]]
id = "login"
kind = "login"
pin = "u0"
[[step]]
id = "pin"
kind = "change-pin"
old-pin = "u0"
new-pin = "u1"
[[step]]
id = "gen"
kind = "generate-key"
algorithm = "ec-p256"
label = "k"
key-id = "01"
sign-off = ["admin", "witness"]
"#;

fn state() -> State {
    let s = script::parse("t.toml", Path::new("."), S.as_bytes()).unwrap();
    State::new(&s)
}

fn p(name: &str, roles: &[&str]) -> Participant {
    Participant {
        name: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    }
}

fn roster() -> Vec<Participant> {
    vec![
        p("Ada", &["admin"]),
        p("Walt", &["witness"]),
        p("Wanda", &["witness", "admin"]),
    ]
}

fn start(st: &mut State, completed: Vec<usize>, interrupted: Option<usize>) -> Vec<Effect> {
    update(
        st,
        Event::Start {
            completed: completed
                .into_iter()
                .map(|i| (i, StepResult::default()))
                .collect(),
            interrupted,
            acknowledged: vec![],
        },
    )
}

/// Open the token and take the roll call; what the machine asks next.
fn open(st: &mut State) -> Vec<Effect> {
    assert_eq!(update(st, Event::TokenOpened), vec![Effect::NeedRoster]);
    let fx = update(st, Event::Roster(roster()));
    assert!(matches!(fx[0], Effect::Record(Record::Roster(_))), "{fx:?}");
    fx[1..].to_vec()
}

fn secret(st: &mut State, name: &str) -> Vec<Effect> {
    update(st, Event::SecretProvided { name: name.into() })
}

fn sign(st: &mut State, step: usize, role: &str, name: &str) -> Vec<Effect> {
    update(
        st,
        Event::SignedOff {
            step,
            role: role.into(),
            name: name.into(),
        },
    )
}

fn key_result() -> StepResult {
    StepResult {
        objects: vec![CreatedObject {
            label: "k".into(),
            id: "01".into(),
            class: "key pair".into(),
            key_type: "EC P-256".into(),
            public_key_sha256: Some("00".repeat(32)),
        }],
        ..StepResult::default()
    }
}

#[test]
fn asks_for_each_input_in_turn_then_runs() {
    let mut st = state();
    assert_eq!(start(&mut st, vec![], None), vec![Effect::OpenToken]);
    let fx = open(&mut st);
    assert_eq!(
        fx,
        vec![Effect::NeedSignOff {
            step: 0,
            role: "admin".into(),
            have: 0,
            need: 1
        }]
    );
    let fx = sign(&mut st, 0, "admin", "Ada");
    assert_eq!(fx[1], Effect::NeedConfirm { step: 0 });
    let fx = update(&mut st, Event::Confirmed { step: 0 });
    assert_eq!(
        fx[1],
        Effect::NeedSecret {
            step: 0,
            name: "so".into(),
            retry: None,
        }
    );
    secret(&mut st, "so");
    let fx = secret(&mut st, "u0");
    assert_eq!(
        fx[1],
        Effect::RunStep {
            step: 0,
            reconcile: false
        }
    );
    assert_eq!(st.phase, Phase::Running(0));
    // A stray event changes nothing.
    assert!(update(&mut st, Event::Confirmed { step: 0 }).is_empty());
    let fx = update(
        &mut st,
        Event::StepDone {
            step: 0,
            result: StepResult::default(),
        },
    );
    assert!(matches!(
        fx[0],
        Effect::Record(Record::StepCompleted { step: 0, .. })
    ));
    // init-token makes nothing a witness must review.
    assert_eq!(
        fx[2],
        Effect::RunStep {
            step: 1,
            reconcile: false
        }
    );
    update(
        &mut st,
        Event::StepDone {
            step: 1,
            result: StepResult::default(),
        },
    );
    assert_eq!(st.session, Some((UserType::User, "u0".into())));
    let fx = secret(&mut st, "u1");
    assert_eq!(
        fx[1],
        Effect::RunStep {
            step: 2,
            reconcile: false
        }
    );
    let fx = update(
        &mut st,
        Event::StepDone {
            step: 2,
            result: StepResult::default(),
        },
    );
    assert_eq!(st.session, Some((UserType::User, "u1".into())));
    assert!(matches!(fx[1], Effect::NeedSignOff { step: 3, .. }));
}

#[test]
fn a_result_waits_for_its_review_before_anything_else() {
    let mut st = state();
    start(&mut st, vec![0, 1, 2], None);
    open(&mut st);
    sign(&mut st, 3, "admin", "Ada");
    sign(&mut st, 3, "witness", "Walt");
    sign(&mut st, 3, "witness", "Wanda");
    let fx = secret(&mut st, "u1");
    let fx = if matches!(fx.last(), Some(Effect::Relogin { .. })) {
        update(&mut st, Event::ReloggedIn)
    } else {
        fx
    };
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::RunStep { step: 3, .. })),
        "{fx:?}"
    );
    let fx = update(
        &mut st,
        Event::StepDone {
            step: 3,
            result: key_result(),
        },
    );
    assert_eq!(
        fx[1],
        Effect::NeedAck {
            step: 3,
            role: "witness".into()
        }
    );
    assert_eq!(st.phase, Phase::Waiting, "not finished before the review");
    // Someone not in the reviewer's role cannot acknowledge.
    let fx = update(
        &mut st,
        Event::Acknowledged {
            step: 3,
            role: "witness".into(),
            name: "Ada".into(),
        },
    );
    assert!(
        matches!(&fx[0], Effect::Rejected { reason, .. } if reason.contains("not witness")),
        "{fx:?}"
    );
    let fx = update(
        &mut st,
        Event::Acknowledged {
            step: 3,
            role: "witness".into(),
            name: " walt".into(),
        },
    );
    assert_eq!(
        fx[0],
        Effect::Record(Record::Acknowledged {
            step: 3,
            role: "witness".into(),
            name: "Walt".into(),
        })
    );
    assert_eq!(
        fx[1..],
        [Effect::Record(Record::RunComplete), Effect::Finish]
    );
}

#[test]
fn one_person_under_any_spelling_cannot_sign_in_two_roles() {
    let mut st = state();
    start(&mut st, vec![0, 1, 2], None);
    open(&mut st);
    sign(&mut st, 3, "admin", "Wanda");
    for spelling in ["Wanda", "wanda", "Wanda ", "Wan\u{200b}da"] {
        let fx = sign(&mut st, 3, "witness", spelling);
        assert!(
            matches!(&fx[0], Effect::Rejected { reason, .. } if reason.contains("cannot sign twice")),
            "{spelling:?}: {fx:?}"
        );
        assert_eq!(
            fx[1],
            Effect::NeedSignOff {
                step: 3,
                role: "witness".into(),
                have: 0,
                need: 2
            }
        );
    }
    // Someone not on the roll call, or not in the role, is refused too.
    let fx = sign(&mut st, 3, "witness", "Mallory");
    assert!(
        matches!(&fx[0], Effect::Rejected { reason, .. } if reason.contains("not on the roll call"))
    );
    let fx = sign(&mut st, 3, "witness", "Ada");
    assert!(matches!(&fx[0], Effect::Rejected { reason, .. } if reason.contains("not witness")));
    let fx = sign(&mut st, 3, "witness", "WALT");
    // The roll call's spelling is what is recorded.
    assert_eq!(
        fx[0],
        Effect::Record(Record::SignedOff {
            step: 3,
            role: "witness".into(),
            name: "Walt".into()
        })
    );
}

#[test]
fn a_roll_call_that_cannot_fill_a_step_is_asked_again() {
    let mut st = state();
    start(&mut st, vec![], None);
    update(&mut st, Event::TokenOpened);
    // gen needs an admin and two witnesses, all distinct.
    let fx = update(
        &mut st,
        Event::Roster(vec![
            p("Ada", &["admin", "witness"]),
            p("Walt", &["witness"]),
        ]),
    );
    assert!(
        matches!(&fx[0], Effect::Rejected { reason, .. } if reason.contains("distinct people")),
        "{fx:?}"
    );
    assert_eq!(fx[1], Effect::NeedRoster);
    let fx = update(
        &mut st,
        Event::Roster(vec![p("Walt", &["witness"]), p("walt", &["admin"])]),
    );
    assert!(
        matches!(&fx[0], Effect::Rejected { reason, .. } if reason.contains("one person")),
        "{fx:?}"
    );
}

#[test]
fn a_roll_call_seats_every_custodian_a_custody_step_calls_on() {
    let text = r#"
[ceremony]
id = "c"
title = "C"
version = 1
token = "tok"
[roles]
custodian = 1
[[step]]
id = "wrap"
kind = "generate-wrap-key"
label = "w"
key-id = "0200"
threshold = 2
shares = 3
custodian-role = "custodian"
"#;
    let s = script::parse("c.toml", Path::new("."), text.as_bytes()).unwrap();
    let mut st = State::new(&s);
    assert_eq!(
        st.steps[0].plan.custodians,
        Some(("custodian".to_string(), 3))
    );
    start(&mut st, vec![], None);
    update(&mut st, Event::TokenOpened);
    let two = vec![p("Carol", &["custodian"]), p("Dave", &["custodian"])];
    let fx = update(&mut st, Event::Roster(two.clone()));
    assert!(
        matches!(&fx[0], Effect::Rejected { reason, .. }
            if reason == "step wrap calls on 3 custodians (custodian), one per share; the roll call has 2"),
        "{fx:?}"
    );
    assert_eq!(fx[1], Effect::NeedRoster);
    let mut three = two;
    three.push(p("Erin", &["custodian"]));
    let fx = update(&mut st, Event::Roster(three));
    assert!(matches!(fx[0], Effect::Record(Record::Roster(_))), "{fx:?}");
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::RunStep { step: 0, .. })),
        "{fx:?}"
    );
}

#[test]
fn a_refused_pin_is_asked_again_and_the_step_recorded_as_failed() {
    let mut st = state();
    start(&mut st, vec![0], None);
    let fx = open(&mut st);
    assert!(matches!(&fx[0], Effect::NeedSecret { name, .. } if name == "u0"));
    let fx = secret(&mut st, "u0");
    assert!(matches!(fx[1], Effect::RunStep { step: 1, .. }));
    let fx = update(
        &mut st,
        Event::SecretRefused {
            step: 1,
            name: "u0".into(),
            reason: "wrong user PIN (2 retries left)".into(),
        },
    );
    assert!(
        matches!(&fx[0], Effect::Record(Record::StepFailed { step: 1, .. })),
        "{fx:?}"
    );
    assert_eq!(
        fx[1],
        Effect::NeedSecret {
            step: 1,
            name: "u0".into(),
            retry: Some("wrong user PIN (2 retries left)".into())
        }
    );
    let fx = secret(&mut st, "u0");
    assert!(
        matches!(
            fx[1],
            Effect::RunStep {
                step: 1,
                reconcile: false
            }
        ),
        "{fx:?}"
    );
}

#[test]
fn resume_skips_done_steps_and_logs_in_again_with_the_changed_pin() {
    let mut st = state();
    let fx = start(&mut st, vec![0, 1, 2], Some(3));
    assert_eq!(fx.len(), 4, "three resumed records and OpenToken: {fx:?}");
    open(&mut st);
    sign(&mut st, 3, "admin", "Ada");
    sign(&mut st, 3, "witness", "Walt");
    let fx = sign(&mut st, 3, "witness", "Wanda");
    assert_eq!(
        fx[1],
        Effect::NeedSecret {
            step: 3,
            name: "u1".into(),
            retry: None,
        }
    );
    let fx = secret(&mut st, "u1");
    assert_eq!(
        fx,
        vec![Effect::Relogin {
            step: 3,
            user: UserType::User,
            pin: "u1".into()
        }]
    );
    let fx = update(&mut st, Event::ReloggedIn);
    assert_eq!(
        fx[1],
        Effect::RunStep {
            step: 3,
            reconcile: true
        }
    );
}

#[test]
fn a_resumed_result_not_yet_acknowledged_is_reviewed_first() {
    let mut st = state();
    update(
        &mut st,
        Event::Start {
            completed: vec![
                (0, StepResult::default()),
                (1, StepResult::default()),
                (2, StepResult::default()),
                (3, key_result()),
            ],
            interrupted: None,
            acknowledged: vec![],
        },
    );
    let fx = open(&mut st);
    assert_eq!(
        fx,
        vec![Effect::NeedAck {
            step: 3,
            role: "witness".into()
        }]
    );
}

#[test]
fn a_failed_step_ends_the_run() {
    let mut st = state();
    start(&mut st, vec![0], None);
    let fx = open(&mut st);
    assert_eq!(
        fx,
        vec![Effect::NeedSecret {
            step: 1,
            name: "u0".into(),
            retry: None,
        }]
    );
    secret(&mut st, "u0");
    let fx = update(
        &mut st,
        Event::StepFailed {
            step: 1,
            error: "token gone".into(),
        },
    );
    assert!(matches!(fx[1], Effect::Fail { step: Some(1), .. }));
    assert!(st.is_over());
    assert!(update(&mut st, Event::TokenOpened).is_empty());
}
