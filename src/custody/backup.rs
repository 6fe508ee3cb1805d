//! Backup: each named key exported under the wrap key into its own file, with
//! `manifest.json` beside them. Nothing leaves the token in the clear.
//!
//! Files: `<label>.kwp` (PKCS#11 and the rehearsal token: the RFC 5649 wrap of the
//! key's PKCS#8, binary) or `<label>.yhw` (YubiHSM: nonce ‖ ciphertext in base64 on one
//! line, as yubihsm-shell's `get-wrapped` writes it and `put-wrapped` reads it).
//!
//! Resuming: the manifest is written first and depends only on the keys and the wrap
//! key, so a second attempt finds the same manifest and adopts the key files the first
//! one finished (each was written whole or not at all); a manifest from another backup
//! is refused.

use std::path::Path;

use base64ct::{Base64, Encoding};
use serde::Serialize;

use super::manifest::{self, KeyEntry, Manifest, WrapKeyEntry};
use super::{Error, Result};
use crate::hsm::{ObjectClass, Token, WrapFormat};

/// One file the backup wrote (or found written by an interrupted attempt).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackupFile {
    /// File name in the out dir.
    pub path: String,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// Written by an interrupted earlier attempt and found intact, not written now.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopted: bool,
}

/// What a backup wrote: nothing secret (key files are wrapped).
#[derive(Clone, Debug, Serialize)]
pub struct BackupReport {
    /// The manifest written (or found).
    pub manifest: Manifest,
    /// The manifest first, then one file per key.
    pub files: Vec<BackupFile>,
}

fn extension(format: WrapFormat) -> &'static str {
    match format {
        WrapFormat::Pkcs8AesKwp => "kwp",
        WrapFormat::YubihsmAesCcm => "yhw",
    }
}

/// The bytes a key's file holds for the blob the token exported.
pub fn encode_blob(format: WrapFormat, blob: &[u8]) -> Vec<u8> {
    match format {
        WrapFormat::Pkcs8AesKwp => blob.to_vec(),
        WrapFormat::YubihsmAesCcm => Base64::encode_string(blob).into_bytes(),
    }
}

/// The blob a key's file holds (base64 for YubiHSM, surrounding whitespace allowed).
pub fn decode_blob(format: WrapFormat, file: &[u8]) -> std::result::Result<Vec<u8>, String> {
    match format {
        WrapFormat::Pkcs8AesKwp => Ok(file.to_vec()),
        WrapFormat::YubihsmAesCcm => {
            let text = std::str::from_utf8(file).map_err(|_| "not base64 text".to_string())?;
            let joined: String = text.split_whitespace().collect();
            Base64::decode_vec(&joined).map_err(|_| "not base64 text".to_string())
        }
    }
}

/// Told each file's name and SHA-256 just before it is written (a ceremony journals it,
/// so a resumed run adopts only files its interrupted attempt wrote); an `Err` stops
/// the backup with that message before the file is written.
pub type BeforeWrite<'a> = dyn FnMut(&str, &[u8; 32]) -> std::result::Result<(), String> + 'a;

/// Export `keys` (labels) under the wrap key `wrap_label` into `out_dir` (created if
/// missing). The user must be logged in.
pub fn backup(
    token: &mut dyn Token,
    wrap_label: &str,
    keys: &[String],
    out_dir: &Path,
) -> Result<BackupReport> {
    backup_recorded(token, wrap_label, keys, out_dir, &mut |_, _| Ok(()))
}

