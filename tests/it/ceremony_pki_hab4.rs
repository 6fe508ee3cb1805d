//! The shipped HAB4 and Tiny HSM ceremonies replayed on the rehearsal token, judged by
//! srktool (SRK table and fuse) and openssl (chains, extensions, signatures).

use std::path::Path;
use std::process::Command;

use officiant::keys::Curve;
use officiant::pki::hab4::{self, KeyType, Role};

use crate::support::replay::{self, files_with, on_sim, Replay};
use crate::support::{oracle, run_ok};

/// srktool over the four SRK certificates must write the ceremony's table and fuse.
pub fn srktool_agrees(r: &Replay, srktool: &Path, srk_pems: &[String]) {
    let t = r.dir.path().join("srktool_table.bin");
    let f = r.dir.path().join("srktool_fuse.bin");
    let certs: Vec<String> = srk_pems
        .iter()
        .map(|n| r.file(n).display().to_string())
        .collect();
    let printed = run_ok(
        Command::new(srktool)
            .args(["-h", "4", "-d", "sha256", "-f", "1", "-t"])
            .arg(&t)
            .arg("-e")
            .arg(&f)
            .arg("-c")
            .arg(certs.join(",")),
    );
    assert_eq!(
        std::fs::read(&t).unwrap(),
        r.read("SRK_1_2_3_4_table.bin"),
        "SRK table differs from srktool's"
    );
    assert_eq!(
        std::fs::read(&f).unwrap(),
        r.read("SRK_1_2_3_4_fuse.bin"),
        "SRK fuse differs from srktool's"
    );
    // The fuse words the transcript shows the witnesses are the ones srktool prints.
    let tr = r.transcript();
    for line in printed.lines().filter(|l| l.starts_with("SRK HASH[")) {
        let word = line
            .rsplit(' ')
            .next()
            .unwrap()
            .to_uppercase()
            .replace("0X", "0x");
        assert!(
            tr.contains(&format!("\"{word}\"")),
            "transcript lacks {word}"
        );
    }
}

/// `openssl verify` builds CA1 → SRKn → CSFn_1 / IMGn_1 for every n.
pub fn chains_verify(r: &Replay, openssl: &Path, kt: &str) {
    let ca = r.file(&format!("CA1_{kt}_v3_ca_crt.pem"));
    for i in 1..=4 {
        let srk = r.file(&format!("SRK{i}_{kt}_v3_ca_crt.pem"));
        let out = run_ok(
            Command::new(openssl)
                .arg("verify")
                .arg("-CAfile")
                .arg(&ca)
                .arg("-untrusted")
                .arg(&srk)
                .arg(&srk)
                .arg(r.file(&format!("CSF{i}_1_{kt}_v3_usr_crt.pem")))
                .arg(r.file(&format!("IMG{i}_1_{kt}_v3_usr_crt.pem"))),
        );
        assert_eq!(out.matches(": OK").count(), 3, "{out}");
    }
}

fn x509_text(openssl: &Path, file: &Path) -> String {
    run_ok(
        Command::new(openssl)
            .args(["x509", "-noout", "-text", "-in"])
            .arg(file),
    )
}

/// One SRK (v3_ca) and one CSF (v3_usr), field by field as hab4_pki_tree.sh writes them.
pub fn extensions_match(r: &Replay, openssl: &Path, kt: &str) {
    let srk = x509_text(openssl, &r.file(&format!("SRK1_{kt}_v3_ca_crt.pem")));
    assert!(
        srk.contains("X509v3 Basic Constraints: critical\n                CA:TRUE"),
        "{srk}"
    );
    assert!(
        srk.contains("X509v3 Key Usage: \n                Certificate Sign")
            || srk.contains("X509v3 Key Usage:\n                Certificate Sign"),
        "{srk}"
    );
    assert!(srk.contains("X509v3 Subject Key Identifier"), "{srk}");
    assert!(srk.contains("X509v3 Authority Key Identifier"), "{srk}");
    assert!(srk.contains("0x12345678"), "SRK1 serial: {srk}");
    assert!(
        srk.contains(&format!("Subject: CN = SRK1_{kt}_v3_ca")),
        "{srk}"
    );
    assert!(
        srk.contains(&format!("Issuer: CN = CA1_{kt}_v3_ca")),
        "{srk}"
    );
    let csf = x509_text(openssl, &r.file(&format!("CSF1_1_{kt}_v3_usr_crt.pem")));
    assert!(csf.contains("CA:FALSE"), "{csf}");
    assert!(!csf.contains("CA:TRUE"), "{csf}");
    assert!(csf.contains("0x12345679"), "CSF1_1 serial: {csf}");
    assert!(
        csf.contains(&format!("Issuer: CN = SRK1_{kt}_v3_ca")),
        "{csf}"
    );
}

