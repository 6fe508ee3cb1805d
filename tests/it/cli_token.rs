//! The one-step token commands on the rehearsal token: wrong PIN (retries left, then the
//! lock), the keys they make read by stock openssl, their transcript verifies, and no
//! PIN or passphrase in anything they print or write.

use std::path::Path;
use std::process::{Command, Output};

use crate::support;

const SO: &str = "canary-so-8086";
const USER: &str = "canary-user-6502";
const NEW_USER: &str = "canary-newuser-z80";
const WRONG: &str = "canary-wrong-6809";

struct Env {
    dir: tempfile::TempDir,
    outputs: Vec<Output>,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
            outputs: vec![],
        }
    }
    fn backend(&self) -> String {
        format!("sim:{}", self.dir.path().join("tok").display())
    }
    fn transcript(&self) -> std::path::PathBuf {
        self.dir.path().join("cli-transcript.jsonl")
    }
    /// Run `officiant ARGS --backend … --transcript …` with the canary PINs in env vars.
    fn run(&mut self, args: &[&str]) -> Output {
        let out = support::officiant()
            .args(args)
            .arg("--backend")
            .arg(self.backend())
            .arg("--transcript")
            .arg(self.transcript())
            .current_dir(self.dir.path())
            .env("T_SO", SO)
            .env("T_USER", USER)
            .env("T_NEW", NEW_USER)
            .env("T_WRONG", WRONG)
            .output()
            .unwrap();
        self.outputs.push(out.clone());
        out
    }
    fn ok(&mut self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// A token labelled "cli" with the SO and user PINs of the environment.
    fn init_token(&mut self) {
        self.ok(&[
            "init-token",
            "--label",
            "cli",
            "--so-pin-source",
            "env:T_SO",
            "--pin-source",
            "env:T_USER",
        ]);
    }
    fn fails(&mut self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(err.lines().count(), 1, "{err}");
        err.trim_end().to_string()
    }
}

#[test]
fn wrong_pin_shows_retries_then_locks() {
    let mut e = Env::new();
    e.init_token();
    let gen = |pin: &str| -> Vec<String> {
        [
            "generate-key",
            "--label",
            "k",
            "--algorithm",
            "ec-p256",
            "--pin-source",
            pin,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let g = gen("env:T_WRONG");
    let g: Vec<&str> = g.iter().map(String::as_str).collect();
    assert_eq!(
        e.fails(&g),
        "officiant: wrong user PIN (2 retries left before the PIN locks)"
    );
    assert_eq!(
        e.fails(&g),
        "officiant: wrong user PIN (1 retry left before the PIN locks)"
    );
    assert_eq!(
        e.fails(&g),
        "officiant: wrong user PIN (no retries left: the PIN is now locked)"
    );
    let good = gen("env:T_USER");
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let err = e.fails(&good);
    assert!(err.starts_with("officiant: user PIN is locked"), "{err}");
    canary(&e);
}

#[test]
fn one_step_commands_make_keys_openssl_reads() {
    let mut e = Env::new();
    e.init_token();
    e.ok(&[
        "change-pin",
        "--old-pin-source",
        "env:T_USER",
        "--new-pin-source",
        "env:T_NEW",
    ]);
    let out = e.ok(&[
        "generate-key",
        "--label",
        "k1",
        "--id",
        "0a",
        "--algorithm",
        "ec-p384",
        "--pin-source",
        "env:T_NEW",
    ]);
    assert!(out.contains("key pair k1 id 0a EC P-384"), "{out}");
    // The same label again is refused by the token, before anything is written.
    let err = e.fails(&[
        "generate-key",
        "--label",
        "k1",
        "--algorithm",
        "ec-p256",
        "--pin-source",
        "env:T_NEW",
    ]);
    assert!(err.contains("k1"), "{err}");

    let key = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ceremonies/rehearsal-secrets/demo-import-p384.pk8.pem");
    let pass =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies/rehearsal-secrets/demo-import.pass");
    let pass_src = format!("file:{}", pass.display());
    e.ok(&[
        "import-key",
        "--label",
        "imp",
        "--key-file",
        key.to_str().unwrap(),
        "--passphrase-source",
        &pass_src,
        "--pin-source",
        "env:T_NEW",
    ]);

    let json = e.ok(&["objects", "--json", "--pin-source", "env:T_NEW"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let labels: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels.iter().filter(|l| **l == "k1").count(), 2, "{json}");
    assert_eq!(labels.iter().filter(|l| **l == "imp").count(), 2, "{json}");

    let pem = e.dir.path().join("k1.pem");
    let der = e.dir.path().join("imp.der");
    e.ok(&["export-pubkey", "--key", "k1", "-o", pem.to_str().unwrap()]);
    e.ok(&[
        "export-pubkey",
        "--key",
        "imp",
        "--der",
        "-o",
        der.to_str().unwrap(),
    ]);
    // Never over an existing file.
    let err = e.fails(&["export-pubkey", "--key", "k1", "-o", pem.to_str().unwrap()]);
    assert!(err.contains("refusing to overwrite"), "{err}");
    if let Some(openssl) = support::oracle("openssl") {
        support::run_ok(
            Command::new(&openssl)
                .args(["pkey", "-pubin", "-noout", "-in"])
                .arg(&pem),
        );
        // The imported key's public half is the one openssl derives from the file.
        let want = support::run(
            Command::new(&openssl)
                .args(["pkey", "-pubout", "-outform", "DER", "-passin"])
                .arg(&pass_src)
                .arg("-in")
                .arg(&key),
        )
        .stdout;
        assert!(!want.is_empty());
        assert_eq!(std::fs::read(&der).unwrap(), want);
    }

    // A certificate and a data object, from files.
    if let Some(openssl) = support::oracle("openssl") {
        let cert = e.dir.path().join("c.pem");
        let ckey = e.dir.path().join("c.key");
        support::run_ok(
            Command::new(&openssl)
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-subj",
                    "/CN=officiant test",
                    "-days",
                    "1",
                    "-keyout",
                ])
                .arg(&ckey)
                .arg("-out")
                .arg(&cert),
        );
        let out = e.ok(&[
            "write-object",
            "--label",
            "c1",
            "--type",
            "cert",
            "--file",
            cert.to_str().unwrap(),
            "--pin-source",
            "env:T_NEW",
        ]);
        assert!(
            out.contains("certificate c1") && out.contains("EC P-256"),
            "{out}"
        );
        let data = e.dir.path().join("d.bin");
        std::fs::write(&data, b"fuse table").unwrap();
        e.ok(&[
            "write-object",
            "--label",
            "d1",
            "--type",
            "data",
            "--file",
            data.to_str().unwrap(),
            "--pin-source",
            "env:T_NEW",
        ]);
        let err = e.fails(&[
            "write-object",
            "--label",
            "d1",
            "--type",
            "data",
            "--file",
            data.to_str().unwrap(),
            "--pin-source",
            "env:T_NEW",
        ]);
        assert!(err.contains("d1"), "{err}");
        let json = e.ok(&["objects", "--json", "--pin-source", "env:T_NEW"]);
        assert!(
            json.contains("\"certificate\"") && json.contains("\"data\""),
            "{json}"
        );
    }

    let out = e.ok(&[
        "delete-object",
        "--label",
        "k1",
        "--pin-source",
        "env:T_NEW",
    ]);
    assert!(out.contains("deleted 2 object(s)"), "{out}");
    let err = e.fails(&[
        "delete-object",
        "--label",
        "k1",
        "--pin-source",
        "env:T_NEW",
    ]);
    assert!(err.contains("no object labelled \"k1\""), "{err}");

    // The last command failed, so its session closed "stopped": verify says so and
    // accepts it only when told to (issue 11, item 6).
    let r = support::run(
        support::officiant()
            .args(["transcript", "verify"])
            .arg(e.transcript()),
    );
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("status stopped"));
    let v = support::run_ok(
        support::officiant()
            .args(["transcript", "verify", "--allow-incomplete"])
            .arg(e.transcript()),
    );
    assert!(v.contains("OK"), "{v}");
    assert!(v.contains("status: stopped"), "{v}");
    canary(&e);
}

