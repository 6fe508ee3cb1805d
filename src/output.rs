//! Output files: written whole or not at all, and never over an existing file.
//!
//! A file is written to a temporary name in the same directory, fsynced, then
//! hard-linked to its final name (which fails if the name exists, so two runs cannot race
//! to overwrite) and the temporary name removed. A reader never sees half a file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why an output file was not written. Nothing half-written is left either way.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The output name exists already; nothing is overwritten.
    #[error("refusing to overwrite existing output file {0}")]
    Exists(PathBuf),
    /// Writing, syncing or linking the file failed.
    #[error("cannot write output file {path}: {cause}")]
    Io {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        cause: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.to_path_buf(),
        cause: e.to_string(),
    }
}

/// Test hooks (debug builds only) at the Nth crash point (effect boundaries, between a
/// step's output files, and inside every output write):
/// - `OFFICIANT_TEST_CRASH_AT=N` aborts the process there, so tests can kill a run at
///   every point and check the resume;
/// - `OFFICIANT_TEST_HOLD_AT=N:FILE` creates `FILE.held` there and waits (up to two
///   minutes) until `FILE` exists, so tests can start a second run while this one holds
///   its locks. A point with a name ([`crash_point_named`]) is also held by
///   `OFFICIANT_TEST_HOLD_AT=NAME:FILE`.
pub fn crash_point() {
    crash_point_named("");
}

/// A [`crash_point`] that `OFFICIANT_TEST_HOLD_AT` can also name (a point whose number
/// depends on what ran before it).
pub fn crash_point_named(name: &str) {
    #[cfg(not(debug_assertions))]
    let _ = name;
    #[cfg(debug_assertions)]
    {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(v) = std::env::var("OFFICIANT_TEST_CRASH_AT") {
            if v.parse::<usize>().ok() == Some(n) {
                std::process::abort();
            }
        }
        if let Some((at, file)) = std::env::var("OFFICIANT_TEST_HOLD_AT")
            .ok()
            .as_deref()
            .and_then(|v| v.split_once(':'))
        {
            if at.parse::<usize>().ok() == Some(n) || (!name.is_empty() && at == name) {
                let release = std::path::PathBuf::from(file);
                let _ = std::fs::write(format!("{file}.held"), b"");
                for _ in 0..6000 {
                    if release.exists() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
}

/// Test hook (debug builds only): `OFFICIANT_TEST_FAIL_WRITE_AT=N` makes the Nth output
/// write of the process fail with ENOSPC once its bytes are in the temporary file (before
/// it is synced and linked), as a full disk would, so tests can fail a step between its
/// output files and check the retry.
fn fail_write_point() -> io::Result<()> {
    #[cfg(debug_assertions)]
    {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(v) = std::env::var("OFFICIANT_TEST_FAIL_WRITE_AT") {
            if v.parse::<usize>().ok() == Some(n) {
                return Err(io::Error::from(rustix::io::Errno::NOSPC));
            }
        }
    }
    Ok(())
}

/// `fill`, then the test hook's failure (if this write is the one it names).
fn fill_checked(f: &mut File, fill: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    fill(f)?;
    fail_write_point()
}

/// Write `bytes` to `path` atomically; refuses if `path` exists.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_new_with(path, |f| f.write_all(bytes))
}

/// Like [`write_new`], with a writer callback for large or streamed outputs.
pub fn write_new_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), Error> {
    // Evidence and outputs are for everyone to read and for nobody else to change,
    // whatever the umask.
    write_atomic(path, 0o644, fill)
}

/// Like [`write_new`] for a file only its owner may read (mode 0600 from the moment it
/// exists, whatever the umask): a custodian's share.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomic(path, 0o600, |f| f.write_all(bytes))
}

fn write_atomic(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<(), Error> {
    if path.symlink_metadata().is_ok() {
        return Err(Error::Exists(path.to_path_buf()));
    }
    let (dir, tmp) = (dir_of(path), temp_beside(path, None));
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
        fill_checked(&mut f, fill).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
        drop(f);
        crash_point();
        fs::hard_link(&tmp, path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                Error::Exists(path.to_path_buf())
            } else {
                io_err(path)(e)
            }
        })?;
        crash_point();
        sync_dir(&dir);
        Ok(())
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// Replace an output file this run wrote with new bytes: the caller proved it is ours
/// (the journal recorded its SHA-256 before writing it, and it still holds `was`). The
/// new bytes are written beside it and renamed over it, so the name holds the old file
/// or the new one, never a mix; refused if it no longer holds `was` or is not a regular
/// file.
pub fn replace_own(path: &Path, was: &[u8; 32], bytes: &[u8]) -> Result<(), Error> {
    let not_ours = || Error::Exists(path.to_path_buf());
    match path.symlink_metadata() {
        Ok(m) if m.file_type().is_file() => {}
        _ => return Err(not_ours()),
    }
    if &sha256_file(path).map_err(io_err(path))? != was {
        return Err(not_ours());
    }
    let (dir, tmp) = (dir_of(path), temp_beside(path, None));
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o666);
        let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
        fill_checked(&mut f, |f| f.write_all(bytes)).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
        drop(f);
        crash_point();
        fs::rename(&tmp, path).map_err(io_err(path))?;
        sync_dir(&dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Write many small files, each as [`write_new`] would (whole or not at all, never over
/// an existing file), as one group commit: every temporary file is written, then one
/// `syncfs` makes them all durable, then each is linked under its name and the
/// directories are synced. A file never appears under its name before its bytes are on
/// disk, yet a signing batch pays two flushes per group instead of one per file.
/// Returns one result per item, in order.
pub fn write_new_all(items: &[(&Path, &[u8])]) -> Vec<Result<(), Error>> {
    // Stage every file under a temporary name (not yet synced).
    let staged: Vec<Result<(PathBuf, File), Error>> = items
        .iter()
        .enumerate()
        .map(|(i, (path, bytes))| {
            if path.symlink_metadata().is_ok() {
                return Err(Error::Exists(path.to_path_buf()));
            }
            let tmp = temp_beside(path, Some(i));
            let r = std::os::unix::fs::OpenOptionsExt::mode(
                OpenOptions::new().write(true).create_new(true),
                0o644,
            )
            .open(&tmp)
            .and_then(|mut f| f.write_all(bytes).map(|()| f));
            match r {
                Ok(f) => Ok((tmp, f)),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    Err(io_err(path)(e))
                }
            }
        })
        .collect();
    // One flush per directory's filesystem; where syncfs is refused, fall back to
    // syncing each staged file.
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (st, (path, _)) in staged.iter().zip(items) {
        let d = dir_of(path);
        if st.is_ok() && !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    let flushed = dirs.iter().all(|d| {
        File::open(d)
            .and_then(|f| rustix::fs::syncfs(&f).map_err(io::Error::from))
            .is_ok()
    });
    let staged: Vec<Result<PathBuf, Error>> = staged
        .into_iter()
        .zip(items)
        .map(|(st, (path, _))| {
            let (tmp, f) = st?;
            if !flushed {
                if let Err(e) = f.sync_all() {
                    let _ = fs::remove_file(&tmp);
                    return Err(io_err(path)(e));
                }
            }
            Ok(tmp)
        })
        .collect();
    // Publish each under its name (fails if the name exists), then sync the directories.
    let results = staged
        .into_iter()
        .zip(items)
        .map(|(st, (path, _))| {
            let tmp = st?;
            let r = publish(&tmp, path);
            let _ = fs::remove_file(&tmp);
            r
        })
        .collect();
    for d in &dirs {
        sync_dir(d);
    }
    results
}

/// Give the staged file `tmp` the name `path`, failing if `path` exists: a no-clobber
/// rename where the filesystem has one (no inode freed, which matters for batches),
/// else a hard link (the caller removes `tmp` either way).
fn publish(tmp: &Path, path: &Path) -> Result<(), Error> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    let exists = || Error::Exists(path.to_path_buf());
    match renameat_with(CWD, tmp, CWD, path, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::EXIST) => return Err(exists()),
        Err(_) => {}
    }
    fs::hard_link(tmp, path).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            exists()
        } else {
            io_err(path)(e)
        }
    })
}

