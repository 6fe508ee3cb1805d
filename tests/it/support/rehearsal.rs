//! Helpers shared by the rehearsal-token tests: a ready token and an openssl verdict on
//! a signature it made.

use std::path::Path;
use std::process::Command;

use officiant::hsm::{self, Token, UserType};
use officiant::keys::{ecdsa_fixed_to_der, HashAlg, PublicKey, SignScheme};
use officiant::secret::Secret;

use crate::support;

pub const SO_PIN: &str = "so-canary-7319";
pub const USER_PIN: &str = "user-canary-4826";

pub fn secret(s: &str) -> Secret {
    Secret::from_string(s.to_string())
}

pub fn ready_token(dir: &Path) -> Box<dyn Token> {
    let mut t = hsm::sim::open(dir).unwrap();
    t.init_token("rehearsal", &secret(SO_PIN), &secret(USER_PIN))
        .unwrap();
    t.login(UserType::User, &secret(USER_PIN)).unwrap();
    t
}

pub fn dgst_flag(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "-sha256",
        HashAlg::Sha384 => "-sha384",
        HashAlg::Sha512 => "-sha512",
    }
}

pub fn md_name(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
        HashAlg::Sha512 => "sha512",
    }
}

/// Sign `data` on the token and have `openssl dgst -verify` check it with the exported
/// public key.
pub fn sign_and_verify(
    openssl: &Path,
    t: &mut dyn Token,
    work: &Path,
    label: &str,
    scheme: SignScheme,
) {
    let public = t.public_key(label).unwrap();
    sign_and_verify_with(openssl, t, work, label, scheme, &public);
}

/// Like [`sign_and_verify`], judged against `public` (say, the original key's half).
pub fn sign_and_verify_with(
    openssl: &Path,
    t: &mut dyn Token,
    work: &Path,
    label: &str,
    scheme: SignScheme,
    public: &PublicKey,
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
    std::fs::write(&pub_pem, public.to_pem()).unwrap();
    std::fs::write(&sig_file, &sig).unwrap();
    std::fs::write(&data_file, &data).unwrap();
    support::run_ok(
        Command::new(openssl)
            .args(["pkey", "-pubin", "-noout", "-in"])
            .arg(&pub_pem),
    );
    let pub_der = work.join(format!("{tag}.pub.der"));
    std::fs::write(&pub_der, public.to_spki_der()).unwrap();
    support::run_ok(
        Command::new(openssl)
            .args(["pkey", "-pubin", "-inform", "DER", "-noout", "-in"])
            .arg(&pub_der),
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
