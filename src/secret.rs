//! Secrets (PINs, passwords, passphrases) and where they come from.
//!
//! A [`Secret`] zeroizes its bytes on drop and never prints them: `Debug` and `Display`
//! both show `[redacted]`. A secret is never a plain argument; it is named by a
//! [`SecretSource`] (`env:NAME`, `file:PATH` or `prompt`) and read at the last moment.

use std::fmt;
use std::path::PathBuf;

use zeroize::{Zeroize, Zeroizing};

/// Errors reading a secret. Messages name the source, never the value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The value given is not repeated: where a source was expected, someone may have
    /// typed the secret itself.
    #[error("a secret source is env:NAME, file:PATH or prompt (the value given is not shown: it may be the secret itself)")]
    BadSource,
    /// `env:NAME` names a variable that is not set (or not UTF-8); holds NAME.
    #[error("environment variable {0} (secret source) is not set or not UTF-8")]
    MissingEnv(String),
    /// The secret file could not be read.
    #[error("cannot read secret file {path}: {cause}")]
    File {
        /// The file, as given.
        path: String,
        /// Why (the I/O error, never the contents).
        cause: String,
    },
    /// The source gave an empty secret; holds the source.
    #[error("secret from {0} is empty")]
    Empty(String),
    /// `prompt` with no terminal to ask on; holds what was to be asked for.
    #[error("no terminal to prompt for {0}; give env:NAME or file:PATH instead")]
    NoTerminal(String),
    /// The secret typed twice (a new PIN) differed; holds what was asked for.
    #[error("the two entries for {0} do not match")]
    Mismatch(String),
}

/// A secret value. Zeroized on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// A secret holding `bytes` (taken, not copied).
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(Zeroizing::new(bytes))
    }

    /// A secret holding `s`'s bytes; `s` is zeroized.
    pub fn from_string(mut s: String) -> Self {
        let v = s.as_bytes().to_vec();
        s.zeroize();
        Secret::new(v)
    }

    /// The secret's bytes, for the one call that needs them; never log or format them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret as UTF-8, for APIs that take `&str` (PKCS#11 PINs, YubiHSM passwords).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where a secret comes from. Parsing and printing a source never touches the value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(into = "String")]
pub enum SecretSource {
    /// `env:NAME`: read from environment variable NAME.
    Env(String),
    /// `file:PATH`: the first line of the file at PATH.
    File(PathBuf),
    /// `prompt`: typed at a masked prompt on the terminal.
    Prompt,
}

impl SecretSource {
    /// Parse `env:NAME`, `file:PATH` or `prompt`. The error never repeats what was given
    /// (it may be the secret itself).
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s == "prompt" {
            return Ok(SecretSource::Prompt);
        }
        if let Some(name) = s.strip_prefix("env:") {
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Ok(SecretSource::Env(name.to_string()));
            }
        }
        if let Some(path) = s.strip_prefix("file:") {
            if !path.is_empty() {
                return Ok(SecretSource::File(PathBuf::from(path)));
            }
        }
        Err(Error::BadSource)
    }

    /// Read the secret. `what` names it in prompts and errors ("user PIN for step 3").
    /// A file's trailing newline (`\n` or `\r\n`) is not part of the secret; only the
    /// first line counts (hab4_pki_tree.sh's key_pass.txt holds the password twice).
    pub fn read(&self, what: &str) -> Result<Secret, Error> {
        self.read_as(what, false)
    }

    /// Read a secret that is being set (a new PIN or password): at a prompt it is typed
    /// twice, since a typo would lock the officers out of what they just made.
    pub fn read_new(&self, what: &str) -> Result<Secret, Error> {
        self.read_as(what, true)
    }

    fn read_as(&self, what: &str, new: bool) -> Result<Secret, Error> {
        let secret = match self {
            SecretSource::Env(name) => {
                let v = std::env::var(name).map_err(|_| Error::MissingEnv(name.clone()))?;
                Secret::from_string(v)
            }
            SecretSource::File(path) => {
                let raw = Zeroizing::new(std::fs::read(path).map_err(|e| Error::File {
                    path: path.display().to_string(),
                    cause: e.kind().to_string(),
                })?);
                warn_if_readable_by_others(path);
                let end = raw.iter().position(|&b| b == b'\n').unwrap_or(raw.len());
                let mut line = &raw[..end];
                if let Some(stripped) = line.strip_suffix(b"\r") {
                    line = stripped;
                }
                Secret::new(line.to_vec())
            }
            SecretSource::Prompt => prompt(what, new)?,
        };
        if secret.is_empty() {
            return Err(Error::Empty(self.to_string()));
        }
        Ok(secret)
    }
}

