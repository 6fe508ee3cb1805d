//! Objects by label and id: finding, the free id/label check, certificates and data
//! stored as opaque objects, listing with PKCS#11-style flags, deleting (never the last
//! key that manages authentication keys). No signing and no key material.

use yubihsm::object::{self, Filter, Label, Type};
use yubihsm::{Capability, Domain};

use super::algorithms::public_from_device;
use super::{caps, device, Error, Result, YubiHsm};
use crate::hsm::{NewObject, ObjectClass, ObjectInfo, Selector};
use crate::keys::PublicKey;

pub(super) fn label_of(label: &str) -> Result<Label> {
    caps::check_label("label", label)?;
    Label::from_bytes(label.as_bytes()).map_err(|e| Error::Field {
        path: "label".into(),
        message: e.to_string(),
    })
}

pub(super) fn class_of(ty: Type, alg: Option<yubihsm::Algorithm>) -> ObjectClass {
    match ty {
        Type::AsymmetricKey => ObjectClass::PrivateKey,
        Type::AuthenticationKey => ObjectClass::AuthKey,
        Type::Opaque => match alg {
            Some(yubihsm::Algorithm::Opaque(yubihsm::opaque::Algorithm::X509Certificate)) => {
                ObjectClass::Certificate
            }
            _ => ObjectClass::Opaque,
        },
        Type::WrapKey => ObjectClass::WrapKey,
        Type::HmacKey => ObjectClass::Other("HMAC key".into()),
        Type::Template => ObjectClass::Other("template".into()),
        Type::OtpAeadKey => ObjectClass::Other("OTP AEAD key".into()),
    }
}

impl YubiHsm {
    /// Domains of the session's own key: new objects go there.
    pub(super) fn session_domains(&self) -> Result<Domain> {
        let info = self
            .client()?
            .get_object_info(self.auth_key, Type::AuthenticationKey)
            .map_err(device("get object info"))?;
        Ok(info.domains)
    }

    pub(super) fn find(&self, filters: &[Filter]) -> Result<Vec<object::Entry>> {
        self.client()?
            .list_objects(filters)
            .map_err(device("list objects"))
    }

    pub(super) fn exists(&self, id: u16, ty: Type) -> Result<bool> {
        Ok(!self.find(&[Filter::Id(id), Filter::Type(ty)])?.is_empty())
    }

    /// Refuse an id or label already taken by an object of type `ty`.
    pub(super) fn check_free(&self, label: &str, id: u16, ty: Type) -> Result<()> {
        if self.exists(id, ty)? {
            return Err(Error::IdExists {
                id,
                class: class_of(ty, None),
            });
        }
        if !label.is_empty()
            && !self
                .find(&[Filter::Label(label_of(label)?), Filter::Type(ty)])?
                .is_empty()
        {
            return Err(Error::LabelExists {
                label: label.to_string(),
                class: class_of(ty, None),
            });
        }
        Ok(())
    }

    /// The asymmetric key labelled `label`.
    pub(super) fn key_by_label(&self, label: &str) -> Result<object::Info> {
        caps::check_label("label", label)?;
        let found = self.find(&[
            Filter::Label(label_of(label)?),
            Filter::Type(Type::AsymmetricKey),
        ])?;
        let entry = match found.as_slice() {
            [one] => one,
            [] => return Err(Error::NotFound(format!("key labelled {label:?}"))),
            _ => {
                return Err(Error::Refused(format!(
                    "{} keys are labelled {label:?}; name one by id",
                    found.len()
                )))
            }
        };
        self.client()?
            .get_object_info(entry.object_id, Type::AsymmetricKey)
            .map_err(device("get object info"))
    }

    pub(super) fn public_key_of(&self, id: u16) -> Result<PublicKey> {
        let pk = self
            .client()?
            .get_public_key(id)
            .map_err(device("get public key"))?;
        public_from_device(pk.algorithm, &pk.bytes)
    }

    /// Store a certificate (opaque, X.509 algorithm) or data (opaque, data algorithm) at
    /// `id`; a certificate goes under its key's id, as Yubico's PKCS#11 module expects.
    pub fn put_object_at(&mut self, label: &str, id: u16, obj: &NewObject) -> Result<()> {
        caps::check_label("label", label)?;
        let (alg, bytes) = match obj {
            NewObject::Certificate(der) => {
                let cert_key = PublicKey::from_certificate_der(der)?;
                // Under a key's id, the certificate must be that key's.
                if self.exists(id, Type::AsymmetricKey)? && self.public_key_of(id)? != cert_key {
                    return Err(Error::Refused(format!(
                        "the certificate {label:?} is for another key than the one at id 0x{id:04x}"
                    )));
                }
                (yubihsm::opaque::Algorithm::X509Certificate, der.clone())
            }
            NewObject::Data { value, .. } => (yubihsm::opaque::Algorithm::Data, value.clone()),
        };
        if bytes.is_empty() {
            return Err(Error::Refused(format!("object {label:?} is empty")));
        }
        if self.exists(id, Type::Opaque)? {
            return Err(Error::IdExists {
                id,
                class: ObjectClass::Opaque,
            });
        }
        let domains = self.session_domains()?;
        self.client()?
            .put_opaque(
                id,
                label_of(label)?,
                domains,
                Capability::empty(),
                alg,
                bytes,
            )
            .map_err(device("put opaque"))?;
        Ok(())
    }

