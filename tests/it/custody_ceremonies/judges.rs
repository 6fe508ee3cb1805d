//! What judges a custody ceremony without our code: rusty_secrets rebuilds the wrap key
//! from the share texts, OpenSSL computes its check value and verifies the restored
//! key's signatures; and the canary (no share, no key byte anywhere).

use super::*;

/// The wrap key the share texts rebuild, by rusty_secrets (the payload is id, domains,
/// capabilities and delegated capabilities, 20 bytes, then the key).
pub(super) fn rebuilt_key(shares: &[&str]) -> Vec<u8> {
    let secret =
        rusty_secrets::recover_secret(shares.iter().map(|s| s.to_string()).collect()).unwrap();
    secret[20..].to_vec()
}

/// OpenSSL's check value of an AES-256 key: AES-ECB of a zero block, first 3 bytes.
pub(super) fn openssl_kcv(work: &Path, key: &[u8]) -> String {
    let openssl = oracle("openssl").expect("openssl is the judge here: install it");
    let zero = work.join("zero-block.bin");
    std::fs::write(&zero, [0u8; 16]).unwrap();
    let out = run(Command::new(openssl)
        .args([
            "enc",
            "-aes-256-ecb",
            "-nopad",
            "-K",
            &hex::encode(key),
            "-in",
        ])
        .arg(&zero));
    assert!(out.status.success());
    hex::encode(&out.stdout[..3])
}

pub(super) fn openssl_verifies(public_pem: &Path, sig: &Path, data: &Path) {
    let openssl = oracle("openssl").expect("openssl is the judge here: install it");
    let out = run_ok(
        Command::new(openssl)
            .args(["dgst", "-sha256", "-verify"])
            .arg(public_pem)
            .arg("-signature")
            .arg(sig)
            .arg(data),
    );
    assert!(out.contains("Verified OK"), "{out}");
}

/// Every file under `dir`, with its bytes.
pub(super) fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// No share (whole, or its data) and no wrap-key byte string in `log` or any file under
/// the out dirs.
pub(super) fn canary(shares: &[String], key: &[u8], log: &[u8], outs: &[PathBuf]) {
    let mut needles: Vec<Vec<u8>> = vec![key.to_vec(), hex::encode(key).into_bytes()];
    for s in shares {
        needles.push(s.as_bytes().to_vec());
        // The data alone, and a long piece of it.
        needles.push(s.as_bytes()[4..].to_vec());
        needles.push(s.as_bytes()[10..30].to_vec());
    }
    for n in &needles {
        assert!(!contains(log, n), "a share or the key in the output");
    }
    for dir in outs {
        for (p, bytes) in files_under(dir) {
            for n in &needles {
                assert!(
                    !contains(&bytes, n),
                    "a share or the key in {}",
                    p.display()
                );
            }
        }
    }
}