/// The one-step commands read labels, ids and object types as a ceremony's script
/// does (`hsm::names`): a label that would read as another, an empty one, an id that is
/// not hex, a type that is none: one line naming the flag, and nothing on the token.
#[test]
fn names_are_read_as_a_script_reads_them() {
    let mut e = Env::new();
    e.init_token();
    let generate = |label: &str, id: &str| {
        [
            "generate-key",
            "--label",
            label,
            "--id",
            id,
            "--algorithm",
            "ec-p256",
            "--pin-source",
            "env:T_USER",
        ]
        .map(str::to_string)
    };
    let cases = [
        (
            generate("fw\u{202E}gpj.exe", "01"),
            "officiant: --label: has the invisible character U+202E (bidi control or zero-width): a label must read as what it is",
        ),
        (
            generate("", "01"),
            "officiant: --label: must be 1 to 128 printable characters",
        ),
        (
            generate("k", "0x01"),
            "officiant: --id: \"0x01\" is not 1 to 32 bytes of hex",
        ),
    ];
    for (a, want) in &cases {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        assert_eq!(e.fails(&a), *want);
    }
    let err = e.fails(&["delete-object", "--label", "k", "--type", "key"]);
    assert_eq!(
        err,
        "officiant: --type: \"key\" is not private, public, cert or data"
    );
    let json = e.ok(&["objects", "--json", "--pin-source", "env:T_USER"]);
    let objects: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(objects.as_array().map(Vec::len), Some(0), "{json}");
    canary(&e);
}

/// No PIN the tests used appears in anything printed or in any file left.
fn canary(e: &Env) {
    let mut hay: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, o) in e.outputs.iter().enumerate() {
        hay.push((format!("stdout {i}"), o.stdout.clone()));
        hay.push((format!("stderr {i}"), o.stderr.clone()));
    }
    let mut stack = vec![e.dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for f in std::fs::read_dir(&d).unwrap().flatten() {
            let p = f.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                hay.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let pass = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies/rehearsal-secrets/demo-import.pass"),
    )
    .unwrap();
    for secret in [SO, USER, NEW_USER, WRONG, pass.trim_end()] {
        for (name, bytes) in &hay {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "secret found in {name}"
            );
        }
    }
}
