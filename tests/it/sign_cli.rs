//! `officiant sign` / `officiant verify` end to end on the rehearsal token (sim), with
//! openssl as the judge of what was written.

use std::path::{Path, PathBuf};
use std::process::Output;

use officiant::hsm::{self, BackendUri, UserType};
use officiant::keys::PrivateKey;
use officiant::secret::Secret;

use crate::support::sign::{flipped, openssl_key, openssl_ok, KeyFiles};
use crate::support::{self, officiant};

const PIN: &str = "canary-pin-7391";

/// A sim token in `dir/token` holding the openssl-made keys under the given labels.
fn sim_with(dir: &Path, keys: &[(&str, &KeyFiles)]) -> String {
    let tdir = dir.join("token");
    std::fs::create_dir_all(&tdir).unwrap();
    let mut t = hsm::open(&BackendUri::Sim(tdir.clone()), None).unwrap();
    let pin = Secret::from_string(PIN.into());
    t.init_token(
        "sign-test",
        &Secret::from_string("so-pin-1234".into()),
        &pin,
    )
    .unwrap();
    t.login(UserType::User, &pin).unwrap();
    for (i, (label, files)) in keys.iter().enumerate() {
        let k = PrivateKey::from_bytes(&std::fs::read(&files.private).unwrap(), None).unwrap();
        t.import_key(
            &k,
            &crate::support::label(label),
            &crate::support::object_id(&[i as u8 + 1]),
        )
        .unwrap();
    }
    format!("sim:{}", tdir.display())
}

/// The transcript the tests' sign commands append to: beside the sim's directory.
fn transcript_of(backend: &str) -> PathBuf {
    Path::new(backend.trim_start_matches("sim:"))
        .parent()
        .unwrap()
        .join("transcript.jsonl")
}

fn sign_cmd(backend: &str) -> std::process::Command {
    let mut c = officiant();
    c.arg("sign")
        .arg("--transcript")
        .arg(transcript_of(backend))
        .arg("--backend")
        .arg(backend)
        .arg("--pin-source")
        .arg("env:OFFICIANT_SIGN_TEST_PIN")
        .env("OFFICIANT_SIGN_TEST_PIN", PIN);
    c
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn no_pin(o: &Output) {
    let (out, err) = text(o);
    assert!(
        !out.contains(PIN) && !err.contains(PIN),
        "PIN leaked:\n{out}\n{err}"
    );
}

fn payload(dir: &Path, name: &str, len: usize) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, (0..len).map(|i| (i % 253) as u8).collect::<Vec<_>>()).unwrap();
    p
}

#[test]
fn raw_sign_then_verify_and_tamper() {
    if support::oracle("openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = openssl_key(d, "fw", "ec-p256");
    let backend = sim_with(d, &[("fw-key", &files)]);
    let input = payload(d, "fw.bin", 300_000);
    let sig = d.join("fw.sig");
    let o = support::run(
        sign_cmd(&backend)
            .args(["--key", "fw-key", "--format", "raw"])
            .arg(&input)
            .arg("-o")
            .arg(&sig),
    );
    no_pin(&o);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    let sha = hex::encode(officiant::output::sha256_file(&input).unwrap());
    assert!(out.contains(&sha), "{out}");
    assert!(openssl_ok(&[
        "dgst",
        "-sha256",
        "-verify",
        files.public.to_str().unwrap(),
        "-signature",
        sig.to_str().unwrap(),
        input.to_str().unwrap()
    ]));

    let verify = |inp: &Path, s: &Path| {
        support::run(
            officiant()
                .args(["verify", "--format", "raw", "--pubkey"])
                .arg(&files.public)
                .arg(inp)
                .arg(s),
        )
    };
    assert!(verify(&input, &sig).status.success());
    let bad = flipped(&input, 77, "fw.bad");
    let o = verify(&bad, &sig);
    assert!(!o.status.success());
    let (_, err) = text(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("payload or signature altered"), "{err}");

    // A second sign to the same output is refused and leaves the first intact.
    let before = std::fs::read(&sig).unwrap();
    let o = support::run(
        sign_cmd(&backend)
            .args(["--key", "fw-key", "--format", "raw"])
            .arg(&input)
            .arg("-o")
            .arg(&sig),
    );
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("refusing to overwrite"),
        "{:?}",
        text(&o)
    );
    assert_eq!(std::fs::read(&sig).unwrap(), before);
}

