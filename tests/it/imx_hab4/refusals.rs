//! What is refused: a tampered byte, every bad input (one line, nothing written), an
//! unsigned or truncated image, a key the approval policy stops; and the PIN never
//! appears anywhere.

use super::judges::*;
use super::*;
#[test]
fn tampering_any_covered_byte_fails() {
    let p = pki();
    let tok = p.token();
    let out = tok.path().join("signed.bin");
    sign_ok(tok.path(), "p256", &sample(), &out, &[]);
    let good = std::fs::read(&out).unwrap();
    let (csf_at, _) = signatures(&good);
    let csf = &good[csf_at..];
    let head = be16(csf, 1);
    // Where each piece sits, from the commands.
    let loc = |cmd: usize| be32(csf, 4 + 12 * cmd + 8) as usize;
    let (srk, csfk, csf_sig, img_cert, img_sig) = (loc(0), loc(1), loc(2), loc(3), loc(4));
    // Near the end of a signature blob: inside the signature value.
    let in_sig = |at: usize| at + be16(csf, at + 1) - 5;
    let cases: Vec<(&str, usize, &str)> = vec![
        ("IVT entry point", 4, "Authenticate Data"),
        ("boot data plugin flag", 0x28, "Authenticate Data"),
        ("application vector table", 0x1000, "Authenticate Data"),
        ("application middle", 0x1800, "Authenticate Data"),
        ("last covered byte", csf_at - 1, "Authenticate Data"),
        (
            "a block length in the CSF",
            csf_at + head - 1,
            "Authenticate CSF",
        ),
        ("SRK table", csf_at + srk + 20, "Install SRK"),
        ("CSF certificate", csf_at + csfk + 40, "Install CSFK"),
        (
            "CSF signature",
            csf_at + in_sig(csf_sig),
            "Authenticate CSF",
        ),
        ("IMG certificate", csf_at + img_cert + 40, "Install Key"),
        (
            "image signature",
            csf_at + in_sig(img_sig),
            "Authenticate Data",
        ),
    ];
    for (what, at, names) in cases {
        let mut b = good.clone();
        b[at] ^= 0x01;
        let path = tok.path().join("tampered.bin");
        std::fs::write(&path, &b).unwrap();
        let o = verify(&path, &p.table("p256"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success(),
            "{what} (offset {at:#x}) altered, still verifies"
        );
        assert!(err.contains(names), "{what}: {err:?} should name {names}");
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    }
    verify_ok(&out, &p.table("p256"));
}

/// A refused signing: non-zero exit, one line on stderr containing `want`, no output.
fn refused(tok: &Path, set: &str, input: &Path, flags: &[&str], want: &str) {
    let out = tok.join("refused.bin");
    let o = sign(tok, set, input, &out, flags);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{want}: signed");
    assert_eq!(err.trim_end().lines().count(), 1, "{want}: {err}");
    assert!(err.contains(want), "{want:?} not in {err:?}");
    assert!(!out.exists(), "{want}: wrote output");
    let stray: Vec<_> = std::fs::read_dir(tok)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("refused"))
        .collect();
    assert!(stray.is_empty(), "{want}: left {stray:?}");
}

#[test]
fn bad_inputs_are_one_line_and_write_nothing() {
    let p = pki();
    let tok = p.token();
    let d = tok.path();
    let good = std::fs::read(sample()).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = d.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let no_ivt = write("no-ivt.bin", &vec![0x5A; 0x3000]);
    refused(d, "rsa", &no_ivt, &[], "no IVT");
    let mut b = good.clone();
    b[20..24].copy_from_slice(&0x7000_0000u32.to_le_bytes()); // self pointer
    refused(d, "rsa", &write("self.bin", &b), &[], "boot data pointer");
    let mut b = good.clone();
    b[16..20].copy_from_slice(&0x6010_0000u32.to_le_bytes()); // boot data pointer
    refused(
        d,
        "rsa",
        &write("bd.bin", &b),
        &[],
        "boot data pointer 0x60100000 lies outside the file",
    );
    let mut b = good.clone();
    b[0x24..0x28].copy_from_slice(&0x800u32.to_le_bytes()); // image too short for the IVT
    refused(d, "rsa", &write("short.bin", &b), &[], "self pointer");
    let mut b = good.clone();
    b[24..28].copy_from_slice(&0x6000_2400u32.to_le_bytes()); // CSF pointer into the app
    refused(
        d,
        "rsa",
        &write("csf-app.bin", &b),
        &[],
        "points into the application",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--srk-index", "4"],
        "--srk-index 4: the SRK table holds 4 SRKs",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--csf-cert", p.cert("rsa", "CSF2").to_str().unwrap()],
        "--csf-cert (CN=rsa-CSF2) is not issued by SRK 1",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--img-cert", p.cert("rsa", "OTHER").to_str().unwrap()],
        "is not issued by SRK 1",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--csf-key", "rsa-IMG1"],
        "key \"rsa-IMG1\" (RSA 2048) does not match --csf-cert",
    );
    refused(d, "rsa", &sample(), &["--fast-auth"], "SRK 1 is a CA key");
    let fast_srk = p.cert("fast", "SRK1");
    let fast_srk = fast_srk.to_str().unwrap();
    refused(
        d,
        "fast",
        &sample(),
        &[
            "--csf-key",
            "fast-SRK1",
            "--csf-cert",
            fast_srk,
            "--img-key",
            "fast-SRK1",
            "--img-cert",
            fast_srk,
        ],
        "SRK 1 is not a CA key",
    );
    refused(
        d,
        "p256",
        &sample(),
        &["--hab-version", "4.3"],
        "ECDSA keys need HAB 4.5",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--unlock", "ocotp:jtag"],
        "unique ID",
    );
    refused(
        d,
        "rsa",
        &sample(),
        &["--srk-table", p.cert("rsa", "SRK1").to_str().unwrap()],
        "--srk-table",
    );
    // An image already signed.
    let signed = d.join("once.bin");
    sign_ok(d, "rsa", &sample(), &signed, &[]);
    refused(d, "rsa", &signed, &[], "already signed");
}

