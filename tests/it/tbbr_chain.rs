//! TF-A TBBR certificates from token keys, compared field by field with Debian's
//! cert_create on the same keys and images, packed by fiptool, parsed and verified by
//! openssl.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use der::{Decode, Encode};
use officiant::hsm::Token;
use officiant::keys::{HashAlg, KeyAlgorithm};
use officiant::pki::tbbr::{self, CertKind, ChainRequest, ImageHashes, KeyLabels};
use officiant::pki::Validity;
use x509_cert::Certificate;

use crate::support;
use crate::support::certs::{extension_block, import, openssl, openssl_key, sim_token, x509_text};

const KEYS: [(&str, &str); 6] = [
    ("rot", "--rot-key"),
    ("tw", "--trusted-world-key"),
    ("ntw", "--non-trusted-world-key"),
    ("soc", "--soc-fw-key"),
    ("tos", "--tos-fw-key"),
    ("nt", "--nt-fw-key"),
];
const IMAGES: [(&str, &str, usize); 4] = [
    ("bl2.bin", "--tb-fw", 1000),
    ("bl31.bin", "--soc-fw", 2000),
    ("bl32.bin", "--tos-fw", 500),
    ("bl33.bin", "--nt-fw", 3000),
];

struct Setup {
    dir: tempfile::TempDir,
    _sim: tempfile::TempDir,
    token: Box<dyn Token>,
}

fn setup(alg: KeyAlgorithm) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let sim = tempfile::tempdir().unwrap();
    let mut token = sim_token(sim.path());
    // Key files made by openssl, imported onto the token: cert_create reads the files,
    // Officiant signs on the token.
    for (i, (label, _)) in KEYS.iter().enumerate() {
        let path = dir.path().join(format!("{label}.pem"));
        openssl_key(alg, &path);
        import(token.as_mut(), &path, label, &[0x20, i as u8]);
    }
    for (i, (name, _, len)) in IMAGES.iter().enumerate() {
        let bytes: Vec<u8> = (0..*len).map(|j| (j * 7 + i * 13) as u8).collect();
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    Setup {
        dir,
        _sim: sim,
        token,
    }
}

fn image_hash(dir: &Path, name: &str, hash: HashAlg) -> Option<Vec<u8>> {
    let f = std::fs::File::open(dir.join(name)).unwrap();
    Some(tbbr::hash_image(hash, f).unwrap())
}

fn request(dir: &Path, with_tos: bool) -> ChainRequest {
    request_with(dir, with_tos, HashAlg::Sha256)
}

fn request_with(dir: &Path, with_tos: bool, hash: HashAlg) -> ChainRequest {
    ChainRequest {
        keys: KeyLabels {
            rot: "rot".into(),
            trusted_world: "tw".into(),
            non_trusted_world: "ntw".into(),
            soc_fw: "soc".into(),
            tos_fw: with_tos.then(|| "tos".into()),
            nt_fw: "nt".into(),
        },
        images: ImageHashes {
            tb_fw: image_hash(dir, "bl2.bin", hash),
            soc_fw: image_hash(dir, "bl31.bin", hash),
            tos_fw: with_tos
                .then(|| image_hash(dir, "bl32.bin", hash))
                .flatten(),
            nt_fw: image_hash(dir, "bl33.bin", hash),
            ..Default::default()
        },
        trusted_nv_counter: 3,
        non_trusted_nv_counter: 7,
        hash,
        validity: Validity::days_from_now(tbbr::VALIDITY_DAYS),
    }
}

fn ours(s: &mut Setup, with_tos: bool, hash: HashAlg) -> Vec<(CertKind, PathBuf)> {
    let req = request_with(s.dir.path(), with_tos, hash);
    let out = crate::support::certs::issue_chain(s.token.as_mut(), &req).unwrap();
    let odir = s.dir.path().join("ours");
    std::fs::create_dir_all(&odir).unwrap();
    out.into_iter()
        .map(|c| {
            let p = odir.join(c.kind.file_name());
            std::fs::write(&p, &c.der).unwrap();
            (c.kind, p)
        })
        .collect()
}

