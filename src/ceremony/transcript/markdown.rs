//! The printable rendering of a verified transcript, for the witnesses to read, compare
//! aloud and sign. Everything a script, an answers file or a token said is escaped: it
//! can never start a heading, a link or a forged section. Reads entries only; verifying
//! the chain is the parent module's.

use serde_json::Value;

use super::{Entry, Verified};
use crate::formats::words::Fingerprint;
/// Text from a script, an answers file or a token as one line of Markdown: control
/// characters (a newline among them) become spaces, and every character Markdown or
/// HTML would act on is escaped, so nothing a script says can start a heading, a link
/// or a forged section.
fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            c if c.is_control() => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text Officiant itself wrote (a key type, an object class) on one line: only control
/// characters are replaced.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A value as a Markdown code span, whatever backticks or newlines it holds.
fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut run = 0;
    let mut longest = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if longest > 0 || s.starts_with(' ') || s.ends_with(' ') {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// Multi-line text (an instruction, a description) as a block quote, each line escaped.
fn quote(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let l = inline(line);
        // A line that would be a list item or a numbered one inside the quote.
        let l = match l.chars().next() {
            Some('-' | '+' | '=') => format!("\\{l}"),
            Some(c) if c.is_ascii_digit() => l.replacen(". ", "\\. ", 1),
            _ => l,
        };
        out.push_str(&format!("> {l}\n"));
    }
    out
}

/// The session fields shown under a session's heading, in order.
const SESSION_FIELDS: [(&str, &str); 7] = [
    ("command", "Command"),
    ("script", "Script"),
    ("script_sha256", "Script SHA-256"),
    ("answers", "Answers"),
    ("answers_sha256", "Answers SHA-256"),
    ("backend", "Backend"),
    ("officiant", "Officiant version"),
];

fn roster_lines(people: &Value) -> String {
    let mut md = String::new();
    for p in people.as_array().into_iter().flatten() {
        let roles: Vec<String> = p["roles"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(inline)
            .collect();
        md.push_str(&format!(
            "- {} — {}\n",
            inline(p["name"].as_str().unwrap_or("")),
            roles.join(", ")
        ));
    }
    md
}

/// The Markdown rendering: what the witnesses read, compare aloud and sign. The roster
/// heads it; each session is a heading, and a resumed session is a marker that names
/// the steps done before, not the ceremony printed again.
pub fn render_markdown(v: &Verified) -> String {
    let mut md = String::new();
    let mut roles: Vec<(String, u64)> = Vec::new();
    let mut title = String::from("Officiant transcript");
    let mut first_roster: Option<Value> = None;
    for e in &v.entries {
        let d = &e.data;
        if e.kind == "open" && roles.is_empty() {
            if let Some(c) = d.get("ceremony") {
                title = format!(
                    "{} ({} v{})",
                    inline(&field(c, "title")),
                    inline(&field(c, "id")),
                    c.get("version").and_then(Value::as_i64).unwrap_or(0)
                );
            }
            if let Some(r) = d.get("roles").and_then(Value::as_object) {
                roles = r
                    .iter()
                    .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(1)))
                    .collect();
            }
        }
        if e.kind == "roster" && first_roster.is_none() {
            first_roster = Some(d["participants"].clone());
        }
    }
    md.push_str(&format!("# {title}\n\n"));
    md.push_str("Rendered from the hash-chained transcript; `officiant transcript verify` checks the original.\n\n");
    if let Some(people) = first_roster
        .as_ref()
        .filter(|p| p.as_array().is_some_and(|a| !a.is_empty()))
    {
        md.push_str("## Participants (roll call)\n\n");
        md.push_str(&roster_lines(people));
        md.push('\n');
    }
    let mut sessions = Sessions {
        md,
        pending: String::new(),
        sessions: 0,
        first_open: None,
        done_before: Vec::new(),
        first_roster: first_roster.as_ref(),
    };
    for e in &v.entries {
        sessions.entry(e);
    }
    sessions.flush_done();
    let mut md = sessions.md;
    let head = hex::decode(&v.head).unwrap_or_default();
    let fp = Fingerprint::of(&head);
    md.push_str("## Transcript head (SHA-256 of the last entry)\n\n");
    md.push_str(&format!("    {}\n\n    {}\n\n", fp.groups, fp.words));
    md.push_str("## Signatures\n\nBy signing, I confirm I witnessed the steps above and compared the fingerprints and the transcript head.\n\n");
    for (role, n) in &roles {
        for k in 0..*n {
            let which = if *n > 1 {
                format!(" {}", k + 1)
            } else {
                String::new()
            };
            md.push_str(&format!(
                "**{}{which}**\n\nName: ______________________  Signature: ______________________  Date: ____________\n\n",
                inline(role)
            ));
        }
    }
    md
}

