//! STM32MP header v1 and v2 images from the signing service. No open-source tool checks
//! these signatures, so openssl is the judge over the signed range (extracted here by
//! FORMATS.md's offsets, with r‖s turned into DER by openssl's own ASN.1 generator), and
//! the headers are read field by field at FORMATS.md's offsets.

use std::path::{Path, PathBuf};

use officiant::keys::load_public_key;
use officiant::signing::{self, Format, Options};
use sha2::{Digest, Sha256};

use crate::support;
use crate::support::sign::{
    flipped, openssl_der_from_rs, openssl_key, openssl_ok, signing_key, token_with_key, KeyFiles,
    SoftToken,
};

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// X‖Y of a P-256 key, from the last 64 bytes of its DER SPKI as openssl writes it.
fn xy(files: &KeyFiles) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(&files.public)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 91);
    out.stdout[27..].to_vec()
}

/// openssl's verdict on the image's signature over [0x48, header_len + image length).
fn openssl_verifies(dir: &Path, files: &KeyFiles, image: &Path, header_len: usize) -> bool {
    let b = std::fs::read(image).unwrap();
    let len = u32le(&b, 76) as usize;
    let range = dir.join("signed-range.bin");
    std::fs::write(&range, &b[0x48..header_len + len]).unwrap();
    let der = openssl_der_from_rs(dir, &b[4..68]);
    openssl_ok(&[
        "dgst",
        "-sha256",
        "-verify",
        files.public.to_str().unwrap(),
        "-signature",
        der.to_str().unwrap(),
        range.to_str().unwrap(),
    ])
}

