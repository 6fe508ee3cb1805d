//! The evidence transcript: hash-chained JSON lines, and a Markdown rendering for the
//! witnesses to print and sign.
//!
//! Each line is the compact JSON of `{seq, time, prev, type, data, hash}` in that field
//! order, where `hash` is the hex SHA-256 of the same JSON without `hash` and `prev` is
//! the previous line's `hash` (64 zeros for the first). `verify` re-serializes every line
//! and requires the exact bytes back, so any changed byte either breaks the JSON, the
//! canonical form or a hash. Every session of appends ends with a `close` entry carrying
//! the entry count, so a cut-off tail is detected too. No secret is ever written here: the
//! data written are labels, ids, names, hashes and public keys' fingerprints only.
//!
//! This file writes, reads and verifies the chain; `markdown` renders it for print.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod markdown;

pub use markdown::render_markdown;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A transcript that is not one, is broken, or cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A line of the chain is wrong: not JSON, not canonical, out of order, a broken hash.
    #[error("{path}: line {line}: {message}")]
    Bad {
        /// The transcript file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The file as a whole: empty, or not a transcript to append to.
    #[error("{path}: {message}")]
    File {
        /// The transcript file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// Opening, writing, syncing or cutting the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The transcript file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file cannot be read at all (missing, not allowed).
    #[error("{path}: cannot read: {}", source.kind())]
    Unreadable {
        /// The transcript file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Reading failed part-way.
    #[error("{path}: cannot read: {source}")]
    ReadFailed {
        /// The transcript file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An entry could not be encoded (it holds nothing JSON cannot, so never in practice).
    #[error("{path}: {source}")]
    Encode {
        /// The transcript file.
        path: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
}

#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    time: &'a str,
    prev: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a Value,
}

/// One entry as read back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Its place in the chain, from 0.
    pub seq: u64,
    /// When it was written (RFC 3339, UTC, seconds).
    pub time: String,
    /// The previous entry's `hash` (64 zeros for the first).
    pub prev: String,
    /// What it records (`open`, `step-done`, `close`, …; `type` in the JSON).
    #[serde(rename = "type")]
    pub kind: String,
    /// What it records, as JSON: labels, ids, hashes, never a secret.
    pub data: Value,
    /// SHA-256 of the entry without this field, hex.
    pub hash: String,
}

fn body_hash(seq: u64, time: &str, prev: &str, kind: &str, data: &Value) -> String {
    let body = Body {
        seq,
        time,
        prev,
        kind,
        data,
    };
    // Serializing a struct of strings and a Value cannot fail.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    hex::encode(crate::output::sha256(&bytes))
}

/// An open transcript, appended line by line (each line written whole and fsynced).
pub struct Writer {
    path: PathBuf,
    file: File,
    seq: u64,
    prev: String,
    /// An incomplete last line (a crash mid-write) was cut off when opening.
    pub torn_tail_discarded: bool,
    /// The file held entries already (a resumed run or a CLI transcript).
    pub continued: bool,
    closed: bool,
}

impl Writer {
    /// Open for appending, creating it if needed. An existing transcript must verify
    /// (its last session need not be closed: that is the run being resumed). A file that
    /// is not a transcript is refused untouched; only a torn last entry of our own (a
    /// crash mid-write) is cut off.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        let ferr = |source: std::io::Error| Error::Io {
            path: shown.clone(),
            source,
        };
        let mut torn = false;
        let (seq, prev, closed) = match std::fs::read(path) {
            Ok(bytes) => {
                let (keep, entries) = examine(&shown, &bytes)?;
                if keep < bytes.len() {
                    let f = OpenOptions::new().write(true).open(path).map_err(ferr)?;
                    f.set_len(keep as u64).map_err(ferr)?;
                    f.sync_all().map_err(ferr)?;
                    torn = true;
                }
                match entries.last() {
                    Some(e) => (e.seq + 1, e.hash.clone(), e.kind == "close"),
                    None => (0, GENESIS.to_string(), false),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, GENESIS.to_string(), false),
            Err(e) => return Err(ferr(e)),
        };
        // Evidence: readable by the group, writable by its owner only, whatever the umask.
        let file = std::os::unix::fs::OpenOptionsExt::mode(
            OpenOptions::new().create(true).append(true),
            0o640,
        )
        .open(path)
        .map_err(ferr)?;
        tighten(&file).map_err(ferr)?;
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            continued: seq > 0,
            seq,
            prev,
            torn_tail_discarded: torn,
            closed,
        })
    }

    /// The last session ended with a `close` entry.
    pub fn last_closed(&self) -> bool {
        self.closed
    }

    /// The transcript file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hash of the last entry: the head of the chain.
    pub fn head(&self) -> &str {
        &self.prev
    }

    /// Append one entry of kind `kind` and sync it before returning.
    pub fn append(&mut self, kind: &str, data: Value) -> Result<(), Error> {
        let time = now_rfc3339();
        let hash = body_hash(self.seq, &time, &self.prev, kind, &data);
        let entry = Entry {
            seq: self.seq,
            time,
            prev: self.prev.clone(),
            kind: kind.to_string(),
            data,
            hash,
        };
        let mut line = serde_json::to_vec(&entry).map_err(|source| Error::Encode {
            path: self.path.display().to_string(),
            source,
        })?;
        line.push(b'\n');
        let werr = |source: std::io::Error| Error::Io {
            path: self.path.display().to_string(),
            source,
        };
        self.file.write_all(&line).map_err(werr)?;
        self.file.sync_data().map_err(werr)?;
        self.seq += 1;
        self.prev = entry.hash;
        self.closed = kind == "close";
        Ok(())
    }

    /// Append several entries with one write and one sync (a signing batch records each
    /// output without paying a disk sync per line).
    pub fn append_all(&mut self, entries: Vec<(&str, Value)>) -> Result<(), Error> {
        let mut buf = Vec::new();
        let (mut seq, mut prev, mut closed) = (self.seq, self.prev.clone(), self.closed);
        for (kind, data) in entries {
            let time = now_rfc3339();
            let hash = body_hash(seq, &time, &prev, kind, &data);
            let entry = Entry {
                seq,
                time,
                prev,
                kind: kind.to_string(),
                data,
                hash,
            };
            serde_json::to_writer(&mut buf, &entry).map_err(|source| Error::Encode {
                path: self.path.display().to_string(),
                source,
            })?;
            buf.push(b'\n');
            seq += 1;
            prev = entry.hash;
            closed = kind == "close";
        }
        let werr = |source: std::io::Error| Error::Io {
            path: self.path.display().to_string(),
            source,
        };
        self.file.write_all(&buf).map_err(werr)?;
        self.file.sync_data().map_err(werr)?;
        (self.seq, self.prev, self.closed) = (seq, prev, closed);
        Ok(())
    }

    /// End the session: the `close` entry counts every entry including itself.
    pub fn close(&mut self, status: &str) -> Result<(), Error> {
        let entries = self.seq + 1;
        self.append(
            "close",
            serde_json::json!({ "status": status, "entries": entries }),
        )
    }
}

