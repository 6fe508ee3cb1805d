//! No panic reachable from input: every parser that reads a user's file or argument is
//! driven over seeds (the shipped scripts and fixtures, and small valid inputs built
//! here) and deterministic mutations of them (byte flips, truncations, splices from a
//! fixed-seed generator). A panic fails the test with the target's name and the input.
//!
//! The entry points are fuzz/src/entry.rs, the same ones the cargo-fuzz targets call.
//! `OFFICIANT_FUZZ_CORPUS=DIR` also writes the seeds to DIR/TARGET/ (fuzz/seed.sh).

#[path = "../../fuzz/src/entry.rs"]
mod entry;

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

fn signing_key() -> p256::ecdsa::SigningKey {
    use p256::pkcs8::DecodePrivateKey;
    let pem = std::fs::read_to_string(root().join("tests/fixtures/keys/p256.pk8.pem")).unwrap();
    p256::ecdsa::SigningKey::from_pkcs8_pem(&pem).unwrap()
}

/// An ESP32 Secure Boot V2 image (ECDSA P-256) of a 300-byte app: padded image + sector.
fn esp32_image() -> Vec<u8> {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let app: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
    let (digest, padded) = esp32::image_digest(HashAlg::Sha256, &app[..]).unwrap();
    let sig: p256::ecdsa::Signature = signing_key().sign_prehash(&digest).unwrap();
    let block = esp32::signature_block(&entry::fixture_p256(), &digest, &sig.to_bytes()).unwrap();
    let sector = esp32::build_sector(&[block]).unwrap();
    let mut img = app;
    img.resize(padded as usize, 0xff);
    img.extend_from_slice(&sector);
    img
}

/// A signed STM32MP image (header v1 or v2, then a 64-byte payload).
fn stm32_image(layout: stm32_image::Layout) -> Vec<u8> {
    use p256::ecdsa::signature::Signer;
    use std::io::Write;
    let payload: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(29)).collect();
    let mut sum = stm32_image::Checksum::default();
    sum.write_all(&payload).unwrap();
    let f = stm32_image::Fields {
        entry_point: 0x2ffc_2400,
        load_address: 0x2ffc_2400,
        image_version: 1,
        binary_type: 0x10,
    };
    let mut h = stm32_image::Header::new(layout, &f, payload.len() as u32, sum.0);
    h.set_key(&entry::fixture_p256(), None).unwrap();
    let mut signed = h.signed_part().to_vec();
    signed.extend_from_slice(&payload);
    let sig: p256::ecdsa::Signature = signing_key().sign(&signed);
    h.set_signature(&sig.to_bytes().into());
    let mut out = h.bytes().to_vec();
    out.extend_from_slice(&payload);
    out
}

fn raw_signature() -> Vec<u8> {
    use p256::ecdsa::signature::Signer;
    let sig: p256::ecdsa::Signature = signing_key().sign(b"officiant fuzz payload");
    sig.to_der().as_bytes().to_vec()
}

fn transcript_seed() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("transcript.jsonl");
    let mut w = officiant::ceremony::transcript::Writer::open(&p).unwrap();
    w.append(
        "start",
        serde_json::json!({"script": "demo.toml", "sha256": "00ff"}),
    )
    .unwrap();
    w.append(
        "step",
        serde_json::json!({"id": "gen", "sign-off": ["alice"], "objects": [{"label": "k"}]}),
    )
    .unwrap();
    w.close("complete").unwrap();
    std::fs::read(&p).unwrap()
}

const JOURNAL: &str = concat!(
    r#"{"record":"run","script":"demo.toml","script_sha256":"ab01"}"#,
    "\n",
    r#"{"record":"started","step":0,"id":"gen"}"#,
    "\n",
    r#"{"record":"completed","step":0,"id":"gen","result":{"deleted":1,"adopted":true}}"#,
    "\n",
    r#"{"record":"started","step":1,"id":"x"}"#,
    "\n",
    r#"{"record":"failed","step":1,"id":"x"}"#,
    "\n",
    r#"{"record":"complete"}"#,
    "\n",
);

