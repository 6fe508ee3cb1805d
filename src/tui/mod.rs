//! The console (ratatui): renders `&AppState`, turns keys into `Event`s.
//!
//! Elm architecture: one [`app::AppState`], one pure [`app::update`], views that take
//! `&AppState`. The run loop blocks on one channel (keys, worker results, and a 1 s tick
//! only while an operation runs), so an idle console uses no CPU.

pub mod app;
pub mod event;
pub mod keymap;
pub mod plan;
pub mod terminal;
pub mod views;
pub mod worker;

use std::path::Path;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::{Duration, Instant};

use app::{AppState, Command};
use event::Event;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error("the console's worker thread stopped")]
    WorkerGone,
}

/// True unless NO_COLOR is set to a non-empty value (no-color.org).
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Open the console on `backend` (default `sim:./rehearsal`).
pub fn run_console(backend: Option<&str>, out_root: &Path) -> Result<(), String> {
    let backend = backend.unwrap_or(crate::hsm::uri::DEFAULT_BACKEND);
    run(backend, out_root).map_err(|e| e.to_string())
}

fn run(backend: &str, out_root: &Path) -> Result<(), Error> {
    let ceremonies = plan::scan(Path::new("ceremonies"));
    let mut state = AppState::new(
        &crate::hsm::uri::BackendUri::parse(backend)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| crate::hsm::uri::redact(backend)),
        ceremonies,
        color_enabled(),
    );
    state.out_root = out_root.to_path_buf();
    let (tx, rx) = channel::<Event>();
    let worker = worker::spawn(backend.to_string(), tx.clone());
    let (mut term, _guard) = terminal::setup()?;
    event::spawn_input(tx);
    // The opening snapshot is an operation too: show progress until it arrives.
    state.busy = Some(app::Busy {
        what: "Opening the token".into(),
        elapsed: Duration::ZERO,
    });
    let mut since: Option<Instant> = Some(Instant::now());
    loop {
        term.draw(|f| views::draw(f, &state))?;
        if state.quit {
            return Ok(());
        }
        // Block: forever when idle, one second at a time while an operation runs.
        let ev = match since {
            Some(t0) => match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout) => Event::Tick(t0.elapsed()),
                Err(RecvTimeoutError::Disconnected) => return Err(Error::WorkerGone),
            },
            None => rx.recv().map_err(|_| Error::WorkerGone)?,
        };
        for cmd in app::update(&mut state, ev) {
            match cmd {
                Command::Worker(req) => {
                    worker.send(req).map_err(|_| Error::WorkerGone)?;
                }
                Command::Save { path, contents } => {
                    state.notice =
                        Some(match crate::output::write_new(&path, contents.as_bytes()) {
                            Ok(()) => format!("answers saved to {}", path.display()),
                            Err(e) => format!("answers not saved: {e}"),
                        });
                }
            }
        }
        since = match (&state.busy, since) {
            (Some(_), Some(t)) => Some(t),
            (Some(_), None) => Some(Instant::now()),
            (None, _) => None,
        };
    }
}

#[cfg(test)]
mod tests;
