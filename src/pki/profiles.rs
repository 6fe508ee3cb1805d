//! Certificate profiles: which extensions a certificate gets, in which order, and how
//! critical. HAB4 profiles follow hab4_pki_tree.sh (its `v3_ca` and `v3_usr` extension
//! files); the generic pair follows ST's Tiny HSM CA + signer flow.
//! Pure: keys and names in, DER extensions out.

use der::asn1::OctetString;
use der::Encode;
use sha1::{Digest, Sha1};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use super::Error;
use crate::keys::PublicKey;

/// What a certificate is for. Names are the ones scripts use (`hab4-srk`, `signer`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// HAB4 CA1: self-signed, `v3_ca`.
    Hab4Ca,
    /// HAB4 SRK issued by CA1. `ca: true` is `v3_ca` (basicConstraints critical CA:TRUE,
    /// keyUsage keyCertSign); `ca: false` is the "fast authentication" SRK with `v3_usr`.
    Hab4Srk {
        /// `v3_ca` (true) or `v3_usr` (false, fast authentication).
        ca: bool,
    },
    /// HAB4 CSF key certificate issued by its SRK (`v3_usr`).
    Hab4Csf,
    /// HAB4 IMG key certificate issued by its SRK (`v3_usr`).
    Hab4Img,
    /// A generic CA (self-signed or issued): CA:TRUE, keyCertSign + cRLSign.
    Ca,
    /// A generic end-entity signing certificate: CA:FALSE, digitalSignature.
    Signer,
}

impl Profile {
    /// Every profile name a script may use, in the order messages list them.
    pub const NAMES: [&'static str; 7] = [
        "hab4-ca",
        "hab4-srk",
        "hab4-srk-usr",
        "hab4-csf",
        "hab4-img",
        "ca",
        "signer",
    ];

    /// The name scripts use: `hab4-ca`, `hab4-srk`, `hab4-srk-usr`, `hab4-csf`, `hab4-img`,
    /// `ca`, `signer`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Hab4Ca => "hab4-ca",
            Profile::Hab4Srk { ca: true } => "hab4-srk",
            Profile::Hab4Srk { ca: false } => "hab4-srk-usr",
            Profile::Hab4Csf => "hab4-csf",
            Profile::Hab4Img => "hab4-img",
            Profile::Ca => "ca",
            Profile::Signer => "signer",
        }
    }

    /// The profile a script names; `None` for a name not in [`Profile::NAMES`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hab4-ca" => Profile::Hab4Ca,
            "hab4-srk" => Profile::Hab4Srk { ca: true },
            "hab4-srk-usr" => Profile::Hab4Srk { ca: false },
            "hab4-csf" => Profile::Hab4Csf,
            "hab4-img" => Profile::Hab4Img,
            "ca" => Profile::Ca,
            "signer" => Profile::Signer,
            _ => return None,
        })
    }

    /// One of the four HAB4 profiles (their keys must be ones HAB4 can hold).
    pub fn is_hab4(self) -> bool {
        matches!(
            self,
            Profile::Hab4Ca | Profile::Hab4Srk { .. } | Profile::Hab4Csf | Profile::Hab4Img
        )
    }

    /// Whether the certificate is a CA (its key may issue certificates).
    pub fn is_ca(self) -> bool {
        matches!(
            self,
            Profile::Hab4Ca | Profile::Hab4Srk { ca: true } | Profile::Ca
        )
    }

    /// Whether the profile is only valid self-signed (`Some(true)`), only issued
    /// (`Some(false)`), or either.
    pub fn self_signed(self) -> Option<bool> {
        match self {
            Profile::Hab4Ca => Some(true),
            Profile::Hab4Srk { .. } | Profile::Hab4Csf | Profile::Hab4Img | Profile::Signer => {
                Some(false)
            }
            Profile::Ca => None,
        }
    }

    /// The extensions, in the order they are written.
    pub(crate) fn extensions(self, ctx: &ExtContext<'_>) -> Result<Vec<Extension>, Error> {
        let ski = subject_key_identifier(ctx.subject_key)?;
        let keyid = key_id(ctx.issuer_key);
        match self {
            // v3_ca: subjectKeyIdentifier=hash, authorityKeyIdentifier=keyid:always,
            // issuer:always, basicConstraints=critical,CA:true, keyUsage=keyCertSign.
            Profile::Hab4Ca | Profile::Hab4Srk { ca: true } => Ok(vec![
                ski,
                authority_key_identifier(&keyid, Some((ctx.issuer_issuer, ctx.issuer_serial)))?,
                basic_constraints(true, true)?,
                key_usage(KeyUsages::KeyCertSign.into(), false)?,
            ]),
            // v3_usr: basicConstraints=CA:FALSE, nsComment, subjectKeyIdentifier=hash,
            // authorityKeyIdentifier=keyid (what the script's certificates carry).
            Profile::Hab4Srk { ca: false } | Profile::Hab4Csf | Profile::Hab4Img => Ok(vec![
                basic_constraints(false, false)?,
                netscape_comment(NS_COMMENT)?,
                ski,
                authority_key_identifier(&keyid, None)?,
            ]),
            Profile::Ca => Ok(vec![
                basic_constraints(true, true)?,
                key_usage(KeyUsages::KeyCertSign | KeyUsages::CRLSign, true)?,
                ski,
                authority_key_identifier(&keyid, None)?,
            ]),
            Profile::Signer => Ok(vec![
                basic_constraints(false, true)?,
                key_usage(KeyUsages::DigitalSignature.into(), true)?,
                ski,
                authority_key_identifier(&keyid, None)?,
            ]),
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The Netscape comment OpenSSL's sample configuration puts in user certificates, and
/// so in every hab4_pki_tree.sh `v3_usr` certificate.
const NS_COMMENT: &str = "OpenSSL Generated Certificate";
const NETSCAPE_COMMENT: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("2.16.840.1.113730.1.13");

fn netscape_comment(text: &str) -> Result<Extension, Error> {
    let v = der::asn1::Ia5StringRef::new(text)
        .and_then(|s| s.to_der())
        .map_err(|e| encode_err("nsComment", e))?;
    extension(NETSCAPE_COMMENT, false, v)
}

/// What the extensions of one certificate depend on.
pub(crate) struct ExtContext<'a> {
    pub subject_key: &'a PublicKey,
    pub issuer_key: &'a PublicKey,
    /// The issuer certificate's own issuer name and serial (for `issuer:always`).
    pub issuer_issuer: &'a Name,
    pub issuer_serial: &'a SerialNumber,
}

fn encode_err(what: &str, e: der::Error) -> Error {
    Error::Encode(format!("{what}: {e}"))
}

/// OpenSSL's `hash` key identifier: SHA-1 of the subjectPublicKey BIT STRING contents.
pub fn key_id(key: &PublicKey) -> Vec<u8> {
    let spki = key.to_spki();
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

pub(crate) fn extension(
    oid: const_oid::ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<Extension, Error> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).map_err(|e| encode_err("extension", e))?,
    })
}

