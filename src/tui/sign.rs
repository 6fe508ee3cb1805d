//! The sign screen as a component: choose a key and a format, pick files, sign (after the
//! user PIN) or verify, and read the digest and the check. The output path follows the
//! input and the format until the officer edits it; everything that can be checked
//! without the token is checked before the PIN is asked. The signing itself is the
//! worker's, through the same recorded session as `officiant sign`
//! (`signing::recorded`); nothing here opens a key or writes a file.

use std::path::{Path, PathBuf};

use super::app::{self, AppState, Command, Popup};
use super::home::ObjectRow;
use super::keymap::Action;
use super::views::widgets::{PathEntry, SecretEntry};
use super::worker::{Request, WorkerMsg};
use crate::formats::raw::Padding;
use crate::formats::words::Fingerprint;
use crate::hsm::ObjectClass;
use crate::signing::{self, Format, FormatOptions};

/// The sign screen's fields, top to bottom (↑/↓ move between them; Enter edits a text
/// field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignField {
    /// The key pair to sign with (←/→ choose among the token's).
    Key,
    /// The format (←/→ choose among [`FORMATS`]).
    Format,
    /// The file to sign or verify (Tab completes).
    Input,
    /// Where the signed file goes; follows Input until typed.
    Output,
    /// `officiant sign`'s format flags (`--load-address 0x… --entry-point 0x…`,
    /// `--append`, `--key-table F`…), parsed by the command line's own definition.
    Options,
    /// A signing request (`--request REQ.json`), for a key under an approval policy.
    Request,
    /// Its approvals (`--approval SIG…`), separated by spaces; empty: the `.sig` files
    /// beside the request.
    Approvals,
    /// Verify: the public key (PEM/DER SPKI or certificate) to check against.
    PublicKey,
    /// Verify, raw format: the detached signature file.
    Signature,
}

/// Every field, in the order the screen shows them ([`SignState::field`] indexes it).
pub const SIGN_FIELDS: [SignField; 9] = [
    SignField::Key,
    SignField::Format,
    SignField::Input,
    SignField::Output,
    SignField::Options,
    SignField::Request,
    SignField::Approvals,
    SignField::PublicKey,
    SignField::Signature,
];

/// The transcript the console's signing sessions go into, under the out root.
pub const SIGNING_TRANSCRIPT: &str = "signing-transcript.jsonl";

/// Formats the console signs and verifies: the signing library's, with raw RSA in both
/// paddings.
pub const FORMATS: [&str; 7] = [
    "raw",
    "raw-pkcs1",
    "esp32-sbv2",
    "stm32mp15",
    "stm32mp13",
    "imx-hab4",
    "imx-ahab",
];

/// The signing library's format and RSA padding for a [`FORMATS`] name.
pub fn format_named(name: &str) -> (Format, Option<Padding>) {
    match name {
        "raw-pkcs1" => (Format::Raw, Some(Padding::Pkcs1)),
        "esp32-sbv2" => (Format::Esp32Sbv2, None),
        "stm32mp15" => (Format::Stm32Mp15, None),
        "stm32mp13" => (Format::Stm32Mp13, None),
        "imx-hab4" => (Format::ImxHab4, None),
        "imx-ahab" => (Format::ImxAhab, None),
        _ => (Format::Raw, None),
    }
}

/// The last sign or verify, as the result pane shows it (cleared when a field changes).
#[derive(Debug)]
pub enum SignResult {
    /// The worker signed, checked the signature and wrote the file.
    Signed {
        /// SHA-256 of the input, for the witnesses to compare.
        digest: Fingerprint,
        /// The file written.
        output: PathBuf,
        /// What the signer noted (header fields set, blocks appended, the approval used).
        notes: Vec<String>,
        /// The signing transcript the session went into.
        transcript: PathBuf,
    },
    /// The worker checked a signature.
    Verified {
        /// SHA-256 of the input.
        digest: Fingerprint,
        /// The signature is good.
        ok: bool,
        /// The verifier's report, line by line.
        lines: Vec<String>,
    },
}

