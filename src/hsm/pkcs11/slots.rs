//! Finding the token the URI (or the script's label) names, every time it is needed and
//! never by a remembered slot number (SoftHSM renumbers slots after C_InitToken), and
//! what the token says about itself. Opens no session (that is `session`'s).

use cryptoki::slot::Slot;

use super::errors::ck;
use super::Pkcs11Token;
use crate::hsm::{Error, Result, TokenInfo};

/// One token's facts as C_GetTokenInfo reports them, for matching and error messages.
pub(super) struct Found {
    pub(super) slot: Slot,
    pub(super) label: String,
    pub(super) serial: String,
    pub(super) manufacturer: String,
    pub(super) model: String,
    pub(super) initialized: bool,
}

impl Found {
    pub(super) fn describe(&self) -> String {
        if self.initialized {
            format!("{:?} (serial {})", self.label, self.serial)
        } else {
            format!("an uninitialized token in slot {}", self.slot.id())
        }
    }
}

impl Pkcs11Token {
    /// What the URI or script asks for, as text for messages.
    pub(super) fn wanted(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(l) = self.uri.token.as_ref().or(if self.uri.names_token() {
            None
        } else {
            self.token_label.as_ref()
        }) {
            parts.push(format!("labelled {l:?}"));
        }
        if let Some(s) = &self.uri.serial {
            parts.push(format!("with serial {s}"));
        }
        if let Some(m) = &self.uri.manufacturer {
            parts.push(format!("from manufacturer {m:?}"));
        }
        if let Some(m) = &self.uri.model {
            parts.push(format!("of model {m:?}"));
        }
        if let Some(id) = self.uri.slot_id {
            parts.push(format!("in slot {id}"));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    pub(super) fn scan(&self) -> Result<Vec<Found>> {
        let slots = self
            .ctx
            .get_slots_with_token()
            .map_err(|e| ck("listing slots", e))?;
        let mut out = Vec::new();
        for slot in slots {
            let ti = self
                .ctx
                .get_token_info(slot)
                .map_err(|e| ck("reading token info", e))?;
            let mut f = Found {
                slot,
                label: ti.label().trim_end().to_string(),
                serial: ti.serial_number().trim_end().to_string(),
                manufacturer: ti.manufacturer_id().trim_end().to_string(),
                model: ti.model().trim_end().to_string(),
                initialized: ti.token_initialized(),
            };
            if !f.initialized {
                f.label.clear();
            }
            out.push(f);
        }
        Ok(out)
    }

    pub(super) fn matches(&self, f: &Found) -> Result<bool> {
        let label = self.uri.token.as_ref().or(if self.uri.names_token() {
            None
        } else {
            self.token_label.as_ref()
        });
        if let Some(l) = label {
            if !f.initialized || &f.label != l {
                return Ok(false);
            }
        }
        if let Some(s) = &self.uri.serial {
            if !f.initialized || &f.serial != s {
                return Ok(false);
            }
        }
        if let Some(m) = &self.uri.manufacturer {
            if &f.manufacturer != m {
                return Ok(false);
            }
        }
        if let Some(m) = &self.uri.model {
            if &f.model != m {
                return Ok(false);
            }
        }
        if let Some(id) = self.uri.slot_id {
            if f.slot.id() != id {
                return Ok(false);
            }
        }
        if self.uri.slot_description.is_some() || self.uri.slot_manufacturer.is_some() {
            let si = self
                .ctx
                .get_slot_info(f.slot)
                .map_err(|e| ck("reading slot info", e))?;
            if let Some(d) = &self.uri.slot_description {
                if si.slot_description().trim_end() != d {
                    return Ok(false);
                }
            }
            if let Some(m) = &self.uri.slot_manufacturer {
                if si.manufacturer_id().trim_end() != m {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The one initialized token the URI/script names; None when none matches (yet).
    pub(super) fn find(&self) -> Result<Option<Slot>> {
        let found = self.scan()?;
        let selective = self.wanted().is_some();
        let mut hits = Vec::new();
        for f in &found {
            if f.initialized && self.matches(f)? {
                hits.push(f);
            }
        }
        match hits.len() {
            0 => Ok(None),
            1 => Ok(Some(hits[0].slot)),
            // With no criteria at all, several tokens leave the choice to the operator.
            _ if !selective => Ok(None),
            _ => Err(Error::Backend(format!(
                "several PKCS#11 tokens match {} in {}: {}; add serial=… to the URI",
                self.wanted().unwrap_or_default(),
                self.module,
                hits.iter()
                    .map(|f| f.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// From now on the token is the one labelled `label` (after C_InitToken, which
    /// SoftHSM follows by moving the token to a new slot id).
    pub(super) fn select_label(&mut self, label: &str) {
        self.uri.token = None;
        self.uri.serial = None;
        self.uri.slot_id = None;
        self.token_label = Some(label.to_string());
    }

    pub(super) fn missing_token(&self) -> Error {
        let found = match self.scan() {
            Ok(f) if f.is_empty() => "no tokens".to_string(),
            Ok(f) => f.iter().map(Found::describe).collect::<Vec<_>>().join(", "),
            Err(e) => e.to_string(),
        };
        let what = match self.wanted() {
            Some(w) => format!("no PKCS#11 token {w}"),
            None => "no PKCS#11 token named (give token=… in the URI)".to_string(),
        };
        Error::Backend(format!("{what} in {} (found: {found})", self.module))
    }

    /// A slot to ask about mechanisms: the bound token, else the one init-token would take.
    pub(super) fn any_slot(&mut self) -> Result<Slot> {
        if let Some(b) = &self.bound {
            return Ok(b.slot);
        }
        if let Some(slot) = self.find()? {
            return Ok(slot);
        }
        let found = self.scan()?;
        found
            .iter()
            .find(|f| self.uri.slot_id.is_none_or(|id| f.slot.id() == id))
            .map(|f| f.slot)
            .ok_or_else(|| self.missing_token())
    }

    pub(super) fn token_info(&mut self) -> Result<TokenInfo> {
        let slot = self.any_slot()?;
        let ti = self
            .ctx
            .get_token_info(slot)
            .map_err(|e| ck("reading token info", e))?;
        let initialized = ti.token_initialized();
        Ok(TokenInfo {
            backend: self.shown.clone(),
            label: if initialized {
                ti.label().trim_end().to_string()
            } else {
                String::new()
            },
            serial: ti.serial_number().trim_end().to_string(),
            manufacturer: ti.manufacturer_id().trim_end().to_string(),
            model: ti.model().trim_end().to_string(),
            initialized,
            rehearsal: false,
            min_pin_len: ti.min_pin_length(),
            max_pin_len: ti.max_pin_length(),
        })
    }
}
