//! Popups drawn over the screen: help, error, confirmation, the PIN before signing.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::{widgets, Theme};
use crate::tui::app::{AppState, Popup};
use crate::tui::keymap::{self, Context};

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    area.centered(
        Constraint::Length(w.min(area.width)),
        Constraint::Length(h.min(area.height)),
    )
}

pub fn draw(f: &mut Frame, s: &AppState, t: &Theme) {
    let Some(p) = &s.popup else { return };
    let area = f.area();
    match p {
        Popup::Help => help(f, area, t),
        Popup::Error { title, cause, next } => {
            let r = centered(area, 64, 11);
            f.render_widget(Clear, r);
            let lines = vec![
                Line::styled(format!("✗ {title}"), t.fail()),
                Line::default(),
                Line::from(vec![
                    Span::styled("Cause: ", t.title()),
                    Span::raw(cause.clone()),
                ]),
                Line::default(),
                Line::from(vec![
                    Span::styled("Next:  ", t.title()),
                    Span::raw(next.clone()),
                ]),
            ];
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: true })
                    .block(Block::bordered().title(" Error ").border_style(t.fail())),
                r,
            );
        }
        Popup::Confirm {
            question,
            detail,
            destructive,
            ..
        } => {
            let r = centered(area, 60, 8);
            f.render_widget(Clear, r);
            let style = if *destructive {
                t.destructive()
            } else {
                t.focus()
            };
            let mark = if *destructive { "⚠ " } else { "" };
            let lines = vec![
                Line::styled(format!("{mark}{question}"), style),
                Line::default(),
                Line::raw(detail.clone()),
                Line::default(),
                Line::from(vec![
                    Span::styled("y", t.key()),
                    Span::raw(" yes    "),
                    Span::styled("n/Esc", t.key()),
                    Span::raw(" no"),
                ]),
            ];
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: true })
                    .block(Block::bordered().title(" Confirm ").border_style(style)),
                r,
            );
        }
        Popup::SignPin(entry) => {
            let r = centered(area, 56, 5);
            f.render_widget(Clear, r);
            widgets::draw_secret(f, r, entry, t);
        }
    }
}

/// Every binding, grouped by where it applies: generated from the keymap table.
fn help(f: &mut Frame, area: Rect, t: &Theme) {
    let r = centered(area, 76, 22);
    f.render_widget(Clear, r);
    let mut left: Vec<Line> = Vec::new();
    let mut right: Vec<Line> = Vec::new();
    let groups = [
        Context::Global,
        Context::Home,
        Context::Ceremony,
        Context::Sign,
        Context::Entry,
        Context::Path,
        Context::Confirm,
    ];
    for (i, ctx) in groups.iter().enumerate() {
        let col = if i < 3 { &mut left } else { &mut right };
        col.push(Line::styled(ctx.title(), t.title()));
        for b in keymap::bindings(*ctx) {
            col.push(Line::from(vec![
                Span::styled(format!(" {:<10}", b.shown), t.key()),
                Span::raw(b.hint),
            ]));
        }
    }
    let block = Block::bordered().title(" Help · Esc closes ");
    let inner = block.inner(r);
    f.render_widget(block, r);
    let [a, b] = ratatui::layout::Layout::horizontal([
        Constraint::Percentage(50),
        Constraint::Percentage(50),
    ])
    .areas(inner);
    f.render_widget(Paragraph::new(left), a);
    f.render_widget(Paragraph::new(right), b);
}
