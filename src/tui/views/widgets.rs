//! Input widgets: a plain text field, a path field with Tab completion, and the masked
//! secret entry that checks the token's length rules and asks twice for a new secret.

use std::fmt;

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;
use zeroize::Zeroizing;

use super::Theme;
use crate::secret::Secret;

/// A plain one-line text field (not for secrets: see [`SecretEntry`]).
#[derive(Debug, Default, Clone)]
pub struct TextInput {
    /// What has been typed.
    pub value: String,
    /// Why the value was refused, shown under the field until the next key.
    pub error: Option<String>,
}

impl TextInput {
    /// Append a typed character (control characters are ignored) and clear the error.
    pub fn push(&mut self, c: char) {
        if !c.is_control() {
            self.value.push(c);
            self.error = None;
        }
    }
    /// Delete the last character.
    pub fn backspace(&mut self) {
        self.value.pop();
    }
}

/// A path field; `choices` lists what Tab found when it was ambiguous.
#[derive(Debug, Default, Clone)]
pub struct PathEntry {
    /// The path as typed.
    pub input: TextInput,
    /// The names that matched the last ambiguous Tab (cleared by the next key).
    pub choices: Vec<String>,
}

impl PathEntry {
    /// Complete the last path component from the file system: a unique match is filled in
    /// (with `/` for a directory), several extend to their common prefix and are listed.
    pub fn complete(&mut self) {
        let value = self.input.value.clone();
        let (dir, prefix) = match value.rfind('/') {
            Some(i) => (value[..=i].to_string(), value[i + 1..].to_string()),
            None => (String::new(), value.clone()),
        };
        let read_from = if dir.is_empty() { "." } else { dir.as_str() };
        let Ok(rd) = std::fs::read_dir(read_from) else {
            self.input.error = Some(format!("cannot read directory {read_from}"));
            return;
        };
        let mut found: Vec<(String, bool)> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                (name.starts_with(&prefix) && (prefix.starts_with('.') || !name.starts_with('.')))
                    .then_some((name, is_dir))
            })
            .collect();
        found.sort();
        match found.as_slice() {
            [] => {
                self.choices.clear();
                self.input.error = Some("no match".into());
            }
            [(name, is_dir)] => {
                self.input.value = format!("{dir}{name}{}", if *is_dir { "/" } else { "" });
                self.choices.clear();
                self.input.error = None;
            }
            many => {
                let first = &many[0].0;
                let common = many.iter().fold(first.len(), |n, (name, _)| {
                    first
                        .chars()
                        .zip(name.chars())
                        .take_while(|(a, b)| a == b)
                        .count()
                        .min(n)
                });
                let common: String = first.chars().take(common).collect();
                self.input.value = format!("{dir}{common}");
                self.choices = many
                    .iter()
                    .map(|(n, d)| format!("{n}{}", if *d { "/" } else { "" }))
                    .collect();
                self.input.error = None;
            }
        }
    }
}

/// Masked entry of one secret. The typed characters live in [`Zeroizing`] buffers with
/// room reserved up front, so typing never reallocates and leaves copies behind.
pub struct SecretEntry {
    /// What is asked ("User PIN to sign").
    pub prompt: String,
    first: Zeroizing<String>,
    second: Zeroizing<String>,
    /// Typing the second time.
    pub confirming: bool,
    /// A new secret is typed twice.
    pub twice: bool,
    /// Fewest characters the token takes (0: no rule).
    pub min: usize,
    /// Most characters the token takes (0: no rule).
    pub max: usize,
    /// Why Enter was refused (too short, the two entries differ, a wrong PIN).
    pub error: Option<String>,
}

const RESERVE: usize = 256;

impl fmt::Debug for SecretEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretEntry")
            .field("prompt", &self.prompt)
            .field("typed", &"[redacted]")
            .finish()
    }
}

impl SecretEntry {
    /// `min`/`max` are the token's PIN length rules (0 = no rule).
    pub fn new(prompt: &str, twice: bool, min: usize, max: usize) -> Self {
        SecretEntry {
            prompt: prompt.to_string(),
            first: Zeroizing::new(String::with_capacity(RESERVE)),
            second: Zeroizing::new(String::with_capacity(RESERVE)),
            confirming: false,
            twice,
            min,
            max,
            error: None,
        }
    }

    fn current(&mut self) -> &mut Zeroizing<String> {
        if self.confirming {
            &mut self.second
        } else {
            &mut self.first
        }
    }

    /// Append a typed character to the entry shown now. Control characters and a
    /// character past the reserved room are dropped (never a reallocation).
    pub fn push(&mut self, c: char) {
        let buf = self.current();
        if !c.is_control() && buf.len() + c.len_utf8() <= RESERVE {
            buf.push(c);
        }
        self.error = None;
    }

