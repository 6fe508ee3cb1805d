//! The sign and verify step kinds: a payload signed with a key on the token in a vendor
//! format, and a signature checked with the key's public half.

use serde_json::json;

use super::{other, read};
use crate::ceremony::engine::{OutputFile, StepResult};
use crate::ceremony::execute::{StepContext, StepError};
use crate::ceremony::script::{FileRef, SignStep, VerifyStep};
use crate::hsm::Token;
use crate::signing;
use crate::signing::TokenSigner;
pub(super) fn sign(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    s: &SignStep,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let input = s.input.path(ctx.out_dir);
    let output = ctx.out_dir.join(&s.output);
    let key_table = s
        .key_table
        .iter()
        .map(|l| token.public_key(l))
        .collect::<Result<Vec<_>, _>>()?;
    let imx = s.imx.as_deref();
    let read_ref = |r: Option<&FileRef>| r.map(|r| read(&r.path(ctx.out_dir))).transpose();
    let srk_table = read_ref(imx.map(|x| &x.srk_table))?;
    if reconcile && output.exists() {
        // A signature from an interrupted run is adopted only if it verifies.
        let pk = token.public_key(&s.key)?;
        let report = match (s.format, &srk_table) {
            (signing::Format::Raw, _) => signing::verify_file(s.format, &pk, &input, Some(&output), s.padding),
            (signing::Format::ImxHab4, Some(t)) => signing::imx_hab4::verify(&output, t),
            (signing::Format::ImxAhab, Some(t)) => signing::imx_ahab::verify(&output, t),
            (f, _) => signing::verify_file(f, &pk, &output, None, None),
        }
        .map_err(|e| {
            other(format!(
                "{} exists from an interrupted run and does not verify ({e}); move it away and rerun",
                output.display()
            ))
        })?;
        let out_bytes = read(&output)?;
        return Ok(StepResult {
            outputs: vec![OutputFile {
                path: s.output.clone(),
                sha256: hex::encode(crate::output::sha256(&out_bytes)),
                adopted: true,
            }],
            adopted: true,
            details: json!({"format": s.format.name(), "key": s.key, "verified": report.lines}),
            ..StepResult::default()
        });
    }
    let opts = signing::Options {
        padding: s.padding,
        append: false,
        stm32: signing::Stm32Options {
            load_address: s.load_address,
            entry_point: s.entry_point,
            key_index: None,
            key_table,
            ..signing::Stm32Options::default()
        },
        hab4: Box::new(signing::Hab4Options {
            srk_table,
            srk_index: imx.map(|x| x.srk_index as usize),
            csf_key: None,
            csf_cert: read_ref(imx.and_then(|x| x.csf_cert.as_ref()))?,
            img_key: imx.and_then(|x| x.img_key.as_ref().map(|k| k.to_string())),
            img_cert: read_ref(imx.and_then(|x| x.img_cert.as_ref()))?,
            fast_auth: imx.is_some_and(|x| x.fast_auth),
            unlock: Vec::new(),
            version: None,
        }),
    };
    // Certificates not named in the script are the token's, under the keys' labels.
    let opts = match s.format {
        signing::Format::ImxHab4 => {
            signing::imx_hab4::certificates_from_token(token, &opts, &s.key)
                .map_err(|e| other(e.to_string()))?
        }
        _ => opts,
    };
    let img_key = imx
        .filter(|x| !x.fast_auth)
        .and_then(|x| x.img_key.as_deref());
    let rec = match (s.format, img_key) {
        // imx-hab4's CSF and IMG keys sign in turn.
        (signing::Format::ImxHab4, Some(img)) => {
            signing::imx_hab4::TokenPair::open(token, &s.key, img, None)
                .and_then(|(mut pair, _)| pair.sign_file(&opts, &input, &output))
        }
        _ => TokenSigner::open(token, &s.key, None).and_then(|key| {
            let mut key = signing::SigningKey::new(key);
            signing::sign_file(&mut key, s.format, &opts, &input, &output)
        }),
    }
    .map_err(|e| other(e.to_string()))?;
    Ok(StepResult {
        outputs: vec![OutputFile {
            path: s.output.clone(),
            sha256: rec.output_sha256.clone(),
            adopted: false,
        }],
        details: json!({
            "format": s.format.name(),
            "key": s.key,
            "img_key": imx.and_then(|x| x.img_key.clone()),
            "key_sha256": rec.key_fingerprint,
            "scheme": rec.scheme,
            "input": s.input.name,
            "input_sha256": rec.input_sha256,
            "input_bytes": rec.input_bytes,
            "output": s.output,
            "output_sha256": rec.output_sha256,
            "signed_digest": rec.signed_digest,
            "notes": rec.notes,
        }),
        ..StepResult::default()
    })
}

pub(super) fn verify(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    v: &VerifyStep,
) -> Result<StepResult, StepError> {
    let pk = token.public_key(&v.key)?;
    let input = v.input.path(ctx.out_dir);
    let sig = v.signature.as_ref().map(|r| r.path(ctx.out_dir));
    let report = signing::verify_file(v.format, &pk, &input, sig.as_deref(), None)
        .map_err(|e| other(e.to_string()))?;
    let input_bytes = read(&input)?;
    Ok(StepResult {
        details: json!({
            "format": v.format.name(),
            "key": v.key,
            "input": v.input.name,
            "input_sha256": hex::encode(crate::output::sha256(&input_bytes)),
            "verified": report.lines,
        }),
        ..StepResult::default()
    })
}
