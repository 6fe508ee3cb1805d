//! The session on the bound token and its login state: binding a slot, logging in and
//! out, changing a PIN, and mapping a failed login to a wrong or locked PIN. Finding the
//! token is `slots`'; objects are `objects`'.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, UserType as CkUser};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::errors::{ck, ckr_name, login_error, rv_of};
use super::Pkcs11Token;
use crate::hsm::{Error, Result, UserType};
use crate::secret::Secret;

pub(super) fn pin(secret: &Secret, what: &str) -> Result<AuthPin> {
    let s = secret
        .expose_str()
        .ok_or_else(|| Error::Refused(format!("{what} is not UTF-8 text")))?;
    Ok(AuthPin::from(s))
}

pub(super) fn ck_user(u: UserType) -> CkUser {
    match u {
        UserType::User => CkUser::User,
        UserType::So => CkUser::So,
    }
}

pub(super) struct Bound {
    pub(super) slot: Slot,
    pub(super) session: Session,
    pub(super) logged_in: Option<UserType>,
    /// The private key last used to sign and its label: a batch signs with one key, and
    /// a find per signature walks the token's whole object store.
    /// (label, is RSA, handle).
    pub(super) last_signing_key: Option<(String, bool, ObjectHandle)>,
}

impl Pkcs11Token {
    pub(super) fn bind(&mut self, slot: Slot) -> Result<()> {
        self.bound = None;
        let session = self
            .ctx
            .open_rw_session(slot)
            .map_err(|e| ck("opening a session", e))?;
        // Another session of this process may already be logged in (login is per token).
        let logged_in = match session.get_session_info().map(|i| i.session_state()) {
            Ok(cryptoki::session::SessionState::RwUser) => Some(UserType::User),
            Ok(cryptoki::session::SessionState::RwSecurityOfficer) => Some(UserType::So),
            _ => None,
        };
        self.bound = Some(Bound {
            slot,
            session,
            logged_in,
            last_signing_key: None,
        });
        Ok(())
    }

    pub(super) fn bound(&mut self) -> Result<&mut Bound> {
        if self.bound.is_none() {
            match self.find()? {
                Some(slot) => self.bind(slot)?,
                None => return Err(self.missing_token()),
            }
        }
        // Checked just above: bound is Some here.
        self.bound
            .as_mut()
            .ok_or_else(|| Error::Backend("no session".into()))
    }

    pub(super) fn session(&mut self) -> Result<&Session> {
        Ok(&self.bound()?.session)
    }

    pub(super) fn login_inner(&mut self, user: UserType, pin_s: &Secret) -> Result<()> {
        let p = pin(pin_s, &format!("{user} PIN"))?;
        let b = self.bound()?;
        if b.logged_in == Some(user) {
            return Ok(());
        }
        if b.logged_in.is_some() {
            let _ = b.session.logout();
            b.logged_in = None;
        }
        let slot = b.slot;
        match b.session.login(ck_user(user), Some(&p)) {
            Ok(()) => {}
            Err(e) if rv_of(&e) == Some(RvError::UserAlreadyLoggedIn) => {}
            Err(e) => return Err(self.pin_error(user, slot, e)),
        }
        if let Some(b) = self.bound.as_mut() {
            b.logged_in = Some(user);
        }
        Ok(())
    }

    /// Wrong or locked PIN, with what the token flags say about retries.
    pub(super) fn pin_error(&self, user: UserType, slot: Slot, e: CkError) -> Error {
        let ti = self.ctx.get_token_info(slot).ok();
        let (low, last, locked) = match (&ti, user) {
            (Some(t), UserType::User) => (
                t.user_pin_count_low(),
                t.user_pin_final_try(),
                t.user_pin_locked(),
            ),
            (Some(t), UserType::So) => (
                t.so_pin_count_low(),
                t.so_pin_final_try(),
                t.so_pin_locked(),
            ),
            (None, _) => (false, false, false),
        };
        login_error(user, rv_of(&e), low, last, locked)
            .unwrap_or_else(|| ck(&format!("logging in as {user}"), e))
    }

    pub(super) fn end_login(&mut self) -> Result<()> {
        if let Some(b) = self.bound.as_mut() {
            if b.logged_in.take().is_some() {
                match b.session.logout() {
                    Ok(()) => {}
                    Err(e) if rv_of(&e) == Some(RvError::UserNotLoggedIn) => {}
                    Err(e) => return Err(ck("logging out", e)),
                }
            }
        }
        Ok(())
    }

    pub(super) fn set_pin(&mut self, user: UserType, old: &Secret, new: &Secret) -> Result<()> {
        self.login_inner(user, old)?;
        let (o, n) = (pin(old, "old PIN")?, pin(new, "new PIN")?);
        let b = self.bound()?;
        let slot = b.slot;
        match b.session.set_pin(&o, &n) {
            Ok(()) => Ok(()),
            Err(e) => Err(match rv_of(&e) {
                Some(RvError::PinLenRange) => Error::Refused(format!(
                    "new {user} PIN length is outside what the token accepts ({})",
                    ckr_name(RvError::PinLenRange)
                )),
                Some(RvError::PinInvalid) => Error::Refused(format!(
                    "new {user} PIN has characters the token refuses (CKR_PIN_INVALID)"
                )),
                Some(RvError::PinIncorrect | RvError::PinLocked) => self.pin_error(user, slot, e),
                _ => ck(&format!("changing the {user} PIN"), e),
            }),
        }
    }
}
