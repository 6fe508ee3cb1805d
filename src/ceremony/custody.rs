//! The custody step kinds: `generate-wrap-key`, `backup`, `restore`. Thin layers over
//! `crate::custody`; what they need from people (handing a share to a custodian, taking
//! one back) they ask of a [`Custodians`], which the runner answers through the face
//! (`super::custodians::Desk`). A share never enters a [`StepResult`]: results carry
//! custodians' names, share indices, T, N and the wrap key's check value.
//!
//! Resume (`reconcile`):
//! - `generate-wrap-key` hands every share out before the token gets the key. A wrap key
//!   on the token is adopted only when the custodians' shares (read back by the face, or
//!   typed again by T custodians) rebuild its check value. Without one, shares the face
//!   can read back from the interrupted hand-out are kept (see
//!   `crate::custody::wrap_key`) and only the others handed out.
//! - `backup` adopts the manifest and the key files an interrupted attempt wrote (each
//!   whole or absent), and refuses a directory holding another backup.
//! - `restore` finds a restore already done without asking for shares; otherwise it
//!   takes them again and neither puts the wrap key nor imports a key twice.

use std::collections::BTreeMap;

use serde_json::json;

use super::engine::{CreatedObject, OutputFile, StepResult};
use super::execute::{StepContext, StepError};
use super::script::{Action, BackupStep, CustodyLogins, GenerateWrapKey, RestoreStep, Step};
use crate::custody::{self, backup, manifest::Manifest, restore, shamir::Share, wrap_key, Logins};
use crate::hsm::{Token, WrapKeySpec};

/// Whom a custody step calls on next: a custodian receives a share, or gives one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustodyTurn {
    /// Share `index` of `of` is handed to them.
    Receive {
        /// The share's index (1-based).
        index: u8,
        /// How many shares the step hands out.
        of: u8,
    },
    /// They give the `have + 1`-th of the `need` shares the step takes.
    Give {
        /// Shares given so far.
        have: usize,
        /// Shares the step takes (its threshold).
        need: usize,
    },
}

/// What a custody step needs from the custodians. Every method names the custodian it
/// dealt with (checked against the roll call); `Err` carries why the run must stop.
pub trait Custodians {
    /// Hand `share` (one of `of`) to its custodian, once they proved they copied it.
    fn hand_out(&mut self, share: &Share, of: u8) -> Result<String, Halt>;
    /// The share of index `index` an interrupted hand-out gave its custodian, if the
    /// face can read it back (headless: their file); it must be that share of a
    /// `threshold`-of-`of` set.
    fn recall(&mut self, index: u8, of: u8, threshold: u8)
        -> Result<Option<(String, Share)>, Halt>;
    /// `need` shares of a `threshold`-of-N set, one from each of `need` custodians, who
    /// are not among `skip` (they gave theirs already).
    fn collect(
        &mut self,
        need: usize,
        threshold: u8,
        skip: &[(String, Share)],
    ) -> Result<Vec<(String, Share)>, Halt>;
    /// The token works now (`what`), no one is asked anything.
    fn busy(&mut self, what: &str);
}

/// Why a custody step stopped: the people stopped it (a face aborted: the step counts as
/// interrupted and resumes), or it failed.
#[derive(Debug)]
pub enum Halt {
    /// A face stopped it, for this reason (the step resumes on the next run).
    Abort(String),
    /// It failed (the error names the cause).
    Failed(StepError),
}

impl From<StepError> for Halt {
    fn from(e: StepError) -> Self {
        Halt::Failed(e)
    }
}

impl From<custody::Error> for Halt {
    fn from(e: custody::Error) -> Self {
        Halt::Failed(StepError::Other(e.to_string()))
    }
}

impl From<crate::hsm::Error> for Halt {
    fn from(e: crate::hsm::Error) -> Self {
        Halt::Failed(StepError::Token(e))
    }
}

fn fail(msg: String) -> Halt {
    Halt::Failed(StepError::Other(msg))
}

/// Whether `action` is a custody step (it runs with [`execute`], not `execute_step`).
pub fn is_custody(action: &Action) -> bool {
    matches!(
        action,
        Action::GenerateWrapKey(_) | Action::Backup(_) | Action::Restore(_)
    )
}

/// Run custody step `step`. On a backend with a device audit log, the log is read into
/// the result after the step.
pub fn execute(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    step: &Step,
    reconcile: bool,
    people: &mut dyn Custodians,
) -> Result<StepResult, Halt> {
    let mut result = match &step.action {
        Action::GenerateWrapKey(g) => generate(token, ctx, g, reconcile, people)?,
        Action::Backup(b) => run_backup(token, ctx, b, reconcile)?,
        Action::Restore(r) => run_restore(token, ctx, r, reconcile, people)?,
        other => return Err(fail(format!("{} is not a custody step", other.kind()))),
    };
    match token.read_device_audit() {
        Some(Ok(report)) => result.device_audit = Some(report),
        Some(Err(e)) => result.notes.push(format!("device audit log not read: {e}")),
        None => {}
    }
    Ok(result)
}

