//! ESP32 Secure Boot V2 images from the signing service, judged by espsecure
//! (`verify-signature --version 2`, `signature-info-v2`, `digest-sbv2-public-key`).

use std::path::{Path, PathBuf};
use std::process::Command;

use officiant::keys::load_public_key;
use officiant::signing::{self, Format, Options};

use crate::support;
use crate::support::sign::{flipped, openssl_key, signing_key, KeyFiles, SoftToken};

fn image(dir: &Path, name: &str, len: usize) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        (0..len).map(|i| (i * 31 % 256) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    p
}

fn espsecure(esp: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new(esp).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn esp_verifies(esp: &Path, key: &KeyFiles, signed: &Path) -> bool {
    espsecure(
        esp,
        &[
            "verify-signature",
            "--version",
            "2",
            "--keyfile",
            key.public.to_str().unwrap(),
            signed.to_str().unwrap(),
        ],
    )
    .0
}

fn esp_key_digest(esp: &Path, dir: &Path, key: &KeyFiles) -> String {
    let out = dir.join("digest.bin");
    let _ = std::fs::remove_file(&out);
    let (ok, t) = espsecure(
        esp,
        &[
            "digest-sbv2-public-key",
            "--keyfile",
            key.public.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert!(ok, "{t}");
    hex::encode(std::fs::read(&out).unwrap())
}

fn sign(
    token: &mut SoftToken,
    label: &str,
    append: bool,
    input: &Path,
    out: &Path,
) -> Result<signing::SignRecord, signing::Error> {
    let mut key = signing_key(token, label);
    let opts = Options {
        append,
        ..Options::default()
    };
    signing::sign_file(&mut key, Format::Esp32Sbv2, &opts, input, out)
}

#[test]
fn espsecure_accepts_each_key_type() {
    let Some(esp) = support::oracle("espsecure") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for alg in ["ec-p256", "ec-p384", "rsa-3072"] {
        let files = openssl_key(d, alg, alg);
        let mut token = SoftToken::new();
        token.add("esp", &files);
        let input = image(d, &format!("{alg}.bin"), 10_000);
        let out = d.join(format!("{alg}-signed.bin"));
        let r = sign(&mut token, "esp", false, &input, &out).unwrap();
        let b = std::fs::read(&out).unwrap();
        assert_eq!(b.len(), 12_288 + 4096, "padded to 4 KiB, then one sector");
        assert!(b[10_000..12_288].iter().all(|&x| x == 0xFF), "0xFF padding");
        assert!(esp_verifies(&esp, &files, &out), "espsecure rejects {alg}");
        let (ok, info) = espsecure(&esp, &["signature-info-v2", out.to_str().unwrap()]);
        assert!(ok, "{info}");
        // Our verify names the block and its key digest, the one espsecure computes.
        let want = esp_key_digest(&esp, d, &files);
        let pubkey = load_public_key(&files.public).unwrap();
        let rep = signing::verify_file(Format::Esp32Sbv2, &pubkey, &out, None, None).unwrap();
        assert!(
            rep.lines
                .iter()
                .any(|l| l.starts_with("block 1") && l.contains(&want)),
            "{:?} lacks {want}",
            rep.lines
        );
        assert!(r.notes.iter().any(|n| n.contains(&want)), "{:?}", r.notes);
        check_record(&r, &input, &out, alg == "ec-p384");
    }
}

/// The record's hashes are those of the files on disk, and the signed digest is the
/// hash of the output's padded image (everything before its sector).
fn check_record(r: &signing::SignRecord, input: &Path, out: &Path, sha384: bool) {
    use sha2::Digest;
    let sha256 = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    let inb = std::fs::read(input).unwrap();
    let outb = std::fs::read(out).unwrap();
    assert_eq!(r.input_sha256, sha256(&inb), "input_sha256");
    assert_eq!(r.input_bytes, inb.len() as u64);
    assert_eq!(r.output_sha256, sha256(&outb), "output_sha256");
    let image = &outb[..outb.len() - 4096];
    let want = if sha384 {
        hex::encode(sha2::Sha384::digest(image))
    } else {
        sha256(image)
    };
    assert_eq!(r.signed_digest, want, "signed_digest");
}

#[test]
fn one_two_three_blocks_by_append() {
    let Some(esp) = support::oracle("espsecure") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys: Vec<KeyFiles> = (0..4)
        .map(|i| openssl_key(d, &format!("k{i}"), "ec-p256"))
        .collect();
    let rsa = openssl_key(d, "rsa", "rsa-3072");
    let mut token = SoftToken::new();
    for (i, k) in keys.iter().enumerate() {
        token.add(&format!("k{i}"), k);
    }
    token.add("rsa", &rsa);
    let input = image(d, "app.bin", 65_536 + 17);
    let one = d.join("one.bin");
    let two = d.join("two.bin");
    let three = d.join("three.bin");
    let r = sign(&mut token, "k0", false, &input, &one).unwrap();
    check_record(&r, &input, &one, false);
    let r = sign(&mut token, "k1", true, &one, &two).unwrap();
    check_record(&r, &one, &two, false);
    let r = sign(&mut token, "k2", true, &two, &three).unwrap();
    check_record(&r, &two, &three, false);
    for (file, n) in [(&one, 1), (&two, 2), (&three, 3)] {
        let (ok, info) = espsecure(&esp, &["signature-info-v2", file.to_str().unwrap()]);
        assert!(ok, "{info}");
        for (i, k) in keys.iter().enumerate().take(n) {
            assert!(
                esp_verifies(&esp, k, file),
                "espsecure: block {} of {n}",
                i + 1
            );
        }
        assert!(!esp_verifies(&esp, &keys[3], file), "key 4 never signed");
        let pubkey = load_public_key(&keys[0].public).unwrap();
        let rep = signing::verify_file(Format::Esp32Sbv2, &pubkey, file, None, None).unwrap();
        assert_eq!(
            rep.lines.iter().filter(|l| l.starts_with("block ")).count(),
            n
        );
    }
    // Same image bytes before the sector in all three.
    let b1 = std::fs::read(&one).unwrap();
    let b3 = std::fs::read(&three).unwrap();
    assert_eq!(b1.len(), b3.len());
    assert_eq!(b1[..b1.len() - 4096], b3[..b3.len() - 4096]);

    let e = sign(&mut token, "k3", true, &three, &d.join("four.bin")).unwrap_err();
    assert!(e.to_string().contains("already holds 3 blocks"), "{e}");
    let e = sign(&mut token, "rsa", true, &one, &d.join("mix.bin")).unwrap_err();
    assert!(e.to_string().contains("may not mix RSA and ECDSA"), "{e}");
    let e = sign(&mut token, "k0", true, &one, &d.join("again.bin")).unwrap_err();
    assert!(e.to_string().contains("already signed by key"), "{e}");
    let e = sign(&mut token, "k1", true, &input, &d.join("plain.bin")).unwrap_err();
    assert!(
        e.to_string().contains("--append needs a signed image"),
        "{e}"
    );
    token.lie = true;
    let e = sign(&mut token, "k3", true, &one, &d.join("lied.bin")).unwrap_err();
    assert!(e.to_string().contains("does not verify"), "{e}");
    token.lie = false;
    for n in ["four.bin", "mix.bin", "again.bin", "plain.bin", "lied.bin"] {
        assert!(!d.join(n).exists());
    }
    // No temporary file left behind by the refused ones.
    let litter: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
}

#[test]
fn tampered_images_fail_saying_where() {
    let Some(esp) = support::oracle("espsecure") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = openssl_key(d, "k", "ec-p256");
    let other = openssl_key(d, "o", "ec-p256");
    let mut token = SoftToken::new();
    token.add("esp", &files);
    let input = image(d, "app.bin", 8192);
    let out = d.join("app-signed.bin");
    sign(&mut token, "esp", false, &input, &out).unwrap();
    let pubkey = load_public_key(&files.public).unwrap();
    let err = |p: &Path| {
        signing::verify_file(Format::Esp32Sbv2, &pubkey, p, None, None)
            .unwrap_err()
            .to_string()
    };
    let t = flipped(&out, 100, "img.bin");
    assert!(!esp_verifies(&esp, &files, &t));
    assert!(err(&t).contains("image altered"), "{}", err(&t));
    // The ECDSA P-256 signature sits at 101.. in the block; the block at 8192.
    let t = flipped(&out, 8192 + 120, "sig.bin");
    assert!(!esp_verifies(&esp, &files, &t));
    assert!(
        err(&t).contains("signature (or key) field was altered"),
        "{}",
        err(&t)
    );
    let t = flipped(&out, 8192 + 10, "digest.bin");
    assert!(!esp_verifies(&esp, &files, &t));
    assert!(err(&t).contains("digest altered"), "{}", err(&t));
    // Another key: the block is valid but not ours.
    let other_pub = load_public_key(&other.public).unwrap();
    let e = signing::verify_file(Format::Esp32Sbv2, &other_pub, &out, None, None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no signature block carries the --pubkey key"),
        "{e}"
    );
}