/// The sign screen's own state: the fields as typed and the last result.
#[derive(Debug, Default)]
pub struct SignState {
    /// The focused field (index into [`SIGN_FIELDS`]).
    pub field: usize,
    /// The chosen key (index into [`signing_keys`]).
    pub key: usize,
    /// Index into [`formats`].
    pub format: usize,
    /// The Input field.
    pub input: PathEntry,
    /// The Output field.
    pub output: PathEntry,
    /// The officer typed the output path: it no longer follows the input.
    pub output_edited: bool,
    /// The Options field (`officiant sign`'s format flags).
    pub options: PathEntry,
    /// The Request field.
    pub request: PathEntry,
    /// The Approvals field.
    pub approvals: PathEntry,
    /// The Public key field.
    pub pubkey: PathEntry,
    /// The Signature field.
    pub signature: PathEntry,
    /// The focused text field has the keyboard (printable keys are text).
    pub editing: bool,
    /// The last sign or verify.
    pub result: Option<SignResult>,
}

impl SignState {
    /// The text field behind `f` (`None` for Key and Format, which are chosen with ←/→).
    pub fn entry_mut(&mut self, f: SignField) -> Option<&mut PathEntry> {
        match f {
            SignField::Input => Some(&mut self.input),
            SignField::Output => Some(&mut self.output),
            SignField::Options => Some(&mut self.options),
            SignField::Request => Some(&mut self.request),
            SignField::Approvals => Some(&mut self.approvals),
            SignField::PublicKey => Some(&mut self.pubkey),
            SignField::Signature => Some(&mut self.signature),
            _ => None,
        }
    }
    /// The focused field.
    pub fn focused(&self) -> SignField {
        SIGN_FIELDS[self.field.min(SIGN_FIELDS.len() - 1)]
    }
}

/// Key pairs to sign with, one per label: private halves when the token lists them,
/// else public halves (a token lists private objects only after a login; signing
/// logs in first).
pub fn signing_keys(s: &AppState) -> Vec<&ObjectRow> {
    let mut out: Vec<&ObjectRow> = Vec::new();
    for class in [ObjectClass::PrivateKey, ObjectClass::PublicKey] {
        for o in s
            .objects
            .iter()
            .filter(|o| o.class == class && o.scheme.is_some())
        {
            if !out.iter().any(|k| k.label == o.label) {
                out.push(o);
            }
        }
    }
    out
}

/// The formats offered for the chosen key: `raw-pkcs1` only for an RSA key.
pub fn formats(s: &AppState) -> Vec<&'static str> {
    let rsa = signing_keys(s).get(s.sign.key).is_some_and(|k| k.rsa);
    FORMATS
        .iter()
        .copied()
        .filter(|f| rsa || *f != "raw-pkcs1")
        .collect()
}

/// The chosen format's name.
pub fn format_name(s: &AppState) -> &'static str {
    let f = formats(s);
    f.get(s.sign.format.min(f.len().saturating_sub(1)))
        .copied()
        .unwrap_or("raw")
}

/// The token's keys changed: keep the choices in range.
pub fn keys_changed(s: &mut AppState) {
    let n = signing_keys(s).len();
    s.sign.key = s.sign.key.min(n.saturating_sub(1));
    let f = formats(s).len();
    s.sign.format = s.sign.format.min(f.saturating_sub(1));
}

/// The worker's `Signed` or `Verified` report becomes the result pane.
pub fn on_worker(s: &mut AppState, msg: WorkerMsg) -> Vec<Command> {
    s.sign.result = match msg {
        WorkerMsg::Signed {
            digest,
            output,
            notes,
            transcript,
        } => Some(SignResult::Signed {
            digest: Fingerprint::of(&digest),
            output,
            notes,
            transcript,
        }),
        WorkerMsg::Verified { digest, ok, lines } => Some(SignResult::Verified {
            digest: Fingerprint::of(&digest),
            ok,
            lines,
        }),
        _ => return Vec::new(),
    };
    Vec::new()
}

/// Next to the input, named as `officiant sign --out-dir` names it.
fn default_output(format: Format, input: &Path) -> PathBuf {
    let dir = input.parent().unwrap_or(Path::new(""));
    signing::output_path(format, input, dir)
}

/// The output follows the input and the format until the officer types one.
fn follow_output(s: &mut AppState) {
    if s.sign.output_edited {
        return;
    }
    let input = s.sign.input.input.value.trim().to_string();
    s.sign.output.input.value = if input.is_empty() {
        String::new()
    } else {
        let (format, _) = format_named(format_name(s));
        default_output(format, Path::new(&input))
            .display()
            .to_string()
    };
}

