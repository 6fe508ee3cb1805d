//! Both ceremonies killed at every crash point: each rerun completes, no key twice, every
//! share still rebuilds the key.

use super::*;

/// Run `point(n)` for n = 1, 2, …, two at a time, until a run is not killed (`point`
/// returns false: there is no crash point n). Returns how many points there were.
fn every_crash_point(point: impl Fn(usize) -> bool + Sync) -> usize {
    let mut n = 1;
    loop {
        let crashed: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = [n, n + 1]
                .into_iter()
                .map(|k| {
                    let point = &point;
                    s.spawn(move || point(k))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        if let Some(k) = crashed.iter().position(|c| !c) {
            return n + k - 1;
        }
        n += 2;
        assert!(n < 400, "more than 399 crash points?");
    }
}

/// Killed at crash point `n` (false if the run got past its last one), run again: the
/// rerun must succeed.
fn kill_then_rerun(n: usize, run: impl Fn(Option<usize>) -> Output) -> bool {
    let first = run(Some(n));
    if first.status.success() {
        return false;
    }
    assert!(
        first.status.code().is_none(),
        "crash point {n}: expected an abort, got {}: {}",
        first.status,
        String::from_utf8_lossy(&first.stderr)
    );
    let again = run(None);
    assert!(
        again.status.success(),
        "rerun after crash point {n}: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    true
}

/// The backup ceremony killed at every crash point (each point its own rehearsal and a
/// new token: `target(r, n, name, label)`), then the restore ceremony likewise, each
/// point onto a new token, from one uninterrupted backup.
fn killed_everywhere<'h>(target: &(dyn Fn(&Rehearsal, usize, &str, &str) -> Target<'h> + Sync)) {
    let n_backup = every_crash_point(|n| {
        let r = Rehearsal::new();
        let t = target(&r, n, "bk", "officiant-backup");
        let backend = t.ready(&r);
        let out = "out/backup";
        let ran = kill_then_rerun(n, |crash| {
            r.run(t.hsm, "backup", "backup.answers.toml", &backend, out, crash)
        });
        if !ran {
            return false;
        }
        let objects = r.objects(t.hsm, &backend);
        let keys = objects
            .iter()
            .filter(|o| o.starts_with("private-key"))
            .count();
        let wraps = objects.iter().filter(|o| o.starts_with("wrap-key")).count();
        assert_eq!((keys, wraps), (2, 1), "crash point {n}: {objects:?}");
        // Every custodian holds a share of the key on the token: any two rebuild the
        // check value the transcript and the manifest record.
        let shares = r.shares();
        let kcv = openssl_kcv(r.dir.path(), &rebuilt_key(&[&shares[2], &shares[1]]));
        assert_eq!(
            r.result(out, "gen-wrap")["details"]["check_value"],
            kcv.as_str(),
            "crash point {n}"
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(r.p(out).join("backup/manifest.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["wrap_key"]["check_value"], kcv.as_str(), "{n}");
        let mut names: Vec<String> = std::fs::read_dir(r.p(out).join("backup"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "crash point {n}: {names:?}");
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        true
    });
    assert!(
        n_backup >= 30,
        "the backup has only {n_backup} crash points"
    );

    // One uninterrupted backup for every restore.
    let r = Rehearsal::new();
    let t = target(&r, 0, "bk", "officiant-backup");
    let backend = t.ready(&r);
    let mut log = Vec::new();
    r.run_ok(
        &mut log,
        t.hsm,
        "backup",
        "backup.answers.toml",
        &backend,
        "out/backup",
    );
    let n_restore = every_crash_point(|n| {
        let t = target(&r, n, &format!("rs{n}"), "officiant-restore");
        let backend = t.ready(&r);
        let out = format!("out/restore-{n}");
        let ran = kill_then_rerun(n, |crash| {
            r.run(
                t.hsm,
                "restore",
                "restore.answers.toml",
                &backend,
                &out,
                crash,
            )
        });
        if !ran {
            return false;
        }
        let objects = r.objects(t.hsm, &backend);
        let keys = objects
            .iter()
            .filter(|o| o.starts_with("private-key"))
            .count();
        assert_eq!(keys, 2, "crash point {n}: each key once: {objects:?}");
        assert!(
            objects.iter().all(|o| !o.starts_with("wrap-key")),
            "crash point {n}: the wrap key is left: {objects:?}"
        );
        openssl_verifies(
            &r.p("out/backup/fw-signing-p256.pub.pem"),
            &r.p(&format!("{out}/payload.bin.sig")),
            &r.p("ceremonies/samples/payload.bin"),
        );
        true
    });
    assert!(
        n_restore >= 20,
        "the restore has only {n_restore} crash points"
    );
    eprintln!("killed and resumed at {n_backup} backup and {n_restore} restore points");
}

#[test]
fn backup_and_restore_ceremonies_resume_after_a_kill_at_every_crash_point_on_sim() {
    killed_everywhere(&|r, _, name, label| Target::sim(r, name, label));
}

#[test]
fn backup_and_restore_ceremonies_resume_after_a_kill_at_every_crash_point_on_softhsm() {
    // A token directory per point: two points run at once, and init-token takes the
    // first free token of its directory.
    let dirs: Vec<SoftHsm> = (0..200)
        .map(|_| SoftHsm::new().expect("SoftHSM is the judge here: install softhsm2"))
        .collect();
    killed_everywhere(&|_, n, name, _| Target::softhsm(&dirs[n], name));
}

/// A backup interrupted after its first file is on disk, then someone adds a file to the
/// backup directory or changes one the backup wrote: the rerun stops, names the file and
/// leaves it as it is (a backup set handed to custodians must hold only what this run
/// wrapped). Once the directory holds only this run's files again, the rerun completes.
#[test]
fn a_file_not_written_by_an_interrupted_backup_stops_the_rerun() {
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    for n in 1.. {
        assert!(n < 400, "no crash point leaves a backup file on disk");
        let r = Rehearsal::new();
        let t = Target::sim(&r, "bk", "officiant-backup");
        let backend = t.ready(&r);
        let out = "out/backup";
        let run = |crash| r.run(t.hsm, "backup", "backup.answers.toml", &backend, out, crash);
        let first = run(Some(n));
        assert!(
            first.status.code().is_none(),
            "crash point {n} ran past the backup: {}",
            stderr(&first)
        );
        let dir = r.p(out).join("backup");
        let mut written: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| {
                d.map(|e| e.unwrap().path())
                    .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        let Some(ours) = written.pop() else {
            continue;
        };

        // Someone else's file beside the backup's.
        let foreign = dir.join("notes.txt");
        std::fs::write(&foreign, b"put here by someone else").unwrap();
        let refused = run(None);
        assert!(!refused.status.success(), "a foreign file was accepted");
        assert!(
            stderr(&refused).contains(&format!(
                "{} was not written by this run's interrupted backup",
                foreign.display()
            )),
            "{}",
            stderr(&refused)
        );
        assert_eq!(
            std::fs::read(&foreign).unwrap(),
            b"put here by someone else"
        );
        std::fs::remove_file(&foreign).unwrap();

        // A file the backup wrote, changed.
        let bytes = std::fs::read(&ours).unwrap();
        let mut changed = bytes.clone();
        changed.push(b'\n');
        std::fs::write(&ours, &changed).unwrap();
        let refused = run(None);
        assert!(
            !refused.status.success(),
            "a changed backup file was accepted"
        );
        assert!(
            stderr(&refused).contains(&format!(
                "{} was not written by this run's interrupted backup",
                ours.display()
            )),
            "{}",
            stderr(&refused)
        );
        assert_eq!(std::fs::read(&ours).unwrap(), changed);
        std::fs::write(&ours, &bytes).unwrap();

        let done = run(None);
        assert!(done.status.success(), "{}", stderr(&done));
        let names = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(names, 3, "two wrapped keys and the manifest");
        return;
    }
}
