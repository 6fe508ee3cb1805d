//! Signing and checking a HAB4 image (i.MX 6/7/8M, i.MX RT 10xx/11xx): the CSF that
//! installs the SRK (table and index), the CSF key and the image key, authenticates
//! itself and one block from the IVT to the CSF (IVT, boot data, DCD and application,
//! as NXP's U-Boot guides sign them), and optionally unlocks engine features.
//!
//! Signing runs in steps so that the image can be streamed and each key opened in turn:
//! [`Plan::new`] checks the inputs and fixes where the CSF goes and how much room it gets
//! (so the IVT and boot data, which the image signature covers, are final before any
//! byte is hashed); the caller streams the image through [`Plan::patch`] and hashes
//! [`Plan::covered`]; [`Plan::sign_image`] makes the image signature, [`Plan::build_csf`]
//! lays out the CSF, signs it and returns its bytes. The CSF's data follow the command
//! order (SRK table, CSF certificate, CSF signature, image certificate, image signature)
//! as CST and spsdk write them; the CSF signature gets a slot sized for the longest
//! signature its key can make.
//!
//! [`verify_csf`] (in `verify.rs`) walks a signed image's CSF the way the ROM does (key
//! slots, CA rules, certificates, each CMS signature over exactly the bytes it covers) and
//! names the command that fails.
//!
//! Pure: bytes, certificates and a `keys::Signer` in, bytes out; no I/O (the caller,
//! `signing::imx_hab4`, streams the image and writes the output).

mod verify;

pub use verify::{csf_offset, verify_csf, DataCheck, Verification};

use std::ops::Range;
use std::time::SystemTime;

use der::Decode;
use x509_cert::Certificate;

use super::cms;
use super::csf::{
    self, AuthData, Block, Command, Csf, InstallKey, Unlock, CERT_TAG, FLAG_CSF, FMT_CMS, FMT_SRK,
    FMT_X509, HASH_SHA256, SIG_TAG,
};
use super::ivt::{Layout, IVT_LEN};
use crate::formats::hab4;
use crate::keys::{self, PublicKey};

/// Room CST and spsdk give a CSF (U-Boot's `CSF 0x2000`), and the alignment of a CSF we
/// place.
pub const CSF_SPACE: u64 = 0x2000;
/// Where Officiant places a CSF after the image: the next multiple of 4 KiB.
pub const CSF_ALIGN: u64 = 0x1000;

/// Why an image cannot be signed, or its CSF does not check.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable IVT and boot data in the image.
    #[error(transparent)]
    Layout(#[from] super::ivt::Error),
    /// A CSF could not be encoded or parsed.
    #[error(transparent)]
    Csf(#[from] csf::Error),
    /// A flag, file or key that does not fit; the message names it.
    #[error("{0}")]
    Input(String),
    /// Making, sizing or checking a CMS signature failed.
    #[error("{what}: {source}")]
    Cms {
        /// Which signature, and by which key label.
        what: String,
        /// What the CMS layer said.
        #[source]
        source: cms::Error,
    },
    /// `verify` found the image bad; the message names the command.
    #[error("{0}")]
    Verify(String),
}

fn input(m: impl Into<String>) -> Error {
    Error::Input(m.into())
}

fn align(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

fn align4(v: usize) -> usize {
    v.div_ceil(4) * 4
}

/// What to sign with. Certificates are PEM or DER.
pub struct SignSpec<'a> {
    /// The SRK table file (`SRK_1_2_3_4_table.bin`).
    pub srk_table: &'a [u8],
    /// 0-based index of the SRK in the table.
    pub srk_index: usize,
    /// The CSF key's certificate (fast authentication: the SRK's own).
    pub csf_cert: &'a [u8],
    /// The image key's certificate; none with fast authentication.
    pub img_cert: Option<&'a [u8]>,
    /// The SRK (non-CA) signs the CSF and the image itself (CST's Install NOCAK).
    pub fast_auth: bool,
    /// Unlock commands to append after authentication (`--unlock`).
    pub unlock: Vec<Unlock>,
    /// CSF header version (0x40–0x45); default 0x43, 0x45 with EC keys.
    pub version: Option<u8>,
    /// The CMS signingTime of both signatures.
    pub time: SystemTime,
}

/// A key by its label (for messages) and public half.
#[derive(Clone, Copy)]
pub struct KeyRef<'a> {
    /// The key's token label.
    pub label: &'a str,
    /// The key's public half, as read from the token.
    pub public: &'a PublicKey,
}

