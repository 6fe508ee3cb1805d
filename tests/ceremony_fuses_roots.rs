//! export-fuses in the shipped tfa-rot, esp32-sbv2 and stm32mp ceremonies, judged by
//! openssl (ROTPK pipeline, key extraction), espsecure (ESP32 key digests) and an
//! independent PKH/PKHTH computation here (openssl for keys and hashes).

mod ceremony_steps_common;
mod support;

use std::process::Command;

use ceremony_steps_common::{on_sim, openssl_sha256, oracle_ok, spki_der, Replay};
use support::oracle;

#[test]
fn tfa_rot_rotpk_equals_the_openssl_pipeline() {
    let Some(openssl) = oracle("openssl") else {
        return;
    };
    let r = on_sim("tfa-rot");
    // openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary
    let der = r.dir.path().join("rot.der");
    std::fs::write(&der, spki_der(&openssl, &r.file("rot_key.pub.pem"))).unwrap();
    let want = openssl_sha256(&openssl, &der);
    assert_eq!(r.read("rotpk_sha256.bin"), want);
    // DigestInfo form: the DER SHA-256 DigestInfo prefix, then the hash.
    let mut di = hex::decode("3031300d060960864801650304020105000420").unwrap();
    di.extend_from_slice(&want);
    assert_eq!(r.read("rotpk_sha256_digest_info.bin"), di);
    // The witnesses see it as hex and PGP words.
    let words = officiant::formats::words::pgp_words(&want);
    assert!(r.transcript().contains(&words));
}

#[test]
fn esp32_digests_equal_espsecure() {
    let Some(espsecure) = oracle("espsecure") else {
        return;
    };
    let r = on_sim("esp32-sbv2");
    for i in 0..3 {
        let d = r.dir.path().join(format!("espsecure{i}.bin"));
        oracle_ok(
            Command::new(&espsecure)
                .args(["digest-sbv2-public-key", "--keyfile"])
                .arg(r.file(&format!("esp32-sbv2-key{i}.pub.pem")))
                .arg("--output")
                .arg(&d),
        );
        assert_eq!(
            r.read(&format!("esp32-sbv2-key{i}_digest.bin")),
            std::fs::read(&d).unwrap(),
            "key {i}"
        );
    }
    let tr = r.transcript();
    assert!(
        tr.contains("espefuse burn-key BLOCK_KEY2 esp32-sbv2-key2_digest.bin SECURE_BOOT_DIGEST2")
    );
}

/// X‖Y of a P-256 public key, taken from openssl's DER SPKI (uncompressed point last).
fn xy(openssl: &std::path::Path, r: &Replay, pem: &str) -> Vec<u8> {
    let der = spki_der(openssl, &r.file(pem));
    assert_eq!(der.len(), 91, "a P-256 SPKI");
    assert_eq!(der[26], 0x04, "uncompressed point");
    der[27..].to_vec()
}

#[test]
fn stm32_pkh_and_pkhth_recomputed_independently() {
    let Some(openssl) = oracle("openssl") else {
        return;
    };
    let r = on_sim("stm32mp");
    let sha = |bytes: &[u8], name: &str| {
        let p = r.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        openssl_sha256(&openssl, &p)
    };
    let pkh = sha(&xy(&openssl, &r, "stm32mp15-key.pub.pem"), "xy15");
    assert_eq!(r.read("stm32mp15_pkh.bin"), pkh);
    // PKHTH = SHA-256(concatenation of SHA-256(u32le(1 = P-256) ‖ X ‖ Y)), key order.
    let mut table = Vec::new();
    for i in 0..8 {
        let mut k = 1u32.to_le_bytes().to_vec();
        k.extend(xy(&openssl, &r, &format!("stm32mp13-key{i}.pub.pem")));
        table.extend(sha(&k, &format!("k{i}")));
    }
    assert_eq!(r.read("stm32mp13_pkhth.bin"), sha(&table, "table"));
    assert!(r
        .transcript()
        .contains(&officiant::formats::words::pgp_words(&pkh)));
}
