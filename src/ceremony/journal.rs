//! The run journal (`OUT/journal.jsonl`): one JSON record per line, appended and fsynced
//! before the run goes on, so a run killed at any moment can resume: completed steps are
//! skipped, the one step that started but did not complete is reconciled.
//!
//! A step also records, before it acts, what lets a rerun tell its own work from
//! anything else ([`Memo`]): `token-call` just before the token call that creates an
//! object (nothing with its label or id was on the token then), and `output` with a
//! file's name and SHA-256 just before the file is written. Without the first, whatever
//! a rerun finds under the step's label was not made by this run; without the second, a
//! file in the out dir was not written by it.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::engine::{SignOff, StepResult};

/// A journal that cannot be read or written, or holds something else than its records.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, writing or syncing the file failed.
    #[error("journal {path}: {source}")]
    Io {
        /// The journal file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be encoded (it holds nothing JSON cannot, so never in practice).
    #[error("journal {path}: {source}")]
    Encode {
        /// The journal file.
        path: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
    /// A line that is not a record, or a run record that is not the first line.
    #[error("journal {path}: line {line} is not a journal record")]
    Bad {
        /// The journal file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// Why it does not parse, when that is the reason.
        #[source]
        source: Option<serde_json::Error>,
    },
}

/// One line of the journal (`{"record": "started", …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Record {
    /// The first line: which script this out dir runs.
    Run {
        /// The script's path as given.
        script: String,
        /// SHA-256 of the script's bytes, hex: a resume runs only the same script.
        script_sha256: String,
    },
    /// The step is handed to the runner (before it touches anything).
    Started {
        /// The step's index in the script.
        step: usize,
        /// The step's id (checked against the script on resume).
        id: String,
    },
    /// The step is about to make its token call, and no object with its label or id was
    /// on the token (written before the call: a rerun that finds no such record knows
    /// the call never happened).
    TokenCall {
        /// The step's index in the script.
        step: usize,
        /// The step's id (checked against the script on resume).
        id: String,
    },
    /// The step is about to write output file `name` holding bytes with this SHA-256
    /// (written before the file is linked under its name).
    Output {
        /// The step's index in the script.
        step: usize,
        /// The step's id (checked against the script on resume).
        id: String,
        /// The file's name in the out dir.
        name: String,
        /// SHA-256 of the bytes about to be written, hex.
        sha256: String,
    },
    /// The step is done, with its result.
    Completed {
        /// The step's index in the script.
        step: usize,
        /// The step's id (checked against the script on resume).
        id: String,
        /// What it made and wrote.
        result: StepResult,
    },
    /// The step ended with an error the token or a file reported (not a crash): a rerun
    /// does it afresh and must not adopt what it finds (it was there before).
    Failed {
        /// The step's index in the script.
        step: usize,
        /// The step's id (checked against the script on resume).
        id: String,
    },
    /// The reviewer acknowledged the step's result.
    Acknowledged {
        /// The step's index in the script.
        step: usize,
        /// The step's id (checked against the script on resume).
        id: String,
        /// The reviewing role.
        role: String,
        /// The reviewer's name.
        name: String,
    },
    /// Every step done and the transcript closed: the out dir holds a finished ceremony.
    Complete,
}

/// What an earlier run left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The script the journal was written for (hex SHA-256).
    pub script_sha256: String,
    /// Done steps with their results, in the order they completed.
    pub completed: Vec<(usize, StepResult)>,
    /// Started and not completed.
    pub interrupted: Option<usize>,
    /// Results the reviewer acknowledged.
    pub acknowledged: Vec<(usize, SignOff)>,
    /// The run went to its end.
    pub complete: bool,
    /// What the steps recorded before their token calls and output files.
    pub memo: Memo,
}

/// What the journal proves a step did before it was interrupted or failed: whether it
/// reached its token call (since it last completed or failed), and which output files
/// it wrote, by name and SHA-256.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memo {
    token_calls: BTreeSet<usize>,
    /// (step, file name, SHA-256 hex).
    outputs: BTreeSet<(usize, String, String)>,
}

