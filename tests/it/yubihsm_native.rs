//! The YubiHSM native backend against the yubihsm crate's MockHsm, through the direct mock
//! connector and through the HTTP connector (the crate's http-server serving the mock on
//! 127.0.0.1). Signatures and certificates are judged by openssl.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use officiant::hsm::admin::{parse_capabilities, parse_domains};
use officiant::hsm::yubihsm::admin::RotationError;
use officiant::hsm::yubihsm::caps::{admin_capabilities, bits, domain_bits};
use officiant::hsm::yubihsm::{
    self as native, limits, DeviceAuthKey, Error, PasswordRole, Rotation, RotationStep, YubiHsm,
    YubiUri,
};
use officiant::hsm::{NewObject, ObjectClass, Selector, Token, UserType};
use officiant::keys::{self, Curve, HashAlg, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use officiant::secret::Secret;
use yubihsm::{Capability, Connector, Domain};

use crate::support;

const CANARY_OLD: &str = "canary-old-3f9a1c";
const CANARY_TEMP: &str = "canary-temp-77b2e0";
const CANARY_NEW: &str = "canary-new-c41d8a";

fn secret(s: &str) -> Secret {
    Secret::from_string(s.to_string())
}

/// One MockHsm, reachable directly or over HTTP.
enum Dev {
    Direct(Connector),
    Http(u16),
}

impl Dev {
    fn direct() -> Dev {
        Dev::Direct(Connector::mockhsm())
    }

    /// Serve a fresh MockHsm on an ephemeral 127.0.0.1 port. `run()` stops at the first
    /// failed request, so the thread loops on `handle_request()` (bounded; it ends with
    /// the test process).
    fn http() -> Dev {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let server = yubihsm::connector::http::Server::new(
            &yubihsm::HttpConfig {
                addr: "127.0.0.1".into(),
                port,
                timeout_ms: 5_000,
            },
            Connector::mockhsm(),
        )
        .unwrap();
        std::thread::spawn(move || {
            for _ in 0..100_000 {
                let _ = server.handle_request();
            }
        });
        Dev::Http(port)
    }

    fn name(&self) -> &'static str {
        match self {
            Dev::Direct(_) => "direct",
            Dev::Http(_) => "http",
        }
    }

    /// A new handle (its own session) to the same device.
    fn open(&self, auth_key: u16) -> YubiHsm {
        match self {
            Dev::Direct(c) => YubiHsm::with_connector(
                YubiUri::parse(&format!("mock?auth-key={auth_key}")).unwrap(),
                c.clone(),
            ),
            Dev::Http(port) => {
                YubiHsm::open(&format!("http://127.0.0.1:{port}?auth-key={auth_key}")).unwrap()
            }
        }
    }

    fn login(&self, auth_key: u16, password: &str) -> YubiHsm {
        let mut h = self.open(auth_key);
        Token::login(&mut h, UserType::User, &secret(password))
            .unwrap_or_else(|e| panic!("{}: login 0x{auth_key:04x}: {e}", self.name()));
        h
    }

    /// Whether a fresh session opens with this key and password. `probe` (a live session)
    /// is asked first whether the key exists: the MockHsm panics on a login with a key it
    /// lacks, where a device refuses.
    fn can_login(&self, probe: &YubiHsm, auth_key: u16, password: &str) -> bool {
        if !probe.auth_keys().unwrap().iter().any(|k| k.id == auth_key) {
            return false;
        }
        let mut h = self.open(auth_key);
        Token::login(&mut h, UserType::User, &secret(password)).is_ok()
    }
}

fn both() -> Vec<Dev> {
    vec![Dev::direct(), Dev::http()]
}

fn no_canary(text: &str) {
    for c in [CANARY_OLD, CANARY_TEMP, CANARY_NEW, "password"] {
        if c == "password" {
            // the default password is a word that may appear in messages ("the old
            // password"); only the canaries are secret-shaped
            continue;
        }
        assert!(!text.contains(c), "secret leaked: {text}");
    }
}

