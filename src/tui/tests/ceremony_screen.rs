//! A ceremony at the console: the roll call, each step's questions and results, review
//! pauses, resume, a refused PIN, the end and quitting mid-run.

use super::*;
#[test]
fn the_roll_call_comes_first_and_counts_people_not_spellings() {
    let mut s = ready(true);
    press(&mut s, KeyCode::Enter);
    let o = opened();
    let mut r = runner_for(&o);
    worker(&mut s, o);
    r.press(&mut s, KeyCode::Enter);
    assert!(matches!(r.asked, Some(Question::Roster)), "{:?}", r.asked);
    typed(&mut s, "Walt");
    r.press(&mut s, KeyCode::Enter);
    r.press(&mut s, KeyCode::Down);
    r.press(&mut s, KeyCode::Char(' '));
    r.press(&mut s, KeyCode::Enter);
    typed(&mut s, "Alice Admin");
    r.press(&mut s, KeyCode::Enter);
    r.press(&mut s, KeyCode::Char(' '));
    snap("roll_call", &s);
    r.press(&mut s, KeyCode::Enter);
    // The same person under other spellings is refused at the console.
    for spelling in ["walt", "Walt ", "Wal\u{200b}t"] {
        typed(&mut s, spelling);
        r.press(&mut s, KeyCode::Enter);
        let run = s.run.as_ref().unwrap();
        let Some(Ask::Roster(rc)) = &run.asking else {
            panic!("roll call gone");
        };
        assert!(
            rc.choosing.is_none(),
            "{spelling:?} was taken as a new person"
        );
        assert!(
            rc.name
                .error
                .as_deref()
                .unwrap_or("")
                .contains("already on the roll call"),
            "{spelling:?}: {:?}",
            rc.name.error
        );
        r.press(&mut s, KeyCode::Esc);
    }
    // Done: the engine takes the roster; sign-offs are picked from it, never typed.
    r.press(&mut s, KeyCode::Enter);
    assert_eq!(r.engine.roster.len(), 2);
    let run = s.run.as_ref().unwrap();
    assert!(matches!(run.asking, Some(Ask::SignOff { .. })));
    let names: Vec<&str> = run.candidates().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["Alice Admin"],
        "only the administrators are offered"
    );
}

