//! Restore: rebuild the wrap key from T shares, prove it is the backup's, put it on the
//! token, import every wrapped key, prove each restored key, delete the wrap key.
//!
//! Nothing is created on the token until the manifest reads, every key file is there, the
//! shares rebuild a key whose check value is the manifest's, and the id, domains and
//! capabilities they carry are the manifest's too: fewer than T shares, a mistyped or
//! corrupted share and a share of another set all stop the restore there.
//!
//! Each restored key signs a challenge that the manifest's public key must verify (where
//! the token can sign with that algorithm); a key that fails is deleted again.
//!
//! Resuming: run it again. A wrap key already on the token with the backup's check value
//! is used, not put twice; a key already there with the recorded public key is not
//! imported again (and still proved); a different key under a recorded label is refused.

use std::path::Path;

use serde::Serialize;

use super::backup::decode_blob;
use super::manifest::Manifest;
use super::{payload, shamir, Error, Logins, Result};
use crate::hsm::{wrap, ObjectClass, Selector, Token, UserType};
use crate::keys::{HashAlg, PublicKey, SignScheme};

/// One key restored onto the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RestoredKey {
    /// Its label on the token.
    pub label: String,
    /// Its object id, hex.
    pub id: String,
    /// `ec-p256`, `rsa-4096`, … as the manifest names it.
    pub algorithm: String,
    /// SHA-256 of its DER SubjectPublicKeyInfo, hex: checked against the manifest.
    pub public_key_sha256: String,
    /// Found on the token already (an interrupted earlier attempt).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
    /// How the key was shown to be the recorded one.
    pub proof: String,
}

/// What a restore did: nothing secret (share indices, never share data).
#[derive(Clone, Debug, Serialize)]
pub struct RestoreReport {
    /// The wrap key's label on the token.
    pub wrap_key_label: String,
    /// The wrap key's object id, 4 hex digits.
    pub wrap_key_id: String,
    /// The rebuilt wrap key's check value, 6 hex digits: equal to the manifest's.
    pub check_value: String,
    /// Share indices used (never their data).
    pub share_indices: Vec<u8>,
    /// Shares the set needs (T of T-of-N).
    pub threshold: u8,
    /// The wrap key was found on the token already (an interrupted earlier attempt).
    pub wrap_key_adopted: bool,
    /// The wrap key was deleted from the token once every key was restored.
    pub wrap_key_deleted: bool,
    /// The keys restored, in manifest order.
    pub keys: Vec<RestoredKey>,
}

/// The checks before anything is created: the manifest, every key file (read and
/// decoded), the shares and what they rebuild.
pub struct Prepared {
    /// The backup's manifest, checked.
    pub manifest: Manifest,
    blobs: Vec<Vec<u8>>,
    key: crate::secret::Secret,
    spec: crate::hsm::WrapKeySpec,
    share_indices: Vec<u8>,
    threshold: u8,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("wrap_key", &self.spec.label)
            .field("keys", &self.manifest.keys.len())
            .finish_non_exhaustive()
    }
}

/// Read the backup in `in_dir` and rebuild its wrap key from `shares`; touches no token.
pub fn prepare(in_dir: &Path, shares: &[shamir::Share]) -> Result<Prepared> {
    let manifest = Manifest::read(in_dir)?;
    let mut blobs = Vec::new();
    for k in &manifest.keys {
        let path = in_dir.join(&k.file);
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::Refused(format!(
                "{}: cannot read the wrapped key {:?} ({}): the backup is incomplete",
                path.display(),
                k.label,
                e.kind()
            ))
        })?;
        let blob = decode_blob(manifest.wrap_format, &bytes)
            .map_err(|e| Error::Refused(format!("{}: {e}", path.display())))?;
        blobs.push(blob);
    }
    let secret = shamir::combine(shares)?;
    let (spec, key) = payload::decode(&secret, &manifest.wrap_key.label)?;
    let want = manifest.check_value().map_err(Error::Refused)?;
    if wrap::check_value(key.expose())? != want {
        return Err(Error::Refused(format!(
            "the shares do not rebuild the backup's wrap key (its check value is {}): a \
             share is mistyped, corrupted or from another set",
            manifest.wrap_key.check_value
        )));
    }
    let recorded = manifest.wrap_spec().map_err(Error::Refused)?;
    if spec != recorded {
        return Err(Error::Refused(format!(
            "the shares rebuild the backup's wrap key but not its description (they give \
             id {:04x}, domains {:04x}, capabilities {:016x}; the backup records {:04x}, \
             {:04x}, {:016x}): a share is corrupted",
            spec.id,
            spec.domains,
            spec.capabilities,
            recorded.id,
            recorded.domains,
            recorded.capabilities
        )));
    }
    Ok(Prepared {
        manifest,
        blobs,
        key,
        spec,
        share_indices: shares.iter().map(|s| s.index()).collect(),
        threshold: shares.first().map_or(0, |s| s.threshold()),
    })
}

