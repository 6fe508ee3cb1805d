//! `pki` with file keys and no token at all: a HAB4 CA → SRK → CSF/IMG tree and a TBBR
//! chain signed by `keys::FileSigner`s over openssl-made key files. The vendor tools are
//! the judges: openssl verifies every certificate, srktool and nxpcrypto read the SRKs,
//! cert_create makes the same chain from the same key files and the two must agree field
//! by field, fiptool packs ours. A missing judge fails the test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use der::{Decode, Encode};
use x509_cert::Certificate;

use super::hab4::{self, KeyType, Role};
use super::tbbr::{self, CertKind, ChainRequest, ImageHashes, KeyLabels};
use super::{IssueRequest, Issuer, Validity};
use crate::keys::{FileSigner, HashAlg, KeyAlgorithm, SignScheme, Signer};

/// A vendor tool on PATH or in the oracle venv; a test without its judge fails.
fn oracle(name: &str) -> PathBuf {
    let venv = Path::new("/opt/officiant-venv/bin").join(name);
    if venv.is_file() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{name} is this test's judge and was not found"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl(args: &[&str]) -> String {
    run_ok(Command::new(oracle("openssl")).args(args))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An openssl-made private key file, read back as a signer labelled with its path.
fn file_key(alg: KeyAlgorithm, path: &Path) -> FileSigner {
    let opt = match (alg.curve(), alg.rsa_bits()) {
        (Some(c), _) => format!("ec_paramgen_curve:{}", c.name()),
        (None, Some(bits)) => format!("rsa_keygen_bits:{bits}"),
        (None, None) => unreachable!(),
    };
    let kind = if alg.is_rsa() { "RSA" } else { "EC" };
    openssl(&[
        "genpkey",
        "-algorithm",
        kind,
        "-pkeyopt",
        &opt,
        "-out",
        s(path),
    ]);
    FileSigner::from_file(path, None).unwrap()
}

fn write_pem(path: &Path, der: &[u8]) {
    std::fs::write(path, super::to_pem(der)).unwrap();
}

fn hab4_tree(alg: KeyAlgorithm) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let kt = KeyType::of_algorithm(alg);
    let mut keys: HashMap<String, FileSigner> = HashMap::new();
    let mut certs: HashMap<String, (Vec<u8>, PathBuf)> = HashMap::new();
    let role = |r: Role| format!("{r:?}");
    for p in hab4::plan(2, kt, true).unwrap() {
        let me = file_key(alg, &d.join(p.names.key_stem() + ".pem"));
        let subject_key = me.public_key().clone();
        keys.insert(role(p.role), me);
        let issuer_der = p.issuer.map(|r| certs[&role(r)].0.clone());
        let signer = keys.get_mut(&role(p.issuer.unwrap_or(p.role))).unwrap();
        let der = super::issue(
            signer,
            &IssueRequest {
                profile: p.profile,
                subject: hab4::subject(p.role, kt, true).unwrap(),
                subject_key,
                issuer: match &issuer_der {
                    None => Issuer::SelfSigned,
                    Some(d) => Issuer::Certificate(d),
                },
                scheme: kt.scheme(),
                serial: match p.serial {
                    Some(n) => super::serial_from_u64(n),
                    None => hab4::ca1_serial(),
                },
                validity: Validity::days_from_now(hab4::validity_days(10)),
            },
        )
        .unwrap_or_else(|e| panic!("{}: {e}", p.names.common_name));
        let pem = d.join(p.names.pem());
        write_pem(&pem, &der);
        certs.insert(role(p.role), (der, pem));
    }
    let pem = |r: Role| s(&certs[&role(r)].1).to_string();
    let sig = match kt {
        KeyType::Rsa(_) => "sha256WithRSAEncryption",
        KeyType::Ec(_) => "ecdsa-with-SHA256",
    };
    for i in 1..=2 {
        let out = openssl(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            &pem(Role::Ca),
            &pem(Role::Srk(i)),
        ]);
        assert!(out.contains(": OK"), "{out}");
        for leaf in [Role::Csf(i), Role::Img(i)] {
            let out = openssl(&[
                "verify",
                "-x509_strict",
                "-CAfile",
                &pem(Role::Ca),
                "-untrusted",
                &pem(Role::Srk(i)),
                &pem(leaf),
            ]);
            assert!(out.contains(": OK"), "{out}");
            let text = openssl(&["x509", "-in", &pem(leaf), "-noout", "-text"]);
            assert!(
                text.contains(&format!("Signature Algorithm: {sig}")),
                "{text}"
            );
        }
    }
    // srktool takes the SRKs and flags them as CAs; spsdk builds the identical table.
    let (table, fuse) = (d.join("SRK_table.bin"), d.join("SRK_fuse.bin"));
    run_ok(
        Command::new(oracle("srktool"))
            .args([
                "-h",
                "4",
                "-d",
                "sha256",
                "-f",
                "1",
                "-t",
                s(&table),
                "-e",
                s(&fuse),
            ])
            .args([
                "-c",
                &format!("{},{}", pem(Role::Srk(1)), pem(Role::Srk(2))),
            ]),
    );
    let table = std::fs::read(table).unwrap();
    assert_eq!(std::fs::read(fuse).unwrap().len(), 32);
    assert_eq!(table[0], 0xd7);
    assert_eq!(table[4 + 7], 0x80, "SRK CA flag");
    let spsdk = d.join("spsdk_table.bin");
    run_ok(
        Command::new(oracle("nxpcrypto"))
            .args(["rot", "export", "-f", "mimxrt1060"])
            .args(["-k", &pem(Role::Srk(1)), "-k", &pem(Role::Srk(2))])
            .args(["-o", s(&spsdk)]),
    );
    assert_eq!(std::fs::read(spsdk).unwrap(), table, "spsdk vs srktool");
}