/// Run cert_create on the same key files and images. None when it is missing and skips
/// are allowed.
fn theirs(
    s: &Setup,
    alg: KeyAlgorithm,
    with_tos: bool,
    hash: HashAlg,
) -> Option<Vec<(CertKind, PathBuf)>> {
    let tool = support::oracle("cert_create")?;
    let d = s.dir.path();
    let cdir = d.join("theirs");
    std::fs::create_dir_all(&cdir).unwrap();
    let mut cmd = Command::new(tool);
    cmd.current_dir(d).arg("-n");
    if !alg.is_rsa() {
        cmd.args(["-a", "ecdsa"]);
    }
    let s_arg = match hash {
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
        HashAlg::Sha512 => "sha512",
    };
    cmd.args(["-s", s_arg, "--tfw-nvctr", "3", "--ntfw-nvctr", "7"]);
    for (label, opt) in KEYS {
        if label == "tos" && !with_tos {
            continue;
        }
        cmd.arg(opt).arg(format!("{label}.pem"));
    }
    for (name, opt, _) in IMAGES {
        if name == "bl32.bin" && !with_tos {
            continue;
        }
        cmd.arg(opt).arg(name);
    }
    let mut kinds = Vec::new();
    for k in CertKind::ALL {
        if matches!(k, CertKind::TosFwKey | CertKind::TosFwContent) && !with_tos {
            continue;
        }
        let p = cdir.join(k.file_name());
        cmd.arg(k.option()).arg(&p);
        kinds.push((k, p));
    }
    support::run_ok(&mut cmd);
    Some(kinds)
}

fn cert(p: &Path) -> Certificate {
    Certificate::from_der(&std::fs::read(p).unwrap()).unwrap()
}

fn span(c: &Certificate) -> Duration {
    let v = c.tbs_certificate.validity;
    v.not_after.to_unix_duration() - v.not_before.to_unix_duration()
}

/// Everything but serial, validity and signature values must be identical.
fn compare_with_cert_create(ours: &[(CertKind, PathBuf)], theirs: &[(CertKind, PathBuf)]) {
    assert_eq!(
        ours.iter().map(|c| c.0).collect::<Vec<_>>(),
        theirs.iter().map(|c| c.0).collect::<Vec<_>>()
    );
    for ((kind, a), (_, b)) in ours.iter().zip(theirs) {
        let (a, b) = (cert(a), cert(b));
        let (ta, tb) = (&a.tbs_certificate, &b.tbs_certificate);
        let what = kind.common_name();
        assert_eq!(ta.version, tb.version, "{what}: version");
        assert_eq!(ta.signature, tb.signature, "{what}: signature algorithm");
        assert_eq!(
            a.signature_algorithm, b.signature_algorithm,
            "{what}: outer algorithm"
        );
        assert_eq!(
            ta.issuer.to_der().unwrap(),
            tb.issuer.to_der().unwrap(),
            "{what}: issuer bytes"
        );
        assert_eq!(
            ta.subject.to_der().unwrap(),
            tb.subject.to_der().unwrap(),
            "{what}: subject bytes"
        );
        assert_eq!(
            ta.subject_public_key_info, tb.subject_public_key_info,
            "{what}: subject key"
        );
        assert_eq!(ta.extensions, tb.extensions, "{what}: extensions");
        assert_eq!(span(&a), span(&b), "{what}: validity length");
        // Both time encodings are the same type (UTCTime until 2049).
        assert_eq!(
            std::mem::discriminant(&ta.validity.not_after),
            std::mem::discriminant(&tb.validity.not_after)
        );
        assert!(ta.serial_number.as_bytes().len() <= 8 + 1);
        assert_ne!(ta.serial_number, tb.serial_number);
    }
}

