//! The stale-memory races (issue 16) from a program's side:
//! userland/c/racetest.c, built with `musl-gcc -static -O2 -pthread`,
//! runs as init of pageos with 2 and 4 CPUs — a reader against munmap, a
//! writer against mprotect, concurrent first-touch faults, fork in a
//! threaded parent — and prints only `ok` lines; the same binary as init
//! of Debian's Linux with 4 CPUs prints the same lines. Each race runs
//! for 2 seconds here; `make stress` runs them for minutes.

mod common;

use common::{linux_run, pageos};
use std::path::PathBuf;

fn racetest() -> Option<PathBuf> {
    common::build::pthread_program("racetest")
}

fn program_lines(output: &str) -> Vec<String> {
    common::build::marked_lines(output, "racetest")
}

fn run_on_pageos(path: &std::path::Path, cpus: &str, seconds: &str) -> Vec<String> {
    let exec = path.to_str().expect("UTF-8 path");
    let run = pageos(&[
        "--timeout",
        "300",
        "--cpus",
        cpus,
        "--exec",
        exec,
        "--",
        seconds,
    ]);
    assert_eq!(run.status, 0, "status {}:\n{}", run.status, run.stdout);
    let lines = program_lines(&run.stdout);
    let failed: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", run.stdout);
    assert!(lines.contains(&"0 failures".to_string()), "{lines:?}");
    lines
}

#[test]
fn races_never_show_stale_memory_on_two_cpus_and_match_linux_smp4() {
    let Some(path) = racetest() else {
        return;
    };
    let linux = std::thread::spawn({
        let elf = path.to_str().expect("UTF-8 path").to_string();
        move || linux_run(&["--smp", "4", "--elf", &elf, "--", "2"])
    });
    let lines = run_on_pageos(&path, "2", "2");
    let Some(out) = linux.join().expect("the Linux run panicked") else {
        return;
    };
    let linux = program_lines(&out);
    assert!(linux.contains(&"0 failures".to_string()), "{linux:?}");
    assert_eq!(lines, linux);
}

#[test]
fn races_never_show_stale_memory_on_four_cpus() {
    let Some(path) = racetest() else {
        return;
    };
    run_on_pageos(&path, "4", "2");
}

/// `make stress`: each race for STRESS_SECONDS (default 60) on 4 CPUs.
#[test]
#[ignore = "minutes long: make stress"]
fn stress_races_on_four_cpus() {
    let Some(path) = racetest() else {
        return;
    };
    let seconds = std::env::var("STRESS_SECONDS").unwrap_or_else(|_| "60".into());
    let exec = path.to_str().expect("UTF-8 path");
    let run = pageos(&[
        "--timeout",
        "3600",
        "--cpus",
        "4",
        "--exec",
        exec,
        "--",
        &seconds,
    ]);
    assert_eq!(run.status, 0, "status {}:\n{}", run.status, run.stdout);
    let lines = program_lines(&run.stdout);
    assert!(lines.contains(&"0 failures".to_string()), "{lines:?}");
}