const URIS: &[&str] = &[
    "sim:./rehearsal",
    "pkcs11:token=Officiant%20CA;object=SRK1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin",
    "pkcs11:slot-id=3;manufacturer=Yubico?pin-source=env:PIN",
    "pkcs11:token=T?pin-value=1234",
    "yubihsm:http://127.0.0.1:12345",
    "yubihsm:usb",
    "yubihsm:usb?serial=0012345678",
    "yubihsm:mock",
];

const OTHER_TEXT: &[&str] = &[
    "env:PIN",
    "file:/run/secrets/pin",
    "prompt",
    "CN=Officiant CA,O=Example,C=DE",
    "sign-ecdsa,exportable-under-wrap,get-log-entries",
    "1,2,16",
    "0x1001",
    "esp32-sbv2",
    "rsa-4096",
    "imx8m",
    "hab4-srk",
];

/// One attribute record as `entry::pkcs11_attributes` reads it.
fn attr(kind: cryptoki_sys::CK_ATTRIBUTE_TYPE, value: &[u8]) -> Vec<u8> {
    let mut r = (kind as u32).to_be_bytes().to_vec();
    r.extend_from_slice(&(value.len() as u16).to_be_bytes());
    r.extend_from_slice(value);
    r
}

fn ulong(v: cryptoki_sys::CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// Objects as SoftHSM returns them: an EC and an RSA public key, a certificate, and a
/// private key's flags.
fn pkcs11_seeds() -> Vec<(String, Vec<u8>)> {
    use cryptoki_sys::*;
    use der::Encode;
    let ec =
        officiant::keys::PublicKey::from_bytes(include_bytes!("../fixtures/keys/p256.pub.pem"))
            .unwrap();
    let officiant::keys::PublicKey::Ec { curve, point } = &ec else {
        unreachable!()
    };
    let mut ec_obj = attr(CKA_CLASS, &ulong(CKO_PUBLIC_KEY));
    ec_obj.extend(attr(CKA_KEY_TYPE, &ulong(CKK_EC)));
    ec_obj.extend(attr(CKA_LABEL, b"fw-signing-p256"));
    ec_obj.extend(attr(CKA_ID, &[0x10, 0x01]));
    ec_obj.extend(attr(CKA_EC_PARAMS, &curve.oid().to_der().unwrap()));
    ec_obj.extend(attr(
        CKA_EC_POINT,
        &der::asn1::OctetStringRef::new(point)
            .unwrap()
            .to_der()
            .unwrap(),
    ));
    let rsa =
        officiant::keys::PublicKey::from_bytes(include_bytes!("../fixtures/keys/rsa2048.pub.pem"))
            .unwrap();
    let officiant::keys::PublicKey::Rsa { n, e } = &rsa else {
        unreachable!()
    };
    let mut rsa_obj = attr(CKA_CLASS, &ulong(CKO_PUBLIC_KEY));
    rsa_obj.extend(attr(CKA_LABEL, "SRK1_sha256_2048_65537_v3_ca".as_bytes()));
    rsa_obj.extend(attr(CKA_MODULUS, n));
    rsa_obj.extend(attr(CKA_PUBLIC_EXPONENT, e));
    let cert = std::fs::read(
        root().join("ceremonies/hab4-rehearsal-pki/crts/SRK1_sha256_4096_65537_v3_ca_crt.der"),
    )
    .unwrap();
    let mut cert_obj = attr(CKA_CLASS, &ulong(CKO_CERTIFICATE));
    cert_obj.extend(attr(CKA_LABEL, b"SRK1"));
    cert_obj.extend(attr(CKA_VALUE, &cert));
    let mut private = attr(CKA_CLASS, &ulong(CKO_PRIVATE_KEY));
    for (a, v) in [
        (CKA_SENSITIVE, 1u8),
        (CKA_ALWAYS_SENSITIVE, 1),
        (CKA_EXTRACTABLE, 0),
        (CKA_NEVER_EXTRACTABLE, 1),
        (CKA_LOCAL, 1),
        (CKA_PRIVATE, 1),
    ] {
        private.extend(attr(a, &[v]));
    }
    private.extend(attr(CKA_LABEL, &[0xff, 0xfe, b'k']));
    vec![
        ("EC public key".into(), ec_obj),
        ("RSA public key".into(), rsa_obj),
        ("certificate".into(), cert_obj),
        ("private key flags".into(), private),
    ]
}

// ---- the targets ---------------------------------------------------------------------

#[test]
fn pkcs11_attributes() {
    let seeds = pkcs11_seeds();
    // Each seed decodes to what it describes (the private key has no public half).
    for (what, s) in &seeds {
        let d = officiant::hsm::pkcs11::attrs::decode_raw(s).unwrap();
        assert_eq!(d.public_key.is_ok(), what != "private key flags", "{what}");
    }
    assert_valid("pkcs11_attributes", entry::pkcs11_attributes, &seeds);
    check(
        "pkcs11_attributes",
        entry::pkcs11_attributes,
        &bytes(&seeds),
        400,
        600,
    );
}

#[test]
fn script() {
    let mut seeds = files("ceremonies", |n| {
        n.ends_with(".toml") && !n.contains(".answers.")
    });
    seeds.extend(files("tests/fixtures", |n| n.ends_with(".toml")));
    assert!(seeds.len() >= 9);
    assert_valid("script", entry::script_check, &seeds);
    check("script", entry::script_check, &bytes(&seeds), 0, 400);
}

#[test]
fn answers() {
    let seeds = files("ceremonies", |n| n.ends_with(".answers.toml"));
    assert!(seeds.len() >= 8);
    assert_valid("answers", entry::answers_check, &seeds);
    check("answers", entry::answers_check, &bytes(&seeds), 0, 300);
}

#[test]
fn journal() {
    let seeds = vec![("built journal".to_string(), JOURNAL.as_bytes().to_vec())];
    assert_valid("journal", entry::journal_load, &seeds);
    check("journal", entry::journal_load, &bytes(&seeds), 400, 300);
}

#[test]
fn transcript() {
    let seeds = vec![("built transcript".to_string(), transcript_seed())];
    assert_valid("transcript", entry::transcript_verify, &seeds);
    check(
        "transcript",
        entry::transcript_verify,
        &bytes(&seeds),
        0,
        600,
    );
}

/// A transcript with one signed sign-off that verifies: an Ed25519 key made from a fixed
/// seed signs the message (ssh-key's SSHSIG).
fn signoff_seed() -> Vec<u8> {
    use officiant::approvals::signoff;
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&[7u8; 32]);
    let key = ssh_key::PrivateKey::from(pair);
    let allowed = format!(
        "\"Walt Witness\" {}\n",
        key.public_key().to_openssh().unwrap()
    );
    let script = "ab".repeat(32);
    let msg = signoff::message(&script, "gen", "h0");
    let sig = key
        .sign("officiant-signoff", ssh_key::HashAlg::Sha512, &msg)
        .unwrap();
    let entry = |seq: u64, kind: &str, data: serde_json::Value, hash: &str| {
        serde_json::json!({"seq": seq, "time": "2026-11-22T02:00:00Z", "prev": "", "type": kind, "data": data, "hash": hash})
            .to_string()
    };
    let lines = [
        entry(
            0,
            "open",
            serde_json::json!({"script_sha256": script}),
            "h0",
        ),
        entry(
            1,
            "allowed-signers",
            serde_json::json!({
                "text": allowed,
                "sha256": hex::encode(officiant::output::sha256(allowed.as_bytes())),
                "roles": ["witness"],
            }),
            "h1",
        ),
        entry(
            2,
            "sign-off",
            serde_json::json!({
                "id": "gen",
                "name": "Walt Witness",
                "role": "witness",
                "principal": "Walt Witness",
                "key": officiant::approvals::signers::fingerprint(key.public_key().key_data()),
                "head": "h0",
                "signature": officiant::approvals::agent::armor(&sig).unwrap(),
            }),
            "h2",
        ),
    ];
    format!("{}\n", lines.join("\n")).into_bytes()
}

