//! The shipped yubihsm-provision ceremony replayed headless on yubihsm:mock through the
//! officiant binary, judged by openssl; and `officiant check` refusing, with one line,
//! every step the MockHsm or the crate cannot do and every bad native field.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn provision() -> PathBuf {
    root().join("ceremonies/yubihsm-provision.toml")
}

/// The shipped script and answers copied into `dir` (with their rehearsal files), and
/// the custodians' media their answers write shares to (`dir/out/custodian-media/…`):
/// (script, answers, media).
fn shipped_copy(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let copy = dir.join("ceremonies");
    std::fs::create_dir_all(copy.join("yubihsm-rehearsal")).unwrap();
    for f in ["yubihsm-provision.toml", "yubihsm-provision.answers.toml"] {
        std::fs::copy(root().join("ceremonies").join(f), copy.join(f)).unwrap();
    }
    for e in std::fs::read_dir(root().join("ceremonies/yubihsm-rehearsal")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join("yubihsm-rehearsal").join(e.file_name())).unwrap();
    }
    let media = dir.join("out/custodian-media");
    for who in ["carol", "dave", "erin"] {
        std::fs::create_dir_all(media.join(who)).unwrap();
    }
    (
        copy.join("yubihsm-provision.toml"),
        copy.join("yubihsm-provision.answers.toml"),
        media,
    )
}

/// Serve a fresh MockHsm on an ephemeral 127.0.0.1 port with the crate's http-server
/// (looping on `handle_request`: `run()` stops at the first failed request).
fn serve_mock() -> u16 {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = yubihsm::connector::http::Server::new(
        &yubihsm::HttpConfig {
            addr: "127.0.0.1".into(),
            port,
            timeout_ms: 5_000,
        },
        yubihsm::Connector::mockhsm(),
    )
    .unwrap();
    std::thread::spawn(move || {
        for _ in 0..100_000 {
            let _ = server.handle_request();
        }
    });
    port
}

#[test]
fn provision_ceremony_replays_on_the_mock() {
    replay("yubihsm:mock".into());
}

#[test]
fn provision_ceremony_replays_over_the_http_connector() {
    let port = serve_mock();
    replay(format!("yubihsm:http://127.0.0.1:{port}"));
}