fn cert_der(bytes: &[u8], what: &str) -> Result<(Vec<u8>, Certificate, PublicKey), Error> {
    let der = super::ahab_srk::certificate_der(bytes).map_err(|m| input(format!("{what}: {m}")))?;
    let cert = Certificate::from_der(&der)
        .map_err(|e| input(format!("{what}: not an X.509 certificate: {e}")))?;
    let key = PublicKey::from_certificate_der(&der)
        .map_err(|e| input(format!("{what}: certificate key: {e}")))?;
    Ok((der, cert, key))
}

fn subject(cert: &Certificate) -> String {
    cert.tbs_certificate.subject.to_string()
}

/// Everything the CSF needs, checked; the IVT and boot data as they will be written.
pub struct Plan {
    layout: Layout,
    ivt: [u8; IVT_LEN],
    boot: [u8; 12],
    boot_offset: u64,
    csf_offset: u64,
    csf_address: u32,
    reserved: u64,
    output_len: u64,
    srk_table: Vec<u8>,
    srk_index: u8,
    /// (DER, key) of the CSF certificate and (normal mode) the image certificate.
    csf_cert: (Vec<u8>, PublicKey),
    img_cert: Option<(Vec<u8>, PublicKey)>,
    version: u8,
    unlock: Vec<Unlock>,
    time: SystemTime,
    /// What the operator should know: where the CSF went, boot data changes.
    pub notes: Vec<String>,
}

/// What [`Plan::check_keys`] settles: the SRK table, (DER, key) of the CSF certificate
/// and of the image certificate (none with fast authentication), the HAB version.
struct Checked {
    table: hab4::SrkTable,
    csf_cert: (Vec<u8>, PublicKey),
    img_cert: Option<(Vec<u8>, PublicKey)>,
    version: u8,
}

/// Where each piece goes in a CSF, given the length of the image signature blob.
struct DataLayout {
    commands: Vec<Command>,
    srk: usize,
    csf_cert: Option<usize>,
    csf_sig: usize,
    csf_sig_room: usize,
    img_cert: Option<usize>,
    img_sig: usize,
    end: usize,
}

impl Plan {
    /// Check the image layout, keys and certificates, and fix the CSF's place.
    /// `at_csf` holds the file's first bytes at the IVT's CSF pointer, if it has one and
    /// it points inside the file (up to a few KiB); the caller checks the rest is blank
    /// while streaming ([`Plan::check_blank`]).
    pub fn new(
        layout: &Layout,
        at_csf: &[u8],
        spec: &SignSpec<'_>,
        csf_key: KeyRef<'_>,
        img_key: Option<KeyRef<'_>>,
    ) -> Result<Plan, Error> {
        let Checked {
            table,
            csf_cert: (csf_der, csf_pub),
            img_cert,
            version,
        } = Self::check_keys(spec, csf_key, img_key)?;
        let ivt = layout.ivt;
        let mut notes = Vec::new();
        let (csf_offset, csf_address, reserved_by_image) = Self::place_csf(layout, at_csf)?;

        let srk_index = u8::try_from(spec.srk_index).unwrap_or(0);
        let mut plan = Plan {
            layout: *layout,
            ivt: ivt.to_bytes(),
            boot: layout.boot.to_bytes(),
            boot_offset: layout.boot_data_offset(),
            csf_offset,
            csf_address,
            reserved: 0,
            output_len: 0,
            srk_table: table.table_bytes(),
            srk_index,
            csf_cert: (csf_der, csf_pub),
            img_cert,
            version,
            unlock: spec.unlock.clone(),
            time: spec.time,
            notes: Vec::new(),
        };
        // The most room the CSF can need: both signatures at their longest.
        let img_max = match &plan.img_cert {
            Some((der, key)) => cms::max_len(key, der, spec.time),
            None => cms::max_len(&plan.csf_cert.1, &plan.csf_cert.0, spec.time),
        }
        .map_err(|source| Error::Cms {
            what: "sizing the image signature".into(),
            source,
        })?;
        let need = plan.data_layout(4 + img_max)?.end as u64;
        let reserved = if reserved_by_image >= need {
            notes.push(format!(
                "CSF placed where the IVT's CSF pointer reserves {reserved_by_image:#x} bytes"
            ));
            reserved_by_image
        } else {
            let r = align(need, CSF_ALIGN).max(CSF_SPACE);
            if reserved_by_image > 0 {
                notes.push(format!(
                    "the image reserved {reserved_by_image:#x} bytes for the CSF, which needs up to {need:#x}: boot data length extended to {r:#x} bytes of CSF"
                ));
            }
            r
        };
        let mut boot = layout.boot;
        let end = u64::from(csf_address) + reserved;
        if end > boot.end() {
            boot.length = u32::try_from(end - u64::from(boot.start))
                .map_err(|_| input("the signed image would exceed 4 GiB"))?;
        }
        let mut new_ivt = ivt;
        new_ivt.csf = csf_address;
        plan.ivt = new_ivt.to_bytes();
        plan.boot = boot.to_bytes();
        plan.reserved = reserved;
        plan.output_len = (csf_offset + reserved).max(layout.file_len);
        if csf_offset - layout.ivt_offset > u64::from(u32::MAX) {
            return Err(input("the image is larger than a HAB block can cover"));
        }
        notes.insert(
            0,
            format!(
                "CSF at {csf_address:#010x} (file offset {csf_offset:#x}), HAB {}.{}, boot data {:#010x} + {:#x}",
                version >> 4,
                version & 0xF,
                boot.start,
                boot.length
            ),
        );
        plan.notes = notes;
        Ok(plan)
    }

