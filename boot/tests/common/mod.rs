//! Booting pageos from a test: run the runner binary as a user would
//! (`cargo run -- ...`) and collect its exit status and output.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

pub mod build;

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Boot with these runner arguments (a 60 s timeout unless one is given),
/// on one CPU unless they name the CPUs (or --icount): one CPU is each
/// suite's reproducible baseline and what `make test`'s time allows on two
/// host cores; the suites on 2 and 4 CPUs are boot/tests/smp.rs,
/// threads.rs, races.rs and the tests that say `--cpus`. `pageos_as_run`
/// boots the runner's own default (2 CPUs), as `make run` does.
pub fn pageos(args: &[&str]) -> Run {
    if args.contains(&"--cpus") || args.contains(&"--icount") {
        return pageos_as_run(args);
    }
    pageos_as_run(&[&["--cpus", "1"], args].concat())
}

/// Boot with these runner arguments and nothing added but the timeout.
pub fn pageos_as_run(args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_boot"));
    if !args.contains(&"--timeout") {
        command.args(["--timeout", "60"]);
    }
    let out = command
        .args(args)
        .output()
        .expect("cannot start the runner");
    let run = Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    // Whatever the test checks, the kernel must never lose a frame.
    assert!(
        !run.stdout.contains("frame leak"),
        "frames leaked:\n{}",
        run.stdout
    );
    run
}

/// Run a program from /bin as init, with arguments.
pub fn program(name: &str, args: &[&str]) -> Run {
    let init = format!("init=/bin/{name}");
    let mut all = vec!["--kernel-arg", &init, "--"];
    all.extend_from_slice(args);
    pageos(&all)
}

/// Assert a test program's report: its `N passed, 0 failed` line and status 0.
pub fn assert_report_passed(run: &Run) {
    let summary = run
        .stdout
        .lines()
        .rev()
        .find(|l| l.ends_with(" failed") && l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no summary line; output:\n{}\n{}", run.stdout, run.stderr));
    let failures: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("FAIL "))
        .collect();
    assert!(
        summary.ends_with(" 0 failed") && failures.is_empty(),
        "{summary}\n{}",
        failures.join("\n")
    );
    assert_eq!(
        run.status, 0,
        "status {}; output:\n{}",
        run.status, run.stdout
    );
}

/// Run scripts/linux-run.py with `args` (a program as init of Debian's
/// Linux in the same QEMU) and return its stdout; None when it could not
/// get the kernel (an offline machine: it says SKIPPED, not a failure).
pub fn linux_run(args: &[&str]) -> Option<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/linux-run.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("cannot run python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("SKIPPED") {
        eprintln!("{stderr}");
        return None;
    }
    assert!(
        out.status.success(),
        "linux-run.py failed:\n{stdout}\n{stderr}"
    );
    Some(stdout)
}