fn replay(backend: String) {
    let Some(openssl) = support::oracle("openssl") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    // The shipped files in a copy, so the custodians' media (../out/custodian-media/…
    // from the answers) are in the temp dir.
    let (script, answers, media) = shipped_copy(out.path());
    support::run_ok(support::officiant().args([
        "run",
        script.to_str().unwrap(),
        "--backend",
        &backend,
        "--answers",
        answers.to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]));
    // The release key's backup: the get-wrapped form, under a wrap key whose check value
    // the custodians' shares rebuild (rusty_secrets, Yubico's Shamir crate; openssl).
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("backup/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["wrap_format"], "yubihsm-aes-ccm");
    let shares: Vec<String> = ["carol", "erin"]
        .iter()
        .map(|w| {
            let p = media.join(w).join("yubihsm-backup-wrap.share.txt");
            std::fs::read_to_string(p).unwrap().trim().to_string()
        })
        .collect();
    let secret = rusty_secrets::recover_secret(shares.clone()).unwrap();
    // Object id 0x0200, then the domains, capabilities and delegated capabilities.
    assert_eq!(&secret[..2], &[0x02, 0x00]);
    let zero = out.path().join("zero.bin");
    std::fs::write(&zero, [0u8; 16]).unwrap();
    let enc = Command::new(&openssl)
        .args([
            "enc",
            "-aes-256-ecb",
            "-nopad",
            "-K",
            &hex::encode(&secret[20..]),
            "-in",
        ])
        .arg(&zero)
        .output()
        .unwrap();
    assert_eq!(
        manifest["wrap_key"]["check_value"],
        hex::encode(&enc.stdout[..3]).as_str()
    );
    let jsonl = std::fs::read_to_string(dir.join("transcript.jsonl")).unwrap();
    let md = std::fs::read_to_string(dir.join("transcript.md")).unwrap();
    // the rotation's six sub-steps, each checked
    for s in [
        "put temporary key",
        "log in with temporary key",
        "delete old key",
        "put replacement key",
        "log in with replacement key",
        "delete temporary key",
    ] {
        assert!(md.contains(&format!("- {s} (key ")), "{s} missing");
    }
    assert!(!md.contains("): injected"), "no failure recorded");
    assert!(md.contains("force-audit is on (read back from the device)"));
    assert!(md.contains("object `operator` id `0003` authentication key domains [1]; capabilities [get-opaque, sign-pkcs, sign-pss, sign-ecdsa]; delegated []"));
    // the mock's empty log is not passed off as evidence
    assert!(md.contains("device audit log: 0 new entries (audit log on yubihsm:mock: the MockHsm keeps no audit log"));
    // no rehearsal password or passphrase anywhere in the evidence
    let secrets = root().join("ceremonies/yubihsm-rehearsal");
    for s in &shares {
        assert!(
            !jsonl.contains(&s[4..]) && !md.contains(&s[4..]),
            "a share leaked"
        );
    }
    for f in [
        "rotation-temporary.pass",
        "admin-key1.pass",
        "administrator.pass",
        "operator.pass",
        "auditor.pass",
        "boot-key.pass",
    ] {
        let s = std::fs::read_to_string(secrets.join(f)).unwrap();
        let s = s.trim();
        assert!(!jsonl.contains(s) && !md.contains(s), "{f} leaked");
    }
    // openssl reads the exported keys; the imported key is the certificate's key
    let der_of = |args: &[&str]| {
        let o = Command::new(&openssl).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    let boot_pem = dir.join("boot-signing-ecdsa-p256.pub.pem");
    let exported = der_of(&[
        "pkey",
        "-pubin",
        "-in",
        boot_pem.to_str().unwrap(),
        "-outform",
        "DER",
    ]);
    let cert = secrets.join("boot-signing.crt.der");
    let cert_pub_pem = der_of(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-pubkey",
    ]);
    let tmp = out.path().join("cert-pub.pem");
    std::fs::write(&tmp, cert_pub_pem).unwrap();
    let from_cert = der_of(&[
        "pkey",
        "-pubin",
        "-in",
        tmp.to_str().unwrap(),
        "-outform",
        "DER",
    ]);
    assert_eq!(exported, from_cert);
    let fw = dir.join("fw-signing-ecdsa-p256.pub.der");
    let text = String::from_utf8(der_of(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        fw.to_str().unwrap(),
        "-noout",
        "-text",
    ]))
    .unwrap();
    assert!(
        text.contains("prime256v1") || text.contains("P-256"),
        "{text}"
    );
    // the transcript's chain verifies
    support::run_ok(support::officiant().args([
        "transcript",
        "verify",
        dir.join("transcript.jsonl").to_str().unwrap(),
    ]));
}

/// A variant of the provision script (text replaced) in a temporary directory, beside a
/// copy of its rehearsal files so its relative paths still resolve.
struct Variant {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Variant {
    fn new(name: &str, edit: impl Fn(String) -> String) -> Variant {
        let text = std::fs::read_to_string(provision()).unwrap();
        let edited = edit(text.clone());
        assert_ne!(edited, text, "{name}: the edit changed nothing");
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("yubihsm-rehearsal");
        std::fs::create_dir(&files).unwrap();
        for e in std::fs::read_dir(root().join("ceremonies/yubihsm-rehearsal")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), files.join(e.file_name())).unwrap();
        }
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, edited).unwrap();
        Variant { _dir: dir, path }
    }
}

