//! Signing with a key on the device: ECDSA over a digest, and RSA PKCS#1 v1.5 over a
//! message the crate hashes itself (its RSA-PSS and digest PKCS#1 are broken: refused
//! through [`super::limits`]).

use super::algorithms::key_alg;
use super::limits;
use super::{device, Error, Result, YubiHsm};
use crate::keys::{self, KeyAlgorithm, SignScheme};

impl YubiHsm {
    /// Sign `digest` with the key labelled `label` in `scheme` (ECDSA only: see
    /// [`super::limits`]); returns r‖s.
    pub fn sign_with(&mut self, label: &str, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>> {
        let info = self.key_by_label(label)?;
        let alg = match info.algorithm {
            yubihsm::Algorithm::Asymmetric(a) => key_alg(a),
            _ => None,
        }
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "key {label:?}: algorithm {:?} is not one officiant signs with",
                info.algorithm
            ))
        })?;
        self.check_sign(alg, scheme)?;
        if digest.len() != scheme.hash().len() {
            return Err(Error::Refused(format!(
                "digest is {} bytes; {} needs {}",
                digest.len(),
                scheme.hash().name(),
                scheme.hash().len()
            )));
        }
        let der = self
            .client()?
            .sign_ecdsa_prehash_raw(info.object_id, digest)
            .map_err(device("sign ECDSA"))?;
        let curve = alg
            .curve()
            .ok_or_else(|| Error::Refused(format!("{alg} is not EC")))?;
        Ok(keys::ecdsa_to_fixed(curve, &der)?)
    }

    /// RSA PKCS#1 v1.5 over SHA-256 of `message` (the crate hashes it itself, so this
    /// cannot sign a precomputed digest; the crate marks it untested). The MockHsm has no
    /// RSA: refused there with the line naming the way that works.
    pub fn sign_pkcs1_sha256_message(&mut self, label: &str, message: &[u8]) -> Result<Vec<u8>> {
        let info = self.key_by_label(label)?;
        let alg = match info.algorithm {
            yubihsm::Algorithm::Asymmetric(a) => key_alg(a),
            _ => None,
        };
        match alg {
            Some(a) if a.is_rsa() => {}
            _ => {
                return Err(Error::Refused(format!(
                    "key {label:?} is not an RSA key; PKCS#1 v1.5 needs one"
                )))
            }
        }
        if self.is_mock() {
            return Err(Error::Unsupported(limits::mock_algorithm(
                alg.unwrap_or(KeyAlgorithm::Rsa2048),
            )));
        }
        let sig = self
            .client()?
            .sign_rsa_pkcs1v15_sha256(info.object_id, message)
            .map_err(device("sign PKCS#1 v1.5"))?;
        Ok(sig.as_ref().to_vec())
    }
}
