//! The HAB4 Command Sequence File: header `D4 · length u16 BE · version`, then commands
//! `tag · length u16 BE · parameter · …` (all big-endian), then the data the commands
//! point at (SRK table, certificates `D7`, signatures `D8`) at offsets from the CSF's
//! first byte. Command layouts from spsdk's `spsdk/image/hab/commands/`.
//!
//! Pure encoding and parsing: no keys, no signatures (those are `cms` and `hab4_image`).

/// CSF header tag.
pub const CSF_TAG: u8 = 0xD4;
/// Certificate blob tag (and the SRK table's own tag).
pub const CERT_TAG: u8 = 0xD7;
/// Signature blob tag (the CMS SignedData of an Authenticate Data command).
pub const SIG_TAG: u8 = 0xD8;

/// Install Key command tag.
pub const CMD_INSTALL_KEY: u8 = 0xBE;
/// Authenticate Data command tag (also Authenticate CSF: no blocks).
pub const CMD_AUTH_DATA: u8 = 0xCA;
/// Unlock command tag.
pub const CMD_UNLOCK: u8 = 0xB2;

/// Install Key certificate formats and flags.
pub const FMT_SRK: u8 = 0x03;
/// Install Key certificate format: X.509 (DER, in a `D7` blob).
pub const FMT_X509: u8 = 0x09;
/// Authenticate Data signature format: CMS.
pub const FMT_CMS: u8 = 0xC5;
/// Install Key hash algorithm byte: SHA-256.
pub const HASH_SHA256: u8 = 0x17;
/// Install Key flag: the key installed is the CSF key (target slot 1).
pub const FLAG_CSF: u8 = 0x02;

/// Unlock engine: CAAM (crypto accelerator).
pub const ENGINE_CAAM: u8 = 0x1D;
/// Unlock engine: SNVS (secure non-volatile storage).
pub const ENGINE_SNVS: u8 = 0x1E;
/// Unlock engine: OCOTP (the fuse controller).
pub const ENGINE_OCOTP: u8 = 0x21;

/// Why bytes are not a CSF Officiant can read or write.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The header, a command or a data blob is truncated, mis-tagged or too long; the
    /// message names it and its offset.
    #[error("CSF: {0}")]
    Malformed(String),
}

fn bad(m: impl Into<String>) -> Error {
    Error::Malformed(m.into())
}

fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Install Key (`BE`): installs an SRK (format `03`), the CSF key (flag `02`, target 1)
/// or an image key (target 2–5) from data at `location` (an offset in the CSF).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallKey {
    /// Install flags (spsdk's `EnumInsKey`): [`FLAG_CSF`] for the CSF key, else 0.
    pub flags: u8,
    /// What `location` holds: [`FMT_SRK`] (an SRK table) or [`FMT_X509`] (a certificate).
    pub cert_format: u8,
    /// Hash algorithm of a certificate hash check ([`HASH_SHA256`] for the SRK table, 0 for
    /// none).
    pub hash: u8,
    /// Source: for the SRK the SRK's 0-based index in the table; otherwise the key slot
    /// that vouches for the certificate.
    pub source: u8,
    /// Target key slot: 0 SRK, 1 CSF key, 2–5 image keys.
    pub target: u8,
    /// Offset of the data (SRK table or `D7` certificate blob) from the CSF's first byte.
    pub location: u32,
}

/// One block an Authenticate Data command signs: `length` bytes at `address`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Start address (the same address space as the IVT's pointers).
    pub address: u32,
    /// Length in bytes.
    pub length: u32,
}

/// Authenticate Data (`CA`): a signature at `location` over the blocks, or (no blocks)
/// over the CSF's header and commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthData {
    /// Authenticate Data flags (0 in what Officiant writes).
    pub flags: u8,
    /// Key slot that verifies the signature (1: the CSF key, for Authenticate CSF).
    pub key: u8,
    /// Signature format: [`FMT_CMS`].
    pub sig_format: u8,
    /// Engine that hashes the blocks (0: any).
    pub engine: u8,
    /// Engine configuration (0: default).
    pub engine_cfg: u8,
    /// Offset of the `D8` signature blob from the CSF's first byte.
    pub location: u32,
    /// The signed blocks, in order; empty for Authenticate CSF.
    pub blocks: Vec<Block>,
}

/// Unlock (`B2`): leaves engine features unlocked after boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unlock {
    /// Engine: [`ENGINE_CAAM`], [`ENGINE_SNVS`] or [`ENGINE_OCOTP`].
    pub engine: u8,
    /// Feature bits of that engine (see [`UNLOCK_FEATURES`]).
    pub features: u32,
    /// The chip's unique ID, for OCOTP features bound to one chip; Officiant writes none.
    pub uid: Option<u64>,
}

