//! `officiant tfa-tbbr`: cert_create's TBBR certificate chain, signed by keys on the
//! token. The same step a ceremony's `issue-tbbr` runs; the files carry cert_create's
//! names so `fiptool create` packs them as they are.

use std::path::PathBuf;

use clap::Args;

use super::token::{one_step_in, step, Login};
use super::{BackendArgs, Failure, Outcome};
use crate::ceremony::runner::Vault;
use crate::ceremony::script::{Action, FileRef, IssueTbbr};
use crate::keys::HashAlg;
use crate::pki::tbbr::{CertKind, KeyLabels};

/// `officiant tfa-tbbr`.
#[derive(Args, Debug)]
pub struct TfaTbbrArgs {
    /// The backend and the user PIN's source (required).
    #[command(flatten)]
    pub b: BackendArgs,
    /// Label of the root-of-trust key (signs the trusted key certificate).
    #[arg(long)]
    pub rot_key: String,
    /// Label of the trusted-world key (signs the BL31 and BL32 key certificates).
    #[arg(long)]
    pub trusted_world_key: String,
    /// Label of the non-trusted-world key (signs the BL33 key certificate).
    #[arg(long)]
    pub non_trusted_world_key: String,
    /// Label of the BL31 key.
    #[arg(long)]
    pub soc_fw_key: String,
    /// Label of the BL32 (Trusted OS) key; give --tos-fw with it.
    #[arg(long)]
    pub tos_fw_key: Option<String>,
    /// Label of the BL33 key.
    #[arg(long)]
    pub nt_fw_key: String,
    /// BL2 image.
    #[arg(long)]
    pub tb_fw: PathBuf,
    /// BL31 image.
    #[arg(long)]
    pub soc_fw: PathBuf,
    /// BL32 image.
    #[arg(long)]
    pub tos_fw: Option<PathBuf>,
    /// BL33 image.
    #[arg(long)]
    pub nt_fw: PathBuf,
    /// Trusted-world NV counter.
    #[arg(long, default_value_t = 0)]
    pub tfw_nvctr: u32,
    /// Non-trusted-world NV counter.
    #[arg(long, default_value_t = 0)]
    pub ntfw_nvctr: u32,
    /// sha256, sha384 or sha512 (image hashes and signatures).
    #[arg(long, default_value = "sha256")]
    pub hash: String,
    /// Where the certificates go (trusted_key.crt, tb_fw.crt, …).
    #[arg(long)]
    pub out_dir: PathBuf,
}

fn file(p: &std::path::Path) -> FileRef {
    FileRef {
        name: p.display().to_string(),
        beside_script: p.to_path_buf(),
        from_step: None,
    }
}

/// `officiant tfa-tbbr`. Checks the flags, the images and that no certificate file
/// exists, then runs the issue-tbbr step through the ceremony runner. Prints each
/// certificate as `--OPTION FILE`, cert_create's and fiptool's option for it.
pub fn tfa_tbbr(a: TfaTbbrArgs) -> Outcome {
    let hash = match a.hash.as_str() {
        "sha256" => HashAlg::Sha256,
        "sha384" => HashAlg::Sha384,
        "sha512" => HashAlg::Sha512,
        other => {
            return Err(Failure(format!(
                "--hash: unknown hash {other:?} (expected sha256, sha384 or sha512)"
            )))
        }
    };
    if a.tos_fw_key.is_some() != a.tos_fw.is_some() {
        return Err(Failure(
            "--tos-fw-key and --tos-fw (the BL32 image) go together".into(),
        ));
    }
    for (flag, p) in [
        ("--tb-fw", &a.tb_fw),
        ("--soc-fw", &a.soc_fw),
        ("--nt-fw", &a.nt_fw),
    ]
    .into_iter()
    .chain(a.tos_fw.as_ref().map(|p| ("--tos-fw", p)))
    {
        if !p.is_file() {
            return Err(Failure(format!(
                "{flag}: {} is not a readable file",
                p.display()
            )));
        }
    }
    std::fs::create_dir_all(&a.out_dir)
        .map_err(|e| Failure(format!("--out-dir {}: {e}", a.out_dir.display())))?;
    let keys = KeyLabels {
        rot: a.rot_key.clone(),
        trusted_world: a.trusted_world_key.clone(),
        non_trusted_world: a.non_trusted_world_key.clone(),
        soc_fw: a.soc_fw_key.clone(),
        tos_fw: a.tos_fw_key.clone(),
        nt_fw: a.nt_fw_key.clone(),
    };
    let files: Vec<(CertKind, String)> = CertKind::ALL
        .into_iter()
        .filter(|k| {
            keys.tos_fw.is_some() || !matches!(k, CertKind::TosFwKey | CertKind::TosFwContent)
        })
        .map(|k| (k, k.file_name().to_string()))
        .collect();
    // Refuse before signing anything if any certificate would land on an existing file.
    for (_, name) in &files {
        let p = a.out_dir.join(name);
        if p.exists() {
            return Err(Failure(format!(
                "refusing to overwrite existing output file {}",
                p.display()
            )));
        }
    }
    let action = Action::IssueTbbr(Box::new(IssueTbbr {
        keys,
        tb_fw: file(&a.tb_fw),
        soc_fw: file(&a.soc_fw),
        tos_fw: a.tos_fw.as_deref().map(file),
        nt_fw: file(&a.nt_fw),
        trusted_nv_counter: a.tfw_nvctr,
        non_trusted_nv_counter: a.ntfw_nvctr,
        hash,
        files: files.clone(),
    }));
    one_step_in(
        &a.b,
        "tfa-tbbr",
        step("tfa-tbbr", action),
        Vault::new(),
        Login::Required,
        None,
        &a.out_dir,
    )?;
    for (kind, name) in files {
        println!("{} {}", kind.option(), a.out_dir.join(name).display());
    }
    Ok(())
}
