//! The ceremony screen: the steps and their state, the current step's detail, what the
//! ceremony waits for (sign-off or secret), and the results to read aloud.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::{widgets, Theme};
use crate::ceremony::engine;
use crate::formats::words::Fingerprint;
use crate::tui::app::{AppState, CeremonyRun, Need, StepStatus};
use crate::tui::plan;

pub fn status_style(st: StepStatus, t: &Theme) -> ratatui::style::Style {
    match st {
        StepStatus::Pending => t.base(),
        StepStatus::Running => t.running(),
        StepStatus::Done | StepStatus::Resumed => t.ok(),
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
    let n = run.engine.steps.len();
    let focus = run.focus();

    let items: Vec<ListItem> = (0..n)
        .map(|i| {
            let st = run.status(i);
            let cur = if i == focus && !run.finished() {
                "›"
            } else {
                " "
            };
            ListItem::new(Line::from(vec![
                Span::raw(cur),
                Span::styled(
                    format!("{} {:<7} ", st.symbol(), st.word()),
                    status_style(st, t),
                ),
                Span::raw(run.script.steps[i].id.clone()),
            ]))
        })
        .collect();
    let mut ls = ListState::default().with_selected(Some(focus));
    let aborted = matches!(run.engine.phase, engine::Phase::Aborted(_));
    let failed = matches!(run.engine.phase, engine::Phase::Failed(_));
    let title = if aborted {
        " Steps · ABORTED ".to_string()
    } else if failed {
        " Steps · STOPPED ".to_string()
    } else {
        format!(" Steps {}/{} ", run.done(), n)
    };
    let border = if aborted || failed {
        t.fail()
    } else {
        t.base()
    };
    f.render_stateful_widget(
        List::new(items).block(Block::bordered().title(title).border_style(border)),
        left,
        &mut ls,
    );

    // With a prompt on screen there is room for the hex groups only.
    let results = results_lines(
        run,
        right.width.saturating_sub(2) as usize,
        run.need.is_none(),
        t,
    );
    // Room for the newest fingerprint (hex groups and all 32 PGP words) when nothing
    // else needs the space.
    let need_h: u16 = if run.need.is_some() { 5 } else { 0 };
    let room = right.height.saturating_sub(need_h + 7);
    let results_h = (results.len() as u16 + 2).clamp(5.min(room), room.max(3));
    let [detail, need, results_area] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(need_h),
        Constraint::Length(results_h),
    ])
    .areas(right);

    let mut lines = vec![match &run.engine.phase {
        engine::Phase::Aborted(_) => {
            Line::styled("✗ ABORTED: the remaining steps did not run.", t.fail())
        }
        engine::Phase::Failed(_) => Line::styled(
            "✗ STOPPED at a failed step · Enter resumes from the journal",
            t.fail(),
        ),
        engine::Phase::Finished => {
            Line::styled("✓ Ceremony complete · w saves the answers file", t.ok())
        }
        _ if run.resumed => Line::styled(
            match &run.journal {
                Some((done, _)) => format!(
                    "↺ Resuming the run in {}: {} steps done earlier",
                    run.out.display(),
                    done.len()
                ),
                None => format!("↺ Resuming the run in {}", run.out.display()),
            },
            t.running(),
        ),
        _ => Line::styled(run.script.ceremony.title.clone(), t.dim()),
    }];
    if let Some(step) = run.script.steps.get(focus) {
        let st = run.status(focus);
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", st.symbol()), status_style(st, t)),
            Span::styled(
                step.title.clone().unwrap_or_else(|| step.id.clone()),
                t.title(),
            ),
            Span::styled(format!("  [{}]", step.action.kind()), t.dim()),
        ]));
        if let engine::StepStatus::Failed(e) = &run.engine.steps[focus].status {
            lines.push(Line::styled(format!("✗ {e}"), t.fail()));
        }
        let (what, creates) = plan::describe(&run.script, focus);
        for d in what {
            lines.push(Line::raw(d));
        }
        for c in creates {
            lines.push(Line::from(vec![
                Span::styled("Creates ", t.title()),
                Span::raw(c),
            ]));
        }
        let es = &run.engine.steps[focus];
        if !es.plan.sign_off.is_empty() {
            let roles: Vec<String> = es
                .plan
                .sign_off
                .iter()
                .map(|(r, k)| {
                    if *k > 1 {
                        format!("{r} ×{k}")
                    } else {
                        r.clone()
                    }
                })
                .collect();
            lines.push(Line::from(vec![
                Span::styled("Sign-off ", t.title()),
                Span::raw(roles.join(", ")),
            ]));
            let signed: Vec<String> = es
                .sign_offs
                .iter()
                .map(|so| format!("✓ {} ({})", so.name, so.role))
                .collect();
            if !signed.is_empty() {
                lines.push(Line::styled(signed.join("  "), t.ok()));
            }
        }
    }
    if !run.started() && s.busy.is_none() {
        let verb = if run.resumed { "resume" } else { "begin" };
        lines.push(Line::styled(format!("Press Enter to {verb}."), t.focus()));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(format!(" {} ", run.script.ceremony.id))),
        detail,
    );

    match &run.need {
        Some(Need::SignOff {
            role,
            input,
            have,
            need: k,
            ..
        }) => {
            let who = if *k > 1 {
                format!("{role} {} of {k}", have + 1)
            } else {
                role.clone()
            };
            let mut l = vec![
                Line::styled(
                    format!("The {who} signs off by typing their name:"),
                    t.title(),
                ),
                widgets::text_line("Name", &input.value, true, true, t),
            ];
            if let Some(e) = input.error.as_ref().or(run.rejected.as_ref()) {
                l.push(Line::styled(format!("✗ {e}"), t.fail()));
            }
            f.render_widget(
                Paragraph::new(l).wrap(Wrap { trim: true }).block(
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

    let inner_h = results_area.height.saturating_sub(2) as usize;
    let mut results = results;
    let skip = results.len().saturating_sub(inner_h);
    f.render_widget(
        Paragraph::new(results.split_off(skip)).block(Block::bordered().title(" Results ")),
        results_area,
    );
}

/// Each finished step's results: every key's fingerprint in hex groups (the newest also
/// in PGP words), output files. Wrapped here so the tail is the newest.
fn results_lines(run: &CeremonyRun, w: usize, words: bool, t: &Theme) -> Vec<Line<'static>> {
    let mut out: Vec<Line<'static>> = Vec::new();
    let done: Vec<usize> = (0..run.engine.steps.len())
        .filter(|i| run.engine.steps[*i].result.is_some())
        .collect();
    for (k, &i) in done.iter().enumerate() {
        let last = k + 1 == done.len();
        let Some(r) = &run.engine.steps[i].result else {
            continue;
        };
        let id = run.script.steps[i].id.clone();
        let mark = if matches!(run.engine.steps[i].status, engine::StepStatus::Resumed) {
            "↺ "
        } else {
            "✓ "
        };
        let mut what: Vec<String> = Vec::new();
        if r.adopted {
            what.push("found already done on the token".into());
        }
        if let Some(d) = r.deleted {
            what.push(format!("{d} deleted"));
        }
        if r.objects.is_empty() && r.outputs.is_empty() && what.is_empty() {
            what.push("done".to_string());
        }
        out.push(Line::from(vec![
            Span::styled(mark, t.ok()),
            Span::styled(format!("{id} "), t.title()),
            Span::raw(what.join(", ")),
        ]));
        for o in &r.objects {
            out.push(Line::raw(
                format!("  {} {} id {} {}", o.class, o.label, o.id, o.key_type)
                    .trim_end()
                    .to_string(),
            ));
            if let Some(fp) = o
                .public_key_sha256
                .as_deref()
                .and_then(|h| hex::decode(h).ok())
                .map(|b| Fingerprint::of(&b))
            {
                for l in super::wrap_words(&fp.groups, w.saturating_sub(2)) {
                    out.push(Line::raw(format!("  {l}")));
                }
                if last && words {
                    for l in super::wrap_words(&fp.words, w.saturating_sub(2)) {
                        out.push(Line::styled(format!("  {l}"), t.dim()));
                    }
                }
            }
        }
        for (name, fp) in fuse_values(&r.details) {
            out.push(Line::styled(format!("  {name}"), t.title()));
            for l in super::wrap_words(&fp.groups, w.saturating_sub(4)) {
                out.push(Line::raw(format!("    {l}")));
            }
            if last && words {
                for l in super::wrap_words(&fp.words, w.saturating_sub(4)) {
                    out.push(Line::styled(format!("    {l}"), t.dim()));
                }
            }
        }
        let fuse_words: Vec<&str> = r.details["fuse_words"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        if !fuse_words.is_empty() {
            out.push(Line::styled("  fuse words (in order)", t.title()));
            for l in super::wrap_words(&fuse_words.join(" "), w.saturating_sub(4)) {
                out.push(Line::raw(format!("    {l}")));
            }
        }
        for o in &r.outputs {
            out.push(Line::raw(format!(
                "  → {}",
                run.out.join(&o.path).display()
            )));
            out.push(Line::styled(
                format!("    SHA-256 {}…", o.sha256.get(..16).unwrap_or(&o.sha256)),
                t.dim(),
            ));
        }
    }
    out
}

/// The fuse and OTP values an export-fuses step reported (what goes into the chip),
/// named for the witnesses, from the step's details.
pub fn fuse_values(details: &serde_json::Value) -> Vec<(String, Fingerprint)> {
    let fp = |v: &serde_json::Value| -> Option<Fingerprint> {
        let hex = v["hex"].as_str()?;
        hex::decode(hex).ok().map(|b| Fingerprint::of(&b))
    };
    let mut out = Vec::new();
    let mut push = |name: String, v: &serde_json::Value| {
        if let Some(f) = fp(v) {
            out.push((name, f));
        }
    };
    match details["format"].as_str() {
        Some("hab4") => push("SRK fuse hash (SRK_HASH)".into(), &details["fuse"]),
        Some("tfa-rotpk") => push("ROTPK hash".into(), &details["rotpk"]),
        Some("stm32mp15") => push("PKH (OTP)".into(), &details["pkh"]),
        Some("stm32mp-pkhth") => push("PKHTH (OTP)".into(), &details["pkhth"]),
        Some("esp32-sbv2") => {
            for k in details["keys"].as_array().into_iter().flatten() {
                let label = k["key"].as_str().unwrap_or("?");
                push(format!("key {label} digest (eFuse)"), &k["digest"]);
            }
        }
        _ => {}
    }
    out
}
