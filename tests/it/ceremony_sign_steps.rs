//! The sign and issue-tbbr steps of the shipped ceremonies, judged by vendor tools:
//! fiptool packs tfa-rot's TBBR chain, openssl parses it and finds the right keys and
//! image hashes in it; openssl verifies stm32mp's signed STM32MP15 image over its signed
//! range.

use std::process::Command;

use crate::support::replay::{fiptool_pack, on_sim, openssl_sha256, shipped, spki_der};
use crate::support::{oracle, run_ok};

#[test]
fn tfa_rot_tbbr_chain_is_packed_by_fiptool_and_carries_the_right_keys() {
    let (Some(fiptool), Some(openssl)) = (oracle("fiptool"), oracle("openssl")) else {
        return;
    };
    let r = on_sim("tfa-rot");
    let fip = r.dir.path().join("fip.bin");
    fiptool_pack(&fiptool, &r.out, &fip);
    let info = run_ok(Command::new(&fiptool).arg("info").arg(&fip));
    for want in [
        "--trusted-key-cert",
        "--tb-fw-cert",
        "--soc-fw-cert",
        "--nt-fw-cert",
    ] {
        assert!(info.contains(want), "{info}");
    }
    // Each certificate parses, and trusted_key.crt / tb_fw.crt hold the ROT key that the
    // ceremony exported (cert_create's self-issued shape).
    let rot = spki_der(&openssl, &r.file("rot_key.pub.pem"));
    for f in ["trusted_key.crt", "tb_fw.crt"] {
        let pem = run_ok(
            Command::new(&openssl)
                .args(["x509", "-inform", "DER", "-noout", "-pubkey", "-in"])
                .arg(r.file(f)),
        );
        let p = r.dir.path().join(format!("{f}.pub.pem"));
        std::fs::write(&p, pem).unwrap();
        assert_eq!(spki_der(&openssl, &p), rot, "{f}");
        let text = run_ok(
            Command::new(&openssl)
                .args(["x509", "-inform", "DER", "-noout", "-text", "-in"])
                .arg(r.file(f)),
        );
        assert!(text.contains("1.3.6.1.4.1.4128.2100"), "{text}");
    }
    // tb_fw.crt carries the SHA-256 of BL2, soc_fw_content.crt that of BL31.
    for (crt, img) in [
        ("tb_fw.crt", "bl2.bin"),
        ("soc_fw_content.crt", "bl31.bin"),
        ("nt_fw_content.crt", "bl33.bin"),
    ] {
        let h = openssl_sha256(&openssl, &shipped(&format!("samples/{img}")));
        assert!(
            r.read(crt).windows(32).any(|w| w == h.as_slice()),
            "{crt} lacks the hash of {img}"
        );
    }
}

/// A fixed-width r‖s as DER ECDSA-Sig-Value.
fn der_sig(rs: &[u8]) -> Vec<u8> {
    let int = |x: &[u8]| {
        let mut v: Vec<u8> = x.iter().copied().skip_while(|&b| b == 0).collect();
        if v.first().is_none_or(|&b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    };
    let (r, s) = rs.split_at(rs.len() / 2);
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn stm32mp_signed_sample_verifies_with_openssl_over_the_signed_range() {
    let Some(openssl) = oracle("openssl") else {
        return;
    };
    let r = on_sim("stm32mp");
    let img = r.read("stm32-payload_Signed.stm32");
    assert_eq!(&img[..4], b"STM2");
    let len = u32::from_le_bytes(img[76..80].try_into().unwrap()) as usize;
    let payload = std::fs::read(shipped("samples/stm32-payload.bin")).unwrap();
    assert_eq!(len, payload.len());
    assert_eq!(&img[256..], payload.as_slice());
    assert_eq!(
        u32::from_le_bytes(img[88..92].try_into().unwrap()),
        0x2FFC_2500
    );
    let signed = r.dir.path().join("signed.bin");
    std::fs::write(&signed, &img[0x48..256 + len]).unwrap();
    let sig = r.dir.path().join("sig.der");
    std::fs::write(&sig, der_sig(&img[4..68])).unwrap();
    let v = run_ok(
        Command::new(&openssl)
            .args(["dgst", "-sha256", "-verify"])
            .arg(r.file("stm32mp15-key.pub.pem"))
            .arg("-signature")
            .arg(&sig)
            .arg(&signed),
    );
    assert!(v.contains("Verified OK"), "{v}");
    // The header's key is the exported key (X‖Y at 108).
    let spki = spki_der(&openssl, &r.file("stm32mp15-key.pub.pem"));
    assert_eq!(&img[108..172], &spki[27..]);
    // The transcript names input and output by SHA-256.
    let tr = r.transcript();
    assert!(tr.contains(&hex::encode(officiant::output::sha256(&payload))));
    assert!(tr.contains(&hex::encode(officiant::output::sha256(&img))));
}
