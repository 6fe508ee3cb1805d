//! The root-of-trust step kinds: `issue-certificate`, `export-fuses`, `sign`, `verify`.
//!
//! Plan checks (`keys_used`, `check_step`) run before any token is opened; `execute` runs
//! one step. Every step is idempotent under reconcile (journal resume), and an output
//! file is only ever adopted or replaced when the journal says this step wrote it
//! (`execute::write_output`); any other file stops the run:
//! - fuse files and hashes are deterministic: an identical existing file is adopted;
//! - certificates and ECDSA signatures are not deterministic (random serials, random
//!   nonces), so an existing output is adopted only if it verifies with the issuer's /
//!   signer's public key on the token and (certificates) carries the step's subject name
//!   and subject key; a certificate issued again replaces the earlier attempt's file;
//! - a certificate written to the token is adopted only if the journal recorded the
//!   token call and it certifies the step's subject key under the same issuer.
//!
//! This file holds the plan checks, the dispatch and the file helpers; the executors
//! are in `certs` (issue-certificate, issue-tbbr), `fuses` (export-fuses) and `sign`
//! (sign, verify).

mod certs;
mod fuses;
mod sign;

use std::path::Path;

use der::{Decode, DecodePem, Encode};
use x509_cert::Certificate;

use super::engine::StepResult;
use super::execute::{StepContext, StepError};
use super::script::{Action, ExportFuses, FileRef, FuseExport, IssueCertificate, Script};
use crate::hsm::Token;
use crate::keys::HashAlg;
use crate::pki::{self, Profile};
use crate::signing;

use certs::{issue_certificate, issue_tbbr, subject_name};
use fuses::export_fuses;
use sign::{sign, verify};

/// Key labels a step uses, with the field that names each.
pub fn keys_used(action: &Action) -> Vec<(&'static str, &str)> {
    match action {
        Action::IssueCertificate(s) => {
            let mut v = vec![("key", s.key.as_str())];
            if let Some(k) = &s.issuer_key {
                v.push(("issuer-key", k.as_str()));
            }
            v
        }
        Action::ExportFuses(x) => match &x.export {
            FuseExport::Hab4 { .. } | FuseExport::Ahab { .. } => vec![],
            FuseExport::TfaRotpk { key, .. } => key.iter().map(|k| ("key", k.as_str())).collect(),
            FuseExport::Esp32Sbv2 { keys, .. } | FuseExport::Stm32mpPkhth { keys, .. } => {
                keys.iter().map(|k| ("keys", k.as_str())).collect()
            }
            FuseExport::Stm32mp15 { key, .. } => vec![("key", key.as_str())],
        },
        Action::Sign(s) if s.format == signing::Format::ImxHab4 => {
            let mut v = vec![("csf-key", s.key.as_str())];
            if let Some(x) = &s.imx {
                v.extend(x.img_key.iter().map(|k| ("img-key", k.as_str())));
            }
            v
        }
        Action::Sign(s) => {
            let mut v = vec![("key", s.key.as_str())];
            v.extend(s.key_table.iter().map(|k| ("key-table", k.as_str())));
            v
        }
        Action::Verify(v) => vec![("key", v.key.as_str())],
        Action::IssueTbbr(t) => {
            let k = &t.keys;
            let mut v = vec![
                ("rot-key", k.rot.as_str()),
                ("trusted-world-key", k.trusted_world.as_str()),
                ("non-trusted-world-key", k.non_trusted_world.as_str()),
                ("soc-fw-key", k.soc_fw.as_str()),
                ("nt-fw-key", k.nt_fw.as_str()),
            ];
            v.extend(k.tos_fw.iter().map(|l| ("tos-fw-key", l.as_str())));
            v
        }
        _ => vec![],
    }
}

