//! The ceremony screen: the steps (any can be opened), the step on view with its text and
//! its result in full (scrolls), and what the ceremony asks of the people at the keyboard
//! (the roll call, a sign-off, a secret, the review of a result), or how it ended.
//!
//! A custodian's screens take the whole body and show nothing else: their share in
//! large groups (and nothing of anyone else's), the share typed back, or a share typed
//! in at a restore.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph};
use ratatui::Frame;
use zeroize::Zeroizing;

use super::{widgets, wrap_words, Theme};
use crate::ceremony::custody::CustodyTurn;
use crate::ceremony::engine::{self, StepResult};
use crate::formats::words::Fingerprint;
use crate::tui::app::{AppState, TokenStatus};
use crate::tui::ceremony::{Ask, CeremonyRun, RollCall, ShownShare, StepStatus};
use crate::tui::plan;

/// The style a step's status is drawn in (the symbol carries it without colour).
pub fn status_style(st: StepStatus, t: &Theme) -> Style {
    match st {
        StepStatus::Pending => t.base(),
        StepStatus::Running => t.running(),
        StepStatus::Done | StepStatus::Resumed => t.ok(),
        StepStatus::Failed => t.fail(),
        StepStatus::Skipped => t.dim(),
    }
}

/// Lines of text, each already wrapped to the pane's width, so the scroll is exact.
struct Text {
    width: usize,
    lines: Vec<Line<'static>>,
}

impl Text {
    fn new(width: usize) -> Self {
        Text {
            width: width.max(10),
            lines: Vec::new(),
        }
    }
    /// `text` wrapped at spaces (a word longer than the width is cut into pieces), every
    /// piece in `style`, indented by `indent`.
    fn add(&mut self, indent: usize, text: &str, style: Style) {
        let pad = " ".repeat(indent);
        let w = self.width.saturating_sub(indent).max(1);
        for piece in wrap_words(text, w) {
            let chars: Vec<char> = piece.chars().collect();
            for chunk in chars.chunks(w) {
                let chunk: String = chunk.iter().collect();
                self.lines
                    .push(Line::styled(format!("{pad}{chunk}"), style));
            }
        }
        if text.is_empty() {
            self.lines.push(Line::default());
        }
    }
    /// A line that fits (a heading with a label).
    fn line(&mut self, l: Line<'static>) {
        self.lines.push(l);
    }
    /// A value witnesses compare aloud: hex groups, then the PGP words.
    fn fingerprint(&mut self, indent: usize, fp: &Fingerprint, t: &Theme) {
        self.add(indent, &fp.groups, t.base());
        self.add(indent, &fp.words, t.dim());
    }
}

/// The ceremony screen's body: the steps, the step on view and the question asked; or,
/// for the roll call and a custodian's turn, that screen alone.
pub fn draw(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let Some(run) = &s.run else {
        f.render_widget(
            Paragraph::new("No ceremony open: choose one on the home screen (1) and press Enter.")
                .block(Block::bordered().title(" Ceremony ")),
            area,
        );
        return;
    };
    match &run.asking {
        Some(Ask::Roster(rc)) => return roll_call(f, area, run, rc, t),
        Some(Ask::Share(shown)) => return share_screen(f, area, run, shown, t),
        Some(Ask::Retype { .. } | Ask::ShareEntry { .. }) => {
            return custodian_entry(f, area, run, t)
        }
        _ => {}
    }
    let [left, right] =
        Layout::horizontal([Constraint::Length(26), Constraint::Min(30)]).areas(area);
    steps(f, left, run, t);
    let ask_h = ask_height(run);
    let [detail, ask] =
        Layout::vertical([Constraint::Min(6), Constraint::Length(ask_h)]).areas(right);
    step_detail(f, detail, s, run, t);
    ask_pane(f, ask, s, run, t);
}

