//! Signatures made on the rehearsal token, judged by stock openssl.

use officiant::keys::{HashAlg, KeyAlgorithm, SignScheme};

use crate::support;
use crate::support::rehearsal::{ready_token, sign_and_verify};

const HASHES: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];

fn check_algorithm(alg: KeyAlgorithm) {
    let Some(openssl) = support::oracle("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    let label = alg.name();
    let public = t
        .generate_key(
            alg,
            &crate::support::label(label),
            &crate::support::object_id(&[0x10]),
        )
        .unwrap();
    assert_eq!(KeyAlgorithm::of(&public), Some(alg));
    for h in HASHES {
        let schemes = if alg.is_rsa() {
            vec![SignScheme::RsaPss(h), SignScheme::RsaPkcs1(h)]
        } else {
            vec![SignScheme::Ecdsa(h)]
        };
        for scheme in schemes {
            sign_and_verify(&openssl, t.as_mut(), work.path(), label, scheme);
        }
    }
}

#[test]
fn ec_p256_signatures_verify_with_openssl() {
    check_algorithm(KeyAlgorithm::EcP256);
}

#[test]
fn ec_p384_signatures_verify_with_openssl() {
    check_algorithm(KeyAlgorithm::EcP384);
}

#[test]
fn ec_p521_signatures_verify_with_openssl() {
    check_algorithm(KeyAlgorithm::EcP521);
}

#[test]
fn rsa_2048_signatures_verify_with_openssl() {
    check_algorithm(KeyAlgorithm::Rsa2048);
}

#[test]
fn rsa_3072_signatures_verify_with_openssl() {
    check_algorithm(KeyAlgorithm::Rsa3072);
}

/// Slow in pure Rust (seconds); the one 4096-bit generation in the suite.
#[test]
fn rsa_4096_signatures_verify_with_openssl() {
    check_algorithm(KeyAlgorithm::Rsa4096);
}
