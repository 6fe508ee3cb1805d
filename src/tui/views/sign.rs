//! Sign and verify: choose a key and format, pick files, see the digest, the check and
//! where the signature went.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::widgets::{text_line, PathEntry};
use super::Theme;
use crate::tui::app::AppState;
use crate::tui::sign::{self as component, SignField, SignResult, SignState, SIGN_FIELDS};

/// The sign screen's body: the fields, then the last result.
pub fn draw(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let sg = &s.sign;
    // Nine fields, the borders, and a line for a field's error or completion choices
    // when there is one.
    let focused_entry = match sg.focused() {
        SignField::Input => Some(&sg.input),
        SignField::Output => Some(&sg.output),
        SignField::Options => Some(&sg.options),
        SignField::Request => Some(&sg.request),
        SignField::Approvals => Some(&sg.approvals),
        SignField::PublicKey => Some(&sg.pubkey),
        SignField::Signature => Some(&sg.signature),
        _ => None,
    };
    let extra = focused_entry.is_some_and(|e| e.input.error.is_some() || !e.choices.is_empty());
    let [form, result] = Layout::vertical([
        Constraint::Length(11 + u16::from(extra)),
        Constraint::Min(5),
    ])
    .areas(area);
    let keys = component::signing_keys(s);
    let key = keys
        .get(sg.key)
        .map(|k| format!("‹ {} ({}) ›", k.label, k.key_type))
        .unwrap_or_else(|| "(no private key on the token)".into());
    let format = format!("‹ {} ›", component::format_name(s));
    f.render_widget(
        Paragraph::new(form_lines(s, focused_entry, (&key, &format), t))
            .block(Block::bordered().title(" Sign and verify ")),
        form,
    );
    f.render_widget(
        Paragraph::new(result_lines(sg, result.width, t))
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Result ")),
        result,
    );
}

/// The form: each field with its value (or what it takes, when empty), then the focused
/// field's error or completion choices. `key` and `format` are the chosen ones as shown.
fn form_lines<'a>(
    s: &'a AppState,
    focused_entry: Option<&PathEntry>,
    (key, format): (&'a str, &'a str),
    t: &Theme,
) -> Vec<Line<'a>> {
    let sg = &s.sign;
    let fname = component::format_name(s);
    let mut lines = Vec::new();
    for (i, field) in SIGN_FIELDS.iter().enumerate() {
        let focused = i == sg.field;
        let editing = focused && sg.editing;
        let (label, value): (&str, &str) = match field {
            SignField::Key => ("Key", key),
            SignField::Format => ("Format", format),
            SignField::Input => ("Input", &sg.input.input.value),
            SignField::Output => ("Output", &sg.output.input.value),
            SignField::Options => ("Options", &sg.options.input.value),
            SignField::Request => ("Request", &sg.request.input.value),
            SignField::Approvals => ("Approvals", &sg.approvals.input.value),
            SignField::PublicKey => (
                component::anchor_name(component::format_named(fname).0),
                &sg.pubkey.input.value,
            ),
            SignField::Signature => ("Signature", &sg.signature.input.value),
        };
        // An empty field says what it takes.
        let hint = match field {
            SignField::Request => "(a key under an approval policy: REQ.json, or s on screen 4)",
            SignField::Approvals if !sg.request.input.value.trim().is_empty() => {
                "(empty: the .sig files beside the request)"
            }
            SignField::PublicKey if fname.starts_with("imx-") => {
                "(verify: the SRK table whose hash is fused)"
            }
            SignField::PublicKey => "(verify: the signer's public key, PEM)",
            SignField::Signature => "(verify raw: the detached signature)",
            _ => "",
        };
        if !hint.is_empty() && value.is_empty() && !editing {
            let mut l = text_line(label, "", focused, false, t);
            l.spans.push(Span::styled(hint, t.dim()));
            lines.push(l);
            continue;
        }
        if *field == SignField::Options && value.is_empty() && !editing {
            let hint = options_hint(component::format_name(s));
            let mut l = text_line(label, "", focused, false, t);
            l.spans.push(Span::styled(hint, t.dim()));
            lines.push(l);
            continue;
        }
        lines.push(text_line(label, value, focused, editing, t));
    }
    // Completion choices or a field error under the form.
    let entry = focused_entry;
    if let Some(e) = entry {
        if let Some(err) = &e.input.error {
            lines.push(Line::styled(format!("  ✗ {err}"), t.fail()));
        } else if !e.choices.is_empty() {
            lines.push(Line::styled(format!("  {}", e.choices.join("  ")), t.dim()));
        }
    }
    lines
}

/// The result pane: what `g` and `v` do, or the last signing or verification.
fn result_lines(sg: &SignState, width: u16, t: &Theme) -> Vec<Line<'static>> {
    match &sg.result {
        None => vec![Line::styled(
            "g signs Input with Key (asks the user PIN). v verifies Input against Public key: a signed image, or with Signature for raw.",
            t.dim(),
        )],
        Some(SignResult::Signed {
            digest,
            output,
            notes,
            transcript,
        }) => {
            // The verdict and where it went first: they must fit at 80×24.
            let mut l = vec![Line::styled(
                "✓ signature checked against the token's public key before writing",
                t.ok(),
            )];
            l.push(Line::from(vec![
                Span::styled("Written ", t.title()),
                Span::raw(output.display().to_string()),
            ]));
            l.push(Line::from(vec![
                Span::styled("Recorded ", t.title()),
                Span::raw(transcript.display().to_string()),
            ]));
            for n in notes {
                l.push(Line::styled(format!("· {n}"), t.dim()));
            }
            l.extend(digest_lines(
                "Digest",
                digest,
                width,
                t,
            ));
            l
        }
        Some(SignResult::Verified { digest, ok, lines }) => {
            let mut l = Vec::new();
            if *ok {
                l.push(Line::styled("✓ GOOD SIGNATURE", t.ok()));
                for x in lines {
                    l.push(Line::raw(format!("  {x}")));
                }
            } else {
                for x in lines {
                    l.push(Line::styled(format!("✗ BAD SIGNATURE: {x}"), t.fail()));
                }
            }
            l.extend(digest_lines("SHA-256 of the input", digest, width, t));
            l
        }
    }
}

/// The digest as witnesses compare it: hex groups, then the PGP words.
fn digest_lines(
    title: &'static str,
    d: &crate::formats::words::Fingerprint,
    width: u16,
    t: &Theme,
) -> Vec<Line<'static>> {
    let w = width.saturating_sub(2) as usize;
    // The title beside the hex groups when both fit on one line.
    let mut l = if title.chars().count() + 1 + d.groups.chars().count() <= w {
        vec![Line::from(vec![
            Span::styled(title, t.title()),
            Span::raw(format!(" {}", d.groups)),
        ])]
    } else {
        let mut l = vec![Line::styled(title, t.title())];
        l.extend(super::wrap_words(&d.groups, w).into_iter().map(Line::raw));
        l
    };
    l.extend(
        super::wrap_words(&d.words, w)
            .into_iter()
            .map(|x| Line::styled(x, t.dim())),
    );
    l
}

/// What the Options field takes for a format, shown while it is empty.
fn options_hint(format: &str) -> &'static str {
    match format {
        "esp32-sbv2" => "(--append adds a block to a signed image)",
        "stm32mp15" => "--load-address 0x… --entry-point 0x… [--version N]",
        "stm32mp13" => "--load-address 0x… --entry-point 0x… --key-table F…",
        _ => "(none for raw)",
    }
}
