//! Finding the vendor tools that judge the tests, and what happens when one is missing.
//!
//! A missing judge fails the test with one line naming the tool and how to install it:
//! a test never passes because its judge was absent. `bash scripts/test.sh` installs
//! every judge. With `OFFICIANT_ALLOW_SKIP=1` a test whose judge is missing is skipped
//! instead, and the skip is appended to a log (`OFFICIANT_SKIP_LOG`, by default
//! `target/officiant-skips.txt`, one `test<TAB>tool` line each) that scripts/test.sh sums
//! up in one line at the end. Every test that needs a tool asks here: [`oracle`] for a
//! program, [`required_file`] for a file such as a PKCS#11 module.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `1`: skip (and record) a test whose judge is missing, instead of failing it.
pub const ALLOW_SKIP_ENV: &str = "OFFICIANT_ALLOW_SKIP";
/// Where skips are recorded (default `target/officiant-skips.txt`).
pub const SKIP_LOG_ENV: &str = "OFFICIANT_SKIP_LOG";
/// The Python venv holding espsecure, nxpcrypto and nxpimage (scripts/test.sh sets it).
pub const ORACLE_VENV_ENV: &str = "OFFICIANT_ORACLE_VENV";
/// The venv .ci/run and the development machines have, when the variable is not set.
pub const DEFAULT_ORACLE_VENV: &str = "/opt/officiant-venv";

/// The `bin` directory of the oracle venv.
pub fn venv_bin() -> PathBuf {
    std::env::var_os(ORACLE_VENV_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_ORACLE_VENV), PathBuf::from)
        .join("bin")
}

/// Find a tool in the oracle venv or on PATH. None only when it is missing and
/// `OFFICIANT_ALLOW_SKIP=1` (the caller then returns: the test is skipped, and recorded);
/// otherwise a missing tool fails the test here.
#[track_caller]
pub fn oracle(name: &str) -> Option<PathBuf> {
    let venv = venv_bin().join(name);
    if venv.is_file() {
        return Some(venv);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    missing(name)
}

/// A file a test needs (a PKCS#11 module, an OpenSSL engine), under the same rule as
/// [`oracle`].
#[track_caller]
pub fn required_file(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.is_file() {
        Some(p)
    } else {
        missing(path)
    }
}

fn allow_skip() -> bool {
    std::env::var(ALLOW_SKIP_ENV).as_deref() == Ok("1")
}

#[track_caller]
fn missing(what: &str) -> Option<PathBuf> {
    if !allow_skip() {
        panic!("{}", missing_message(what));
    }
    record_skip(what);
    None
}

/// One line: which judge is missing, where it was looked for, how to install it.
pub fn missing_message(what: &str) -> String {
    let looked = if what.contains('/') {
        String::new()
    } else {
        format!(" (looked in {} and on PATH)", venv_bin().display())
    };
    format!(
        "{what} not found{looked}: {}; `bash scripts/test.sh` installs every judge, \
         {ALLOW_SKIP_ENV}=1 skips the tests that need it",
        install_hint(what)
    )
}

/// How to get a judge: the Debian package or the pinned pip requirement that has it.
pub fn install_hint(what: &str) -> String {
    let name = Path::new(what)
        .file_name()
        .map_or(what.into(), |n| n.to_string_lossy());
    let pip = |req: &str| {
        format!(
            "pip install '{req}' into a venv and point {ORACLE_VENV_ENV} at it \
             (default {DEFAULT_ORACLE_VENV})"
        )
    };
    let package = match name.as_ref() {
        "espsecure" => return pip("esptool==5.6.0"),
        "nxpcrypto" | "nxpimage" => return pip("spsdk==3.12.0"),
        "srktool" => "imx-code-signing-tool",
        "cert_create" | "fiptool" => "arm-trusted-firmware-tools",
        "mkimage" => "u-boot-tools",
        "openssl" => "openssl",
        "pkcs11-tool" => "opensc",
        "p11tool" => "gnutls-bin",
        "softhsm2-util" | "libsofthsm2.so" => "softhsm2",
        "pkcs11.so" => "libengine-pkcs11-openssl",
        "tmux" => "tmux",
        _ => return "install it".into(),
    };
    format!("apt-get install {package}")
}

/// The skip log: `OFFICIANT_SKIP_LOG`, or `officiant-skips.txt` in the target directory.
pub fn skip_log() -> PathBuf {
    match std::env::var_os(SKIP_LOG_ENV).filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => {
            let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
            tmp.parent().unwrap_or(tmp).join("officiant-skips.txt")
        }
    }
}

/// Append `test<TAB>tool` to the skip log. libtest names each test's thread after the
/// test; a helper thread a test spawned has no name.
fn record_skip(what: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("(a test's helper thread)");
    let log = skip_log();
    let line = format!("{test}\t{what}\n");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .unwrap_or_else(|e| panic!("cannot record a skip in {}: {e}", log.display()));
    eprintln!(
        "SKIPPED {test}: {what} not found ({ALLOW_SKIP_ENV}=1); recorded in {}",
        log.display()
    );
}
