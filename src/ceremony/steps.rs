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

use std::path::{Path, PathBuf};

use der::{Decode, DecodePem, Encode};
use serde_json::{json, Value};
use x509_cert::Certificate;

use super::engine::{CreatedObject, OutputFile, StepResult};
use super::execute::{
    before_token_call, existing_output, write_output, write_outputs, StepContext, StepError,
};
use super::script::{
    Action, ExportFuses, FileRef, FuseExport, IssueCertificate, Script, Serial, SignStep,
    VerifyStep,
};
use crate::formats::words::Fingerprint;
use crate::formats::{esp32, hab4, stm32, tfa};
use crate::hsm::{NewObject, ObjectClass, Token};
use crate::keys::{HashAlg, PublicKey, SignScheme};
use crate::output::crash_point;
use crate::pki::{self, IssueRequest, Issuer, Profile, Validity};
use crate::signing;
use crate::signing::TokenSigner;

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

fn other(msg: impl Into<String>) -> StepError {
    StepError::Other(msg.into())
}

fn read(path: &Path) -> Result<Vec<u8>, StepError> {
    std::fs::read(path).map_err(|e| other(format!("cannot read {}: {}", path.display(), e.kind())))
}

/// A certificate file (PEM or DER) as DER.
fn cert_from_file(path: &Path) -> Result<Vec<u8>, StepError> {
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

/// `CN=…,O=…` or `/C=…/CN=…` is a DN; anything else is a CN.
fn subject_name(s: &str) -> Result<x509_cert::name::Name, StepError> {
    let map = |e: pki::Error| other(format!("subject: {e}"));
    if let Some(rest) = s.strip_prefix('/') {
        // openssl's `/C=DE/O=Acme/CN=Root` lists the least specific RDN first.
        let rfc: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).rev().collect();
        pki::parse_name(&rfc.join(",")).map_err(map)
    } else if s.contains('=') {
        pki::parse_name(s).map_err(map)
    } else {
        pki::common_name(s).map_err(map)
    }
}

/// hab4_pki_tree.sh signs with SHA-256 whatever the key; otherwise the key's own hash.
fn cert_scheme(profile: Profile, issuer: &PublicKey) -> SignScheme {
    let hab4 = matches!(
        profile,
        Profile::Hab4Ca | Profile::Hab4Srk { .. } | Profile::Hab4Csf | Profile::Hab4Img
    );
    match issuer {
        PublicKey::Rsa { .. } => SignScheme::RsaPkcs1(HashAlg::Sha256),
        PublicKey::Ec { curve, .. } if !hab4 => SignScheme::Ecdsa(curve.default_hash()),
        PublicKey::Ec { .. } => SignScheme::Ecdsa(HashAlg::Sha256),
    }
}

fn cert_details(der: &[u8], profile: Profile) -> Value {
    match Certificate::from_der(der) {
        Ok(c) => {
            let t = &c.tbs_certificate;
            json!({
                "profile": profile.name(),
                "certificate_sha256": Fingerprint::of(&crate::output::sha256(der)),
                "subject": t.subject.to_string(),
                "issuer": t.issuer.to_string(),
                "serial": hex::encode(t.serial_number.as_bytes()),
                "not_before": t.validity.not_before.to_string(),
                "not_after": t.validity.not_after.to_string(),
            })
        }
        Err(_) => Value::Null,
    }
}

/// Under reconcile: an earlier run's certificate that verifies with the issuer's key and
/// carries this step's subject name and key (see the module comment).
fn adoptable(
    ctx: &StepContext<'_>,
    s: &IssueCertificate,
    subject: &x509_cert::name::Name,
    subject_key: &PublicKey,
    issuer_key: &PublicKey,
) -> Result<Option<Vec<u8>>, StepError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for n in [&s.der, &s.pem].into_iter().flatten() {
        // Only a file this step wrote is looked at; any other stops the run.
        if existing_output(ctx, n)?.is_some() {
            files.push(ctx.out_dir.join(n));
        }
    }
    let mut found: Option<Vec<u8>> = None;
    for p in files {
        let der = cert_from_file(&p)?;
        let refuse = |why: &str| {
            other(format!(
                "{} exists from an interrupted run but {why}; move it away and rerun",
                p.display()
            ))
        };
        let cert = Certificate::from_der(&der).map_err(|_| refuse("does not parse"))?;
        if &cert.tbs_certificate.subject != subject {
            return Err(refuse("has another subject"));
        }
        if PublicKey::from_certificate_der(&der).ok().as_ref() != Some(subject_key) {
            return Err(refuse("certifies another key"));
        }
        pki::verify_issued(&der, issuer_key)
            .map_err(|_| refuse("does not verify with the issuer's key"))?;
        if found.as_ref().is_some_and(|f| f != &der) {
            return Err(refuse("differs from its PEM/DER twin"));
        }
        found = Some(der);
    }
    Ok(found)
}

