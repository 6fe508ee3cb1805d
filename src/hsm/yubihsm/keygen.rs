//! Asymmetric keys generated on the device or imported from a file (EC scalar or RSA
//! primes at full width, zeroized after the call); the imported key's public half is
//! checked against what the device reports.

use yubihsm::object::Type;
use yubihsm::Capability;

use super::algorithms::{asym_alg, sign_caps};
use super::objects::label_of;
use super::{caps, device, Error, Result, YubiHsm};
use crate::hsm::KeyOptions;
use crate::keys::{KeyAlgorithm, PrivateKey, PublicKey};

pub(super) fn strip(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[i..]
}

impl YubiHsm {
    /// Generate a key pair at `id` (capability sign-ecdsa for EC; sign-pkcs + sign-pss for
    /// RSA, so Yubico's PKCS#11 module can also sign with it).
    pub fn generate_at(&mut self, alg: KeyAlgorithm, label: &str, id: u16) -> Result<PublicKey> {
        self.generate_at_with(alg, label, id, &KeyOptions::default())
    }

    /// [`Self::generate_at`], with capability exportable-under-wrap when `opts` asks.
    pub fn generate_at_with(
        &mut self,
        alg: KeyAlgorithm,
        label: &str,
        id: u16,
        opts: &KeyOptions,
    ) -> Result<PublicKey> {
        caps::check_label("label", label)?;
        self.check_algorithm(alg)?;
        self.check_free(label, id, Type::AsymmetricKey)?;
        let domains = self.session_domains()?;
        let mut capabilities = sign_caps(alg);
        if opts.exportable_under_wrap {
            capabilities |= Capability::EXPORTABLE_UNDER_WRAP;
        }
        self.client()?
            .generate_asymmetric_key(id, label_of(label)?, domains, capabilities, asym_alg(alg))
            .map_err(device("generate asymmetric key"))?;
        self.public_key_of(id)
    }

    /// Import `key` at object id `id` with signing capabilities for its kind; the public
    /// key the device reports must be the file's.
    pub fn import_at(&mut self, key: &PrivateKey, label: &str, id: u16) -> Result<PublicKey> {
        caps::check_label("label", label)?;
        let alg = KeyAlgorithm::of(key.public_key()).ok_or_else(|| {
            Error::Unsupported(format!(
                "{}: a YubiHSM 2 takes EC P-256/P-384/P-521 and RSA 2048/3072/4096 keys",
                key.public_key().describe()
            ))
        })?;
        self.check_algorithm(alg)?;
        self.check_free(label, id, Type::AsymmetricKey)?;
        // The device wants the EC scalar, or RSA's primes p‖q, each at full width.
        let bytes: zeroize::Zeroizing<Vec<u8>> = match key {
            PrivateKey::Ec { curve, d, .. } => {
                let n = curve.field_bytes();
                if d.len() > n {
                    return Err(Error::Refused(format!(
                        "{} private scalar is {} bytes",
                        curve.name(),
                        d.len()
                    )));
                }
                let mut v = zeroize::Zeroizing::new(vec![0u8; n]);
                v[n - d.len()..].copy_from_slice(d);
                v
            }
            PrivateKey::Rsa { key, .. } => {
                let half = asym_alg(alg).key_len() / 2;
                let p = strip(&key.p);
                let q = strip(&key.q);
                if p.len() > half || q.len() > half {
                    return Err(Error::Refused(format!(
                        "{alg} primes are longer than {half} bytes"
                    )));
                }
                let mut v = zeroize::Zeroizing::new(vec![0u8; 2 * half]);
                v[half - p.len()..half].copy_from_slice(p);
                v[2 * half - q.len()..].copy_from_slice(q);
                v
            }
        };
        let domains = self.session_domains()?;
        self.client()?
            .put_asymmetric_key(
                id,
                label_of(label)?,
                domains,
                sign_caps(alg),
                asym_alg(alg),
                bytes.to_vec(),
            )
            .map_err(device("put asymmetric key"))?;
        let pk = self.public_key_of(id)?;
        if &pk != key.public_key() {
            return Err(Error::DeviceAnswer {
                op: "put asymmetric key".into(),
                detail: format!(
                    "the device reports a different public key for 0x{id:04x} than the file's"
                ),
            });
        }
        Ok(pk)
    }
}
