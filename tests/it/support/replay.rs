//! Shared by the root-of-trust step tests: replay a shipped ceremony through the
//! officiant binary on the rehearsal token or SoftHSM, and small oracle helpers.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{officiant, run, run_ok, SoftHsm};

pub fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ceremonies")
        .join(name)
}

/// A finished replay: its out dir (and the token dir, kept alive with it).
pub struct Replay {
    pub dir: tempfile::TempDir,
    pub out: PathBuf,
    pub softhsm: Option<SoftHsm>,
}

impl Replay {
    pub fn file(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn transcript(&self) -> String {
        std::fs::read_to_string(self.file("transcript.jsonl")).unwrap()
    }
}

fn command(name: &str, backend: &str, out: &Path) -> Command {
    let mut c = officiant();
    c.arg("run")
        .arg(shipped(&format!("{name}.toml")))
        .arg("--answers")
        .arg(shipped(&format!("{name}.answers.toml")))
        .arg("--backend")
        .arg(backend)
        .arg("--out")
        .arg(out);
    c
}

/// Replay `ceremonies/NAME.toml` headless on a fresh rehearsal token.
pub fn on_sim(name: &str) -> Replay {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let backend = format!("sim:{}", dir.path().join("token").display());
    run_ok(&mut command(name, &backend, &out));
    Replay {
        dir,
        out,
        softhsm: None,
    }
}

/// Replay on a fresh SoftHSM token directory (None: SoftHSM missing, skip allowed).
pub fn on_softhsm(name: &str) -> Option<Replay> {
    let hsm = SoftHsm::new()?;
    let out = hsm.dir.path().join("out");
    let mut c = command(name, &hsm.uri(), &out);
    hsm.env(&mut c);
    run_ok(&mut c);
    let dir = tempfile::tempdir().unwrap();
    Some(Replay {
        dir,
        out,
        softhsm: Some(hsm),
    })
}

/// SHA-256 with the system's openssl (an implementation that is not ours).
pub fn openssl_sha256(openssl: &Path, file: &Path) -> Vec<u8> {
    let o = run(Command::new(openssl)
        .args(["dgst", "-sha256", "-binary"])
        .arg(file));
    assert!(o.status.success());
    o.stdout
}

/// A public key (PEM) as DER SPKI, by openssl.
pub fn spki_der(openssl: &Path, pem: &Path) -> Vec<u8> {
    let o = run(Command::new(openssl)
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(pem));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

/// The HAB4 certificate names of a tree (SRKs in order), from the out dir listing.
pub fn files_with(r: &Replay, prefix: &str, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(&r.out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// `fiptool create` with the shipped BL2/BL31/BL33 samples and tfa-rot's TBBR chain from
/// `certs` into `fip` (fiptool is the judge that the chain packs).
pub fn fiptool_pack(fiptool: &Path, certs: &Path, fip: &Path) {
    let mut c = Command::new(fiptool);
    c.arg("create")
        .arg("--tb-fw")
        .arg(shipped("samples/bl2.bin"))
        .arg("--soc-fw")
        .arg(shipped("samples/bl31.bin"))
        .arg("--nt-fw")
        .arg(shipped("samples/bl33.bin"));
    for (opt, file) in [
        ("--trusted-key-cert", "trusted_key.crt"),
        ("--tb-fw-cert", "tb_fw.crt"),
        ("--soc-fw-key-cert", "soc_fw_key.crt"),
        ("--soc-fw-cert", "soc_fw_content.crt"),
        ("--nt-fw-key-cert", "nt_fw_key.crt"),
        ("--nt-fw-cert", "nt_fw_content.crt"),
    ] {
        c.arg(opt).arg(certs.join(file));
    }
    run_ok(c.arg(fip));
}
