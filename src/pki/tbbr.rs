//! Arm TF-A Trusted Board Boot (TBBR) certificates, as `cert_create` writes them.
//! [`prepare_chain`] builds and checks every certificate; the caller signs each one with
//! the key it names ([`Unsigned::sign`] takes any `keys::Signer`: a token key, a file key).
//!
//! cert_create's shape (checked against Debian's arm-trusted-firmware-tools 2.8): each
//! certificate is "self-issued" by the key that signs it (issuer = subject = a fixed CN
//! in UTF8String, the subject public key is the signing key, SKI = AKI = its key id),
//! CA:FALSE, a random 64-bit serial, 20 years of validity, and the TBBR extensions under
//! 1.3.6.1.4.1.4128.2100, all critical. Hashes are DigestInfo; an optional image that
//! is absent gets an all-zero hash, a mandatory one is an error (as cert_create).
//!
//! Pure apart from [`hash_image`], which reads a caller's `impl Read`: keys are read
//! through the caller's `public_key` callback and sign through a `keys::Signer`.

use std::io::Read;

use const_oid::ObjectIdentifier;
use der::Encode;
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;

use super::{profiles, Error, TbsParts, Validity};
use crate::keys::{HashAlg, PublicKey, SignError, SignScheme, Signer};

/// cert_create's validity: 20 years of 365 days.
pub const VALIDITY_DAYS: u32 = 7300;

fn tbbr_oid(arc: u32) -> ObjectIdentifier {
    // 1.3.6.1.4.1.4128.2100.<arc>: a fixed prefix and one small arc always parse.
    ObjectIdentifier::new(&format!("1.3.6.1.4.1.4128.2100.{arc}"))
        .unwrap_or(ObjectIdentifier::new_unwrap("1.3.6.1.4.1.4128.2100"))
}

/// The certificates of the chain, in the order cert_create writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertKind {
    /// `trusted_key.crt`, signed by the ROT key: trusted NV counter, trusted-world (`.302`)
    /// and non-trusted-world (`.303`) public keys.
    TrustedKey,
    /// `tb_fw.crt`, signed by the ROT key: BL2 hash (`.201`) and its configs
    /// (`.202`–`.204`).
    TbFw,
    /// `soc_fw_key.crt`, signed by the trusted-world key: the BL31 content key (`.501`).
    SocFwKey,
    /// `soc_fw_content.crt`, signed by the SoC firmware key: BL31 hash (`.603`) and config
    /// (`.604`).
    SocFwContent,
    /// `tos_fw_key.crt`, signed by the trusted-world key: the BL32 content key (`.901`).
    TosFwKey,
    /// `tos_fw_content.crt`, signed by the Trusted OS key: BL32 hashes (`.1001`–`.1004`).
    TosFwContent,
    /// `nt_fw_key.crt`, signed by the non-trusted-world key: the BL33 content key
    /// (`.1101`).
    NtFwKey,
    /// `nt_fw_content.crt`, signed by the non-trusted firmware key: BL33 hash (`.1201`) and
    /// config (`.1202`).
    NtFwContent,
}

impl CertKind {
    /// Every certificate, in cert_create's order.
    pub const ALL: [CertKind; 8] = [
        CertKind::TrustedKey,
        CertKind::TbFw,
        CertKind::SocFwKey,
        CertKind::SocFwContent,
        CertKind::TosFwKey,
        CertKind::TosFwContent,
        CertKind::NtFwKey,
        CertKind::NtFwContent,
    ];