/// A string field of an entry's data; empty when absent.
fn field(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

/// The rendering of the entries, session by session.
struct Sessions<'a> {
    md: String,
    /// Sign-offs come before their step starts; shown under the step's heading.
    pending: String,
    sessions: u32,
    first_open: Option<&'a Value>,
    /// Steps a resumed session found done, named once before its next entry.
    done_before: Vec<String>,
    /// The roll call shown at the top; a session's own is shown only when it differs.
    first_roster: Option<&'a Value>,
}

impl<'a> Sessions<'a> {
    fn flush_done(&mut self) {
        if !self.done_before.is_empty() {
            self.md.push_str(&format!(
                "Steps done in an earlier session (shown there, not repeated): {}\n\n",
                self.done_before.join(", ")
            ));
            self.done_before.clear();
        }
    }

    /// One entry.
    fn entry(&mut self, e: &'a Entry) {
        let d = &e.data;
        if e.kind != "resumed" {
            self.flush_done();
        }
        match e.kind.as_str() {
            "open" => self.open(e),
            "roster" => {
                let same = self.first_roster == Some(&d["participants"]);
                if !same {
                    self.md.push_str("Roll call for this session:\n\n");
                    self.md.push_str(&roster_lines(&d["participants"]));
                    self.md.push('\n');
                }
            }
            "token" => self.token(e),
            "sign-off" => self.sign_off(e),
            "confirm" => self.pending.push_str(&format!(
                "- destructive step {} confirmed at {}\n",
                code(&field(d, "id")),
                e.time
            )),
            "step-start" => self.step_start(e),
            "step-done" => {
                self.md.push_str(&format!("Completed {}\n\n", e.time));
                render_result(&mut self.md, d.get("result").unwrap_or(&Value::Null));
            }
            "resumed" => self.done_before.push(code(&field(d, "id"))),
            "acknowledge" => self.md.push_str(&format!(
                "- **{}** {} acknowledged the result: {} ({})\n\n",
                inline(&field(d, "role")),
                inline(&field(d, "name")),
                inline(&field(d, "statement")),
                e.time
            )),
            "step-failed" => self.md.push_str(&format!(
                "**Step {} failed:** {}\n\n",
                code(&field(d, "id")),
                inline(&field(d, "error"))
            )),
            "stopped" => self.md.push_str(&format!(
                "**Run stopped:** {}\n\n",
                inline(&field(d, "error"))
            )),
            "evidence" => {
                let fp = hex::decode(field(d, "public_key_sha256")).unwrap_or_default();
                self.md.push_str(&format!(
                "Evidence signature: key {} (public key SHA-256 {}) signed the transcript head {} (the entries above); `officiant transcript verify --pubkey` checks it\n\n",
                code(&field(d, "key")),
                code(&Fingerprint::of(&fp).groups),
                code(&field(d, "head"))
            ));
            }
            "close" => self.md.push_str(&format!(
                "\nSession closed {}: {} ({} entries)\n\n",
                e.time,
                inline(&field(d, "status")),
                d.get("entries").and_then(Value::as_u64).unwrap_or(0)
            )),
            _ => {}
        }
    }

