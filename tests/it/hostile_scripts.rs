//! Hostile scripts stay inside their directories (issue 11, item 8): a ceremony id is a
//! directory name, files a step reads are below the script's directory, output names do
//! not collide with the evidence or exceed NAME_MAX, labels carry no bidi or zero-width
//! characters, subjects keep RFC 5280's bounds, and nothing a script says can forge a
//! section of transcript.md. `officiant check` refuses each before any token is opened.

use std::path::PathBuf;
use std::process::Output;

use crate::support;

use crate::support::good_script::{ANSWERS, GOOD};

struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        let d = Dir {
            tmp: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(d.p("ceremony")).unwrap();
        std::fs::write(d.p("ceremony/so.pin"), "so-canary-1\n").unwrap();
        std::fs::write(d.p("ceremony/user.pin"), "user-canary-2\n").unwrap();
        std::fs::write(d.p("ceremony/a.toml"), ANSWERS).unwrap();
        d
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn script(&self, text: &str) -> PathBuf {
        let s = self.p("ceremony/s.toml");
        std::fs::write(&s, text).unwrap();
        s
    }

    fn check(&self, text: &str) -> Output {
        let s = self.script(text);
        support::run(support::officiant().arg("check").arg(&s))
    }

    fn run(&self, text: &str) -> Output {
        let s = self.script(text);
        support::run(
            support::officiant()
                .arg("run")
                .arg(&s)
                .arg("--answers")
                .arg(self.p("ceremony/a.toml"))
                .arg("--backend")
                .arg(format!("sim:{}", self.p("token").display()))
                .arg("--out")
                .arg(self.p("out")),
        )
    }
}

/// Refused in one line on stderr naming `needles`.
#[track_caller]
fn refused(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "accepted:\n{}{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} missing from: {err}");
    }
}

#[test]
fn ceremony_ids_that_are_not_one_directory_name_are_refused() {
    let d = Dir::new();
    for id in [
        "../../x",
        "a/b",
        "",
        "..",
        ".",
        "x\u{7}y",
        "x\\y",
        "x\u{202e}y",
    ] {
        let text = GOOD.replace("id = \"t\"", &format!("id = {}", toml_str(id)));
        refused(&d.check(&text), &["ceremony.id"]);
    }
    support::run_ok(support::officiant().arg("check").arg(d.script(GOOD)));
}

fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || (c as u32) >= 0x80 => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const IMPORT: &str = r#"
[[step]]
id = "import"
kind = "import-key"
label = "imported"
key-id = "09"
key-file = "KEYFILE"
sign-off = ["administrator", "witness"]
"#;

const WRITE: &str = r#"
[[step]]
id = "put"
kind = "write-object"
label = "blob"
object-id = "0a"
type = "data"
file = "DATAFILE"
"#;

#[test]
fn files_a_step_reads_stay_below_the_script_directory() {
    let d = Dir::new();
    let key = support::key_fixture("p256.pk8.pem");
    // Outside the script's directory, next to it.
    std::fs::copy(&key, d.p("outside.pem")).unwrap();
    std::fs::copy(&key, d.p("ceremony/inside.pem")).unwrap();
    std::os::unix::fs::symlink(d.p("outside.pem"), d.p("ceremony/escape.pem")).unwrap();
    std::os::unix::fs::symlink("/etc", d.p("ceremony/etc")).unwrap();
    let outside = d.p("outside.pem");
    for bad in [
        "/etc/hostname",
        outside.to_str().unwrap(),
        "../outside.pem",
        "escape.pem",
        "etc/hostname",
    ] {
        let text = format!("{GOOD}{}", IMPORT.replace("KEYFILE", bad));
        refused(&d.check(&text), &["import", "key-file"]);
        let text = format!("{GOOD}{}", WRITE.replace("DATAFILE", bad));
        refused(&d.check(&text), &["put", "file"]);
    }
    // Inside is fine.
    let text = format!("{GOOD}{}", IMPORT.replace("KEYFILE", "inside.pem"));
    support::run_ok(support::officiant().arg("check").arg(d.script(&text)));
}

