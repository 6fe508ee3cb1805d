//! The other tools' images: spsdk signs and we verify; U-Boot's mkimage reserves the
//! CSF and we sign the blocks it prints.

use super::judges::*;
use super::*;

/// Sign with nxpimage (file keys), then check with officiant.
fn spsdk_sign(dir: &Path, set: &str, fast: bool) -> PathBuf {
    let p = pki();
    let app = dir.join("app.bin");
    let mut a = vec![0x00, 0x20, 0x00, 0x20, 0x01, 0x24, 0x00, 0x60];
    a.extend((0..8184u32).map(|i| (i * 13 + 5) as u8));
    std::fs::write(&app, a).unwrap();
    let key = |w: &str| p.p(&format!("{set}-{w}.key")).display().to_string();
    let cert = |w: &str| p.cert(set, w).display().to_string();
    let (csfk, img) = if fast {
        (
            format!("  - InstallNOCAK:\n      InstallNOCAK_File: {}\n", cert("SRK1")),
            format!(
                "  - AuthenticateData:\n      AuthenticateData_VerificationIndex: 0\n      AuthenticateData_Engine: ANY\n      AuthenticateData_EngineConfiguration: 0\n      Signer: type=file;file_path={}\n",
                key("SRK1")
            ),
        )
    } else {
        (
            format!("  - InstallCSFK:\n      InstallCSFK_File: {}\n      InstallCSFK_CertificateFormat: x509\n", cert("CSF1")),
            format!(
                "  - InstallKey:\n      InstallKey_File: {}\n      InstallKey_VerificationIndex: 0\n      InstallKey_TargetIndex: 2\n  - AuthenticateData:\n      AuthenticateData_VerificationIndex: 2\n      AuthenticateData_Engine: ANY\n      AuthenticateData_EngineConfiguration: 0\n      Signer: type=file;file_path={}\n",
                cert("IMG1"),
                key("IMG1")
            ),
        )
    };
    let csf_signer = if fast { key("SRK1") } else { key("CSF1") };
    let version = if set == "rsa" || set == "fast" {
        "4.2"
    } else {
        "4.5"
    };
    let cfg = format!(
        "options:\n  flags: 8\n  startAddress: 0x60000000\n  ivtOffset: 0x1000\n  initialLoadSize: 0x2000\n  entryPointAddress: 0x60002401\n  family: mimxrt1060\ninputImageFile: {}\nsections:\n  - Header:\n      Header_Version: '{version}'\n      Header_HashAlgorithm: sha256\n      Header_Engine: ANY\n      Header_EngineConfiguration: 0\n      Header_CertificateFormat: x509\n      Header_SignatureFormat: CMS\n  - InstallSRK:\n      InstallSRK_Table: {}\n      InstallSRK_SourceIndex: 0\n{csfk}  - AuthenticateCSF:\n      Signer: type=file;file_path={csf_signer}\n{img}",
        app.display(),
        p.table(set).display()
    );
    let cfg_path = dir.join(format!("{set}-{fast}.yaml"));
    std::fs::write(&cfg_path, cfg).unwrap();
    let out = dir.join(format!("{set}-{fast}-spsdk.bin"));
    support::run_ok(
        Command::new(judge("nxpimage"))
            .args(["hab", "export", "-c"])
            .arg(&cfg_path)
            .arg("-o")
            .arg(&out),
    );
    out
}

