//! `officiant fuses ahab`: AHAB SRK tables and SRK hashes, byte for byte against
//! `nxpcrypto rot export/calculate-hash -f mimx9352` (spsdk) and `srktool -a` (CST), for
//! four-key sets of P-256, P-384 and P-521 (with leading-zero coordinates) and RSA 2048,
//! 3072 and 4096 (e = 65537 and 3), CA and non-CA; the U-Boot fuse words against `od -t
//! x4` (what U-Boot's AHAB guides use) and srktool's own word dump; and every refusal
//! the issue lists, each a one-line error that writes nothing.
use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use elliptic_curve::sec1::ToEncodedPoint;
use rand_core::OsRng;
use sha2::Digest;

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = SRK
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = keyCertSign
subjectKeyIdentifier = hash
[v3_usr]
basicConstraints = CA:false
subjectKeyIdentifier = hash
";

fn tool(name: &str) -> PathBuf {
    // The vendor tools are the judges: a missing one fails the test.
    support::oracle(name).unwrap_or_else(|| panic!("{name} is this test's judge and is missing"))
}

fn openssl(args: &[&str]) {
    support::run_ok(Command::new("openssl").args(args));
}

struct Fixtures {
    dir: tempfile::TempDir,
}

impl Fixtures {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// The four certificates of set `set`.
    fn certs(&self, set: &str) -> Vec<PathBuf> {
        (1..=4)
            .map(|i| self.path(&format!("{set}-{i}.pem")))
            .collect()
    }
}

/// (set, key files per SRK, profile, srktool digest)
type Set = (&'static str, [&'static str; 4], &'static str, &'static str);

const SETS: [Set; 9] = [
    (
        "p256",
        ["p256a", "p256b", "p256c", "p256_lz"],
        "v3_ca",
        "sha256",
    ),
    (
        "p256usr",
        ["p256a", "p256b", "p256c", "p256_lz"],
        "v3_usr",
        "sha256",
    ),
    (
        "p384",
        ["p384a", "p384b", "p384c", "p384_lz"],
        "v3_ca",
        "sha384",
    ),
    (
        "p521",
        ["p521a", "p521b", "p521c", "p521_lz"],
        "v3_ca",
        "sha512",
    ),
    ("rsa2048", ["r2a", "r2b", "r2c", "r2d"], "v3_ca", "sha256"),
    ("rsa2048e3", ["rsa2048_3"; 4], "v3_ca", "sha256"),
    ("rsa3072", ["rsa3072_65537"; 4], "v3_usr", "sha256"),
    ("rsa3072e3", ["rsa3072_3"; 4], "v3_ca", "sha256"),
    ("rsa4096", ["rsa4096_65537"; 4], "v3_ca", "sha256"),
];

