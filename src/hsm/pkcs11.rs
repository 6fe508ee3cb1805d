//! PKCS#11 backend through `cryptoki` (SoftHSMv2, YubiHSM 2 via yubihsm_pkcs11, …).

use super::{Error, Result, Token};

pub fn open(uri: &str, token_label: Option<&str>) -> Result<Box<dyn Token>> {
    let _ = (uri, token_label);
    Err(Error::Unsupported(
        "the PKCS#11 backend is not built yet".into(),
    ))
}
