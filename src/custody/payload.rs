//! The secret the shares carry, laid out as yubihsm-setup and yubihsm-manager lay it out
//! (yubihsm-manager `src/hsm_operations/wrap.rs`, `split_wrap_key`): the wrap key's object
//! id (2 bytes, big-endian) ‖ domains (2, big-endian) ‖ capabilities (8) ‖ delegated
//! capabilities (8) ‖ the AES key (16, 24 or 32 bytes; yubihsm-setup always 32).
//! Capabilities are the device's 64-bit masks, big-endian (yubihsmrs writes capability
//! byte k of the protocol at position 7−k).
//!
//! Every backend's shares use this layout: on PKCS#11 and the rehearsal token the id is
//! the wrap key's two-byte CKA_ID and the YubiHSM fields are zero.

use zeroize::Zeroizing;

use crate::hsm::WrapKeySpec;
use crate::secret::Secret;

/// Bytes before the key.
pub const PREFIX_LEN: usize = 2 + 2 + 8 + 8;

/// Why rebuilt share data is not a wrap key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rebuilt secret has this many bytes: not the prefix plus an AES key.
    #[error(
        "the rebuilt secret has {0} bytes; a wrap key's has {PREFIX_LEN} bytes of object \
         id, domains and capabilities, then a 16-, 24- or 32-byte AES key"
    )]
    Length(usize),
}

/// The secret to split: the spec's id, domains and capabilities, then the key.
pub fn encode(spec: &WrapKeySpec, key: &Secret) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(PREFIX_LEN + key.len()));
    out.extend_from_slice(&spec.id.to_be_bytes());
    out.extend_from_slice(&spec.domains.to_be_bytes());
    out.extend_from_slice(&spec.capabilities.to_be_bytes());
    out.extend_from_slice(&spec.delegated_capabilities.to_be_bytes());
    out.extend_from_slice(key.expose());
    out
}

/// Read a rebuilt secret back into a spec (labelled `label`: labels are not in the
/// shares) and the key.
pub fn decode(secret: &[u8], label: &str) -> Result<(WrapKeySpec, Secret), Error> {
    let key_len = secret.len().wrapping_sub(PREFIX_LEN);
    if secret.len() < PREFIX_LEN || ![16, 24, 32].contains(&key_len) {
        return Err(Error::Length(secret.len()));
    }
    let be16 = |at: usize| u16::from_be_bytes([secret[at], secret[at + 1]]);
    let be64 = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&secret[at..at + 8]);
        u64::from_be_bytes(b)
    };
    let spec = WrapKeySpec {
        label: label.to_string(),
        id: be16(0),
        domains: be16(2),
        capabilities: be64(4),
        delegated_capabilities: be64(12),
    };
    Ok((spec, Secret::new(secret[PREFIX_LEN..].to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_yubihsm_manager() {
        let spec = WrapKeySpec {
            label: "w".into(),
            id: 0x0010,
            domains: 0x0001,
            // export-wrapped (byte 1, 0x10) and import-wrapped (byte 1, 0x20)
            capabilities: 0x0000_0000_0000_3000,
            // exportable-under-wrap (byte 2, 0x01)
            delegated_capabilities: 0x0000_0000_0001_0000,
        };
        let key = Secret::new(vec![0xab; 32]);
        let bytes = encode(&spec, &key);
        let mut want = vec![0x00, 0x10, 0x00, 0x01];
        want.extend([0, 0, 0, 0, 0, 0, 0x30, 0x00]);
        want.extend([0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        want.extend([0xab; 32]);
        assert_eq!(bytes.as_slice(), want.as_slice());
        let (back, k) = decode(&bytes, "w").unwrap();
        assert_eq!(back, spec);
        assert_eq!(k, key);
        assert!(decode(&bytes[..40], "w").is_err());
        assert!(decode(&[0u8; 10], "w").is_err());
    }
}
