//! The rehearsal token's state on disk: one JSON file, replaced atomically, guarded by an
//! exclusive advisory lock held while the token is open. Everything here says loudly that
//! it is not secure: private keys are stored in the clear.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::hsm::{Error, ObjectClass, Result};
use crate::keys::KeyAlgorithm;

use super::pin::PinRecord;

/// Written beside the store and shown wherever the token is: its keys are not protected.
pub const WARNING: &str = "REHEARSAL STORE: NOT SECURE, keys are stored in the clear";
const STORE_FILE: &str = "store.json";
const LOCK_FILE: &str = "store.lock";
/// How long to wait for a busy store before saying who holds it.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);
const MARKER_FILE: &str = "NOT-SECURE.txt";
const FORMAT: u32 = 1;

const MARKER_TEXT: &str = "\
REHEARSAL STORE: NOT SECURE.

This directory is an Officiant rehearsal token (backend sim:DIR). It exists for
rehearsals, demos and tests. Its private keys are stored IN THE CLEAR in store.json;
anyone who can read this directory has them. Never generate or import a production
key here, and never use a key from here on a device that ships.
";

/// Hex (de)serialization for byte fields.
pub(super) mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(d)?;
        hex::decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Hex for secret bytes: every intermediate string is zeroized.
mod hex_secret {
    use zeroize::Zeroizing;
    pub fn serialize<S: serde::Serializer>(
        v: &Zeroizing<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(hex::encode(v.as_slice()));
        s.serialize_str(&text)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Zeroizing<Vec<u8>>, D::Error> {
        // Borrowed from the (zeroizing) input buffer: hex needs no unescaping.
        let s: &'de str = serde::Deserialize::deserialize(d)?;
        let mut out = Zeroizing::new(vec![0u8; s.len() / 2]);
        hex::decode_to_slice(s, out.as_mut_slice()).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoredObject {
    pub class: ObjectClass,
    pub label: String,
    #[serde(with = "hex_bytes")]
    pub id: Vec<u8>,
    /// Visible only to a logged-in user.
    pub private: bool,
    /// Generated on this token (PKCS#11 CKA_LOCAL).
    #[serde(default)]
    pub local: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<KeyAlgorithm>,
    /// DER SubjectPublicKeyInfo for key objects and certificates.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_hex")]
    pub spki: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Private key: may leave the token wrapped under a wrap key (backup).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exportable: bool,
    /// Neither modifiable nor destroyable (PKCS#11 CKA_MODIFIABLE and CKA_DESTROYABLE
    /// false): `delete_object` refuses it; `init_token` erases it with everything else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immutable: bool,
    /// Private key: PKCS#8 DER (in the clear: rehearsal only). Certificate: DER.
    /// Data: the bytes. Public key: empty (see `spki`). Wrap key: the AES key.
    #[serde(with = "hex_secret")]
    pub value: Zeroizing<Vec<u8>>,
}

mod opt_hex {
    pub fn serialize<S: serde::Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<std::borrow::Cow<'de, str>> = serde::Deserialize::deserialize(d)?;
        s.map(|s| hex::decode(s.as_bytes()).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct State {
    pub warning: String,
    pub format: u32,
    pub serial: String,
    pub initialized: bool,
    pub label: String,
    pub so_pin: Option<PinRecord>,
    pub user_pin: Option<PinRecord>,
    pub objects: Vec<StoredObject>,
}

impl State {
    fn fresh() -> Self {
        use rand_core::RngCore;
        let mut serial = [0u8; 8];
        rand_core::OsRng.fill_bytes(&mut serial);
        State {
            warning: WARNING.into(),
            format: FORMAT,
            serial: hex::encode(serial),
            initialized: false,
            label: String::new(),
            so_pin: None,
            user_pin: None,
            objects: Vec::new(),
        }
    }
}

/// An open store: the directory, its lock (held until drop) and the file path.
pub(super) struct Store {
    pub dir: PathBuf,
    file: PathBuf,
    _lock: File,
}

/// Refuse to turn a directory that holds other things into a rehearsal store (a typo
/// such as `sim:.` or `sim:~` must not drop clear-text keys among someone's files).
fn refuse_foreign_dir(dir: &Path) -> Result<()> {
    let Ok(mut entries) = fs::read_dir(dir) else {
        return Ok(()); // does not exist yet (or is not a directory: create reports it)
    };
    let ours = [STORE_FILE, MARKER_FILE, LOCK_FILE]
        .iter()
        .any(|f| dir.join(f).exists());
    if !ours && entries.next().is_some() {
        return Err(Error::Backend(format!(
            "{} is not empty and holds no rehearsal store; give sim: a new or empty directory",
            dir.display()
        )));
    }
    Ok(())
}

/// A process killed inside an atomic write leaves its temporary file (a copy of the
/// store); with the lock held nobody else is writing, so remove them.
fn remove_stale_temp_files(dir: &Path) {
    let prefix = format!(".{STORE_FILE}.tmp-");
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// Create `dir` (and parents) readable by its owner only: the keys inside are in the
/// clear, so at least other local users should not read them. A directory that exists
/// already is made 0700 too, whatever it was.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)?;
    if fs::metadata(dir)?.permissions().mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Make a file of the store 0600 (one an older version or a umask left open).
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o077 != 0 => {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        }
        _ => Ok(()),
    }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::StoreIo { what, source }
}

impl Store {
    /// Open (creating on first use) the store in `dir` and lock it for this process.
    pub fn open(dir: &Path) -> Result<(Store, State)> {
        refuse_foreign_dir(dir)?;
        create_private_dir(dir).map_err(io(format!(
            "cannot create rehearsal token directory {}",
            dir.display()
        )))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = std::os::unix::fs::OpenOptionsExt::mode(
            OpenOptions::new().create(true).truncate(false).write(true),
            0o600,
        )
        .open(&lock_path)
        .map_err(io(format!("cannot open lock file {}", lock_path.display())))?;
        // A lock can be held for a moment by a process that is just closing the token,
        // or by a forked child of a sibling that has not reached exec yet (the lock's
        // file description is shared until then): wait briefly before calling it busy.
        let mut waited = std::time::Duration::ZERO;
        let step = std::time::Duration::from_millis(50);
        let outcome = loop {
            match lock.try_lock() {
                Err(fs::TryLockError::WouldBlock) if waited < LOCK_PATIENCE => {
                    std::thread::sleep(step);
                    waited += step;
                }
                other => break other,
            }
        };
        match outcome {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::Backend(format!(
                    "the rehearsal token in {} is in use by another process (lock {} held); \
                     close the other officiant first",
                    dir.display(),
                    lock_path.display()
                )))
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(io(format!("cannot lock {}", lock_path.display()))(e))
            }
        }
        remove_stale_temp_files(dir);
        for f in [LOCK_FILE, MARKER_FILE, STORE_FILE] {
            make_private(&dir.join(f))
                .map_err(io(format!("cannot make {} private", dir.join(f).display())))?;
        }
        let marker = dir.join(MARKER_FILE);
        if !marker.exists() {
            crate::output::replace(&marker, MARKER_TEXT.as_bytes()).map_err(Error::StoreWrite)?;
        }
        let store = Store {
            dir: dir.to_path_buf(),
            file: dir.join(STORE_FILE),
            _lock: lock,
        };
        let state = if store.file.exists() {
            store.load()?
        } else {
            let s = State::fresh();
            store.save(&s)?;
            s
        };
        Ok((store, state))
    }

    fn load(&self) -> Result<State> {
        let name = self.file.display();
        let bytes = Zeroizing::new(
            fs::read(&self.file).map_err(io(format!("cannot read rehearsal store {name}")))?,
        );
        let state: State =
            serde_json::from_slice(&bytes).map_err(|source| Error::StoreCorrupt {
                file: name.to_string(),
                source,
            })?;
        if state.format != FORMAT {
            return Err(Error::Backend(format!(
                "rehearsal store {name} has format {} (this officiant reads format {FORMAT})",
                state.format
            )));
        }
        Ok(state)
    }

    /// Write the whole state atomically.
    pub fn save(&self, state: &State) -> Result<()> {
        // Reserve enough up front that the buffer holding key material is not
        // reallocated (a reallocation would leave an unzeroized copy behind).
        let estimate = 4096
            + state
                .objects
                .iter()
                .map(|o| 1024 + 2 * (o.value.len() + o.spki.as_ref().map_or(0, Vec::len)))
                .sum::<usize>();
        let mut bytes = Zeroizing::new(Vec::with_capacity(estimate));
        serde_json::to_writer_pretty(&mut *bytes, state).map_err(Error::StoreEncode)?;
        bytes.push(b'\n');
        crate::output::replace(&self.file, &bytes).map_err(Error::StoreWrite)
    }
}
