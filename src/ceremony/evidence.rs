//! Evidence anchored, not just chained. A hash chain only shows that nobody changed a
//! transcript *without recomputing every hash after the change*; this module is what
//! anchors it to something a forger does not hold:
//!
//! - the head read from paper (`--head`, hex or PGP words, as the witnesses signed it),
//! - the output files themselves (`--out`: each file the transcript records, re-hashed),
//! - the run's status (a transcript must begin with `open` and its last session close
//!   `complete`),
//! - a signature over the head by a key on the token (`[ceremony] evidence-key`), made at
//!   the end of the run and recorded as an `evidence` entry right before the closing one,
//! - on a YubiHSM, the device's own audit-log chain across every step's reading.
//!
//! [`verify`] reads the transcript once, entry by entry, in constant memory (plus the
//! list of outputs when `--out` is asked for).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::transcript::{self, Entry};
use crate::formats::words::Fingerprint;
use crate::hsm::admin::{log_digest, AuditReport, LOG_DIGEST_LEN};
use crate::hsm::Token;
use crate::keys::{sign_checked, Encoding, PublicKey, Signer};

/// The entry kind that carries the evidence signature.
pub const KIND: &str = "evidence";

/// What the evidence key signs: the head before its entry, as one line of text (so
/// `openssl dgst -verify` checks it from a file holding this line).
pub fn message(head: &str) -> String {
    format!("officiant transcript head {head}\n")
}

/// Sign `head` with the key labelled `label` on `token` (through the one token signer,
/// under its approval policy); the data of the `evidence` entry.
pub fn sign_head(token: &mut dyn Token, label: &str, head: &str) -> Result<Value, String> {
    let mut signer = crate::signing::TokenSigner::open(token, label, None)
        .map_err(|e| format!("evidence key {label:?}: {e}"))?;
    let public = signer.public_key().clone();
    let scheme = public.default_scheme();
    let msg = message(head);
    let digest = scheme.hash().digest(msg.as_bytes());
    let sig = sign_checked(&mut signer, scheme, &digest, Encoding::Der)
        .map_err(|e| format!("evidence key {label:?}: {e}"))?;
    Ok(json!({
        "key": label,
        "public_key": public.to_pem(),
        "public_key_sha256": hex::encode(public.fingerprint()),
        "scheme": scheme.name(),
        "head": head,
        "message": msg,
        "signature": hex::encode(sig),
    }))
}

/// What `transcript verify` is asked to check besides the chain.
#[derive(Debug, Default)]
pub struct Options {
    /// The head as read from paper.
    pub head: Option<Vec<u8>>,
    /// The out dir whose files the transcript records.
    pub out: Option<PathBuf>,
    /// The evidence key's public key.
    pub pubkey: Option<PublicKey>,
    /// Accept a run that stopped or was interrupted (still reported).
    pub allow_incomplete: bool,
}

/// What verification found: lines to print, and the problems that make it fail.
#[derive(Debug, Default)]
pub struct Report {
    /// What was checked and found, one line each, in order.
    pub lines: Vec<String>,
    /// What makes the verification fail, one line each (empty: it passed).
    pub problems: Vec<String>,
}

/// Everything remembered while the entries stream past.
#[derive(Default)]
struct Walk {
    first_kind: Option<String>,
    sessions: u32,
    in_session: bool,
    resumed: bool,
    outside: Option<u64>,
    /// Why the current session stopped, if it did.
    stop: Option<String>,
    close_status: Option<String>,
    /// Output path → SHA-256 (only with `--out`).
    outputs: Option<BTreeMap<String, String>>,
    evidence: Option<(Value, String)>,
    after_evidence: bool,
    audit: AuditWalk,
    /// The transcript records allowed signers or a signed sign-off.
    signed_sign_offs: bool,
}