fn steps(f: &mut Frame, area: Rect, run: &CeremonyRun, t: &Theme) {
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
    let mut ls = ListState::default().with_selected(Some(run.view));
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
        List::new(items)
            .highlight_style(t.selected())
            .block(Block::bordered().title(title).border_style(border)),
        area,
        &mut ls,
    );
}

/// The ceremony's state in one line, above the step on view.
fn phase_line(run: &CeremonyRun, t: &Theme) -> Line<'static> {
    match &run.engine.phase {
        engine::Phase::Aborted(_) => {
            Line::styled("✗ ABORTED: the remaining steps did not run.", t.fail())
        }
        engine::Phase::Failed(_) => Line::styled(
            "✗ STOPPED at a failed step · Enter resumes from the journal",
            t.fail(),
        ),
        engine::Phase::Finished => Line::styled("✓ Ceremony complete", t.ok()),
        _ if run.resumed && !run.started => Line::styled(
            format!(
                "↺ Resuming the run in {}: {} steps done earlier",
                run.out.display(),
                run.done_before
            ),
            t.running(),
        ),
        _ => Line::styled(run.script.ceremony.title.clone(), t.dim()),
    }
}

fn step_detail(f: &mut Frame, area: Rect, s: &AppState, run: &CeremonyRun, t: &Theme) {
    let inner_w = area.width.saturating_sub(2) as usize;
    let mut x = Text::new(inner_w);
    let i = run.view.min(run.engine.steps.len().saturating_sub(1));
    // Under review, the result comes first: it is what is read aloud.
    let reviewing = matches!(&run.asking, Some(Ask::Acknowledge { step, .. }) if *step == i);
    if !reviewing {
        let phase = phase_line(run, t);
        let style = phase.style;
        x.add(0, &phase.to_string(), style);
    }
    if let Some(c) = run.closed.as_ref().filter(|c| c.complete) {
        completion(&mut x, run, c, t);
    }
    if let Some(step) = run.script.steps.get(i) {
        let es = &run.engine.steps[i];
        let st = run.status(i);
        x.line(Line::from(vec![
            Span::styled(format!("{} ", st.symbol()), status_style(st, t)),
            Span::styled(
                step.title.clone().unwrap_or_else(|| step.id.clone()),
                t.title(),
            ),
            Span::styled(format!("  [{}] {}", step.action.kind(), step.id), t.dim()),
        ]));
        if let engine::StepStatus::Failed(e) = &es.status {
            x.add(0, &format!("✗ {e}"), t.fail());
        }
        let result = es.result.as_ref().filter(|r| has_content(r));
        if let (true, Some(r)) = (reviewing, result) {
            result_text(&mut x, s, run, r, false, t);
            x.add(0, "", t.base());
        }
        let (what, creates) = plan::describe(&run.script, i);
        for d in what {
            x.add(0, &d, t.base());
        }
        for c in creates {
            x.add(0, &format!("Creates {c}"), t.base());
        }
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
            x.add(0, &format!("Sign-off: {}", roles.join(", ")), t.title());
            for so in &es.sign_offs {
                x.add(2, &format!("✓ {} ({})", so.name, so.role), t.ok());
            }
        }
        if let Some(role) = &es.plan.review {
            match &es.acknowledged {
                Some(a) => x.add(
                    0,
                    &format!("✓ Result read aloud and matched: {} ({})", a.name, a.role),
                    t.ok(),
                ),
                None => x.add(
                    0,
                    &format!("Review: the {role} reads the result aloud and acknowledges it."),
                    t.dim(),
                ),
            }
        }
        if let (false, Some(r)) = (reviewing, result) {
            x.add(0, "", t.base());
            result_text(&mut x, s, run, r, true, t);
        }
        if !run.started && s.busy.is_none() && i == run.focus() {
            let verb = if run.resumed { "resume" } else { "begin" };
            x.add(0, &format!("Press Enter to {verb}."), t.focus());
        }
    }
    let inner_h = area.height.saturating_sub(2) as usize;
    let total = x.lines.len();
    let max_scroll = total.saturating_sub(inner_h);
    let scroll = (run.scroll as usize).min(max_scroll);
    let more = if max_scroll > 0 {
        format!(" · ↕ {}/{} PgUp/PgDn ", scroll + inner_h.min(total), total)
    } else {
        " ".to_string()
    };
    let title = format!(
        " {} · step {}/{}{more}",
        run.script.ceremony.id,
        i + 1,
        run.engine.steps.len()
    );
    let lines: Vec<Line> = x.lines.into_iter().skip(scroll).collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