    /// Delete the last character of the entry shown now.
    pub fn backspace(&mut self) {
        self.current().pop();
    }

    /// How many characters are typed in the field shown now.
    pub fn typed(&self) -> usize {
        if self.confirming {
            self.second.chars().count()
        } else {
            self.first.chars().count()
        }
    }

    /// Enter: check the rules; the secret once it is complete and confirmed.
    pub fn submit(&mut self) -> Option<Secret> {
        if !self.confirming {
            let n = self.first.chars().count();
            if n == 0 {
                self.error = Some("nothing typed".into());
                return None;
            }
            if self.min > 0 && n < self.min {
                self.error = Some(format!(
                    "too short: the token needs at least {} characters",
                    self.min
                ));
                return None;
            }
            if self.max > 0 && n > self.max {
                self.error = Some(format!(
                    "too long: the token takes at most {} characters",
                    self.max
                ));
                return None;
            }
            if self.twice {
                self.confirming = true;
                self.error = None;
                return None;
            }
        } else if self.first.as_str() != self.second.as_str() {
            self.first.clear();
            self.second.clear();
            self.confirming = false;
            self.error = Some("the two entries differ: type it again".into());
            return None;
        }
        self.second.clear();
        Some(Secret::from_string(std::mem::take(&mut *self.first)))
    }
}

/// The secret entry box: prompt, one mask character per typed character, the rules.
pub fn draw_secret(f: &mut Frame, area: Rect, e: &SecretEntry, t: &Theme) {
    let label = if e.confirming {
        format!("{} (again, to confirm)", e.prompt)
    } else {
        e.prompt.clone()
    };
    let rules = match (e.min, e.max) {
        (0, 0) => String::new(),
        (min, 0) => format!("at least {min} characters"),
        (min, max) => format!("{min}–{max} characters"),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{label}: "), t.title()),
            Span::raw("•".repeat(e.typed())),
            Span::styled("█", t.dim()),
        ]),
        Line::styled(format!("Typing is hidden. {rules}"), t.dim()),
    ];
    if let Some(err) = &e.error {
        lines.push(Line::styled(format!("✗ {err}"), t.fail()));
    }
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(Block::bordered().title(" Secret ").border_style(t.focus()));
    f.render_widget(p, area);
}

/// A one-line text field with its label; `focused` shows the cursor.
pub fn text_line<'a>(
    label: &'a str,
    value: &'a str,
    focused: bool,
    editing: bool,
    t: &Theme,
) -> Line<'a> {
    let marker = if focused { "▶ " } else { "  " };
    let mut spans = vec![
        Span::styled(marker, t.focus()),
        Span::styled(format!("{label:<11}"), t.title()),
        Span::styled(value, if focused { t.selected() } else { t.base() }),
    ];
    if editing {
        spans.push(Span::styled("█", t.focus()));
    }
    Line::from(spans)
}

/// Progress of a running operation: a spinner and the elapsed time, in whole seconds.
pub fn progress_line(what: &str, elapsed: std::time::Duration, t: &Theme) -> Line<'static> {
    const SPIN: [&str; 4] = ["◐", "◓", "◑", "◒"];
    let secs = elapsed.as_secs();
    Line::from(vec![
        Span::styled(format!("{} ", SPIN[(secs % 4) as usize]), t.focus()),
        Span::styled(format!("{what}… "), t.title()),
        Span::raw(format!("{}:{:02} elapsed", secs / 60, secs % 60)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_secret_is_typed_twice_and_checked() {
        let mut e = SecretEntry::new("New user PIN", true, 4, 8);
        for c in "123".chars() {
            e.push(c);
        }
        assert!(e.submit().is_none());
        assert!(e.error.as_deref().unwrap().contains("at least 4"));
        e.push('4');
        assert!(e.submit().is_none());
        assert!(e.confirming);
        for c in "1235".chars() {
            e.push(c);
        }
        assert!(e.submit().is_none(), "a mismatch is refused");
        assert!(!e.confirming);
        for c in "1234".chars() {
            e.push(c);
        }
        assert!(e.submit().is_none());
        for c in "1234".chars() {
            e.push(c);
        }
        let s = e.submit().unwrap();
        assert_eq!(s.expose(), b"1234");
    }

    #[test]
    fn debug_never_shows_what_was_typed() {
        let mut e = SecretEntry::new("PIN", false, 0, 0);
        for c in "canary-8342".chars() {
            e.push(c);
        }
        assert!(!format!("{e:?}").contains("canary"));
    }
}
