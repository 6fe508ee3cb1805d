//! The signing service: one key that signs (a [`Signer`]: a key on an opened, logged-in
//! token, or a file key); many payloads. For each payload: hash it as a stream, have the
//! key sign the digest, verify the signature with the key's public half, and only then
//! write the output (atomically, never over an existing file). Each payload yields a
//! [`SignRecord`] with the input's and output's SHA-256 for the transcript.
//!
//! `officiant sign` and the ceremony engine's `sign` step both call [`sign_file`] /
//! [`sign_batch`]; `officiant verify` and the `verify` step call [`verify_file`].
//!
//! Must not touch: tokens (`hsm`): the caller opens the key (`TokenSigner`) and hands
//! it over as a [`SigningKey`].

mod batch;
mod esp32;
pub mod imx_ahab;
pub mod imx_hab4;
pub mod options;
mod raw;
pub mod recorded;
mod stm32;
pub mod stream;
mod token;

pub(crate) use batch::batch_plan;
pub use batch::{output_path, sign_batch, sign_batch_with, BatchError};
pub use options::FormatOptions;
pub use token::TokenSigner;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::approvals;
use crate::formats::raw::Padding;
use crate::formats::stm32_image;
use crate::keys::ecdsa_tables::Tables;
use crate::keys::{Curve, PublicKey, SignError, SignScheme, Signer};
use crate::output;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {cause}")]
    Input { path: PathBuf, cause: String },
    /// The key refused or failed to sign; the source names it and keeps its own error.
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("key {label:?}: the token's signature does not verify with the key's own public key; nothing written")]
    TokenSignatureBad { label: String },
    #[error("{path}: {cause}")]
    Format { path: PathBuf, cause: String },
    #[error("{path}: changed while it was being signed (its SHA-256 differs between reads); nothing written")]
    Changed { path: PathBuf },
    #[error("{0}")]
    Output(#[from] output::Error),
    #[error("{0}")]
    Usage(String),
    /// `verify` found the signature or image bad; the message says which part.
    #[error("{path}: {cause}")]
    Verify { path: PathBuf, cause: String },
    /// The token's approval policy does not let this key sign (now, or this many times).
    #[error("{0}")]
    Approval(#[from] approvals::Error),
}

impl Error {
    fn input(path: &Path, e: impl fmt::Display) -> Self {
        Error::Input {
            path: path.to_path_buf(),
            cause: e.to_string(),
        }
    }
    fn format(path: &Path, e: impl fmt::Display) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            cause: e.to_string(),
        }
    }
    fn verify(path: &Path, e: impl fmt::Display) -> Self {
        Error::Verify {
            path: path.to_path_buf(),
            cause: e.to_string(),
        }
    }
}

/// Output formats of `sign`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    #[serde(rename = "raw")]
    Raw,
    #[serde(rename = "esp32-sbv2")]
    Esp32Sbv2,
    #[serde(rename = "stm32mp15")]
    Stm32Mp15,
    #[serde(rename = "stm32mp13")]
    Stm32Mp13,
    #[serde(rename = "imx-hab4")]
    ImxHab4,
    #[serde(rename = "imx-ahab")]
    ImxAhab,
}

impl Format {
    /// What a key verifying or signing this format must be fit for.
    pub fn key_use(self) -> crate::keys::fitness::Use {
        match self {
            Format::Esp32Sbv2 => crate::keys::fitness::Use::Esp32,
            _ => crate::keys::fitness::Use::General,
        }
    }

    pub const ALL: [Format; 6] = [
        Format::Raw,
        Format::Esp32Sbv2,
        Format::Stm32Mp15,
        Format::Stm32Mp13,
        Format::ImxHab4,
        Format::ImxAhab,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Esp32Sbv2 => "esp32-sbv2",
            Format::Stm32Mp15 => "stm32mp15",
            Format::Stm32Mp13 => "stm32mp13",
            Format::ImxHab4 => "imx-hab4",
            Format::ImxAhab => "imx-ahab",
        }
    }

    /// The names, for messages: "raw, esp32-sbv2, …".
    pub fn names() -> String {
        Self::ALL.map(Format::name).join(", ")
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                Error::Usage(format!("--format {s:?}: expected one of {}", Self::names()))
            })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// STM32MP header fields for a raw payload, and v2's key set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stm32Options {
    pub load_address: Option<u32>,
    pub entry_point: Option<u32>,
    /// Anti-rollback version (default 0).
    pub image_version: Option<u32>,
    /// Binary type (default 0x10, TF-A BL2).
    pub binary_type: Option<u8>,
    /// v2: index of the signing key in `key_table` (default: found by its hash).
    pub key_index: Option<u32>,
    /// v2: the whole key set, in OTP table order (default: the signing key alone).
    pub key_table: Vec<PublicKey>,
}

