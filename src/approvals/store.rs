//! The approval stage's state on the token: the policy, and one use counter per request
//! and key.
//!
//! A policy is a public data object labelled `officiant-policy.N`, written once and never
//! changed: a new policy is version N+1, and the highest version is the token's policy.
//! On a token that keeps objects from being modified or destroyed (sim, SoftHSM: see
//! [`Capabilities::immutable_data`]) every policy object must be so kept; one that is not
//! (say, written by `officiant write-object`) makes every policy on the token untrusted,
//! and keys under it do not sign until an officer looks.
//!
//! A use counter is reserved before the signing call it pays for: a crash between the
//! two loses the use rather than grants one.

use super::decision::Grant;
use super::policy::Policy;
use crate::hsm::{self, Capabilities, Token};

/// Label prefix of policy objects; the version follows.
pub const POLICY_PREFIX: &str = "officiant-policy.";

/// Why the token's policy or counters could not be read, trusted or updated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The token refused or failed.
    #[error("{0}")]
    Token(#[from] hsm::Error),
    /// The stored policy object does not parse.
    #[error("{0}")]
    Policy(#[from] super::policy::Error),
    /// The token holds something that cannot be trusted as a policy.
    #[error("{0}")]
    Untrusted(String),
    /// Not enough uses left.
    #[error("{0}")]
    Spent(String),
}

/// The policy a token holds.
#[derive(Clone, Debug)]
pub struct StoredPolicy {
    /// N of its `officiant-policy.N` label.
    pub version: u32,
    /// The object's label on the token.
    pub label: String,
    /// The policy as read back from the object (what the decision applies).
    pub policy: Policy,
    /// SHA-256 of the object's bytes: what requests name as `policy-sha256`.
    pub sha256: [u8; 32],
    /// The token keeps it from being modified or destroyed.
    pub immutable: bool,
}

fn version_of(label: &str) -> Option<u32> {
    let v = label.strip_prefix(POLICY_PREFIX)?;
    if v.is_empty() || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn caps(token: &mut dyn Token) -> Result<Capabilities, Error> {
    Ok(token.capabilities()?)
}

/// The token's current policy, or `None` (no policy object, or a backend that cannot
/// hold one: keys there sign as before).
pub fn read_policy(token: &mut dyn Token) -> Result<Option<StoredPolicy>, Error> {
    let objects = match token.read_data(POLICY_PREFIX) {
        Ok(o) => o,
        Err(hsm::Error::Unsupported(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if objects.is_empty() {
        return Ok(None);
    }
    let honours = caps(token)?.immutable_data;
    let mut best: Option<(u32, hsm::DataObject)> = None;
    for o in objects {
        let Some(v) = version_of(&o.label) else {
            return Err(Error::Untrusted(format!(
                "the token holds a data object labelled {:?}, which officiant policy set never writes; an officer must look before keys under a policy sign",
                o.label
            )));
        };
        if honours && !o.immutable {
            return Err(Error::Untrusted(format!(
                "the policy object {:?} on this token can be modified or destroyed, so officiant policy set did not write it; an officer must look before keys under a policy sign",
                o.label
            )));
        }
        if best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, o));
        }
    }
    let Some((version, o)) = best else {
        return Ok(None);
    };
    let policy = Policy::from_stored(&format!("policy object {:?}", o.label), &o.value)?;
    Ok(Some(StoredPolicy {
        version,
        sha256: crate::output::sha256(&o.value),
        label: o.label,
        policy,
        immutable: o.immutable,
    }))
}

/// Store `policy` as the token's next version (the SO or an admin key logged in), and
/// read it back.
pub fn write_policy(token: &mut dyn Token, policy: &Policy) -> Result<StoredPolicy, Error> {
    let next = match token.read_data(POLICY_PREFIX)? {
        v if v.is_empty() => 1,
        v => {
            v.iter()
                .filter_map(|o| version_of(&o.label))
                .max()
                .unwrap_or(0)
                + 1
        }
    };
    let label = format!("{POLICY_PREFIX}{next}");
    let bytes = policy.to_stored();
    token.put_data(&label, &bytes, true)?;
    let stored = read_policy(token)?;
    match stored {
        Some(s) if s.label == label && s.sha256 == crate::output::sha256(&bytes) => Ok(s),
        _ => Err(Error::Untrusted(format!(
            "the token does not give back the policy just written as {label:?}"
        ))),
    }
}

/// Reserve `n` uses of `grant` on the token (the user logged in): refused, and nothing
/// written, when fewer than `n` remain. Returns the first reserved use's number
/// (1-based).
pub fn reserve(token: &mut dyn Token, grant: &Grant, n: u64) -> Result<u64, Error> {
    let used = token.read_counter(&grant.counter)?.unwrap_or(0);
    let left = grant.limit.saturating_sub(used);
    if n > left {
        return Err(Error::Spent(if left == 0 {
            format!(
                "request {}: all {} use(s) of key {:?} are spent",
                grant.request, grant.limit, grant.key
            )
        } else {
            format!(
                "request {}: key {:?} has {left} of {} use(s) left, {n} needed",
                grant.request, grant.key, grant.limit
            )
        }));
    }
    // From exactly `used`: a concurrent signer that took uses since is refused here.
    token.write_counter(&grant.counter, used, used + n)?;
    Ok(used + 1)
}

/// Uses of `grant` already made (or reserved).
pub fn used(token: &mut dyn Token, grant: &Grant) -> Result<u64, Error> {
    Ok(token.read_counter(&grant.counter)?.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::version_of;

    #[test]
    fn versions() {
        assert_eq!(version_of("officiant-policy.1"), Some(1));
        assert_eq!(version_of("officiant-policy.12"), Some(12));
        for l in [
            "officiant-policy.",
            "officiant-policy.01",
            "officiant-policy.1a",
            "officiant-policy.-1",
            "officiant-policy.99999999999",
        ] {
            assert_eq!(version_of(l), None, "{l}");
        }
    }
}