/// Refuse, touching nothing, a file [`Writer::open`] would refuse: a command checks its
/// `--transcript` before it opens a token.
pub fn check_appendable(path: &Path) -> Result<(), Error> {
    match std::fs::read(path) {
        Ok(bytes) => examine(&path.display().to_string(), &bytes).map(|_| ()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// An existing file to append to: how many bytes of it are whole entries of a good
/// chain, and those entries. Anything else than a transcript with perhaps a torn last
/// entry of ours is refused.
fn examine(shown: &str, bytes: &[u8]) -> Result<(usize, Vec<Entry>), Error> {
    let not_ours = |why: String| Error::File {
        path: shown.to_string(),
        message: format!(
            "not an officiant transcript ({why}); refusing to append to it: name a new file"
        ),
    };
    let keep = if bytes.ends_with(b"\n") || bytes.is_empty() {
        bytes.len()
    } else {
        bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)
    };
    let entries = parse_chain(shown, &bytes[..keep]).map_err(|e| match e {
        Error::Bad { line, message, .. } => not_ours(format!("line {line}: {message}")),
        other => other,
    })?;
    // Only the beginning of an entry as we write them is a torn write of ours.
    if keep < bytes.len() && !bytes[keep..].starts_with(br#"{"seq":"#) {
        return Err(not_ours("its last line is not a transcript entry".into()));
    }
    Ok((keep, entries))
}

/// Take write access from group and others on an existing transcript.
fn tighten(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o022 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o755))?;
    }
    Ok(())
}

