//! Popups drawn over the screen: help, error, confirmation, the typed confirmation of a
//! destructive step, a PIN, the choice of token.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::{widgets, Theme};
use crate::tui::app::{AppState, Popup, TypedConfirm};
use crate::tui::keymap::{self, Context};

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    area.centered(
        Constraint::Length(w.min(area.width)),
        Constraint::Length(h.min(area.height)),
    )
}

/// The popup in [`AppState::popup`], if any, centred over the whole frame.
pub fn draw(f: &mut Frame, s: &AppState, t: &Theme) {
    let Some(p) = &s.popup else { return };
    let area = f.area();
    match p {
        Popup::Help => help(f, area, s.help_scroll, t),
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
        Popup::SignPin(entry) | Popup::LoginPin(entry) => {
            let r = centered(area, 56, 5);
            f.render_widget(Clear, r);
            widgets::draw_secret(f, r, entry, t);
        }
        Popup::Destroy(d) => destroy(f, area, d, t),
        Popup::PickToken { tokens, at } => {
            let r = centered(area, 64, super::rows(tokens.len()).saturating_add(6));
            f.render_widget(Clear, r);
            let mut lines = vec![
                Line::styled("The module shows several tokens. Which one?", t.title()),
                Line::default(),
            ];
            for (k, tok) in tokens.iter().enumerate() {
                let (mark, style) = if k == *at {
                    ("▶ ", t.selected())
                } else {
                    ("  ", t.base())
                };
                lines.push(Line::from(vec![
                    Span::styled(mark, t.focus()),
                    Span::styled(format!("{:?}", tok.label), style),
                    Span::styled(format!("  serial {} · {}", tok.serial, tok.model), t.dim()),
                ]));
            }
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(" Token ").border_style(t.focus())),
                r,
            );
        }
    }
}

/// A destructive step: what it destroys, on which token, confirmed by typing the label.
fn destroy(f: &mut Frame, area: Rect, d: &TypedConfirm, t: &Theme) {
    let r = centered(area, 66, 12);
    f.render_widget(Clear, r);
    let objects = match d.danger.objects {
        Some(n) => format!("{n} objects on it now"),
        None => "its objects are not listed without a login".into(),
    };
    let mut lines = vec![
        Line::styled(
            format!("⚠ Step {} destroys {}.", d.step + 1, d.danger.what),
            t.destructive(),
        ),
        Line::default(),
        Line::from(vec![
            Span::styled("Token   ", t.title()),
            Span::raw(format!("{:?}", d.danger.token_label)),
        ]),
        Line::from(vec![
            Span::styled("Serial  ", t.title()),
            Span::raw(d.danger.serial.clone()),
        ]),
        Line::from(vec![
            Span::styled("Now     ", t.title()),
            Span::raw(objects),
        ]),
        Line::default(),
        Line::raw(format!("Type {:?} and Enter to go ahead:", d.word)),
        Line::from(vec![
            Span::styled("▶ ", t.focus()),
            Span::styled(d.input.value.clone(), t.selected()),
            Span::styled("█", t.focus()),
        ]),
    ];
    if let Some(e) = &d.input.error {
        lines.push(Line::styled(format!("✗ {e}"), t.fail()));
    }
    lines.push(Line::from(vec![
        Span::styled("Esc", t.key()),
        Span::raw(" stop here (asks whether to abort)"),
    ]));
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: true }).block(
            Block::bordered()
                .title(" Destructive step ")
                .border_style(t.destructive()),
        ),
        r,
    );
}

/// Every binding, grouped by where it applies: generated from the keymap table. Two
/// columns when the screen is wide enough; it scrolls (PgUp/PgDn) when it is not.
fn help(f: &mut Frame, area: Rect, scroll: u16, t: &Theme) {
    let r = centered(
        area,
        area.width.saturating_sub(4),
        area.height.saturating_sub(2),
    );
    f.render_widget(Clear, r);
    let groups = [
        Context::Global,
        Context::Home,
        Context::Ceremony,
        Context::Scroll,
        Context::Picker,
        Context::Share,
        Context::Roles,
        Context::Sign,
        Context::Approvals,
        Context::Entry,
        Context::Path,
        Context::Confirm,
    ];
    let mut lines: Vec<Line> = Vec::new();
    for ctx in groups {
        lines.push(Line::styled(ctx.title(), t.title()));
        for b in keymap::bindings(ctx) {
            lines.push(Line::from(vec![
                Span::styled(format!(" {:<10}", b.shown), t.key()),
                Span::raw(b.hint),
            ]));
        }
    }
    let block = Block::bordered().title(" Help · PgUp/PgDn scroll · Esc closes ");
    let inner = block.inner(r);
    f.render_widget(block, r);
    let h = inner.height as usize;
    if inner.width >= 70 && lines.len() <= 2 * h {
        // Split at a group boundary near the middle.
        let mid = lines.len().div_ceil(2);
        let cut = (mid..lines.len())
            .find(|&i| lines[i].spans.len() == 1)
            .unwrap_or(mid);
        let right = lines.split_off(cut);
        let [a, b] = ratatui::layout::Layout::horizontal([
            Constraint::Percentage(50),
            Constraint::Percentage(50),
        ])
        .areas(inner);
        f.render_widget(Paragraph::new(lines).scroll((scroll, 0)), a);
        f.render_widget(Paragraph::new(right).scroll((scroll, 0)), b);
    } else {
        let max = super::rows(lines.len().saturating_sub(h));
        f.render_widget(Paragraph::new(lines).scroll((scroll.min(max), 0)), inner);
    }
}
