//! Which PKCS#11 mechanism does what: key generation, the raw (digest-signing)
//! mechanisms the `Token` trait needs, and the hash-and-sign ones we can only report;
//! and the token's own mechanism list, read once per bound token. What a mechanism is
//! used for (signing, wrapping) is the other modules'.

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismInfo, MechanismType};

use crate::keys::HashAlg;
use cryptoki::slot::Slot;

use super::errors::ck;
use super::Pkcs11Token;
use crate::hsm::{Capabilities, Error, Result};
use crate::keys::{KeyAlgorithm, SignScheme};

/// The mechanisms a token offers, with their info (key sizes).
pub struct MechList(pub Vec<(MechanismType, MechanismInfo)>);

impl MechList {
    /// Whether the token offers mechanism `m`.
    pub fn has(&self, m: MechanismType) -> bool {
        self.0.iter().any(|(t, _)| *t == m)
    }

    fn info(&self, m: MechanismType) -> Option<&MechanismInfo> {
        self.0.iter().find(|(t, _)| *t == m).map(|(_, i)| i)
    }

    /// Mechanism present and `bits` inside its key-size range (0..0 = no range given).
    fn fits(&self, m: MechanismType, bits: usize) -> bool {
        match self.info(m) {
            None => false,
            Some(i) => {
                let (lo, hi) = (i.min_key_size(), i.max_key_size());
                (lo == 0 && hi == 0) || (lo <= bits && bits <= hi)
            }
        }
    }

    /// What the token can do, from its mechanisms (key sizes checked against their ranges).
    pub fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities {
            init_token: true,
            so_login: true,
            certificates: true,
            data_objects: true,
            // CKA_MODIFIABLE and CKA_DESTROYABLE are asked for; `read_data` reports
            // whether the token kept them.
            immutable_data: true,
            counters: true,
            ..Default::default()
        };
        for alg in KeyAlgorithm::ALL {
            let bits = alg
                .curve()
                .map(|c| c.bits())
                .or(alg.rsa_bits())
                .unwrap_or(0);
            let gen = if alg.is_rsa() {
                MechanismType::RSA_PKCS_KEY_PAIR_GEN
            } else {
                MechanismType::ECC_KEY_PAIR_GEN
            };
            if self.fits(gen, bits) {
                caps.generate.push(alg);
            }
            let mut can_sign = false;
            for scheme in schemes_for(alg) {
                if self.fits(raw_mechanism(scheme), bits) {
                    caps.sign.push((alg, scheme));
                    can_sign = true;
                }
            }
            // A key can be stored with C_CreateObject if the token can use it.
            if can_sign {
                caps.import.push(alg);
            }
        }
        // Backup: RFC 5649 wrap and unwrap, with an AES-256 wrap key.
        let wraps = self.info(MechanismType::AES_KEY_WRAP_PAD).is_some_and(|i| {
            i.wrap() && i.unwrap() && self.fits(MechanismType::AES_KEY_WRAP_PAD, 32)
        });
        if wraps {
            caps.wrap = Some(crate::hsm::WrapFormat::Pkcs8AesKwp);
            caps.wrap_key_needs_so = true;
        }
        caps
    }

    /// Hash-and-sign mechanisms present where the raw one is missing: the token could sign
    /// whole messages with them, but not the digests the `Token` trait passes.
    pub fn hash_and_sign_only(&self) -> Vec<(SignScheme, MechanismType)> {
        let mut out = Vec::new();
        for scheme in all_schemes() {
            let hs = hash_and_sign_mechanism(scheme);
            if !self.has(raw_mechanism(scheme)) && self.has(hs) {
                out.push((scheme, hs));
            }
        }
        out
    }
}

pub(super) fn all_schemes() -> Vec<SignScheme> {
    let mut v = Vec::new();
    for h in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
        v.extend([
            SignScheme::Ecdsa(h),
            SignScheme::RsaPss(h),
            SignScheme::RsaPkcs1(h),
        ]);
    }
    v
}

pub(super) fn schemes_for(alg: KeyAlgorithm) -> Vec<SignScheme> {
    all_schemes()
        .into_iter()
        .filter(|s| s.is_rsa() == alg.is_rsa())
        .collect()
}

/// The mechanism that signs an already-computed digest.
pub fn raw_mechanism(scheme: SignScheme) -> MechanismType {
    match scheme {
        SignScheme::Ecdsa(_) => MechanismType::ECDSA,
        SignScheme::RsaPss(_) => MechanismType::RSA_PKCS_PSS,
        SignScheme::RsaPkcs1(_) => MechanismType::RSA_PKCS,
    }
}

