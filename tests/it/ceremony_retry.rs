//! A step that fails half way (a full disk between its PEM and its DER) can be retried:
//! the rerun adopts what the journal says this run wrote when the bytes are the same,
//! replaces it when the step's new bytes differ (a certificate issued again), and stops
//! at any file this run did not write. Driven by the debug-build hook
//! OFFICIANT_TEST_FAIL_WRITE_AT=N (the Nth output write fails with ENOSPC) at every
//! write, and, where the tests run as root, by a real, small tmpfs out dir at every size
//! until the run fits.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::demo::Demo;
use crate::support::replay::shipped;
use crate::support::{self, oracle, run, run_ok};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A run that stopped on a full disk: exit 1, one line saying so, no temp file left.
fn check_stopped_for_space(o: &Output, out: &Path, context: &str) {
    assert_eq!(o.status.code(), Some(1), "{context}: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "{context}: {err}");
    assert!(err.contains("No space left on device"), "{context}: {err}");
    for e in std::fs::read_dir(out).into_iter().flatten() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "{context}: {name} left behind");
    }
}

/// The transcript's last step-done entry of the step with id `id`.
fn step_done(out: &Path, id: &str) -> serde_json::Value {
    std::fs::read_to_string(out.join("transcript.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rev()
        .find(|e| e["type"] == "step-done" && e["data"]["id"] == id)
        .unwrap_or_else(|| panic!("no step-done for {id}"))
}

#[test]
fn the_demo_failed_at_each_output_write_is_retried() {
    let mut n = 1;
    loop {
        let d = Demo::new(true);
        let first = run(d
            .command()
            .env("OFFICIANT_TEST_FAIL_WRITE_AT", n.to_string()));
        if first.status.success() {
            d.check_complete(&format!("no failure at write {n}"));
            break;
        }
        check_stopped_for_space(&first, &d.out, &format!("write {n}"));
        if n == 2 {
            // The PEM of export-p256 was written, its DER was not.
            assert!(d.out.join("demo-ecdsa-p256.pub.pem").exists());
            assert!(!d.out.join("demo-ecdsa-p256.pub.der").exists());
        }
        let again = run(&mut d.command());
        assert!(
            again.status.success(),
            "write {n}: the retry failed: {}",
            stderr(&again)
        );
        d.check_complete(&format!("retried after write {n}"));
        if n == 2 {
            let done = step_done(&d.out, "export-p256");
            assert_eq!(
                done["data"]["result"]["outputs"][0]["adopted"], true,
                "the PEM the failed attempt wrote is adopted: {done}"
            );
        }
        n += 1;
        assert!(n < 40, "the run never fits");
    }
    // Six public key files and transcript.md.
    assert!(n > 7, "only {} output writes", n - 1);
}

#[test]
fn a_file_this_run_did_not_write_stops_the_retry() {
    let d = Demo::new(true);
    let first = run(d.command().env("OFFICIANT_TEST_FAIL_WRITE_AT", "2"));
    check_stopped_for_space(&first, &d.out, "write 2");
    // Someone puts another file under the name the failed attempt wrote.
    let pem = d.out.join("demo-ecdsa-p256.pub.pem");
    std::fs::remove_file(&pem).unwrap();
    std::fs::write(&pem, b"-----BEGIN PUBLIC KEY-----\nforeign\n").unwrap();
    let again = run(&mut d.command());
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        stderr(&again),
        format!(
            "officiant: step[6] (export-p256): {} exists and this run did not write it (the journal records no such file); move it away and rerun\n",
            pem.display()
        )
    );
    assert_eq!(
        std::fs::read(&pem).unwrap(),
        b"-----BEGIN PUBLIC KEY-----\nforeign\n"
    );
}

fn ca_signer(dir: &Path) -> Command {
    let mut c = support::officiant();
    c.arg("run")
        .arg(shipped("ca-signer.toml"))
        .arg("--answers")
        .arg(shipped("ca-signer.answers.toml"))
        .arg("--backend")
        .arg(format!("sim:{}", dir.join("token").display()))
        .arg("--out")
        .arg(dir.join("out"));
    c
}

/// The CA certificate's PEM is written, its DER fails: the retry issues the certificate
/// again and replaces the PEM the failed attempt wrote (provably this run's), and openssl
/// accepts the chain that results, at every write.
#[test]
fn ca_signer_failed_at_each_output_write_is_retried_and_verifies() {
    let Some(openssl) = oracle("openssl") else {
        return;
    };
    let mut replaced = false;
    let mut n = 1;
    loop {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let first = run(ca_signer(d.path()).env("OFFICIANT_TEST_FAIL_WRITE_AT", n.to_string()));
        let failed = !first.status.success();
        let pem_before = std::fs::read(out.join("tiny-ca.crt.pem")).ok();
        if failed {
            check_stopped_for_space(&first, &out, &format!("write {n}"));
            let again = run(&mut ca_signer(d.path()));
            assert!(again.status.success(), "write {n}: {}", stderr(&again));
        }
        let v = run_ok(
            Command::new(&openssl)
                .arg("verify")
                .arg("-CAfile")
                .arg(out.join("tiny-ca.crt.pem"))
                .arg(out.join("tiny-signer.crt.pem")),
        );
        assert!(v.contains(": OK"), "write {n}: {v}");
        let der = run_ok(
            Command::new(&openssl)
                .args(["x509", "-outform", "DER", "-in"])
                .arg(out.join("tiny-ca.crt.pem"))
                .arg("-out")
                .arg(d.path().join("ca.der")),
        );
        let _ = der;
        assert_eq!(
            std::fs::read(d.path().join("ca.der")).unwrap(),
            std::fs::read(out.join("tiny-ca.crt.der")).unwrap(),
            "write {n}: PEM and DER differ"
        );
        let pem_after = std::fs::read(out.join("tiny-ca.crt.pem")).unwrap();
        if failed && n == 2 {
            // The failed attempt's PEM was replaced by the certificate issued again.
            let before = pem_before.expect("the PEM was written before the DER failed");
            replaced = before != pem_after;
        }
        if !failed {
            break;
        }
        n += 1;
        assert!(n < 40, "the run never fits");
    }
    assert!(
        replaced,
        "no retry replaced the failed attempt's certificate"
    );
}

/// A tmpfs mounted on a directory for the life of the value.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir),
        );
        Tmpfs(dir.to_path_buf())
    }

    fn grow(&self, size: &str) {
        run_ok(
            Command::new("mount")
                .args(["-o", &format!("remount,size={size}")])
                .arg(&self.0),
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A real full disk: the out dir on a tmpfs of 1, 2, 3, … pages until the run fits;
/// each run that stops is rerun after the tmpfs grows, and must complete.
#[test]
fn the_demo_on_a_small_tmpfs_is_retried_at_every_size() {
    if !rustix::process::geteuid().is_root() {
        eprintln!(
            "not root: no tmpfs to mount (the OFFICIANT_TEST_FAIL_WRITE_AT sweep covers the steps)"
        );
        return;
    }
    let page: usize = run_ok(Command::new("getconf").arg("PAGESIZE"))
        .trim()
        .parse()
        .unwrap();
    for pages in 1..64 {
        // Every smaller size stopped the run.
        let stopped = pages - 1;
        let d = Demo::new(true);
        let fs = Tmpfs::mount(&d.out, &format!("{}", pages * page));
        let first = run(&mut d.command());
        if first.status.success() {
            d.check_complete(&format!("{pages} pages"));
            assert!(stopped >= 3, "only {stopped} sizes stopped the run");
            return;
        }
        eprintln!("{pages} pages: {}", stderr(&first).trim_end());
        check_stopped_for_space(&first, &d.out, &format!("{pages} pages"));
        fs.grow("16m");
        let again = run(&mut d.command());
        assert!(
            again.status.success(),
            "{pages} pages: the rerun failed: {}",
            stderr(&again)
        );
        d.check_complete(&format!("{pages} pages, then room"));
    }
    panic!("the demo did not fit in 64 pages");
}
