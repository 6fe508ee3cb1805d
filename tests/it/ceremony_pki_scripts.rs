//! Bad issue-certificate / export-fuses / sign / verify steps: each is refused before any
//! token is opened, with one exact line naming the file, the step and the field.

use std::path::Path;

use officiant::ceremony::runner;

const GOOD: &str = r#"
[ceremony]
id = "t"
title = "Test"
version = 1
token = "tok"

[[step]]
id = "init"
kind = "init-token"
so-pin = "so"
user-pin = "user"

[[step]]
id = "login"
kind = "login"
pin = "user"

[[step]]
id = "gen-ca"
kind = "generate-key"
algorithm = "ec-p256"
label = "ca"
key-id = "01"

[[step]]
id = "cert-ca"
kind = "issue-certificate"
profile = "hab4-ca"
key = "ca"
subject = "CA1"
pem = "ca.pem"

[[step]]
id = "export-ca"
kind = "export-public-key"
key = "ca"
pem = "ca.pub.pem"

[[step]]
id = "gen-srk1"
kind = "generate-key"
algorithm = "ec-p256"
label = "srk1"
key-id = "11"

[[step]]
id = "cert-srk1"
kind = "issue-certificate"
profile = "hab4-srk"
key = "srk1"
issuer-key = "ca"
issuer-cert = "ca.pem"
subject = "SRK1"
serial = "0x12345678"
pem = "srk1.pem"

[[step]]
id = "gen-srk2"
kind = "generate-key"
algorithm = "ec-p256"
label = "srk2"
key-id = "12"

[[step]]
id = "cert-srk2"
kind = "issue-certificate"
profile = "hab4-srk"
key = "srk2"
issuer-key = "ca"
issuer-cert = "ca.pem"
subject = "SRK2"
pem = "srk2.pem"

[[step]]
id = "gen-csf1"
kind = "generate-key"
algorithm = "ec-p256"
label = "csf1"
key-id = "21"

[[step]]
id = "cert-csf1"
kind = "issue-certificate"
profile = "hab4-csf"
key = "csf1"
issuer-key = "srk1"
issuer-cert = "srk1.pem"
subject = "CSF1_1"
der = "csf1.der"

[[step]]
id = "fuses"
kind = "export-fuses"
format = "hab4"
certs = ["srk1.pem", "srk2.pem"]

[[step]]
id = "pkh"
kind = "export-fuses"
format = "esp32-sbv2"
keys = ["srk1", "srk2"]

[[step]]
id = "sign"
kind = "sign"
format = "raw"
key = "csf1"
input = "x.toml"
"#;

const ANSWERS: &str = r#"
[secrets]
so = "file:so.pin"
user = "file:user.pin"

[[confirm]]
step = "init"
"#;

fn error_of(dir: &Path, script: &str) -> String {
    let s = dir.join("x.toml");
    let a = dir.join("x.answers.toml");
    std::fs::write(&s, script).unwrap();
    std::fs::write(&a, ANSWERS).unwrap();
    std::fs::write(dir.join("so.pin"), "rehearsal-so").unwrap();
    std::fs::write(dir.join("user.pin"), "rehearsal-user").unwrap();
    match runner::prepare(&s, Some(&a)) {
        Ok(_) => "OK".to_string(),
        Err(e) => e.to_string().replace(&dir.display().to_string(), "DIR"),
    }
}

#[test]
fn good_script_passes() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(error_of(d.path(), GOOD), "OK");
}