    /// Every object the session can see, with its YubiHSM details.
    pub fn objects(&self) -> Result<Vec<(object::Info, ObjectInfo)>> {
        let client = self.client()?;
        let mut out = Vec::new();
        for e in self.find(&[])? {
            let info = client
                .get_object_info(e.object_id, e.object_type)
                .map_err(device("get object info"))?;
            let label = info.label.try_as_str().unwrap_or("").to_string();
            let mut public_key = None;
            let mut class = class_of(info.object_type, Some(info.algorithm));
            match (info.object_type, info.algorithm) {
                (Type::AsymmetricKey, _) => public_key = self.public_key_of(info.object_id).ok(),
                (
                    Type::Opaque,
                    yubihsm::Algorithm::Opaque(yubihsm::opaque::Algorithm::X509Certificate),
                ) => {
                    public_key = client
                        .get_opaque(info.object_id)
                        .ok()
                        .and_then(|der| PublicKey::from_certificate_der(&der).ok());
                    class = ObjectClass::Certificate;
                }
                _ => {}
            }
            // PKCS#11's names for what the device says: a key never leaves the device in
            // the clear; "local" is origin generated (not imported, not restored from a
            // wrapped backup); "never extractable" is generated and not exportable under
            // wrap (Yubico's PKCS#11 module reads them the same way).
            let key = info.object_type == Type::AsymmetricKey;
            let generated = info.origin == object::Origin::Generated;
            let exportable = info
                .capabilities
                .contains(Capability::EXPORTABLE_UNDER_WRAP);
            let flags = crate::hsm::KeyFlags {
                sensitive: key.then_some(true),
                always_sensitive: key.then_some(generated),
                extractable: key.then_some(exportable),
                never_extractable: key.then_some(generated && !exportable),
                local: key.then_some(generated),
                ..Default::default()
            };
            out.push((
                info.clone(),
                ObjectInfo {
                    class,
                    label,
                    id: info.object_id.to_be_bytes().to_vec(),
                    public_key,
                    flags,
                },
            ));
        }
        Ok(out)
    }

    /// Delete objects by label (and class), refusing to remove the last key able to manage
    /// authentication keys or the session's own key.
    pub fn delete_selected(&mut self, sel: &Selector) -> Result<usize> {
        caps::check_label("label", &sel.label)?;
        let want = label_of(&sel.label)?;
        let mut targets = Vec::new();
        for e in self.find(&[Filter::Label(want)])? {
            let class = class_of(e.object_type, None);
            let matches = match &sel.class {
                None => true,
                Some(ObjectClass::PrivateKey) | Some(ObjectClass::PublicKey) => {
                    e.object_type == Type::AsymmetricKey
                }
                Some(ObjectClass::Certificate)
                | Some(ObjectClass::Data)
                | Some(ObjectClass::Opaque) => e.object_type == Type::Opaque,
                Some(c) => *c == class,
            };
            if matches {
                targets.push((e.object_id, e.object_type));
            }
        }
        let auth: Vec<u16> = targets
            .iter()
            .filter(|(_, t)| *t == Type::AuthenticationKey)
            .map(|(id, _)| *id)
            .collect();
        if !auth.is_empty() {
            self.ensure_admin_remains(&auth)?;
        }
        for (id, ty) in &targets {
            self.client()?
                .delete_object(*id, *ty)
                .map_err(device("delete object"))?;
        }
        Ok(targets.len())
    }

    pub(super) fn certificate(&mut self, label: &str) -> crate::hsm::Result<Option<Vec<u8>>> {
        caps::check_label("label", label)?;
        let found = self.find(&[
            Filter::Label(label_of(label)?),
            Filter::Type(Type::Opaque),
            Filter::Algorithm(yubihsm::Algorithm::Opaque(
                yubihsm::opaque::Algorithm::X509Certificate,
            )),
        ])?;
        let Some(e) = found.first() else {
            return Ok(None);
        };
        Ok(Some(
            self.client()?
                .get_opaque(e.object_id)
                .map_err(device("get opaque"))?,
        ))
    }
}
