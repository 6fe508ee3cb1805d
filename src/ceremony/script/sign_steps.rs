//! The sign and verify step kinds: the format, the key(s), the input and the output,
//! and each format's own fields (raw padding, STM32 addresses and key table, the NXP
//! SRK table and keys), refused on a format they do not belong to.

use super::fields::{Fail, Fields};
use super::reader::At;
use super::*;

/// The action of a sign or verify step, or `None` when `kind` is another.
pub(super) fn parse(f: &mut Fields, kind: &str, at: &At<'_>) -> Result<Option<Action>, Fail> {
    let base = at.base;
    Ok(Some(match kind {
        "sign" => Action::Sign(parse_sign(f, base)?),
        "verify" => Action::Verify(VerifyStep {
            format: f.sign_format("format")?,
            key: f.label("key")?,
            input: f.file_ref("input", base)?,
            signature: f.opt_file_ref("signature", base)?,
        }),
        _ => return Ok(None),
    }))
}

/// A sign step: the format, its key(s), input, output and format-specific fields.
fn parse_sign(f: &mut Fields, base: &Path) -> Result<SignStep, Fail> {
    use crate::signing::Format;
    let format = f.sign_format("format")?;
    let key = if format == Format::ImxHab4 {
        if f.opt_string("key")?.is_some() {
            return Err(f.fail(
                "key",
                "imx-hab4 signs with csf-key and img-key (or csf-key alone with fast-auth)".into(),
            ));
        }
        f.label("csf-key")?
    } else {
        f.label("key")?
    };
    let input = f.file_ref("input", base)?;
    let output = match f.opt_file_name("output")? {
        Some(o) => o,
        None => crate::signing::output_path(format, Path::new(&input.name), Path::new(""))
            .display()
            .to_string(),
    };
    let padding = match f.opt_string("padding")? {
        None => None,
        Some(p) => Some(crate::formats::raw::Padding::parse(&p).ok_or_else(|| {
            f.fail(
                "padding",
                format!("unknown padding {p:?} (expected pss or pkcs1)"),
            )
        })?),
    };
    if padding.is_some() && format != Format::Raw {
        return Err(f.fail("padding", format!("is for format raw, not {format}")));
    }
    let load_address = f.opt_u32("load-address")?;
    let entry_point = f.opt_u32("entry-point")?;
    if (load_address.is_some() || entry_point.is_some())
        && !matches!(format, Format::Stm32Mp15 | Format::Stm32Mp13)
    {
        return Err(f.fail(
            "load-address",
            format!("load-address and entry-point are for stm32mp15/stm32mp13, not {format}"),
        ));
    }
    let key_table = match f.opt_string_list("key-table")? {
        None => vec![],
        Some(_) => {
            if format != Format::Stm32Mp13 {
                return Err(f.fail("key-table", format!("is for stm32mp13, not {format}")));
            }
            f.labels("key-table", crate::formats::stm32::MAX_KEYS)?
        }
    };
    let imx = read_imx(f, format, base)?;
    Ok(SignStep {
        format,
        key,
        input,
        output,
        padding,
        load_address,
        entry_point,
        key_table,
        imx,
    })
}

/// The NXP formats' fields (imx-hab4, imx-ahab): the SRK table and index, and for
/// imx-hab4 the IMG key, the certificates and fast-auth; refused on any other format.
fn read_imx(
    f: &mut Fields,
    format: crate::signing::Format,
    base: &Path,
) -> Result<Option<Box<ImxSign>>, Fail> {
    use crate::signing::Format;
    let srk_table = f.opt_file_ref("srk-table", base)?;
    let srk_index = f.opt_u32("srk-index")?;
    let img_key = match f.opt_string("img-key")? {
        Some(_) => Some(f.relabel("img-key")?),
        None => None,
    };
    let csf_cert = f.opt_file_ref("csf-cert", base)?;
    let img_cert = f.opt_file_ref("img-cert", base)?;
    let fast_auth = f.opt_bool("fast-auth")?;
    let nxp = matches!(format, Format::ImxHab4 | Format::ImxAhab);
    if nxp {
        if srk_table.is_none() {
            return Err(f.fail(
                "srk-table",
                format!("missing: {format} needs the SRK table (an export-fuses output or a file)"),
            ));
        }
        match srk_index {
            None => {
                return Err(f.fail(
                    "srk-index",
                    format!("missing: {format} needs the SRK's index (0 to 3)"),
                ))
            }
            Some(i) if i > 3 => {
                return Err(f.fail(
                    "srk-index",
                    format!("{i}: an SRK table holds at most 4 SRKs (0 to 3)"),
                ))
            }
            Some(_) => {}
        }
    } else if srk_table.is_some() || srk_index.is_some() {
        return Err(f.fail(
            "srk-table",
            format!("srk-table and srk-index are for imx-hab4 and imx-ahab, not {format}"),
        ));
    }
    let hab4_only = [
        ("img-key", img_key.is_some()),
        ("csf-cert", csf_cert.is_some()),
        ("img-cert", img_cert.is_some()),
        ("fast-auth", fast_auth.is_some()),
    ];
    if format != Format::ImxHab4 {
        if let Some((field, _)) = hab4_only.iter().find(|(_, set)| *set) {
            return Err(f.fail(field, format!("is for imx-hab4, not {format}")));
        }
    }
    let fast_auth = fast_auth.unwrap_or(false);
    // The certificates default to the token's, under the keys' labels.
    if format == Format::ImxHab4 {
        match (fast_auth, &img_key, &img_cert) {
            (true, None, None) | (false, Some(_), _) => {}
            (true, _, _) => return Err(f.fail(
                "fast-auth",
                "with fast-auth the SRK (csf-key) signs everything: give no img-key or img-cert"
                    .into(),
            )),
            (false, None, _) => {
                return Err(f.fail("img-key", "missing: the key that signs the image".into()))
            }
        }
    }
    Ok(match (nxp, srk_table) {
        (true, Some(srk_table)) => Some(Box::new(ImxSign {
            srk_table,
            srk_index: srk_index.unwrap_or(0),
            img_key,
            csf_cert,
            img_cert,
            fast_auth,
        })),
        (true, None) => {
            return Err(f.fail(
                "srk-table",
                format!("missing: {format} needs the SRK table (an export-fuses output or a file)"),
            ))
        }
        (false, _) => None,
    })
}
