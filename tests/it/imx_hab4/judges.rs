//! What judges a signed image without our code: the layouts of FORMATS.md read by hand,
//! openssl over every CMS in the CSF, and spsdk's nxpimage.

use super::*;

pub(super) fn be16(b: &[u8], i: usize) -> usize {
    usize::from(u16::from_be_bytes([b[i], b[i + 1]]))
}
pub(super) fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
pub(super) fn le32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// One signature in a signed image, read with nothing but the layouts in FORMATS.md.
pub(super) struct Sig {
    /// Key slot of its Authenticate Data command (1: the CSF).
    pub(super) key: u8,
    pub(super) cms: Vec<u8>,
    pub(super) covered: Vec<u8>,
}

/// The IVT is at file offset 0 in every image here.
pub(super) fn signatures(image: &[u8]) -> (usize, Vec<Sig>) {
    assert_eq!(&image[..4], &[0xD1, 0x00, 0x20, 0x40][..]);
    let self_addr = le32(image, 20);
    let off = |addr: u32| (addr - self_addr) as usize;
    let csf_at = off(le32(image, 24));
    let csf = &image[csf_at..];
    assert_eq!(csf[0], 0xD4);
    let head = be16(csf, 1);
    let mut sigs = Vec::new();
    let mut i = 4;
    while i < head {
        let len = be16(csf, i + 1);
        if csf[i] == 0xCA {
            let loc = be32(csf, i + 8) as usize;
            assert_eq!(csf[loc], 0xD8, "signature blob tag");
            let cms = csf[loc + 4..loc + be16(csf, loc + 1)].to_vec();
            let covered = if len == 12 {
                csf[..head].to_vec()
            } else {
                (i + 12..i + len)
                    .step_by(8)
                    .flat_map(|b| {
                        let start = off(be32(csf, b));
                        image[start..start + be32(csf, b + 4) as usize].to_vec()
                    })
                    .collect()
            };
            sigs.push(Sig {
                key: csf[i + 4],
                cms,
                covered,
            });
        }
        i += len;
    }
    (csf_at, sigs)
}

/// openssl checks every CMS over exactly its covered bytes with the certificate of the
/// key slot it names.
pub(super) fn openssl_checks(image: &Path, certs: &[(u8, PathBuf)]) {
    let bytes = std::fs::read(image).unwrap();
    let (_, sigs) = signatures(&bytes);
    assert!(sigs.len() >= 2, "a CSF and an image signature");
    let dir = tempfile::tempdir().unwrap();
    for (n, s) in sigs.iter().enumerate() {
        let cms = dir.path().join(format!("sig{n}.der"));
        let covered = dir.path().join(format!("covered{n}.bin"));
        std::fs::write(&cms, &s.cms).unwrap();
        std::fs::write(&covered, &s.covered).unwrap();
        let cert = &certs.iter().find(|(k, _)| *k == s.key).unwrap().1;
        // openssl cms checks the signature alone over the covered bytes.
        let verify = || {
            support::run(
                Command::new("openssl")
                    .args(["cms", "-verify", "-binary", "-noverify", "-nointern"])
                    .args(["-inform", "DER", "-in"])
                    .arg(&cms)
                    .arg("-content")
                    .arg(&covered)
                    .arg("-certfile")
                    .arg(cert)
                    .args(["-out", "/dev/null"]),
            )
        };
        let o = verify();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && err.contains("Verification successful"),
            "openssl cms on signature {n} (key {}): {err}",
            s.key
        );
        // And a flipped covered byte makes openssl refuse it.
        let mut bad = s.covered.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        std::fs::write(&covered, &bad).unwrap();
        let o = verify();
        assert!(!o.status.success(), "openssl accepted altered content");
    }
}

/// nxpimage hab verify succeeds, and hab parse finds our SRK table and certificates.
pub(super) fn nxpimage_checks(image: &Path, table: &Path, certs: &[&Path]) {
    let nxpimage = judge("nxpimage");
    let out = support::run_ok(
        Command::new(&nxpimage)
            .args(["hab", "verify", "-f", "mimxrt1060", "-b"])
            .arg(image),
    );
    assert!(out.contains("Overall  result: Succeeded"), "{out}");
    assert!(out.contains("HAB CSF segment(Succeeded)"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let parsed = dir.path().join("parsed");
    support::run_ok(
        Command::new(&nxpimage)
            .args(["hab", "parse", "-f", "mimxrt1060", "-b"])
            .arg(image)
            .arg("-o")
            .arg(&parsed),
    );
    assert_eq!(
        std::fs::read(parsed.join("srk_table.bin")).unwrap(),
        std::fs::read(table).unwrap(),
        "the SRK table nxpimage finds"
    );
    let der = |p: &Path| {
        let o = support::run_ok(
            Command::new("openssl")
                .args(["x509", "-outform", "DER", "-in"])
                .arg(p)
                .args(["-out", "/dev/stdout"]),
        );
        o.into_bytes()
    };
    let found: Vec<PathBuf> = std::fs::read_dir(&parsed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pem"))
        .collect();
    let found_ders: Vec<Vec<u8>> = found.iter().map(|p| der(p)).collect();
    assert_eq!(
        found.len(),
        certs.len(),
        "certificates nxpimage finds: {found:?}"
    );
    for want in certs {
        assert!(
            found_ders.contains(&der(want)),
            "nxpimage hab parse did not find {} among {found:?}",
            want.display()
        );
    }
}
