//! Every screen and popup at 80×24 through ratatui's TestBackend (insta snapshots of the
//! text), plus the colours of the states that must stand out, driven only by `update`;
//! the runner's side is the real engine (`FakeRunner`), with the token's work injected.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Color;
use ratatui::Terminal;

use super::app::{update, AppState, Command, Popup, Screen};
use super::ceremony::{Ask, StepStatus};
use super::event::Event;
use super::plan;
use super::sign::{SignField, SIGN_FIELDS};
use super::views;
use super::worker::{Opened, Question, Reply, Request, WorkerMsg};
use crate::ceremony::engine::{self, CreatedObject, Effect, Event as EngineEvent, StepResult};
use crate::ceremony::inputs::Danger;
use crate::ceremony::script::Script;
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
pub(super) fn ready(color: bool) -> AppState {
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

pub(super) fn press(s: &mut AppState, code: KeyCode) -> Vec<Command> {
    update(s, key(code))
}

pub(super) fn typed(s: &mut AppState, text: &str) {
    for c in text.chars() {
        assert!(press(s, KeyCode::Char(c)).is_empty());
    }
}

pub(super) fn render(s: &AppState) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(W, H)).unwrap();
    t.draw(|f| views::draw(f, s)).unwrap();
    t
}

pub(super) fn text(buf: &Buffer) -> String {
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
pub(super) fn fg_of(buf: &Buffer, needle: &str) -> Color {
    let t = text(buf);
    let (row, line) = t
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not on screen:\n{t}"));
    let col = line[..line.find(needle).unwrap()].chars().count();
    buf[(col as u16, row as u16)].fg
}

pub(super) fn snap(name: &str, s: &AppState) -> Buffer {
    let t = render(s);
    insta::assert_snapshot!(name, t.backend());
    t.backend().buffer().clone()
}

pub(super) fn worker_req(cmds: Vec<Command>) -> Request {
    match cmds.into_iter().next() {
        Some(Command::Worker(r)) => r,
        other => panic!("expected a worker request, got {other:?}"),
    }
}

fn opened() -> WorkerMsg {
    opened_with(
        crate::ceremony::script::load(&fixture()).unwrap(),
        vec![],
        None,
    )
}

/// The worker's answer to opening `script`, with what its journal says was done.
fn opened_with(
    script: Script,
    completed: Vec<(usize, StepResult)>,
    interrupted: Option<usize>,
) -> WorkerMsg {
    let state = engine::preview(
        &script,
        EngineEvent::Start {
            completed: completed.clone(),
            interrupted,
            acknowledged: completed
                .iter()
                .map(|(i, _)| {
                    (
                        *i,
                        engine::SignOff {
                            role: "witness".into(),
                            name: "Walter Witness".into(),
                        },
                    )
                })
                .collect(),
        },
    );
    WorkerMsg::CeremonyOpened(Box::new(Opened {
        resumed: !completed.is_empty(),
        script,
        out: PathBuf::from("out/rehearsal"),
        completed,
        interrupted,
        state,
    }))
}

pub(super) fn worker(s: &mut AppState, m: WorkerMsg) -> Vec<Command> {
    update(s, Event::Worker(m))
}

/// The worker's runner as the screen sees it: the real engine, with the token's work
/// injected by the test (`done`, `failed`, `relogged`). The screen's requests go in
/// through `feed`; the messages the runner would send come back through `update`. `log`
/// keeps what the runner did (steps run, relogins, and secrets as name=value) for the
/// test to check.
struct FakeRunner {
    script: Script,
    engine: engine::State,
    start: Option<EngineEvent>,
    asked: Option<Question>,
    log: Vec<String>,
}

fn danger() -> Danger {
    Danger {
        token_label: "officiant-rehearsal".into(),
        serial: "0000-REHEARSAL".into(),
        objects: Some(3),
        what: "every key and object on the token".into(),
    }
}

impl FakeRunner {
    fn new(o: &Opened) -> Self {
        let acknowledged = o
            .state
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.acknowledged.clone().map(|a| (i, a)))
            .collect();
        FakeRunner {
            script: o.script.clone(),
            engine: engine::State::new(&o.script),
            start: Some(EngineEvent::Start {
                completed: o.completed.clone(),
                interrupted: o.interrupted,
                acknowledged,
            }),
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
                    let start = self.start.take().expect("started once");
                    self.event(s, start);
                }
                Command::Worker(Request::Reply(r)) => {
                    let ev = match (self.asked.take(), r) {
                        (_, Reply::Abort(reason)) => EngineEvent::Abort { reason },
                        (Some(Question::Roster), Reply::Roster(r)) => EngineEvent::Roster(r),
                        (Some(Question::SignOff { step, role, .. }), Reply::SignOff(name)) => {
                            EngineEvent::SignedOff { step, role, name }
                        }
                        (Some(Question::Acknowledge { step, role }), Reply::Acknowledge(name)) => {
                            EngineEvent::Acknowledged { step, role, name }
                        }
                        (Some(Question::Confirm { step, .. }), Reply::Confirm) => {
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
                Effect::NeedRoster if !over => {
                    self.ask(s, Question::Roster);
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
                Effect::NeedAck { step, role } if !over => {
                    self.ask(s, Question::Acknowledge { step, role });
                    None
                }
                Effect::NeedConfirm { step } if !over => {
                    self.ask(
                        s,
                        Question::Confirm {
                            step,
                            danger: danger(),
                        },
                    );
                    None
                }
                Effect::NeedSecret { step, name, retry } if !over => {
                    let sets = self.script.steps[step].action.sets_secret(&name);
                    self.ask(
                        s,
                        Question::Secret {
                            step,
                            name,
                            sets,
                            retry,
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
                transcript: PathBuf::from(if complete {
                    "out/rehearsal/transcript.md"
                } else {
                    "out/rehearsal/transcript.jsonl"
                }),
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

fn runner_for(m: &WorkerMsg) -> FakeRunner {
    match m {
        WorkerMsg::CeremonyOpened(o) => FakeRunner::new(o),
        other => panic!("not an opened ceremony: {other:?}"),
    }
}

/// Take the roll call: each (name, role indexes to tick) in turn, then an empty name.
fn roll_call(r: &mut FakeRunner, s: &mut AppState, people: &[(&str, &[usize])]) {
    for (name, roles) in people {
        typed(s, name);
        r.press(s, KeyCode::Enter);
        for (k, &role) in roles.iter().enumerate() {
            let at = match &s.run.as_ref().unwrap().asking {
                Some(Ask::Roster(rc)) => rc.choosing.as_ref().map(|c| c.at).unwrap_or(0),
                _ => 0,
            };
            let _ = k;
            for _ in at..role {
                r.press(s, KeyCode::Down);
            }
            for _ in role..at {
                r.press(s, KeyCode::Up);
            }
            r.press(s, KeyCode::Char(' '));
        }
        r.press(s, KeyCode::Enter);
    }
    r.press(s, KeyCode::Enter);
}

/// Pick `name` from the person picker and press Enter.
fn pick(r: &mut FakeRunner, s: &mut AppState, name: &str) {
    let run = s.run.as_ref().unwrap();
    let names: Vec<String> = run.candidates().iter().map(|p| p.name.clone()).collect();
    let at = names
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("{name} is not offered: {names:?}"));
    let now = match &run.asking {
        Some(Ask::SignOff { pick, .. } | Ask::Acknowledge { pick, .. }) => *pick,
        other => panic!("no person asked for: {other:?}"),
    };
    for _ in now..at {
        r.press(s, KeyCode::Down);
    }
    for _ in at..now {
        r.press(s, KeyCode::Up);
    }
    r.press(s, KeyCode::Enter);
}

/// Open the fixture ceremony, take the roll call (Alice administrator, Walter and Wanda
/// witnesses), and sign off init, up to its typed confirmation.
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
    roll_call(
        &mut r,
        s,
        &[
            ("Alice Admin", &[0]),
            ("Walter Witness", &[1]),
            ("Wanda Witness", &[1]),
        ],
    );
    pick(&mut r, s, "Alice Admin");
    pick(&mut r, s, "Walter Witness");
    r
}

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
    for b in super::keymap::KEYMAP
        .iter()
        .filter(|b| b.context != super::keymap::Context::Dismiss)
    {
        assert!(shown.contains(b.hint), "help lacks {:?}", b.hint);
    }
    press(&mut s, KeyCode::Esc);
    assert!(s.popup.is_none());
}

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
    let shown = super::views::ceremony::fuse_values(
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

#[test]
fn a_small_terminal_says_so() {
    let s = ready(true);
    let mut t = Terminal::new(TestBackend::new(60, 20)).unwrap();
    t.draw(|f| views::draw(f, &s)).unwrap();
    assert!(text(t.backend().buffer()).contains("terminal too small: needs 80×24"));
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
    // raw-pkcs1 is not offered for an EC key.
    assert!(!super::sign::formats(&s).contains(&"raw-pkcs1"));
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
    let dir = tempfile::tempdir().unwrap();
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
    s.sign.format = super::sign::formats(&s)
        .iter()
        .position(|f| *f == "stm32mp15")
        .unwrap();
    expect_error(&mut s, "needs --load-address and --entry-point");
    s.sign.format = super::sign::formats(&s)
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