fn issue_certificate(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    s: &IssueCertificate,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let subject_key = token.public_key(&s.key)?;
    let subject = subject_name(&s.subject)?;
    let issuer_der = match &s.issuer_cert {
        Some(n) => Some(cert_from_file(&ctx.out_dir.join(n))?),
        None => None,
    };
    let (signer_label, issuer_key) = match &s.issuer_key {
        Some(l) => (l.as_str(), token.public_key(l)?),
        None => (s.key.as_str(), subject_key.clone()),
    };
    let mut adopted = false;
    let der = match reconcile
        .then(|| adoptable(ctx, s, &subject, &subject_key, &issuer_key))
        .transpose()?
        .flatten()
    {
        Some(der) => {
            adopted = true;
            der
        }
        None => {
            let req = IssueRequest {
                profile: s.profile,
                subject,
                subject_key: subject_key.clone(),
                issuer: match &issuer_der {
                    Some(d) => Issuer::Certificate(d),
                    None => Issuer::SelfSigned,
                },
                scheme: cert_scheme(s.profile, &issuer_key),
                serial: match s.serial {
                    Serial::Fixed(n) => pki::serial_from_u64(n),
                    Serial::Random => pki::random_serial(),
                },
                validity: Validity::days_from_now(s.validity_days),
            };
            let mut signer =
                TokenSigner::open(token, signer_label, None).map_err(|e| other(e.to_string()))?;
            pki::issue(&mut signer, &req).map_err(|e| other(e.to_string()))?
        }
    };
    // Checked again here, whoever made it: nothing unverified leaves this step.
    pki::verify_issued(&der, &issuer_key).map_err(|e| other(e.to_string()))?;

    let mut outputs: Vec<OutputFile> = Vec::new();
    let files: Vec<(&String, Vec<u8>)> = [
        s.pem.as_ref().map(|n| (n, pki::to_pem(&der).into_bytes())),
        s.der.as_ref().map(|n| (n, der.clone())),
    ]
    .into_iter()
    .flatten()
    .collect();
    outputs.extend(write_outputs(ctx, files)?);
    let mut objects = Vec::new();
    if s.write_to_token {
        crash_point();
        let listed = token.list_objects()?;
        let id = listed
            .iter()
            .find(|o| o.label == s.key && o.class == ObjectClass::PrivateKey)
            .or_else(|| {
                listed
                    .iter()
                    .find(|o| o.label == s.key && o.class == ObjectClass::PublicKey)
            })
            .map(|o| o.id.clone())
            .ok_or_else(|| other(format!("no key labelled {:?} to take the id from", s.key)))?;
        let certs = [ObjectClass::Certificate];
        match before_token_call(token, ctx, reconcile, &certs, &s.key, &id)? {
            Some(found) => {
                certifies_same(token, &found, &s.key, &id, &der).map_err(|why| {
                    other(format!(
                        "the token holds a certificate labelled {:?} that this step cannot adopt: {why}; remove it, then rerun",
                        s.key
                    ))
                })?;
                adopted = true;
            }
            None => token.put_object(&s.key, &id, &NewObject::Certificate(der.clone()))?,
        }
        objects.push(CreatedObject {
            label: s.key.clone(),
            id: hex::encode(&id),
            class: ObjectClass::Certificate.to_string(),
            key_type: subject_key.describe(),
            public_key_sha256: Some(hex::encode(subject_key.fingerprint())),
        });
    }
    Ok(StepResult {
        objects,
        outputs,
        adopted,
        details: cert_details(&der, s.profile),
        ..StepResult::default()
    })
}

