//! Key custody on the YubiHSM native path, within one process: two MockHsms, a wrap key
//! split 3-of-5 in yubihsm-manager's share layout, a backup from the first restored onto
//! the second; shares made by rusty_secrets (as yubihsm-setup makes them) restore too.
//! Signatures by restored keys are judged by OpenSSL with the original public keys.
//!
//! What the MockHsm lacks, and so what this cannot show: it enforces no capabilities or
//! delegated capabilities (the refusal of a non-exportable key is checked by Officiant
//! and, separately, by the mock's own wrap code), and its Export Wrapped blob is its own
//! serialization, not the device's (only the framing, nonce ‖ ciphertext, is the same).

use crate::support;

use std::process::Command;

use officiant::custody::{backup, payload, restore, shamir, wrap_key, Logins};
use officiant::hsm::{self, BackendUri, KeyOptions, ObjectClass, Token, UserType, WrapKeySpec};
use officiant::keys::{HashAlg, KeyAlgorithm, PublicKey, SignScheme};
use officiant::secret::Secret;

fn mock() -> Box<dyn Token> {
    let uri = BackendUri::parse("yubihsm:mock").unwrap();
    let mut t = hsm::open(&uri, None).unwrap();
    t.login(UserType::User, &Secret::from_string("password".into()))
        .unwrap();
    t
}

fn no_logins() -> Logins<'static> {
    Logins::default()
}