/// Set once a process works on the rehearsal token: its PINs protect nothing (the shipped
/// ones are world-readable files in git), so their files are not warned about.
static REHEARSAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Set by the console, whose screen stderr would scribble over: warnings wait in
/// [`WARNINGS`] for [`take_warnings`].
static COLLECT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// This process works on the rehearsal token (`sim:`), whose PINs protect nothing: a
/// world-readable PIN file is no longer warned about.
pub fn on_rehearsal_token() {
    REHEARSAL.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Keep warnings for [`take_warnings`] instead of printing them (the console).
pub fn collect_warnings() {
    COLLECT.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// The warnings kept since the last call.
pub fn take_warnings() -> Vec<String> {
    std::mem::take(&mut *WARNINGS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// A secret file others can read is warned about (once per file, one line on stderr):
/// the secret is still used, since refusing would only move it somewhere worse.
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::Ordering;
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    if REHEARSAL.load(Ordering::Relaxed) {
        return;
    }
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode();
    if mode & 0o044 == 0 {
        return;
    }
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned.iter().any(|p| p == path) {
        return;
    }
    warned.push(path.to_path_buf());
    let line = format!(
        "warning: secret file {} is readable by {} (mode {:o}); chmod 600 it",
        path.display(),
        if mode & 0o004 != 0 {
            "everyone"
        } else {
            "its group"
        },
        mode & 0o777
    );
    if COLLECT.load(Ordering::Relaxed) {
        WARNINGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    } else {
        eprintln!("officiant: {line}");
    }
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(n) => write!(f, "env:{n}"),
            SecretSource::File(p) => write!(f, "file:{}", p.display()),
            SecretSource::Prompt => f.write_str("prompt"),
        }
    }
}

impl From<SecretSource> for String {
    fn from(s: SecretSource) -> String {
        s.to_string()
    }
}

impl<'de> serde::Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SecretSource::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for SecretSource {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        SecretSource::parse(s)
    }
}

/// Masked prompt on the controlling terminal; `confirm` asks twice.
pub fn prompt(what: &str, confirm: bool) -> Result<Secret, Error> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(Error::NoTerminal(what.to_string()));
    }
    let first = rpassword::prompt_password(format!("{what}: "))
        .map(Secret::from_string)
        .map_err(|_| Error::NoTerminal(what.to_string()))?;
    if confirm {
        let second = rpassword::prompt_password(format!("{what} (again): "))
            .map(Secret::from_string)
            .map_err(|_| Error::NoTerminal(what.to_string()))?;
        if first != second {
            return Err(Error::Mismatch(what.to_string()));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from_string("canary-1234".into());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
    }

    #[test]
    fn sources_parse_and_print_without_values() {
        assert_eq!(
            SecretSource::parse("env:USER_PIN").unwrap(),
            SecretSource::Env("USER_PIN".into())
        );
        assert_eq!(
            SecretSource::parse("file:/tmp/p").unwrap().to_string(),
            "file:/tmp/p"
        );
        assert!(SecretSource::parse("1234").is_err());
        assert!(SecretSource::parse("env:").is_err());
    }

    #[test]
    fn file_source_takes_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key_pass.txt");
        std::fs::write(&p, "test\r\ntest\n").unwrap();
        let s = SecretSource::File(p).read("passphrase").unwrap();
        assert_eq!(s.expose(), b"test");
    }
}
