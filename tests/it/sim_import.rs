//! Keys imported from every file format openssl writes sign on the rehearsal token, and
//! openssl verifies the signatures with the original key's public half.

use std::path::PathBuf;

use officiant::hsm::ObjectClass;
use officiant::keys::{HashAlg, PrivateKey, PublicKey, SignScheme};
use officiant::secret::Secret;

use crate::support;
use crate::support::rehearsal::{ready_token, sign_and_verify_with, SO_PIN, USER_PIN};

const PASSPHRASE: &str = support::KEY_FIXTURE_PASSPHRASE;

fn fixture(name: &str) -> PathBuf {
    support::key_fixture(name)
}

#[test]
fn imported_keys_sign_and_openssl_verifies_with_the_original_public_key() {
    let Some(openssl) = support::oracle("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    let pass = Secret::from_string(PASSPHRASE.into());
    for (i, (file, pub_file, encrypted)) in support::KEY_FIXTURES.iter().enumerate() {
        let bytes = std::fs::read(fixture(file)).unwrap();
        let key = PrivateKey::from_bytes(&bytes, encrypted.then_some(&pass))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let original = PublicKey::from_bytes(&std::fs::read(fixture(pub_file)).unwrap()).unwrap();
        let label = format!("imported-{file}");
        let got = t
            .import_key(
                &key,
                &crate::support::label(&label),
                &crate::support::object_id(&[0x20, i as u8]),
            )
            .unwrap();
        assert_eq!(got, original, "{file}");
        let scheme = match &original {
            PublicKey::Ec { curve, .. } => SignScheme::Ecdsa(curve.default_hash()),
            PublicKey::Rsa { .. } => SignScheme::RsaPss(HashAlg::Sha256),
        };
        sign_and_verify_with(&openssl, t.as_mut(), work.path(), &label, scheme, &original);
        if original.describe().starts_with("RSA") {
            let pkcs1 = SignScheme::RsaPkcs1(HashAlg::Sha384);
            sign_and_verify_with(&openssl, t.as_mut(), work.path(), &label, pkcs1, &original);
        }
    }
    // Imported keys are marked as not generated on the token.
    let objects = t.list_objects().unwrap();
    let private = objects
        .iter()
        .find(|o| o.class == ObjectClass::PrivateKey)
        .unwrap();
    assert_eq!(private.flags.local, Some(false));
    assert_eq!(private.flags.extractable, Some(false));

    // Canary: neither the PINs nor the passphrase reach any file of the store.
    drop(t);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let content = std::fs::read(&path).unwrap();
        for canary in [SO_PIN, USER_PIN, PASSPHRASE] {
            assert!(
                !content
                    .windows(canary.len())
                    .any(|w| w == canary.as_bytes()),
                "{canary} found in {}",
                path.display()
            );
        }
    }
}
