//! Helpers for the ceremony tests: a copy of the shipped ceremonies in a temp dir (with a
//! fast P-256-only variant of the demo), running it, and checking what it left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use officiant::hsm::{self, BackendUri, ObjectClass, UserType};
use officiant::keys::PublicKey;
use officiant::secret::Secret;

pub const DEMO: &str = "rehearsal-demo";

/// Labels the demo creates, and its output files (name → key label).
pub const KEYS: [&str; 3] = ["demo-ecdsa-p256", "demo-rsa-3072", "demo-imported-p384"];

pub fn outputs() -> Vec<(String, &'static str)> {
    KEYS.iter()
        .flat_map(|k| [(format!("{k}.pub.pem"), *k), (format!("{k}.pub.der"), *k)])
        .collect()
}

/// Every secret the rehearsal uses, for canaries.
pub fn rehearsal_secrets() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies/rehearsal-secrets");
    ["so.pin", "user-initial.pin", "user.pin", "demo-import.pass"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .trim_end()
                .to_string()
        })
        .collect()
}

pub struct Demo {
    /// Holds the copy: dropping it deletes the directory.
    _tmp: tempfile::TempDir,
    pub script: PathBuf,
    pub answers: PathBuf,
    pub token: PathBuf,
    pub out: PathBuf,
}

impl Demo {
    /// A copy of ceremonies/; `fast` swaps RSA-3072 for P-256 (debug-build RSA is slow).
    pub fn new(fast: bool) -> Demo {
        let tmp = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies");
        let dst = tmp.path().join("ceremonies");
        copy_dir(&src, &dst);
        let script = dst.join(format!("{DEMO}.toml"));
        if fast {
            let s = std::fs::read_to_string(&script).unwrap();
            assert!(s.contains("algorithm = \"rsa-3072\""));
            std::fs::write(
                &script,
                s.replace("algorithm = \"rsa-3072\"", "algorithm = \"ec-p256\""),
            )
            .unwrap();
        }
        Demo {
            answers: dst.join(format!("{DEMO}.answers.toml")),
            token: tmp.path().join("token"),
            out: tmp.path().join("out"),
            script,
            _tmp: tmp,
        }
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_officiant"));
        c.arg("run")
            .arg(&self.script)
            .arg("--answers")
            .arg(&self.answers)
            .arg("--backend")
            .arg(format!("sim:{}", self.token.display()))
            .arg("--out")
            .arg(&self.out)
            .env_remove("OFFICIANT_TEST_CRASH_AT");
        c
    }

    pub fn run(&self) -> Output {
        self.command().output().unwrap()
    }

    /// Check everything a completed run must leave: each key once on the token, each
    /// output file whole and equal to the token's public key, no temp files, a
    /// transcript that verifies.
    pub fn check_complete(&self, context: &str) {
        let user_pin = Secret::new(
            std::fs::read_to_string(
                self.script
                    .parent()
                    .unwrap()
                    .join("rehearsal-secrets/user.pin"),
            )
            .unwrap()
            .trim_end()
            .as_bytes()
            .to_vec(),
        );
        let mut t = hsm::open(&BackendUri::Sim(self.token.clone()), None).unwrap();
        t.login(UserType::User, &user_pin)
            .unwrap_or_else(|e| panic!("{context}: login with the changed PIN: {e}"));
        let objects = t.list_objects().unwrap();
        let mut count: BTreeMap<(String, String), usize> = BTreeMap::new();
        for o in &objects {
            *count
                .entry((o.label.clone(), o.class.to_string()))
                .or_default() += 1;
        }
        for k in KEYS {
            for class in [ObjectClass::PrivateKey, ObjectClass::PublicKey] {
                let n = count
                    .get(&(k.to_string(), class.to_string()))
                    .copied()
                    .unwrap_or(0);
                assert_eq!(
                    n, 1,
                    "{context}: {k} {class} appears {n} times: {objects:?}"
                );
            }
        }
        assert_eq!(objects.len(), 2 * KEYS.len(), "{context}: {objects:?}");
        for (file, key) in outputs() {
            let p = self.out.join(&file);
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{context}: {file}: {e}"));
            let got =
                PublicKey::from_bytes(&bytes).unwrap_or_else(|e| panic!("{context}: {file}: {e}"));
            assert_eq!(got, t.public_key(key).unwrap(), "{context}: {file}");
        }
        for e in std::fs::read_dir(&self.out).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with('.'),
                "{context}: temp file {name} left behind"
            );
        }
        officiant::ceremony::transcript::verify(&self.out.join("transcript.jsonl"))
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        assert!(self.out.join("transcript.md").is_file(), "{context}");
    }
}

/// Copy a directory tree. Secret files (under a `*-secrets` or `keys` directory) become
/// 0600 as an operator keeps them (git checks them out 0644, and a PIN file others can
/// read is warned about).
pub fn copy_dir(src: &Path, dst: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dst).unwrap();
    let secret_dir = dst
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with("-secrets") || n == "keys");
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
            if secret_dir {
                std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    }
}

/// All files under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                v.extend(files_under(&p));
            } else {
                v.push(p);
            }
        }
    }
    v
}
