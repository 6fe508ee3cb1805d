//! Signing a digest (raw mechanisms) or a whole message (hash-and-sign, streamed), with
//! the last signing key's handle cached for a batch. Never reads a key's secret.

use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass as CkClass, ObjectHandle};

use super::errors::{ck, ckr_name, rv_of};
use super::mech;
use super::Pkcs11Token;
use crate::hsm::{Error, Result, Token};
use crate::keys::SignScheme;

impl Pkcs11Token {
    /// The private key labelled `label`, checked to be of the kind `scheme` needs.
    /// A handle from the cache is trusted without a lookup: a stale one makes the
    /// signing call fail (and [`Self::with_signing_key`] looks again), and a handle that
    /// came to name another key yields a signature the caller's check with the key's
    /// public half refuses.
    pub(super) fn signing_key(
        &mut self,
        label: &str,
        scheme: SignScheme,
    ) -> Result<(ObjectHandle, bool)> {
        let cached = self
            .bound()?
            .last_signing_key
            .as_ref()
            .filter(|(l, is_rsa, _)| l == label && *is_rsa == scheme.is_rsa())
            .map(|(_, _, h)| *h);
        if let Some(h) = cached {
            return Ok((h, true));
        }
        let h = self
            .one(CkClass::PRIVATE_KEY, label)?
            .ok_or_else(|| Error::NotFound {
                what: format!("private key labelled {label:?}"),
            })?;
        let kt = self
            .session()?
            .get_attributes(h, &[AttributeType::KeyType])
            .map_err(|e| ck(&format!("reading key {label:?}"), e))?;
        let is_rsa = kt
            .iter()
            .any(|a| matches!(a, Attribute::KeyType(k) if *k == KeyType::RSA));
        if is_rsa != scheme.is_rsa() {
            return Err(Error::Refused(format!(
                "key {label:?} is {}, it cannot sign {}",
                if is_rsa { "an RSA key" } else { "an EC key" },
                scheme.name()
            )));
        }
        self.bound()?.last_signing_key = Some((label.to_string(), is_rsa, h));
        Ok((h, false))
    }

    /// Run `op` with the private key labelled `label`; when a cached handle fails, forget
    /// it and try once more with a fresh lookup.
    pub(super) fn with_signing_key<T>(
        &mut self,
        label: &str,
        scheme: SignScheme,
        mut op: impl FnMut(&mut Self, ObjectHandle) -> Result<T>,
    ) -> Result<T> {
        let (h, cached) = self.signing_key(label, scheme)?;
        match op(self, h) {
            Err(_) if cached => {
                self.forget_signing_key();
                let (h, _) = self.signing_key(label, scheme)?;
                op(self, h)
            }
            r => r,
        }
    }

    pub(super) fn forget_signing_key(&mut self) {
        if let Some(b) = self.bound.as_mut() {
            b.last_signing_key = None;
        }
    }

    pub(super) fn sign_digest(
        &mut self,
        label: &str,
        scheme: SignScheme,
        digest: &[u8],
    ) -> Result<Vec<u8>> {
        if digest.len() != scheme.hash().len() {
            return Err(Error::Refused(format!(
                "digest for {} has {} bytes, expected {}",
                scheme.name(),
                digest.len(),
                scheme.hash().len()
            )));
        }
        let mechs = self.mechanisms()?;
        let raw = mech::raw_mechanism(scheme);
        if !mechs.has(raw) {
            let hs = mech::hash_and_sign_mechanism(scheme);
            return Err(Error::Unsupported(if mechs.has(hs) {
                format!(
                    "{} needs mechanism {raw} to sign a digest; the token has only {hs}, \
                     which hashes the whole message itself",
                    scheme.name()
                )
            } else {
                format!("the token has no mechanism {raw} ({})", scheme.name())
            }));
        }
        let mut input = Vec::with_capacity(digest.len() + 19);
        if let SignScheme::RsaPkcs1(hash) = scheme {
            input.extend_from_slice(&hash.digest_info_prefix());
        }
        input.extend_from_slice(digest);
        let m = mech::sign_mechanism(scheme);
        self.with_signing_key(label, scheme, |t, h| {
            t.session()?
                .sign(&m, h, &input)
                .map_err(|e| match rv_of(&e) {
                    Some(RvError::MechanismInvalid | RvError::MechanismParamInvalid) => {
                        Error::Unsupported(format!(
                            "the token refused mechanism {raw} for key {label:?} ({})",
                            ckr_name(rv_of(&e).unwrap_or(RvError::MechanismInvalid))
                        ))
                    }
                    _ => ck(&format!("signing with {label:?}"), e),
                })
        })
    }

    pub(super) fn sign_streamed(
        &mut self,
        label: &str,
        scheme: SignScheme,
        message: &[u8],
    ) -> Result<Vec<u8>> {
        let mechs = self.mechanisms()?;
        let hs = mech::hash_and_sign_mechanism(scheme);
        // Prefer hashing here: the message never crosses a slow link to the token.
        if mechs.has(mech::raw_mechanism(scheme)) || !mechs.has(hs) {
            return self.sign(label, scheme, &scheme.hash().digest(message));
        }
        let m = mech::hash_and_sign(scheme);
        let what = format!("signing with {label:?} ({hs})");
        self.with_signing_key(label, scheme, |t, h| {
            let s = t.session()?;
            s.sign_init(&m, h).map_err(|e| ck(&what, e))?;
            for chunk in message.chunks(64 * 1024) {
                s.sign_update(chunk).map_err(|e| ck(&what, e))?;
            }
            s.sign_final().map_err(|e| ck(&what, e))
        })
    }
}