    /// The SRK table and index, the CSF and IMG certificates against the SRK and the
    /// keys that sign, and the HAB version (4.5 for ECDSA).
    fn check_keys(
        spec: &SignSpec<'_>,
        csf_key: KeyRef<'_>,
        img_key: Option<KeyRef<'_>>,
    ) -> Result<Checked, Error> {
        let table = hab4::SrkTable::parse(spec.srk_table)
            .map_err(|e| input(format!("--srk-table: {e}")))?;
        let count = table.srks().len();
        let srk = table.srks().get(spec.srk_index).ok_or_else(|| {
            input(format!(
                "--srk-index {}: the SRK table holds {count} SRK{} (index 0 to {})",
                spec.srk_index,
                if count == 1 { "" } else { "s" },
                count - 1
            ))
        })?;
        let n = spec.srk_index + 1;
        if spec.fast_auth && srk.ca {
            return Err(input(format!(
                "--fast-auth: SRK {n} is a CA key; HAB verifies data only with non-CA (v3_usr) SRKs, so fast authentication needs a table of non-CA SRKs"
            )));
        }
        if !spec.fast_auth && !srk.ca {
            return Err(input(format!(
                "SRK {n} is not a CA key (v3_usr), so it cannot vouch for CSF and IMG certificates; sign with --fast-auth and the SRK's own key"
            )));
        }
        let (csf_der, csf_c, csf_pub) = cert_der(spec.csf_cert, "--csf-cert")?;
        if spec.fast_auth {
            if csf_pub != srk.key {
                return Err(input(format!(
                    "--csf-cert ({}) is not SRK {n}'s own certificate: with --fast-auth the SRK signs",
                    subject(&csf_c)
                )));
            }
        } else {
            crate::pki::verify_issued(&csf_der, &srk.key).map_err(|_| {
                input(format!(
                    "--csf-cert ({}) is not issued by SRK {n}: its signature does not verify with that key",
                    subject(&csf_c)
                ))
            })?;
        }
        if *csf_key.public != csf_pub {
            return Err(input(format!(
                "key {:?} ({}) does not match --csf-cert ({}, {})",
                csf_key.label,
                csf_key.public.describe(),
                subject(&csf_c),
                csf_pub.describe()
            )));
        }
        let img_cert = match (spec.fast_auth, spec.img_cert, img_key) {
            (true, None, None) => None,
            (true, ..) => return Err(input(
                "--fast-auth signs the image with the SRK itself: give no --img-key or --img-cert",
            )),
            (false, Some(bytes), Some(k)) => {
                let (der, c, public) = cert_der(bytes, "--img-cert")?;
                crate::pki::verify_issued(&der, &srk.key).map_err(|_| {
                    input(format!(
                        "--img-cert ({}) is not issued by SRK {n}: its signature does not verify with that key",
                        subject(&c)
                    ))
                })?;
                if *k.public != public {
                    return Err(input(format!(
                        "key {:?} ({}) does not match --img-cert ({}, {})",
                        k.label,
                        k.public.describe(),
                        subject(&c),
                        public.describe()
                    )));
                }
                Some((der, public))
            }
            (false, None, _) => {
                return Err(input("--img-cert is missing (the IMG key's certificate)"))
            }
            (false, Some(_), None) => {
                return Err(input("--img-key is missing (the key that signs the image)"))
            }
        };
        let ec = [
            Some(&srk.key),
            Some(&csf_pub),
            img_cert.as_ref().map(|c| &c.1),
        ]
        .into_iter()
        .flatten()
        .any(|k| matches!(k, PublicKey::Ec { .. }));
        let version = match spec.version {
            None if ec => 0x45,
            None => 0x43,
            Some(v) if !(0x40..=0x45).contains(&v) => {
                return Err(input(format!(
                    "--hab-version {}.{}: HAB4 CSF versions are 4.0 to 4.5",
                    v >> 4,
                    v & 0xF
                )))
            }
            Some(v) if ec && v < 0x45 => {
                return Err(input(format!(
                    "--hab-version 4.{}: ECDSA keys need HAB 4.5",
                    v & 0xF
                )))
            }
            Some(v) => v,
        };
        Ok(Checked {
            table,
            csf_cert: (csf_der, csf_pub),
            img_cert,
            version,
        })
    }

