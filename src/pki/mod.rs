//! Certificate issuance with a signing key it never sees: pure, bytes in and bytes out.
//!
//! The TBS certificate is built here, field by field, so the bytes match what the vendor
//! scripts produce; only its digest goes to the issuer's [`keys::Signer`] (a key on a
//! token, `signing::TokenSigner`, or a file key, `keys::FileSigner`). Every certificate is
//! checked against the issuer's public key before it is returned.
//!
//! An `issue-certificate` step opens the issuer's key and calls [`issue`] with it, the
//! subject's public key, the issuer (self-signed, or the issuer certificate's DER/PEM), a
//! scheme ([`default_scheme`]), a serial and a validity; it gets DER back ([`to_pem`] for
//! the PEM twin). [`hab4`] gives the names, serials and order of hab4_pki_tree.sh's tree;
//! [`tbbr`] builds cert_create's TF-A chain.
//!
//! Must not touch: `hsm` (tokens, labels on tokens, sessions), files, the transcript.

#[cfg(test)]
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    reason = "test fixtures: small literal values and loop counters"
)]
mod file_key_tests;
pub mod hab4;
pub mod profiles;
pub mod signer;
pub mod tbbr;

use std::time::{Duration, SystemTime};

use der::asn1::{Any, BitString, SetOfVec};
use der::{Decode, Encode, Tag};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::certificate::{Certificate, TbsCertificate, Version};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::keys::{self, PublicKey, SignError, SignScheme, Signer};

pub use profiles::Profile;

/// Why a certificate could not be issued or checked. Every message names the field, key or
/// certificate at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the new certificate cannot be encoded as asked (validity, name, serial).
    #[error("certificate field {field}: {msg}")]
    Field {
        /// The field's name (`validity`, `subject`, `serial`).
        field: &'static str,
        /// What is wrong with it.
        msg: String,
    },
    /// The issuer certificate (DER or PEM) cannot be read, or is not a CA that may sign
    /// certificates.
    #[error("issuer certificate: {0}")]
    Issuer(String),
    /// A key could not be read or could not sign; `role` names what it is for ("issuer",
    /// "SoC firmware"), the source names the key and keeps its own error.
    #[error("{role} {source}")]
    Key {
        /// What the key is for in the chain (`issuer`, `SoC firmware`).
        role: String,
        /// The key's own error, naming it.
        #[source]
        source: SignError,
    },
    /// The signing key is not the issuer's key, or a key is not the one a chain names.
    #[error("key mismatch: {0}")]
    Mismatch(String),
    /// A key type, curve or signature algorithm this profile or Officiant cannot use.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// DER encoding or decoding failed (TBS, extension, signature); the message names the
    /// part.
    #[error("encoding: {0}")]
    Encode(String),
    /// The signature just made does not verify with the issuer's public key: nothing is
    /// returned.
    #[error("the new certificate does not verify with the issuer's public key")]
    BadSignature,
    /// A request that does not fit its profile (self-signed or not, SRK index, image hash
    /// length).
    #[error("{what}: {msg}")]
    Input {
        /// What was asked for (`profile hab4-srk`, `SRK index`, `BL31 hash`).
        what: String,
        /// Why it does not fit.
        msg: String,
    },
}

/// This module's result.
pub type Result<T> = std::result::Result<T, Error>;

/// Who signs the new certificate.
#[derive(Clone, Copy, Debug)]
pub enum Issuer<'a> {
    /// The subject key signs its own certificate (issuer name = subject name).
    SelfSigned,
    /// The holder of this certificate (DER or PEM) signs; its key must be the signer's
    /// public key, and it must be a CA.
    Certificate(&'a [u8]),
}

/// When a certificate is valid: from `not_before` for `days` days (as `openssl -days`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Start of validity, truncated to whole seconds (RFC 5280 notBefore).
    pub not_before: SystemTime,
    /// Days of validity from `not_before`, as `openssl -days`.
    pub days: u32,
}

impl Validity {
    /// Valid from now for `days` days.
    pub fn days_from_now(days: u32) -> Self {
        Validity {
            not_before: SystemTime::now(),
            days,
        }
    }

