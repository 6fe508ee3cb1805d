//! `officiant sign/verify --format imx-hab4`, judged by NXP's and others' tools:
//! - spsdk `nxpimage hab verify` and `hab parse` on every image we sign (structure, the
//!   SRK table and certificates it finds);
//! - `openssl cms -verify -binary -noverify -nointern` on every CMS in the CSF, over
//!   exactly the bytes its command covers (spsdk does not check signatures);
//! - `officiant verify` accepts images spsdk signed (`nxpimage hab export`, file keys);
//! - U-Boot's `mkimage -T imximage` images with a reserved CSF: the block we sign is the
//!   one `mkimage -l` prints as "HAB Blocks";
//! - tampering any covered byte fails our verify, naming the command;
//! - every bad input the issue lists is one line and writes nothing.
//!
//! RSA-2048, EC P-256 and P-521 PKIs (hab4_pki_tree.sh's extensions), CA and fast
//! authentication, on the rehearsal token.
use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const PIN: &str = "hab4-canary-pin-6407";
const SO_PIN: &str = "hab4-so-pin-88123";

const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = X
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = keyCertSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_usr]
basicConstraints = CA:false
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
";

fn judge(name: &str) -> PathBuf {
    support::oracle(name).unwrap_or_else(|| panic!("{name} is this test's judge and is missing"))
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/imx/rt1060-hab4-unsigned.bin")
}

fn openssl(args: &[&str]) {
    support::run_ok(Command::new("openssl").args(args));
}

struct Pki {
    dir: tempfile::TempDir,
}

/// PKI sets: (name, genpkey algorithm options, SRK profile).
const SETS: [(&str, &[&str], &str); 4] = [
    (
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "v3_ca",
    ),
    (
        "p256",
        &[
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ],
        "v3_ca",
    ),
    (
        "p521",
        &[
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp521r1",
        ],
        "v3_ca",
    ),
    // Fast authentication: non-CA SRKs (hab4_pki_tree.sh -srk-ca n).
    (
        "fast",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "v3_usr",
    ),
];

impl Pki {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn cert(&self, set: &str, who: &str) -> PathBuf {
        self.p(&format!("{set}-{who}.pem"))
    }
    fn table(&self, set: &str) -> PathBuf {
        self.p(&format!("{set}-table.bin"))
    }
    /// A private copy of the rehearsal token holding every key (one per test: the
    /// token is locked while a command has it open).
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

fn issue(d: &Path, set: &str, who: &str, issuer: Option<&str>, profile: &str, serial: u32) {
    let cnf = d.join("openssl.cnf");
    let key = d.join(format!("{set}-{who}.key"));
    let cert = d.join(format!("{set}-{who}.pem"));
    match issuer {
        None => openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            &format!("/CN={set}-{who}"),
            "-days",
            "3650",
            "-sha256",
            "-config",
            cnf.to_str().unwrap(),
            "-extensions",
            profile,
            "-set_serial",
            &serial.to_string(),
            "-out",
            cert.to_str().unwrap(),
        ]),
        Some(i) => {
            let csr = d.join(format!("{set}-{who}.csr"));
            openssl(&[
                "req",
                "-new",
                "-key",
                key.to_str().unwrap(),
                "-subj",
                &format!("/CN={set}-{who}"),
                "-config",
                cnf.to_str().unwrap(),
                "-out",
                csr.to_str().unwrap(),
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                csr.to_str().unwrap(),
                "-CA",
                d.join(format!("{set}-{i}.pem")).to_str().unwrap(),
                "-CAkey",
                d.join(format!("{set}-{i}.key")).to_str().unwrap(),
                "-set_serial",
                &serial.to_string(),
                "-days",
                "3650",
                "-sha256",
                "-extfile",
                cnf.to_str().unwrap(),
                "-extensions",
                profile,
                "-out",
                cert.to_str().unwrap(),
            ]);
        }
    }
}

fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        let d = pki.dir.path();
        std::fs::write(d.join("openssl.cnf"), OPENSSL_CNF).unwrap();
        let whos = [
            "CA1", "SRK1", "SRK2", "SRK3", "SRK4", "CSF1", "IMG1", "CSF2", "OTHER",
        ];
        std::thread::scope(|s| {
            for (set, alg, srk_profile) in SETS {
                s.spawn(move || {
                    for who in whos {
                        let mut args = vec!["genpkey"];
                        args.extend_from_slice(alg);
                        let key = d.join(format!("{set}-{who}.key"));
                        args.extend(["-out", key.to_str().unwrap()]);
                        openssl(&args);
                    }
                    // hab4_pki_tree.sh's serial order; CSF2 is issued by SRK2.
                    issue(d, set, "CA1", None, "v3_ca", 0x1234_5677);
                    for (i, who) in ["SRK1", "SRK2", "SRK3", "SRK4"].iter().enumerate() {
                        issue(
                            d,
                            set,
                            who,
                            Some("CA1"),
                            srk_profile,
                            0x1234_5678 + i as u32,
                        );
                    }
                    if srk_profile == "v3_ca" {
                        issue(d, set, "CSF1", Some("SRK1"), "v3_usr", 0x1234_5690);
                        issue(d, set, "IMG1", Some("SRK1"), "v3_usr", 0x1234_5691);
                        issue(d, set, "CSF2", Some("SRK2"), "v3_usr", 0x1234_5692);
                    }
                    issue(d, set, "OTHER", None, "v3_usr", 7);
                    let certs: Vec<String> = ["SRK1", "SRK2", "SRK3", "SRK4"]
                        .iter()
                        .map(|w| d.join(format!("{set}-{w}.pem")).display().to_string())
                        .collect();
                    support::run_ok(
                        Command::new(judge("srktool"))
                            .args(["-h", "4", "-d", "sha256", "-f", "1", "-t"])
                            .arg(d.join(format!("{set}-table.bin")))
                            .arg("-e")
                            .arg(d.join(format!("{set}-fuse.bin")))
                            .arg("-c")
                            .arg(certs.join(",")),
                    );
                });
            }
        });
        let tok = format!("sim:{}", d.join("token").display());
        support::run_ok(
            support::officiant()
                .args(["init-token", "--backend", &tok, "--label", "hab4"])
                .args(["--so-pin-source", "env:SO", "--pin-source", "env:PIN"])
                .env("SO", SO_PIN)
                .env("PIN", PIN),
        );
        for (set, ..) in SETS {
            for who in ["SRK1", "CSF1", "IMG1", "CSF2", "OTHER"] {
                let key = d.join(format!("{set}-{who}.key"));
                if !key.exists() {
                    continue;
                }
                support::run_ok(
                    support::officiant()
                        .args(["import-key", "--backend", &tok, "--label"])
                        .arg(format!("{set}-{who}"))
                        .arg("--key-file")
                        .arg(&key)
                        .args(["--pin-source", "env:PIN", "--transcript"])
                        .arg(d.join("import.jsonl"))
                        .env("PIN", PIN),
                );
            }
        }
        pki
    })
}

/// `officiant sign --format imx-hab4` with set `set`'s SRK1/CSF1/IMG1 unless `flags`
/// replace them (a flag given in `flags` drops the default of the same name).
fn sign(tok: &Path, set: &str, input: &Path, out: &Path, flags: &[&str]) -> Output {
    let p = pki();
    let mut defaults: Vec<(String, String)> = vec![
        ("--srk-table".into(), p.table(set).display().to_string()),
        ("--srk-index".into(), "0".into()),
        ("--csf-key".into(), format!("{set}-CSF1")),
        (
            "--csf-cert".into(),
            p.cert(set, "CSF1").display().to_string(),
        ),
        ("--img-key".into(), format!("{set}-IMG1")),
        (
            "--img-cert".into(),
            p.cert(set, "IMG1").display().to_string(),
        ),
    ];
    if flags.contains(&"--fast-auth") {
        defaults.retain(|(f, _)| !f.starts_with("--img"));
        defaults[2].1 = format!("{set}-SRK1");
        defaults[3].1 = p.cert(set, "SRK1").display().to_string();
    }
    defaults.retain(|(f, _)| !flags.contains(&f.as_str()));
    let mut cmd = support::officiant();
    cmd.args(["sign", "--backend"])
        .arg(format!("sim:{}", tok.display()))
        .args(["--pin-source", "env:PIN", "--format", "imx-hab4"])
        .arg("--transcript")
        .arg(tok.join("transcript.jsonl"));
    for (f, v) in &defaults {
        cmd.arg(f).arg(v);
    }
    cmd.args(flags)
        .arg(input)
        .arg("-o")
        .arg(out)
        .env("PIN", PIN);
    support::run(&mut cmd)
}