/// A challenge for a restored key: SHA-256 of a fixed text and the label.
fn challenge(label: &str) -> Vec<u8> {
    HashAlg::Sha256.digest(format!("officiant restore check: {label}").as_bytes())
}

/// Prove the key labelled `label` on the token is the private half of `public`.
fn prove(token: &mut dyn Token, label: &str, public: &PublicKey) -> Result<String> {
    let scheme = match public {
        PublicKey::Ec { .. } => SignScheme::Ecdsa(HashAlg::Sha256),
        PublicKey::Rsa { .. } => SignScheme::RsaPkcs1(HashAlg::Sha256),
    };
    let alg = crate::keys::KeyAlgorithm::of(public);
    let can = alg.is_some_and(|a| token.capabilities().is_ok_and(|c| c.can_sign(a, scheme)));
    if !can {
        // The token derives the public key itself (YubiHSM): compare that.
        if token.public_key(label)? == *public {
            return Ok("public key read from the token matches the backup".into());
        }
        return Err(Error::Refused(format!(
            "the key restored as {label:?} is not the one the backup recorded"
        )));
    }
    let digest = challenge(label);
    let sig = token.sign(label, scheme, &digest)?;
    public.verify_digest(scheme, &digest, &sig).map_err(|_| {
        Error::Refused(format!(
            "the key restored as {label:?} does not sign for the public key the backup recorded"
        ))
    })?;
    Ok(format!(
        "signed a challenge ({}) that the backup's public key verifies",
        scheme.name()
    ))
}

/// Restore the prepared backup onto `token`. The user must be able to log in
/// (`logins.user`, or already logged in); on a backend where putting the wrap key needs
/// the SO, `logins.so` too.
pub fn restore(
    token: &mut dyn Token,
    logins: &Logins<'_>,
    prep: &Prepared,
    keep_wrap_key: bool,
) -> Result<RestoreReport> {
    let format = super::wrap_format(token)?;
    let m = &prep.manifest;
    if format != m.wrap_format {
        return Err(Error::Refused(format!(
            "the backup holds {} keys; this backend wraps as {}",
            m.wrap_format.name(),
            format.name()
        )));
    }
    let wrap_label = &prep.spec.label;
    logins.login(token, UserType::User, None)?;
    // What is there already.
    let objects = token.list_objects()?;
    let mut todo = Vec::new();
    let mut keys = Vec::new();
    for (k, blob) in m.keys.iter().zip(&prep.blobs) {
        let public = k.public().map_err(Error::Refused)?;
        let existing = objects
            .iter()
            .find(|o| o.class == ObjectClass::PrivateKey && o.label == k.label);
        if let Some(o) = existing {
            if o.public_key.as_ref().is_some_and(|p| *p != public) {
                return Err(Error::Refused(format!(
                    "the token already has a different key labelled {:?}",
                    k.label
                )));
            }
        } else {
            todo.push((k, blob, public.clone()));
        }
        keys.push(RestoredKey {
            label: k.label.clone(),
            id: k.id.clone(),
            algorithm: k.algorithm.clone(),
            public_key_sha256: k.public_key_sha256.clone(),
            adopted: existing.is_some(),
            proof: String::new(),
        });
    }
    let mut wrap_key_adopted = false;
    let present = token.wrap_key(wrap_label)?;
    if let Some(info) = &present {
        if info.check_value != Some(prep_check_value(prep)?) {
            return Err(Error::Refused(format!(
                "the token already has a wrap key labelled {wrap_label:?} that is not the \
                 backup's; delete it or restore elsewhere"
            )));
        }
        wrap_key_adopted = true;
    } else if !todo.is_empty() || keep_wrap_key {
        if token.capabilities()?.wrap_key_needs_so {
            logins.login(token, UserType::So, Some("putting the trusted wrap key"))?;
        }
        token.put_wrap_key(&prep.spec, &prep.key)?;
        crate::output::crash_point();
        logins.login(token, UserType::User, None)?;
    }
    for (k, blob, public) in &todo {
        token.import_wrapped(wrap_label, blob, &k.label, &k.id_bytes(), public)?;
        crate::output::crash_point();
    }
    for (entry, k) in keys.iter_mut().zip(&m.keys) {
        let public = k.public().map_err(Error::Refused)?;
        match prove(token, &k.label, &public) {
            Ok(p) => entry.proof = p,
            Err(e) => {
                if !entry.adopted {
                    let _ = token.delete_object(&Selector {
                        label: k.label.clone(),
                        class: Some(ObjectClass::PrivateKey),
                    });
                    let _ = token.delete_object(&Selector {
                        label: k.label.clone(),
                        class: Some(ObjectClass::PublicKey),
                    });
                }
                return Err(e);
            }
        }
    }
    let mut wrap_key_deleted = false;
    if !keep_wrap_key && (present.is_some() || !todo.is_empty()) {
        wrap_key_deleted = token.delete_wrap_key(wrap_label)?;
        crate::output::crash_point();
    }
    if keep_wrap_key {
        // Even when a kill left it able to unwrap (between enabling that and an import).
        token.seal_wrap_key(wrap_label)?;
    }
    Ok(RestoreReport {
        wrap_key_label: wrap_label.clone(),
        wrap_key_id: format!("{:04x}", prep.spec.id),
        check_value: m.wrap_key.check_value.clone(),
        share_indices: prep.share_indices.clone(),
        threshold: prep.threshold,
        wrap_key_adopted,
        wrap_key_deleted,
        keys,
    })
}

