//! What a module's `CKR_*` codes mean to an operator: cryptoki errors mapped to
//! [`Error`], wrong and locked PINs with what the token's flags say about retries. Pure
//! mapping: no module calls.

use cryptoki::error::{Error as CkError, RvError};

use super::uri::UriError;
use crate::hsm::{Error, UserType};

pub(super) fn uri_err(e: UriError) -> Error {
    Error::Pkcs11Uri(e)
}

/// "PinIncorrect" -> "CKR_PIN_INCORRECT".
pub fn ckr_name(rv: RvError) -> String {
    let camel = format!("{rv:?}");
    let mut out = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Map a cryptoki error to ours; `what` says what we were doing ("signing with \"K\"").
pub(super) fn ck(what: &str, e: CkError) -> Error {
    match e {
        CkError::Pkcs11(RvError::UserNotLoggedIn, func) => Error::NotLoggedIn(format!(
            "{what}: log in first (C_{func:?} returned CKR_USER_NOT_LOGGED_IN)"
        )),
        source => Error::Pkcs11 {
            what: what.to_string(),
            source: Box::new(source),
        },
    }
}

/// A cryptoki error as an operator reads it: the function and its `CKR_*` name (a token
/// that is gone said so), or cryptoki's own words for a failure before the module.
pub fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(
            rv @ (RvError::TokenNotPresent | RvError::TokenNotRecognized | RvError::DeviceRemoved),
            func,
        ) => format!("the token is gone (C_{func:?} returned {})", ckr_name(*rv)),
        CkError::Pkcs11(rv, func) => format!("C_{func:?} returned {}", ckr_name(*rv)),
        other => other.to_string(),
    }
}

pub(super) fn rv_of(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// CKR_PIN_INCORRECT / CKR_PIN_LOCKED with the token's flags, as our error.
pub fn login_error(
    user: UserType,
    rv: Option<RvError>,
    count_low: bool,
    final_try: bool,
    locked: bool,
) -> Option<Error> {
    let hint = match user {
        UserType::User => "the SO must set a new user PIN (C_InitPIN) before anyone logs in",
        UserType::So => "only re-initializing the token (which destroys its keys) clears it",
    };
    match rv? {
        RvError::PinLocked => Some(Error::PinLocked {
            user,
            hint: hint.into(),
        }),
        RvError::PinIncorrect if locked => Some(Error::WrongPin {
            user,
            retries_left: Some(0),
        }),
        RvError::PinIncorrect => Some(Error::WrongPin {
            user,
            retries_left: if final_try {
                Some(1)
            } else {
                let _ = count_low; // the count itself is not reported by PKCS#11
                None
            },
        }),
        RvError::PinLenRange | RvError::PinInvalid => Some(Error::WrongPin {
            user,
            retries_left: None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ckr_names() {
        assert_eq!(ckr_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(ckr_name(RvError::MechanismInvalid), "CKR_MECHANISM_INVALID");
    }

    #[test]
    fn login_errors_map_with_flags() {
        let e = login_error(UserType::User, Some(RvError::PinLocked), false, false, true).unwrap();
        assert_eq!(
            e.to_string(),
            "user PIN is locked (too many wrong attempts); the SO must set a new user PIN \
             (C_InitPIN) before anyone logs in"
        );
        let e = login_error(
            UserType::User,
            Some(RvError::PinIncorrect),
            true,
            true,
            false,
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "wrong user PIN (1 retry left before the PIN locks)"
        );
        let e = login_error(
            UserType::So,
            Some(RvError::PinIncorrect),
            false,
            false,
            true,
        )
        .unwrap();
        assert_eq!(
            e.to_string(),
            "wrong SO PIN (no retries left: the PIN is now locked)"
        );
        let e = login_error(
            UserType::So,
            Some(RvError::PinIncorrect),
            false,
            false,
            false,
        )
        .unwrap();
        assert_eq!(e.to_string(), "wrong SO PIN");
        assert!(login_error(
            UserType::User,
            Some(RvError::GeneralError),
            false,
            false,
            false
        )
        .is_none());
    }
}