    fn to_x509(self) -> Result<x509_cert::time::Validity> {
        // Whole seconds, as OpenSSL writes them.
        let start = self
            .not_before
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| field("validity", "not-before is before 1970"))?;
        let start = Duration::from_secs(start.as_secs());
        let end = start + Duration::from_secs(u64::from(self.days) * 86_400);
        Ok(x509_cert::time::Validity {
            not_before: time(start)?,
            not_after: time(end)?,
        })
    }
}

/// UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5).
fn time(since_epoch: Duration) -> Result<Time> {
    use der::asn1::{GeneralizedTime, UtcTime};
    match UtcTime::from_unix_duration(since_epoch) {
        Ok(t) => Ok(Time::UtcTime(t)),
        Err(_) => GeneralizedTime::from_unix_duration(since_epoch)
            .map(Time::GeneralTime)
            .map_err(|e| field("validity", &e.to_string())),
    }
}

fn field(field: &'static str, msg: &str) -> Error {
    Error::Field {
        field,
        msg: msg.to_string(),
    }
}

/// One certificate to issue.
#[derive(Clone, Debug)]
pub struct IssueRequest<'a> {
    /// Extensions and rules: which vendor profile the certificate follows.
    pub profile: Profile,
    /// The subject's distinguished name (see [`common_name`]).
    pub subject: Name,
    /// The public key the certificate is for.
    pub subject_key: PublicKey,
    /// Who signs: the subject itself, or the holder of an issuer certificate.
    pub issuer: Issuer<'a>,
    /// Signature scheme (ECDSA or RSASSA-PSS / PKCS#1 v1.5 with its hash); see
    /// [`default_scheme`].
    pub scheme: SignScheme,
    /// Big-endian positive integer (1–20 bytes).
    pub serial: Vec<u8>,
    /// When the certificate is valid.
    pub validity: Validity,
}

/// A Name with one CN attribute, as a UTF8String (what `openssl req -subj /CN=…` and
/// cert_create write).
pub fn common_name(cn: &str) -> Result<Name> {
    name_of(&[(const_oid::db::rfc4519::CN, cn)])
}

/// The subject Name for a one-CN certificate of `profile`, in the string type the
/// vendor tool writes: hab4-ca (CA1, made by `openssl req` with CST's configuration)
/// gets a T61String, everything else UTF8String.
pub fn subject_for(profile: Profile, cn: &str) -> Result<Name> {
    if profile == Profile::Hab4Ca {
        name_with_tag(&[(const_oid::db::rfc4519::CN, cn)], Tag::TeletexString)
    } else {
        common_name(cn)
    }
}

/// A Name from (attribute OID, value) pairs, one RDN each, values as UTF8String.
pub fn name_of(parts: &[(const_oid::ObjectIdentifier, &str)]) -> Result<Name> {
    name_with_tag(parts, Tag::Utf8String)
}

/// A Name whose values use string type `tag` (UTF8String, PrintableString, T61String).
pub(crate) fn name_with_tag(
    parts: &[(const_oid::ObjectIdentifier, &str)],
    tag: Tag,
) -> Result<Name> {
    let mut rdns = Vec::new();
    for (oid, value) in parts {
        if value.is_empty() {
            return Err(field("subject", "empty attribute value"));
        }
        let atv = AttributeTypeAndValue {
            oid: *oid,
            value: Any::new(tag, value.as_bytes()).map_err(|e| field("subject", &e.to_string()))?,
        };
        let set = SetOfVec::try_from(vec![atv]).map_err(|e| field("subject", &e.to_string()))?;
        rdns.push(RelativeDistinguishedName(set));
    }
    let name = RdnSequence(rdns);
    check_name_bounds(&name)?;
    Ok(name)
}

/// Parse an RFC 4514 string into a Name. RFC 4514 lists the most specific RDN first:
/// `CN=Tiny HSM CA,O=Example` encodes O then CN (openssl prints `O = Example, CN = …`).
pub fn parse_name(s: &str) -> Result<Name> {
    use std::str::FromStr;
    check_oid_arcs(s)?;
    let name = Name::from_str(s).map_err(|e| field("subject", &format!("{s:?}: {e}")))?;
    check_name_bounds(&name)?;
    Ok(name)
}