#[test]
fn verify_refuses_unsigned_and_truncated_images() {
    let p = pki();
    let o = verify(&sample(), &p.table("rsa"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("not signed"), "{err}");
    let tok = p.token();
    let out = tok.path().join("s.bin");
    sign_ok(tok.path(), "rsa", &sample(), &out, &[]);
    let b = std::fs::read(&out).unwrap();
    let cut = tok.path().join("cut.bin");
    std::fs::write(&cut, &b[..0x3000 + 200]).unwrap();
    let o = verify(&cut, &p.table("rsa"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("CSF"), "{err}");
}

#[test]
fn the_pin_appears_nowhere() {
    let p = pki();
    let tok = p.token();
    let out = tok.path().join("canary.bin");
    let o = sign(
        tok.path(),
        "rsa",
        &sample(),
        &out,
        &["--unlock", "caam:rng"],
    );
    assert!(o.status.success());
    let tr = std::fs::read_to_string(tok.path().join("transcript.jsonl")).unwrap();
    for text in [
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        tr,
    ] {
        assert!(!text.contains(PIN));
    }
    let img = std::fs::read(&out).unwrap();
    assert!(!img.windows(PIN.len()).any(|w| w == PIN.as_bytes()));
}

/// Both keys of an imx-hab4 signature answer to the token's approval policy (each is
/// opened through `signing::TokenSigner`): a quorum on the IMG key alone, or on the CSF
/// key alone, stops the signature before anything is written, in one line naming it.
#[test]
fn both_keys_answer_to_the_approval_policy() {
    use officiant::approvals::{store, Policy};
    use officiant::hsm::{self, UserType};
    use officiant::secret::Secret;
    const ALICE: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIByI32DqnUeMKYiDlK8Mj2aXqxU6GDmay94cUM6NDsX1";
    for gated in ["p256-IMG1", "p256-CSF1"] {
        let tok = pki().token();
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("signers"), format!("alice {ALICE}\n")).unwrap();
        let policy = Policy::parse(
            "policy.toml",
            d.path(),
            &format!("allowed-signers = \"signers\"\n[keys.{gated}]\napprovers = [\"alice\"]\nquorum = 1\n"),
        )
        .unwrap();
        {
            let mut t = hsm::sim::open(tok.path()).unwrap();
            t.login(UserType::So, &Secret::from_string(SO_PIN.to_string()))
                .unwrap();
            store::write_policy(t.as_mut(), &policy).unwrap();
        }
        let out = d.path().join("signed.bin");
        let o = sign(tok.path(), "p256", &sample(), &out, &[]);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!(
                "key \"{gated}\" needs 1 approval(s) from {{alice}}: give --request REQ.json and --approval SIG for each"
            )),
            "{err}"
        );
        assert!(!out.exists());
    }
}

/// What the console checks before it asks for a PIN (`signing::precheck`): the options
/// imx-hab4 needs (not the certificates, which the token may hold), and an image with an
/// IVT.
#[test]
fn precheck_needs_the_options_and_an_image() {
    use officiant::signing::{precheck, Format, Hab4Options, Options};
    let p = pki();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("signed.bin");
    let mut opts = Options {
        hab4: Box::new(Hab4Options {
            srk_table: Some(std::fs::read(p.table("rsa")).unwrap()),
            srk_index: Some(0),
            csf_cert: Some(std::fs::read(p.cert("rsa", "CSF1")).unwrap()),
            img_key: Some("rsa-IMG1".into()),
            img_cert: Some(std::fs::read(p.cert("rsa", "IMG1")).unwrap()),
            ..Hab4Options::default()
        }),
        ..Options::default()
    };
    precheck(Format::ImxHab4, &opts, &sample(), &out).unwrap();
    let not_an_image = d.path().join("payload.bin");
    std::fs::write(&not_an_image, [0u8; 4096]).unwrap();
    let e = precheck(Format::ImxHab4, &opts, &not_an_image, &out).unwrap_err();
    assert!(e.to_string().contains("payload.bin"), "{e}");
    // The certificates may come from the token: not needed before it is opened.
    opts.hab4.img_cert = None;
    opts.hab4.csf_cert = None;
    precheck(Format::ImxHab4, &opts, &sample(), &out).unwrap();
    opts.hab4.img_key = None;
    let e = precheck(Format::ImxHab4, &opts, &sample(), &out).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--format imx-hab4 needs --img-key LABEL (or --fast-auth)"
    );
    assert!(!out.exists());
}
