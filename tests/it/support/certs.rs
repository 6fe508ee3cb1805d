//! Helpers for the pki tests: a logged-in rehearsal token (sim), key files made by
//! openssl and imported (so cert_create can use the very same keys), openssl verdicts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use officiant::pki::hab4::{self, KeyType, Role};
use officiant::pki::{self, IssueRequest, Issuer, Validity};

use officiant::hsm::{self, Token, UserType};
use officiant::keys::{KeyAlgorithm, PrivateKey, PublicKey, SignError};
use officiant::pki::tbbr::{self, ChainRequest, Issued};
use officiant::secret::Secret;
use officiant::signing::TokenSigner;

/// A fresh, initialized rehearsal token in `dir`, user logged in.
pub fn sim_token(dir: &Path) -> Box<dyn Token> {
    let mut t = hsm::open(&hsm::BackendUri::Sim(dir.to_path_buf()), None).unwrap();
    t.init_token(
        "pki-tests",
        &Secret::from_string("pki-so-pin-1".into()),
        &Secret::from_string("pki-user-pin-1".into()),
    )
    .unwrap();
    t.login(
        UserType::User,
        &Secret::from_string("pki-user-pin-1".into()),
    )
    .unwrap();
    t
}

/// The key pair labelled `label` on `t`, to sign with.
pub fn key<'t>(t: &'t mut dyn Token, label: &str) -> TokenSigner<'t> {
    TokenSigner::open(t, label, None).unwrap_or_else(|e| panic!("key {label:?}: {e}"))
}

/// The TBBR chain signed by the keys on `t` that `req` names (as the `issue-tbbr` step
/// does it).
pub fn issue_chain(t: &mut dyn Token, req: &ChainRequest) -> Result<Vec<Issued>, pki::Error> {
    let mut out = Vec::new();
    for cert in tbbr::prepare_chain(req, |l| t.public_key(l))? {
        let mut key = TokenSigner::open(t, &cert.signer, None).map_err(|e| pki::Error::Key {
            role: cert.kind.common_name().into(),
            source: SignError::key(&cert.signer, e),
        })?;
        out.push(cert.sign(&mut key)?);
    }
    Ok(out)
}

/// Make a private key file with openssl (what an operator would import).
pub fn openssl_key(alg: KeyAlgorithm, path: &Path) {
    let p = path.to_str().unwrap();
    let args: Vec<String> = match alg.curve() {
        Some(c) => {
            let name = match c {
                officiant::keys::Curve::P384 => "P-384",
                officiant::keys::Curve::P521 => "P-521",
                _ => "P-256",
            };
            ["genpkey", "-algorithm", "EC", "-pkeyopt"]
                .iter()
                .map(|s| s.to_string())
                .chain([format!("ec_paramgen_curve:{name}"), "-out".into(), p.into()])
                .collect()
        }
        None => ["genpkey", "-algorithm", "RSA", "-pkeyopt"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                format!("rsa_keygen_bits:{}", alg.rsa_bits().unwrap()),
                "-out".into(),
                p.into(),
            ])
            .collect(),
    };
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    openssl(&a);
}

/// Import a key file onto the token.
pub fn import(t: &mut dyn Token, path: &Path, label: &str, id: &[u8]) -> PublicKey {
    let k = PrivateKey::from_bytes(&std::fs::read(path).unwrap(), None).unwrap();
    t.import_key(
        &k,
        &crate::support::label(label),
        &crate::support::object_id(id),
    )
    .unwrap()
}

pub struct Tree {
    pub dir: tempfile::TempDir,
    /// role → (PEM path, DER path, serial)
    pub certs: HashMap<String, (PathBuf, PathBuf)>,
    pub key_type: KeyType,
    pub srk_ca: bool,
}

pub fn role_key(r: Role) -> String {
    format!("{r:?}")
}

