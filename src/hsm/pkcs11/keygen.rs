//! Key pairs: generated on the token or imported from a file, both halves with the
//! attributes pkcs11-tool would give them. The secret values of an import are zeroized
//! once the token has them.

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass as CkClass};

use super::errors::ck;
use super::templates::{
    ec_params, ec_point_der, private_template, private_template_with, public_template,
    zeroize_template,
};
use super::Pkcs11Token;
use crate::hsm::{Error, KeyOptions, Result};
use crate::keys::{KeyAlgorithm, PrivateKey, PublicKey};

impl Pkcs11Token {
    pub(super) fn generate_pair(
        &mut self,
        alg: KeyAlgorithm,
        label: &str,
        id: &[u8],
        opts: &KeyOptions,
    ) -> Result<PublicKey> {
        let (mechanism, mtype) = if alg.is_rsa() {
            (
                Mechanism::RsaPkcsKeyPairGen,
                MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            )
        } else {
            (Mechanism::EccKeyPairGen, MechanismType::ECC_KEY_PAIR_GEN)
        };
        self.require_mechanism(mtype, &format!("generating {alg}"))?;
        self.check_free(&[CkClass::PRIVATE_KEY, CkClass::PUBLIC_KEY], label, id)?;
        let mut public = public_template(label, id);
        if let Some(curve) = alg.curve() {
            public.push(Attribute::EcParams(ec_params(curve)?));
        }
        if let Some(bits) = alg.rsa_bits() {
            public.push(Attribute::ModulusBits((bits as u64).into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
        }
        let private = private_template_with(label, id, opts.exportable_under_wrap);
        let (pub_h, _priv_h) = self
            .session()?
            .generate_key_pair(&mechanism, &public, &private)
            .map_err(|e| ck(&format!("generating {alg} key {label:?}"), e))?;
        self.read_public(pub_h, CkClass::PUBLIC_KEY)
    }

    pub(super) fn import_pair(
        &mut self,
        key: &PrivateKey,
        label: &str,
        id: &[u8],
    ) -> Result<PublicKey> {
        self.check_free(&[CkClass::PRIVATE_KEY, CkClass::PUBLIC_KEY], label, id)?;
        let mut private = private_template(label, id);
        let mut public = public_template(label, id);
        private.push(Attribute::Class(CkClass::PRIVATE_KEY));
        public.push(Attribute::Class(CkClass::PUBLIC_KEY));
        match key {
            PrivateKey::Ec {
                curve,
                d,
                public: pk,
            } => {
                let params = ec_params(*curve)?;
                let point = match pk {
                    PublicKey::Ec { point, .. } => point.clone(),
                    PublicKey::Rsa { .. } => {
                        return Err(Error::Backend("EC key with an RSA public half".into()))
                    }
                };
                private.push(Attribute::KeyType(KeyType::EC));
                private.push(Attribute::EcParams(params.clone()));
                private.push(Attribute::Value(d.to_vec()));
                public.push(Attribute::KeyType(KeyType::EC));
                public.push(Attribute::EcParams(params));
                public.push(Attribute::EcPoint(ec_point_der(&point)?));
            }
            PrivateKey::Rsa { key: k, .. } => {
                private.push(Attribute::KeyType(KeyType::RSA));
                private.extend([
                    Attribute::Modulus(k.n.clone()),
                    Attribute::PublicExponent(k.e.clone()),
                    Attribute::PrivateExponent(k.d.to_vec()),
                    Attribute::Prime1(k.p.to_vec()),
                    Attribute::Prime2(k.q.to_vec()),
                    Attribute::Exponent1(k.dp.to_vec()),
                    Attribute::Exponent2(k.dq.to_vec()),
                    Attribute::Coefficient(k.qinv.to_vec()),
                ]);
                public.push(Attribute::KeyType(KeyType::RSA));
                public.push(Attribute::Modulus(k.n.clone()));
                public.push(Attribute::PublicExponent(k.e.clone()));
            }
        }
        let created = self.session().and_then(|s| {
            s.create_object(&private)
                .map_err(|e| ck(&format!("importing private key {label:?}"), e))
        });
        zeroize_template(&mut private);
        let priv_h = created?;
        let pub_h = match self.session()?.create_object(&public) {
            Ok(h) => h,
            Err(e) => {
                // Leave no half-imported key behind.
                let _ = self.session()?.destroy_object(priv_h);
                return Err(ck(&format!("importing public key {label:?}"), e));
            }
        };
        self.read_public(pub_h, CkClass::PUBLIC_KEY)
    }
}