/// Check one line (`ln`, 1-based) against the chain so far: canonical form, sequence,
/// link and hash. The body hash is taken over the canonical line itself (without its
/// `hash` field), so each line is parsed once and serialized once.
fn check_line(path: &str, ln: usize, line: &str, prev: &str) -> Result<Entry, Error> {
    let bad = |message: String| Error::Bad {
        path: path.to_string(),
        line: ln,
        message,
    };
    let e: Entry =
        serde_json::from_str(line).map_err(|err| bad(format!("not a transcript entry ({err})")))?;
    let canonical = serde_json::to_string(&e).unwrap_or_default();
    if canonical != line {
        return Err(bad("entry was altered (not in canonical form)".into()));
    }
    let n = (ln - 1) as u64;
    if e.seq != n {
        return Err(bad(format!(
            "sequence number {} where {n} was expected (entry deleted, inserted or moved)",
            e.seq
        )));
    }
    if e.prev != prev {
        return Err(bad(
            "does not chain to the previous entry (entry deleted, inserted, moved or altered)"
                .into(),
        ));
    }
    // The canonical line is the body's JSON with `,"hash":"<64 hex>"` before its last
    // brace: hash the body as it was hashed when written.
    let suffix = r#","hash":""#.len() + e.hash.len() + 2;
    let body_end = canonical.len().checked_sub(suffix);
    let hash = match body_end {
        Some(end) if e.hash.len() == 64 && canonical.ends_with(&format!("\"{}\"}}", e.hash)) => {
            let mut h = <sha2::Sha256 as sha2::Digest>::new();
            sha2::Digest::update(&mut h, &canonical.as_bytes()[..end]);
            sha2::Digest::update(&mut h, b"}");
            hex::encode(sha2::Digest::finalize(h))
        }
        _ => body_hash(e.seq, &e.time, &e.prev, &e.kind, &e.data),
    };
    if hash != e.hash {
        return Err(bad("entry was altered (hash mismatch)".into()));
    }
    if e.kind == "close" && e.data.get("entries").and_then(Value::as_u64) != Some(e.seq + 1) {
        return Err(bad("closing entry has the wrong entry count".into()));
    }
    Ok(e)
}

/// Parse and check the chain (not the closing entry).
fn parse_chain(path: &str, bytes: &[u8]) -> Result<Vec<Entry>, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        Error::Bad {
            path: path.to_string(),
            line,
            message: "not UTF-8".into(),
        }
    })?;
    let mut entries: Vec<Entry> = Vec::new();
    let mut prev = GENESIS.to_string();
    for (n, line) in text.split_terminator('\n').enumerate() {
        let e = check_line(path, n + 1, line, &prev)?;
        prev.clone_from(&e.hash);
        entries.push(e);
    }
    Ok(entries)
}

/// What streaming a transcript found: how many entries, the head, and the last entry's
/// kind (a finished session ends with `close`).
#[derive(Debug, Clone)]
pub struct Streamed {
    /// How many entries there are.
    pub entries: u64,
    /// The last entry's hash.
    pub head: String,
    /// The last entry's kind (`close` when the session was closed).
    pub last_kind: String,
}