fn write_lz_keys(dir: &Path) {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let lz = |x: &[u8], y: &[u8], n: usize| {
        x[..n].iter().all(|&b| b == 0) || y[..n].iter().all(|&b| b == 0)
    };
    let pem = loop {
        let k = p256::SecretKey::random(&mut OsRng);
        let p = k.public_key().to_encoded_point(false);
        if lz(p.x().unwrap(), p.y().unwrap(), 1) {
            break k.to_pkcs8_pem(LineEnding::LF).unwrap();
        }
    };
    std::fs::write(dir.join("p256_lz.key"), pem.as_bytes()).unwrap();
    let pem = loop {
        let k = p384::SecretKey::random(&mut OsRng);
        let p = k.public_key().to_encoded_point(false);
        if lz(p.x().unwrap(), p.y().unwrap(), 1) {
            break k.to_pkcs8_pem(LineEnding::LF).unwrap();
        }
    };
    std::fs::write(dir.join("p384_lz.key"), pem.as_bytes()).unwrap();
    let pem = loop {
        let k = p521::SecretKey::random(&mut OsRng);
        let p = k.public_key().to_encoded_point(false);
        if lz(p.x().unwrap(), p.y().unwrap(), 2) {
            break k.to_pkcs8_pem(LineEnding::LF).unwrap();
        }
    };
    std::fs::write(dir.join("p521_lz.key"), pem.as_bytes()).unwrap();
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let f = Fixtures {
            dir: tempfile::tempdir().unwrap(),
        };
        let d = f.dir.path();
        std::fs::write(d.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        write_lz_keys(d);
        for (name, curve) in [
            ("p256", "prime256v1"),
            ("p384", "secp384r1"),
            ("p521", "secp521r1"),
        ] {
            for s in ["a", "b", "c"] {
                let out = d.join(format!("{name}{s}.key"));
                openssl(&[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    &format!("ec_paramgen_curve:{curve}"),
                    "-out",
                    out.to_str().unwrap(),
                ]);
            }
        }
        for s in ["r2a", "r2b", "r2c", "r2d"] {
            let out = d.join(format!("{s}.key"));
            openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                out.to_str().unwrap(),
            ]);
        }
        // Shipped keys spare the slow RSA-3072/4096 generation (and give e = 3).
        for k in [
            "rsa1024_65537",
            "rsa2048_3",
            "rsa3072_65537",
            "rsa3072_3",
            "rsa4096_65537",
        ] {
            let src = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/fuses")
                .join(format!("{k}.key.pem"));
            std::fs::copy(src, d.join(format!("{k}.key"))).unwrap();
        }
        let mut jobs: Vec<(String, String, &str)> = Vec::new();
        for (set, keys, profile, _) in SETS {
            for (i, k) in keys.iter().enumerate() {
                jobs.push((format!("{set}-{}", i + 1), k.to_string(), profile));
            }
        }
        // Refusal fixtures: RSA-1024, and a mixed-exponent set.
        for i in 1..=4 {
            jobs.push((format!("rsa1024-{i}"), "rsa1024_65537".into(), "v3_ca"));
        }
        let cnf = d.join("openssl.cnf");
        std::thread::scope(|s| {
            for chunk in jobs.chunks(jobs.len().div_ceil(2)) {
                let cnf = &cnf;
                s.spawn(move || {
                    for (cert, key, profile) in chunk {
                        openssl(&[
                            "req",
                            "-new",
                            "-x509",
                            "-config",
                            cnf.to_str().unwrap(),
                            "-extensions",
                            profile,
                            "-key",
                            d.join(format!("{key}.key")).to_str().unwrap(),
                            "-subj",
                            &format!("/CN={cert}"),
                            "-days",
                            "3650",
                            "-sha256",
                            "-out",
                            d.join(format!("{cert}.pem")).to_str().unwrap(),
                        ]);
                    }
                });
            }
        });
        f
    })
}

/// `officiant fuses ahab` into `out`; (table, fuse, stdout).
fn ours(certs: &[PathBuf], out: &Path, tag: &str, flags: &[&str]) -> (Vec<u8>, Vec<u8>, String) {
    let table = out.join(format!("{tag}_table.bin"));
    let fuse = out.join(format!("{tag}_fuse.bin"));
    let mut cmd = support::officiant();
    cmd.args(["fuses", "ahab"]);
    for c in certs {
        cmd.arg("--cert").arg(c);
    }
    cmd.args(flags)
        .arg("--table")
        .arg(&table)
        .arg("--fuse")
        .arg(&fuse);
    let stdout = support::run_ok(&mut cmd);
    (
        std::fs::read(table).unwrap(),
        std::fs::read(fuse).unwrap(),
        stdout,
    )
}

/// srktool -a: (table, efuse file, its "SRK HASH[i] = 0x…" words).
fn srktool(
    certs: &[PathBuf],
    digest: &str,
    out: &Path,
    tag: &str,
) -> (Vec<u8>, Vec<u8>, Vec<String>) {
    let table = out.join(format!("{tag}_srk_table.bin"));
    let fuse = out.join(format!("{tag}_srk_fuse.bin"));
    let list: Vec<String> = certs.iter().map(|p| p.display().to_string()).collect();
    let stdout = support::run_ok(
        Command::new(tool("srktool"))
            .args(["-a", "-s", digest, "-t"])
            .arg(&table)
            .arg("-e")
            .arg(&fuse)
            .arg("-c")
            .arg(list.join(",")),
    );
    let words = stdout
        .lines()
        .filter_map(|l| l.split_once("] = ").map(|(_, w)| w.trim().to_string()))
        .collect();
    (
        std::fs::read(table).unwrap(),
        std::fs::read(fuse).unwrap(),
        words,
    )
}

/// nxpcrypto rot export + calculate-hash for i.MX 93.
fn nxpcrypto(certs: &[PathBuf], out: &Path, tag: &str) -> (Vec<u8>, Vec<u8>) {
    let table = out.join(format!("{tag}_nxp_table.bin"));
    let fuse = out.join(format!("{tag}_nxp_fuse.bin"));
    for (sub, path) in [("export", &table), ("calculate-hash", &fuse)] {
        let mut cmd = Command::new(tool("nxpcrypto"));
        cmd.args(["rot", sub, "-f", "mimx9352"]);
        for c in certs {
            cmd.arg("-k").arg(c);
        }
        cmd.arg("-o").arg(path);
        support::run_ok(&mut cmd);
    }
    (std::fs::read(table).unwrap(), std::fs::read(fuse).unwrap())
}

