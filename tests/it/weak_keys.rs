//! Weak keys never reach a fuse (issue 11, item 7): `fuses *`, `import-key`, `verify` and
//! certificate issuance refuse RSA keys with e < 3 or an even e, an even or tiny modulus,
//! a size the boot ROM does not take, and a PEM file holding two keys or certificates.
//! Each refusal is one line on stderr, a non-zero exit, and no output file.
//!
//! The weak keys are made from real openssl keys: openssl cannot generate e = 1 or an
//! even e, so the test rewrites a genuine modulus with our DER encoder, and openssl
//! (`x509 -new -force_pubkey`) certifies the result as a vendor tool would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use officiant::keys::{FileSigner, PrivateKey, PublicKey};
use officiant::pki::{self, IssueRequest, Issuer, Profile};

use crate::support;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An RSA private key from openssl, and its public key.
    fn rsa(&self, name: &str, bits: u32) -> (PathBuf, PublicKey) {
        let key = self.p(&format!("{name}.key.pem"));
        support::run_ok(Command::new("openssl").args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &format!("rsa_keygen_bits:{bits}"),
            "-out",
            s(&key),
        ]));
        let pk = PrivateKey::from_bytes(&std::fs::read(&key).unwrap(), None)
            .unwrap()
            .public_key()
            .clone();
        (key, pk)
    }

    /// A public key PEM with openssl's modulus `n` and exponent `e` as given.
    fn crafted(&self, name: &str, n: &[u8], e: &[u8]) -> PathBuf {
        let p = self.p(&format!("{name}.pub.pem"));
        std::fs::write(
            &p,
            PublicKey::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
            }
            .to_pem(),
        )
        .unwrap();
        // openssl reads it back as the key we meant.
        let text = support::run_ok(Command::new("openssl").args([
            "pkey",
            "-pubin",
            "-noout",
            "-text",
            "-in",
            s(&p),
        ]));
        assert!(text.contains("Exponent"), "{text}");
        p
    }

    /// A CA certificate (as srktool wants) for `pubkey`, signed by `ca_key`.
    fn cert_for(&self, name: &str, ca_key: &Path, pubkey: &Path) -> PathBuf {
        let ext = self.p("ca.ext");
        std::fs::write(
            &ext,
            "basicConstraints=critical,CA:true\nkeyUsage=keyCertSign\n",
        )
        .unwrap();
        let crt = self.p(&format!("{name}_crt.pem"));
        support::run_ok(Command::new("openssl").args([
            "x509",
            "-new",
            "-key",
            s(ca_key),
            "-force_pubkey",
            s(pubkey),
            "-subj",
            "/CN=SRK1",
            "-days",
            "30",
            "-extfile",
            s(&ext),
            "-out",
            s(&crt),
        ]));
        crt
    }
}

fn keys() -> Option<Keys> {
    support::oracle("openssl")?;
    Some(Keys {
        dir: tempfile::tempdir().unwrap(),
    })
}

fn modulus(k: &PublicKey) -> Vec<u8> {
    match k {
        PublicKey::Rsa { n, .. } => n.clone(),
        _ => unreachable!(),
    }
}

/// The command failed with exactly one line on stderr containing every `needle`.
#[track_caller]
fn refused(out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "accepted:\n{err}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} missing from: {err}");
    }
    err
}

fn fuses(args: &[&str]) -> Output {
    support::run(support::officiant().arg("fuses").args(args))
}

#[test]
fn fuses_refuse_weak_rsa_keys_and_write_nothing() {
    let Some(k) = keys() else { return };
    let (_, good) = k.rsa("rsa2048", 2048);
    let n = modulus(&good);
    let e1 = k.crafted("e1", &n, &[1]);
    let e_even = k.crafted("e-even", &n, &[1, 0, 1, 0]); // 65552: even
    let mut n_even = n.clone();
    *n_even.last_mut().unwrap() &= 0xfe;
    let even_modulus = k.crafted("n-even", &n_even, &[1, 0, 1]);
    let (_, rsa1024) = k.rsa("rsa1024", 1024);
    let small = k.crafted("rsa1024", &modulus(&rsa1024), &[1, 0, 1]);

    for (key, needle) in [
        (&e1, "exponent"),
        (&e_even, "exponent"),
        (&even_modulus, "modulus"),
        (&small, "2048"),
    ] {
        let out_file = k.p("rotpk.bin");
        let out = fuses(&["tfa-rotpk", "--key", s(key), "-o", s(&out_file)]);
        refused(&out, &[needle, key.file_name().unwrap().to_str().unwrap()]);
        assert!(!out_file.exists(), "{key:?}: an output was written");
    }
    // The same e = 1 key certified by openssl: no SRK table, no fuse file.
    let (ca_key, _) = k.rsa("ca", 2048);
    let crt = k.cert_for("e1", &ca_key, &e1);
    let (table, fuse) = (k.p("SRK_1_table.bin"), k.p("SRK_1_fuse.bin"));
    let out = fuses(&[
        "hab4",
        "--cert",
        s(&crt),
        "--table",
        s(&table),
        "--fuse",
        s(&fuse),
    ]);
    refused(&out, &["exponent", "e1_crt.pem"]);
    assert!(!table.exists() && !fuse.exists());
    // A good key still passes: the refusals are about the key, not the command.
    let ok = k.crafted("good", &n, &[1, 0, 1]);
    support::run_ok(support::officiant().args([
        "fuses",
        "tfa-rotpk",
        "--key",
        s(&ok),
        "-o",
        s(&k.p("ok.bin")),
    ]));
}