/// The end of a complete run: the transcript head to write down (hex and PGP words),
/// where the transcript is, and the command that checks it against that head.
fn completion(x: &mut Text, run: &CeremonyRun, c: &crate::tui::ceremony::Closed, t: &Theme) {
    let head = c.head.clone().unwrap_or_default();
    x.add(
        0,
        &format!("Transcript: {}", c.transcript.display()),
        t.base(),
    );
    let jsonl = run.out.join("transcript.jsonl");
    x.add(
        0,
        &format!(
            "Verify: officiant transcript verify {} --head {head} --out {}",
            jsonl.display(),
            run.out.display()
        ),
        t.dim(),
    );
    x.add(
        0,
        "Transcript head: write it down, read it aloud",
        t.title(),
    );
    if let Ok(b) = hex::decode(&head) {
        x.fingerprint(2, &Fingerprint::of(&b), t);
    }
    x.add(0, "", t.base());
}

/// Whether a step's result has anything to read.
fn has_content(r: &StepResult) -> bool {
    r.adopted
        || r.deleted.is_some()
        || !r.objects.is_empty()
        || !r.outputs.is_empty()
        || !r.details.is_null()
        || !r.notes.is_empty()
        || !r.sub_steps.is_empty()
        || r.device_audit.is_some()
}

