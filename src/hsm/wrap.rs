//! Wrap keys, as every backend sees them: the AES key that encrypts other keys for
//! backup, its public description, its check value, and the format a backend's wrapped
//! keys come in. The backup and restore flows live in `crate::custody`; this is what they
//! need from a token.
//!
//! Check value: the first 3 bytes of AES-ECB(key, 16 zero bytes), the banking "KCV" that
//! PKCS#11 defines as CKA_CHECK_VALUE for AES keys (SoftHSM computes and verifies it
//! itself). Three bytes tell a rebuilt key from a wrong one (a chance of 2^-24 to miss)
//! and say nothing useful about the key.

use aes::cipher::{BlockEncrypt, KeyInit};
use serde::{Deserialize, Serialize};

use super::{Error, Result};

/// Bytes of a check value.
pub const CHECK_VALUE_LEN: usize = 3;

/// A wrap key's check value (see the module docs).
pub type CheckValue = [u8; CHECK_VALUE_LEN];

/// The check value of an AES key of 16, 24 or 32 bytes.
pub fn check_value(key: &[u8]) -> Result<CheckValue> {
    let mut block = aes::Block::default();
    match key.len() {
        16 => aes::Aes128::new_from_slice(key).map(|c| c.encrypt_block(&mut block)),
        24 => aes::Aes192::new_from_slice(key).map(|c| c.encrypt_block(&mut block)),
        32 => aes::Aes256::new_from_slice(key).map(|c| c.encrypt_block(&mut block)),
        n => {
            return Err(Error::Refused(format!(
                "a wrap key is an AES key of 16, 24 or 32 bytes, not {n}"
            )))
        }
    }
    .map_err(|_| Error::Refused("invalid AES key length".into()))?;
    let mut kcv = [0u8; CHECK_VALUE_LEN];
    kcv.copy_from_slice(&block[..CHECK_VALUE_LEN]);
    Ok(kcv)
}

/// How a backend encodes a wrapped key. A backup restores only onto a backend whose
/// format is the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WrapFormat {
    /// RFC 5649 AES key wrap with padding (PKCS#11 CKM_AES_KEY_WRAP_PAD) of the private
    /// key's PKCS#8 DER: PKCS#11 tokens and the rehearsal token.
    Pkcs8AesKwp,
    /// YubiHSM 2 Export Wrapped: the 13-byte nonce, then the AES-CCM ciphertext of the
    /// object with its metadata (what yubihsm-shell's `get-wrapped` writes, base64).
    YubihsmAesCcm,
}

impl WrapFormat {
    /// The format's name in manifests and transcripts.
    pub fn name(self) -> &'static str {
        match self {
            WrapFormat::Pkcs8AesKwp => "pkcs8-aes-kwp",
            WrapFormat::YubihsmAesCcm => "yubihsm-aes-ccm",
        }
    }
}

/// A wrap key's id as a script's `key-id` and the CLI's `--id` write it: exactly 4 hex
/// digits (`"0200"`). `None` for anything else; the caller's message names its field.
pub fn parse_wrap_key_id(text: &str) -> Option<u16> {
    let hex4 = text.len() == 4 && text.chars().all(|c| c.is_ascii_hexdigit());
    hex4.then(|| u16::from_str_radix(text, 16).ok()).flatten()
}

/// A wrap key's public description: what the shares carry besides the key, and what a
/// transcript or manifest records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrapKeySpec {
    /// The wrap key's label.
    pub label: String,
    /// Object id (PKCS#11: CKA_ID, these two bytes big-endian).
    pub id: u16,
    /// YubiHSM only (zero elsewhere, and zero asks the backend for its defaults): the
    /// object's domains, capabilities and delegated capabilities as the device encodes
    /// them.
    pub domains: u16,
    /// YubiHSM: the key's capabilities, as the device encodes them.
    pub capabilities: u64,
    /// YubiHSM: what the keys it imports may be given, as the device encodes them.
    pub delegated_capabilities: u64,
}

impl WrapKeySpec {
    /// A spec with only a label and id: the backend chooses the rest.
    pub fn new(label: &str, id: u16) -> Self {
        WrapKeySpec {
            label: label.to_string(),
            id,
            domains: 0,
            capabilities: 0,
            delegated_capabilities: 0,
        }
    }
}

/// A wrap key found on a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrapKeyInfo {
    /// Its label, id and (YubiHSM) domains and capabilities.
    pub spec: WrapKeySpec,
    /// The key's check value where the token keeps one (PKCS#11 CKA_CHECK_VALUE, the
    /// rehearsal token, the object Officiant stores beside a YubiHSM wrap key).
    pub check_value: Option<CheckValue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_of_known_keys() {
        // AES-128 FIPS-197 C.1 key: ECB of the zero block is 0x66e94bd4…
        assert_eq!(check_value(&[0u8; 16]).unwrap(), [0x66, 0xe9, 0x4b]);
        // AES-256 with the zero key: 0xdc95c078…
        assert_eq!(check_value(&[0u8; 32]).unwrap(), [0xdc, 0x95, 0xc0]);
        assert!(check_value(&[0u8; 20]).is_err());
    }
}
