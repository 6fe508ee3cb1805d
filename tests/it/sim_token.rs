//! The rehearsal token behaves like a real token where a ceremony can notice: PINs that
//! lock, logins that gate keys, unique labels and ids, state that survives a reopen, a
//! store that says it is not secure and never holds a PIN.

use std::path::Path;

use officiant::hsm::{self, Error, NewObject, ObjectClass, Selector, Token, UserType};
use officiant::keys::{HashAlg, KeyAlgorithm, PublicKey, SignScheme};

use crate::support;
use crate::support::rehearsal::{ready_token, secret, SO_PIN, USER_PIN};

fn fresh(dir: &Path) -> Box<dyn Token> {
    hsm::sim::open(dir).unwrap()
}

/// A self-signed certificate made by openssl for the certificate-object tests.
fn openssl_cert(work: &Path) -> Option<(Vec<u8>, PublicKey)> {
    let openssl = support::oracle("openssl")?;
    let key = work.join("cert.key");
    let cert = work.join("cert.der");
    support::run_ok(
        std::process::Command::new(openssl)
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:P-256")
            .args([
                "-nodes",
                "-subj",
                "/CN=rehearsal",
                "-days",
                "1",
                "-outform",
                "DER",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let der = std::fs::read(&cert).unwrap();
    let public = PublicKey::from_certificate_der(&der).unwrap();
    Some((der, public))
}

#[test]
fn info_says_rehearsal_and_not_secure() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = fresh(dir.path());
    let info = t.info().unwrap();
    assert!(info.rehearsal);
    assert!(!info.initialized);
    assert_eq!(info.manufacturer, "Officiant");
    assert_eq!(info.model, "rehearsal token (NOT SECURE)");
    assert_eq!(info.backend, format!("sim:{}", dir.path().display()));
    let caps = t.capabilities().unwrap();
    assert_eq!(caps.generate, KeyAlgorithm::ALL.to_vec());
    assert!(caps.can_sign(KeyAlgorithm::Rsa4096, SignScheme::RsaPss(HashAlg::Sha512)));
    assert!(caps.can_sign(KeyAlgorithm::EcP521, SignScheme::Ecdsa(HashAlg::Sha256)));
    assert!(!caps.can_sign(KeyAlgorithm::EcP256, SignScheme::RsaPss(HashAlg::Sha256)));
    assert!(caps.init_token && caps.so_login && caps.certificates && caps.data_objects);

    let marker = std::fs::read_to_string(dir.path().join("NOT-SECURE.txt")).unwrap();
    assert!(
        marker.starts_with("REHEARSAL STORE: NOT SECURE"),
        "{marker}"
    );
    let store: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("store.json")).unwrap()).unwrap();
    assert_eq!(
        store["warning"],
        "REHEARSAL STORE: NOT SECURE, keys are stored in the clear"
    );
}

#[test]
fn uninitialized_token_asks_for_init() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = fresh(dir.path());
    let err = t.login(UserType::User, &secret(USER_PIN)).unwrap_err();
    assert!(matches!(err, Error::NotInitialized(_)), "{err}");
    assert!(err.to_string().contains("run init-token first"), "{err}");
}

#[test]
fn wrong_user_pin_counts_down_and_locks_after_three() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    t.logout().unwrap();
    let wrong = secret("0000-wrong");
    let msgs: Vec<String> = (0..3)
        .map(|_| t.login(UserType::User, &wrong).unwrap_err().to_string())
        .collect();
    assert_eq!(
        msgs,
        [
            "wrong user PIN (2 retries left before the PIN locks)",
            "wrong user PIN (1 retry left before the PIN locks)",
            "wrong user PIN (no retries left: the PIN is now locked)",
        ]
    );
    // Locked: even the right PIN is refused, and the lock survives a reopen.
    drop(t);
    let mut t = fresh(dir.path());
    let err = t.login(UserType::User, &secret(USER_PIN)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PinLocked {
                user: UserType::User,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "user PIN is locked (too many wrong attempts); the SO can reset the user PIN by \
         re-initializing the token (init-token with the SO PIN; this erases every object)"
    );
    // The SO re-initializes the token: the user PIN works again (objects are gone).
    t.init_token("again", &secret(SO_PIN), &secret(USER_PIN))
        .unwrap();
    t.login(UserType::User, &secret(USER_PIN)).unwrap();
}

