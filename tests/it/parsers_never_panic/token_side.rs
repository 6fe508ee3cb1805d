//! What a token or its URI hands us: PKCS#11 attribute records as a module returns them,
//! backend URIs and secret sources, the rehearsal token's store.

use super::*;

const URIS: &[&str] = &[
    "sim:./rehearsal",
    "pkcs11:token=Officiant%20CA;object=SRK1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
    "pkcs11:slot-id=3;manufacturer=Yubico?pin-source=env:PIN",
    "pkcs11:token=T?pin-value=1234",
    "yubihsm:http://127.0.0.1:12345",
    "yubihsm:usb",
    "yubihsm:usb?serial=0012345678",
    "yubihsm:mock",
];

const OTHER_TEXT: &[&str] = &[
    "env:PIN",
    "file:/run/secrets/pin",
    "prompt",
    "CN=Officiant CA,O=Example,C=DE",
    "sign-ecdsa,exportable-under-wrap,get-log-entries",
    "1,2,16",
    "0x1001",
    "esp32-sbv2",
    "rsa-4096",
    "imx8m",
    "hab4-srk",
];

/// One attribute record as `entry::pkcs11_attributes` reads it.
fn attr(kind: cryptoki_sys::CK_ATTRIBUTE_TYPE, value: &[u8]) -> Vec<u8> {
    let mut r = (kind as u32).to_be_bytes().to_vec();
    r.extend_from_slice(&(value.len() as u16).to_be_bytes());
    r.extend_from_slice(value);
    r
}

fn ulong(v: cryptoki_sys::CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Objects as SoftHSM returns them: an EC and an RSA public key, a certificate, and a
/// private key's flags.
fn pkcs11_seeds() -> Vec<(String, Vec<u8>)> {
    use cryptoki_sys::*;
    use der::Encode;
    let ec =
        officiant::keys::PublicKey::from_bytes(include_bytes!("../../fixtures/keys/p256.pub.pem"))
            .unwrap();
    let officiant::keys::PublicKey::Ec { curve, point } = &ec else {
        unreachable!()
    };
    let mut ec_obj = attr(CKA_CLASS, &ulong(CKO_PUBLIC_KEY));
    ec_obj.extend(attr(CKA_KEY_TYPE, &ulong(CKK_EC)));
    ec_obj.extend(attr(CKA_LABEL, b"fw-signing-p256"));
    ec_obj.extend(attr(CKA_ID, &[0x10, 0x01]));
    ec_obj.extend(attr(CKA_EC_PARAMS, &curve.oid().to_der().unwrap()));
    ec_obj.extend(attr(
        CKA_EC_POINT,
        &der::asn1::OctetStringRef::new(point)
            .unwrap()
            .to_der()
            .unwrap(),
    ));
    let rsa = officiant::keys::PublicKey::from_bytes(include_bytes!(
        "../../fixtures/keys/rsa2048.pub.pem"
    ))
    .unwrap();
    let officiant::keys::PublicKey::Rsa { n, e } = &rsa else {
        unreachable!()
    };
    let mut rsa_obj = attr(CKA_CLASS, &ulong(CKO_PUBLIC_KEY));
    rsa_obj.extend(attr(CKA_LABEL, "SRK1_sha256_2048_65537_v3_ca".as_bytes()));
    rsa_obj.extend(attr(CKA_MODULUS, n));
    rsa_obj.extend(attr(CKA_PUBLIC_EXPONENT, e));
    let cert = std::fs::read(
        root().join("ceremonies/hab4-rehearsal-pki/crts/SRK1_sha256_4096_65537_v3_ca_crt.der"),
    )
    .unwrap();
    let mut cert_obj = attr(CKA_CLASS, &ulong(CKO_CERTIFICATE));
    cert_obj.extend(attr(CKA_LABEL, b"SRK1"));
    cert_obj.extend(attr(CKA_VALUE, &cert));
    let mut private = attr(CKA_CLASS, &ulong(CKO_PRIVATE_KEY));
    for (a, v) in [
        (CKA_SENSITIVE, 1u8),
        (CKA_ALWAYS_SENSITIVE, 1),
        (CKA_EXTRACTABLE, 0),
        (CKA_NEVER_EXTRACTABLE, 1),
        (CKA_LOCAL, 1),
        (CKA_PRIVATE, 1),
    ] {
        private.extend(attr(a, &[v]));
    }
    private.extend(attr(CKA_LABEL, &[0xff, 0xfe, b'k']));
    vec![
        ("EC public key".into(), ec_obj),
        ("RSA public key".into(), rsa_obj),
        ("certificate".into(), cert_obj),
        ("private key flags".into(), private),
    ]
}

// ---- the targets ---------------------------------------------------------------------

#[test]
fn pkcs11_attributes() {
    let seeds = pkcs11_seeds();
    // Each seed decodes to what it describes (the private key has no public half).
    for (what, s) in &seeds {
        let d = officiant::hsm::pkcs11::attrs::decode_raw(s).unwrap();
        assert_eq!(d.public_key.is_ok(), what != "private key flags", "{what}");
    }
    assert_valid("pkcs11_attributes", entry::pkcs11_attributes, &seeds);
    check(
        "pkcs11_attributes",
        entry::pkcs11_attributes,
        &bytes(&seeds),
        400,
        600,
    );
}

#[test]
fn uri() {
    let seeds: Vec<(String, Vec<u8>)> = URIS
        .iter()
        .map(|u| (u.to_string(), u.as_bytes().to_vec()))
        .collect();
    assert_valid("uri", entry::uri, &seeds);
    let mut all = bytes(&seeds);
    all.extend(OTHER_TEXT.iter().map(|t| t.as_bytes().to_vec()));
    check("uri", entry::uri, &all, 200, 200);
}

/// A rehearsal store with an initialized token and one P-256 and one RSA-2048 key.
fn sim_store_seed() -> Vec<u8> {
    use officiant::hsm::UserType;
    use officiant::keys::KeyAlgorithm;
    use officiant::secret::Secret;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("token");
    let mut t = officiant::hsm::sim::open(&d).unwrap();
    let so = Secret::new(b"fuzz-so-pin".to_vec());
    let pin = Secret::new(entry::SIM_PIN.as_bytes().to_vec());
    t.init_token("fuzz", &so, &pin).unwrap();
    t.login(UserType::User, &pin).unwrap();
    t.generate_key(
        KeyAlgorithm::EcP256,
        &crate::support::label("ec"),
        &crate::support::object_id(&[1]),
    )
    .unwrap();
    let rsa = std::fs::read(root().join("tests/fixtures/keys/rsa2048.pkcs1.pem")).unwrap();
    let rsa = officiant::keys::PrivateKey::from_bytes(&rsa, None).unwrap();
    t.import_key(
        &rsa,
        &crate::support::label("rsa"),
        &crate::support::object_id(&[2]),
    )
    .unwrap();
    drop(t);
    std::fs::read(d.join("store.json")).unwrap()
}

#[test]
fn sim_store() {
    let seeds = vec![("rehearsal store".to_string(), sim_store_seed())];
    assert_valid("sim_store", entry::sim_store, &seeds);
    check("sim_store", entry::sim_store, &bytes(&seeds), 0, 80);
}
