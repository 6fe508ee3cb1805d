//! Checking a signed HAB4 image's CSF the way the ROM walks it: [`verify_csf`] fills
//! HAB's key slots (SRK, CSF key, image keys) under its CA rules, checks each certificate
//! against the key that vouches for it and the CSF signature over the CSF's own header
//! and commands, and hands back the data signatures ([`DataCheck`]) for the caller to
//! check over the file ranges they cover. Every failure names the CSF command.
//!
//! Pure: bytes in, report lines out; no I/O (the caller streams the covered ranges).

use der::Decode;
use x509_cert::Certificate;

use super::{input, subject, Error};
use crate::formats::hab4;
use crate::formats::imx::cms;
use crate::formats::imx::csf::{
    self, AuthData, Block, Command, Csf, InstallKey, CERT_TAG, FLAG_CSF, FMT_CMS, FMT_SRK,
    FMT_X509, SIG_TAG,
};
use crate::formats::imx::ivt::{Layout, IVT_LEN};
use crate::keys::{self, PublicKey};

/// An Authenticate Data command's signature, to be checked against the SHA-256 of the
/// file ranges it covers (which the caller reads).
#[derive(Clone, Debug)]
pub struct DataCheck {
    /// 1-based number of the command in the CSF.
    pub command: usize,
    /// Key slot that verifies the signature.
    pub key_index: u8,
    /// The blocks the signature covers, as addresses.
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
    /// One line per command checked so far, for the operator.
    pub lines: Vec<String>,
    /// The data signatures the caller still has to check over the file.
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