fn sign_ok(tok: &Path, set: &str, input: &Path, out: &Path, flags: &[&str]) -> String {
    let o = sign(tok, set, input, out, flags);
    assert!(
        o.status.success(),
        "sign {set} {flags:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn verify(image: &Path, table: &Path) -> Output {
    support::run(
        support::officiant()
            .args(["verify", "--format", "imx-hab4", "--srk-table"])
            .arg(table)
            .arg(image),
    )
}

fn verify_ok(image: &Path, table: &Path) -> String {
    let o = verify(image, table);
    assert!(
        o.status.success(),
        "verify {}: {}",
        image.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn be16(b: &[u8], i: usize) -> usize {
    usize::from(u16::from_be_bytes([b[i], b[i + 1]]))
}
fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
fn le32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// One signature in a signed image, read with nothing but the layouts in FORMATS.md.
struct Sig {
    /// Key slot of its Authenticate Data command (1: the CSF).
    key: u8,
    cms: Vec<u8>,
    covered: Vec<u8>,
}

/// The IVT is at file offset 0 in every image here.
fn signatures(image: &[u8]) -> (usize, Vec<Sig>) {
    assert_eq!(&image[..4], &[0xD1, 0x00, 0x20, 0x40][..]);
    let self_addr = le32(image, 20);
    let off = |addr: u32| (addr - self_addr) as usize;
    let csf_at = off(le32(image, 24));
    let csf = &image[csf_at..];
    assert_eq!(csf[0], 0xD4);
    let head = be16(csf, 1);
    let mut sigs = Vec::new();
    let mut i = 4;
    while i < head {
        let len = be16(csf, i + 1);
        if csf[i] == 0xCA {
            let loc = be32(csf, i + 8) as usize;
            assert_eq!(csf[loc], 0xD8, "signature blob tag");
            let cms = csf[loc + 4..loc + be16(csf, loc + 1)].to_vec();
            let covered = if len == 12 {
                csf[..head].to_vec()
            } else {
                (i + 12..i + len)
                    .step_by(8)
                    .flat_map(|b| {
                        let start = off(be32(csf, b));
                        image[start..start + be32(csf, b + 4) as usize].to_vec()
                    })
                    .collect()
            };
            sigs.push(Sig {
                key: csf[i + 4],
                cms,
                covered,
            });
        }
        i += len;
    }
    (csf_at, sigs)
}

/// openssl checks every CMS over exactly its covered bytes with the certificate of the
/// key slot it names.
fn openssl_checks(image: &Path, certs: &[(u8, PathBuf)]) {
    let bytes = std::fs::read(image).unwrap();
    let (_, sigs) = signatures(&bytes);
    assert!(sigs.len() >= 2, "a CSF and an image signature");
    let dir = tempfile::tempdir().unwrap();
    for (n, s) in sigs.iter().enumerate() {
        let cms = dir.path().join(format!("sig{n}.der"));
        let covered = dir.path().join(format!("covered{n}.bin"));
        std::fs::write(&cms, &s.cms).unwrap();
        std::fs::write(&covered, &s.covered).unwrap();
        let cert = &certs.iter().find(|(k, _)| *k == s.key).unwrap().1;
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
                ])
                .arg("-in")
                .arg(&cms)
                .arg("-content")
                .arg(&covered)
                .arg("-certfile")
                .arg(cert)
                .args(["-out", "/dev/null"]),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && err.contains("Verification successful"),
            "openssl cms on signature {n} (key {}): {err}",
            s.key
        );
        // And a flipped covered byte makes openssl refuse it.
        let mut bad = s.covered.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        std::fs::write(&covered, &bad).unwrap();
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
                ])
                .arg("-in")
                .arg(&cms)
                .arg("-content")
                .arg(&covered)
                .arg("-certfile")
                .arg(cert)
                .args(["-out", "/dev/null"]),
        );
        assert!(!o.status.success(), "openssl accepted altered content");
    }
}

