//! What this device and the crate can do: the one table between our key algorithms and
//! the device's, the capabilities reported to the planner, and the checks of an algorithm
//! or signature scheme before a device call.

use yubihsm::{asymmetric, Capability};

use super::limits;
use super::{device, Error, Result, YubiHsm};
use crate::hsm::{Capabilities, WrapFormat};
use crate::keys::{HashAlg, KeyAlgorithm, PublicKey, SignScheme};

pub(super) fn sign_caps(alg: KeyAlgorithm) -> Capability {
    if alg.is_rsa() {
        Capability::SIGN_PKCS | Capability::SIGN_PSS
    } else {
        Capability::SIGN_ECDSA
    }
}

/// The device's name for each of our key algorithms: the one table (exhaustive, so a new
/// algorithm cannot be forgotten); [`key_alg`] reads it backwards.
pub(super) fn asym_alg(alg: KeyAlgorithm) -> asymmetric::Algorithm {
    match alg {
        KeyAlgorithm::EcP256 => asymmetric::Algorithm::EcP256,
        KeyAlgorithm::EcP384 => asymmetric::Algorithm::EcP384,
        KeyAlgorithm::EcP521 => asymmetric::Algorithm::EcP521,
        KeyAlgorithm::Rsa2048 => asymmetric::Algorithm::Rsa2048,
        KeyAlgorithm::Rsa3072 => asymmetric::Algorithm::Rsa3072,
        KeyAlgorithm::Rsa4096 => asymmetric::Algorithm::Rsa4096,
    }
}

pub(super) fn key_alg(a: asymmetric::Algorithm) -> Option<KeyAlgorithm> {
    KeyAlgorithm::ALL.into_iter().find(|k| asym_alg(*k) == a)
}

/// The device gives EC points as x‖y and RSA as the modulus (exponent 65537).
pub(super) fn public_from_device(alg: asymmetric::Algorithm, bytes: &[u8]) -> Result<PublicKey> {
    let k = key_alg(alg)
        .ok_or_else(|| Error::Unsupported(format!("public key of algorithm {alg:?}")))?;
    Ok(match k.curve() {
        Some(curve) => {
            let mut p = Vec::with_capacity(1 + bytes.len());
            p.push(0x04);
            p.extend_from_slice(bytes);
            PublicKey::ec(curve, &p)?
        }
        None => PublicKey::rsa(bytes, &[1, 0, 1])?,
    })
}

impl YubiHsm {
    pub(super) fn algorithms(&mut self) -> Option<&[yubihsm::Algorithm]> {
        if self.is_mock() {
            return None;
        }
        if self.device_algorithms.is_none() {
            if let Ok(info) = self
                .client()
                .and_then(|c| c.device_info().map_err(device("device info")))
            {
                self.device_algorithms = Some(info.algorithms);
            }
        }
        self.device_algorithms.as_deref()
    }

    /// What this device (and the crate) can do on the native path.
    pub fn native_capabilities(&mut self) -> Capabilities {
        let mut c = Capabilities {
            certificates: true,
            data_objects: true,
            auth_keys: true,
            device_audit: true,
            wrap: Some(WrapFormat::YubihsmAesCcm),
            counters: true,
            ..Capabilities::default()
        };
        if self.is_mock() {
            c.generate = vec![KeyAlgorithm::EcP256];
            c.import = vec![KeyAlgorithm::EcP256];
            c.sign = vec![(KeyAlgorithm::EcP256, SignScheme::Ecdsa(HashAlg::Sha256))];
            return c;
        }
        let listed = self.algorithms().map(|a| a.to_vec());
        let algs: Vec<KeyAlgorithm> = KeyAlgorithm::ALL
            .into_iter()
            .filter(|a| match &listed {
                Some(l) => l.contains(&yubihsm::Algorithm::Asymmetric(asym_alg(*a))),
                None => true,
            })
            .collect();
        c.generate = algs.clone();
        c.import = algs.clone();
        for a in algs.into_iter().filter(|a| !a.is_rsa()) {
            for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
                c.sign.push((a, SignScheme::Ecdsa(h)));
            }
        }
        c
    }

    /// Refuse (with the one-line reason) a key algorithm this device cannot create.
    pub fn check_algorithm(&mut self, alg: KeyAlgorithm) -> Result<()> {
        if self.is_mock() {
            if alg != KeyAlgorithm::EcP256 {
                return Err(Error::Unsupported(limits::mock_algorithm(alg)));
            }
            return Ok(());
        }
        if let Some(l) = self.algorithms() {
            if !l.contains(&yubihsm::Algorithm::Asymmetric(asym_alg(alg))) {
                return Err(Error::Unsupported(limits::device_algorithm(alg)));
            }
        }
        Ok(())
    }

    /// Refuse a signature scheme the native path cannot produce.
    pub fn check_sign(&self, alg: KeyAlgorithm, scheme: SignScheme) -> Result<()> {
        match scheme {
            SignScheme::RsaPss(_) => Err(Error::Unsupported(limits::rsa_pss())),
            SignScheme::RsaPkcs1(_) => Err(Error::Unsupported(limits::pkcs1_digest())),
            SignScheme::Ecdsa(h) => {
                if alg.is_rsa() {
                    return Err(Error::Refused(format!(
                        "{} with an {alg} key",
                        scheme.name()
                    )));
                }
                if self.is_mock() && alg != KeyAlgorithm::EcP256 {
                    return Err(Error::Unsupported(limits::mock_algorithm(alg)));
                }
                if self.is_mock() && h != HashAlg::Sha256 {
                    return Err(Error::Unsupported(limits::mock_hash()));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_map_both_ways() {
        for a in KeyAlgorithm::ALL {
            assert_eq!(key_alg(asym_alg(a)), Some(a));
        }
        assert_eq!(key_alg(asymmetric::Algorithm::EcK256), None);
    }
}