#[test]
fn sizes_follow_each_boot_rom() {
    let Some(k) = keys() else { return };
    // HAB4 takes RSA 1024 to 4096; a 6144-bit modulus is refused before any table.
    let (_, good) = k.rsa("rsa2048", 2048);
    let big = modulus(&good).repeat(3);
    let huge = k.crafted("rsa6144", &big, &[1, 0, 1]);
    let (ca_key, _) = k.rsa("ca", 2048);
    let crt = k.cert_for("huge", &ca_key, &huge);
    let (table, fuse) = (k.p("t.bin"), k.p("f.bin"));
    let out = fuses(&[
        "hab4",
        "--cert",
        s(&crt),
        "--table",
        s(&table),
        "--fuse",
        s(&fuse),
    ]);
    refused(&out, &["4096", "huge_crt.pem"]);
    assert!(!table.exists() && !fuse.exists());
    // ESP32 Secure Boot V2 takes RSA-3072 only.
    let rsa2048 = k.crafted("rsa2048pub", &modulus(&good), &[1, 0, 1]);
    let o = k.p("digest.bin");
    let out = fuses(&["esp32-sbv2", "--key", s(&rsa2048), "-o", s(&o)]);
    refused(&out, &["3072"]);
    assert!(!o.exists());
}

#[test]
fn a_pem_file_with_two_keys_or_two_certificates_is_refused() {
    let Some(k) = keys() else { return };
    let two_keys = k.p("two.pub.pem");
    let p256 = std::fs::read_to_string(support::key_fixture("p256.pub.pem")).unwrap();
    let p384 = std::fs::read_to_string(support::key_fixture("p384.pub.pem")).unwrap();
    std::fs::write(&two_keys, format!("{p256}{p384}")).unwrap();
    let o = k.p("rotpk.bin");
    let out = fuses(&["tfa-rotpk", "--key", s(&two_keys), "-o", s(&o)]);
    refused(&out, &["two.pub.pem", "2"]);
    assert!(!o.exists());

    let (ca_key, good) = k.rsa("ca", 2048);
    let pubkey = k.crafted("srk", &modulus(&good), &[1, 0, 1]);
    let a = std::fs::read_to_string(k.cert_for("a", &ca_key, &pubkey)).unwrap();
    let b = std::fs::read_to_string(k.cert_for("b", &ca_key, &pubkey)).unwrap();
    let two_certs = k.p("two_crt.pem");
    std::fs::write(&two_certs, format!("{a}{b}")).unwrap();
    let (table, fuse) = (k.p("t.bin"), k.p("f.bin"));
    let out = fuses(&[
        "hab4",
        "--cert",
        s(&two_certs),
        "--table",
        s(&table),
        "--fuse",
        s(&fuse),
    ]);
    refused(&out, &["two_crt.pem", "2"]);
    assert!(!table.exists() && !fuse.exists());

    // A private key file with a certificate after it is two things in one file too.
    let combined = k.p("key-and-cert.pem");
    std::fs::write(
        &combined,
        format!("{}{a}", std::fs::read_to_string(&ca_key).unwrap()),
    )
    .unwrap();
    let out = fuses(&["tfa-rotpk", "--key", s(&combined), "-o", s(&o)]);
    refused(&out, &["key-and-cert.pem"]);
    assert!(!o.exists());
}