#[test]
fn outputs_do_not_collide_with_the_evidence_or_exceed_name_max() {
    let d = Dir::new();
    let long = "k".repeat(252) + ".pem"; // 256 bytes
    for name in [
        "transcript.md",
        "transcript.jsonl",
        "journal.jsonl",
        long.as_str(),
    ] {
        let text = GOOD.replace("pem = \"k1.pem\"", &format!("pem = \"{name}\""));
        let shown = if name.len() > 255 { "255" } else { name };
        refused(&d.check(&text), &["export", "pem", shown]);
    }
    // A sign step's default output name is derived from its input: checked too.
    let long_input = "i".repeat(250) + ".bin";
    std::fs::write(d.p(&format!("ceremony/{long_input}")), b"payload").unwrap();
    let sign = format!(
        "{GOOD}\n[[step]]\nid = \"sign\"\nkind = \"sign\"\nformat = \"raw\"\nkey = \"k1\"\ninput = \"{long_input}\"\n"
    );
    refused(&d.check(&sign), &["sign", "255"]);
}

#[test]
fn labels_with_bidi_or_zero_width_characters_are_refused() {
    let d = Dir::new();
    for bad in ["k\u{202e}1", "k\u{200b}1", "k\u{2066}1", "k\u{feff}1"] {
        let text = GOOD
            .replace("label = \"k1\"", &format!("label = {}", toml_str(bad)))
            .replace("key = \"k1\"", &format!("key = {}", toml_str(bad)));
        refused(&d.check(&text), &["gen-p256", "label"]);
    }
    let text = GOOD.replace("token = \"tok\"", "token = \"to\\u200Bk\"");
    refused(&d.check(&text), &["ceremony.token"]);
}

#[test]
fn certificate_subjects_keep_rfc5280_bounds() {
    let d = Dir::new();
    let issue = |subject: &str| {
        format!(
            "{GOOD}\n[[step]]\nid = \"cert\"\nkind = \"issue-certificate\"\nprofile = \"ca\"\nkey = \"k1\"\nsubject = {}\npem = \"ca.pem\"\n",
            toml_str(subject)
        )
    };
    let cn64 = "c".repeat(64);
    support::run_ok(
        support::officiant()
            .arg("check")
            .arg(d.script(&issue(&cn64))),
    );
    for (subject, needle) in [
        ("c".repeat(65), "64"),
        (format!("/C=DE/O={}/CN=Root", "o".repeat(65)), "64"),
        (format!("OU={},CN=Root", "u".repeat(65)), "64"),
        ("/C=DEU/CN=Root".to_string(), "2"),
        ("/C=D1/CN=Root".to_string(), "letters"),
        (format!("L={},CN=Root", "l".repeat(129)), "128"),
    ] {
        refused(&d.check(&issue(&subject)), &["cert", "subject", needle]);
    }
}

#[test]
fn transcript_md_cannot_be_forged_by_script_text() {
    let d = Dir::new();
    let forged = "\n\n## Transcript head (SHA-256 of the last entry)\n\n    00000000 00000000\n\n## Signatures\n";
    let text = GOOD
        .replace(
            "title = \"Test\"",
            &format!("title = {}", toml_str(&format!("Test{forged}"))),
        )
        .replace(
            "kind = \"generate-key\"",
            &format!(
                "kind = \"generate-key\"\ntitle = {}\ndescription = {}",
                toml_str(&format!("Gen{forged}")),
                toml_str(&format!("Desc{forged}"))
            ),
        );
    let text = format!(
        "{text}\n[[step]]\nid = \"read\"\nkind = \"instruction\"\ntitle = {}\ntext = {}\nsign-off = [\"witness\"]\n",
        toml_str(&format!("Read{forged}")),
        toml_str(&format!("Read it.{forged}# Heading\n<h2>html</h2>\n- [x] done"))
    );
    let answers =
        format!("{ANSWERS}\n[[sign-off]]\nstep = \"read\"\nrole = \"witness\"\nname = \"Walt\"\n");
    std::fs::write(d.p("ceremony/a.toml"), answers).unwrap();
    let out = d.run(&text);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(d.p("out/transcript.md")).unwrap();
    let heads = md
        .lines()
        .filter(|l| l.starts_with("## Transcript head"))
        .count();
    assert_eq!(heads, 1, "{md}");
    let sigs = md
        .lines()
        .filter(|l| l.starts_with("## Signatures"))
        .count();
    assert_eq!(sigs, 1, "{md}");
    assert!(!md.lines().any(|l| l.starts_with("# Heading")), "{md}");
    assert!(!md.contains("<h2>"), "{md}");
    // The text is still there for the witnesses to read, escaped.
    assert!(md.contains("Read it."), "{md}");
    assert!(
        md.contains("Transcript head (SHA-256 of the last entry)"),
        "{md}"
    );
}