    /// The subject (and issuer) CN cert_create writes.
    pub fn common_name(self) -> &'static str {
        match self {
            CertKind::TrustedKey => "Trusted Key Certificate",
            CertKind::TbFw => "Trusted Boot FW Certificate",
            CertKind::SocFwKey => "SoC Firmware Key Certificate",
            CertKind::SocFwContent => "SoC Firmware Content Certificate",
            CertKind::TosFwKey => "Trusted OS Firmware Key Certificate",
            CertKind::TosFwContent => "Trusted OS Firmware Content Certificate",
            CertKind::NtFwKey => "Non-Trusted Firmware Key Certificate",
            CertKind::NtFwContent => "Non-Trusted Firmware Content Certificate",
        }
    }

    /// The cert_create / fiptool option that names this certificate's file.
    pub fn option(self) -> &'static str {
        match self {
            CertKind::TrustedKey => "--trusted-key-cert",
            CertKind::TbFw => "--tb-fw-cert",
            CertKind::SocFwKey => "--soc-fw-key-cert",
            CertKind::SocFwContent => "--soc-fw-cert",
            CertKind::TosFwKey => "--tos-fw-key-cert",
            CertKind::TosFwContent => "--tos-fw-cert",
            CertKind::NtFwKey => "--nt-fw-key-cert",
            CertKind::NtFwContent => "--nt-fw-cert",
        }
    }

    /// A default file name (`trusted_key.crt`, `soc_fw_content.crt`, …), as TF-A's
    /// build names them.
    pub fn file_name(self) -> &'static str {
        match self {
            CertKind::TrustedKey => "trusted_key.crt",
            CertKind::TbFw => "tb_fw.crt",
            CertKind::SocFwKey => "soc_fw_key.crt",
            CertKind::SocFwContent => "soc_fw_content.crt",
            CertKind::TosFwKey => "tos_fw_key.crt",
            CertKind::TosFwContent => "tos_fw_content.crt",
            CertKind::NtFwKey => "nt_fw_key.crt",
            CertKind::NtFwContent => "nt_fw_content.crt",
        }
    }
}

/// Labels of the TBBR keys (on the token, say). `tos_fw: None` leaves out the BL32
/// certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyLabels {
    /// Root-of-trust key (its SPKI hash is the ROTPK in the fuses); signs trusted_key and
    /// tb_fw.
    pub rot: String,
    /// Trusted-world key; signs the SoC and Trusted OS firmware key certificates.
    pub trusted_world: String,
    /// Non-trusted-world key; signs the non-trusted firmware key certificate.
    pub non_trusted_world: String,
    /// SoC firmware (BL31) content key.
    pub soc_fw: String,
    /// Trusted OS (BL32) content key; `None` leaves out the BL32 certificates.
    pub tos_fw: Option<String>,
    /// Non-trusted firmware (BL33) content key.
    pub nt_fw: String,
}

/// Image hashes (computed with the request's hash). `None`: not given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageHashes {
    /// BL2 (mandatory).
    pub tb_fw: Option<Vec<u8>>,
    /// TB_FW_CONFIG (`--tb-fw-config`); all-zero hash when absent.
    pub tb_fw_config: Option<Vec<u8>>,
    /// HW_CONFIG (`--hw-config`); all-zero hash when absent.
    pub hw_config: Option<Vec<u8>>,
    /// FW_CONFIG (`--fw-config`); all-zero hash when absent.
    pub fw_config: Option<Vec<u8>>,
    /// BL31 (mandatory).
    pub soc_fw: Option<Vec<u8>>,
    /// SOC_FW_CONFIG (`--soc-fw-config`); all-zero hash when absent.
    pub soc_fw_config: Option<Vec<u8>>,
    /// BL32 (mandatory when a Trusted OS key is given).
    pub tos_fw: Option<Vec<u8>>,
    /// BL32 extra image 1 (`--tos-fw-extra1`); all-zero hash when absent.
    pub tos_fw_extra1: Option<Vec<u8>>,
    /// BL32 extra image 2 (`--tos-fw-extra2`); all-zero hash when absent.
    pub tos_fw_extra2: Option<Vec<u8>>,
    /// TOS_FW_CONFIG (`--tos-fw-config`); all-zero hash when absent.
    pub tos_fw_config: Option<Vec<u8>>,
    /// BL33 (mandatory).
    pub nt_fw: Option<Vec<u8>>,
    /// NT_FW_CONFIG (`--nt-fw-config`); all-zero hash when absent.
    pub nt_fw_config: Option<Vec<u8>>,
}

/// Everything the chain needs.
#[derive(Clone, Debug)]
pub struct ChainRequest {
    /// Which key signs and is certified where.
    pub keys: KeyLabels,
    /// The image hashes the content certificates carry.
    pub images: ImageHashes,
    /// Trusted NV counter (`.1`, DER INTEGER) in every trusted-world certificate: the
    /// anti-rollback value.
    pub trusted_nv_counter: u32,
    /// Non-trusted NV counter (`.2`) in the non-trusted firmware certificates.
    pub non_trusted_nv_counter: u32,
    /// Image hashes and signatures (cert_create `-s`); SHA-256 by default.
    pub hash: HashAlg,
    /// When the certificates are valid (cert_create: 20 years from now).
    pub validity: Validity,
}