#[test]
fn verify_refuses_a_weak_public_key_by_name() {
    let Some(k) = keys() else { return };
    let (_, good) = k.rsa("rsa2048", 2048);
    let e1 = k.crafted("e1", &modulus(&good), &[1]);
    // Under e = 1 the "signature" is the PKCS#1 block itself: anyone can make it.
    let input = k.p("in.bin");
    std::fs::write(&input, b"firmware").unwrap();
    let digest = officiant::keys::HashAlg::Sha256.digest(b"firmware");
    let mut di = officiant::keys::HashAlg::Sha256
        .digest_info_prefix()
        .to_vec();
    di.extend_from_slice(&digest);
    let mut em = vec![0x00, 0x01];
    em.resize(256 - di.len() - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(&di);
    let sig = k.p("in.sig");
    std::fs::write(&sig, &em).unwrap();
    let out = support::run(support::officiant().args([
        "verify",
        "--format",
        "raw",
        "--pubkey",
        s(&e1),
        "--padding",
        "pkcs1",
        s(&input),
        s(&sig),
    ]));
    refused(&out, &["e1.pub.pem", "exponent"]);
}

#[test]
fn import_key_refuses_a_tiny_rsa_key_before_the_token() {
    let Some(k) = keys() else { return };
    let (key, _) = k.rsa("rsa1024", 1024);
    // `check` reads the key file and refuses it before any token is opened.
    let script = k.p("import.toml");
    std::fs::write(
        &script,
        "[ceremony]\nid = \"i\"\ntitle = \"I\"\nversion = 1\ntoken = \"t\"\n\n\
         [[step]]\nid = \"login\"\nkind = \"login\"\npin = \"user\"\n\n\
         [[step]]\nid = \"import\"\nkind = \"import-key\"\nlabel = \"tiny\"\n\
         key-id = \"01\"\nkey-file = \"rsa1024.key.pem\"\nreview = false\n",
    )
    .unwrap();
    let out = support::run(support::officiant().arg("check").arg(&script));
    refused(&out, &["import", "key-file", "1024"]);
    let token = k.p("token");
    drop(support::rehearsal::ready_token(&token));
    let pin = k.p("user.pin");
    std::fs::write(&pin, support::rehearsal::USER_PIN).unwrap();
    std::fs::set_permissions(&pin, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = support::run(support::officiant().args([
        "import-key",
        "--backend",
        &format!("sim:{}", s(&token)),
        "--label",
        "tiny",
        "--key-file",
        s(&key),
        "--pin-source",
        &format!("file:{}", s(&pin)),
        "--transcript",
        s(&k.p("t.jsonl")),
    ]));
    refused(&out, &["rsa1024.key.pem", "1024"]);
    let mut t = officiant::hsm::sim::open(&token).unwrap();
    let objects = t.list_objects().unwrap();
    assert!(objects.iter().all(|o| o.label != "tiny"), "{objects:?}");
}

#[test]
fn certificates_are_not_issued_for_weak_keys() {
    let Some(k) = keys() else { return };
    let (ca_key, good) = k.rsa("ca", 2048);
    let ca = PrivateKey::from_bytes(&std::fs::read(&ca_key).unwrap(), None).unwrap();
    let mut signer = FileSigner::new("ca", ca);
    let weak = PublicKey::Rsa {
        n: modulus(&good),
        e: vec![1],
    };
    for profile in [Profile::Signer, Profile::Hab4Srk { ca: true }] {
        let req = IssueRequest {
            profile,
            subject: pki::common_name("weak").unwrap(),
            subject_key: weak.clone(),
            issuer: Issuer::SelfSigned,
            scheme: good.default_scheme(),
            serial: vec![1],
            validity: pki::Validity::days_from_now(30),
        };
        let e = pki::issue(&mut signer, &req).expect_err("a certificate for e = 1");
        assert!(e.to_string().contains("exponent"), "{profile:?}: {e}");
    }
}

#[test]
fn a_tbbr_chain_is_not_prepared_around_a_weak_key() {
    use officiant::pki::tbbr::{prepare_chain, ChainRequest, ImageHashes, KeyLabels};
    let Some(k) = keys() else { return };
    let (_, good) = k.rsa("rsa2048", 2048);
    let weak = PublicKey::Rsa {
        n: modulus(&good),
        e: vec![1],
    };
    let labels = KeyLabels {
        rot: "rot".into(),
        trusted_world: "tw".into(),
        non_trusted_world: "ntw".into(),
        soc_fw: "soc".into(),
        tos_fw: None,
        nt_fw: "nt".into(),
    };
    let images = ImageHashes {
        tb_fw: Some(vec![1; 32]),
        soc_fw: Some(vec![2; 32]),
        nt_fw: Some(vec![3; 32]),
        ..ImageHashes::default()
    };
    let req = ChainRequest::new(labels, images);
    prepare_chain(&req, |_| Ok::<_, std::io::Error>(good.clone())).unwrap();
    let e = prepare_chain(&req, |l| {
        Ok::<_, std::io::Error>(if l == "soc" {
            weak.clone()
        } else {
            good.clone()
        })
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("exponent") && e.to_string().contains("SoC firmware"),
        "{e}"
    );
}
