//! The format-specific options of `officiant sign`, one clap definition shared by both
//! faces: the command line flattens it into `sign`, the console parses its Options field
//! with it. Reads the files its flags name (key table, SRK table, certificates); no
//! token.

use std::path::PathBuf;

use clap::Args;

use super::{Hab4Options, Options, Stm32Options};
use crate::formats::raw::Padding;
use crate::keys::load_public_key;

/// The format-specific options of `sign`. The console's Options field takes the same
/// flags, parsed by the same definition.
#[derive(Args, Debug, Clone, Default)]
pub struct FormatOptions {
    /// esp32-sbv2: add a signature block to an already signed image (up to 3).
    #[arg(long)]
    pub append: bool,
    /// stm32: load address of a raw payload (0x… or decimal).
    #[arg(long, value_parser = parse_u32)]
    pub load_address: Option<u32>,
    /// stm32: entry point of a raw payload.
    #[arg(long, value_parser = parse_u32)]
    pub entry_point: Option<u32>,
    /// stm32: anti-rollback image version (default 0).
    #[arg(long = "version", value_parser = parse_u32)]
    pub image_version: Option<u32>,
    /// stm32: binary type of a raw payload (default 0x10, TF-A).
    #[arg(long, value_parser = parse_u8)]
    pub binary_type: Option<u8>,
    /// stm32mp13: index of the signing key in the key table.
    #[arg(long, value_parser = parse_u32)]
    pub key_index: Option<u32>,
    /// stm32mp13: every public key of the set, in OTP table order (repeat the option).
    #[arg(long = "key-table")]
    pub key_table: Vec<PathBuf>,
    /// The NXP formats' flags (boxed: a console request carries these by value).
    #[command(flatten)]
    pub nxp: Box<NxpOptions>,
}

/// The flags of `imx-hab4` and `imx-ahab`.
#[derive(Args, Debug, Clone, Default)]
pub struct NxpOptions {
    /// imx-hab4, imx-ahab: the SRK table file (SRK_1_2_3_4_table.bin).
    #[arg(long)]
    pub srk_table: Option<PathBuf>,
    /// imx-hab4, imx-ahab: index of the SRK in the table (0 to 3).
    #[arg(long)]
    pub srk_index: Option<usize>,
    /// imx-hab4: label of the CSF key on the token (with --fast-auth: the SRK's key).
    #[arg(long)]
    pub csf_key: Option<String>,
    /// imx-hab4: the CSF key's certificate, issued by the SRK (PEM or DER; default: the
    /// token's certificate labelled as --csf-key).
    #[arg(long)]
    pub csf_cert: Option<PathBuf>,
    /// imx-hab4: label of the IMG key on the token.
    #[arg(long)]
    pub img_key: Option<String>,
    /// imx-hab4: the IMG key's certificate, issued by the SRK (PEM or DER; default: the
    /// token's certificate labelled as --img-key).
    #[arg(long)]
    pub img_cert: Option<PathBuf>,
    /// imx-hab4: fast authentication: a non-CA SRK signs the CSF and the image itself.
    #[arg(long)]
    pub fast_auth: bool,
    /// imx-hab4: an Unlock command, ENGINE:FEATURE,… (caam:rng, snvs:lp-swr,
    /// ocotp:srk-revoke); repeat for more.
    #[arg(long)]
    pub unlock: Vec<String>,
    /// imx-hab4: CSF header version, 4.0 to 4.5 (default 4.3; 4.5 with EC keys).
    #[arg(long)]
    pub hab_version: Option<String>,
}

impl FormatOptions {
    /// Parse the console's Options field: these flags, separated by spaces.
    pub fn parse_line(line: &str) -> Result<Self, String> {
        use clap::FromArgMatches;
        let cmd = FormatOptions::augment_args(clap::Command::new("options"))
            .no_binary_name(true)
            .disable_help_flag(true);
        let first_line = |e: clap::Error| {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad options").to_string();
            first.trim_start_matches("error: ").to_string()
        };
        let m = cmd
            .try_get_matches_from(line.split_whitespace())
            .map_err(first_line)?;
        FormatOptions::from_arg_matches(&m).map_err(first_line)
    }