    /// A session opened: its fields in full the first time, then only what changed.
    fn open(&mut self, e: &'a Entry) {
        let d = &e.data;
        self.sessions += 1;
        let sessions = self.sessions;
        let resumed = d.get("resumed").and_then(Value::as_bool) == Some(true);
        match self.first_open {
            None => {
                self.md
                    .push_str(&format!("## Session {sessions} opened {}\n\n", e.time));
                for (k, label) in SESSION_FIELDS {
                    let val = field(d, k);
                    if !val.is_empty() {
                        self.md.push_str(&format!("- {label}: {}\n", code(&val)));
                    }
                }
                self.first_open = Some(d);
            }
            Some(first) => {
                self.md.push_str(&format!(
                    "\n## Session {sessions} opened {}{}\n\n",
                    e.time,
                    if resumed {
                        " — resumed after an interrupted run"
                    } else {
                        ""
                    }
                ));
                let mut same = true;
                for (k, label) in SESSION_FIELDS {
                    let val = field(d, k);
                    if val != field(first, k) {
                        same = false;
                        if !val.is_empty() {
                            self.md.push_str(&format!("- {label}: {}\n", code(&val)));
                        }
                    }
                }
                if same {
                    self.md
                        .push_str("- Same script, answers, backend and version as session 1\n");
                }
            }
        }
        self.md.push('\n');
    }

    /// The token the session opened.
    fn token(&mut self, e: &'a Entry) {
        let d = &e.data;
        self.md.push_str(&format!(
            "Token: label {}, serial {}, {} {}{}\n\n",
            code(&field(d, "label")),
            code(&field(d, "serial")),
            inline(&field(d, "manufacturer")),
            inline(&field(d, "model")),
            if d.get("rehearsal").and_then(Value::as_bool) == Some(true) {
                " — **REHEARSAL TOKEN, NOT SECURE**"
            } else {
                ""
            }
        ));
    }

    /// A sign-off, shown under the heading of the step it is for (which comes after it).
    fn sign_off(&mut self, e: &'a Entry) {
        let d = &e.data;
        self.pending.push_str(&format!(
            "- {} signed off as **{}** for step {} at {}\n",
            inline(&field(d, "name")),
            inline(&field(d, "role")),
            code(&field(d, "id")),
            e.time
        ));
        // A signed sign-off (approvals::signoff): whose key, over which head.
        if d.get("signature").is_some() {
            self.pending.push_str(&format!(
                "  - SSH signature by principal {}, key {}, over transcript head {}\n",
                code(&field(d, "principal")),
                code(&field(d, "key")),
                code(&field(d, "head"))
            ));
        }
    }

    /// A step's heading, its description or text, the sign-offs before it, and when it
    /// started.
    fn step_start(&mut self, e: &'a Entry) {
        let d = &e.data;
        let title = field(d, "title");
        self.md.push_str(&format!(
            "\n### Step {} {} ({}){}\n\n",
            d.get("step").and_then(Value::as_u64).unwrap_or(0),
            code(&field(d, "id")),
            inline(&field(d, "kind")),
            if title.is_empty() {
                String::new()
            } else {
                format!(" — {}", inline(&title))
            },
        ));
        for k in ["description", "text"] {
            let text = field(d, k);
            if !text.is_empty() {
                self.md.push_str(&quote(&text));
                self.md.push('\n');
            }
        }
        if !self.pending.is_empty() {
            self.md.push_str(&self.pending);
            self.md.push('\n');
            self.pending.clear();
        }
        self.md.push_str(&format!(
            "Started {}{}\n\n",
            e.time,
            if d.get("reconcile").and_then(Value::as_bool) == Some(true) {
                " (continuing an interrupted attempt)"
            } else {
                ""
            }
        ));
    }
}

