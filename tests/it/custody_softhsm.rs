//! Key custody on SoftHSMv2, end to end through the command line, judged by pkcs11-tool
//! and OpenSSL: a wrap key split 3-of-5, two exportable keys backed up from one token
//! and restored onto a second from several choices of 3 shares; the restored keys sign
//! and OpenSSL verifies with the original public keys; too few, corrupted and foreign
//! shares are refused with nothing created; the wrap key is gone afterwards; no share
//! and no wrap-key byte reaches stdout, stderr, the transcript or the backup.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{oracle, pkcs11_tool_blocks, pkcs11_tool_object, run, run_ok, SoftHsm};

const SO: &str = "so-pin-0000";
const USER: &str = "user-pin-1234";

struct Ctx {
    hsm: SoftHsm,
    work: tempfile::TempDir,
}

impl Ctx {
    fn new() -> Ctx {
        let hsm = SoftHsm::new().expect("SoftHSM is the judge here: install softhsm2");
        Ctx {
            hsm,
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn backend(&self, token: &str) -> String {
        format!(
            "pkcs11:token={token}?module-path={}",
            self.hsm.module.display()
        )
    }

    fn transcript(&self) -> PathBuf {
        self.path("transcript.jsonl")
    }

    fn officiant(&self, args: &[&str]) -> Output {
        let mut c = support::officiant();
        self.hsm.env(&mut c);
        c.env("SO_PIN", SO)
            .env("USER_PIN", USER)
            .current_dir(self.work.path())
            .args(args)
            .arg("--transcript")
            .arg(self.transcript());
        run(&mut c)
    }

    /// Run officiant, require success, return stdout; keep every output for the canary.
    fn ok(&self, log: &mut Vec<u8>, args: &[&str]) -> String {
        let out = self.officiant(args);
        log.extend(&out.stdout);
        log.extend(&out.stderr);
        assert!(
            out.status.success(),
            "officiant {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run officiant, require failure, return its one-line error.
    fn fails(&self, log: &mut Vec<u8>, args: &[&str]) -> String {
        let out = self.officiant(args);
        log.extend(&out.stdout);
        log.extend(&out.stderr);
        assert!(!out.status.success(), "officiant {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn tool(&self, name: &str) -> Command {
        let path = oracle(name).unwrap_or_else(|| panic!("{name} is the judge here: install it"));
        let mut c = Command::new(path);
        self.hsm.env(&mut c);
        c
    }

    fn list(&self, token: &str) -> String {
        let mut c = self.tool("pkcs11-tool");
        c.arg("--module")
            .arg(&self.hsm.module)
            .args(["--token-label", token, "--login", "--pin", USER])
            .arg("--list-objects");
        run_ok(&mut c)
    }
}

/// What someone at the token without any PIN gets from the wrap key (a public object:
/// SoftHSM's SO can make no private ones) and a backup file: C_UnwrapKey in a public
/// session into a public session key they could then sign with. `Err`: the token's
/// refusal (its CKR_ name).
fn pinless_unwrap(ctx: &Ctx, token: &str, wrap_label: &str, blob: &[u8]) -> Result<(), String> {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, KeyType, ObjectClass};
    let _guard = ctx.hsm.in_process();
    let p = Pkcs11::new(&ctx.hsm.module).unwrap();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| p.get_token_info(*s).unwrap().label() == token)
        .unwrap();
    let s = p.open_ro_session(slot).unwrap();
    let wk = s
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(wrap_label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(wk.len(), 1, "the wrap key is visible without a PIN");
    let template = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::Token(false),
        Attribute::Private(false),
        Attribute::Sign(true),
    ];
    let r = s
        .unwrap_key(&Mechanism::AesKeyWrapPad, wk[0], blob, &template)
        .map(|_| ())
        .map_err(|e| format!("{e:?}"));
    drop(s);
    p.finalize().unwrap();
    r
}

fn share_path(dir: &Path, label: &str, i: u8, n: u8) -> PathBuf {
    dir.join(format!("{label}.share-{i}-of-{n}.txt"))
}

fn share_arg(p: &Path) -> String {
    format!("file:{}", p.display())
}

/// The wrap key as the shares hold it, rebuilt by rusty_secrets (Yubico's crate).
fn wrap_key_from_files(files: &[PathBuf]) -> Vec<u8> {
    let texts: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap().trim().to_string())
        .collect();
    let secret = rusty_secrets::recover_secret(texts).unwrap();
    secret[20..].to_vec()
}

fn openssl_kcv(ctx: &Ctx, key: &[u8]) -> String {
    let zero = ctx.path("zero.bin");
    std::fs::write(&zero, [0u8; 16]).unwrap();
    let mut c = ctx.tool("openssl");
    c.args([
        "enc",
        "-aes-256-ecb",
        "-nopad",
        "-K",
        &hex::encode(key),
        "-in",
    ])
    .arg(&zero);
    let out = run(&mut c);
    assert!(out.status.success());
    hex::encode(&out.stdout[..3])
}

/// Unwrap a .kwp file with OpenSSL (RFC 5649, default IV) and read the PKCS#8 inside:
/// its public key must be the recorded one.
fn openssl_unwrap_matches(ctx: &Ctx, key: &[u8], kwp: &Path, public_pem: &Path) {
    let der = ctx.path("unwrapped.p8");
    let mut c = ctx.tool("openssl");
    c.args([
        "enc",
        "-d",
        "-id-aes256-wrap-pad",
        "-iv",
        "A65959A6",
        "-K",
        &hex::encode(key),
    ])
    .arg("-in")
    .arg(kwp)
    .arg("-out")
    .arg(&der);
    run_ok(&mut c);
    let mut c = ctx.tool("openssl");
    c.args(["pkey", "-inform", "DER", "-pubout", "-in"])
        .arg(&der);
    let from_backup = run_ok(&mut c);
    std::fs::remove_file(&der).unwrap();
    assert_eq!(from_backup, std::fs::read_to_string(public_pem).unwrap());
}

fn openssl_verify(ctx: &Ctx, public_pem: &Path, msg: &Path, sig: &Path) {
    let mut c = ctx.tool("openssl");
    c.args(["dgst", "-sha256", "-verify"])
        .arg(public_pem)
        .arg("-signature")
        .arg(sig)
        .arg(msg);
    let out = run_ok(&mut c);
    assert!(out.contains("Verified OK"), "{out}");
}

fn block(list: &str, kind: &str, label: &str) -> String {
    pkcs11_tool_object(list, kind, label)
        .unwrap_or_else(|| panic!("no {kind} labelled {label} in:\n{list}"))
}

#[test]
fn backup_on_one_softhsm_token_restores_on_another() {
    let ctx = Ctx::new();
    let mut log = Vec::new();
    let shares_dir = ctx.path("shares");
    let other_dir = ctx.path("other-shares");
    std::fs::create_dir(&shares_dir).unwrap();
    std::fs::create_dir(&other_dir).unwrap();
    for label in ["SRC", "DST"] {
        ctx.init(&mut log, label);
    }
    let src = ctx.backend("SRC");
    let dst = ctx.backend("DST");
    let login = ["--pin-source", "env:USER_PIN"];
    for (label, alg, id, exportable) in [
        ("root-ec", "ec-p256", "1001", true),
        ("root-rsa", "rsa-2048", "1002", true),
        ("pinned", "ec-p256", "1003", false),
    ] {
        let mut args = vec![
            "generate-key",
            "--backend",
            &src,
            "--label",
            label,
            "--id",
            id,
            "--algorithm",
            alg,
        ];
        args.extend(login);
        if exportable {
            args.push("--exportable-under-wrap");
        }
        ctx.ok(&mut log, &args);
        let pem = ctx.path(&format!("{label}.pub.pem"));
        let mut e = vec!["export-pubkey", "--backend", &src, "--key", label, "-o"];
        let pem_s = pem.display().to_string();
        e.push(&pem_s);
        ctx.ok(&mut log, &e);
    }

    // pkcs11-tool: the backup-able keys are sensitive and extractable (never in the
    // clear: sensitive), not never-extractable; the other one is unchanged.
    let before = ctx.list("SRC");
    for label in ["root-ec", "root-rsa"] {
        let b = block(&before, "Private Key Object", label);
        assert!(b.contains("sensitive"), "{b}");
        assert!(b.contains("extractable"), "{b}");
        assert!(!b.contains("never extractable"), "{b}");
    }
    let pinned = block(&before, "Private Key Object", "pinned");
    assert!(pinned.contains("never extractable"), "{pinned}");

    // The wrap key, 3-of-5.
    let out = ctx.ok(
        &mut log,
        &[
            "wrap-key",
            "generate",
            "--backend",
            &src,
            "--label",
            "wk",
            "--id",
            "00aa",
            "--threshold",
            "3",
            "--shares",
            "5",
            "--share-dir",
            shares_dir.to_str().unwrap(),
            "--so-pin-source",
            "env:SO_PIN",
        ],
    );
    let kcv = out
        .split("check value ")
        .nth(1)
        .map(|s| s.lines().next().unwrap().trim().to_string())
        .unwrap();
    let files: Vec<PathBuf> = (1..=5)
        .map(|i| share_path(&shares_dir, "wk", i, 5))
        .collect();
    for f in &files {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let wrap_key = wrap_key_from_files(&files[1..4]);
    assert_eq!(wrap_key.len(), 32);
    // OpenSSL computes the same check value from the key the shares hold (and SoftHSM
    // accepted ours as CKA_CHECK_VALUE when the key was created).
    assert_eq!(openssl_kcv(&ctx, &wrap_key), kcv);
    let with_wk = ctx.list("SRC");
    let wk = block(&with_wk, "Secret Key Object", "wk");
    assert!(
        // It only wraps: unwrapping is turned on only while a restore imports.
        wk.contains("AES length 32") && wk.contains("Usage:      wrap\n"),
        "{wk}"
    );
    assert!(wk.contains("Access:     sensitive\n"), "{wk}");
    // p11tool reads the trust flag pkcs11-tool does not print: only the SO could set it.
    let mut c = ctx.tool("p11tool");
    c.arg("--provider")
        .arg(&ctx.hsm.module)
        .args(["--list-all", "pkcs11:token=SRC;object=wk;type=secret-key"]);
    let p11 = run_ok(&mut c);
    assert!(
        p11.contains("CKA_WRAP/UNWRAP; CKA_TRUSTED; CKA_SENSITIVE;"),
        "{p11}"
    );

    // A second set, to mix a foreign share in later.
    ctx.ok(
        &mut log,
        &[
            "wrap-key",
            "generate",
            "--backend",
            &src,
            "--label",
            "other",
            "--id",
            "00ab",
            "--threshold",
            "3",
            "--shares",
            "3",
            "--share-dir",
            other_dir.to_str().unwrap(),
            "--so-pin-source",
            "env:SO_PIN",
        ],
    );

    // A key generated without the flag is never exported: refused, nothing written.
    let refused_dir = ctx.path("refused");
    let e = ctx.fails(
        &mut log,
        &[
            "backup",
            "--backend",
            &src,
            "--pin-source",
            "env:USER_PIN",
            "--wrap-key",
            "wk",
            "--key",
            "root-ec",
            "--key",
            "pinned",
            "--out-dir",
            refused_dir.to_str().unwrap(),
        ],
    );
    assert!(
        e.contains("\"pinned\" was not generated exportable-under-wrap"),
        "{e}"
    );
    assert!(!refused_dir.exists() || std::fs::read_dir(&refused_dir).unwrap().count() == 0);

    let bk = ctx.path("backup");
    ctx.ok(
        &mut log,
        &[
            "backup",
            "--backend",
            &src,
            "--pin-source",
            "env:USER_PIN",
            "--wrap-key",
            "wk",
            "--key",
            "root-ec",
            "--key",
            "root-rsa",
            "--out-dir",
            bk.to_str().unwrap(),
        ],
    );
    // OpenSSL unwraps each file (RFC 5649) to a PKCS#8 key whose public half is the
    // original's.
    for label in ["root-ec", "root-rsa"] {
        openssl_unwrap_matches(
            &ctx,
            &wrap_key,
            &bk.join(format!("{label}.kwp")),
            &ctx.path(&format!("{label}.pub.pem")),
        );
    }
    // Nobody without a PIN turns the source's wrap key and a backup file into a key they
    // can sign with: the wrap key only wraps (CKA_UNWRAP false).
    let e = pinless_unwrap(
        &ctx,
        "SRC",
        "wk",
        &std::fs::read(bk.join("root-ec.kwp")).unwrap(),
    )
    .unwrap_err();
    assert!(e.contains("KeyFunctionNotPermitted"), "{e}");
    // Backing up leaves every object of the source as it was.
    let after_backup = pkcs11_tool_blocks(&ctx.list("SRC"));
    for b in pkcs11_tool_blocks(&with_wk) {
        assert!(after_backup.contains(&b), "changed by the backup:\n{b}");
    }

    // Refusals on the target, each leaving it empty.
    let restore = |log: &mut Vec<u8>, shares: &[String]| {
        let mut args = vec![
            "restore".to_string(),
            "--backend".into(),
            dst.clone(),
            "--pin-source".into(),
            "env:USER_PIN".into(),
            "--so-pin-source".into(),
            "env:SO_PIN".into(),
            "--in-dir".into(),
            bk.display().to_string(),
        ];
        for s in shares {
            args.push("--share-source".into());
            args.push(s.clone());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ctx.officiant(&refs).tap(log)
    };
    let two: Vec<String> = files[..2].iter().map(|p| share_arg(p)).collect();
    let out = restore(&mut log, &two);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("3 shares are needed, 2 given"));
    assert!(pkcs11_tool_blocks(&ctx.list("DST")).is_empty());

    let corrupt = ctx.path("corrupt.txt");
    let mut text = std::fs::read_to_string(&files[2]).unwrap();
    let pos = text.len() - 10;
    let c = if &text[pos..pos + 1] == "A" { "B" } else { "A" };
    text.replace_range(pos..pos + 1, c);
    std::fs::write(&corrupt, text).unwrap();
    let mixed = vec![
        share_arg(&files[0]),
        share_arg(&files[1]),
        share_arg(&corrupt),
    ];
    let out = restore(&mut log, &mixed);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(
        err.contains("do not rebuild the backup's wrap key"),
        "{err}"
    );
    assert!(pkcs11_tool_blocks(&ctx.list("DST")).is_empty());

    let foreign = vec![
        share_arg(&files[0]),
        share_arg(&files[1]),
        share_arg(&share_path(&other_dir, "other", 3, 3)),
    ];
    let out = restore(&mut log, &foreign);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(
        err.contains("do not rebuild the backup's wrap key"),
        "{err}"
    );
    assert!(pkcs11_tool_blocks(&ctx.list("DST")).is_empty());

    // Any 3 of the 5 restore (the first run restores, the next ones find it done).
    for pick in [[1usize, 3, 4], [0, 2, 4], [4, 1, 0]] {
        let shares: Vec<String> = pick.iter().map(|&i| share_arg(&files[i])).collect();
        let out = restore(&mut log, &shares);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let after = ctx.list("DST");
    // The wrap key is gone; each key is there once, sensitive, not never-extractable.
    assert!(!after.contains("Secret Key Object"), "{after}");
    let blocks = pkcs11_tool_blocks(&after);
    assert_eq!(blocks.len(), 4, "{after}");
    for label in ["root-ec", "root-rsa"] {
        let b = block(&after, "Private Key Object", label);
        assert!(
            b.contains("sensitive") && !b.contains("never extractable"),
            "{b}"
        );
    }

    // The restored keys sign; OpenSSL verifies with the ORIGINAL public keys.
    let msg = ctx.path("firmware.bin");
    std::fs::write(&msg, b"a payload signed by a restored root key").unwrap();
    for (label, extra) in [("root-ec", None), ("root-rsa", Some("pkcs1"))] {
        let sig = ctx.path(&format!("{label}.sig"));
        let mut args = vec![
            "sign",
            "--backend",
            &dst,
            "--pin-source",
            "env:USER_PIN",
            "--key",
            label,
            "--format",
            "raw",
        ];
        if let Some(p) = extra {
            args.extend(["--padding", p]);
        }
        let sig_s = sig.display().to_string();
        let msg_s = msg.display().to_string();
        args.extend([msg_s.as_str(), "-o", sig_s.as_str()]);
        ctx.ok(&mut log, &args);
        openssl_verify(&ctx, &ctx.path(&format!("{label}.pub.pem")), &msg, &sig);
    }

    // Canary: no share and no byte string of the wrap key anywhere it could leak.
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        ("stdout+stderr".into(), log.clone()),
        (
            "transcript".into(),
            std::fs::read(ctx.transcript()).unwrap(),
        ),
    ];
    for e in std::fs::read_dir(&bk).unwrap() {
        let p = e.unwrap().path();
        haystacks.push((p.display().to_string(), std::fs::read(&p).unwrap()));
    }
    let mut needles: Vec<Vec<u8>> = vec![
        wrap_key.clone(),
        hex::encode(&wrap_key).into_bytes(),
        hex::encode_upper(&wrap_key).into_bytes(),
    ];
    for f in &files {
        let t = std::fs::read_to_string(f).unwrap();
        let data = t.trim().splitn(3, '-').nth(2).unwrap().to_string();
        needles.push(data.as_bytes()[..24].to_vec());
    }
    for (name, hay) in &haystacks {
        for n in &needles {
            assert!(
                !hay.windows(n.len()).any(|w| w == n.as_slice()),
                "a secret leaked into {name}"
            );
        }
    }
    officiant_transcript_verifies(&ctx);
    // The transcript records T, N, the share indices and the check value.
    let transcript = std::fs::read_to_string(ctx.transcript()).unwrap();
    let done: serde_json::Value = transcript
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["type"] == "step-done" && e["data"]["kind"] == "generate-wrap-key")
        .unwrap();
    let details = &done["data"]["result"]["details"];
    assert_eq!(details["threshold"], 3);
    assert_eq!(details["shares"], 5);
    assert_eq!(details["share_indices"], serde_json::json!([1, 2, 3, 4, 5]));
    assert_eq!(details["check_value"], kcv.as_str());
}

fn officiant_transcript_verifies(ctx: &Ctx) {
    let mut c = support::officiant();
    c.args(["transcript", "verify"]).arg(ctx.transcript());
    let out = run_ok(&mut c);
    assert!(out.contains("OK"), "{out}");
}

trait Tap {
    fn tap(self, log: &mut Vec<u8>) -> Self;
}

impl Tap for Output {
    fn tap(self, log: &mut Vec<u8>) -> Self {
        log.extend(&self.stdout);
        log.extend(&self.stderr);
        self
    }
}

/// The rehearsal token wraps as SoftHSM does (RFC 5649 of the PKCS#8): OpenSSL unwraps
/// its backup file, and the backup restores onto a SoftHSM token, whose restored key
/// signs for the original public key.
#[test]
fn a_rehearsal_backup_restores_onto_softhsm() {
    let ctx = Ctx::new();
    let mut log = Vec::new();
    let sim = format!("sim:{}", ctx.path("rehearsal").display());
    ctx.ok(
        &mut log,
        &[
            "init-token",
            "--backend",
            &sim,
            "--label",
            "R",
            "--so-pin-source",
            "env:SO_PIN",
            "--pin-source",
            "env:USER_PIN",
        ],
    );
    ctx.ok(
        &mut log,
        &[
            "generate-key",
            "--backend",
            &sim,
            "--pin-source",
            "env:USER_PIN",
            "--label",
            "root",
            "--id",
            "2001",
            "--algorithm",
            "ec-p384",
            "--exportable-under-wrap",
        ],
    );
    let pem = ctx.path("root.pub.pem");
    ctx.ok(
        &mut log,
        &[
            "export-pubkey",
            "--backend",
            &sim,
            "--key",
            "root",
            "-o",
            pem.to_str().unwrap(),
        ],
    );
    let shares = ctx.path("shares");
    std::fs::create_dir(&shares).unwrap();
    ctx.ok(
        &mut log,
        &[
            "wrap-key",
            "generate",
            "--backend",
            &sim,
            "--so-pin-source",
            "env:SO_PIN",
            "--label",
            "wk",
            "--threshold",
            "2",
            "--shares",
            "2",
            "--share-dir",
            shares.to_str().unwrap(),
        ],
    );
    let bk = ctx.path("bk");
    ctx.ok(
        &mut log,
        &[
            "backup",
            "--backend",
            &sim,
            "--pin-source",
            "env:USER_PIN",
            "--wrap-key",
            "wk",
            "--key",
            "root",
            "--out-dir",
            bk.to_str().unwrap(),
        ],
    );
    let files: Vec<PathBuf> = (1..=2).map(|i| share_path(&shares, "wk", i, 2)).collect();
    let key = wrap_key_from_files(&files);
    openssl_unwrap_matches(&ctx, &key, &bk.join("root.kwp"), &pem);

    let m = format!("pkcs11:?module-path={}", ctx.hsm.module.display());
    ctx.ok(
        &mut log,
        &[
            "init-token",
            "--backend",
            &m,
            "--label",
            "DST",
            "--so-pin-source",
            "env:SO_PIN",
            "--pin-source",
            "env:USER_PIN",
        ],
    );
    let dst = ctx.backend("DST");
    ctx.ok(
        &mut log,
        &[
            "restore",
            "--backend",
            &dst,
            "--pin-source",
            "env:USER_PIN",
            "--so-pin-source",
            "env:SO_PIN",
            "--in-dir",
            bk.to_str().unwrap(),
            "--share-source",
            &share_arg(&files[1]),
            "--share-source",
            &share_arg(&files[0]),
        ],
    );
    let msg = ctx.path("m.bin");
    std::fs::write(&msg, b"signed on SoftHSM by a key rehearsed on the sim").unwrap();
    let sig = ctx.path("m.sig");
    ctx.ok(
        &mut log,
        &[
            "sign",
            "--backend",
            &dst,
            "--pin-source",
            "env:USER_PIN",
            "--key",
            "root",
            "--format",
            "raw",
            msg.to_str().unwrap(),
            "-o",
            sig.to_str().unwrap(),
        ],
    );
    let mut c = ctx.tool("openssl");
    c.args(["dgst", "-sha384", "-verify"])
        .arg(&pem)
        .arg("-signature")
        .arg(&sig)
        .arg(&msg);
    assert!(run_ok(&mut c).contains("Verified OK"));
}

/// A source token "SRC" holding an exportable P-256 key `root-ec` (public half in
/// `root-ec.pub.pem`), a wrap key `wk` split 2-of-`n`, and a backup of the key in
/// `backup/`: what the keep-wrap-key tests restore from.
struct Backed {
    dir: PathBuf,
    shares: Vec<PathBuf>,
    pem: PathBuf,
}

impl Ctx {
    /// A new token labelled `label`, with the test's SO PIN and user PIN.
    fn init(&self, log: &mut Vec<u8>, label: &str) {
        let m = format!("pkcs11:?module-path={}", self.hsm.module.display());
        self.ok(
            log,
            &[
                "init-token",
                "--backend",
                &m,
                "--label",
                label,
                "--so-pin-source",
                "env:SO_PIN",
                "--pin-source",
                "env:USER_PIN",
            ],
        );
    }

    fn backed_up_source(&self, log: &mut Vec<u8>, n: u8) -> Backed {
        self.init(log, "SRC");
        let src = self.backend("SRC");
        let shares_dir = self.path("shares");
        std::fs::create_dir(&shares_dir).unwrap();
        let b = Backed {
            dir: self.path("backup"),
            shares: (1..=n)
                .map(|i| share_path(&shares_dir, "wk", i, n))
                .collect(),
            pem: self.path("root-ec.pub.pem"),
        };
        let (pem, dir, n) = (
            b.pem.display().to_string(),
            b.dir.display().to_string(),
            n.to_string(),
        );
        let sd = shares_dir.display().to_string();
        let user = ["--pin-source", "env:USER_PIN"];
        let gen = [
            "--label",
            "root-ec",
            "--id",
            "1001",
            "--algorithm",
            "ec-p256",
        ];
        let split = ["--threshold", "2", "--shares", &n, "--share-dir", &sd];
        let keys = ["--wrap-key", "wk", "--key", "root-ec", "--out-dir", &dir];
        for args in [
            [
                &["generate-key", "--backend", &src][..],
                &gen,
                &["--exportable-under-wrap"],
                &user,
            ],
            [
                &["export-pubkey", "--backend", &src],
                &["--key", "root-ec", "-o", &pem],
                &[],
                &[],
            ],
            [
                &["wrap-key", "generate", "--backend", &src],
                &["--label", "wk", "--id", "00aa"],
                &split,
                &["--so-pin-source", "env:SO_PIN"],
            ],
            [&["backup", "--backend", &src], &keys, &user, &[]],
        ] {
            self.ok(log, &args.concat());
        }
        b
    }

    /// `restore` onto `backend` from `b` with the given shares, keeping the wrap key;
    /// killed at crash point `crash` when given.
    fn restore_keeping(
        &self,
        backend: &str,
        b: &Backed,
        shares: &[&PathBuf],
        crash: Option<usize>,
        transcript: &Path,
    ) -> Output {
        let mut c = support::officiant();
        self.hsm.env(&mut c);
        c.env("SO_PIN", SO)
            .env("USER_PIN", USER)
            .args(["restore", "--backend", backend])
            .args(["--pin-source", "env:USER_PIN"])
            .args(["--so-pin-source", "env:SO_PIN"])
            .arg("--in-dir")
            .arg(&b.dir)
            .arg("--keep-wrap-key")
            .arg("--transcript")
            .arg(transcript);
        for sh in shares {
            c.args(["--share-source", &share_arg(sh)]);
        }
        match crash {
            Some(k) => c.env("OFFICIANT_TEST_CRASH_AT", k.to_string()),
            None => c.env_remove("OFFICIANT_TEST_CRASH_AT"),
        };
        run(&mut c)
    }
}

/// A restore with `--keep-wrap-key` makes the target the next backup source: its wrap
/// key only wraps (no one without a PIN unwraps with it), and a backup from the target
/// under it is what OpenSSL unwraps to the original key.
#[test]
fn a_restore_that_keeps_the_wrap_key_leaves_a_wrap_only_key_that_backs_up_again() {
    let ctx = Ctx::new();
    let mut log = Vec::new();
    let b = ctx.backed_up_source(&mut log, 3);
    ctx.init(&mut log, "DST");
    let dst = ctx.backend("DST");
    let out = ctx.restore_keeping(
        &dst,
        &b,
        &[&b.shares[0], &b.shares[2]],
        None,
        &ctx.transcript(),
    );
    log.extend(&out.stdout);
    log.extend(&out.stderr);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wk = block(&ctx.list("DST"), "Secret Key Object", "wk");
    assert!(wk.contains("Usage:      wrap\n"), "the kept wrap key: {wk}");
    let blob = std::fs::read(b.dir.join("root-ec.kwp")).unwrap();
    let e = pinless_unwrap(&ctx, "DST", "wk", &blob).unwrap_err();
    assert!(e.contains("KeyFunctionNotPermitted"), "{e}");

    // The target backs the restored key up again under the kept key.
    let bk2 = ctx.path("backup-2").display().to_string();
    ctx.ok(
        &mut log,
        &[
            "backup",
            "--backend",
            &dst,
            "--pin-source",
            "env:USER_PIN",
            "--wrap-key",
            "wk",
            "--key",
            "root-ec",
            "--out-dir",
            &bk2,
        ],
    );
    let wrap_key = wrap_key_from_files(&b.shares[1..]);
    openssl_unwrap_matches(&ctx, &wrap_key, &ctx.path("backup-2/root-ec.kwp"), &b.pem);
    officiant_transcript_verifies(&ctx);
}

/// A restore with `--keep-wrap-key` killed at every crash point (one of them between
/// the unwrap and turning CKA_UNWRAP off again), then run again: the kept key only wraps.
#[test]
fn a_kept_wrap_key_only_wraps_after_a_restore_killed_anywhere() {
    let ctx = Ctx::new();
    let mut log = Vec::new();
    let b = ctx.backed_up_source(&mut log, 2);
    let shares: Vec<&PathBuf> = b.shares.iter().collect();
    let mut killed = 0;
    for n in 1..60 {
        let label = format!("DST{n}");
        ctx.init(&mut log, &label);
        let dst = ctx.backend(&label);
        let tr = ctx.path(&format!("restore-{n}.jsonl"));
        let first = ctx.restore_keeping(&dst, &b, &shares, Some(n), &tr);
        if first.status.success() {
            break;
        }
        assert!(
            first.status.code().is_none(),
            "point {n}: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        killed += 1;
        let again = ctx.restore_keeping(&dst, &b, &shares, None, &tr);
        assert!(
            again.status.success(),
            "point {n}: rerun: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        let wk = block(&ctx.list(&label), "Secret Key Object", "wk");
        assert!(wk.contains("Usage:      wrap\n"), "point {n}: {wk}");
    }
    assert!(killed >= 3, "only {killed} crash points in a restore");
}