#[test]
fn correct_login_resets_the_retry_counter() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    let wrong = secret("0000-wrong");
    for _ in 0..2 {
        t.login(UserType::User, &wrong).unwrap_err();
    }
    t.login(UserType::User, &secret(USER_PIN)).unwrap();
    let err = t.login(UserType::User, &wrong).unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong user PIN (2 retries left before the PIN locks)"
    );
}

#[test]
fn so_pin_locks_and_then_init_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    t.generate_key(
        KeyAlgorithm::EcP256,
        &crate::support::label("keep"),
        &crate::support::object_id(&[1]),
    )
    .unwrap();
    let wrong = secret("wrong-so-pin");
    // A wrong SO PIN on re-initialization counts against the SO and erases nothing.
    let err = t.init_token("evil", &wrong, &secret("1111")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong SO PIN (2 retries left before the PIN locks)"
    );
    assert!(t.login(UserType::User, &secret(USER_PIN)).is_ok());
    assert_eq!(t.list_objects().unwrap().len(), 2);
    for _ in 0..2 {
        t.login(UserType::So, &wrong).unwrap_err();
    }
    let err = t.login(UserType::So, &secret(SO_PIN)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::PinLocked {
                user: UserType::So,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "SO PIN is locked (too many wrong attempts); a locked SO PIN cannot be reset: the \
         token must be re-initialized from scratch (for the rehearsal token: remove its \
         directory and run init-token)"
    );
    let err = t
        .init_token("x", &secret(SO_PIN), &secret(USER_PIN))
        .unwrap_err();
    assert!(matches!(err, Error::PinLocked { .. }), "{err}");
    assert_eq!(t.info().unwrap().label, "rehearsal");
}

#[test]
fn init_wipes_objects_and_logs_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    t.generate_key(
        KeyAlgorithm::EcP256,
        &crate::support::label("old"),
        &crate::support::object_id(&[1]),
    )
    .unwrap();
    t.init_token("fresh", &secret(SO_PIN), &secret("new-user-pin"))
        .unwrap();
    let err = t
        .generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label("k"),
            &crate::support::object_id(&[2]),
        )
        .unwrap_err();
    assert!(matches!(err, Error::NotLoggedIn(_)), "{err}");
    t.login(UserType::User, &secret("new-user-pin")).unwrap();
    assert!(t.list_objects().unwrap().is_empty());
    assert_eq!(t.info().unwrap().label, "fresh");
}

#[test]
fn change_pin_for_user_and_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    t.change_pin(UserType::User, &secret(USER_PIN), &secret("user-pin-2"))
        .unwrap();
    t.change_pin(UserType::So, &secret(SO_PIN), &secret("so-pin-2"))
        .unwrap();
    let err = t
        .change_pin(UserType::User, &secret("bad-old"), &secret("user-pin-3"))
        .unwrap_err();
    assert!(matches!(err, Error::WrongPin { .. }), "{err}");
    let err = t
        .change_pin(UserType::User, &secret("user-pin-2"), &secret("123"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "refused: the new user PIN must be 4 to 64 bytes long (it has 3)"
    );
    drop(t);
    let mut t = fresh(dir.path());
    assert!(t.login(UserType::User, &secret(USER_PIN)).is_err());
    t.login(UserType::User, &secret("user-pin-2")).unwrap();
    t.login(UserType::So, &secret("so-pin-2")).unwrap();
}

#[test]
fn key_operations_need_the_user_logged_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    t.generate_key(
        KeyAlgorithm::EcP256,
        &crate::support::label("k"),
        &crate::support::object_id(&[1]),
    )
    .unwrap();
    t.logout().unwrap();
    let digest = HashAlg::Sha256.digest(b"x");
    let cases: Vec<(&str, Error)> = vec![
        (
            "generate-key",
            t.generate_key(
                KeyAlgorithm::EcP256,
                &crate::support::label("k2"),
                &crate::support::object_id(&[2]),
            )
            .unwrap_err(),
        ),
        (
            "sign",
            t.sign("k", SignScheme::Ecdsa(HashAlg::Sha256), &digest)
                .unwrap_err(),
        ),
        (
            "write-object",
            t.put_object(
                &crate::support::label("d"),
                &crate::support::object_id(&[3]),
                &NewObject::Data {
                    application: "a".into(),
                    value: b"v".to_vec(),
                },
            )
            .unwrap_err(),
        ),
        (
            "delete-object",
            t.delete_object(&Selector {
                label: "k".into(),
                class: None,
            })
            .unwrap_err(),
        ),
    ];
    for (op, err) in cases {
        assert_eq!(
            err.to_string(),
            format!("not logged in: {op} needs the user logged in"),
        );
    }
    // Without a login only public objects show; the public key is still readable.
    let listed = t.list_objects().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].class, ObjectClass::PublicKey);
    assert!(t.public_key("k").is_ok());
    // The SO cannot use keys either.
    t.login(UserType::So, &secret(SO_PIN)).unwrap();
    let err = t
        .sign("k", SignScheme::Ecdsa(HashAlg::Sha256), &digest)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "not logged in: sign needs the user logged in (the SO is logged in)"
    );
}