/// Check a transcript entry by entry, handing each good entry to `visit`, in constant
/// memory (one line at a time): for `transcript verify` of transcripts of any length.
/// Unlike [`verify`] it does not require a closing entry; `visit` may stop the walk with
/// an error of its own.
pub fn stream(
    path: &Path,
    mut visit: impl FnMut(&Entry) -> Result<(), Error>,
) -> Result<Streamed, Error> {
    use std::io::BufRead;
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| Error::Unreadable {
        path: shown.clone(),
        source,
    })?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut line = Vec::new();
    let mut prev = GENESIS.to_string();
    let mut last_kind = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let got = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| Error::ReadFailed {
                path: shown.clone(),
                source,
            })?;
        if got == 0 {
            break;
        }
        n += 1;
        let bad = |message: &str| Error::Bad {
            path: shown.clone(),
            line: n,
            message: message.into(),
        };
        let Some(body) = line.strip_suffix(b"\n") else {
            return Err(bad("incomplete last line (truncated)"));
        };
        let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
        let e = check_line(&shown, n, text, &prev)?;
        visit(&e)?;
        prev = e.hash;
        last_kind = e.kind;
    }
    if n == 0 {
        return Err(Error::File {
            path: shown,
            message: "empty transcript".into(),
        });
    }
    Ok(Streamed {
        entries: n as u64,
        head: prev,
        last_kind,
    })
}

/// What a good transcript holds.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Every entry, in order.
    pub entries: Vec<Entry>,
    /// The last entry's hash: what the witnesses write down.
    pub head: String,
}

/// Check a whole transcript: chain, canonical form, and a closing entry at the end.
pub fn verify(path: &Path) -> Result<Verified, Error> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| Error::Unreadable {
        path: shown.clone(),
        source,
    })?;
    verify_bytes(&shown, &bytes)
}

/// [`verify`] over bytes already read; `shown` names the file in errors.
pub fn verify_bytes(shown: &str, bytes: &[u8]) -> Result<Verified, Error> {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    if bytes.is_empty() {
        return Err(Error::File {
            path: shown.into(),
            message: "empty transcript".into(),
        });
    }
    if !bytes.ends_with(b"\n") {
        return Err(Error::Bad {
            path: shown.into(),
            line: lines + 1,
            message: "incomplete last line (truncated)".into(),
        });
    }
    let entries = parse_chain(shown, bytes)?;
    match entries.last() {
        Some(e) if e.kind == "close" => Ok(Verified {
            head: e.hash.clone(),
            entries,
        }),
        _ => Err(Error::Bad {
            path: shown.into(),
            line: lines + 1,
            message: "no closing entry at the end (truncated, or the run did not finish)".into(),
        }),
    }
}

/// UTC now as RFC 3339 (`2026-11-22T02:18:53Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// UTC `secs` (since 1970) as RFC 3339 (`2026-11-22T02:18:53Z`).
pub fn rfc3339(secs: u64) -> String {
    // u64 seconds / 86 400 is below 2^47: it fits an i64.
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_314_733), "2026-11-22T02:32:13Z");
    }

    #[test]
    fn every_byte_change_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let mut w = Writer::open(&p).unwrap();
        w.append("open", serde_json::json!({"script": "a.toml", "n": 1}))
            .unwrap();
        w.append("note", serde_json::json!({"text": "héllo"}))
            .unwrap();
        w.close("complete").unwrap();
        let good = std::fs::read(&p).unwrap();
        verify_bytes("t", &good).unwrap();
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x01;
            assert!(
                verify_bytes("t", &b).is_err(),
                "flip at byte {i} not caught"
            );
        }
        // Truncation at every line boundary before the end.
        let cuts: Vec<usize> = good
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        for c in &cuts[..cuts.len() - 1] {
            assert!(verify_bytes("t", &good[..*c]).is_err());
        }
    }

    #[test]
    fn reopen_continues_chain_and_drops_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        let mut w = Writer::open(&p).unwrap();
        w.append("open", serde_json::json!({})).unwrap();
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"seq\":1,\"ti").unwrap();
        drop(f);
        let mut w = Writer::open(&p).unwrap();
        assert!(w.torn_tail_discarded && w.continued);
        w.close("complete").unwrap();
        let v = verify(&p).unwrap();
        assert_eq!(v.entries.len(), 2);
    }
}