impl Walk {
    fn visit(&mut self, e: &Entry) {
        let kind = e.kind.as_str();
        self.first_kind.get_or_insert_with(|| e.kind.clone());
        match kind {
            "open" => {
                self.sessions += 1;
                self.in_session = true;
                self.stop = None;
                self.resumed = e.data.get("resumed").and_then(Value::as_bool) == Some(true);
            }
            "close" => {
                self.in_session = false;
                self.close_status = e.data["status"].as_str().map(str::to_string);
            }
            _ if !self.in_session => {
                self.outside.get_or_insert(e.seq);
            }
            _ => {}
        }
        if matches!(kind, "stopped" | "step-failed") {
            if let Some(err) = e.data["error"].as_str() {
                self.stop = Some(err.to_string());
            }
        }
        if matches!(kind, "step-done" | "resumed") {
            if let Some(map) = self.outputs.as_mut() {
                for o in e.data["result"]["outputs"].as_array().into_iter().flatten() {
                    if let (Some(p), Some(h)) = (o["path"].as_str(), o["sha256"].as_str()) {
                        map.insert(p.to_string(), h.to_string());
                    }
                }
            }
        }
        if kind == "step-done" {
            if let Some(r) = e.data["result"]
                .get("device_audit")
                .filter(|v| !v.is_null())
            {
                let step = e.data["id"].as_str().unwrap_or("?").to_string();
                match serde_json::from_value::<AuditReport>(r.clone()) {
                    Ok(report) => self.audit.add(&step, self.sessions, &report),
                    Err(err) => self.audit.problems.push(format!(
                        "step {step}: device audit report unreadable ({err})"
                    )),
                }
            }
        }
        if kind == "allowed-signers" || (kind == "sign-off" && e.data.get("signature").is_some()) {
            self.signed_sign_offs = true;
        }
        if kind == KIND {
            self.evidence = Some((e.data.clone(), e.prev.clone()));
            self.after_evidence = false;
        } else if self.evidence.is_some() && kind != "close" {
            self.after_evidence = true;
        }
    }
}

/// The YubiHSM audit log across steps: each entry's digest chains the one before.
#[derive(Default)]
struct AuditWalk {
    reads: u32,
    entries: u32,
    /// Entries recorded without their raw bytes (older transcripts): shown, not checked.
    unchecked: u32,
    note: Option<String>,
    /// The last entry seen: item, digest, step, session.
    prev: Option<(u16, [u8; LOG_DIGEST_LEN], String, u32)>,
    problems: Vec<String>,
    gaps: Vec<String>,
}

impl AuditWalk {
    fn add(&mut self, step: &str, session: u32, report: &AuditReport) {
        self.reads += 1;
        if report.entries.is_empty() {
            if let Some(n) = &report.note {
                self.note = Some(n.clone());
            }
        }
        for entry in &report.entries {
            self.entries += 1;
            if entry.raw.is_empty() {
                self.unchecked += 1;
                self.prev = None;
                continue;
            }
            let raw = match entry.raw_bytes() {
                Ok(r) => r,
                Err(e) => {
                    self.problems
                        .push(format!("device audit log, step {step}: {e}"));
                    self.prev = None;
                    continue;
                }
            };
            let mut digest = [0u8; LOG_DIGEST_LEN];
            digest.copy_from_slice(&raw[16..]);
            if let Some((item, prev_digest, prev_step, prev_session)) = &self.prev {
                let next = item.wrapping_add(1);
                if entry.item == next {
                    if log_digest(&raw[..16], prev_digest) != digest {
                        self.problems.push(format!(
                            "device audit log, step {step}: item {} does not chain to item {item}: altered or replaced",
                            entry.item
                        ));
                    }
                } else {
                    let missing = if entry.item.wrapping_sub(1) == next {
                        format!("item {next} is missing")
                    } else {
                        format!("items {next} to {} are missing", entry.item.wrapping_sub(1))
                    };
                    let between = format!("between step {prev_step} and step {step}");
                    if *prev_session == session {
                        self.problems
                            .push(format!("device audit log: {missing} {between}"));
                    } else {
                        // Read by a session that was killed before it recorded them.
                        self.gaps.push(format!(
                            "device audit log: {missing} {between} (across an interrupted session)"
                        ));
                    }
                }
            }
            self.prev = Some((entry.item, digest, step.to_string(), session));
        }
    }

