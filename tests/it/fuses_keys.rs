//! TF-A ROTPK hashes against the openssl pipeline, and STM32MP PKH / PKHTH against an
//! independent computation (coordinates extracted by openssl, hashed by `openssl dgst`).

use std::path::{Path, PathBuf};
use std::process::Command;

use officiant::formats::{stm32, tfa};

use crate::support;

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = support::run(Command::new("openssl").args(args));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ec_key(dir: &Path, name: &str, curve: &str) -> PathBuf {
    let p = dir.join(format!("{name}.pem"));
    openssl(&[
        "ecparam",
        "-name",
        curve,
        "-genkey",
        "-noout",
        "-out",
        s(&p),
    ]);
    p
}

fn public_pem(dir: &Path, key: &Path) -> PathBuf {
    let p = key.with_extension("pub.pem");
    let _ = dir;
    openssl(&["pkey", "-in", s(key), "-pubout", "-out", s(&p)]);
    p
}

/// SHA-256 by `openssl dgst` of bytes we put in a file.
fn openssl_sha256(dir: &Path, tag: &str, bytes: &[u8]) -> Vec<u8> {
    let p = dir.join(format!("{tag}.hashin"));
    std::fs::write(&p, bytes).unwrap();
    openssl(&["dgst", "-sha256", "-binary", s(&p)])
}

/// X‖Y as openssl prints it: the uncompressed point at the end of the DER SPKI.
fn openssl_xy(key: &Path) -> Vec<u8> {
    let der = openssl(&[
        "ec",
        "-in",
        s(key),
        "-pubout",
        "-conv_form",
        "uncompressed",
        "-outform",
        "DER",
    ]);
    let point = &der[der.len() - 65..];
    assert_eq!(point[0], 0x04);
    point[1..].to_vec()
}

#[test]
fn rotpk_matches_openssl_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rsa = d.join("rot_rsa.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        s(&rsa),
    ]);
    let keys = [
        rsa,
        ec_key(d, "rot_p256", "prime256v1"),
        ec_key(d, "rot_p384", "secp384r1"),
    ];
    for key in &keys {
        // The FORMATS.md pipeline, run as two openssl processes.
        let der = d.join("spki.der");
        let _ = std::fs::remove_file(&der);
        openssl(&[
            "pkey",
            "-in",
            s(key),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            s(&der),
        ]);
        let want = openssl(&["dgst", "-sha256", "-binary", s(&der)]);
        let public = public_pem(d, key);
        let ours =
            tfa::rotpk_sha256(&officiant::keys::load_public_key(&public).unwrap(), false).unwrap();
        assert_eq!(ours, want, "{key:?}");
        // The CLI, from the public key and from the private key file.
        for (i, input) in [&public, key].into_iter().enumerate() {
            for digest_info in [false, true] {
                let out = d.join(format!(
                    "{}_{i}_{digest_info}.bin",
                    key.file_stem().unwrap().to_str().unwrap()
                ));
                let mut cmd = support::officiant();
                cmd.args(["fuses", "tfa-rotpk", "--key"])
                    .arg(input)
                    .arg("-o")
                    .arg(&out);
                if digest_info {
                    cmd.arg("--digest-info");
                }
                let stdout = support::run_ok(&mut cmd);
                let got = std::fs::read(&out).unwrap();
                if digest_info {
                    assert_eq!(
                        hex::encode(&got[..19]),
                        "3031300d060960864801650304020105000420"
                    );
                    assert_eq!(&got[19..], &want[..]);
                } else {
                    assert_eq!(got, want);
                }
                // Witnesses read it in hex groups and PGP words.
                let f = officiant::formats::words::Fingerprint::of(&got);
                assert!(
                    stdout.contains(&f.groups) && stdout.contains(&f.words),
                    "{stdout}"
                );
            }
        }
    }
}

#[test]
fn stm32mp15_pkh_matches_independent_hash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, curve) in [("mp15_p256", "prime256v1"), ("mp15_bp", "brainpoolP256t1")] {
        let key = ec_key(d, name, curve);
        let xy = openssl_xy(&key);
        assert_eq!(xy.len(), 64);
        let want = openssl_sha256(d, name, &xy);
        let public = public_pem(d, &key);
        let pk = officiant::keys::load_public_key(&public).unwrap();
        assert_eq!(stm32::pkh_mp15(&pk).unwrap().to_vec(), want, "{name}");
        let out = d.join(format!("{name}.pkh.bin"));
        let stdout = support::run_ok(
            support::officiant()
                .args(["fuses", "stm32mp15", "--key"])
                .arg(&public)
                .arg("-o")
                .arg(&out)
                .arg("--json"),
        );
        assert_eq!(std::fs::read(&out).unwrap(), want);
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["value"]["hex"], hex::encode(&want));
    }
}

#[test]
fn stm32mp_pkhth_matches_independent_hash() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut publics = Vec::new();
    let mut table = Vec::new();
    for i in 0..8 {
        let (curve, alg) = if i % 3 == 1 {
            ("brainpoolP256t1", 2u32)
        } else {
            ("prime256v1", 1u32)
        };
        let key = ec_key(d, &format!("k{i}"), curve);
        let mut entry = alg.to_le_bytes().to_vec();
        entry.extend(openssl_xy(&key));
        table.extend(openssl_sha256(d, &format!("e{i}"), &entry));
        publics.push(public_pem(d, &key));
    }
    for n in [1usize, 3, 8] {
        let want = openssl_sha256(d, &format!("t{n}"), &table[..32 * n]);
        let keys: Vec<_> = publics[..n]
            .iter()
            .map(|p| officiant::keys::load_public_key(p).unwrap())
            .collect();
        assert_eq!(
            stm32::key_hash_table(&keys).unwrap(),
            table[..32 * n].to_vec()
        );
        assert_eq!(stm32::pkhth(&keys).unwrap().to_vec(), want, "{n} keys");
        let out = d.join(format!("pkhth{n}.bin"));
        let mut cmd = support::officiant();
        cmd.args(["fuses", "stm32mp-pkhth"]);
        for p in &publics[..n] {
            cmd.arg("--key").arg(p);
        }
        support::run_ok(cmd.arg("-o").arg(&out));
        assert_eq!(std::fs::read(&out).unwrap(), want);
    }
}