fn openssl_checks(ours: &[(CertKind, PathBuf)]) {
    for (kind, p) in ours {
        let text = x509_text(p);
        let cn = kind.common_name();
        assert!(text.contains(&format!("Subject: CN = {cn}")), "{text}");
        assert!(text.contains(&format!("Issuer: CN = {cn}")), "{text}");
        let (crit, bc) = extension_block(&text, "X509v3 Basic Constraints").unwrap();
        assert!(!crit);
        assert_eq!(bc, "CA:FALSE");
        let tbbr: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("1.3.6.1.4.1.4128.2100."))
            .collect();
        let expected: &[&str] = match kind {
            CertKind::TrustedKey => &["1", "302", "303"],
            CertKind::TbFw => &["1", "201", "202", "203", "204"],
            CertKind::SocFwKey => &["1", "501"],
            CertKind::SocFwContent => &["1", "603", "604"],
            CertKind::TosFwKey => &["1", "901"],
            CertKind::TosFwContent => &["1", "1001", "1002", "1003", "1004"],
            CertKind::NtFwKey => &["2", "1101"],
            CertKind::NtFwContent => &["2", "1201", "1202"],
        };
        assert_eq!(tbbr.len(), expected.len(), "{cn}: {tbbr:?}");
        for (line, arc) in tbbr.iter().zip(expected) {
            assert_eq!(
                line.trim(),
                format!("1.3.6.1.4.1.4128.2100.{arc}: critical"),
                "{cn}"
            );
        }
        // Each certificate is signed by the key it carries: openssl verifies it with
        // itself as the (partial) trust anchor.
        let pem = p.with_extension("pem");
        openssl(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            p.to_str().unwrap(),
            "-out",
            pem.to_str().unwrap(),
        ]);
        let out = openssl(&[
            "verify",
            "-ignore_critical",
            "-partial_chain",
            "-CAfile",
            pem.to_str().unwrap(),
            pem.to_str().unwrap(),
        ]);
        assert!(out.contains(": OK"), "{cn}: {out}");
    }
    // The chain of keys: a key certificate's key extension is the key of the content
    // certificate below it.
    let get = |k: CertKind| cert(&ours.iter().find(|c| c.0 == k).unwrap().1);
    let key_ext = |c: &Certificate, arc: &str| {
        c.tbs_certificate
            .extensions
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.extn_id.to_string() == format!("1.3.6.1.4.1.4128.2100.{arc}"))
            .unwrap()
            .extn_value
            .as_bytes()
            .to_vec()
    };
    let spki = |c: &Certificate| c.tbs_certificate.subject_public_key_info.to_der().unwrap();
    let tk = get(CertKind::TrustedKey);
    assert_eq!(key_ext(&tk, "302"), spki(&get(CertKind::SocFwKey)));
    assert_eq!(key_ext(&tk, "303"), spki(&get(CertKind::NtFwKey)));
    assert_eq!(
        key_ext(&get(CertKind::SocFwKey), "501"),
        spki(&get(CertKind::SocFwContent))
    );
    assert_eq!(
        key_ext(&get(CertKind::NtFwKey), "1101"),
        spki(&get(CertKind::NtFwContent))
    );
    assert_eq!(spki(&tk), spki(&get(CertKind::TbFw)));
}