    fn report(&self, r: &mut Report) {
        if self.reads == 0 {
            return;
        }
        if self.entries == 0 {
            r.lines.push(format!(
                "device audit log: no entries in {} reads{}",
                self.reads,
                self.note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ));
            return;
        }
        let checked = self.entries - self.unchecked;
        r.lines.push(format!(
            "device audit log: {} entries in {} reads; {}",
            self.entries,
            self.reads,
            if !self.problems.is_empty() {
                "chain BROKEN".to_string()
            } else if self.unchecked > 0 {
                format!(
                    "chain intact over {checked}; {} recorded without their bytes, not checked",
                    self.unchecked
                )
            } else {
                "chain intact".to_string()
            }
        ));
        r.lines.extend(self.gaps.iter().cloned());
        r.problems.extend(self.problems.iter().cloned());
    }
}

/// Verify the transcript at `path` against `opts`. An `Err` is a broken chain (the
/// file is not a transcript, or was altered without recomputing its hashes); every other
/// finding is in the report, whose problems make verification fail.
pub fn verify(path: &Path, opts: &Options) -> Result<Report, transcript::Error> {
    let mut walk = Walk {
        outputs: opts.out.as_ref().map(|_| BTreeMap::new()),
        ..Walk::default()
    };
    let streamed = transcript::stream(path, |e| {
        walk.visit(e);
        Ok(())
    })?;
    let mut r = Report::default();
    r.lines.push(format!(
        "{}: chain OK, {} entries, {} session{}",
        path.display(),
        streamed.entries,
        walk.sessions,
        if walk.sessions == 1 { "" } else { "s" }
    ));
    let head = hex::decode(&streamed.head).unwrap_or_default();
    let fp = Fingerprint::of(&head);
    r.lines.push(format!("head {}", streamed.head));
    r.lines.push(format!("  {}", fp.groups));
    r.lines.push(format!("  {}", fp.words));
    check_head(&mut r, &head, opts.head.as_deref());
    check_status(&mut r, &walk, &streamed, opts.allow_incomplete);
    if let (Some(dir), Some(outputs)) = (&opts.out, &walk.outputs) {
        check_outputs(&mut r, dir, outputs);
    }
    check_evidence(&mut r, &walk, opts.pubkey.as_ref());
    walk.audit.report(&mut r);
    if walk.signed_sign_offs {
        check_signed_sign_offs(&mut r, path);
    }
    Ok(r)
}

/// Every signed sign-off against the allowed signers its session recorded, and no signed
/// role's sign-off without its signature (see [`crate::approvals::signoff`]). Only a
/// transcript that has them is read whole.
fn check_signed_sign_offs(r: &mut Report, path: &Path) {
    use crate::approvals::signoff;
    match signoff::read_entries(path).and_then(|e| signoff::check_transcript(&e)) {
        Ok(checked) => {
            for (step, name, principal) in &checked.verified {
                r.lines.push(format!(
                    "signed sign-off of {step} by {name} (principal {principal:?}): good signature"
                ));
            }
        }
        Err(m) => r.problems.push(m),
    }
}

fn check_head(r: &mut Report, head: &[u8], given: Option<&[u8]>) {
    let Some(given) = given else { return };
    if given.len() != head.len() {
        r.problems.push(format!(
            "--head has {} bytes; a transcript head has {} (a word or digit missing?)",
            given.len(),
            head.len()
        ));
    } else if given != head {
        r.problems.push(format!(
            "the chain ends at head {}, not at the --head given ({}): the transcript was altered, cut or replaced",
            hex::encode(head),
            hex::encode(given)
        ));
    } else {
        r.lines.push("head matches the one given (--head)".into());
    }
}

fn check_status(r: &mut Report, w: &Walk, s: &transcript::Streamed, allow: bool) {
    match w.first_kind.as_deref() {
        Some("open") => {}
        other => r.problems.push(format!(
            "does not begin with an open entry (it begins with {:?}): cut at the front or made up",
            other.unwrap_or("")
        )),
    }
    if let Some(seq) = w.outside {
        r.problems.push(format!(
            "entry {seq} is outside any session (after a close, before an open)"
        ));
    }
    let status = if s.last_kind == "close" {
        w.close_status.clone().unwrap_or_default()
    } else {
        "interrupted".to_string()
    };
    let why = match (status.as_str(), &w.stop) {
        ("complete", _) => String::new(),
        ("interrupted", _) => {
            ": the last session has no closing entry (the run was killed, or the file was cut)"
                .to_string()
        }
        (_, Some(e)) => format!(": {e}"),
        _ => String::new(),
    };
    r.lines.push(format!(
        "status: {status}{why}{}",
        if w.resumed && w.sessions > 1 {
            " (the last session resumed an interrupted run)"
        } else {
            ""
        }
    ));
    if status != "complete" && !allow {
        r.problems.push(format!(
            "the run did not complete (status {status}); give --allow-incomplete to accept it"
        ));
    }
}

