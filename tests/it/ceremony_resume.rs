//! Crash safety: the demo ceremony killed at every crash point (debug-build hook
//! OFFICIANT_TEST_CRASH_AT) and by a real SIGKILL, then rerun with the same arguments:
//! no key twice, every output whole, a transcript that verifies.

use crate::support::demo::Demo;

#[test]
fn killed_at_every_point_then_resumed() {
    // Crash points are numbered from 1; a run that completes without crashing means we
    // went past the last one.
    let mut n = 1;
    let mut crashed = 0;
    let jobs: Vec<usize> = (1..=400).collect();
    let mut done = false;
    for chunk in jobs.chunks(2) {
        let results: Vec<(usize, bool)> = std::thread::scope(|s| {
            let hs: Vec<_> = chunk
                .iter()
                .map(|&k| {
                    s.spawn(move || {
                        let d = Demo::new(true);
                        let first = d
                            .command()
                            .env("OFFICIANT_TEST_CRASH_AT", k.to_string())
                            .output()
                            .unwrap();
                        if first.status.success() {
                            d.check_complete(&format!("no crash at point {k}"));
                            return (k, false);
                        }
                        assert!(
                            first.status.code().is_none(),
                            "point {k}: expected an abort, got {}: {}",
                            first.status,
                            String::from_utf8_lossy(&first.stderr)
                        );
                        let second = d.run();
                        assert!(
                            second.status.success(),
                            "point {k}: rerun failed: {}",
                            String::from_utf8_lossy(&second.stderr)
                        );
                        d.check_complete(&format!("crash at point {k}"));
                        (k, true)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (k, c) in results {
            if c {
                crashed += 1;
                n = n.max(k);
            } else {
                done = true;
            }
        }
        if done {
            break;
        }
    }
    assert!(done, "the run never completed without a crash");
    assert!(
        crashed >= 30,
        "only {crashed} crash points: the hook is not wired through the run"
    );
    eprintln!("killed and resumed at {crashed} points (last {n})");
}

#[test]
fn rerun_after_completion_changes_nothing() {
    let d = Demo::new(true);
    assert!(d.run().status.success());
    let before = std::fs::read(d.out.join("transcript.jsonl")).unwrap();
    let again = d.run();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already complete"));
    assert_eq!(
        std::fs::read(d.out.join("transcript.jsonl")).unwrap(),
        before
    );
    d.check_complete("rerun after completion");
}

#[test]
fn real_sigkill_mid_run_then_resume() {
    // Kill at random moments of the run (printed, to reproduce a failure); the rehearsal
    // token and the run both write atomically, so any moment must be safe.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    for k in 0..3u64 {
        let delay_ms = 50
            + (seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(k * 1442695040888963407)
                >> 33)
                % 1000;
        eprintln!("SIGKILL after {delay_ms} ms");
        let d = Demo::new(true);
        let mut child = d.command().spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let out = d.run();
        assert!(
            out.status.success(),
            "after kill at {delay_ms} ms: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        d.check_complete(&format!("SIGKILL at {delay_ms} ms"));
    }
}

#[test]
fn different_script_or_foreign_out_dir_is_refused() {
    let d = Demo::new(true);
    let killed = d
        .command()
        .env("OFFICIANT_TEST_CRASH_AT", "12")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    let s = std::fs::read_to_string(&d.script).unwrap();
    std::fs::write(&d.script, s.replace("version = 1", "version = 2")).unwrap();
    let out = d.run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("holds a run of a different script"), "{err}");

    let d = Demo::new(true);
    std::fs::create_dir_all(&d.out).unwrap();
    std::fs::write(d.out.join("demo-ecdsa-p256.pub.pem"), b"old").unwrap();
    let out = d.run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!(
            "officiant: out dir {} is not empty and holds no journal of this run; use a new --out",
            d.out.display()
        )
    );
    assert_eq!(
        std::fs::read(d.out.join("demo-ecdsa-p256.pub.pem")).unwrap(),
        b"old"
    );
}

#[test]
fn litter_of_a_write_killed_midway_is_cleared_on_resume() {
    let d = Demo::new(true);
    let killed = d
        .command()
        .env("OFFICIANT_TEST_CRASH_AT", "20")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    // What a SIGKILL inside output::write_new leaves: a temp name, never the final name.
    std::fs::write(
        d.out.join(".demo-ecdsa-p256.pub.pem.tmp-99999"),
        b"-----BEGIN PUB",
    )
    .unwrap();
    let out = d.run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.check_complete("temp file from a killed write");
}