fn payload(dir: &Path, len: usize) -> (PathBuf, Vec<u8>) {
    let p = dir.join("bl2.bin");
    let data: Vec<u8> = (0..len).map(|i| (i * 13 % 256) as u8).collect();
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

fn stm32_opts() -> Options {
    let mut o = Options::default();
    o.stm32.load_address = Some(0x2ffc_2400);
    o.stm32.entry_point = Some(0x2ffc_2500);
    o.stm32.image_version = Some(7);
    o
}

#[test]
fn v1_payload_header_fields_and_openssl() {
    if support::oracle("openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (files, mut token) = token_with_key(d, "stm", "ec-p256");
    let mut key = signing_key(&mut token, "stm");
    let (input, data) = payload(d, 70_001);
    let out = d.join("bl2.stm32");
    let r = signing::sign_file(&mut key, Format::Stm32Mp15, &stm32_opts(), &input, &out).unwrap();
    let b = std::fs::read(&out).unwrap();

    // Field by field, FORMATS.md's v1 offsets.
    assert_eq!(b.len(), 256 + data.len());
    assert_eq!(&b[0..4], b"STM2");
    let sum = data.iter().fold(0u32, |a, &x| a.wrapping_add(x as u32));
    assert_eq!(u32le(&b, 68), sum, "checksum");
    assert_eq!(&b[72..76], &[0, 0, 1, 0], "header version");
    assert_eq!(u32le(&b, 76) as usize, data.len(), "image length");
    assert_eq!(u32le(&b, 80), 0x2ffc_2500, "entry point");
    assert_eq!(u32le(&b, 88), 0x2ffc_2400, "load address");
    assert_eq!(u32le(&b, 96), 7, "anti-rollback version");
    assert_eq!(u32le(&b, 100) & 1, 0, "no-signature-check flag clear");
    assert_eq!(u32le(&b, 104), 1, "algorithm P-256");
    assert_eq!(&b[108..172], xy(&files).as_slice(), "public key X‖Y");
    assert!(b[172..255].iter().all(|&x| x == 0));
    assert_eq!(b[255], 0x10, "binary type");
    assert_eq!(&b[256..], data.as_slice());
    assert_eq!(r.output_sha256, hex::encode(Sha256::digest(&b)));

    assert!(openssl_verifies(d, &files, &out, 256));
    let pubkey = load_public_key(&files.public).unwrap();
    signing::verify_file(Format::Stm32Mp15, &pubkey, &out, None, None).unwrap();

    // Tamper: payload, a signed header field, the signature.
    let e = |p: &Path| {
        signing::verify_file(Format::Stm32Mp15, &pubkey, p, None, None)
            .unwrap_err()
            .to_string()
    };
    let t = flipped(&out, 256 + 1234, "payload.stm32");
    assert!(!openssl_verifies(d, &files, &t, 256));
    assert!(
        e(&t).contains("stm32mp15 header: checksum mismatch"),
        "{}",
        e(&t)
    );
    assert!(e(&t).contains("payload altered"));
    let t = flipped(&out, 88, "load.stm32");
    assert!(!openssl_verifies(d, &files, &t, 256));
    assert!(e(&t).contains("header field"), "{}", e(&t));
    let t = flipped(&out, 20, "sig.stm32");
    assert!(!openssl_verifies(d, &files, &t, 256));
    assert!(
        e(&t).contains("signature at 0x04..0x44 was altered"),
        "{}",
        e(&t)
    );
    let t = flipped(&out, 200, "pad.stm32");
    assert!(
        e(&t).contains("padding bytes 172..255 altered"),
        "{}",
        e(&t)
    );
    let t = flipped(&out, 120, "key.stm32");
    assert!(e(&t).contains("public key field"), "{}", e(&t));
}

/// An unsigned v1 image as stm32image/mkimage lay it out: magic, checksum, version,
/// length, entry, load, option flags 1 (no signature check), algorithm 1, zero key.
fn unsigned_v1(data: &[u8], trailing: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 256];
    h[..4].copy_from_slice(b"STM2");
    let sum = data.iter().fold(0u32, |a, &x| a.wrapping_add(x as u32));
    h[68..72].copy_from_slice(&sum.to_le_bytes());
    h[72..76].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    h[76..80].copy_from_slice(&(data.len() as u32).to_le_bytes());
    h[80..84].copy_from_slice(&0xC010_0000u32.to_le_bytes());
    h[88..92].copy_from_slice(&0xC000_0000u32.to_le_bytes());
    h[96..100].copy_from_slice(&2u32.to_le_bytes());
    h[100..104].copy_from_slice(&1u32.to_le_bytes());
    h[104..108].copy_from_slice(&1u32.to_le_bytes());
    h[255] = 0x00;
    h.extend_from_slice(data);
    h.extend_from_slice(trailing);
    h
}

#[test]
fn v1_fills_an_unsigned_image_keeping_its_fields() {
    if support::oracle("openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (files, mut token) = token_with_key(d, "stm", "ec-p256");
    let mut key = signing_key(&mut token, "stm");
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    let img = unsigned_v1(&data, b"trailer");
    let input = d.join("u-boot.stm32");
    std::fs::write(&input, &img).unwrap();
    let out = d.join("u-boot_Signed.stm32");
    // Header fields on the command line conflict with the image's own.
    let e =
        signing::sign_file(&mut key, Format::Stm32Mp15, &stm32_opts(), &input, &out).unwrap_err();
    assert!(e.to_string().contains("already an STM32 image"), "{e}");
    // The wrong header version is named.
    let e = signing::sign_file(
        &mut key,
        Format::Stm32Mp13,
        &Options::default(),
        &input,
        &out,
    )
    .unwrap_err();
    assert!(e.to_string().contains("--format stm32mp15"), "{e}");

    let r = signing::sign_file(
        &mut key,
        Format::Stm32Mp15,
        &Options::default(),
        &input,
        &out,
    )
    .unwrap();
    let b = std::fs::read(&out).unwrap();
    assert_eq!(b.len(), img.len());
    assert_eq!(u32le(&b, 80), 0xC010_0000);
    assert_eq!(u32le(&b, 88), 0xC000_0000);
    assert_eq!(u32le(&b, 96), 2);
    assert_eq!(u32le(&b, 100), 0, "no-signature-check cleared");
    assert_eq!(b[255], 0x00);
    assert_eq!(&b[256..], &img[256..], "payload and trailer untouched");
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("7 bytes after the image length")));
    assert!(openssl_verifies(d, &files, &out, 256));
    // Signing it again is refused: it is signed.
    let e = signing::sign_file(
        &mut key,
        Format::Stm32Mp15,
        &Options::default(),
        &out,
        &d.join("x"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("already carries a signature"), "{e}");
    // The trailer is outside the signed range: openssl still verifies the signature, and
    // verify refuses the image, naming the unsigned bytes (issue 11, item 10).
    let t = flipped(&out, b.len() - 1, "trailer.stm32");
    assert!(openssl_verifies(d, &files, &t, 256));
    let pubkey = load_public_key(&files.public).unwrap();
    let e = signing::verify_file(Format::Stm32Mp15, &pubkey, &t, None, None).unwrap_err();
    assert!(
        e.to_string().contains("7 bytes after the signed payload"),
        "{e}"
    );
}

/// `mkimage -l`'s description of an STM32 image (U-Boot's own header check).
fn mkimage_list(mkimage: &Path, image: &Path) -> String {
    let out = std::process::Command::new(mkimage)
        .arg("-l")
        .arg(image)
        .output()
        .unwrap();
    assert!(out.status.success(), "mkimage -l {}", image.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// U-Boot's mkimage (Debian u-boot-tools) is the peer for header v1: an image it made is
/// filled with a signature keeping every field, mkimage still reads the result, and a
/// header we build for a raw payload has the same fields as mkimage's for it.
#[test]
fn v1_agrees_with_u_boot_mkimage() {
    let (Some(mkimage), Some(_)) = (support::oracle("mkimage"), support::oracle("openssl")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (files, mut token) = token_with_key(d, "stm", "ec-p256");
    let mut key = signing_key(&mut token, "stm");
    let (payload, _) = payload(d, 70_001);
    let made = d.join("mkimage.stm32");
    let out = std::process::Command::new(&mkimage)
        .args([
            "-T",
            "stm32image",
            "-a",
            "0x2ffc2400",
            "-e",
            "0x2ffc2500",
            "-d",
        ])
        .arg(&payload)
        .arg(&made)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let listed = mkimage_list(&mkimage, &made);
    assert!(listed.contains("Option     : 0x00000001"), "{listed}");

    // Fill mkimage's image: every field but the signature, key and flags is kept.
    let filled = d.join("filled.stm32");
    signing::sign_file(
        &mut key,
        Format::Stm32Mp15,
        &Options::default(),
        &made,
        &filled,
    )
    .unwrap();
    let m = std::fs::read(&made).unwrap();
    let f = std::fs::read(&filled).unwrap();
    assert_eq!(f.len(), m.len());
    assert_eq!(f[256..], m[256..], "payload untouched");
    for (at, name) in [
        (68, "checksum"),
        (72, "version"),
        (76, "length"),
        (80, "entry"),
        (88, "load"),
        (96, "rollback"),
    ] {
        assert_eq!(u32le(&f, at), u32le(&m, at), "{name} kept");
    }
    assert_eq!(f[255], m[255], "binary type kept");
    assert_eq!(u32le(&f, 100), 0, "no-signature-check cleared");
    assert_eq!(&f[108..172], xy(&files).as_slice(), "public key X‖Y");
    assert!(openssl_verifies(d, &files, &filled, 256));
    let listed = mkimage_list(&mkimage, &filled);
    assert!(listed.contains("STM32"), "{listed}");
    assert!(listed.contains("Option     : 0x00000000"), "{listed}");
    assert!(listed.contains("Image Load   : 0x2ffc2400"), "{listed}");
    assert!(listed.contains("Entry Point  : 0x2ffc2500"), "{listed}");

    // Our header for the raw payload: the same fields as mkimage's.
    let mut opts = Options::default();
    opts.stm32.load_address = Some(0x2ffc_2400);
    opts.stm32.entry_point = Some(0x2ffc_2500);
    let ours = d.join("ours.stm32");
    signing::sign_file(&mut key, Format::Stm32Mp15, &opts, &payload, &ours).unwrap();
    let o = std::fs::read(&ours).unwrap();
    assert_eq!(o.len(), m.len());
    assert_eq!(o[..4], m[..4], "magic");
    for (at, name) in [
        (68, "checksum"),
        (72, "version"),
        (76, "length"),
        (80, "entry"),
        (88, "load"),
        (96, "rollback"),
    ] {
        assert_eq!(u32le(&o, at), u32le(&m, at), "{name} as mkimage writes it");
    }
    assert_eq!(o[256..], m[256..]);
    assert!(openssl_verifies(d, &files, &ours, 256));
    let listed = mkimage_list(&mkimage, &ours);
    assert!(listed.contains("Checksum"), "{listed}");
}

#[test]
fn v2_multi_key_table_header_fields_and_openssl() {
    if support::oracle("openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys: Vec<KeyFiles> = (0..4)
        .map(|i| openssl_key(d, &format!("k{i}"), "ec-p256"))
        .collect();
    let mut token = SoftToken::new();
    token.add("stm2", &keys[2]);
    let mut key = signing_key(&mut token, "stm2");
    let (input, data) = payload(d, 33_333);
    let out = d.join("bl2-mp13.stm32");
    let mut opts = stm32_opts();
    opts.stm32.key_table = keys
        .iter()
        .map(|k| load_public_key(&k.public).unwrap())
        .collect();
    signing::sign_file(&mut key, Format::Stm32Mp13, &opts, &input, &out).unwrap();
    let b = std::fs::read(&out).unwrap();

    assert_eq!(b.len(), 0x200 + data.len());
    assert_eq!(&b[0..4], b"STM2");
    assert_eq!(&b[72..76], &[0, 0, 2, 0], "header version v2");
    assert_eq!(u32le(&b, 76) as usize, data.len());
    assert_eq!(u32le(&b, 80), 0x2ffc_2500);
    assert_eq!(u32le(&b, 88), 0x2ffc_2400);
    assert_eq!(u32le(&b, 96), 7);
    assert_eq!(
        u32le(&b, 100),
        0x8000_0001,
        "extension flags: auth + padding"
    );
    assert_eq!(u32le(&b, 104), 0x180, "extension headers length");
    assert_eq!(u32le(&b, 108), 0x10, "binary type");
    // Authentication extension at 0x80.
    assert_eq!(&b[0x80..0x84], &[0x53, 0x54, 0x00, 0x02]);
    let auth_len = u32le(&b, 0x84) as usize;
    assert_eq!(auth_len, 20 + 64 + 4 * 32);
    assert_eq!(u32le(&b, 0x88), 2, "key index");
    assert_eq!(u32le(&b, 0x8c), 4, "key count");
    assert_eq!(u32le(&b, 0x90), 1, "algorithm");
    assert_eq!(&b[0x94..0xd4], xy(&keys[2]).as_slice());
    let mut all = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let mut h = Sha256::new();
        h.update(1u32.to_le_bytes());
        h.update(xy(k));
        let h = h.finalize();
        assert_eq!(
            &b[0xd4 + 32 * i..0xd4 + 32 * (i + 1)],
            h.as_slice(),
            "table entry {i}"
        );
        all.extend_from_slice(&h);
    }
    // Padding extension to 0x200.
    let pad = 0x80 + auth_len;
    assert_eq!(&b[pad..pad + 4], &[0x53, 0x54, 0xFF, 0xFF]);
    assert_eq!(u32le(&b, pad + 4) as usize, 0x200 - pad);
    assert_eq!(&b[0x200..], data.as_slice());

    assert!(openssl_verifies(d, &keys[2], &out, 0x200));
    let pubkey = load_public_key(&keys[2].public).unwrap();
    let rep = signing::verify_file(Format::Stm32Mp13, &pubkey, &out, None, None).unwrap();
    let pkhth = hex::encode(Sha256::digest(&all));
    assert!(
        rep.lines.iter().any(|l| l.contains(&pkhth)),
        "{:?}",
        rep.lines
    );

    let e = |p: &Path| {
        signing::verify_file(Format::Stm32Mp13, &pubkey, p, None, None)
            .unwrap_err()
            .to_string()
    };
    let t = flipped(&out, 0x200 + 10, "p.stm32");
    assert!(!openssl_verifies(d, &keys[2], &t, 0x200));
    assert!(
        e(&t).contains("stm32mp13 header: checksum mismatch"),
        "{}",
        e(&t)
    );
    let t = flipped(&out, 0xd4 + 32 * 2 + 5, "table.stm32");
    assert!(e(&t).contains("key hash table"), "{}", e(&t));
    let t = flipped(&out, 0xd4 + 3, "table0.stm32");
    assert!(!openssl_verifies(d, &keys[2], &t, 0x200));
    assert!(e(&t).contains("header field"), "{}", e(&t));
    let t = flipped(&out, 40, "sig.stm32");
    assert!(!openssl_verifies(d, &keys[2], &t, 0x200));
    assert!(
        e(&t).contains("signature at 0x04..0x44 was altered"),
        "{}",
        e(&t)
    );

    // The wrong index for the signing key is refused before anything is signed.
    opts.stm32.key_index = Some(1);
    let e =
        signing::sign_file(&mut key, Format::Stm32Mp13, &opts, &input, &d.join("y")).unwrap_err();
    assert!(
        e.to_string()
            .contains("entry 1 is not the hash of the signing key"),
        "{e}"
    );
    assert!(!d.join("y").exists());
}

#[test]
fn stm32_refuses_non_p256_keys_and_missing_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = openssl_key(d, "k", "ec-p384");
    let mut token = SoftToken::new();
    token.add("k", &files);
    let mut key = signing_key(&mut token, "k");
    let (input, _) = payload(d, 100);
    let e = signing::sign_file(
        &mut key,
        Format::Stm32Mp15,
        &stm32_opts(),
        &input,
        &d.join("o"),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("P-256 or brainpoolP256t1 only"),
        "{e}"
    );
    let e = signing::sign_file(
        &mut key,
        Format::Stm32Mp15,
        &Options::default(),
        &input,
        &d.join("o"),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("--load-address and --entry-point"),
        "{e}"
    );
    assert!(!d.join("o").exists());
}
