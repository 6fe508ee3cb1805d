//! `officiant sign` and `officiant verify`: argument parsing and printing only; the work
//! is in [`crate::signing`].

use std::path::PathBuf;

use clap::Args;

use serde_json::json;

use super::{BackendArgs, Failure, Outcome};
use crate::ceremony::transcript;
use crate::formats::raw::Padding;
use crate::hsm::{self, BackendUri, UserType};
use crate::keys::load_public_key;
use crate::secret::SecretSource;
use crate::signing::{self, Format, Hab4Options, Options, SignRecord, SigningKey, Stm32Options};

#[derive(Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the key pair on the token (imx-hab4: --csf-key and --img-key instead).
    #[arg(long)]
    pub key: Option<String>,
    /// raw | esp32-sbv2 | stm32mp15 | stm32mp13 | imx-hab4 | imx-ahab
    #[arg(long)]
    pub format: String,
    /// Payloads (or unsigned STM32 images, or signed ESP32 images with --append).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file (one input).
    #[arg(short = 'o', long = "output", conflicts_with = "out_dir")]
    pub output: Option<PathBuf>,
    /// Output directory (any number of inputs, one login).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// raw, RSA keys: pss (default; salt = hash length) or pkcs1 (PKCS#1 v1.5).
    #[arg(long)]
    pub padding: Option<String>,
    #[command(flatten)]
    pub fmt: FormatOptions,
    /// Print the per-input records as JSON lines.
    #[arg(long)]
    pub json: bool,
}

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

