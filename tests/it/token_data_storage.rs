//! The Token trait's data objects and counters (what the approval stage keeps on the
//! token), on the rehearsal token, SoftHSMv2 (judged by pkcs11-tool) and the YubiHSM
//! MockHsm.
//!
//! SoftHSM reads SOFTHSM2_CONF once per process: the SoftHSM tests take one lock and
//! point the variable at their own token directory.

use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use crate::support::{oracle, run, SoftHsm};
use officiant::hsm::{self, Error, ObjectClass, Selector, Token, UserType};
use officiant::secret::Secret;

const SO_PIN: &str = "so-pin-0000";
const USER_PIN: &str = "user-pin-1234";

fn secret(s: &str) -> Secret {
    Secret::from_string(s.to_string())
}

/// What every backend must do with data objects and counters (user logged in).
fn data_and_counters(t: &mut dyn Token) {
    assert!(t.read_data("officiant-policy.").unwrap().is_empty());
    t.put_data("officiant-policy.1", b"policy one", false)
        .unwrap();
    t.put_data("other", b"not ours", false).unwrap();
    let found = t.read_data("officiant-policy.").unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].label, "officiant-policy.1");
    assert_eq!(found[0].value, b"policy one");
    assert!(!found[0].immutable);
    let e = t
        .put_data("officiant-policy.1", b"again", false)
        .unwrap_err();
    assert!(matches!(e, Error::LabelExists { .. }), "{e}");

    assert_eq!(t.read_counter("uses.c1").unwrap(), None);
    t.write_counter("uses.c1", 0, 1).unwrap();
    assert_eq!(t.read_counter("uses.c1").unwrap(), Some(1));
    t.write_counter("uses.c1", 1, 5).unwrap();
    assert_eq!(t.read_counter("uses.c1").unwrap(), Some(5));
    // Only up, and only from the value the writer read: a second writer that read 1
    // (or 0) is refused, so two writers never both count from the same value.
    for (from, to, why) in [
        (5, 5, "only goes up"),
        (5, 4, "only goes up"),
        (1, 6, "another session wrote it"),
        (0, 1, "another session wrote it"),
    ] {
        let e = t.write_counter("uses.c1", from, to).unwrap_err();
        assert!(e.to_string().contains(why), "{from}->{to}: {e}");
    }
    assert_eq!(t.read_counter("uses.c1").unwrap(), Some(5));
    assert_eq!(t.read_counter("uses.c2").unwrap(), None);
}

#[test]
fn sim_data_objects_and_counters() {
    let d = tempfile::tempdir().unwrap();
    let mut t = hsm::sim::open(d.path()).unwrap();
    t.init_token("rehearsal", &secret(SO_PIN), &secret(USER_PIN))
        .unwrap();
    let caps = t.capabilities().unwrap();
    assert!(caps.immutable_data && caps.counters);
    t.login(UserType::User, &secret(USER_PIN)).unwrap();
    data_and_counters(t.as_mut());
    // A counter is a private object, not a public data object.
    assert!(t.read_data("uses.").unwrap().is_empty());
    // Counters persist across processes (here: a reopen of the store).
    drop(t);
    let mut t = hsm::sim::open(d.path()).unwrap();
    let e = t.read_counter("uses.c1").unwrap_err();
    assert!(matches!(e, Error::NotLoggedIn(_)), "{e}");
    t.login(UserType::User, &secret(USER_PIN)).unwrap();
    assert_eq!(t.read_counter("uses.c1").unwrap(), Some(5));
}

#[test]
fn sim_immutable_data_survives_delete_not_init() {
    let d = tempfile::tempdir().unwrap();
    let mut t = hsm::sim::open(d.path()).unwrap();
    t.init_token("rehearsal", &secret(SO_PIN), &secret(USER_PIN))
        .unwrap();
    assert!(matches!(
        t.put_data("p", b"x", true).unwrap_err(),
        Error::NotLoggedIn(_)
    ));
    t.login(UserType::So, &secret(SO_PIN)).unwrap();
    t.put_data("officiant-policy.1", b"fixed", true).unwrap();
    t.login(UserType::User, &secret(USER_PIN)).unwrap();
    let e = t
        .delete_object(&Selector {
            label: "officiant-policy.1".into(),
            class: Some(ObjectClass::Data),
        })
        .unwrap_err();
    assert!(e.to_string().contains("cannot be destroyed"), "{e}");
    let found = t.read_data("officiant-policy.").unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].immutable);
    assert_eq!(found[0].value, b"fixed");
    // Like SoftHSM's C_InitToken (below): re-initializing erases it with the keys.
    t.init_token("again", &secret(SO_PIN), &secret(USER_PIN))
        .unwrap();
    assert!(t.read_data("officiant-policy.").unwrap().is_empty());
}

