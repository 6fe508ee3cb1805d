//! The ceremony screen: the steps and their state, the current step's detail, what the
//! ceremony waits for (sign-off or secret), and the results to read aloud.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::{widgets, Theme};
use crate::tui::app::{AppState, Need, StepStatus};

pub fn status_style(st: StepStatus, t: &Theme) -> ratatui::style::Style {
    match st {
        StepStatus::Pending => t.base(),
        StepStatus::Running => t.running(),
        StepStatus::Done => t.ok(),
        StepStatus::Failed => t.fail(),
        StepStatus::Skipped => t.dim(),
    }
}

pub fn draw(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let Some(run) = &s.run else {
        f.render_widget(
            Paragraph::new("No ceremony open: choose one on the home screen (1) and press Enter.")
                .wrap(Wrap { trim: true })
                .block(Block::bordered().title(" Ceremony ")),
            area,
        );
        return;
    };
    let [left, right] =
        Layout::horizontal([Constraint::Length(26), Constraint::Min(30)]).areas(area);

    let items: Vec<ListItem> = run
        .steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let cur = if i == run.current && !run.finished() {
                "›"
            } else {
                " "
            };
            ListItem::new(Line::from(vec![
                Span::raw(cur),
                Span::styled(
                    format!("{} {:<7} ", st.status.symbol(), st.status.word()),
                    status_style(st.status, t),
                ),
                Span::raw(st.id.clone()),
            ]))
        })
        .collect();
    let mut ls = ListState::default()
        .with_selected(Some(run.current.min(run.steps.len().saturating_sub(1))));
    let title = if run.aborted {
        " Steps · ABORTED ".to_string()
    } else {
        format!(
            " Steps {}/{} ",
            run.current.min(run.steps.len()),
            run.steps.len()
        )
    };
    let border = if run.aborted { t.fail() } else { t.base() };
    f.render_stateful_widget(
        List::new(items).block(Block::bordered().title(title).border_style(border)),
        left,
        &mut ls,
    );

    // Room for the newest fingerprint (hex groups and all 32 PGP words) when nothing
    // else needs the space.
    let (need_h, results_h) = match &run.need {
        Some(_) => (5, 7),
        None if run.results.last().is_some_and(|r| r.fingerprint.is_some()) => (0, 14),
        None => (0, 7),
    };
    let [detail, need, results] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(need_h),
        Constraint::Length(results_h),
    ])
    .areas(right);

    // The current step (or the last one once the run is over).
    let idx = run.current.min(run.steps.len().saturating_sub(1));
    let mut lines = vec![if run.aborted {
        Line::styled("✗ ABORTED: the remaining steps were skipped.", t.fail())
    } else if run.finished() {
        Line::styled("✓ Ceremony complete · w saves the answers file", t.ok())
    } else {
        Line::styled(run.title.clone(), t.dim())
    }];
    if let Some(st) = run.steps.get(idx) {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{} ", st.status.symbol()),
                status_style(st.status, t),
            ),
            Span::styled(st.title.clone(), t.title()),
            Span::styled(format!("  [{}]", st.kind), t.dim()),
        ]));
        for d in &st.detail {
            lines.push(Line::raw(d.clone()));
        }
        for c in &st.creates {
            lines.push(Line::from(vec![
                Span::styled("Creates ", t.title()),
                Span::raw(c.clone()),
            ]));
        }
        if !st.sign_off.is_empty() {
            let signed: Vec<String> = run
                .signoffs
                .iter()
                .filter(|so| so.step == st.id)
                .map(|so| format!("✓ {} ({})", so.name, so.role))
                .collect();
            lines.push(Line::from(vec![
                Span::styled("Sign-off ", t.title()),
                Span::raw(st.sign_off.join(", ")),
            ]));
            if !signed.is_empty() {
                lines.push(Line::styled(signed.join("  "), t.ok()));
            }
        }
    }
    if run.finished() && !run.aborted {
        lines.push(Line::styled(
            "✓ Ceremony complete. Press w to save the answers file.",
            t.ok(),
        ));
    } else if run.aborted {
        lines.push(Line::styled(
            "✗ Ceremony aborted: the remaining steps were skipped.",
            t.fail(),
        ));
    } else if run.need.is_none() && s.busy.is_none() {
        let verb = match run.steps.get(idx).map(|s| s.status) {
            Some(StepStatus::Failed) => "retry this step",
            _ => "begin this step",
        };
        lines.push(Line::styled(format!("Press Enter to {verb}."), t.focus()));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(format!(" {} ", run.id))),
        detail,
    );

    match &run.need {
        Some(Need::SignOff { role, input }) => {
            let mut l = vec![widgets::text_line("Name", &input.value, true, true, t)];
            l.insert(
                0,
                Line::styled(
                    format!("The {role} signs off by typing their name:"),
                    t.title(),
                ),
            );
            if let Some(e) = &input.error {
                l.push(Line::styled(format!("✗ {e}"), t.fail()));
            }
            f.render_widget(
                Paragraph::new(l).block(
                    Block::bordered()
                        .title(" Sign-off ")
                        .border_style(t.focus()),
                ),
                need,
            );
        }
        Some(Need::Secret { entry, .. }) => widgets::draw_secret(f, need, entry, t),
        None => {}
    }

    // Lines are wrapped here, so the newest result (with its whole fingerprint) is kept
    // in view by taking the tail.
    let w = results.width.saturating_sub(2) as usize;
    let mut rl: Vec<Line> = Vec::new();
    let n = run.results.len();
    for (i, r) in run.results.iter().enumerate() {
        rl.push(Line::from(vec![
            Span::styled("✓ ", t.ok()),
            Span::styled(format!("{}: ", r.step), t.title()),
            Span::raw(r.what.clone()),
        ]));
        if i + 1 == n {
            if let Some(fp) = &r.fingerprint {
                for l in super::wrap_words(&fp.groups, w) {
                    rl.push(Line::raw(l));
                }
                for l in super::wrap_words(&fp.words, w) {
                    rl.push(Line::styled(l, t.dim()));
                }
            }
        }
    }
    let inner_h = results.height.saturating_sub(2) as usize;
    let skip = rl.len().saturating_sub(inner_h);
    f.render_widget(
        Paragraph::new(rl.split_off(skip)).block(Block::bordered().title(" Results ")),
        results,
    );
}