#[test]
fn officiant_accepts_images_spsdk_signed() {
    let p = pki();
    let dir = tempfile::tempdir().unwrap();
    for (set, fast) in [("rsa", false), ("p256", false), ("fast", true)] {
        let img = spsdk_sign(dir.path(), set, fast);
        let report = verify_ok(&img, &p.table(set));
        // spsdk signs two blocks: IVT with boot data, and the application.
        assert!(
            report.contains("over 0x60001000+0x40, 0x60002000+0x2000"),
            "{set}: {report}"
        );
        // A flipped application byte: spsdk's own verify does not notice, ours does.
        let mut bytes = std::fs::read(&img).unwrap();
        bytes[0x1000 + 100] ^= 0x40;
        let bad = dir.path().join(format!("{set}-bad.bin"));
        std::fs::write(&bad, &bytes).unwrap();
        let o = verify(&bad, &p.table(set));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{set}: altered image accepted");
        assert!(
            err.contains("Authenticate Data") && err.contains("covered bytes altered"),
            "{err}"
        );
        // With another SRK table, the image is refused at Install SRK.
        let other = if set == "rsa" { "p256" } else { "rsa" };
        let o = verify(&img, &p.table(other));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains("(Install SRK)"),
            "{err}"
        );
    }
}

#[test]
fn uboot_imximage_with_a_reserved_csf() {
    let p = pki();
    let tok = p.token();
    let d = tok.path();
    std::fs::write(
        d.join("imx.cfg"),
        "IMAGE_VERSION 2\nBOOT_FROM sd\nCSF 0x2000\nDATA 4 0x020c4068 0xffffffff\n",
    )
    .unwrap();
    let payload: Vec<u8> = (0..40_000u32).map(|i| (i * 31 + 7) as u8).collect();
    std::fs::write(d.join("u-boot.bin"), payload).unwrap();
    let mkimage = judge("mkimage");
    let listing = support::run_ok(
        Command::new(&mkimage)
            .args(["-n"])
            .arg(d.join("imx.cfg"))
            .args(["-T", "imximage", "-e", "0x87800000", "-d"])
            .arg(d.join("u-boot.bin"))
            .arg(d.join("u-boot.imx")),
    );
    // "HAB Blocks:   0x877ff400 0x00000000 0x0000a000": what CST users put in their CSF.
    let blocks = listing
        .lines()
        .find_map(|l| l.strip_prefix("HAB Blocks:"))
        .expect("mkimage prints HAB Blocks")
        .split_whitespace()
        .map(|w| u32::from_str_radix(w.trim_start_matches("0x"), 16).unwrap())
        .collect::<Vec<_>>();
    let input = d.join("u-boot.imx");
    let in_len = std::fs::metadata(&input).unwrap().len();
    let out = d.join("u-boot-signed.imx");
    let stdout = sign_ok(d, "rsa", &input, &out, &["--unlock", "caam:rng"]);
    assert!(stdout.contains("reserves 0x2000 bytes"), "{stdout}");
    assert_eq!(std::fs::metadata(&out).unwrap().len(), in_len + 0x2000);
    let bytes = std::fs::read(&out).unwrap();
    // The CSF sits at the IVT's (unchanged) CSF pointer, right after the image.
    // mkimage already set the CSF pointer and boot data length: the image is unchanged.
    assert_eq!(bytes[..in_len as usize], std::fs::read(&input).unwrap()[..]);
    let (csf_at, sigs) = signatures(&bytes);
    assert_eq!(csf_at as u64, in_len);
    let csf = &bytes[csf_at..];
    let head = be16(csf, 1);
    let mut i = 4;
    let mut block = None;
    while i < head {
        if csf[i] == 0xCA && be16(csf, i + 1) > 12 {
            block = Some((be32(csf, i + 12), be32(csf, i + 16)));
        }
        i += be16(csf, i + 1);
    }
    // mkimage's HAB Blocks: load address, file offset 0 (the IVT), length.
    assert_eq!(block, Some((blocks[0], blocks[2])), "{listing}");
    assert_eq!(blocks[1], 0);
    assert_eq!(sigs.len(), 2);
    openssl_checks(
        &out,
        &[(1, p.cert("rsa", "CSF1")), (2, p.cert("rsa", "IMG1"))],
    );
    verify_ok(&out, &p.table("rsa"));
    // U-Boot's own tool still reads the signed image.
    let l = support::run_ok(Command::new(&mkimage).arg("-l").arg(&out));
    assert!(l.contains("HAB Blocks:"), "{l}");
}
