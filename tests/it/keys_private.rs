//! Private key files as openssl writes them (tests/fixtures/keys/make.sh): each parses to
//! the key whose public half openssl exported, and each unsupported form is refused with
//! a one-line error that says what to do.

use std::path::PathBuf;

use officiant::keys::{self, PrivateKey, PublicKey};
use officiant::secret::Secret;

use crate::support;

fn fixture(name: &str) -> PathBuf {
    support::key_fixture(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn passphrase() -> Secret {
    Secret::from_string(support::KEY_FIXTURE_PASSPHRASE.into())
}

fn public(name: &str) -> PublicKey {
    PublicKey::from_bytes(&read(name)).unwrap()
}

#[test]
fn every_format_parses_to_the_key_openssl_exported() {
    for (file, pub_file, encrypted) in support::KEY_FIXTURES {
        let pass = encrypted.then(passphrase);
        let key = PrivateKey::from_bytes(&read(file), pass.as_ref())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.public_key(), &public(pub_file), "{file}");
    }
}

#[test]
fn encrypted_key_without_passphrase_says_so() {
    for (file, _, encrypted) in support::KEY_FIXTURES.iter().filter(|c| c.2) {
        let _ = encrypted;
        let err = PrivateKey::from_bytes(&read(file), None).unwrap_err();
        assert_eq!(err, keys::Error::NeedPassphrase, "{file}");
        assert_eq!(err.to_string(), "encrypted key needs a passphrase");
    }
}

#[test]
fn wrong_passphrase_is_reported_as_such() {
    let wrong = Secret::from_string("not-the-passphrase".into());
    for (file, _, _) in support::KEY_FIXTURES.iter().filter(|c| c.2) {
        let err = PrivateKey::from_bytes(&read(file), Some(&wrong)).unwrap_err();
        assert_eq!(err, keys::Error::Decrypt, "{file}");
        assert_eq!(err.to_string(), "wrong passphrase or corrupt encrypted key");
    }
}

#[test]
fn pbes1_is_refused_with_the_conversion_command() {
    let err = PrivateKey::from_bytes(&read("rsa2048.pbes1.pem"), Some(&passphrase())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported: encrypted PKCS#8 with legacy PBES1 encryption (1.2.840.113549.1.12.1.3, \
         as `openssl pkcs8 -v1` writes it); convert it with \
         `openssl pkcs8 -topk8 -v2 aes256 -in KEY -out NEW.pem`"
    );
}

#[test]
fn traditional_encrypted_pem_is_refused_with_the_conversion_command() {
    let err =
        PrivateKey::from_bytes(&read("rsa2048.trad-enc.pem"), Some(&passphrase())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported: traditional OpenSSL encrypted PEM (Proc-Type: 4,ENCRYPTED); convert it \
         with `openssl pkcs8 -topk8 -v2 aes256 -in KEY -out NEW.pem`"
    );
}

#[test]
fn unsupported_curve_is_named() {
    let err = PrivateKey::from_bytes(&read("k256.pk8.pem"), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported: EC curve 1.3.132.0.10 (supported: P-256, P-384, P-521, brainpoolP256r1/t1)"
    );
}

#[test]
fn public_key_or_garbage_is_not_a_private_key() {
    let err = PrivateKey::from_bytes(&read("p256.pub.pem"), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed key: no private key PEM block (found PUBLIC KEY)"
    );
    let err = PrivateKey::from_bytes(b"\x30\x03\x02\x01\x00", None).unwrap_err();
    assert!(
        err.to_string().starts_with("malformed key: neither PEM"),
        "{err}"
    );
    // Truncated DER must not panic.
    let der = read("rsa2048.pk8-des3.der");
    for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
        assert!(PrivateKey::from_bytes(&der[..cut], Some(&passphrase())).is_err());
    }
}

#[test]
fn debug_never_shows_key_material() {
    let key = PrivateKey::from_bytes(&read("rsa2048.pkcs1.pem"), None).unwrap();
    let shown = format!("{key:?}");
    assert_eq!(shown, "PrivateKey(RSA 2048, [redacted])");
    let key = PrivateKey::from_bytes(&read("p256.pk8.pem"), None).unwrap();
    let PrivateKey::Ec { d, .. } = &key else {
        panic!("not EC")
    };
    let d_hex = hex::encode(d.as_slice());
    let shown = format!("{key:?}");
    assert!(!shown.contains(&d_hex) && !shown.to_lowercase().contains(&d_hex[..8]));
}