/// Keys on the sign screen: ↑/↓ move between fields, ←/→ choose the key or format,
/// Enter edits a text field, `g` checks what it can and asks the user PIN (the worker
/// signs), `v` verifies. Neither starts while an operation is under way.
pub fn on_action(s: &mut AppState, action: Action) -> Vec<Command> {
    let nkeys = signing_keys(s).len();
    let nformats = formats(s).len();
    let sg = &mut s.sign;
    match action {
        Action::Up | Action::Down => {
            sg.field = app::step_sel(sg.field, SIGN_FIELDS.len(), action == Action::Down);
        }
        Action::Left | Action::Right => {
            let right = action == Action::Right;
            let cycle = |v: usize, n: usize| {
                if n == 0 {
                    0
                } else if right {
                    (v + 1) % n
                } else {
                    (v + n - 1) % n
                }
            };
            match sg.focused() {
                SignField::Key => sg.key = cycle(sg.key, nkeys),
                SignField::Format => sg.format = cycle(sg.format, nformats),
                _ => return Vec::new(),
            }
            sg.result = None;
            keys_changed(s);
            follow_output(s);
        }
        Action::EditField if sg.entry_mut(sg.focused()).is_some() => sg.editing = true,
        Action::DoSign if s.busy.is_none() => {
            if nkeys == 0 {
                s.error(
                    "No key to sign with",
                    "the token shows no private key with a public half",
                    "Generate or import a key (a ceremony), or log in (L on the home screen) so private objects are listed.",
                );
            } else if let Some(err) = precheck_sign(s) {
                s.error(
                    "Cannot sign yet",
                    err,
                    "Fix the field it names (↑/↓ to it, Enter to edit), then press g again.",
                );
            } else {
                let (min, max) = s.pin_rules();
                s.popup = Some(Popup::SignPin(SecretEntry::new(
                    "User PIN to sign",
                    false,
                    min,
                    max,
                )));
            }
        }
        Action::DoVerify if s.busy.is_none() => return verify(s),
        _ => {}
    }
    Vec::new()
}

/// What can be checked before the PIN is asked: `signing::precheck`, with the field
/// each problem belongs to.
fn precheck_sign(s: &mut AppState) -> Option<String> {
    let input = s.sign.input.input.value.trim().to_string();
    if input.is_empty() {
        return Some("Input: choose the file to sign (Enter to type, Tab completes)".into());
    }
    match std::fs::metadata(&input) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Some(format!("Input: {input} is not a regular file")),
        Err(e) => return Some(format!("Input: {input}: {}", e.kind())),
    }
    let output = s.sign.output.input.value.trim().to_string();
    if output.is_empty() {
        return Some("Output: give where to write the signed file".into());
    }
    let request = s.sign.request.input.value.trim().to_string();
    if request.is_empty() && !s.sign.approvals.input.value.trim().is_empty() {
        return Some("Request: approvals are for a request; give its file".into());
    }
    if !request.is_empty() {
        if !Path::new(&request).is_file() {
            return Some(format!("Request: {request} is not a file"));
        }
        for a in approval_paths(s) {
            if !a.is_file() {
                return Some(format!("Approvals: {} is not a file", a.display()));
            }
        }
    }
    let (format, padding) = format_named(format_name(s));
    let opts = match checked_options(s) {
        Ok(o) => o,
        Err(e) => return Some(e),
    };
    let opts = match opts.to_options(padding) {
        Ok(o) => o,
        Err(e) => return Some(format!("Options: {e}")),
    };
    signing::precheck(format, &opts, Path::new(&input), Path::new(&output))
        .err()
        .map(|e| match e {
            signing::Error::Input { .. } | signing::Error::Format { .. } => format!("Input: {e}"),
            signing::Error::Output(_) => {
                format!("Output: {output} exists; Officiant never writes over a file")
            }
            other => format!("Options: {other}"),
        })
}

/// The Approvals field's files.
fn approval_paths(s: &AppState) -> Vec<PathBuf> {
    s.sign
        .approvals
        .input
        .value
        .split_whitespace()
        .map(PathBuf::from)
        .collect()
}

/// The Options field as `officiant sign`'s flags.
fn checked_options(s: &mut AppState) -> Result<FormatOptions, String> {
    FormatOptions::parse_line(&s.sign.options.input.value).map_err(|e| {
        s.sign.options.input.error = Some(e.clone());
        format!("Options: {e} (use officiant sign's flags: --load-address 0x… --entry-point 0x… for stm32, --key-table FILE --key-index N for stm32mp13, --append for esp32-sbv2, --srk-table FILE --srk-index N --img-key LABEL for imx-hab4 with Key as the CSF key)")
    })
}

