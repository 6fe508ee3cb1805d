//! What the yubihsm crate 0.42 or its MockHsm cannot do, as one-line refusals that name
//! the way that works, and the check of a planned step against them before anything is
//! opened. No device calls.

use super::{Error, Result, Target, YubiUri, ALTERNATIVE};
use crate::keys::{HashAlg, KeyAlgorithm, SignScheme};

/// RSA-PSS: the crate's signing is broken.
pub fn rsa_pss() -> String {
    format!("RSA-PSS signing is broken in the yubihsm crate 0.42 (inverted length check, non-standard prehash); {ALTERNATIVE}")
}
/// RSA PKCS#1 v1.5 over a digest: the crate signs only messages it hashes itself.
pub fn pkcs1_digest() -> String {
    format!("RSA PKCS#1 v1.5 signing of a digest: the yubihsm crate 0.42 signs only a message it hashes itself with SHA-256; {ALTERNATIVE}")
}
/// A key algorithm the MockHsm has not (it has only EC P-256).
pub fn mock_algorithm(alg: KeyAlgorithm) -> String {
    format!("{alg} keys on yubihsm:mock: the MockHsm has only EC P-256 keys; run on a real YubiHSM 2 (yubihsm:usb or yubihsm:http://…) or {ALTERNATIVE}")
}
/// An ECDSA hash the MockHsm does not sign with (SHA-256 only).
pub fn mock_hash() -> String {
    format!("ECDSA on yubihsm:mock signs SHA-256 digests only; run on a real YubiHSM 2 or {ALTERNATIVE}")
}
/// The audit log on the MockHsm: it keeps none.
pub fn mock_audit_log() -> String {
    "audit log on yubihsm:mock: the MockHsm keeps no audit log (it is always empty); read it on a real YubiHSM 2 (yubihsm:usb or yubihsm:http://…)".to_string()
}
/// An algorithm this device does not list.
pub fn device_algorithm(alg: KeyAlgorithm) -> String {
    format!("{alg}: this YubiHSM 2 does not list the algorithm; {ALTERNATIVE}")
}
/// init-token: a YubiHSM 2 has no token to initialize.
pub fn init_token() -> String {
    "init-token: a YubiHSM 2 has no token to initialize; reset it with yubihsm-shell, then provision it with change-auth-key and put-auth-key steps".to_string()
}
/// change-pin: a YubiHSM 2 has authentication keys, not PINs.
pub fn change_pin() -> String {
    "change-pin: a YubiHSM 2 has authentication keys, not PINs; use the change-auth-key step (a safe rotation through a temporary key)".to_string()
}
/// An SO login: a YubiHSM 2 has no security officer.
pub fn so_login() -> String {
    "SO login: a YubiHSM 2 has no security officer; log in with an authentication key (yubihsm:…?auth-key=ID)".to_string()
}

/// A step as the planner sees it, for [`check_step`] at `officiant check` time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeStep {
    /// A key generated with this algorithm.
    Generate(KeyAlgorithm),
    /// A key imported with this algorithm.
    Import(KeyAlgorithm),
    /// A signature by a key of this algorithm in this scheme.
    Sign(KeyAlgorithm, SignScheme),
    /// A step that needs the device's audit log as evidence.
    ReadAuditLog,
    /// init-token.
    InitToken,
    /// change-pin.
    ChangePin,
    /// A login as the SO.
    SoLogin,
}

/// Refuse, before anything is opened, a step the crate or the named device cannot do.
/// Only the URI is known here; a MockHsm served over HTTP is recognized at login.
pub fn check_step(uri: &YubiUri, step: NativeStep) -> Result<()> {
    let mock = uri.target == Target::Mock;
    let mock_alg = |alg: KeyAlgorithm| {
        if mock && alg != KeyAlgorithm::EcP256 {
            Err(Error::Unsupported(mock_algorithm(alg)))
        } else {
            Ok(())
        }
    };
    match step {
        NativeStep::Generate(alg) | NativeStep::Import(alg) => mock_alg(alg),
        NativeStep::Sign(alg, scheme) => match scheme {
            SignScheme::RsaPss(_) => Err(Error::Unsupported(rsa_pss())),
            SignScheme::RsaPkcs1(_) => Err(Error::Unsupported(pkcs1_digest())),
            SignScheme::Ecdsa(h) => {
                mock_alg(alg)?;
                if mock && h != HashAlg::Sha256 {
                    Err(Error::Unsupported(mock_hash()))
                } else {
                    Ok(())
                }
            }
        },
        NativeStep::ReadAuditLog if mock => Err(Error::Unsupported(mock_audit_log())),
        NativeStep::ReadAuditLog => Ok(()),
        NativeStep::InitToken => Err(Error::Unsupported(init_token())),
        NativeStep::ChangePin => Err(Error::Unsupported(change_pin())),
        NativeStep::SoLogin => Err(Error::Unsupported(so_login())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_step_refuses_before_opening() {
        let mock = YubiUri::parse("mock").unwrap();
        let usb = YubiUri::parse("usb").unwrap();
        assert!(check_step(&mock, NativeStep::Generate(KeyAlgorithm::EcP256)).is_ok());
        let e = check_step(&mock, NativeStep::Generate(KeyAlgorithm::Rsa4096)).unwrap_err();
        assert_eq!(e.to_string(), mock_algorithm(KeyAlgorithm::Rsa4096));
        assert!(check_step(&usb, NativeStep::Generate(KeyAlgorithm::Rsa4096)).is_ok());
        assert!(check_step(&usb, NativeStep::Import(KeyAlgorithm::Rsa4096)).is_ok());
        let pss = NativeStep::Sign(KeyAlgorithm::Rsa4096, SignScheme::RsaPss(HashAlg::Sha256));
        assert_eq!(check_step(&usb, pss).unwrap_err().to_string(), rsa_pss());
        assert!(check_step(&usb, NativeStep::ReadAuditLog).is_ok());
        assert_eq!(
            check_step(&mock, NativeStep::ReadAuditLog)
                .unwrap_err()
                .to_string(),
            mock_audit_log()
        );
    }
}