fn openssl() -> Option<std::path::PathBuf> {
    support::oracle("openssl")
}

fn openssl_verify(openssl: &Path, pk: &PublicKey, msg: &[u8], sig_der: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pub.pem"), pk.to_pem()).unwrap();
    std::fs::write(dir.path().join("msg"), msg).unwrap();
    std::fs::write(dir.path().join("sig"), sig_der).unwrap();
    let out = Command::new(openssl)
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig",
            "msg",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

/// An EC P-256 key and a self-signed certificate for it, made by openssl.
fn openssl_key_and_cert(openssl: &Path) -> (PrivateKey, Vec<u8>, PublicKey) {
    let dir = tempfile::tempdir().unwrap();
    support::run_ok(Command::new(openssl).current_dir(dir.path()).args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "k.pem",
        "-out",
        "c.der",
        "-outform",
        "DER",
        "-subj",
        "/CN=officiant yubihsm test",
        "-days",
        "2",
    ]));
    support::run_ok(
        Command::new(openssl)
            .current_dir(dir.path())
            .args(["pkey", "-in", "k.pem", "-pubout", "-out", "pub.pem"]),
    );
    let pem = std::fs::read_to_string(dir.path().join("k.pem")).unwrap();
    use p256::pkcs8::DecodePrivateKey;
    let sk = p256::SecretKey::from_pkcs8_pem(&pem).unwrap();
    let point = sk.public_key().to_sec1_bytes();
    let public = PublicKey::ec(Curve::P256, &point).unwrap();
    let openssl_pub =
        PublicKey::from_bytes(&std::fs::read(dir.path().join("pub.pem")).unwrap()).unwrap();
    assert_eq!(public, openssl_pub);
    let key = PrivateKey::Ec {
        curve: Curve::P256,
        d: zeroize::Zeroizing::new(sk.to_bytes().to_vec()),
        public,
    };
    (
        key,
        std::fs::read(dir.path().join("c.der")).unwrap(),
        openssl_pub,
    )
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn generate_export_sign_verified_by_openssl() {
    let Some(openssl) = openssl() else { return };
    for dev in both() {
        let mut h = dev.login(1, "password");
        let pk = h
            .generate_key(
                KeyAlgorithm::EcP256,
                &crate::support::label("fw-signing-1"),
                &crate::support::object_id(&[0x10, 0x01]),
            )
            .unwrap();
        assert_eq!(h.public_key("fw-signing-1").unwrap(), pk, "{}", dev.name());
        let msg = b"firmware payload";
        let digest = HashAlg::Sha256.digest(msg);
        let rs = h
            .sign("fw-signing-1", SignScheme::Ecdsa(HashAlg::Sha256), &digest)
            .unwrap();
        assert_eq!(rs.len(), 64);
        let der = keys::ecdsa_fixed_to_der(&rs).unwrap();
        assert!(openssl_verify(&openssl, &pk, msg, &der), "{}", dev.name());
        assert!(!openssl_verify(&openssl, &pk, b"other payload", &der));
        // the same id or label again is refused, nothing overwritten
        let e = h
            .generate_key(
                KeyAlgorithm::EcP256,
                &crate::support::label("other"),
                &crate::support::object_id(&[0x10, 0x01]),
            )
            .unwrap_err();
        assert!(e.to_string().contains("id 1001 already exists"), "{e}");
        let e = h
            .generate_key(
                KeyAlgorithm::EcP256,
                &crate::support::label("fw-signing-1"),
                &crate::support::object_id(&[0x10, 0x02]),
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("\"fw-signing-1\" already exists"),
            "{e}"
        );
        assert_eq!(h.public_key("fw-signing-1").unwrap(), pk);
    }
}

