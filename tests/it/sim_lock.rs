//! The store lock across processes: a second process is refused while the token is open,
//! and a process killed mid-run leaves no stale lock (kill-and-resume depends on it).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use officiant::hsm;

const CHILD_DIR: &str = "OFFICIANT_SIM_LOCK_CHILD_DIR";

/// Run only as the child of `killed_holder_leaves_no_stale_lock`: open the token, say
/// so, then hold it until killed.
#[test]
fn child_holds_the_token_open() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let _token = hsm::sim::open(&dir).unwrap();
    std::fs::write(dir.join("child-ready"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn killed_holder_leaves_no_stale_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        // The test's name in the one integration-test binary (tests/it/main.rs).
        .args([
            "--exact",
            "sim_lock::child_holds_the_token_open",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir.path())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !dir.path().join("child-ready").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child never opened the token"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = match hsm::sim::open(dir.path()) {
        Ok(_) => panic!("opened while another process holds the token"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("in use by another process"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(hsm::sim::open(dir.path()).is_ok());
}
