//! Helpers for the ceremony tests: a copy of the shipped ceremonies in a temp dir (with a
//! fast P-256-only variant of the demo), running it, and checking what it left.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use officiant::hsm::{self, BackendUri, ObjectClass, UserType};

use crate::support::{oracle, pkcs11_tool_blocks, run, run_ok, SoftHsm};
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
        self.command_on(&format!("sim:{}", self.token.display()))
    }

    /// `officiant run` of this copy on `backend` (SoftHSM: add its `env` to the command).
    pub fn command_on(&self, backend: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_officiant"));
        c.arg("run")
            .arg(&self.script)
            .arg("--answers")
            .arg(&self.answers)
            .arg("--backend")
            .arg(backend)
            .arg("--out")
            .arg(&self.out)
            .env_remove("OFFICIANT_TEST_CRASH_AT")
            .env_remove("OFFICIANT_TEST_FAIL_WRITE_AT");
        c
    }

    /// A secret of the rehearsal, as the answers file gives it (`user`, `so`, …).
    pub fn secret(&self, file: &str) -> String {
        std::fs::read_to_string(
            self.script
                .parent()
                .unwrap()
                .join("rehearsal-secrets")
                .join(file),
        )
        .unwrap()
        .trim_end()
        .to_string()
    }

    /// The journal's records, one JSON value a line (empty when there is none).
    pub fn journal(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.out.join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The journal holds a `record` of kind `kind` for step `step`.
    pub fn journal_has(&self, kind: &str, step: usize) -> bool {
        self.journal()
            .iter()
            .any(|r| r["record"] == kind && r["step"] == step)
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

/// The demo in a fresh copy, on the rehearsal token or a private SoftHSM.
pub struct DemoOn {
    pub d: Demo,
    pub hsm: Option<SoftHsm>,
}

impl DemoOn {
    /// None: SoftHSM asked for and missing (skip allowed).
    pub fn new(softhsm: bool) -> Option<DemoOn> {
        let hsm = if softhsm { Some(SoftHsm::new()?) } else { None };
        Some(DemoOn {
            d: Demo::new(true),
            hsm,
        })
    }

    pub fn command(&self) -> Command {
        match &self.hsm {
            Some(h) => {
                let mut c = self.d.command_on(&h.uri());
                h.env(&mut c);
                c
            }
            None => self.d.command(),
        }
    }

    pub fn crash_at(&self, k: usize) -> Output {
        run(self.command().env("OFFICIANT_TEST_CRASH_AT", k.to_string()))
    }

    pub fn pkcs11_tool(&self) -> Option<Command> {
        let h = self.hsm.as_ref()?;
        let mut c = Command::new(oracle("pkcs11-tool")?);
        h.env(&mut c).arg("--module").arg(&h.module).args([
            "--token-label",
            "officiant-demo",
            "--login",
            "--pin",
            &self.d.secret("user.pin"),
        ]);
        Some(c)
    }

    /// A completed run: each key once (pkcs11-tool on SoftHSM), a transcript that verifies.
    pub fn check_complete(&self, context: &str) {
        let Some(mut c) = self.pkcs11_tool() else {
            self.d.check_complete(context);
            return;
        };
        let list = run_ok(c.arg("--list-objects"));
        for k in KEYS {
            for kind in ["Private Key Object", "Public Key Object"] {
                let n = pkcs11_tool_blocks(&list)
                    .iter()
                    .filter(|b| b.starts_with(kind) && b.contains(&format!("label:      {k}\n")))
                    .count();
                assert_eq!(n, 1, "{context}: {k} {kind} appears {n} times:\n{list}");
            }
        }
        officiant::ceremony::transcript::verify(&self.d.out.join("transcript.jsonl"))
            .unwrap_or_else(|e| panic!("{context}: {e}"));
    }
}