#[test]
fn ceremony_walkthrough() {
    let mut s = ready(true);
    press(&mut s, KeyCode::Enter);
    let o = opened();
    let mut r = runner_for(&o);
    worker(&mut s, o);
    snap("ceremony_start", &s);
    r.press(&mut s, KeyCode::Enter);
    roll_call(
        &mut r,
        &mut s,
        &[("Alice Admin", &[0]), ("Walter Witness", &[1])],
    );
    let buf = snap("ceremony_signoff", &s);
    assert!(text(&buf).contains("Alice Admin"));
    pick(&mut r, &mut s, "Alice Admin");
    pick(&mut r, &mut s, "Walter Witness");

    // init-token erases the token: the token named, confirmed by typing its label.
    let buf = snap("confirm_init_token", &s);
    assert_eq!(fg_of(&buf, "⚠ Step 1 destroys"), Color::Red);
    assert!(text(&buf).contains("3 objects on it now"));
    // A single y does not do it.
    typed(&mut s, "y");
    r.press(&mut s, KeyCode::Enter);
    assert!(matches!(s.popup, Some(Popup::Destroy(_))), "{:?}", s.popup);
    r.press(&mut s, KeyCode::Backspace);
    typed(&mut s, "officiant-rehearsal");
    r.press(&mut s, KeyCode::Enter);
    assert!(s.popup.is_none());

    // The SO PIN: masked, checked against the token's length rule, typed twice.
    typed(&mut s, "97");
    r.press(&mut s, KeyCode::Enter);
    let buf = snap("secret_too_short", &s);
    assert!(!text(&buf).contains("97"));
    typed(&mut s, "31");
    r.press(&mut s, KeyCode::Enter);
    typed(&mut s, "9731");
    let buf = snap("secret_confirm", &s);
    assert!(!text(&buf).contains("9731"));
    r.press(&mut s, KeyCode::Enter);
    typed(&mut s, "246810");
    r.press(&mut s, KeyCode::Enter);
    typed(&mut s, "246810");
    r.press(&mut s, KeyCode::Enter);
    // The values went to the runner's vault; the engine saw only the names.
    let secrets: Vec<&String> = r.log.iter().filter(|l| l.starts_with("secret")).collect();
    assert_eq!(secrets, ["secret so=9731", "secret user=246810"]);
    assert!(r.ran(0));
    let dbg = format!("{s:?} {:?}", r.engine);
    assert!(!dbg.contains("9731") && !dbg.contains("246810"), "{dbg}");

    // A long operation: spinner and elapsed time from the tick.
    update(&mut s, Event::Tick(Duration::from_secs(65)));
    let buf = snap("progress", &s);
    assert!(text(&buf).contains("1:05 elapsed"));
    r.done(&mut s, 0, StepResult::default());
    // login uses the user PIN already given: it runs straight away.
    assert!(r.ran(1));
    r.done(&mut s, 1, StepResult::default());

    // gen-p256: the witness signs off; the key comes back; the run pauses for review.
    pick(&mut r, &mut s, "Walter Witness");
    assert!(r.ran(2));
    let fp = p256(9).fingerprint();
    r.done(
        &mut s,
        2,
        StepResult {
            objects: vec![CreatedObject {
                label: "fw-signing-p256".into(),
                id: "01".into(),
                class: "key pair".into(),
                key_type: "EC P-256".into(),
                public_key_sha256: Some(hex::encode(fp)),
            }],
            ..StepResult::default()
        },
    );
    assert!(
        matches!(r.asked, Some(Question::Acknowledge { step: 2, .. })),
        "{:?}",
        r.asked
    );
    let buf = snap("review_pause", &s);
    let words = crate::formats::words::Fingerprint::of(&fp);
    let screen = text(&buf);
    assert!(screen.contains(&words.groups[..35]), "{screen}");
    assert!(
        screen.contains(words.words.split(' ').next().unwrap()),
        "PGP words on screen: {screen}"
    );
    assert!(!r.ran(3), "nothing runs before the review");
    pick(&mut r, &mut s, "Walter Witness");
    assert_eq!(
        r.engine.steps[2]
            .acknowledged
            .as_ref()
            .map(|a| a.name.as_str()),
        Some("Walter Witness")
    );

    // gen-rsa fails: error popup with cause and next step, then a red step.
    pick(&mut r, &mut s, "Walter Witness");
    r.failed(
        &mut s,
        3,
        "step[3] (gen-rsa): an object labelled \"fw-signing-rsa4096\" already exists on the token (private key)",
    );
    let buf = snap("error_popup", &s);
    assert_eq!(fg_of(&buf, "✗ Step"), Color::Red);
    press(&mut s, KeyCode::Enter);
    let buf = snap("ceremony_failed", &s);
    assert_eq!(fg_of(&buf, "✗ FAILED"), Color::Red);
    assert_eq!(fg_of(&buf, "✓ done"), Color::Green);
    // Any step can be opened and read, before or after it ran.
    press(&mut s, KeyCode::Up);
    let t = text(&render(&s).backend().buffer().clone());
    assert!(
        t.contains("Result read aloud and matched: Walter Witness"),
        "{t}"
    );
}