impl Memo {
    /// Take one record into account, in journal order.
    pub fn note(&mut self, r: &Record) {
        match r {
            Record::TokenCall { step, .. } => {
                self.token_calls.insert(*step);
            }
            // A completed step is never run again; a failed one is done afresh and must
            // not adopt what it finds on the token.
            Record::Completed { step, .. } | Record::Failed { step, .. } => {
                self.token_calls.remove(step);
            }
            Record::Output {
                step, name, sha256, ..
            } => {
                self.outputs.insert((*step, name.clone(), sha256.clone()));
            }
            _ => {}
        }
    }

    /// An interrupted attempt of `step` recorded its token call.
    pub fn token_call_recorded(&self, step: usize) -> bool {
        self.token_calls.contains(&step)
    }

    /// `step` recorded writing `name` with these bytes (SHA-256).
    pub fn wrote(&self, step: usize, name: &str, sha256: &[u8; 32]) -> bool {
        self.outputs
            .contains(&(step, name.to_string(), hex::encode(sha256)))
    }

    /// An earlier attempt of `step` (interrupted or failed) recorded writing some file.
    pub fn wrote_any(&self, step: usize) -> bool {
        self.outputs.iter().any(|(s, _, _)| *s == step)
    }
}

/// One step's view of the journal while it runs: what its earlier attempts recorded,
/// and the records it writes before it acts. A run without a journal (a one-step
/// command) keeps them in memory only.
pub struct StepLog<'a> {
    step: usize,
    id: String,
    journal: RefCell<Option<&'a mut Journal>>,
    memo: RefCell<&'a mut Memo>,
}

impl<'a> StepLog<'a> {
    /// The log of step `step` (id `id`): appends to `journal` (none: a run that keeps none)
    /// and notes into `memo`.
    pub fn new(
        step: usize,
        id: &str,
        journal: Option<&'a mut Journal>,
        memo: &'a mut Memo,
    ) -> Self {
        StepLog {
            step,
            id: id.to_string(),
            journal: RefCell::new(journal),
            memo: RefCell::new(memo),
        }
    }

    fn append(&self, r: Record) -> Result<(), Error> {
        if let Some(j) = self.journal.borrow_mut().as_deref_mut() {
            j.append(&r)?;
        }
        self.memo.borrow_mut().note(&r);
        Ok(())
    }

    /// An interrupted attempt of this step recorded its token call: what the token holds
    /// under the step's label and id may be its work (still to be checked).
    pub fn token_call_recorded(&self) -> bool {
        self.memo.borrow().token_call_recorded(self.step)
    }

    /// Record that the step is about to make its token call (the caller saw nothing with
    /// its label or id on the token).
    pub fn record_token_call(&self) -> Result<(), Error> {
        self.append(Record::TokenCall {
            step: self.step,
            id: self.id.clone(),
        })?;
        crate::output::crash_point();
        Ok(())
    }

    /// This step wrote `name` with bytes of this SHA-256 (in this run or an earlier one).
    pub fn wrote(&self, name: &str, sha256: &[u8; 32]) -> bool {
        self.memo.borrow().wrote(self.step, name, sha256)
    }

    /// An earlier attempt of this step (interrupted or failed) recorded writing a file.
    pub fn wrote_any(&self) -> bool {
        self.memo.borrow().wrote_any(self.step)
    }

    /// Record that the step is about to write `name` with bytes of this SHA-256.
    pub fn record_output(&self, name: &str, sha256: &[u8; 32]) -> Result<(), Error> {
        self.append(Record::Output {
            step: self.step,
            id: self.id.clone(),
            name: name.to_string(),
            sha256: hex::encode(sha256),
        })
    }
}

/// The journal file, open for appending; each record is synced before the run goes on.
pub struct Journal {
    path: PathBuf,
    file: File,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
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
        let bad = |source| Error::Bad {
            path: path.display().to_string(),
            line: n + 1,
            source,
        };
        let r: Record = serde_json::from_str(line).map_err(|e| bad(Some(e)))?;
        l.memo.note(&r);
        match r {
            Record::Run { script_sha256, .. } => {
                if n != 0 {
                    return Err(bad(None));
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
            Record::TokenCall { .. } | Record::Output { .. } => {}
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
        let mut line = serde_json::to_vec(r).map_err(|source| Error::Encode {
            path: self.path.display().to_string(),
            source,
        })?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io(&self.path))?;
        self.file.sync_data().map_err(io(&self.path))?;
        Ok(())
    }
}
