//! `officiant sign/verify --format imx-ahab`, judged by spsdk:
//! - `nxpimage ahab verify` (which checks the signature and image hashes) and `ahab
//!   parse` accept every container we sign, for P-256, P-384, P-521, RSA-2048 and RSA-3072 (PSS)
//!   SRKs;
//! - our output is byte for byte what `nxpimage ahab export` writes with the same keys,
//!   except the signature itself (ECDSA and PSS are randomized);
//! - `officiant verify` accepts containers `nxpimage ahab export` and `ahab sign` made;
//! - tampering a header field, an image, the SRK table or the signature fails verify;
//! - bad inputs are one line and write nothing.
use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const PIN: &str = "ahab-canary-pin-3310";

fn judge(name: &str) -> PathBuf {
    support::oracle(name).unwrap_or_else(|| panic!("{name} is this test's judge and is missing"))
}

fn openssl(args: &[&str]) {
    support::run_ok(Command::new("openssl").args(args));
}

/// (set, genpkey options, fuses ahab flags)
const SETS: [(&str, &[&str], &[&str]); 5] = [
    (
        "p256",
        &[
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ],
        &[],
    ),
    (
        "p384",
        &[
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp384r1",
        ],
        &[],
    ),
    (
        "p521",
        &[
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp521r1",
        ],
        &[],
    ),
    (
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        &["--rsa-pss"],
    ),
    (
        "rsa3k",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
        &["--rsa-pss"],
    ),
];

struct Fx {
    dir: tempfile::TempDir,
}

impl Fx {
    fn p(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }
    fn table(&self, set: &str) -> PathBuf {
        self.p(&format!("{set}-table.bin"))
    }
    fn unsigned(&self) -> PathBuf {
        self.p("unsigned.bin")
    }
    fn token(&self) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for e in std::fs::read_dir(self.p("token")).unwrap() {
            let e = e.unwrap();
            if e.file_name() != "store.lock" {
                std::fs::copy(e.path(), t.path().join(e.file_name())).unwrap();
            }
        }
        t
    }
}

const CONTAINER_YAML: &str = "\
family: mimx9352
revision: latest
target_memory: standard
output: OUTPUT
output_format: bin
containers:
  - container:
      srk_set: SRKSET
      used_srk_id: 1
      srk_revoke_mask: '0x00'
      fuse_version: 2
      sw_version: 5
SIGNER      images:
        - image_path: m33.bin
          load_address: '0x2049A000'
          entry_point: '0x2049A000'
          image_type: executable
          core_id: cortex-m33
          hash_type: sha256
        - image_path: data.bin
          load_address: '0x20480000'
          entry_point: '0x20480000'
          image_type: data
          core_id: cortex-m33
          hash_type: sha512
";

fn srk_table_yaml(set: &str) -> String {
    format!(
        "      srk_table:\n        flag_ca: true\n        srk_array: [{set}-1.pub, {set}-2.pub, {set}-3.pub, {set}-4.pub]\n"
    )
}

/// `nxpimage ahab export`: the unsigned container, or one signed with SRK 2 of `set`.
fn nxp_export(dir: &Path, set: Option<&str>, out: &str) -> PathBuf {
    let mut y = CONTAINER_YAML.replace("OUTPUT", out);
    match set {
        None => {
            y = y.replace("SRKSET", "none").replace("SIGNER", "");
        }
        Some(s) => {
            y = y.replace("SRKSET", "oem").replace(
                "SIGNER",
                &format!("      signer: type=file;file_path={s}-2.key\n"),
            );
            y.push_str(&srk_table_yaml(s));
        }
    }
    let cfg = dir.join(format!("{out}.yaml"));
    std::fs::write(&cfg, y).unwrap();
    support::run_ok(
        Command::new(judge("nxpimage"))
            .current_dir(dir)
            .args(["ahab", "export", "-c"])
            .arg(&cfg),
    );
    dir.join(out)
}