/// What export-fuses computed is shown to the witnesses in full: the value in hex groups
/// and PGP words, and HAB4's fuse words.
#[test]
fn fuse_values_show_in_the_results() {
    let mut s = ready(true);
    press(&mut s, KeyCode::Enter);
    worker(&mut s, opened());
    let hash: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37));
    let details = serde_json::json!({
        "format": "hab4",
        "fuse": crate::formats::words::Fingerprint::of(&hash),
        "fuse_words": crate::formats::hab4::fuse_words(&hash)
            .iter()
            .map(|w| format!("0x{w:08X}"))
            .collect::<Vec<_>>(),
        "uboot": crate::formats::hab4::fuse_commands(&hash, crate::formats::hab4::Soc::Imx8m),
    });
    {
        let run = s.run.as_mut().unwrap();
        run.engine.steps[0].status = crate::ceremony::engine::StepStatus::Done;
        run.engine.steps[0].result = Some(StepResult {
            details,
            ..StepResult::default()
        });
        run.view = 0;
    }
    let fp = crate::formats::words::Fingerprint::of(&hash);
    let shown = crate::tui::views::ceremony::fuse_values(
        &s.run.as_ref().unwrap().engine.steps[0]
            .result
            .as_ref()
            .unwrap()
            .details,
    );
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].1, fp);
    // Scroll down to the result.
    press(&mut s, KeyCode::PageDown);
    let buf = snap("ceremony_fuse_result", &s);
    let screen = text(&buf);
    assert!(screen.contains("SRK fuse hash"), "{screen}");
    assert!(screen.contains(&fp.groups[..20]), "{screen}");
    for w in crate::formats::hab4::fuse_words(&hash) {
        assert!(screen.contains(&format!("0x{w:08X}")), "{screen}");
    }
    let first_word = fp.words.split(' ').next().unwrap();
    assert!(screen.contains(first_word), "{screen}");
}

/// An instruction longer than the screen scrolls; nothing is cut off without a way to
/// read it.
#[test]
fn a_long_instruction_scrolls() {
    let paragraphs: Vec<String> = (1..=30)
        .map(|i| format!("Paragraph {i}: the security officer reads this sentence aloud and every witness follows it on paper."))
        .collect();
    let script = crate::ceremony::script::parse(
        "long.toml",
        Path::new("."),
        format!(
            "[ceremony]\nid = \"long\"\ntitle = \"Long\"\nversion = 1\ntoken = \"t\"\n\n[[step]]\nid = \"read\"\nkind = \"instruction\"\ntext = {}\n",
            toml::Value::String(paragraphs.join(" "))
        )
        .as_bytes(),
    )
    .unwrap();
    let mut s = ready(true);
    worker(&mut s, opened_with(script, vec![], None));
    let first = text(&render(&s).backend().buffer().clone());
    assert!(first.contains("Paragraph 1:"), "{first}");
    assert!(!first.contains("Paragraph 30:"), "{first}");
    for _ in 0..20 {
        press(&mut s, KeyCode::PageDown);
    }
    let buf = snap("long_instruction_scrolled", &s);
    let last = text(&buf);
    assert!(last.contains("Paragraph 30:"), "{last}");
    assert!(last.contains("PgUp/PgDn"), "{last}");
}

#[test]
fn abort_is_its_own_question_in_red_and_stops_the_run() {
    let mut s = ready(true);
    let mut r = to_init_confirm(&mut s);
    // Esc at the typed confirmation asks whether to abort: y/n, not the label.
    r.press(&mut s, KeyCode::Esc);
    let buf = snap("confirm_abort", &s);
    assert_eq!(fg_of(&buf, "⚠ Abort"), Color::Red);
    // n goes back to the typed confirmation.
    r.press(&mut s, KeyCode::Char('n'));
    assert!(matches!(s.popup, Some(Popup::Destroy(_))), "{:?}", s.popup);
    r.press(&mut s, KeyCode::Esc);
    r.press(&mut s, KeyCode::Char('y'));
    assert!(matches!(r.engine.phase, engine::Phase::Aborted(_)));
    let run = s.run.as_ref().unwrap();
    assert!(run.finished());
    assert_eq!(run.status(3), StepStatus::Skipped);
    assert!(s.popup.is_none(), "an abort by the operator is no error");
    snap("ceremony_aborted", &s);
}

