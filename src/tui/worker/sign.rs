//! The Sign screen's requests: a file signed through the same recorded session
//! `officiant sign` uses (under a signing request and its approvals when asked), and a
//! signed file verified with a public key or SRK table.

use std::path::PathBuf;

use super::{Request, WorkerMsg};
use crate::approvals::pending;
use crate::formats::raw::Padding;
use crate::hsm::{Token, UserType};
use crate::secret::Secret;
use crate::signing::{self, Format};

/// What a signing session's record (or failure) tells the screen.
pub(super) fn signed_msg(
    signed: Result<signing::SignRecord, String>,
    transcript: PathBuf,
) -> Result<WorkerMsg, String> {
    signed.map(|rec| WorkerMsg::Signed {
        digest: hex::decode(&rec.signed_digest).unwrap_or_default(),
        output: rec.output,
        notes: rec.notes,
        transcript,
    })
}

/// Verify a signed file (or a detached signature) against the file in `pubkey`: the
/// signer's public key, or for imx-hab4 and imx-ahab the SRK table whose hash is fused
/// (one entry point with `officiant verify`: [`signing::verify_against`]).
pub(super) fn verify_file(
    format: Format,
    padding: Option<Padding>,
    pubkey: &std::path::Path,
    input: &std::path::Path,
    signature: Option<&std::path::Path>,
) -> Result<WorkerMsg, String> {
    let digest = crate::output::sha256_file(input)
        .map(|d| d.to_vec())
        .unwrap_or_default();
    let anchor = if format.anchored_by_srk_table() {
        signing::TrustAnchor::SrkTable(pubkey)
    } else {
        signing::TrustAnchor::PublicKey(pubkey)
    };
    Ok(
        match signing::verify_against(format, anchor, input, signature, padding) {
            Ok(r) => WorkerMsg::Verified {
                digest,
                ok: true,
                lines: r.lines,
            },
            Err(e) => WorkerMsg::Verified {
                digest,
                ok: false,
                lines: vec![e.to_string()],
            },
        },
    )
}

/// A [`Request::SignFile`], on its own or under a signing request and its approvals
/// (`approval`: the request file and the approval files, none named: the files beside
/// the request).
pub(super) fn sign_request(
    token: &mut dyn Token,
    uri: &str,
    sign: Request,
    approval: Option<(&std::path::Path, Vec<PathBuf>)>,
) -> Result<WorkerMsg, String> {
    let Request::SignFile {
        key,
        format,
        padding,
        options,
        pin,
        input,
        output,
        transcript,
    } = sign
    else {
        return Err("only a file signing can be approved".into());
    };
    let presented = match approval {
        None => None,
        Some((request, approvals)) => {
            let approvals = if approvals.is_empty() {
                pending::approval_files(request)
            } else {
                approvals
            };
            match crate::approvals::Presented::load(request, &approvals) {
                Ok(p) => Some(p),
                Err(e) => return signed_msg(Err(e.to_string()), transcript),
            }
        }
    };
    let signed = options.to_options(padding).and_then(|opts| {
        let job = SignJob {
            key: &key,
            format,
            opts: &opts,
            input: &input,
            output: &output,
            transcript: &transcript,
        };
        sign_file_under(token, uri, &job, &pin, presented.as_ref())
    });
    signed_msg(signed, transcript)
}

/// What the sign screen asked to sign.
pub(super) struct SignJob<'a> {
    pub(super) key: &'a str,
    pub(super) format: Format,
    pub(super) opts: &'a signing::Options,
    pub(super) input: &'a std::path::Path,
    pub(super) output: &'a std::path::Path,
    pub(super) transcript: &'a std::path::Path,
}

/// Log in, then sign through the same recorded session `officiant sign` uses, under a
/// signing request and its approvals when `presented` (the approval gate decides; the
/// grant is added to the record's notes).
pub(super) fn sign_file_under(
    token: &mut dyn Token,
    uri: &str,
    j: &SignJob<'_>,
    pin: &Secret,
    request: Option<&crate::approvals::Presented>,
) -> Result<signing::SignRecord, String> {
    // As `officiant sign`: beside other signers, never while a ceremony has the token.
    let info = token.info().map_err(|e| e.to_string())?;
    let _held = crate::ceremony::lock::TokenLock::take_shared(&info).map_err(|e| e.to_string())?;
    token
        .login(UserType::User, pin)
        .map_err(|e| e.to_string())?;
    if let Some(dir) = j.transcript.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let inputs = [j.input.to_path_buf()];
    let job = signing::recorded::Job {
        backend: uri,
        key: j.key,
        request,
        format: j.format,
        opts: j.opts,
        inputs: &inputs,
        outputs: signing::recorded::Outputs::File(j.output),
        transcript: j.transcript,
    };
    let mut granted = Vec::new();
    let mut done = signing::recorded::sign_recorded(token, &job, &mut |n| {
        if let signing::recorded::Note::Approved { grant, used } = n {
            granted.push(format!("{grant}; {used} use(s) before this one"));
        }
    })
    .map_err(|e| e.to_string())?;
    let mut rec = done
        .pop()
        .ok_or_else(|| "the signing session recorded no signature".to_string())?;
    rec.notes.extend(granted);
    Ok(rec)
}