fn fx() -> &'static Fx {
    static F: OnceLock<Fx> = OnceLock::new();
    F.get_or_init(|| {
        let f = Fx {
            dir: tempfile::tempdir().unwrap(),
        };
        let d = f.dir.path();
        std::fs::write(
            d.join("cnf"),
            "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = X\n[v3_ca]\nbasicConstraints = critical,CA:true\nkeyUsage = keyCertSign\nsubjectKeyIdentifier = hash\n",
        )
        .unwrap();
        let m33: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 1) as u8).collect();
        std::fs::write(d.join("m33.bin"), m33).unwrap();
        let data: Vec<u8> = (0..1200u32).map(|i| (i * 13 + 9) as u8).collect();
        std::fs::write(d.join("data.bin"), data).unwrap();
        std::thread::scope(|s| {
            for (set, alg, flags) in SETS {
                s.spawn(move || {
                    for i in 1..=4 {
                        let key = d.join(format!("{set}-{i}.key"));
                        let mut a = vec!["genpkey"];
                        a.extend_from_slice(alg);
                        a.extend(["-out", key.to_str().unwrap()]);
                        openssl(&a);
                        openssl(&[
                            "pkey", "-in", key.to_str().unwrap(), "-pubout", "-out",
                            d.join(format!("{set}-{i}.pub")).to_str().unwrap(),
                        ]);
                        openssl(&[
                            "req", "-x509", "-new", "-key", key.to_str().unwrap(), "-subj",
                            &format!("/CN={set}-SRK{i}"), "-days", "3650", "-config",
                            d.join("cnf").to_str().unwrap(), "-extensions", "v3_ca", "-out",
                            d.join(format!("{set}-{i}.pem")).to_str().unwrap(),
                        ]);
                    }
                    let mut cmd = support::officiant();
                    cmd.args(["fuses", "ahab"]);
                    for i in 1..=4 {
                        cmd.arg("--cert").arg(d.join(format!("{set}-{i}.pem")));
                    }
                    cmd.args(flags)
                        .arg("--table")
                        .arg(d.join(format!("{set}-table.bin")))
                        .arg("--fuse")
                        .arg(d.join(format!("{set}-fuse.bin")));
                    support::run_ok(&mut cmd);
                });
            }
        });
        nxp_export(d, None, "unsigned.bin");
        let tok = format!("sim:{}", d.join("token").display());
        support::run_ok(
            support::officiant()
                .args(["init-token", "--backend", &tok, "--label", "ahab"])
                .args(["--so-pin-source", "env:SO", "--pin-source", "env:PIN"])
                .env("SO", "ahab-so-pin-1")
                .env("PIN", PIN),
        );
        for (set, ..) in SETS {
            for i in 1..=4 {
                support::run_ok(
                    support::officiant()
                        .args(["import-key", "--backend", &tok, "--label"])
                        .arg(format!("{set}-SRK{i}"))
                        .arg("--key-file")
                        .arg(d.join(format!("{set}-{i}.key")))
                        .args(["--pin-source", "env:PIN", "--transcript"])
                        .arg(d.join("import.jsonl"))
                        .env("PIN", PIN),
                );
            }
        }
        f
    })
}

fn sign(tok: &Path, key: &str, table: &Path, index: &str, input: &Path, out: &Path) -> Output {
    support::run(
        support::officiant()
            .args(["sign", "--backend"])
            .arg(format!("sim:{}", tok.display()))
            .args([
                "--pin-source",
                "env:PIN",
                "--format",
                "imx-ahab",
                "--key",
                key,
            ])
            .arg("--srk-table")
            .arg(table)
            .args(["--srk-index", index])
            .arg("--transcript")
            .arg(tok.join("transcript.jsonl"))
            .arg(input)
            .arg("-o")
            .arg(out)
            .env("PIN", PIN),
    )
}

fn verify(image: &Path, table: &Path) -> Output {
    support::run(
        support::officiant()
            .args(["verify", "--format", "imx-ahab", "--srk-table"])
            .arg(table)
            .arg(image),
    )
}

fn nxp_verify(image: &Path) -> String {
    support::run_ok(
        Command::new(judge("nxpimage"))
            .args(["ahab", "verify", "-f", "mimx9352", "-b"])
            .arg(image),
    )
}

/// Offset and length of the signature data in the (single) container.
fn signature_span(b: &[u8]) -> (usize, usize) {
    let sbo = usize::from(u16::from_le_bytes([b[12], b[13]]));
    let sig = sbo + usize::from(u16::from_le_bytes([b[sbo + 8], b[sbo + 9]]));
    let len = usize::from(u16::from_le_bytes([b[sig + 1], b[sig + 2]]));
    (sig + 8, len - 8)
}

