//! Not a test: what approvals add to a signing session, split into the check (read the
//! request and approvals, read the policy from the token, verify the SSHSIGs, decide)
//! and the token's use-counter write. Prints medians; docs/PERFORMANCE.md records them.
//!
//!     cargo test --release --test approvals_overhead -- --ignored --nocapture

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{oracle, run_ok, SoftHsm};
use officiant::approvals::request::KeyUse;
use officiant::approvals::{store, Policy, Presented, Request};
use officiant::hsm::{self, Token, UserType};
use officiant::keys::{HashAlg, KeyAlgorithm, SignScheme};
use officiant::secret::Secret;
use officiant::signing::{SigningKey, TokenSigner};

const ROUNDS: usize = 100;

fn secret(s: &str) -> Secret {
    Secret::from_string(s.to_string())
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn measure(name: &str, t: &mut dyn Token, dir: &Path, keygen: &Path) {
    let scheme = SignScheme::Ecdsa(HashAlg::Sha256);
    // Without a policy: open the key, sign.
    let mut plain = Vec::new();
    for _ in 0..ROUNDS {
        let t0 = Instant::now();
        let mut k = SigningKey::new(TokenSigner::open(t, "fw", None).unwrap());
        k.sign_digest(scheme, &[7u8; 32]).unwrap();
        plain.push(t0.elapsed());
    }
    // The policy: quorum 2 of alice, bob.
    let mut lines = String::new();
    for who in ["alice", "bob"] {
        let p = dir.join(who);
        if !p.exists() {
            run_ok(
                Command::new(keygen)
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(&p),
            );
        }
        let k = std::fs::read_to_string(dir.join(format!("{who}.pub"))).unwrap();
        lines.push_str(&format!("{who} {}\n", k.trim()));
    }
    std::fs::write(dir.join("signers"), lines).unwrap();
    let policy = Policy::parse(
        "p",
        dir,
        "allowed-signers = \"signers\"\n[keys.fw]\napprovers = [\"alice\", \"bob\"]\nquorum = 2\n",
    )
    .unwrap();
    t.login(UserType::So, &secret("so-pin-0000")).unwrap();
    let stored = store::write_policy(t, &policy).unwrap();
    t.login(UserType::User, &secret("user-pin-1234")).unwrap();
    let info = t.info().unwrap();
    let req = Request::new(
        &info.serial,
        &info.label,
        &stored.sha256,
        vec![KeyUse {
            label: "fw".into(),
            max_uses: 1_000_000,
        }],
        officiant::approvals::time::now(),
        3600,
        "overhead",
    )
    .unwrap();
    let rp = dir.join(format!("{name}.req.json"));
    std::fs::write(&rp, req.to_canonical()).unwrap();
    let mut sigs = Vec::new();
    for who in ["alice", "bob"] {
        run_ok(
            Command::new(keygen)
                .args(["-Y", "sign", "-f"])
                .arg(dir.join(who))
                .args(["-n", "officiant-approval"])
                .arg(&rp),
        );
        let to = dir.join(format!("{name}.{who}.sig"));
        std::fs::rename(dir.join(format!("{name}.req.json.sig")), &to).unwrap();
        sigs.push(to);
    }
    let (mut check, mut count, mut approved) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let t0 = Instant::now();
        let p = Presented::load(&rp, &sigs).unwrap();
        let mut k = SigningKey::new(TokenSigner::open(t, "fw", Some(&p)).unwrap());
        let t1 = Instant::now();
        k.reserve(1).unwrap();
        let t2 = Instant::now();
        k.sign_digest(scheme, &[7u8; 32]).unwrap();
        let t3 = Instant::now();
        check.push(t1 - t0);
        count.push(t2 - t1);
        approved.push(t3 - t0);
    }
    println!(
        "{name}: open+sign without a policy {:.2} ms; with an approved request {:.2} ms = check {:.2} ms + use-counter write {:.2} ms + sign (median of {ROUNDS})",
        median(plain),
        median(approved),
        median(check),
        median(count)
    );
}

#[test]
#[ignore = "measurement, run by hand (see the module doc)"]
fn approvals_overhead() {
    let Some(keygen) = oracle("ssh-keygen") else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let mut t = hsm::sim::open(&d.path().join("tok")).unwrap();
    t.init_token("o", &secret("so-pin-0000"), &secret("user-pin-1234"))
        .unwrap();
    t.login(UserType::User, &secret("user-pin-1234")).unwrap();
    t.generate_key(
        KeyAlgorithm::EcP256,
        &crate::support::label("fw"),
        &crate::support::object_id(&[1]),
    )
    .unwrap();
    measure("sim", t.as_mut(), d.path(), &keygen);
    drop(t);

    let Some(soft) = SoftHsm::new() else { return };
    std::env::set_var("SOFTHSM2_CONF", &soft.conf);
    let rest = soft.uri()["pkcs11:".len()..].to_string();
    let mut t = hsm::pkcs11::open(&rest, Some("o")).unwrap();
    t.init_token("o", &secret("so-pin-0000"), &secret("user-pin-1234"))
        .unwrap();
    t.login(UserType::User, &secret("user-pin-1234")).unwrap();
    t.generate_key(
        KeyAlgorithm::EcP256,
        &crate::support::label("fw"),
        &crate::support::object_id(&[1]),
    )
    .unwrap();
    measure("softhsm", t.as_mut(), d.path(), &keygen);
}
