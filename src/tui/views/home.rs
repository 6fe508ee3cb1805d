//! Home: the backend and token, the ceremonies found, and the token's objects.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::Theme;
use crate::tui::app::{AppState, TokenStatus};
use crate::tui::home::HomePane;

/// The home screen's body: the token, the ceremony and object lists, the details of the
/// selection.
pub fn draw(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let [tok, lists, detail] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Min(5),
        Constraint::Length(9),
    ])
    .areas(area);
    token(f, tok, s, t);
    let [cer, obj] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(lists);
    ceremonies(f, cer, s, t);
    objects(f, obj, s, t);
    details(f, detail, s, t);
}

fn token(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let mut lines = vec![Line::from(vec![
        Span::styled("Backend ", t.title()),
        Span::raw(s.backend.clone()),
    ])];
    match &s.token {
        TokenStatus::Opening => lines.push(Line::styled("Opening the token…", t.dim())),
        TokenStatus::Failed(e) => lines.push(Line::styled(format!("✗ {e}"), t.fail())),
        TokenStatus::Ready(i) => {
            lines.push(Line::from(vec![
                Span::styled("Token   ", t.title()),
                Span::raw(format!(
                    "{} · {} {} · serial {}",
                    if i.label.is_empty() {
                        "(no label)"
                    } else {
                        &i.label
                    },
                    i.manufacturer,
                    i.model,
                    i.serial
                )),
            ]));
            let init = if i.initialized {
                Span::styled("✓ initialized", t.ok())
            } else {
                Span::styled("· not initialized", t.running())
            };
            lines.push(Line::from(vec![
                Span::styled("State   ", t.title()),
                init,
                Span::raw(format!(
                    " · PIN {} · {} objects",
                    match (i.min_pin_len, i.max_pin_len) {
                        (0, 0) => "any length".to_string(),
                        (min, 0) => format!("at least {min} chars"),
                        (min, max) => format!("{min}–{max} chars"),
                    },
                    s.objects.len()
                )),
            ]));
        }
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Token ")),
        area,
    );
}

fn pane_block(title: &'static str, on: bool, t: &Theme) -> Block<'static> {
    let b = Block::bordered().title(title);
    if on {
        b.border_style(t.focus()).title_style(t.title())
    } else {
        b.border_style(t.dim())
    }
}

fn ceremonies(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let on = s.home.pane == HomePane::Ceremonies;
    let rows: Vec<Row> = s
        .ceremonies
        .iter()
        .map(|c| {
            let title = if c.error.is_some() {
                format!("✗ {}", c.id)
            } else if c.title.is_empty() {
                c.id.clone()
            } else {
                c.title.clone()
            };
            Row::new(vec![title, format!("{}", c.steps)])
        })
        .collect();
    let empty = rows.is_empty();
    let mut st = TableState::default().with_selected((!empty && on).then_some(s.home.ceremony));
    let table = Table::new(rows, [Constraint::Min(10), Constraint::Length(5)])
        .header(Row::new(vec!["Ceremony", "steps"]).style(t.title()))
        .row_highlight_style(t.selected())
        .block(pane_block(" Ceremonies ", on, t));
    if empty {
        f.render_widget(
            Paragraph::new("No scripts in ceremonies/")
                .style(t.dim())
                .block(pane_block(" Ceremonies ", on, t)),
            area,
        );
    } else {
        f.render_stateful_widget(table, area, &mut st);
    }
}

fn objects(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let on = s.home.pane == HomePane::Objects;
    let rows: Vec<Row> = s
        .objects
        .iter()
        .map(|o| {
            Row::new(vec![
                o.label.clone(),
                o.id.clone(),
                o.class.to_string(),
                o.key_type.clone(),
            ])
        })
        .collect();
    let mut st =
        TableState::default().with_selected((!rows.is_empty() && on).then_some(s.home.object));
    let table = Table::new(
        rows,
        [
            Constraint::Min(10),
            Constraint::Length(6),
            Constraint::Length(11),
            Constraint::Length(9),
        ],
    )
    .header(Row::new(vec!["Label", "Id", "Type", "Key"]).style(t.title()))
    .row_highlight_style(t.selected())
    .block(pane_block(" Objects ", on, t));
    f.render_stateful_widget(table, area, &mut st);
}

fn details(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let lines: Vec<Line> = match s.home.pane {
        HomePane::Ceremonies => match s.ceremonies.get(s.home.ceremony) {
            None => vec![Line::styled(
                "Put ceremony scripts (*.toml) in ceremonies/.",
                t.dim(),
            )],
            Some(c) => match &c.error {
                Some(e) => vec![Line::styled(format!("✗ {e}"), t.fail())],
                None => vec![
                    Line::from(vec![
                        Span::styled(format!("{} ", c.id), t.title()),
                        Span::styled(
                            c.path
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default(),
                            t.dim(),
                        ),
                    ]),
                    Line::raw(c.purpose.clone()),
                    Line::from(vec![
                        Span::styled("Roles ", t.title()),
                        Span::raw(c.roles.join(", ")),
                    ]),
                ],
            },
        },
        HomePane::Objects => match s.objects.get(s.home.object) {
            None => vec![Line::styled(
                "The token holds no objects you can see.",
                t.dim(),
            )],
            Some(o) => {
                let mut l = vec![Line::from(vec![
                    Span::styled(format!("{} ", o.label), t.title()),
                    Span::raw(format!(
                        "id {} · {} {} · SHA-256 of public key:",
                        o.id, o.class, o.key_type
                    )),
                ])];
                if !o.flags.is_empty() {
                    let shown: Vec<String> = o
                        .flags
                        .iter()
                        .map(|(name, v)| match v {
                            Some(true) => format!("✓ {name}"),
                            Some(false) => format!("✗ not {name}"),
                            None => format!("? {name} (not reported)"),
                        })
                        .collect();
                    l.push(Line::styled(shown.join(" · "), t.dim()));
                }
                if let Some(fp) = &o.fingerprint {
                    l.push(Line::raw(fp.groups.clone()));
                    l.push(Line::styled(fp.words.clone(), t.dim()));
                }
                l
            }
        },
    };
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" Details ")),
        area,
    );
}