impl Stm32Options {
    fn has_payload_fields(&self) -> bool {
        self.load_address.is_some()
            || self.entry_point.is_some()
            || self.image_version.is_some()
            || self.binary_type.is_some()
    }
}

/// NXP HAB4 (`imx-hab4`): the SRK table and index, the certificates, and the IMG key
/// (the signing key itself is the CSF key).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hab4Options {
    /// The SRK table file's bytes.
    pub srk_table: Option<Vec<u8>>,
    /// 0-based index of the SRK in the table.
    pub srk_index: Option<usize>,
    /// When given, must name the signing key (the CSF key).
    pub csf_key: Option<String>,
    pub csf_cert: Option<Vec<u8>>,
    pub img_key: Option<String>,
    pub img_cert: Option<Vec<u8>>,
    pub fast_auth: bool,
    pub unlock: Vec<crate::formats::imx::csf::Unlock>,
    /// CSF header version (0x40–0x45).
    pub version: Option<u8>,
}

impl Hab4Options {
    fn any(&self) -> bool {
        *self != Hab4Options::default()
    }
}

/// What to sign and how, beyond the key and the format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// RSA padding for `raw` (default PSS).
    pub padding: Option<Padding>,
    /// ESP32: add a block to an already signed image instead of signing a plain one.
    pub append: bool,
    pub stm32: Stm32Options,
    /// Boxed: most signing requests carry none, and requests travel by value.
    pub hab4: Box<Hab4Options>,
}

/// One signed payload, for the transcript.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignRecord {
    pub input: PathBuf,
    pub output: PathBuf,
    pub format: Format,
    pub key_label: String,
    /// SHA-256 of the key's DER SubjectPublicKeyInfo, hex.
    pub key_fingerprint: String,
    pub scheme: String,
    /// The digest the token signed, hex.
    pub signed_digest: String,
    pub input_sha256: String,
    pub output_sha256: String,
    pub input_bytes: u64,
    /// What the operator should know (fields kept, flags changed, blocks present).
    pub notes: Vec<String>,
    /// The approved request this signature is one use of (keys under a policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::keys::Authority>,
}

/// The key a signing session uses: any [`Signer`] ([`TokenSigner`] on an opened,
/// logged-in token, which answers to the token's approval policy; `keys::FileSigner` in
/// tests), with its public half as read before the first signature. Every signature is
/// checked against that public half.
pub struct SigningKey<'s> {
    signer: Box<dyn Signer + 's>,
    public: PublicKey,
}

impl<'s> SigningKey<'s> {
    pub fn new(signer: impl Signer + 's) -> Self {
        let public = signer.public_key().clone();
        SigningKey {
            signer: Box::new(signer),
            public,
        }
    }