    /// Where the CSF goes: at the IVT's CSF pointer when it has one (free space after
    /// the IVT, boot data and DCD, word-aligned, not a CSF already), else aligned after
    /// the image. Returns its file offset, its address and the room the image reserves
    /// for it (0: none).
    fn place_csf(layout: &Layout, at_csf: &[u8]) -> Result<(u64, u32, u64), Error> {
        let ivt = layout.ivt;
        let min_csf = (layout.ivt_offset + IVT_LEN as u64).max(layout.boot_data_offset() + 12);
        let min_csf = match ivt.dcd {
            0 => min_csf,
            dcd => min_csf.max(layout.file_offset(dcd).unwrap_or(0) + 4),
        };
        Ok(if ivt.csf != 0 {
            let off = layout.file_offset(ivt.csf).ok_or_else(|| {
                input(format!(
                    "the IVT's CSF pointer {:#010x} lies before the file's start",
                    ivt.csf
                ))
            })?;
            if off < min_csf {
                return Err(input(format!(
                    "the IVT's CSF pointer {:#010x} (file offset {off:#x}) points into the IVT, boot data or DCD",
                    ivt.csf
                )));
            }
            if !ivt.csf.is_multiple_of(4) {
                return Err(input(format!(
                    "the IVT's CSF pointer {:#010x} is not word-aligned",
                    ivt.csf
                )));
            }
            if at_csf.first() == Some(&csf::CSF_TAG) && Csf::parse(at_csf).is_ok() {
                return Err(input(format!(
                    "the image is already signed: a CSF sits at the IVT's CSF pointer {:#010x} (file offset {off:#x}); sign the unsigned image",
                    ivt.csf
                )));
            }
            Self::check_blank(off, at_csf).map_err(|at| {
                input(format!(
                    "the IVT's CSF pointer {:#010x} points into the application: file offset {at:#x} holds data, not free space",
                    ivt.csf
                ))
            })?;
            let room = layout
                .boot_end_offset()
                .map_or(0, |end| end.saturating_sub(off));
            (off, ivt.csf, room)
        } else {
            let end_addr = layout
                .address(layout.file_len.max(min_csf))
                .ok_or_else(|| input("the image ends past the 32-bit address space"))?;
            let addr = align(u64::from(end_addr), CSF_ALIGN);
            let addr = u32::try_from(addr)
                .map_err(|_| input("no room for a CSF below 4 GiB after the image"))?;
            // layout.file_offset cannot fail for an address after the IVT.
            (layout.file_offset(addr).unwrap_or(0), addr, 0)
        })
    }

    /// `Err(offset)` of the first byte in `bytes` (at file offset `at`) that is neither
    /// 0x00 nor 0xFF-only free space. Free space is all 0x00 or all 0xFF.
    pub fn check_blank(at: u64, bytes: &[u8]) -> Result<(), u64> {
        let Some(&first) = bytes.first() else {
            return Ok(());
        };
        if first != 0 && first != 0xFF {
            return Err(at);
        }
        match bytes.iter().position(|&b| b != first) {
            None => Ok(()),
            Some(i) => Err(at + i as u64),
        }
    }

