//! The approval stage's files: allowed signers, signing requests, policies.

use super::*;

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
