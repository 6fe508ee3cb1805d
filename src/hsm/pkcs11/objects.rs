//! Objects by label and id: finding, the free-label check, listing with public keys and
//! flags, certificates and data objects stored, public keys read, objects deleted. No
//! signing (`sign`) and no wrap keys (`wrapping`).

use cryptoki::object::{
    Attribute, AttributeType, CertificateType, ObjectClass as CkClass, ObjectHandle,
};
use der::{Decode, Encode};

use super::attrs::{ck_class, flags_from, our_class, public_from_attrs};
use super::errors::ck;
use super::Pkcs11Token;
use crate::hsm::{Error, KeyFlags, NewObject, ObjectClass, ObjectInfo, Result, Selector};
use crate::keys::PublicKey;

impl Pkcs11Token {
    pub(super) fn label_attr(label: &str) -> Attribute {
        Attribute::Label(label.as_bytes().to_vec())
    }

    pub(super) fn find_objects(
        &mut self,
        class: CkClass,
        label: Option<&str>,
        id: Option<&[u8]>,
    ) -> Result<Vec<ObjectHandle>> {
        let mut t = vec![Attribute::Class(class)];
        if let Some(l) = label {
            t.push(Self::label_attr(l));
        }
        if let Some(i) = id {
            t.push(Attribute::Id(i.to_vec()));
        }
        self.session()?
            .find_objects(&t)
            .map_err(|e| ck("searching objects", e))
    }

    /// Refuse a label or id already used by an object of the same class.
    pub(super) fn check_free(&mut self, classes: &[CkClass], label: &str, id: &[u8]) -> Result<()> {
        for &c in classes {
            if !self.find_objects(c, Some(label), None)?.is_empty() {
                return Err(Error::LabelExists {
                    label: label.to_string(),
                    class: our_class(c),
                });
            }
            if !id.is_empty() && !self.find_objects(c, None, Some(id))?.is_empty() {
                return Err(Error::IdExists {
                    id: hex::encode(id),
                    class: our_class(c),
                });
            }
        }
        Ok(())
    }

    pub(super) fn one(&mut self, class: CkClass, label: &str) -> Result<Option<ObjectHandle>> {
        let hits = self.find_objects(class, Some(label), None)?;
        match hits.len() {
            0 => Ok(None),
            1 => Ok(Some(hits[0])),
            n => Err(Error::Refused(format!(
                "{n} {} objects are labelled {label:?}; Officiant needs labels to be unique",
                our_class(class)
            ))),
        }
    }

    /// The public material of a key or certificate object. CKA_VALUE is read only from
    /// certificates: on a private key it would be the secret itself.
    pub(super) fn public_attrs(
        &mut self,
        h: ObjectHandle,
        class: CkClass,
    ) -> Result<Vec<Attribute>> {
        let mut want = vec![
            AttributeType::EcParams,
            AttributeType::EcPoint,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ];
        if class == CkClass::CERTIFICATE {
            want.push(AttributeType::Value);
        }
        let mut attrs = self
            .session()?
            .get_attributes(h, &want)
            .map_err(|e| ck("reading a public key", e))?;
        attrs.push(Attribute::Class(class));
        Ok(attrs)
    }

    pub(super) fn read_public(&mut self, h: ObjectHandle, class: CkClass) -> Result<PublicKey> {
        let attrs = self.public_attrs(h, class)?;
        public_from_attrs(&attrs)
    }

    pub(super) fn store_object(
        &mut self,
        label: &str,
        id: &[u8],
        object: &NewObject,
    ) -> Result<()> {
        let mut t = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        match object {
            NewObject::Certificate(der) => {
                self.check_free(&[CkClass::CERTIFICATE], label, id)?;
                let cert = x509_cert::Certificate::from_der(der).map_err(|e| {
                    Error::Refused(format!("certificate for {label:?} is not DER X.509: {e}"))
                })?;
                let enc = |r: der::Result<Vec<u8>>| {
                    r.map_err(|source| Error::Der {
                        what: "re-encoding certificate fields".into(),
                        source,
                    })
                };
                let tbs = &cert.tbs_certificate;
                t.extend([
                    Attribute::Class(CkClass::CERTIFICATE),
                    Attribute::CertificateType(CertificateType::X_509),
                    Attribute::Id(id.to_vec()),
                    Attribute::Subject(enc(tbs.subject.to_der())?),
                    Attribute::Issuer(enc(tbs.issuer.to_der())?),
                    Attribute::SerialNumber(enc(tbs.serial_number.to_der())?),
                    Attribute::Value(der.clone()),
                ]);
            }
            NewObject::Data { application, value } => {
                // CKO_DATA has no CKA_ID; the label names it.
                self.check_free(&[CkClass::DATA], label, &[])?;
                t.extend([
                    Attribute::Class(CkClass::DATA),
                    Attribute::Application(application.as_bytes().to_vec()),
                    Attribute::Value(value.clone()),
                ]);
            }
        }
        self.session()?
            .create_object(&t)
            .map(|_| ())
            .map_err(|e| ck(&format!("writing object {label:?}"), e))
    }

