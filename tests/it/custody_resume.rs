//! Backup and restore killed at every crash point (`OFFICIANT_TEST_CRASH_AT`, debug
//! builds) and run again: the rerun completes, no key is imported twice, the wrap key is
//! gone, the outputs are whole, and the restored keys are the backed-up ones. On the
//! rehearsal token, through the command line.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::run;

const SO: &str = "so-pin-0000";
const USER: &str = "user-pin-1234";

struct Ctx {
    work: tempfile::TempDir,
}

impl Ctx {
    fn p(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    fn officiant(&self, crash_at: Option<usize>, args: &[String]) -> Output {
        let mut c = support::officiant();
        c.env("SO_PIN", SO)
            .env("USER_PIN", USER)
            .env_remove("OFFICIANT_TEST_CRASH_AT")
            .current_dir(self.work.path())
            .args(args)
            .arg("--transcript")
            .arg(self.p("transcript.jsonl"));
        if let Some(n) = crash_at {
            c.env("OFFICIANT_TEST_CRASH_AT", n.to_string());
        }
        run(&mut c)
    }

    fn ok(&self, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = self.officiant(None, &args);
        assert!(
            out.status.success(),
            "officiant {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn init(&self, dir: &str) -> String {
        let backend = format!("sim:{}", self.p(dir).display());
        self.ok(&[
            "init-token",
            "--backend",
            &backend,
            "--label",
            dir,
            "--so-pin-source",
            "env:SO_PIN",
            "--pin-source",
            "env:USER_PIN",
        ]);
        backend
    }

    /// (class, label, fingerprint) of every object, sorted.
    fn objects(&self, backend: &str) -> Vec<String> {
        let out = self.ok(&[
            "objects",
            "--backend",
            backend,
            "--pin-source",
            "env:USER_PIN",
            "--json",
        ]);
        crate::support::object_lines(&out)
    }
}

/// Run `args` killed at crash point 1, 2, … until a run no longer crashes; after each
/// kill, `check_after_rerun` gets the crash point once a plain rerun has succeeded.
fn every_crash_point(
    ctx: &Ctx,
    args: impl Fn(usize) -> Vec<String>,
    check_after_rerun: impl Fn(usize),
) -> usize {
    for n in 1..100 {
        let out = ctx.officiant(Some(n), &args(n));
        if out.status.success() {
            return n - 1;
        }
        assert!(
            out.status.code().is_none(),
            "crash point {n}: expected an abort, got {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let again = ctx.officiant(None, &args(n));
        assert!(
            again.status.success(),
            "rerun after crash point {n}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        check_after_rerun(n);
    }
    panic!("more than 99 crash points?");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn backup_and_restore_resume_after_a_kill_at_every_crash_point() {
    let ctx = Ctx {
        work: tempfile::tempdir().unwrap(),
    };
    let src = ctx.init("src");
    for (label, id) in [("k1", "0101"), ("k2", "0102")] {
        ctx.ok(&[
            "generate-key",
            "--backend",
            &src,
            "--pin-source",
            "env:USER_PIN",
            "--label",
            label,
            "--id",
            id,
            "--algorithm",
            "ec-p256",
            "--exportable-under-wrap",
        ]);
    }
    std::fs::create_dir(ctx.p("shares")).unwrap();
    ctx.ok(&[
        "wrap-key",
        "generate",
        "--backend",
        &src,
        "--so-pin-source",
        "env:SO_PIN",
        "--label",
        "wk",
        "--threshold",
        "2",
        "--shares",
        "3",
        "--share-dir",
        ctx.p("shares").to_str().unwrap(),
    ]);
    let source_objects = ctx.objects(&src);

    // An uninterrupted backup, to compare with.
    let reference = ctx.p("bk-ref");
    ctx.ok(&[
        "backup",
        "--backend",
        &src,
        "--pin-source",
        "env:USER_PIN",
        "--wrap-key",
        "wk",
        "--key",
        "k1",
        "--key",
        "k2",
        "--out-dir",
        reference.to_str().unwrap(),
    ]);
    let backup_args = |n: usize| -> Vec<String> {
        [
            "backup",
            "--backend",
            &src,
            "--pin-source",
            "env:USER_PIN",
            "--wrap-key",
            "wk",
            "--key",
            "k1",
            "--key",
            "k2",
            "--out-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([ctx.p(&format!("bk-{n}")).display().to_string()])
        .collect()
    };
    let points = every_crash_point(&ctx, backup_args, |n| {
        let dir = ctx.p(&format!("bk-{n}"));
        // Whole files, no temporaries, the same manifest, and (the rehearsal token's
        // RFC 5649 wrap being deterministic) the same wrapped keys.
        assert_eq!(files_in(&dir), files_in(&reference), "crash point {n}");
        for f in files_in(&reference) {
            assert_eq!(
                std::fs::read(dir.join(&f)).unwrap(),
                std::fs::read(reference.join(&f)).unwrap(),
                "crash point {n}: {f}"
            );
        }
    });
    assert!(points >= 3, "backup has only {points} crash points");
    assert_eq!(ctx.objects(&src), source_objects);

    let share = |i: usize| {
        format!(
            "file:{}",
            ctx.p(&format!("shares/wk.share-{i}-of-3.txt")).display()
        )
    };
    let targets = std::cell::RefCell::new(Vec::new());
    let restore_args = |n: usize| -> Vec<String> {
        let dir = format!("dst-{n}");
        if !ctx.p(&dir).exists() {
            targets.borrow_mut().push(ctx.init(&dir));
        }
        let backend = format!("sim:{}", ctx.p(&dir).display());
        vec![
            "restore".into(),
            "--backend".into(),
            backend,
            "--pin-source".into(),
            "env:USER_PIN".into(),
            "--so-pin-source".into(),
            "env:SO_PIN".into(),
            "--in-dir".into(),
            reference.display().to_string(),
            "--share-source".into(),
            share(3),
            "--share-source".into(),
            share(1),
        ]
    };
    let expected: Vec<String> = source_objects
        .iter()
        .filter(|o| !o.starts_with("wrap-key"))
        .cloned()
        .collect();
    let points = every_crash_point(&ctx, restore_args, |n| {
        let backend = format!("sim:{}", ctx.p(&format!("dst-{n}")).display());
        // Each key once, with its original public key; no wrap key left.
        assert_eq!(ctx.objects(&backend), expected, "crash point {n}");
    });
    assert!(points >= 3, "restore has only {points} crash points");
    assert!(!targets.borrow().is_empty());
}