    /// Overwrite the IVT and boot data inside `chunk`, which starts at file offset `off`.
    // Each `as usize` is an offset inside `chunk` (s - off < e - off <= chunk.len()) or
    // inside the 32- or 12-byte `new` (s - at < e - at <= new.len()), so none truncates.
    #[allow(clippy::cast_possible_truncation)]
    pub fn patch(&self, off: u64, chunk: &mut [u8]) {
        for (at, new) in [
            (self.layout.ivt_offset, &self.ivt[..]),
            (self.boot_offset, &self.boot[..]),
        ] {
            let c_end = off + chunk.len() as u64;
            let n_end = at + new.len() as u64;
            let (s, e) = (at.max(off), n_end.min(c_end));
            if s < e {
                chunk[(s - off) as usize..(e - off) as usize]
                    .copy_from_slice(&new[(s - at) as usize..(e - at) as usize]);
            }
        }
    }

    /// The file bytes the image signature covers: from the IVT to the CSF (past the
    /// file's end the output holds zeros).
    pub fn covered(&self) -> Range<u64> {
        self.layout.ivt_offset..self.csf_offset
    }

    /// File offset where the CSF is written.
    pub fn csf_offset(&self) -> u64 {
        self.csf_offset
    }

    /// The CSF's address, as written into the IVT's CSF pointer.
    pub fn csf_address(&self) -> u32 {
        self.csf_address
    }

    /// Bytes from the CSF's start to the end of the room it has.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// The signed image's length (the input's, if longer: its free space is kept).
    pub fn output_len(&self) -> u64 {
        self.output_len
    }

    /// The one block the image signature covers: from the IVT's address up to the CSF.
    pub fn block(&self) -> Block {
        Block {
            address: self.layout.ivt.self_addr,
            // Plan::new refused a CSF more than u32::MAX bytes past the IVT, so this
            // cannot truncate.
            #[allow(clippy::cast_possible_truncation)]
            length: (self.csf_offset - self.layout.ivt_offset) as u32,
        }
    }

    /// CSF header version byte (`0x43`, `0x45` with EC keys, or `--hab-version`).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Whether the SRK signs the CSF and the image itself (no CSF or IMG certificate).
    pub fn fast_auth(&self) -> bool {
        self.img_cert.is_none()
    }

    /// The CSF key's public half (its certificate's key).
    pub fn csf_public(&self) -> &PublicKey {
        &self.csf_cert.1
    }

    fn img_cert(&self) -> &(Vec<u8>, PublicKey) {
        self.img_cert.as_ref().unwrap_or(&self.csf_cert)
    }

    fn data_layout(&self, img_sig_blob: usize) -> Result<DataLayout, Error> {
        let cms_err = |source| Error::Cms {
            what: "sizing the CSF signature".into(),
            source,
        };
        let csf_sig_room =
            4 + cms::max_len(&self.csf_cert.1, &self.csf_cert.0, self.time).map_err(cms_err)?;
        let install = |flags, cert_format, hash, source, target| {
            Command::InstallKey(InstallKey {
                flags,
                cert_format,
                hash,
                source,
                target,
                location: 0,
            })
        };
        let auth = |key, blocks| {
            Command::AuthData(AuthData {
                flags: 0,
                key,
                sig_format: FMT_CMS,
                engine: 0,
                engine_cfg: 0,
                location: 0,
                blocks,
            })
        };
        let mut commands = vec![install(0, FMT_SRK, HASH_SHA256, self.srk_index, 0)];
        if self.img_cert.is_some() {
            commands.push(install(FLAG_CSF, FMT_X509, 0, 0, 1));
            commands.push(auth(1, vec![]));
            commands.push(install(0, FMT_X509, 0, 0, 2));
            commands.push(auth(2, vec![self.block()]));
        } else {
            // Fast authentication as spsdk writes it (and as its authors checked on an
            // i.MX RT1061): a non-CA SRK needs no certificate; the CSF is verified with
            // key slot 1 and the data with slot 0, both the SRK.
            commands.push(auth(1, vec![]));
            commands.push(auth(0, vec![self.block()]));
        }
        commands.extend(self.unlock.iter().cloned().map(Command::Unlock));
        let header = 4 + commands.iter().map(|c| c.to_bytes().len()).sum::<usize>();
        let mut at = align4(header);
        let mut take = |len: usize| {
            let here = at;
            at += align4(len);
            here
        };
        let srk = take(self.srk_table.len());
        let fast = self.img_cert.is_none();
        let csf_cert = (!fast).then(|| take(4 + self.csf_cert.0.len()));
        let csf_sig = take(csf_sig_room);
        let img_cert = self.img_cert.as_ref().map(|(der, _)| take(4 + der.len()));
        let img_sig = take(img_sig_blob);
        let loc = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        let locations: Vec<u32> = [Some(srk), csf_cert, Some(csf_sig), img_cert, Some(img_sig)]
            .into_iter()
            .flatten()
            .map(loc)
            .collect();
        for (c, l) in commands.iter_mut().zip(locations) {
            match c {
                Command::InstallKey(k) => k.location = l,
                Command::AuthData(a) => a.location = l,
                _ => {}
            }
        }
        Ok(DataLayout {
            commands,
            srk,
            csf_cert,
            csf_sig,
            csf_sig_room,
            img_cert,
            img_sig,
            end: at,
        })
    }

