//! ESP32 Secure Boot V2 (waits for formats::esp32).
use std::path::Path;

use super::{Error, Options, SignRecord, SigningKey, VerifyReport};
use crate::keys::PublicKey;

pub(super) fn sign(
    _: &mut SigningKey<'_>,
    _: &Options,
    _: &Path,
    _: &Path,
) -> Result<SignRecord, Error> {
    Err(Error::Usage("esp32-sbv2 is not built yet".into()))
}
pub(super) fn verify(_: &PublicKey, _: &Path) -> Result<VerifyReport, Error> {
    Err(Error::Usage("esp32-sbv2 is not built yet".into()))
}
