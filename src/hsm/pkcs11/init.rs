//! init-token: C_InitToken and the user PIN after it, and the resume of an init-token a
//! crash interrupted (the token it left is taken over only when the script's SO PIN opens
//! it and it holds nothing). Touches no keys.

use cryptoki::error::RvError;

use super::errors::{ck, ckr_name, rv_of};
use super::session::pin;
use super::slots::Found;
use super::Pkcs11Token;
use crate::hsm::{Error, Result, Token, UserType};
use crate::secret::Secret;

impl Pkcs11Token {
    /// Log in as the SO on the bound token, set the user PIN (C_InitPIN), log out.
    pub(super) fn set_user_pin(&mut self, so_pin: &Secret, user_pin: &Secret) -> Result<()> {
        self.login_inner(UserType::So, so_pin)?;
        let user = pin(user_pin, "user PIN")?;
        let res = self
            .session()?
            .init_pin(&user)
            .map_err(|e| match rv_of(&e) {
                Some(RvError::PinLenRange) => Error::Refused(format!(
                    "user PIN length is outside what the token accepts ({})",
                    ckr_name(RvError::PinLenRange)
                )),
                _ => ck("setting the user PIN (C_InitPIN)", e),
            });
        crate::output::crash_point();
        let _ = self.logout();
        res
    }

    pub(super) fn init(&mut self, label: &str, so_pin: &Secret, user_pin: &Secret) -> Result<()> {
        if label.is_empty() || label.len() > 32 {
            return Err(Error::Refused(format!(
                "token label {label:?} must be 1 to 32 bytes"
            )));
        }
        // C_InitToken needs every session on the token closed; and the slots must be read
        // afresh, with the tokens runs before this one (waited for under the caller's
        // init lock) made since this process opened the module.
        self.bound = None;
        self.mech_cache = None;
        super::context::reinitialize(&self.module, &self.ctx)?;
        let found = self.scan()?;
        if let Some(other) = found.iter().find(|f| f.initialized && f.label == label) {
            if self.uri.slot_id != Some(other.slot.id()) {
                return Err(Error::Refused(format!(
                    "a token labelled {label:?} already exists (serial {}); labels must be unique",
                    other.serial
                )));
            }
        }
        let target =
            match self.uri.slot_id {
                Some(id) => found.iter().find(|f| f.slot.id() == id).ok_or_else(|| {
                    Error::Backend(format!(
                        "no token in slot {id} of {} (found: {})",
                        self.module,
                        found
                            .iter()
                            .map(Found::describe)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
                None => found.iter().find(|f| !f.initialized).ok_or_else(|| {
                    Error::Refused(format!(
                    "no uninitialized token in {} (found: {}); give slot-id=N to re-initialize one",
                    self.module,
                    found.iter().map(Found::describe).collect::<Vec<_>>().join(", ")
                ))
                })?,
            };
        let slot = target.slot;
        // Between picking the slot and initializing it: where two runs would race
        // (the caller holds the init lock, `ceremony::lock::TokenLock::for_init`).
        crate::output::crash_point_named("pkcs11-init-token");
        let so = pin(so_pin, "SO PIN")?;
        if let Err(e) = self.ctx.init_token(slot, &so, label) {
            return Err(match rv_of(&e) {
                Some(RvError::PinIncorrect | RvError::PinLocked) => {
                    self.pin_error(UserType::So, slot, e)
                }
                Some(RvError::PinLenRange) => Error::Refused(format!(
                    "SO PIN length is outside what the token accepts ({})",
                    ckr_name(RvError::PinLenRange)
                )),
                _ => ck(&format!("initializing token {label:?}"), e),
            });
        }
        // A kill from here on leaves a token with the label: see `resume_init_token`.
        crate::output::crash_point();
        // SoftHSM moves the token to a new slot id: find it again by its new label.
        self.select_label(label);
        let slot = self.find()?.ok_or_else(|| self.missing_token())?;
        self.bind(slot)?;
        self.set_user_pin(so_pin, user_pin)
    }

    pub(super) fn resume_init(
        &mut self,
        label: &str,
        so_pin: &Secret,
        user_pin: &Secret,
    ) -> Result<Option<String>> {
        // A URI that names the slot re-initializes whatever is there, as confirmed.
        if self.uri.slot_id.is_some() {
            return Ok(None);
        }
        let found = self.scan()?;
        let hits: Vec<&Found> = found
            .iter()
            .filter(|f| f.initialized && f.label == label)
            .collect();
        let (slot, serial) = match hits.as_slice() {
            [] => return Ok(None),
            [one] => (one.slot, one.serial.clone()),
            _ => {
                return Err(Error::Refused(format!(
                    "{} tokens are labelled {label:?}; labels must be unique",
                    hits.len()
                )))
            }
        };
        let foreign = |why: String| {
            Error::Refused(format!(
                "a token labelled {label:?} already exists (serial {serial}) and {why}: it is not what an interrupted init-token of this run left; labels must be unique"
            ))
        };
        let user_pin_set = self
            .ctx
            .get_token_info(slot)
            .map_err(|e| ck("reading token info", e))?
            .user_pin_initialized();
        self.bind(slot)?;
        match self.login_inner(UserType::So, so_pin) {
            Ok(()) => {}
            Err(Error::WrongPin { .. } | Error::PinLocked { .. }) => {
                self.bound = None;
                return Err(foreign("the script's SO PIN does not open it".into()));
            }
            Err(e) => return Err(e),
        }
        let mut objects = self.list_objects()?.len();
        if user_pin_set {
            // Private objects show only to the user: log in as the user to count them.
            let _ = self.logout();
            match self.login_inner(UserType::User, user_pin) {
                Ok(()) => objects = objects.max(self.list_objects()?.len()),
                Err(Error::WrongPin { .. } | Error::PinLocked { .. }) => {
                    self.bound = None;
                    return Err(foreign(
                        "its user PIN is set and is not the script's initial user PIN".into(),
                    ));
                }
                Err(e) => return Err(e),
            }
            let _ = self.logout();
        }
        if objects > 0 {
            let _ = self.logout();
            self.bound = None;
            return Err(foreign(format!("it holds {objects} objects")));
        }
        self.select_label(label);
        self.set_user_pin(so_pin, user_pin)?;
        Ok(Some(format!(
            "token {label:?} (serial {serial}) was initialized by the interrupted run: its SO PIN opens it and it holds no objects; its user PIN is set again"
        )))
    }
}
