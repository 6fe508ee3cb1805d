//! Reading payloads as a stream: one fixed buffer, so memory stays flat whatever the
//! payload size; and the offset arithmetic that streamed patching needs, without a cast
//! that could truncate. File reads only: no keys, no formats.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Read size. Large enough that syscalls do not show in the hashing time.
const CHUNK: usize = 1 << 20;

/// Feed every chunk of the file at `path` to `f` with its offset in the file; returns
/// the number of bytes read.
pub fn for_each_chunk(
    path: &Path,
    mut f: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        f(off, &buf[..n])?;
        off += n as u64;
    }
    Ok(off)
}

/// The part of `chunk` (which starts at file offset `off`) inside `[start, end)`.
pub fn within(off: u64, chunk: &[u8], start: u64, end: u64) -> &[u8] {
    let s = clamp_len(start.saturating_sub(off), chunk.len());
    let e = clamp_len(end.saturating_sub(off), chunk.len()).max(s);
    &chunk[s..e]
}

/// Copy into `chunk` (which starts at file offset `off`) the part of `new` (which belongs
/// at file offset `at`) that overlaps it: patching a few bytes into a streamed file.
pub fn overlay(chunk: &mut [u8], off: u64, new: &[u8], at: u64) {
    // Where `new` starts inside the chunk, and how much of `new` lies before the chunk.
    let to = clamp_len(at.saturating_sub(off), chunk.len());
    let from = clamp_len(off.saturating_sub(at), new.len());
    let n = (chunk.len() - to).min(new.len() - from);
    chunk[to..to + n].copy_from_slice(&new[from..from + n]);
}

/// `n` as a length, at most `max`: how much of a `max`-byte buffer a loop with `n` bytes
/// left uses next.
pub fn clamp_len(n: u64, max: usize) -> usize {
    usize::try_from(n).map_or(max, |n| n.min(max))
}

/// `bytes` from offset `at` on, if `at` lies inside it (or at its end).
pub fn from(bytes: &[u8], at: u64) -> Option<&[u8]> {
    usize::try_from(at).ok().and_then(|a| bytes.get(a..))
}

/// Read the first `n` bytes of a file (or fewer, if it is shorter).
pub fn read_prefix(path: &Path, n: usize) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let mut v = Vec::with_capacity(n);
    f.take(n as u64).read_to_end(&mut v)?;
    Ok(v)
}

/// Read up to `n` bytes at file offset `at` (fewer at the end of the file).
pub fn read_at(path: &Path, at: u64, n: usize) -> io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(at))?;
    let mut v = Vec::with_capacity(n);
    f.take(n as u64).read_to_end(&mut v)?;
    Ok(v)
}

/// Feed `len` bytes from file offset `at` to `f`, chunk by chunk; an error if the file
/// ends first.
pub fn for_each_chunk_in(
    path: &Path,
    at: u64,
    len: u64,
    mut f: impl FnMut(&[u8]),
) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(at))?;
    let mut file = file.take(len);
    let mut buf = vec![0u8; clamp_len(len.max(1), CHUNK)];
    let mut left = len;
    while left > 0 {
        let n = match file.read(&mut buf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file ends early",
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        f(&buf[..n]);
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{overlay, within};

    #[test]
    fn within_clips_to_the_range() {
        let c = [0u8, 1, 2, 3, 4];
        assert_eq!(within(10, &c, 12, 14), &[2, 3]);
        assert_eq!(within(10, &c, 0, 100), &c);
        assert!(within(10, &c, 20, 30).is_empty());
        assert!(within(10, &c, 0, 5).is_empty());
    }

    #[test]
    fn overlay_copies_only_the_overlap() {
        let mut c = [0u8; 5];
        overlay(&mut c, 10, &[1, 2, 3], 12);
        assert_eq!(c, [0, 0, 1, 2, 3]);
        let mut c = [0u8; 5];
        overlay(&mut c, 10, &[1, 2, 3, 4], 8);
        assert_eq!(c, [3, 4, 0, 0, 0]);
        let mut c = [0u8; 5];
        overlay(&mut c, 10, &[9; 20], 0);
        assert_eq!(c, [9; 5]);
        let mut c = [0u8; 5];
        overlay(&mut c, 10, &[1, 2], 15);
        overlay(&mut c, 10, &[1, 2], 6);
        assert_eq!(c, [0; 5]);
    }
}
