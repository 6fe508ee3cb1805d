//! `officiant fuses …`: fuse/OTP values from public keys or certificates; needs no token.
//! Every command prints the value in hex groups and PGP words; `--json` for machines.
//!
//! The values themselves are computed in `formats` (hab4, imx::ahab_srk, tfa, esp32,
//! stm32); this module reads the files, refuses an existing output before computing
//! anything, writes atomically and prints. It never opens a token.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use serde_json::json;

use super::{Failure, Outcome};
use crate::formats::words::Fingerprint;
use crate::formats::{esp32, hab4, stm32, tfa};
use crate::keys::PublicKey;

/// `officiant fuses …`: one subcommand per fuse/OTP format.
#[derive(Subcommand, Debug)]
pub enum FusesCommand {
    /// NXP HAB4: SRK table and fuse hash from 1–4 SRK certificates.
    Hab4(Hab4Args),
    /// NXP AHAB (i.MX 8QXP/8QM, 8ULP, 9x): SRK table and SRK hash from 4 SRK certificates.
    Ahab(AhabArgs),
    /// Arm TF-A: SHA-256 of the ROT public key's DER SubjectPublicKeyInfo.
    TfaRotpk(KeyOutArgs),
    /// Espressif Secure Boot V2: the eFuse key digest.
    Esp32Sbv2(KeyOutArgs),
    /// STM32MP15: public key hash (PKH).
    Stm32mp15(KeyOutArgs),
    /// STM32MP13/MP25: public key hash table hash (PKHTH) for up to 8 keys.
    Stm32mpPkhth(KeysOutArgs),
}

/// `officiant fuses hab4`.
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
    /// Print one JSON object (table, fuse hash, fuse words, U-Boot lines).
    #[arg(long)]
    pub json: bool,
}

/// `officiant fuses ahab`.
#[derive(Args, Debug)]
pub struct AhabArgs {
    /// SRK certificates (PEM or DER), in SRK order; exactly 4, all of one key type.
    #[arg(long = "cert", required = true)]
    pub certs: Vec<PathBuf>,
    /// RSA records as RSA-PSS (0x22), as spsdk writes them for i.MX 9 (default: PKCS#1
    /// v1.5, 0x21, as srktool writes them).
    #[arg(long)]
    pub rsa_pss: bool,
    /// srktool -a's files: the fuse file is SHA-512 of the table (64 bytes), the value
    /// i.MX 8QXP/8QM burn (default: SHA-256 of the table, as nxpcrypto and i.MX 8ULP/9x).
    #[arg(long)]
    pub srktool: bool,
    /// Output SRK table (SRK_1_2_3_4_table.bin).
    #[arg(long)]
    pub table: PathBuf,
    /// Output fuse file (SRK_1_2_3_4_fuse.bin).
    #[arg(long)]
    pub fuse: PathBuf,
    /// SoC family for the U-Boot `fuse prog` lines: imx8qxp, imx8qm, imx8ulp, imx93, imx95.
    #[arg(long)]
    pub family: Option<String>,
    /// Print one JSON object (table, SRK hash, fuse words, U-Boot lines).
    #[arg(long)]
    pub json: bool,
}

/// The flags of the one-key commands: `fuses tfa-rotpk`, `esp32-sbv2`, `stm32mp15`.
#[derive(Args, Debug)]
pub struct KeyOutArgs {
    /// Public key, certificate or private key (PEM or DER).
    #[arg(long)]
    pub key: PathBuf,
    /// The value's file to write (binary; never over an existing file).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// TF-A only: prefix the hash with the SHA-256 DigestInfo header.
    #[arg(long)]
    pub digest_info: bool,
    /// Print one JSON object (the value, and the burn commands for esp32-sbv2).
    #[arg(long)]
    pub json: bool,
}

