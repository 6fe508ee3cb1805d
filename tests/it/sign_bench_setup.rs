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
        t.import_key(&k, label, &[i as u8 + 1]).unwrap();
    }
}