    /// The image signature: a CMS over the covered bytes, whose SHA-256 is `digest`, by
    /// the image key (fast authentication: the SRK).
    pub fn sign_image(
        &self,
        signer: &mut dyn keys::Signer,
        digest: &[u8; 32],
    ) -> Result<Vec<u8>, Error> {
        let (der, key) = self.img_cert();
        if signer.public_key() != key {
            return Err(input(format!(
                "key {:?} is not the key of the image certificate",
                signer.label()
            )));
        }
        cms::sign_detached(signer, der, digest, self.time).map_err(|source| Error::Cms {
            what: format!("image signature by {:?}", signer.label()),
            source,
        })
    }

    /// Lay out the CSF around the image signature `img_cms`, sign its header and
    /// commands with the CSF key (fast authentication: the SRK), and return the CSF
    /// padded with zeros to its room.
    pub fn build_csf(
        &self,
        img_cms: &[u8],
        signer: &mut dyn keys::Signer,
    ) -> Result<Vec<u8>, Error> {
        if signer.public_key() != &self.csf_cert.1 {
            return Err(input(format!(
                "key {:?} is not the key of the CSF certificate",
                signer.label()
            )));
        }
        let v = self.version;
        let img_blob = csf::blob_bytes(SIG_TAG, v, img_cms)?;
        let d = self.data_layout(img_blob.len())?;
        let head = Csf {
            version: v,
            commands: d.commands.clone(),
        }
        .to_bytes()?;
        let digest: [u8; 32] = keys::HashAlg::Sha256
            .digest(&head)
            .try_into()
            .map_err(|_| input("SHA-256 is 32 bytes"))?;
        let csf_cms =
            cms::sign_detached(signer, &self.csf_cert.0, &digest, self.time).map_err(|source| {
                Error::Cms {
                    what: format!("CSF signature by {:?}", signer.label()),
                    source,
                }
            })?;
        let csf_blob = csf::blob_bytes(SIG_TAG, v, &csf_cms)?;
        if csf_blob.len() > d.csf_sig_room {
            return Err(input(format!(
                "the CSF signature ({} bytes) outgrew its slot ({} bytes)",
                csf_blob.len(),
                d.csf_sig_room
            )));
        }
        if d.end as u64 > self.reserved {
            return Err(input(format!(
                "the CSF ({} bytes) outgrew its room ({} bytes)",
                d.end, self.reserved
            )));
        }
        let room = usize::try_from(self.reserved).map_err(|_| {
            input(format!(
                "the CSF's room ({:#x} bytes) does not fit in memory here",
                self.reserved
            ))
        })?;
        let mut out = vec![0u8; room];
        let mut put = |at: usize, b: &[u8]| out[at..at + b.len()].copy_from_slice(b);
        put(0, &head);
        put(d.srk, &self.srk_table);
        if let Some(at) = d.csf_cert {
            put(at, &csf::blob_bytes(CERT_TAG, v, &self.csf_cert.0)?);
        }
        put(d.csf_sig, &csf_blob);
        if let (Some(at), Some((der, _))) = (d.img_cert, &self.img_cert) {
            put(at, &csf::blob_bytes(CERT_TAG, v, der)?);
        }
        put(d.img_sig, &img_blob);
        Ok(out)
    }
}
