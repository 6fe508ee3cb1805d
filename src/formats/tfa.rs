//! Arm TF-A trusted board boot: the ROTPK hash (`rotpk_sha256.bin`), SHA-256 of the ROT
//! key's DER SubjectPublicKeyInfo, exactly what
//! `openssl pkey -pubout -outform DER | openssl dgst -sha256 -binary` gives.
//! (TBBR certificates live in `pki/`.) Pure: a public key in, bytes out; no I/O.

use sha2::{Digest, Sha256};

use crate::keys::fitness::{self, Use};
use crate::keys::{HashAlg, PublicKey};

/// The ROTPK hash; with `digest_info`, behind the 19-byte SHA-256 DigestInfo header that
/// some platforms store (51 bytes in all). A key TF-A must not trust is refused.
pub fn rotpk_sha256(key: &PublicKey, digest_info: bool) -> Result<Vec<u8>, crate::keys::Error> {
    fitness::check(key, Use::TfaRotpk)?;
    let hash = Sha256::digest(key.to_spki_der());
    let mut out = Vec::with_capacity(51);
    if digest_info {
        out.extend_from_slice(&HashAlg::Sha256.digest_info_prefix());
    }
    out.extend_from_slice(&hash);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_info_is_a_prefix() {
        let k = PublicKey::rsa(&[0xC1; 256], &[1, 0, 1]).unwrap();
        let raw = rotpk_sha256(&k, false).unwrap();
        let wrapped = rotpk_sha256(&k, true).unwrap();
        assert_eq!(raw.len(), 32);
        assert_eq!(wrapped.len(), 51);
        assert_eq!(
            hex::encode(&wrapped[..19]),
            "3031300d060960864801650304020105000420"
        );
        assert_eq!(&wrapped[19..], &raw[..]);
    }
}