fn render_result(md: &mut String, r: &Value) {
    if let Some(objs) = r.get("objects").and_then(Value::as_array) {
        for o in objs {
            let g = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
            md.push_str(&format!(
                "- object {} id {} {} {}\n",
                code(g("label")),
                code(g("id")),
                plain(g("class")),
                plain(g("key_type"))
            ));
            if let Some(fp) = o.get("fingerprint") {
                let f = |k: &str| fp.get(k).and_then(Value::as_str).unwrap_or("");
                md.push_str(&format!(
                    "  - public key SHA-256: {}\n  - words: {}\n",
                    code(f("groups")),
                    inline(f("words"))
                ));
            }
        }
    }
    if let Some(outs) = r.get("outputs").and_then(Value::as_array) {
        for o in outs {
            let g = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
            md.push_str(&format!(
                "- output {} SHA-256 {}\n",
                code(g("path")),
                code(g("sha256"))
            ));
        }
    }
    if let Some(subs) = r.get("sub_steps").and_then(Value::as_array) {
        for sub in subs {
            let ok = sub.get("ok").and_then(Value::as_bool) == Some(true);
            md.push_str(&format!(
                "- {} (key {:04x}): {}\n",
                inline(sub.get("step").and_then(Value::as_str).unwrap_or("")),
                sub.get("key_id").and_then(Value::as_u64).unwrap_or(0),
                if ok {
                    "ok".to_string()
                } else {
                    inline(
                        sub.get("detail")
                            .and_then(Value::as_str)
                            .unwrap_or("failed"),
                    )
                }
            ));
        }
    }
    if let Some(notes) = r.get("notes").and_then(Value::as_array) {
        for n in notes {
            md.push_str(&format!("- {}\n", inline(n.as_str().unwrap_or(""))));
        }
    }
    if let Some(log) = r.get("device_audit") {
        let n = log
            .get("entries")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        md.push_str(&format!(
            "- device audit log: {n} new entr{}",
            if n == 1 { "y" } else { "ies" }
        ));
        if let Some(note) = log.get("note").and_then(Value::as_str) {
            md.push_str(&format!(" ({})", inline(note)));
        }
        md.push('\n');
    }
    if let Some(n) = r.get("deleted").and_then(Value::as_u64) {
        md.push_str(&format!("- {n} object(s) deleted\n"));
    }
    if let Some(d) = r.get("details").filter(|d| d.is_object()) {
        render_details(md, d, 0);
    }
    if r.get("adopted").and_then(Value::as_bool) == Some(true) {
        md.push_str(
            "- found already done on the token / in the out dir (interrupted earlier attempt)\n",
        );
    }
    md.push('\n');
}

/// A step kind's details (ceremony::steps): fingerprints as hex groups and PGP words,
/// everything else as a nested list.
fn render_details(md: &mut String, v: &Value, depth: usize) {
    let pad = "  ".repeat(depth);
    let Some(map) = v.as_object() else {
        return;
    };
    for (k, val) in map {
        // Keys are the step code's own field names; values may come from a script.
        let is_fp = val.get("groups").is_some() && val.get("words").is_some();
        match val {
            _ if is_fp => {
                let f = |x: &str| val.get(x).and_then(Value::as_str).unwrap_or("");
                md.push_str(&format!(
                    "{pad}- {k}: {}\n{pad}  - words: {}\n",
                    code(f("groups")),
                    inline(f("words"))
                ));
            }
            Value::Object(_) => {
                md.push_str(&format!("{pad}- {k}:\n"));
                render_details(md, val, depth + 1);
            }
            Value::Array(items) => {
                md.push_str(&format!("{pad}- {k}:\n"));
                for it in items {
                    match it {
                        Value::Object(_) => {
                            md.push_str(&format!("{pad}  -\n"));
                            render_details(md, it, depth + 2);
                        }
                        Value::String(t) => md.push_str(&format!("{pad}  - {}\n", code(t))),
                        other => md.push_str(&format!("{pad}  - {}\n", inline(&other.to_string()))),
                    }
                }
            }
            Value::String(t) => md.push_str(&format!("{pad}- {k}: {}\n", code(t))),
            Value::Null => {}
            other => md.push_str(&format!("{pad}- {k}: {}\n", inline(&other.to_string()))),
        }
    }
}
