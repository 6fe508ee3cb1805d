//! Every screen and popup at 80×24 through ratatui's TestBackend (insta snapshots of the
//! text), plus the colours of the states that must stand out, driven only by `update`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;
use ratatui::Terminal;

use super::app::{
    update, AppState, Command, Popup, Screen, SignField, StepStatus, FORMATS, SIGN_FIELDS,
};
use super::event::Event;
use super::plan;
use super::views;
use super::worker::{Opened, Question, Reply, Request, WorkerMsg};
use crate::ceremony::engine::{self, CreatedObject, Effect, Event as EngineEvent, StepResult};
use crate::hsm::{KeyFlags, ObjectClass, ObjectInfo, TokenInfo};
use crate::keys::{Curve, PublicKey};
use crate::signing::Format;

const W: u16 = 80;
const H: u16 = 24;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tui-rehearsal.toml")
}

fn p256(seed: u8) -> PublicKey {
    let sk = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
    let pt = sk.public_key().to_sec1_bytes();
    PublicKey::ec(Curve::P256, &pt).unwrap()
}

fn info() -> TokenInfo {
    TokenInfo {
        backend: "sim:./rehearsal".into(),
        label: "officiant-rehearsal".into(),
        serial: "0000-REHEARSAL".into(),
        manufacturer: "Officiant".into(),
        model: "rehearsal".into(),
        initialized: true,
        rehearsal: true,
        min_pin_len: 4,
        max_pin_len: 16,
    }
}

fn objects() -> Vec<ObjectInfo> {
    let flags = KeyFlags {
        sensitive: Some(true),
        never_extractable: Some(true),
        local: Some(true),
        ..KeyFlags::default()
    };
    vec![
        ObjectInfo {
            class: ObjectClass::PrivateKey,
            label: "fw-signing-p256".into(),
            id: vec![0x01],
            public_key: Some(p256(7)),
            flags: flags.clone(),
        },
        ObjectInfo {
            class: ObjectClass::PublicKey,
            label: "fw-signing-p256".into(),
            id: vec![0x01],
            public_key: Some(p256(7)),
            flags: KeyFlags::default(),
        },
    ]
}

/// A console with the token opened and the fixture ceremony listed.
fn ready(color: bool) -> AppState {
    let mut s = AppState::new("sim:./rehearsal", vec![plan::summarize(&fixture())], color);
    update(
        &mut s,
        Event::Worker(WorkerMsg::Snapshot {
            info: info(),
            objects: objects(),
        }),
    );
    s
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn press(s: &mut AppState, code: KeyCode) -> Vec<Command> {
    update(s, key(code))
}

fn typed(s: &mut AppState, text: &str) {
    for c in text.chars() {
        assert!(press(s, KeyCode::Char(c)).is_empty());
    }
}

fn render(s: &AppState) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(W, H)).unwrap();
    t.draw(|f| views::draw(f, s)).unwrap();
    t
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The foreground colour of the first cell of `needle` on screen.
fn fg_of(buf: &Buffer, needle: &str) -> Color {
    let t = text(buf);
    let (row, line) = t
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{t}"));
    let col = line[..line.find(needle).unwrap()].chars().count();
    buf[(col as u16, row as u16)].fg
}

fn snap(name: &str, s: &AppState) -> Buffer {
    let t = render(s);
    insta::assert_snapshot!(name, t.backend());
    t.backend().buffer().clone()
}

fn worker_req(cmds: Vec<Command>) -> Request {
    match cmds.into_iter().next() {
        Some(Command::Worker(r)) => r,
        other => panic!("expected a worker request, got {other:?}"),
    }
}

fn opened() -> WorkerMsg {
    WorkerMsg::CeremonyOpened(Box::new(Opened {
        script: crate::ceremony::script::load(&fixture()).unwrap(),
        out: PathBuf::from("out/rehearsal"),
        completed: Vec::new(),
        interrupted: None,
        resumed: false,
    }))
}

fn worker(s: &mut AppState, m: WorkerMsg) -> Vec<Command> {
    update(s, Event::Worker(m))
}

/// The worker's runner as the screen sees it: the real engine, with the token's work
/// injected by the test (`done`, `failed`). The screen's requests go in through `feed`;
/// the messages the runner would send come back through `update`. `log` keeps what the
/// runner did (steps run, relogins, and secrets as name=value) for the test to check.
struct FakeRunner {
    script: crate::ceremony::script::Script,
    engine: engine::State,
    journal: (Vec<(usize, StepResult)>, Option<usize>),
    asked: Option<Question>,
    log: Vec<String>,
}

