//! Keep secrets out of core dumps: the first thing the program does.
//!
//! PINs, passphrases and shares sit in this process's memory while a ceremony runs
//! (zeroized when dropped, but alive until then). A core dump (Ctrl-\ at a prompt, a
//! crash) would write them to disk. The process is made non-dumpable (which also keeps
//! other processes of the same user from reading its memory through /proc or ptrace)
//! and its core size limit set to zero, for itself and whatever it starts.

use std::io;

/// Forbid core dumps of this process. An error means the protection is not in place.
pub fn forbid() -> io::Result<()> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    )?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn leaves_no_core_limit_and_no_dumpable_flag() {
        // The test process may dump; this one test changes that for itself only.
        super::forbid().unwrap();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
        let core = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap();
        assert_eq!(
            core.split_whitespace().collect::<Vec<_>>()[4..6],
            ["0", "0"],
            "{core}"
        );
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }
}