type Check = Result<(), (&'static str, String)>;

/// Structural checks of step `i` against the steps before it.
pub fn check_step(script: &Script, i: usize) -> Check {
    match &script.steps[i].action {
        Action::IssueCertificate(s) => check_issue(script, i, s),
        Action::ExportFuses(x) => check_fuses(script, x),
        Action::Sign(s) => {
            check_ref(script, "input", &s.input)?;
            if let Some(x) = &s.imx {
                check_ref(script, "srk-table", &x.srk_table)?;
                for (field, r) in [("csf-cert", &x.csf_cert), ("img-cert", &x.img_cert)] {
                    if let Some(r) = r {
                        check_ref(script, field, r)?;
                    }
                }
            }
            if !s.key_table.is_empty() && !s.key_table.contains(&s.key) {
                return Err((
                    "key-table",
                    format!("does not list the signing key {:?}", s.key),
                ));
            }
            Ok(())
        }
        Action::IssueTbbr(t) => {
            check_ref(script, "tb-fw", &t.tb_fw)?;
            check_ref(script, "soc-fw", &t.soc_fw)?;
            check_ref(script, "nt-fw", &t.nt_fw)?;
            if let Some(r) = &t.tos_fw {
                check_ref(script, "tos-fw", r)?;
            }
            Ok(())
        }
        Action::Verify(v) => {
            check_ref(script, "input", &v.input)?;
            match (&v.signature, v.format) {
                (Some(r), signing::Format::Raw) => check_ref(script, "signature", r),
                (None, signing::Format::Raw) => Err((
                    "signature",
                    "missing: format raw verifies a detached signature file".into(),
                )),
                (Some(_), f) => Err(("signature", format!("{f} images carry their signature"))),
                (None, _) => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn check_ref(script: &Script, field: &'static str, r: &FileRef) -> Check {
    if r.from_step.is_none() && !r.beside_script.is_file() {
        return Err((
            field,
            format!(
                "{:?} is neither written by an earlier step nor a file next to {}",
                r.name,
                script.path.display()
            ),
        ));
    }
    Ok(())
}

fn check_issue(script: &Script, i: usize, s: &IssueCertificate) -> Check {
    subject_name(&s.subject).map_err(|e| {
        let m = e.to_string();
        ("subject", m.trim_start_matches("subject: ").to_string())
    })?;
    let Some(name) = &s.issuer_cert else {
        return Ok(());
    };
    let writer = script.steps[..i]
        .iter()
        .enumerate()
        .rev()
        .find(|(_, st)| st.action.outputs().iter().any(|(_, n)| n == name));
    let Some((j, st)) = writer else {
        return Err((
            "issuer-cert",
            format!("{name:?} is not written by an earlier step"),
        ));
    };
    let Action::IssueCertificate(c) = &st.action else {
        return Err((
            "issuer-cert",
            format!(
                "{name:?} is written by {} of kind {}, not by an issue-certificate step",
                st.place(j),
                st.action.kind()
            ),
        ));
    };
    if !c.profile.is_ca() {
        return Err((
            "issuer-cert",
            format!(
                "{name:?} ({}) is a {} certificate, not a CA: it cannot issue",
                st.place(j),
                c.profile.name()
            ),
        ));
    }
    if s.issuer_key.as_deref() != Some(c.key.as_str()) {
        return Err((
            "issuer-key",
            format!(
                "{name:?} certifies key {:?}, not {:?}",
                c.key,
                s.issuer_key.as_deref().unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

fn check_fuses(script: &Script, x: &ExportFuses) -> Check {
    match &x.export {
        FuseExport::Hab4 { certs, .. } => {
            let mut kinds: Vec<(String, bool)> = Vec::new();
            for (k, r) in certs.iter().enumerate() {
                check_ref(script, "certs", r)?;
                if let Some(j) = r.from_step {
                    match &script.steps[j].action {
                        Action::IssueCertificate(c) => match c.profile {
                            Profile::Hab4Srk { ca } => kinds.push((r.name.clone(), ca)),
                            p => {
                                return Err((
                                    "certs",
                                    format!(
                                        "certs[{k}] {:?} is a {} certificate, not an SRK (profile hab4-srk)",
                                        r.name,
                                        p.name()
                                    ),
                                ))
                            }
                        },
                        other => {
                            return Err((
                                "certs",
                                format!(
                                    "certs[{k}] {:?} is written by {} of kind {}, not by an issue-certificate step",
                                    r.name,
                                    script.steps[j].place(j),
                                    other.kind()
                                ),
                            ))
                        }
                    }
                }
            }
            let ca: Vec<&str> = kinds.iter().filter(|k| k.1).map(|k| k.0.as_str()).collect();
            let non: Vec<&str> = kinds
                .iter()
                .filter(|k| !k.1)
                .map(|k| k.0.as_str())
                .collect();
            if !ca.is_empty() && !non.is_empty() {
                return Err((
                    "certs",
                    format!(
                        "SRK certificates mix CA and non-CA keys (CA: {}; non-CA: {}); HAB4 needs all SRKs of one kind",
                        ca.join(", "),
                        non.join(", ")
                    ),
                ));
            }
            Ok(())
        }
        FuseExport::Ahab { certs, .. } => {
            for r in certs {
                check_ref(script, "certs", r)?;
            }
            Ok(())
        }
        FuseExport::TfaRotpk {
            key_file: Some(r), ..
        } => check_ref(script, "key-file", r),
        _ => Ok(()),
    }
}

/// Run one of this module's step kinds.
pub fn execute(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    action: &Action,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    match action {
        Action::IssueCertificate(s) => issue_certificate(token, ctx, s, reconcile),
        Action::ExportFuses(x) => export_fuses(token, ctx, x),
        Action::Sign(s) => sign(token, ctx, s, reconcile),
        Action::Verify(v) => verify(token, ctx, v),
        Action::IssueTbbr(t) => issue_tbbr(token, ctx, t, reconcile),
        other => Err(StepError::Other(format!(
            "{} is not a root-of-trust step",
            other.kind()
        ))),
    }
}

pub(super) fn other(msg: impl Into<String>) -> StepError {
    StepError::Other(msg.into())
}

pub(super) fn read(path: &Path) -> Result<Vec<u8>, StepError> {
    std::fs::read(path).map_err(|e| other(format!("cannot read {}: {}", path.display(), e.kind())))
}

/// A certificate file (PEM or DER) as DER.
pub(super) fn cert_from_file(path: &Path) -> Result<Vec<u8>, StepError> {
    let bytes = read(path)?;
    let cert = if bytes.starts_with(b"-----BEGIN") {
        Certificate::from_pem(&bytes)
    } else {
        Certificate::from_der(&bytes)
    }
    .map_err(|e| other(format!("{}: not an X.509 certificate: {e}", path.display())))?;
    cert.to_der()
        .map_err(|e| other(format!("{}: {e}", path.display())))
}

pub(super) fn hash_file(hash: HashAlg, path: &Path) -> Result<Vec<u8>, StepError> {
    let f = std::fs::File::open(path)
        .map_err(|e| other(format!("cannot read {}: {}", path.display(), e.kind())))?;
    pki::tbbr::hash_image(hash, f)
        .map_err(|e| other(format!("cannot read {}: {}", path.display(), e.kind())))
}
