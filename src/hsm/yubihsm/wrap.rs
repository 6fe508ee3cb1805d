//! Wrap keys on a YubiHSM 2: an AES-CCM wrap key object, Export Wrapped and Import
//! Wrapped of asymmetric keys under it.
//!
//! The wrap key gets what yubihsm-setup gives its own: capabilities export-wrapped and
//! import-wrapped, and delegated capabilities covering what a signing key may carry
//! (a key's capabilities must be among its wrap key's delegated ones for the device to
//! export or import it). The device keeps no check value for a wrap key, so Officiant
//! stores one beside it: an opaque object with the wrap key's label and id holding the
//! 3-byte check value (never the key). Deleting the wrap key deletes it too.
//!
//! The MockHsm panics where a device would refuse an object id already taken (Import
//! Wrapped, Put Wrap Key): these refuse first.

use yubihsm::object::{Filter, Type};
use yubihsm::{wrap, Capability};

use super::objects::{class_of, label_of};
use super::{caps, device, Error, Result, YubiHsm};
use crate::hsm::wrap::{check_value, CheckValue, CHECK_VALUE_LEN};
use crate::hsm::{WrapKeyInfo, WrapKeySpec};
use crate::keys::PublicKey;
use crate::secret::Secret;

/// What a wrap key may do: export and import objects under wrap.
fn default_capabilities() -> Capability {
    Capability::EXPORT_WRAPPED | Capability::IMPORT_WRAPPED
}

/// What the keys it wraps may carry: every signing, decryption and derivation
/// capability, and exportable-under-wrap itself (so a restored key can be backed up
/// again).
fn default_delegated() -> Capability {
    Capability::SIGN_PKCS
        | Capability::SIGN_PSS
        | Capability::SIGN_ECDSA
        | Capability::SIGN_EDDSA
        | Capability::DECRYPT_PKCS
        | Capability::DECRYPT_OAEP
        | Capability::DERIVE_ECDH
        | Capability::EXPORTABLE_UNDER_WRAP
}

fn algorithm_for(len: usize) -> Result<wrap::Algorithm> {
    Ok(match len {
        16 => wrap::Algorithm::Aes128Ccm,
        24 => wrap::Algorithm::Aes192Ccm,
        32 => wrap::Algorithm::Aes256Ccm,
        n => {
            return Err(Error::Refused(format!(
                "a wrap key is an AES key of 16, 24 or 32 bytes, not {n}"
            )))
        }
    })
}