/// Replace `path` atomically (temp file, fsync, rename). For state the program owns
/// (the rehearsal token's store, the journal), never for ceremony outputs: the file is
/// its owner's only (0600, whatever the umask).
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let (dir, tmp) = (dir_of(path), temp_beside(path, None));
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(path))?;
        f.sync_all().map_err(io_err(path))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io_err(path))?;
        sync_dir(&dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The directory `path` is in (`.` for a bare file name).
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temporary name beside `path`, in the same directory (same filesystem, so the final
/// link or rename is atomic): `.NAME.tmp-PID`, and `-I` after it for the I-th file of a
/// group.
fn temp_beside(path: &Path, index: Option<usize>) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let pid = std::process::id();
    dir_of(path).join(match index {
        None => format!(".{name}.tmp-{pid}"),
        Some(i) => format!(".{name}.tmp-{pid}-{i}"),
    })
}

fn sync_dir(dir: &Path) {
    // Best effort: makes the new name durable on filesystems that need it.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// SHA-256 of `bytes`: what transcripts record for each output.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h)?;
    Ok(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_overwrite_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        write_new(&p, b"one").unwrap();
        let err = write_new(&p, b"two").unwrap_err();
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_new_all_writes_each_and_refuses_existing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.sig");
        let b = dir.path().join("b.sig");
        write_new(&b, b"old").unwrap();
        let r = write_new_all(&[(&a, b"one"), (&b, b"two")]);
        assert!(r[0].is_ok());
        assert!(matches!(r[1], Err(Error::Exists(_))));
        assert_eq!(fs::read(&a).unwrap(), b"one");
        assert_eq!(fs::read(&b).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("share.txt");
        write_new_private(&p, b"s").unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(write_new_private(&p, b"t"), Err(Error::Exists(_))));
    }

    #[test]
    fn failed_fill_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.bin");
        let err = write_new_with(&p, |f| {
            f.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
