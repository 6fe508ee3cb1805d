//! For the sign/verify tests: keys made by openssl, and a small in-test token that signs
//! digests with them, so the library's signing path runs without a backend. The files
//! it produces are judged by openssl and espsecure, never by this code.

use std::path::{Path, PathBuf};
use std::process::Command;

use officiant::hsm::{
    self, Capabilities, Label, NewObject, ObjectId, ObjectInfo, Selector, Token, TokenInfo,
    UserType,
};
use officiant::keys::{HashAlg, KeyAlgorithm, PrivateKey, PublicKey, SignScheme};
use officiant::secret::Secret;
use officiant::signing::SigningKey;

use crate::support::certs;

/// An openssl-made key pair in `dir`: `NAME.pem` (PKCS#8) and `NAME.pub.pem` (SPKI).
pub struct KeyFiles {
    pub private: PathBuf,
    pub public: PathBuf,
}

pub fn openssl_key(dir: &Path, name: &str, alg: &str) -> KeyFiles {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let alg = KeyAlgorithm::parse(alg).unwrap_or_else(|| panic!("no such test key type {alg}"));
    certs::openssl_key(alg, &private);
    let st = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("openssl");
    assert!(st.success());
    KeyFiles { private, public }
}

enum Soft {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
}

/// A token holding openssl-made keys. `lie` makes it return a wrong signature;
/// `lie_at` only for its nth signature (counted from 1).
pub struct SoftToken {
    keys: Vec<(String, Soft, PublicKey)>,
    pub lie: bool,
    pub lie_at: Option<usize>,
    pub signatures: usize,
}

impl SoftToken {
    pub fn new() -> Self {
        SoftToken {
            keys: Vec::new(),
            lie: false,
            lie_at: None,
            signatures: 0,
        }
    }

    pub fn add(&mut self, label: &str, files: &KeyFiles) {
        use p256::pkcs8::DecodePrivateKey;
        let pem = std::fs::read_to_string(&files.private).unwrap();
        let public = PublicKey::from_bytes(&std::fs::read(&files.public).unwrap()).unwrap();
        let soft = if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(&pem) {
            Soft::P256(k)
        } else if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(&pem) {
            Soft::P384(k)
        } else if let Ok(k) = p521::SecretKey::from_pkcs8_pem(&pem) {
            Soft::P521(p521::ecdsa::SigningKey::from_bytes(&k.to_bytes()).unwrap())
        } else {
            Soft::Rsa(Box::new(rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()))
        };
        self.keys.push((label.to_string(), soft, public));
    }
}

/// A test token holding one new openssl key of `alg` under `label`, and its files.
/// The signing service's key for the key pair labelled `label` on `token`.
pub fn signing_key<'t>(token: &'t mut dyn Token, label: &str) -> SigningKey<'t> {
    SigningKey::new(
        officiant::signing::TokenSigner::open(token, label, None)
            .unwrap_or_else(|e| panic!("{label:?}: {e}")),
    )
}

pub fn token_with_key(dir: &Path, label: &str, alg: &str) -> (KeyFiles, SoftToken) {
    let files = openssl_key(dir, "k", alg);
    let mut token = SoftToken::new();
    token.add(label, &files);
    (files, token)
}

fn unsupported<T>() -> hsm::Result<T> {
    Err(hsm::Error::Unsupported("not in the test token".into()))
}

