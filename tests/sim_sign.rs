//! Signatures made on the rehearsal token, judged by stock openssl.
mod support;

use std::path::Path;
use std::process::Command;

use officiant::hsm::{self, Token, UserType};
use officiant::keys::{ecdsa_fixed_to_der, HashAlg, KeyAlgorithm, SignScheme};
use officiant::secret::Secret;

const SO_PIN: &str = "so-canary-7319";
const USER_PIN: &str = "user-canary-4826";

fn secret(s: &str) -> Secret {
    Secret::from_string(s.to_string())
}

fn ready_token(dir: &Path) -> Box<dyn Token> {
    let mut t = hsm::sim::open(dir).unwrap();
    t.init_token("rehearsal", &secret(SO_PIN), &secret(USER_PIN))
        .unwrap();
    t.login(UserType::User, &secret(USER_PIN)).unwrap();
    t
}

fn dgst_flag(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "-sha256",
        HashAlg::Sha384 => "-sha384",
        HashAlg::Sha512 => "-sha512",
    }
}

fn md_name(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
        HashAlg::Sha512 => "sha512",
    }
}

/// Sign `data` on the token and have `openssl dgst -verify` check it with the exported
/// public key.
fn sign_and_verify(
    openssl: &Path,
    t: &mut dyn Token,
    work: &Path,
    label: &str,
    scheme: SignScheme,
) {
    let data = format!("payload for {label} with {}", scheme.name()).into_bytes();
    let h = scheme.hash();
    let mut sig = t.sign(label, scheme, &h.digest(&data)).unwrap();
    if let SignScheme::Ecdsa(_) = scheme {
        sig = ecdsa_fixed_to_der(&sig).unwrap();
    }
    let tag = format!("{label}-{}", scheme.name().replace([' ', '#', '.'], "_"));
    let pub_pem = work.join(format!("{tag}.pub.pem"));
    let sig_file = work.join(format!("{tag}.sig"));
    let data_file = work.join(format!("{tag}.bin"));
    std::fs::write(&pub_pem, t.public_key(label).unwrap().to_pem()).unwrap();
    std::fs::write(&sig_file, &sig).unwrap();
    std::fs::write(&data_file, &data).unwrap();
    support::run_ok(
        Command::new(openssl)
            .args(["pkey", "-pubin", "-noout", "-in"])
            .arg(&pub_pem),
    );
    let mut cmd = Command::new(openssl);
    cmd.args(["dgst", dgst_flag(h), "-verify"])
        .arg(&pub_pem)
        .arg("-signature")
        .arg(&sig_file);
    if let SignScheme::RsaPss(_) = scheme {
        cmd.args(["-sigopt", "rsa_padding_mode:pss", "-sigopt"])
            .arg(format!("rsa_pss_saltlen:{}", h.len()))
            .arg("-sigopt")
            .arg(format!("rsa_mgf1_md:{}", md_name(h)));
    }
    cmd.arg(&data_file);
    let out = support::run_ok(&mut cmd);
    assert!(
        out.contains("Verified OK"),
        "{label} {}: {out}",
        scheme.name()
    );
}

const HASHES: [HashAlg; 3] = [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512];

fn check_algorithm(alg: KeyAlgorithm) {
    let Some(openssl) = support::oracle("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    let label = alg.name();
    let public = t.generate_key(alg, label, &[0x10]).unwrap();
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