/// What the Public key field holds for `format`: i.MX images are checked against the
/// SRK table whose hash is fused, every other format against the signer's public key.
pub fn anchor_name(format: Format) -> &'static str {
    if format.anchored_by_srk_table() {
        "SRK table"
    } else {
        "Public key"
    }
}

fn verify(s: &mut AppState) -> Vec<Command> {
    let sg = &s.sign;
    let (format, padding) = format_named(format_name(s));
    // A signed image carries its signature; raw needs the detached file.
    let anchor = anchor_name(format);
    let mut needed = vec![("Input", &sg.input), (anchor, &sg.pubkey)];
    if format == Format::Raw {
        needed.push(("Signature", &sg.signature));
    }
    for (name, e) in needed {
        let v = e.input.value.trim();
        let missing = if v.is_empty() {
            Some(format!("{name} is empty"))
        } else if !Path::new(v).is_file() {
            Some(format!("{name}: {v} is not a file"))
        } else {
            None
        };
        if let Some(cause) = missing {
            s.error(
                "Verify needs its files",
                cause,
                "Fill Input and Public key (SRK table for i.MX; and Signature for raw): Enter to type, Tab completes.",
            );
            return Vec::new();
        }
    }
    let signature = match sg.signature.input.value.trim() {
        "" => None,
        _ if format != Format::Raw => None,
        p => Some(PathBuf::from(p)),
    };
    let req = Request::VerifyFile {
        format,
        padding,
        pubkey: PathBuf::from(sg.pubkey.input.value.trim()),
        input: PathBuf::from(sg.input.input.value.trim()),
        signature,
    };
    s.sign.result = None;
    app::start(s, req)
}

/// Sign with the PIN the popup took: the chosen key, format and files.
pub fn sign_with(s: &mut AppState, pin: crate::secret::Secret) -> Vec<Command> {
    let Some(key) = signing_keys(s).get(s.sign.key).map(|k| k.label.clone()) else {
        return Vec::new();
    };
    let (format, padding) = format_named(format_name(s));
    let input = PathBuf::from(s.sign.input.input.value.trim());
    let output = PathBuf::from(s.sign.output.input.value.trim());
    // Checked before the PIN was asked; read again here, never guessed.
    let Ok(options) = checked_options(s) else {
        return Vec::new();
    };
    let sign = Request::SignFile {
        key,
        format,
        padding,
        options,
        pin,
        input,
        output,
        transcript: s.out_root.join(SIGNING_TRANSCRIPT),
    };
    let request = s.sign.request.input.value.trim().to_string();
    let req = if request.is_empty() {
        sign
    } else {
        Request::SignApproved {
            sign: Box::new(sign),
            request: PathBuf::from(request),
            approvals: approval_paths(s),
        }
    };
    s.sign.result = None;
    app::start(s, req)
}

/// Keys while a sign-screen field has the keyboard.
pub fn on_entry(s: &mut AppState, action: Action) -> Vec<Command> {
    let f = s.sign.focused();
    let Some(e) = s.sign.entry_mut(f) else {
        s.sign.editing = false;
        return Vec::new();
    };
    match action {
        Action::Submit | Action::Cancel | Action::Abort => {
            e.choices.clear();
            s.sign.editing = false;
        }
        // Options are flags, Approvals a list: neither is one path.
        Action::Complete if !matches!(f, SignField::Options | SignField::Approvals) => {
            e.complete();
            edited(s, f);
        }
        Action::DeleteChar => {
            e.input.backspace();
            e.choices.clear();
            edited(s, f);
        }
        _ => {}
    }
    Vec::new()
}

/// A printable key typed into the field being edited (the output stops or starts
/// following the input; a stale result is cleared).
pub fn type_char(s: &mut AppState, c: char) {
    let f = s.sign.focused();
    if let Some(e) = s.sign.entry_mut(f) {
        e.input.push(c);
        e.choices.clear();
        edited(s, f);
    }
}

/// A field changed: results of the old input are stale, and the output follows.
fn edited(s: &mut AppState, f: SignField) {
    match f {
        SignField::Output => {
            s.sign.output_edited = !s.sign.output.input.value.trim().is_empty();
        }
        SignField::Input => {
            s.sign.result = None;
            follow_output(s);
        }
        _ => s.sign.result = None,
    }
}