/// One CSF command, decoded where Officiant writes or checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Install Key (`BE`).
    InstallKey(InstallKey),
    /// Authenticate Data (`CA`).
    AuthData(AuthData),
    /// Unlock (`B2`).
    Unlock(Unlock),
    /// Any other command (Set, NOP, Init, Write/Check Data), kept byte for byte.
    Other {
        /// The command's tag byte.
        tag: u8,
        /// The whole command as read, header included.
        raw: Vec<u8>,
    },
}

impl Command {
    /// The command as written: tag, length u16 big-endian, then its parameter, all
    /// big-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Command::InstallKey(k) => {
                let mut b = vec![CMD_INSTALL_KEY, 0, 12, k.flags];
                b.extend_from_slice(&[k.cert_format, k.hash, k.source, k.target]);
                b.extend_from_slice(&k.location.to_be_bytes());
                b
            }
            Command::AuthData(a) => {
                let len = 12 + 8 * a.blocks.len();
                let mut b = vec![CMD_AUTH_DATA];
                // Callers keep blocks few (one per image region); u16 holds 8190 of them.
                let len = u16::try_from(len).unwrap_or(u16::MAX);
                b.extend_from_slice(&len.to_be_bytes());
                b.push(a.flags);
                b.extend_from_slice(&[a.key, a.sig_format, a.engine, a.engine_cfg]);
                b.extend_from_slice(&a.location.to_be_bytes());
                for blk in &a.blocks {
                    b.extend_from_slice(&blk.address.to_be_bytes());
                    b.extend_from_slice(&blk.length.to_be_bytes());
                }
                b
            }
            Command::Unlock(u) => {
                let len: u8 = if u.uid.is_some() { 16 } else { 8 };
                let mut b = vec![CMD_UNLOCK, 0, len, u.engine];
                b.extend_from_slice(&u.features.to_be_bytes());
                if let Some(uid) = u.uid {
                    b.extend_from_slice(&uid.to_be_bytes());
                }
                b
            }
            Command::Other { raw, .. } => raw.clone(),
        }
    }

    /// "Install Key", "Authenticate Data", … for messages.
    pub fn name(&self) -> String {
        match self {
            Command::InstallKey(k) if k.cert_format == FMT_SRK => "Install SRK".into(),
            Command::InstallKey(k) if k.flags & FLAG_CSF != 0 => "Install CSFK".into(),
            Command::InstallKey(_) => "Install Key".into(),
            Command::AuthData(a) if a.blocks.is_empty() => "Authenticate CSF".into(),
            Command::AuthData(_) => "Authenticate Data".into(),
            Command::Unlock(_) => "Unlock".into(),
            Command::Other { tag, .. } => match tag {
                0xB1 => "Set".into(),
                0xB4 => "Init".into(),
                0xC0 => "NOP".into(),
                0xCC => "Write Data".into(),
                0xCF => "Check Data".into(),
                t => format!("command {t:#04x}"),
            },
        }
    }

    fn parse(raw: &[u8]) -> Result<Command, Error> {
        let tag = raw[0];
        let len = raw.len();
        let cmd = match tag {
            CMD_INSTALL_KEY if len == 12 => Command::InstallKey(InstallKey {
                flags: raw[3],
                cert_format: raw[4],
                hash: raw[5],
                source: raw[6],
                target: raw[7],
                location: be32(raw, 8),
            }),
            CMD_AUTH_DATA if len >= 12 && (len - 12).is_multiple_of(8) => {
                Command::AuthData(AuthData {
                    flags: raw[3],
                    key: raw[4],
                    sig_format: raw[5],
                    engine: raw[6],
                    engine_cfg: raw[7],
                    location: be32(raw, 8),
                    blocks: raw[12..]
                        .chunks_exact(8)
                        .map(|c| Block {
                            address: be32(c, 0),
                            length: be32(c, 4),
                        })
                        .collect(),
                })
            }
            CMD_UNLOCK if len == 8 || len == 16 => Command::Unlock(Unlock {
                engine: raw[3],
                features: be32(raw, 4),
                uid: (len == 16).then(|| {
                    u64::from_be_bytes([
                        raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15],
                    ])
                }),
            }),
            CMD_INSTALL_KEY | CMD_AUTH_DATA | CMD_UNLOCK => {
                return Err(bad(format!(
                    "command {tag:#04x} has length {len}, which its layout does not allow"
                )))
            }
            0xB1 | 0xB4 | 0xC0 | 0xCC | 0xCF => Command::Other {
                tag,
                raw: raw.to_vec(),
            },
            t => return Err(bad(format!("unknown command tag {t:#04x}"))),
        };
        Ok(cmd)
    }
}

