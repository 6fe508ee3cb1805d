//! Every way of signing with a token key asks the approval policy: the signing service
//! (CLI, batches, ceremony sign steps, the console), certificate issuing (pki) and the
//! image formats' signer (all through signing::TokenSigner). On the rehearsal token and the YubiHSM MockHsm.

use std::path::Path;

use officiant::approvals::{store, Policy};
use officiant::hsm::{self, NewObject, Token, UserType};
use officiant::keys::{HashAlg, KeyAlgorithm, SignScheme};
use officiant::secret::Secret;
use officiant::signing::{SigningKey, TokenSigner};

const ALICE: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIByI32DqnUeMKYiDlK8Mj2aXqxU6GDmay94cUM6NDsX1";

fn secret(s: &str) -> Secret {
    Secret::from_string(s.to_string())
}

fn policy(dir: &Path) -> Policy {
    std::fs::write(dir.join("signers"), format!("alice {ALICE}\n")).unwrap();
    Policy::parse(
        "policy.toml",
        dir,
        "allowed-signers = \"signers\"\n[keys.fw]\napprovers = [\"alice\"]\nquorum = 1\n\n[keys.open]\nquorum = 0\nnot-after = 2000-01-01T00:00:00Z\n",
    )
    .unwrap()
}

fn refusals(t: &mut dyn Token) {
    // One gate for every way Officiant signs with a token key (files, batches, images,
    // certificates, the ceremony's steps, the console): `signing::TokenSigner::open`.
    let e = TokenSigner::open(t, "fw", None).err().unwrap().to_string();
    assert_eq!(
        e,
        "key \"fw\" needs 1 approval(s) from {alice}: give --request REQ.json and --approval SIG for each"
    );
    // A rule's validity window holds without a quorum too.
    let e = TokenSigner::open(t, "open", None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("key \"open\" may not sign after 2000-01-01T00:00:00Z"),
        "{e}"
    );
    // A key without a rule signs as before.
    let mut k = SigningKey::new(TokenSigner::open(t, "free", None).unwrap());
    k.sign_digest(SignScheme::Ecdsa(HashAlg::Sha256), &[1u8; 32])
        .unwrap();
}

#[test]
fn rehearsal_token_gates_every_signer() {
    let d = tempfile::tempdir().unwrap();
    let mut t = hsm::sim::open(&d.path().join("tok")).unwrap();
    t.init_token("gate", &secret("so-pin-1111"), &secret("user-pin-2222"))
        .unwrap();
    t.login(UserType::User, &secret("user-pin-2222")).unwrap();
    for k in ["fw", "free", "open"] {
        t.generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label(k),
            &crate::support::object_id(k.as_bytes()),
        )
        .unwrap();
    }
    // No policy yet: everything signs.
    assert!(TokenSigner::open(t.as_mut(), "fw", None).is_ok());
    t.login(UserType::So, &secret("so-pin-1111")).unwrap();
    let stored = store::write_policy(t.as_mut(), &policy(d.path())).unwrap();
    assert_eq!(stored.label, "officiant-policy.1");
    assert!(stored.immutable);
    t.login(UserType::User, &secret("user-pin-2222")).unwrap();
    refusals(t.as_mut());

    // A policy-labelled object the token lets anyone change (what write-object makes)
    // is not trusted, and nothing under a policy signs until an officer looks.
    t.put_object(
        &crate::support::label("officiant-policy.2"),
        // write-object gives every object an id (a data object keeps none on PKCS#11).
        &crate::support::object_id(&[0x09]),
        &NewObject::Data {
            application: "x".into(),
            value: policy(d.path()).to_stored(),
        },
    )
    .unwrap();
    let e = TokenSigner::open(t.as_mut(), "free", None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("\"officiant-policy.2\" on this token can be modified or destroyed"),
        "{e}"
    );
}

#[cfg(feature = "mock-hsm")]
#[test]
fn yubihsm_mock_stores_the_policy_as_an_opaque_object() {
    let d = tempfile::tempdir().unwrap();
    let mut t = hsm::open(&hsm::BackendUri::parse("yubihsm:mock").unwrap(), None).unwrap();
    t.login(UserType::User, &secret("password")).unwrap();
    for (i, k) in ["fw", "free", "open"].into_iter().enumerate() {
        t.generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label(k),
            &crate::support::object_id(&[0, i as u8 + 1]),
        )
        .unwrap();
    }
    let p = policy(d.path());
    let stored = store::write_policy(t.as_mut(), &p).unwrap();
    // A YubiHSM 2 cannot keep it from deletion, and says so.
    assert!(!stored.immutable);
    assert_eq!(stored.sha256, p.sha256());
    let again = store::write_policy(t.as_mut(), &p).unwrap();
    assert_eq!(again.label, "officiant-policy.2");
    let opaque = t
        .list_objects()
        .unwrap()
        .into_iter()
        .filter(|o| o.label.starts_with("officiant-policy."))
        .count();
    assert_eq!(opaque, 2);
    refusals(t.as_mut());
}
