//! The parsers' entry points, one function per fuzz target. Shared by the cargo-fuzz
//! targets (fuzz/fuzz_targets/*.rs) and by tests/it/parsers_never_panic/, which includes
//! this file with `#[path]`; it uses nothing but `officiant` and std.
//!
//! Each function feeds `data` to the same public functions the CLI and the ceremony
//! runner call on a user's file, and returns `Err(reason)` when the input was refused.
//! Only a panic (or a hang) is a finding; an `Err` is the parser doing its job.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use officiant::ceremony::{answers, journal, plan, script, transcript};
use officiant::formats::{esp32, hab4, raw, stm32_image};
use officiant::keys::{self, public::PublicKey, Curve, HashAlg, PrivateKey};
use officiant::secret::{Secret, SecretSource};
use officiant::signing::{self, Format};

/// The passphrase of the fixture keys (tests/fixtures/keys/passphrase.txt); the only one
/// any encrypted seed uses.
pub const PASSPHRASE: &str = "fixture-passphrase-5531";

/// A target: `Err` when the input was refused (fine); a panic is the finding.
pub type Target = fn(&[u8]) -> Result<(), String>;

/// Every target, by name (the fuzz/fuzz_targets file and the corpus directory).
pub const TARGETS: &[(&str, Target)] = &[
    ("script", script_check),
    ("answers", answers_check),
    ("journal", journal_load),
    ("transcript", transcript_verify),
    ("public_key", public_key),
    ("private_key", private_key),
    ("certificate", certificate),
    ("esp32", esp32_verify),
    ("stm32", stm32_verify),
    ("raw_signature", raw_signature),
    ("uri", uri),
    ("sim_store", sim_store),
    ("allowed_signers", allowed_signers),
    ("approval_request", approval_request),
    ("approval_policy", approval_policy),
    ("imx_ivt", imx_ivt),
    ("imx_csf", imx_csf),
    ("ahab_container", ahab_container),
    ("signoff_transcript", signoff_transcript),
    ("pkcs11_attributes", pkcs11_attributes),
];

fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A fresh path for one input under the system temp dir (removed by [`TempFile`]'s drop).
struct TempFile(PathBuf);

impl TempFile {
    fn new(data: &[u8], name: &str) -> Result<Self, String> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!("officiant-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(msg)?;
        let p = dir.join(format!("{}-{name}", N.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&p, data).map_err(msg)?;
        Ok(TempFile(p))
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The shipped ceremonies/ (relative paths in scripts resolve against it). This file is
/// built both from the main crate (tests) and from fuzz/, so try both manifest dirs.
fn ceremonies_dir() -> PathBuf {
    let m = Path::new(env!("CARGO_MANIFEST_DIR"));
    match m.join("ceremonies").is_dir() {
        true => m.join("ceremonies"),
        false => m.join("../ceremonies"),
    }
}

/// `officiant check SCRIPT` without a backend: parse, then the whole-plan validation.
pub fn script_check(data: &[u8]) -> Result<(), String> {
    let s = script::parse("fuzz.toml", &ceremonies_dir(), data).map_err(msg)?;
    plan::check_script(&s).map_err(msg)?;
    for (i, step) in s.steps.iter().enumerate() {
        let _ = (step.place(i), step.action.kind(), step.action.secrets());
        let _ = (step.action.destructive(), step.action.outputs());
    }
    Ok(())
}

/// An answers file, parsed and checked against the shipped rehearsal-demo script.
pub fn answers_check(data: &[u8]) -> Result<(), String> {
    let a = answers::parse("fuzz.answers.toml", &ceremonies_dir(), data).map_err(msg)?;
    let s = script::parse(
        "rehearsal-demo.toml",
        &ceremonies_dir(),
        include_bytes!("../../ceremonies/rehearsal-demo.toml"),
    )
    .map_err(msg)?;
    // A mismatch with this one script is expected; only a panic matters here.
    let _ = plan::check_answers(&s, &a);
    Ok(())
}

/// A resume journal as `officiant run` reads it from the out dir.
pub fn journal_load(data: &[u8]) -> Result<(), String> {
    let f = TempFile::new(data, "journal.jsonl")?;
    journal::load(f.path()).map_err(msg)?;
    Ok(())
}

/// `officiant transcript verify FILE` (the streaming check with everything it reads:
/// sessions, outputs, evidence, device audit logs), and the Markdown rendering when the
/// chain verifies.
pub fn transcript_verify(data: &[u8]) -> Result<(), String> {
    let f = TempFile::new(data, "transcript.jsonl")?;
    let opts = officiant::ceremony::evidence::Options {
        head: Some(vec![0; 32]),
        out: Some(std::env::temp_dir()),
        pubkey: Some(fixture_p256()),
        allow_incomplete: true,
    };
    let _ = officiant::ceremony::evidence::verify(f.path(), &opts);
    let v = transcript::verify_bytes("fuzz.jsonl", data).map_err(msg)?;
    let _ = transcript::render_markdown(&v);
    Ok(())
}

/// `transcript verify`'s check of signed sign-offs, on transcript lines whose hash chain
/// is not checked (so that mutations reach the check).
pub fn signoff_transcript(data: &[u8]) -> Result<(), String> {
    let f = TempFile::new(data, "signoffs.jsonl")?;
    let entries = officiant::approvals::signoff::read_entries(f.path())?;
    officiant::approvals::signoff::check_transcript(&entries).map(|_| ())
}

/// The bytes a PKCS#11 module returns for an object's attributes (records: 4-byte type,
/// 2-byte length, value), decoded as `objects` and `public_key` decode a live module's.
pub fn pkcs11_attributes(data: &[u8]) -> Result<(), String> {
    let d = officiant::hsm::pkcs11::attrs::decode_raw(data)?;
    let _ = (&d.class, &d.label, &d.id, &d.flags);
    if let Ok(k) = &d.public_key {
        use_public_key(k);
    }
    Ok(())
}

/// Everything the fuse and verify commands do with a `--pubkey`/`--key` file's key.
fn use_public_key(k: &PublicKey) {
    let _ = (
        k.to_spki_der(),
        k.to_pem(),
        k.fingerprint(),
        k.bits(),
        k.describe(),
    );
    let _ = (k.ec_xy(), k.default_scheme(), keys::KeyAlgorithm::of(k));
    let _ = esp32::key_material(k);
    let _ = esp32::key_digest(k);
    let _ = officiant::formats::stm32::key_hash(k);
    let _ = officiant::formats::stm32::pkh_mp15(k);
    let _ = officiant::formats::tfa::rotpk_sha256(k, true);
    let _ = hab4::srk_record(k, true);
    let _ = stm32_image::header_key(stm32_image::Layout::V2, k);
    let _ = raw::scheme(k, None);
    let d = k.default_scheme().hash().digest(b"fuzz");
    let _ = k.verify_digest(k.default_scheme(), &d, &[0u8; 64]);
}

/// `--pubkey`/`--key` files: PEM or DER SPKI, PKCS#1 public key, certificate.
pub fn public_key(data: &[u8]) -> Result<(), String> {
    let _ = PublicKey::from_certificate_der(data).map(|k| use_public_key(&k));
    let k = PublicKey::from_bytes(data).map_err(msg)?;
    use_public_key(&k);
    Ok(())
}

/// `import-key --key-file` (and the import-key step): plain and encrypted keys.
pub fn private_key(data: &[u8]) -> Result<(), String> {
    let _ = PrivateKey::from_bytes(data, None);
    let pass = Secret::new(PASSPHRASE.as_bytes().to_vec());
    let k = PrivateKey::from_bytes(data, Some(&pass)).map_err(msg)?;
    use_public_key(k.public_key());
    Ok(())
}

/// `fuses hab4 --cert …` (SRK table), and an issuer certificate for issue-certificate.
pub fn certificate(data: &[u8]) -> Result<(), String> {
    let _ = officiant::pki::certificate_der(data)
        .map(|der| officiant::pki::verify_issued(&der, &fixture_p256()));
    // The same file given as several SRKs: the table and fuse hash of 1 and 4 of them.
    if let Ok(t) = hab4::srk_table(&[data.to_vec(), data.to_vec(), data.to_vec(), data.to_vec()]) {
        let _ = (t.table_bytes(), t.fuse_hash(), t.is_ca());
    }
    let srk = hab4::srk_from_certificate(data)?;
    let t = hab4::SrkTable::from_srks(vec![srk]).map_err(msg)?;
    let h = t.fuse_hash();
    let _ = (t.table_bytes(), hab4::fuse_words(&h));
    let _ = hab4::fuse_commands(&h, hab4::Soc::Imx8m);
    Ok(())
}

/// The P-256 key of tests/fixtures/keys/p256.pk8.pem: the key ESP32/STM32 seeds are
/// signed with, and the `--pubkey` the verify targets check against.
pub fn fixture_p256() -> PublicKey {
    match PrivateKey::from_bytes(
        include_bytes!("../../tests/fixtures/keys/p256.pk8.pem"),
        None,
    ) {
        Ok(k) => k.public_key().clone(),
        Err(e) => panic!("fixture p256.pk8.pem does not load: {e}"),
    }
}

fn fixture_public(pem: &[u8]) -> PublicKey {
    match PublicKey::from_bytes(pem) {
        Ok(k) => k,
        Err(e) => panic!("fixture public key does not load: {e}"),
    }
}

/// Keys of every kind, for the signature decoders.
pub fn fixture_keys() -> Vec<PublicKey> {
    vec![
        fixture_p256(),
        fixture_public(include_bytes!("../../tests/fixtures/keys/p384.pub.pem")),
        fixture_public(include_bytes!("../../tests/fixtures/keys/p521.pub.pem")),
        fixture_public(include_bytes!("../../tests/fixtures/keys/rsa2048.pub.pem")),
        fixture_public(include_bytes!("../../tests/fixtures/keys/rsa3072.pub.pem")),
    ]
}

/// `verify --format esp32-sbv2 --pubkey P256 IMAGE`, and the library's in-memory reader.
pub fn esp32_verify(data: &[u8]) -> Result<(), String> {
    let key = fixture_p256();
    if data.len() == esp32::SECTOR_LEN {
        let _ = esp32::parse_sector(data);
    }
    for slot in data.chunks(esp32::BLOCK_LEN).take(4) {
        let _ = esp32::parse_block(slot);
    }
    if let Ok(img) = esp32::read_signed_image(data, data.len() as u64) {
        let _ = esp32::verify_signed_image(&img, &key);
    }
    let f = TempFile::new(data, "esp32-signed.bin")?;
    signing::verify_file(Format::Esp32Sbv2, &key, f.path(), None, None).map_err(msg)?;
    Ok(())
}

/// `verify --format stm32mp15|stm32mp13 --pubkey P256 IMAGE`, and the header accessors.
pub fn stm32_verify(data: &[u8]) -> Result<(), String> {
    let key = fixture_p256();
    let mut last = Err(String::new());
    for (layout, format) in [
        (stm32_image::Layout::V1, Format::Stm32Mp15),
        (stm32_image::Layout::V2, Format::Stm32Mp13),
    ] {
        if let Ok(h) = stm32_image::Header::parse(layout, data) {
            let _ = (h.check_structure(), h.key(), h.auth(), h.is_signed());
            let _ = (h.signed_part().len(), h.signature().len(), h.binary_type());
            let _ = (
                h.image_length(),
                h.entry_point(),
                h.header_version(),
                h.checksum(),
            );
        }
        let f = TempFile::new(data, "image.stm32")?;
        let r = signing::verify_file(format, &key, f.path(), None, None).map_err(msg);
        if r.is_ok() {
            last = Ok(());
        } else if last.is_err() {
            last = r.map(|_| ());
        }
    }
    last
}

/// A detached `raw` signature file, decoded and checked against keys of every kind.
pub fn raw_signature(data: &[u8]) -> Result<(), String> {
    let _ = keys::ecdsa_fixed_to_der(data);
    for c in [Curve::P256, Curve::P384, Curve::P521] {
        let _ = keys::ecdsa_to_fixed(c, data);
    }
    let mut ok = false;
    for k in fixture_keys() {
        let _ = raw::decode(&k, data);
        for padding in [None, Some(raw::Padding::Pss), Some(raw::Padding::Pkcs1)] {
            if let Ok(scheme) = raw::scheme(&k, padding) {
                let digest = scheme.hash().digest(b"officiant fuzz payload");
                ok |= raw::verify(&k, scheme, &digest, data).is_ok();
            }
        }
    }
    let _ = HashAlg::Sha256;
    if ok {
        Ok(())
    } else {
        Err("no key verifies".into())
    }
}

/// Backend URIs (`sim:`, `pkcs11:` RFC 7512, `yubihsm:`), secret sources, and the other
/// small text fields a user types or a script holds.
pub fn uri(data: &[u8]) -> Result<(), String> {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();
    let _ = officiant::hsm::uri::redact(s);
    let _ = SecretSource::parse(s).map(|x| x.to_string());
    let _ = officiant::pki::parse_name(s);
    let _ = Format::parse(s);
    let _ = keys::KeyAlgorithm::parse(s);
    let _ = raw::Padding::parse(s);
    let _ = officiant::pki::profiles::Profile::parse(s);
    let _ = s.parse::<hab4::Soc>();
    use officiant::hsm::admin as caps;
    let words: Vec<String> = s.split(',').map(str::to_string).collect();
    let _ = caps::parse_capabilities("fuzz", &words);
    let _ = caps::parse_domains("fuzz", &words);
    let _ = caps::parse_object_id("fuzz", s);
    if let Some(rest) = s.strip_prefix("pkcs11:") {
        if let Ok(u) = officiant::hsm::pkcs11::uri::Pkcs11Uri::parse(rest) {
            let _ = (u.names_token(), u.module());
        }
    }
    if let Some(rest) = s.strip_prefix("yubihsm:") {
        let _ = officiant::hsm::yubihsm::uri::YubiUri::parse(rest);
    }
    let u = officiant::hsm::uri::BackendUri::parse(s).map_err(msg)?;
    let _ = u.to_string();
    Ok(())
}

/// The PIN the sim_store seed's token was initialized with (a rehearsal value).
pub const SIM_PIN: &str = "fuzz-user-pin";

/// A rehearsal token's store (`sim:DIR`'s store.json, which the user can hand over or
/// edit): open it, list and read its objects, log in, sign with each key.
pub fn sim_store(data: &[u8]) -> Result<(), String> {
    use officiant::hsm::UserType;
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "officiant-fuzz-sim-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(msg)?;
    let r = (|| {
        std::fs::write(dir.join("store.json"), data).map_err(msg)?;
        let mut t = officiant::hsm::sim::open(&dir).map_err(msg)?;
        let _ = (t.info().map(|i| format!("{i:?}")), t.capabilities());
        let objects = t.list_objects().map_err(msg)?;
        let pin = Secret::new(SIM_PIN.as_bytes().to_vec());
        let logged_in = t.login(UserType::User, &pin).is_ok();
        for o in &objects {
            let _ = (o.key_type(), format!("{o:?}"));
            if let Ok(k) = t.public_key(&o.label) {
                use_public_key(&k);
                if logged_in {
                    let s = k.default_scheme();
                    let _ = t.sign(&o.label, s, &s.hash().digest(b"fuzz"));
                }
            }
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// An OpenSSH allowed signers file (a policy's `allowed-signers`), and what a policy does
/// with its lines.
pub fn allowed_signers(data: &[u8]) -> Result<(), String> {
    use officiant::approvals::signers::AllowedSigners;
    let text = std::str::from_utf8(data).map_err(msg)?;
    let s = AllowedSigners::parse("fuzz_signers", text).map_err(msg)?;
    for e in &s.entries {
        let _ = (e.render_for("alice"), e.fingerprint(), e.names("alice"));
        let _ = (
            e.allows_namespace("officiant-approval"),
            e.valid_at(1_800_000_000),
        );
    }
    Ok(())
}

/// A signing request (`sign --request`) and an approval signature file (`--approval`).
pub fn approval_request(data: &[u8]) -> Result<(), String> {
    use officiant::approvals::Request;
    let sig = officiant::approvals::parse_signature(Path::new("fuzz.sig"), data).map(|_| ());
    let r = Request::parse("fuzz.json", data).map_err(msg);
    if let Ok(r) = &r {
        let _ = (r.to_string(), r.not_after_secs(), r.counter_label(0));
    }
    sig.map_err(msg).or(r.map(|_| ()))
}

/// A policy file (`policy set --policy`, beside a fixed allowed signers file) and a
/// policy object as a token stores it.
pub fn approval_policy(data: &[u8]) -> Result<(), String> {
    use officiant::approvals::Policy;
    const SIGNERS: &str = "alice ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIByI32DqnUeMKYiDlK8Mj2aXqxU6GDmay94cUM6NDsX1\n\
        bob namespaces=\"officiant-*\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICjr/3smfUWry++hW2tKq9Z/LL8HMviek5LiAwceFdHS\n";
    let signers = TempFile::new(SIGNERS.as_bytes(), "signers")?;
    let dir = signers.path().parent().ok_or("no dir")?.to_path_buf();
    let name = signers
        .path()
        .file_name()
        .ok_or("no name")?
        .to_string_lossy()
        .into_owned();
    let text = std::str::from_utf8(data).map_err(msg)?;
    // The seed names the signers file as "SIGNERS"; point it at this run's copy.
    let text = text.replace("SIGNERS", &name);
    let stored = Policy::from_stored("fuzz policy object", data).map(|p| p.sha256());
    let parsed = Policy::parse("fuzz.toml", &dir, &text).map(|p| {
        let back = Policy::from_stored("round trip", &p.to_stored());
        assert!(back.is_ok(), "a parsed policy does not read back: {back:?}");
    });
    parsed.map_err(msg).or(stored.map(|_| ()).map_err(msg))
}

/// The spsdk-signed HAB4 fixture (tests/fixtures/imx/make.sh) and its SRK table.
pub const HAB4_SIGNED: &[u8] = include_bytes!("../../tests/fixtures/imx/hab4-signed.bin");
pub const HAB4_TABLE: &[u8] = include_bytes!("../../tests/fixtures/imx/hab4-table.bin");

/// The IVT layout of an image held in memory.
fn hab4_layout(data: &[u8]) -> Result<officiant::formats::imx::ivt::Layout, String> {
    use officiant::formats::imx::ivt::{Layout, IVT_OFFSETS};
    let candidates: Vec<(u64, &[u8])> = IVT_OFFSETS
        .iter()
        .filter_map(|&o| data.get(o as usize..).map(|b| (o, b)))
        .collect();
    Layout::find(&candidates, data.len() as u64, |o| {
        data.get(o as usize..(o as usize).checked_add(12)?)
            .map(<[u8]>::to_vec)
    })
    .map_err(msg)
}

/// The CSF and IMG certificates (DER) inside the signed fixture.
fn hab4_fixture_certs() -> Result<(Vec<u8>, Vec<u8>), String> {
    use officiant::formats::imx::{csf, hab4_image};
    let layout = hab4_layout(HAB4_SIGNED)?;
    let at = hab4_image::csf_offset(&layout).map_err(msg)? as usize;
    let region = &HAB4_SIGNED[at..];
    let c = csf::Csf::parse(region).map_err(msg)?;
    let certs: Vec<Vec<u8>> = c
        .commands
        .iter()
        .filter_map(|cmd| match cmd {
            csf::Command::InstallKey(k) if k.cert_format == csf::FMT_X509 => {
                csf::blob(region, k.location, csf::CERT_TAG)
                    .ok()
                    .map(|(_, d)| d.to_vec())
            }
            _ => None,
        })
        .collect();
    match certs.as_slice() {
        [a, b] => Ok((a.clone(), b.clone())),
        _ => Err("fixture has no CSF and IMG certificates".into()),
    }
}

/// `sign`/`verify --format imx-hab4` on an image: the IVT and boot data, the signing
/// plan against the fixture's SRK table and certificates, and the whole verification.
pub fn imx_ivt(data: &[u8]) -> Result<(), String> {
    use officiant::formats::imx::hab4_image::{KeyRef, Plan, SignSpec};
    if let Ok(layout) = hab4_layout(data) {
        let _ = (
            layout.boot_end_offset(),
            layout.address(0),
            layout.boot_data_offset(),
        );
        let (csf_der, img_der) = hab4_fixture_certs()?;
        let csf_key = PublicKey::from_certificate_der(&csf_der).map_err(msg)?;
        let img_key = PublicKey::from_certificate_der(&img_der).map_err(msg)?;
        let at_csf = layout
            .file_offset(layout.ivt.csf)
            .and_then(|o| data.get(o as usize..))
            .map(|b| &b[..b.len().min(4096)])
            .unwrap_or_default();
        let spec = SignSpec {
            srk_table: HAB4_TABLE,
            srk_index: 0,
            csf_cert: &csf_der,
            img_cert: Some(&img_der),
            fast_auth: false,
            unlock: vec![],
            version: None,
            time: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
        };
        let csf_ref = KeyRef {
            label: "csf",
            public: &csf_key,
        };
        let img_ref = KeyRef {
            label: "img",
            public: &img_key,
        };
        if let Ok(plan) = Plan::new(&layout, at_csf, &spec, csf_ref, Some(img_ref)) {
            let mut copy = data[..data.len().min(1 << 16)].to_vec();
            plan.patch(0, &mut copy);
            let _ = (
                plan.covered(),
                plan.block(),
                plan.output_len(),
                plan.reserved(),
            );
            let _ = Plan::check_blank(0, data);
        }
    }
    let f = TempFile::new(data, "hab4.bin")?;
    signing::imx_hab4::verify(f.path(), HAB4_TABLE).map_err(msg)?;
    Ok(())
}

/// A CSF region (header, commands, SRK table, certificates, CMS signatures) as
/// `verify --format imx-hab4` walks it, behind the fixture image's IVT.
pub fn imx_csf(data: &[u8]) -> Result<(), String> {
    use officiant::formats::imx::{cms, csf, hab4_image};
    let layout = hab4_layout(HAB4_SIGNED)?;
    if let Ok(c) = csf::Csf::parse(data) {
        let _ = (c.to_bytes(), c.len());
        for cmd in &c.commands {
            let _ = (cmd.name(), cmd.to_bytes());
            let loc = match cmd {
                csf::Command::InstallKey(k) => Some(k.location),
                csf::Command::AuthData(a) => Some(a.location),
                _ => None,
            };
            if let Some(loc) = loc {
                for tag in [csf::CERT_TAG, csf::SIG_TAG] {
                    if let Ok((_, body)) = csf::blob(data, loc, tag) {
                        let _ = cms::verify_detached(body, &fixture_p256(), None, &[0; 32]);
                        let _ = PublicKey::from_certificate_der(body);
                        let _ = hab4::SrkTable::parse(body);
                    }
                }
            }
        }
    }
    let v = hab4_image::verify_csf(&layout, data, HAB4_TABLE).map_err(msg)?;
    for d in &v.data {
        let _ = d.check(&[0; 32]);
    }
    Ok(())
}

/// The spsdk-signed AHAB fixture (tests/fixtures/imx/make.sh) and its SRK table.
pub const AHAB_SIGNED: &[u8] = include_bytes!("../../tests/fixtures/imx/ahab-signed.bin");
pub const AHAB_TABLE: &[u8] = include_bytes!("../../tests/fixtures/imx/ahab-table.bin");

/// `verify --format imx-ahab` (and the first half of signing) on an AHAB image: the
/// container header, image array, signature block, SRK table and signature.
pub fn ahab_container(data: &[u8]) -> Result<(), String> {
    use officiant::formats::imx::{ahab, ahab_srk};
    if let Ok(c) = ahab::Container::parse(data) {
        let _ = (c.srk_set(), c.used_srk(), c.revoke_mask(), c.to_bytes());
        let _ = (
            c.signature(),
            c.signed_data(),
            c.has_certificate(),
            c.has_blob(),
        );
        if let Some(t) = c.srk_table() {
            if let Ok(t) = ahab_srk::SrkTable::parse(t) {
                let _ = (t.sha256(), t.sha512(), t.is_ca());
                for srk in t.srks() {
                    let _ = (ahab::scheme_for(srk), srk.describe());
                }
            }
        }
        for img in &c.images {
            let _ = (img.hash_alg(), img.encrypted(), img.hash_matches(&[0; 32]));
        }
        if let Ok(t) = ahab_srk::SrkTable::parse(AHAB_TABLE) {
            let _ = ahab::verify(&c, &t);
        }
    }
    let f = TempFile::new(data, "ahab.bin")?;
    signing::imx_ahab::verify(f.path(), AHAB_TABLE).map_err(msg)?;
    Ok(())
}
