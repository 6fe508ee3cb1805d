//! Sign and verify: choose a key and format, pick files, see the digest, the check and
//! where the signature went.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::{widgets::text_line, Theme};
use crate::tui::app::AppState;
use crate::tui::sign::{self as component, SignField, SignResult, SIGN_FIELDS};

pub fn draw(f: &mut Frame, area: Rect, s: &AppState, t: &Theme) {
    let sg = &s.sign;
    let [form, result] = Layout::vertical([Constraint::Length(11), Constraint::Min(5)]).areas(area);
    let keys = component::signing_keys(s);
    let key = keys
        .get(sg.key)
        .map(|k| format!("‹ {} ({}) ›", k.label, k.key_type))
        .unwrap_or_else(|| "(no private key on the token)".into());
    let format = format!("‹ {} ›", component::format_name(s));
    let mut lines = Vec::new();
    for (i, field) in SIGN_FIELDS.iter().enumerate() {
        let focused = i == sg.field;
        let editing = focused && sg.editing;
        let (label, value): (&str, &str) = match field {
            SignField::Key => ("Key", &key),
            SignField::Format => ("Format", &format),
            SignField::Input => ("Input", &sg.input.input.value),
            SignField::Output => ("Output", &sg.output.input.value),
            SignField::Options => ("Options", &sg.options.input.value),
            SignField::PublicKey => ("Public key", &sg.pubkey.input.value),
            SignField::Signature => ("Signature", &sg.signature.input.value),
        };
        if *field == SignField::PublicKey {
            lines.push(Line::styled("  — verify a detached signature —", t.dim()));
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
    let focused = sg.focused();
    let entry = match focused {
        SignField::Input => Some(&sg.input),
        SignField::Output => Some(&sg.output),
        SignField::Options => Some(&sg.options),
        SignField::PublicKey => Some(&sg.pubkey),
        SignField::Signature => Some(&sg.signature),
        _ => None,
    };
    if let Some(e) = entry {
        if let Some(err) = &e.input.error {
            lines.push(Line::styled(format!("  ✗ {err}"), t.fail()));
        } else if !e.choices.is_empty() {
            lines.push(Line::styled(format!("  {}", e.choices.join("  ")), t.dim()));
        }
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Sign and verify ")),
        form,
    );

    let rl: Vec<Line> = match &sg.result {
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
            let mut l = digest_lines("Digest the token signed", digest, result.width, t);
            l.push(Line::styled(
                "✓ signature checked against the token's public key before writing",
                t.ok(),
            ));
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
            l
        }
        Some(SignResult::Verified { digest, ok, lines }) => {
            let mut l = digest_lines("SHA-256 of the input", digest, result.width, t);
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
            l
        }
    };
    f.render_widget(
        Paragraph::new(rl)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Result ")),
        result,
    );
}

/// The digest as witnesses compare it: hex groups, then the PGP words.
fn digest_lines(
    title: &'static str,
    d: &crate::formats::words::Fingerprint,
    width: u16,
    t: &Theme,
) -> Vec<Line<'static>> {
    let w = width.saturating_sub(2) as usize;
    let mut l = vec![Line::styled(title, t.title())];
    l.extend(super::wrap_words(&d.groups, w).into_iter().map(Line::raw));
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
