//! `officiant fuses` refusals: each bad input gives one line on stderr naming the file
//! (or the rule), a non-zero exit, and no output file at all.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;

fn openssl(args: &[&str]) {
    support::run_ok(Command::new("openssl").args(args));
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = SRK
[v3_ca]
basicConstraints = critical,CA:true
keyUsage = keyCertSign
[v3_usr]
basicConstraints = CA:false
";

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn new() -> Self {
        let f = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(f.p("openssl.cnf"), CNF).unwrap();
        f
    }

    fn cert(&self, name: &str, algorithm: &[&str], profile: &str) -> PathBuf {
        let key = self.p(&format!("{name}.key"));
        let mut args = vec!["genpkey"];
        args.extend_from_slice(algorithm);
        args.extend_from_slice(&["-out", s(&key)]);
        openssl(&args);
        let crt = self.p(&format!("{name}_crt.pem"));
        openssl(&[
            "req",
            "-new",
            "-x509",
            "-config",
            s(&self.p("openssl.cnf")),
            "-extensions",
            profile,
            "-key",
            s(&key),
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "30",
            "-out",
            s(&crt),
        ]);
        crt
    }
}

/// Run, expect failure with exactly one stderr line containing every `needle`, and an
/// empty stdout.
fn refuses(cmd: &mut Command, needles: &[&str]) -> String {
    let out = support::run(cmd);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{cmd:?} succeeded");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{err:?} lacks {n:?}");
    }
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

fn no_outputs(dir: &Path, names: &[&str]) {
    for n in names {
        assert!(!dir.join(n).exists(), "{n} was written");
    }
    // No temporary files left behind either.
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "temporary file {name} left");
    }
}

fn hab4(certs: &[&Path], table: &Path, fuse: &Path) -> Command {
    let mut cmd = support::officiant();
    cmd.args(["fuses", "hab4"]);
    for c in certs {
        cmd.arg("--cert").arg(c);
    }
    cmd.arg("--table").arg(table).arg("--fuse").arg(fuse);
    cmd
}

#[test]
fn hab4_bad_inputs_write_nothing() {
    let f = Files::new();
    let ec = [
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
    ];
    let ca1 = f.cert("SRK1", &ec, "v3_ca");
    let ca2 = f.cert("SRK2", &ec, "v3_ca");
    let usr = f.cert("SRK3", &ec, "v3_usr");
    let ed = f.cert("ED", &["-algorithm", "ED25519"], "v3_ca");
    let (t, fu) = (f.p("SRK_table.bin"), f.p("SRK_fuse.bin"));
    let outs = ["SRK_table.bin", "SRK_fuse.bin"];

    // A CA / non-CA mix.
    refuses(
        &mut hab4(&[&ca1, &usr, &ca2], &t, &fu),
        &["mix CA and non-CA"],
    );
    no_outputs(f.dir.path(), &outs);

    // Five SRKs.
    refuses(
        &mut hab4(&[&ca1, &ca2, &ca1, &ca2, &ca1], &t, &fu),
        &["1 to 4", "got 5"],
    );
    no_outputs(f.dir.path(), &outs);

    // A certificate with a key HAB4 cannot hold, after a good one.
    refuses(
        &mut hab4(&[&ca1, &ed], &t, &fu),
        &["ED_crt.pem", "SRK certificate 2"],
    );
    no_outputs(f.dir.path(), &outs);

    // A truncated DER certificate.
    let der = f.p("SRK2.der");
    openssl(&["x509", "-in", s(&ca2), "-outform", "DER", "-out", s(&der)]);
    let bytes = std::fs::read(&der).unwrap();
    let cut = f.p("cut.der");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    refuses(&mut hab4(&[&ca1, &cut], &t, &fu), &["cut.der"]);
    no_outputs(f.dir.path(), &outs);

    // A PEM that is no certificate (a private key).
    let key = f.p("SRK1.key");
    refuses(&mut hab4(&[&key], &t, &fu), &["SRK1.key", "CERTIFICATE"]);
    no_outputs(f.dir.path(), &outs);

    // An unknown SoC family.
    let mut cmd = hab4(&[&ca1], &t, &fu);
    refuses(cmd.args(["--soc", "imx9"]), &["imx9"]);
    no_outputs(f.dir.path(), &outs);

    // One output exists: the other is not written either, and the first is untouched.
    std::fs::write(&fu, b"keep").unwrap();
    refuses(
        &mut hab4(&[&ca1], &t, &fu),
        &["refusing to overwrite", "SRK_fuse.bin"],
    );
    assert!(!t.exists());
    assert_eq!(std::fs::read(&fu).unwrap(), b"keep");

    // And the good case works.
    std::fs::remove_file(&fu).unwrap();
    support::run_ok(&mut hab4(&[&ca1, &ca2], &t, &fu));
    assert_eq!(std::fs::read(&fu).unwrap().len(), 32);
}

