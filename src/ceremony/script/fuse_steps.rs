//! The export-fuses step kind: one format per vendor (hab4, ahab, tfa-rotpk, esp32-sbv2,
//! stm32mp15, stm32mp-pkhth) and the file names each writes into the out dir.

use super::fields::{Fail, Fields};
use super::reader::At;
use super::*;

/// The action of an export-fuses step, or `None` when `kind` is another.
pub(super) fn parse(f: &mut Fields, kind: &str, at: &At<'_>) -> Result<Option<Action>, Fail> {
    let base = at.base;
    Ok(Some(match kind {
        "export-fuses" => Action::ExportFuses(parse_fuses(f, base)?),
        _ => return Ok(None),
    }))
}

/// The `format` and its fields.
fn parse_fuses(f: &mut Fields, base: &Path) -> Result<ExportFuses, Fail> {
    let format = f.string("format")?;
    let export = match format.as_str() {
        "hab4" => read_hab4(f, base)?,
        "ahab" => read_ahab(f, base)?,
        "tfa-rotpk" => {
            let key = match f.opt_string("key")? {
                Some(_) => Some(f.relabel("key")?),
                None => None,
            };
            let key_file = f.opt_file_ref("key-file", base)?;
            if key.is_some() == key_file.is_some() {
                return Err(f.fail(
                    "key",
                    "tfa-rotpk needs exactly one of key (a label on the token) or key-file".into(),
                ));
            }
            FuseExport::TfaRotpk {
                key,
                key_file,
                digest_info: f.opt_bool("digest-info")?.unwrap_or(false),
                file: f
                    .opt_file_name("file")?
                    .unwrap_or_else(|| "rotpk_sha256.bin".into()),
            }
        }
        "esp32-sbv2" => read_esp32_sbv2(f)?,
        "stm32mp15" => FuseExport::Stm32mp15 {
            key: f.label("key")?,
            file: f.opt_file_name("file")?.unwrap_or_else(|| "pkh.bin".into()),
        },
        "stm32mp-pkhth" => FuseExport::Stm32mpPkhth {
            keys: f.labels("keys", crate::formats::stm32::MAX_KEYS)?,
            file: f
                .opt_file_name("file")?
                .unwrap_or_else(|| "pkhth.bin".into()),
        },
        other => {
            return Err(f.fail(
                "format",
                format!("unknown fuse format {other:?} (expected hab4, ahab, tfa-rotpk, esp32-sbv2, stm32mp15 or stm32mp-pkhth)"),
            ))
        }
    };
    Ok(ExportFuses { export })
}

/// A label made file-name safe: letters, digits, '-', '_', '.' kept, the rest '_'.
fn file_stem_of(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

/// hab4: 1 to 4 SRK certificates, the SoC; the SRK tool's file names.
fn read_hab4(f: &mut Fields, base: &Path) -> Result<FuseExport, Fail> {
    use crate::formats::hab4;
    let names = f.opt_string_list("certs")?.unwrap_or_default();
    if names.is_empty() || names.len() > hab4::MAX_SRKS {
        return Err(f.fail(
            "certs",
            format!("hab4 takes 1 to 4 SRK certificates, got {}", names.len()),
        ));
    }
    let certs = names
        .iter()
        .map(|n| f.check_ref("certs", n, base))
        .collect::<Result<Vec<_>, _>>()?;
    let soc = match f.opt_string("soc")? {
        None => None,
        Some(s) => Some(
            s.parse::<hab4::Soc>()
                .map_err(|e| f.fail("soc", e.to_string()))?,
        ),
    };
    Ok(FuseExport::Hab4 {
        table: hab4::table_file_name(certs.len()),
        fuse: hab4::fuse_file_name(certs.len()),
        certs,
        soc,
    })
}

/// ahab: exactly 4 SRK certificates, PSS or srktool records, the family's hash size.
fn read_ahab(f: &mut Fields, base: &Path) -> Result<FuseExport, Fail> {
    use crate::formats::imx::ahab_srk;
    let names = f.opt_string_list("certs")?.unwrap_or_default();
    if names.len() != ahab_srk::SRK_COUNT {
        return Err(f.fail(
            "certs",
            format!("ahab takes exactly 4 SRK certificates, got {}", names.len()),
        ));
    }
    let certs = names
        .iter()
        .map(|n| f.check_ref("certs", n, base))
        .collect::<Result<Vec<_>, _>>()?;
    let rsa_pss = f.opt_bool("rsa-pss")?.unwrap_or(false);
    let srktool = f.opt_bool("srktool")?.unwrap_or(false);
    if rsa_pss && srktool {
        return Err(f.fail(
            "rsa-pss",
            "srktool writes RSA records as PKCS#1 v1.5: choose rsa-pss or srktool".into(),
        ));
    }
    let family = match f.opt_string("family")? {
        None => None,
        Some(s) => {
            let fam = s
                .parse::<ahab_srk::Family>()
                .map_err(|e| f.fail("family", e.to_string()))?;
            if (fam.hash_bits() == 512) != srktool {
                return Err(f.fail(
                    "family",
                    format!(
                        "{fam} burns a {}-bit SRK hash: {}",
                        fam.hash_bits(),
                        if srktool {
                            "drop srktool"
                        } else {
                            "set srktool = true"
                        }
                    ),
                ));
            }
            Some(fam)
        }
    };
    Ok(FuseExport::Ahab {
        certs,
        rsa_pss,
        srktool,
        family,
        table: "SRK_1_2_3_4_table.bin".into(),
        fuse: "SRK_1_2_3_4_fuse.bin".into(),
    })
}

/// esp32-sbv2: up to 3 keys, one digest file each.
fn read_esp32_sbv2(f: &mut Fields) -> Result<FuseExport, Fail> {
    let keys = f.labels("keys", 3)?;
    let files = match f.opt_string_list("files")? {
        None => keys
            .iter()
            .map(|k| format!("{}_digest.bin", file_stem_of(k)))
            .collect(),
        Some(v) => {
            if v.len() != keys.len() {
                return Err(f.fail(
                    "files",
                    format!("{} file names for {} keys", v.len(), keys.len()),
                ));
            }
            for n in &v {
                if n.is_empty()
                    || n.starts_with('.')
                    || n.contains(['/', '\\'])
                    || n.chars().any(|c| c.is_control())
                {
                    return Err(f.fail(
                        "files",
                        format!("{n:?} must be a plain file name (it is written into the out dir)"),
                    ));
                }
            }
            v
        }
    };
    Ok(FuseExport::Esp32Sbv2 { keys, files })
}
