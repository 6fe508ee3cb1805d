//! The format-specific options of `officiant sign`, one clap definition shared by both
//! faces: the command line flattens it into `sign`, the console parses its Options field
//! with it.

use std::path::PathBuf;

use clap::Args;

use super::{Options, Stm32Options};
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

fn parse_num(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
        None => t.replace('_', "").parse::<u64>(),
    };
    r.map_err(|_| format!("{s:?} is not a number (0x… hex or decimal)"))
}

pub fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_num(s)?;
    u32::try_from(v).map_err(|_| format!("{s} does not fit in 32 bits"))
}

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
}