impl ChainRequest {
    /// cert_create's defaults: NV counters 0, SHA-256, 20 years from now.
    pub fn new(keys: KeyLabels, images: ImageHashes) -> Self {
        ChainRequest {
            keys,
            images,
            trusted_nv_counter: 0,
            non_trusted_nv_counter: 0,
            hash: HashAlg::Sha256,
            validity: Validity::days_from_now(VALIDITY_DAYS),
        }
    }
}

/// Hash an image as a stream (memory stays flat however large it is).
pub fn hash_image(hash: HashAlg, mut reader: impl Read) -> std::io::Result<Vec<u8>> {
    let mut h = hash.hasher();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

/// One issued certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// Which certificate of the chain: its CN, file name and fiptool option follow.
    pub kind: CertKind,
    /// The signed certificate, DER.
    pub der: Vec<u8>,
}

/// The scheme cert_create uses for a key: ECDSA, or RSASSA-PSS with salt = hash length.
pub fn scheme_for(key: &PublicKey, hash: HashAlg) -> SignScheme {
    match key {
        PublicKey::Ec { .. } => SignScheme::Ecdsa(hash),
        PublicKey::Rsa { .. } => SignScheme::RsaPss(hash),
    }
}

enum Ext<'a> {
    NvCounter(u32),
    Key(&'a PublicKey),
    Hash(Option<&'a Vec<u8>>, &'static str, bool),
}

const TRUSTED_NV: u32 = 1;
const NON_TRUSTED_NV: u32 = 2;

fn encode_ext(arc: u32, ext: &Ext<'_>, hash: HashAlg) -> Result<x509_cert::ext::Extension, Error> {
    let value = match ext {
        Ext::NvCounter(n) => n
            .to_der()
            .map_err(|e| Error::Encode(format!("NV counter: {e}")))?,
        Ext::Key(k) => k.to_spki_der(),
        Ext::Hash(h, name, mandatory) => {
            let digest = match h {
                Some(d) if d.len() == hash.len() => d.to_vec(),
                Some(d) => {
                    return Err(Error::Input {
                        what: format!("{name} hash"),
                        msg: format!("{} bytes, {} needs {}", d.len(), hash.name(), hash.len()),
                    })
                }
                None if *mandatory => {
                    return Err(Error::Input {
                        what: (*name).to_string(),
                        msg: "image not given (cert_create requires it)".into(),
                    })
                }
                None => vec![0u8; hash.len()],
            };
            let mut v = hash.digest_info_prefix().into_vec();
            v.extend_from_slice(&digest);
            v
        }
    };
    profiles::extension(tbbr_oid(arc), true, value)
}

/// One certificate of the chain, built and waiting for its key's signature. The key
/// labelled [`Unsigned::signer`] signs it, and it certifies that same key.
#[derive(Clone, Debug)]
pub struct Unsigned {
    /// Which certificate of the chain: fixes its CN, extensions and signing key.
    pub kind: CertKind,
    /// Label of the key that signs this certificate.
    pub signer: String,
    key: PublicKey,
    scheme: SignScheme,
    serial: SerialNumber,
    validity: Validity,
    extensions: Vec<Extension>,
}

impl Unsigned {
    /// Sign with `signer`, which must be the key read for [`Self::signer`] when the chain
    /// was prepared. The certificate is verified with that key before it is returned.
    pub fn sign(self, signer: &mut dyn Signer) -> Result<Issued, Error> {
        let what = self.kind.common_name();
        if *signer.public_key() != self.key {
            return Err(Error::Mismatch(format!(
                "the key {:?} is not the key read for the {what}",
                signer.label()
            )));
        }
        super::signer::check_fits(signer, self.scheme)?;
        let name = super::common_name(what)?;
        let der = super::build_signed(
            signer,
            self.scheme,
            &format!("{what} signing"),
            TbsParts {
                serial: self.serial,
                issuer: name.clone(),
                subject: name,
                subject_key: &self.key,
                validity: self.validity,
                extensions: self.extensions,
            },
        )?;
        Ok(Issued {
            kind: self.kind,
            der,
        })
    }
}