#[test]
fn tables_and_fuses_match_srktool() {
    let f = fixtures();
    let out = tempfile::tempdir().unwrap();
    for (set, _, _, digest) in SETS {
        let certs = f.certs(set);
        let (t, e, words) = srktool(&certs, digest, out.path(), set);
        assert_eq!(e.len(), 64, "{set}: srktool -a writes SHA-512");
        // Default: srktool's table (RSA as PKCS#1 v1.5), SHA-256 of it as the fuse.
        let (table, fuse, _) = ours(&certs, out.path(), &format!("{set}-default"), &[]);
        assert_eq!(table, t, "{set}: default table vs srktool -a -s {digest}");
        assert_eq!(
            fuse,
            sha2::Sha256::digest(&t).to_vec(),
            "{set}: default fuse"
        );
        // --srktool: both files byte-identical, and the printed words are srktool's.
        let (table, fuse, stdout) = ours(
            &certs,
            out.path(),
            &format!("{set}-srktool"),
            &["--srktool", "--family", "imx8qxp"],
        );
        assert_eq!(table, t, "{set}: --srktool table");
        assert_eq!(fuse, e, "{set}: --srktool efuse file");
        assert_eq!(words.len(), 16, "{set}: srktool's word dump");
        for (i, w) in words.iter().enumerate() {
            let line = format!("fuse prog -y 0 {} {w}", 730 + i);
            assert!(
                stdout.contains(&line),
                "{set}: missing {line:?} in\n{stdout}"
            );
        }
    }
}