#[test]
fn hab4_tree_with_ec_file_keys_verifies_and_srktool_accepts() {
    hab4_tree(KeyAlgorithm::EcP256);
}

#[test]
fn hab4_tree_with_rsa_file_keys_verifies_and_srktool_accepts() {
    hab4_tree(KeyAlgorithm::Rsa2048);
}

/// (label, cert_create option) of the TBBR keys; images as (file, option).
const TBBR_KEYS: [(&str, &str); 6] = [
    ("rot", "--rot-key"),
    ("tw", "--trusted-world-key"),
    ("ntw", "--non-trusted-world-key"),
    ("soc", "--soc-fw-key"),
    ("tos", "--tos-fw-key"),
    ("nt", "--nt-fw-key"),
];
const TBBR_IMAGES: [(&str, &str); 4] = [
    ("bl2.bin", "--tb-fw"),
    ("bl31.bin", "--soc-fw"),
    ("bl32.bin", "--tos-fw"),
    ("bl33.bin", "--nt-fw"),
];

fn tbbr_chain(alg: KeyAlgorithm) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut keys: HashMap<String, FileSigner> = TBBR_KEYS
        .iter()
        .map(|(l, _)| (l.to_string(), file_key(alg, &d.join(format!("{l}.pem")))))
        .collect();
    let mut hashes = Vec::new();
    for (i, (name, _)) in TBBR_IMAGES.iter().enumerate() {
        let bytes: Vec<u8> = (0..1000 + 300 * i).map(|j| (j * 7 + i) as u8).collect();
        std::fs::write(d.join(name), &bytes).unwrap();
        hashes.push(Some(HashAlg::Sha256.digest(&bytes)));
    }
    let req = ChainRequest {
        keys: KeyLabels {
            rot: "rot".into(),
            trusted_world: "tw".into(),
            non_trusted_world: "ntw".into(),
            soc_fw: "soc".into(),
            tos_fw: Some("tos".into()),
            nt_fw: "nt".into(),
        },
        images: ImageHashes {
            tb_fw: hashes[0].clone(),
            soc_fw: hashes[1].clone(),
            tos_fw: hashes[2].clone(),
            nt_fw: hashes[3].clone(),
            ..ImageHashes::default()
        },
        trusted_nv_counter: 3,
        non_trusted_nv_counter: 7,
        hash: HashAlg::Sha256,
        validity: Validity::days_from_now(tbbr::VALIDITY_DAYS),
    };
    let pending = tbbr::prepare_chain(&req, |l| {
        keys.get(l)
            .map(|k| k.public_key().clone())
            .ok_or_else(|| format!("no key file {l:?}"))
    })
    .unwrap();
    let ours: Vec<(CertKind, Vec<u8>)> = pending
        .into_iter()
        .map(|c| {
            let signer = keys.get_mut(&c.signer).unwrap();
            let issued = c.sign(signer).unwrap();
            (issued.kind, issued.der)
        })
        .collect();
    assert_eq!(
        ours.iter().map(|c| c.0).collect::<Vec<_>>(),
        CertKind::ALL.to_vec()
    );
    // openssl: each certificate verifies with the key it carries.
    let odir = d.join("ours");
    std::fs::create_dir(&odir).unwrap();
    for (kind, der) in &ours {
        let p = odir.join(kind.file_name());
        std::fs::write(&p, der).unwrap();
        let pem = p.with_extension("pem");
        write_pem(&pem, der);
        let out = openssl(&[
            "verify",
            "-ignore_critical",
            "-partial_chain",
            "-CAfile",
            s(&pem),
            s(&pem),
        ]);
        assert!(out.contains(": OK"), "{}: {out}", kind.common_name());
    }
    // cert_create, on the same key files and images, writes the same certificates but
    // for serials, validity dates and signature values.
    let cdir = d.join("theirs");
    std::fs::create_dir(&cdir).unwrap();
    let mut cmd = Command::new(oracle("cert_create"));
    cmd.current_dir(d).args([
        "-n",
        "-s",
        "sha256",
        "--tfw-nvctr",
        "3",
        "--ntfw-nvctr",
        "7",
    ]);
    if !alg.is_rsa() {
        cmd.args(["-a", "ecdsa"]);
    }
    for (label, opt) in TBBR_KEYS {
        cmd.arg(opt).arg(format!("{label}.pem"));
    }
    for (name, opt) in TBBR_IMAGES {
        cmd.arg(opt).arg(name);
    }
    for k in CertKind::ALL {
        cmd.arg(k.option()).arg(cdir.join(k.file_name()));
    }
    run_ok(&mut cmd);
    for (kind, der) in &ours {
        let a = Certificate::from_der(der).unwrap();
        let b =
            Certificate::from_der(&std::fs::read(cdir.join(kind.file_name())).unwrap()).unwrap();
        let (ta, tb) = (&a.tbs_certificate, &b.tbs_certificate);
        let what = kind.common_name();
        assert_eq!(ta.signature, tb.signature, "{what}: signature algorithm");
        assert_eq!(a.signature_algorithm, b.signature_algorithm, "{what}");
        assert_eq!(
            ta.issuer.to_der().unwrap(),
            tb.issuer.to_der().unwrap(),
            "{what}"
        );
        assert_eq!(
            ta.subject.to_der().unwrap(),
            tb.subject.to_der().unwrap(),
            "{what}"
        );
        assert_eq!(
            ta.subject_public_key_info, tb.subject_public_key_info,
            "{what}"
        );
        assert_eq!(ta.extensions, tb.extensions, "{what}: extensions");
    }
    // fiptool packs ours and gives each back byte for byte.
    let fip = d.join("fip.bin");
    let mut cmd = Command::new(oracle("fiptool"));
    cmd.arg("create");
    for (name, opt) in TBBR_IMAGES {
        cmd.arg(opt).arg(d.join(name));
    }
    for (kind, _) in &ours {
        cmd.arg(kind.option()).arg(odir.join(kind.file_name()));
    }
    run_ok(cmd.arg(&fip));
    let un = d.join("unpacked");
    std::fs::create_dir(&un).unwrap();
    run_ok(
        Command::new(oracle("fiptool"))
            .current_dir(&un)
            .args(["unpack", "--force", s(&fip)]),
    );
    assert_eq!(
        std::fs::read(un.join("trusted-key-cert.bin")).unwrap(),
        ours[0].1
    );
    assert_eq!(std::fs::read(un.join("nt-fw-cert.bin")).unwrap(), ours[7].1);
}