#[test]
fn an_interrupted_run_resumes_from_its_journal() {
    let mut s = ready(true);
    press(&mut s, KeyCode::Enter);
    let script = crate::ceremony::script::load(&fixture()).unwrap();
    let o = opened_with(
        script,
        vec![(0, StepResult::default()), (1, StepResult::default())],
        Some(2),
    );
    let mut r = runner_for(&o);
    worker(&mut s, o);
    // Done steps show as done before anything runs; the next one is in focus.
    let buf = snap("ceremony_resume", &s);
    assert!(text(&buf).contains("↺ resumed init"));
    assert_eq!(s.run.as_ref().unwrap().view, 2);
    r.press(&mut s, KeyCode::Enter);
    roll_call(
        &mut r,
        &mut s,
        &[("Walter Witness", &[1]), ("Alice Admin", &[0])],
    );
    // The interrupted step is signed off again, then the completed login's session is
    // restored: its PIN is asked again.
    pick(&mut r, &mut s, "Walter Witness");
    let run = s.run.as_ref().unwrap();
    assert!(
        matches!(&run.asking, Some(Ask::Secret { name, .. }) if name == "user"),
        "{:?}",
        run.asking
    );
    typed(&mut s, "246810");
    r.press(&mut s, KeyCode::Enter);
    assert!(r.log.iter().any(|e| e.contains("Relogin")), "{:?}", r.log);
    let buf = snap("ceremony_resume_relogin", &s);
    assert!(text(&buf).contains("↺ resumed"));
    r.relogged(&mut s);
    assert!(r.ran(2), "the interrupted step runs after the relogin");
}

#[test]
fn a_wrong_pin_is_asked_again_with_the_retries_left() {
    let mut s = ready(true);
    let mut r = to_init_confirm(&mut s);
    typed(&mut s, "officiant-rehearsal");
    r.press(&mut s, KeyCode::Enter);
    for pin in ["9731", "9731", "246810", "246810"] {
        typed(&mut s, pin);
        r.press(&mut s, KeyCode::Enter);
    }
    r.done(&mut s, 0, StepResult::default());
    // login: the token refuses the PIN; the sign-offs stay, the PIN is asked again.
    worker(&mut s, WorkerMsg::CeremonyBusy(None));
    r.event(
        &mut s,
        EngineEvent::SecretRefused {
            step: 1,
            name: "user".into(),
            reason: "wrong user PIN (2 retries left before the PIN locks)".into(),
        },
    );
    let buf = snap("secret_retry", &s);
    assert!(text(&buf).contains("2 retries left"), "{}", text(&buf));
    assert_eq!(r.engine.steps[0].sign_offs.len(), 2);
    typed(&mut s, "246810");
    r.press(&mut s, KeyCode::Enter);
    assert!(r.ran(1));
}

#[test]
fn the_end_shows_the_transcript_head_and_how_to_verify_it() {
    let mut s = ready(true);
    press(&mut s, KeyCode::Enter);
    let script = crate::ceremony::script::load(&fixture()).unwrap();
    let n = script.steps.len();
    let o = opened_with(
        script,
        (0..n).map(|i| (i, StepResult::default())).collect(),
        None,
    );
    let mut r = runner_for(&o);
    worker(&mut s, o);
    r.press(&mut s, KeyCode::Enter);
    roll_call(
        &mut r,
        &mut s,
        &[("Walter Witness", &[1]), ("Alice Admin", &[0])],
    );
    let buf = snap("ceremony_complete", &s);
    let t = text(&buf);
    let head = crate::formats::words::Fingerprint::of(&[0xab; 32]);
    assert!(t.contains(&head.groups[..20]), "{t}");
    assert!(t.contains(head.words.split(' ').next().unwrap()), "{t}");
    assert!(t.contains("officiant transcript verify"), "{t}");
    assert!(t.contains("--head"), "{t}");
    assert!(t.contains(&"ab".repeat(26)), "the head in hex: {t}");
}

#[test]
fn quitting_mid_ceremony_asks_first_and_closes_the_run() {
    let mut s = ready(true);
    let mut r = to_init_confirm(&mut s);
    r.press(&mut s, KeyCode::Esc);
    r.press(&mut s, KeyCode::Char('n'));
    r.press(&mut s, KeyCode::Esc);
    r.press(&mut s, KeyCode::Char('n'));
    // Out of the confirmation: q asks first.
    s.popup = None;
    r.press(&mut s, KeyCode::Char('q'));
    assert!(!s.quit, "quit needs a confirmation mid-ceremony");
    assert!(matches!(s.popup, Some(Popup::Confirm { .. })));
    r.press(&mut s, KeyCode::Char('y'));
    // The run is told and closes its transcript; then the console quits.
    assert!(matches!(r.engine.phase, engine::Phase::Aborted(_)));
    assert!(s.quit);
}