    pub(super) fn objects(&mut self) -> Result<Vec<ObjectInfo>> {
        let handles = self
            .session()?
            .find_objects(&[])
            .map_err(|e| ck("listing objects", e))?;
        let want = [
            AttributeType::Class,
            AttributeType::Label,
            AttributeType::Id,
            AttributeType::KeyType,
            AttributeType::Sensitive,
            AttributeType::AlwaysSensitive,
            AttributeType::Extractable,
            AttributeType::NeverExtractable,
            AttributeType::Local,
            AttributeType::Private,
            AttributeType::Wrap,
        ];
        let mut raw = Vec::new();
        for h in handles {
            let attrs = self
                .session()?
                .get_attributes(h, &want)
                .map_err(|e| ck("reading object attributes", e))?;
            let mut class = None;
            let mut label = String::new();
            let mut id = Vec::new();
            for a in &attrs {
                match a {
                    Attribute::Class(c) => class = Some(*c),
                    Attribute::Label(l) => label = super::attrs::label(l),
                    Attribute::Id(i) => id = i.clone(),
                    _ => {}
                }
            }
            let class = class.unwrap_or(CkClass::DATA);
            let public_key = if class == CkClass::PUBLIC_KEY
                || class == CkClass::CERTIFICATE
                || class == CkClass::PRIVATE_KEY
            {
                let p = self.public_attrs(h, class)?;
                public_from_attrs(&p).ok()
            } else {
                None
            };
            let flags = if class == CkClass::PRIVATE_KEY || class == CkClass::SECRET_KEY {
                flags_from(&attrs)
            } else {
                KeyFlags {
                    private: flags_from(&attrs).private,
                    local: flags_from(&attrs).local,
                    ..Default::default()
                }
            };
            let wraps = attrs.iter().any(|a| matches!(a, Attribute::Wrap(true)));
            raw.push(ObjectInfo {
                class: if class == CkClass::SECRET_KEY && wraps {
                    ObjectClass::WrapKey
                } else {
                    our_class(class)
                },
                label,
                id,
                public_key,
                flags,
            });
        }
        // An EC private key shows no point: take it from its public half or certificate.
        let snapshot: Vec<(ObjectClass, String, Vec<u8>, Option<PublicKey>)> = raw
            .iter()
            .map(|o| {
                (
                    o.class.clone(),
                    o.label.clone(),
                    o.id.clone(),
                    o.public_key.clone(),
                )
            })
            .collect();
        for o in raw.iter_mut().filter(|o| o.public_key.is_none()) {
            if o.class != ObjectClass::PrivateKey {
                continue;
            }
            o.public_key = snapshot
                .iter()
                .filter(|(c, ..)| *c == ObjectClass::PublicKey || *c == ObjectClass::Certificate)
                .find(|(_, l, i, _)| *i == o.id && (!o.id.is_empty() || *l == o.label))
                .and_then(|(.., k)| k.clone());
        }
        Ok(raw)
    }

    pub(super) fn certificate(&mut self, label: &str) -> Result<Option<Vec<u8>>> {
        let Some(h) = self.one(CkClass::CERTIFICATE, label)? else {
            return Ok(None);
        };
        let attrs = self
            .session()?
            .get_attributes(h, &[AttributeType::Value])
            .map_err(|e| ck(&format!("reading certificate {label:?}"), e))?;
        Ok(attrs.into_iter().find_map(|a| match a {
            Attribute::Value(v) => Some(v),
            _ => None,
        }))
    }

    pub(super) fn public_key_of(&mut self, label: &str) -> Result<PublicKey> {
        for class in [CkClass::PUBLIC_KEY, CkClass::CERTIFICATE] {
            if let Some(h) = self.one(class, label)? {
                return self.read_public(h, class);
            }
        }
        if let Some(h) = self.one(CkClass::PRIVATE_KEY, label)? {
            if let Ok(k) = self.read_public(h, CkClass::PRIVATE_KEY) {
                return Ok(k);
            }
        }
        Err(Error::NotFound {
            what: format!("public key or certificate labelled {label:?}"),
        })
    }

    pub(super) fn delete_selected(&mut self, sel: &Selector) -> Result<usize> {
        self.forget_signing_key();
        let classes: Vec<CkClass> = match &sel.class {
            Some(c) => vec![ck_class(c)
                .ok_or_else(|| Error::Unsupported(format!("PKCS#11 has no {c} objects")))?],
            None => vec![
                CkClass::PRIVATE_KEY,
                CkClass::PUBLIC_KEY,
                CkClass::CERTIFICATE,
                CkClass::DATA,
            ],
        };
        let mut n = 0;
        for c in classes {
            for h in self.find_objects(c, Some(&sel.label), None)? {
                self.session()?
                    .destroy_object(h)
                    .map_err(|e| ck(&format!("deleting {:?}", sel.label), e))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