/// `officiant fuses stm32mp-pkhth`.
#[derive(Args, Debug)]
pub struct KeysOutArgs {
    /// Public key, certificate or private key (PEM or DER), in table order; 1 to 8.
    #[arg(long = "key", required = true)]
    pub keys: Vec<PathBuf>,
    /// The PKHTH file to write (32 bytes; never over an existing file).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Print one JSON object (each key's hash and the PKHTH).
    #[arg(long)]
    pub json: bool,
}

/// `officiant fuses FORMAT`. Prints the value in hex groups and PGP words (and, where
/// the format has them, the fuse words and burn commands), or JSON with `--json`. An
/// existing output or a key the format cannot take is the error (exit 1), before
/// anything is written; hab4 and ahab write both files or neither.
pub fn run(c: FusesCommand) -> Outcome {
    match c {
        FusesCommand::Hab4(a) => hab4(a),
        FusesCommand::Ahab(a) => ahab(a),
        FusesCommand::TfaRotpk(a) => tfa_rotpk(a),
        FusesCommand::Esp32Sbv2(a) => esp32_sbv2(a),
        FusesCommand::Stm32mp15(a) => stm32mp15(a),
        FusesCommand::Stm32mpPkhth(a) => stm32mp_pkhth(a),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure(format!("{}: {e}", path.display())))
}

/// A public key, certificate or (unencrypted) private key file; the error names the file.
fn load_key(path: &Path) -> Result<PublicKey, Failure> {
    let named = |e: crate::keys::Error| Failure(format!("{}: {e}", path.display()));
    // The file may hold a private key: keep its bytes in a zeroizing buffer.
    let bytes = zeroize::Zeroizing::new(read(path)?);
    match PublicKey::from_bytes(&bytes) {
        Ok(k) => Ok(k),
        Err(public_err) => {
            let is_private = crate::keys::pem_text(&bytes)
                .is_some_and(|t| t.contains("PRIVATE KEY-----"))
                || crate::keys::pem_text(&bytes).is_none();
            if !is_private {
                return Err(named(public_err));
            }
            match crate::keys::PrivateKey::from_bytes(&bytes, None) {
                Ok(k) => Ok(k.public_key().clone()),
                Err(crate::keys::Error::NeedPassphrase) => Err(Failure(format!(
                    "{}: an encrypted private key; give its public key or certificate instead",
                    path.display()
                ))),
                // Not a private key either: the public-key reason is the useful one.
                Err(_) if crate::keys::pem_text(&bytes).is_none() => Err(named(public_err)),
                Err(e) => Err(named(e)),
            }
        }
    }
}