/// [`backup`], telling `before_write` of each file before it is written.
pub fn backup_recorded(
    token: &mut dyn Token,
    wrap_label: &str,
    keys: &[String],
    out_dir: &Path,
    before_write: &mut BeforeWrite<'_>,
) -> Result<BackupReport> {
    let format = super::wrap_format(token)?;
    if keys.is_empty() {
        return Err(Error::Refused("no keys named to back up".into()));
    }
    let wrap = token.wrap_key(wrap_label)?.ok_or_else(|| {
        Error::Refused(format!("the token has no wrap key labelled {wrap_label:?}"))
    })?;
    let kcv = wrap.check_value.ok_or_else(|| {
        Error::Refused(format!(
            "the token keeps no check value for wrap key {wrap_label:?}, so a restore could \
             not tell the rebuilt key from a wrong one; make the wrap key with \
             `officiant wrap-key generate`"
        ))
    })?;
    // Every key's public half and id, before anything is written.
    let objects = token.list_objects()?;
    let mut entries = Vec::new();
    for (i, label) in keys.iter().enumerate() {
        if keys[..i].contains(label) {
            return Err(Error::Refused(format!("key {label:?} is named twice")));
        }
        let obj = objects
            .iter()
            .find(|o| o.class == ObjectClass::PrivateKey && &o.label == label)
            .ok_or_else(|| {
                Error::Refused(format!("the token has no private key labelled {label:?}"))
            })?;
        if obj.flags.extractable == Some(false) {
            return Err(Error::Refused(format!(
                "key {label:?} was not generated exportable-under-wrap: it can never leave \
                 the token"
            )));
        }
        let public = token.public_key(label)?;
        let file = format!("{}.{}", super::file_stem(label), extension(format));
        if entries.iter().any(|e: &KeyEntry| e.file == file) {
            return Err(Error::Refused(format!(
                "keys {label:?} and another would share the file name {file}"
            )));
        }
        entries.push(KeyEntry::new(label, &obj.id, &public, &file));
    }
    let manifest = Manifest {
        officiant_backup: manifest::VERSION,
        wrap_format: format,
        wrap_key: WrapKeyEntry::new(&wrap.spec, &kcv),
        keys: entries,
    };
    std::fs::create_dir_all(out_dir).map_err(|e| {
        Error::Refused(format!("cannot create {}: {}", out_dir.display(), e.kind()))
    })?;
    let mut files = Vec::new();
    match write_files(
        token,
        wrap_label,
        format,
        &manifest,
        out_dir,
        &mut files,
        before_write,
    ) {
        Ok(()) => Ok(BackupReport { manifest, files }),
        Err(e) => {
            // A failed attempt (not a killed one) takes back what it wrote itself.
            for f in files.iter().filter(|f| !f.adopted) {
                let _ = std::fs::remove_file(out_dir.join(&f.path));
            }
            Err(e)
        }
    }
}

/// Temporary files a killed attempt left while writing one of `names` (`.NAME.tmp-PID`,
/// see `crate::output`): whole files exist under their names or not at all, so these go.
fn remove_stale_temps(out_dir: &Path, names: &[&str]) {
    let Ok(entries) = std::fs::read_dir(out_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if names
            .iter()
            .any(|n| name.starts_with(&format!(".{n}.tmp-")))
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn write_files(
    token: &mut dyn Token,
    wrap_label: &str,
    format: WrapFormat,
    manifest: &Manifest,
    out_dir: &Path,
    files: &mut Vec<BackupFile>,
    before_write: &mut BeforeWrite<'_>,
) -> Result<()> {
    let mut names: Vec<&str> = manifest.keys.iter().map(|k| k.file.as_str()).collect();
    names.push(manifest::FILE);
    remove_stale_temps(out_dir, &names);
    files.push(write_or_adopt(
        out_dir,
        manifest::FILE,
        &manifest.to_bytes(),
        true,
        before_write,
    )?);
    for entry in &manifest.keys {
        let path = out_dir.join(&entry.file);
        if path.exists() {
            let bytes = std::fs::read(&path).map_err(|e| {
                Error::Refused(format!("cannot read {}: {}", path.display(), e.kind()))
            })?;
            files.push(BackupFile {
                path: entry.file.clone(),
                sha256: hex::encode(crate::output::sha256(&bytes)),
                adopted: true,
            });
            continue;
        }
        let blob = token.export_wrapped(wrap_label, &entry.label)?;
        let bytes = encode_blob(format, &blob);
        files.push(write_or_adopt(
            out_dir,
            &entry.file,
            &bytes,
            false,
            before_write,
        )?);
        crate::output::crash_point();
    }
    Ok(())
}

/// Write `name` in `dir`; with `same_or_refuse`, an existing file with these very bytes
/// is adopted and any other refused.
fn write_or_adopt(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    same_or_refuse: bool,
    before_write: &mut BeforeWrite<'_>,
) -> Result<BackupFile> {
    let path = dir.join(name);
    let digest = crate::output::sha256(bytes);
    let sha256 = hex::encode(digest);
    if same_or_refuse && path.exists() {
        let have = std::fs::read(&path)
            .map_err(|e| Error::Refused(format!("cannot read {}: {}", path.display(), e.kind())))?;
        if have != bytes {
            return Err(Error::Refused(format!(
                "{} belongs to another backup (other keys or another wrap key); \
                 choose an empty out dir",
                path.display()
            )));
        }
        return Ok(BackupFile {
            path: name.to_string(),
            sha256,
            adopted: true,
        });
    }
    before_write(name, &digest).map_err(Error::Refused)?;
    crate::output::write_new(&path, bytes)?;
    Ok(BackupFile {
        path: name.to_string(),
        sha256,
        adopted: false,
    })
}
