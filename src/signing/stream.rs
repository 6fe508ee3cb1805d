//! Reading payloads as a stream: one fixed buffer, so memory stays flat whatever the
//! payload size.

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
    let c_end = off + chunk.len() as u64;
    let s = start.max(off).min(c_end);
    let e = end.min(c_end).max(s);
    &chunk[(s - off) as usize..(e - off) as usize]
}

/// Read the first `n` bytes of a file (or fewer, if it is shorter).
pub fn read_prefix(path: &Path, n: usize) -> io::Result<Vec<u8>> {
    let f = File::open(path)?;
    let mut v = Vec::with_capacity(n);
    f.take(n as u64).read_to_end(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn within_clips_to_the_range() {
        let c = [0u8, 1, 2, 3, 4];
        assert_eq!(within(10, &c, 12, 14), &[2, 3]);
        assert_eq!(within(10, &c, 0, 100), &c);
        assert!(within(10, &c, 20, 30).is_empty());
        assert!(within(10, &c, 0, 5).is_empty());
    }
}
