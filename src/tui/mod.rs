//! The console (ratatui): renders `&State`, turns keys into `Event`s.

/// Open the console on `backend` (default `sim:./rehearsal`).
pub fn run_console(backend: Option<&str>) -> Result<(), String> {
    let _ = backend;
    Err("the console is not built yet; use `officiant run`".into())
}
