//! The backup's index, `manifest.json`: which keys, in which files, under which wrap key.
//! Nothing in it is secret: labels, ids, algorithms, public keys and their SHA-256, the
//! wrap key's description and its 3-byte check value. It is written before the key files
//! and holds nothing that changes between attempts, so an interrupted backup resumes by
//! finding the same manifest.

use std::path::Path;

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};

use crate::hsm::{CheckValue, WrapFormat, WrapKeySpec};
use crate::keys::PublicKey;

/// The manifest's file name in a backup directory.
pub const FILE: &str = "manifest.json";
/// The format this Officiant writes and reads.
pub const VERSION: u32 = 1;
/// How `check_value` was computed (see `crate::hsm::wrap`).
pub const CHECK_VALUE_METHOD: &str = "first 3 bytes of AES-ECB(wrap key, 16 zero bytes)";

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read, or a field is malformed; the message names the field.
    #[error("{path}: {message}")]
    Bad {
        /// The manifest file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole manifest, as `manifest.json` holds it (pretty JSON, unknown fields refused).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version: [`VERSION`].
    pub officiant_backup: u32,
    /// How every key file is wrapped.
    pub wrap_format: WrapFormat,
    /// The wrap key the files are wrapped under.
    pub wrap_key: WrapKeyEntry,
    /// One entry per backed-up key, labels and file names distinct.
    pub keys: Vec<KeyEntry>,
}

/// The wrap key as the manifest describes it (what the shares must rebuild).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrapKeyEntry {
    /// Its label on the token.
    pub label: String,
    /// Object id, 4 hex digits.
    pub id: String,
    /// YubiHSM domains bitmask (domain n = bit n − 1); 0 on other backends.
    pub domains: u16,
    /// YubiHSM capability bits as the device encodes them; 0 on other backends.
    pub capabilities: u64,
    /// YubiHSM delegated capability bits; 0 on other backends.
    pub delegated_capabilities: u64,
    /// 6 hex digits.
    pub check_value: String,
    /// How `check_value` was computed: [`CHECK_VALUE_METHOD`].
    pub check_value_method: String,
}

/// One backed-up key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// Its label on the token it came from (and goes back to).
    pub label: String,
    /// Object id, hex.
    pub id: String,
    /// `ec-p256`, `rsa-4096`, … (or the key's description where Officiant has no name).
    pub algorithm: String,
    /// DER SubjectPublicKeyInfo, base64.
    pub public_key: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo, hex: the fingerprint witnesses compare.
    pub public_key_sha256: String,
    /// The wrapped key's file name in the backup directory.
    pub file: String,
}

impl WrapKeyEntry {
    /// The entry for the wrap key `spec` with check value `kcv`.
    pub fn new(spec: &WrapKeySpec, kcv: &CheckValue) -> Self {
        WrapKeyEntry {
            label: spec.label.clone(),
            id: format!("{:04x}", spec.id),
            domains: spec.domains,
            capabilities: spec.capabilities,
            delegated_capabilities: spec.delegated_capabilities,
            check_value: hex::encode(kcv),
            check_value_method: CHECK_VALUE_METHOD.into(),
        }
    }
}

impl KeyEntry {
    /// The entry for a key with token label `label`, object id `id` (bytes, written as
    /// hex), public half `public`, wrapped in `file`.
    pub fn new(label: &str, id: &[u8], public: &PublicKey, file: &str) -> Self {
        KeyEntry {
            label: label.to_string(),
            id: hex::encode(id),
            algorithm: crate::keys::KeyAlgorithm::of(public)
                .map(|a| a.name().to_string())
                .unwrap_or_else(|| public.describe()),
            public_key: Base64::encode_string(&public.to_spki_der()),
            public_key_sha256: hex::encode(public.fingerprint()),
            file: file.to_string(),
        }
    }
}

impl Manifest {
    /// The manifest as written: pretty JSON and a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Read and check `dir/manifest.json`: every field well-formed, every public key
    /// matching its SHA-256, every file name a plain name in the directory.
    pub fn read(dir: &Path) -> Result<Manifest, Error> {
        let path = dir.join(FILE);
        let shown = path.display().to_string();
        let bad = |message: String| Error::Bad {
            path: shown.clone(),
            message,
        };
        let bytes = std::fs::read(&path).map_err(|e| bad(format!("cannot read: {}", e.kind())))?;
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("not an Officiant backup manifest ({e})")))?;
        if m.officiant_backup != VERSION {
            return Err(bad(format!(
                "officiant_backup is {}; this Officiant reads version {VERSION}",
                m.officiant_backup
            )));
        }
        m.wrap_key_id().map_err(&bad)?;
        m.check_value().map_err(&bad)?;
        for (i, k) in m.keys.iter().enumerate() {
            let at = |msg: &str| bad(format!("keys[{i}] ({}): {msg}", k.label));
            k.public().map_err(|e| at(&e))?;
            hex::decode(&k.id).map_err(|_| at("id is not hex"))?;
            let plain = Path::new(&k.file)
                .file_name()
                .is_some_and(|n| n == k.file.as_str())
                && !k.file.starts_with('.');
            if !plain {
                return Err(at("file is not a plain file name"));
            }
            if m.keys[..i]
                .iter()
                .any(|o| o.label == k.label || o.file == k.file)
            {
                return Err(at("label or file appears twice"));
            }
        }
        Ok(m)
    }

    /// The wrap key's object id, from its 4 hex digits.
    pub fn wrap_key_id(&self) -> Result<u16, String> {
        u16::from_str_radix(&self.wrap_key.id, 16)
            .ok()
            .filter(|_| self.wrap_key.id.len() == 4)
            .ok_or_else(|| format!("wrap_key.id {:?} is not 4 hex digits", self.wrap_key.id))
    }

    /// The wrap key's 3-byte check value, from its 6 hex digits.
    pub fn check_value(&self) -> Result<CheckValue, String> {
        let mut kcv = CheckValue::default();
        hex::decode_to_slice(&self.wrap_key.check_value, &mut kcv).map_err(|_| {
            format!(
                "wrap_key.check_value {:?} is not 6 hex digits",
                self.wrap_key.check_value
            )
        })?;
        Ok(kcv)
    }

    /// The wrap key as the manifest describes it.
    pub fn wrap_spec(&self) -> Result<WrapKeySpec, String> {
        Ok(WrapKeySpec {
            label: self.wrap_key.label.clone(),
            id: self.wrap_key_id()?,
            domains: self.wrap_key.domains,
            capabilities: self.wrap_key.capabilities,
            delegated_capabilities: self.wrap_key.delegated_capabilities,
        })
    }
}

impl KeyEntry {
    /// The recorded public key, checked against its recorded SHA-256.
    pub fn public(&self) -> Result<PublicKey, String> {
        let der = Base64::decode_vec(&self.public_key)
            .map_err(|_| "public_key is not base64".to_string())?;
        let pk = PublicKey::from_spki_der(&der).map_err(|e| format!("public_key: {e}"))?;
        if hex::encode(pk.fingerprint()) != self.public_key_sha256 {
            return Err("public_key does not match public_key_sha256".into());
        }
        Ok(pk)
    }

    /// The key's object id as bytes (checked to be hex when the manifest was read).
    pub fn id_bytes(&self) -> Vec<u8> {
        hex::decode(&self.id).unwrap_or_default()
    }
}
