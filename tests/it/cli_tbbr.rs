//! `officiant tfa-tbbr`: the TBBR chain from keys on the token, in cert_create's file
//! names, packed by fiptool; a second run refuses to overwrite; no PIN in any output.

use std::process::Command;

use crate::support::{officiant, oracle, run, run_ok};

const SO: &str = "canary-tbbr-so-4711";
const PIN: &str = "canary-tbbr-user-0815";

#[test]
fn tfa_tbbr_writes_a_chain_fiptool_packs() {
    let Some(fiptool) = oracle("fiptool") else {
        return;
    };
    let Some(openssl) = oracle("openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let backend = format!("sim:{}", d.join("tok").display());
    let transcript = d.join("t.jsonl");
    let cmd = |args: &[&str]| {
        let mut c = officiant();
        c.args(args)
            .arg("--backend")
            .arg(&backend)
            .arg("--transcript")
            .arg(&transcript)
            .env("TBBR_SO", SO)
            .env("TBBR_PIN", PIN);
        c
    };
    run_ok(&mut cmd(&[
        "init-token",
        "--label",
        "tfa",
        "--so-pin-source",
        "env:TBBR_SO",
        "--pin-source",
        "env:TBBR_PIN",
    ]));
    for label in ["rot", "tw", "ntw", "bl31", "bl33"] {
        run_ok(&mut cmd(&[
            "generate-key",
            "--label",
            label,
            "--algorithm",
            "ec-p256",
            "--pin-source",
            "env:TBBR_PIN",
        ]));
    }
    for (name, byte) in [("bl2.bin", 2u8), ("bl31.bin", 31), ("bl33.bin", 33)] {
        std::fs::write(d.join(name), vec![byte; 4096 + byte as usize]).unwrap();
    }
    let certs = d.join("certs");
    let tbbr = || {
        let mut c = officiant();
        c.args(["tfa-tbbr", "--pin-source", "env:TBBR_PIN"])
            .args(["--rot-key", "rot", "--trusted-world-key", "tw"])
            .args(["--non-trusted-world-key", "ntw", "--soc-fw-key", "bl31"])
            .args([
                "--nt-fw-key",
                "bl33",
                "--tfw-nvctr",
                "3",
                "--ntfw-nvctr",
                "7",
            ])
            .arg("--tb-fw")
            .arg(d.join("bl2.bin"))
            .arg("--soc-fw")
            .arg(d.join("bl31.bin"))
            .arg("--nt-fw")
            .arg(d.join("bl33.bin"))
            .arg("--out-dir")
            .arg(&certs)
            .arg("--backend")
            .arg(&backend)
            .arg("--transcript")
            .arg(&transcript)
            .env("TBBR_PIN", PIN);
        c
    };
    let listing = run_ok(&mut tbbr());

    // Each printed line is "--OPTION PATH", exactly what fiptool create takes.
    let mut fip = Command::new(&fiptool);
    fip.arg("create")
        .arg("--tb-fw")
        .arg(d.join("bl2.bin"))
        .arg("--soc-fw")
        .arg(d.join("bl31.bin"))
        .arg("--nt-fw")
        .arg(d.join("bl33.bin"));
    let mut n = 0;
    for line in listing.lines() {
        let (opt, path) = line.split_once(' ').expect("--option path");
        assert!(opt.starts_with("--") && opt.ends_with("-cert"), "{line}");
        fip.arg(opt).arg(path);
        // Every certificate parses and carries TBBR extensions, all critical.
        let text = run_ok(
            Command::new(&openssl)
                .args(["x509", "-inform", "DER", "-noout", "-text", "-in"])
                .arg(path),
        );
        let ext: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("1.3.6.1.4.1.4128.2100."))
            .collect();
        assert!(!ext.is_empty(), "{path}: {text}");
        for l in ext {
            assert!(l.trim_end().ends_with(": critical"), "{path}: {l}");
        }
        n += 1;
    }
    assert_eq!(n, 6, "{listing}");
    let fip_bin = d.join("fip.bin");
    run_ok(fip.arg(&fip_bin));
    let info = run_ok(Command::new(&fiptool).arg("info").arg(&fip_bin));
    for want in ["--trusted-key-cert", "--soc-fw-key-cert", "--nt-fw-cert"] {
        assert!(info.contains(want), "{info}");
    }

    // Again into the same directory: refused before anything is signed or written.
    let before = std::fs::read(certs.join("trusted_key.crt")).unwrap();
    let out = run(&mut tbbr());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to overwrite existing output file"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(certs.join("trusted_key.crt")).unwrap(),
        before
    );

    // The transcript verifies and holds no PIN; neither does anything in the tree.
    run_ok(officiant().arg("transcript").arg("verify").arg(&transcript));
    for entry in walk(d) {
        let bytes = std::fs::read(&entry).unwrap();
        for secret in [SO, PIN] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} found in {}",
                entry.display()
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