#[test]
fn batch_one_login_json_records() {
    if support::oracle("openssl").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = openssl_key(d, "rsa", "rsa-2048");
    let backend = sim_with(d, &[("rsa-key", &files)]);
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    let inputs: Vec<PathBuf> = (0..4)
        .map(|i| payload(d, &format!("p{i}.bin"), 5000 + i))
        .collect();
    let o = support::run(
        sign_cmd(&backend)
            .args([
                "--key",
                "rsa-key",
                "--format",
                "raw",
                "--padding",
                "pkcs1",
                "--json",
            ])
            .args(&inputs)
            .arg("--out-dir")
            .arg(&out),
    );
    no_pin(&o);
    assert!(o.status.success(), "{:?}", text(&o));
    let (stdout, _) = text(&o);
    let recs: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 4);
    // Each output is in the hash-chained transcript with both hashes, which verifies,
    // and the PIN is nowhere in it.
    let tpath = transcript_of(&backend);
    let transcript = std::fs::read_to_string(&tpath).unwrap();
    assert!(!transcript.contains(PIN));
    let entries: Vec<serde_json::Value> = transcript
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let signed: Vec<_> = entries.iter().filter(|e| e["type"] == "signed").collect();
    assert_eq!(signed.len(), 4);
    for (e, r) in signed.iter().zip(&recs) {
        assert_eq!(e["data"]["input_sha256"], r["input_sha256"]);
        assert_eq!(e["data"]["output_sha256"], r["output_sha256"]);
    }
    support::run_ok(officiant().args(["transcript", "verify"]).arg(&tpath));
    for (r, input) in recs.iter().zip(&inputs) {
        let sig = PathBuf::from(r["output"].as_str().unwrap());
        assert_eq!(
            r["input_sha256"].as_str().unwrap(),
            hex::encode(officiant::output::sha256_file(input).unwrap())
        );
        assert_eq!(
            r["output_sha256"].as_str().unwrap(),
            hex::encode(officiant::output::sha256_file(&sig).unwrap())
        );
        assert!(openssl_ok(&[
            "dgst",
            "-sha256",
            "-verify",
            files.public.to_str().unwrap(),
            "-signature",
            sig.to_str().unwrap(),
            input.to_str().unwrap()
        ]));
    }
}

#[test]
fn wrong_pin_and_bad_arguments_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = openssl_key(d, "fw", "ec-p256");
    let backend = sim_with(d, &[("fw-key", &files)]);
    let input = payload(d, "fw.bin", 10);
    let sig = d.join("fw.sig");
    let o = support::run(
        officiant()
            .args([
                "sign",
                "--backend",
                &backend,
                "--pin-source",
                "env:WRONG_PIN_X",
            ])
            .env("WRONG_PIN_X", "not-the-pin")
            .args(["--key", "fw-key", "--format", "raw"])
            .arg(&input)
            .arg("-o")
            .arg(&sig),
    );
    assert!(!o.status.success());
    assert!(text(&o).1.contains("wrong user PIN"), "{:?}", text(&o));
    assert!(!sig.exists());

    let o = support::run(
        sign_cmd(&backend)
            .args(["--key", "fw-key", "--format", "raw"])
            .arg(&input)
            .arg(&input)
            .arg("-o")
            .arg(&sig),
    );
    assert!(!o.status.success());
    assert!(text(&o).1.contains("-o takes one input"), "{:?}", text(&o));
    let o = support::run(
        sign_cmd(&backend)
            .args(["--key", "fw-key", "--format", "tfa"])
            .arg(&input)
            .arg("-o")
            .arg(&sig),
    );
    assert!(text(&o).1.contains("--format \"tfa\""), "{:?}", text(&o));
    let o = support::run(
        sign_cmd(&backend)
            .args(["--key", "no-such-key", "--format", "raw"])
            .arg(&input)
            .arg("-o")
            .arg(&sig),
    );
    assert!(!o.status.success());
    assert!(text(&o).1.contains("no-such-key"), "{:?}", text(&o));
    assert!(!sig.exists());
}

#[test]
fn stm32mp15_on_the_sim_and_verify_names_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = openssl_key(d, "stm", "ec-p256");
    let backend = sim_with(d, &[("stm-key", &files)]);
    let input = payload(d, "bl2.bin", 4000);
    let out = d.join("bl2.stm32");
    let o = support::run(
        sign_cmd(&backend)
            .args(["--key", "stm-key", "--format", "stm32mp15"])
            .args([
                "--load-address",
                "0x2FFC2400",
                "--entry-point",
                "0x2FFC2400",
                "--version",
                "1",
            ])
            .arg(&input)
            .arg("-o")
            .arg(&out),
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let verify = |p: &Path| {
        support::run(
            officiant()
                .args(["verify", "--format", "stm32mp15", "--pubkey"])
                .arg(&files.public)
                .arg(p),
        )
    };
    let o = verify(&out);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = verify(&flipped(&out, 300, "p.stm32"));
    assert!(
        text(&o).1.contains("stm32mp15 header: checksum mismatch"),
        "{:?}",
        text(&o)
    );
    let o = verify(&flipped(&out, 96, "v.stm32"));
    assert!(!o.status.success());
    assert!(text(&o).1.contains("header field"), "{:?}", text(&o));
}