#[test]
fn signoff_transcript() {
    let seeds = vec![("signed sign-off".to_string(), signoff_seed())];
    assert_valid("signoff_transcript", entry::signoff_transcript, &seeds);
    check(
        "signoff_transcript",
        entry::signoff_transcript,
        &bytes(&seeds),
        0,
        600,
    );
}

#[test]
fn public_key() {
    let mut seeds = files("tests/fixtures/keys", |n| n.ends_with(".pub.pem"));
    seeds.extend(files("ceremonies/hab4-rehearsal-pki/crts", |_| true));
    let spki = entry::fixture_p256().to_spki_der();
    seeds.push(("p256 SPKI DER".into(), spki));
    assert_valid("public_key", entry::public_key, &seeds);
    check("public_key", entry::public_key, &bytes(&seeds), 300, 200);
}

#[test]
fn private_key() {
    let supported = [
        "p256.pk8.der",
        "p256.pk8.pem",
        "p256.sec1.der",
        "p256.sec1.pem",
        "p256.sec1-params.pem",
        "p384.pk8-aes256-sha1.pem",
        "p521.pk8-des3.pem",
        "rsa2048.pk8-aes256.der",
        "rsa2048.pkcs1.pem",
    ];
    let seeds = files("tests/fixtures/keys", |n| supported.contains(&n));
    assert_eq!(seeds.len(), supported.len());
    assert_valid("private_key", entry::private_key, &seeds);
    // Refused with a clear error, still mutated: PBES1, traditional encrypted PEM.
    let mut all = bytes(&seeds);
    all.extend(bytes(&files("tests/fixtures/keys", |n| {
        n == "rsa2048.pbes1.pem" || n == "rsa2048.trad-enc.pem" || n == "k256.pk8.pem"
    })));
    check("private_key", entry::private_key, &all, 200, 60);
}

