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
//! [`verify_csf`] walks a signed image's CSF the way the ROM does (key slots, CA rules,
//! certificates, each CMS signature over exactly the bytes it covers) and names the
//! command that fails.

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
pub const CSF_ALIGN: u64 = 0x1000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Layout(#[from] super::ivt::Error),
    #[error(transparent)]
    Csf(#[from] csf::Error),
    /// A flag, file or key that does not fit; the message names it.
    #[error("{0}")]
    Input(String),
    #[error("{what}: {source}")]
    Cms {
        what: String,
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
    pub unlock: Vec<Unlock>,
    /// CSF header version (0x40–0x45); default 0x43, 0x45 with EC keys.
    pub version: Option<u8>,
    pub time: SystemTime,
}

/// A key by its label (for messages) and public half.
#[derive(Clone, Copy)]
pub struct KeyRef<'a> {
    pub label: &'a str,
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

    pub fn csf_offset(&self) -> u64 {
        self.csf_offset
    }

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

    pub fn block(&self) -> Block {
        Block {
            address: self.layout.ivt.self_addr,
            // Plan::new checked that this fits.
            length: (self.csf_offset - self.layout.ivt_offset) as u32,
        }
    }

    pub fn version(&self) -> u8 {
        self.version
    }

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
        let mut out = vec![0u8; self.reserved as usize];
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

/// An Authenticate Data command's signature, to be checked against the SHA-256 of the
/// file ranges it covers (which the caller reads).
#[derive(Clone, Debug)]
pub struct DataCheck {
    pub command: usize,
    pub key_index: u8,
    pub blocks: Vec<Block>,
    /// (file offset, length) per block, in order.
    pub ranges: Vec<(u64, u64)>,
    key: PublicKey,
    cert: Option<Vec<u8>>,
    cms: Vec<u8>,
}

impl DataCheck {
    fn what(&self) -> String {
        let blocks: Vec<String> = self
            .blocks
            .iter()
            .map(|b| format!("{:#010x}+{:#x}", b.address, b.length))
            .collect();
        format!(
            "CSF command {} (Authenticate Data, key {}) over {}",
            self.command,
            self.key_index,
            blocks.join(", ")
        )
    }

    /// Check the signature given the SHA-256 of the concatenated ranges.
    pub fn check(&self, digest: &[u8; 32]) -> Result<String, Error> {
        let v = cms::verify_detached(&self.cms, &self.key, self.cert.as_deref(), digest)
            .map_err(|e| Error::Verify(format!("{}: {e}", self.what())))?;
        let total: u64 = self.ranges.iter().map(|r| r.1).sum();
        Ok(format!(
            "{}: {} signature{} over {total} bytes: valid",
            self.what(),
            v.scheme.name(),
            v.signing_time
                .map(|t| format!(" (signed {t})"))
                .unwrap_or_default()
        ))
    }
}

/// What [`verify_csf`] found: report lines so far and the data signatures still to check.
#[derive(Clone, Debug)]
pub struct Verification {
    pub lines: Vec<String>,
    pub data: Vec<DataCheck>,
}

/// A key in HAB's key store: the key, whether it is a CA key, its certificate.
type Slot = (PublicKey, bool, Option<Vec<u8>>);

/// The IVT's CSF pointer as a file offset, for a signed image.
pub fn csf_offset(layout: &Layout) -> Result<u64, Error> {
    if layout.ivt.csf == 0 {
        return Err(Error::Verify(
            "the image is not signed: its IVT's CSF pointer is 0".into(),
        ));
    }
    layout
        .file_offset(layout.ivt.csf)
        .filter(|&o| o < layout.file_len)
        .ok_or_else(|| {
            Error::Verify(format!(
                "the IVT's CSF pointer {:#010x} lies outside the file (not signed, or truncated)",
                layout.ivt.csf
            ))
        })
}

/// Walk the CSF in `region` (the file from the CSF pointer on, as much as is there up
/// to a bound) as HAB does: the SRK table must be `srk_table_file`; certificates must be
/// issued by the key the command names; the CSF signature is checked here, the data
/// signatures are returned for the caller to hash and check.
pub fn verify_csf(
    layout: &Layout,
    region: &[u8],
    srk_table_file: &[u8],
) -> Result<Verification, Error> {
    let fail = |m: String| Error::Verify(m);
    let want_table =
        hab4::SrkTable::parse(srk_table_file).map_err(|e| input(format!("--srk-table: {e}")))?;
    let csf = Csf::parse(region).map_err(|e| fail(e.to_string()))?;
    let head_len = csf.len();
    let ivt = layout.ivt;
    let lines = vec![format!(
        "imx-hab4: IVT at file offset {:#x} (self {:#010x}), boot data {:#010x} + {:#x}, CSF at {:#010x} (HAB {}.{}, {} commands)",
        layout.ivt_offset,
        ivt.self_addr,
        layout.boot.start,
        layout.boot.length,
        ivt.csf,
        csf.version >> 4,
        csf.version & 0xF,
        csf.commands.len()
    )];
    let mut walk = CsfWalk {
        layout,
        region,
        want_table,
        head_len,
        slots: Default::default(),
        data: Vec::new(),
        csf_authenticated: false,
        data_end: head_len as u64,
        lines,
    };
    for (i, cmd) in csf.commands.iter().enumerate() {
        walk.command(i + 1, cmd)?;
    }
    let CsfWalk {
        mut lines,
        data,
        csf_authenticated,
        data_end,
        ..
    } = walk;
    if !csf_authenticated {
        return Err(fail(
            "the CSF has no Authenticate CSF command: HAB would stop".into(),
        ));
    }
    if data.is_empty() {
        return Err(fail("the CSF authenticates no image data".into()));
    }
    let csf_end = u64::from(ivt.csf) + data_end;
    if csf_end > layout.boot.end() {
        return Err(fail(format!(
            "the boot data length ({:#x} from {:#010x}) does not cover the CSF, which ends at {csf_end:#010x}",
            layout.boot.length, layout.boot.start
        )));
    }
    let ivt_covered = data.iter().any(|d| {
        d.ranges
            .iter()
            .any(|&(o, l)| o <= layout.ivt_offset && layout.ivt_offset + IVT_LEN as u64 <= o + l)
    });
    if !ivt_covered {
        lines.push("warning: no signed block covers the IVT".into());
    }
    Ok(Verification { lines, data })
}

/// The CSF's commands run in order as HAB runs them: the key store they fill, the data
/// checks they ask for, the lines that say what was found.
struct CsfWalk<'a> {
    layout: &'a Layout,
    region: &'a [u8],
    want_table: hab4::SrkTable,
    /// Header and command bytes: what Authenticate CSF signs.
    head_len: usize,
    /// HAB's key store: slot → (key, may it verify certificates, its certificate).
    slots: [Option<Slot>; 6],
    data: Vec<DataCheck>,
    csf_authenticated: bool,
    /// The end of the CSF's blobs (SRK table, certificates, signatures), from its start.
    data_end: u64,
    lines: Vec<String>,
}

impl CsfWalk<'_> {
    /// Command `n`.
    fn command(&mut self, n: usize, cmd: &Command) -> Result<(), Error> {
        let name = cmd.name();
        match cmd {
            Command::InstallKey(k) if k.cert_format == FMT_SRK => self.install_srk(n, &name, k),
            Command::InstallKey(k) => self.install_key(n, &name, k),
            Command::AuthData(a) => self.auth_data(n, &name, a),
            Command::Unlock(u) => {
                let feats: Vec<&str> = csf::UNLOCK_FEATURES
                    .iter()
                    .filter(|(e, _, bit, _)| *e == u.engine && u.features & bit != 0)
                    .map(|(_, name, ..)| *name)
                    .collect();
                self.lines.push(format!(
                    "CSF command {n} (Unlock): engine {:#04x}, features {:#x} ({})",
                    u.engine,
                    u.features,
                    feats.join(", ")
                ));
                Ok(())
            }
            Command::Other { .. } => {
                self.lines
                    .push(format!("CSF command {n} ({name}): not checked"));
                Ok(())
            }
        }
    }

    /// Install SRK: the table is --srk-table, the SRK one of it, into slot 0 (and slot 1
    /// too for a non-CA SRK: fast authentication).
    fn install_srk(&mut self, n: usize, name: &str, k: &InstallKey) -> Result<(), Error> {
        let at = |m: String| Error::Verify(format!("CSF command {n} ({name}): {m}"));
        if n != 1 {
            return Err(at("the SRK must be installed first".into()));
        }
        let start = k.location as usize;
        let table_bytes = self
            .region
            .get(start..)
            .ok_or_else(|| at(format!("SRK table offset {start:#x} lies outside the CSF")))?;
        let table = hab4::SrkTable::parse(table_bytes).map_err(|e| at(e.to_string()))?;
        let tlen = table.table_bytes().len();
        self.data_end = self.data_end.max((start + tlen) as u64);
        if table.fuse_hash() != self.want_table.fuse_hash() {
            return Err(at(format!(
                "the image's SRK table (fuse hash {}) is not --srk-table (fuse hash {})",
                hex::encode(table.fuse_hash()),
                hex::encode(self.want_table.fuse_hash())
            )));
        }
        let srk = table.srks().get(usize::from(k.source)).ok_or_else(|| {
            at(format!(
                "SRK index {} outside the table's {} SRKs",
                k.source,
                table.srks().len()
            ))
        })?;
        self.lines.push(format!(
            "CSF command {n} (Install SRK): table = --srk-table (fuse hash {}), SRK {} of {}: {}{}",
            hex::encode(table.fuse_hash()),
            k.source + 1,
            table.srks().len(),
            srk.key.describe(),
            if srk.ca {
                ", CA"
            } else {
                ", non-CA: fast authentication, the SRK is also the CSF key"
            }
        ));
        self.slots[0] = Some((srk.key.clone(), srk.ca, None));
        if !srk.ca {
            // What HAB does with a non-CA SRK (fast authentication): it also
            // verifies the CSF (slot 1) unless an Install NOCAK replaces it.
            self.slots[1] = Some((srk.key.clone(), false, None));
        }
        Ok(())
    }

    /// Install CSFK / Install Key / Install NOCAK: an X.509 certificate issued by the key
    /// in its source slot (or the SRK's own, for fast authentication).
    fn install_key(&mut self, n: usize, name: &str, k: &InstallKey) -> Result<(), Error> {
        let at = |m: String| Error::Verify(format!("CSF command {n} ({name}): {m}"));
        if k.cert_format != FMT_X509 {
            return Err(at(format!(
                "certificate format {:#04x} (Officiant reads X.509)",
                k.cert_format
            )));
        }
        let target = usize::from(k.target);
        let source = usize::from(k.source);
        let csfk = k.flags & FLAG_CSF != 0;
        if csfk != (target == 1) || target == 0 || target > 5 {
            return Err(at(format!(
                "target key slot {target} does not fit its flags {:#04x}",
                k.flags
            )));
        }
        if !csfk && !self.csf_authenticated {
            return Err(at("an image key installed before Authenticate CSF".into()));
        }
        let (issuer, issuer_ca, _) = self
            .slots
            .get(if csfk { 0 } else { source })
            .cloned()
            .flatten()
            .ok_or_else(|| at(format!("key slot {source} is empty")))?;
        let (_, der) =
            csf::blob(self.region, k.location, CERT_TAG).map_err(|e| at(e.to_string()))?;
        self.data_end = self
            .data_end
            .max(u64::from(k.location) + 4 + der.len() as u64);
        let cert = Certificate::from_der(der).map_err(|e| at(format!("certificate: {e}")))?;
        let key = PublicKey::from_certificate_der(der)
            .map_err(|e| at(format!("certificate key: {e}")))?;
        let how = if issuer_ca {
            crate::pki::verify_issued(der, &issuer).map_err(|_| {
                at(format!(
                    "certificate {} is not issued by the key in slot {}: its signature does not verify",
                    subject(&cert),
                    if csfk { 0 } else { source }
                ))
            })?;
            format!(
                "issued by the key in slot {}",
                if csfk { 0 } else { source }
            )
        } else if csfk && key == issuer {
            // Fast authentication (Install NOCAK): the SRK's own certificate.
            "the SRK's own certificate (fast authentication)".to_string()
        } else {
            return Err(at(format!(
                "the key in slot {source} is not a CA key and cannot vouch for {}",
                subject(&cert)
            )));
        };
        self.lines.push(format!(
            "CSF command {n} ({name}, slot {target}): {} ({}), {how}: valid",
            subject(&cert),
            key.describe()
        ));
        self.slots[target] = Some((key, false, Some(der.to_vec())));
        Ok(())
    }

    /// Authenticate CSF (checked now, over the CSF's header and commands) or Authenticate
    /// Data (its blocks checked by the caller, over the image bytes).
    fn auth_data(&mut self, n: usize, name: &str, a: &AuthData) -> Result<(), Error> {
        let at = |m: String| Error::Verify(format!("CSF command {n} ({name}): {m}"));
        let head_len = self.head_len;
        if a.sig_format != FMT_CMS {
            return Err(at(format!(
                "signature format {:#04x} (Officiant checks CMS)",
                a.sig_format
            )));
        }
        let (key, ca, cert) = self
            .slots
            .get(usize::from(a.key))
            .cloned()
            .flatten()
            .ok_or_else(|| at(format!("key slot {} is empty", a.key)))?;
        if ca {
            return Err(at(format!(
                "the key in slot {} is a CA key, which HAB does not let verify data",
                a.key
            )));
        }
        let (_, cms_der) =
            csf::blob(self.region, a.location, SIG_TAG).map_err(|e| at(e.to_string()))?;
        self.data_end = self
            .data_end
            .max(u64::from(a.location) + 4 + cms_der.len() as u64);
        if a.blocks.is_empty() {
            if a.key != 1 {
                return Err(at(format!(
                    "the CSF is authenticated with key slot {}, not the CSF key's slot 1",
                    a.key
                )));
            }
            let digest: [u8; 32] = keys::HashAlg::Sha256
                .digest(&self.region[..head_len])
                .try_into()
                .map_err(|_| at("SHA-256 is 32 bytes".into()))?;
            let v = cms::verify_detached(cms_der, &key, cert.as_deref(), &digest).map_err(|e| {
                at(format!(
                    "signature over the CSF's {head_len} header and command bytes: {e}"
                ))
            })?;
            self.lines.push(format!(
                "CSF command {n} (Authenticate CSF): {} signature{} over the CSF's {head_len} header and command bytes: valid",
                v.scheme.name(),
                v.signing_time.map(|t| format!(" (signed {t})")).unwrap_or_default()
            ));
            self.csf_authenticated = true;
        } else {
            if !self.csf_authenticated {
                return Err(at("data authenticated before Authenticate CSF".into()));
            }
            let mut ranges = Vec::new();
            for (bi, b) in a.blocks.iter().enumerate() {
                let off = self
                    .layout
                    .file_offset(b.address)
                    .filter(|&o| o + u64::from(b.length) <= self.layout.file_len)
                    .ok_or_else(|| {
                        at(format!(
                            "block {} ({:#010x}+{:#x}) lies outside the file",
                            bi + 1,
                            b.address,
                            b.length
                        ))
                    })?;
                ranges.push((off, u64::from(b.length)));
            }
            self.data.push(DataCheck {
                command: n,
                key_index: a.key,
                blocks: a.blocks.clone(),
                ranges,
                key,
                cert,
                cms: cms_der.to_vec(),
            });
        }
        Ok(())
    }
}