/// nxpimage hab verify succeeds, and hab parse finds our SRK table and certificates.
fn nxpimage_checks(image: &Path, table: &Path, certs: &[&Path]) {
    let nxpimage = judge("nxpimage");
    let out = support::run_ok(
        Command::new(&nxpimage)
            .args(["hab", "verify", "-f", "mimxrt1060", "-b"])
            .arg(image),
    );
    assert!(out.contains("Overall  result: Succeeded"), "{out}");
    assert!(out.contains("HAB CSF segment(Succeeded)"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let parsed = dir.path().join("parsed");
    support::run_ok(
        Command::new(&nxpimage)
            .args(["hab", "parse", "-f", "mimxrt1060", "-b"])
            .arg(image)
            .arg("-o")
            .arg(&parsed),
    );
    assert_eq!(
        std::fs::read(parsed.join("srk_table.bin")).unwrap(),
        std::fs::read(table).unwrap(),
        "the SRK table nxpimage finds"
    );
    let der = |p: &Path| {
        let o = support::run_ok(
            Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(p)
                .args(["-out", "/dev/stdout"]),
        );
        o.into_bytes()
    };
    let found: Vec<PathBuf> = std::fs::read_dir(&parsed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    let found_ders: Vec<Vec<u8>> = found.iter().map(|p| der(p)).collect();
    assert_eq!(
        found.len(),
        certs.len(),
        "certificates nxpimage finds: {found:?}"
    );
    for want in certs {
        assert!(
            found_ders.contains(&der(want)),
            "nxpimage hab parse did not find {} among {found:?}",
            want.display()
        );
    }
}

#[test]
fn signed_images_pass_nxpimage_and_openssl() {
    let p = pki();
    let tok = p.token();
    for set in ["rsa", "p256", "p521"] {
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
        assert_eq!(bytes[csf_at + 3], if set == "rsa" { 0x43 } else { 0x45 });
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

/// Sign with nxpimage (file keys), then check with officiant.
fn spsdk_sign(dir: &Path, set: &str, fast: bool) -> PathBuf {
    let p = pki();
    let app = dir.join("app.bin");
    let mut a = vec![0x00, 0x20, 0x00, 0x20, 0x01, 0x24, 0x00, 0x60];
    a.extend((0..8184u32).map(|i| (i * 13 + 5) as u8));
    std::fs::write(&app, a).unwrap();
    let key = |w: &str| p.p(&format!("{set}-{w}.key")).display().to_string();
    let cert = |w: &str| p.cert(set, w).display().to_string();
    let (csfk, img) = if fast {
        (
            format!("  - InstallNOCAK:\n      InstallNOCAK_File: {}\n", cert("SRK1")),
            format!(
                "  - AuthenticateData:\n      AuthenticateData_VerificationIndex: 0\n      AuthenticateData_Engine: ANY\n      AuthenticateData_EngineConfiguration: 0\n      Signer: type=file;file_path={}\n",
                key("SRK1")
            ),
        )
    } else {
        (
            format!("  - InstallCSFK:\n      InstallCSFK_File: {}\n      InstallCSFK_CertificateFormat: x509\n", cert("CSF1")),
            format!(
                "  - InstallKey:\n      InstallKey_File: {}\n      InstallKey_VerificationIndex: 0\n      InstallKey_TargetIndex: 2\n  - AuthenticateData:\n      AuthenticateData_VerificationIndex: 2\n      AuthenticateData_Engine: ANY\n      AuthenticateData_EngineConfiguration: 0\n      Signer: type=file;file_path={}\n",
                cert("IMG1"),
                key("IMG1")
            ),
        )
    };
    let csf_signer = if fast { key("SRK1") } else { key("CSF1") };
    let version = if set == "rsa" || set == "fast" {
        "4.2"
    } else {
        "4.5"
    };
    let cfg = format!(
        "options:\n  flags: 8\n  startAddress: 0x60000000\n  ivtOffset: 0x1000\n  initialLoadSize: 0x2000\n  entryPointAddress: 0x60002401\n  family: mimxrt1060\ninputImageFile: {}\nsections:\n  - Header:\n      Header_Version: '{version}'\n      Header_HashAlgorithm: sha256\n      Header_Engine: ANY\n      Header_EngineConfiguration: 0\n      Header_CertificateFormat: x509\n      Header_SignatureFormat: CMS\n  - InstallSRK:\n      InstallSRK_Table: {}\n      InstallSRK_SourceIndex: 0\n{csfk}  - AuthenticateCSF:\n      Signer: type=file;file_path={csf_signer}\n{img}",
        app.display(),
        p.table(set).display()
    );
    let cfg_path = dir.join(format!("{set}-{fast}.yaml"));
    std::fs::write(&cfg_path, cfg).unwrap();
    let out = dir.join(format!("{set}-{fast}-spsdk.bin"));
    support::run_ok(
        Command::new(judge("nxpimage"))
            .args(["hab", "export", "-c"])
            .arg(&cfg_path)
            .arg("-o")
            .arg(&out),
    );
    out
}

#[test]
fn officiant_accepts_images_spsdk_signed() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    for (set, fast) in [("rsa", false), ("p256", false), ("fast", true)] {
        let img = spsdk_sign(dir.path(), set, fast);
        let report = verify_ok(&img, &p.table(set));
        // spsdk signs two blocks: IVT with boot data, and the application.
        assert!(
            report.contains("over 0x60001000+0x40, 0x60002000+0x2000"),
            "{set}: {report}"
        );
        // A flipped application byte: spsdk's own verify does not notice, ours does.
        let mut bytes = std::fs::read(&img).unwrap();
        bytes[0x1000 + 100] ^= 0x40;
        let bad = dir.path().join(format!("{set}-bad.bin"));
        std::fs::write(&bad, &bytes).unwrap();
        let o = verify(&bad, &p.table(set));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{set}: altered image accepted");
        assert!(
            err.contains("Authenticate Data") && err.contains("covered bytes altered"),
            "{err}"
        );
        // With another SRK table, the image is refused at Install SRK.
        let other = if set == "rsa" { "p256" } else { "rsa" };
        let o = verify(&img, &p.table(other));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("(Install SRK)"),
            "{err}"
        );
    }
}

#[test]
fn tampering_any_covered_byte_fails() {
    let p = pki();
    let tok = p.token();
    let out = tok.path().join("signed.bin");
    sign_ok(tok.path(), "p256", &sample(), &out, &[]);
    let good = std::fs::read(&out).unwrap();
    let (csf_at, _) = signatures(&good);
    let csf = &good[csf_at..];
    let head = be16(csf, 1);
    // Where each piece sits, from the commands.
    let loc = |cmd: usize| be32(csf, 4 + 12 * cmd + 8) as usize;
    let (srk, csfk, csf_sig, img_cert, img_sig) = (loc(0), loc(1), loc(2), loc(3), loc(4));
    // Near the end of a signature blob: inside the signature value.
    let in_sig = |at: usize| at + be16(csf, at + 1) - 5;
    let cases: Vec<(&str, usize, &str)> = vec![
        ("IVT entry point", 4, "Authenticate Data"),
        ("boot data plugin flag", 0x28, "Authenticate Data"),
        ("application vector table", 0x1000, "Authenticate Data"),
        ("application middle", 0x1800, "Authenticate Data"),
        ("last covered byte", csf_at - 1, "Authenticate Data"),
        (
            "a block length in the CSF",
            csf_at + head - 1,
            "Authenticate CSF",
        ),
        ("SRK table", csf_at + srk + 20, "Install SRK"),
        ("CSF certificate", csf_at + csfk + 40, "Install CSFK"),
        (
            "CSF signature",
            csf_at + in_sig(csf_sig),
            "Authenticate CSF",
        ),
        ("IMG certificate", csf_at + img_cert + 40, "Install Key"),
        (
            "image signature",
            csf_at + in_sig(img_sig),
            "Authenticate Data",
        ),
    ];
    for (what, at, names) in cases {
        let mut b = good.clone();
        b[at] ^= 0x01;
        let path = tok.path().join("tampered.bin");
        std::fs::write(&path, &b).unwrap();
        let o = verify(&path, &p.table("p256"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "{what} (offset {at:#x}) altered, still verifies"
        );
        assert!(err.contains(names), "{what}: {err:?} should name {names}");
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    }
    verify_ok(&out, &p.table("p256"));
}

#[test]
fn uboot_imximage_with_a_reserved_csf() {
    let p = pki();
    let tok = p.token();
    let d = tok.path();
    std::fs::write(
        d.join("imx.cfg"),
        "IMAGE_VERSION 2\nBOOT_FROM sd\nCSF 0x2000\nDATA 4 0x020c4068 0xffffffff\n",
    )
    .unwrap();
    let payload: Vec<u8> = (0..40_000u32).map(|i| (i * 31 + 7) as u8).collect();
    std::fs::write(d.join("u-boot.bin"), payload).unwrap();
    let mkimage = judge("mkimage");
    let listing = support::run_ok(
        Command::new(&mkimage)
            .args(["-n"])
            .arg(d.join("imx.cfg"))
            .args(["-T", "imximage", "-e", "0x87800000", "-d"])
            .arg(d.join("u-boot.bin"))
            .arg(d.join("u-boot.imx")),
    );
    // "HAB Blocks:   0x877ff400 0x00000000 0x0000a000": what CST users put in their CSF.
    let blocks = listing
        .lines()
        .find_map(|l| l.strip_prefix("HAB Blocks:"))
        .expect("mkimage prints HAB Blocks")
        .split_whitespace()
        .map(|w| u32::from_str_radix(w.trim_start_matches("0x"), 16).unwrap())
        .collect::<Vec<_>>();
    let input = d.join("u-boot.imx");
    let in_len = std::fs::metadata(&input).unwrap().len();
    let out = d.join("u-boot-signed.imx");
    let stdout = sign_ok(d, "rsa", &input, &out, &["--unlock", "caam:rng"]);
    assert!(stdout.contains("reserves 0x2000 bytes"), "{stdout}");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), in_len + 0x2000);
    let bytes = std::fs::read(&out).unwrap();
    // The CSF sits at the IVT's (unchanged) CSF pointer, right after the image.
    // mkimage already set the CSF pointer and boot data length: the image is unchanged.
    assert_eq!(bytes[..in_len as usize], std::fs::read(&input).unwrap()[..]);
    let (csf_at, sigs) = signatures(&bytes);
    assert_eq!(csf_at as u64, in_len);
    let csf = &bytes[csf_at..];
    let head = be16(csf, 1);
    let mut i = 4;
    let mut block = None;
    while i < head {
        if csf[i] == 0xCA && be16(csf, i + 1) > 12 {
            block = Some((be32(csf, i + 12), be32(csf, i + 16)));
        }
        i += be16(csf, i + 1);
    }
    // mkimage's HAB Blocks: load address, file offset 0 (the IVT), length.
    assert_eq!(block, Some((blocks[0], blocks[2])), "{listing}");
    assert_eq!(blocks[1], 0);
    assert_eq!(sigs.len(), 2);
    openssl_checks(
        &out,
        &[(1, p.cert("rsa", "CSF1")), (2, p.cert("rsa", "IMG1"))],
    );
    verify_ok(&out, &p.table("rsa"));
    // U-Boot's own tool still reads the signed image.
    let l = support::run_ok(Command::new(&mkimage).arg("-l").arg(&out));
    assert!(l.contains("HAB Blocks:"), "{l}");
}

/// A refused signing: non-zero exit, one line on stderr containing `want`, no output.
fn refused(tok: &Path, set: &str, input: &Path, flags: &[&str], want: &str) {
    let out = tok.join("refused.bin");
    let o = sign(tok, set, input, &out, flags);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{want}: signed");
    assert_eq!(err.trim_end().lines().count(), 1, "{want}: {err}");
    assert!(err.contains(want), "{want:?} not in {err:?}");
    assert!(!out.exists(), "{want}: wrote output");
    let stray: Vec<_> = std::fs::read_dir(tok)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("refused"))
        .collect();
    assert!(stray.is_empty(), "{want}: left {stray:?}");
}

#[test]
fn bad_inputs_are_one_line_and_write_nothing() {
    let p = pki();
    let tok = p.token();
    let d = tok.path();
    let good = std::fs::read(sample()).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = d.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let no_ivt = write("no-ivt.bin", &vec![0x5A; 0x3000]);
    refused(d, "rsa", &no_ivt, &[], "no IVT");
    let mut b = good.clone();
    b[20..24].copy_from_slice(&0x7000_0000u32.to_le_bytes()); // self pointer
    refused(d, "rsa", &write("self.bin", &b), &[], "boot data pointer");
    let mut b = good.clone();
    b[16..20].copy_from_slice(&0x6010_0000u32.to_le_bytes()); // boot data pointer
    refused(
        d,
        "rsa",
        &write("bd.bin", &b),
        &[],
        "boot data pointer 0x60100000 lies outside the file",
    );
    let mut b = good.clone();
    b[0x24..0x28].copy_from_slice(&0x800u32.to_le_bytes()); // image too short for the IVT
    refused(d, "rsa", &write("short.bin", &b), &[], "self pointer");
    let mut b = good.clone();
    b[24..28].copy_from_slice(&0x6000_2400u32.to_le_bytes()); // CSF pointer into the app
    refused(
        d,
        "rsa",
        &write("csf-app.bin", &b),
        &[],
        "points into the application",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--srk-index", "4"],
        "--srk-index 4: the SRK table holds 4 SRKs",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--csf-cert", p.cert("rsa", "CSF2").to_str().unwrap()],
        "--csf-cert (CN=rsa-CSF2) is not issued by SRK 1",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--img-cert", p.cert("rsa", "OTHER").to_str().unwrap()],
        "is not issued by SRK 1",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--csf-key", "rsa-IMG1"],
        "key \"rsa-IMG1\" (RSA 2048) does not match --csf-cert",
    );
    refused(d, "rsa", &sample(), &["--fast-auth"], "SRK 1 is a CA key");
    let fast_srk = p.cert("fast", "SRK1");
    let fast_srk = fast_srk.to_str().unwrap();
    refused(
        d,
        "fast",
        &sample(),
        &[
            "--csf-key",
            "fast-SRK1",
            "--csf-cert",
            fast_srk,
            "--img-key",
            "fast-SRK1",
            "--img-cert",
            fast_srk,
        ],
        "SRK 1 is not a CA key",
    );
    refused(
        d,
        "p256",
        &sample(),
        &["--hab-version", "4.3"],
        "ECDSA keys need HAB 4.5",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--unlock", "ocotp:jtag"],
        "unique ID",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--srk-table", p.cert("rsa", "SRK1").to_str().unwrap()],
        "--srk-table",
    );
    // An image already signed.
    let signed = d.join("once.bin");
    sign_ok(d, "rsa", &sample(), &signed, &[]);
    refused(d, "rsa", &signed, &[], "already signed");
}

#[test]
fn verify_refuses_unsigned_and_truncated_images() {
    let p = pki();
    let o = verify(&sample(), &p.table("rsa"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("not signed"), "{err}");
    let tok = p.token();
    let out = tok.path().join("s.bin");
    sign_ok(tok.path(), "rsa", &sample(), &out, &[]);
    let b = std::fs::read(&out).unwrap();
    let cut = tok.path().join("cut.bin");
    std::fs::write(&cut, &b[..0x3000 + 200]).unwrap();
    let o = verify(&cut, &p.table("rsa"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("CSF"), "{err}");
}

#[test]
fn the_pin_appears_nowhere() {
    let p = pki();
    let tok = p.token();
    let out = tok.path().join("canary.bin");
    let o = sign(
        tok.path(),
        "rsa",
        &sample(),
        &out,
        &["--unlock", "caam:rng"],
    );
    assert!(o.status.success());
    let tr = std::fs::read_to_string(tok.path().join("transcript.jsonl")).unwrap();
    for text in [
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        tr,
    ] {
        assert!(!text.contains(PIN));
    }
    let img = std::fs::read(&out).unwrap();
    assert!(!img.windows(PIN.len()).any(|w| w == PIN.as_bytes()));
}

/// Both keys of an imx-hab4 signature answer to the token's approval policy (each is
/// opened through `signing::TokenSigner`): a quorum on the IMG key alone, or on the CSF
/// key alone, stops the signature before anything is written, in one line naming it.
#[test]
fn both_keys_answer_to_the_approval_policy() {
    use officiant::approvals::{store, Policy};
    use officiant::hsm::{self, UserType};
    use officiant::secret::Secret;
    const ALICE: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIByI32DqnUeMKYiDlK8Mj2aXqxU6GDmay94cUM6NDsX1";
    for gated in ["p256-IMG1", "p256-CSF1"] {
        let tok = pki().token();
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("signers"), format!("alice {ALICE}\n")).unwrap();
        let policy = Policy::parse(
            "policy.toml",
            d.path(),
            &format!("allowed-signers = \"signers\"\n[keys.{gated}]\napprovers = [\"alice\"]\nquorum = 1\n"),
        )
        .unwrap();
        {
            let mut t = hsm::sim::open(tok.path()).unwrap();
            t.login(UserType::So, &Secret::from_string(SO_PIN.to_string()))
                .unwrap();
            store::write_policy(t.as_mut(), &policy).unwrap();
        }
        let out = d.path().join("signed.bin");
        let o = sign(tok.path(), "p256", &sample(), &out, &[]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(
                "key \"{gated}\" needs 1 approval(s) from {{alice}}: give --request REQ.json and --approval SIG for each"
            )),
            "{err}"
        );
        assert!(!out.exists());
    }
}

/// What the console checks before it asks for a PIN (`signing::precheck`): the options
/// imx-hab4 needs (not the certificates, which the token may hold), and an image with an
/// IVT.
#[test]
fn precheck_needs_the_options_and_an_image() {
    use officiant::signing::{precheck, Format, Hab4Options, Options};
    let p = pki();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("signed.bin");
    let mut opts = Options {
        hab4: Box::new(Hab4Options {
            srk_table: Some(std::fs::read(p.table("rsa")).unwrap()),
            srk_index: Some(0),
            csf_cert: Some(std::fs::read(p.cert("rsa", "CSF1")).unwrap()),
            img_key: Some("rsa-IMG1".into()),
            img_cert: Some(std::fs::read(p.cert("rsa", "IMG1")).unwrap()),
            ..Hab4Options::default()
        }),
        ..Options::default()
    };
    precheck(Format::ImxHab4, &opts, &sample(), &out).unwrap();
    let not_an_image = d.path().join("payload.bin");
    std::fs::write(&not_an_image, [0u8; 4096]).unwrap();
    let e = precheck(Format::ImxHab4, &opts, &not_an_image, &out).unwrap_err();
    assert!(e.to_string().contains("payload.bin"), "{e}");
    // The certificates may come from the token: not needed before it is opened.
    opts.hab4.img_cert = None;
    opts.hab4.csf_cert = None;
    precheck(Format::ImxHab4, &opts, &sample(), &out).unwrap();
    opts.hab4.img_key = None;
    let e = precheck(Format::ImxHab4, &opts, &sample(), &out).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--format imx-hab4 needs --img-key LABEL (or --fast-auth)"
    );
    assert!(!out.exists());
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