#[test]
fn single_key_bad_inputs_write_nothing() {
    let f = Files::new();
    let out = f.p("out.bin");
    let run = |cmd: &str, key: &Path| {
        let mut c = support::officiant();
        c.args(["fuses", cmd, "--key"]).arg(key).arg("-o").arg(&out);
        c
    };
    // A PEM that holds no key.
    let junk = f.p("request.pem");
    let key = f.p("p384.key");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:secp384r1",
        "-out",
        s(&key),
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        s(&key),
        "-subj",
        "/CN=x",
        "-config",
        s(&f.p("openssl.cnf")),
        "-out",
        s(&junk),
    ]);
    for cmd in ["tfa-rotpk", "esp32-sbv2", "stm32mp15"] {
        refuses(&mut run(cmd, &junk), &["request.pem"]);
        assert!(!out.exists());
    }
    // Keys the format cannot take.
    let pub384 = f.p("p384.pub.pem");
    openssl(&["pkey", "-in", s(&key), "-pubout", "-out", s(&pub384)]);
    refuses(&mut run("stm32mp15", &pub384), &["p384.pub.pem", "P-384"]);
    let rsa = f.p("rsa2048.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        s(&rsa),
    ]);
    refuses(&mut run("esp32-sbv2", &rsa), &["rsa2048.pem", "RSA 2048"]);
    // An encrypted private key is not decrypted here.
    let enc = f.p("enc.pem");
    openssl(&[
        "pkey",
        "-in",
        s(&key),
        "-aes256",
        "-passout",
        "pass:canary-Secret-123",
        "-out",
        s(&enc),
    ]);
    let err = refuses(&mut run("tfa-rotpk", &enc), &["enc.pem", "encrypted"]);
    assert!(!err.contains("canary"));
    // --digest-info belongs to tfa-rotpk only.
    let mut c = run("esp32-sbv2", &pub384);
    refuses(c.arg("--digest-info"), &["--digest-info"]);
    // Nine keys for a table of eight.
    let mut c = support::officiant();
    c.args(["fuses", "stm32mp-pkhth"]);
    for _ in 0..9 {
        c.arg("--key").arg(&pub384);
    }
    refuses(c.arg("-o").arg(&out), &["got 9"]);
    // A P-384 key in a PKHTH table is named by file.
    let mut c = support::officiant();
    c.args(["fuses", "stm32mp-pkhth", "--key"])
        .arg(&pub384)
        .arg("-o")
        .arg(&out);
    refuses(&mut c, &["p384.pub.pem"]);
    no_outputs(f.dir.path(), &["out.bin"]);
    // An existing output is never overwritten.
    std::fs::write(&out, b"keep").unwrap();
    refuses(&mut run("tfa-rotpk", &pub384), &["refusing to overwrite"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
}

/// Private key files are read for their public half only: nothing of the private key
/// reaches stdout, stderr or the output file, whether it parses or not.
#[test]
fn private_key_material_never_echoed() {
    let f = Files::new();
    let key = f.p("rot.pem");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-out",
        s(&key),
    ]);
    let text = openssl_out(&["pkey", "-in", s(&key), "-noout", "-text"]);
    // The private scalar as openssl prints it (hex bytes after "priv:").
    let d: String = text
        .split("pub:")
        .next()
        .unwrap()
        .split("priv:")
        .nth(1)
        .unwrap()
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(d.len(), 64, "{text}");
    let pem = std::fs::read_to_string(&key).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let check = |out: &std::process::Output| {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .to_lowercase()
        .replace([' ', ':', '\n'], "");
        assert!(!all.contains(&d.to_lowercase()), "private scalar echoed");
        assert!(
            !all.contains(&body.to_lowercase()[20..60]),
            "private key PEM echoed"
        );
    };
    // Accepted: the output holds the hash of the public key only.
    let out_file = f.p("rotpk.bin");
    let out = support::run(
        support::officiant()
            .args(["fuses", "tfa-rotpk", "--json", "--key"])
            .arg(&key)
            .arg("-o")
            .arg(&out_file),
    );
    assert!(out.status.success());
    check(&out);
    assert_eq!(std::fs::read(&out_file).unwrap().len(), 32);
    // Damaged: one line, no material.
    let broken = f.p("broken.pem");
    let mut lines: Vec<&str> = pem.lines().collect();
    lines.remove(2);
    std::fs::write(&broken, lines.join("\n")).unwrap();
    for cmd in ["tfa-rotpk", "esp32-sbv2", "stm32mp15"] {
        let out = support::run(
            support::officiant()
                .args(["fuses", cmd, "--key"])
                .arg(&broken)
                .arg("-o")
                .arg(f.p("never.bin")),
        );
        assert!(!out.status.success());
        check(&out);
    }
    let out = support::run(
        support::officiant()
            .args(["fuses", "hab4", "--cert"])
            .arg(&key)
            .arg("--table")
            .arg(f.p("t.bin"))
            .arg("--fuse")
            .arg(f.p("f.bin")),
    );
    assert!(!out.status.success());
    check(&out);
    no_outputs(f.dir.path(), &["never.bin", "t.bin", "f.bin"]);
}

fn openssl_out(args: &[&str]) -> String {
    support::run_ok(Command::new("openssl").args(args))
}