/// The backup in `in_dir` already restored on `token` by an interrupted attempt that got
/// past its last change: every key there with its recorded public key (and proved again),
/// and the wrap key gone (or, with `keep_wrap_key`, there with the backup's check value).
/// Needs no shares. `None` when anything is missing: restore it with the shares.
pub fn find_restored(
    token: &mut dyn Token,
    logins: &Logins<'_>,
    in_dir: &Path,
    keep_wrap_key: bool,
) -> Result<Option<RestoreReport>> {
    let m = Manifest::read(in_dir)?;
    super::wrap_format(token)?;
    logins.login(token, UserType::User, None)?;
    let present = token.wrap_key(&m.wrap_key.label)?;
    let want = m.check_value().map_err(Error::Refused)?;
    let wrap_ok = match (&present, keep_wrap_key) {
        (None, false) => true,
        (Some(info), true) => info.check_value == Some(want),
        _ => false,
    };
    if !wrap_ok {
        return Ok(None);
    }
    let objects = token.list_objects()?;
    let mut keys = Vec::new();
    for k in &m.keys {
        let public = k.public().map_err(Error::Refused)?;
        let Some(o) = objects
            .iter()
            .find(|o| o.class == ObjectClass::PrivateKey && o.label == k.label)
        else {
            return Ok(None);
        };
        let theirs = match &o.public_key {
            Some(p) => p.clone(),
            None => token.public_key(&k.label)?,
        };
        if theirs != public {
            return Err(Error::Refused(format!(
                "the token already has a different key labelled {:?}",
                k.label
            )));
        }
        keys.push(RestoredKey {
            label: k.label.clone(),
            id: k.id.clone(),
            algorithm: k.algorithm.clone(),
            public_key_sha256: k.public_key_sha256.clone(),
            adopted: true,
            proof: prove(token, &k.label, &public)?,
        });
    }
    if keep_wrap_key {
        // A kill may have left it able to unwrap (between enabling that and an import).
        token.seal_wrap_key(&m.wrap_key.label)?;
    }
    Ok(Some(RestoreReport {
        wrap_key_label: m.wrap_key.label.clone(),
        wrap_key_id: m.wrap_key.id.clone(),
        check_value: m.wrap_key.check_value.clone(),
        share_indices: Vec::new(),
        threshold: 0,
        wrap_key_adopted: present.is_some(),
        wrap_key_deleted: false,
        keys,
    }))
}

fn prep_check_value(prep: &Prepared) -> Result<crate::hsm::CheckValue> {
    prep.manifest.check_value().map_err(Error::Refused)
}
