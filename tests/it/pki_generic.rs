//! The generic CA → signer flow (ST's Tiny HSM: a CA, then an ECDSA signer certificate
//! issued by it) with every signature scheme we write; openssl verifies each chain.

use officiant::keys::{HashAlg, KeyAlgorithm, SignScheme};
use officiant::pki::{self, IssueRequest, Issuer, Profile, Validity};

use crate::support::certs::{extension_block, openssl, sim_token, x509_text};

struct Chain {
    dir: tempfile::TempDir,
    ca: std::path::PathBuf,
    signer: std::path::PathBuf,
}

fn ca_then_signer(ca_alg: KeyAlgorithm, scheme: SignScheme, signer_alg: KeyAlgorithm) -> Chain {
    let sim = tempfile::tempdir().unwrap();
    let mut t = sim_token(sim.path());
    let t = t.as_mut();
    let ca_key = t
        .generate_key(
            ca_alg,
            &crate::support::label("ca"),
            &crate::support::object_id(&[1]),
        )
        .unwrap();
    let signer_key = t
        .generate_key(
            signer_alg,
            &crate::support::label("signer"),
            &crate::support::object_id(&[2]),
        )
        .unwrap();
    let ca = pki::issue(
        &mut crate::support::certs::key(t, "ca"),
        &IssueRequest {
            profile: Profile::Ca,
            subject: pki::parse_name("CN=Tiny HSM CA,O=Officiant test").unwrap(),
            subject_key: ca_key,
            issuer: Issuer::SelfSigned,
            scheme,
            serial: pki::random_serial(),
            validity: Validity::days_from_now(3650),
        },
    )
    .unwrap();
    let signer = pki::issue(
        &mut crate::support::certs::key(t, "ca"),
        &IssueRequest {
            profile: Profile::Signer,
            subject: pki::common_name("Tiny HSM signer").unwrap(),
            subject_key: signer_key,
            issuer: Issuer::Certificate(&ca),
            scheme,
            serial: pki::serial_from_u64(2),
            validity: Validity::days_from_now(365),
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cp, sp) = (dir.path().join("ca.der"), dir.path().join("signer.der"));
    std::fs::write(&cp, &ca).unwrap();
    std::fs::write(&sp, &signer).unwrap();
    std::fs::write(cp.with_extension("pem"), pki::to_pem(&ca)).unwrap();
    std::fs::write(sp.with_extension("pem"), pki::to_pem(&signer)).unwrap();
    Chain {
        dir,
        ca: cp,
        signer: sp,
    }
}

fn verify(c: &Chain) -> (String, String) {
    let ca_pem = c.ca.with_extension("pem");
    let s_pem = c.signer.with_extension("pem");
    let out = openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        ca_pem.to_str().unwrap(),
        s_pem.to_str().unwrap(),
    ]);
    assert!(out.contains(": OK"), "{out}");
    (x509_text(&c.ca), x509_text(&c.signer))
}

#[test]
fn tiny_hsm_ca_and_ecdsa_signer_verify() {
    let c = ca_then_signer(
        KeyAlgorithm::EcP256,
        SignScheme::Ecdsa(HashAlg::Sha256),
        KeyAlgorithm::EcP256,
    );
    let (ca, signer) = verify(&c);
    assert!(
        ca.contains("Subject: O = Officiant test, CN = Tiny HSM CA"),
        "{ca}"
    );
    assert_eq!(
        extension_block(&ca, "X509v3 Basic Constraints").unwrap(),
        (true, "CA:TRUE".into())
    );
    assert_eq!(
        extension_block(&ca, "X509v3 Key Usage").unwrap(),
        (true, "Certificate Sign, CRL Sign".into())
    );
    assert!(signer.contains("Issuer: O = Officiant test, CN = Tiny HSM CA"));
    assert!(signer.contains("Signature Algorithm: ecdsa-with-SHA256"));
    assert_eq!(
        extension_block(&signer, "X509v3 Key Usage").unwrap(),
        (true, "Digital Signature".into())
    );
    assert_eq!(
        extension_block(&signer, "X509v3 Basic Constraints").unwrap(),
        (true, "CA:FALSE".into())
    );
    // The signer's AKI is the CA's SKI.
    let ski = extension_block(&ca, "X509v3 Subject Key Identifier")
        .unwrap()
        .1;
    let aki = extension_block(&signer, "X509v3 Authority Key Identifier")
        .unwrap()
        .1;
    assert!(aki.contains(&ski), "{aki} vs {ski}");
    // openssl agrees the signer may sign code-ish things but is no CA.
    let purpose = openssl(&[
        "x509",
        "-in",
        c.signer.with_extension("pem").to_str().unwrap(),
        "-noout",
        "-purpose",
    ]);
    assert!(purpose.contains("SSL client CA : No"), "{purpose}");
    let _ = &c.dir;
}

#[test]
fn rsa_pss_certificates_verify_with_openssl() {
    let c = ca_then_signer(
        KeyAlgorithm::Rsa2048,
        SignScheme::RsaPss(HashAlg::Sha256),
        KeyAlgorithm::EcP256,
    );
    let (ca, signer) = verify(&c);
    for t in [&ca, &signer] {
        assert!(t.contains("Signature Algorithm: rsassaPss"), "{t}");
        assert!(t.contains("Hash Algorithm: sha256"), "{t}");
        assert!(t.contains("Mask Algorithm: mgf1 with sha256"), "{t}");
        assert!(t.contains("Salt Length: 0x20"), "{t}");
    }
}

#[test]
fn every_scheme_and_curve_verifies() {
    let cases = [
        (
            KeyAlgorithm::EcP384,
            SignScheme::Ecdsa(HashAlg::Sha384),
            "ecdsa-with-SHA384",
        ),
        (
            KeyAlgorithm::EcP521,
            SignScheme::Ecdsa(HashAlg::Sha512),
            "ecdsa-with-SHA512",
        ),
        (
            KeyAlgorithm::Rsa2048,
            SignScheme::RsaPkcs1(HashAlg::Sha256),
            "sha256WithRSAEncryption",
        ),
        (
            KeyAlgorithm::Rsa2048,
            SignScheme::RsaPkcs1(HashAlg::Sha384),
            "sha384WithRSAEncryption",
        ),
        (
            KeyAlgorithm::Rsa2048,
            SignScheme::RsaPss(HashAlg::Sha512),
            "rsassaPss",
        ),
    ];
    for (alg, scheme, name) in cases {
        let c = ca_then_signer(alg, scheme, KeyAlgorithm::EcP256);
        let (ca, _) = verify(&c);
        assert!(
            ca.contains(&format!("Signature Algorithm: {name}")),
            "{name}: {ca}"
        );
    }
}

#[test]
fn a_scheme_that_does_not_fit_the_key_is_refused() {
    let sim = tempfile::tempdir().unwrap();
    let mut t = sim_token(sim.path());
    let t = t.as_mut();
    let k = t
        .generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label("ca"),
            &crate::support::object_id(&[1]),
        )
        .unwrap();
    let e = pki::issue(
        &mut crate::support::certs::key(t, "ca"),
        &IssueRequest {
            profile: Profile::Ca,
            subject: pki::common_name("x").unwrap(),
            subject_key: k,
            issuer: Issuer::SelfSigned,
            scheme: SignScheme::RsaPss(HashAlg::Sha256),
            serial: pki::serial_from_u64(1),
            validity: Validity::days_from_now(1),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("RSA-PSS"), "{e}");
}
