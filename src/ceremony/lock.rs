//! One run per out dir and per token: exclusive advisory locks (`flock`) held for the
//! whole run, by whichever face runs it. A second run is refused in one line naming the
//! process that holds the lock; a lock goes with its process, so a killed run never
//! leaves one behind.
//!
//! - [`OutLock`]: on the out directory itself, taken before the journal is read; nothing
//!   is written into the out dir to hold it.
//! - [`TokenLock`]: on a file named for the token (manufacturer, model, serial) in the
//!   user's runtime directory (`$XDG_RUNTIME_DIR/officiant`, else
//!   `/tmp/officiant-UID`, 0700 and ours), taken when the run opens the token, and again
//!   under the new serial after an init-token. Two runs into different out dirs cannot
//!   fill one token. The rehearsal token locks its own store for as long as a process has
//!   it open, a MockHsm lives in one process, and a token with no serial (not yet
//!   initialized) has nothing to name it by: those take no token lock. Signers take it
//!   shared ([`TokenLock::take_shared`]); one-step commands that change the token, alone.
//! - The init lock ([`TokenLock::for_init`]): per token library (manufacturer, model),
//!   held by an init-token from before it picks an empty slot until its new token is
//!   locked by serial; another run's init-token waits for it.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

/// Why the out dir could not be locked for this run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating, opening or locking it failed.
    #[error("out dir {path}: {cause}")]
    Io {
        /// The out dir.
        path: String,
        /// The I/O error.
        #[source]
        cause: std::io::Error,
    },
    /// The token lock's directory is not a private directory of this user.
    #[error("token lock directory {path}: {why}; set XDG_RUNTIME_DIR to a private directory")]
    LockDir {
        /// The directory.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// Another run has the token.
    #[error("token {token} is in use by another officiant run ({holder}); wait for it to end")]
    TokenBusy {
        /// The token as its label and serial name it.
        token: String,
        /// Who holds it, as /proc tells.
        holder: String,
    },
    /// Another run is initializing a token through the same library, and did not finish
    /// within [`INIT_WAIT`].
    #[error("another officiant run ({holder}) is initializing a {library} token; try again when it has finished")]
    InitBusy {
        /// The token library, as the token names its manufacturer and model.
        library: String,
        /// Who holds it, as /proc tells.
        holder: String,
    },
    /// Another run holds it.
    #[error("out dir {path} is in use by another officiant run ({holder}); wait for it to end, or use another --out")]
    Busy {
        /// The out dir.
        path: String,
        /// Who holds it: the process and its command line, as /proc tells.
        holder: String,
    },
}

/// Held while a run owns its out dir; dropping it releases the lock. An out dir this
/// lock created and nothing was written into is removed again (a refused run leaves
/// nothing behind).
#[derive(Debug)]
pub struct OutLock {
    _dir: File,
    path: PathBuf,
    created: bool,
}

