//! Shipped ceremonies replayed on a fresh SoftHSM token directory through the officiant
//! binary, then inspected with pkcs11-tool and p11tool.

use std::path::Path;
use std::process::Command;

use crate::support::{self, officiant, oracle, run, run_ok, SoftHsm};

fn ceremony(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ceremonies")
        .join(name)
        .display()
        .to_string()
}

/// Run `officiant run NAME.toml` on SoftHSM.
fn replay(hsm: &SoftHsm, name: &str, out: &Path) {
    let mut c = officiant();
    hsm.env(&mut c)
        .arg("run")
        .arg(ceremony(&format!("{name}.toml")))
        .arg("--backend")
        .arg(hsm.uri())
        .arg("--answers")
        .arg(ceremony(&format!("{name}.answers.toml")))
        .arg("--out")
        .arg(out);
    run_ok(&mut c);
}

fn list(hsm: &SoftHsm, token: &str, pin_file: &str) -> Option<String> {
    let pin = std::fs::read_to_string(ceremony(pin_file)).unwrap();
    let mut c = Command::new(oracle("pkcs11-tool")?);
    hsm.env(&mut c)
        .arg("--module")
        .arg(&hsm.module)
        .args(["--token-label", token, "--login", "--pin", pin.trim_end()])
        .arg("--list-objects");
    Some(run_ok(&mut c))
}

/// The object whose header starts with `kind` and which has `label`.
fn tool_object(list: &str, kind: &str, label: &str) -> String {
    support::pkcs11_tool_object(list, kind, label)
        .unwrap_or_else(|| panic!("no {kind} labelled {label} in:\n{list}"))
}

#[test]
fn rehearsal_demo_replays_on_softhsm() {
    let Some(hsm) = SoftHsm::new() else { return };
    let out = hsm.dir.path().join("out");
    replay(&hsm, "rehearsal-demo", &out);
    for f in ["transcript.jsonl", "transcript.md", "demo-rsa-3072.pub.pem"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let Some(list) = list(&hsm, "officiant-demo", "rehearsal-secrets/user.pin") else {
        return;
    };
    for (label, id) in [
        ("demo-ecdsa-p256", "01"),
        ("demo-rsa-3072", "02"),
        ("demo-imported-p384", "03"),
    ] {
        let block = tool_object(&list, "Private Key Object", label);
        assert!(block.contains(&format!("ID:         {id}\n")), "{block}");
    }
    // Exported public keys are the token's: openssl reads them.
    if let Some(openssl) = oracle("openssl") {
        run_ok(
            Command::new(openssl)
                .args(["pkey", "-pubin", "-noout", "-in"])
                .arg(out.join("demo-rsa-3072.pub.pem")),
        );
    }
}

#[test]
fn hab4_import_puts_keys_and_certificates_where_cst_looks() {
    let Some(hsm) = SoftHsm::new() else { return };
    let out = hsm.dir.path().join("out");
    replay(&hsm, "hab4-import", &out);
    // Canary: no PIN and no key passphrase in anything the run left behind.
    let secrets: Vec<String> = [
        "rehearsal-secrets/so.pin",
        "rehearsal-secrets/user.pin",
        "hab4-rehearsal-pki/keys/key_pass.txt",
    ]
    .iter()
    .map(|f| {
        let text = std::fs::read_to_string(ceremony(f)).unwrap();
        text.lines().next().unwrap().to_string()
    })
    .collect();
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{} shows a secret",
                path.display()
            );
        }
    }
    let Some(list) = list(&hsm, "hab4-cst", "rehearsal-secrets/user.pin") else {
        return;
    };
    for (label, id) in [
        ("CSF1_1_sha256_4096_usr", "1002"),
        ("IMG1_1_sha256_4096_usr", "1003"),
    ] {
        for kind in [
            "Private Key Object; RSA",
            "Public Key Object; RSA 4096 bits",
            "Certificate Object; type = X.509 cert",
        ] {
            let block = tool_object(&list, kind, label);
            assert!(block.contains(&format!("ID:         {id}\n")), "{block}");
        }
    }
    // The CSF file's URI finds the certificate; it is the file's certificate, byte for byte.
    let Some(p11tool) = oracle("p11tool") else {
        return;
    };
    let mut c = Command::new(p11tool);
    hsm.env(&mut c)
        .arg(format!("--provider={}", hsm.module.display()))
        .args(["--export", "--outder"])
        .arg("pkcs11:token=hab4-cst;object=CSF1_1_sha256_4096_usr;type=cert");
    let o = run(&mut c);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = std::fs::read(ceremony(
        "hab4-rehearsal-pki/crts/CSF1_1_sha256_4096_65537_v3_usr_crt.der",
    ))
    .unwrap();
    assert_eq!(o.stdout, want);
}

#[test]
fn a_token_without_rsa_keygen_is_refused_before_anything_happens() {
    let Some(hsm) = SoftHsm::new() else { return };
    // SoftHSM's blacklist syntax skips its first entry, so the mechanism is named twice.
    let mut conf = std::fs::read_to_string(&hsm.conf).unwrap();
    conf.push_str("slots.mechanisms = -CKM_RSA_PKCS_KEY_PAIR_GEN,CKM_RSA_PKCS_KEY_PAIR_GEN\n");
    std::fs::write(&hsm.conf, conf).unwrap();
    let out = hsm.dir.path().join("out");
    let mut c = officiant();
    hsm.env(&mut c)
        .arg("run")
        .arg(ceremony("rehearsal-demo.toml"))
        .arg("--backend")
        .arg(hsm.uri())
        .arg("--answers")
        .arg(ceremony("rehearsal-demo.answers.toml"))
        .arg("--out")
        .arg(&out);
    let o = run(&mut c);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("gen-rsa3072"), "{err}");
    assert!(
        err.contains(&format!(
            "generating rsa-3072 keys is not supported by {}",
            hsm.uri()
        )),
        "{err}"
    );
    // Nothing happened: the token is still uninitialized.
    let Some(tool) = oracle("pkcs11-tool") else {
        return;
    };
    let mut c = Command::new(tool);
    hsm.env(&mut c).arg("--module").arg(&hsm.module).arg("-L");
    let slots = run_ok(&mut c);
    assert!(slots.contains("token state:   uninitialized"), "{slots}");
    assert!(!slots.contains("token initialized"), "{slots}");
}

#[test]
fn hab4_import_replays_on_the_rehearsal_token_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    run_ok(
        officiant()
            .arg("run")
            .arg(ceremony("hab4-import.toml"))
            .arg("--backend")
            .arg(format!("sim:{}", dir.path().join("sim").display()))
            .arg("--answers")
            .arg(ceremony("hab4-import.answers.toml"))
            .arg("--out")
            .arg(&out),
    );
    // The exported key is the certificate's key (openssl reads both).
    let Some(openssl) = oracle("openssl") else {
        return;
    };
    let from_cert = run_ok(
        Command::new(&openssl)
            .args(["x509", "-inform", "DER", "-pubkey", "-noout", "-in"])
            .arg(ceremony(
                "hab4-rehearsal-pki/crts/IMG1_1_sha256_4096_65537_v3_usr_crt.der",
            )),
    );
    let exported = std::fs::read_to_string(out.join("IMG1_1_sha256_4096_usr.pub.pem")).unwrap();
    assert_eq!(exported.trim(), from_cert.trim());
}
