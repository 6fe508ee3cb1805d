//! No panic reachable from input: every parser that reads a user's file or argument is
//! driven over seeds (the shipped scripts and fixtures, and small valid inputs built
//! here) and deterministic mutations of them (byte flips, truncations, splices from a
//! fixed-seed generator). A panic fails the test with the target's name and the input.
//!
//! The entry points are fuzz/src/entry.rs, the same ones the cargo-fuzz targets call.
//! `OFFICIANT_FUZZ_CORPUS=DIR` also writes the seeds to DIR/TARGET/ (fuzz/seed.sh).
//!
//! This file holds the harness (mutations, the panic catcher, the seed files) and the
//! regressions; the targets are by what they read: `ceremony_files` (scripts, answers,
//! journals, transcripts), `token_side` (PKCS#11 attributes, URIs, the rehearsal store),
//! `keys_and_images` (keys, certificates, signed images), `approvals` (signers,
//! requests, policies).

#[path = "../../../fuzz/src/entry.rs"]
mod entry;

mod approvals;
mod ceremony_files;
mod keys_and_images;
mod token_side;

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::Once;

use officiant::formats::{esp32, stm32_image};
use officiant::keys::HashAlg;

use entry::Target;

thread_local! {
    static PANIC_MSG: RefCell<Option<String>> = const { RefCell::new(None) };
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Panics are caught and reported by the harness; keep the default hook from printing
/// one backtrace per mutation (and remember the message for the report).
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(|c| c.get()) {
                let text = format!("{info}");
                PANIC_MSG.with(|m| *m.borrow_mut() = Some(text));
            } else {
                default(info);
            }
        }));
    });
}

/// A small deterministic generator (64-bit LCG, Knuth's constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 17
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes a mutation writes: boundaries of lengths, tags and text.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff, 0x30, 0x02, 0x03, 0x04, 0x05, 0x06, b'"',
    b'\n', b'=', b'[', b']', b'{', b'}', b'-', b'%', b':', b'?', b';', b'&', b'.', b'0', b'9',
];

/// The mutations of one seed, given the other seeds of its target for splices.
/// `full` covers every byte and every length (small seeds); otherwise `samples` of each.
fn mutations(
    seed: &[u8],
    others: &[Vec<u8>],
    rng: &mut Lcg,
    full: bool,
    samples: usize,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let n = seed.len();
    let positions: Vec<usize> = if full {
        (0..n).collect()
    } else {
        (0..samples).map(|_| rng.below(n)).collect()
    };
    for &i in &positions {
        let mut m = seed.to_vec();
        m[i] ^= 0xff;
        out.push(m);
        let mut m = seed.to_vec();
        m[i] = INTERESTING[rng.below(INTERESTING.len())];
        out.push(m);
    }
    // Truncation at every length (or a sample, and the last few bytes one by one).
    let lengths: Vec<usize> = if full {
        (0..n).collect()
    } else {
        let mut l: Vec<usize> = (0..samples).map(|_| rng.below(n)).collect();
        l.extend(n.saturating_sub(16)..n);
        l
    };
    for l in lengths {
        out.push(seed[..l].to_vec());
    }
    // Splices, repeats, and 32-bit little- and big-endian length fields set to extremes.
    for _ in 0..samples {
        let mut m = seed.to_vec();
        let donor: &[u8] = match others.len() {
            0 => seed,
            k => &others[rng.below(k)],
        };
        match rng.below(5) {
            0 | 1 if !donor.is_empty() => {
                let a = rng.below(donor.len());
                let b = a + rng.below((donor.len() - a).min(64) + 1);
                let at = rng.below(m.len() + 1);
                m.splice(at..at, donor[a..b].iter().copied());
            }
            2 if !m.is_empty() => {
                let a = rng.below(m.len());
                let b = (a + rng.below(32) + 1).min(m.len());
                let at = rng.below(m.len());
                let chunk = m[a..b].to_vec();
                m.splice(at..at, chunk);
            }
            3 if m.len() >= 4 => {
                let at = rng.below(m.len() - 3);
                let v: [u8; 4] = match rng.below(4) {
                    0 => [0xff; 4],
                    1 => [0xff, 0xff, 0xff, 0x7f],
                    2 => [0x7f, 0xff, 0xff, 0xff],
                    _ => [0x00, 0x10, 0x00, 0x00],
                };
                m[at..at + 4].copy_from_slice(&v);
            }
            _ if !m.is_empty() => {
                let a = rng.below(m.len());
                let b = (a + rng.below(32) + 1).min(m.len());
                m.drain(a..b);
            }
            _ => {}
        }
        out.push(m);
    }
    out
}

