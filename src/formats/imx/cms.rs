//! The CMS SignedData that HAB4 CSF signatures carry (spsdk `crypto/cms.py` and CST
//! write the same shape): detached content (id-data, no eContent), one SignerInfo
//! identified by issuer and serial, digest SHA-256, signed attributes contentType,
//! signingTime and messageDigest, RSA PKCS#1 v1.5 (`rsaEncryption`) or ECDSA with
//! SHA-256 whatever the curve, no certificates inside. `openssl cms -verify -binary
//! -noverify -nointern -certfile CERT -content COVERED` accepts what this module writes.
//!
//! Built with RustCrypto's `cms` builder; a [`keys::Signer`] is adapted to the
//! `signature::Keypair + Signer` shape it wants, so the private key stays wherever the
//! signer keeps it (a token). Pure otherwise: no I/O.

use std::cell::RefCell;
use std::time::SystemTime;

use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::ContentInfo;
use cms::signed_data::{EncapsulatedContentInfo, SignedData, SignerIdentifier};
use const_oid::db::{rfc5911, rfc5912};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, OctetStringRef};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::{Attribute, AttributeValue};
use x509_cert::Certificate;

use crate::keys::{self, Encoding, HashAlg, PublicKey, SignScheme};

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// Why a CMS signature could not be made or does not check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The signer's certificate is not DER X.509 (or its issuer and serial cannot be read).
    #[error("certificate: {0}")]
    Certificate(String),
    /// The `cms` builder or DER encoder refused the SignedData.
    #[error("CMS encoding: {0}")]
    Encode(String),
    /// The key refused or failed to sign.
    #[error(transparent)]
    Key(#[from] keys::SignError),
    /// The SignedData is malformed, has the wrong shape, or its signature does not verify;
    /// the message says which.
    #[error("{0}")]
    Verify(String),
}

/// How HAB4 signs with `key`: SHA-256 always, PKCS#1 v1.5 for RSA.
pub fn scheme_for(key: &PublicKey) -> SignScheme {
    match key {
        PublicKey::Rsa { .. } => SignScheme::RsaPkcs1(HashAlg::Sha256),
        PublicKey::Ec { .. } => SignScheme::Ecdsa(HashAlg::Sha256),
    }
}

/// The signature as the builder's `Signer` returns it (DER for ECDSA).
struct DerSignature(Vec<u8>);

impl spki::SignatureBitStringEncoding for DerSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

enum Inner<'a> {
    /// A real key; the first error it gave is kept for the caller (the builder only
    /// reports that signing failed).
    Key(&'a mut dyn keys::Signer, Option<keys::SignError>),
    /// A signature of `len` bytes of 0xFF: sizes a slot before anything is signed.
    Dry(usize),
}

/// A `keys::Signer` as the `cms` builder wants a signer.
struct Adapter<'a> {
    inner: RefCell<Inner<'a>>,
    public: PublicKey,
}

impl signature::Keypair for Adapter<'_> {
    type VerifyingKey = PublicKey;
    fn verifying_key(&self) -> PublicKey {
        self.public.clone()
    }
}

impl spki::DynSignatureAlgorithmIdentifier for Adapter<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(match self.public {
            // What CST and spsdk put in a SignerInfo for RSA.
            PublicKey::Rsa { .. } => AlgorithmIdentifierOwned {
                oid: rfc5912::RSA_ENCRYPTION,
                parameters: Some(der::asn1::Null.into()),
            },
            PublicKey::Ec { .. } => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
        })
    }
}

impl signature::Signer<DerSignature> for Adapter<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<DerSignature, signature::Error> {
        let mut inner = self.inner.borrow_mut();
        match &mut *inner {
            Inner::Dry(len) => Ok(DerSignature(vec![0xFF; *len])),
            Inner::Key(signer, failed) => {
                let scheme = scheme_for(&self.public);
                let digest = scheme.hash().digest(msg);
                match keys::sign_checked(&mut **signer, scheme, &digest, Encoding::Der) {
                    Ok(sig) => Ok(DerSignature(sig)),
                    Err(e) => {
                        failed.get_or_insert(e);
                        Err(signature::Error::new())
                    }
                }
            }
        }
    }
}

