//! A terminal for tests: a private tmux server running one session, driven with
//! send-keys and read with capture-pane.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
    pub session: &'static str,
}

impl Tmux {
    /// A server on its own socket (`NAME-PID`), so parallel tests never meet.
    pub fn new(name: &str, session: &'static str) -> Self {
        Tmux {
            socket: format!("{name}-{}", std::process::id()),
            session,
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        // CI runs with no terminal: give tmux (and what runs inside it) a known one.
        c.args(["-L", &self.socket]).env("TERM", "xterm-256color");
        c
    }

    /// Start the session at `cols`×`rows` in `dir`, running `shell_cmd` under sh.
    pub fn start(&self, cols: u16, rows: u16, dir: &std::path::Path, shell_cmd: &str) {
        let st = self
            .cmd()
            .args(["new-session", "-d", "-s", self.session])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string(), "-c"])
            .arg(dir)
            .arg(shell_cmd)
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Start an interactive `sh` (prompt `sh$ `) in `dir` and wait for its prompt. Text
    /// typed before the shell is ready is echoed first and the prompt lands in front of
    /// the next program's output, so a test waits here before typing a command line.
    pub fn start_shell(&self, cols: u16, rows: u16, dir: &std::path::Path) {
        self.start(cols, rows, dir, "PS1='sh$ ' sh");
        self.wait_for("sh$", 20);
    }

    /// Wait until the pane's terminal stops echoing: a program reading a secret prints
    /// its prompt first and turns echo off just after, so text typed in between would be
    /// shown (a person is never that fast; a test is).
    pub fn wait_for_no_echo(&self, secs: u64) {
        let out = self
            .cmd()
            .args(["display-message", "-p", "-t", self.session, "#{pane_tty}"])
            .output()
            .unwrap();
        let tty = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let t0 = Instant::now();
        loop {
            let out = Command::new("stty")
                .args(["-a", "-F", &tty])
                .output()
                .unwrap();
            let modes = String::from_utf8_lossy(&out.stdout);
            if modes.split_whitespace().any(|m| m == "-echo") {
                return;
            }
            assert!(
                t0.elapsed() < patience(secs),
                "{tty} still echoes after {:?}: {modes}",
                patience(secs)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Type text literally (no key names).
    pub fn text(&self, s: &str) {
        let st = self
            .cmd()
            .args(["send-keys", "-l", "-t", self.session, s])
            .status()
            .unwrap();
        assert!(st.success());
    }

    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Everything the session printed, scrollback included, wrapped lines joined.
    pub fn history(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-J", "-S", "-", "-t", self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Wait for a line with `needle` followed by a digit (`EXIT=0`, not the `EXIT=$?` of
    /// the command line that prints it); the line from `needle` on.
    pub fn wait_for_line(&self, needle: &str, secs: u64) -> String {
        let t0 = Instant::now();
        loop {
            let h = self.history();
            let hit = h.lines().find_map(|l| {
                let at = l.find(needle)?;
                let rest = &l[at..];
                rest[needle.len()..]
                    .starts_with(|c: char| c.is_ascii_digit())
                    .then(|| rest.to_string())
            });
            if let Some(line) = hit {
                return line;
            }
            assert!(
                t0.elapsed() < patience(secs),
                "{needle:?} did not appear within {:?}; screen:\n{h}",
                patience(secs)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until the screen is no longer `old` (the program took the keys sent).
    pub fn wait_change(&self, old: &str, secs: u64) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.screen();
            if s != old {
                return s;
            }
            assert!(
                t0.elapsed() < patience(secs),
                "the screen did not change within {:?}:\n{s}",
                patience(secs)
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// The program the pane's shell runs (its first child).
    pub fn program_pid(&self) -> u32 {
        let out = self
            .cmd()
            .args(["display-message", "-p", "-t", self.session, "#{pane_pid}"])
            .output()
            .unwrap();
        let shell = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // /proc/PID/stat: "pid (comm) state ppid …"; the comm may hold spaces.
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|st| {
                        let rest = &st[st.rfind(')')? + 2..];
                        rest.split_whitespace().nth(1).map(|pp| pp == shell)
                    })
                    .unwrap_or(false)
            })
            .unwrap_or_else(|| panic!("no program under the pane's shell {shell}"))
    }

    /// Wait until `needle` is no longer on screen (a prompt answered and closed).
    pub fn wait_gone(&self, needle: &str, secs: u64) {
        self.wait_until(&format!("{needle:?} to leave the screen"), secs, |s| {
            !s.contains(needle)
        });
    }

    /// Wait until the screen satisfies `done` (`what` names it in the failure).
    pub fn wait_until(&self, what: &str, secs: u64, done: impl Fn(&str) -> bool) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.screen();
            if done(&s) {
                return s;
            }
            assert!(
                t0.elapsed() < patience(secs),
                "no {what} within {:?}; screen:\n{s}",
                patience(secs)
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Wait until `needle` is on screen.
    pub fn wait_for(&self, needle: &str, secs: u64) -> String {
        let t0 = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(needle) {
                return s;
            }
            assert!(
                t0.elapsed() < patience(secs),
                "{needle:?} did not appear within {:?}; screen:\n{s}",
                patience(secs)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// How long a wait may take: the test's figure is what an idle machine needs; CI runs
/// every test at once on two cores, where a console can take several times longer to
/// draw. A wait returns as soon as its screen appears, so only a failure waits longer.
fn patience(secs: u64) -> Duration {
    Duration::from_secs((secs * 3).max(30))
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}