/// RFC 5280's upper bounds (Appendix A.1) for the attributes a subject names, in
/// characters; the country is two letters. Anything else gets ub-name.
fn upper_bound(oid: &const_oid::ObjectIdentifier) -> (&'static str, usize) {
    use const_oid::db::{rfc3280, rfc4519};
    match *oid {
        o if o == rfc4519::CN => ("CN", 64),
        o if o == rfc4519::O => ("O", 64),
        o if o == rfc4519::OU => ("OU", 64),
        o if o == rfc4519::L => ("L", 128),
        o if o == rfc4519::ST => ("ST", 128),
        o if o == rfc4519::TITLE => ("title", 64),
        o if o == rfc4519::SERIAL_NUMBER => ("serialNumber", 64),
        o if o == rfc3280::EMAIL_ADDRESS => ("emailAddress", 255),
        o if o == rfc3280::PSEUDONYM => ("pseudonym", 128),
        o if o == rfc4519::C => ("C", 2),
        _ => ("attribute", 32_768),
    }
}

/// Refuse a Name whose values exceed RFC 5280's bounds (CN ≤ 64, O ≤ 64, OU ≤ 64,
/// L ≤ 128, ST ≤ 128, C = two letters, …): verifiers may reject such a certificate.
pub fn check_name_bounds(name: &Name) -> Result<()> {
    for rdn in name.0.iter() {
        for atv in rdn.0.iter() {
            let (short, bound) = upper_bound(&atv.oid);
            let bytes = atv.value.value();
            let chars = if der::Tagged::tag(&atv.value) == Tag::BmpString {
                bytes.len() / 2
            } else {
                std::str::from_utf8(bytes).map_or(bytes.len(), |t| t.chars().count())
            };
            if short == "C" {
                if chars != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
                    return Err(field(
                        "subject",
                        "C (country) must be two letters (ISO 3166, RFC 5280)",
                    ));
                }
            } else if chars > bound {
                return Err(field(
                    "subject",
                    &format!("{short} has {chars} characters; RFC 5280 allows at most {bound}"),
                ));
            }
        }
    }
    Ok(())
}

/// A dotted attribute type (`2.5.4.3=…`) whose arcs do not fit 32 bits would overflow
/// the OID parser (a panic, or in a release build a silently different attribute):
/// refuse it here. Splits as RFC 4514 does, on unescaped `,` and `+`.
fn check_oid_arcs(s: &str) -> Result<()> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' | '+' => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    for part in parts {
        let key = part.split('=').next().unwrap_or_default().trim();
        if !key.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let too_big = key
            .split(|c: char| !c.is_ascii_digit())
            .any(|arc| !arc.is_empty() && arc.parse::<u32>().is_err());
        if too_big {
            return Err(field(
                "subject",
                &format!("attribute type {key:?}: an OID arc does not fit 32 bits"),
            ));
        }
    }
    Ok(())
}

/// The scheme a profile signs with by default, given the issuer's key: HAB4 uses
/// sha256WithRSAEncryption or ecdsa-with-SHA256 (as hab4_pki_tree.sh); the generic
/// profiles ECDSA with the curve's hash, or RSA-PSS with SHA-256.
pub fn default_scheme(profile: Profile, issuer_key: &PublicKey) -> SignScheme {
    if profile.is_hab4() {
        match issuer_key {
            PublicKey::Rsa { .. } => SignScheme::RsaPkcs1(crate::keys::HashAlg::Sha256),
            PublicKey::Ec { .. } => SignScheme::Ecdsa(crate::keys::HashAlg::Sha256),
        }
    } else {
        issuer_key.default_scheme()
    }
}