/// A certificate found on the token under the step's label and id is this step's when
/// it certifies the same subject key under the same issuer as `der` (an interrupted
/// attempt may have issued another serial).
fn certifies_same(
    token: &mut dyn Token,
    found: &[crate::hsm::ObjectInfo],
    label: &str,
    id: &[u8],
    der: &[u8],
) -> Result<(), String> {
    if let Some(o) = found.iter().find(|o| o.label != label || o.id != id) {
        return Err(format!(
            "its {} {:?} (id {}) is not labelled {label:?} with id {}",
            o.class,
            o.label,
            hex::encode(&o.id),
            hex::encode(id)
        ));
    }
    let have = token
        .read_certificate(label)
        .map_err(|e| e.to_string())?
        .ok_or("it cannot be read back")?;
    let parse = |d: &[u8]| Certificate::from_der(d).map_err(|e| format!("it does not parse: {e}"));
    let (have_cert, want_cert) = (parse(&have)?, parse(der)?);
    if PublicKey::from_certificate_der(&have).ok() != PublicKey::from_certificate_der(der).ok() {
        return Err("it certifies another key".into());
    }
    if have_cert.tbs_certificate.issuer != want_cert.tbs_certificate.issuer {
        return Err(format!(
            "its issuer is {}, not {}",
            have_cert.tbs_certificate.issuer, want_cert.tbs_certificate.issuer
        ));
    }
    Ok(())
}