#[test]
fn certificate() {
    let seeds = files("ceremonies/hab4-rehearsal-pki/crts", |_| true);
    assert_eq!(seeds.len(), 4);
    assert_valid("certificate", entry::certificate, &seeds);
    check("certificate", entry::certificate, &bytes(&seeds), 0, 150);
}

#[test]
fn esp32() {
    let seeds = vec![("signed esp32 image".to_string(), esp32_image())];
    assert_valid("esp32", entry::esp32_verify, &seeds);
    let failures = drive("esp32", entry::esp32_verify, &bytes(&seeds), 0, 400);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every byte of the block header and the key and signature fields of block 1.
    let img = esp32_image();
    let at = img.len() - esp32::SECTOR_LEN;
    let mut m = Vec::new();
    for i in at..at + esp32::BLOCK_LEN {
        let mut x = img.clone();
        x[i] ^= 0xff;
        m.push(x);
    }
    dump_corpus("esp32", &bytes(&seeds));
    for x in m {
        run_one("esp32", entry::esp32_verify, &x).unwrap_or_else(|f| panic!("{f}"));
    }
}

#[test]
fn stm32() {
    let seeds = vec![
        (
            "signed stm32mp15 image".to_string(),
            stm32_image(stm32_image::Layout::V1),
        ),
        (
            "signed stm32mp13 image".to_string(),
            stm32_image(stm32_image::Layout::V2),
        ),
    ];
    assert_valid("stm32", entry::stm32_verify, &seeds);
    check("stm32", entry::stm32_verify, &bytes(&seeds), 1024, 300);
}

#[test]
fn raw_signature_target() {
    let seeds = vec![("p256 DER signature".to_string(), raw_signature())];
    assert_valid("raw_signature", entry::raw_signature, &seeds);
    let mut all = bytes(&seeds);
    all.push(vec![0x5a; 256]); // an RSA-2048-sized blob
    check("raw_signature", entry::raw_signature, &all, 300, 300);
}

