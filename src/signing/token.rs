//! A key pair on an opened token as a [`Signer`], under the token's approval policy.
//!
//! This is the one way Officiant signs with a token key (files, certificates, images):
//! opening it asks the policy (`crate::approvals`). A key with no rule signs freely; a
//! key under a quorum signs only under an approved request, and every signature takes
//! one use of it from the token's counter before the token signs (a crash loses a use,
//! never grants one).

use std::collections::VecDeque;

use crate::approvals;
use crate::hsm::Token;
use crate::keys::{Authority, PublicKey, SignError, SignScheme, Signer};

/// A key pair on an opened, logged-in token that signs only as its approval policy allows;
/// see the module doc.
pub struct TokenSigner<'t> {
    token: &'t mut dyn Token,
    label: String,
    public: PublicKey,
    grant: Option<approvals::Grant>,
    /// Uses reserved on the token and not yet spent: (next use number, how many).
    reserved: VecDeque<(u64, u64)>,
    /// The use number of the last signature made.
    last_use: Option<u64>,
}

impl<'t> TokenSigner<'t> {
    /// The key pair labelled `label`, with the signing request (and its approvals) that
    /// allows it, if its policy asks for one. A key under a quorum without an approved
    /// request is refused here, in one line naming what is missing.
    pub fn open(
        token: &'t mut dyn Token,
        label: &str,
        request: Option<&approvals::Presented>,
    ) -> Result<Self, super::Error> {
        let public = token
            .public_key(label)
            .map_err(|e| SignError::key(label, e))?;
        let grant = match approvals::authorize(token, label, request)? {
            approvals::Verdict::Free => None,
            approvals::Verdict::Approved(g) => Some(g),
        };
        Ok(TokenSigner {
            token,
            label: label.to_string(),
            public,
            grant,
            reserved: VecDeque::new(),
            last_use: None,
        })
    }

    /// The approved request this key signs under, if its policy asks for one.
    pub fn grant(&self) -> Option<&approvals::Grant> {
        self.grant.as_ref()
    }

    /// Uses of the request already made or reserved, on the token.
    pub fn uses_so_far(&mut self) -> Result<Option<u64>, super::Error> {
        match &self.grant {
            None => Ok(None),
            Some(g) => Ok(Some(
                approvals::store::used(self.token, g).map_err(approvals::Error::from)?,
            )),
        }
    }

    /// Spend one reserved use (reserving one if none is left) before a signing call.
    fn spend_use(&mut self) -> Result<(), SignError> {
        if self.grant.is_none() {
            return Ok(());
        }
        if self.reserved.is_empty() {
            self.reserve(1)?;
        }
        if let Some((next, left)) = self.reserved.front_mut() {
            self.last_use = Some(*next);
            *next += 1;
            *left -= 1;
            if *left == 0 {
                self.reserved.pop_front();
            }
        }
        Ok(())
    }
}

impl Signer for TokenSigner<'_> {
    fn label(&self) -> &str {
        &self.label
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign_digest(&mut self, scheme: SignScheme, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        // The use is taken before the token signs: a crash here loses it.
        self.spend_use()?;
        self.token
            .sign(&self.label, scheme, digest)
            .map_err(|e| SignError::key(&self.label, e))
    }

    /// Take `n` uses of the request from the token's counter now (a batch reserves all
    /// of its uses before its first signature; uses a stopped batch did not sign are
    /// lost, never given back).
    fn reserve(&mut self, n: u64) -> Result<(), SignError> {
        let Some(g) = &self.grant else {
            return Ok(());
        };
        if n == 0 {
            return Ok(());
        }
        let first = approvals::store::reserve(self.token, g, n)
            .map_err(|e| SignError::Refused(Box::new(approvals::Error::from(e))))?;
        self.reserved.push_back((first, n));
        Ok(())
    }

    fn authority(&self) -> Option<Authority> {
        self.grant.as_ref().map(|g| Authority {
            request: g.request.clone(),
            approvers: g.approvers.clone(),
            use_number: self.last_use.unwrap_or(0),
            of: g.limit,
        })
    }
}