#[test]
fn duplicate_labels_and_ids_are_refused_per_class() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    t.generate_key(
        KeyAlgorithm::EcP256,
        &crate::support::label("srk1"),
        &crate::support::object_id(&[0x10, 0x01]),
    )
    .unwrap();
    let err = t
        .generate_key(
            KeyAlgorithm::EcP384,
            &crate::support::label("srk1"),
            &crate::support::object_id(&[0x10, 0x02]),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "an object labelled \"srk1\" already exists on the token (private key)"
    );
    let err = t
        .generate_key(
            KeyAlgorithm::EcP384,
            &crate::support::label("srk2"),
            &crate::support::object_id(&[0x10, 0x01]),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "an object with id 1001 already exists on the token (private key)"
    );
    // A data object may share the key's label and id (another class) but not another
    // data object's.
    let data = NewObject::Data {
        application: "officiant".into(),
        value: b"fuse table".to_vec(),
    };
    t.put_object(
        &crate::support::label("srk1"),
        &crate::support::object_id(&[0x10, 0x01]),
        &data,
    )
    .unwrap();
    let err = t
        .put_object(
            &crate::support::label("srk1"),
            &crate::support::object_id(&[0x10, 0x09]),
            &data,
        )
        .unwrap_err();
    assert!(matches!(err, Error::LabelExists { .. }), "{err}");
    let err = t
        .put_object(
            &crate::support::label("other"),
            &crate::support::object_id(&[0x10, 0x01]),
            &data,
        )
        .unwrap_err();
    assert!(matches!(err, Error::IdExists { .. }), "{err}");
    // A certificate may share its key's label and id; its public key is reported.
    if let Some((cert, cert_key)) = openssl_cert(work.path()) {
        t.put_object(
            &crate::support::label("srk1"),
            &crate::support::object_id(&[0x10, 0x01]),
            &NewObject::Certificate(cert.clone()),
        )
        .unwrap();
        let err = t
            .put_object(
                &crate::support::label("srk1"),
                &crate::support::object_id(&[0x10, 0x07]),
                &NewObject::Certificate(cert),
            )
            .unwrap_err();
        assert!(matches!(err, Error::LabelExists { .. }), "{err}");
        let listed = t.list_objects().unwrap();
        let c = listed
            .iter()
            .find(|o| o.class == ObjectClass::Certificate)
            .unwrap();
        assert_eq!(c.public_key.as_ref(), Some(&cert_key));
    }
    // Failed attempts left nothing behind.
    let keys = t
        .list_objects()
        .unwrap()
        .into_iter()
        .filter(|o| o.class == ObjectClass::PrivateKey)
        .count();
    assert_eq!(keys, 1);
}

#[test]
fn state_survives_reopen_and_delete_removes_by_class() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    let public = t
        .generate_key(
            KeyAlgorithm::EcP384,
            &crate::support::label("k"),
            &crate::support::object_id(&[7]),
        )
        .unwrap();
    t.put_object(
        &crate::support::label("k"),
        &crate::support::object_id(&[7]),
        &NewObject::Data {
            application: "app".into(),
            value: b"v".to_vec(),
        },
    )
    .unwrap();
    drop(t);
    let mut t = fresh(dir.path());
    assert_eq!(t.public_key("k").unwrap(), public);
    t.login(UserType::User, &secret(USER_PIN)).unwrap();
    let listed = t.list_objects().unwrap();
    assert_eq!(listed.len(), 3);
    let private = listed
        .iter()
        .find(|o| o.class == ObjectClass::PrivateKey)
        .unwrap();
    assert_eq!(private.id, vec![7]);
    assert_eq!(private.public_key.as_ref(), Some(&public));
    assert_eq!(private.key_type(), "EC P-384");
    assert_eq!(private.flags.sensitive, Some(true));
    assert_eq!(private.flags.extractable, Some(false));
    assert_eq!(private.flags.never_extractable, Some(true));
    assert_eq!(private.flags.local, Some(true));
    // Signing still works after the reopen and verifies in software.
    let digest = HashAlg::Sha384.digest(b"after reopen");
    let sig = t
        .sign("k", SignScheme::Ecdsa(HashAlg::Sha384), &digest)
        .unwrap();
    assert_eq!(sig.len(), 96);
    public
        .verify_digest(SignScheme::Ecdsa(HashAlg::Sha384), &digest, &sig)
        .unwrap();
    let n = t
        .delete_object(&Selector {
            label: "k".into(),
            class: Some(ObjectClass::Data),
        })
        .unwrap();
    assert_eq!(n, 1);
    let n = t
        .delete_object(&Selector {
            label: "k".into(),
            class: None,
        })
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        t.delete_object(&Selector {
            label: "k".into(),
            class: None
        })
        .unwrap(),
        0
    );
    drop(t);
    let mut t = fresh(dir.path());
    t.login(UserType::User, &secret(USER_PIN)).unwrap();
    assert!(t.list_objects().unwrap().is_empty());
    let err = t.public_key("k").unwrap_err();
    assert_eq!(err.to_string(), "no public key labelled \"k\" on the token");
}