fn check_outputs(r: &mut Report, dir: &Path, outputs: &BTreeMap<String, String>) {
    if outputs.is_empty() {
        r.lines
            .push("outputs: the transcript records no output files".into());
        return;
    }
    let mut bad = Vec::new();
    for (name, want) in outputs {
        let path = dir.join(name);
        match crate::output::sha256_file(&path) {
            Ok(got) if hex::encode(got) == want.to_ascii_lowercase() => {}
            Ok(got) => {
                r.lines.push(format!(
                    "output {name}: differs (SHA-256 now {}, recorded {want})",
                    hex::encode(got)
                ));
                bad.push(format!("{name} (differs)"));
            }
            Err(_) => {
                r.lines.push(format!("output {name}: missing"));
                bad.push(format!("{name} (missing)"));
            }
        }
    }
    if bad.is_empty() {
        r.lines.push(format!(
            "outputs: {} output file{} match in {}",
            outputs.len(),
            if outputs.len() == 1 { "" } else { "s" },
            dir.display()
        ));
    } else {
        r.problems.push(format!(
            "{} output file{} differ or are missing in {}: {}",
            bad.len(),
            if bad.len() == 1 { "" } else { "s" },
            dir.display(),
            bad.join(", ")
        ));
    }
}

fn check_evidence(r: &mut Report, w: &Walk, trusted: Option<&PublicKey>) {
    let Some((data, prev)) = &w.evidence else {
        if trusted.is_some() {
            r.problems
                .push("no evidence signature in the transcript, and --pubkey expects one".into());
        }
        return;
    };
    let s = |k: &str| data[k].as_str().unwrap_or("").to_string();
    let (label, head) = (s("key"), s("head"));
    let recorded = PublicKey::from_bytes(s("public_key").as_bytes());
    let shown = recorded
        .as_ref()
        .map(|k| Fingerprint::of(&k.fingerprint()).groups)
        .unwrap_or_else(|_| "unreadable".into());
    let mut wrong = Vec::new();
    if &head != prev {
        wrong.push(format!(
            "the evidence signature covers head {head}, but the entries before it end at {prev}: they were changed after it was made"
        ));
    }
    if s("message") != message(&head) {
        wrong.push("the evidence entry's message is not the head it names".into());
    }
    if w.after_evidence {
        wrong.push("entries follow the evidence signature: they are not covered by it".into());
    }
    if let Ok(k) = &recorded {
        if hex::encode(k.fingerprint()) != s("public_key_sha256") {
            wrong.push("the evidence entry's key and fingerprint disagree".into());
        }
    }
    match trusted {
        None => r.lines.push(format!(
            "evidence signature: present, by key {label:?} (SHA-256 {shown}); unchecked: give --pubkey PUB.pem"
        )),
        Some(k) => {
            let sig = hex::decode(s("signature")).unwrap_or_default();
            let scheme = k.default_scheme();
            let digest = scheme.hash().digest(message(&head).as_bytes());
            if recorded.as_ref().ok() != Some(k) {
                wrong.push(format!(
                    "the evidence signature is by key {label:?} (SHA-256 {shown}), not by the --pubkey key (SHA-256 {})",
                    Fingerprint::of(&k.fingerprint()).groups
                ));
            } else if k.verify_digest(scheme, &digest, &sig).is_err() {
                wrong.push("the evidence signature does not verify with --pubkey".into());
            } else if wrong.is_empty() {
                r.lines.push(format!(
                    "evidence signature: valid, by key {label:?} (SHA-256 {shown}) over head {head}"
                ));
            }
        }
    }
    r.problems.extend(wrong);
}
