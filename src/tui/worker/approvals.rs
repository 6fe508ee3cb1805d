//! The Approvals screen's requests: the requests in a directory reviewed against the
//! token's policy, and one approved through the ssh-agent.

use std::path::PathBuf;

use super::{Request, RequestList, WorkerMsg};
use crate::approvals::pending;
use crate::hsm::Token;

/// The Approvals screen's requests: review a directory, or approve one request through
/// the ssh-agent. The token's policy says who the approvers are.
pub(super) fn serve_approvals(
    token: &mut dyn Token,
    agent: Option<&std::path::Path>,
    req: Request,
) -> WorkerMsg {
    let what = req.describe();
    let failed = |cause: String| WorkerMsg::Failed {
        what: what.clone(),
        cause,
    };
    let now = pending::now();
    let info = match token.info() {
        Ok(i) => i,
        Err(e) => return failed(e.to_string()),
    };
    let policy = match crate::approvals::store::read_policy(token) {
        Ok(p) => p,
        Err(e) => return failed(e.to_string()),
    };
    match req {
        Request::ListRequests { dir } => {
            let side = pending::TokenSide {
                serial: &info.serial,
                policy: policy.as_ref(),
            };
            let list = match pending::scan(&dir, &side, now) {
                Ok(l) => l,
                Err(e) => return failed(e),
            };
            let agent = match agent {
                None => Err(crate::approvals::agent::Error::NoAgent.to_string()),
                Some(sock) => crate::approvals::agent::identities(sock)
                    .map(|k| pending::agent_keys(&k, policy.as_ref(), now))
                    .map_err(|e| e.to_string()),
            };
            WorkerMsg::Requests(Box::new(RequestList {
                dir,
                pending: list,
                agent,
                policy: policy.map(|p| (p.label, p.sha256)),
                now,
            }))
        }
        Request::ApproveRequest {
            path,
            key,
            principal,
        } => {
            let Some(sock) = agent else {
                return failed(crate::approvals::agent::Error::NoAgent.to_string());
            };
            let side = pending::TokenSide {
                serial: &info.serial,
                policy: policy.as_ref(),
            };
            approve(sock, &side, now, path, key, principal).unwrap_or_else(&failed)
        }
        _ => failed("not an approval request".into()),
    }
}

/// Approve one request with the chosen agent key: the request reviewed again as it is
/// now, the key allowed by the token's policy for `principal`, the approval written
/// beside the request (never over one).
fn approve(
    sock: &std::path::Path,
    side: &pending::TokenSide<'_>,
    now: u64,
    path: PathBuf,
    key: String,
    principal: String,
) -> Result<WorkerMsg, String> {
    // Reviewed again now: the file as it is, not as it was listed.
    let p = pending::review(&path, side, now);
    let req = match &p.request {
        Ok(r) => r.clone(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if p.expired {
        return Err(format!(
            "request {} expired at {}; nothing to approve",
            req.id, req.not_after
        ));
    }
    if let Some(why) = &p.unusable {
        return Err(format!("request {}: {why}", req.id));
    }
    let public = match ssh_key::PublicKey::from_openssh(&key) {
        Ok(k) => k,
        Err(e) => return Err(format!("the chosen key: {e}")),
    };
    let allowed = pending::agent_keys(std::slice::from_ref(&public), side.policy, now);
    if !allowed
        .first()
        .is_some_and(|k| k.approver.contains(&principal))
    {
        return Err(format!(
            "the token's policy does not let key {} approve as {principal}",
            crate::approvals::signers::fingerprint(public.key_data())
        ));
    }
    let out = pending::approval_path(&path, &principal);
    if out.symlink_metadata().is_ok() {
        return Err(format!(
            "{} exists: {principal} approved this request already",
            out.display()
        ));
    }
    let bytes = match std::fs::read(&path) {
        Ok(b) if crate::output::sha256(&b) == p.sha256 => b,
        Ok(_) => return Err(format!("{} changed while it was reviewed", path.display())),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let signed = crate::approvals::agent::sign(
        sock,
        Some(&public),
        crate::approvals::APPROVAL_NAMESPACE,
        &bytes,
    )
    .map_err(|e| e.to_string())
    .and_then(|sig| crate::approvals::agent::armor(&sig).map_err(|e| e.to_string()))
    .and_then(|text| crate::output::write_new(&out, text.as_bytes()).map_err(|e| e.to_string()));
    match signed {
        Ok(()) => Ok(WorkerMsg::Approved {
            request: path,
            signature: out,
            principal,
        }),
        Err(e) => Err(e),
    }
}