#[test]
fn import_key_and_certificate_under_the_same_id() {
    let Some(openssl) = openssl() else { return };
    for dev in both() {
        let (key, cert, openssl_pub) = openssl_key_and_cert(&openssl);
        let mut h = dev.login(1, "password");
        let pk = h
            .import_key(
                &key,
                &crate::support::label("CSF1_1_sha256_usr"),
                &crate::support::object_id(&[0x10, 0x02]),
            )
            .unwrap();
        assert_eq!(pk, openssl_pub, "{}", dev.name());
        h.put_object(
            &crate::support::label("CSF1_1_sha256_usr"),
            &crate::support::object_id(&[0x10, 0x02]),
            &NewObject::Certificate(cert.clone()),
        )
        .unwrap();
        let objects = h.list_objects().unwrap();
        let key_obj = objects
            .iter()
            .find(|o| o.class == ObjectClass::PrivateKey && o.label == "CSF1_1_sha256_usr")
            .unwrap();
        let cert_obj = objects
            .iter()
            .find(|o| o.class == ObjectClass::Certificate)
            .unwrap();
        assert_eq!(key_obj.id, vec![0x10, 0x02]);
        assert_eq!(cert_obj.id, key_obj.id, "certificate under its key's id");
        assert_eq!(cert_obj.label, "CSF1_1_sha256_usr");
        assert_eq!(cert_obj.public_key.as_ref(), Some(&openssl_pub));
        assert_eq!(key_obj.flags.local, Some(false), "imported, not generated");
        assert!(objects.iter().any(|o| o.class == ObjectClass::AuthKey));
        // the imported key signs what openssl verifies with the file's public key
        let digest = HashAlg::Sha256.digest(b"csf");
        let rs = h
            .sign(
                "CSF1_1_sha256_usr",
                SignScheme::Ecdsa(HashAlg::Sha256),
                &digest,
            )
            .unwrap();
        assert!(openssl_verify(
            &openssl,
            &openssl_pub,
            b"csf",
            &keys::ecdsa_fixed_to_der(&rs).unwrap()
        ));
        // a second certificate at the same id is refused; garbage is refused before the device
        let e = h
            .put_object(
                &crate::support::label("x"),
                &crate::support::object_id(&[0x10, 0x02]),
                &NewObject::Certificate(cert.clone()),
            )
            .unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        assert!(h
            .put_object(
                &crate::support::label("x"),
                &crate::support::object_id(&[0x10, 0x03]),
                &NewObject::Certificate(b"not a cert".to_vec())
            )
            .is_err());
        // deleting by label removes the key and its certificate
        let n = h
            .delete_object(&Selector {
                label: "CSF1_1_sha256_usr".into(),
                class: None,
            })
            .unwrap();
        assert_eq!(n, 2, "{}", dev.name());
        assert!(h.public_key("CSF1_1_sha256_usr").is_err());
    }
}

#[test]
fn labels_and_ids_are_validated() {
    let dev = Dev::direct();
    let mut h = dev.login(1, "password");
    let long = "x".repeat(41);
    let e = h
        .generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label(&long),
            &crate::support::object_id(&[1]),
        )
        .unwrap_err();
    assert!(e.to_string().contains("at most 40"), "{e}");
    let e = h
        .generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label("ok"),
            &crate::support::object_id(&[1, 2, 3]),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("16-bit: give 1 or 2 bytes, not 3"),
        "{e}"
    );
    let e = h
        .generate_key(
            KeyAlgorithm::EcP256,
            &crate::support::label("ok"),
            &crate::support::object_id(&[0, 0]),
        )
        .unwrap_err();
    assert!(e.to_string().contains("object id 0"), "{e}");
    assert!(h.list_objects().unwrap().len() == 1, "nothing was created");
}

#[test]
fn wrong_password_is_refused_and_never_echoed() {
    for dev in both() {
        let mut h = dev.open(1);
        let e = Token::login(&mut h, UserType::User, &secret(CANARY_OLD)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("0x0001"), "{msg}");
        no_canary(&msg);
        no_canary(&format!("{e:?} {h:?}"));
        // nothing works without a session
        assert!(h.list_objects().is_err());
    }
}