#[test]
fn tables_and_fuses_match_nxpcrypto() {
    let f = fixtures();
    let out = tempfile::tempdir().unwrap();
    // nxpcrypto takes over a second a call: every curve, and RSA 2048 (both exponents)
    // and 4096.
    let sets = [
        "p256",
        "p256usr",
        "p384",
        "p521",
        "rsa2048",
        "rsa2048e3",
        "rsa4096",
    ];
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = sets
            .iter()
            .map(|set| {
                let certs = f.certs(set);
                let out = out.path().to_path_buf();
                s.spawn(move || (set, nxpcrypto(&certs, &out, set)))
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (set, (t, e)) in results {
        let certs = f.certs(set);
        let (table, fuse, _) = ours(&certs, out.path(), &format!("{set}-pss"), &["--rsa-pss"]);
        assert_eq!(table, t, "{set}: --rsa-pss table vs nxpcrypto rot export");
        assert_eq!(fuse, e, "{set}: fuse vs nxpcrypto rot calculate-hash");
        if !set.starts_with("rsa") {
            // EC tables are the same in both tools, so the default is nxpcrypto's too.
            let (table, fuse, _) = ours(&certs, out.path(), &format!("{set}-d"), &[]);
            assert_eq!((table, fuse), (t, e), "{set}: default vs nxpcrypto");
        } else {
            // The tools differ only in the four algorithm bytes: 0x21 (srktool), 0x22.
            let (table, _, _) = ours(&certs, out.path(), &format!("{set}-d"), &[]);
            let diff: Vec<_> = (0..t.len()).filter(|&i| t[i] != table[i]).collect();
            assert_eq!(diff.len(), 4, "{set}: {diff:?}");
            assert!(diff.iter().all(|&i| t[i] == 0x22 && table[i] == 0x21));
        }
    }
}

#[test]
fn fuse_lines_are_od_words_at_each_familys_fuses() {
    let f = fixtures();
    let out = tempfile::tempdir().unwrap();
    for (family, bank, first) in [("imx8ulp", 15, 0), ("imx93", 16, 0), ("imx95", 16, 0)] {
        let (_, fuse, stdout) = ours(&f.certs("p384"), out.path(), family, &["--family", family]);
        // U-Boot's guide: `od -t x4 SRK_1_2_3_4_fuse.bin`, then one fuse prog per word.
        let od = support::run_ok(
            Command::new("od")
                .args(["-An", "-v", "-t", "x4"])
                .arg(out.path().join(format!("{family}_fuse.bin"))),
        );
        let words: Vec<&str> = od.split_whitespace().collect();
        assert_eq!(words.len(), 8);
        assert_eq!(fuse.len(), 32);
        for (i, w) in words.iter().enumerate() {
            let line = format!("fuse prog -y {bank} {} 0x{}", first + i, w.to_uppercase());
            assert!(
                stdout.contains(&line),
                "{family}: missing {line:?}\n{stdout}"
            );
        }
    }
    let (_, _, stdout) = ours(
        &f.certs("p256"),
        out.path(),
        "qm",
        &["--srktool", "--family", "imx8qm"],
    );
    assert!(stdout.contains("fuse prog -y 0 722 0x"));
    assert!(stdout.contains("fuse prog -y 0 737 0x"));
    assert!(!stdout.contains("fuse prog -y 0 738 "));
}

/// A refused run: non-zero exit, one line on stderr containing `want`, no output file.
fn refused(certs: &[PathBuf], flags: &[&str], want: &str) {
    let out = tempfile::tempdir().unwrap();
    let mut cmd = support::officiant();
    cmd.args(["fuses", "ahab"]);
    for c in certs {
        cmd.arg("--cert").arg(c);
    }
    cmd.args(flags)
        .arg("--table")
        .arg(out.path().join("t.bin"))
        .arg("--fuse")
        .arg(out.path().join("f.bin"));
    let o = support::run(&mut cmd);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{flags:?} {want}: succeeded");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(want), "{want:?} not in {err}");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "{want}: wrote files"
    );
}

#[test]
fn bad_inputs_are_one_line_and_write_nothing() {
    let f = fixtures();
    let p256 = f.certs("p256");
    refused(&p256[..3], &[], "exactly 4 certificates, got 3");
    let mut five = p256.clone();
    five.push(p256[0].clone());
    refused(&five, &[], "exactly 4 certificates, got 5");
    let mut mixed = p256.clone();
    mixed[2] = f.certs("p384")[2].clone();
    refused(&mixed, &[], "SRK 3 is EC P-384");
    let mut ca_mix = p256.clone();
    ca_mix[0] = f.certs("p256usr")[0].clone();
    refused(&ca_mix, &[], "mix CA and non-CA");
    refused(&f.certs("rsa1024"), &[], "RSA-1024 key");
    let mut exps = f.certs("rsa3072e3");
    exps[1] = f.certs("rsa3072")[1].clone();
    refused(&exps, &["--srktool"], "e=65537");
    refused(&p256, &["--family", "imx8qxp"], "add --srktool");
    refused(&p256, &["--srktool", "--family", "imx93"], "drop --srktool");
    refused(&p256, &["--family", "imx8mm"], "unknown AHAB family");
    let mut missing = p256.clone();
    missing[3] = f.path("nope.pem");
    refused(&missing, &[], "nope.pem");
    refused(&p256, &["--rsa-pss", "--srktool"], "choose one");
}

#[test]
fn never_over_an_existing_file() {
    let f = fixtures();
    let out = tempfile::tempdir().unwrap();
    let fuse = out.path().join("f.bin");
    std::fs::write(&fuse, b"keep").unwrap();
    let mut cmd = support::officiant();
    cmd.args(["fuses", "ahab"]);
    for c in f.certs("p256") {
        cmd.arg("--cert").arg(c);
    }
    cmd.arg("--table")
        .arg(out.path().join("t.bin"))
        .arg("--fuse")
        .arg(&fuse);
    let o = support::run(&mut cmd);
    assert!(!o.status.success());
    assert_eq!(std::fs::read(&fuse).unwrap(), b"keep");
    assert!(!out.path().join("t.bin").exists());
}

/// The vendor tools disagree on a table of mixed key types: srktool -a writes one,
/// nxpcrypto refuses it. FORMATS.md and the issue say all four SRKs must be one type;
/// Officiant refuses with nxpcrypto (the ROM's rule as spsdk encodes it).
#[test]
fn mixed_key_types_srktool_writes_nxpcrypto_and_officiant_refuse() {
    let f = fixtures();
    let out = tempfile::tempdir().unwrap();
    let mut mixed = f.certs("p256");
    mixed[1] = f.certs("p384")[1].clone();
    let (t, _, _) = srktool(&mixed, "sha256", out.path(), "mixed");
    assert_eq!(t[4 + 5], 1, "srktool's record 1 is P-256");
    assert!(
        t.windows(3).any(|w| w == [0x27, 0x00, 0x02]),
        "and a P-384 record (hashed as -s says)"
    );
    let mut cmd = Command::new(tool("nxpcrypto"));
    cmd.args(["rot", "export", "-f", "mimx9352"]);
    for c in &mixed {
        cmd.arg("-k").arg(c);
    }
    let o = support::run(cmd.arg("-o").arg(out.path().join("nxp-mixed.bin")));
    assert!(!o.status.success(), "nxpcrypto accepted a mixed table");
    refused(&mixed, &[], "SRK 2 is EC P-384");
}