impl YubiHsm {
    /// The wrap key labelled `label`: (id, object info).
    fn wrap_key_info(&self, label: &str) -> Result<Option<yubihsm::object::Info>> {
        caps::check_label("wrap key label", label)?;
        let found = self.find(&[Filter::Label(label_of(label)?), Filter::Type(Type::WrapKey)])?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(
                self.client()?
                    .get_object_info(one.object_id, Type::WrapKey)
                    .map_err(device("get object info"))?,
            )),
            _ => Err(Error::Refused(format!(
                "{} wrap keys are labelled {label:?}; labels must be unique",
                found.len()
            ))),
        }
    }

    fn require_wrap_key(&self, label: &str) -> Result<yubihsm::object::Info> {
        self.wrap_key_info(label)?
            .ok_or_else(|| Error::NotFound(format!("wrap key labelled {label:?}")))
    }

    /// The opaque object beside the wrap key `id` holding its check value, if any.
    fn check_value_object(&self, label: &str, id: u16) -> Result<Option<u16>> {
        let found = self.find(&[
            Filter::Id(id),
            Filter::Type(Type::Opaque),
            Filter::Label(label_of(label)?),
        ])?;
        Ok(found.first().map(|e| e.object_id))
    }

    /// Domains, capabilities and delegated capabilities for `spec`: its own, or (where
    /// zero) the session's domains and the defaults above.
    fn wrap_fields(&self, spec: &WrapKeySpec) -> Result<(yubihsm::Domain, Capability, Capability)> {
        let domains = if spec.domains == 0 {
            self.session_domains()?
        } else {
            yubihsm::Domain::from_bits(spec.domains).ok_or_else(|| Error::Field {
                path: "wrap key domains".into(),
                message: format!("0x{:04x} is not a set of domains", spec.domains),
            })?
        };
        let capabilities = match spec.capabilities {
            0 => default_capabilities(),
            c => Capability::from_bits_truncate(c),
        };
        let delegated = match spec.delegated_capabilities {
            0 => default_delegated(),
            c => Capability::from_bits_truncate(c),
        };
        Ok((domains, capabilities, delegated))
    }

    /// The spec [`Self::put_wrap_key_at`] would store for `spec`, putting nothing.
    pub(super) fn resolve_wrap_spec(&self, spec: &WrapKeySpec) -> Result<WrapKeySpec> {
        caps::check_label("wrap key label", &spec.label)?;
        let (domains, capabilities, delegated) = self.wrap_fields(spec)?;
        Ok(WrapKeySpec {
            label: spec.label.clone(),
            id: spec.id,
            domains: domains.bits(),
            capabilities: capabilities.bits(),
            delegated_capabilities: delegated.bits(),
        })
    }

    pub(super) fn put_wrap_key_at(
        &mut self,
        spec: &WrapKeySpec,
        key: &Secret,
    ) -> Result<WrapKeySpec> {
        caps::check_label("wrap key label", &spec.label)?;
        let algorithm = algorithm_for(key.len())?;
        let kcv = check_value(key.expose()).map_err(|e| Error::Refused(e.to_string()))?;
        self.check_free(&spec.label, spec.id, Type::WrapKey)?;
        if self.exists(spec.id, Type::Opaque)? {
            return Err(Error::Refused(format!(
                "the opaque object id 0x{:04x} is taken; Officiant keeps the wrap key's \
                 check value there: choose another wrap key id",
                spec.id
            )));
        }
        let (domains, capabilities, delegated) = self.wrap_fields(spec)?;
        let label = label_of(&spec.label)?;
        self.client()?
            .put_wrap_key(
                spec.id,
                label.clone(),
                domains,
                capabilities,
                delegated,
                algorithm,
                key.expose().to_vec(),
            )
            .map_err(device("put wrap key"))?;
        let kept = self.client()?.put_opaque(
            spec.id,
            label,
            domains,
            Capability::empty(),
            yubihsm::opaque::Algorithm::Data,
            kcv.to_vec(),
        );
        if let Err(e) = kept {
            // Leave no wrap key whose check value is lost.
            let _ = self.client()?.delete_object(spec.id, Type::WrapKey);
            return Err(device("put opaque (wrap key check value)")(e));
        }
        Ok(WrapKeySpec {
            label: spec.label.clone(),
            id: spec.id,
            domains: domains.bits(),
            capabilities: capabilities.bits(),
            delegated_capabilities: delegated.bits(),
        })
    }

    pub(super) fn wrap_key_by_label(&mut self, label: &str) -> Result<Option<WrapKeyInfo>> {
        let Some(info) = self.wrap_key_info(label)? else {
            return Ok(None);
        };
        let mut check = None;
        if let Some(id) = self.check_value_object(label, info.object_id)? {
            let v = self
                .client()?
                .get_opaque(id)
                .map_err(device("get opaque (wrap key check value)"))?;
            if v.len() == CHECK_VALUE_LEN {
                let mut kcv: CheckValue = [0; CHECK_VALUE_LEN];
                kcv.copy_from_slice(&v);
                check = Some(kcv);
            }
        }
        Ok(Some(WrapKeyInfo {
            spec: WrapKeySpec {
                label: label.to_string(),
                id: info.object_id,
                domains: info.domains.bits(),
                capabilities: info.capabilities.bits(),
                delegated_capabilities: info.delegated_capabilities.bits(),
            },
            check_value: check,
        }))
    }

    pub(super) fn delete_wrap_key_labelled(&mut self, label: &str) -> Result<bool> {
        let Some(info) = self.wrap_key_info(label)? else {
            return Ok(false);
        };
        if let Some(id) = self.check_value_object(label, info.object_id)? {
            self.client()?
                .delete_object(id, Type::Opaque)
                .map_err(device("delete object (wrap key check value)"))?;
        }
        self.client()?
            .delete_object(info.object_id, Type::WrapKey)
            .map_err(device("delete wrap key"))?;
        Ok(true)
    }

    pub(super) fn export_wrapped_key(&mut self, wrap_label: &str, label: &str) -> Result<Vec<u8>> {
        let key = self.key_by_label(label)?;
        if !key.capabilities.contains(Capability::EXPORTABLE_UNDER_WRAP) {
            return Err(Error::Refused(format!(
                "key {label:?} was not generated exportable-under-wrap: it can never leave \
                 the device"
            )));
        }
        let wrap_key = self.require_wrap_key(wrap_label)?;
        if !wrap_key.delegated_capabilities.contains(key.capabilities) {
            return Err(Error::Refused(format!(
                "wrap key {wrap_label:?} cannot export {label:?}: the key's capabilities are \
                 not all among the wrap key's delegated capabilities"
            )));
        }
        let msg = self
            .client()?
            .export_wrapped(wrap_key.object_id, Type::AsymmetricKey, key.object_id)
            .map_err(device("export wrapped"))?;
        Ok(msg.into_vec())
    }

    pub(super) fn import_wrapped_key(
        &mut self,
        wrap_label: &str,
        blob: &[u8],
        label: &str,
        id: u16,
        public: &PublicKey,
    ) -> Result<()> {
        caps::check_label("label", label)?;
        let wrap_key = self.require_wrap_key(wrap_label)?;
        self.check_free(label, id, Type::AsymmetricKey)?;
        let msg = wrap::Message::from_vec(blob.to_vec()).map_err(|e| {
            Error::Refused(format!(
                "the wrapped key for {label:?} is not a wrap message: {e}"
            ))
        })?;
        let handle = self
            .client()?
            .import_wrapped(wrap_key.object_id, msg)
            .map_err(|e| {
                Error::Refused(format!(
                    "the wrapped key for {label:?} does not import under wrap key {wrap_label:?} \
                 (another wrap key, or a damaged file): {e}"
                ))
            })?;
        let undo = |h: &YubiHsm, why: String| {
            let _ = h
                .client()
                .map(|c| c.delete_object(handle.object_id, handle.object_type));
            Error::Refused(why)
        };
        if handle.object_type != Type::AsymmetricKey || handle.object_id != id {
            return Err(undo(
                self,
                format!(
                    "the wrapped object for {label:?} is {} 0x{:04x}, the backup recorded key 0x{id:04x}",
                    class_of(handle.object_type, None),
                    handle.object_id
                ),
            ));
        }
        let info = self
            .client()?
            .get_object_info(id, Type::AsymmetricKey)
            .map_err(device("get object info"))?;
        let restored_label = info.label.try_as_str().unwrap_or("").to_string();
        if restored_label != label {
            return Err(undo(
                self,
                format!("the wrapped key at 0x{id:04x} is labelled {restored_label:?}, the backup recorded {label:?}"),
            ));
        }
        if self.public_key_of(id)? != *public {
            return Err(undo(
                self,
                format!("the key imported for {label:?} is not the one the backup recorded"),
            ));
        }
        Ok(())
    }
}