fn classes(t: &mut dyn Token) -> Vec<(ObjectClass, String)> {
    let mut v: Vec<(ObjectClass, String)> = t
        .list_objects()
        .unwrap()
        .into_iter()
        .map(|o| (o.class, o.label))
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

fn openssl_verifies(public: &PublicKey, digest_of: &[u8], sig_rs: &[u8]) {
    let openssl = support::oracle("openssl").expect("openssl is the judge here");
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("pub.pem");
    let msg = dir.path().join("msg.bin");
    let sig = dir.path().join("sig.der");
    std::fs::write(&pem, public.to_pem()).unwrap();
    std::fs::write(&msg, digest_of).unwrap();
    std::fs::write(&sig, officiant::keys::ecdsa_fixed_to_der(sig_rs).unwrap()).unwrap();
    let out = support::run_ok(
        Command::new(openssl)
            .args(["dgst", "-sha256", "-verify"])
            .arg(&pem)
            .arg("-signature")
            .arg(&sig)
            .arg(&msg),
    );
    assert!(out.contains("Verified OK"), "{out}");
}

fn shares_of(new: &wrap_key::NewWrapKey, pick: &[usize]) -> Vec<shamir::Share> {
    pick.iter().map(|&i| new.shares[i].clone()).collect()
}

#[test]
fn backup_on_one_mock_restores_on_another() {
    let mut a = mock();
    let root = a
        .generate_key_with(
            KeyAlgorithm::EcP256,
            &crate::support::label("root"),
            &crate::support::object_id(&[0x00, 0x21]),
            &KeyOptions {
                exportable_under_wrap: true,
            },
        )
        .unwrap();
    a.generate_key(
        KeyAlgorithm::EcP256,
        &crate::support::label("pinned"),
        &crate::support::object_id(&[0x00, 0x22]),
    )
    .unwrap();
    let flags = |t: &mut dyn Token, l: &str| {
        t.list_objects()
            .unwrap()
            .into_iter()
            .find(|o| o.label == l && o.class == ObjectClass::PrivateKey)
            .unwrap()
            .flags
    };
    assert_eq!(flags(a.as_mut(), "root").extractable, Some(true));
    assert_eq!(flags(a.as_mut(), "pinned").extractable, Some(false));

    let new = wrap_key::generate_wrap_key(a.as_mut(), &no_logins(), "wk", 0x0030, 3, 5).unwrap();
    // The device's object carries what yubihsm-setup gives a wrap key, and the shares
    // carry it in yubihsm-manager's layout (rusty_secrets reads them).
    let on_device = a.wrap_key("wk").unwrap().unwrap();
    assert_eq!(on_device.spec, new.spec);
    assert_eq!(on_device.check_value, Some(new.check_value));
    let caps = yubihsm::Capability::from_bits_truncate(new.spec.capabilities);
    assert_eq!(
        caps,
        yubihsm::Capability::EXPORT_WRAPPED | yubihsm::Capability::IMPORT_WRAPPED
    );
    let delegated = yubihsm::Capability::from_bits_truncate(new.spec.delegated_capabilities);
    assert!(delegated
        .contains(yubihsm::Capability::SIGN_ECDSA | yubihsm::Capability::EXPORTABLE_UNDER_WRAP));
    let texts: Vec<String> = [0, 2, 4]
        .iter()
        .map(|&i| new.shares[i].to_text().expose_str().unwrap().to_string())
        .collect();
    let theirs = rusty_secrets::recover_secret(texts).unwrap();
    assert_eq!(theirs.len(), 52);
    assert_eq!(&theirs[0..2], &[0x00, 0x30]);
    assert_eq!(&theirs[4..12], &new.spec.capabilities.to_be_bytes());
    assert_eq!(
        &theirs[12..20],
        &new.spec.delegated_capabilities.to_be_bytes()
    );

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("backup");
    let e = backup::backup(a.as_mut(), "wk", &["pinned".into()], &out).unwrap_err();
    assert!(
        e.to_string()
            .contains("not generated exportable-under-wrap"),
        "{e}"
    );
    assert!(!out.exists());
    // Asked directly, the backend refuses too.
    let e = a.export_wrapped("wk", "pinned").unwrap_err();
    assert!(e.to_string().contains("exportable-under-wrap"), "{e}");

    let report = backup::backup(a.as_mut(), "wk", &["root".into()], &out).unwrap();
    assert_eq!(report.files.len(), 2);
    // The .yhw file is base64 of nonce ‖ ciphertext on one line, as yubihsm-shell's
    // get-wrapped writes it.
    let yhw = std::fs::read_to_string(out.join("root.yhw")).unwrap();
    assert!(!yhw.contains('\n'));
    let raw = backup::decode_blob(hsm::WrapFormat::YubihsmAesCcm, yhw.as_bytes()).unwrap();
    assert!(raw.len() > 13 + 16);

    // The second device: refusals leave it as it was.
    let mut b = mock();
    let pristine = classes(b.as_mut());
    let e = restore::prepare(&out, &shares_of(&new, &[0, 1])).unwrap_err();
    assert!(
        e.to_string().contains("3 shares are needed, 2 given"),
        "{e}"
    );
    let mut bad = shares_of(&new, &[0, 1, 2]);
    let mut text = bad[2].to_text().expose_str().unwrap().to_string();
    // A character inside the data (the last one may hold only padding bits, and a
    // strict base64 decoder refuses a change there as malformed, not as a wrong share).
    let at = text.len() - 6;
    let c = text.as_bytes()[at];
    text.replace_range(at..=at, if c == b'A' { "B" } else { "A" });
    bad[2] = shamir::Share::parse(&Secret::from_string(text), "corrupt").unwrap();
    let e = restore::prepare(&out, &bad).unwrap_err();
    assert!(
        e.to_string()
            .contains("do not rebuild the backup's wrap key"),
        "{e}"
    );
    let other =
        wrap_key::generate_wrap_key(b.as_mut(), &no_logins(), "other", 0x0031, 3, 3).unwrap();
    b.delete_wrap_key("other").unwrap();
    let mut foreign = shares_of(&new, &[0, 1]);
    foreign.push(other.shares[2].clone());
    let e = restore::prepare(&out, &foreign).unwrap_err();
    assert!(
        e.to_string()
            .contains("do not rebuild the backup's wrap key"),
        "{e}"
    );
    assert_eq!(classes(b.as_mut()), pristine);

    // Any 3 of 5; a second run finds everything done.
    let prep = restore::prepare(&out, &shares_of(&new, &[4, 1, 3])).unwrap();
    let r = restore::restore(b.as_mut(), &no_logins(), &prep, false).unwrap();
    assert!(r.wrap_key_deleted && !r.keys[0].adopted);
    assert!(b.wrap_key("wk").unwrap().is_none());
    let after = classes(b.as_mut());
    assert!(
        !after.iter().any(|(c, _)| *c == ObjectClass::WrapKey),
        "{after:?}"
    );
    assert!(
        !after.iter().any(|(c, _)| *c == ObjectClass::Opaque),
        "{after:?}"
    );
    let prep = restore::prepare(&out, &shares_of(&new, &[0, 2, 3])).unwrap();
    let r = restore::restore(b.as_mut(), &no_logins(), &prep, false).unwrap();
    assert!(r.keys[0].adopted);
    assert_eq!(classes(b.as_mut()), after);

    // The restored key is the original: same public key, and it signs for it.
    assert_eq!(b.public_key("root").unwrap(), root);
    let msg = b"firmware signed by the restored root";
    let digest = HashAlg::Sha256.digest(msg);
    let sig = b
        .sign("root", SignScheme::Ecdsa(HashAlg::Sha256), &digest)
        .unwrap();
    openssl_verifies(&root, msg, &sig);
}

#[test]
fn shares_made_as_yubihsm_setup_makes_them_restore() {
    // A wrap key recorded the way yubihsm-setup records it: id, domains, capabilities,
    // delegated capabilities, a 32-byte key, split 2-of-3 by rusty_secrets.
    let key: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(7) ^ 0x3c).collect();
    let caps = (yubihsm::Capability::EXPORT_WRAPPED | yubihsm::Capability::IMPORT_WRAPPED).bits();
    let delegated = (yubihsm::Capability::SIGN_ECDSA
        | yubihsm::Capability::EXPORTABLE_UNDER_WRAP
        | yubihsm::Capability::GET_LOG_ENTRIES)
        .bits();
    let mut secret = vec![0x00, 0x42, 0x00, 0x01];
    secret.extend(caps.to_be_bytes());
    secret.extend(delegated.to_be_bytes());
    secret.extend(&key);
    let theirs = rusty_secrets::generate_shares(2, 3, &secret).unwrap();
    let parse = |s: &str| shamir::Share::parse(&Secret::from_string(s.into()), "share").unwrap();

    // Custodians 1 and 3 bring the wrap key back onto a device...
    let rebuilt = shamir::combine(&[parse(&theirs[0]), parse(&theirs[2])]).unwrap();
    let (spec, k) = payload::decode(&rebuilt, "setup-wrap").unwrap();
    assert_eq!(
        spec,
        WrapKeySpec {
            label: "setup-wrap".into(),
            id: 0x0042,
            domains: 1,
            capabilities: caps,
            delegated_capabilities: delegated,
        }
    );
    let mut a = mock();
    let stored = a.put_wrap_key(&spec, &k).unwrap();
    assert_eq!(stored, spec);
    let pk = a
        .generate_key_with(
            KeyAlgorithm::EcP256,
            &crate::support::label("app"),
            &crate::support::object_id(&[0x00, 0x50]),
            &KeyOptions {
                exportable_under_wrap: true,
            },
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    backup::backup(a.as_mut(), "setup-wrap", &["app".into()], dir.path()).unwrap();

    // ...and custodians 2 and 3 restore the backup made under it elsewhere.
    let mut b = mock();
    let prep = restore::prepare(dir.path(), &[parse(&theirs[1]), parse(&theirs[2])]).unwrap();
    restore::restore(b.as_mut(), &no_logins(), &prep, true).unwrap();
    assert_eq!(b.public_key("app").unwrap(), pk);
    let kept = b.wrap_key("setup-wrap").unwrap().unwrap();
    assert_eq!(kept.spec, spec);
}
