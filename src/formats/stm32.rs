//! STM32MP public key hashes burned into OTP: the MP15 PKH (SHA-256 of X‖Y) and the
//! MP13/MP25 key hash table and its hash (PKHTH). The image headers that embed these
//! live in `stm32_image.rs`. Pure: public keys in, hashes out; no I/O.

use sha2::{Digest, Sha256};

use crate::keys::{Curve, PublicKey};

/// The MP13/MP25 authentication extension holds at most eight keys.
pub const MAX_KEYS: usize = 8;

/// Why a key cannot go into an STM32MP key hash (PKH or PKHTH).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// One key is unfit (not P-256 or brainpoolP256t1).
    #[error("key {}: {msg}", index + 1)]
    Key {
        /// The key's 0-based position in the caller's list (messages count from 1).
        index: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// The table would hold this many keys, outside 1 to [`MAX_KEYS`].
    #[error("a key hash table holds 1 to 8 keys, got {0}")]
    Count(usize),
}

impl Error {
    /// The 0-based position of the key at fault, for a caller that names its own file.
    pub fn key_index(&self) -> Option<usize> {
        match self {
            Error::Key { index, .. } => Some(*index),
            Error::Count(_) => None,
        }
    }
}

/// The ROM's algorithm number: 1 = P-256, 2 = brainpoolP256t1.
pub fn algorithm(key: &PublicKey) -> Result<u32, String> {
    match key {
        PublicKey::Ec {
            curve: Curve::P256, ..
        } => Ok(1),
        PublicKey::Ec {
            curve: Curve::BrainpoolP256t1,
            ..
        } => Ok(2),
        other => Err(format!(
            "{} key: STM32MP keys are EC P-256 or brainpoolP256t1",
            other.describe()
        )),
    }
}

/// X‖Y, big-endian, 64 bytes.
fn xy(key: &PublicKey) -> Result<Vec<u8>, String> {
    algorithm(key)?;
    let (x, y) = key.ec_xy().ok_or_else(|| "not an EC key".to_string())?;
    Ok([x, y].concat())
}

/// STM32MP15 PKH: SHA-256(X‖Y).
pub fn pkh_mp15(key: &PublicKey) -> Result<[u8; 32], Error> {
    let xy = xy(key).map_err(|msg| Error::Key { index: 0, msg })?;
    Ok(Sha256::digest(xy).into())
}

/// One table entry: SHA-256(u32le(algorithm) ‖ X ‖ Y).
pub fn key_hash(key: &PublicKey) -> Result<[u8; 32], String> {
    let alg = algorithm(key)?;
    let mut h = Sha256::new();
    h.update(alg.to_le_bytes());
    h.update(xy(key)?);
    Ok(h.finalize().into())
}

/// The key hash table (32 bytes per key, in order), as the v2 header embeds it.
pub fn key_hash_table(keys: &[PublicKey]) -> Result<Vec<u8>, Error> {
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(Error::Count(keys.len()));
    }
    let mut table = Vec::with_capacity(32 * keys.len());
    for (index, k) in keys.iter().enumerate() {
        table.extend_from_slice(&key_hash(k).map_err(|msg| Error::Key { index, msg })?);
    }
    Ok(table)
}

/// PKHTH, the OTP value: SHA-256 of the key hash table.
pub fn pkhth(keys: &[PublicKey]) -> Result<[u8; 32], Error> {
    Ok(Sha256::digest(key_hash_table(keys)?).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_curves_are_checked() {
        assert_eq!(pkhth(&[]).unwrap_err(), Error::Count(0));
        let rsa = PublicKey::rsa(&[0xC1; 256], &[1, 0, 1]).unwrap();
        assert_eq!(pkh_mp15(&rsa).unwrap_err().key_index(), Some(0));
    }
}
