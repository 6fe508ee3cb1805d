//! A new wrap key: drawn here, split T-of-N for the custodians, then put on the token.
//!
//! The key is 32 random bytes from the operating system (AES-256). It exists outside the
//! token only in this process, in zeroizing buffers. The order is deliberate: the
//! custodians get their shares ([`Drawn::shares`]) before the token gets the key
//! ([`Drawn::put`]), so a wrap key on the token always has every share handed out, and a
//! hand-out that stops half-way leaves nothing on the token (the shares handed out are of
//! a key that never existed). [`write_share_files`] hands shares out as files.
//!
//! Resuming an interrupted hand-out: [`draw`] takes the shares custodians already hold.
//! With T or more of them it rebuilds their key (and the missing shares); with fewer it
//! draws a new key whose split keeps them (see [`shamir::complete`]), so no custodian's
//! share changes and no file is overwritten.

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
    /// The wrap key as stored on the token (the shares carry it).
    pub spec: WrapKeySpec,
    /// Its 3-byte check value, for custodians to compare.
    pub check_value: CheckValue,
    /// Shares needed to rebuild it (T).
    pub threshold: u8,
    /// Share 1 to N, in order, for the face to hand out.
    pub shares: Vec<shamir::Share>,
}

/// A wrap key drawn and split, not yet on the token. `Debug` shows no key or share.
pub struct Drawn {
    /// As the token will store it (the shares carry it).
    pub spec: WrapKeySpec,
    /// Its 3-byte check value.
    pub check_value: CheckValue,
    /// Shares needed to rebuild it (T).
    pub threshold: u8,
    /// Share 1 to N, in order.
    pub shares: Vec<shamir::Share>,
    /// The shares were found with the custodians (T or more of them): the key is theirs.
    pub rebuilt: bool,
    key: Secret,
}

impl std::fmt::Debug for Drawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drawn")
            .field("spec", &self.spec)
            .field("check_value", &hex::encode(self.check_value))
            .field("threshold", &self.threshold)
            .field("shares", &self.shares.len())
            .finish_non_exhaustive()
    }
}

/// Check that a wrap key `label`/`id` split `threshold` of `shares` can be put on
/// `token`, and describe it as the token will store it. Changes nothing.
pub fn plan(
    token: &mut dyn Token,
    label: &str,
    id: u16,
    threshold: u8,
    shares: u8,
) -> Result<WrapKeySpec> {
    if threshold < 2 || threshold > shares {
        return Err(shamir::Error::BadParameters { threshold, shares }.into());
    }
    super::wrap_format(token)?;
    if token.wrap_key(label)?.is_some() {
        return Err(Error::Refused(format!(
            "the token already has a wrap key labelled {label:?}"
        )));
    }
    Ok(token.wrap_key_spec(&WrapKeySpec::new(label, id))?)
}

/// Draw the key for `spec` and split it `threshold` of `shares`, keeping the shares in
/// `known` (custodians hold them already; see the module docs).
pub fn draw(
    spec: &WrapKeySpec,
    threshold: u8,
    shares: u8,
    known: &[shamir::Share],
) -> Result<Drawn> {
    let rebuilt = known.len() >= threshold as usize;
    let (secret, key) = if rebuilt {
        let secret = shamir::combine(known)?;
        let (theirs, key) = payload::decode(&secret, &spec.label)?;
        if theirs != *spec {
            return Err(Error::Refused(format!(
                "the shares found carry wrap key id {:04x} with other domains or \
                 capabilities than this step's {:04x}: they are not from this step",
                theirs.id, spec.id
            )));
        }
        (secret, key)
    } else {
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; KEY_LEN]);
        OsRng.fill_bytes(&mut bytes);
        let key = Secret::new(bytes.to_vec());
        (payload::encode(spec, &key), key)
    };
    let split = shamir::complete(&secret, known, threshold, shares)?;
    Ok(Drawn {
        spec: spec.clone(),
        check_value: wrap::check_value(key.expose())?,
        threshold,
        shares: split,
        rebuilt,
        key,
    })
}

