//! Drawing: one function per region, each reading `&AppState` only. A view never changes
//! state, never reads a file and never talks to the worker; what it shows is what
//! `update` put in the state.

pub mod approvals;
pub mod ceremony;
pub mod home;
pub mod popups;
pub mod sign;
pub mod widgets;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::app::{AppState, Screen, TokenStatus};
use super::keymap::{self, Action};

/// Styles. Under NO_COLOR every style is a modifier only; the symbols (✓ ✗ ▶ ⚠) carry
/// the meaning either way.
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    /// Colours on (false under NO_COLOR: modifiers only).
    pub color: bool,
}

impl Theme {
    fn pick(&self, colored: Style, plain: Style) -> Style {
        if self.color {
            colored
        } else {
            plain
        }
    }
    /// Plain text.
    pub fn base(&self) -> Style {
        Style::default()
    }
    /// Headings and field labels.
    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    /// Secondary text: PGP words, notices, what is not selected.
    pub fn dim(&self) -> Style {
        self.pick(
            Style::default().fg(Color::DarkGray),
            Style::default().add_modifier(Modifier::DIM),
        )
    }
    /// What has the keyboard: the focused field's marker, the active popup's border.
    pub fn focus(&self) -> Style {
        self.pick(Style::default().fg(Color::Cyan), Style::default())
    }
    /// The selected row or tab (reverse video, with or without colour).
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    /// A step done, a signature good.
    pub fn ok(&self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Green)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    /// Under way, or a warning (the rehearsal token banner).
    pub fn running(&self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
    /// Failures and errors (underlined without colour).
    pub fn fail(&self) -> Style {
        self.pick(
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }
    /// Borders and titles of a confirmation that destroys something.
    pub fn destructive(&self) -> Style {
        self.pick(
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        )
    }
    /// Key names in the footer and the help overlay.
    pub fn key(&self) -> Style {
        self.pick(
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
            Style::default().add_modifier(Modifier::BOLD),
        )
    }
}

/// Draw the whole console (or, below the smallest size it can show everything in, say
/// so instead of drawing a broken frame).
pub fn draw(f: &mut Frame, s: &AppState) {
    let t = Theme { color: s.color };
    let area = f.area();
    let (w, h) = crate::tui::app::MIN_SIZE;
    if area.width < w || area.height < h {
        f.render_widget(
            Paragraph::new(vec![
                Line::styled(format!("terminal too small: needs {w}×{h}"), t.fail()),
                Line::raw(format!(
                    "(now {}×{}); enlarge the window",
                    area.width, area.height
                )),
            ])
            .wrap(ratatui::widgets::Wrap { trim: true }),
            area,
        );
        return;
    }
    let [head, body, status, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    header(f, head, s, &t);
    match s.screen {
        Screen::Home => home::draw(f, body, s, &t),
        Screen::Ceremony => ceremony::draw(f, body, s, &t),
        Screen::Sign => sign::draw(f, body, s, &t),
        Screen::Approvals => approvals::draw(f, body, s, &t),
    }
    status_line(f, status, s, &t);
    footer(f, foot, s, &t);
    popups::draw(f, s, &t);
}

fn header(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let tab = |name: &'static str, key: &'static str, on: bool| {
        let st = if on { t.selected() } else { t.dim() };
        Span::styled(format!(" {key} {name} "), st)
    };
    let mut spans = vec![
        Span::styled("officiant ", t.title()),
        tab("Home", "1", s.screen == Screen::Home),
        tab("Ceremony", "2", s.screen == Screen::Ceremony),
        tab("Sign", "3", s.screen == Screen::Sign),
        tab("Approvals", "4", s.screen == Screen::Approvals),
        // No gap: the rehearsal warning must fit in 80 columns.
    ];
    if let TokenStatus::Ready(i) = &s.token {
        if i.rehearsal {
            spans.push(Span::styled("⚠ REHEARSAL TOKEN, NOT SECURE", t.running()));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn status_line(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let line = if let Some(b) = &s.busy {
        widgets::progress_line(&b.what, b.elapsed, t)
    } else if let Some(n) = &s.notice {
        Line::styled(format!("» {n}"), t.dim())
    } else {
        Line::default()
    };
    f.render_widget(Paragraph::new(line), area);
}

/// Key hints for what the keyboard does right now, from the keymap table.
fn footer(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let mut spans = Vec::new();
    // While the token works, only what still does something is offered.
    let busy = s.busy.is_some() && s.popup.is_none();
    for b in keymap::footer_hints(&s.contexts()) {
        if busy
            && !matches!(
                b.action,
                Action::Help | Action::Quit | Action::Up | Action::Down
            )
        {
            continue;
        }
        if !s.available(b.action) {
            continue;
        }
        spans.push(Span::styled(b.shown, t.key()));
        spans.push(Span::raw(format!(" {}  ", b.hint)));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A count of lines or rows as a terminal height or scroll offset. Saturates at
/// `u16::MAX`, which no terminal reaches, so a long list never wraps around to a small
/// height or panics on the additions made to it.
pub fn rows(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Break `text` at spaces into lines of at most `width` characters (a longer word stands
/// alone), so fingerprints wrap between groups and words, never inside one.
pub fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let need = cur.chars().count() + usize::from(!cur.is_empty()) + word.chars().count();
        if !cur.is_empty() && need > width {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::rows;

    #[test]
    fn a_count_past_any_terminal_saturates_instead_of_wrapping() {
        assert_eq!(rows(7), 7);
        assert_eq!(rows(usize::from(u16::MAX)), u16::MAX);
        // 65_541 as u16 would be 5: a tiny popup for a huge list.
        assert_eq!(rows(65_541), u16::MAX);
        assert_eq!(rows(65_541).saturating_add(6), u16::MAX);
    }
}