impl FakeRunner {
    fn new(o: &Opened) -> Self {
        FakeRunner {
            script: o.script.clone(),
            engine: engine::State::new(&o.script),
            journal: (o.completed.clone(), o.interrupted),
            asked: None,
            log: Vec::new(),
        }
    }

    /// Carry out the screen's commands; what is not the runner's comes back.
    fn feed(&mut self, s: &mut AppState, cmds: Vec<Command>) -> Vec<Command> {
        let mut rest = Vec::new();
        for c in cmds {
            match c {
                Command::Worker(Request::StartCeremony) => {
                    let (completed, interrupted) = self.journal.clone();
                    self.event(
                        s,
                        EngineEvent::Start {
                            completed,
                            interrupted,
                        },
                    );
                }
                Command::Worker(Request::Reply(r)) => {
                    let ev = match (self.asked.take(), r) {
                        (_, Reply::Abort(reason)) => EngineEvent::Abort { reason },
                        (Some(Question::SignOff { step, role, .. }), Reply::SignOff(name)) => {
                            EngineEvent::SignedOff { step, role, name }
                        }
                        (Some(Question::Confirm { step }), Reply::Confirm) => {
                            EngineEvent::Confirmed { step }
                        }
                        (Some(Question::Secret { name, .. }), Reply::Secret(v)) => {
                            self.log.push(format!(
                                "secret {name}={}",
                                String::from_utf8_lossy(v.expose())
                            ));
                            EngineEvent::SecretProvided { name }
                        }
                        (q, r) => panic!("reply {r:?} does not answer {q:?}"),
                    };
                    self.event(s, ev);
                }
                other => rest.push(other),
            }
        }
        rest
    }

    /// Press a key and let the runner act on what the screen sends.
    fn press(&mut self, s: &mut AppState, code: KeyCode) -> Vec<Command> {
        let cmds = press(s, code);
        self.feed(s, cmds)
    }

    fn done(&mut self, s: &mut AppState, step: usize, result: StepResult) {
        worker(s, WorkerMsg::CeremonyBusy(None));
        self.event(s, EngineEvent::StepDone { step, result });
    }

    fn relogged(&mut self, s: &mut AppState) {
        worker(s, WorkerMsg::CeremonyBusy(None));
        self.event(s, EngineEvent::ReloggedIn);
    }

    fn failed(&mut self, s: &mut AppState, step: usize, error: &str) {
        worker(s, WorkerMsg::CeremonyBusy(None));
        self.event(
            s,
            EngineEvent::StepFailed {
                step,
                error: error.into(),
            },
        );
    }

    fn event(&mut self, s: &mut AppState, ev: EngineEvent) {
        let mut queue: std::collections::VecDeque<Effect> =
            engine::update(&mut self.engine, ev).into();
        worker(s, WorkerMsg::CeremonyState(Box::new(self.engine.clone())));
        while let Some(fx) = queue.pop_front() {
            let over = self.engine.is_over();
            let next = match fx {
                Effect::OpenToken => Some(EngineEvent::TokenOpened),
                Effect::Relogin { .. } => {
                    self.log.push(format!("{fx:?}"));
                    worker(
                        s,
                        WorkerMsg::CeremonyBusy(Some("Logging in again to resume".into())),
                    );
                    None
                }
                Effect::NeedSignOff {
                    step,
                    role,
                    have,
                    need,
                } if !over => {
                    self.ask(
                        s,
                        Question::SignOff {
                            step,
                            role,
                            have,
                            need,
                        },
                    );
                    None
                }
                Effect::NeedConfirm { step } if !over => {
                    self.ask(s, Question::Confirm { step });
                    None
                }
                Effect::NeedSecret { step, name } if !over => {
                    self.ask(
                        s,
                        Question::Secret {
                            step,
                            name,
                            sets: false,
                        },
                    );
                    None
                }
                Effect::Rejected { step, reason } => {
                    worker(s, WorkerMsg::Rejected { step, reason });
                    None
                }
                Effect::RunStep { step, .. } => {
                    self.log.push(format!("{fx:?}"));
                    worker(
                        s,
                        WorkerMsg::CeremonyBusy(Some(crate::ceremony::runner::busy_text(
                            &self.script,
                            step,
                        ))),
                    );
                    None
                }
                Effect::Finish => {
                    self.close(s, true, None);
                    None
                }
                Effect::Fail { error, .. } => {
                    self.close(s, false, Some(error));
                    None
                }
                _ => None,
            };
            if let Some(ev) = next {
                queue.extend(engine::update(&mut self.engine, ev));
                worker(s, WorkerMsg::CeremonyState(Box::new(self.engine.clone())));
            }
        }
    }

