//! Approvals: the signing requests waiting in the requests directory, the one on view in
//! full (description, token, keys and limits, expiry, what the policy asks, approvals so
//! far, the SHA-256 the approver signs), and the ssh-agent key to approve with.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph};
use ratatui::Frame;

use super::{wrap_words, Theme};
use crate::approvals::pending::{self, Pending};
use crate::formats::words::Fingerprint;
use crate::tui::app::AppState;

/// Lines wrapped to a width.
struct Lines {
    width: usize,
    out: Vec<Line<'static>>,
}

impl Lines {
    fn add(&mut self, indent: usize, text: &str, style: Style) {
        let pad = " ".repeat(indent);
        for piece in wrap_words(text, self.width.saturating_sub(indent).max(10)) {
            self.out.push(Line::styled(format!("{pad}{piece}"), style));
        }
    }
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The mark and the short status of a request in the list.
fn status(p: &Pending, t: &Theme) -> (&'static str, String, Style) {
    match &p.request {
        Err(_) => ("✗", "bad file".into(), t.fail()),
        Ok(_) if p.expired => ("–", "expired".into(), t.dim()),
        Ok(_) if p.unusable.is_some() => ("✗", "unusable".into(), t.fail()),
        Ok(_) if p.approved() => ("✓", "approved".into(), t.ok()),
        Ok(_) => {
            let (have, need) = p.keys.iter().fold((0, 0), |(h, n), k| {
                (
                    h + k.approved_by.len().min(k.quorum as usize),
                    n + k.quorum as usize,
                )
            });
            ("·", format!("{have}/{need}"), t.running())
        }
    }
}

/// The Approvals screen's body: the request list, the request on view, the agent keys.
pub fn draw(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let [main, agent] = Layout::vertical([Constraint::Min(8), Constraint::Length(3)]).areas(area);
    let [list, detail] =
        Layout::horizontal([Constraint::Length(28), Constraint::Min(30)]).areas(main);
    let a = &s.approvals;
    let title = format!(" Requests in {} ", s.requests_dir.display());
    match &a.list {
        None => f.render_widget(
            Paragraph::new("Reading…")
                .style(t.dim())
                .block(Block::bordered().title(title)),
            list,
        ),
        Some(l) if l.pending.is_empty() => f.render_widget(
            Paragraph::new(vec![
                Line::styled("No requests here.", t.dim()),
                Line::styled("officiant request create", t.dim()),
                Line::styled(format!("  -o {}/NAME.json", l.dir.display()), t.dim()),
            ])
            .block(Block::bordered().title(title)),
            list,
        ),
        Some(l) => {
            let w = list.width.saturating_sub(4) as usize;
            let items: Vec<ListItem> = l
                .pending
                .iter()
                .map(|p| {
                    let (mark, st, style) = status(p, t);
                    let name = file_name(&p.path);
                    let room = w.saturating_sub(st.chars().count() + 3);
                    let shown: String = if name.chars().count() > room {
                        let mut c: String = name.chars().take(room.saturating_sub(1)).collect();
                        c.push('…');
                        c
                    } else {
                        name
                    };
                    ListItem::new(Line::from(vec![
                        Span::styled(format!("{mark} "), style),
                        Span::raw(format!("{shown:<room$} ")),
                        Span::styled(st, style),
                    ]))
                })
                .collect();
            let mut ls = ListState::default().with_selected(Some(a.sel));
            f.render_stateful_widget(
                List::new(items)
                    .highlight_style(t.selected())
                    .block(Block::bordered().title(title)),
                list,
                &mut ls,
            );
        }
    }
    draw_detail(f, detail, s, t);
    draw_agent(f, agent, s, t);
}

fn draw_detail(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let mut x = Lines {
        width: area.width.saturating_sub(2) as usize,
        out: Vec::new(),
    };
    let now = s.approvals.list.as_ref().map_or(0, |l| l.now);
    match s.approvals.selected() {
        None => x.add(
            0,
            "Signing requests (officiant request create) appear here for their approvers to review and approve.",
            t.dim(),
        ),
        Some(p) => match &p.request {
            Err(e) => {
                x.add(0, &file_name(&p.path), t.title());
                x.add(0, &format!("✗ {e}"), t.fail());
            }
            Ok(r) => {
                x.out.push(Line::from(vec![
                    Span::styled("Request ", t.title()),
                    Span::raw(r.id.clone()),
                ]));
                x.add(2, &r.description, t.base());
                let (expiry, style) = if p.expired {
                    (
                        format!("✗ {}", pending::until(r.not_after_secs(), now)),
                        t.fail(),
                    )
                } else {
                    (pending::until(r.not_after_secs(), now), t.base())
                };
                x.add(0, &format!("Valid until {} ({expiry})", r.not_after), style);
                if let Some(why) = &p.unusable {
                    x.add(0, &format!("✗ {why}"), t.fail());
                }
                x.add(0, "Keys", t.title());
                for k in &p.keys {
                    x.add(
                        2,
                        &format!("{}: up to {} signature(s)", k.label, k.max_uses),
                        t.base(),
                    );
                    let got = if k.approved_by.is_empty() {
                        "none yet".to_string()
                    } else {
                        k.approved_by.join(", ")
                    };
                    let style = if k.approved_by.len() as u64 >= u64::from(k.quorum) {
                        t.ok()
                    } else {
                        t.dim()
                    };
                    x.add(4, &format!("{} · approved by {got}", k.rule), style);
                }
                if p.keys.is_empty() {
                    for k in &r.keys {
                        x.add(
                            2,
                            &format!("{}: up to {} signature(s)", k.label, k.max_uses),
                            t.base(),
                        );
                    }
                }
                x.add(0, "Approvals", t.title());
                if p.approvals.is_empty() {
                    x.add(2, "(none beside it yet)", t.dim());
                }
                for (file, v) in &p.approvals {
                    match v {
                        Ok(who) => x.add(2, &format!("✓ {} by {who}", file_name(file)), t.ok()),
                        Err(e) => x.add(2, &format!("✗ {}: {e}", file_name(file)), t.fail()),
                    }
                }
                x.add(
                    0,
                    &format!("For token {:?} serial {}", r.token_label, r.token_serial),
                    t.dim(),
                );
                x.add(0, "SHA-256 of the request file (what you sign)", t.title());
                let fp = Fingerprint::of(&p.sha256);
                x.add(2, &fp.groups, t.base());
                x.add(2, &fp.words, t.dim());
            }
        },
    }
    let file = s
        .approvals
        .selected()
        .map(|p| file_name(&p.path))
        .unwrap_or_else(|| "Request".into());
    let inner_h = area.height.saturating_sub(2) as usize;
    let total = x.out.len();
    let max_scroll = total.saturating_sub(inner_h);
    let scroll = (s.approvals.scroll as usize).min(max_scroll);
    let title = if max_scroll > 0 {
        format!(" {file} · ↕ {}/{total} PgUp/PgDn ", scroll + inner_h)
    } else {
        format!(" {file} ")
    };
    let lines: Vec<Line> = x.out.into_iter().skip(scroll).collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn draw_agent(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let a = &s.approvals;
    let line = match a.list.as_ref().map(|l| &l.agent) {
        None => Line::styled("…", t.dim()),
        Some(Err(e)) => Line::styled(format!("✗ {e}"), t.fail()),
        Some(Ok(keys)) if keys.is_empty() => Line::styled(
            "✗ the ssh-agent holds no key: ssh-add yours, then press r",
            t.fail(),
        ),
        Some(Ok(keys)) => match keys.get(a.key) {
            None => Line::default(),
            Some(k) => {
                let who = if k.approver.is_empty() {
                    Span::styled("(not an approver's key)", t.fail())
                } else {
                    Span::styled(format!("as {}", k.approver.join(", ")), t.ok())
                };
                Line::from(vec![
                    Span::styled("Approve ", t.title()),
                    who,
                    Span::raw(format!(" · {} {}", k.fingerprint, k.comment)),
                ])
            }
        },
    };
    let which = match a.list.as_ref().map(|l| &l.agent) {
        Some(Ok(keys)) if keys.len() > 1 => {
            format!("key {} of {} (←/→) ", a.key + 1, keys.len())
        }
        _ => String::new(),
    };
    let policy = match a.list.as_ref().and_then(|l| l.policy.as_ref()) {
        Some((label, sha)) => format!(
            " ssh-agent {which}· token policy {label} {}… ",
            &hex::encode(sha)[..12]
        ),
        None => format!(" ssh-agent {which}· no policy on the token "),
    };
    f.render_widget(
        Paragraph::new(line).block(Block::bordered().title(policy)),
        area,
    );
}
