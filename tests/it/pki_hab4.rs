//! HAB4 PKI tree issued with keys on a token; openssl and srktool are the judges.

use std::process::Command;

use officiant::keys::KeyAlgorithm;
use officiant::pki::hab4::{self, KeyType, Role};
use officiant::pki::{self, IssueRequest, Issuer, Profile, Validity};

use crate::support;
use crate::support::certs::{
    extension_block, extension_names, issue_tree, key, openssl, role_key, sim_token, Tree,
};

fn check_v3_ca(text: &str, issuer_cn: &str) {
    assert_eq!(extension_names(text), V3_CA, "{text}");
    let (crit, bc) = extension_block(text, "X509v3 Basic Constraints").expect("basicConstraints");
    assert!(crit, "basicConstraints must be critical");
    assert_eq!(bc, "CA:TRUE");
    let (crit, ku) = extension_block(text, "X509v3 Key Usage").expect("keyUsage");
    assert!(!crit);
    assert_eq!(ku, "Certificate Sign");
    let (_, ski) = extension_block(text, "X509v3 Subject Key Identifier").expect("SKI");
    let (_, aki) = extension_block(text, "X509v3 Authority Key Identifier").expect("AKI");
    assert_eq!(ski.len(), 59, "SHA-1 key id: {ski}");
    assert!(
        aki.contains(&format!("DirName:/CN={issuer_cn}")),
        "AKI issuer:always: {aki}"
    );
    assert!(aki.contains("serial:"), "AKI issuer:always: {aki}");
}

const V3_CA: [&str; 4] = [
    "X509v3 Subject Key Identifier",
    "X509v3 Authority Key Identifier",
    "X509v3 Basic Constraints",
    "X509v3 Key Usage",
];
const V3_USR: [&str; 4] = [
    "X509v3 Basic Constraints",
    "Netscape Comment",
    "X509v3 Subject Key Identifier",
    "X509v3 Authority Key Identifier",
];

fn check_v3_usr(text: &str) {
    assert_eq!(extension_names(text), V3_USR, "{text}");
    let (crit, bc) = extension_block(text, "X509v3 Basic Constraints").expect("basicConstraints");
    assert!(!crit);
    assert_eq!(bc, "CA:FALSE");
    let (crit, c) = extension_block(text, "Netscape Comment").unwrap();
    assert!(!crit);
    assert_eq!(c, "OpenSSL Generated Certificate");
    assert!(extension_block(text, "X509v3 Key Usage").is_none());
    assert!(extension_block(text, "X509v3 Subject Key Identifier").is_some());
    let (_, aki) = extension_block(text, "X509v3 Authority Key Identifier").expect("AKI");
    assert!(!aki.contains("DirName"), "v3_usr AKI is keyid only: {aki}");
}

fn serial_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.trim().starts_with("Serial Number:"))
        .unwrap();
    let same = lines[i].trim().trim_start_matches("Serial Number:").trim();
    if same.is_empty() {
        lines[i + 1].trim().to_string()
    } else {
        same.to_string()
    }
}

fn srktool(tree: &Tree, srks: &[Role]) -> Option<(Vec<u8>, Vec<u8>)> {
    let tool = support::oracle("srktool")?;
    let table = tree.dir.path().join("SRK_table.bin");
    let fuse = tree.dir.path().join("SRK_fuse.bin");
    let _ = std::fs::remove_file(&table);
    let _ = std::fs::remove_file(&fuse);
    let list: Vec<&str> = srks.iter().map(|r| tree.pem(*r)).collect();
    support::run_ok(
        Command::new(tool)
            .args(["-h", "4", "-d", "sha256", "-f", "1", "-t"])
            .arg(&table)
            .arg("-e")
            .arg(&fuse)
            .arg("-c")
            .arg(list.join(",")),
    );
    Some((std::fs::read(table).unwrap(), std::fs::read(fuse).unwrap()))
}