    fn ask(&mut self, s: &mut AppState, q: Question) {
        self.asked = Some(q.clone());
        worker(s, WorkerMsg::Ask(q));
    }

    fn close(&mut self, s: &mut AppState, complete: bool, error: Option<String>) {
        let cmds = worker(
            s,
            WorkerMsg::CeremonyClosed {
                transcript: PathBuf::from("out/rehearsal/transcript.jsonl"),
                complete,
                error,
                head: complete.then(|| "ab".repeat(32)),
            },
        );
        // Only the object browser's refresh follows.
        assert!(
            cmds.iter()
                .all(|c| matches!(c, Command::Worker(Request::Refresh))),
            "{cmds:?}"
        );
    }

    fn ran(&self, step: usize) -> bool {
        self.log
            .iter()
            .any(|l| l.starts_with(&format!("RunStep {{ step: {step},")))
    }
}

/// Open the fixture ceremony and start it, up to the destructive confirmation of `init`.
fn to_init_confirm(s: &mut AppState) -> FakeRunner {
    let cmds = press(s, KeyCode::Enter); // open from home
    assert!(matches!(
        cmds[..],
        [Command::Worker(Request::OpenCeremony { .. })]
    ));
    let o = opened();
    let mut r = runner_for(&o);
    worker(s, o);
    assert_eq!(s.screen, Screen::Ceremony);
    r.press(s, KeyCode::Enter); // start
    typed(s, "Alice Admin");
    r.press(s, KeyCode::Enter);
    typed(s, "Walter Witness");
    r.press(s, KeyCode::Enter);
    r
}

fn runner_for(m: &WorkerMsg) -> FakeRunner {
    match m {
        WorkerMsg::CeremonyOpened(o) => FakeRunner::new(o),
        other => panic!("not an opened ceremony: {other:?}"),
    }
}

#[test]
fn home_screen() {
    let s = ready(true);
    snap("home", &s);
}

#[test]
fn home_object_browser_shows_fingerprint_and_words() {
    let mut s = ready(true);
    press(&mut s, KeyCode::Tab);
    let buf = snap("home_objects", &s);
    let fp = crate::formats::words::Fingerprint::of(&p256(7).fingerprint());
    let t = text(&buf);
    assert!(t.contains(&fp.groups[..17]), "{t}");
    assert!(t.contains(fp.words.split(' ').next().unwrap()), "{t}");
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
    let buf = snap("help", &s);
    let t = text(&buf);
    for b in super::keymap::KEYMAP
        .iter()
        .filter(|b| b.context != super::keymap::Context::Dismiss)
    {
        assert!(t.contains(b.hint), "help lacks {:?}", b.hint);
    }
    press(&mut s, KeyCode::Esc);
    assert!(s.popup.is_none());
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
    typed(&mut s, "Alice Admin");
    snap("ceremony_signoff", &s);
    r.press(&mut s, KeyCode::Enter);

    // One person cannot sign twice: the engine refuses, the console asks again.
    typed(&mut s, "Alice Admin");
    r.press(&mut s, KeyCode::Enter);
    let buf = snap("signoff_rejected", &s);
    assert_eq!(fg_of(&buf, "✗ Alice Admin already signed"), Color::Red);
    typed(&mut s, "Walter Witness");
    r.press(&mut s, KeyCode::Enter);

    // init-token erases the token: a red confirmation before anything is asked.
    let buf = snap("confirm_init_token", &s);
    assert_eq!(fg_of(&buf, "⚠ Run"), Color::Red);
    r.press(&mut s, KeyCode::Char('y'));

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

    // gen-p256: the witness signs off, the key comes back as a fingerprint.
    typed(&mut s, "Walter Witness");
    r.press(&mut s, KeyCode::Enter);
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
    let buf = snap("ceremony_result", &s);
    let groups = crate::formats::words::Fingerprint::of(&fp).groups;
    assert!(text(&buf).contains(&groups[..35]), "{}", text(&buf));

    // gen-rsa fails: error popup with cause and next step, then a red step.
    typed(&mut s, "Walter Witness");
    r.press(&mut s, KeyCode::Enter);
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

    // The recording: names and confirmations, never a secret's value.
    let run = s.run.as_ref().unwrap();
    let answers = plan::answers_toml(&run.script, &run.engine);
    insta::assert_snapshot!("answers", answers);
    assert!(!answers.contains("9731") && !answers.contains("246810"));
}

