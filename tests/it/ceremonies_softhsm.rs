//! Every shipped root-of-trust ceremony replayed headless on a fresh SoftHSM token
//! directory; the RSA-4096 HAB4 tree (as NXP ships it) is judged by srktool and openssl
//! here, and the certificates stored with write-to-token are read back with pkcs11-tool.

use std::process::Command;

use crate::support::replay::{files_with, on_softhsm, Replay};
use crate::support::{self, oracle, run_ok};

fn pkcs11_list(r: &Replay, token: &str) -> Option<String> {
    let tool = oracle("pkcs11-tool")?;
    let hsm = r.softhsm.as_ref()?;
    let mut c = Command::new(tool);
    hsm.env(&mut c).arg("--module").arg(&hsm.module).args([
        "--token-label",
        token,
        "--list-objects",
    ]);
    Some(run_ok(&mut c))
}

#[test]
fn hab4_pki_rsa4096_on_softhsm() {
    let (Some(srktool), Some(openssl)) = (oracle("srktool"), oracle("openssl")) else {
        return;
    };
    let Some(r) = on_softhsm("hab4-pki") else {
        return;
    };
    let srks = files_with(&r, "SRK", "_v3_ca_crt.pem");
    assert_eq!(srks.len(), 4);
    let t = r.dir.path().join("t.bin");
    let f = r.dir.path().join("f.bin");
    let certs: Vec<String> = srks
        .iter()
        .map(|n| r.file(n).display().to_string())
        .collect();
    run_ok(
        Command::new(&srktool)
            .args(["-h", "4", "-d", "sha256", "-f", "1", "-t"])
            .arg(&t)
            .arg("-e")
            .arg(&f)
            .arg("-c")
            .arg(certs.join(",")),
    );
    assert_eq!(std::fs::read(&t).unwrap(), r.read("SRK_1_2_3_4_table.bin"));
    assert_eq!(std::fs::read(&f).unwrap(), r.read("SRK_1_2_3_4_fuse.bin"));
    let kt = "sha256_4096_65537";
    for i in 1..=4 {
        let srk = r.file(&format!("SRK{i}_{kt}_v3_ca_crt.pem"));
        let out = run_ok(
            Command::new(&openssl)
                .arg("verify")
                .arg("-CAfile")
                .arg(r.file(&format!("CA1_{kt}_v3_ca_crt.pem")))
                .arg("-untrusted")
                .arg(&srk)
                .arg(r.file(&format!("CSF{i}_1_{kt}_v3_usr_crt.pem")))
                .arg(r.file(&format!("IMG{i}_1_{kt}_v3_usr_crt.pem"))),
        );
        assert_eq!(out.matches(": OK").count(), 2, "{out}");
    }
    let text = run_ok(
        Command::new(&openssl)
            .args(["x509", "-noout", "-text", "-in"])
            .arg(r.file(&format!("SRK1_{kt}_v3_ca_crt.pem"))),
    );
    assert!(text.contains("Public-Key: (4096 bit)"), "{text}");
    assert!(text.contains("sha256WithRSAEncryption"), "{text}");
    // write-to-token: CSF and IMG certificates sit under their key's label.
    if let Some(list) = pkcs11_list(&r, "hab4-pki") {
        for i in 1..=4 {
            for p in ["CSF", "IMG"] {
                let label = format!("{p}{i}_1_{kt}_v3_usr");
                let block = support::pkcs11_tool_object(&list, "Certificate Object", &label);
                assert!(
                    block.is_some(),
                    "no certificate {label} on the token:\n{list}"
                );
            }
        }
    }
}

#[test]
fn other_shipped_ceremonies_replay_on_softhsm() {
    for name in [
        "hab4-pki-ec",
        "tfa-rot",
        "esp32-sbv2",
        "stm32mp",
        "ca-signer",
    ] {
        let Some(r) = on_softhsm(name) else {
            return;
        };
        assert!(r.transcript().contains("\"complete\""), "{name}");
        if name == "ca-signer" {
            if let Some(list) = pkcs11_list(&r, "ca-signer") {
                assert!(
                    support::pkcs11_tool_object(&list, "Certificate Object", "tiny-signer")
                        .is_some(),
                    "{list}"
                );
            }
            if let Some(openssl) = oracle("openssl") {
                let out = run_ok(
                    Command::new(&openssl)
                        .arg("verify")
                        .arg("-CAfile")
                        .arg(r.file("tiny-ca.crt.pem"))
                        .arg(r.file("tiny-signer.crt.pem")),
                );
                assert!(out.contains(": OK"));
            }
        }
    }
}