    /// The signing options, with the key table's public keys read from their files.
    pub fn to_options(&self, padding: Option<Padding>) -> Result<Options, String> {
        let mut key_table = Vec::with_capacity(self.key_table.len());
        for p in &self.key_table {
            key_table.push(load_public_key(p).map_err(|e| format!("--key-table {e}"))?);
        }
        Ok(Options {
            hab4: Box::new(self.nxp.to_hab4()?),
            padding,
            append: self.append,
            stm32: Stm32Options {
                load_address: self.load_address,
                entry_point: self.entry_point,
                image_version: self.image_version,
                binary_type: self.binary_type,
                key_index: self.key_index,
                key_table,
            },
        })
    }
}

impl NxpOptions {
    /// The HAB4/AHAB options, with the SRK table and certificates read from their files.
    fn to_hab4(&self) -> Result<Hab4Options, String> {
        let read = |flag: &str, p: &Option<PathBuf>| -> Result<Option<Vec<u8>>, String> {
            p.as_ref()
                .map(|p| std::fs::read(p).map_err(|e| format!("{flag} {}: {e}", p.display())))
                .transpose()
        };
        let unlock = self
            .unlock
            .iter()
            .map(|u| crate::formats::imx::csf::Unlock::parse(u))
            .collect::<Result<Vec<_>, _>>()?;
        let version = self
            .hab_version
            .as_deref()
            .map(parse_hab_version)
            .transpose()?;
        Ok(Hab4Options {
            srk_table: read("--srk-table", &self.srk_table)?,
            srk_index: self.srk_index,
            csf_key: self.csf_key.clone(),
            csf_cert: read("--csf-cert", &self.csf_cert)?,
            img_key: self.img_key.clone(),
            img_cert: read("--img-cert", &self.img_cert)?,
            fast_auth: self.fast_auth,
            unlock,
            version,
        })
    }
}

/// "4.3" → 0x43 (the CSF header's version byte).
fn parse_hab_version(v: &str) -> Result<u8, String> {
    let bad = || format!("--hab-version {v:?}: expected 4.0 to 4.5");
    match v.trim().split_once('.') {
        Some(("4", m)) => m
            .parse::<u8>()
            .ok()
            .filter(|&m| m <= 5)
            .map(|m| 0x40 | m)
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn parse_num(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
        None => t.replace('_', "").parse::<u64>(),
    };
    r.map_err(|_| format!("{s:?} is not a number (0x… hex or decimal)"))
}

/// A `--load-address`-style number: `0x…` hex or decimal, `_` allowed, up to 32 bits.
pub fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_num(s)?;
    u32::try_from(v).map_err(|_| format!("{s} does not fit in 32 bits"))
}

/// A `--binary-type`-style number: `0x…` hex or decimal, up to 8 bits.
pub fn parse_u8(s: &str) -> Result<u8, String> {
    let v = parse_num(s)?;
    u8::try_from(v).map_err(|_| format!("{s} does not fit in 8 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_hex_and_decimal() {
        assert_eq!(parse_u32("0x2FFC2400"), Ok(0x2ffc_2400));
        assert_eq!(parse_u32("16"), Ok(16));
        assert!(parse_u32("0x1_0000_0000").is_err());
        assert!(parse_u8("0x100").is_err());
        assert!(parse_u32("twelve").is_err());
    }

    #[test]
    fn hab_versions_are_4_0_to_4_5() {
        assert_eq!(parse_hab_version("4.3"), Ok(0x43));
        assert_eq!(parse_hab_version("4.5"), Ok(0x45));
        assert!(parse_hab_version("4.6").is_err());
        assert!(parse_hab_version("3.0").is_err());
        assert!(parse_hab_version("43").is_err());
    }
}