fn fiptool_packs(dir: &Path, ours: &[(CertKind, PathBuf)], with_tos: bool) {
    let Some(tool) = support::oracle("fiptool") else {
        return;
    };
    let fip = dir.join("fip.bin");
    let mut cmd = Command::new(&tool);
    cmd.arg("create");
    for (name, opt, _) in IMAGES {
        if name == "bl32.bin" && !with_tos {
            continue;
        }
        cmd.arg(opt).arg(dir.join(name));
    }
    for (k, p) in ours {
        cmd.arg(k.option()).arg(p);
    }
    cmd.arg(&fip);
    support::run_ok(&mut cmd);
    let info = support::run_ok(Command::new(&tool).arg("info").arg(&fip));
    for (k, p) in ours {
        let size = std::fs::metadata(p).unwrap().len();
        let line = info
            .lines()
            .find(|l| l.contains(&format!("cmdline=\"{}\"", k.option())))
            .unwrap_or_else(|| panic!("fiptool info lacks {}: {info}", k.option()));
        assert!(
            line.contains(&format!("size=0x{size:X},")),
            "{line} vs {size}"
        );
    }
    // Unpacked, every certificate comes back byte for byte.
    let un = dir.join("unpacked");
    std::fs::create_dir_all(&un).unwrap();
    support::run_ok(
        Command::new(&tool)
            .current_dir(&un)
            .args(["unpack", "--force"])
            .arg(&fip),
    );
    let unpacked = std::fs::read_dir(&un).unwrap().count();
    assert_eq!(unpacked, ours.len() + if with_tos { 4 } else { 3 });
    let tk = std::fs::read(un.join("trusted-key-cert.bin")).unwrap();
    assert_eq!(tk, std::fs::read(&ours[0].1).unwrap());
}

fn full_case(alg: KeyAlgorithm, with_tos: bool) {
    full_case_with(alg, with_tos, HashAlg::Sha256);
}

fn full_case_with(alg: KeyAlgorithm, with_tos: bool, hash: HashAlg) {
    let mut s = setup(alg);
    let o = ours(&mut s, with_tos, hash);
    assert_eq!(o.len(), if with_tos { 8 } else { 6 });
    openssl_checks(&o);
    if let Some(t) = theirs(&s, alg, with_tos, hash) {
        compare_with_cert_create(&o, &t);
    }
    fiptool_packs(s.dir.path(), &o, with_tos);
}

#[test]
fn ecdsa_p256_chain_matches_cert_create() {
    full_case(KeyAlgorithm::EcP256, true);
}

#[test]
fn ecdsa_chain_without_bl32_matches_cert_create() {
    full_case(KeyAlgorithm::EcP256, false);
}

#[test]
fn rsa_pss_chain_matches_cert_create() {
    full_case(KeyAlgorithm::Rsa2048, true);
}

#[test]
fn sha384_chain_matches_cert_create_dash_s_sha384() {
    full_case_with(KeyAlgorithm::EcP384, false, HashAlg::Sha384);
}

#[test]
fn rsa_with_sha384_is_refused_because_cert_create_fixes_the_pss_salt_at_32() {
    // cert_create -s sha384 writes RSASSA-PSS(sha384, salt 32); a token's PSS salt is
    // the hash length, so the honest answer is a refusal before anything is signed.
    let mut s = setup(KeyAlgorithm::Rsa2048);
    let req = request_with(s.dir.path(), false, HashAlg::Sha384);
    let e = crate::support::certs::issue_chain(s.token.as_mut(), &req).unwrap_err();
    assert!(e.to_string().contains("32-byte salt"), "{e}");
    if let Some(t) = theirs(&s, KeyAlgorithm::Rsa2048, false, HashAlg::Sha384) {
        let text = x509_text(&t[0].1);
        assert!(text.contains("Salt Length: 0x20"), "{text}");
        assert!(text.contains("Hash Algorithm: sha384"), "{text}");
    }
}

#[test]
fn missing_mandatory_image_is_refused_by_name() {
    let mut s = setup(KeyAlgorithm::EcP256);
    let mut req = request(s.dir.path(), false);
    req.images.soc_fw = None;
    let e = crate::support::certs::issue_chain(s.token.as_mut(), &req).unwrap_err();
    assert!(e.to_string().contains("BL31"), "{e}");
    let mut req = request(s.dir.path(), false);
    req.images.nt_fw = Some(vec![1, 2, 3]);
    let e = crate::support::certs::issue_chain(s.token.as_mut(), &req).unwrap_err();
    assert!(e.to_string().contains("BL33"), "{e}");
    let mut req = request(s.dir.path(), false);
    req.keys.soc_fw = "nope".into();
    let e = crate::support::certs::issue_chain(s.token.as_mut(), &req).unwrap_err();
    assert!(e.to_string().contains("\"nope\""), "{e}");
}
