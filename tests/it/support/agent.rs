//! SSH keys made by ssh-keygen and a real ssh-agent holding some of them, for the tests
//! of approvals and signed sign-offs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::{oracle, run_ok};

/// `ssh-keygen -t ed25519` keys named after their holders, in `dir`.
pub struct Keys {
    pub dir: PathBuf,
    pub keygen: PathBuf,
}

impl Keys {
    /// None only when ssh-keygen is missing and skipping is allowed.
    pub fn new(dir: &Path) -> Option<Keys> {
        Some(Keys {
            dir: dir.to_path_buf(),
            keygen: oracle("ssh-keygen")?,
        })
    }

    /// Make the key pair `who` (no passphrase) and return its private key's path.
    pub fn make(&self, who: &str) -> PathBuf {
        let p = self.dir.join(who);
        run_ok(
            Command::new(&self.keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-C", who, "-f"])
                .arg(&p),
        );
        p
    }

    /// The public key of `who`: `ssh-ed25519 AAAA…` without the comment.
    pub fn public(&self, who: &str) -> String {
        let k = std::fs::read_to_string(self.dir.join(format!("{who}.pub"))).unwrap();
        k.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }

    /// `ssh-keygen -Y sign -f WHO -n NAMESPACE < message`: the armored signature.
    pub fn sign(&self, who: &str, namespace: &str, message: &Path) -> String {
        run_ok(
            Command::new(&self.keygen)
                .args(["-Y", "sign", "-q", "-f"])
                .arg(self.dir.join(who))
                .args(["-n", namespace])
                .stdin(std::fs::File::open(message).unwrap()),
        )
    }

    /// `ssh-keygen -Y verify`: whether `principal` signed `message` in `namespace`
    /// according to `allowed`; the tool's output either way.
    pub fn verify(
        &self,
        allowed: &Path,
        principal: &str,
        namespace: &str,
        sig: &Path,
        message: &[u8],
    ) -> (bool, String) {
        use std::io::Write;
        let mut c = Command::new(&self.keygen)
            .args(["-Y", "verify", "-f"])
            .arg(allowed)
            .args(["-I", principal, "-n", namespace, "-s"])
            .arg(sig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(message).unwrap();
        let o = c.wait_with_output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.success(), text)
    }
}

/// A private ssh-agent (`ssh-agent -D -a SOCK`), killed when dropped.
pub struct Agent {
    pub sock: PathBuf,
    child: Child,
}

impl Agent {
    /// None only when ssh-agent or ssh-add is missing and skipping is allowed.
    pub fn start(dir: &Path) -> Option<Agent> {
        let agent = oracle("ssh-agent")?;
        let add = oracle("ssh-add")?;
        let sock = dir.join("agent.sock");
        let child = Command::new(agent)
            .args(["-D", "-a"])
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Killed when dropped, from here on.
        let agent = Agent { sock, child };
        // The socket exists once bound, which may be before the agent listens: wait until
        // ssh-add reaches it (exit 1: no identities yet; 2: no agent there).
        let mut ready = false;
        for _ in 0..500 {
            let code = Command::new(&add)
                .env("SSH_AUTH_SOCK", &agent.sock)
                .arg("-l")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .ok()
                .and_then(|s| s.code());
            if matches!(code, Some(0 | 1)) {
                ready = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            ready,
            "ssh-agent did not answer on {}",
            agent.sock.display()
        );
        Some(agent)
    }

    /// `ssh-add KEY`.
    pub fn add(&self, key: &Path) {
        let add = oracle("ssh-add").unwrap();
        run_ok(Command::new(add).env("SSH_AUTH_SOCK", &self.sock).arg(key));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
