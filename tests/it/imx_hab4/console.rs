//! The console signs and verifies HAB4 images through its worker: the Key field is the
//! CSF key, Options carry the SRK table and the IMG key, and verify takes the SRK table
//! whose hash is fused (the sign screen's "SRK table" field). The worker calls the same
//! services as `officiant sign` and `verify`; the images are judged like every image
//! here, by nxpimage and openssl, and a table of another PKI or a changed byte fails.

use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use officiant::secret::Secret;
use officiant::signing::{Format, FormatOptions};
use officiant::tui::event::Event;
use officiant::tui::worker::{self, Request, WorkerMsg};

use super::judges::{nxpimage_checks, openssl_checks};
use super::*;

/// The worker's next report (token snapshots and busy notices skipped).
fn next(rx: &Receiver<Event>) -> WorkerMsg {
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Event::Worker(WorkerMsg::Snapshot { .. })) => {}
            Ok(Event::Worker(m)) => return m,
            Ok(_) => {}
            Err(e) => panic!("the worker went quiet: {e}"),
        }
    }
}

fn verify_at_console(
    tx: &std::sync::mpsc::Sender<Request>,
    rx: &Receiver<Event>,
    image: &Path,
    table: &Path,
) -> (bool, Vec<String>) {
    tx.send(Request::VerifyFile {
        format: Format::ImxHab4,
        padding: None,
        pubkey: table.to_path_buf(),
        input: image.to_path_buf(),
        signature: None,
    })
    .unwrap();
    match next(rx) {
        WorkerMsg::Verified { ok, lines, .. } => (ok, lines),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_console_signs_a_hab4_image_and_verifies_it_against_the_srk_table() {
    let p = pki();
    let tok = p.token();
    let (etx, rx) = channel();
    let tx = worker::spawn_with(format!("sim:{}", tok.path().display()), etx, None);
    for set in ["rsa", "p256"] {
        let out = tok.path().join(format!("{set}-console.bin"));
        let options = FormatOptions::parse_line(&format!(
            "--srk-table {} --srk-index 0 --csf-cert {} --img-key {set}-IMG1 --img-cert {}",
            p.table(set).display(),
            p.cert(set, "CSF1").display(),
            p.cert(set, "IMG1").display(),
        ))
        .unwrap();
        tx.send(Request::SignFile {
            key: format!("{set}-CSF1"),
            format: Format::ImxHab4,
            padding: None,
            options,
            pin: Secret::from_string(PIN.to_string()),
            input: sample(),
            output: out.clone(),
            transcript: tok.path().join("console-signing.jsonl"),
        })
        .unwrap();
        match next(&rx) {
            WorkerMsg::Signed { output, .. } => assert_eq!(output, out),
            other => panic!("{set}: {other:?}"),
        }
        nxpimage_checks(
            &out,
            &p.table(set),
            &[&p.cert(set, "CSF1"), &p.cert(set, "IMG1")],
        );
        openssl_checks(&out, &[(1, p.cert(set, "CSF1")), (2, p.cert(set, "IMG1"))]);

        let (ok, lines) = verify_at_console(&tx, &rx, &out, &p.table(set));
        assert!(ok, "{set}: {lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("(Authenticate Data, key 2)")),
            "{set}: {lines:?}"
        );

        // Another PKI's table (another fuse value): refused.
        let other = if set == "rsa" { "p256" } else { "rsa" };
        let (ok, lines) = verify_at_console(&tx, &rx, &out, &p.table(other));
        assert!(!ok, "{set} verified against {other}'s SRK table: {lines:?}");

        // One byte of the application changed: refused, naming the data command.
        let mut bytes = std::fs::read(&out).unwrap();
        bytes[0x1800] ^= 1;
        let tampered = tok.path().join(format!("{set}-tampered.bin"));
        std::fs::write(&tampered, &bytes).unwrap();
        let (ok, lines) = verify_at_console(&tx, &rx, &tampered, &p.table(set));
        assert!(!ok, "{set}: a changed byte verified");
        assert!(
            lines.join(" ").contains("Authenticate Data"),
            "{set}: {lines:?}"
        );
    }
}
