//! Crash safety of the root-of-trust steps: ca-signer (certificates written to the token,
//! a raw signature) killed at crash points (debug hook OFFICIANT_TEST_CRASH_AT) and rerun
//! with the same arguments. The finished outputs must be what openssl accepts: an adopted
//! certificate or signature is one that verifies, never a second, different one.

use std::process::Command;

use crate::support::replay::{fiptool_pack, shipped};
use crate::support::{self, oracle, run, run_ok};

fn command(dir: &std::path::Path) -> Command {
    let mut c = support::officiant();
    c.arg("run")
        .arg(shipped("ca-signer.toml"))
        .arg("--answers")
        .arg(shipped("ca-signer.answers.toml"))
        .arg("--backend")
        .arg(format!("sim:{}", dir.join("token").display()))
        .arg("--out")
        .arg(dir.join("out"));
    c
}

#[test]
fn ca_signer_killed_and_resumed_still_verifies() {
    let Some(openssl) = oracle("openssl") else {
        return;
    };
    let mut adopted_somewhere = false;
    let mut k = 1;
    let mut crashes = 0;
    let mut tampered = false;
    loop {
        let d = tempfile::tempdir().unwrap();
        let first = run(command(d.path()).env("OFFICIANT_TEST_CRASH_AT", k.to_string()));
        let crashed = !first.status.success();
        if crashed {
            assert!(
                first.status.code().is_none(),
                "point {k}: expected an abort: {}",
                String::from_utf8_lossy(&first.stderr)
            );
            crashes += 1;
            let out = d.path().join("out");
            let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap_or_default();
            // The step's result names the file ("path"); its intent record ("name") is
            // written before the file.
            if !tampered
                && out.join("tiny-signer.crt.pem").exists()
                && !journal.contains("\"path\":\"tiny-signer.crt.pem\"")
            {
                // Killed inside cert-signer after its file was written: a different
                // certificate in its place (not the bytes the journal recorded) must stop
                // the resume, untouched.
                tampered = true;
                let t = tempfile::tempdir().unwrap();
                copy_dir(d.path(), t.path());
                let other = std::fs::read(out.join("tiny-ca.crt.pem")).unwrap();
                let bad = t.path().join("out").join("tiny-signer.crt.pem");
                std::fs::write(&bad, &other).unwrap();
                let o = run(&mut command(t.path()));
                assert!(
                    !o.status.success(),
                    "point {k}: a foreign certificate was adopted"
                );
                let err = String::from_utf8_lossy(&o.stderr);
                assert!(
                    err.contains("tiny-signer.crt.pem exists and this run did not write it (the journal records no such file); move it away and rerun"),
                    "point {k}: {err}"
                );
                assert_eq!(std::fs::read(&bad).unwrap(), other, "the file was touched");
            }
            let again = run(&mut command(d.path()));
            assert!(
                again.status.success(),
                "point {k}: resume failed: {}",
                String::from_utf8_lossy(&again.stderr)
            );
        }
        let out = d.path().join("out");
        let v = run_ok(
            Command::new(&openssl)
                .arg("verify")
                .arg("-CAfile")
                .arg(out.join("tiny-ca.crt.pem"))
                .arg(out.join("tiny-signer.crt.pem")),
        );
        assert!(v.contains(": OK"), "point {k}: {v}");
        // PEM and DER of the CA are one certificate.
        let der = run_ok(
            Command::new(&openssl)
                .args(["x509", "-outform", "DER", "-in"])
                .arg(out.join("tiny-ca.crt.pem"))
                .arg("-out")
                .arg(d.path().join("ca.der")),
        );
        let _ = der;
        assert_eq!(
            std::fs::read(d.path().join("ca.der")).unwrap(),
            std::fs::read(out.join("tiny-ca.crt.der")).unwrap(),
            "point {k}: PEM and DER differ"
        );
        let s = run_ok(
            Command::new(&openssl)
                .args(["dgst", "-sha256", "-verify"])
                .arg(out.join("tiny-signer.pub.pem"))
                .arg("-signature")
                .arg(out.join("payload.bin.sig"))
                .arg(shipped("samples/payload.bin")),
        );
        assert!(s.contains("Verified OK"), "point {k}: {s}");
        let tr = std::fs::read_to_string(out.join("transcript.jsonl")).unwrap();
        adopted_somewhere |= tr.contains("\"adopted\":true");
        if !crashed {
            break;
        }
        // Every point through the certificate steps (until one fell inside cert-signer),
        // then a sample of the rest.
        k += if k < 30 || !tampered { 1 } else { 5 };
    }
    assert!(crashes > 8, "only {crashes} crash points");
    assert!(adopted_somewhere, "no resume ever adopted earlier work");
    assert!(tampered, "no crash point fell inside cert-signer");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn tfa_command(dir: &std::path::Path) -> Command {
    let mut c = support::officiant();
    c.arg("run")
        .arg(shipped("tfa-rot.toml"))
        .arg("--answers")
        .arg(shipped("tfa-rot.answers.toml"))
        .arg("--backend")
        .arg(format!("sim:{}", dir.join("token").display()))
        .arg("--out")
        .arg(dir.join("out"));
    c
}

/// Killed inside issue-tbbr (after trusted_key.crt, before the rest), then resumed: the
/// earlier certificate is adopted (it matches the chain) and the whole chain is still
/// what openssl and fiptool accept.
#[test]
fn tfa_rot_killed_inside_the_tbbr_chain_resumes_consistently() {
    let (Some(openssl), Some(fiptool)) = (oracle("openssl"), oracle("fiptool")) else {
        return;
    };
    // The first crash point after trusted_key.crt is written (binary search: "written"
    // only grows with the point).
    let written_at = |k: usize| {
        let d = tempfile::tempdir().unwrap();
        let o = run(tfa_command(d.path()).env("OFFICIANT_TEST_CRASH_AT", k.to_string()));
        let w = d.path().join("out").join("trusted_key.crt").exists();
        (w, o.status.success(), d)
    };
    let (mut lo, mut hi) = (1usize, 512usize);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if written_at(mid).0 {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let (written, finished, d) = written_at(lo);
    assert!(
        written && !finished,
        "point {lo} should stop inside issue-tbbr"
    );
    let out = d.path().join("out");
    assert!(!out.join("nt_fw_content.crt").exists());
    let first = std::fs::read(out.join("trusted_key.crt")).unwrap();
    let again = run(&mut tfa_command(d.path()));
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        std::fs::read(out.join("trusted_key.crt")).unwrap(),
        first,
        "the adopted certificate was replaced"
    );
    let tr = std::fs::read_to_string(out.join("transcript.jsonl")).unwrap();
    let adopted = format!(
        "{{\"adopted\":true,\"path\":\"trusted_key.crt\",\"sha256\":\"{}\"}}",
        hex::encode(officiant::output::sha256(&first))
    );
    assert!(
        tr.contains(&adopted),
        "trusted_key.crt was not adopted: {tr}"
    );
    // The resumed chain packs, and trusted_key.crt still holds the ROT key.
    let fip = d.path().join("fip.bin");
    fiptool_pack(&fiptool, &out, &fip);
    let text = run_ok(
        Command::new(&openssl)
            .args(["x509", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(out.join("trusted_key.crt")),
    );
    assert!(text.contains("Trusted Key Certificate"), "{text}");
}