#[test]
fn uri() {
    let seeds: Vec<(String, Vec<u8>)> = URIS
        .iter()
        .map(|u| (u.to_string(), u.as_bytes().to_vec()))
        .collect();
    assert_valid("uri", entry::uri, &seeds);
    let mut all = bytes(&seeds);
    all.extend(OTHER_TEXT.iter().map(|t| t.as_bytes().to_vec()));
    check("uri", entry::uri, &all, 200, 200);
}

/// A rehearsal store with an initialized token and one P-256 and one RSA-2048 key.
fn sim_store_seed() -> Vec<u8> {
    use officiant::hsm::UserType;
    use officiant::keys::KeyAlgorithm;
    use officiant::secret::Secret;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("token");
    let mut t = officiant::hsm::sim::open(&d).unwrap();
    let so = Secret::new(b"fuzz-so-pin".to_vec());
    let pin = Secret::new(entry::SIM_PIN.as_bytes().to_vec());
    t.init_token("fuzz", &so, &pin).unwrap();
    t.login(UserType::User, &pin).unwrap();
    t.generate_key(KeyAlgorithm::EcP256, "ec", &[1]).unwrap();
    let rsa = std::fs::read(root().join("tests/fixtures/keys/rsa2048.pkcs1.pem")).unwrap();
    let rsa = officiant::keys::PrivateKey::from_bytes(&rsa, None).unwrap();
    t.import_key(&rsa, "rsa", &[2]).unwrap();
    drop(t);
    std::fs::read(d.join("store.json")).unwrap()
}

#[test]
fn sim_store() {
    let seeds = vec![("rehearsal store".to_string(), sim_store_seed())];
    assert_valid("sim_store", entry::sim_store, &seeds);
    check("sim_store", entry::sim_store, &bytes(&seeds), 0, 80);
}

const SIGNERS_SEED: &str = "# approvers\n\
alice,alice2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIByI32DqnUeMKYiDlK8Mj2aXqxU6GDmay94cUM6NDsX1 c\n\
\"bob b\" namespaces=\"officiant-*\",valid-after=\"20260101Z\",valid-before=\"202701011230Z\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICjr/3smfUWry++hW2tKq9Z/LL8HMviek5LiAwceFdHS\n\
*@example.com,!m@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBJM7rZ9x6P8Vom02M358F3o7X5KMRDTfYaCGB7gjfCS\n";

#[test]
fn allowed_signers() {
    let seeds = vec![(
        "built signers".to_string(),
        SIGNERS_SEED.as_bytes().to_vec(),
    )];
    assert_valid("allowed_signers", entry::allowed_signers, &seeds);
    check(
        "allowed_signers",
        entry::allowed_signers,
        &bytes(&seeds),
        0,
        1500,
    );
}

#[test]
fn approval_request() {
    use officiant::approvals::request::{KeyUse, Request};
    let r = Request::new(
        "0123456789abcdef",
        "ci",
        &[9u8; 32],
        vec![
            KeyUse {
                label: "fw".into(),
                max_uses: 3,
            },
            KeyUse {
                label: "fw2".into(),
                max_uses: 1,
            },
        ],
        1_800_000_000,
        600,
        "release 1.2.3 \u{2014} \"main\"",
    )
    .unwrap();
    let bytes_r = r.to_canonical();
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&[3u8; 32]);
    let key = ssh_key::PrivateKey::from(pair);
    let sig = ssh_key::SshSig::sign(
        &key,
        "officiant-approval",
        ssh_key::HashAlg::Sha512,
        &bytes_r,
    )
    .unwrap()
    .to_pem(ssh_key::LineEnding::LF)
    .unwrap();
    let seeds = vec![
        ("request".to_string(), bytes_r),
        ("approval".to_string(), sig.into_bytes()),
    ];
    assert_valid("approval_request", entry::approval_request, &seeds);
    check(
        "approval_request",
        entry::approval_request,
        &bytes(&seeds),
        0,
        1500,
    );
}

