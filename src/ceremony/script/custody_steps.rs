//! The key custody step kinds: generate-wrap-key (T-of-N shares), backup and restore,
//! and the SO/user logins they need on a backend where only the SO puts a wrap key.

use super::fields::{Fail, Fields};
use super::reader::At;
use super::*;

/// The action of a custody step, or `None` when `kind` is not one of this family.
pub(super) fn parse(f: &mut Fields, kind: &str, at: &At<'_>) -> Result<Option<Action>, Fail> {
    let base = at.base;
    Ok(Some(match kind {
        "generate-wrap-key" => Action::GenerateWrapKey(parse_generate_wrap_key(f)?),
        "backup" => Action::Backup(BackupStep {
            wrap_key: f.label("wrap-key")?,
            keys: f.labels("keys", 64)?,
            dir: f
                .opt_file_name("dir")?
                .unwrap_or_else(|| "backup".to_string()),
        }),
        "restore" => Action::Restore(parse_restore(f, base)?),
        _ => return Ok(None),
    }))
}
/// T and N of a split: 2 ≤ T ≤ N ≤ 255 (`shares` absent: only T is checked).
fn threshold_and_shares(f: &mut Fields, with_shares: bool) -> Result<(u8, u8), Fail> {
    let small = |f: &mut Fields, field: &str| -> Result<u8, Fail> {
        match f.take(field) {
            None => Err(f.missing(field)),
            Some(v) => v
                .as_integer()
                .and_then(|n| u8::try_from(n).ok())
                .filter(|n| *n >= 2)
                .ok_or_else(|| f.fail(field, "expected a whole number from 2 to 255".into())),
        }
    };
    let t = small(f, "threshold")?;
    if !with_shares {
        return Ok((t, t));
    }
    let n = small(f, "shares")?;
    if t > n {
        return Err(f.fail(
            "threshold",
            format!("{t} shares cannot rebuild a key split into {n}"),
        ));
    }
    Ok((t, n))
}

fn custody_logins(f: &mut Fields) -> Result<CustodyLogins, Fail> {
    let l = CustodyLogins {
        so: f.opt_string("so-login")?,
        user: f.opt_string("user-login")?,
    };
    if l.so.is_some() != l.user.is_some() {
        return Err(f.fail(
            "so-login",
            "give both so-login (the SO puts the trusted wrap key) and user-login (the user logs in again after it), or neither".into(),
        ));
    }
    Ok(l)
}

fn custodian_role(f: &mut Fields) -> Result<String, Fail> {
    let r = f.string("custodian-role")?;
    if r.trim().is_empty() {
        return Err(f.fail("custodian-role", "must name a role".into()));
    }
    Ok(r)
}

fn parse_generate_wrap_key(f: &mut Fields) -> Result<GenerateWrapKey, Fail> {
    let label = f.label("label")?;
    let id = f.string("key-id")?;
    let key_id = crate::hsm::wrap::parse_wrap_key_id(&id).ok_or_else(|| {
        f.fail(
            "key-id",
            format!("{id:?} is not a wrap key id (4 hex digits, e.g. \"0200\")"),
        )
    })?;
    let (threshold, shares) = threshold_and_shares(f, true)?;
    Ok(GenerateWrapKey {
        label,
        key_id,
        threshold,
        shares,
        custodian_role: custodian_role(f)?,
        logins: custody_logins(f)?,
    })
}

fn parse_restore(f: &mut Fields, base: &Path) -> Result<RestoreStep, Fail> {
    let (threshold, _) = threshold_and_shares(f, false)?;
    let custodian_role = custodian_role(f)?;
    let dir = f.string("backup-dir")?;
    if dir.is_empty() || dir.chars().any(|c| c.is_control()) {
        return Err(f.fail(
            "backup-dir",
            "must be a directory path (absolute, or relative to the script)".into(),
        ));
    }
    let keys = match f.opt_string_list("keys")? {
        None => Vec::new(),
        Some(_) => f.labels("keys", 64)?,
    };
    let check_value = match f.opt_string("check-value")? {
        None => None,
        Some(h) => {
            let mut kcv = [0u8; 3];
            let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
            hex::decode_to_slice(&clean, &mut kcv).map_err(|_| {
                f.fail(
                    "check-value",
                    format!("{h:?} is not a check value (6 hex digits, as the backup's transcript records it)"),
                )
            })?;
            Some(kcv)
        }
    };
    Ok(RestoreStep {
        threshold,
        custodian_role,
        backup_dir: base.join(&dir),
        backup_dir_name: dir,
        keys,
        check_value,
        keep_wrap_key: f.opt_bool("keep-wrap-key")?.unwrap_or(false),
        logins: custody_logins(f)?,
    })
}