impl Drop for OutLock {
    fn drop(&mut self) {
        if self.created {
            // Fails, as it should, unless the directory is still empty. Done while the
            // lock is still held.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

impl OutLock {
    /// Create `out` if needed and lock it, or say who holds it.
    pub fn take(out: &Path) -> Result<Self, Error> {
        let io = |cause| Error::Io {
            path: out.display().to_string(),
            cause,
        };
        let created = !out.exists();
        std::fs::create_dir_all(out).map_err(io)?;
        let dir = File::open(out).map_err(io)?;
        match flock(&dir, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(OutLock {
                _dir: dir,
                path: out.to_path_buf(),
                created,
            }),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                let holder = holder_of(&dir, out);
                Err(Error::Busy {
                    path: out.display().to_string(),
                    holder,
                })
            }
            Err(e) => Err(io(e.into())),
        }
    }

    /// The locked out dir.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Held while a run has its token; dropping it releases the lock. The lock file stays
/// (empty; it names the token by a hash only).
#[derive(Debug)]
pub struct TokenLock {
    _file: File,
    /// Which token (hex SHA-256 of manufacturer, model and serial).
    pub key: String,
}

impl TokenLock {
    /// Lock the token `info` describes for this run alone, or say who has it. `Ok(None)`:
    /// a token that takes no lock here (see the module doc).
    pub fn take(info: &crate::hsm::TokenInfo) -> Result<Option<Self>, Error> {
        if Self::key_of(info).is_none() {
            return Ok(None);
        }
        Self::take_in(&lock_dir()?, info, Hold::Alone)
    }

    /// Lock the token for signing beside other signers: refused while a ceremony or a
    /// one-step command that changes the token holds it, and it keeps them out while held.
    /// Signers among themselves need no lock: a request's use counter refuses two that
    /// counted from the same value.
    pub fn take_shared(info: &crate::hsm::TokenInfo) -> Result<Option<Self>, Error> {
        if Self::key_of(info).is_none() {
            return Ok(None);
        }
        Self::take_in(&lock_dir()?, info, Hold::Shared)
    }

    /// The token's lock key, the [`TokenLock::key`] a lock on it has; `None` for a token
    /// that takes no lock. A run that holds this key already must not take it again (a
    /// second lock on the same file, even in one process, is refused).
    pub fn key_of(info: &crate::hsm::TokenInfo) -> Option<String> {
        if info.rehearsal || info.serial.trim().is_empty() {
            return None;
        }
        Some(hex::encode(crate::output::sha256(
            format!(
                "{}\0{}\0{}",
                info.manufacturer.trim(),
                info.model.trim(),
                info.serial.trim()
            )
            .as_bytes(),
        )))
    }

    /// [`TokenLock::take`] with its lock file in `dir`.
    fn take_in(
        dir: &Path,
        info: &crate::hsm::TokenInfo,
        hold: Hold,
    ) -> Result<Option<Self>, Error> {
        let Some(key) = Self::key_of(info) else {
            return Ok(None);
        };
        match lock_in(
            dir,
            &format!("token-{}.lock", &key[..32]),
            hold,
            Duration::ZERO,
        )? {
            Ok(file) => Ok(Some(TokenLock { _file: file, key })),
            Err(holder) => Err(Error::TokenBusy {
                token: format!("{:?} (serial {})", info.label, info.serial.trim()),
                holder,
            }),
        }
    }

    /// Hold the token library `info` describes for one init-token: two runs that each
    /// pick "the" empty slot at once would initialize the same one, or two tokens with
    /// one label. Another run's init-token is waited for (up to [`INIT_WAIT`]: an init
    /// takes no input, so it is short); then this one looks at the slots again and sees
    /// the other's token. Drop it once the new token is locked by its serial.
    pub fn for_init(info: &crate::hsm::TokenInfo) -> Result<Option<Self>, Error> {
        if info.rehearsal {
            return Ok(None);
        }
        Self::init_in(&lock_dir()?, info, INIT_WAIT)
    }

    /// [`TokenLock::for_init`] with its lock file in `dir`, waiting up to `wait`.
    fn init_in(
        dir: &Path,
        info: &crate::hsm::TokenInfo,
        wait: Duration,
    ) -> Result<Option<Self>, Error> {
        let key = hex::encode(crate::output::sha256(
            format!("init\0{}\0{}", info.manufacturer.trim(), info.model.trim()).as_bytes(),
        ));
        match lock_in(dir, &format!("init-{}.lock", &key[..32]), Hold::Alone, wait)? {
            Ok(file) => Ok(Some(TokenLock { _file: file, key })),
            Err(holder) => Err(Error::InitBusy {
                library: format!("{} {}", info.manufacturer.trim(), info.model.trim()),
                holder,
            }),
        }
    }
}

/// How long an init-token waits for another run's init-token on the same library.
pub const INIT_WAIT: Duration = Duration::from_secs(30);

/// Open `dir/name` (created 0600) and `flock` it as `hold` asks, trying again until
/// `wait` has passed. `Ok(Err(holder))`: someone else has it, as [`holder_of`] names them.
fn lock_in(
    dir: &Path,
    name: &str,
    hold: Hold,
    wait: Duration,
) -> Result<Result<File, String>, Error> {
    let path = dir.join(name);
    let io = |cause| Error::Io {
        path: path.display().to_string(),
        cause,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        // No one else can write to the directory, so nothing here is a planted link.
        .open(&path)
        .map_err(io)?;
    let op = match hold {
        Hold::Alone => FlockOperation::NonBlockingLockExclusive,
        Hold::Shared => FlockOperation::NonBlockingLockShared,
    };
    let start = Instant::now();
    loop {
        match flock(&file, op) {
            Ok(()) => return Ok(Ok(file)),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                if start.elapsed() >= wait {
                    return Ok(Err(holder_of(&file, &path)));
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(e) => return Err(io(e.into())),
        }
    }
}

/// How a run holds its token.
#[derive(Clone, Copy, Debug)]
enum Hold {
    /// A ceremony or a command that changes the token: no one else.
    Alone,
    /// A signer: other signers too.
    Shared,
}

/// Where token locks live: `$XDG_RUNTIME_DIR/officiant`, else (unset, or not usable)
/// `/tmp/officiant-UID`; created 0700, and refused unless it is a directory of this user
/// that no one else can write to (another user could otherwise hold or remove our locks).
fn lock_dir() -> Result<PathBuf, Error> {
    let uid = rustix::process::geteuid().as_raw();
    let tmp = std::env::temp_dir().join(format!("officiant-{uid}"));
    // A runtime directory that is missing or not ours (sudo keeps the caller's) falls
    // back to the temporary one; only when neither is private is the run refused.
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => private_dir(PathBuf::from(d).join("officiant")).or_else(|_| private_dir(tmp)),
        None => private_dir(tmp),
    }
}

/// `dir`, created 0700 if missing, once it is a directory of this user no one else can
/// write to.
fn private_dir(dir: PathBuf) -> Result<PathBuf, Error> {
    use std::os::unix::fs::DirBuilderExt;
    let uid = rustix::process::geteuid().as_raw();
    let bad = |why: String| Error::LockDir {
        path: dir.display().to_string(),
        why,
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(bad(e.to_string())),
    }
    let m = dir.symlink_metadata().map_err(|e| bad(e.to_string()))?;
    if !m.is_dir() {
        return Err(bad("not a directory (a symlink?)".into()));
    }
    if m.uid() != uid {
        return Err(bad(format!("owned by uid {}, not {uid}", m.uid())));
    }
    if m.mode() & 0o022 != 0 {
        return Err(bad(format!(
            "others can write to it (mode {:o})",
            m.mode() & 0o777
        )));
    }
    Ok(dir)
}

/// "process PID: command …" for the process holding a `flock` on `file` (at `path`),
/// or "another process" when /proc cannot tell (another user's process, no /proc).
fn holder_of(file: &File, path: &Path) -> String {
    path.canonicalize()
        .ok()
        .and_then(|p| holder_by_fd(&p))
        .or_else(|| {
            let m = file.metadata().ok()?;
            holder_by_inode(m.dev(), m.ino())
        })
        .map_or_else(
            || "another process".into(),
            |pid| format!("process {pid}{}", command_of(pid)),
        )
}

/// The process with a descriptor open on `path` that holds a `flock` through it: the
/// descriptor's `/proc/PID/fdinfo` lists the locks it owns. Exact on every filesystem,
/// where /proc/locks' device and inode need not be what `stat` says (overlayfs gives a
/// directory, or a file, another inode number there than in `stat`).
fn holder_by_fd(path: &Path) -> Option<u32> {
    let want = path.as_os_str();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|proc_entry| {
            let pid: u32 = proc_entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(proc_entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == want)
                        && std::fs::read_to_string(
                            proc_entry.path().join("fdinfo").join(fd.file_name()),
                        )
                        .is_ok_and(|info| {
                            // "lock:\t1: FLOCK  ADVISORY  WRITE 12345 fd:01:1234 0 EOF"
                            info.lines()
                                .any(|l| l.starts_with("lock:") && l.contains(" FLOCK "))
                        })
                })
                .then_some(pid)
        })
}

/// The process holding a `flock` on the file (`dev`, `ino`), from /proc/locks: the
/// fallback when no descriptor could be read.
fn holder_by_inode(dev: u64, ino: u64) -> Option<u32> {
    let want = format!(
        "{:02x}:{:02x}:{ino}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    );
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|l| {
        // "1: FLOCK  ADVISORY  WRITE 12345 fd:01:1234 0 EOF"
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })
}

/// ` (officiant run …)`: the holder's command line, without its arguments' values beyond
/// the first few words (a command line never holds a secret here, but keep it short).
fn command_of(pid: u32) -> String {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return String::new();
    };
    let words: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|w| !w.is_empty())
        .take(3)
        .map(|w| {
            let w = String::from_utf8_lossy(w);
            // Only the program's file name.
            w.rsplit('/').next().unwrap_or(&w).to_string()
        })
        .collect();
    if words.is_empty() {
        String::new()
    } else {
        format!(": {}", words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(serial: &str) -> crate::hsm::TokenInfo {
        crate::hsm::TokenInfo {
            label: "root".into(),
            serial: serial.into(),
            manufacturer: "SoftHSM project".into(),
            model: "SoftHSM v2".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_token_is_locked_once_by_its_serial() {
        let d = tempfile::tempdir().unwrap();
        let dir = private_dir(d.path().join("locks")).unwrap();
        let held = TokenLock::take_in(&dir, &token("a1b2"), Hold::Alone)
            .unwrap()
            .unwrap();
        let e = TokenLock::take_in(&dir, &token(" a1b2 "), Hold::Alone)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "token \"root\" (serial a1b2) is in use by another officiant run (process "
            ) && e.contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        // Another token is another lock.
        assert!(TokenLock::take_in(&dir, &token("c3d4"), Hold::Alone)
            .unwrap()
            .is_some());
        drop(held);
        assert!(TokenLock::take_in(&dir, &token("a1b2"), Hold::Alone)
            .unwrap()
            .is_some());
        // Nothing to name a token by, or a token that locks itself: no lock.
        assert!(TokenLock::take(&token("")).unwrap().is_none());
        let rehearsal = crate::hsm::TokenInfo {
            rehearsal: true,
            ..token("a1b2")
        };
        assert!(TokenLock::take(&rehearsal).unwrap().is_none());
    }

    #[test]
    fn signers_share_a_token_that_a_ceremony_has_alone() {
        let d = tempfile::tempdir().unwrap();
        let dir = private_dir(d.path().join("locks")).unwrap();
        let take = |hold| TokenLock::take_in(&dir, &token("a1b2"), hold);
        let busy = |r: Result<Option<TokenLock>, Error>| {
            let e = r.unwrap_err().to_string();
            assert!(
                e.contains("is in use by another officiant run (process "),
                "{e}"
            );
        };
        let signer = take(Hold::Shared).unwrap().unwrap();
        let other_signer = take(Hold::Shared).unwrap().unwrap();
        busy(take(Hold::Alone));
        drop(signer);
        busy(take(Hold::Alone));
        drop(other_signer);
        let ceremony = take(Hold::Alone).unwrap().unwrap();
        busy(take(Hold::Shared));
        drop(ceremony);
        assert!(take(Hold::Shared).unwrap().is_some());
    }

    #[test]
    fn an_init_token_waits_for_another_on_the_same_library() {
        let d = tempfile::tempdir().unwrap();
        let dir = private_dir(d.path().join("locks")).unwrap();
        let empty_slot = crate::hsm::TokenInfo {
            label: String::new(),
            ..token("")
        };
        let first = TokenLock::init_in(&dir, &empty_slot, Duration::ZERO)
            .unwrap()
            .unwrap();
        // Not within the wait: refused, naming the holder.
        let e = TokenLock::init_in(&dir, &empty_slot, Duration::from_millis(100))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "another officiant run (process {}",
                std::process::id()
            )) && e.ends_with(
                "is initializing a SoftHSM project SoftHSM v2 token; try again when it has finished"
            ),
            "{e}"
        );
        // Released during the wait: the waiter gets it.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(first);
        });
        let t0 = Instant::now();
        assert!(
            TokenLock::init_in(&dir, &empty_slot, Duration::from_secs(10))
                .unwrap()
                .is_some()
        );
        assert!(t0.elapsed() >= Duration::from_millis(150));
        release.join().unwrap();
        // Another library is another lock; the rehearsal token takes none.
        let other = crate::hsm::TokenInfo {
            model: "Other".into(),
            ..empty_slot.clone()
        };
        let _held = TokenLock::init_in(&dir, &empty_slot, Duration::ZERO).unwrap();
        assert!(TokenLock::init_in(&dir, &other, Duration::ZERO)
            .unwrap()
            .is_some());
        let rehearsal = crate::hsm::TokenInfo {
            rehearsal: true,
            ..empty_slot
        };
        assert!(TokenLock::for_init(&rehearsal).unwrap().is_none());
    }

    #[test]
    fn a_lock_directory_others_can_write_to_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("locks");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(dir.clone()).unwrap_err().to_string();
        assert!(e.contains("others can write to it (mode 777)"), "{e}");
        std::os::unix::fs::symlink(d.path(), d.path().join("link")).unwrap();
        let e = private_dir(d.path().join("link")).unwrap_err().to_string();
        assert!(e.contains("not a directory (a symlink?)"), "{e}");
    }

    #[test]
    fn a_second_lock_is_refused_naming_this_process() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let first = OutLock::take(&out).unwrap();
        let e = OutLock::take(&out).unwrap_err().to_string();
        assert!(
            e.contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            0,
            "nothing written"
        );
        drop(first);
        assert!(
            !out.exists(),
            "an out dir it made and left empty is removed"
        );
        let again = OutLock::take(&out).unwrap();
        std::fs::write(out.join("journal.jsonl"), b"").unwrap();
        drop(again);
        assert!(
            out.join("journal.jsonl").exists(),
            "an out dir in use stays"
        );
    }
}
