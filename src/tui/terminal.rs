//! Terminal setup and restore. `ratatui::try_init` installs a panic hook that restores the
//! terminal before the panic message prints; [`Guard`] restores it on every other exit.

use ratatui::DefaultTerminal;

/// Restores the terminal (cooked mode, main screen) when dropped.
pub struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Enter raw mode and the alternate screen. Keep the guard alive while the console runs.
pub fn setup() -> std::io::Result<(DefaultTerminal, Guard)> {
    let term = ratatui::try_init()?;
    Ok((term, Guard))
}