/// One TBBR certificate for `kind`, to be signed by the key labelled `label`.
fn prepare_one(
    kind: CertKind,
    label: &str,
    key: &PublicKey,
    req: &ChainRequest,
    exts: &[(u32, Ext<'_>)],
) -> Result<Unsigned, Error> {
    let keyid = profiles::key_id(key);
    let mut extensions = vec![
        profiles::subject_key_identifier(key)?,
        profiles::authority_key_identifier(&keyid, None)?,
        profiles::basic_constraints(false, false)?,
    ];
    for (arc, e) in exts {
        extensions.push(encode_ext(*arc, e, req.hash)?);
    }
    let serial = SerialNumber::new(&super::random_serial())
        .map_err(|e| Error::Encode(format!("serial: {e}")))?;
    Ok(Unsigned {
        kind,
        signer: label.to_string(),
        key: key.clone(),
        scheme: scheme_for(key, req.hash),
        serial,
        validity: req.validity,
        extensions,
    })
}

/// The whole chain, in the order cert_create writes it: trusted_key, tb_fw, soc_fw
/// key/content, tos_fw key/content (when a Trusted OS key is given), nt_fw key/content.
/// `public_key` reads a key's public half by label (from the token, say). Every input
/// (keys, image hashes) is checked here, before anything is signed; the caller then
/// signs each [`Unsigned`] with the key it names.
pub fn prepare_chain<E>(
    req: &ChainRequest,
    public_key: impl FnMut(&str) -> std::result::Result<PublicKey, E>,
) -> Result<Vec<Unsigned>, Error>
where
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    let ChainKeys {
        rot,
        tw,
        ntw,
        soc,
        nt,
        tos,
    } = chain_keys(req, public_key)?;
    let k = &req.keys;
    let im = &req.images;
    let tnv = Ext::NvCounter(req.trusted_nv_counter);
    let ntnv = || Ext::NvCounter(req.non_trusted_nv_counter);
    let tv = || Ext::NvCounter(req.trusted_nv_counter);
    let mut out = vec![
        prepare_one(
            CertKind::TrustedKey,
            &k.rot,
            &rot,
            req,
            &[
                (TRUSTED_NV, tnv),
                (302, Ext::Key(&tw)),
                (303, Ext::Key(&ntw)),
            ],
        )?,
        prepare_one(
            CertKind::TbFw,
            &k.rot,
            &rot,
            req,
            &[
                (TRUSTED_NV, tv()),
                (201, Ext::Hash(im.tb_fw.as_ref(), "BL2 (--tb-fw)", true)),
                (
                    202,
                    Ext::Hash(im.tb_fw_config.as_ref(), "tb-fw-config", false),
                ),
                (203, Ext::Hash(im.hw_config.as_ref(), "hw-config", false)),
                (204, Ext::Hash(im.fw_config.as_ref(), "fw-config", false)),
            ],
        )?,
        prepare_one(
            CertKind::SocFwKey,
            &k.trusted_world,
            &tw,
            req,
            &[(TRUSTED_NV, tv()), (501, Ext::Key(&soc))],
        )?,
        prepare_one(
            CertKind::SocFwContent,
            &k.soc_fw,
            &soc,
            req,
            &[
                (TRUSTED_NV, tv()),
                (603, Ext::Hash(im.soc_fw.as_ref(), "BL31 (--soc-fw)", true)),
                (
                    604,
                    Ext::Hash(im.soc_fw_config.as_ref(), "soc-fw-config", false),
                ),
            ],
        )?,
    ];
    if let (Some(tos_key), Some(tos_label)) = (tos.as_ref(), k.tos_fw.as_deref()) {
        out.push(prepare_one(
            CertKind::TosFwKey,
            &k.trusted_world,
            &tw,
            req,
            &[(TRUSTED_NV, tv()), (901, Ext::Key(tos_key))],
        )?);
        out.push(prepare_one(
            CertKind::TosFwContent,
            tos_label,
            tos_key,
            req,
            &[
                (TRUSTED_NV, tv()),
                (1001, Ext::Hash(im.tos_fw.as_ref(), "BL32 (--tos-fw)", true)),
                (
                    1002,
                    Ext::Hash(im.tos_fw_extra1.as_ref(), "tos-fw-extra1", false),
                ),
                (
                    1003,
                    Ext::Hash(im.tos_fw_extra2.as_ref(), "tos-fw-extra2", false),
                ),
                (
                    1004,
                    Ext::Hash(im.tos_fw_config.as_ref(), "tos-fw-config", false),
                ),
            ],
        )?);
    }
    out.push(prepare_one(
        CertKind::NtFwKey,
        &k.non_trusted_world,
        &ntw,
        req,
        &[(NON_TRUSTED_NV, ntnv()), (1101, Ext::Key(&nt))],
    )?);
    out.push(prepare_one(
        CertKind::NtFwContent,
        &k.nt_fw,
        &nt,
        req,
        &[
            (NON_TRUSTED_NV, ntnv()),
            (1201, Ext::Hash(im.nt_fw.as_ref(), "BL33 (--nt-fw)", true)),
            (
                1202,
                Ext::Hash(im.nt_fw_config.as_ref(), "nt-fw-config", false),
            ),
        ],
    )?);
    Ok(out)
}

/// The public keys of a TBBR chain, each checked fit for a key TF-A trusts.
struct ChainKeys {
    rot: PublicKey,
    tw: PublicKey,
    ntw: PublicKey,
    soc: PublicKey,
    nt: PublicKey,
    tos: Option<PublicKey>,
}

/// Read the chain's keys by label and check them: each fit for TF-A, and RSA only with
/// SHA-256 (cert_create's PSS salt).
fn chain_keys<E>(
    req: &ChainRequest,
    mut public_key: impl FnMut(&str) -> std::result::Result<PublicKey, E>,
) -> Result<ChainKeys, Error>
where
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    let k = &req.keys;
    // Every key of the chain is one TF-A trusts: it must be fit for it.
    let mut pk = |label: &str, role: &str| {
        let key = public_key(label).map_err(|e| Error::Key {
            role: role.to_string(),
            source: SignError::key(label, e),
        })?;
        crate::keys::fitness::check(&key, crate::keys::fitness::Use::TfaRotpk).map_err(|e| {
            Error::Key {
                role: role.to_string(),
                source: SignError::key(label, e),
            }
        })?;
        Ok::<_, Error>(key)
    };
    let tw = pk(&k.trusted_world, "trusted-world")?;
    let ntw = pk(&k.non_trusted_world, "non-trusted-world")?;
    let soc = pk(&k.soc_fw, "SoC firmware")?;
    let nt = pk(&k.nt_fw, "non-trusted firmware")?;
    let tos = match &k.tos_fw {
        Some(l) => Some(pk(l, "Trusted OS firmware")?),
        None => None,
    };
    // cert_create signs RSA-PSS with a fixed 32-byte salt whatever `-s` says; a token
    // signs PSS with salt = hash length. Both agree only with SHA-256.
    let rot = pk(&k.rot, "root-of-trust")?;
    let any_rsa = [&rot, &tw, &ntw, &soc, &nt]
        .into_iter()
        .chain(tos.as_ref())
        .any(|k| matches!(k, PublicKey::Rsa { .. }));
    if any_rsa && req.hash != HashAlg::Sha256 {
        return Err(Error::Unsupported(format!(
            "RSA TBBR keys with {}: cert_create's RSA-PSS uses a fixed 32-byte salt, which \
             only matches the token's salt = hash length with SHA-256",
            req.hash.name()
        )));
    }
    Ok(ChainKeys {
        rot,
        tw,
        ntw,
        soc,
        nt,
        tos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nv_counter_encodes_as_der_integer() {
        let e = encode_ext(1, &Ext::NvCounter(3), HashAlg::Sha256).unwrap();
        assert_eq!(e.extn_value.as_bytes(), &[0x02, 0x01, 0x03]);
        assert!(e.critical);
        assert_eq!(e.extn_id.to_string(), "1.3.6.1.4.1.4128.2100.1");
        let e = encode_ext(1, &Ext::NvCounter(0), HashAlg::Sha256).unwrap();
        assert_eq!(e.extn_value.as_bytes(), &[0x02, 0x01, 0x00]);
        let e = encode_ext(1, &Ext::NvCounter(200), HashAlg::Sha256).unwrap();
        assert_eq!(e.extn_value.as_bytes(), &[0x02, 0x02, 0x00, 0xc8]);
    }

    #[test]
    fn missing_optional_image_is_zero_hash_and_mandatory_is_an_error() {
        let e = encode_ext(202, &Ext::Hash(None, "x", false), HashAlg::Sha256).unwrap();
        let v = e.extn_value.as_bytes();
        assert_eq!(&v[..19], &*HashAlg::Sha256.digest_info_prefix());
        assert!(v[19..].iter().all(|&b| b == 0) && v.len() == 51);
        assert!(encode_ext(201, &Ext::Hash(None, "BL2", true), HashAlg::Sha256).is_err());
    }
}
