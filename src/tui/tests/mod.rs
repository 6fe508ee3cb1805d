//! Every screen and popup at 80×24 through ratatui's TestBackend (insta snapshots of the
//! text), plus the colours of the states that must stand out, driven only by `update`;
//! the runner's side is the real engine (`FakeRunner`), with the token's work injected.
//!
//! This file holds the fixtures and the `FakeRunner`; the tests are by screen:
//! `home_screen` (the token, help, sizes, colours), `ceremony_screen` (a ceremony from
//! roll call to transcript head), `sign_screen` (sign and verify), `custody_steps`
//! (shares handed out and taken in).

mod ceremony_screen;
mod custody_steps;
mod home_screen;
mod sign_screen;

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

/// A scratch directory whose path has the same length wherever the tests run: snapshots
/// show it as `/tmp/DIR` and the box around it must not move with `$TMPDIR`.
pub(super) fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(".tmp")
        .rand_bytes(6)
        .tempdir_in("/tmp")
        .unwrap()
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
                        // The custodians' desk is the runner's, not the engine's: the
                        // test plays it (see `custody_desk`).
                        (Some(Question::Custodian { .. }), Reply::Custodian(name)) => {
                            self.log.push(format!("custodian {name}"));
                            continue;
                        }
                        (Some(Question::ShowShare { .. }), Reply::ShareCopy(v)) => {
                            self.log
                                .push(format!("copy {}", String::from_utf8_lossy(v.expose())));
                            continue;
                        }
                        (Some(Question::ShareEntry { .. }), Reply::Share(v)) => {
                            self.log
                                .push(format!("share {}", String::from_utf8_lossy(v.expose())));
                            continue;
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