    /// Take `n` uses now for `n` signatures to come (a key under an approved request
    /// reserves them on the token before the first; nothing for other keys).
    pub fn reserve(&mut self, n: u64) -> Result<(), Error> {
        Ok(self.signer.reserve(n)?)
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn label(&self) -> &str {
        self.signer.label()
    }

    /// Have the key sign `digest` and check the result with the public key before anyone
    /// can use it. ECDSA comes back as fixed-width r‖s.
    pub fn sign_digest(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, Error> {
        self.sign_unchecked(scheme, digest)?.check(&self.public)
    }

    /// The key's signature over `digest`, to be checked (possibly on another thread)
    /// before it is used: [`Unchecked::check`] is the only way to its bytes.
    fn sign_unchecked(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Unchecked, Error> {
        if let PublicKey::Ec {
            curve: c @ (Curve::BrainpoolP256t1 | Curve::BrainpoolP256r1),
            ..
        } = &self.public
        {
            return Err(Error::Usage(format!(
                "key {:?} is {}: Officiant cannot check {} signatures in software yet, and it writes no signature it has not checked",
                self.label(),
                self.public.describe(),
                c.name()
            )));
        }
        let sig = self.signer.sign_digest(scheme, digest)?;
        Ok(Unchecked {
            label: self.label().to_string(),
            scheme,
            digest: digest.to_vec(),
            sig,
        })
    }

    fn record(
        &self,
        format: Format,
        input: &Path,
        output: &Path,
        scheme: SignScheme,
    ) -> SignRecord {
        SignRecord {
            input: input.to_path_buf(),
            output: output.to_path_buf(),
            format,
            key_label: self.label().to_string(),
            key_fingerprint: hex::encode(self.public.fingerprint()),
            scheme: scheme.name(),
            signed_digest: String::new(),
            input_sha256: String::new(),
            output_sha256: String::new(),
            input_bytes: 0,
            notes: Vec::new(),
            approval: self.signer.authority(),
        }
    }
}

/// A signature straight from the key (the token), not yet trusted.
struct Unchecked {
    label: String,
    scheme: SignScheme,
    digest: Vec<u8>,
    sig: Vec<u8>,
}

impl Unchecked {
    /// The signature, once it verifies over its digest with `public` (the key's public
    /// half as read from the token before signing).
    fn check(self, public: &PublicKey) -> Result<Vec<u8>, Error> {
        self.check_with(public, None)
    }

    /// [`Self::check`], with fixed-base tables of `public` for a batch.
    fn check_with(self, public: &PublicKey, tables: Option<&Tables>) -> Result<Vec<u8>, Error> {
        let bad = || Error::TokenSignatureBad {
            label: self.label.clone(),
        };
        if let PublicKey::Ec { curve, .. } = public {
            if self.sig.len() != 2 * curve.field_bytes() {
                return Err(bad());
            }
        }
        let fast = tables.and_then(|t| t.verify(self.scheme, &self.digest, &self.sig));
        let ok = match fast {
            Some(ok) => ok,
            None => public
                .verify_digest(self.scheme, &self.digest, &self.sig)
                .is_ok(),
        };
        if !ok {
            return Err(bad());
        }
        Ok(self.sig)
    }
}

/// Sign one input into `output`. Nothing is written unless the token's signature
/// verified with the key's public key.
pub fn sign_file(
    key: &mut SigningKey<'_>,
    format: Format,
    opts: &Options,
    input: &Path,
    output: &Path,
) -> Result<SignRecord, Error> {
    check_options(format, opts)?;
    let meta = std::fs::metadata(input).map_err(|e| Error::input(input, e))?;
    if !meta.is_file() {
        return Err(Error::input(input, "not a regular file"));
    }
    if output.symlink_metadata().is_ok() {
        return Err(output::Error::Exists(output.to_path_buf()).into());
    }
    match format {
        Format::Raw => raw::sign(key, opts, input, output),
        Format::Stm32Mp15 => stm32::sign(key, stm32_image::Layout::V1, opts, input, output),
        Format::Stm32Mp13 => stm32::sign(key, stm32_image::Layout::V2, opts, input, output),
        Format::Esp32Sbv2 => esp32::sign(key, opts, input, output),
        Format::ImxHab4 => imx_hab4::sign_one_key(key, opts, input, output),
        Format::ImxAhab => imx_ahab::sign(key, opts, input, output),
    }
}

/// Everything about signing `input` into `output` that can be checked without the token:
/// the options fit the format, the input is a file (and, for an STM32 format, an image or
/// a payload with the fields it needs), the output does not exist. A face runs this
/// before it asks for a PIN.
pub fn precheck(format: Format, opts: &Options, input: &Path, output: &Path) -> Result<(), Error> {
    check_options(format, opts)?;
    let meta = std::fs::metadata(input).map_err(|e| Error::input(input, e))?;
    if !meta.is_file() {
        return Err(Error::input(input, "not a regular file"));
    }
    if output.symlink_metadata().is_ok() {
        return Err(output::Error::Exists(output.to_path_buf()).into());
    }
    match format {
        Format::Stm32Mp15 => stm32::check_input(stm32_image::Layout::V1, opts, input),
        Format::Stm32Mp13 => stm32::check_input(stm32_image::Layout::V2, opts, input),
        Format::ImxHab4 => imx_hab4::check_input(opts, input),
        Format::ImxAhab => imx_ahab::check_input(opts, input),
        Format::Raw | Format::Esp32Sbv2 => Ok(()),
    }
}

/// Refuse options that do not fit the format (before any token is touched).
pub fn check_options(format: Format, opts: &Options) -> Result<(), Error> {
    if opts.padding.is_some() && format != Format::Raw {
        return Err(Error::Usage(format!(
            "--padding is for --format raw; {format} fixes its own scheme"
        )));
    }
    if opts.append && format != Format::Esp32Sbv2 {
        return Err(Error::Usage(format!(
            "--append is for --format esp32-sbv2, not {format}"
        )));
    }
    let s = &opts.stm32;
    let is_stm32 = matches!(format, Format::Stm32Mp15 | Format::Stm32Mp13);
    if !is_stm32 && (s.has_payload_fields() || s.key_index.is_some() || !s.key_table.is_empty()) {
        return Err(Error::Usage(format!(
            "--load-address, --entry-point, --version, --binary-type, --key-index and --key-table are for stm32mp15/stm32mp13, not {format}"
        )));
    }
    let h = &opts.hab4;
    if format == Format::ImxAhab
        && (h.csf_key.is_some()
            || h.csf_cert.is_some()
            || h.img_key.is_some()
            || h.img_cert.is_some()
            || h.fast_auth
            || !h.unlock.is_empty()
            || h.version.is_some())
    {
        return Err(Error::Usage(
            "imx-ahab signs with --key (an SRK on the token), --srk-table and --srk-index; --csf-key, --csf-cert, --img-key, --img-cert, --fast-auth, --unlock and --hab-version are for imx-hab4".into(),
        ));
    }
    if !matches!(format, Format::ImxHab4 | Format::ImxAhab) && opts.hab4.any() {
        return Err(Error::Usage(format!(
            "--srk-table, --srk-index, --csf-key, --csf-cert, --img-key, --img-cert, --fast-auth, --unlock and --hab-version are for imx-hab4, not {format}"
        )));
    }
    if format == Format::Stm32Mp15 && (s.key_index.is_some() || !s.key_table.is_empty()) {
        return Err(Error::Usage(
            "--key-index and --key-table are for stm32mp13 (header v2); header v1 holds one key"
                .into(),
        ));
    }
    Ok(())
}

/// What `verify` found, one line per check, for the operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub lines: Vec<String>,
}

/// Verify a signed image (esp32-sbv2, stm32mp15, stm32mp13) or a detached raw signature
/// against `key`. `padding` is for raw RSA signatures (default: PSS, then PKCS#1 v1.5).
pub fn verify_file(
    format: Format,
    key: &PublicKey,
    input: &Path,
    signature: Option<&Path>,
    padding: Option<Padding>,
) -> Result<VerifyReport, Error> {
    // A weak key "verifies" whatever its holder (or anyone, for e = 1) wants.
    crate::keys::fitness::check(key, format.key_use())
        .map_err(|e| Error::Usage(format!("public key: {e}")))?;
    if format != Format::Raw {
        if signature.is_some() {
            return Err(Error::Usage(format!(
                "{format} images carry their signature; give no SIG file"
            )));
        }
        if padding.is_some() {
            return Err(Error::Usage(format!("--padding is for raw, not {format}")));
        }
    }
    match format {
        Format::Raw => {
            let sig_path = signature.ok_or_else(|| {
                Error::Usage(
                    "--format raw needs the detached signature file: verify … IN SIG".into(),
                )
            })?;
            raw::verify(key, input, sig_path, padding)
        }
        Format::Stm32Mp15 => stm32::verify(stm32_image::Layout::V1, key, input),
        Format::Stm32Mp13 => stm32::verify(stm32_image::Layout::V2, key, input),
        Format::Esp32Sbv2 => esp32::verify(key, input),
        Format::ImxHab4 | Format::ImxAhab => Err(Error::Usage(format!(
            "{format} images are checked against their SRK table: verify --format {format} --srk-table FILE IMAGE"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_output_names() {
        let d = Path::new("/o");
        assert_eq!(
            output_path(Format::Raw, Path::new("/x/fw.bin"), d),
            Path::new("/o/fw.bin.sig")
        );
        assert_eq!(
            output_path(Format::Stm32Mp15, Path::new("tf-a.stm32"), d),
            Path::new("/o/tf-a_Signed.stm32")
        );
        assert_eq!(
            output_path(Format::Esp32Sbv2, Path::new("app.bin"), d),
            Path::new("/o/app-signed.bin")
        );
    }

    #[test]
    fn formats_parse() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.name()).unwrap(), f);
        }
        assert!(Format::parse("tfa").is_err());
    }
}