/// Run `target` on `input`; `Err(report)` if it panicked.
fn run_one(name: &str, target: Target, input: &[u8]) -> Result<(), String> {
    PANIC_MSG.with(|m| *m.borrow_mut() = None);
    CATCHING.with(|c| c.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(|| target(input)));
    CATCHING.with(|c| c.set(false));
    match r {
        Ok(_) => Ok(()),
        Err(_) => {
            let why = PANIC_MSG
                .with(|m| m.borrow_mut().take())
                .unwrap_or_default();
            let mut hex = hex::encode(input);
            if hex.len() > 8192 {
                hex.truncate(8192);
                hex.push('…');
            }
            Err(format!(
                "target {name} panicked on {} bytes: {why}\n  input hex: {hex}",
                input.len()
            ))
        }
    }
}

/// Every seed and mutation through `target`; the list of panics.
fn drive(
    name: &str,
    target: Target,
    seeds: &[Vec<u8>],
    full_up_to: usize,
    samples: usize,
) -> Vec<String> {
    quiet_panics();
    let mut rng = Lcg(0x0ff1_c1a7 ^ name.len() as u64);
    let mut failures = Vec::new();
    for seed in seeds {
        if let Err(f) = run_one(name, target, seed) {
            failures.push(f);
        }
        for m in mutations(seed, seeds, &mut rng, seed.len() <= full_up_to, samples) {
            if let Err(f) = run_one(name, target, &m) {
                failures.push(f);
                if failures.len() > 5 {
                    return failures;
                }
            }
        }
    }
    failures
}

