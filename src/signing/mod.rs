//! The signing service: one key that signs (a [`Signer`]: a key on an opened, logged-in
//! token, or a file key); many payloads. For each payload: hash it as a stream, have the
//! key sign the digest, verify the signature with the key's public half, and only then
//! write the output (atomically, never over an existing file). Each payload yields a
//! [`SignRecord`] with the input's and output's SHA-256 for the transcript.
//!
//! `officiant sign` and the ceremony engine's `sign` step both call [`sign_file`] /
//! [`sign_batch`]; `officiant verify` and the `verify` step call [`verify_file`].
//!
//! Here: the options and records every format shares, [`SigningKey`] (every signature
//! checked before use) and the dispatch to one file per format (`raw`, `esp32`, `stm32`,
//! [`imx_hab4`], [`imx_ahab`]), which do the I/O around `formats`; `batch` signs many
//! payloads under one login; [`stream`] reads them in fixed pieces.
//!
//! Must not touch: tokens (`hsm`), except in [`TokenSigner`] (a token key as a
//! [`Signer`], behind the approval gate), [`recorded`] (a session with its transcript)
//! and `imx_hab4::TokenPair` (HAB4's two keys in turn). Everywhere else the caller opens
//! the key and hands it over as a [`SigningKey`]. Byte layouts belong in `formats`.

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

/// Why a payload was not signed or did not verify. Every message names the file, flag or
/// key at fault; nothing is written when signing fails.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An input file could not be read, or is not a regular file.
    #[error("{path}: {cause}")]
    Input {
        /// The input, as given.
        path: PathBuf,
        /// What went wrong.
        cause: String,
    },
    /// The key refused or failed to sign; the source names it and keeps its own error.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The token's signature does not verify with the key's own public half.
    #[error("key {label:?}: the token's signature does not verify with the key's own public key; nothing written")]
    TokenSignatureBad {
        /// The key's label on the token.
        label: String,
    },
    /// The input is not an image of this format, or does not fit the key or options.
    #[error("{path}: {cause}")]
    Format {
        /// The input, as given.
        path: PathBuf,
        /// What the format module found.
        cause: String,
    },
    /// The input's SHA-256 differed between the two reads a format makes.
    #[error("{path}: changed while it was being signed (its SHA-256 differs between reads); nothing written")]
    Changed {
        /// The input, as given.
        path: PathBuf,
    },
    /// The output could not be written (or already exists).
    #[error("{0}")]
    Output(#[from] output::Error),
    /// Options that do not fit the format, or are missing; the message names the flag.
    #[error("{0}")]
    Usage(String),
    /// `verify` found the signature or image bad; the message says which part.
    #[error("{path}: {cause}")]
    Verify {
        /// The image or payload checked.
        path: PathBuf,
        /// Which check failed.
        cause: String,
    },
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
    /// A detached signature over the whole file (`IN.sig`), as `openssl dgst -verify`
    /// checks it.
    #[serde(rename = "raw")]
    Raw,
    /// Espressif Secure Boot V2: the image padded to 4 KiB with a signature sector
    /// appended.
    #[serde(rename = "esp32-sbv2")]
    Esp32Sbv2,
    /// STM32MP15: header v1 (256 bytes) in front of the payload, ECDSA P-256 or
    /// brainpoolP256t1.
    #[serde(rename = "stm32mp15")]
    Stm32Mp15,
    /// STM32MP13/MP25: header v2 (0x200 bytes) with the authentication extension.
    #[serde(rename = "stm32mp13")]
    Stm32Mp13,
    /// NXP HAB4 (i.MX 6/7/8M, RT): IVT and boot data patched, a CSF with CMS signatures
    /// appended.
    #[serde(rename = "imx-hab4")]
    ImxHab4,
    /// NXP AHAB (i.MX 8QXP/8QM, 8ULP, 9x): the container's signature block rebuilt and
    /// signed by an SRK.
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

    /// Every format, in the order `--format` lists them.
    pub const ALL: [Format; 6] = [
        Format::Raw,
        Format::Esp32Sbv2,
        Format::Stm32Mp15,
        Format::Stm32Mp13,
        Format::ImxHab4,
        Format::ImxAhab,
    ];

    /// The `--format` spelling: `raw`, `esp32-sbv2`, `stm32mp15`, `stm32mp13`, `imx-hab4`,
    /// `imx-ahab`.
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

    /// The format `--format` names, or a usage error that lists the names.
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
    /// Load address for a raw payload's new header (`--load-address`).
    pub load_address: Option<u32>,
    /// Entry point for a raw payload's new header (`--entry-point`).
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
    /// The CSF key's certificate, PEM or DER (default: the token's certificate under the
    /// CSF key's label).
    pub csf_cert: Option<Vec<u8>>,
    /// Label of the IMG key on the token; none with fast authentication.
    pub img_key: Option<String>,
    /// The IMG key's certificate, PEM or DER (default: the token's certificate under its
    /// label).
    pub img_cert: Option<Vec<u8>>,
    /// The SRK (non-CA) signs the CSF and the image itself, without CSF or IMG keys.
    pub fast_auth: bool,
    /// Unlock commands to add to the CSF (`--unlock caam:rng`).
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
    /// STM32MP header fields and key set (stm32mp15, stm32mp13).
    pub stm32: Stm32Options,
    /// Boxed: most signing requests carry none, and requests travel by value.
    pub hab4: Box<Hab4Options>,
}

