//! Officiant's reading of OpenSSH allowed signers files and SSHSIG signatures, judged by
//! `ssh-keygen -Y verify`: for keys and signatures made by ssh-keygen, every
//! (signature, principal, namespace) verdict must be ssh-keygen's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{oracle, run, run_ok};
use officiant::approvals::signers::{self, AllowedSigners};
use officiant::approvals::time;
use ssh_key::SshSig;

struct Keys {
    dir: tempfile::TempDir,
    keygen: PathBuf,
}

impl Keys {
    fn new() -> Option<Keys> {
        Some(Keys {
            dir: tempfile::tempdir().unwrap(),
            keygen: oracle("ssh-keygen")?,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A key pair made by ssh-keygen: `name` and `name.pub`.
    fn make(&self, name: &str, kind: &[&str]) -> String {
        run_ok(
            Command::new(&self.keygen)
                .args(["-q", "-N", "", "-C", name, "-f"])
                .arg(self.path(name))
                .args(["-t"])
                .args(kind),
        );
        let pubkey = std::fs::read_to_string(self.path(&format!("{name}.pub"))).unwrap();
        // "type base64" without the comment.
        pubkey
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `ssh-keygen -Y sign -f KEY -n NAMESPACE` over `message`: the signature file.
    fn sign(&self, key: &str, namespace: &str, message: &[u8], tag: &str) -> PathBuf {
        let m = self.path(&format!("{tag}.msg"));
        std::fs::write(&m, message).unwrap();
        run_ok(
            Command::new(&self.keygen)
                .args(["-Y", "sign", "-f"])
                .arg(self.path(key))
                .args(["-n", namespace])
                .arg(&m),
        );
        self.path(&format!("{tag}.msg.sig"))
    }

    /// `ssh-keygen -Y verify`'s verdict at `verify_time` (YYYYMMDDHHMMSSZ).
    fn verdict(
        &self,
        signers: &Path,
        principal: &str,
        namespace: &str,
        sig: &Path,
        message: &[u8],
        verify_time: &str,
    ) -> bool {
        use std::io::Write;
        let mut child = Command::new(&self.keygen)
            .args(["-Y", "verify", "-f"])
            .arg(signers)
            .args(["-I", principal, "-n", namespace, "-s"])
            .arg(sig)
            .args(["-O", &format!("verify-time={verify_time}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(message).unwrap();
        child.wait().unwrap().success()
    }
}

fn ours(
    signers: &AllowedSigners,
    principal: &str,
    namespace: &str,
    sig: &Path,
    message: &[u8],
    time: u64,
) -> bool {
    let sig = SshSig::from_pem(std::fs::read(sig).unwrap()).unwrap();
    signers::verify(
        signers,
        &[principal.to_string()],
        namespace,
        message,
        &sig,
        time,
    )
    .is_ok()
}

#[test]
fn verdicts_match_ssh_keygen() {
    let Some(k) = Keys::new() else { return };
    let alice = k.make("alice", &["ed25519"]);
    let bob = k.make("bob", &["ecdsa", "-b", "256"]);
    let carol = k.make("carol", &["ecdsa", "-b", "384"]);
    let dave = k.make("dave", &["rsa", "-b", "2048"]);
    let erin = k.make("erin", &["ecdsa", "-b", "521"]);
    let mallory = k.make("mallory", &["ed25519"]);

    // Principals lists, patterns, negation, quoting, options in any case, windows.
    let text = format!(
        "# approvers\n\
         \n\
         alice,alice2 {alice}\n\
         \"bob\" namespaces=\"officiant-*\" {bob} bob's laptop\n\
         *@example.com,!mallory@example.com {carol}\n\
         dave VALID-AFTER=\"20200101Z\",valid-before=\"20300101Z\" {dave}\n\
         erin Namespaces=\"file,officiant-signoff\" {erin}\n\
         frank valid-before=\"202001011200Z\" {alice}\n\
         gr?ce valid-after=\"20990101000000Z\" {bob}\n\
         \t  carol {carol}\n"
    );
    let path = k.path("allowed_signers");
    std::fs::write(&path, &text).unwrap();
    let parsed = AllowedSigners::parse("allowed_signers", &text).unwrap();
    assert_eq!(parsed.entries.len(), 8);

    let message = b"{\"a request\":1}\n".to_vec();
    let now = "20260101000000Z";
    let now_secs = time::parse("2026-01-01T00:00:00Z").unwrap();
    let principals = [
        "alice",
        "alice2",
        "bob",
        "dave",
        "erin",
        "frank",
        "grace",
        "carol",
        "x@example.com",
        "mallory@example.com",
        "nobody",
    ];
    let mut accepted = 0;
    let mut compared = 0;
    for key in ["alice", "bob", "carol", "dave", "erin", "mallory"] {
        for ns in ["officiant-approval", "file"] {
            let sig = k.sign(key, ns, &message, &format!("{key}-{ns}"));
            for p in principals {
                for asked in ["officiant-approval", "file", "officiant-signoff"] {
                    let theirs = k.verdict(&path, p, asked, &sig, &message, now);
                    let mine = ours(&parsed, p, asked, &sig, &message, now_secs);
                    assert_eq!(
                        mine, theirs,
                        "signature by {key} in {ns}, verified as {p} in {asked}"
                    );
                    compared += 1;
                    accepted += usize::from(theirs);
                }
            }
            // Over other bytes: neither accepts.
            let other = b"{\"a request\":2}\n";
            let p = key.to_string();
            assert!(!k.verdict(&path, &p, ns, &sig, other, now));
            assert!(!ours(&parsed, &p, ns, &sig, other, now_secs));
        }
    }
    // The table is not trivially all-no (or all-yes).
    assert!(
        accepted >= 8 && accepted < compared,
        "{accepted} of {compared}"
    );
    let _ = mallory;
}

#[test]
fn time_windows_match_ssh_keygen() {
    let Some(k) = Keys::new() else { return };
    let alice = k.make("alice", &["ed25519"]);
    let text = format!("alice valid-after=\"20260101Z\",valid-before=\"202601021230Z\" {alice}\n");
    let path = k.path("allowed_signers");
    std::fs::write(&path, &text).unwrap();
    let parsed = AllowedSigners::parse("s", &text).unwrap();
    let msg = b"m".to_vec();
    let sig = k.sign("alice", "officiant-approval", &msg, "m");
    for (t, rfc) in [
        ("20251231235959Z", "2025-12-31T23:59:59Z"),
        ("20260101000000Z", "2026-01-01T00:00:00Z"),
        ("20260102123000Z", "2026-01-02T12:30:00Z"),
        ("20260102123001Z", "2026-01-02T12:30:01Z"),
    ] {
        let secs = time::parse(rfc).unwrap();
        assert_eq!(
            ours(&parsed, "alice", "officiant-approval", &sig, &msg, secs),
            k.verdict(&path, "alice", "officiant-approval", &sig, &msg, t),
            "at {rfc}"
        );
    }
}

#[test]
fn a_stored_policy_file_reads_the_same_in_ssh_keygen() {
    // What the policy stores (one principal per line, options rewritten) is itself an
    // allowed signers file that ssh-keygen reads to the same verdicts.
    let Some(k) = Keys::new() else { return };
    let alice = k.make("alice", &["ed25519"]);
    let bob = k.make("bob", &["ecdsa", "-b", "256"]);
    let text = format!(
        "alice,bob namespaces=\"officiant-approval\",valid-before=\"20300101Z\" {alice}\n*@example.com {bob}\n"
    );
    let parsed = AllowedSigners::parse("s", &text).unwrap();
    let rendered: String = parsed
        .entries
        .iter()
        .map(|e| {
            e.render_for(if e.line == 1 {
                "alice"
            } else {
                "bob@example.com"
            }) + "\n"
        })
        .collect();
    let path = k.path("rendered");
    std::fs::write(&path, &rendered).unwrap();
    let reparsed = AllowedSigners::parse("rendered", &rendered).unwrap();
    let msg = b"x".to_vec();
    let now = "20260101000000Z";
    let secs = time::parse("2026-01-01T00:00:00Z").unwrap();
    for (key, p) in [
        ("alice", "alice"),
        ("bob", "bob@example.com"),
        ("bob", "alice"),
    ] {
        let sig = k.sign(key, "officiant-approval", &msg, key);
        let theirs = k.verdict(&path, p, "officiant-approval", &sig, &msg, now);
        assert_eq!(
            ours(&reparsed, p, "officiant-approval", &sig, &msg, secs),
            theirs
        );
        assert_eq!(theirs, key != "bob" || p != "alice", "{key} as {p}");
    }
    // ssh-keygen reads the file without complaint.
    let out = run(Command::new(&k.keygen)
        .args(["-Y", "find-principals", "-f"])
        .arg(&path)
        .args(["-s"])
        .arg(k.path("alice.msg.sig")));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "alice");
}

/// An approval by a FIDO key (`sk-ssh-ed25519@openssh.com`, what a YubiKey holds), made
/// here in software to the byte layout of PROTOCOL.u2f, is accepted by ssh-keygen and by
/// Officiant alike; altered, by neither.
#[test]
fn sk_ed25519_approvals_match_ssh_keygen() {
    use signature::Signer;
    use ssh_key::private::Ed25519Keypair;
    use ssh_key::public::{KeyData, SkEd25519};
    use ssh_key::{Algorithm, HashAlg, PublicKey, Signature};

    let Some(k) = Keys::new() else { return };
    let pair = Ed25519Keypair::from_seed(&[42u8; 32]);
    let key = KeyData::SkEd25519(SkEd25519::new(pair.public, "ssh:"));
    let line = format!(
        "alice {}\n",
        PublicKey::from(key.clone()).to_openssh().unwrap()
    );
    let path = k.path("allowed_signers");
    std::fs::write(&path, &line).unwrap();
    let parsed = AllowedSigners::parse("s", &line).unwrap();

    let msg = b"{\"request\":\"sk\"}\n".to_vec();
    let ns = "officiant-approval";
    let make = |flags: u8, tamper: bool| -> PathBuf {
        use sha2::Digest;
        let data = SshSig::signed_data(ns, HashAlg::Sha512, &msg).unwrap();
        let counter = 7u32.to_be_bytes();
        let mut signed = sha2::Sha256::digest(b"ssh:").to_vec();
        signed.push(flags);
        signed.extend(counter);
        signed.extend(sha2::Sha256::digest(&data));
        let mut raw = pair.try_sign(&signed).unwrap().as_bytes().to_vec();
        if tamper {
            raw[5] ^= 1;
        }
        raw.push(flags);
        raw.extend(counter);
        let sig = Signature::new(Algorithm::SkEd25519, raw).unwrap();
        let s = SshSig::new(key.clone(), ns, HashAlg::Sha512, sig).unwrap();
        let p = k.path(&format!("sk-{flags}-{tamper}.sig"));
        std::fs::write(&p, s.to_pem(ssh_key::LineEnding::LF).unwrap()).unwrap();
        p
    };
    let now = "20260101000000Z";
    let secs = time::parse("2026-01-01T00:00:00Z").unwrap();
    for (flags, tamper, expect) in [(1u8, false, true), (5, false, true), (1, true, false)] {
        let sig = make(flags, tamper);
        let theirs = k.verdict(&path, "alice", ns, &sig, &msg, now);
        assert_eq!(
            theirs, expect,
            "ssh-keygen, flags {flags}, tampered {tamper}"
        );
        assert_eq!(ours(&parsed, "alice", ns, &sig, &msg, secs), theirs);
    }
}
