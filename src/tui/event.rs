//! Everything that can change the console's state arrives as one [`Event`] on one channel:
//! keys from the input thread, results from the worker thread, and a 1 s tick that runs
//! only while an operation is under way (so an idle console sleeps in `recv`).

use std::sync::mpsc::Sender;
use std::time::Duration;

use ratatui::crossterm::event::{self as ct, KeyEvent, KeyEventKind};

use super::worker::WorkerMsg;

/// One input to [`super::app::update`].
#[derive(Debug)]
pub enum Event {
    /// A key pressed (or repeated; releases are dropped), looked up in the keymap.
    Key(KeyEvent),
    /// The terminal changed size: nothing to update, the next frame is drawn to fit.
    Resize,
    /// Time since the running operation started.
    Tick(Duration),
    /// What the worker thread reports: a token snapshot, a runner question, a result.
    Worker(WorkerMsg),
}

/// Forward terminal input to `tx`. Blocks in `crossterm::event::read`; ends when the
/// receiver is gone or the terminal fails.
pub fn spawn_input(tx: Sender<Event>) {
    std::thread::spawn(move || loop {
        let ev = match ct::read() {
            Ok(ct::Event::Key(k)) if k.kind != KeyEventKind::Release => Event::Key(k),
            Ok(ct::Event::Resize(..)) => Event::Resize,
            Ok(_) => continue,
            Err(_) => return,
        };
        if tx.send(ev).is_err() {
            return;
        }
    });
}
