//! The bytes a PKCS#11 module returns, decoded: attribute values into an object's class,
//! label, id, flags and public key. A module is code we do not control (a vendor's, or a
//! broken one), so its answers are input like any file: [`decode_raw`] is the pure entry
//! point the fuzz target and `tests/it/parsers_never_panic.rs` drive, through cryptoki's
//! own conversion from `CK_ATTRIBUTE` and then through ours, exactly as `list_objects`
//! and `public_key` decode a live module's answers.

use cryptoki::object::Attribute;
use cryptoki_sys::{CK_ATTRIBUTE, CK_ULONG};

use crate::hsm::{KeyFlags, ObjectClass};
use crate::keys::PublicKey;

/// A label as a module returns it (CKA_LABEL is bytes; invalid UTF-8 is shown, not
/// refused).
pub(super) fn label(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What an object's attributes say.
#[derive(Debug)]
pub struct Decoded {
    pub class: Option<ObjectClass>,
    pub label: String,
    pub id: Vec<u8>,
    pub flags: KeyFlags,
    /// The public key (or an error, as text): from CKA_MODULUS/CKA_PUBLIC_EXPONENT,
    /// CKA_EC_PARAMS/CKA_EC_POINT, or a certificate's CKA_VALUE.
    pub public_key: Result<PublicKey, String>,
}

/// Decode attribute records as a module would return them: each is a 4-byte big-endian
/// attribute type, a 2-byte big-endian length and that many value bytes. Each becomes a
/// `CK_ATTRIBUTE` over those bytes, converted by cryptoki (as for a live module), then
/// decoded by the same functions that read a token's objects. `Err` when a record is
/// cut short or cryptoki refuses a value.
pub fn decode_raw(data: &[u8]) -> Result<Decoded, String> {
    let mut attrs = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 6 {
            return Err(format!("{} bytes left, a record needs 6", rest.len()));
        }
        let kind = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
        let value = rest
            .get(6..6 + len)
            .ok_or_else(|| format!("a value of {len} bytes with {} left", rest.len() - 6))?
            .to_vec();
        rest = &rest[6 + len..];
        // The struct a module fills: a pointer to the value and its length. cryptoki reads
        // exactly `ulValueLen` bytes from it, and `value` outlives the conversion.
        let raw = CK_ATTRIBUTE {
            type_: CK_ULONG::from(kind),
            pValue: value.as_ptr() as *mut std::ffi::c_void,
            ulValueLen: value.len() as CK_ULONG,
        };
        let a = Attribute::try_from(raw).map_err(|e| format!("attribute {kind:#x}: {e}"))?;
        attrs.push(a);
    }
    Ok(decode(&attrs))
}

/// Decode attributes already converted by cryptoki.
pub fn decode(attrs: &[Attribute]) -> Decoded {
    let mut d = Decoded {
        class: None,
        label: String::new(),
        id: Vec::new(),
        flags: KeyFlags::default(),
        public_key: Err(String::new()),
    };
    for a in attrs {
        match a {
            Attribute::Class(c) => d.class = Some(super::our_class(*c)),
            Attribute::Label(l) => d.label = label(l),
            Attribute::Id(i) => d.id.clone_from(i),
            _ => {}
        }
    }
    d.flags = super::flags_from(attrs);
    d.public_key = super::public_from_attrs(attrs).map_err(|e| e.to_string());
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u32, value: &[u8]) -> Vec<u8> {
        let mut r = kind.to_be_bytes().to_vec();
        r.extend_from_slice(&(value.len() as u16).to_be_bytes());
        r.extend_from_slice(value);
        r
    }

    #[test]
    fn a_public_ec_key_as_a_module_returns_it() {
        let k = PublicKey::from_bytes(include_bytes!("../../../tests/fixtures/keys/p256.pub.pem"))
            .unwrap();
        let (curve_der, point) = match &k {
            PublicKey::Ec { curve, point } => (
                der::Encode::to_der(&curve.oid()).unwrap(),
                der::Encode::to_der(&der::asn1::OctetStringRef::new(point).unwrap()).unwrap(),
            ),
            _ => unreachable!(),
        };
        let class = (cryptoki_sys::CKO_PUBLIC_KEY as CK_ULONG).to_ne_bytes();
        let mut data = record(cryptoki_sys::CKA_CLASS as u32, &class);
        data.extend(record(cryptoki_sys::CKA_LABEL as u32, b"fw"));
        data.extend(record(cryptoki_sys::CKA_ID as u32, &[1, 2]));
        data.extend(record(cryptoki_sys::CKA_LOCAL as u32, &[1]));
        data.extend(record(cryptoki_sys::CKA_EC_PARAMS as u32, &curve_der));
        data.extend(record(cryptoki_sys::CKA_EC_POINT as u32, &point));
        let d = decode_raw(&data).unwrap();
        assert_eq!(d.class, Some(ObjectClass::PublicKey));
        assert_eq!((d.label.as_str(), d.id.as_slice()), ("fw", &[1u8, 2][..]));
        assert_eq!(d.flags.local, Some(true));
        assert_eq!(d.public_key.unwrap(), k);
        // Cut short, or a boolean of the wrong size: refused, never a panic.
        assert!(decode_raw(&data[..data.len() - 1]).is_err());
        assert!(decode_raw(&record(cryptoki_sys::CKA_LOCAL as u32, &[1, 1])).is_err());
    }
}