/// A positive serial from a number.
pub fn serial_from_u64(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// A random 64-bit serial (cert_create's choice; the top bit may be set).
pub fn random_serial() -> Vec<u8> {
    use rand_core::RngCore;
    let mut b = [0u8; 8];
    rand_core::OsRng.fill_bytes(&mut b);
    if b.iter().all(|&x| x == 0) {
        b[7] = 1;
    }
    b.to_vec()
}

/// PEM text of a DER certificate.
pub fn to_pem(der: &[u8]) -> String {
    keys::pem_encode("CERTIFICATE", der)
}

/// The parts of an issuer certificate that issuance needs.
struct IssuerInfo {
    name: Name,
    key: PublicKey,
    /// The issuer certificate's own issuer and serial (AKI `issuer:always`).
    issuer_issuer: Name,
    serial: SerialNumber,
}

/// A certificate's DER from DER or PEM bytes.
pub fn certificate_der(bytes: &[u8]) -> Result<Vec<u8>> {
    match crate::keys::pem_text(bytes) {
        Some(text) => {
            let (label, der) =
                crate::keys::pem_decode(text).map_err(|e| Error::Issuer(e.to_string()))?;
            if label != "CERTIFICATE" {
                return Err(Error::Issuer(format!(
                    "PEM block {label:?} where a CERTIFICATE was expected"
                )));
            }
            Ok(der)
        }
        None => Ok(bytes.to_vec()),
    }
}

fn issuer_info(bytes: &[u8]) -> Result<IssuerInfo> {
    let der = certificate_der(bytes)?;
    let cert = Certificate::from_der(&der).map_err(|e| Error::Issuer(e.to_string()))?;
    let tbs = cert.tbs_certificate;
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|e| Error::Issuer(e.to_string()))?;
    let key = PublicKey::from_spki_der(&spki).map_err(|e| Error::Issuer(e.to_string()))?;
    let is_ca = tbs
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|bc| bc.ca);
    if !is_ca {
        return Err(Error::Issuer(format!(
            "{} is not a CA (no basicConstraints CA:TRUE), so it cannot issue certificates",
            tbs.subject
        )));
    }
    Ok(IssuerInfo {
        name: tbs.subject,
        key,
        issuer_issuer: tbs.issuer,
        serial: tbs.serial_number,
    })
}

/// Issue one certificate signed by `signer`, the issuer's key (the subject's own key when
/// self-signed). Returns DER.
pub fn issue(signer: &mut dyn Signer, req: &IssueRequest<'_>) -> Result<Vec<u8>> {
    // The keys and the name first: a certificate for a weak key is a weak root.
    let key_use = if req.profile.is_hab4() {
        crate::keys::fitness::Use::Hab4
    } else {
        crate::keys::fitness::Use::General
    };
    crate::keys::fitness::check(&req.subject_key, key_use)
        .map_err(|e| field("subject key", &e.to_string()))?;
    crate::keys::fitness::check(signer.public_key(), key_use)
        .map_err(|e| field("issuer key", &e.to_string()))?;
    check_name_bounds(&req.subject)?;
    let serial = SerialNumber::new(&req.serial).map_err(|e| field("serial", &e.to_string()))?;
    if req.serial.iter().all(|&b| b == 0) {
        return Err(field("serial", "must be positive"));
    }
    if req.profile.is_hab4() {
        // HAB4 takes only these keys; refuse before a certificate srktool would reject.
        hab4::KeyType::of_key(&req.subject_key)?;
    }
    let self_signed = matches!(req.issuer, Issuer::SelfSigned);
    if let Some(want) = req.profile.self_signed() {
        if want != self_signed {
            return Err(Error::Input {
                what: format!("profile {}", req.profile),
                msg: if want {
                    "must be self-signed".into()
                } else {
                    "needs an issuer certificate".into()
                },
            });
        }
    }
    let issuer = match req.issuer {
        Issuer::SelfSigned => IssuerInfo {
            name: req.subject.clone(),
            key: req.subject_key.clone(),
            issuer_issuer: req.subject.clone(),
            serial: serial.clone(),
        },
        Issuer::Certificate(der) => issuer_info(der)?,
    };
    let ctx = profiles::ExtContext {
        subject_key: &req.subject_key,
        issuer_key: &issuer.key,
        issuer_issuer: &issuer.issuer_issuer,
        issuer_serial: &issuer.serial,
    };
    let extensions = req.profile.extensions(&ctx)?;
    if *signer.public_key() != issuer.key {
        return Err(Error::Mismatch(format!(
            "the key {:?} is not the issuer's key",
            signer.label()
        )));
    }
    signer::check_fits(signer, req.scheme)?;
    build_signed(
        signer,
        req.scheme,
        "issuer",
        TbsParts {
            serial,
            issuer: issuer.name,
            subject: req.subject.clone(),
            subject_key: &req.subject_key,
            validity: req.validity,
            extensions,
        },
    )
}