#[test]
fn bad_root_of_trust_steps_each_have_their_exact_message() {
    let d = tempfile::tempdir().unwrap();
    let srk2 = "subject = \"SRK2\"";
    let cases: Vec<(&str, String)> = vec![
        ("unknown profile", GOOD.replace("profile = \"hab4-ca\"", "profile = \"hab4-root\"")),
        (
            "issuer-cert no step writes",
            GOOD.replace("issuer-cert = \"srk1.pem\"", "issuer-cert = \"srk9.pem\""),
        ),
        (
            "issuer-cert from a step that is not issue-certificate",
            GOOD.replace("issuer-cert = \"srk1.pem\"", "issuer-cert = \"ca.pub.pem\""),
        ),
        (
            "issuer-cert written later",
            GOOD.replace("issuer-cert = \"ca.pem\"\nsubject = \"SRK1\"", "issuer-cert = \"srk2.pem\"\nsubject = \"SRK1\""),
        ),
        (
            "issuer-cert is not a CA",
            format!("{GOOD}\n[[step]]\nid = \"cert-x\"\nkind = \"issue-certificate\"\nprofile = \"signer\"\nkey = \"srk2\"\nissuer-key = \"csf1\"\nissuer-cert = \"csf1.der\"\nsubject = \"X\"\npem = \"x.pem\"\n"),
        ),
        (
            "issuer-key is not the key of issuer-cert",
            GOOD.replace("issuer-key = \"srk1\"", "issuer-key = \"srk2\""),
        ),
        (
            "export-fuses hab4 with 5 certs",
            GOOD.replace(
                "certs = [\"srk1.pem\", \"srk2.pem\"]",
                "certs = [\"srk1.pem\", \"srk2.pem\", \"srk1.pem\", \"srk2.pem\", \"srk1.pem\"]",
            ),
        ),
        (
            "CA/non-CA mix",
            GOOD.replace(srk2, &format!("{srk2}\nca-mode = false")),
        ),
        (
            "a CSF certificate as an SRK",
            GOOD.replace("certs = [\"srk1.pem\", \"srk2.pem\"]", "certs = [\"srk1.pem\", \"csf1.der\"]"),
        ),
        (
            "cert neither written nor beside the script",
            GOOD.replace("certs = [\"srk1.pem\", \"srk2.pem\"]", "certs = [\"srk1.pem\", \"srk3.pem\"]"),
        ),
        (
            "ca-mode on a profile that is not hab4-srk",
            GOOD.replace("subject = \"CA1\"", "subject = \"CA1\"\nca-mode = true"),
        ),
        (
            "self-signed profile with an issuer",
            GOOD.replace("key = \"ca\"\nsubject = \"CA1\"", "key = \"ca\"\nissuer-key = \"srk1\"\nissuer-cert = \"srk1.pem\"\nsubject = \"CA1\""),
        ),
        (
            "issued profile without an issuer",
            GOOD.replace("issuer-key = \"ca\"\nissuer-cert = \"ca.pem\"\nsubject = \"SRK2\"", "subject = \"SRK2\""),
        ),
        (
            "issuer-key without issuer-cert",
            GOOD.replace("issuer-cert = \"ca.pem\"\nsubject = \"SRK2\"", "subject = \"SRK2\""),
        ),
        ("bad serial", GOOD.replace("serial = \"0x12345678\"", "serial = \"12345678\"")),
        ("no output file", GOOD.replace("der = \"csf1.der\"\n", "")),
        (
            "unknown fuse format",
            GOOD.replace("format = \"esp32-sbv2\"", "format = \"esp32-sbv1\""),
        ),
        (
            "four ESP32 keys",
            GOOD.replace("keys = [\"srk1\", \"srk2\"]", "keys = [\"srk1\", \"srk2\", \"ca\", \"csf1\"]"),
        ),
        (
            "key no step creates after init-token",
            GOOD.replace("keys = [\"srk1\", \"srk2\"]", "keys = [\"srk1\", \"srk7\"]"),
        ),
        (
            "sign input missing",
            GOOD.replace("input = \"x.toml\"", "input = \"fw.bin\""),
        ),
        (
            "sign input escapes the script dir",
            GOOD.replace("input = \"x.toml\"", "input = \"../x.toml\""),
        ),
        (
            "unknown sign format",
            GOOD.replace("format = \"raw\"", "format = \"tfa\""),
        ),
        (
            "padding on a non-raw format",
            GOOD.replace("format = \"raw\"", "format = \"esp32-sbv2\"\npadding = \"pss\""),
        ),
    ];
    let tbbr = |extra: &str, bl33: &str| {
        format!("{GOOD}\n[[step]]\nid = \"tbbr\"\nkind = \"issue-tbbr\"\nrot-key = \"ca\"\ntrusted-world-key = \"srk1\"\nnon-trusted-world-key = \"srk2\"\nsoc-fw-key = \"csf1\"\nnt-fw-key = \"csf1\"\ntb-fw = \"x.toml\"\nsoc-fw = \"x.toml\"\nnt-fw = \"{bl33}\"\n{extra}")
    };
    let mut cases = cases;
    cases.push(("tbbr: good", tbbr("", "x.toml")));
    cases.push((
        "tbbr: tos-fw-key without tos-fw",
        tbbr("tos-fw-key = \"srk1\"\n", "x.toml"),
    ));
    cases.push(("tbbr: BL33 missing", tbbr("", "bl33.bin")));
    cases.push(("tbbr: unknown hash", tbbr("hash = \"sha1\"\n", "x.toml")));
    let mut report = String::new();
    for (what, script) in &cases {
        report.push_str(&format!("{what}: {}\n", error_of(d.path(), script)));
    }
    let expected = "\
unknown profile: DIR/x.toml: step[3] (cert-ca).profile: unknown profile \"hab4-root\" (expected hab4-ca, hab4-srk, hab4-csf, hab4-img, ca or signer)
issuer-cert no step writes: DIR/x.toml: step[10] (cert-csf1).issuer-cert: \"srk9.pem\" is not written by an earlier step
issuer-cert from a step that is not issue-certificate: DIR/x.toml: step[10] (cert-csf1).issuer-cert: \"ca.pub.pem\" is written by step[4] (export-ca) of kind export-public-key, not by an issue-certificate step
issuer-cert written later: DIR/x.toml: step[6] (cert-srk1).issuer-cert: \"srk2.pem\" is not written by an earlier step
issuer-cert is not a CA: DIR/x.toml: step[14] (cert-x).issuer-cert: \"csf1.der\" (step[10] (cert-csf1)) is a hab4-csf certificate, not a CA: it cannot issue
issuer-key is not the key of issuer-cert: DIR/x.toml: step[10] (cert-csf1).issuer-key: \"srk1.pem\" certifies key \"srk1\", not \"srk2\"
export-fuses hab4 with 5 certs: DIR/x.toml: step[11] (fuses).certs: hab4 takes 1 to 4 SRK certificates, got 5
CA/non-CA mix: DIR/x.toml: step[11] (fuses).certs: SRK certificates mix CA and non-CA keys (CA: srk1.pem; non-CA: srk2.pem); HAB4 needs all SRKs of one kind
a CSF certificate as an SRK: DIR/x.toml: step[11] (fuses).certs: certs[1] \"csf1.der\" is a hab4-csf certificate, not an SRK (profile hab4-srk)
cert neither written nor beside the script: DIR/x.toml: step[11] (fuses).certs: \"srk3.pem\" is neither written by an earlier step nor a file next to DIR/x.toml
ca-mode on a profile that is not hab4-srk: DIR/x.toml: step[3] (cert-ca).ca-mode: is only for profile hab4-srk
self-signed profile with an issuer: DIR/x.toml: step[3] (cert-ca).issuer-key: profile hab4-ca is self-signed: give no issuer-key
issued profile without an issuer: DIR/x.toml: step[8] (cert-srk2).profile: profile hab4-srk needs an issuer (issuer-key and issuer-cert)
issuer-key without issuer-cert: DIR/x.toml: step[8] (cert-srk2).issuer-cert: missing: with issuer-key, name the issuer's certificate (an output of an earlier issue-certificate step)
bad serial: DIR/x.toml: step[6] (cert-srk1).serial: \"12345678\" is not a positive serial (an integer or \"0x…\" hex, at most 64 bits)
no output file: DIR/x.toml: step[10] (cert-csf1): issue-certificate needs pem = \"FILE\" or der = \"FILE\" (or both)
unknown fuse format: DIR/x.toml: step[12] (pkh).format: unknown fuse format \"esp32-sbv1\" (expected hab4, ahab, tfa-rotpk, esp32-sbv2, stm32mp15 or stm32mp-pkhth)
four ESP32 keys: DIR/x.toml: step[12] (pkh).keys: expected 1 to 3 key labels, got 4
key no step creates after init-token: DIR/x.toml: step[12] (pkh).keys: no key labelled \"srk7\": no step after init-token step[0] (init) creates it
sign input missing: DIR/x.toml: step[13] (sign).input: \"fw.bin\" is neither written by an earlier step nor a file next to DIR/x.toml
sign input escapes the script dir: DIR/x.toml: step[13] (sign).input: \"../x.toml\" must be an earlier step's output or a relative path below the script's directory
unknown sign format: DIR/x.toml: step[13] (sign).format: unknown format \"tfa\" (expected raw, esp32-sbv2, stm32mp15, stm32mp13, imx-hab4, imx-ahab)
padding on a non-raw format: DIR/x.toml: step[13] (sign).padding: is for format raw, not esp32-sbv2
tbbr: good: OK
tbbr: tos-fw-key without tos-fw: DIR/x.toml: step[14] (tbbr).tos-fw: give both tos-fw-key and tos-fw (the BL32 image), or neither
tbbr: BL33 missing: DIR/x.toml: step[14] (tbbr).nt-fw: \"bl33.bin\" is neither written by an earlier step nor a file next to DIR/x.toml
tbbr: unknown hash: DIR/x.toml: step[14] (tbbr).hash: unknown hash \"sha1\" (expected sha256, sha384 or sha512)
";
    assert_eq!(report, expected, "\n{report}");
}