/// The mechanism that hashes and signs a whole message.
pub fn hash_and_sign_mechanism(scheme: SignScheme) -> MechanismType {
    use HashAlg::*;
    match scheme {
        SignScheme::Ecdsa(Sha256) => MechanismType::ECDSA_SHA256,
        SignScheme::Ecdsa(Sha384) => MechanismType::ECDSA_SHA384,
        SignScheme::Ecdsa(Sha512) => MechanismType::ECDSA_SHA512,
        SignScheme::RsaPss(Sha256) => MechanismType::SHA256_RSA_PKCS_PSS,
        SignScheme::RsaPss(Sha384) => MechanismType::SHA384_RSA_PKCS_PSS,
        SignScheme::RsaPss(Sha512) => MechanismType::SHA512_RSA_PKCS_PSS,
        SignScheme::RsaPkcs1(Sha256) => MechanismType::SHA256_RSA_PKCS,
        SignScheme::RsaPkcs1(Sha384) => MechanismType::SHA384_RSA_PKCS,
        SignScheme::RsaPkcs1(Sha512) => MechanismType::SHA512_RSA_PKCS,
    }
}

/// PSS parameters: MGF1 with the same hash, salt as long as the hash.
pub fn pss_params(h: HashAlg) -> PkcsPssParams {
    let (hash_alg, mgf) = match h {
        HashAlg::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        HashAlg::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlg::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    PkcsPssParams {
        hash_alg,
        mgf,
        s_len: (h.len() as u64).into(),
    }
}

/// The mechanism (with parameters) that signs a digest under `scheme`.
pub fn sign_mechanism(scheme: SignScheme) -> Mechanism<'static> {
    match scheme {
        SignScheme::Ecdsa(_) => Mechanism::Ecdsa,
        SignScheme::RsaPss(h) => Mechanism::RsaPkcsPss(pss_params(h)),
        SignScheme::RsaPkcs1(_) => Mechanism::RsaPkcs,
    }
}

/// The mechanism (with parameters) that hashes and signs a message under `scheme`.
pub fn hash_and_sign(scheme: SignScheme) -> Mechanism<'static> {
    use HashAlg::*;
    match scheme {
        SignScheme::Ecdsa(Sha256) => Mechanism::EcdsaSha256,
        SignScheme::Ecdsa(Sha384) => Mechanism::EcdsaSha384,
        SignScheme::Ecdsa(Sha512) => Mechanism::EcdsaSha512,
        SignScheme::RsaPss(h @ Sha256) => Mechanism::Sha256RsaPkcsPss(pss_params(h)),
        SignScheme::RsaPss(h @ Sha384) => Mechanism::Sha384RsaPkcsPss(pss_params(h)),
        SignScheme::RsaPss(h @ Sha512) => Mechanism::Sha512RsaPkcsPss(pss_params(h)),
        SignScheme::RsaPkcs1(Sha256) => Mechanism::Sha256RsaPkcs,
        SignScheme::RsaPkcs1(Sha384) => Mechanism::Sha384RsaPkcs,
        SignScheme::RsaPkcs1(Sha512) => Mechanism::Sha512RsaPkcs,
    }
}

// The token's own list, read once per bound token.
impl Pkcs11Token {
    pub(super) fn read_mechanisms(&self, slot: Slot) -> Result<MechList> {
        let types = self
            .ctx
            .get_mechanism_list(slot)
            .map_err(|e| ck("listing mechanisms", e))?;
        let mut list = Vec::new();
        for t in types {
            if let Ok(info) = self.ctx.get_mechanism_info(slot, t) {
                list.push((t, info));
            }
        }
        Ok(MechList(list))
    }

    pub(super) fn require_mechanism(&mut self, m: MechanismType, purpose: &str) -> Result<()> {
        if self.mechanisms()?.has(m) {
            Ok(())
        } else {
            Err(Error::Unsupported(format!(
                "the token has no mechanism {m} ({purpose})"
            )))
        }
    }

    /// The signing mechanisms of the token, read once per bound token.
    pub(super) fn mechanisms(&mut self) -> Result<std::sync::Arc<MechList>> {
        let slot = self.any_slot()?;
        if let Some((s, m)) = &self.mech_cache {
            if *s == slot {
                return Ok(m.clone());
            }
        }
        let m = std::sync::Arc::new(self.read_mechanisms(slot)?);
        self.mech_cache = Some((slot, m.clone()));
        Ok(m)
    }
}