static SOFTHSM: Mutex<()> = Mutex::new(());

struct Soft {
    hsm: SoftHsm,
    _guard: MutexGuard<'static, ()>,
}

impl Soft {
    fn new() -> Option<Soft> {
        let guard = SOFTHSM.lock().unwrap_or_else(|e| e.into_inner());
        let hsm = SoftHsm::new()?;
        std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
        Some(Soft { hsm, _guard: guard })
    }

    fn token(&self, label: &str) -> Box<dyn Token> {
        let rest = self.hsm.uri()["pkcs11:".len()..].to_string();
        let mut t = hsm::pkcs11::open(&rest, Some(label)).unwrap();
        t.init_token(label, &secret(SO_PIN), &secret(USER_PIN))
            .unwrap();
        t
    }

    fn pkcs11_tool(&self, label: &str) -> Option<Command> {
        let mut c = Command::new(oracle("pkcs11-tool")?);
        self.hsm.env(&mut c);
        c.arg("--module")
            .arg(&self.hsm.module)
            .args(["--token-label", label]);
        Some(c)
    }
}

#[test]
fn softhsm_data_objects_and_counters() {
    let Some(s) = Soft::new() else { return };
    let mut t = s.token("store");
    let caps = t.capabilities().unwrap();
    assert!(caps.immutable_data && caps.counters);
    t.login(UserType::User, &secret(USER_PIN)).unwrap();
    data_and_counters(t.as_mut());
    assert!(t.read_data("uses.").unwrap().is_empty());
    drop(t);
    // pkcs11-tool reads the counter as the 8 big-endian bytes it is.
    let Some(mut c) = s.pkcs11_tool("store") else {
        return;
    };
    c.args(["--login", "--pin", USER_PIN]).args([
        "--read-object",
        "--type",
        "data",
        "--label",
        "uses.c1",
    ]);
    let out = run(&mut c);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, 5u64.to_be_bytes());
}

#[test]
fn softhsm_keeps_an_immutable_policy_object() {
    let Some(s) = Soft::new() else { return };
    let mut t = s.token("fixed");
    // The SO writes the public object, as `officiant policy set` does.
    t.login(UserType::So, &secret(SO_PIN)).unwrap();
    t.put_data("officiant-policy.1", b"fixed value", true)
        .unwrap();
    t.logout().unwrap();
    let found = t.read_data("officiant-policy.").unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        found[0].immutable,
        "SoftHSM dropped CKA_MODIFIABLE/CKA_DESTROYABLE"
    );
    drop(t);
    // The user, with pkcs11-tool, can neither delete it nor overwrite it.
    let Some(mut c) = s.pkcs11_tool("fixed") else {
        return;
    };
    c.args(["--login", "--pin", USER_PIN]).args([
        "--delete-object",
        "--type",
        "data",
        "--label",
        "officiant-policy.1",
    ]);
    let out = run(&mut c);
    assert!(!out.status.success(), "pkcs11-tool deleted it: {out:?}");
    let mut c = s.pkcs11_tool("fixed").unwrap();
    c.args(["--login", "--pin", USER_PIN]).args([
        "--read-object",
        "--type",
        "data",
        "--label",
        "officiant-policy.1",
    ]);
    let out = run(&mut c);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"fixed value");
    // C_InitToken (the SO PIN) erases it, with every key it was about.
    let mut c = s.pkcs11_tool("fixed").unwrap();
    c.args(["--init-token", "--label", "fixed", "--so-pin", SO_PIN]);
    let out = run(&mut c);
    assert!(out.status.success(), "{out:?}");
    let mut t = hsm::pkcs11::open(&s.hsm.uri()["pkcs11:".len()..], Some("fixed")).unwrap();
    assert!(t.read_data("officiant-policy.").unwrap().is_empty());
}

#[cfg(feature = "mock-hsm")]
#[test]
fn yubihsm_mock_data_objects_and_counters() {
    let mut t = hsm::open(&hsm::BackendUri::parse("yubihsm:mock").unwrap(), None).unwrap();
    let caps = t.capabilities().unwrap();
    assert!(!caps.immutable_data && caps.counters);
    t.login(UserType::User, &secret("password")).unwrap();
    data_and_counters(t.as_mut());
    // A counter rewrite leaves one object behind, not one per write.
    let n = t
        .list_objects()
        .unwrap()
        .into_iter()
        .filter(|o| o.label == "uses.c1")
        .count();
    assert_eq!(n, 1);
}
