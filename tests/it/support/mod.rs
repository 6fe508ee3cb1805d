//! Shared helpers for the integration tests: finding the vendor tools that judge them
//! ([`oracles`]: a missing one fails the test unless `OFFICIANT_ALLOW_SKIP=1`), private
//! SoftHSM token directories, running the officiant binary; and one submodule per
//! family of tests (demo, replay, certs, sign, rehearsal, tmux, agent).

pub mod agent;
pub mod certs;
pub mod demo;
pub mod good_script;
pub mod oracles;
pub mod rehearsal;
pub mod replay;
pub mod sign;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

pub use oracles::{oracle, required_file};

pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The officiant binary built for this test run.
/// A label for a test's token call (the tests name theirs plainly).
pub fn label(text: &str) -> officiant::hsm::Label {
    text.parse().expect("a test's label is a label")
}

/// An object id of these bytes, for a test's token call.
pub fn object_id(bytes: &[u8]) -> officiant::hsm::ObjectId {
    officiant::hsm::ObjectId::new(bytes.to_vec()).expect("a test's id is 1 to 32 bytes")
}

pub fn officiant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_officiant"))
}

/// Run a command; return its output. Panics only if it cannot start (naming the package
/// to install when the program is missing).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            panic!(
                "{}",
                oracles::missing_message(&cmd.get_program().to_string_lossy())
            );
        }
        panic!("cannot start {cmd:?}: {e}")
    })
}

/// Run and require success; returns stdout as text.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One in-process SoftHSM user at a time (see [`SoftHsm::in_process`]); the holder may
/// also set other variables the library reads, such as `OFFICIANT_ALLOW_PIN_VALUE`.
pub static SOFTHSM_IN_PROCESS: Mutex<()> = Mutex::new(());

/// A private SoftHSM token directory: sets nothing globally; pass `env()` to commands.
pub struct SoftHsm {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub module: PathBuf,
}

impl SoftHsm {
    /// None (skip) when SoftHSM is not installed and `OFFICIANT_ALLOW_SKIP=1`; without
    /// it, a missing SoftHSM fails the test.
    #[track_caller]
    pub fn new() -> Option<Self> {
        let module = required_file(SOFTHSM_MODULE)?;
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("token dir");
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("softhsm2.conf");
        Some(SoftHsm { dir, conf, module })
    }

    /// Point this process's SoftHSM at this token directory, for a test that loads the
    /// module in-process (`hsm::pkcs11::open`). SoftHSM reads SOFTHSM2_CONF from the
    /// process environment at C_Initialize, and every test shares this process: hold the
    /// guard until the tokens are dropped (which finalizes the module). Child commands
    /// get the variable with [`SoftHsm::env`] instead.
    pub fn in_process(&self) -> MutexGuard<'static, ()> {
        let guard = SOFTHSM_IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        std::env::set_var("SOFTHSM2_CONF", &self.conf);
        guard
    }

    /// Apply SOFTHSM2_CONF to a command.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("SOFTHSM2_CONF", &self.conf)
    }

    pub fn uri(&self) -> String {
        format!("pkcs11:?module-path={}", self.module.display())
    }
}

/// `officiant objects --json` output as "class label fingerprint" lines, sorted.
pub fn object_lines(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut list: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            format!(
                "{} {} {}",
                o["class"].as_str().unwrap(),
                o["label"].as_str().unwrap(),
                o["public_key_sha256"].as_str().unwrap_or("")
            )
        })
        .collect();
    list.sort();
    list
}

/// Split `pkcs11-tool --list-objects` output into one block per object (a block starts
/// at an unindented line such as "Private Key Object; EC").
pub fn pkcs11_tool_blocks(list: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in list.lines() {
        let starts = !line.starts_with(char::is_whitespace) && line.contains("Object");
        match blocks.last_mut() {
            Some(b) if !starts => {
                b.push_str(line);
                b.push('\n');
            }
            _ if starts => blocks.push(format!("{line}\n")),
            _ => {}
        }
    }
    blocks
}

/// The block of the object of `kind` ("Private Key Object", "Certificate Object", …)
/// labelled `label`.
pub fn pkcs11_tool_object(list: &str, kind: &str, label: &str) -> Option<String> {
    pkcs11_tool_blocks(list)
        .into_iter()
        .find(|b| b.starts_with(kind) && b.contains(&format!("label:      {label}\n")))
}

/// A private key fixture made by tests/fixtures/keys/make.sh.
pub fn key_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name)
}

/// The passphrase of the encrypted key fixtures.
pub const KEY_FIXTURE_PASSPHRASE: &str = "fixture-passphrase-5531";

/// (key file, its public half, encrypted?)
pub const KEY_FIXTURES: &[(&str, &str, bool)] = &[
    ("p256.pk8.pem", "p256.pub.pem", false),
    ("p256.pk8.der", "p256.pub.pem", false),
    ("p256.sec1-params.pem", "p256.pub.pem", false),
    ("p256.sec1.pem", "p256.pub.pem", false),
    ("p256.sec1.der", "p256.pub.pem", false),
    ("p384.pk8-aes256-sha1.pem", "p384.pub.pem", true),
    ("p521.pk8-des3.pem", "p521.pub.pem", true),
    ("rsa2048.pkcs1.pem", "rsa2048.pub.pem", false),
    ("rsa2048.pkcs1.der", "rsa2048.pub.pem", false),
    ("rsa2048.pk8-des3.pem", "rsa2048.pub.pem", true),
    ("rsa2048.pk8-des3.der", "rsa2048.pub.pem", true),
    ("rsa2048.pk8-aes256.der", "rsa2048.pub.pem", true),
    ("rsa3072.pk8.pem", "rsa3072.pub.pem", false),
];
