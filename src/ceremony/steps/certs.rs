//! The certificate step kinds: issue-certificate (HAB4 and generic profiles, signed on
//! the token) and issue-tbbr (TF-A's chain); an earlier attempt's certificate adopted
//! only as the module comment of `steps` says.

use std::path::PathBuf;

use der::Decode;
use serde_json::{json, Value};
use x509_cert::Certificate;

use super::{cert_from_file, hash_file, other, read};
use crate::ceremony::engine::{CreatedObject, OutputFile, StepResult};
use crate::ceremony::execute::{
    before_token_call, existing_output, write_output, write_outputs, StepContext, StepError,
};
use crate::ceremony::script::{IssueCertificate, IssueTbbr, Serial};
use crate::formats::words::Fingerprint;
use crate::hsm::{NewObject, ObjectClass, ObjectId, Token};
use crate::keys::{HashAlg, PublicKey, SignScheme};
use crate::output::crash_point;
use crate::pki::{self, IssueRequest, Issuer, Profile, Validity};
use crate::signing::TokenSigner;
/// `CN=…,O=…` or `/C=…/CN=…` is a DN; anything else is a CN.
pub(super) fn subject_name(s: &str) -> Result<x509_cert::name::Name, StepError> {
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

pub(super) fn issue_certificate(
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
        // The certificate goes under its key's id; a key another tool made may have none.
        let id = ObjectId::new(id).map_err(|e| {
            other(format!(
                "key {:?} has no id a certificate can take (1 to 32 bytes): {e}",
                s.key
            ))
        })?;
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
            label: s.key.to_string(),
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

pub(super) fn issue_tbbr(
    token: &mut dyn Token,
    ctx: &StepContext<'_>,
    t: &IssueTbbr,
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