fn verify_tree(tree: &Tree, num_srk: u8) {
    let ca_cn = hab4::names(Role::Ca, tree.key_type, tree.srk_ca)
        .unwrap()
        .common_name;
    let ca = tree.text(Role::Ca);
    assert!(ca.contains(&format!("Subject: CN = {ca_cn}")));
    assert!(ca.contains(&format!("Issuer: CN = {ca_cn}")));
    check_v3_ca(&ca, &ca_cn);
    // CA1's CN is a T61String (openssl req with CST's configuration), its serial 20
    // random bytes; the SRKs name it with the very same bytes.
    let ca_der = std::fs::read(&tree.certs[&role_key(Role::Ca)].1).unwrap();
    let asn1 = openssl(&[
        "asn1parse",
        "-inform",
        "DER",
        "-in",
        tree.certs[&role_key(Role::Ca)].1.to_str().unwrap(),
    ]);
    assert!(
        asn1.contains(&format!("T61STRING         :{ca_cn}")),
        "{asn1}"
    );
    let c = <x509_cert::Certificate as der::Decode>::from_der(&ca_der).unwrap();
    assert_eq!(c.tbs_certificate.serial_number.as_bytes().len(), 20);
    let sig = match tree.key_type {
        KeyType::Rsa(_) => "Signature Algorithm: sha256WithRSAEncryption",
        KeyType::Ec(_) => "Signature Algorithm: ecdsa-with-SHA256",
    };
    let mut expect_serial = hab4::FIRST_SERIAL;
    for i in 1..=num_srk {
        let srk = Role::Srk(i);
        let srk_cn = hab4::names(srk, tree.key_type, tree.srk_ca)
            .unwrap()
            .common_name;
        let t = tree.text(srk);
        assert!(t.contains(&format!("Subject: CN = {srk_cn}")), "{t}");
        assert!(t.contains(&format!("Issuer: CN = {ca_cn}")));
        assert!(t.contains(sig), "{t}");
        assert_eq!(
            serial_line(&t),
            format!("{expect_serial} (0x{expect_serial:x})")
        );
        expect_serial += 1;
        openssl(&["verify", "-CAfile", tree.pem(Role::Ca), tree.pem(srk)]);
        if tree.srk_ca {
            check_v3_ca(&t, &ca_cn);
            for leaf in [Role::Csf(i), Role::Img(i)] {
                let lt = tree.text(leaf);
                let cn = hab4::names(leaf, tree.key_type, true).unwrap().common_name;
                assert!(lt.contains(&format!("Subject: CN = {cn}")));
                assert!(lt.contains(&format!("Issuer: CN = {srk_cn}")));
                assert!(lt.contains(sig));
                assert_eq!(
                    serial_line(&lt),
                    format!("{expect_serial} (0x{expect_serial:x})")
                );
                expect_serial += 1;
                check_v3_usr(&lt);
                let out = openssl(&[
                    "verify",
                    "-CAfile",
                    tree.pem(Role::Ca),
                    "-untrusted",
                    tree.pem(srk),
                    tree.pem(leaf),
                ]);
                assert!(out.contains(": OK"), "{out}");
            }
        } else {
            check_v3_usr(&t);
        }
    }
    // srktool accepts the SRKs and sets the CA flag exactly when the SRKs are CAs.
    let srks: Vec<Role> = (1..=num_srk).map(Role::Srk).collect();
    if let Some((table, fuse)) = srktool(tree, &srks) {
        assert_eq!(fuse.len(), 32);
        assert_eq!(table[0], 0xd7);
        let flag = table[4 + 7];
        assert_eq!(flag, if tree.srk_ca { 0x80 } else { 0x00 }, "SRK flags");
        // spsdk reads the CA flag its own way (keyUsage keyCertSign); our SRKs carry
        // both extensions, so its table is byte-identical to srktool's.
        if let Some(nxp) = support::oracle("nxpcrypto") {
            let out = tree.dir.path().join("spsdk_table.bin");
            let mut cmd = Command::new(nxp);
            cmd.args(["rot", "export", "-f", "mimxrt1060"]);
            for r in &srks {
                cmd.arg("-k").arg(tree.pem(*r));
            }
            cmd.arg("-o").arg(&out);
            support::run_ok(&mut cmd);
            assert_eq!(std::fs::read(out).unwrap(), table, "spsdk vs srktool table");
        }
    }
}

#[test]
fn rsa2048_tree_ca_mode_verifies_and_srktool_accepts() {
    let sim = tempfile::tempdir().unwrap();
    let mut t = sim_token(sim.path());
    let tree = issue_tree(t.as_mut(), KeyAlgorithm::Rsa2048, 4, true);
    assert!(tree
        .dir
        .path()
        .join("SRK1_sha256_2048_65537_v3_ca_crt.pem")
        .is_file());
    assert!(tree
        .dir
        .path()
        .join("CSF4_1_sha256_2048_65537_v3_usr_crt.der")
        .is_file());
    assert!(tree
        .dir
        .path()
        .join("IMG2_1_sha256_2048_65537_v3_usr_crt.pem")
        .is_file());
    verify_tree(&tree, 4);
}

#[test]
fn rsa4096_tree_one_srk() {
    let sim = tempfile::tempdir().unwrap();
    let mut t = sim_token(sim.path());
    let tree = issue_tree(t.as_mut(), KeyAlgorithm::Rsa4096, 1, true);
    assert!(tree
        .dir
        .path()
        .join("CSF1_1_sha256_4096_65537_v3_usr_crt.pem")
        .is_file());
    verify_tree(&tree, 1);
}