#[test]
fn signed_containers_pass_nxpimage_and_match_its_own_bytes() {
    let f = fx();
    let tok = f.token();
    for (set, ..) in SETS {
        let out = tok.path().join(format!("{set}-signed.bin"));
        let o = sign(
            tok.path(),
            &format!("{set}-SRK2"),
            &f.table(set),
            "1",
            &f.unsigned(),
            &out,
        );
        assert!(
            o.status.success(),
            "{set}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let report = nxp_verify(&out);
        assert!(
            report.contains("Overall  result: Succeeded"),
            "{set}: {report}"
        );
        assert!(report.contains("Signature(Succeeded)"), "{set}: {report}");
        assert!(
            report.contains("Used SRK key ID(Succeeded): SRK ID 1"),
            "{set}: {report}"
        );
        let ours = std::fs::read(&out).unwrap();
        let theirs = std::fs::read(nxp_export(
            f.dir.path(),
            Some(set),
            &format!("{set}-nxp.bin"),
        ))
        .unwrap();
        let (at, len) = signature_span(&theirs);
        assert_eq!(signature_span(&ours), (at, len), "{set}: signature place");
        let mask = |b: &[u8]| {
            let mut v = b.to_vec();
            v[at..at + len].fill(0);
            v
        };
        assert_eq!(
            mask(&ours),
            mask(&theirs),
            "{set}: all but the signature as nxpimage writes it"
        );
        let v = verify(&out, &f.table(set));
        assert!(
            v.status.success(),
            "{set}: {}",
            String::from_utf8_lossy(&v.stderr)
        );
        // nxpimage parses it back into its configuration and images.
        let parsed = tok.path().join(format!("{set}-parsed"));
        support::run_ok(
            Command::new(judge("nxpimage"))
                .args(["ahab", "parse", "-f", "mimx9352", "-b"])
                .arg(&out)
                .arg("-o")
                .arg(&parsed),
        );
        assert!(std::fs::read_dir(&parsed).unwrap().count() >= 3);
    }
}

#[test]
fn officiant_accepts_what_nxpimage_signed() {
    let f = fx();
    let dir = tempfile::tempdir().unwrap();
    for (set, ..) in SETS {
        let img = nxp_export(f.dir.path(), Some(set), &format!("{set}-exported.bin"));
        let v = verify(&img, &f.table(set));
        let out = String::from_utf8_lossy(&v.stdout);
        assert!(
            v.status.success(),
            "{set}: {}",
            String::from_utf8_lossy(&v.stderr)
        );
        assert!(
            out.contains("signed by SRK 1") && out.contains("2 image hash(es) match"),
            "{out}"
        );
    }
    // nxpimage ahab sign, SRK 3 of the P-384 set.
    let cfg = f.p("sign.yaml");
    std::fs::write(
        &cfg,
        format!(
            "family: mimx9352\nrevision: latest\nsrk_set: oem\nused_srk_id: 3\nsrk_revoke_mask: '0x00'\nsigner: type=file;file_path={}\n{}",
            f.p("p384-4.key").display(),
            srk_table_yaml("p384").replace("      ", "")
        ),
    )
    .unwrap();
    let signed = dir.path().join("nxp-signed.bin");
    support::run_ok(
        Command::new(judge("nxpimage"))
            .current_dir(f.dir.path())
            .args(["ahab", "sign", "-c"])
            .arg(&cfg)
            .arg("-b")
            .arg(f.unsigned())
            .arg("-o")
            .arg(&signed),
    );
    let v = verify(&signed, &f.table("p384"));
    let out = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    assert!(out.contains("signed by SRK 3"), "{out}");
}

#[test]
fn tampering_fails_verify() {
    let f = fx();
    let tok = f.token();
    let out = tok.path().join("signed.bin");
    let o = sign(
        tok.path(),
        "p256-SRK1",
        &f.table("p256"),
        "0",
        &f.unsigned(),
        &out,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let good = std::fs::read(&out).unwrap();
    let (sig_at, _) = signature_span(&good);
    let img0 = u32::from_le_bytes(good[16..20].try_into().unwrap()) as usize;
    let img1 = u32::from_le_bytes(good[16 + 128..20 + 128].try_into().unwrap()) as usize;
    let sbo = usize::from(u16::from_le_bytes([good[12], good[13]]));
    for (what, at, want) in [
        ("sw_version", 8, "signature does not verify"),
        ("image 0 load address", 24, "signature does not verify"),
        ("image 1 hash", 16 + 128 + 40, "signature does not verify"),
        ("SRK table", sbo + 16 + 40, "SRK table"),
        ("signature", sig_at + 10, "signature does not verify"),
        ("image 0 data", img0 + 100, "image 0"),
        ("image 1 data", img1 + 1199, "image 1"),
    ] {
        let mut b = good.clone();
        b[at] ^= 0x04;
        let p = tok.path().join("t.bin");
        std::fs::write(&p, &b).unwrap();
        let v = verify(&p, &f.table("p256"));
        let err = String::from_utf8_lossy(&v.stderr);
        assert!(!v.status.success(), "{what} altered, still verifies");
        assert!(err.contains(want), "{what}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    }
    // Another table, and an unsigned container.
    let v = verify(&out, &f.table("p384"));
    assert!(String::from_utf8_lossy(&v.stderr).contains("is not --srk-table"));
    let v = verify(&f.unsigned(), &f.table("p256"));
    assert!(String::from_utf8_lossy(&v.stderr).contains("not signed"));
}

fn refused(tok: &Path, key: &str, table: &Path, index: &str, input: &Path, want: &str) {
    let out = tok.join("refused.bin");
    let o = sign(tok, key, table, index, input, &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{want}: signed");
    assert_eq!(err.trim_end().lines().count(), 1, "{want}: {err}");
    assert!(err.contains(want), "{want:?} not in {err:?}");
    assert!(!out.exists());
}

#[test]
fn bad_inputs_are_one_line_and_write_nothing() {
    let f = fx();
    let tok = f.token();
    let d = tok.path();
    let t = f.table("p256");
    refused(
        d,
        "p256-SRK1",
        &t,
        "1",
        &f.unsigned(),
        "is not SRK 1 of --srk-table",
    );
    refused(d, "p256-SRK1", &t, "4", &f.unsigned(), "--srk-index 4");
    refused(
        d,
        "p256-SRK1",
        &f.p("p256-1.pem"),
        "0",
        &f.unsigned(),
        "--srk-table",
    );
    let junk = d.join("junk.bin");
    std::fs::write(&junk, vec![0x11; 4096]).unwrap();
    refused(d, "p256-SRK1", &t, "0", &junk, "no AHAB container");
    // An image changed after the container was made: its hash no longer matches.
    let mut b = std::fs::read(f.unsigned()).unwrap();
    let img0 = u32::from_le_bytes(b[16..20].try_into().unwrap()) as usize;
    b[img0 + 7] ^= 1;
    let stale = d.join("stale.bin");
    std::fs::write(&stale, &b).unwrap();
    refused(d, "p256-SRK1", &t, "0", &stale, "image 0");
    // A container whose signature block would run into its first image (moved, hash
    // intact, to 0x200).
    let mut b = std::fs::read(f.unsigned()).unwrap();
    let size = u32::from_le_bytes(b[20..24].try_into().unwrap()) as usize;
    let data = b[img0..img0 + size].to_vec();
    b[0x200..0x200 + size].copy_from_slice(&data);
    b[16..20].copy_from_slice(&0x200u32.to_le_bytes());
    let tight = d.join("tight.bin");
    std::fs::write(&tight, &b).unwrap();
    refused(
        d,
        "p256-SRK1",
        &t,
        "0",
        &tight,
        "the next container or image starts at 0x200",
    );
    // HAB4 flags are refused for AHAB.
    let o = support::run(
        support::officiant()
            .args(["sign", "--backend"])
            .arg(format!("sim:{}", d.display()))
            .args([
                "--pin-source",
                "env:PIN",
                "--format",
                "imx-ahab",
                "--key",
                "p256-SRK1",
            ])
            .arg("--srk-table")
            .arg(&t)
            .args(["--srk-index", "0", "--fast-auth"])
            .arg(f.unsigned())
            .arg("-o")
            .arg(d.join("x.bin"))
            .env("PIN", PIN),
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("are for imx-hab4"));
    assert!(!d.join("x.bin").exists());
}