/// A CSF's header and commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Csf {
    /// Header version byte: `0x40`–`0x45` for HAB 4.0–4.5.
    pub version: u8,
    /// The commands, in order.
    pub commands: Vec<Command>,
}

impl Csf {
    /// Parse the header and commands at the start of `data` (the CSF region).
    pub fn parse(data: &[u8]) -> Result<Csf, Error> {
        if data.len() < 4 || data[0] != CSF_TAG {
            return Err(bad("no CSF header (tag D4) at the IVT's CSF pointer"));
        }
        let len = usize::from(u16::from_be_bytes([data[1], data[2]]));
        if len < 4 || len > data.len() {
            return Err(bad(format!(
                "header length {len} outside the {} bytes there",
                data.len()
            )));
        }
        let version = data[3];
        let mut commands = Vec::new();
        let mut at = 4;
        while at < len {
            let n = commands.len() + 1;
            if len - at < 4 {
                return Err(bad(format!("command {n} at offset {at}: truncated header")));
            }
            let clen = usize::from(u16::from_be_bytes([data[at + 1], data[at + 2]]));
            if clen < 4 || at + clen > len {
                return Err(bad(format!(
                    "command {n} at offset {at}: length {clen} runs past the CSF header's {len}"
                )));
            }
            commands.push(
                Command::parse(&data[at..at + clen])
                    .map_err(|Error::Malformed(m)| bad(format!("command {n}: {m}")))?,
            );
            at += clen;
        }
        Ok(Csf { version, commands })
    }

    /// Header and commands: what Authenticate CSF signs.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        for c in &self.commands {
            body.extend(c.to_bytes());
        }
        let len = u16::try_from(4 + body.len())
            .map_err(|_| bad(format!("{} bytes of commands do not fit", body.len())))?;
        let mut b = vec![CSF_TAG];
        b.extend_from_slice(&len.to_be_bytes());
        b.push(self.version);
        b.extend(body);
        Ok(b)
    }

    /// Length of header and commands.
    pub fn len(&self) -> usize {
        4 + self
            .commands
            .iter()
            .map(|c| c.to_bytes().len())
            .sum::<usize>()
    }

    /// No commands.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }
}

/// A data blob (`tag · length u16 BE · version · payload`) at `location` in `csf`; returns
/// (version, payload). The SRK table is its own blob (tag D7, version 40).
pub fn blob(csf: &[u8], location: u32, tag: u8) -> Result<(u8, &[u8]), Error> {
    let at = usize::try_from(location).map_err(|_| bad("location overflows"))?;
    let h = csf
        .get(at..at + 4)
        .ok_or_else(|| bad(format!("data at CSF offset {at:#x} lies outside the CSF")))?;
    if h[0] != tag {
        return Err(bad(format!(
            "data at CSF offset {at:#x} has tag {:#04x}, expected {tag:#04x}",
            h[0]
        )));
    }
    let len = usize::from(u16::from_be_bytes([h[1], h[2]]));
    let body = csf.get(at..at + len).filter(|_| len >= 4).ok_or_else(|| {
        bad(format!(
            "data at CSF offset {at:#x} says {len} bytes, past the end of the CSF"
        ))
    })?;
    Ok((h[3], &body[4..]))
}

/// A data blob's bytes.
pub fn blob_bytes(tag: u8, version: u8, payload: &[u8]) -> Result<Vec<u8>, Error> {
    let len = u16::try_from(4 + payload.len())
        .map_err(|_| bad(format!("a {}-byte blob does not fit", payload.len())))?;
    let mut b = vec![tag];
    b.extend_from_slice(&len.to_be_bytes());
    b.push(version);
    b.extend_from_slice(payload);
    Ok(b)
}

/// Unlock features by engine, as CST and spsdk name them: (engine, name, bit, needs the
/// chip's UID).
pub const UNLOCK_FEATURES: [(u8, &str, u32, bool); 9] = [
    (ENGINE_CAAM, "mid", 1, false),
    (ENGINE_CAAM, "rng", 2, false),
    (ENGINE_CAAM, "mfg", 4, false),
    (ENGINE_SNVS, "lp-swr", 1, false),
    (ENGINE_SNVS, "zmk-write", 2, false),
    (ENGINE_OCOTP, "field-return", 1, true),
    (ENGINE_OCOTP, "srk-revoke", 2, false),
    (ENGINE_OCOTP, "scs", 4, true),
    (ENGINE_OCOTP, "jtag", 8, true),
];