fn check(name: &str, target: Target, seeds: &[Vec<u8>], full_up_to: usize, samples: usize) {
    dump_corpus(name, seeds);
    let failures = drive(name, target, seeds, full_up_to, samples);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The valid seeds must be accepted, so the mutations start from real inputs.
fn assert_valid(name: &str, target: Target, seeds: &[(String, Vec<u8>)]) {
    quiet_panics();
    for (what, s) in seeds {
        match panic::catch_unwind(AssertUnwindSafe(|| target(s))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{name}: valid seed {what} refused: {e}"),
            Err(_) => panic!("{name}: valid seed {what} panicked"),
        }
    }
}

fn dump_corpus(name: &str, seeds: &[Vec<u8>]) {
    let Some(dir) = std::env::var_os("OFFICIANT_FUZZ_CORPUS") else {
        return;
    };
    let d = Path::new(&dir).join(name);
    std::fs::create_dir_all(&d).unwrap();
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(d.join(format!("seed-{i:03}")), s).unwrap();
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Files in `dir` whose names satisfy `pick`, sorted, with their names.
fn files(dir: &str, pick: impl Fn(&str) -> bool) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && pick(&p.file_name().unwrap().to_string_lossy()))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

fn bytes(v: &[(String, Vec<u8>)]) -> Vec<Vec<u8>> {
    v.iter().map(|(_, b)| b.clone()).collect()
}

fn target(name: &str) -> Target {
    entry::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap()
}

// ---- seeds built here -------------------------------------------------------------

/// Inputs the fuzzer found that once panicked (target, hex).
const REGRESSIONS: &[(&str, &str)] = &[
    // A subject whose dotted attribute type has an arc past u32: const-oid's parser
    // overflowed (a panic in debug builds; silently another OID in release).
    (
        "uri",
        "383838383838383838383838383838383838383838383838706b9a00000000000000a06e3d5434",
    ),
];

/// A subject's dotted OID arcs must fit 32 bits; 2^32 + 3 once wrapped around to CN.
#[test]
fn subject_oid_arcs_do_not_wrap() {
    let err = officiant::pki::parse_name("2.5.4.4294967299=Root").unwrap_err();
    assert!(err.to_string().contains("does not fit 32 bits"), "{err}");
    assert!(officiant::pki::parse_name("2.5.4.3=Root,O=A\\,1234567890123=x").is_ok());
    assert!(officiant::pki::parse_name("serialNumber=123456789012345678901234,CN=x").is_ok());
}

#[test]
fn regressions() {
    quiet_panics();
    for (name, hex) in REGRESSIONS {
        let input = hex::decode(hex).unwrap();
        run_one(name, target(name), &input).unwrap_or_else(|f| panic!("{f}"));
    }
}

/// An encrypted PKCS#8 file names its own KDF cost: a fuzzed PBKDF2 iteration count
/// (4 billion: hours) or scrypt N (terabytes) must be refused before the passphrase is
/// tried, in well under a second.
#[test]
fn kdf_cost_is_bounded() {
    use pkcs8::der::{Decode, Encode};
    use pkcs8::pkcs5::{pbes2, EncryptionScheme};
    let pem = std::fs::read_to_string(root().join("tests/fixtures/keys/p384.pk8-aes256-sha1.pem"))
        .unwrap();
    let (_, der) = pkcs8::der::pem::decode_vec(pem.as_bytes()).unwrap();
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der).unwrap();
    let EncryptionScheme::Pbes2(params) = info.encryption_algorithm.clone() else {
        panic!("fixture is not PBES2");
    };
    let pbes2::Kdf::Pbkdf2(k) = params.kdf.clone() else {
        panic!("fixture is not PBKDF2");
    };
    let mut slow = k;
    slow.iteration_count = u32::MAX;
    let scrypt = pbes2::ScryptParams {
        salt: k.salt,
        cost_parameter: 1 << 40,
        block_size: 8,
        parallelization: 1,
        key_length: None,
    };
    for (kdf, want) in [
        (pbes2::Kdf::Pbkdf2(slow), "PBKDF2 iterations"),
        (pbes2::Kdf::Scrypt(scrypt), "scrypt"),
    ] {
        let mut e = info.clone();
        e.encryption_algorithm = EncryptionScheme::Pbes2(pbes2::Parameters {
            kdf,
            encryption: params.encryption,
        });
        let bytes = e.to_der().unwrap();
        let t = std::time::Instant::now();
        let err = entry::private_key(&bytes).unwrap_err();
        assert!(err.contains(want), "{err}");
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }
}

/// The harness itself: a target that panics on one byte pattern must be caught, named,
/// and its input shown — a harness that cannot fail would prove nothing.
#[test]
fn harness_catches_a_panic() {
    fn fragile(data: &[u8]) -> Result<(), String> {
        if data.len() > 3 && data[3] == 0xff {
            let v: Vec<u8> = Vec::new();
            let _ = v[data.len()]; // index out of bounds
        }
        Ok(())
    }
    let failures = drive("fragile", fragile, &[b"abcdef".to_vec()], 100, 10);
    assert!(!failures.is_empty(), "the harness missed a panic");
    assert!(
        failures[0].contains("target fragile panicked"),
        "{}",
        failures[0]
    );
    assert!(
        failures[0].contains("index out of bounds"),
        "{}",
        failures[0]
    );
    assert!(failures[0].contains("input hex: 61"), "{}", failures[0]);
    // And every real target is reachable by name.
    assert_eq!(entry::TARGETS.len(), 20);
    for (n, _) in entry::TARGETS {
        let _ = target(n);
    }
}