#[test]
fn put_auth_keys_for_officers() {
    for dev in both() {
        let mut h = dev.login(1, "password");
        let op_caps = bits(
            &parse_capabilities(
                "step[2].capabilities",
                &names(&["sign-ecdsa", "get-opaque", "get-log-entries"]),
            )
            .unwrap(),
        );
        let spec = DeviceAuthKey {
            id: 0x0003,
            label: "operator".into(),
            domains: domain_bits(&parse_domains("step[2].domains", &names(&["1"])).unwrap()),
            capabilities: op_caps,
            delegated: Capability::empty(),
        };
        h.put_auth_key(&spec, &secret(CANARY_NEW)).unwrap();
        assert_eq!(h.auth_key_spec(3).unwrap(), spec, "{}", dev.name());
        assert!(dev.can_login(&h, 3, CANARY_NEW));
        assert!(!dev.can_login(&h, 3, CANARY_OLD));
        // the same id again is refused
        let e = h.put_auth_key(&spec, &secret(CANARY_NEW)).unwrap_err();
        assert!(e.to_string().contains("0x0003 already exists"), "{e}");
        no_canary(&e.to_string());
        // the operator may not create keys: its delegated set is empty (checked here,
        // since the MockHsm enforces no capabilities)
        let mut op = dev.login(3, CANARY_NEW);
        let e = op
            .put_auth_key(
                &DeviceAuthKey {
                    id: 4,
                    ..spec.clone()
                },
                &secret(CANARY_TEMP),
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("capabilities: authentication key 0x0003 cannot delegate"),
            "{e}"
        );
        no_canary(&format!("{e} {e:?}"));
    }
}

#[test]
fn deleting_the_last_admin_key_is_refused() {
    for dev in both() {
        let mut h = dev.login(1, "password");
        let default_label = h.auth_key_spec(1).unwrap().label;
        // the session's own key
        let e = h
            .delete_object(&Selector {
                label: default_label.clone(),
                class: Some(ObjectClass::AuthKey),
            })
            .unwrap_err();
        assert!(e.to_string().contains("this session logged in with"), "{e}");
        // an operator key cannot take over administration
        h.put_auth_key(
            &DeviceAuthKey {
                id: 2,
                label: "operator".into(),
                domains: Domain::DOM1,
                capabilities: Capability::SIGN_ECDSA,
                delegated: Capability::empty(),
            },
            &secret(CANARY_NEW),
        )
        .unwrap();
        let mut op = dev.login(2, CANARY_NEW);
        let e = op.delete_auth_key(1).unwrap_err();
        assert!(
            e.to_string().contains(
                "would leave no key with put-authentication-key and delete-authentication-key"
            ),
            "{}: {e}",
            dev.name()
        );
        assert!(dev.can_login(&h, 1, "password"));
        // with a second administrator, the first may go
        h.put_auth_key(
            &DeviceAuthKey {
                id: 5,
                label: "administrator".into(),
                domains: Domain::all(),
                capabilities: Capability::all(),
                delegated: Capability::all(),
            },
            &secret(CANARY_TEMP),
        )
        .unwrap();
        let mut admin = dev.login(5, CANARY_TEMP);
        admin.delete_auth_key(1).unwrap();
        assert!(!dev.can_login(&admin, 1, "password"));
    }
}