/// `imx-hab4`'s flags.
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
    /// imx-hab4: the CSF key's certificate, issued by the SRK (PEM or DER).
    #[arg(long)]
    pub csf_cert: Option<PathBuf>,
    /// imx-hab4: label of the IMG key on the token.
    #[arg(long)]
    pub img_key: Option<String>,
    /// imx-hab4: the IMG key's certificate, issued by the SRK (PEM or DER).
    #[arg(long)]
    pub img_cert: Option<PathBuf>,
    /// imx-hab4: fast authentication: a non-CA SRK signs the CSF and the image itself.
    #[arg(long)]
    pub fast_auth: bool,
    /// imx-hab4: an Unlock command, ENGINE:FEATURE[,FEATURE] (caam:rng, snvs:lp-swr,
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
    pub fn to_options(&self, padding: Option<Padding>) -> Result<Options, Failure> {
        let mut key_table = Vec::with_capacity(self.key_table.len());
        for p in &self.key_table {
            key_table.push(load_public_key(p).map_err(|e| Failure(format!("--key-table {e}")))?);
        }
        let read = |flag: &str, p: &Option<PathBuf>| -> Result<Option<Vec<u8>>, Failure> {
            p.as_ref()
                .map(|p| {
                    std::fs::read(p).map_err(|e| Failure(format!("{flag} {}: {e}", p.display())))
                })
                .transpose()
        };
        let n = &self.nxp;
        let unlock = n
            .unlock
            .iter()
            .map(|u| crate::formats::imx::csf::Unlock::parse(u).map_err(Failure))
            .collect::<Result<Vec<_>, _>>()?;
        let version = n
            .hab_version
            .as_deref()
            .map(|v| {
                let bad = || Failure(format!("--hab-version {v:?}: expected 4.0 to 4.5"));
                match v.trim().split_once('.') {
                    Some(("4", m)) => m
                        .parse::<u8>()
                        .ok()
                        .filter(|&m| m <= 5)
                        .map(|m| 0x40 | m)
                        .ok_or_else(bad),
                    _ => Err(bad()),
                }
            })
            .transpose()?;
        let hab4 = Hab4Options {
            srk_table: read("--srk-table", &n.srk_table)?,
            srk_index: n.srk_index,
            csf_key: n.csf_key.clone(),
            csf_cert: read("--csf-cert", &n.csf_cert)?,
            img_key: n.img_key.clone(),
            img_cert: read("--img-cert", &n.img_cert)?,
            fast_auth: n.fast_auth,
            unlock,
            version,
        };
        Ok(Options {
            hab4: Box::new(hab4),
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

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// raw | esp32-sbv2 | stm32mp15 | stm32mp13 | imx-hab4 | imx-ahab
    #[arg(long)]
    pub format: String,
    /// Public key (PEM/DER SPKI or certificate).
    #[arg(long)]
    pub pubkey: Option<PathBuf>,
    /// imx-hab4, imx-ahab: the SRK table file whose hash is in the fuses.
    #[arg(long)]
    pub srk_table: Option<PathBuf>,
    /// The signed image, or the payload of a raw signature.
    pub input: PathBuf,
    /// raw: the detached signature file.
    pub signature: Option<PathBuf>,
    /// raw, RSA: pss or pkcs1 (default: accept either and say which).
    #[arg(long)]
    pub padding: Option<String>,
    #[arg(long)]
    pub json: bool,
}

fn parse_num(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
        None => t.replace('_', "").parse::<u64>(),
    };
    r.map_err(|_| format!("{s:?} is not a number (0x… hex or decimal)"))
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_num(s)?;
    u32::try_from(v).map_err(|_| format!("{s} does not fit in 32 bits"))
}

fn parse_u8(s: &str) -> Result<u8, String> {
    let v = parse_num(s)?;
    u8::try_from(v).map_err(|_| format!("{s} does not fit in 8 bits"))
}

fn padding(s: Option<&str>) -> Result<Option<Padding>, Failure> {
    s.map(|p| {
        Padding::parse(p).ok_or_else(|| Failure(format!("--padding {p:?}: expected pss or pkcs1")))
    })
    .transpose()
}

fn print_record(r: &SignRecord, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    println!(
        "signed {} -> {} ({}, {}, key {:?} {})",
        r.input.display(),
        r.output.display(),
        r.format,
        r.scheme,
        r.key_label,
        r.key_fingerprint
    );
    println!("  input  SHA-256 {}", r.input_sha256);
    println!("  output SHA-256 {}", r.output_sha256);
    for n in &r.notes {
        println!("  {n}");
    }
}

/// The signing key's label: `--key`, or for imx-hab4 the CSF key.
fn key_label(a: &SignArgs, format: Format) -> Result<String, Failure> {
    match (format, &a.key, &a.fmt.nxp.csf_key) {
        (Format::ImxHab4, Some(_), _) => Err(Failure(
            "--format imx-hab4 signs with --csf-key and --img-key, not --key".into(),
        )),
        (Format::ImxHab4, None, Some(k)) => Ok(k.clone()),
        (Format::ImxHab4, None, None) => Err(Failure(
            "--format imx-hab4 needs --csf-key LABEL (and --img-key LABEL, or --fast-auth)".into(),
        )),
        (_, Some(k), _) => Ok(k.clone()),
        (f, None, _) => Err(Failure(format!("--format {f} needs --key LABEL"))),
    }
}

pub fn sign(a: SignArgs) -> Outcome {
    let format = Format::parse(&a.format)?;
    let label = key_label(&a, format)?;
    let opts = a.fmt.to_options(padding(a.padding.as_deref())?)?;
    match (&a.output, &a.out_dir) {
        (Some(_), None) if a.inputs.len() != 1 => {
            return Err(Failure(format!(
                "-o takes one input, got {}; use --out-dir DIR for a batch",
                a.inputs.len()
            )))
        }
        (None, None) => {
            return Err(Failure(
                "where to write: -o OUT (one input) or --out-dir DIR".into(),
            ))
        }
        _ => {}
    }

    let uri = BackendUri::parse(&a.b.backend)?;
    let mut token = hsm::open(&uri, a.b.token.as_deref())
        .map_err(|e| Failure(format!("cannot open {uri}: {e}")))?;
    super::apply_auth_key(token.as_mut(), &a.b)?;
    // One login for the whole batch. Without --pin-source the backend may log in from
    // the URI's pin-source, or the token's signing refusal says what is missing.
    if let Some(src) = &a.b.pin_source {
        let pin = SecretSource::parse(src)
            .and_then(|s| s.read("user PIN"))
            .map_err(|e| Failure(format!("--pin-source: {e}")))?;
        token.login(UserType::User, &pin)?;
    }
    let info = token.info()?;
    let mut key = SigningKey::new(token.as_mut(), &label)?;

    // The transcript: --transcript, else next to the outputs.
    let tpath = a.b.transcript.clone().unwrap_or_else(|| match &a.out_dir {
        Some(d) => d.join("transcript.jsonl"),
        None => PathBuf::from("officiant-transcript.jsonl"),
    });
    let mut tr = transcript::Writer::open(&tpath)?;
    // The session's opening entries share one disk sync.
    tr.append_all(vec![
        (
            "open",
            json!({"command": "sign", "backend": uri.to_string(), "officiant": env!("CARGO_PKG_VERSION")}),
        ),
        (
            "token",
            json!({"label": info.label, "serial": info.serial, "manufacturer": info.manufacturer, "model": info.model, "rehearsal": info.rehearsal}),
        ),
        (
            "sign-start",
            json!({"format": format.name(), "key": label, "img_key": a.fmt.nxp.img_key, "key_fingerprint": hex::encode(key.public_key().fingerprint()), "inputs": a.inputs.len()}),
        ),
    ])?;

    let mut note = |rs: &[SignRecord]| -> Result<(), signing::Error> {
        for r in rs {
            print_record(r, a.json);
        }
        let entries = rs
            .iter()
            .map(|r| ("signed", serde_json::to_value(r).unwrap_or_default()))
            .collect();
        tr.append_all(entries)
            .map_err(|e| signing::Error::Usage(format!("transcript: {e}")))
    };
    let result = match (&a.output, &a.out_dir) {
        (Some(out), _) => signing::sign_file(&mut key, format, &opts, &a.inputs[0], out)
            .map_err(|e| e.to_string())
            .and_then(|r| note(std::slice::from_ref(&r)).map_err(|e| e.to_string())),
        (None, Some(dir)) => {
            signing::sign_batch_with(&mut key, format, &opts, &a.inputs, dir, &mut note)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        (None, None) => Ok(()),
    };
    match result {
        Ok(()) => {
            tr.close("complete")?;
            Ok(())
        }
        Err(e) => {
            tr.append("sign-failed", json!({"error": e}))?;
            tr.close("stopped")?;
            Err(Failure(e))
        }
    }
}

pub fn verify(a: VerifyArgs) -> Outcome {
    let format = Format::parse(&a.format)?;
    let nxp = matches!(format, Format::ImxHab4 | Format::ImxAhab);
    let report = match (format, &a.pubkey, &a.srk_table) {
        (f, None, Some(t)) if nxp => {
            if a.signature.is_some() || a.padding.is_some() {
                return Err(Failure(format!(
                    "{f} images carry their signatures: give no SIG file or --padding"
                )));
            }
            let table =
                std::fs::read(t).map_err(|e| Failure(format!("--srk-table {}: {e}", t.display())))?;
            if f == Format::ImxHab4 {
                signing::imx_hab4::verify(&a.input, &table)?
            } else {
                signing::imx_ahab::verify(&a.input, &table)?
            }
        }
        (f, _, _) if nxp => {
            return Err(Failure(format!(
                "--format {f} checks the image against --srk-table FILE (the SRK table whose hash is fused), not --pubkey"
            )))
        }
        (_, _, Some(_)) => {
            return Err(Failure(format!(
                "--srk-table is for imx-hab4 and imx-ahab, not {format}"
            )))
        }
        (_, None, None) => return Err(Failure(format!("--format {format} needs --pubkey FILE"))),
        (_, Some(p), None) => {
            let key = load_public_key(p).map_err(|e| Failure(format!("--pubkey {e}")))?;
            signing::verify_file(
                format,
                &key,
                &a.input,
                a.signature.as_deref(),
                padding(a.padding.as_deref())?,
            )?
        }
    };
    if a.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        for l in &report.lines {
            println!("{l}");
        }
    }
    Ok(())
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