#[test]
fn approval_policy() {
    let toml = "allowed-signers = \"SIGNERS\"\n\n[keys.fw]\napprovers = [\"alice\", \"bob\"]\nquorum = 2\nmax-uses = 3\nnot-before = 2026-01-01T00:00:00Z\nnot-after = \"2027-01-01T00:00:00+01:00\"\n\n[keys.\"free key\"]\nquorum = 0\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("SIGNERS"),
        SIGNERS_SEED.replace("\"bob b\"", "bob"),
    )
    .unwrap();
    let p = officiant::approvals::Policy::parse("seed.toml", dir.path(), toml).unwrap();
    let seeds = vec![
        ("policy file".to_string(), toml.as_bytes().to_vec()),
        ("stored policy".to_string(), p.to_stored()),
    ];
    assert_valid("approval_policy", entry::approval_policy, &seeds);
    check(
        "approval_policy",
        entry::approval_policy,
        &bytes(&seeds),
        0,
        400,
    );
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/imx").join(name)).unwrap()
}

/// The CSF region of the spsdk-signed fixture, without its zero padding.
fn hab4_csf_region(image: &[u8]) -> Vec<u8> {
    let at = (u32::from_le_bytes(image[24..28].try_into().unwrap())
        - u32::from_le_bytes(image[20..24].try_into().unwrap())) as usize;
    let region = &image[at..];
    let end = region.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    region[..end].to_vec()
}

#[test]
fn imx_ivt() {
    let seeds = vec![(
        "spsdk-signed HAB4 image".to_string(),
        fixture("hab4-signed.bin"),
    )];
    assert_valid("imx_ivt", entry::imx_ivt, &seeds);
    let mut all = bytes(&seeds);
    // Refused, still mutated: fast authentication under another table, unsigned, and
    // U-Boot-style (IVT at 0x400).
    all.push(fixture("hab4-fast.bin"));
    all.push(std::fs::read(root().join("assets/imx/rt1060-hab4-unsigned.bin")).unwrap());
    let mut shifted = vec![0u8; 0x400];
    shifted.extend_from_slice(&fixture("hab4-signed.bin"));
    all.push(shifted);
    check("imx_ivt", entry::imx_ivt, &all, 0, 150);
    // Every byte of the IVT and boot data, and of the CSF's header and commands.
    let img = fixture("hab4-signed.bin");
    let csf_at = img.len() - 0x2000;
    for i in (0..0x2c).chain(csf_at..csf_at + 0x50) {
        for v in [img[i] ^ 0xff, 0x00, 0x80, 0xff] {
            let mut x = img.clone();
            x[i] = v;
            run_one("imx_ivt", entry::imx_ivt, &x).unwrap_or_else(|f| panic!("{f}"));
        }
    }
}

#[test]
fn imx_csf() {
    let signed = hab4_csf_region(&fixture("hab4-signed.bin"));
    let seeds = vec![("spsdk-signed CSF".to_string(), signed)];
    assert_valid("imx_csf", entry::imx_csf, &seeds);
    let mut all = bytes(&seeds);
    all.push(hab4_csf_region(&fixture("hab4-fast.bin")));
    check("imx_csf", entry::imx_csf, &all, 2048, 200);
}

#[test]
fn ahab_container() {
    let signed = fixture("ahab-signed.bin");
    let seeds = vec![("spsdk-signed AHAB container".to_string(), signed.clone())];
    assert_valid("ahab_container", entry::ahab_container, &seeds);
    // The container alone (header, image array, signature block), for every-byte
    // mutations; and an unsigned one.
    let len = usize::from(u16::from_le_bytes([signed[1], signed[2]]));
    let mut all = bytes(&seeds);
    all.push(signed[..len].to_vec());
    let mut unsigned = signed[..0x110].to_vec();
    unsigned[1..3].copy_from_slice(&0x120u16.to_le_bytes());
    unsigned[4] = 0;
    unsigned.extend_from_slice(&[0x00, 0x10, 0x00, 0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    all.push(unsigned);
    check("ahab_container", entry::ahab_container, &all, 1024, 200);
}

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