#[test]
fn a_second_opener_is_refused_while_the_token_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let t = fresh(dir.path());
    let err = match hsm::sim::open(dir.path()) {
        Ok(_) => panic!("second open succeeded"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert!(err.contains("in use by another process"), "{err}");
    drop(t);
    assert!(hsm::sim::open(dir.path()).is_ok());
}

#[test]
fn a_corrupt_store_is_named() {
    let dir = tempfile::tempdir().unwrap();
    drop(fresh(dir.path()));
    let store = dir.path().join("store.json");
    std::fs::write(&store, b"{ \"warning\": 1").unwrap();
    let err = match hsm::sim::open(dir.path()) {
        Ok(_) => panic!("corrupt store opened"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&store.display().to_string()), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    assert!(!err.contains('\n'), "{err}");
}

#[test]
fn wrong_digest_length_and_scheme_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    t.generate_key(
        KeyAlgorithm::EcP256,
        &crate::support::label("ec"),
        &crate::support::object_id(&[1]),
    )
    .unwrap();
    let err = t
        .sign("ec", SignScheme::Ecdsa(HashAlg::Sha256), &[0u8; 20])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "refused: digest has 20 bytes, SHA-256 needs 32"
    );
    let err = t
        .sign("ec", SignScheme::RsaPss(HashAlg::Sha256), &[0u8; 32])
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
    let err = t
        .sign("missing", SignScheme::Ecdsa(HashAlg::Sha256), &[0u8; 32])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no private key labelled \"missing\" on the token"
    );
}

/// Canary: every PIN used reaches no file in the store directory, in any form a grep
/// would find (raw, hex).
#[test]
fn pins_never_reach_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = ready_token(dir.path());
    t.change_pin(UserType::User, &secret(USER_PIN), &secret("canary-user-2"))
        .unwrap();
    t.change_pin(UserType::So, &secret(SO_PIN), &secret("canary-so-2"))
        .unwrap();
    t.login(UserType::User, &secret("canary-wrong-3"))
        .unwrap_err();
    t.login(UserType::User, &secret("canary-user-2")).unwrap();
    t.generate_key(
        KeyAlgorithm::EcP256,
        &crate::support::label("k"),
        &crate::support::object_id(&[1]),
    )
    .unwrap();
    drop(t);
    let pins = [
        SO_PIN,
        USER_PIN,
        "canary-user-2",
        "canary-so-2",
        "canary-wrong-3",
    ];
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let content = std::fs::read(&path).unwrap();
        for pin in pins {
            for form in [pin.to_string(), hex::encode(pin)] {
                assert!(
                    !content.windows(form.len()).any(|w| w == form.as_bytes()),
                    "{form} found in {}",
                    path.display()
                );
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn a_new_store_directory_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("rehearsal");
    drop(fresh(&dir));
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{mode:o}");
}

#[test]
fn a_foreign_non_empty_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"someone's file").unwrap();
    let err = match hsm::sim::open(dir.path()) {
        Ok(_) => panic!("opened a foreign directory"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        format!(
            "backend: {} is not empty and holds no rehearsal store; give sim: a new or empty \
             directory",
            dir.path().display()
        )
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn temp_files_left_by_a_killed_write_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    drop(fresh(dir.path()));
    let stale = dir.path().join(".store.json.tmp-99999");
    std::fs::write(&stale, b"half a store").unwrap();
    drop(fresh(dir.path()));
    assert!(!stale.exists());
}