fn logins<'a>(ctx: &StepContext<'a>, l: &CustodyLogins) -> Result<Logins<'a>, Halt> {
    let get = |name: &Option<String>| -> Result<_, Halt> {
        match name {
            None => Ok(None),
            Some(n) => ctx
                .vault
                .get(n)
                .map(Some)
                .ok_or_else(|| fail(format!("secret {n:?} was not provided"))),
        }
    };
    Ok(Logins {
        user: get(&l.user)?,
        so: get(&l.so)?,
    })
}

/// The check value as witnesses read it: `1a2b3c`.
fn kcv_hex(kcv: &[u8]) -> String {
    hex::encode(kcv)
}

fn generate(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    g: &GenerateWrapKey,
    reconcile: bool,
    people: &mut dyn Custodians,
) -> Result<StepResult, Halt> {
    let logins = logins(ctx, &g.logins)?;
    let (t, n) = (g.threshold, g.shares);
    // Index → custodian, as each share is placed.
    let mut holders: BTreeMap<u8, String> = BTreeMap::new();
    let mut known: Vec<(String, Share)> = Vec::new();
    if reconcile {
        for index in 1..=n {
            if let Some((name, share)) = people.recall(index, n, t)? {
                holders.insert(index, name.clone());
                known.push((name, share));
            }
        }
        if let Some(info) = token.wrap_key(&g.label)? {
            return adopt_wrap_key(g, info, known, holders, people);
        }
    }
    let spec = wrap_key::plan(token, &g.label, g.key_id, t, n)?;
    let kept: Vec<Share> = known.iter().map(|(_, s)| s.clone()).collect();
    let drawn = wrap_key::draw(&spec, t, n, &kept)?;
    for share in &drawn.shares {
        if holders.contains_key(&share.index()) {
            continue;
        }
        let name = people.hand_out(share, n)?;
        holders.insert(share.index(), name);
    }
    people.busy(&format!("Putting wrap key {:?} on the token", g.label));
    let stored = drawn.put(token, &logins).map_err(|e| {
        fail(format!(
            "{e}; the shares handed out are of a key that was never stored: they are void \
             (their files, if any, may be removed)"
        ))
    })?;
    let mut notes = Vec::new();
    if !kept.is_empty() {
        let which: Vec<String> = kept.iter().map(|s| s.index().to_string()).collect();
        notes.push(format!(
            "share(s) {} were handed out before an interruption and are kept as they are{}",
            which.join(", "),
            if drawn.rebuilt {
                " (their key)"
            } else {
                " (a new key whose split includes them)"
            }
        ));
    }
    Ok(wrap_key_result(
        &stored,
        &drawn.check_value,
        t,
        n,
        &holders,
        false,
        notes,
    ))
}

