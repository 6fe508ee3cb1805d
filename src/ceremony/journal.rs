//! The run journal (`OUT/journal.jsonl`): one JSON record per line, appended and fsynced
//! before the run goes on, so a run killed at any moment can resume: completed steps are
//! skipped, the one step that started but did not complete is reconciled.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::engine::{SignOff, StepResult};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("journal {path}: {message}")]
    Io { path: String, message: String },
    #[error("journal {path}: line {line} is not a journal record")]
    Bad { path: String, line: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Record {
    Run {
        script: String,
        script_sha256: String,
    },
    Started {
        step: usize,
        id: String,
    },
    Completed {
        step: usize,
        id: String,
        result: StepResult,
    },
    /// The step ended with an error the token or a file reported (not a crash): a rerun
    /// does it afresh and must not adopt what it finds (it was there before).
    Failed {
        step: usize,
        id: String,
    },
    /// The reviewer acknowledged the step's result.
    Acknowledged {
        step: usize,
        id: String,
        role: String,
        name: String,
    },
    Complete,
}

/// What an earlier run left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub script_sha256: String,
    pub completed: Vec<(usize, StepResult)>,
    /// Started and not completed.
    pub interrupted: Option<usize>,
    /// Results the reviewer acknowledged.
    pub acknowledged: Vec<(usize, SignOff)>,
    pub complete: bool,
}

pub struct Journal {
    path: PathBuf,
    file: File,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Read a journal; `None` if there is none. A torn last line (crash mid-write) is
/// ignored: the record it would have been never happened.
pub fn load(path: &Path) -> Result<Option<Loaded>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let mut l = Loaded::default();
    let complete_lines = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let text = String::from_utf8_lossy(&bytes[..complete_lines]);
    for (n, line) in text.lines().enumerate() {
        let bad = || Error::Bad {
            path: path.display().to_string(),
            line: n + 1,
        };
        let r: Record = serde_json::from_str(line).map_err(|_| bad())?;
        match r {
            Record::Run { script_sha256, .. } => {
                if n != 0 {
                    return Err(bad());
                }
                l.script_sha256 = script_sha256;
            }
            Record::Started { step, .. } => l.interrupted = Some(step),
            Record::Completed { step, result, .. } => {
                l.interrupted = None;
                l.completed.retain(|(s, _)| *s != step);
                l.completed.push((step, result));
            }
            Record::Failed { .. } => l.interrupted = None,
            Record::Acknowledged {
                step, role, name, ..
            } => {
                l.acknowledged.retain(|(s, _)| *s != step);
                l.acknowledged.push((step, SignOff { role, name }));
            }
            Record::Complete => l.complete = true,
        }
    }
    if l.script_sha256.is_empty() {
        return Ok(None);
    }
    Ok(Some(l))
}

impl Journal {
    /// Open for appending (creating it); a torn last line is cut off first.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Ok(bytes) = std::fs::read(path) {
            if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io(path))?;
                f.set_len(keep as u64).map_err(io(path))?;
                f.sync_all().map_err(io(path))?;
            }
        }
        // The run's own state: its owner's only, whatever the umask.
        let file = std::os::unix::fs::OpenOptionsExt::mode(
            OpenOptions::new().create(true).append(true),
            0o600,
        )
        .open(path)
        .map_err(io(path))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Append one record and make it durable before returning.
    pub fn append(&mut self, r: &Record) -> Result<(), Error> {
        let mut line = serde_json::to_vec(r).map_err(|e| Error::Io {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        Ok(())
    }
}
