//! Not a test: scripts/bench.sh runs this (`--ignored`) to put an openssl-made key into
//! a rehearsal token, so Officiant and openssl/espsecure sign with the same key. The
//! sim cannot export private keys, so the key goes in, never out.
//!
//! Environment: BENCH_SIM_DIR, BENCH_PIN_FILE (user PIN, first line), and
//! BENCH_KEYS = "label=path.pem,label2=path2.pem".

use officiant::hsm::{self, BackendUri, UserType};
use officiant::keys::PrivateKey;
use officiant::secret::{Secret, SecretSource};

#[test]
#[ignore = "benchmark setup, run by scripts/bench.sh"]
fn bench_setup_import_keys_into_sim() {
    let dir = std::env::var("BENCH_SIM_DIR").expect("BENCH_SIM_DIR");
    let pin_file = std::env::var("BENCH_PIN_FILE").expect("BENCH_PIN_FILE");
    let keys = std::env::var("BENCH_KEYS").expect("BENCH_KEYS");
    let pin = SecretSource::File(pin_file.into())
        .read("bench PIN")
        .unwrap();
    let mut t = hsm::open(&BackendUri::Sim(dir.into()), None).unwrap();
    t.init_token("bench", &Secret::from_string("bench-so-pin".into()), &pin)
        .unwrap();
    t.login(UserType::User, &pin).unwrap();
    for (i, spec) in keys.split(',').enumerate() {
        let (label, path) = spec.split_once('=').expect("label=path");
        let k = PrivateKey::from_bytes(&std::fs::read(path).unwrap(), None).unwrap();
        t.import_key(
            &k,
            &crate::support::label(label),
            &crate::support::object_id(&[i as u8 + 1]),
        )
        .unwrap();
    }
}

/// Not a test either: scripts/bench.sh row (e) writes a long transcript with this and
/// times `officiant transcript verify` over it. BENCH_TRANSCRIPT (the file to write) and
/// BENCH_TRANSCRIPT_N (entries, 100000). Sessions of 1000 entries, each step recording a
/// key's fingerprint and an output file as a ceremony does; prints the head.
#[test]
#[ignore = "benchmark setup, run by scripts/bench.sh"]
fn bench_setup_long_transcript() {
    use officiant::ceremony::transcript::Writer;
    use serde_json::json;
    let path = std::env::var("BENCH_TRANSCRIPT").expect("BENCH_TRANSCRIPT");
    let n: u64 = std::env::var("BENCH_TRANSCRIPT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut w = Writer::open(std::path::Path::new(&path)).unwrap();
    let mut written = 0u64;
    let mut session = 0u64;
    while written < n {
        session += 1;
        let size = (n - written).min(1000);
        let mut batch: Vec<(&str, serde_json::Value)> = Vec::with_capacity(size as usize);
        batch.push((
            "open",
            json!({"script": "bench.toml", "script_sha256": "ab".repeat(32), "backend": "sim:bench",
                   "officiant": env!("CARGO_PKG_VERSION"), "resumed": session > 1}),
        ));
        let steps = (size - 2) / 2;
        for i in 0..steps {
            let step = session * 1000 + i;
            if i % 2 == 0 {
                batch.push((
                    "step-start",
                    json!({"step": step, "id": format!("s{step}"), "kind": "sign", "title": "Sign one payload", "reconcile": false}),
                ));
            } else {
                let sha = hex::encode(officiant::output::sha256(&step.to_be_bytes()));
                batch.push((
                    "step-done",
                    json!({"step": step, "id": format!("s{step}"), "kind": "sign", "result": {
                        "objects": [{"label": "fw-signing-p256", "id": "01", "class": "key pair", "key_type": "EC P-256",
                                     "public_key_sha256": sha}],
                        "outputs": [{"path": format!("p{step}.bin.sig"), "sha256": sha}]}}),
                ));
            }
        }
        while (batch.len() as u64) < size - 1 {
            batch.push(("note", json!({"text": "padding to the session size"})));
        }
        written += batch.len() as u64;
        w.append_all(batch).unwrap();
        let entries = written + 1;
        assert!(entries <= n);
        w.close("complete").unwrap();
        written += 1;
    }
    println!("{}", w.head());
}
