//! The export-fuses step kind: the fuse and OTP values of each vendor, computed from
//! certificates or public keys, written into the out dir, with the words and commands an
//! operator burns them with. Deterministic: an identical existing file is adopted.

use serde_json::{json, Value};

use super::{other, read};
use crate::ceremony::engine::{OutputFile, StepResult};
use crate::ceremony::execute::{write_output, StepContext, StepError};
use crate::ceremony::script::{ExportFuses, FileRef, FuseExport};
use crate::formats::words::Fingerprint;
use crate::formats::{esp32, hab4, stm32, tfa};
use crate::hsm::Token;
use crate::keys::PublicKey;
use crate::output::crash_point;
pub(super) fn export_fuses(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    x: &ExportFuses,
) -> Result<StepResult, StepError> {
    let mut out = Written {
        ctx,
        outputs: Vec::new(),
    };
    let details = match &x.export {
        FuseExport::Hab4 {
            certs,
            soc,
            table,
            fuse,
        } => hab4_fuses(&mut out, certs, soc, table, fuse)?,
        FuseExport::Ahab {
            certs,
            rsa_pss,
            srktool,
            family,
            table,
            fuse,
        } => ahab_fuses(&mut out, certs, *rsa_pss, *srktool, family, table, fuse)?,
        FuseExport::TfaRotpk {
            key,
            key_file,
            digest_info,
            file,
        } => {
            let pk = match (key, key_file) {
                (Some(l), _) => token.public_key(l)?,
                (None, Some(r)) => {
                    let p = r.path(ctx.out_dir);
                    PublicKey::from_bytes(&read(&p)?)
                        .map_err(|e| other(format!("{}: {e}", p.display())))?
                }
                (None, None) => return Err(other("tfa-rotpk needs key or key-file")),
            };
            let v = tfa::rotpk_sha256(&pk, *digest_info).map_err(|e| other(e.to_string()))?;
            out.write(file, &v)?;
            json!({
                "format": "tfa-rotpk",
                "key": key
                    .as_ref()
                    .map(|k| k.to_string())
                    .or_else(|| key_file.as_ref().map(|r| r.name.clone())),
                "key_type": pk.describe(),
                "digest_info": digest_info,
                "rotpk": Fingerprint::of(&v),
            })
        }
        FuseExport::Esp32Sbv2 { keys, files } => {
            let mut per_key = Vec::new();
            for (label, file) in keys.iter().zip(files) {
                let pk = token.public_key(label)?;
                let d = esp32::key_digest(&pk).map_err(|e| other(format!("key {label:?}: {e}")))?;
                out.write(file, &d)?;
                per_key.push(json!({
                    "key": label,
                    "key_type": pk.describe(),
                    "file": file,
                    "digest": Fingerprint::of(&d),
                    "espefuse": format!("espefuse burn-key BLOCK_KEY{} {file} SECURE_BOOT_DIGEST{}", per_key.len(), per_key.len()),
                }));
            }
            json!({"format": "esp32-sbv2", "keys": per_key})
        }
        FuseExport::Stm32mp15 { key, file } => {
            let pk = token.public_key(key)?;
            let v = stm32::pkh_mp15(&pk).map_err(|e| other(format!("key {key:?}: {e}")))?;
            out.write(file, &v)?;
            json!({"format": "stm32mp15", "key": key, "pkh": Fingerprint::of(&v)})
        }
        FuseExport::Stm32mpPkhth { keys, file } => {
            let pks = keys
                .iter()
                .map(|l| token.public_key(l))
                .collect::<Result<Vec<_>, _>>()?;
            let v = stm32::pkhth(&pks).map_err(|e| match e.key_index() {
                Some(k) => other(format!("keys[{k}] {:?}: {e}", keys[k])),
                None => other(e.to_string()),
            })?;
            out.write(file, &v)?;
            json!({"format": "stm32mp-pkhth", "keys": keys, "pkhth": Fingerprint::of(&v)})
        }
    };
    let outputs = out.outputs;
    let adopted = !outputs.is_empty() && outputs.iter().all(|o| o.adopted);
    Ok(StepResult {
        outputs,
        adopted,
        details,
        ..StepResult::default()
    })
}