#[test]
fn ec_p256_tree_verifies_and_srktool_accepts() {
    let sim = tempfile::tempdir().unwrap();
    let mut t = sim_token(sim.path());
    let tree = issue_tree(t.as_mut(), KeyAlgorithm::EcP256, 4, true);
    assert!(tree
        .dir
        .path()
        .join("SRK3_sha256_prime256v1_v3_ca_crt.pem")
        .is_file());
    verify_tree(&tree, 4);
}

#[test]
fn ec_p384_tree_signs_with_sha256_like_the_script() {
    let sim = tempfile::tempdir().unwrap();
    let mut t = sim_token(sim.path());
    let tree = issue_tree(t.as_mut(), KeyAlgorithm::EcP384, 2, true);
    verify_tree(&tree, 2);
}

#[test]
fn non_ca_srks_use_v3_usr_and_srktool_clears_the_ca_flag() {
    let sim = tempfile::tempdir().unwrap();
    let mut t = sim_token(sim.path());
    let tree = issue_tree(t.as_mut(), KeyAlgorithm::Rsa2048, 3, false);
    assert!(tree
        .dir
        .path()
        .join("SRK2_sha256_2048_65537_v3_usr_crt.pem")
        .is_file());
    verify_tree(&tree, 3);
}

#[test]
fn refusals_are_clear() {
    let sim = tempfile::tempdir().unwrap();
    let mut t = sim_token(sim.path());
    let t = t.as_mut();
    let ca_key = t
        .generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label("ca"),
            &crate::support::object_id(&[1]),
        )
        .unwrap();
    let leaf_key = t
        .generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label("leaf"),
            &crate::support::object_id(&[2]),
        )
        .unwrap();
    let base = |profile, issuer, key| IssueRequest {
        profile,
        subject: pki::common_name("x").unwrap(),
        subject_key: key,
        issuer,
        scheme: KeyType::Ec(officiant::keys::Curve::P256).scheme(),
        serial: pki::serial_from_u64(1),
        validity: Validity::days_from_now(1),
    };
    // An SRK cannot be self-signed.
    let e = pki::issue(
        &mut key(t, "leaf"),
        &base(
            Profile::Hab4Srk { ca: true },
            Issuer::SelfSigned,
            leaf_key.clone(),
        ),
    )
    .unwrap_err();
    assert!(e.to_string().contains("hab4-srk"), "{e}");
    let ca = pki::issue(
        &mut key(t, "ca"),
        &base(Profile::Hab4Ca, Issuer::SelfSigned, ca_key.clone()),
    )
    .unwrap();
    // Signing with a key that is not the issuer's.
    let e = pki::issue(
        &mut key(t, "leaf"),
        &base(Profile::Hab4Csf, Issuer::Certificate(&ca), leaf_key.clone()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not the issuer's key"), "{e}");
    // A non-CA certificate cannot issue.
    let usr = pki::issue(
        &mut key(t, "ca"),
        &base(Profile::Hab4Csf, Issuer::Certificate(&ca), leaf_key.clone()),
    )
    .unwrap();
    let e = pki::issue(
        &mut key(t, "leaf"),
        &base(Profile::Hab4Img, Issuer::Certificate(&usr), ca_key.clone()),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a CA"), "{e}");
    // Truncated issuer DER.
    let e = pki::issue(
        &mut key(t, "ca"),
        &base(
            Profile::Hab4Img,
            Issuer::Certificate(&ca[..ca.len() - 3]),
            leaf_key.clone(),
        ),
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("issuer certificate"), "{e}");
    // The issuer certificate may come as PEM; a public key PEM is not a certificate.
    let ca_pem = pki::to_pem(&ca);
    pki::issue(
        &mut key(t, "ca"),
        &base(
            Profile::Hab4Img,
            Issuer::Certificate(ca_pem.as_bytes()),
            leaf_key.clone(),
        ),
    )
    .unwrap();
    let key_pem = leaf_key.to_pem();
    let e = pki::issue(
        &mut key(t, "ca"),
        &base(
            Profile::Hab4Img,
            Issuer::Certificate(key_pem.as_bytes()),
            leaf_key.clone(),
        ),
    )
    .unwrap_err();
    assert!(e.to_string().contains("CERTIFICATE"), "{e}");
    // A zero serial.
    let mut r = base(Profile::Hab4Ca, Issuer::SelfSigned, ca_key);
    r.serial = vec![0];
    assert!(pki::issue(&mut key(t, "ca"), &r)
        .unwrap_err()
        .to_string()
        .contains("serial"));
}
