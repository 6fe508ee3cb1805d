//! Issuance with the keys on a real PKCS#11 token (SoftHSMv2): the HAB4 tree and a
//! CA → signer pair, judged by openssl and srktool; the certificate stored next to its
//! key is what pkcs11-tool lists.
//!
//! SoftHSM reads SOFTHSM2_CONF once per process, so everything runs in one test, holding
//! the in-process lock it shares with pkcs11_softhsm (`SoftHsm::in_process`).

use std::process::Command;

use officiant::hsm::{self, NewObject, UserType};
use officiant::keys::{HashAlg, KeyAlgorithm, SignScheme};
use officiant::pki::hab4::Role;
use officiant::pki::{self, IssueRequest, Issuer, Profile, Validity};
use officiant::secret::Secret;

use crate::support;
use crate::support::certs::{issue_tree, openssl};

const USER_PIN: &str = "pki-user-1234";

#[test]
fn certificates_issued_on_softhsm_verify() {
    let Some(soft) = support::SoftHsm::new() else {
        return;
    };
    let _in_process = soft.in_process();
    let rest = soft.uri()["pkcs11:".len()..].to_string();
    let mut t = hsm::pkcs11::open(&rest, Some("pki")).unwrap();
    t.init_token(
        "pki",
        &Secret::from_string("pki-so-0000".into()),
        &Secret::from_string(USER_PIN.into()),
    )
    .unwrap();
    t.login(UserType::User, &Secret::from_string(USER_PIN.into()))
        .unwrap();

    // HAB4: CA1 → SRK1 → CSF1_1 / IMG1_1, RSA-2048, keys generated on SoftHSM.
    let tree = issue_tree(t.as_mut(), KeyAlgorithm::Rsa2048, 1, true);
    for leaf in [Role::Csf(1), Role::Img(1)] {
        let out = openssl(&[
            "verify",
            "-CAfile",
            tree.pem(Role::Ca),
            "-untrusted",
            tree.pem(Role::Srk(1)),
            tree.pem(leaf),
        ]);
        assert!(out.contains(": OK"), "{out}");
    }
    if let Some(srktool) = support::oracle("srktool") {
        let d = tree.dir.path();
        support::run_ok(
            Command::new(srktool)
                .args(["-h", "4", "-d", "sha256", "-f", "1", "-t"])
                .arg(d.join("t.bin"))
                .arg("-e")
                .arg(d.join("f.bin"))
                .arg("-c")
                .arg(tree.pem(Role::Srk(1))),
        );
        assert_eq!(std::fs::read(d.join("f.bin")).unwrap().len(), 32);
    }

    // Tiny HSM flow: an ECDSA CA, then a signer certificate it issues; and an RSA-PSS CA.
    let ca_key = t
        .generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label("tiny-ca"),
            &crate::support::object_id(&[0x30, 1]),
        )
        .unwrap();
    let signer_key = t
        .generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label("tiny-signer"),
            &crate::support::object_id(&[0x30, 2]),
        )
        .unwrap();
    let pss_key = t
        .generate_key(
            KeyAlgorithm::Rsa2048,
            &crate::support::label("pss-ca"),
            &crate::support::object_id(&[0x30, 3]),
        )
        .unwrap();
    let ca = pki::issue(
        &mut crate::support::certs::key(t.as_mut(), "tiny-ca"),
        &IssueRequest {
            profile: Profile::Ca,
            subject: pki::common_name("Tiny HSM CA").unwrap(),
            subject_key: ca_key,
            issuer: Issuer::SelfSigned,
            scheme: SignScheme::Ecdsa(HashAlg::Sha256),
            serial: pki::random_serial(),
            validity: Validity::days_from_now(3650),
        },
    )
    .unwrap();
    let signer = pki::issue(
        &mut crate::support::certs::key(t.as_mut(), "tiny-ca"),
        &IssueRequest {
            profile: Profile::Signer,
            subject: pki::common_name("Tiny HSM signer").unwrap(),
            subject_key: signer_key,
            issuer: Issuer::Certificate(&ca),
            scheme: SignScheme::Ecdsa(HashAlg::Sha256),
            serial: pki::serial_from_u64(2),
            validity: Validity::days_from_now(365),
        },
    )
    .unwrap();
    let pss = pki::issue(
        &mut crate::support::certs::key(t.as_mut(), "pss-ca"),
        &IssueRequest {
            profile: Profile::Ca,
            subject: pki::common_name("PSS CA").unwrap(),
            subject_key: pss_key,
            issuer: Issuer::SelfSigned,
            scheme: SignScheme::RsaPss(HashAlg::Sha256),
            serial: pki::random_serial(),
            validity: Validity::days_from_now(3650),
        },
    )
    .unwrap();
    let d = tree.dir.path();
    for (name, der) in [("ca", &ca), ("signer", &signer), ("pss", &pss)] {
        std::fs::write(d.join(format!("{name}.pem")), pki::to_pem(der)).unwrap();
    }
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    let out = openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        &p("ca.pem"),
        &p("signer.pem"),
    ]);
    assert!(out.contains(": OK"), "{out}");
    let out = openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        &p("pss.pem"),
        &p("pss.pem"),
    ]);
    assert!(out.contains(": OK"), "{out}");

    // The signer certificate stored with its key's label and id, as pkcs11-tool sees it.
    t.put_object(
        &crate::support::label("tiny-signer"),
        &crate::support::object_id(&[0x30, 2]),
        &NewObject::Certificate(signer.clone()),
    )
    .unwrap();
    if let Some(tool) = support::oracle("pkcs11-tool") {
        let mut c = Command::new(tool);
        soft.env(&mut c)
            .arg("--module")
            .arg(&soft.module)
            .args(["--token-label", "pki", "--login", "--pin", USER_PIN])
            .args(["--list-objects", "--type", "cert"]);
        let out = support::run_ok(&mut c);
        assert!(out.contains("label:      tiny-signer"), "{out}");
        assert!(out.contains("ID:         3002"), "{out}");
    }
    drop(t);
}