/// The files an export writes, in order; a crash point between two.
struct Written<'c, 'a> {
    ctx: &'c StepContext<'a>,
    outputs: Vec<OutputFile>,
}

impl Written<'_, '_> {
    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), StepError> {
        if !self.outputs.is_empty() {
            crash_point();
        }
        self.outputs.push(write_output(self.ctx, name, bytes)?);
        Ok(())
    }
}

/// hab4: the SRK table and fuse file from 1–4 SRK certificates, the fuse words and
/// (with a SoC) the U-Boot commands.
fn hab4_fuses(
    out: &mut Written<'_, '_>,
    certs: &[FileRef],
    soc: &Option<hab4::Soc>,
    table: &str,
    fuse: &str,
) -> Result<Value, StepError> {
    let bytes = certs
        .iter()
        .map(|r| read(&r.path(out.ctx.out_dir)))
        .collect::<Result<Vec<_>, _>>()?;
    let t = hab4::srk_table(&bytes).map_err(|e| match e.cert_index() {
        Some(k) => other(format!("certs[{k}] {}: {e}", certs[k].name)),
        None => other(e.to_string()),
    })?;
    let hash = t.fuse_hash();
    out.write(table, &t.table_bytes())?;
    out.write(fuse, &hash)?;
    let words: Vec<String> = hab4::fuse_words(&hash)
        .iter()
        .map(|w| format!("0x{w:08X}"))
        .collect();
    let mut d = json!({
        "format": "hab4",
        "srks": certs.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "ca": t.is_ca(),
        "srk_table_sha256": hex::encode(crate::output::sha256(&t.table_bytes())),
        "fuse": Fingerprint::of(&hash),
        "fuse_words": words,
    });
    if let Some(soc) = soc {
        d["soc"] = json!(soc.name());
        d["uboot"] = json!(hab4::fuse_commands(&hash, *soc));
    }
    Ok(d)
}

/// ahab: the SRK table and SRK hash (SHA-256, or srktool's SHA-512) from 4 SRK
/// certificates, the fuse words and (with a family) the U-Boot commands.
fn ahab_fuses(
    out: &mut Written<'_, '_>,
    certs: &[FileRef],
    rsa_pss: bool,
    srktool: bool,
    family: &Option<crate::formats::imx::ahab_srk::Family>,
    table: &str,
    fuse: &str,
) -> Result<Value, StepError> {
    use crate::formats::imx::ahab_srk::{self, RsaRecord};
    let bytes = certs
        .iter()
        .map(|r| read(&r.path(out.ctx.out_dir)))
        .collect::<Result<Vec<_>, _>>()?;
    let rsa = if rsa_pss {
        RsaRecord::Pss
    } else {
        RsaRecord::Pkcs1
    };
    let t = ahab_srk::srk_table(&bytes, rsa).map_err(|e| match e.cert_index() {
        Some(k) => other(format!("certs[{k}] {}: {e}", certs[k].name)),
        None => other(e.to_string()),
    })?;
    let hash: Vec<u8> = if srktool {
        t.sha512().to_vec()
    } else {
        t.sha256().to_vec()
    };
    out.write(table, t.table_bytes())?;
    out.write(fuse, &hash)?;
    let words: Vec<String> = ahab_srk::fuse_words(&hash)
        .iter()
        .map(|w| format!("0x{w:08X}"))
        .collect();
    let mut d = json!({
        "format": "ahab",
        "srks": certs.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        "key_type": t.srks()[0].describe(),
        "ca": t.is_ca(),
        "hash": if srktool { "SHA-512" } else { "SHA-256" },
        "srk_table_sha256": hex::encode(t.sha256()),
        "fuse": Fingerprint::of(&hash),
        "fuse_words": words,
    });
    if let Some(fam) = family {
        d["family"] = json!(fam.name());
        d["uboot"] = json!(ahab_srk::fuse_commands(&hash, *fam).map_err(|e| other(e.to_string()))?);
    }
    Ok(d)
}