pub(crate) fn subject_key_identifier(key: &PublicKey) -> Result<Extension, Error> {
    let v = SubjectKeyIdentifier(
        OctetString::new(key_id(key)).map_err(|e| encode_err("key identifier", e))?,
    )
    .to_der()
    .map_err(|e| encode_err("subjectKeyIdentifier", e))?;
    extension(
        const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
        false,
        v,
    )
}

pub(crate) fn authority_key_identifier(
    keyid: &[u8],
    issuer: Option<(&Name, &SerialNumber)>,
) -> Result<Extension, Error> {
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(keyid).map_err(|e| encode_err("key identifier", e))?),
        authority_cert_issuer: issuer.map(|(n, _)| vec![GeneralName::DirectoryName(n.clone())]),
        authority_cert_serial_number: issuer.map(|(_, s)| s.clone()),
    };
    let v = aki
        .to_der()
        .map_err(|e| encode_err("authorityKeyIdentifier", e))?;
    extension(
        const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
        false,
        v,
    )
}

pub(crate) fn basic_constraints(ca: bool, critical: bool) -> Result<Extension, Error> {
    let v = BasicConstraints {
        ca,
        path_len_constraint: None,
    }
    .to_der()
    .map_err(|e| encode_err("basicConstraints", e))?;
    extension(const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS, critical, v)
}

fn key_usage(flags: der::flagset::FlagSet<KeyUsages>, critical: bool) -> Result<Extension, Error> {
    let v = KeyUsage(flags)
        .to_der()
        .map_err(|e| encode_err("keyUsage", e))?;
    extension(const_oid::db::rfc5280::ID_CE_KEY_USAGE, critical, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_round_trip() {
        for n in Profile::NAMES {
            assert_eq!(Profile::parse(n).unwrap().name(), n);
        }
        assert_eq!(Profile::parse("hab4"), None);
    }
}