#[test]
fn rotation_replaces_the_default_key() {
    for dev in both() {
        let mut h = dev.login(1, "password");
        let before = h.auth_key_spec(1).unwrap();
        let (temp, new) = (secret(CANARY_TEMP), secret(CANARY_NEW));
        let records = h
            .change_auth_key(&Rotation {
                temp_id: 0x00fe,
                temp_password: &temp,
                new_password: &new,
                replacement: None,
            })
            .unwrap();
        let steps: Vec<_> = records.iter().map(|r| (r.step.as_str(), r.ok)).collect();
        assert_eq!(
            steps,
            RotationStep::ALL
                .iter()
                .map(|s| (s.name(), true))
                .collect::<Vec<_>>()
        );
        no_canary(&serde_json::to_string(&records).unwrap());
        assert!(dev.can_login(&h, 1, CANARY_NEW), "{}", dev.name());
        assert!(
            !dev.can_login(&h, 1, "password"),
            "old password still works"
        );
        assert!(
            !dev.can_login(&h, 0xfe, CANARY_TEMP),
            "temporary key left behind"
        );
        assert_eq!(
            h.auth_key_spec(1).unwrap(),
            before,
            "same label, domains, capabilities"
        );
        // the handle carries on with the replacement's session
        assert!(h.list_objects().is_ok());
    }
}

#[test]
fn rotation_failure_at_each_substep_leaves_a_working_admin_key() {
    // A fresh device per case: the crate cannot close a session (Session::close needs
    // ownership the Client never gives up) and the MockHsm, unlike a device, never times
    // one out, so one mock runs out of its 16 sessions.
    for (n, fail_at) in RotationStep::ALL.into_iter().enumerate() {
        for dev in both() {
            let id = 0x0010 + n as u16;
            let mut root = dev.login(1, "password");
            root.put_auth_key(
                &DeviceAuthKey {
                    id,
                    label: format!("admin {n}"),
                    domains: Domain::all(),
                    capabilities: Capability::all(),
                    delegated: Capability::all(),
                },
                &secret(CANARY_OLD),
            )
            .unwrap();
            let mut h = dev.login(id, CANARY_OLD);
            let (temp, new) = (secret(CANARY_TEMP), secret(CANARY_NEW));
            let temp_id = 0x0100 + n as u16;
            let err = h
                .change_auth_key_with_hook(
                    &Rotation {
                        temp_id,
                        temp_password: &temp,
                        new_password: &new,
                        replacement: None,
                    },
                    &mut |s| {
                        if s == fail_at {
                            Err("device refused".into())
                        } else {
                            Ok(())
                        }
                    },
                )
                .unwrap_err();
            let msg = err.to_string();
            no_canary(&format!("{msg} {err:?}"));
            let Error::Rotation(r) = err else {
                panic!("{msg}")
            };
            let r: RotationError = *r;
            assert_eq!(r.failed, fail_at);
            assert!(
                msg.contains(&format!("failed at \"{}\"", fail_at.name())),
                "{msg}"
            );
            let w = r.working.expect("a working key");
            let (want_id, want_pw) = match fail_at {
                RotationStep::PutTemporary
                | RotationStep::LoginTemporary
                | RotationStep::DeleteOld => (id, PasswordRole::Old),
                RotationStep::PutReplacement | RotationStep::LoginReplacement => {
                    (temp_id, PasswordRole::Temporary)
                }
                RotationStep::DeleteTemporary => (id, PasswordRole::New),
            };
            assert_eq!(
                (w.id, w.password),
                (want_id, want_pw),
                "{}: {msg}",
                dev.name()
            );
            assert!(
                msg.contains(&format!("0x{want_id:04x} with the {want_pw} password")),
                "{msg}"
            );
            // prove it: a fresh session with the named key and password, able to manage keys
            let pw = match want_pw {
                PasswordRole::Old => CANARY_OLD,
                PasswordRole::Temporary => CANARY_TEMP,
                PasswordRole::New => CANARY_NEW,
            };
            let check = dev.login(want_id, pw);
            assert!(check
                .auth_key_spec(want_id)
                .unwrap()
                .capabilities
                .contains(admin_capabilities()));
            // the failed sub-step is recorded as failed, the ones before as done
            let failed_rec = r
                .records
                .iter()
                .find(|rec| rec.step == fail_at.name())
                .unwrap();
            assert!(!failed_rec.ok && failed_rec.detail.contains("device refused"));
            // where the old key survived, no temporary key is left behind
            if want_pw == PasswordRole::Old {
                assert!(
                    !dev.can_login(&check, temp_id, CANARY_TEMP),
                    "{}: {msg}",
                    fail_at.name()
                );
            }
            // the handle was moved to the working key's session
            assert_eq!(h.auth_key(), want_id);
            assert!(h.list_objects().is_ok());
        }
    }
}

