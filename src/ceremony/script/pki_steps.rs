//! The certificate step kinds: issue-certificate (HAB4 and generic profiles) and
//! issue-tbbr (TF-A's chain). Parsing only: which keys exist is the plan's check.

use super::fields::{Fail, Fields};
use super::reader::At;
use super::*;

/// The action of a certificate step, or `None` when `kind` is not one of this family.
pub(super) fn parse(f: &mut Fields, kind: &str, at: &At<'_>) -> Result<Option<Action>, Fail> {
    let At { index: i, id, base } = *at;
    Ok(Some(match kind {
        "issue-certificate" => Action::IssueCertificate(parse_issue(f, i, id)?),
        "issue-tbbr" => Action::IssueTbbr(Box::new(parse_tbbr(f, base)?)),
        _ => return Ok(None),
    }))
}

fn parse_issue(f: &mut Fields, i: usize, id: &str) -> Result<IssueCertificate, Fail> {
    use crate::pki::Profile;
    let name = f.string("profile")?;
    let mut profile = match name.as_str() {
        "hab4-ca" | "hab4-srk" | "hab4-csf" | "hab4-img" | "ca" | "signer" => {
            Profile::parse(&name)
        }
        _ => None,
    }
    .ok_or_else(|| {
        f.fail(
            "profile",
            format!("unknown profile {name:?} (expected hab4-ca, hab4-srk, hab4-csf, hab4-img, ca or signer)"),
        )
    })?;
    match (f.opt_bool("ca-mode")?, profile) {
        (Some(ca), Profile::Hab4Srk { .. }) => profile = Profile::Hab4Srk { ca },
        (Some(_), _) => return Err(f.fail("ca-mode", "is only for profile hab4-srk".into())),
        (None, _) => {}
    }
    let key = f.label("key")?;
    let issuer_key = match f.opt_string("issuer-key")? {
        Some(_) => Some(f.relabel("issuer-key")?),
        None => None,
    };
    let issuer_cert = f.opt_file_name("issuer-cert")?;
    let subject = f.string("subject")?;
    if subject.trim().is_empty() {
        return Err(f.fail("subject", "must not be empty".into()));
    }
    let serial = match f.take("serial") {
        None => Serial::Random,
        Some(toml::Value::Integer(n)) if n > 0 => Serial::Fixed(n.unsigned_abs()),
        Some(toml::Value::String(h)) => {
            let digits = h.strip_prefix("0x").unwrap_or(&h);
            match u64::from_str_radix(digits, 16) {
                Ok(n) if n > 0 && h.starts_with("0x") => Serial::Fixed(n),
                _ => {
                    return Err(f.fail(
                        "serial",
                        format!("{h:?} is not a positive serial (an integer or \"0x…\" hex, at most 64 bits)"),
                    ))
                }
            }
        }
        Some(_) => {
            return Err(f.fail(
                "serial",
                "expected a positive integer or \"0x…\" hex".into(),
            ))
        }
    };
    let validity_days = match f.take("validity-days") {
        None => 3650,
        Some(v) => match v.as_integer().map(u32::try_from) {
            Some(Ok(n @ 1..=36_500)) => n,
            _ => {
                return Err(f.fail(
                    "validity-days",
                    "expected a whole number of days from 1 to 36500".into(),
                ))
            }
        },
    };
    let pem = f.opt_file_name("pem")?;
    let der = f.opt_file_name("der")?;
    let write_to_token = f.opt_bool("write-to-token")?.unwrap_or(false);
    if pem.is_none() && der.is_none() {
        return Err(Fail(
            format!("step[{i}] ({id}): "),
            "issue-certificate needs pem = \"FILE\" or der = \"FILE\" (or both)".into(),
        ));
    }
    match (&issuer_key, &issuer_cert) {
        (Some(_), None) => {
            return Err(f.fail(
                "issuer-cert",
                "missing: with issuer-key, name the issuer's certificate (an output of an earlier issue-certificate step)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(f.fail(
                "issuer-key",
                "missing: with issuer-cert, name the issuer's key label".into(),
            ))
        }
        _ => {}
    }
    if let Some(want_self) = profile.self_signed() {
        if want_self != issuer_key.is_none() {
            let field = if want_self { "issuer-key" } else { "profile" };
            return Err(f.fail(
                field,
                if want_self {
                    format!(
                        "profile {} is self-signed: give no issuer-key",
                        profile.name()
                    )
                } else {
                    format!(
                        "profile {} needs an issuer (issuer-key and issuer-cert)",
                        profile.name()
                    )
                },
            ));
        }
    }
    Ok(IssueCertificate {
        profile,
        key,
        issuer_key,
        issuer_cert,
        subject,
        serial,
        validity_days,
        pem,
        der,
        write_to_token,
    })
}

fn parse_tbbr(f: &mut Fields, base: &Path) -> Result<IssueTbbr, Fail> {
    use crate::keys::HashAlg;
    use crate::pki::tbbr::{CertKind, KeyLabels};
    let keys = KeyLabels {
        rot: f.label("rot-key")?.into(),
        trusted_world: f.label("trusted-world-key")?.into(),
        non_trusted_world: f.label("non-trusted-world-key")?.into(),
        soc_fw: f.label("soc-fw-key")?.into(),
        tos_fw: match f.opt_string("tos-fw-key")? {
            Some(_) => Some(f.relabel("tos-fw-key")?.into()),
            None => None,
        },
        nt_fw: f.label("nt-fw-key")?.into(),
    };
    let tb_fw = f.file_ref("tb-fw", base)?;
    let soc_fw = f.file_ref("soc-fw", base)?;
    let tos_fw = f.opt_file_ref("tos-fw", base)?;
    let nt_fw = f.file_ref("nt-fw", base)?;
    if keys.tos_fw.is_some() != tos_fw.is_some() {
        return Err(f.fail(
            "tos-fw",
            "give both tos-fw-key and tos-fw (the BL32 image), or neither".into(),
        ));
    }
    let counter = |f: &mut Fields, field: &str| -> Result<u32, Fail> {
        match f.take(field) {
            None => Ok(0),
            Some(v) => v
                .as_integer()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| f.fail(field, "expected a counter from 0 to 4294967295".into())),
        }
    };
    let trusted_nv_counter = counter(f, "trusted-nv-counter")?;
    let non_trusted_nv_counter = counter(f, "non-trusted-nv-counter")?;
    let hash = match f.opt_string("hash")?.as_deref() {
        None | Some("sha256") => HashAlg::Sha256,
        Some("sha384") => HashAlg::Sha384,
        Some("sha512") => HashAlg::Sha512,
        Some(other) => {
            return Err(f.fail(
                "hash",
                format!("unknown hash {other:?} (expected sha256, sha384 or sha512)"),
            ))
        }
    };
    let files = CertKind::ALL
        .into_iter()
        .filter(|k| {
            keys.tos_fw.is_some() || !matches!(k, CertKind::TosFwKey | CertKind::TosFwContent)
        })
        .map(|k| (k, k.file_name().to_string()))
        .collect();
    Ok(IssueTbbr {
        keys,
        tb_fw,
        soc_fw,
        tos_fw,
        nt_fw,
        trusted_nv_counter,
        non_trusted_nv_counter,
        hash,
        files,
    })
}
