//! Public data objects and private counters: what the approval stage keeps on the token.
//! A counter only goes up, and of two sessions that read the same value at most one moves
//! it. What they hold is `crate::approvals`' business.

use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, ObjectClass as CkClass, ObjectHandle};

use super::errors::{ck, rv_of};
use super::Pkcs11Token;
use crate::hsm::{DataObject, Error, Result};

impl Pkcs11Token {
    /// The private data objects labelled `label` with their counter values.
    pub(super) fn counters(&mut self, label: &str) -> Result<Vec<(ObjectHandle, u64)>> {
        let handles = self
            .session()?
            .find_objects(&[
                Attribute::Class(CkClass::DATA),
                Attribute::Private(true),
                Self::label_attr(label),
            ])
            .map_err(|e| ck(&format!("searching counter {label:?}"), e))?;
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            let attrs = self
                .session()?
                .get_attributes(h, &[AttributeType::Value])
                .map_err(|e| ck(&format!("reading counter {label:?}"), e))?;
            let bytes = match attrs.first() {
                Some(Attribute::Value(v)) => v.as_slice(),
                _ => &[],
            };
            out.push((h, crate::hsm::counter_value(label, bytes)?));
        }
        Ok(out)
    }

    pub(super) fn data_objects(&mut self, prefix: &str) -> Result<Vec<DataObject>> {
        let handles = self
            .session()?
            .find_objects(&[Attribute::Class(CkClass::DATA), Attribute::Private(false)])
            .map_err(|e| ck("searching data objects", e))?;
        let mut out = Vec::new();
        for h in handles {
            let label = match self
                .session()?
                .get_attributes(h, &[AttributeType::Label])
                .map_err(|e| ck("reading a data object's label", e))?
                .first()
            {
                Some(Attribute::Label(l)) => String::from_utf8_lossy(l).into_owned(),
                _ => continue,
            };
            if !label.starts_with(prefix) {
                continue;
            }
            // A token that does not know CKA_DESTROYABLE leaves it out: destroyable.
            let attrs = self
                .session()?
                .get_attributes(
                    h,
                    &[
                        AttributeType::Value,
                        AttributeType::Modifiable,
                        AttributeType::Destroyable,
                    ],
                )
                .map_err(|e| ck(&format!("reading data object {label:?}"), e))?;
            let (mut value, mut modifiable, mut destroyable) = (Vec::new(), true, true);
            for a in attrs {
                match a {
                    Attribute::Value(v) => value = v,
                    Attribute::Modifiable(b) => modifiable = b,
                    Attribute::Destroyable(b) => destroyable = b,
                    _ => {}
                }
            }
            out.push(DataObject {
                label,
                value,
                immutable: !modifiable && !destroyable,
            });
        }
        Ok(out)
    }

    pub(super) fn store_data(&mut self, label: &str, value: &[u8], immutable: bool) -> Result<()> {
        self.check_free(&[CkClass::DATA], label, &[])?;
        let mut t = vec![
            Attribute::Class(CkClass::DATA),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Application(b"officiant".to_vec()),
            Attribute::Value(value.to_vec()),
        ];
        if immutable {
            t.extend([Attribute::Modifiable(false), Attribute::Destroyable(false)]);
        }
        self.session()?
            .create_object(&t)
            .map(|_| ())
            .map_err(|e| ck(&format!("writing data object {label:?}"), e))
    }

    pub(super) fn counter(&mut self, label: &str) -> Result<Option<u64>> {
        let mut max = None;
        for (_, v) in self.counters(label)? {
            max = max.max(Some(v));
        }
        Ok(max)
    }

    pub(super) fn move_counter(&mut self, label: &str, expected: u64, value: u64) -> Result<()> {
        let found = self.counters(label)?;
        let now = found.iter().map(|(_, v)| *v).max();
        crate::hsm::check_counter_step(label, now, expected, value)?;
        // SoftHSM keeps a data object's CKA_VALUE read-only after creation: write the
        // new value as a new object, then destroy the old ones. A crash between the two
        // leaves both, and a read takes the larger.
        let what = format!("writing counter {label:?}");
        let t = [
            Attribute::Class(CkClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Application(b"officiant counter".to_vec()),
            Attribute::Value(value.to_be_bytes().to_vec()),
        ];
        let new = self
            .session()?
            .create_object(&t)
            .map_err(|e| ck(&what, e))?;
        let raced = || {
            Error::Refused(format!(
                "counter {label:?} was written by another session at the same time; this write does not count"
            ))
        };
        for (h, _) in found.into_iter().filter(|(h, _)| *h != new) {
            match self.session()?.destroy_object(h) {
                Ok(()) => {}
                // Destroyed by a concurrent writer since our read.
                Err(e) if rv_of(&e) == Some(RvError::ObjectHandleInvalid) => return Err(raced()),
                Err(e) => return Err(ck(&what, e)),
            }
        }
        // Anyone else's new object now means two writers counted from the same value:
        // refuse (a use lost), never both.
        if self.counters(label)?.iter().any(|(h, _)| *h != new) {
            return Err(raced());
        }
        Ok(())
    }
}
