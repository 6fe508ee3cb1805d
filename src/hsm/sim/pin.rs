//! PINs on the rehearsal token: stored only as salted PBKDF2-HMAC-SHA256 hashes, with a
//! retry counter that locks the PIN after [`MAX_RETRIES`] wrong attempts in a row.

use rand_core::{OsRng, RngCore};
use sha2::Sha256;

use crate::hsm::{Error, Result, UserType};
use crate::secret::Secret;

/// Wrong attempts allowed before a PIN locks (a correct login resets the count).
pub const MAX_RETRIES: u32 = 3;

/// PBKDF2 rounds. Moderate on purpose: the store keeps its keys in the clear, so the hash
/// only keeps the PIN itself out of the file; a high count would buy nothing here and
/// would slow every login in the test suite.
const ITERATIONS: u32 = 10_000;

/// The shortest PIN the rehearsal token takes, in bytes.
pub const MIN_PIN_LEN: usize = 4;
/// The longest PIN the rehearsal token takes, in bytes.
pub const MAX_PIN_LEN: usize = 64;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct PinRecord {
    #[serde(with = "super::store::hex_bytes")]
    salt: Vec<u8>,
    #[serde(with = "super::store::hex_bytes")]
    hash: Vec<u8>,
    iterations: u32,
    pub retries_left: u32,
}

fn derive(pin: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(pin, salt, iterations, &mut out);
    out
}

/// Refuse a new PIN outside the token's length limits (the message never shows it).
pub(super) fn check_new(user: UserType, pin: &Secret) -> Result<()> {
    if pin.len() < MIN_PIN_LEN || pin.len() > MAX_PIN_LEN {
        return Err(Error::Refused(format!(
            "the new {user} PIN must be {MIN_PIN_LEN} to {MAX_PIN_LEN} bytes long (it has {})",
            pin.len()
        )));
    }
    Ok(())
}

impl PinRecord {
    pub(super) fn new(pin: &Secret) -> Self {
        let mut salt = vec![0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let hash = derive(pin.expose(), &salt, ITERATIONS).to_vec();
        PinRecord {
            salt,
            hash,
            iterations: ITERATIONS,
            retries_left: MAX_RETRIES,
        }
    }

    pub(super) fn locked(&self) -> bool {
        self.retries_left == 0
    }

    /// Check `pin`, updating the counter (the caller persists the record either way).
    pub(super) fn check(&mut self, user: UserType, pin: &Secret) -> Result<()> {
        if self.locked() {
            return Err(locked(user));
        }
        let got = derive(pin.expose(), &self.salt, self.iterations);
        // Compare without an early exit.
        let same = got.len() == self.hash.len()
            && got
                .iter()
                .zip(&self.hash)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            self.retries_left = MAX_RETRIES;
            Ok(())
        } else {
            self.retries_left = self.retries_left.saturating_sub(1);
            Err(Error::WrongPin {
                user,
                retries_left: Some(self.retries_left),
            })
        }
    }
}

pub(super) fn locked(user: UserType) -> Error {
    let hint = match user {
        UserType::User => {
            "the SO can reset the user PIN by re-initializing the token \
                           (init-token with the SO PIN; this erases every object)"
        }
        UserType::So => {
            "a locked SO PIN cannot be reset: the token must be re-initialized \
                         from scratch (for the rehearsal token: remove its directory and run \
                         init-token)"
        }
    };
    Error::PinLocked {
        user,
        hint: hint.to_string(),
    }
}