impl Drawn {
    /// Put the key on the token (as the SO where the backend needs it, then as the user
    /// again when `logins.user` is given). Refused, with nothing left behind, if the
    /// token would store another description than the shares carry.
    pub fn put(&self, token: &mut dyn Token, logins: &Logins<'_>) -> Result<WrapKeySpec> {
        let needs_so = token.capabilities()?.wrap_key_needs_so;
        if needs_so {
            logins.login(token, UserType::So, Some("putting a trusted wrap key"))?;
        }
        let stored = token.put_wrap_key(&self.spec, &self.key)?;
        if stored != self.spec {
            let _ = token.delete_wrap_key(&self.spec.label);
            return Err(Error::Refused(format!(
                "the token stored wrap key {:?} with other domains or capabilities than \
                 the shares carry; it was deleted again",
                self.spec.label
            )));
        }
        crate::output::crash_point();
        if needs_so {
            logins.login(token, UserType::User, None)?;
        }
        Ok(stored)
    }

    /// What the caller reports once the key is on the token.
    pub fn into_new(self) -> NewWrapKey {
        NewWrapKey {
            spec: self.spec,
            check_value: self.check_value,
            threshold: self.threshold,
            shares: self.shares,
        }
    }
}

/// What `shares` rebuild, read as the wrap key labelled `label`: its description and
/// check value (refused if they rebuild no wrap key at all).
pub fn check_value_of(shares: &[shamir::Share], label: &str) -> Result<(WrapKeySpec, CheckValue)> {
    let secret = shamir::combine(shares)?;
    let (spec, key) = payload::decode(&secret, label)?;
    Ok((spec, wrap::check_value(key.expose())?))
}

/// Draw a wrap key, put it on `token` as `label`/`id`, and split it into `shares`
/// shares, any `threshold` of which rebuild it. Refused before anything is created when
/// the backend cannot wrap, the parameters are wrong or the label is taken. The caller
/// hands the shares out afterwards; [`plan`], [`draw`] and [`Drawn::put`] hand them out
/// first.
pub fn generate_wrap_key(
    token: &mut dyn Token,
    logins: &Logins<'_>,
    label: &str,
    id: u16,
    threshold: u8,
    shares: u8,
) -> Result<NewWrapKey> {
    let spec = plan(token, label, id, threshold, shares)?;
    let drawn = draw(&spec, threshold, shares, &[])?;
    drawn.put(token, logins)?;
    Ok(drawn.into_new())
}

/// The file a share goes to: `DIR/<label>.share-<i>-of-<n>.txt`, so custodians (and
/// whoever hands the files out) can tell them apart.
pub fn share_file(dir: &Path, label: &str, index: u8, of: usize) -> PathBuf {
    dir.join(format!(
        "{}.share-{index}-of-{of}.txt",
        super::file_stem(label)
    ))
}

/// Write one share to `path` (mode 0600, atomically, never over an existing file): the
/// share's text and a newline, as `file:PATH` secret sources read it.
pub fn write_share_file(path: &Path, share: &shamir::Share) -> Result<()> {
    let text = share.to_text();
    let mut line = zeroize::Zeroizing::new(Vec::with_capacity(text.len() + 1));
    line.extend_from_slice(text.expose());
    line.push(b'\n');
    crate::output::write_new_private(path, &line)?;
    Ok(())
}

/// Write each share to its own file in `dir` ([`share_file`], [`write_share_file`]). On
/// any failure the files already written are removed, so no partial set lies around.
pub fn write_share_files(
    dir: &Path,
    label: &str,
    shares: &[shamir::Share],
) -> Result<Vec<PathBuf>> {
    let mut written: Vec<PathBuf> = Vec::new();
    for s in shares {
        let path = share_file(dir, label, s.index(), shares.len());
        if let Err(e) = write_share_file(&path, s) {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        written.push(path);
    }
    Ok(written)
}
