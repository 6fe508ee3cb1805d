//! The approval stage: per-key quorum policies on the token, signing requests with use
//! limits and expiry, and approvals as OpenSSH signatures (SSHSIG).
//!
//! - [`policy`]: the policy file (strict TOML) and its canonical stored form.
//! - [`signers`]: OpenSSH `allowed_signers` files, and which principal an SSHSIG over
//!   given bytes in a given namespace comes from (also what signed sign-offs build on).
//! - [`request`]: the canonical JSON request approvers sign.
//! - [`decision`]: may this key sign, with this request and these approvals (pure).
//! - [`store`]: the policy and the use counters on the token.
//! - [`agent`]: approving through ssh-agent.
//! - [`pending`]: requests waiting in a directory, as an approver reviews them.
//! - [`signoff`]: signed ceremony sign-offs (the message, whose key counts, the
//!   transcript check).
//!
//! [`authorize`] puts them together for a signing session; `crate::signing::TokenSigner`
//! calls it when it opens a key, so every way of signing with a token key (the CLI,
//! batches, ceremony steps, the console) is gated the same way.
//!
//! Only [`store`] and [`authorize`] touch the token (its policy objects and use
//! counters); the rest is pure or reads the request, approval and allowed-signers files
//! it is pointed at. No key here ever signs firmware: approvals gate `signing`, they do
//! not call it.

pub mod agent;
pub mod decision;
pub mod pending;
pub mod policy;
pub mod request;
pub mod signers;
pub mod signoff;
pub mod store;
pub mod time;

use std::path::{Path, PathBuf};

pub use decision::{Grant, Presented, Refusal, Verdict};
pub use policy::Policy;
pub use request::Request;

use crate::hsm::Token;

/// SSHSIG namespace of approvals: `ssh-keygen -Y sign -n officiant-approval`.
pub const APPROVAL_NAMESPACE: &str = "officiant-approval";
/// SSHSIG namespace of signed ceremony sign-offs.
pub const SIGNOFF_NAMESPACE: &str = "officiant-signoff";

/// Largest request or approval file read.
pub(crate) const MAX_FILE: u64 = 64 * 1024;

/// Why a signing session was not allowed, or its request or approvals could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy refuses this key now (no request, quorum not met, expired, spent); the
    /// message names the reason.
    #[error("{0}")]
    Refused(#[from] Refusal),
    /// The token's stored policy or use counters could not be read or updated.
    #[error("{0}")]
    Store(#[from] store::Error),
    /// The request file is malformed or not canonical.
    #[error("{0}")]
    Request(#[from] request::Error),
    /// A request or approval file could not be read (missing, too large).
    #[error("{path}: {message}")]
    File {
        /// The file, as given.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The token refused an operation the gate needed.
    #[error("{0}")]
    Token(#[from] crate::hsm::Error),
}

fn read_small(path: &Path) -> Result<Vec<u8>, Error> {
    let file = |message: String| Error::File {
        path: path.to_path_buf(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| file(format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE {
        return Err(file(format!("larger than {MAX_FILE} bytes")));
    }
    std::fs::read(path).map_err(|e| file(format!("cannot read: {e}")))
}

/// Read an SSHSIG file (`-----BEGIN SSH SIGNATURE-----`).
pub fn read_signature(path: &Path) -> Result<ssh_key::SshSig, Error> {
    parse_signature(path, &read_small(path)?)
}

/// An SSHSIG file's bytes; `path` names it in the error.
pub fn parse_signature(path: &Path, bytes: &[u8]) -> Result<ssh_key::SshSig, Error> {
    ssh_key::SshSig::from_pem(bytes).map_err(|e| Error::File {
        path: path.to_path_buf(),
        message: format!("not an SSH signature (ssh-keygen -Y sign output): {e}"),
    })
}

impl Presented {
    /// Read a request file and its approval signature files.
    pub fn load(request: &Path, approvals: &[PathBuf]) -> Result<Presented, Error> {
        let bytes = read_small(request)?;
        let file = request.display().to_string();
        let parsed = Request::parse(&file, &bytes)?;
        let mut sigs = Vec::with_capacity(approvals.len());
        for a in approvals {
            sigs.push((a.display().to_string(), read_signature(a)?));
        }
        Ok(Presented {
            file,
            request: parsed,
            bytes,
            approvals: sigs,
        })
    }
}

/// What the token's policy says about signing with key `key` now, with `presented`.
pub fn authorize(
    token: &mut dyn Token,
    key: &str,
    presented: Option<&Presented>,
) -> Result<Verdict, Error> {
    let stored = store::read_policy(token)?;
    if stored.is_none() && presented.is_none() {
        return Ok(Verdict::Free);
    }
    let serial = token.info()?.serial;
    let tp = stored.as_ref().map(|s| decision::TokenPolicy {
        policy: &s.policy,
        sha256: s.sha256,
    });
    Ok(decision::decide(
        tp.as_ref(),
        &serial,
        key,
        presented,
        time::now(),
    )?)
}