impl Token for SoftToken {
    fn info(&mut self) -> hsm::Result<TokenInfo> {
        Ok(TokenInfo::default())
    }
    fn capabilities(&mut self) -> hsm::Result<Capabilities> {
        Ok(Capabilities::default())
    }
    fn init_token(&mut self, _: &str, _: &Secret, _: &Secret) -> hsm::Result<()> {
        unsupported()
    }
    fn login(&mut self, _: UserType, _: &Secret) -> hsm::Result<()> {
        Ok(())
    }
    fn logout(&mut self) -> hsm::Result<()> {
        Ok(())
    }
    fn change_pin(&mut self, _: UserType, _: &Secret, _: &Secret) -> hsm::Result<()> {
        unsupported()
    }
    fn generate_key(&mut self, _: KeyAlgorithm, _: &Label, _: &ObjectId) -> hsm::Result<PublicKey> {
        unsupported()
    }
    fn import_key(&mut self, _: &PrivateKey, _: &Label, _: &ObjectId) -> hsm::Result<PublicKey> {
        unsupported()
    }
    fn put_object(&mut self, _: &Label, _: &ObjectId, _: &NewObject) -> hsm::Result<()> {
        unsupported()
    }
    fn list_objects(&mut self) -> hsm::Result<Vec<ObjectInfo>> {
        Ok(Vec::new())
    }
    fn public_key(&mut self, label: &str) -> hsm::Result<PublicKey> {
        self.keys
            .iter()
            .find(|k| k.0 == label)
            .map(|k| k.2.clone())
            .ok_or(hsm::Error::NotFound {
                what: format!("key {label:?}"),
            })
    }
    fn sign(&mut self, label: &str, scheme: SignScheme, digest: &[u8]) -> hsm::Result<Vec<u8>> {
        use rsa::{Pkcs1v15Sign, Pss};
        use sha2::{Sha256, Sha384, Sha512};
        use signature::hazmat::PrehashSigner;
        self.signatures += 1;
        let soft = &self.keys.iter().find(|k| k.0 == label).unwrap().1;
        let err = |e: &dyn std::fmt::Display| hsm::Error::Backend(e.to_string());
        let mut sig = match (soft, scheme) {
            (Soft::P256(k), SignScheme::Ecdsa(_)) => {
                let s: p256::ecdsa::Signature = k.sign_prehash(digest).map_err(|e| err(&e))?;
                s.to_bytes().to_vec()
            }
            (Soft::P384(k), SignScheme::Ecdsa(_)) => {
                let s: p384::ecdsa::Signature = k.sign_prehash(digest).map_err(|e| err(&e))?;
                s.to_bytes().to_vec()
            }
            (Soft::P521(k), SignScheme::Ecdsa(_)) => {
                let s: p521::ecdsa::Signature = k.sign_prehash(digest).map_err(|e| err(&e))?;
                s.to_bytes().to_vec()
            }
            (Soft::Rsa(k), SignScheme::RsaPss(h)) => {
                let mut rng = rand_core::OsRng;
                match h {
                    HashAlg::Sha256 => {
                        k.sign_with_rng(&mut rng, Pss::new_with_salt::<Sha256>(32), digest)
                    }
                    HashAlg::Sha384 => {
                        k.sign_with_rng(&mut rng, Pss::new_with_salt::<Sha384>(48), digest)
                    }
                    HashAlg::Sha512 => {
                        k.sign_with_rng(&mut rng, Pss::new_with_salt::<Sha512>(64), digest)
                    }
                }
                .map_err(|e| err(&e))?
            }
            (Soft::Rsa(k), SignScheme::RsaPkcs1(h)) => match h {
                HashAlg::Sha256 => k.sign(Pkcs1v15Sign::new::<Sha256>(), digest),
                HashAlg::Sha384 => k.sign(Pkcs1v15Sign::new::<Sha384>(), digest),
                HashAlg::Sha512 => k.sign(Pkcs1v15Sign::new::<Sha512>(), digest),
            }
            .map_err(|e| err(&e))?,
            _ => return unsupported(),
        };
        if self.lie || self.lie_at == Some(self.signatures) {
            let last = sig.len() - 1;
            sig[last] ^= 1;
        }
        Ok(sig)
    }
    fn delete_object(&mut self, _: &Selector) -> hsm::Result<usize> {
        unsupported()
    }
}

/// Run openssl; true when it exits 0.
pub fn openssl_ok(args: &[&str]) -> bool {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    out.status.success()
}

/// DER ECDSA-Sig-Value from big-endian r‖s, built by openssl's own ASN.1 generator so
/// the conversion is not ours.
pub fn openssl_der_from_rs(dir: &Path, rs: &[u8]) -> PathBuf {
    let n = rs.len() / 2;
    let conf = dir.join("sig.conf");
    std::fs::write(
        &conf,
        format!(
            "asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x{}\ns=INTEGER:0x{}\n",
            hex::encode_upper(&rs[..n]),
            hex::encode_upper(&rs[n..])
        ),
    )
    .unwrap();
    let der = dir.join("sig.der");
    let _ = std::fs::remove_file(&der);
    assert!(openssl_ok(&[
        "asn1parse",
        "-genconf",
        conf.to_str().unwrap(),
        "-out",
        der.to_str().unwrap(),
        "-noout"
    ]));
    der
}

/// Flip one bit of the byte at `at` in a copy of `src`; return the copy's path.
pub fn flipped(src: &Path, at: usize, name: &str) -> PathBuf {
    let mut b = std::fs::read(src).unwrap();
    b[at] ^= 0x01;
    let p = src.with_file_name(name);
    std::fs::write(&p, b).unwrap();
    p
}