#[test]
fn rotation_refuses_a_replacement_that_cannot_finish() {
    let dev = Dev::direct();
    let mut h = dev.login(1, "password");
    let (temp, new) = (secret(CANARY_TEMP), secret(CANARY_NEW));
    let e = h
        .change_auth_key(&Rotation {
            temp_id: 2,
            temp_password: &temp,
            new_password: &new,
            replacement: Some(DeviceAuthKey {
                id: 1,
                label: "admin".into(),
                domains: Domain::all(),
                capabilities: Capability::SIGN_ECDSA,
                delegated: Capability::empty(),
            }),
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("needs delete-authentication-key"),
        "{e}"
    );
    let e = h
        .change_auth_key(&Rotation {
            temp_id: 1,
            temp_password: &temp,
            new_password: &new,
            replacement: None,
        })
        .unwrap_err();
    assert!(e.to_string().starts_with("temporary-id:"), "{e}");
    // untouched
    assert!(dev.can_login(&h, 1, "password"));
    assert_eq!(h.auth_keys().unwrap().len(), 1);
}

#[test]
fn force_audit_and_the_mock_log_reported_honestly() {
    for dev in both() {
        let mut h = dev.login(1, "password");
        assert!(!h.force_audit().unwrap());
        h.set_force_audit(true).unwrap();
        assert!(h.force_audit().unwrap(), "{}", dev.name());
        let report = h.read_audit_log(true).unwrap();
        assert!(report.entries.is_empty());
        assert_eq!(
            report.note.as_deref(),
            Some(limits::mock_audit_log().as_str()),
            "{}",
            dev.name()
        );
        let e = h.check_audit_log().unwrap_err();
        assert_eq!(e.to_string(), limits::mock_audit_log());
    }
}

#[test]
fn mock_impossible_steps_are_refused_with_the_exact_line() {
    for dev in both() {
        let mut h = dev.login(1, "password");
        for alg in [
            KeyAlgorithm::EcP384,
            KeyAlgorithm::EcP521,
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::Rsa3072,
            KeyAlgorithm::Rsa4096,
        ] {
            let e = h.generate_at(alg, "k", 0x20).unwrap_err();
            assert_eq!(e.to_string(), limits::mock_algorithm(alg), "{}", dev.name());
            assert!(e.to_string().contains("yubihsm_pkcs11"));
        }
        let caps = h.capabilities().unwrap();
        assert_eq!(caps.generate, vec![KeyAlgorithm::EcP256], "{}", dev.name());
        assert!(!caps.can_sign(KeyAlgorithm::EcP256, SignScheme::Ecdsa(HashAlg::Sha384)));
        assert!(caps.can_sign(KeyAlgorithm::EcP256, SignScheme::Ecdsa(HashAlg::Sha256)));
        h.generate_at(KeyAlgorithm::EcP256, "k", 0x20).unwrap();
        let e = h
            .sign_with("k", SignScheme::Ecdsa(HashAlg::Sha384), &[0; 48])
            .unwrap_err();
        assert_eq!(e.to_string(), limits::mock_hash());
        // the device survived every refusal
        assert!(h.list_objects().is_ok());
    }
}

#[test]
fn crate_limits_refused_on_any_device() {
    let dev = Dev::direct();
    let h = dev.login(1, "password");
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa4096] {
        let e = h
            .check_sign(alg, SignScheme::RsaPss(HashAlg::Sha256))
            .unwrap_err();
        assert_eq!(e.to_string(), limits::rsa_pss());
        assert!(e.to_string().contains("yubihsm_pkcs11"));
        let e = h
            .check_sign(alg, SignScheme::RsaPkcs1(HashAlg::Sha256))
            .unwrap_err();
        assert_eq!(e.to_string(), limits::pkcs1_digest());
    }
    let mut h = dev.login(1, "password");
    let s = secret(CANARY_NEW);
    let e = h.init_token("x", &s, &s).unwrap_err();
    assert!(e.to_string().contains(&limits::init_token()), "{e}");
    let e = h.change_pin(UserType::User, &s, &s).unwrap_err();
    assert!(e.to_string().contains(&limits::change_pin()), "{e}");
    let e = Token::login(&mut h, UserType::So, &s).unwrap_err();
    assert!(e.to_string().contains(&limits::so_login()), "{e}");
    no_canary(&format!("{e:?}"));
}

