//! The Home screen, the help overlay, the terminal's size and colours, and the token
//! picker.

use super::*;
#[test]
fn home_screen() {
    let s = ready(true);
    snap("home", &s);
}

#[test]
fn home_object_browser_shows_fingerprint_words_and_flags() {
    let mut s = ready(true);
    press(&mut s, KeyCode::Tab);
    let buf = snap("home_objects", &s);
    let fp = crate::formats::words::Fingerprint::of(&p256(7).fingerprint());
    let t = text(&buf);
    assert!(t.contains(&fp.groups[..17]), "{t}");
    assert!(t.contains(fp.words.split(' ').next().unwrap()), "{t}");
    // The private key's attributes, including whether the token made it.
    assert!(t.contains("✓ generated on the token (local)"), "{t}");
    assert!(t.contains("✓ never extractable"), "{t}");
    // L logs in to list private objects; the PIN is masked.
    press(&mut s, KeyCode::Char('L'));
    typed(&mut s, "246810");
    let req = worker_req(press(&mut s, KeyCode::Enter));
    assert!(matches!(req, Request::Login { .. }), "{req:?}");
    assert!(!format!("{req:?}").contains("246810"));
}

#[test]
fn home_token_failed_shows_error_popup() {
    let mut s = AppState::new("pkcs11:token=X", Vec::new(), true);
    update(
        &mut s,
        Event::Worker(WorkerMsg::OpenFailed("no token labelled \"X\"".into())),
    );
    let buf = snap("home_open_failed", &s);
    assert_eq!(fg_of(&buf, "✗ The token did not open"), Color::Red);
}

#[test]
fn help_overlay_lists_the_keymap() {
    let mut s = ready(true);
    press(&mut s, KeyCode::Char('?'));
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    t.draw(|f| views::draw(f, &s)).unwrap();
    let shown = text(t.backend().buffer());
    for b in crate::tui::keymap::KEYMAP
        .iter()
        .filter(|b| b.context != crate::tui::keymap::Context::Dismiss)
    {
        assert!(shown.contains(b.hint), "help lacks {:?}", b.hint);
    }
    press(&mut s, KeyCode::Esc);
    assert!(s.popup.is_none());
}

#[test]
fn no_color_means_no_colour_at_all() {
    let mut s = ready(false);
    let _r = to_init_confirm(&mut s);
    let buf = render(&s).backend().buffer().clone();
    for cell in buf.content() {
        assert_eq!(cell.fg, Color::Reset, "coloured cell {cell:?}");
        assert_eq!(cell.bg, Color::Reset, "coloured cell {cell:?}");
    }
    // The warning still stands out: a symbol and a modifier.
    assert!(text(&buf).contains("⚠ Step 1 destroys"));
}

#[test]
fn a_small_terminal_says_so() {
    let s = ready(true);
    let mut t = Terminal::new(TestBackend::new(60, 20)).unwrap();
    t.draw(|f| views::draw(f, &s)).unwrap();
    assert!(text(t.backend().buffer()).contains("terminal too small: needs 80×24"));
}

#[test]
fn larger_terminals_draw_too() {
    let mut s = ready(true);
    press(&mut s, KeyCode::Enter);
    worker(&mut s, opened());
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| views::draw(f, &s)).unwrap();
        assert!(text(t.backend().buffer()).contains("gen-p256"));
    }
}

#[test]
fn a_module_with_several_tokens_asks_which_one() {
    let mut s = AppState::new(
        "pkcs11:?module-path=/usr/lib/softhsm/libsofthsm2.so",
        vec![],
        true,
    );
    let tok = |label: &str, serial: &str| crate::hsm::TokenSummary {
        label: label.into(),
        serial: serial.into(),
        model: "SoftHSM v2".into(),
        initialized: true,
    };
    update(
        &mut s,
        Event::Worker(WorkerMsg::Tokens(vec![
            tok("root-ca", "1a2b"),
            tok("signing", "3c4d"),
        ])),
    );
    let buf = snap("token_picker", &s);
    assert!(text(&buf).contains("\"signing\""));
    press(&mut s, KeyCode::Down);
    let cmds = press(&mut s, KeyCode::Enter);
    match &cmds[..] {
        [Command::Reopen(uri)] => assert_eq!(
            uri,
            "pkcs11:serial=3c4d?module-path=/usr/lib/softhsm/libsofthsm2.so"
        ),
        other => panic!("{other:?}"),
    }
    assert!(s.popup.is_none());
}
