//! A signing session as evidence, the same for both faces: `officiant sign` and the
//! console's sign screen both open the key here (through the approval gate), and every
//! signed file goes into a hash-chained transcript with the token it came from; a session
//! that stops says why in its transcript.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::imx_hab4::TokenPair;
use super::{
    sign_batch_with, sign_file, Error, Format, Options, SignRecord, SigningKey, TokenSigner,
};
use crate::approvals::{Grant, Presented};
use crate::ceremony::transcript;
use crate::hsm::Token;

/// Where the signed files go.
#[derive(Clone, Copy, Debug)]
pub enum Outputs<'a> {
    /// One input, this output file.
    File(&'a Path),
    /// Any number of inputs, named as `output_path` names them in this directory.
    Dir(&'a Path),
}

/// One signing session.
pub struct Job<'a> {
    /// The backend as shown (no secret in it).
    pub backend: &'a str,
    /// Label of the signing key (for imx-hab4, the CSF key).
    pub key: &'a str,
    /// The signing request and its approvals, for a key under a quorum.
    pub request: Option<&'a Presented>,
    /// The format every input is signed in.
    pub format: Format,
    /// The format's options; imx-hab4 certificates not given are read from the token.
    pub opts: &'a Options,
    /// The payloads, in order.
    pub inputs: &'a [PathBuf],
    /// Where the signed files go.
    pub outputs: Outputs<'a>,
    /// The transcript file the session appends to.
    pub transcript: &'a Path,
}

/// What the session tells its face as it goes.
pub enum Note<'a> {
    /// The key signs under this approved request (`used` uses before this session).
    Approved {
        /// The approved request, described for the operator.
        grant: String,
        /// Uses of it spent before this session.
        used: u64,
    },
    /// One payload was signed and written.
    Signed(&'a SignRecord),
}

/// Why a recorded signing session stopped.
#[derive(Debug, thiserror::Error)]
pub enum RecordedError {
    /// Signing or checking failed.
    #[error(transparent)]
    Sign(#[from] Error),
    /// The transcript could not be appended to.
    #[error(transparent)]
    Transcript(#[from] transcript::Error),
    /// The token refused (opening the key, the approval counter).
    #[error("token: {0}")]
    Token(#[from] crate::hsm::Error),
}

/// The session's key: one key, or imx-hab4's CSF and IMG keys.
enum SessionKey<'t> {
    One(SigningKey<'t>),
    Pair(TokenPair<'t>),
}

impl SessionKey<'_> {
    /// The transcript's `sign-start` entry.
    fn start_entry(&self, job: &Job<'_>) -> serde_json::Value {
        let mut v =
            json!({"format": job.format.name(), "key": job.key, "inputs": job.inputs.len()});
        match self {
            SessionKey::One(k) => {
                v["key_fingerprint"] = hex::encode(k.public_key().fingerprint()).into();
            }
            SessionKey::Pair(p) => {
                v["key_fingerprint"] = hex::encode(p.csf().1.fingerprint()).into();
                v["img_key"] = p.img().0.into();
                v["img_key_fingerprint"] = hex::encode(p.img().1.fingerprint()).into();
            }
        }
        v
    }
}

/// Sign `job.inputs` with the key on `token` (already logged in) and record the session.
pub fn sign_recorded(
    token: &mut dyn Token,
    job: &Job<'_>,
    note: &mut dyn FnMut(Note<'_>),
) -> Result<Vec<SignRecord>, RecordedError> {
    if let Outputs::File(_) = job.outputs {
        if job.inputs.len() != 1 {
            return Err(Error::Usage(format!(
                "-o takes one input, got {}; use --out-dir DIR for a batch",
                job.inputs.len()
            ))
            .into());
        }
    }
    let info = token.info()?;
    // imx-hab4's certificates not given as files are the token's, under the keys' labels.
    let filled;
    let opts = match job.format {
        Format::ImxHab4 => {
            filled = super::imx_hab4::certificates_from_token(token, job.opts, job.key)?;
            &filled
        }
        _ => job.opts,
    };
    let mut approvals = Vec::new();
    let mut approved = |g: &Grant, used: u64| {
        note(Note::Approved {
            grant: g.to_string(),
            used,
        });
        approvals.push(
            json!({"request": g.request, "key": g.key, "approvers": g.approvers, "limit": g.limit, "used_before": used, "policy_sha256": g.policy_sha256, "counter": g.counter}),
        );
    };
    // imx-hab4 signs with a CSF and an IMG key (unless --fast-auth): a pair, opened in
    // turn; every other format with the one key.
    let img_key = match (job.format, &opts.hab4) {
        (Format::ImxHab4, h) if !h.fast_auth => h.img_key.as_deref(),
        _ => None,
    };
    let mut key = match img_key {
        Some(img) => {
            let (pair, grants) = TokenPair::open(token, job.key, img, job.request)?;
            for (g, used) in &grants {
                approved(g, *used);
            }
            SessionKey::Pair(pair)
        }
        None => {
            let mut signer = TokenSigner::open(token, job.key, job.request)?;
            if let Some(g) = signer.grant().cloned() {
                let used = signer.uses_so_far()?.unwrap_or(0);
                approved(&g, used);
            }
            SessionKey::One(SigningKey::new(signer))
        }
    };
    let mut tr = transcript::Writer::open(job.transcript)?;
    // The session's opening entries share one disk sync.
    let mut opening = vec![
        (
            "open",
            json!({"command": "sign", "backend": job.backend, "officiant": env!("CARGO_PKG_VERSION")}),
        ),
        ("token", crate::ceremony::runner::token_json(&info)),
        ("sign-start", key.start_entry(job)),
    ];
    opening.extend(approvals.into_iter().map(|v| ("approval", v)));
    tr.append_all(opening)?;

    let mut done = Vec::new();
    let mut record = |rs: &[SignRecord]| -> Result<(), Error> {
        for r in rs {
            note(Note::Signed(r));
        }
        let entries = rs
            .iter()
            .map(|r| ("signed", serde_json::to_value(r).unwrap_or_default()))
            .collect();
        done.extend(rs.iter().cloned());
        tr.append_all(entries)
            .map_err(|e| Error::Usage(format!("transcript: {e}")))
    };
    let result = match (job.outputs, job.inputs, &mut key) {
        (Outputs::File(out), [input], SessionKey::One(key)) => {
            sign_file(key, job.format, opts, input, out).and_then(|r| record(&[r]))
        }
        (Outputs::File(out), [input], SessionKey::Pair(pair)) => {
            pair.sign_file(opts, input, out).and_then(|r| record(&[r]))
        }
        // The batch's own message says how many were signed before it stopped.
        (Outputs::Dir(dir), inputs, SessionKey::One(key)) => {
            sign_batch_with(key, job.format, opts, inputs, dir, &mut record)
                .map(|_| ())
                .map_err(|e| Error::Usage(e.to_string()))
        }
        (Outputs::Dir(dir), inputs, SessionKey::Pair(pair)) => pair
            .sign_batch_with(opts, inputs, dir, &mut record)
            .map(|_| ())
            .map_err(|e| Error::Usage(e.to_string())),
        // Checked above.
        (Outputs::File(_), _, _) => Ok(()),
    };
    match result {
        Ok(()) => {
            tr.close("complete")?;
            Ok(done)
        }
        Err(e) => {
            tr.append("sign-failed", json!({"error": e.to_string()}))?;
            tr.close("stopped")?;
            Err(e.into())
        }
    }
}
