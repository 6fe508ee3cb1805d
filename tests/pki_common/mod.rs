//! A minimal in-memory Token for the pki tests (keys generated in software, exportable as
//! PEM so the vendor tools can use the same keys), plus openssl helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use officiant::hsm::{
    self, Capabilities, NewObject, ObjectInfo, Selector, Token, TokenInfo, UserType,
};
use officiant::keys::{HashAlg, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use officiant::secret::Secret;
use p256::pkcs8::EncodePrivateKey;
use rand_core::OsRng;
use sha2::{Sha256, Sha384, Sha512};

pub enum SoftKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
}

#[derive(Default)]
pub struct SoftToken {
    pub keys: BTreeMap<String, (SoftKey, PublicKey)>,
    pub objects: Vec<(String, NewObject)>,
}

fn pk_from_der(der: &[u8]) -> PublicKey {
    PublicKey::from_spki_der(der).unwrap()
}

impl SoftToken {
    pub fn key_pem(&self, label: &str) -> String {
        let (k, _) = &self.keys[label];
        let doc = match k {
            SoftKey::P256(s) => p256::SecretKey::from(s).to_pkcs8_pem(Default::default()),
            SoftKey::P384(s) => p384::SecretKey::from(s).to_pkcs8_pem(Default::default()),
            SoftKey::P521(s) => {
                let sk = p521::SecretKey::from_bytes(&s.to_bytes()).unwrap();
                sk.to_pkcs8_pem(Default::default())
            }
            SoftKey::Rsa(r) => r.to_pkcs8_pem(Default::default()),
        };
        doc.unwrap().to_string()
    }

    pub fn write_key(&self, label: &str, path: &Path) {
        std::fs::write(path, self.key_pem(label)).unwrap();
    }
}

impl Token for SoftToken {
    fn info(&mut self) -> hsm::Result<TokenInfo> {
        Ok(TokenInfo::default())
    }
    fn capabilities(&mut self) -> hsm::Result<Capabilities> {
        Ok(Capabilities::default())
    }
    fn init_token(&mut self, _: &str, _: &Secret, _: &Secret) -> hsm::Result<()> {
        Ok(())
    }
    fn login(&mut self, _: UserType, _: &Secret) -> hsm::Result<()> {
        Ok(())
    }
    fn logout(&mut self) -> hsm::Result<()> {
        Ok(())
    }
    fn change_pin(&mut self, _: UserType, _: &Secret, _: &Secret) -> hsm::Result<()> {
        Ok(())
    }
    fn generate_key(
        &mut self,
        alg: KeyAlgorithm,
        label: &str,
        _id: &[u8],
    ) -> hsm::Result<PublicKey> {
        use p256::pkcs8::EncodePublicKey;
        let (k, pk) = match alg {
            KeyAlgorithm::EcP256 => {
                let s = p256::ecdsa::SigningKey::random(&mut OsRng);
                let d = s.verifying_key().to_public_key_der().unwrap();
                (SoftKey::P256(s), pk_from_der(d.as_bytes()))
            }
            KeyAlgorithm::EcP384 => {
                let s = p384::ecdsa::SigningKey::random(&mut OsRng);
                let d = s.verifying_key().to_public_key_der().unwrap();
                (SoftKey::P384(s), pk_from_der(d.as_bytes()))
            }
            KeyAlgorithm::EcP521 => {
                let s = p521::ecdsa::SigningKey::random(&mut OsRng);
                let v = p521::ecdsa::VerifyingKey::from(&s);
                let pt = v.to_encoded_point(false);
                let pk = PublicKey::ec(officiant::keys::Curve::P521, pt.as_bytes()).unwrap();
                (SoftKey::P521(s), pk)
            }
            a => {
                let bits = a.rsa_bits().unwrap();
                let r = rsa::RsaPrivateKey::new(&mut OsRng, bits).unwrap();
                let d = r.to_public_key().to_public_key_der().unwrap();
                (SoftKey::Rsa(Box::new(r)), pk_from_der(d.as_bytes()))
            }
        };
        self.keys.insert(label.to_string(), (k, pk.clone()));
        Ok(pk)
    }
    fn import_key(&mut self, _: &PrivateKey, _: &str, _: &[u8]) -> hsm::Result<PublicKey> {
        Err(hsm::Error::Unsupported("import".into()))
    }
    fn put_object(&mut self, label: &str, _id: &[u8], object: &NewObject) -> hsm::Result<()> {
        self.objects.push((label.to_string(), object.clone()));
        Ok(())
    }
    fn list_objects(&mut self) -> hsm::Result<Vec<ObjectInfo>> {
        Ok(vec![])
    }
    fn public_key(&mut self, label: &str) -> hsm::Result<PublicKey> {
        self.keys
            .get(label)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| hsm::Error::NotFound {
                what: format!("key {label:?}"),
            })
    }
    fn sign(&mut self, label: &str, scheme: SignScheme, digest: &[u8]) -> hsm::Result<Vec<u8>> {
        use signature::hazmat::PrehashSigner;
        let (k, _) = self.keys.get(label).ok_or_else(|| hsm::Error::NotFound {
            what: format!("key {label:?}"),
        })?;
        let err = |e: String| hsm::Error::Backend(e);
        Ok(match (k, scheme) {
            (SoftKey::P256(s), SignScheme::Ecdsa(_)) => {
                let sig: p256::ecdsa::Signature =
                    s.sign_prehash(digest).map_err(|e| err(e.to_string()))?;
                sig.to_bytes().to_vec()
            }
            (SoftKey::P384(s), SignScheme::Ecdsa(_)) => {
                let sig: p384::ecdsa::Signature =
                    s.sign_prehash(digest).map_err(|e| err(e.to_string()))?;
                sig.to_bytes().to_vec()
            }
            (SoftKey::P521(s), SignScheme::Ecdsa(_)) => {
                let sig: p521::ecdsa::Signature =
                    s.sign_prehash(digest).map_err(|e| err(e.to_string()))?;
                sig.to_bytes().to_vec()
            }
            (SoftKey::Rsa(r), SignScheme::RsaPss(h)) => match h {
                HashAlg::Sha256 => {
                    r.sign_with_rng(&mut OsRng, rsa::Pss::new_with_salt::<Sha256>(32), digest)
                }
                HashAlg::Sha384 => {
                    r.sign_with_rng(&mut OsRng, rsa::Pss::new_with_salt::<Sha384>(48), digest)
                }
                HashAlg::Sha512 => {
                    r.sign_with_rng(&mut OsRng, rsa::Pss::new_with_salt::<Sha512>(64), digest)
                }
            }
            .map_err(|e| err(e.to_string()))?,
            (SoftKey::Rsa(r), SignScheme::RsaPkcs1(h)) => match h {
                HashAlg::Sha256 => r.sign(rsa::Pkcs1v15Sign::new::<Sha256>(), digest),
                HashAlg::Sha384 => r.sign(rsa::Pkcs1v15Sign::new::<Sha384>(), digest),
                HashAlg::Sha512 => r.sign(rsa::Pkcs1v15Sign::new::<Sha512>(), digest),
            }
            .map_err(|e| err(e.to_string()))?,
            _ => return Err(hsm::Error::Unsupported(scheme.name())),
        })
    }
    fn delete_object(&mut self, _: &Selector) -> hsm::Result<usize> {
        Ok(0)
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
