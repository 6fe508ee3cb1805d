//! A new wrap key: drawn here, put on the token, split T-of-N for the custodians.
//!
//! The key is 32 random bytes from the operating system (AES-256). It exists outside the
//! token only in this process, in zeroizing buffers, until the shares are made; the
//! caller hands each share to one custodian ([`write_share_files`] for files) and keeps
//! only the check value.

use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};

use super::{payload, shamir, Error, Logins, Result};
use crate::hsm::{wrap, CheckValue, Token, UserType, WrapKeySpec};
use crate::secret::Secret;

/// AES-256.
pub const KEY_LEN: usize = 32;

/// What a new wrap key leaves: its description as stored, its check value, and the
/// shares. `Debug` shows no share data (shares redact themselves).
#[derive(Debug)]
pub struct NewWrapKey {
    pub spec: WrapKeySpec,
    pub check_value: CheckValue,
    pub threshold: u8,
    pub shares: Vec<shamir::Share>,
}

/// Draw a wrap key, put it on `token` as `label`/`id`, and split it into `shares`
/// shares, any `threshold` of which rebuild it. Refused before anything is created when
/// the backend cannot wrap, the parameters are wrong or the label is taken.
pub fn generate_wrap_key(
    token: &mut dyn Token,
    logins: &Logins<'_>,
    label: &str,
    id: u16,
    threshold: u8,
    shares: u8,
) -> Result<NewWrapKey> {
    if threshold < 2 || threshold > shares {
        return Err(shamir::Error::BadParameters { threshold, shares }.into());
    }
    super::wrap_format(token)?;
    let needs_so = token.capabilities()?.wrap_key_needs_so;
    if needs_so {
        logins.login(token, UserType::So, Some("putting a trusted wrap key"))?;
    }
    if token.wrap_key(label)?.is_some() {
        return Err(Error::Refused(format!(
            "the token already has a wrap key labelled {label:?}"
        )));
    }
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; KEY_LEN]);
    OsRng.fill_bytes(&mut bytes);
    let key = Secret::new(bytes.to_vec());
    let check_value = wrap::check_value(key.expose())?;
    let stored = token.put_wrap_key(&WrapKeySpec::new(label, id), &key)?;
    let secret = payload::encode(&stored, &key);
    let split = match shamir::split(&secret, threshold, shares) {
        Ok(s) => s,
        Err(e) => {
            // Checked above, so not expected; leave no key nobody holds shares of.
            let _ = token.delete_wrap_key(label);
            return Err(e.into());
        }
    };
    Ok(NewWrapKey {
        spec: stored,
        check_value,
        threshold,
        shares: split,
    })
}

/// The file a share goes to: `DIR/<label>.share-<i>-of-<n>.txt`, so custodians (and
/// whoever hands the files out) can tell them apart.
pub fn share_file(dir: &Path, label: &str, index: u8, of: usize) -> PathBuf {
    dir.join(format!(
        "{}.share-{index}-of-{of}.txt",
        super::file_stem(label)
    ))
}

/// Write each share to its own file (mode 0600, atomically, never over an existing
/// file): the share's text and a newline, as `file:PATH` secret sources read it. On any
/// failure the files already written are removed, so no partial set lies around.
pub fn write_share_files(
    dir: &Path,
    label: &str,
    shares: &[shamir::Share],
) -> Result<Vec<PathBuf>> {
    let mut written: Vec<PathBuf> = Vec::new();
    for s in shares {
        let path = share_file(dir, label, s.index(), shares.len());
        let text = s.to_text();
        let mut line = zeroize::Zeroizing::new(Vec::with_capacity(text.len() + 1));
        line.extend_from_slice(text.expose());
        line.push(b'\n');
        if let Err(e) = crate::output::write_new_private(&path, &line) {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            return Err(e.into());
        }
        written.push(path);
    }
    Ok(written)
}