fn export_fuses(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    x: &ExportFuses,
) -> Result<StepResult, StepError> {
    let mut outputs = Vec::new();
    let write = |outputs: &mut Vec<OutputFile>, name: &str, bytes: &[u8]| {
        if !outputs.is_empty() {
            crash_point();
        }
        outputs.push(write_output(ctx, name, bytes)?);
        Ok::<(), StepError>(())
    };
    let details = match &x.export {
        FuseExport::Hab4 {
            certs,
            soc,
            table,
            fuse,
        } => {
            let bytes = certs
                .iter()
                .map(|r| read(&r.path(ctx.out_dir)))
                .collect::<Result<Vec<_>, _>>()?;
            let t = hab4::srk_table(&bytes).map_err(|e| match e.cert_index() {
                Some(k) => other(format!("certs[{k}] {}: {e}", certs[k].name)),
                None => other(e.to_string()),
            })?;
            let hash = t.fuse_hash();
            write(&mut outputs, table, &t.table_bytes())?;
            write(&mut outputs, fuse, &hash)?;
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
            d
        }
        FuseExport::Ahab {
            certs,
            rsa_pss,
            srktool,
            family,
            table,
            fuse,
        } => {
            use crate::formats::imx::ahab_srk::{self, RsaRecord};
            let bytes = certs
                .iter()
                .map(|r| read(&r.path(ctx.out_dir)))
                .collect::<Result<Vec<_>, _>>()?;
            let rsa = if *rsa_pss {
                RsaRecord::Pss
            } else {
                RsaRecord::Pkcs1
            };
            let t = ahab_srk::srk_table(&bytes, rsa).map_err(|e| match e.cert_index() {
                Some(k) => other(format!("certs[{k}] {}: {e}", certs[k].name)),
                None => other(e.to_string()),
            })?;
            let hash: Vec<u8> = if *srktool {
                t.sha512().to_vec()
            } else {
                t.sha256().to_vec()
            };
            write(&mut outputs, table, t.table_bytes())?;
            write(&mut outputs, fuse, &hash)?;
            let words: Vec<String> = ahab_srk::fuse_words(&hash)
                .iter()
                .map(|w| format!("0x{w:08X}"))
                .collect();
            let mut d = json!({
                "format": "ahab",
                "srks": certs.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                "key_type": t.srks()[0].describe(),
                "ca": t.is_ca(),
                "hash": if *srktool { "SHA-512" } else { "SHA-256" },
                "srk_table_sha256": hex::encode(t.sha256()),
                "fuse": Fingerprint::of(&hash),
                "fuse_words": words,
            });
            if let Some(fam) = family {
                d["family"] = json!(fam.name());
                d["uboot"] =
                    json!(ahab_srk::fuse_commands(&hash, *fam).map_err(|e| other(e.to_string()))?);
            }
            d
        }
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
            write(&mut outputs, file, &v)?;
            json!({
                "format": "tfa-rotpk",
                "key": key.clone().or_else(|| key_file.as_ref().map(|r| r.name.clone())),
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
                write(&mut outputs, file, &d)?;
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
            write(&mut outputs, file, &v)?;
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
            write(&mut outputs, file, &v)?;
            json!({"format": "stm32mp-pkhth", "keys": keys, "pkhth": Fingerprint::of(&v)})
        }
    };
    let adopted = !outputs.is_empty() && outputs.iter().all(|o| o.adopted);
    Ok(StepResult {
        outputs,
        adopted,
        details,
        ..StepResult::default()
    })
}

fn sign(
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
            img_key: imx.and_then(|x| x.img_key.clone()),
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

fn verify(
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

fn hash_file(hash: HashAlg, path: &Path) -> Result<Vec<u8>, StepError> {
    let f = std::fs::File::open(path)
        .map_err(|e| other(format!("cannot read {}: {}", path.display(), e.kind())))?;
    pki::tbbr::hash_image(hash, f)
        .map_err(|e| other(format!("cannot read {}: {}", path.display(), e.kind())))
}

/// Under reconcile, an earlier run's TBBR certificate is adopted only if it carries the
/// same subject, key and extensions (key hashes, image hashes, NV counters: all
/// deterministic) as the one just issued, and verifies with that key.
fn tbbr_adoptable(existing: &[u8], fresh: &[u8]) -> bool {
    let (Ok(e), Ok(f)) = (
        Certificate::from_der(existing),
        Certificate::from_der(fresh),
    ) else {
        return false;
    };
    let (e, f) = (&e.tbs_certificate, &f.tbs_certificate);
    let Ok(key) = PublicKey::from_certificate_der(fresh) else {
        return false;
    };
    e.subject == f.subject
        && e.subject_public_key_info == f.subject_public_key_info
        && e.extensions == f.extensions
        && pki::verify_issued(existing, &key).is_ok()
}

fn issue_tbbr(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    t: &super::script::IssueTbbr,
    reconcile: bool,
) -> Result<StepResult, StepError> {
    let images = pki::tbbr::ImageHashes {
        tb_fw: Some(hash_file(t.hash, &t.tb_fw.path(ctx.out_dir))?),
        soc_fw: Some(hash_file(t.hash, &t.soc_fw.path(ctx.out_dir))?),
        tos_fw: match &t.tos_fw {
            Some(r) => Some(hash_file(t.hash, &r.path(ctx.out_dir))?),
            None => None,
        },
        nt_fw: Some(hash_file(t.hash, &t.nt_fw.path(ctx.out_dir))?),
        ..pki::tbbr::ImageHashes::default()
    };
    let req = pki::tbbr::ChainRequest {
        keys: t.keys.clone(),
        images,
        trusted_nv_counter: t.trusted_nv_counter,
        non_trusted_nv_counter: t.non_trusted_nv_counter,
        hash: t.hash,
        validity: Validity::days_from_now(pki::tbbr::VALIDITY_DAYS),
    };
    let mut chain = Vec::new();
    let pending = pki::tbbr::prepare_chain(&req, |l| token.public_key(l))
        .map_err(|e| other(e.to_string()))?;
    for cert in pending {
        let mut key =
            TokenSigner::open(token, &cert.signer, None).map_err(|e| other(e.to_string()))?;
        chain.push(cert.sign(&mut key).map_err(|e| other(e.to_string()))?);
    }
    let mut outputs = Vec::new();
    let mut certs = Vec::new();
    for (kind, name) in &t.files {
        let issued = chain
            .iter()
            .find(|c| c.kind == *kind)
            .ok_or_else(|| other(format!("the chain lacks {}", kind.file_name())))?;
        if !outputs.is_empty() {
            crash_point();
        }
        let path = ctx.out_dir.join(name);
        let mut der = issued.der.clone();
        // An interrupted attempt's certificate (the journal says this step wrote it) is
        // adopted when it matches this chain, else replaced; any other file stops the run.
        let earlier = match existing_output(ctx, name)? {
            Some(_) if reconcile => Some(read(&path)?).filter(|h| tbbr_adoptable(h, &issued.der)),
            _ => None,
        };
        let out = match earlier {
            Some(have) => {
                der = have;
                OutputFile {
                    path: name.clone(),
                    sha256: hex::encode(crate::output::sha256(&der)),
                    adopted: true,
                }
            }
            None => write_output(ctx, name, &der)?,
        };
        outputs.push(out);
        certs.push(json!({
            "file": name,
            "option": kind.option(),
            "details": cert_details_plain(&der),
        }));
    }
    let adopted = outputs.iter().all(|o| o.adopted);
    Ok(StepResult {
        outputs,
        adopted,
        details: json!({"format": "tfa-tbbr", "hash": t.hash.name(), "certificates": certs}),
        ..StepResult::default()
    })
}

fn cert_details_plain(der: &[u8]) -> Value {
    match Certificate::from_der(der) {
        Ok(c) => {
            let t = &c.tbs_certificate;
            json!({
                "certificate_sha256": Fingerprint::of(&crate::output::sha256(der)),
                "subject": t.subject.to_string(),
                "serial": hex::encode(t.serial_number.as_bytes()),
            })
        }
        Err(_) => Value::Null,
    }
}
