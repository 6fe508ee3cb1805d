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
//! RSA-2048, RSA-3072, EC P-256, P-384 and P-521 PKIs (hab4_pki_tree.sh's extensions), CA and fast
//! authentication, on the rehearsal token.
//!
//! This file holds the PKIs, the rehearsal token and the sign/verify helpers; the
//! judges that read our images are in `judges`, the tests in `signing` (images the
//! judges accept), `interop` (spsdk's and U-Boot's images) and `refusals` (what is
//! refused, in one line, and what never leaks).

mod console;
mod interop;
mod judges;
mod refusals;
mod signing;
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
const SETS: [(&str, &[&str], &str); 6] = [
    (
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "v3_ca",
    ),
    (
        "rsa3k",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
        "v3_ca",
    ),
    (
        "p384",
        &[
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:secp384r1",
        ],
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
