//! No core dump carries a secret. `officiant run` waits at a secret prompt with the SO PIN
//! already read (the demo with its initial user PIN at the prompt), in a shell that
//! allows core dumps (`ulimit -c unlimited`); SIGQUIT ends it and must leave no core file. The judge is first shown able to fail: a control process killed the same
//! way in the same shell does leave one. Where the machine pipes cores to a handler
//! (core_pattern `|…`), no file can be seen: the judge is then the core size limit of
//! the running process as /proc/PID/limits shows it (the control's shows unlimited).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::tmux::Tmux;

/// Where a core of a process whose working directory is `cwd` lands, or None when the
/// kernel pipes it to a program.
fn core_dir(cwd: &Path) -> Option<PathBuf> {
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let pattern = pattern.trim();
    if pattern.starts_with('|') {
        return None;
    }
    Some(match Path::new(pattern).parent() {
        Some(p) if pattern.starts_with('/') => p.to_path_buf(),
        _ => cwd.to_path_buf(),
    })
}

/// The files in `dir` not in `before`.
fn new_files(dir: &Path, before: &[PathBuf]) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !before.contains(p))
        .collect()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    new_files(dir, &[])
}

/// "Max core file size" soft and hard limits of process `pid`.
fn core_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap()
        .to_string();
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[4].to_string(), f[5].to_string())
}

/// SIGQUIT, as Ctrl-\\ sends it (at a secret prompt the terminal passes Ctrl-\\ on as a
/// character, so the signal comes from outside).
fn quit(pid: u32) {
    let st = std::process::Command::new("kill")
        .args(["-QUIT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn exit_code(t: &Tmux, tag: &str) -> i32 {
    let needle = format!("EXIT{tag}=");
    let s = t.wait_for_line(&needle, 30);
    s.trim()
        .trim_start_matches(&needle)
        .parse()
        .unwrap_or_else(|_| panic!("{s:?}"))
}

#[test]
fn sigquit_at_a_secret_prompt_leaves_no_core_file() {
    let Some(_) = support::oracle("tmux") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("ceremonies");
    for f in ["rehearsal-demo.toml", "rehearsal-demo.answers.toml"] {
        std::fs::copy(src.join(f), d.join(f)).unwrap();
    }
    support::demo::copy_dir(&src.join("rehearsal-secrets"), &d.join("rehearsal-secrets"));
    let answers = d.join("rehearsal-demo.answers.toml");
    let text = std::fs::read_to_string(&answers).unwrap();
    let changed = text.replace(
        "user-initial = \"file:rehearsal-secrets/user-initial.pin\"",
        "user-initial = \"prompt\"",
    );
    assert_ne!(changed, text, "the demo's initial user PIN source moved");
    std::fs::write(&answers, changed).unwrap();
    let cores = core_dir(d);

    let t = Tmux::new("officiant-core", "core");
    t.start_shell(160, 40, d);
    t.text("ulimit -c unlimited; echo LIMIT=$(ulimit -c)");
    t.keys(&["Enter"]);
    t.wait_for("LIMIT=unlimited", 20);

    // The control: a process killed the same way in this shell dumps core.
    let before = cores.as_deref().map(files).unwrap_or_default();
    t.text("sh -c 'echo START$((1+1)); exec sleep 60'; echo EXITC=$?");
    t.keys(&["Enter"]);
    t.wait_for_line("START", 20);
    std::thread::sleep(Duration::from_millis(300));
    let control = t.program_pid();
    assert_eq!(
        core_limits(control).0,
        "unlimited",
        "the control may not dump"
    );
    let screen = t.screen();
    quit(control);
    t.wait_change(&screen, 20);
    assert_eq!(exit_code(&t, "C"), 131, "SIGQUIT: {}", t.history());
    if let Some(cdir) = &cores {
        let t0 = Instant::now();
        let dumped = loop {
            let n = new_files(cdir, &before);
            if !n.is_empty() || t0.elapsed() > Duration::from_secs(10) {
                break n;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            !dumped.is_empty(),
            "the control left no core in {}: this judge could not fail",
            cdir.display()
        );
        for f in dumped {
            std::fs::remove_file(f).unwrap();
        }
    }

    // officiant, waiting for the initial user PIN with the SO PIN in memory.
    let before = cores.as_deref().map(files).unwrap_or_default();
    let bin = env!("CARGO_BIN_EXE_officiant");
    t.text(&format!(
        "{bin} run rehearsal-demo.toml --answers rehearsal-demo.answers.toml --backend sim:tok --out out; echo EXITR=$?"
    ));
    t.keys(&["Enter"]);
    t.wait_for("secret \"user-initial\" for step", 30);
    t.wait_for_no_echo(20);
    let pid = t.program_pid();
    assert_eq!(
        core_limits(pid),
        ("0".to_string(), "0".to_string()),
        "officiant may dump core"
    );
    quit(pid);
    assert_eq!(exit_code(&t, "R"), 131, "SIGQUIT: {}", t.history());
    // The shell says "(core dumped)" once: for the control.
    if cores.is_some() {
        assert_eq!(
            t.history().matches("core dumped").count(),
            1,
            "{}",
            t.history()
        );
    }
    if let Some(cdir) = &cores {
        // A core is complete before the shell hears of the exit; give it the same time.
        std::thread::sleep(Duration::from_secs(1));
        let dumped = new_files(cdir, &before);
        assert!(dumped.is_empty(), "officiant left a core: {dumped:?}");
    }
}