/// Generate every key on `token` and issue the tree the way hab4_pki_tree.sh orders it.
pub fn issue_tree(token: &mut dyn Token, alg: KeyAlgorithm, num_srk: u8, srk_ca: bool) -> Tree {
    let kt = KeyType::of_algorithm(alg);
    let dir = tempfile::tempdir().unwrap();
    let mut ders: HashMap<String, Vec<u8>> = HashMap::new();
    let mut certs = HashMap::new();
    for (n, p) in hab4::plan(num_srk, kt, srk_ca)
        .unwrap()
        .into_iter()
        .enumerate()
    {
        let label = p.names.common_name.clone();
        let subject_key = token
            .generate_key(
                alg,
                &crate::support::label(&label),
                &crate::support::object_id(&[0x10, n as u8]),
            )
            .unwrap();
        let (issuer_label, issuer_der) = match p.issuer {
            None => (label.clone(), None),
            Some(r) => (
                hab4::names(r, kt, srk_ca).unwrap().common_name,
                Some(ders[&role_key(r)].clone()),
            ),
        };
        let serial = match p.serial {
            Some(s) => pki::serial_from_u64(s),
            None => hab4::ca1_serial(),
        };
        let der = pki::issue(
            &mut key(token, &issuer_label),
            &IssueRequest {
                profile: p.profile,
                subject: hab4::subject(p.role, kt, srk_ca).unwrap(),
                subject_key,
                issuer: match &issuer_der {
                    None => Issuer::SelfSigned,
                    Some(d) => Issuer::Certificate(d),
                },
                scheme: kt.scheme(),
                serial,
                validity: Validity::days_from_now(hab4::validity_days(10)),
            },
        )
        .unwrap_or_else(|e| panic!("issuing {label}: {e}"));
        let pem_path = dir.path().join(p.names.pem());
        let der_path = dir.path().join(p.names.der());
        std::fs::write(&pem_path, pki::to_pem(&der)).unwrap();
        std::fs::write(&der_path, &der).unwrap();
        ders.insert(role_key(p.role), der);
        certs.insert(role_key(p.role), (pem_path, der_path));
    }
    Tree {
        dir,
        certs,
        key_type: kt,
        srk_ca,
    }
}

impl Tree {
    pub fn pem(&self, r: Role) -> &str {
        self.certs[&role_key(r)].0.to_str().unwrap()
    }
    pub fn text(&self, r: Role) -> String {
        x509_text(&self.certs[&role_key(r)].1)
    }
}

/// `openssl ARGS…`, returning stdout; panics with stderr on failure.
pub fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl x509 -text` of a DER file.
pub fn x509_text(der_path: &Path) -> String {
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        der_path.to_str().unwrap(),
        "-noout",
        "-text",
    ])
}

/// The lines of one extension block in `openssl x509 -text` output: the header line
/// (with ", critical" or not) and the value lines below it.
pub fn extension_block(text: &str, name: &str) -> Option<(bool, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let i = lines.iter().position(|l| {
        let t = l.trim();
        t.starts_with(name) && t[name.len()..].starts_with(':')
    })?;
    let critical = lines[i].contains("critical");
    let indent = lines[i].len() - lines[i].trim_start().len();
    let mut body = Vec::new();
    for l in &lines[i + 1..] {
        let ind = l.len() - l.trim_start().len();
        if ind <= indent || l.trim().is_empty() {
            break;
        }
        body.push(l.trim());
    }
    Some((critical, body.join("\n")))
}

/// Names of all X509v3 extensions in `openssl x509 -text` output, in order.
pub fn extension_names(text: &str) -> Vec<String> {
    let mut in_ext = false;
    let mut out = Vec::new();
    let mut indent = 0;
    for l in text.lines() {
        if l.trim() == "X509v3 extensions:" {
            in_ext = true;
            indent = l.len() - l.trim_start().len() + 4;
            continue;
        }
        if in_ext {
            let ind = l.len() - l.trim_start().len();
            if ind < indent {
                break;
            }
            if ind == indent {
                if let Some((n, _)) = l.trim().split_once(':') {
                    out.push(n.to_string());
                }
            }
        }
    }
    out
}