/// A step's result in full, as the witnesses read it aloud.
fn result_text(
    x: &mut Text,
    s: &AppState,
    run: &CeremonyRun,
    r: &StepResult,
    heading: bool,
    t: &Theme,
) {
    if heading {
        x.add(0, "Result", t.title());
    }
    if r.adopted {
        x.add(
            2,
            "found already done on the token (an interrupted run made it)",
            t.running(),
        );
    }
    if let TokenStatus::Ready(i) = &s.token {
        x.add(2, &format!("token {:?} #{}", i.label, i.serial), t.dim());
    }
    if let Some(d) = r.deleted {
        x.add(2, &format!("{d} object(s) deleted"), t.base());
    }
    for o in &r.objects {
        x.add(
            2,
            format!("{} {:?} id {} {}", o.class, o.label, o.id, o.key_type).trim_end(),
            t.base(),
        );
        if let Some(fp) = o
            .public_key_sha256
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .map(|b| Fingerprint::of(&b))
        {
            x.add(4, "public key SHA-256", t.dim());
            x.fingerprint(4, &fp, t);
        }
    }
    for (name, fp) in fuse_values(&r.details) {
        x.add(2, &name, t.title());
        x.fingerprint(4, &fp, t);
    }
    for (name, v) in [
        ("policy SHA-256", &r.details["policy"]["sha256"]),
        ("co-signed transcript head", &r.details["co_signed_head"]),
    ] {
        if let Some(b) = v["hex"].as_str().and_then(|h| hex::decode(h).ok()) {
            x.add(2, name, t.title());
            x.fingerprint(4, &Fingerprint::of(&b), t);
        }
    }
    let fuse_words: Vec<&str> = r.details["fuse_words"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    if !fuse_words.is_empty() {
        x.add(2, "fuse words (in order)", t.title());
        x.add(4, &fuse_words.join(" "), t.base());
    }
    for o in &r.outputs {
        x.add(
            2,
            &format!("→ {}", run.out.join(&o.path).display()),
            t.base(),
        );
        if let Ok(b) = hex::decode(&o.sha256) {
            x.add(4, "SHA-256", t.dim());
            x.fingerprint(4, &Fingerprint::of(&b), t);
        }
    }
    for n in &r.notes {
        x.add(2, &format!("· {n}"), t.dim());
    }
    for sub in &r.sub_steps {
        let mark = if sub.ok { "✓" } else { "✗" };
        x.add(
            2,
            &format!(
                "{mark} {} (key {:04x}): {}",
                sub.step, sub.key_id, sub.detail
            ),
            if sub.ok { t.base() } else { t.fail() },
        );
    }
    if let Some(a) = &r.device_audit {
        x.add(
            2,
            &format!("device audit log: {} entries read", a.entries.len()),
            t.dim(),
        );
    }
}

fn ask_height(run: &CeremonyRun) -> u16 {
    match &run.asking {
        Some(Ask::SignOff { .. } | Ask::Acknowledge { .. }) => super::rows(run.candidates().len())
            .saturating_add(4)
            .clamp(5, 9),
        // Two lines of question.
        Some(Ask::Custodian { .. }) => super::rows(run.candidates().len())
            .saturating_add(5)
            .clamp(6, 11),
        Some(Ask::Secret { entry, .. }) => 5 + u16::from(entry.error.is_some()),
        Some(_) | None => 0,
    }
}

fn ask_pane(f: &mut Frame, area: Rect, s: &AppState, run: &CeremonyRun, t: &Theme) {
    if area.height == 0 {
        return;
    }
    let w = area.width.saturating_sub(2) as usize;
    let mut x = Text::new(w);
    let title = match &run.asking {
        Some(Ask::SignOff {
            step,
            role,
            have,
            need,
            pick,
        }) => {
            let who = if *need > 1 {
                format!("{role} {} of {need}", have + 1)
            } else {
                role.clone()
            };
            let how = if run.script.is_signed(role) {
                "; your ssh-agent key signs it"
            } else {
                ""
            };
            x.add(
                0,
                &format!(
                    "The {who} signs off {:?}: choose your name (↑/↓, Enter){how}.",
                    run.script.steps[*step].id
                ),
                t.title(),
            );
            people_list(&mut x, run, *pick, t);
            " Sign-off "
        }
        Some(Ask::Acknowledge { role, pick, .. }) => {
            x.add(
                0,
                &format!(
                    "Read the result above aloud. The {role} confirms it matched (↑/↓, Enter):"
                ),
                t.title(),
            );
            people_list(&mut x, run, *pick, t);
            " Review "
        }
        Some(Ask::Custodian {
            step, turn, pick, ..
        }) => {
            let id = &run.script.steps[*step].id;
            x.add(
                0,
                &match turn {
                    CustodyTurn::Receive { index, of } => format!(
                        "Share {index} of {of} ({id}) goes to (↑/↓, Enter); only they look at the screen next:"
                    ),
                    CustodyTurn::Give { have, need } => format!(
                        "Share {} of the {need} needed ({id}) comes from (↑/↓, Enter):",
                        have + 1
                    ),
                },
                t.title(),
            );
            people_list(&mut x, run, *pick, t);
            " Custodian "
        }
        Some(Ask::Secret { entry, .. }) => {
            widgets::draw_secret(f, area, entry, t);
            return;
        }
        Some(_) => return,
        None => return,
    };
    if let Some(e) = &run.rejected {
        x.add(0, &format!("✗ {e}"), t.fail());
    }
    let _ = s;
    f.render_widget(
        Paragraph::new(x.lines).block(Block::bordered().title(title).border_style(t.focus())),
        area,
    );
}

/// A share as a custodian copies it: `T-I-`, then the data in groups of five, five groups
/// to a line. The lines are zeroized when dropped (the frame borrows them).
pub fn share_groups(text: &str) -> (String, Vec<Zeroizing<String>>) {
    let (head, data) = match text.match_indices('-').nth(1) {
        Some((at, _)) => text.split_at(at + 1),
        None => ("", text),
    };
    let chars: Vec<char> = data.chars().collect();
    let lines = chars
        .chunks(25)
        .map(|line| {
            let mut l = Zeroizing::new(String::with_capacity(40));
            for (k, g) in line.chunks(5).enumerate() {
                if k > 0 {
                    l.push_str("   ");
                }
                l.extend(g.iter());
            }
            l
        })
        .collect();
    (head.to_string(), lines)
}

/// One custodian's share, alone on a cleared screen.
fn share_screen(f: &mut Frame, area: Rect, run: &CeremonyRun, sh: &ShownShare, t: &Theme) {
    let mut x = Text::new(area.width.saturating_sub(2) as usize);
    x.add(
        0,
        &format!(
            "Only {} looks at the screen now. Copy the share exactly, then press Enter: it is hidden and you type it back from your copy.",
            sh.custodian
        ),
        t.base(),
    );
    x.add(0, "", t.base());
    // The share's lines borrow zeroizing buffers: no plain copy of it outlives the frame.
    let (head, lines) = share_groups(sh.text.expose_str().unwrap_or(""));
    let mut share: Vec<Line<'_>> = vec![Line::styled(format!("    {head}"), t.title())];
    for (n, l) in lines.iter().enumerate() {
        share.push(Line::from(vec![
            Span::styled(format!("  {:>2}   ", n + 1), t.dim()),
            Span::styled(l.as_str(), t.title()),
        ]));
        share.push(Line::default());
    }
    let mut after = Text::new(x.width);
    after.add(
        0,
        "Letters are case-sensitive: 0 (zero) and O, 1 (one), l (ell) and I are different characters. Spaces and line breaks are not part of the share.",
        t.dim(),
    );
    let id = &run.script.steps[sh.step].id;
    after.add(
        0,
        &format!(
            "Any {} of the {} shares rebuild the wrap key ({id}); no one else sees this share.",
            sh.threshold, sh.of
        ),
        t.dim(),
    );
    if let Some(e) = &run.rejected {
        after.add(0, &format!("✗ {e}"), t.fail());
    }
    let lines: Vec<Line<'_>> = x
        .lines
        .into_iter()
        .chain(share)
        .chain(after.lines)
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(format!(
                    " Share {} of {} · for {} ",
                    sh.index, sh.of, sh.custodian
                ))
                .border_style(t.focus()),
        ),
        area,
    );
}

