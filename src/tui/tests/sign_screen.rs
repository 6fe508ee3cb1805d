//! The Sign screen: completion, the checks before the PIN, signing and verifying.

use super::*;
#[test]
fn sign_screen_with_completion_and_pin() {
    let dir = super::scratch_dir();
    for f in ["firmware-a.bin", "firmware-b.bin", "notes.txt"] {
        std::fs::write(dir.path().join(f), b"payload").unwrap();
    }
    let mut s = ready(true);
    press(&mut s, KeyCode::Char('3'));
    snap("sign_empty", &s);
    // raw-pkcs1 is not offered for an EC key.
    assert!(!crate::tui::sign::formats(&s).contains(&"raw-pkcs1"));
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Enter);
    let base = format!("{}/fi", dir.path().display());
    typed(&mut s, &base);
    press(&mut s, KeyCode::Tab);
    assert_eq!(
        s.sign.input.input.value,
        format!("{}/firmware-", dir.path().display())
    );
    assert_eq!(s.sign.input.choices, ["firmware-a.bin", "firmware-b.bin"]);
    typed(&mut s, "a");
    press(&mut s, KeyCode::Tab);
    let input = format!("{}/firmware-a.bin", dir.path().display());
    assert_eq!(s.sign.input.input.value, input);
    press(&mut s, KeyCode::Enter);
    // The output follows the input (and the format) until it is edited.
    assert_eq!(s.sign.output.input.value, format!("{input}.sig"));

    // Snapshot with stable paths.
    let mut shown = ready(true);
    shown.screen = Screen::Sign;
    shown.sign.field = 2;
    shown.sign.input.input.value = "firmware/fi".into();
    shown.sign.input.choices = vec!["firmware-a.bin".into(), "firmware-b.bin".into()];
    snap("sign_completion", &shown);

    press(&mut s, KeyCode::Char('g'));
    // The temporary directory's name changes from run to run.
    let snap_tmp = |name: &str, s: &AppState| {
        let shown = render(s).backend().to_string();
        insta::assert_snapshot!(
            name,
            shown.replace(&dir.path().display().to_string(), "/tmp/DIR")
        );
    };
    snap_tmp("sign_pin", &s);
    typed(&mut s, "246810");
    let req = worker_req(press(&mut s, KeyCode::Enter));
    assert!(
        !format!("{req:?} {s:?}").contains("246810"),
        "the PIN leaked into Debug"
    );
    match req {
        Request::SignFile {
            key,
            input: i,
            output,
            ..
        } => {
            assert_eq!(key, "fw-signing-p256");
            assert_eq!(i, PathBuf::from(&input));
            assert_eq!(output, PathBuf::from(format!("{input}.sig")));
        }
        other => panic!("{other:?}"),
    }
    update(
        &mut s,
        Event::Worker(WorkerMsg::Signed {
            digest: vec![0xAB; 32],
            output: PathBuf::from("firmware/firmware-a.bin.sig"),
            notes: Vec::new(),
            transcript: PathBuf::from("out/signing-transcript.jsonl"),
        }),
    );
    snap_tmp("sign_result", &s);
    update(
        &mut s,
        Event::Worker(WorkerMsg::Verified {
            digest: vec![0xAB; 32],
            ok: false,
            lines: vec!["signature does not match".into()],
        }),
    );
    snap_tmp("verify_bad", &s);
    let buf = render(&s).backend().buffer().clone();
    assert_eq!(fg_of(&buf, "✗ BAD SIGNATURE"), Color::Red);
    // A new input clears the stale result.
    s.sign.field = 2;
    press(&mut s, KeyCode::Enter);
    press(&mut s, KeyCode::Backspace);
    assert!(s.sign.result.is_none());
}