/// A wrap key on the token from an interrupted attempt: ours only if the custodians'
/// shares rebuild its check value (T of them, read back or typed again).
fn adopt_wrap_key(
    g: &GenerateWrapKey,
    info: crate::hsm::WrapKeyInfo,
    mut known: Vec<(String, Share)>,
    mut holders: BTreeMap<u8, String>,
    people: &mut dyn Custodians,
) -> Result<StepResult, Halt> {
    let Some(kcv) = info.check_value else {
        return Err(fail(format!(
            "the token has a wrap key labelled {:?} with no check value: it was not made by \
             this step; delete it or choose another label",
            g.label
        )));
    };
    let t = usize::from(g.threshold);
    if known.len() < t {
        let more = people.collect(t - known.len(), g.threshold, &known)?;
        for (name, share) in more {
            holders.insert(share.index(), name.clone());
            known.push((name, share));
        }
    }
    let shares: Vec<Share> = known.iter().map(|(_, s)| s.clone()).collect();
    let (spec, theirs) = wrap_key::check_value_of(&shares, &g.label)?;
    if theirs != kcv || spec.id != info.spec.id {
        return Err(fail(format!(
            "the token has a wrap key labelled {:?} (check value {}) that the custodians' \
             shares do not rebuild (they give {}): it is not the key this step handed out",
            g.label,
            kcv_hex(&kcv),
            kcv_hex(&theirs)
        )));
    }
    Ok(wrap_key_result(
        &info.spec,
        &kcv,
        g.threshold,
        g.shares,
        &holders,
        true,
        vec![format!(
            "the wrap key was put by an interrupted attempt after every share was handed out; \
             shares {} rebuilt its check value",
            known
                .iter()
                .map(|(_, s)| s.index().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )],
    ))
}

fn wrap_key_result(
    spec: &WrapKeySpec,
    kcv: &[u8; 3],
    t: u8,
    n: u8,
    holders: &BTreeMap<u8, String>,
    adopted: bool,
    mut notes: Vec<String>,
) -> StepResult {
    let custodians: Vec<serde_json::Value> = holders
        .iter()
        .map(|(i, name)| json!({"share": i, "custodian": name}))
        .collect();
    let mut lines = vec![format!(
        "check value {} (AES-ECB of a zero block, first 3 bytes): a restore proves the rebuilt key against it",
        kcv_hex(kcv)
    )];
    lines.push(format!("{t} of {n} shares rebuild it"));
    for (i, name) in holders {
        lines.push(format!("share {i} of {n}: {name}"));
    }
    lines.append(&mut notes);
    StepResult {
        objects: vec![CreatedObject {
            label: spec.label.clone(),
            id: format!("{:04x}", spec.id),
            class: "wrap key".into(),
            key_type: "AES-256".into(),
            public_key_sha256: None,
        }],
        adopted,
        details: json!({
            "wrap_key": spec.label,
            "threshold": t,
            "shares": n,
            "share_indices": holders.keys().collect::<Vec<_>>(),
            "custodians": custodians,
            "check_value": kcv_hex(kcv),
            "check_value_method": custody::manifest::CHECK_VALUE_METHOD,
            "domains": spec.domains,
            "capabilities": spec.capabilities,
            "delegated_capabilities": spec.delegated_capabilities,
        }),
        notes: lines,
        ..StepResult::default()
    }
}

fn run_backup(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    b: &BackupStep,
    reconcile: bool,
) -> Result<StepResult, Halt> {
    let dir = ctx.out_dir.join(&b.dir);
    // An earlier attempt that wrote into the directory (killed, or failed and now
    // retried) left files the journal vouches for; anything else there stops the run.
    if reconcile || ctx.log.wrote_any() {
        only_our_files(ctx, b, &dir)?;
    } else if dir.symlink_metadata().is_ok() {
        return Err(fail(format!(
            "{} exists: a backup is never written over files",
            dir.display()
        )));
    }
    let keys: Vec<String> = b.keys.iter().map(|k| k.to_string()).collect();
    let r = backup::backup_recorded(token, &b.wrap_key, &keys, &dir, &mut |name, sha| {
        ctx.log
            .record_output(&format!("{}/{name}", b.dir), sha)
            .map_err(|e| e.to_string())
    })?;
    let outputs = r
        .files
        .iter()
        .map(|f| OutputFile {
            path: format!("{}/{}", b.dir, f.path),
            sha256: f.sha256.clone(),
            adopted: f.adopted,
        })
        .collect();
    let m = &r.manifest;
    let mut notes = vec![format!(
        "under wrap key {:?} (check value {}), as {}",
        m.wrap_key.label,
        m.wrap_key.check_value,
        m.wrap_format.name()
    )];
    for k in &m.keys {
        notes.push(format!(
            "{} {} id {} → {}",
            k.algorithm, k.label, k.id, k.file
        ));
    }
    Ok(StepResult {
        objects: m
            .keys
            .iter()
            .map(|k| CreatedObject {
                label: k.label.clone(),
                id: k.id.clone(),
                class: "backed-up key".into(),
                key_type: k.algorithm.clone(),
                public_key_sha256: Some(k.public_key_sha256.clone()),
            })
            .collect(),
        outputs,
        details: json!({
            "dir": b.dir,
            "wrap_key": m.wrap_key,
            "wrap_format": m.wrap_format,
            "backed_up": m.keys.iter().map(|k| json!({
                "label": k.label, "id": k.id, "algorithm": k.algorithm,
                "public_key_sha256": k.public_key_sha256, "file": k.file,
            })).collect::<Vec<_>>(),
        }),
        notes,
        ..StepResult::default()
    })
}

/// On resume or retry, every file in the backup directory must be one an earlier attempt
/// journalled before writing it (with these bytes); a file someone else put there stops
/// the run. Temporary files of a killed write are the backup's to remove.
fn only_our_files(
    ctx: &StepContext<'_>,
    b: &BackupStep,
    dir: &std::path::Path,
) -> Result<(), Halt> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(fail(format!("{}: {}", dir.display(), e.kind()))),
    };
    for e in entries {
        let e = e.map_err(|e| fail(format!("{}: {}", dir.display(), e.kind())))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            continue;
        }
        let path = e.path();
        let ours = e.file_type().map(|t| t.is_file()).unwrap_or(false)
            && std::fs::read(&path)
                .map(|bytes| {
                    ctx.log
                        .wrote(&format!("{}/{name}", b.dir), &crate::output::sha256(&bytes))
                })
                .unwrap_or(false);
        if !ours {
            return Err(fail(format!(
                "{} was not written by this run's interrupted backup; move it away, then rerun",
                path.display()
            )));
        }
    }
    Ok(())
}