/// One signed payload, for the transcript.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SignRecord {
    /// The payload as given.
    pub input: PathBuf,
    /// The file written (atomically; it did not exist before).
    pub output: PathBuf,
    /// The format signed (fixes how `output` is laid out).
    pub format: Format,
    /// Label of the signing key on the token.
    pub key_label: String,
    /// SHA-256 of the key's DER SubjectPublicKeyInfo, hex.
    pub key_fingerprint: String,
    /// The signature scheme, as [`SignScheme::name`] spells it (`ECDSA with SHA-256`).
    pub scheme: String,
    /// The digest the token signed, hex.
    pub signed_digest: String,
    /// SHA-256 of the input file, hex.
    pub input_sha256: String,
    /// SHA-256 of the output file, hex.
    pub output_sha256: String,
    /// Input length in bytes.
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
    /// A signing key around `signer`, its public half read now, before any signature.
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

    /// The public half every signature is checked against.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's label, for messages and records.
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
    /// One line per check, in order.
    pub lines: Vec<String>,
}

/// What a format's signatures are checked against, as a file.
#[derive(Debug, Clone, Copy)]
pub enum TrustAnchor<'a> {
    /// The signer's public key (PEM or DER; a certificate's key too): raw, esp32-sbv2,
    /// stm32mp15, stm32mp13.
    PublicKey(&'a Path),
    /// The SRK table whose hash is fused (imx-hab4, imx-ahab): each image names the SRK
    /// in it that signed.
    SrkTable(&'a Path),
}

impl Format {
    /// Whether this format's images are checked against an SRK table rather than a key.
    pub fn anchored_by_srk_table(self) -> bool {
        matches!(self, Format::ImxHab4 | Format::ImxAhab)
    }
}

/// Verify `input` against the trust anchor its format takes: the one entry point for
/// `officiant verify` and the console's verify. The anchor must suit the format (an
/// SRK table for the i.MX formats, a public key for the others); an i.MX image carries
/// its signatures, so it takes no `signature` file or `padding`.
pub fn verify_against(
    format: Format,
    anchor: TrustAnchor<'_>,
    input: &Path,
    signature: Option<&Path>,
    padding: Option<Padding>,
) -> Result<VerifyReport, Error> {
    match (anchor, format.anchored_by_srk_table()) {
        (TrustAnchor::SrkTable(t), true) => {
            if signature.is_some() || padding.is_some() {
                return Err(Error::Usage(format!(
                    "{format} images carry their signatures: give no SIG file or --padding"
                )));
            }
            let table = std::fs::read(t).map_err(|e| Error::Input {
                path: t.to_path_buf(),
                cause: format!("SRK table: {}", e.kind()),
            })?;
            if format == Format::ImxHab4 {
                imx_hab4::verify(input, &table)
            } else {
                imx_ahab::verify(input, &table)
            }
        }
        (TrustAnchor::PublicKey(_), true) => Err(Error::Usage(format!(
            "{format} checks the image against the SRK table whose hash is fused, not a public key"
        ))),
        (TrustAnchor::SrkTable(_), false) => Err(Error::Usage(format!(
            "an SRK table is for imx-hab4 and imx-ahab, not {format}"
        ))),
        (TrustAnchor::PublicKey(p), false) => {
            let key = crate::keys::load_public_key(p)
                .map_err(|e| Error::Usage(format!("public key {e}")))?;
            // Checked here too, so that the refusal names the file.
            crate::keys::fitness::check(&key, format.key_use())
                .map_err(|e| Error::Usage(format!("public key {}: {e}", p.display())))?;
            verify_file(format, &key, input, signature, padding)
        }
    }
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
