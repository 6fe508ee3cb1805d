//! Images we sign, accepted by nxpimage and openssl: every PKI set, fast
//! authentication, unlock commands and other SRKs, certificates from the token.

use super::judges::*;
use super::*;
#[test]
fn signed_images_pass_nxpimage_and_openssl() {
    let p = pki();
    let tok = p.token();
    for set in ["rsa", "rsa3k", "p256", "p384", "p521"] {
        let out = tok.path().join(format!("{set}-signed.bin"));
        let stdout = sign_ok(tok.path(), set, &sample(), &out, &[]);
        assert!(stdout.contains("CSF at 0x60004000"), "{stdout}");
        nxpimage_checks(
            &out,
            &p.table(set),
            &[&p.cert(set, "CSF1"), &p.cert(set, "IMG1")],
        );
        openssl_checks(&out, &[(1, p.cert(set, "CSF1")), (2, p.cert(set, "IMG1"))]);
        let report = verify_ok(&out, &p.table(set));
        assert!(report.contains("(Authenticate Data, key 2)"), "{report}");
        // The version HAB needs for the keys: 4.5 for ECDSA.
        let bytes = std::fs::read(&out).unwrap();
        let (csf_at, _) = signatures(&bytes);
        assert_eq!(
            bytes[csf_at + 3],
            if set.starts_with("rsa") { 0x43 } else { 0x45 }
        );
        // The boot data covers the CSF the IVT points at.
        assert_eq!(le32(&bytes, 24), 0x6000_4000);
        assert!(0x6000_0000 + le32(&bytes, 0x24) as u64 >= 0x6000_4000 + 0x2000);
    }
}

#[test]
fn fast_authentication_signs_with_the_srk() {
    let p = pki();
    let tok = p.token();
    let out = tok.path().join("fast-signed.bin");
    let stdout = sign_ok(tok.path(), "fast", &sample(), &out, &["--fast-auth"]);
    assert!(stdout.contains("fast authentication"), "{stdout}");
    // spsdk writes fast authentication without certificates; so do we.
    nxpimage_checks(&out, &p.table("fast"), &[]);
    openssl_checks(
        &out,
        &[(1, p.cert("fast", "SRK1")), (0, p.cert("fast", "SRK1"))],
    );
    let report = verify_ok(&out, &p.table("fast"));
    assert!(report.contains("non-CA: fast authentication"), "{report}");
    assert!(report.contains("(Authenticate Data, key 0)"), "{report}");
}

#[test]
fn unlock_commands_and_other_srks() {
    let p = pki();
    let tok = p.token();
    let out = tok.path().join("unlock.bin");
    sign_ok(
        tok.path(),
        "rsa",
        &sample(),
        &out,
        &[
            "--unlock",
            "caam:rng,mid",
            "--unlock",
            "ocotp:srk-revoke",
            "--hab-version",
            "4.1",
        ],
    );
    let bytes = std::fs::read(&out).unwrap();
    let (csf_at, _) = signatures(&bytes);
    let csf = &bytes[csf_at..];
    assert_eq!(csf[3], 0x41);
    let head = be16(csf, 1);
    let cmds = &csf[..head];
    assert!(cmds.windows(8).any(|w| w == [0xB2, 0, 8, 0x1D, 0, 0, 0, 3]));
    assert!(cmds.windows(8).any(|w| w == [0xB2, 0, 8, 0x21, 0, 0, 0, 2]));
    nxpimage_checks(
        &out,
        &p.table("rsa"),
        &[&p.cert("rsa", "CSF1"), &p.cert("rsa", "IMG1")],
    );
    openssl_checks(
        &out,
        &[(1, p.cert("rsa", "CSF1")), (2, p.cert("rsa", "IMG1"))],
    );
    let report = verify_ok(&out, &p.table("rsa"));
    assert!(
        report.contains("(Unlock): engine 0x1d, features 0x3 (mid, rng)"),
        "{report}"
    );
    // SRK 2 with a CSF key it issued (and SRK 1's IMG key refused for it).
    let out2 = tok.path().join("srk2.bin");
    let o = sign(
        tok.path(),
        "rsa",
        &sample(),
        &out2,
        &[
            "--srk-index",
            "1",
            "--csf-key",
            "rsa-CSF2",
            "--csf-cert",
            p.cert("rsa", "CSF2").to_str().unwrap(),
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--img-cert") && err.contains("not issued by SRK 2"),
        "{err}"
    );
    assert!(!out2.exists());
}

/// Without --csf-cert and --img-cert the certificates are the token's, under the keys'
/// labels (where the ceremonies' write-to-token puts them); nxpimage and openssl judge the
/// image as with certificate files. A token without them is refused in one line naming
/// the flag and the label, and nothing is written.
#[test]
fn certificates_default_to_the_tokens() {
    let p = pki();
    let tok = p.token();
    let backend = format!("sim:{}", tok.path().display());
    let sign_without_certs = |out: &Path| {
        let mut cmd = support::officiant();
        cmd.args(["sign", "--backend", &backend])
            .args(["--pin-source", "env:PIN", "--format", "imx-hab4"])
            .arg("--transcript")
            .arg(tok.path().join("transcript.jsonl"))
            .arg("--srk-table")
            .arg(p.table("p256"))
            .args([
                "--srk-index",
                "0",
                "--csf-key",
                "p256-CSF1",
                "--img-key",
                "p256-IMG1",
            ])
            .arg(sample())
            .arg("-o")
            .arg(out)
            .env("PIN", PIN);
        support::run(&mut cmd)
    };
    let refused = tok.path().join("refused.bin");
    let o = sign_without_certs(&refused);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("give --csf-cert FILE: the token holds no certificate labelled \"p256-CSF1\""),
        "{err}"
    );
    assert!(!refused.exists());

    for who in ["CSF1", "IMG1"] {
        support::run_ok(
            support::officiant()
                .args(["write-object", "--backend", &backend, "--label"])
                .arg(format!("p256-{who}"))
                .args(["--type", "cert", "--file"])
                .arg(p.cert("p256", who))
                .args(["--pin-source", "env:PIN", "--transcript"])
                .arg(tok.path().join("objects.jsonl"))
                .env("PIN", PIN),
        );
    }
    let out = tok.path().join("signed.bin");
    let o = sign_without_certs(&out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    nxpimage_checks(
        &out,
        &p.table("p256"),
        &[&p.cert("p256", "CSF1"), &p.cert("p256", "IMG1")],
    );
    openssl_checks(
        &out,
        &[(1, p.cert("p256", "CSF1")), (2, p.cert("p256", "IMG1"))],
    );
    verify_ok(&out, &p.table("p256"));
}