/// The backup's manifest, checked against what the script says it holds.
fn read_manifest(r: &RestoreStep) -> Result<Manifest, Halt> {
    let m = Manifest::read(&r.backup_dir).map_err(|e| fail(e.to_string()))?;
    if !r.keys.is_empty() {
        let mut want: Vec<&str> = r.keys.iter().map(|k| k.as_str()).collect();
        let mut have: Vec<&str> = m.keys.iter().map(|k| k.label.as_str()).collect();
        want.sort_unstable();
        have.sort_unstable();
        if want != have {
            return Err(fail(format!(
                "the backup in {} holds keys {have:?}; the script restores {want:?}",
                r.backup_dir.display()
            )));
        }
    }
    if let Some(kcv) = r.check_value {
        let theirs = m.check_value().map_err(fail)?;
        if theirs != kcv {
            return Err(fail(format!(
                "the backup in {} is under a wrap key with check value {}; the script expects {} (the backup ceremony's transcript): another backup",
                r.backup_dir.display(),
                kcv_hex(&theirs),
                kcv_hex(&kcv)
            )));
        }
    }
    Ok(m)
}

fn run_restore(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    r: &RestoreStep,
    reconcile: bool,
    people: &mut dyn Custodians,
) -> Result<StepResult, Halt> {
    let logins = logins(ctx, &r.logins)?;
    // The backup is read (and every file checked) before anyone is asked for a share.
    read_manifest(r)?;
    if reconcile {
        if let Some(rep) = restore::find_restored(token, &logins, &r.backup_dir, r.keep_wrap_key)? {
            let mut res = restore_result(&rep, &[]);
            res.adopted = true;
            res.notes.insert(
                0,
                "restored by an interrupted attempt: every key is there with its recorded public key"
                    .into(),
            );
            return Ok(res);
        }
    }
    let given = people.collect(usize::from(r.threshold), r.threshold, &[])?;
    let shares: Vec<Share> = given.iter().map(|(_, s)| s.clone()).collect();
    people.busy("Rebuilding the wrap key and checking it against the backup");
    let prep = restore::prepare(&r.backup_dir, &shares)?;
    people.busy("Restoring the backed-up keys");
    let rep = restore::restore(token, &logins, &prep, r.keep_wrap_key)?;
    Ok(restore_result(&rep, &given))
}

fn restore_result(rep: &restore::RestoreReport, given: &[(String, Share)]) -> StepResult {
    let custodians: Vec<serde_json::Value> = given
        .iter()
        .map(|(name, s)| json!({"share": s.index(), "custodian": name}))
        .collect();
    let mut notes = Vec::new();
    if !given.is_empty() {
        notes.push(format!(
            "wrap key {:?} rebuilt from {} shares; check value {} matches the backup",
            rep.wrap_key_label,
            given.len(),
            rep.check_value
        ));
        for (name, s) in given {
            notes.push(format!("share {}: {name}", s.index()));
        }
    }
    for k in &rep.keys {
        notes.push(format!(
            "{} {} id {}{}: {}",
            k.algorithm,
            k.label,
            k.id,
            if k.adopted { " (already there)" } else { "" },
            k.proof
        ));
    }
    notes.push(if rep.wrap_key_deleted {
        "wrap key deleted from the token".into()
    } else if rep.wrap_key_adopted {
        "wrap key left on the token".into()
    } else {
        "no wrap key on the token".into()
    });
    StepResult {
        objects: rep
            .keys
            .iter()
            .map(|k| CreatedObject {
                label: k.label.clone(),
                id: k.id.clone(),
                class: "key pair".into(),
                key_type: k.algorithm.clone(),
                public_key_sha256: Some(k.public_key_sha256.clone()),
            })
            .collect(),
        details: json!({
            "wrap_key": rep.wrap_key_label,
            "wrap_key_id": rep.wrap_key_id,
            "check_value": rep.check_value,
            "threshold": rep.threshold,
            "share_indices": rep.share_indices,
            "custodians": custodians,
            "wrap_key_deleted": rep.wrap_key_deleted,
            "keys": rep.keys.iter().map(|k| json!({
                "label": k.label, "id": k.id, "algorithm": k.algorithm,
                "public_key_sha256": k.public_key_sha256,
                "adopted": k.adopted, "proof": k.proof,
            })).collect::<Vec<_>>(),
        }),
        notes,
        ..StepResult::default()
    }
}
