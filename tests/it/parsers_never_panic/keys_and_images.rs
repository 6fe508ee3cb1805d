//! Keys, certificates and signed images: the seeds built here with a fixed key, the
//! shipped fixtures, and the KDF cost bound of an encrypted key.

use super::*;

pub(super) fn signing_key() -> p256::ecdsa::SigningKey {
    use p256::pkcs8::DecodePrivateKey;
    let pem = std::fs::read_to_string(root().join("tests/fixtures/keys/p256.pk8.pem")).unwrap();
    p256::ecdsa::SigningKey::from_pkcs8_pem(&pem).unwrap()
}

/// An ESP32 Secure Boot V2 image (ECDSA P-256) of a 300-byte app: padded image + sector.
pub(super) fn esp32_image() -> Vec<u8> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let app: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
    let (digest, padded) = esp32::image_digest(HashAlg::Sha256, &app[..]).unwrap();
    let sig: p256::ecdsa::Signature = signing_key().sign_prehash(&digest).unwrap();
    let block = esp32::signature_block(&entry::fixture_p256(), &digest, &sig.to_bytes()).unwrap();
    let sector = esp32::build_sector(&[block]).unwrap();
    let mut img = app;
    img.resize(padded as usize, 0xff);
    img.extend_from_slice(&sector);
    img
}

/// A signed STM32MP image (header v1 or v2, then a 64-byte payload).
pub(super) fn stm32_image(layout: stm32_image::Layout) -> Vec<u8> {
    use p256::ecdsa::signature::Signer;
    use std::io::Write;
    let payload: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(29)).collect();
    let mut sum = stm32_image::Checksum::default();
    sum.write_all(&payload).unwrap();
    let f = stm32_image::Fields {
        entry_point: 0x2ffc_2400,
        load_address: 0x2ffc_2400,
        image_version: 1,
        binary_type: 0x10,
    };
    let mut h = stm32_image::Header::new(layout, &f, payload.len() as u32, sum.0);
    h.set_key(&entry::fixture_p256(), None).unwrap();
    let mut signed = h.signed_part().to_vec();
    signed.extend_from_slice(&payload);
    let sig: p256::ecdsa::Signature = signing_key().sign(&signed);
    h.set_signature(&sig.to_bytes().into());
    let mut out = h.bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

pub(super) fn raw_signature() -> Vec<u8> {
    use p256::ecdsa::signature::Signer;
    let sig: p256::ecdsa::Signature = signing_key().sign(b"officiant fuzz payload");
    sig.to_der().as_bytes().to_vec()
}

#[test]
pub(super) fn public_key() {
    let mut seeds = files("tests/fixtures/keys", |n| n.ends_with(".pub.pem"));
    seeds.extend(files("ceremonies/hab4-rehearsal-pki/crts", |_| true));
    let spki = entry::fixture_p256().to_spki_der();
    seeds.push(("p256 SPKI DER".into(), spki));
    assert_valid("public_key", entry::public_key, &seeds);
    check("public_key", entry::public_key, &bytes(&seeds), 300, 200);
}

#[test]
pub(super) fn private_key() {
    let supported = [
        "p256.pk8.der",
        "p256.pk8.pem",
        "p256.sec1.der",
        "p256.sec1.pem",
        "p256.sec1-params.pem",
        "p384.pk8-aes256-sha1.pem",
        "p521.pk8-des3.pem",
        "rsa2048.pk8-aes256.der",
        "rsa2048.pkcs1.pem",
    ];
    let seeds = files("tests/fixtures/keys", |n| supported.contains(&n));
    assert_eq!(seeds.len(), supported.len());
    assert_valid("private_key", entry::private_key, &seeds);
    // Refused with a clear error, still mutated: PBES1, traditional encrypted PEM.
    let mut all = bytes(&seeds);
    all.extend(bytes(&files("tests/fixtures/keys", |n| {
        n == "rsa2048.pbes1.pem" || n == "rsa2048.trad-enc.pem" || n == "k256.pk8.pem"
    })));
    check("private_key", entry::private_key, &all, 200, 60);
}

#[test]
pub(super) fn certificate() {
    let seeds = files("ceremonies/hab4-rehearsal-pki/crts", |_| true);
    assert_eq!(seeds.len(), 4);
    assert_valid("certificate", entry::certificate, &seeds);
    check("certificate", entry::certificate, &bytes(&seeds), 0, 150);
}