impl Unlock {
    /// `caam:rng,mid`, `snvs:lp-swr`, `ocotp:srk-revoke`. OCOTP features bound to one
    /// chip (field return, SCS, JTAG) need its unique ID and are refused.
    pub fn parse(s: &str) -> Result<Unlock, String> {
        let (engine, feats) = s.split_once(':').ok_or_else(|| {
            format!("--unlock {s:?}: expected ENGINE:FEATURE[,FEATURE] (caam:rng)")
        })?;
        let engine = match engine.to_ascii_lowercase().as_str() {
            "caam" => ENGINE_CAAM,
            "snvs" => ENGINE_SNVS,
            "ocotp" => ENGINE_OCOTP,
            e => {
                return Err(format!(
                    "--unlock {s:?}: unknown engine {e:?} (caam, snvs or ocotp)"
                ))
            }
        };
        let mut features = 0;
        for f in feats.split(',') {
            let f = f.trim().to_ascii_lowercase();
            let (_, _, bit, uid) = UNLOCK_FEATURES
                .iter()
                .find(|(e, n, _, _)| *e == engine && *n == f)
                .ok_or_else(|| {
                    let names: Vec<&str> = UNLOCK_FEATURES
                        .iter()
                        .filter(|(e, ..)| *e == engine)
                        .map(|(_, n, ..)| *n)
                        .collect();
                    format!(
                        "--unlock {s:?}: unknown feature {f:?} (expected {})",
                        names.join(", ")
                    )
                })?;
            if *uid {
                return Err(format!(
                    "--unlock {s:?}: {f} binds the CSF to one chip's unique ID, which Officiant does not take; sign that image with CST"
                ));
            }
            features |= bit;
        }
        Ok(Unlock {
            engine,
            features,
            uid: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spsdk_rt1060_csf_commands_parse_and_reencode() {
        // The header and commands `nxpimage hab export` wrote for an RT1060 image.
        let b = hex::decode(concat!(
            "d4005042be000c000317000000000050be000c020900000100000490",
            "ca000c0001c5000000000784be000c000900000200000970",
            "ca001c0002c5000000000c6460001000000000406000200000001010"
        ))
        .unwrap();
        let csf = Csf::parse(&b).unwrap();
        assert_eq!(csf.version, 0x42);
        let names: Vec<String> = csf.commands.iter().map(Command::name).collect();
        assert_eq!(
            names,
            [
                "Install SRK",
                "Install CSFK",
                "Authenticate CSF",
                "Install Key",
                "Authenticate Data"
            ]
        );
        let Command::AuthData(a) = &csf.commands[4] else {
            panic!()
        };
        assert_eq!(
            a.blocks,
            [
                Block {
                    address: 0x6000_1000,
                    length: 0x40
                },
                Block {
                    address: 0x6000_2000,
                    length: 0x1010
                }
            ]
        );
        assert_eq!(csf.to_bytes().unwrap(), b);
    }

    #[test]
    fn damage_is_named() {
        assert!(Csf::parse(&[0xD4, 0, 3, 0x43]).is_err());
        let e = Csf::parse(&[0xD4, 0, 8, 0x43, 0xBE, 0, 9, 0]).unwrap_err();
        assert!(e.to_string().contains("command 1"), "{e}");
        let e = Csf::parse(&[0xD4, 0, 8, 0x43, 0x99, 0, 4, 0]).unwrap_err();
        assert!(e.to_string().contains("unknown command tag 0x99"), "{e}");
        assert!(blob(&[0xD8, 0, 9, 0x43], 0, SIG_TAG).is_err());
        assert!(blob(&[0xD8, 0, 4, 0x43], 0, CERT_TAG).is_err());
    }

    #[test]
    fn unlock_features() {
        assert_eq!(
            Unlock::parse("caam:rng,mid").unwrap(),
            Unlock {
                engine: ENGINE_CAAM,
                features: 3,
                uid: None
            }
        );
        assert_eq!(
            Command::Unlock(Unlock::parse("ocotp:srk-revoke").unwrap()).to_bytes(),
            [0xB2, 0, 8, 0x21, 0, 0, 0, 2]
        );
        assert!(Unlock::parse("ocotp:jtag")
            .unwrap_err()
            .contains("unique ID"));
        assert!(Unlock::parse("caam:foo").is_err());
        assert!(Unlock::parse("rng").is_err());
    }
}