/// Every file hab4_pki_tree.sh would name for the tree is there (names from the pki
/// helper, not from the script).
fn names_match(r: &Replay, key_type: KeyType) {
    for p in hab4::plan(4, key_type, true).unwrap() {
        assert!(r.file(&p.names.pem()).is_file(), "{}", p.names.pem());
        assert!(r.file(&p.names.der()).is_file(), "{}", p.names.der());
    }
    let srk = hab4::names(Role::Srk(1), key_type, true).unwrap();
    assert!(r.transcript().contains(&srk.common_name));
}

#[test]
fn hab4_pki_ec_on_sim_is_what_srktool_and_openssl_accept() {
    let (Some(srktool), Some(openssl)) = (oracle("srktool"), oracle("openssl")) else {
        return;
    };
    let r = on_sim("hab4-pki-ec");
    let kt = "sha256_prime256v1";
    names_match(&r, KeyType::Ec(Curve::P256));
    let srks = files_with(&r, "SRK", "_v3_ca_crt.pem");
    assert_eq!(srks.len(), 4, "{srks:?}");
    srktool_agrees(&r, &srktool, &srks);
    chains_verify(&r, &openssl, kt);
    extensions_match(&r, &openssl, kt);
    // Every serial is the one hab4_pki_tree.sh's counter gives (pki::hab4::plan).
    for p in hab4::plan(4, KeyType::Ec(Curve::P256), true).unwrap() {
        if let Some(want) = p.serial {
            let got = run_ok(
                Command::new(&openssl)
                    .args(["x509", "-noout", "-serial", "-in"])
                    .arg(r.file(&p.names.pem())),
            );
            assert_eq!(
                got.trim(),
                format!("serial={want:08X}"),
                "{}",
                p.names.pem()
            );
        }
    }
    // The transcript names every certificate by its SHA-256 (of the DER file).
    let tr = r.transcript();
    for der in files_with(&r, "", "_crt.der") {
        let sha = hex::encode(officiant::output::sha256(&r.read(&der)));
        assert!(tr.contains(&sha), "transcript lacks the SHA-256 of {der}");
    }
    // The U-Boot lines for the SoC the script names.
    assert!(tr.contains("fuse prog -y 6 0 0x"), "no imx8m U-Boot lines");
    // transcript.md, what the witnesses read and sign, shows the fuse as words.
    let md = std::fs::read_to_string(r.file("transcript.md")).unwrap();
    let words = officiant::formats::words::pgp_words(&r.read("SRK_1_2_3_4_fuse.bin"));
    assert!(md.contains(&words), "transcript.md lacks the fuse words");
    assert!(
        md.contains("fuse prog -y 6 0 0x"),
        "transcript.md lacks the U-Boot lines"
    );
}

#[test]
fn ca_signer_on_sim_chain_and_signature_verify_with_openssl() {
    let Some(openssl) = oracle("openssl") else {
        return;
    };
    let r = on_sim("ca-signer");
    let out = run_ok(
        Command::new(&openssl)
            .arg("verify")
            .arg("-CAfile")
            .arg(r.file("tiny-ca.crt.pem"))
            .arg(r.file("tiny-signer.crt.pem")),
    );
    assert!(out.contains(": OK"), "{out}");
    let signer = x509_text(&openssl, &r.file("tiny-signer.crt.pem"));
    assert!(signer.contains("CA:FALSE"), "{signer}");
    assert!(signer.contains("Digital Signature"), "{signer}");
    assert!(
        signer.contains("Subject: O = Officiant Rehearsal, CN = Tiny HSM Signer"),
        "{signer}"
    );
    let ca = x509_text(&openssl, &r.file("tiny-ca.crt.pem"));
    assert!(ca.contains("CA:TRUE"), "{ca}");
    // The signer's certificate carries the exported signer key.
    let from_cert = run_ok(
        Command::new(&openssl)
            .args(["x509", "-noout", "-pubkey", "-in"])
            .arg(r.file("tiny-signer.crt.pem")),
    );
    assert_eq!(
        from_cert,
        std::fs::read_to_string(r.file("tiny-signer.pub.pem")).unwrap()
    );
    // The sign step's detached signature, judged by openssl.
    let v = run_ok(
        Command::new(&openssl)
            .args(["dgst", "-sha256", "-verify"])
            .arg(r.file("tiny-signer.pub.pem"))
            .arg("-signature")
            .arg(r.file("payload.bin.sig"))
            .arg(replay::shipped("samples/payload.bin")),
    );
    assert!(v.contains("Verified OK"), "{v}");
    // Canary: the PINs the answers file feeds in appear in no output and no transcript.
    for pin in ["so.pin", "user.pin"] {
        let secret =
            std::fs::read_to_string(replay::shipped(&format!("rehearsal-secrets/{pin}"))).unwrap();
        let secret = secret.trim();
        assert!(secret.len() >= 4);
        for e in std::fs::read_dir(&r.out).unwrap() {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{pin} leaked into the out dir"
            );
        }
    }
}
