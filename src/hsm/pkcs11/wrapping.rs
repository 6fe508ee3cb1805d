//! Key backup: the trusted AES wrap key (put in an SO session), and keys exported and
//! imported under it with CKM_AES_KEY_WRAP_PAD (see the module doc of `pkcs11`). What a
//! backup holds is `crate::custody`'s business.

use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass as CkClass, ObjectHandle};

use super::errors::{ck, ckr_name, rv_of};
use super::templates::{private_template_with, public_key_template, zeroize_template};
use super::Pkcs11Token;
use crate::hsm::{Error, ObjectClass, Result, UserType, WrapKeyInfo, WrapKeySpec};
use crate::keys::PublicKey;
use crate::secret::Secret;

impl Pkcs11Token {
    pub(super) fn wrap_handle(&mut self, wrap_label: &str) -> Result<ObjectHandle> {
        self.one(CkClass::SECRET_KEY, wrap_label)?
            .ok_or_else(|| Error::NotFound {
                what: format!("wrap key labelled {wrap_label:?}"),
            })
    }

    pub(super) fn put_wrap(&mut self, spec: &WrapKeySpec, key: &Secret) -> Result<WrapKeySpec> {
        if self.bound()?.logged_in != Some(UserType::So) {
            return Err(Error::NotLoggedIn(
                "putting a wrap key needs the SO logged in: only the SO may mark it trusted \
                 (CKA_TRUSTED), which exportable keys require of their wrap key"
                    .into(),
            ));
        }
        self.require_mechanism(MechanismType::AES_KEY_WRAP_PAD, "wrapping keys for backup")?;
        let kcv = crate::hsm::wrap::check_value(key.expose())?;
        let id = spec.id.to_be_bytes();
        self.check_free(&[CkClass::SECRET_KEY], &spec.label, &id)?;
        let mut t = vec![
            Attribute::Class(CkClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            // An SO session creates only public objects (SoftHSM); the key stays
            // sensitive and unextractable, so "public" shows only that it exists. A
            // public key is usable in a session with no login, though: it only wraps
            // (which needs the private key to be wrapped, so a login), and unwraps only
            // while a restore imports with it (`import_under_wrap`), or anyone at the
            // token with a backup file could unwrap its keys into objects of their own.
            Attribute::Private(false),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(false),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
            Attribute::Trusted(true),
            Attribute::Label(spec.label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
            Attribute::Value(key.expose().to_vec()),
            // The token checks it against the key (SoftHSM refuses a wrong one).
            Attribute::CheckValue(kcv.to_vec()),
        ];
        let created = self.session().and_then(|s| {
            s.create_object(&t)
                .map_err(|e| ck(&format!("putting wrap key {:?}", spec.label), e))
        });
        zeroize_template(&mut t);
        created?;
        Ok(WrapKeySpec::new(&spec.label, spec.id))
    }

    pub(super) fn wrap_info(&mut self, label: &str) -> Result<Option<WrapKeyInfo>> {
        let Some(h) = self.one(CkClass::SECRET_KEY, label)? else {
            return Ok(None);
        };
        let attrs = self
            .session()?
            .get_attributes(h, &[AttributeType::Id, AttributeType::CheckValue])
            .map_err(|e| ck(&format!("reading wrap key {label:?}"), e))?;
        let mut spec = WrapKeySpec::new(label, 0);
        let mut check_value = None;
        for a in attrs {
            match a {
                Attribute::Id(i) if i.len() == 2 => spec.id = u16::from_be_bytes([i[0], i[1]]),
                Attribute::CheckValue(v) if v.len() == crate::hsm::wrap::CHECK_VALUE_LEN => {
                    let mut kcv = [0u8; crate::hsm::wrap::CHECK_VALUE_LEN];
                    kcv.copy_from_slice(&v);
                    check_value = Some(kcv);
                }
                _ => {}
            }
        }
        Ok(Some(WrapKeyInfo { spec, check_value }))
    }

    pub(super) fn delete_wrap(&mut self, label: &str) -> Result<bool> {
        let hits = self.find_objects(CkClass::SECRET_KEY, Some(label), None)?;
        for &h in &hits {
            self.session()?
                .destroy_object(h)
                .map_err(|e| ck(&format!("deleting wrap key {label:?}"), e))?;
        }
        Ok(!hits.is_empty())
    }

    pub(super) fn export_under_wrap(&mut self, wrap_label: &str, label: &str) -> Result<Vec<u8>> {
        let key = self
            .one(CkClass::PRIVATE_KEY, label)?
            .ok_or_else(|| Error::NotFound {
                what: format!("private key labelled {label:?}"),
            })?;
        let extractable = self
            .session()?
            .get_attributes(key, &[AttributeType::Extractable])
            .map_err(|e| ck(&format!("reading key {label:?}"), e))?
            .iter()
            .any(|a| matches!(a, Attribute::Extractable(true)));
        if !extractable {
            return Err(Error::Refused(format!(
                "key {label:?} was not generated exportable-under-wrap (CKA_EXTRACTABLE is \
                 false): it can never leave the token"
            )));
        }
        let wrap = self.wrap_handle(wrap_label)?;
        self.session()?
            .wrap_key(&Mechanism::AesKeyWrapPad, wrap, key)
            .map_err(|e| match rv_of(&e) {
                Some(RvError::KeyNotWrappable | RvError::WrappingKeyTypeInconsistent) => {
                    Error::Refused(format!(
                        "the token will not wrap {label:?} under {wrap_label:?} ({}): a key \
                         marked CKA_WRAP_WITH_TRUSTED needs a wrap key with CKA_TRUSTED",
                        ckr_name(rv_of(&e).unwrap_or(RvError::KeyNotWrappable))
                    ))
                }
                _ => ck(&format!("wrapping {label:?} under {wrap_label:?}"), e),
            })
    }

    pub(super) fn import_under_wrap(
        &mut self,
        wrap_label: &str,
        blob: &[u8],
        label: &str,
        id: &[u8],
        public: &PublicKey,
    ) -> Result<()> {
        let wrap = self.wrap_handle(wrap_label)?;
        self.check_free(&[CkClass::PRIVATE_KEY], label, id)?;
        // The public half first: an interrupted import leaves at most a public key,
        // which the next attempt takes over if it is this key's.
        let mut created_public = None;
        match self.one(CkClass::PUBLIC_KEY, label)? {
            Some(h) if self.read_public(h, CkClass::PUBLIC_KEY)? == *public => {}
            Some(_) => {
                return Err(Error::LabelExists {
                    label: label.to_string(),
                    class: ObjectClass::PublicKey,
                })
            }
            None => {
                self.check_free(&[CkClass::PUBLIC_KEY], label, id)?;
                let t = public_key_template(label, id, public)?;
                let h = self
                    .session()?
                    .create_object(&t)
                    .map_err(|e| ck(&format!("storing the public half of {label:?}"), e))?;
                created_public = Some(h);
            }
        }
        let mut t = private_template_with(label, id, true);
        t.push(Attribute::Class(CkClass::PRIVATE_KEY));
        t.push(Attribute::KeyType(match public {
            PublicKey::Ec { .. } => KeyType::EC,
            PublicKey::Rsa { .. } => KeyType::RSA,
        }));
        // The wrap key unwraps only for this call (see `put_wrap`).
        self.set_unwrap(wrap, wrap_label, true)?;
        crate::output::crash_point();
        let unwrapped = self.session().and_then(|s| {
            s.unwrap_key(&Mechanism::AesKeyWrapPad, wrap, blob, &t)
                .map_err(|e| match rv_of(&e) {
                    Some(
                        RvError::WrappedKeyInvalid
                        | RvError::EncryptedDataInvalid
                        | RvError::WrappedKeyLenRange,
                    ) => Error::Refused(format!(
                        "the wrapped key for {label:?} does not unwrap under wrap key \
                         {wrap_label:?} (another wrap key, or a damaged file)"
                    )),
                    _ => ck(&format!("unwrapping {label:?}"), e),
                })
        });
        crate::output::crash_point();
        let closed = self.set_unwrap(wrap, wrap_label, false);
        if let Err(e) = unwrapped {
            if let Some(h) = created_public {
                let _ = self.session()?.destroy_object(h);
            }
            return Err(e);
        }
        closed
    }

    /// Let the wrap key unwrap (CKA_UNWRAP), or no longer.
    pub(super) fn set_unwrap(
        &mut self,
        wrap: ObjectHandle,
        wrap_label: &str,
        on: bool,
    ) -> Result<()> {
        self.session()?
            .update_attributes(wrap, &[Attribute::Unwrap(on)])
            .map_err(|e| {
                ck(
                    &format!(
                        "{} wrap key {wrap_label:?} for unwrapping",
                        if on { "enabling" } else { "disabling" }
                    ),
                    e,
                )
            })
    }
}
