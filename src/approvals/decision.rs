//! The decision: may this key sign now, under this token's policy, with this request and
//! these approvals? Pure: the policy, the token's serial and the time come in; a grant
//! or a one-line refusal comes out. Use counts are the token's business
//! ([`super::store::reserve`]).

use std::collections::BTreeSet;
use std::fmt;

use ssh_key::SshSig;

use super::policy::{KeyRule, Policy};
use super::request::Request;
use super::signers::{self, Rejected};
use super::{time, APPROVAL_NAMESPACE};

/// Why a key may not sign: one line that names the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// A request file and the approval signatures presented with it.
#[derive(Clone, Debug)]
pub struct Presented {
    /// The request file's name, for messages.
    pub file: String,
    /// The request as read from `bytes` (checked canonical).
    pub request: Request,
    /// The file's bytes: what the approvals are signatures over.
    pub bytes: Vec<u8>,
    /// (file name, signature).
    pub approvals: Vec<(String, SshSig)>,
}

/// Leave to sign with a key under a request.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    /// The request's id (32 hex digits).
    pub request: String,
    /// The label of the key allowed to sign.
    pub key: String,
    /// The distinct approvers whose valid approvals count, sorted.
    pub approvers: Vec<String>,
    /// Signatures the request may make with this key (the request's and the policy's
    /// limits, whichever is lower).
    pub limit: u64,
    /// The use counter's label on the token.
    pub counter: String,
    /// SHA-256 of the policy the decision was made under, hex.
    pub policy_sha256: String,
}

/// What the policy says about one signing session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No rule for this key, or quorum 0 and no request: sign as without a policy.
    Free,
    /// Signing is allowed under a request; every signature is one use of it.
    Approved(Grant),
}

/// The token's policy as the decision needs it.
pub struct TokenPolicy<'a> {
    /// The policy as stored on the token.
    pub policy: &'a Policy,
    /// SHA-256 of its canonical stored form: what requests name.
    pub sha256: [u8; 32],
}

/// Decide for key `key` on the token with serial `serial` at `now`.
pub fn decide(
    policy: Option<&TokenPolicy<'_>>,
    serial: &str,
    key: &str,
    presented: Option<&Presented>,
    now: u64,
) -> Result<Verdict, Refusal> {
    let rule = policy.and_then(|p| p.policy.keys.get(key).map(|r| (p, r)));
    let Some((tp, rule)) = rule else {
        return match presented {
            None => Ok(Verdict::Free),
            Some(p) if policy.is_none() => Err(Refusal(format!(
                "{}: this token holds no approval policy, so key {key:?} signs without requests; leave out --request",
                p.file
            ))),
            Some(p) => Err(Refusal(format!(
                "{}: key {key:?} has no rule in the token's approval policy, so it signs without requests; leave out --request",
                p.file
            ))),
        };
    };
    check_window(key, rule, now)?;
    let Some(p) = presented else {
        if rule.quorum == 0 {
            return Ok(Verdict::Free);
        }
        return Err(Refusal(format!(
            "key {key:?} needs {} approval(s) from {}: give --request REQ.json and --approval SIG for each",
            rule.quorum,
            braces(&rule.approvers)
        )));
    };
    let r = &p.request;
    let f = &p.file;
    let Some((index, use_)) = r.key(key) else {
        let named: Vec<&str> = r.keys.iter().map(|k| k.label.as_str()).collect();
        return Err(Refusal(format!(
            "{f}: request {} is for key(s) {}, not {key:?}",
            r.id,
            named.join(", ")
        )));
    };
    if r.token_serial != serial {
        return Err(Refusal(format!(
            "{f}: request {} is for the token with serial {}, this token's serial is {serial}",
            r.id, r.token_serial
        )));
    }
    let ours = hex::encode(tp.sha256);
    if r.policy_sha256 != ours {
        return Err(Refusal(format!(
            "{f}: request {} was made under policy {}…, the token's policy is now {}… (changed since): make a new request",
            r.id,
            &r.policy_sha256[..16],
            &ours[..16]
        )));
    }
    let expires = r.not_after_secs();
    if now > expires {
        return Err(Refusal(format!(
            "{f}: request {} expired at {} (now {})",
            r.id,
            r.not_after,
            time::format(now)
        )));
    }
    let (approvers, ignored) = count(tp.policy, rule, p, now);
    if (approvers.len() as u64) < u64::from(rule.quorum) {
        let have = if approvers.is_empty() {
            "none valid".to_string()
        } else {
            format!(
                "{} valid: {}",
                approvers.len(),
                approvers.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        };
        let mut msg = format!(
            "key {key:?}: {} approval(s) needed from {}, have {have}",
            rule.quorum,
            braces(&rule.approvers)
        );
        if !ignored.is_empty() {
            msg.push_str(&format!(" (not counted: {})", ignored.join("; ")));
        }
        return Err(Refusal(msg));
    }
    Ok(Verdict::Approved(Grant {
        request: r.id.clone(),
        key: key.to_string(),
        approvers: approvers.into_iter().collect(),
        limit: rule
            .max_uses
            .map_or(use_.max_uses, |m| m.min(use_.max_uses)),
        counter: r.counter_label(index),
        policy_sha256: ours,
    }))
}

/// The distinct approvers of `rule` whose approvals are valid over the request, and why
/// each other approval does not count.
pub fn count(
    policy: &Policy,
    rule: &KeyRule,
    p: &Presented,
    now: u64,
) -> (BTreeSet<String>, Vec<String>) {
    let mut approvers = BTreeSet::new();
    let mut ignored = Vec::new();
    for (name, sig) in &p.approvals {
        match signers::verify(
            &policy.signers,
            &rule.approvers,
            APPROVAL_NAMESPACE,
            &p.bytes,
            sig,
            now,
        ) {
            Ok(who) => {
                // The policy gives no key to two approvers: `who` has one name.
                for w in who {
                    if !approvers.insert(w.clone()) {
                        ignored.push(format!("{name}: a second approval by {w}"));
                    }
                }
            }
            Err(Rejected::Namespace { found }) => ignored.push(format!(
                "{name}: made for namespace {found:?}, not {APPROVAL_NAMESPACE:?}"
            )),
            Err(Rejected::BadSignature) => ignored.push(format!(
                "{name}: does not verify over request {} (made for other bytes, or altered)",
                p.request.id
            )),
            Err(Rejected::NotAllowed { key }) => ignored.push(format!(
                "{name}: signed by {key}, not an approver of this key"
            )),
        }
    }
    (approvers, ignored)
}

fn check_window(key: &str, rule: &KeyRule, now: u64) -> Result<(), Refusal> {
    let (nb, na) = rule.window();
    if let Some(b) = nb.filter(|b| now < *b) {
        return Err(Refusal(format!(
            "key {key:?} may not sign before {} (policy not-before; now {})",
            time::format(b),
            time::format(now)
        )));
    }
    if let Some(a) = na.filter(|a| now > *a) {
        return Err(Refusal(format!(
            "key {key:?} may not sign after {} (policy not-after; now {})",
            time::format(a),
            time::format(now)
        )));
    }
    Ok(())
}

fn braces(names: &[String]) -> String {
    format!("{{{}}}", names.join(", "))
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request {} approved by {} for key {:?} (up to {} signature(s))",
            self.request,
            if self.approvers.is_empty() {
                "nobody (quorum 0)".to_string()
            } else {
                self.approvers.join(", ")
            },
            self.key,
            self.limit
        )
    }
}