/// Everything checkable without the token is checked before the PIN is asked: a missing
/// input, an existing output, a misspelt or missing option.
#[test]
fn sign_checks_come_before_the_pin() {
    let dir = super::scratch_dir();
    let input = dir.path().join("tf-a.bin");
    std::fs::write(&input, b"payload").unwrap();
    let mut s = ready(true);
    s.screen = Screen::Sign;
    let expect_error = |s: &mut AppState, what: &str| {
        press(s, KeyCode::Char('g'));
        match &s.popup {
            Some(Popup::Error { cause, .. }) => assert!(cause.contains(what), "{cause}"),
            other => panic!("expected an error about {what}, got {other:?}"),
        }
        press(s, KeyCode::Enter);
    };
    s.sign.input.input.value = dir.path().join("absent.bin").display().to_string();
    expect_error(&mut s, "Input:");
    s.sign.input.input.value = input.display().to_string();
    s.sign.output.input.value = input.display().to_string();
    expect_error(&mut s, "exists");
    s.sign.output.input.value = dir.path().join("tf-a.stm32").display().to_string();
    // A raw payload for STM32 needs its addresses: said before the PIN.
    s.sign.format = crate::tui::sign::formats(&s)
        .iter()
        .position(|f| *f == "stm32mp15")
        .unwrap();
    expect_error(&mut s, "needs --load-address and --entry-point");
    s.sign.format = crate::tui::sign::formats(&s)
        .iter()
        .position(|f| *f == "stm32mp15")
        .unwrap();
    s.sign.field = SIGN_FIELDS
        .iter()
        .position(|f| *f == SignField::Options)
        .unwrap();
    let shown = render(&s).backend().to_string();
    assert!(shown.contains("--load-address 0x… --entry-point 0x…"));
    insta::assert_snapshot!(
        "sign_options_hint",
        shown.replace(&dir.path().display().to_string(), "/tmp/DIR")
    );
    press(&mut s, KeyCode::Enter);
    typed(&mut s, "--load-adress 0x2ffc2400");
    press(&mut s, KeyCode::Enter);
    expect_error(&mut s, "Options: unexpected argument '--load-adress'");
    s.sign.options.input.value = "--load-address 0x2ffc2400 --entry-point 0x2ffc2500".into();
    s.sign.options.input.error = None;
    press(&mut s, KeyCode::Char('g'));
    assert!(matches!(s.popup, Some(Popup::SignPin(_))), "{:?}", s.popup);
    typed(&mut s, "246810");
    match worker_req(press(&mut s, KeyCode::Enter)) {
        Request::SignFile {
            format, options, ..
        } => {
            assert_eq!(format, Format::Stm32Mp15);
            assert_eq!(options.load_address, Some(0x2ffc_2400));
            assert_eq!(options.entry_point, Some(0x2ffc_2500));
            assert!(!options.append);
        }
        other => panic!("{other:?}"),
    }
}

/// For the i.MX formats the verify anchor is the SRK table whose hash is fused, not a
/// public key: the field says so, and `v` sends the table with the format.
#[test]
fn imx_formats_verify_against_the_srk_table() {
    let dir = super::scratch_dir();
    let (image, table) = (
        dir.path().join("flash.bin"),
        dir.path().join("srk_table.bin"),
    );
    std::fs::write(&image, b"image").unwrap();
    std::fs::write(&table, b"table").unwrap();
    let mut s = ready(true);
    s.screen = Screen::Sign;
    let at = |s: &AppState, name: &str| {
        crate::tui::sign::formats(s)
            .iter()
            .position(|f| *f == name)
            .unwrap()
    };
    let shown = render(&s).backend().to_string();
    assert!(shown.contains("Public key"), "{shown}");
    assert!(!shown.contains("SRK table"), "{shown}");
    for (name, format) in [
        ("imx-hab4", crate::signing::Format::ImxHab4),
        ("imx-ahab", crate::signing::Format::ImxAhab),
    ] {
        s.sign.format = at(&s, name);
        s.sign.pubkey.input.value.clear();
        let shown = render(&s).backend().to_string();
        assert!(shown.contains("SRK table"), "{name}: {shown}");
        assert!(
            shown.contains("(verify: the SRK table whose hash is fused)"),
            "{name}: {shown}"
        );
        assert!(!shown.contains("Public key"), "{name}: {shown}");
        s.sign.input.input.value = image.display().to_string();
        assert!(press(&mut s, KeyCode::Char('v')).is_empty());
        match &s.popup {
            Some(Popup::Error { cause, .. }) => assert_eq!(cause, "SRK table is empty"),
            other => panic!("{name}: {other:?}"),
        }
        press(&mut s, KeyCode::Enter);
        s.sign.pubkey.input.value = table.display().to_string();
        match worker_req(press(&mut s, KeyCode::Char('v'))) {
            Request::VerifyFile {
                format: f, pubkey, ..
            } => {
                assert_eq!(f, format);
                assert_eq!(pubkey, table);
            }
            other => panic!("{name}: {other:?}"),
        }
        s.busy = None;
    }
}
