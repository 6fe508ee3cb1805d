//! One run per out dir: an exclusive advisory lock (`flock`) on the out directory itself,
//! taken before the journal is read and held for the whole run, by whichever face runs
//! it. A second run into the same out dir is refused in one line naming the process that
//! holds it; the lock goes with the process, so a killed run never leaves it behind, and
//! nothing is written into the out dir to hold it.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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
    /// Another run holds it.
    #[error("out dir {path} is in use by another officiant run ({holder}); wait for it to end, or use another --out")]
    Busy {
        /// The out dir.
        path: String,
        /// Who holds it: the process and its command line, as /proc/locks and /proc tell.
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
                let holder = dir
                    .metadata()
                    .ok()
                    .and_then(|m| holder_of(m.dev(), m.ino()))
                    .map(|pid| format!("process {pid}{}", command_of(pid)))
                    .unwrap_or_else(|| "another process".into());
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

/// The process holding a `flock` on the file (`dev`, `ino`), from /proc/locks (Linux).
fn holder_of(dev: u64, ino: u64) -> Option<u32> {
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
