//! The bytes a PKCS#11 module returns, decoded: attribute values into an object's class,
//! label, id, flags and public key. A module is code we do not control (a vendor's, or a
//! broken one), so its answers are input like any file: [`decode_raw`] is the pure entry
//! point the fuzz target and `tests/it/parsers_never_panic/` drive, through cryptoki's
//! own conversion from `CK_ATTRIBUTE` and then through ours, exactly as `list_objects`
//! and `public_key` decode a live module's answers.

use cryptoki_sys::{CK_ATTRIBUTE, CK_ULONG};

use cryptoki::object::{Attribute, ObjectClass as CkClass};
use der::Decode;

use crate::hsm::{Error, KeyFlags, ObjectClass};
use crate::keys::{Curve, PublicKey};

/// A label as a module returns it (CKA_LABEL is bytes; invalid UTF-8 is shown, not
/// refused).
pub(super) fn label(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What an object's attributes say.
#[derive(Debug)]
pub struct Decoded {
    /// CKA_CLASS, when given.
    pub class: Option<ObjectClass>,
    /// CKA_LABEL (bytes that are not UTF-8 shown replaced).
    pub label: String,
    /// CKA_ID.
    pub id: Vec<u8>,
    /// The key attributes given.
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
            Attribute::Class(c) => d.class = Some(our_class(*c)),
            Attribute::Label(l) => d.label = label(l),
            Attribute::Id(i) => d.id.clone_from(i),
            _ => {}
        }
    }
    d.flags = flags_from(attrs);
    d.public_key = public_from_attrs(attrs).map_err(|e| e.to_string());
    d
}

// The decoding of a live module's answers (list_objects, public_key) and of the fuzz
// target's alike.

pub(super) fn our_class(c: CkClass) -> ObjectClass {
    if c == CkClass::PRIVATE_KEY {
        ObjectClass::PrivateKey
    } else if c == CkClass::PUBLIC_KEY {
        ObjectClass::PublicKey
    } else if c == CkClass::CERTIFICATE {
        ObjectClass::Certificate
    } else if c == CkClass::DATA {
        ObjectClass::Data
    } else {
        ObjectClass::Other(c.to_string())
    }
}

pub(super) fn ck_class(c: &ObjectClass) -> Option<CkClass> {
    match c {
        ObjectClass::PrivateKey => Some(CkClass::PRIVATE_KEY),
        ObjectClass::PublicKey => Some(CkClass::PUBLIC_KEY),
        ObjectClass::Certificate | ObjectClass::Opaque => Some(CkClass::CERTIFICATE),
        ObjectClass::Data => Some(CkClass::DATA),
        ObjectClass::WrapKey => Some(CkClass::SECRET_KEY),
        _ => None,
    }
}

/// CKA_EC_POINT is a DER OCTET STRING around the SEC1 point; some tokens give it bare.
pub(super) fn unwrap_ec_point(curve: Curve, v: &[u8]) -> crate::hsm::Result<Vec<u8>> {
    let raw_len = 1 + 2 * curve.field_bytes();
    if v.len() == raw_len && v[0] == 0x04 {
        return Ok(v.to_vec());
    }
    der::asn1::OctetString::from_der(v)
        .map(|o| o.as_bytes().to_vec())
        .map_err(|source| Error::Der {
            what: "CKA_EC_POINT is not a DER OCTET STRING".into(),
            source,
        })
}

pub(super) fn curve_from_params(params: &[u8]) -> crate::hsm::Result<Curve> {
    let oid = const_oid::ObjectIdentifier::from_der(params)
        .map_err(|_| Error::Unsupported("CKA_EC_PARAMS is not a named curve OID".into()))?;
    Curve::from_oid(&oid).ok_or_else(|| Error::Unsupported(format!("EC curve {oid}")))
}

pub(super) fn public_from_attrs(attrs: &[Attribute]) -> crate::hsm::Result<PublicKey> {
    let mut params = None;
    let mut point = None;
    let mut n = None;
    let mut e = None;
    let mut value = None;
    let mut class = None;
    for a in attrs {
        match a {
            Attribute::EcParams(v) => params = Some(v.as_slice()),
            Attribute::EcPoint(v) => point = Some(v.as_slice()),
            Attribute::Modulus(v) => n = Some(v.as_slice()),
            Attribute::PublicExponent(v) => e = Some(v.as_slice()),
            Attribute::Value(v) => value = Some(v.as_slice()),
            Attribute::Class(c) => class = Some(*c),
            _ => {}
        }
    }
    if class == Some(CkClass::CERTIFICATE) {
        let der = value.ok_or_else(|| Error::Backend("certificate without CKA_VALUE".into()))?;
        return Ok(PublicKey::from_certificate_der(der)?);
    }
    if let (Some(n), Some(e)) = (n, e) {
        return Ok(PublicKey::rsa(n, e)?);
    }
    if let (Some(params), Some(point)) = (params, point) {
        let curve = curve_from_params(params)?;
        return Ok(PublicKey::ec(curve, &unwrap_ec_point(curve, point)?)?);
    }
    Err(Error::NotFound {
        what: "public key material (CKA_EC_POINT or CKA_MODULUS)".into(),
    })
}

pub(super) fn flags_from(attrs: &[Attribute]) -> KeyFlags {
    let mut f = KeyFlags::default();
    for a in attrs {
        match a {
            Attribute::Sensitive(b) => f.sensitive = Some(*b),
            Attribute::AlwaysSensitive(b) => f.always_sensitive = Some(*b),
            Attribute::Extractable(b) => f.extractable = Some(*b),
            Attribute::NeverExtractable(b) => f.never_extractable = Some(*b),
            Attribute::Local(b) => f.local = Some(*b),
            Attribute::Private(b) => f.private = Some(*b),
            _ => {}
        }
    }
    f
}

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "test fixtures: small literal values and loop counters"
)]
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

    #[test]
    fn ec_point_accepts_der_and_bare() {
        let mut bare = vec![4u8];
        bare.extend([7u8; 64]);
        let der = crate::hsm::pkcs11::templates::ec_point_der(&bare).unwrap();
        assert_eq!(der[..2], [0x04, 0x41]);
        assert_eq!(unwrap_ec_point(Curve::P256, &der).unwrap(), bare);
        assert_eq!(unwrap_ec_point(Curve::P256, &bare).unwrap(), bare);
    }
}