/// Everything in a TBS certificate except the signature algorithm, which the signer
/// gives.
pub(crate) struct TbsParts<'a> {
    pub serial: SerialNumber,
    pub issuer: Name,
    pub subject: Name,
    pub subject_key: &'a PublicKey,
    pub validity: Validity,
    pub extensions: Vec<Extension>,
}

/// Assemble the TBS, have `signer` sign it with `scheme` (already checked to fit its
/// key), and check the result with the signer's public key after a full DER round trip.
/// `role` names the key in errors.
pub(crate) fn build_signed(
    signer: &mut dyn Signer,
    scheme: SignScheme,
    role: &str,
    parts: TbsParts<'_>,
) -> Result<Vec<u8>> {
    let alg = signer::signature_algorithm(scheme)?;
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: parts.serial,
        signature: alg.clone(),
        issuer: parts.issuer,
        validity: parts.validity.to_x509()?,
        subject: parts.subject,
        subject_public_key_info: parts.subject_key.to_spki(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: if parts.extensions.is_empty() {
            None
        } else {
            Some(parts.extensions)
        },
    };
    let tbs_der = tbs.to_der().map_err(|e| Error::Encode(e.to_string()))?;
    let sig = signer::sign_tbs(signer, scheme, &tbs_der, role)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(&sig).map_err(|e| Error::Encode(e.to_string()))?,
    };
    let der = cert.to_der().map_err(|e| Error::Encode(e.to_string()))?;
    verify_issued(&der, signer.public_key())?;
    Ok(der)
}

/// Check a DER certificate's signature with `issuer_key`.
pub fn verify_issued(der: &[u8], issuer_key: &PublicKey) -> Result<()> {
    let cert = Certificate::from_der(der).map_err(|e| Error::Encode(e.to_string()))?;
    let scheme = signer::scheme_of(&cert.signature_algorithm)
        .ok_or_else(|| Error::Unsupported("signature algorithm".into()))?;
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| Error::Encode(e.to_string()))?;
    let sig = cert.signature.as_bytes().ok_or(Error::BadSignature)?;
    issuer_key
        .verify_digest(scheme, &scheme.hash().digest(&tbs), sig)
        .map_err(|_| Error::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utctime_through_2049_generalized_after() {
        // 2049-12-31T23:59:59Z and 2050-01-01T00:00:00Z.
        assert!(matches!(
            time(Duration::from_secs(2_524_607_999)).unwrap(),
            Time::UtcTime(_)
        ));
        assert!(matches!(
            time(Duration::from_secs(2_524_608_000)).unwrap(),
            Time::GeneralTime(_)
        ));
    }

    #[test]
    fn names_are_utf8_common_names() {
        let n = common_name("Trusted Key Certificate").unwrap();
        let der = n.to_der().unwrap();
        // SET { SEQUENCE { OID 2.5.4.3, UTF8String } }
        assert!(der.windows(3).any(|w| w == [0x55, 0x04, 0x03]));
        assert!(der.windows(2).any(|w| w == [0x0c, 23]));
        assert!(common_name("").is_err());
    }
}

#[cfg(test)]
mod scheme_tests {
    use super::*;
    use crate::keys::HashAlg;

    #[test]
    fn hab4_signs_with_sha256_whatever_the_curve() {
        let p384 = PublicKey::Ec {
            curve: crate::keys::Curve::P384,
            point: vec![4; 97],
        };
        assert_eq!(
            default_scheme(Profile::Hab4Csf, &p384),
            SignScheme::Ecdsa(HashAlg::Sha256)
        );
        assert_eq!(
            default_scheme(Profile::Signer, &p384),
            SignScheme::Ecdsa(HashAlg::Sha384)
        );
        let rsa = PublicKey::Rsa {
            n: vec![0xc1; 256],
            e: vec![1, 0, 1],
        };
        assert_eq!(
            default_scheme(Profile::Hab4Srk { ca: true }, &rsa),
            SignScheme::RsaPkcs1(HashAlg::Sha256)
        );
        assert_eq!(
            default_scheme(Profile::Ca, &rsa),
            SignScheme::RsaPss(HashAlg::Sha256)
        );
    }
}