/// What export-fuses computed is shown to the witnesses, not only written to files: the
/// value in hex groups and PGP words, and HAB4's fuse words, within 80×24 (the U-Boot
/// commands are in the transcript).
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
    }
    let fp = crate::formats::words::Fingerprint::of(&hash);
    let shown = super::views::ceremony::fuse_values(
        &s.run.as_ref().unwrap().engine.steps[0]
            .result
            .as_ref()
            .unwrap()
            .details,
    );
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].1, fp);
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

#[test]
fn abort_asks_in_red_then_stops_the_engine() {
    let mut s = ready(true);
    let mut r = to_init_confirm(&mut s);
    r.press(&mut s, KeyCode::Char('n'));
    // Declining a destructive step offers to abort.
    let buf = snap("confirm_abort", &s);
    assert_eq!(fg_of(&buf, "⚠ Abort"), Color::Red);
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
    let o = WorkerMsg::CeremonyOpened(Box::new(Opened {
        script: crate::ceremony::script::load(&fixture()).unwrap(),
        out: PathBuf::from("out/rehearsal"),
        completed: vec![(0, StepResult::default()), (1, StepResult::default())],
        interrupted: Some(2),
        resumed: true,
    }));
    let mut r = runner_for(&o);
    worker(&mut s, o);
    snap("ceremony_resume", &s);
    r.press(&mut s, KeyCode::Enter);
    let run = s.run.as_ref().unwrap();
    assert_eq!(run.status(0), StepStatus::Resumed);
    // The interrupted step is signed off again, then the completed login's session is
    // restored: its PIN is asked again.
    typed(&mut s, "Walter Witness");
    r.press(&mut s, KeyCode::Enter);
    let run = s.run.as_ref().unwrap();
    assert!(matches!(&run.need, Some(super::app::Need::Secret { name, .. }) if name == "user"));
    typed(&mut s, "246810");
    r.press(&mut s, KeyCode::Enter);
    assert!(r.log.iter().any(|e| e.contains("Relogin")), "{:?}", r.log);
    let buf = snap("ceremony_resume_relogin", &s);
    assert!(text(&buf).contains("↺ resumed"));
    r.relogged(&mut s);
    assert!(r.ran(2), "the interrupted step runs after the relogin");
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
    assert!(text(&buf).contains("⚠ Run"));
}

#[test]
fn quitting_mid_ceremony_asks_first() {
    let mut s = ready(true);
    let mut r = to_init_confirm(&mut s);
    r.press(&mut s, KeyCode::Char('n'));
    r.press(&mut s, KeyCode::Char('n'));
    r.press(&mut s, KeyCode::Char('q'));
    assert!(!s.quit, "quit needs a confirmation mid-ceremony");
    assert!(s.popup.is_some());
    r.press(&mut s, KeyCode::Char('y'));
    assert!(s.quit);
    // The run is told: its transcript says it stopped.
    assert!(matches!(r.engine.phase, engine::Phase::Aborted(_)));
}

#[test]
fn sign_screen_with_completion_and_pin() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["firmware-a.bin", "firmware-b.bin", "notes.txt"] {
        std::fs::write(dir.path().join(f), b"payload").unwrap();
    }
    let mut s = ready(true);
    press(&mut s, KeyCode::Char('3'));
    snap("sign_empty", &s);
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
}

/// STM32 and ESP32 need more than a key and a file: the Options field takes the flags of
/// `officiant sign`, is checked before the PIN is asked, and travels with the request.
#[test]
fn sign_options_take_the_command_line_flags() {
    let mut s = ready(true);
    worker(&mut s, opened());
    s.screen = Screen::Sign;
    s.sign.format = FORMATS.iter().position(|f| *f == "stm32mp15").unwrap();
    s.sign.input.input.value = "tf-a.bin".into();
    s.sign.field = SIGN_FIELDS
        .iter()
        .position(|f| *f == SignField::Options)
        .unwrap();
    let buf = snap("sign_options_hint", &s);
    assert!(text(&buf).contains("--load-address 0x… --entry-point 0x…"));

    // A misspelt flag: named, and no PIN is asked.
    press(&mut s, KeyCode::Enter);
    typed(&mut s, "--load-adress 0x2ffc2400");
    press(&mut s, KeyCode::Enter);
    press(&mut s, KeyCode::Char('g'));
    match &s.popup {
        Some(Popup::Error { cause, .. }) => {
            assert!(
                cause.contains("Options: unexpected argument '--load-adress'"),
                "{cause}"
            )
        }
        other => panic!("{other:?}"),
    }
    press(&mut s, KeyCode::Enter);

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
