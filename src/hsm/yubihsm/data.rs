//! Opaque data objects and counters: what the approval stage keeps on the device. A
//! YubiHSM 2 cannot keep an opaque object from deletion, so nothing here is immutable;
//! a counter only goes up, and of two writers at most one counts.

use yubihsm::object::{self, Filter, Type};
use yubihsm::Capability;

use super::objects::label_of;
use super::{caps, device, Error, Result, YubiHsm};
use crate::hsm::{DataObject, ObjectClass};

impl YubiHsm {
    /// Opaque data objects (not certificates) labelled exactly `label`, or all of them.
    pub(super) fn opaque_data(&self, label: Option<&str>) -> Result<Vec<object::Info>> {
        let mut filters = vec![
            Filter::Type(Type::Opaque),
            Filter::Algorithm(yubihsm::Algorithm::Opaque(yubihsm::opaque::Algorithm::Data)),
        ];
        if let Some(l) = label {
            filters.push(Filter::Label(label_of(l)?));
        }
        let client = self.client()?;
        let mut out = Vec::new();
        for e in self.find(&filters)? {
            out.push(
                client
                    .get_object_info(e.object_id, Type::Opaque)
                    .map_err(device("get object info"))?,
            );
        }
        Ok(out)
    }

    /// An opaque object id nobody uses yet, drawn at random from the upper half (keys
    /// and their certificates are usually numbered from the bottom).
    pub(super) fn free_opaque_id(&self) -> Result<u16> {
        use rand_core::RngCore;
        let used: Vec<u16> = self
            .find(&[Filter::Type(Type::Opaque)])?
            .into_iter()
            .map(|e| e.object_id)
            .collect();
        for _ in 0..64 {
            let [lo, hi, ..] = rand_core::OsRng.next_u32().to_le_bytes();
            let id = 0x8000 | (u16::from_le_bytes([lo, hi]) & 0x7fff);
            if id != 0xffff && !used.contains(&id) {
                return Ok(id);
            }
        }
        Err(Error::Refused(
            "no free opaque object id found in the upper half of the id space".into(),
        ))
    }

    /// Store `value` as an opaque data object at a free id.
    pub(super) fn put_opaque_data(&self, label: &str, value: &[u8]) -> Result<u16> {
        caps::check_label("label", label)?;
        if value.is_empty() {
            return Err(Error::Refused(format!("object {label:?} is empty")));
        }
        let id = self.free_opaque_id()?;
        let domains = self.session_domains()?;
        self.client()?
            .put_opaque(
                id,
                label_of(label)?,
                domains,
                Capability::empty(),
                yubihsm::opaque::Algorithm::Data,
                value.to_vec(),
            )
            .map_err(device("put opaque"))?;
        Ok(id)
    }

    /// The counter objects labelled `label`, with their values.
    pub(super) fn counters(&self, label: &str) -> Result<Vec<(u16, u64)>> {
        let mut out = Vec::new();
        for info in self.opaque_data(Some(label))? {
            let bytes = self
                .client()?
                .get_opaque(info.object_id)
                .map_err(device("get opaque"))?;
            let v = crate::hsm::counter_value(label, &bytes).map_err(|e| Error::DeviceAnswer {
                op: "read counter".into(),
                detail: e.to_string(),
            })?;
            out.push((info.object_id, v));
        }
        Ok(out)
    }

    pub(super) fn data_objects(&mut self, prefix: &str) -> crate::hsm::Result<Vec<DataObject>> {
        let mut out = Vec::new();
        for info in self.opaque_data(None)? {
            let label = info.label.try_as_str().unwrap_or("").to_string();
            if !label.starts_with(prefix) {
                continue;
            }
            let value = self
                .client()?
                .get_opaque(info.object_id)
                .map_err(device("get opaque"))?;
            // Any key with delete-opaque can remove it: nothing here is immutable.
            out.push(DataObject {
                label,
                value,
                immutable: false,
            });
        }
        Ok(out)
    }

    pub(super) fn store_data(
        &mut self,
        label: &str,
        value: &[u8],
        _immutable: bool,
    ) -> crate::hsm::Result<()> {
        // A YubiHSM 2 cannot keep an opaque object from deletion (capabilities say
        // `immutable_data: false`): the object is stored plainly.
        caps::check_label("label", label)?;
        if !self
            .find(&[Filter::Label(label_of(label)?), Filter::Type(Type::Opaque)])?
            .is_empty()
        {
            return Err(Error::LabelExists {
                label: label.to_string(),
                class: ObjectClass::Opaque,
            }
            .into());
        }
        self.put_opaque_data(label, value)?;
        Ok(())
    }

    pub(super) fn move_counter(
        &mut self,
        label: &str,
        expected: u64,
        value: u64,
    ) -> crate::hsm::Result<()> {
        let old = self.counters(label)?;
        let now = old.iter().map(|(_, v)| *v).max();
        crate::hsm::check_counter_step(label, now, expected, value)?;
        // An opaque object cannot be rewritten: put the new value first, then delete the
        // old. A crash between the two leaves both, and a read takes the larger.
        let new = self.put_opaque_data(label, &value.to_be_bytes())?;
        for (id, _) in old.into_iter().filter(|(id, _)| *id != new) {
            self.client()?
                .delete_object(id, Type::Opaque)
                .map_err(device("delete object"))?;
        }
        // Anyone else's new object now means two writers counted from the same value:
        // refuse (a use lost), never both.
        if self.counters(label)?.iter().any(|(id, _)| *id != new) {
            return Err(Error::Refused(format!(
                "counter {label:?} was written by another session at the same time; this write does not count"
            ))
            .into());
        }
        Ok(())
    }
}
