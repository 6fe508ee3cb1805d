//! `--auth-key` picks the YubiHSM authentication key; other backends refuse it.

use crate::support::{officiant, run};

#[test]
fn auth_key_is_refused_where_there_are_no_auth_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(officiant()
        .args(["objects", "--auth-key", "2", "--backend"])
        .arg(format!("sim:{}", dir.path().join("tok").display())));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim(),
        "officiant: --auth-key 2: only yubihsm: backends have authentication keys"
    );
}

#[cfg(feature = "mock-hsm")]
#[test]
fn auth_key_selects_the_key_the_password_belongs_to() {
    // The MockHsm starts with the factory key 1 / "password".
    let ok = run(officiant()
        .args(["objects", "--backend", "yubihsm:mock", "--auth-key", "1"])
        .args(["--pin-source", "env:OFFICIANT_TEST_YHSM_PW"])
        .env("OFFICIANT_TEST_YHSM_PW", "password"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = run(officiant()
        .args(["objects", "--backend", "yubihsm:mock", "--auth-key", "9"])
        .args(["--pin-source", "env:OFFICIANT_TEST_YHSM_PW"])
        .env("OFFICIANT_TEST_YHSM_PW", "password"));
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("authentication key 0x0009: login failed"),
        "{err}"
    );
}