/// The longest signature `key` can make, as the SignerInfo carries it.
fn max_signature_len(key: &PublicKey) -> usize {
    match key {
        PublicKey::Rsa { n, .. } => n.len(),
        PublicKey::Ec { curve, .. } => {
            // r and s with their top bit set each need a leading zero byte in DER.
            keys::ecdsa_fixed_to_der(&vec![0x80; 2 * curve.field_bytes()])
                .map(|d| d.len())
                .unwrap_or(2 * curve.field_bytes() + 9)
        }
    }
}

fn signing_time_attribute(time: SystemTime) -> Result<Attribute, Error> {
    let enc = |e: der::Error| Error::Encode(e.to_string());
    let dt = der::DateTime::from_system_time(time).map_err(enc)?;
    // RFC 5652 § 11.3: UTCTime for 1950 to 2049, GeneralizedTime otherwise.
    let value = if (1950..=2049).contains(&dt.year()) {
        der::asn1::UtcTime::from_date_time(dt)
            .map_err(enc)?
            .to_der()
    } else {
        der::asn1::GeneralizedTime::from_date_time(dt).to_der()
    }
    .map_err(enc)?;
    let mut values = der::asn1::SetOfVec::new();
    values
        .insert(AttributeValue::from_der(&value).map_err(enc)?)
        .map_err(enc)?;
    Ok(Attribute {
        oid: rfc5911::ID_SIGNING_TIME,
        values,
    })
}

fn sha256_id() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: rfc5912::ID_SHA_256,
        parameters: None,
    }
}

fn build(
    adapter: &Adapter<'_>,
    cert_der: &[u8],
    digest: &[u8; 32],
    time: SystemTime,
) -> Result<Vec<u8>, Error> {
    let enc = |e: cms::builder::Error| Error::Encode(e.to_string());
    let cert = Certificate::from_der(cert_der).map_err(|e| Error::Certificate(e.to_string()))?;
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    });
    let content = EncapsulatedContentInfo {
        econtent_type: rfc5911::ID_DATA,
        econtent: None,
    };
    let mut si =
        SignerInfoBuilder::new(adapter, sid, sha256_id(), &content, Some(digest)).map_err(enc)?;
    si.add_signed_attribute(signing_time_attribute(time)?)
        .map_err(enc)?;
    let mut sd = SignedDataBuilder::new(&content);
    sd.add_digest_algorithm(sha256_id()).map_err(enc)?;
    let built = sd.add_signer_info::<_, DerSignature>(si);
    if let Inner::Key(_, failed) = &mut *adapter.inner.borrow_mut() {
        if let Some(e) = failed.take() {
            return Err(Error::Key(e));
        }
    }
    built.map_err(enc)?;
    sd.build()
        .map_err(enc)?
        .to_der()
        .map_err(|e| Error::Encode(e.to_string()))
}

/// A detached SignedData over content whose SHA-256 is `digest`, signed by `signer`,
/// whose certificate `cert_der` names it. The signature is checked before it is used.
pub fn sign_detached(
    signer: &mut dyn keys::Signer,
    cert_der: &[u8],
    digest: &[u8; 32],
    time: SystemTime,
) -> Result<Vec<u8>, Error> {
    let public = signer.public_key().clone();
    let adapter = Adapter {
        inner: RefCell::new(Inner::Key(signer, None)),
        public,
    };
    let der = build(&adapter, cert_der, digest, time)?;
    // The whole structure, read back, must verify: what the ROM will check.
    verify_detached(&der, &adapter.public, Some(cert_der), digest)?;
    Ok(der)
}

/// The most bytes [`sign_detached`] can write for `key` with `cert_der`: sizes the slot
/// a signature gets in a CSF before it is made.
pub fn max_len(key: &PublicKey, cert_der: &[u8], time: SystemTime) -> Result<usize, Error> {
    let adapter = Adapter {
        inner: RefCell::new(Inner::Dry(max_signature_len(key))),
        public: key.clone(),
    };
    build(&adapter, cert_der, &[0; 32], time).map(|d| d.len())
}

/// What a verified SignedData says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The signature scheme the SignerInfo uses (RSA PKCS#1 v1.5 or ECDSA, SHA-256).
    pub scheme: SignScheme,
    /// The signingTime attribute, if any (RFC 3339).
    pub signing_time: Option<String>,
}