#[test]
fn rsa_hab_key_import_refused_on_the_mock_before_the_device() {
    // hab4_pki_tree.sh's form: encrypted PKCS#8 with des3, DER (*_usr_key.der)
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let pass = secret("fixture-passphrase-5531");
    let der = std::fs::read(fixtures.join("rsa2048.pk8-des3.der")).unwrap();
    let key = PrivateKey::from_bytes(&der, Some(&pass)).unwrap();
    let p384 = std::fs::read(fixtures.join("p384.pk8-aes256-sha1.pem")).unwrap();
    let p384 = PrivateKey::from_bytes(&p384, Some(&pass)).unwrap();
    for dev in both() {
        let mut h = dev.login(1, "password");
        let e = h
            .import_key(
                &key,
                &crate::support::label("IMG1_1_sha256_2048_usr"),
                &crate::support::object_id(&[0x10, 0x03]),
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "unsupported by this backend: {}",
                limits::mock_algorithm(KeyAlgorithm::Rsa2048)
            )
        );
        let e = h
            .import_key(
                &p384,
                &crate::support::label("p384"),
                &crate::support::object_id(&[0x10, 0x04]),
            )
            .unwrap_err();
        assert!(e
            .to_string()
            .ends_with(&limits::mock_algorithm(KeyAlgorithm::EcP384)));
        assert_eq!(h.list_objects().unwrap().len(), 1, "{}", dev.name());
    }
}

#[test]
fn openssl_made_p256_key_file_imports() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let key = PrivateKey::from_bytes(&std::fs::read(fixtures.join("p256.pk8.pem")).unwrap(), None)
        .unwrap();
    let openssl_pub =
        PublicKey::from_bytes(&std::fs::read(fixtures.join("p256.pub.pem")).unwrap()).unwrap();
    for dev in both() {
        let mut h = dev.login(1, "password");
        let pk = h
            .import_key(
                &key,
                &crate::support::label("imported"),
                &crate::support::object_id(&[0x20, 0x01]),
            )
            .unwrap();
        assert_eq!(pk, openssl_pub, "{}", dev.name());
        assert_eq!(h.public_key("imported").unwrap(), openssl_pub);
    }
}

#[test]
fn backend_uri_opens_the_mock_and_names_no_secret() {
    let uri = officiant::hsm::BackendUri::parse("yubihsm:mock?auth-key=1").unwrap();
    let mut t = officiant::hsm::open(&uri, None).unwrap();
    t.login(UserType::User, &secret("password")).unwrap();
    assert!(t.info().unwrap().rehearsal);
    // What only a backend with authentication keys has, through the trait.
    let caps = t.capabilities().unwrap();
    assert!(caps.auth_keys && caps.device_audit);
    assert_eq!(t.session_auth_key(), Some(1));
    let factory = t.auth_key(1).unwrap().unwrap();
    assert!(factory.has("put-authentication-key"), "{factory:?}");
    let e = native::open("mock?password=hunter2").err().unwrap();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn fresh_mock_has_only_the_factory_key() {
    let mut t = native::open("mock?auth-key=5").unwrap();
    let e = t.login(UserType::User, &secret("password")).unwrap_err();
    assert!(e.to_string().contains("0x0005"), "{e}");
    assert!(e.to_string().contains("no such authentication key"), "{e}");
}