/// A custodian types a share: back from their copy, or (restore) to give it.
fn custodian_entry(f: &mut Frame, area: Rect, run: &CeremonyRun, t: &Theme) {
    let (title, intro, entry) = match &run.asking {
        Some(Ask::Retype {
            custodian,
            index,
            of,
            entry,
            ..
        }) => (
            format!(" Share {index} of {of} · {custodian} "),
            vec![
                format!("The share is hidden. {custodian}, type it back from your copy (spaces and line breaks do not matter), then press Enter."),
                "The next custodian is called only once it matches.".to_string(),
            ],
            entry,
        ),
        Some(Ask::ShareEntry {
            step,
            custodian,
            turn,
            entry,
        }) => {
            let (have, need) = match turn {
                CustodyTurn::Give { have, need } => (*have, *need),
                CustodyTurn::Receive { .. } => (0, 0),
            };
            let id = &run.script.steps[*step].id;
            (
                format!(" Restore ({id}) · share {} of {need} · {custodian} ", have + 1),
                vec![
                    format!("Shares given so far: {have} of the {need} needed."),
                    format!("{custodian}, type your share as you copied it (T-I-…); typing is hidden. Enter gives it."),
                ],
                entry,
            )
        }
        _ => return,
    };
    let [top, bottom] = Layout::vertical([Constraint::Min(4), Constraint::Length(6)]).areas(area);
    let mut x = Text::new(top.width.saturating_sub(2) as usize);
    for l in &intro {
        x.add(0, l, t.base());
    }
    if let Some(e) = &run.rejected {
        x.add(0, &format!("✗ {e}"), t.fail());
    }
    f.render_widget(
        Paragraph::new(x.lines).block(Block::bordered().title(title).border_style(t.focus())),
        top,
    );
    widgets::draw_secret(f, bottom, entry, t);
}