/// Check a detached SignedData: one SignerInfo, SHA-256, contentType id-data,
/// messageDigest = `digest`, and its signature over the signed attributes with `key`.
/// With `cert_der`, the SignerInfo must also name that certificate.
pub fn verify_detached(
    der_bytes: &[u8],
    key: &PublicKey,
    cert_der: Option<&[u8]>,
    digest: &[u8; 32],
) -> Result<Verified, Error> {
    let v = |m: String| Error::Verify(m);
    let ci =
        ContentInfo::from_der(der_bytes).map_err(|e| v(format!("not a CMS ContentInfo: {e}")))?;
    if ci.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(v(format!(
            "content type {} is not SignedData",
            ci.content_type
        )));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| v(format!("malformed SignedData: {e}")))?;
    if sd.encap_content_info.econtent.is_some() {
        return Err(v(
            "the SignedData carries its content; HAB wants it detached".into(),
        ));
    }
    let infos: Vec<_> = sd.signer_infos.0.iter().collect();
    let [si] = infos.as_slice() else {
        return Err(v(format!(
            "{} SignerInfos, HAB reads exactly one",
            infos.len()
        )));
    };
    if si.digest_alg.oid != rfc5912::ID_SHA_256 {
        return Err(v(format!(
            "digest algorithm {}, HAB4 signs SHA-256",
            si.digest_alg.oid
        )));
    }
    if let Some(cert) = cert_der {
        let cert = Certificate::from_der(cert).map_err(|e| Error::Certificate(e.to_string()))?;
        let want = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.tbs_certificate.issuer,
            serial_number: cert.tbs_certificate.serial_number,
        });
        if si.sid != want {
            return Err(v(
                "the SignerInfo names a different certificate (issuer and serial)".into(),
            ));
        }
    }
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| v("no signed attributes".into()))?;
    let attr = |oid: ObjectIdentifier| attrs.iter().find(|a| a.oid == oid);
    let ct = attr(rfc5911::ID_CONTENT_TYPE).ok_or_else(|| v("no contentType attribute".into()))?;
    let ct_ok = ct.values.len() == 1
        && ct
            .values
            .iter()
            .all(|x| x.decode_as::<ObjectIdentifier>().ok() == Some(rfc5911::ID_DATA));
    if !ct_ok {
        return Err(v("the contentType attribute is not id-data".into()));
    }
    let md =
        attr(rfc5911::ID_MESSAGE_DIGEST).ok_or_else(|| v("no messageDigest attribute".into()))?;
    let md_ok = md.values.len() == 1
        && md.values.iter().all(|x| {
            x.decode_as::<OctetStringRef<'_>>()
                .is_ok_and(|o| o.as_bytes() == digest)
        });
    if !md_ok {
        return Err(v(
            "its messageDigest is not the SHA-256 of the covered bytes: covered bytes altered"
                .into(),
        ));
    }
    let scheme = match (si.signature_algorithm.oid, key) {
        (o, PublicKey::Rsa { .. }) if o == rfc5912::RSA_ENCRYPTION || o == SHA256_WITH_RSA => {
            SignScheme::RsaPkcs1(HashAlg::Sha256)
        }
        (o, PublicKey::Ec { .. }) if o == ECDSA_WITH_SHA256 => SignScheme::Ecdsa(HashAlg::Sha256),
        (o, k) => {
            return Err(v(format!(
                "signature algorithm {o} does not fit the {} key",
                k.describe()
            )))
        }
    };
    let signed = attrs.to_der().map_err(|e| Error::Encode(e.to_string()))?;
    key.verify_digest(
        scheme,
        &HashAlg::Sha256.digest(&signed),
        si.signature.as_bytes(),
    )
    .map_err(|_| v("the signature does not verify with the certificate's key".into()))?;
    let signing_time = attr(rfc5911::ID_SIGNING_TIME)
        .and_then(|a| a.values.iter().next())
        .and_then(|x| x.to_der().ok())
        .and_then(|d| x509_cert::time::Time::from_der(&d).ok())
        .map(|t| t.to_string());
    Ok(Verified {
        scheme,
        signing_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_slots_fit_the_longest_der_signature() {
        use crate::keys::Curve;
        for (c, want) in [(Curve::P256, 72), (Curve::P384, 104), (Curve::P521, 141)] {
            let k = PublicKey::Ec {
                curve: c,
                point: vec![4; 1 + 2 * c.field_bytes()],
            };
            assert_eq!(max_signature_len(&k), want, "{}", c.name());
        }
    }
}