#[test]
fn tbbr_chain_with_ec_file_keys_matches_cert_create() {
    tbbr_chain(KeyAlgorithm::EcP256);
}

#[test]
fn tbbr_chain_with_rsa_file_keys_matches_cert_create() {
    tbbr_chain(KeyAlgorithm::Rsa2048);
}

/// The RSASSA-PSS AlgorithmIdentifier we write is byte for byte the one `openssl req`
/// writes with salt length = digest length, for each hash; and a PSS certificate signed
/// with a file key verifies under openssl's strict checks.
#[test]
fn pss_algorithm_identifier_is_openssls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = d.join("k.pem");
    let mut signer = file_key(KeyAlgorithm::Rsa2048, &key);
    let public = signer.public_key().clone();
    for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        let md = format!("-{}", h.name().replace('-', "").to_lowercase());
        let cert = d.join(format!("openssl{md}.der"));
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            s(&key),
            &md,
            "-subj",
            "/CN=pss",
            "-days",
            "1",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
            "-outform",
            "DER",
            "-out",
            s(&cert),
        ]);
        let theirs = Certificate::from_der(&std::fs::read(&cert).unwrap()).unwrap();
        let ours = super::signer::signature_algorithm(SignScheme::RsaPss(h)).unwrap();
        assert_eq!(
            hex::encode(ours.to_der().unwrap()),
            hex::encode(theirs.signature_algorithm.to_der().unwrap()),
            "{}",
            h.name()
        );
        let der = super::issue(
            &mut signer,
            &IssueRequest {
                profile: super::Profile::Ca,
                subject: super::common_name("PSS CA").unwrap(),
                subject_key: public.clone(),
                issuer: Issuer::SelfSigned,
                scheme: SignScheme::RsaPss(h),
                serial: super::random_serial(),
                validity: Validity::days_from_now(1),
            },
        )
        .unwrap();
        let pem = d.join(format!("ours{md}.pem"));
        write_pem(&pem, &der);
        let out = openssl(&["verify", "-x509_strict", "-CAfile", s(&pem), s(&pem)]);
        assert!(out.contains(": OK"), "{out}");
    }
}
