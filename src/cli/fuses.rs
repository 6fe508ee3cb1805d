//! `officiant fuses …`: fuse/OTP values from public keys or certificates; needs no token.
//! Every command prints the value in hex groups and PGP words; `--json` for machines.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{Failure, Outcome};

#[derive(Subcommand, Debug)]
pub enum FusesCommand {
    /// NXP HAB4: SRK table and fuse hash from 1–4 SRK certificates.
    Hab4(Hab4Args),
    /// Arm TF-A: SHA-256 of the ROT public key's DER SubjectPublicKeyInfo.
    TfaRotpk(KeyOutArgs),
    /// Espressif Secure Boot V2: the eFuse key digest.
    Esp32Sbv2(KeyOutArgs),
    /// STM32MP15: public key hash (PKH).
    Stm32mp15(KeyOutArgs),
    /// STM32MP13/MP25: public key hash table hash (PKHTH) for up to 8 keys.
    Stm32mpPkhth(KeysOutArgs),
}

#[derive(Args, Debug)]
pub struct Hab4Args {
    /// SRK certificates (PEM or DER), in SRK order; 1 to 4.
    #[arg(long = "cert", required = true)]
    pub certs: Vec<PathBuf>,
    /// Output SRK table (SRK_1_2_3_4_table.bin).
    #[arg(long)]
    pub table: PathBuf,
    /// Output fuse file (SRK_1_2_3_4_fuse.bin).
    #[arg(long)]
    pub fuse: PathBuf,
    /// SoC family for the U-Boot `fuse prog` lines: imx6, imx7, imx8m, imx7ulp.
    #[arg(long)]
    pub soc: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct KeyOutArgs {
    /// Public key, certificate or private key (PEM or DER).
    #[arg(long)]
    pub key: PathBuf,
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// TF-A only: prefix the hash with the SHA-256 DigestInfo header.
    #[arg(long)]
    pub digest_info: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct KeysOutArgs {
    #[arg(long = "key", required = true)]
    pub keys: Vec<PathBuf>,
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn run(c: FusesCommand) -> Outcome {
    match c {
        FusesCommand::Hab4(a) => hab4(a),
        FusesCommand::TfaRotpk(a) => tfa_rotpk(a),
        FusesCommand::Esp32Sbv2(a) => esp32_sbv2(a),
        FusesCommand::Stm32mp15(a) => stm32mp15(a),
        FusesCommand::Stm32mpPkhth(a) => stm32mp_pkhth(a),
    }
}

fn hab4(a: Hab4Args) -> Outcome {
    let _ = a;
    Err(Failure("fuses hab4 is not built yet".into()))
}

fn tfa_rotpk(a: KeyOutArgs) -> Outcome {
    let _ = a;
    Err(Failure("fuses tfa-rotpk is not built yet".into()))
}

fn esp32_sbv2(a: KeyOutArgs) -> Outcome {
    let _ = a;
    Err(Failure("fuses esp32-sbv2 is not built yet".into()))
}

fn stm32mp15(a: KeyOutArgs) -> Outcome {
    let _ = a;
    Err(Failure("fuses stm32mp15 is not built yet".into()))
}

fn stm32mp_pkhth(a: KeysOutArgs) -> Outcome {
    let _ = a;
    Err(Failure("fuses stm32mp-pkhth is not built yet".into()))
}