/// Every single-byte corruption of a DER key is an error or a (different) key, never a
/// panic.
#[test]
fn corrupted_der_never_panics() {
    for name in ["p256.pk8.der", "p256.sec1.der", "rsa2048.pkcs1.der"] {
        let der = read(name);
        for i in 0..der.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= flip;
                let _ = PrivateKey::from_bytes(&bad, None);
            }
        }
    }
}

/// A file key signs through `keys::Signer` (the code the rehearsal token signs with too)
/// and openssl, given only the public half, accepts each signature: ECDSA on the three
/// curves (including the short-digest case, P-521 with SHA-256), RSA PKCS#1 v1.5 and PSS.
#[test]
fn file_signer_signatures_verify_with_openssl() {
    use officiant::keys::{Encoding, FileSigner, HashAlg, SignScheme};
    let openssl = support::oracle("openssl").expect("openssl judges this test");
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("msg.bin");
    std::fs::write(&msg, b"what the file key signs").unwrap();
    let pass = passphrase();
    let cases = [
        (
            "p256.pk8.pem",
            "p256.pub.pem",
            SignScheme::Ecdsa(HashAlg::Sha256),
        ),
        (
            "p384.pk8-aes256-sha1.pem",
            "p384.pub.pem",
            SignScheme::Ecdsa(HashAlg::Sha384),
        ),
        (
            "p521.pk8-des3.pem",
            "p521.pub.pem",
            SignScheme::Ecdsa(HashAlg::Sha256),
        ),
        (
            "rsa2048.pkcs1.pem",
            "rsa2048.pub.pem",
            SignScheme::RsaPkcs1(HashAlg::Sha256),
        ),
        (
            "rsa2048.pkcs1.pem",
            "rsa2048.pub.pem",
            SignScheme::RsaPss(HashAlg::Sha512),
        ),
        (
            "rsa3072.pk8.pem",
            "rsa3072.pub.pem",
            SignScheme::RsaPss(HashAlg::Sha256),
        ),
    ];
    for (i, (file, pub_file, scheme)) in cases.into_iter().enumerate() {
        let mut key = FileSigner::from_file(&fixture(file), Some(&pass)).unwrap();
        let digest = scheme.hash().digest(&std::fs::read(&msg).unwrap());
        let sig = keys::sign_checked(&mut key, scheme, &digest, Encoding::Der).unwrap();
        let sig_path = dir.path().join(format!("{i}.sig"));
        std::fs::write(&sig_path, sig).unwrap();
        let md = format!("-{}", scheme.hash().name().replace('-', "").to_lowercase());
        let mut cmd = std::process::Command::new(&openssl);
        cmd.args(["dgst", &md, "-verify"])
            .arg(fixture(pub_file))
            .arg("-signature")
            .arg(&sig_path);
        if matches!(scheme, SignScheme::RsaPss(_)) {
            cmd.args([
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
            ]);
        }
        let out = support::run_ok(cmd.arg(&msg));
        assert!(
            out.contains("Verified OK"),
            "{file} {}: {out}",
            scheme.name()
        );
    }
}

/// The file key never shows its secret: not in `Debug`, not in an error.
#[test]
fn file_signer_never_shows_key_material() {
    use officiant::keys::{FileSigner, HashAlg, SignScheme, Signer};
    let key = PrivateKey::from_bytes(&read("p256.pk8.pem"), None).unwrap();
    let PrivateKey::Ec { d, .. } = &key else {
        panic!("not EC")
    };
    let d_hex = hex::encode(d.as_slice());
    let mut signer = FileSigner::new("fw-key", key);
    let shown = format!("{signer:?}");
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(!shown.to_lowercase().contains(&d_hex[..8]), "{shown}");
    // A short digest and a scheme the key cannot make: one-line errors naming the key.
    for (scheme, digest) in [
        (SignScheme::Ecdsa(HashAlg::Sha256), vec![0u8; 20]),
        (SignScheme::RsaPss(HashAlg::Sha256), vec![0u8; 32]),
    ] {
        let e = signer.sign_digest(scheme, &digest).unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(e.to_string().starts_with("key \"fw-key\": "), "{e}");
        assert!(!text.to_lowercase().contains(&d_hex[..8]), "{text}");
        assert!(
            std::error::Error::source(&e).is_some(),
            "the key's own error is kept"
        );
    }
    // An unreadable file is named.
    let e = FileSigner::from_file(&fixture("no-such-key.pem"), None).unwrap_err();
    assert!(e.contains("no-such-key.pem"), "{e}");
}