/// `officiant check SCRIPT [--backend B]`: must fail with one line ending in `want`.
fn check_refuses(script: &Path, backend: Option<&str>, place: &str, want: &str) {
    let mut cmd = support::officiant();
    cmd.arg("check").arg(script);
    if let Some(b) = backend {
        cmd.args(["--backend", b]);
    }
    let out = support::run(&mut cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{script:?} was accepted");
    let line = err.trim_end();
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    assert!(line.contains(place), "place {place:?} not in: {line}");
    assert!(line.ends_with(want), "want …{want:?}\n got {line}");
}

const GEN: &str = "algorithm = \"ec-p256\"\nlabel = \"fw-signing-ecdsa-p256\"";

#[test]
fn check_refuses_what_the_mock_cannot_generate() {
    for (alg, name) in [
        ("rsa-2048", "rsa-2048"),
        ("rsa-3072", "rsa-3072"),
        ("rsa-4096", "rsa-4096"),
        ("ec-p384", "ec-p384"),
        ("ec-p521", "ec-p521"),
    ] {
        let v = Variant::new(alg, |t| {
            t.replace(
                GEN,
                &format!("algorithm = \"{alg}\"\nlabel = \"fw-signing-ecdsa-p256\""),
            )
        });
        check_refuses(
            &v.path,
            Some("yubihsm:mock"),
            "step[6] (gen-fw-signing).algorithm: ",
            &format!("{name} keys on yubihsm:mock: the MockHsm has only EC P-256 keys; run on a real YubiHSM 2 (yubihsm:usb or yubihsm:http://…) or use the PKCS#11 backend with Yubico's yubihsm_pkcs11 module (pkcs11:…?module-path=…/yubihsm_pkcs11.so)"),
        );
        // the same script is fine for a real device
        let out = support::run(support::officiant().args(["check", v.path.to_str().unwrap()]));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn check_refuses_an_rsa_import_on_the_mock() {
    // Key files are read from below the script's directory only: put it there.
    let rsa = root().join("tests/fixtures/keys/rsa2048.pkcs1.pem");
    let v = Variant::new("rsa-import", |t| {
        t.replace(
            "key-file = \"yubihsm-rehearsal/boot-signing.pk8.pem\"\npassphrase = \"boot-key\"",
            "key-file = \"rsa2048.pkcs1.pem\"",
        )
    });
    std::fs::copy(&rsa, v.path.parent().unwrap().join("rsa2048.pkcs1.pem")).unwrap();
    check_refuses(
        &v.path,
        Some("yubihsm:mock"),
        "step[7] (import-boot-signing).key-file: ",
        "rsa-2048 keys on yubihsm:mock: the MockHsm has only EC P-256 keys; run on a real YubiHSM 2 (yubihsm:usb or yubihsm:http://…) or use the PKCS#11 backend with Yubico's yubihsm_pkcs11 module (pkcs11:…?module-path=…/yubihsm_pkcs11.so)",
    );
}

#[test]
fn check_refuses_pkcs11_concepts_on_yubihsm() {
    let demo = root().join("ceremonies/rehearsal-demo.toml");
    check_refuses(
        &demo,
        Some("yubihsm:mock"),
        "step[0] (init).kind: ",
        "init-token: a YubiHSM 2 has no token to initialize; reset it with yubihsm-shell, then provision it with change-auth-key and put-auth-key steps",
    );
    let v = Variant::new("change-pin", |t| {
        t.replace(
            "[[step]]\nid = \"put-operator\"",
            "[[step]]\nid = \"pin\"\nkind = \"change-pin\"\nold-pin = \"a\"\nnew-pin = \"b\"\n\n[[step]]\nid = \"put-operator\"",
        )
    });
    check_refuses(
        &v.path,
        Some("yubihsm:mock"),
        "step[4] (pin).kind: ",
        "change-pin: a YubiHSM 2 has authentication keys, not PINs; use the change-auth-key step (a safe rotation through a temporary key)",
    );
}

#[test]
fn check_refuses_native_steps_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let sim = format!("sim:{}", dir.path().join("t").display());
    check_refuses(
        &provision(),
        Some(&sim),
        "step[2] (rotate-key1).kind: ",
        &format!("change-auth-key needs the YubiHSM native backend (yubihsm:usb or yubihsm:http://HOST:PORT), not {sim}"),
    );
}

/// (case name, script edit, expected field path, expected message)
type FieldCase = (
    &'static str,
    Box<dyn Fn(String) -> String>,
    &'static str,
    &'static str,
);

#[test]
fn check_refuses_bad_native_fields() {
    let cases: Vec<FieldCase> = vec![
        (
            "cap",
            Box::new(|t| t.replace("capabilities = [\"get-log-entries\", \"get-option\"]", "capabilities = [\"get-log-entries\", \"sign-foo\"]")),
            "step[5] (put-auditor).capabilities[1]: ",
            "unknown capability \"sign-foo\" (names as yubihsm-shell spells them, e.g. \"sign-ecdsa\")",
        ),
        (
            "domain",
            Box::new(|t| t.replace("domains = [1]", "domains = [1, 17]")),
            "step[4] (put-operator).domains[1]: ",
            "domain 17 is out of range (1-16)",
        ),
        (
            "authid",
            Box::new(|t| t.replace("key-id = \"0004\"", "key-id = \"10000\"")),
            "step[5] (put-auditor).key-id: ",
            "object id \"10000\" is not 1-4 hex digits (0x0001-0xffff)",
        ),
        (
            "dupauth",
            Box::new(|t| t.replace("key-id = \"0004\"", "key-id = \"0003\"")),
            "step[5] (put-auditor).key-id: ",
            "authentication key 0003 is already created by step[4] (put-operator)",
        ),
        (
            "lockout",
            Box::new(|t| {
                t.replace(
                    "capabilities = [\"all\"]\ndelegated-capabilities = [\"all\"]",
                    "capabilities = [\"delete-authentication-key\", \"generate-asymmetric-key\"]\ndelegated-capabilities = [\"all\"]",
                )
            }),
            "step[2] (rotate-key1).capabilities: ",
            "the session's key would lack put-authentication-key, which step[3] (put-administrator) needs: the ceremony would lock itself out",
        ),
        (
            "audit",
            Box::new(|t| t.replace("force-audit = \"on\"", "force-audit = \"fix\"")),
            "step[15] (force-audit).force-audit: ",
            "\"fix\": expected \"on\" or \"off\" (\"fix\" cannot be undone and is not offered)",
        ),
    ];
    for (name, edit, place, want) in cases {
        let v = Variant::new(name, edit);
        check_refuses(&v.path, None, place, want);
    }
    // 16-bit ids and 40-byte labels only where the backend is a YubiHSM
    let v = Variant::new("longid", |t| {
        t.replace("key-id = \"0100\"", "key-id = \"010203\"")
    });
    check_refuses(
        &v.path,
        Some("yubihsm:mock"),
        "step[6] (gen-fw-signing).key-id: ",
        "YubiHSM object ids are 16-bit: give 1 or 2 bytes, not 3",
    );
    let long = "L".repeat(41);
    let v = Variant::new("longlabel", |t| {
        t.replace(GEN, &format!("algorithm = \"ec-p256\"\nlabel = \"{long}\""))
            .replace(
                "key = \"fw-signing-ecdsa-p256\"",
                &format!("key = \"{long}\""),
            )
    });
    check_refuses(
        &v.path,
        Some("yubihsm:mock"),
        "step[6] (gen-fw-signing).label: ",
        &format!("label {long:?} is 41 bytes; a YubiHSM label holds at most 40"),
    );
}

/// Killed at every crash point (debug-build hook) and rerun against the same device (a
/// MockHsm served over HTTP outlives the killed process): the run completes, the factory
/// password is gone, key 0x0001 opens with the new password, no object twice.
#[test]
fn provision_killed_at_every_point_then_resumed() {
    let pass = |f: &str| {
        std::fs::read_to_string(root().join("ceremonies/yubihsm-rehearsal").join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    let new = officiant::secret::Secret::from_string(pass("admin-key1.pass"));
    let factory = officiant::secret::Secret::from_string("password".into());
    let mut crashed = 0;
    for k in 1..=300 {
        let port = serve_mock();
        let backend = format!("yubihsm:http://127.0.0.1:{port}");
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("run");
        let (script, answers, media) = shipped_copy(out.path());
        let run = |crash: Option<usize>| {
            let mut c = support::officiant();
            c.args([
                "run",
                script.to_str().unwrap(),
                "--backend",
                &backend,
                "--answers",
                answers.to_str().unwrap(),
                "--out",
                dir.to_str().unwrap(),
            ]);
            if let Some(n) = crash {
                c.env("OFFICIANT_TEST_CRASH_AT", n.to_string());
            }
            support::run(&mut c)
        };
        let first = run(Some(k));
        let done_without_crash = first.status.success();
        if !done_without_crash {
            assert!(
                first.status.code().is_none(),
                "point {k}: {}",
                String::from_utf8_lossy(&first.stderr)
            );
            let second = run(None);
            assert!(
                second.status.success(),
                "point {k}: rerun failed: {}",
                String::from_utf8_lossy(&second.stderr)
            );
            crashed += 1;
        }
        // the device: key 1 has the new password only; officer keys and signing keys once
        let uri = format!("http://127.0.0.1:{port}?auth-key=1");
        let mut h = officiant::hsm::yubihsm::YubiHsm::open(&uri).unwrap();
        officiant::hsm::Token::login(&mut h, officiant::hsm::UserType::User, &new)
            .unwrap_or_else(|e| panic!("point {k}: {e}"));
        let ids: Vec<u16> = h.auth_keys().unwrap().iter().map(|a| a.id).collect();
        assert_eq!(ids, vec![1, 2, 3, 4], "point {k}");
        let objects = officiant::hsm::Token::list_objects(&mut h).unwrap();
        let n = |class: officiant::hsm::ObjectClass| {
            objects.iter().filter(|o| o.class == class).count()
        };
        // Three key pairs (fw, boot, release) and the boot key's certificate, once each;
        // one wrap key.
        assert_eq!(
            n(officiant::hsm::ObjectClass::PrivateKey),
            3,
            "point {k}: {objects:?}"
        );
        assert_eq!(n(officiant::hsm::ObjectClass::Certificate), 1, "point {k}");
        assert_eq!(
            n(officiant::hsm::ObjectClass::WrapKey),
            1,
            "point {k}: {objects:?}"
        );
        // Every custodian holds a share of the wrap key on the device: rusty_secrets
        // rebuilds its check value from any two.
        let shares: Vec<String> = ["dave", "erin"]
            .iter()
            .map(|w| {
                let p = media.join(w).join("yubihsm-backup-wrap.share.txt");
                std::fs::read_to_string(p).unwrap().trim().to_string()
            })
            .collect();
        let secret = rusty_secrets::recover_secret(shares).unwrap();
        let on_device = officiant::hsm::Token::wrap_key(&mut h, "backup-wrap")
            .unwrap()
            .and_then(|w| w.check_value);
        assert_eq!(
            on_device,
            Some(officiant::hsm::wrap::check_value(&secret[20..]).unwrap()),
            "point {k}"
        );
        assert!(h.force_audit().unwrap());
        let mut old = officiant::hsm::yubihsm::YubiHsm::open(&uri).unwrap();
        assert!(
            officiant::hsm::Token::login(&mut old, officiant::hsm::UserType::User, &factory)
                .is_err()
        );
        support::run_ok(support::officiant().args([
            "transcript",
            "verify",
            dir.join("transcript.jsonl").to_str().unwrap(),
        ]));
        if done_without_crash {
            break;
        }
    }
    assert!(crashed > 10, "only {crashed} crash points");
}
