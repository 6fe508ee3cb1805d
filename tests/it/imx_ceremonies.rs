//! The shipped NXP ceremonies end to end on the rehearsal token and SoftHSM: hab4-pki-ec
//! and hab4-pki end by signing the sample RT1060 image with the CSF and IMG keys they
//! made, ahab-pki by signing the sample i.MX 93 container with SRK1. The judges are
//! spsdk's `nxpimage hab verify` / `ahab verify` and `nxpcrypto rot calculate-hash`, and
//! `openssl cms -verify` over the exact bytes each HAB signature covers.
use crate::support;

use std::process::Command;

use crate::support::replay::{files_with, on_sim, on_softhsm, shipped, Replay};
use crate::support::run_ok as oracle_ok;

fn judge(name: &str) -> std::path::PathBuf {
    support::oracle(name).unwrap_or_else(|| panic!("{name} is this test's judge and is missing"))
}

fn le32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}
fn be16(b: &[u8], i: usize) -> usize {
    usize::from(u16::from_be_bytes([b[i], b[i + 1]]))
}
fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes(b[i..i + 4].try_into().unwrap())
}

/// The signed sample: nxpimage accepts it, our verify accepts it against the ceremony's
/// SRK table, and openssl checks each CMS over its covered bytes with the CSF1_1 and
/// IMG1_1 certificates the ceremony issued.
fn check_hab4(r: &Replay, kind: &str) {
    let img = r.file("rt1060-hab4-signed.bin");
    let out = oracle_ok(
        Command::new(judge("nxpimage"))
            .args(["hab", "verify", "-f", "mimxrt1060", "-b"])
            .arg(&img),
    );
    assert!(out.contains("Overall  result: Succeeded"), "{out}");
    let v = oracle_ok(
        support::officiant()
            .args(["verify", "--format", "imx-hab4", "--srk-table"])
            .arg(r.file("SRK_1_2_3_4_table.bin"))
            .arg(&img),
    );
    assert!(v.contains("SRK 1 of 4"), "{v}");
    let b = std::fs::read(&img).unwrap();
    let csf_at = (le32(&b, 24) - le32(&b, 20)) as usize;
    let csf = &b[csf_at..];
    let head = be16(csf, 1);
    let dir = tempfile::tempdir().unwrap();
    let mut i = 4;
    let mut checked = 0;
    while i < head {
        let len = be16(csf, i + 1);
        if csf[i] == 0xCA {
            let loc = be32(csf, i + 8) as usize;
            let cms = &csf[loc + 4..loc + be16(csf, loc + 1)];
            let (covered, cert) = if len == 12 {
                (
                    csf[..head].to_vec(),
                    format!("CSF1_1_{kind}_v3_usr_crt.pem"),
                )
            } else {
                let start = (be32(csf, i + 12) - le32(&b, 20)) as usize;
                let n = be32(csf, i + 16) as usize;
                (
                    b[start..start + n].to_vec(),
                    format!("IMG1_1_{kind}_v3_usr_crt.pem"),
                )
            };
            let (c, s) = (dir.path().join("c.bin"), dir.path().join("s.der"));
            std::fs::write(&c, covered).unwrap();
            std::fs::write(&s, cms).unwrap();
            let o = support::run(
                Command::new("openssl")
                    .args([
                        "cms",
                        "-verify",
                        "-binary",
                        "-noverify",
                        "-nointern",
                        "-inform",
                        "DER",
                        "-in",
                    ])
                    .arg(&s)
                    .arg("-content")
                    .arg(&c)
                    .arg("-certfile")
                    .arg(r.file(&cert))
                    .args(["-out", "/dev/null"]),
            );
            assert!(
                o.status.success(),
                "openssl cms: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            checked += 1;
        }
        i += len;
    }
    assert_eq!(checked, 2);
    assert!(r.transcript().contains("rt1060-hab4-signed.bin"));
}

fn check_ahab(r: &Replay) {
    let img = r.file("imx93-ahab-signed.bin");
    let out = oracle_ok(
        Command::new(judge("nxpimage"))
            .args(["ahab", "verify", "-f", "mimx9352", "-b"])
            .arg(&img),
    );
    assert!(out.contains("Overall  result: Succeeded"), "{out}");
    assert!(out.contains("Signature(Succeeded)"), "{out}");
    let v = oracle_ok(
        support::officiant()
            .args(["verify", "--format", "imx-ahab", "--srk-table"])
            .arg(r.file("SRK_1_2_3_4_table.bin"))
            .arg(&img),
    );
    assert!(v.contains("signed by SRK 0"), "{v}");
    // The fuse value the ceremony exported is nxpcrypto's, from the certificates alone.
    let srks = files_with(r, "SRK", "_v3_ca_crt.pem");
    assert_eq!(srks.len(), 4);
    let fuse = r.dir.path().join("nxp-fuse.bin");
    let mut cmd = Command::new(judge("nxpcrypto"));
    cmd.args(["rot", "calculate-hash", "-f", "mimx9352"]);
    for s in &srks {
        cmd.arg("-k").arg(r.file(s));
    }
    oracle_ok(cmd.arg("-o").arg(&fuse));
    assert_eq!(
        std::fs::read(&fuse).unwrap(),
        r.read("SRK_1_2_3_4_fuse.bin")
    );
    let t = r.transcript();
    assert!(
        t.contains("fuse prog -y 16 7 0x"),
        "U-Boot lines for i.MX 93"
    );
}

#[test]
fn hab4_ec_ceremony_signs_the_sample_on_sim() {
    check_hab4(&on_sim("hab4-pki-ec"), "sha256_prime256v1");
}

#[test]
fn ahab_ceremony_on_sim() {
    check_ahab(&on_sim("ahab-pki"));
}

#[test]
fn nxp_ceremonies_on_softhsm() {
    let Some(r) = on_softhsm("ahab-pki") else {
        return;
    };
    check_ahab(&r);
    let Some(r) = on_softhsm("hab4-pki-ec") else {
        return;
    };
    check_hab4(&r, "sha256_prime256v1");
}

/// A run killed after the signed sample was written resumes: the file is adopted (it
/// verifies), not signed twice.
#[test]
fn an_existing_signed_sample_is_adopted_on_resume() {
    let attempt = |k: usize| {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let backend = format!("sim:{}", d.path().join("token").display());
        let cmd = |crash: Option<usize>| {
            let mut c = support::officiant();
            c.arg("run")
                .arg(shipped("ahab-pki.toml"))
                .arg("--answers")
                .arg(shipped("ahab-pki.answers.toml"))
                .arg("--backend")
                .arg(&backend)
                .arg("--out")
                .arg(&out);
            if let Some(k) = crash {
                c.env("OFFICIANT_TEST_CRASH_AT", k.to_string());
            }
            c
        };
        let first = support::run(&mut cmd(Some(k)));
        let again = cmd(None);
        (d, out.clone(), first.status.success(), again)
    };
    // The first crash point at which the signed sample is on disk (binary search: the
    // file exists from some crash point on).
    let (mut lo, mut hi) = (1usize, 4096usize);
    while lo < hi {
        let mid = (lo + hi) / 2;
        let (_d, out, _, _) = attempt(mid);
        if out.join("imx93-ahab-signed.bin").exists() {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let (_d, out, finished, mut rerun) = attempt(lo);
    assert!(!finished, "crash point {lo} did not stop the run");
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert!(!journal.contains(r#""completed","step":14"#), "{journal}");
    let before = std::fs::read(out.join("imx93-ahab-signed.bin")).unwrap();
    let o = support::run(&mut rerun);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(out.join("imx93-ahab-signed.bin")).unwrap(),
        before,
        "adopted, not re-signed"
    );
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert!(journal.contains(r#""adopted":true"#), "{journal}");
}

/// The sign step's NXP fields are checked before anything runs, one line naming the
/// step and field.
#[test]
fn bad_sign_fields_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(shipped("hab4-pki-ec.toml")).unwrap();
    let samples = shipped("samples");
    std::os::unix::fs::symlink(&samples, dir.path().join("samples")).unwrap();
    let cases: [(&str, &str, &str); 6] = [
        (
            "srk-index = 0\n",
            "srk-index = 0\ncsf-cert = \"nope.pem\"\n",
            "csf-cert",
        ),
        ("srk-index = 0\n", "srk-index = 4\n", "srk-index: 4"),
        (
            "img-key = \"IMG1_1_sha256_prime256v1_v3_usr\"\n",
            "",
            "img-key: missing",
        ),
        (
            "srk-index = 0\n",
            "srk-index = 0\nfast-auth = true\n",
            "fast-auth: with fast-auth",
        ),
        (
            "csf-key = ",
            "key = \"x\"\ncsf-key = ",
            "key: imx-hab4 signs with csf-key",
        ),
        (
            "srk-table = \"SRK_1_2_3_4_table.bin\"\n",
            "srk-table = \"nope.bin\"\n",
            "srk-table",
        ),
    ];
    for (from, to, want) in cases {
        let i = base.rfind("[[step]]").unwrap();
        let (head, tail) = base.split_at(i);
        assert!(tail.contains(from), "{from}");
        let script = dir.path().join("s.toml");
        std::fs::write(&script, format!("{head}{}", tail.replacen(from, to, 1))).unwrap();
        let o = support::run(support::officiant().arg("check").arg(&script));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{want}: accepted");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.contains("sign-sample") && err.contains(want),
            "{want}: {err}"
        );
    }
}
