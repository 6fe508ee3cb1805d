//! Raw detached signatures from the signing service, judged by stock `openssl dgst`.

use std::path::{Path, PathBuf};

use officiant::formats::raw::Padding;
use officiant::signing::{self, Format, Options};

use crate::support;
use crate::support::sign::{
    flipped, openssl_key, openssl_ok, signing_key, token_with_key, SoftToken,
};

fn payload(dir: &Path, name: &str, len: usize) -> PathBuf {
    let p = dir.join(name);
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&p, data).unwrap();
    p
}

fn openssl_verify(hash: &str, public: &Path, sig: &Path, file: &Path, pss: bool) -> bool {
    let mut args = vec![
        "dgst".to_string(),
        format!("-{hash}"),
        "-verify".into(),
        public.display().to_string(),
        "-signature".into(),
        sig.display().to_string(),
    ];
    if pss {
        for o in [
            "rsa_padding_mode:pss",
            "rsa_pss_saltlen:32",
            "rsa_mgf1_md:sha256",
        ] {
            args.push("-sigopt".into());
            args.push(o.into());
        }
    }
    args.push(file.display().to_string());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl_ok(&a)
}

#[test]
fn openssl_accepts_every_raw_signature() {
    if support::oracle("openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&str, Option<Padding>, &str, bool); 6] = [
        ("ec-p256", None, "sha256", false),
        ("ec-p384", None, "sha384", false),
        ("ec-p521", None, "sha512", false),
        ("rsa-2048", None, "sha256", true),
        ("rsa-2048", Some(Padding::Pss), "sha256", true),
        ("rsa-3072", Some(Padding::Pkcs1), "sha256", false),
    ];
    for (i, (alg, padding, hash, pss)) in cases.into_iter().enumerate() {
        let files = openssl_key(d, &format!("k{i}"), alg);
        let mut token = SoftToken::new();
        token.add("fw", &files);
        let mut key = signing_key(&mut token, "fw");
        let input = payload(d, &format!("p{i}.bin"), 100_003);
        let sig = d.join(format!("p{i}.sig"));
        let opts = Options {
            padding,
            ..Options::default()
        };
        let r = signing::sign_file(&mut key, Format::Raw, &opts, &input, &sig).unwrap();
        assert!(
            openssl_verify(hash, &files.public, &sig, &input, pss),
            "openssl rejects the {alg} {padding:?} signature"
        );
        // The record's hashes are the files' own.
        assert_eq!(
            r.input_sha256,
            hex::encode(officiant::output::sha256_file(&input).unwrap())
        );
        assert_eq!(
            r.output_sha256,
            hex::encode(officiant::output::sha256_file(&sig).unwrap())
        );
        // officiant verify agrees, and says which padding.
        let key_pub = officiant::keys::load_public_key(&files.public).unwrap();
        let rep = signing::verify_file(Format::Raw, &key_pub, &input, Some(&sig), None).unwrap();
        if alg.starts_with("rsa") {
            let want = if pss { "RSA-PSS" } else { "PKCS#1" };
            assert!(rep.lines[0].contains(want), "{:?}", rep.lines);
        }

        // Tamper: a flipped payload byte and a flipped signature byte both fail, in
        // openssl and in officiant, with a message that says what.
        let bad_payload = flipped(&input, 5000, &format!("p{i}.tampered"));
        assert!(!openssl_verify(
            hash,
            &files.public,
            &sig,
            &bad_payload,
            pss
        ));
        let e = signing::verify_file(Format::Raw, &key_pub, &bad_payload, Some(&sig), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("payload or signature altered"), "{e}");
        let sig_len = std::fs::metadata(&sig).unwrap().len() as usize;
        let bad_sig = flipped(&sig, sig_len - 3, &format!("p{i}.sig.tampered"));
        assert!(!openssl_verify(hash, &files.public, &bad_sig, &input, pss));
        let e = signing::verify_file(Format::Raw, &key_pub, &input, Some(&bad_sig), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("signature altered"), "{e}");
    }
}

