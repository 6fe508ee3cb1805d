//! export-fuses in the shipped tfa-rot, esp32-sbv2 and stm32mp ceremonies, judged by
//! openssl (ROTPK pipeline, key extraction), espsecure (ESP32 key digests) and an
//! independent PKH/PKHTH computation here (openssl for keys and hashes).

use std::process::Command;

use crate::support::replay::{self, on_sim, openssl_sha256, spki_der, Replay};
use crate::support::{self, oracle, run_ok};

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
        run_ok(
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
    // The sign step's image: espsecure accepts it with key 0, and not with key 1.
    let signed = r.file("esp32-app-signed.bin");
    let ok = run_ok(
        Command::new(&espsecure)
            .args(["verify-signature", "--version", "2", "--keyfile"])
            .arg(r.file("esp32-sbv2-key0.pub.pem"))
            .arg(&signed),
    );
    assert!(ok.contains("verification successful"), "{ok}");
    let wrong = support::run(
        Command::new(&espsecure)
            .args(["verify-signature", "--version", "2", "--keyfile"])
            .arg(r.file("esp32-sbv2-key1.pub.pem"))
            .arg(&signed),
    );
    assert!(!wrong.status.success(), "key 1 must not verify the image");
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

#[test]
fn hab4_fuses_from_a_certificate_next_to_the_script_match_srktool() {
    let Some(srktool) = oracle("srktool") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let srk = "SRK1_sha256_4096_65537_v3_ca_crt.der";
    std::fs::copy(
        replay::shipped(&format!("hab4-rehearsal-pki/crts/{srk}")),
        d.path().join(srk),
    )
    .unwrap();
    let script = d.path().join("fuses.toml");
    std::fs::write(
        &script,
        format!(
            "[ceremony]\nid = \"f\"\ntitle = \"Fuses from a file\"\nversion = 1\ntoken = \"t\"\n\n\
             [[step]]\nid = \"fuses\"\nkind = \"export-fuses\"\nformat = \"hab4\"\ncerts = [\"{srk}\"]\nsoc = \"imx6\"\n"
        ),
    )
    .unwrap();
    let out = d.path().join("out");
    support::run_ok(
        support::officiant()
            .arg("run")
            .arg(&script)
            .arg("--backend")
            .arg(format!("sim:{}", d.path().join("tok").display()))
            .arg("--out")
            .arg(&out),
    );
    let (t, f) = (d.path().join("t.bin"), d.path().join("f.bin"));
    run_ok(
        Command::new(&srktool)
            .args(["-h", "4", "-d", "sha256", "-f", "1", "-t"])
            .arg(&t)
            .arg("-e")
            .arg(&f)
            .arg("-c")
            .arg(d.path().join(srk)),
    );
    assert_eq!(
        std::fs::read(out.join("SRK_1_table.bin")).unwrap(),
        std::fs::read(&t).unwrap()
    );
    assert_eq!(
        std::fs::read(out.join("SRK_1_fuse.bin")).unwrap(),
        std::fs::read(&f).unwrap()
    );
    let tr = std::fs::read_to_string(out.join("transcript.jsonl")).unwrap();
    assert!(tr.contains("fuse prog -y 3 0 0x"), "imx6 U-Boot lines");
}
