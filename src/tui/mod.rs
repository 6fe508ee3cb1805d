//! The console (ratatui): renders `&AppState`, turns keys into `Event`s.
//!
//! Elm architecture: one [`app::AppState`], one pure [`app::update`], views that take
//! `&AppState`. The run loop blocks on one channel (keys, worker results, and a 1 s tick
//! only while an operation runs), so an idle console uses no CPU.
//!
//! What it owns: the screens (home, ceremony, sign, approvals; one component module
//! each, drawn by [`views`]), the keymap, and the loop that carries out `update`'s
//! [`app::Command`]s. What it must not do: open a token, run a step or sign a file
//! itself. Token work is a [`worker::Request`] to the worker thread, which runs the
//! ceremony runner (the same one `officiant run` uses) and answers with
//! [`worker::WorkerMsg`]s; the screen never blocks on the token.

pub mod app;
pub mod approvals;
pub mod ceremony;
pub mod event;
pub mod home;
pub mod keymap;
pub mod plan;
pub mod sign;
pub mod terminal;
pub mod views;
pub mod worker;

use std::path::Path;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::{Duration, Instant};

use app::{AppState, Command};
use event::Event;

/// Why the console stopped. [`run_console`] turns it into the one line `main` prints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Drawing to or setting up the terminal failed.
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    /// The worker thread hung up (it panicked or dropped its channel): no token work
    /// can finish, so the console closes rather than wait forever.
    #[error("the console's worker thread stopped")]
    WorkerGone,
}

/// True unless NO_COLOR is set to a non-empty value (no-color.org).
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Open the console on `backend` (default `sim:./rehearsal`), listing the ceremony scripts
/// in `ceremonies` and recording runs under `out_root`.
pub fn run_console(
    backend: Option<&str>,
    ceremonies: &Path,
    out_root: &Path,
) -> Result<(), String> {
    run_console_with(backend, ceremonies, out_root, &approvals::default_dir())
}

/// [`run_console`], with the Approvals screen reading signing requests from `requests`.
pub fn run_console_with(
    backend: Option<&str>,
    ceremonies: &Path,
    out_root: &Path,
    requests: &Path,
) -> Result<(), String> {
    let backend = backend.unwrap_or(crate::hsm::uri::DEFAULT_BACKEND);
    run(backend, ceremonies, out_root, requests).map_err(|e| e.to_string())
}

fn run(backend: &str, ceremonies: &Path, out_root: &Path, requests: &Path) -> Result<(), Error> {
    let ceremonies = plan::scan(ceremonies);
    let mut state = AppState::new(
        &crate::hsm::uri::BackendUri::parse(backend)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| crate::hsm::uri::redact(backend)),
        ceremonies,
        color_enabled(),
    );
    state.out_root = out_root.to_path_buf();
    state.requests_dir = requests.to_path_buf();
    crate::secret::collect_warnings();
    let (tx, rx) = channel::<Event>();
    let mut worker = worker::spawn(backend.to_string(), tx.clone());
    let (mut term, _guard) = terminal::setup()?;
    event::spawn_input(tx.clone());
    // The opening snapshot is an operation too: show progress until it arrives.
    state.set_busy("Opening the token".into());
    // The operation under way (its number) and when it started: the elapsed time restarts
    // with each new one.
    let mut since: Option<(u64, Instant)> = None;
    loop {
        since = match (&state.busy, since) {
            (Some(b), Some((seq, t))) if b.seq == seq => Some((seq, t)),
            (Some(b), _) => Some((b.seq, Instant::now())),
            (None, _) => None,
        };
        term.draw(|f| views::draw(f, &state))?;
        if state.quit {
            return Ok(());
        }
        // Block: forever when idle, one second at a time while an operation runs.
        let ev = match since {
            Some((_, t0)) => match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(ev) => ev,
                Err(RecvTimeoutError::Timeout) => Event::Tick(t0.elapsed()),
                Err(RecvTimeoutError::Disconnected) => return Err(Error::WorkerGone),
            },
            None => rx.recv().map_err(|_| Error::WorkerGone)?,
        };
        let warned = crate::secret::take_warnings();
        if let Some(w) = warned.last() {
            state.notice = Some(w.clone());
        }
        for cmd in app::update(&mut state, ev) {
            match cmd {
                Command::Worker(req) => {
                    worker.send(req).map_err(|_| Error::WorkerGone)?;
                }
                // The old worker ends (and lets go of the token) when its sender drops.
                Command::Reopen(uri) => worker = worker::spawn(uri, tx.clone()),
                Command::ClearScreen => clear_screen(&mut term)?,
                Command::SaveAnswers { script, out, base } => {
                    state.notice = Some(match save_answers(&script, &out, &base) {
                        Ok(p) => format!("answers saved to {}", p.display()),
                        Err(e) => format!("answers not saved: {e}"),
                    });
                }
            }
        }
    }
}

/// Blank every cell (a frame of nothing: each cell that held anything is overwritten),
/// then have the terminal erase its screen too. Not `Terminal::clear`, which asks the
/// terminal for the cursor position, a reply the input thread may read first.
fn clear_screen(term: &mut ratatui::DefaultTerminal) -> std::io::Result<()> {
    use ratatui::backend::Backend;
    term.draw(|f| f.render_widget(ratatui::widgets::Clear, f.area()))?;
    term.backend_mut()
        .clear_region(ratatui::backend::ClearType::All)?;
    term.backend_mut().flush()
}

/// Write the run's answers file (from its transcript) under the first free name of
/// `base`, `base-2`, `base-3` …: a second save never overwrites the first.
fn save_answers(
    script: &crate::ceremony::script::Script,
    out: &Path,
    base: &Path,
) -> Result<std::path::PathBuf, String> {
    let v = crate::ceremony::transcript::verify(&out.join(crate::ceremony::runner::TRANSCRIPT))
        .map_err(|e| e.to_string())?;
    let text = crate::ceremony::answers::from_transcript(script, &v.entries);
    let stem = base.to_string_lossy().trim_end_matches(".toml").to_string();
    for n in 1..100 {
        let path = if n == 1 {
            base.to_path_buf()
        } else {
            std::path::PathBuf::from(format!("{stem}-{n}.toml"))
        };
        match crate::output::write_new(&path, text.as_bytes()) {
            Ok(()) => return Ok(path),
            Err(crate::output::Error::Exists(_)) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("{}: 99 answers files already", base.display()))
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "test fixtures: small literal values and loop counters"
)]
mod tests;
#[cfg(test)]
mod tests_approvals;