#[test]
fn a_bad_token_signature_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = openssl_key(d, "k", "ec-p256");
    let mut token = SoftToken::new();
    token.add("fw", &files);
    token.lie = true;
    let mut key = signing_key(&mut token, "fw");
    let input = payload(d, "p.bin", 1000);
    for (fmt, out) in [
        (Format::Raw, d.join("p.sig")),
        (Format::Stm32Mp15, d.join("p.stm32")),
    ] {
        let mut opts = Options::default();
        opts.stm32.load_address = Some(0x2ffc_2400);
        opts.stm32.entry_point = Some(0x2ffc_2400);
        if fmt == Format::Raw {
            opts = Options::default();
        }
        let e = signing::sign_file(&mut key, fmt, &opts, &input, &out).unwrap_err();
        assert!(e.to_string().contains("does not verify"), "{e}");
        assert!(!out.exists());
    }
    // Only the payload and the key files: no temporary left behind.
    let names: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn batch_signs_each_input_once_and_records_hashes() {
    if support::oracle("openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = openssl_key(d, "k", "ec-p256");
    let mut token = SoftToken::new();
    token.add("fw", &files);
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    let inputs: Vec<PathBuf> = (0..5)
        .map(|i| payload(d, &format!("fw{i}.bin"), 1000 + i))
        .collect();
    let records = {
        let mut key = signing_key(&mut token, "fw");
        signing::sign_batch(&mut key, Format::Raw, &Options::default(), &inputs, &out).unwrap()
    };
    assert_eq!(token.signatures, 5);
    assert_eq!(records.len(), 5);
    for (r, input) in records.iter().zip(&inputs) {
        assert_eq!(&r.input, input);
        assert_eq!(
            r.output,
            out.join(format!(
                "{}.sig",
                input.file_name().unwrap().to_string_lossy()
            ))
        );
        assert!(openssl_verify(
            "sha256",
            &files.public,
            &r.output,
            input,
            false
        ));
        assert_eq!(
            r.output_sha256,
            hex::encode(officiant::output::sha256_file(&r.output).unwrap())
        );
    }
    // A second run refuses before signing anything: the outputs exist.
    let mut key = signing_key(&mut token, "fw");
    let e =
        signing::sign_batch(&mut key, Format::Raw, &Options::default(), &inputs, &out).unwrap_err();
    assert!(e.to_string().contains("refusing to overwrite"), "{e}");
    assert!(e.done.is_empty());
    drop(key);
    assert_eq!(token.signatures, 5);
}

/// Batches of 64 and more check ECDSA with fixed-base tables of the key on a second
/// thread: every signature still verifies with openssl, outputs keep the input order,
/// and a bad signature from the token stops the batch with the ones before it written
/// and nothing after it.
#[test]
fn large_batches_check_every_signature_and_stop_at_a_bad_one() {
    if support::oracle("openssl").is_none() {
        return;
    }
    for (alg, hash) in [("ec-p256", "sha256"), ("ec-p384", "sha384")] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (files, mut token) = token_with_key(d, "fw", alg);
        let inputs: Vec<PathBuf> = (0..150)
            .map(|i| payload(d, &format!("fw{i:03}.bin"), 100 + i))
            .collect();

        let out = d.join("good");
        std::fs::create_dir(&out).unwrap();
        let records = {
            let mut key = signing_key(&mut token, "fw");
            signing::sign_batch(&mut key, Format::Raw, &Options::default(), &inputs, &out).unwrap()
        };
        assert_eq!(records.len(), 150, "{alg}");
        for (r, input) in records.iter().zip(&inputs) {
            assert_eq!(&r.input, input, "{alg}: records out of order");
            assert!(
                openssl_verify(hash, &files.public, &r.output, input, false),
                "{alg}: {}",
                r.output.display()
            );
        }

        // The token lies on its 100th signature (in the second group of the checker).
        token.signatures = 0;
        token.lie_at = Some(100);
        let out = d.join("lied");
        std::fs::create_dir(&out).unwrap();
        let e = {
            let mut key = signing_key(&mut token, "fw");
            signing::sign_batch(&mut key, Format::Raw, &Options::default(), &inputs, &out)
                .unwrap_err()
        };
        assert!(
            e.to_string()
                .contains("does not verify with the key's own public key"),
            "{alg}: {e}"
        );
        assert_eq!(e.done.len(), 99, "{alg}: {e}");
        let mut written: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        written.sort();
        let expected: Vec<String> = (0..99).map(|i| format!("fw{i:03}.bin.sig")).collect();
        assert_eq!(written, expected, "{alg}: outputs after the bad signature");
        for (r, input) in e.done.iter().zip(&inputs) {
            assert!(openssl_verify(hash, &files.public, &r.output, input, false));
        }
    }
}

#[test]
fn padding_is_refused_for_ec_keys_and_other_formats() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = openssl_key(d, "k", "ec-p256");
    let mut token = SoftToken::new();
    token.add("fw", &files);
    let mut key = signing_key(&mut token, "fw");
    let input = payload(d, "p.bin", 10);
    let opts = Options {
        padding: Some(Padding::Pkcs1),
        ..Options::default()
    };
    let e = signing::sign_file(&mut key, Format::Raw, &opts, &input, &d.join("s")).unwrap_err();
    assert!(e.to_string().contains("RSA keys only"), "{e}");
    let e =
        signing::sign_file(&mut key, Format::Stm32Mp15, &opts, &input, &d.join("s")).unwrap_err();
    assert!(
        e.to_string().contains("--padding is for --format raw"),
        "{e}"
    );
}