#[test]
pub(super) fn esp32() {
    let seeds = vec![("signed esp32 image".to_string(), esp32_image())];
    assert_valid("esp32", entry::esp32_verify, &seeds);
    let failures = drive("esp32", entry::esp32_verify, &bytes(&seeds), 0, 400);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every byte of the block header and the key and signature fields of block 1.
    let img = esp32_image();
    let at = img.len() - esp32::SECTOR_LEN;
    let mut m = Vec::new();
    for i in at..at + esp32::BLOCK_LEN {
        let mut x = img.clone();
        x[i] ^= 0xff;
        m.push(x);
    }
    dump_corpus("esp32", &bytes(&seeds));
    for x in m {
        run_one("esp32", entry::esp32_verify, &x).unwrap_or_else(|f| panic!("{f}"));
    }
}

#[test]
pub(super) fn stm32() {
    let seeds = vec![
        (
            "signed stm32mp15 image".to_string(),
            stm32_image(stm32_image::Layout::V1),
        ),
        (
            "signed stm32mp13 image".to_string(),
            stm32_image(stm32_image::Layout::V2),
        ),
    ];
    assert_valid("stm32", entry::stm32_verify, &seeds);
    check("stm32", entry::stm32_verify, &bytes(&seeds), 1024, 300);
}

#[test]
pub(super) fn raw_signature_target() {
    let seeds = vec![("p256 DER signature".to_string(), raw_signature())];
    assert_valid("raw_signature", entry::raw_signature, &seeds);
    let mut all = bytes(&seeds);
    all.push(vec![0x5a; 256]); // an RSA-2048-sized blob
    check("raw_signature", entry::raw_signature, &all, 300, 300);
}

pub(super) fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/imx").join(name)).unwrap()
}

/// The CSF region of the spsdk-signed fixture, without its zero padding.
pub(super) fn hab4_csf_region(image: &[u8]) -> Vec<u8> {
    let at = (u32::from_le_bytes(image[24..28].try_into().unwrap())
        - u32::from_le_bytes(image[20..24].try_into().unwrap())) as usize;
    let region = &image[at..];
    let end = region.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    region[..end].to_vec()
}

#[test]
pub(super) fn imx_ivt() {
    let seeds = vec![(
        "spsdk-signed HAB4 image".to_string(),
        fixture("hab4-signed.bin"),
    )];
    assert_valid("imx_ivt", entry::imx_ivt, &seeds);
    let mut all = bytes(&seeds);
    // Refused, still mutated: fast authentication under another table, unsigned, and
    // U-Boot-style (IVT at 0x400).
    all.push(fixture("hab4-fast.bin"));
    all.push(std::fs::read(root().join("assets/imx/rt1060-hab4-unsigned.bin")).unwrap());
    let mut shifted = vec![0u8; 0x400];
    shifted.extend_from_slice(&fixture("hab4-signed.bin"));
    all.push(shifted);
    check("imx_ivt", entry::imx_ivt, &all, 0, 150);
    // Every byte of the IVT and boot data, and of the CSF's header and commands.
    let img = fixture("hab4-signed.bin");
    let csf_at = img.len() - 0x2000;
    for i in (0..0x2c).chain(csf_at..csf_at + 0x50) {
        for v in [img[i] ^ 0xff, 0x00, 0x80, 0xff] {
            let mut x = img.clone();
            x[i] = v;
            run_one("imx_ivt", entry::imx_ivt, &x).unwrap_or_else(|f| panic!("{f}"));
        }
    }
}

#[test]
pub(super) fn imx_csf() {
    let signed = hab4_csf_region(&fixture("hab4-signed.bin"));
    let seeds = vec![("spsdk-signed CSF".to_string(), signed)];
    assert_valid("imx_csf", entry::imx_csf, &seeds);
    let mut all = bytes(&seeds);
    all.push(hab4_csf_region(&fixture("hab4-fast.bin")));
    check("imx_csf", entry::imx_csf, &all, 2048, 200);
}

#[test]
pub(super) fn ahab_container() {
    let signed = fixture("ahab-signed.bin");
    let seeds = vec![("spsdk-signed AHAB container".to_string(), signed.clone())];
    assert_valid("ahab_container", entry::ahab_container, &seeds);
    // The container alone (header, image array, signature block), for every-byte
    // mutations; and an unsigned one.
    let len = usize::from(u16::from_le_bytes([signed[1], signed[2]]));
    let mut all = bytes(&seeds);
    all.push(signed[..len].to_vec());
    let mut unsigned = signed[..0x110].to_vec();
    unsigned[1..3].copy_from_slice(&0x120u16.to_le_bytes());
    unsigned[4] = 0;
    unsigned.extend_from_slice(&[0x00, 0x10, 0x00, 0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    all.push(unsigned);
    check("ahab_container", entry::ahab_container, &all, 1024, 200);
}