/// The people who may answer, the chosen one marked.
fn people_list(x: &mut Text, run: &CeremonyRun, pick: usize, t: &Theme) {
    let people = run.candidates();
    if people.is_empty() {
        x.add(2, "(no one on the roll call can answer this)", t.fail());
    }
    for (k, p) in people.iter().enumerate() {
        let (mark, style) = if k == pick {
            ("▶ ", t.selected())
        } else {
            ("  ", t.base())
        };
        x.line(Line::from(vec![
            Span::styled(mark, t.focus()),
            Span::styled(p.name.clone(), style),
            Span::styled(format!("  ({})", p.roles.join(", ")), t.dim()),
        ]));
    }
}

fn roll_call(f: &mut Frame, area: Rect, run: &CeremonyRun, rc: &RollCall, t: &Theme) {
    let [top, bottom] = Layout::vertical([Constraint::Min(6), Constraint::Length(7)]).areas(area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let mut x = Text::new(left.width.saturating_sub(2) as usize);
    x.add(
        0,
        "Before the first step, everyone present is named once, with their roles. Sign-offs and reviews are then picked from this list.",
        t.base(),
    );
    x.add(0, "", t.base());
    x.add(0, "Each step needs, as distinct people:", t.title());
    for (role, n) in &run.script.roles {
        let per = if *n > 1 {
            format!("{n} people")
        } else {
            "1 person".into()
        };
        x.add(2, &format!("{role}: {per} per sign-off"), t.base());
    }
    if let Some(r) = &run.script.ceremony.reviewer {
        x.add(2, &format!("{r}: reads each result aloud"), t.base());
    }
    f.render_widget(
        Paragraph::new(x.lines).block(Block::bordered().title(" Roll call ")),
        left,
    );
    let mut y = Text::new(right.width.saturating_sub(2) as usize);
    if rc.people.is_empty() {
        y.add(0, "(no one yet)", t.dim());
    }
    for p in &rc.people {
        y.line(Line::from(vec![
            Span::styled("✓ ", t.ok()),
            Span::styled(p.name.clone(), t.title()),
            Span::styled(format!("  {}", p.roles.join(", ")), t.dim()),
        ]));
    }
    f.render_widget(
        Paragraph::new(y.lines)
            .block(Block::bordered().title(format!(" Present: {} ", rc.people.len()))),
        right,
    );
    let mut z = Text::new(bottom.width.saturating_sub(2) as usize);
    match &rc.choosing {
        Some(c) => {
            z.add(
                0,
                &format!("Roles of {} (Space ticks, Enter adds):", c.name),
                t.title(),
            );
            for (k, (role, on)) in c.roles.iter().enumerate() {
                let mark = if *on { "[x]" } else { "[ ]" };
                let cur = if k == c.at { "▶ " } else { "  " };
                z.line(Line::from(vec![
                    Span::styled(cur, t.focus()),
                    Span::raw(format!("{mark} {role}")),
                ]));
            }
        }
        None => {
            z.line(Line::from(vec![
                Span::styled("▶ ", t.focus()),
                Span::styled(format!("{:<11}", "Name"), t.title()),
                Span::styled(rc.name.value.clone(), t.selected()),
                Span::styled("█", t.focus()),
            ]));
            z.add(
                0,
                "Enter adds the person · Enter on an empty name ends the roll call · Backspace on an empty name removes the last",
                t.dim(),
            );
        }
    }
    if let Some(e) = rc.name.error.as_ref().or(run.rejected.as_ref()) {
        z.add(0, &format!("✗ {e}"), t.fail());
    }
    f.render_widget(
        Paragraph::new(z.lines).block(
            Block::bordered()
                .title(" Who is present ")
                .border_style(t.focus()),
        ),
        bottom,
    );
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