/// Refuse before computing anything when an output exists, so a run that would fail at
/// the end writes nothing.
fn check_new(paths: &[&Path]) -> Outcome {
    for p in paths {
        if p.symlink_metadata().is_ok() {
            return Err(Failure(format!(
                "refusing to overwrite existing output file {}",
                p.display()
            )));
        }
    }
    if paths.len() == 2 && paths[0] == paths[1] {
        return Err(Failure(format!(
            "--table and --fuse name the same file {}",
            paths[0].display()
        )));
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Outcome {
    crate::output::write_new(path, bytes).map_err(Failure::from)
}

/// The witness rendering: hex groups, then PGP words.
fn show(title: &str, value: &[u8]) -> String {
    let f = Fingerprint::of(value);
    format!("{title}\n  {}\n  {}\n", f.groups, f.words)
}

fn print_json(v: serde_json::Value) {
    println!("{v:#}");
}

fn hab4(a: Hab4Args) -> Outcome {
    // Validate everything (inputs, --soc, outputs) before writing anything.
    let soc = a.soc.as_deref().map(str::parse::<hab4::Soc>).transpose()?;
    check_new(&[&a.table, &a.fuse])?;
    let certs = a
        .certs
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let table = hab4::srk_table(&certs).map_err(|e| match e.cert_index() {
        Some(i) => Failure(format!("{}: {e}", a.certs[i].display())),
        None => Failure(e.to_string()),
    })?;
    let bytes = table.table_bytes();
    let hash = table.fuse_hash();
    write(&a.table, &bytes)?;
    if let Err(e) = write(&a.fuse, &hash) {
        // Both or neither: take back the table this run just wrote.
        let _ = std::fs::remove_file(&a.table);
        return Err(e);
    }
    let words = hab4::fuse_words(&hash);
    let uboot = soc.map(|s| hab4::fuse_commands(&hash, s));
    if a.json {
        let srks: Vec<_> = a
            .certs
            .iter()
            .zip(table.srks())
            .map(|(p, s)| {
                json!({"cert": p.display().to_string(), "key": s.key.describe(), "ca": s.ca})
            })
            .collect();
        print_json(json!({
            "format": "hab4",
            "table": {"path": a.table.display().to_string(), "bytes": bytes.len(),
                      "sha256": hex::encode(crate::output::sha256(&bytes))},
            "fuse": {"path": a.fuse.display().to_string()},
            "srks": srks,
            "ca": table.is_ca(),
            "hash": Fingerprint::of(&hash),
            "fuse_words": words.iter().map(|w| format!("0x{w:08X}")).collect::<Vec<_>>(),
            "soc": soc.map(|s| s.name()),
            "uboot": uboot,
        }));
        return Ok(());
    }
    let mut out = format!(
        "SRK table: {} ({} bytes, {} SRK{}, {})\n",
        a.table.display(),
        bytes.len(),
        table.srks().len(),
        if table.srks().len() == 1 { "" } else { "s" },
        if table.is_ca() { "CA" } else { "non-CA" }
    );
    for (p, s) in a.certs.iter().zip(table.srks()) {
        out += &format!("  SRK: {} ({})\n", p.display(), s.key.describe());
    }
    out += &format!("SRK fuse file: {}\n", a.fuse.display());
    out += &show("SRK fuse hash (SHA-256):", &hash);
    out += "Fuse words:\n";
    for (i, w) in words.iter().enumerate() {
        out += &format!("  SRK_HASH[{i}] = 0x{w:08X}\n");
    }
    if let (Some(s), Some(lines)) = (soc, uboot) {
        out += &format!("U-Boot ({s}):\n");
        for l in lines {
            out += &format!("  {l}\n");
        }
    }
    print!("{out}");
    Ok(())
}

fn ahab(a: AhabArgs) -> Outcome {
    use crate::formats::imx::ahab_srk::{self, Family, RsaRecord};
    // Validate everything (inputs, --family against the hash width, outputs) before
    // writing anything.
    let family = a.family.as_deref().map(str::parse::<Family>).transpose()?;
    if a.rsa_pss && a.srktool {
        return Err(Failure(
            "--rsa-pss and --srktool: srktool writes RSA records as PKCS#1 v1.5; choose one".into(),
        ));
    }
    let hash_bits = if a.srktool { 512 } else { 256 };
    if let Some(f) = family {
        if f.hash_bits() != hash_bits {
            return Err(Failure(if f.hash_bits() == 512 {
                format!("--family {f} burns a 512-bit SRK hash (SHA-512 of the table, srktool -a's efuse file): add --srktool")
            } else {
                format!("--family {f} burns a 256-bit SRK hash (SHA-256 of the table): drop --srktool, whose 64-byte file is for i.MX 8QXP/8QM")
            }));
        }
    }
    check_new(&[&a.table, &a.fuse])?;
    let certs = a
        .certs
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let rsa = if a.rsa_pss {
        RsaRecord::Pss
    } else {
        RsaRecord::Pkcs1
    };
    let table = ahab_srk::srk_table(&certs, rsa).map_err(|e| match e.cert_index() {
        Some(i) => Failure(format!("{}: {e}", a.certs[i].display())),
        None => Failure(e.to_string()),
    })?;
    let bytes = table.table_bytes();
    let hash: Vec<u8> = if a.srktool {
        table.sha512().to_vec()
    } else {
        table.sha256().to_vec()
    };
    let uboot = family
        .map(|f| ahab_srk::fuse_commands(&hash, f))
        .transpose()?;
    write(&a.table, bytes)?;
    if let Err(e) = write(&a.fuse, &hash) {
        // Both or neither: take back the table this run just wrote.
        let _ = std::fs::remove_file(&a.table);
        return Err(e);
    }
    let words = ahab_srk::fuse_words(&hash);
    let hash_name = if a.srktool { "SHA-512" } else { "SHA-256" };
    let first = &table.srks()[0];
    if a.json {
        let srks: Vec<_> = a
            .certs
            .iter()
            .zip(table.srks())
            .map(|(p, s)| json!({"cert": p.display().to_string(), "key": s.describe(), "ca": s.ca}))
            .collect();
        print_json(json!({
            "format": "ahab",
            "table": {"path": a.table.display().to_string(), "bytes": bytes.len(),
                      "sha256": hex::encode(crate::output::sha256(bytes))},
            "fuse": {"path": a.fuse.display().to_string(), "hash": hash_name},
            "srks": srks,
            "ca": table.is_ca(),
            "hash": Fingerprint::of(&hash),
            "fuse_words": words.iter().map(|w| format!("0x{w:08X}")).collect::<Vec<_>>(),
            "family": family.map(|f| f.name()),
            "uboot": uboot,
        }));
        return Ok(());
    }
    let mut out = format!(
        "AHAB SRK table: {} ({} bytes, 4 SRKs, {}, {})\n",
        a.table.display(),
        bytes.len(),
        first.describe(),
        if table.is_ca() { "CA" } else { "non-CA" }
    );
    for (p, s) in a.certs.iter().zip(table.srks()) {
        out += &format!("  SRK: {} ({})\n", p.display(), s.key.describe());
    }
    out += &format!("SRK fuse file: {}\n", a.fuse.display());
    out += &show(&format!("SRK hash ({hash_name} of the table):"), &hash);
    out += "Fuse words:\n";
    for (i, w) in words.iter().enumerate() {
        out += &format!("  SRK_HASH[{i}] = 0x{w:08X}\n");
    }
    match (family, uboot) {
        (Some(f), Some(lines)) => {
            out += &format!("U-Boot ({f}, SRK_HASH[{}:0]):\n", f.hash_bits() - 1);
            for l in lines {
                out += &format!("  {l}\n");
            }
        }
        _ => {
            out += if a.srktool {
                "No --family: the 512-bit hash is what i.MX 8QXP/8QM burn (--family imx8qxp|imx8qm for the fuse lines)\n"
            } else {
                "No --family: the 256-bit hash is what i.MX 8ULP/93/95 burn (--family imx8ulp|imx93|imx95 for the fuse lines)\n"
            }
        }
    }
    print!("{out}");
    Ok(())
}

/// The single-key commands: validate, compute, write, print.
fn single(
    a: &KeyOutArgs,
    format: &str,
    title: &str,
    value: Vec<u8>,
    extra: Vec<String>,
) -> Outcome {
    write(&a.output, &value)?;
    if a.json {
        print_json(json!({
            "format": format,
            "key": a.key.display().to_string(),
            "output": a.output.display().to_string(),
            "value": Fingerprint::of(&value),
            "commands": extra,
        }));
        return Ok(());
    }
    let mut out = format!("{}: {}\n", title, a.output.display());
    out += &show(&format!("{title} ({} bytes):", value.len()), &value);
    for l in extra {
        out += &format!("{l}\n");
    }
    print!("{out}");
    Ok(())
}

fn refuse_digest_info(a: &KeyOutArgs, cmd: &str) -> Outcome {
    if a.digest_info {
        return Err(Failure(format!(
            "--digest-info applies only to tfa-rotpk, not {cmd}"
        )));
    }
    Ok(())
}

fn tfa_rotpk(a: KeyOutArgs) -> Outcome {
    check_new(&[&a.output])?;
    let key = load_key(&a.key)?;
    let value = tfa::rotpk_sha256(&key, a.digest_info)
        .map_err(|e| Failure(format!("{}: {e}", a.key.display())))?;
    let title = if a.digest_info {
        "ROTPK hash (DigestInfo ‖ SHA-256)"
    } else {
        "ROTPK hash (SHA-256)"
    };
    single(&a, "tfa-rotpk", title, value, Vec::new())
}

fn esp32_sbv2(a: KeyOutArgs) -> Outcome {
    refuse_digest_info(&a, "esp32-sbv2")?;
    check_new(&[&a.output])?;
    let key = load_key(&a.key)?;
    let digest =
        esp32::key_digest(&key).map_err(|e| Failure(format!("{}: {e}", a.key.display())))?;
    let out = a.output.display().to_string();
    let extra = vec![
        "Burn it (ESP32-C3/C6/H2/S3/P4, key slot 0):".to_string(),
        format!("  espefuse burn-key BLOCK_KEY0 {out} SECURE_BOOT_DIGEST0"),
        "Original ESP32 (ECO3, RSA-3072 only):".to_string(),
        format!("  espefuse --chip esp32 burn-key secure_boot_v2 {out}"),
    ];
    single(
        &a,
        "esp32-sbv2",
        "Secure Boot V2 key digest",
        digest.to_vec(),
        extra,
    )
}

fn stm32mp15(a: KeyOutArgs) -> Outcome {
    refuse_digest_info(&a, "stm32mp15")?;
    check_new(&[&a.output])?;
    let key = load_key(&a.key)?;
    let pkh =
        stm32::pkh_mp15(&key).map_err(|e| Failure(format!("{}: {}", a.key.display(), msg(&e))))?;
    single(&a, "stm32mp15", "STM32MP15 PKH", pkh.to_vec(), Vec::new())
}

fn msg(e: &stm32::Error) -> String {
    match e {
        stm32::Error::Key { msg, .. } => msg.clone(),
        other => other.to_string(),
    }
}

fn stm32mp_pkhth(a: KeysOutArgs) -> Outcome {
    check_new(&[&a.output])?;
    if a.keys.len() > stm32::MAX_KEYS {
        return Err(Failure(format!(
            "a key hash table holds 1 to 8 keys, got {}",
            a.keys.len()
        )));
    }
    let keys = a
        .keys
        .iter()
        .map(|p| load_key(p))
        .collect::<Result<Vec<_>, _>>()?;
    let table = stm32::key_hash_table(&keys).map_err(|e| match e.key_index() {
        Some(i) => Failure(format!("{}: {}", a.keys[i].display(), msg(&e))),
        None => Failure(e.to_string()),
    })?;
    let value = crate::output::sha256(&table);
    write(&a.output, &value)?;
    if a.json {
        let per_key: Vec<_> = a
            .keys
            .iter()
            .zip(table.chunks(32))
            .map(|(p, h)| json!({"key": p.display().to_string(), "hash": hex::encode(h)}))
            .collect();
        print_json(json!({
            "format": "stm32mp-pkhth",
            "output": a.output.display().to_string(),
            "keys": per_key,
            "value": Fingerprint::of(&value),
        }));
        return Ok(());
    }
    let mut out = format!("STM32MP PKHTH: {}\n", a.output.display());
    for (i, (p, h)) in a.keys.iter().zip(table.chunks(32)).enumerate() {
        out += &format!("  key {i}: {} {}\n", p.display(), hex::encode_upper(h));
    }
    out += &show("PKHTH (SHA-256 of the key hash table):", &value);
    print!("{out}");
    Ok(())
}
