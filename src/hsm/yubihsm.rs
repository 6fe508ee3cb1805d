//! YubiHSM 2 native backend through the `yubihsm` crate.

use super::{Error, Result, Token};

pub fn open(uri: &str) -> Result<Box<dyn Token>> {
    let _ = uri;
    Err(Error::Unsupported(
        "the YubiHSM native backend is not built yet".into(),
    ))
}
