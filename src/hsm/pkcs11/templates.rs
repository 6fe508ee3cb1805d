//! The attribute templates of the objects we create (both halves of a key pair, a public
//! key alone) and the encodings of EC values in them; zeroizing a template's secrets.

use cryptoki::object::{Attribute, KeyType, ObjectClass as CkClass};
use der::Encode;
use zeroize::Zeroize;

use crate::hsm::{Error, Result};
use crate::keys::{Curve, PublicKey};

pub(super) fn ec_params(curve: Curve) -> Result<Vec<u8>> {
    curve.oid().to_der().map_err(|source| Error::Der {
        what: "encoding curve OID".into(),
        source,
    })
}

pub(super) fn ec_point_der(point: &[u8]) -> Result<Vec<u8>> {
    der::asn1::OctetStringRef::new(point)
        .and_then(|o| o.to_der())
        .map_err(|source| Error::Der {
            what: "encoding CKA_EC_POINT".into(),
            source,
        })
}

/// Attributes both halves of every key pair we make or import get.
pub(super) fn public_template(label: &str, id: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ]
}

pub(super) fn private_template(label: &str, id: &[u8]) -> Vec<Attribute> {
    private_template_with(label, id, false)
}

/// A private key exportable under wrap is extractable, but only under a trusted wrap key
/// (and stays sensitive: never in the clear).
pub(super) fn private_template_with(label: &str, id: &[u8], exportable: bool) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Extractable(exportable),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    if exportable {
        t.push(Attribute::WrapWithTrusted(true));
    }
    t
}

/// The public half of `key`, as a CKO_PUBLIC_KEY template.
pub(super) fn public_key_template(
    label: &str,
    id: &[u8],
    key: &PublicKey,
) -> Result<Vec<Attribute>> {
    let mut t = public_template(label, id);
    t.push(Attribute::Class(CkClass::PUBLIC_KEY));
    match key {
        PublicKey::Ec { curve, point } => {
            t.push(Attribute::KeyType(KeyType::EC));
            t.push(Attribute::EcParams(ec_params(*curve)?));
            t.push(Attribute::EcPoint(ec_point_der(point)?));
        }
        PublicKey::Rsa { n, e } => {
            t.push(Attribute::KeyType(KeyType::RSA));
            t.push(Attribute::Modulus(n.clone()));
            t.push(Attribute::PublicExponent(e.clone()));
        }
    }
    Ok(t)
}

/// Overwrite every secret value in a template (C_CreateObject has copied it).
pub(super) fn zeroize_template(t: &mut [Attribute]) {
    for a in t {
        match a {
            Attribute::Value(v)
            | Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v) => v.zeroize(),
            _ => {}
        }
    }
}
