//! Processes and signals from a user program's side: `proctest`'s cases
//! (fork and copy-on-write, minherit, wait4 and statuses, orphans, kill,
//! signal handlers that repair faults, execve), and real static C programs
//! built with musl-gcc (userland/c/), run on pageos.

mod common;

use common::{assert_report_passed, linux_run, pageos};
use std::path::{Path, PathBuf};

#[test]
fn proctest_cases_pass() {
    // A file that is not a program, for execve's ENOEXEC case.
    let text = Path::new(env!("CARGO_MANIFEST_DIR")).join("../userland/c/hello_musl.expected");
    let file = format!("{}:/etc/notelf", text.display());
    let run = pageos(&["--file", &file, "--kernel-arg", "init=/bin/proctest"]);
    assert!(run.stdout.contains("ok execve-errors"), "{}", run.stdout);
    assert_report_passed(&run);
}

/// Build userland/c/NAME.c with `musl-gcc -static -O2` (common::build:
/// the two tests that run hello_musl build it at once, and a QEMU that
/// started on the other's half-written ELF found it ENOEXEC). None, with
/// a message, only when musl-gcc is not installed (scripts/setup.sh
/// installs musl-tools, so CI always has it).
fn musl_program(name: &str) -> Option<PathBuf> {
    let source = common::build::root().join(format!("userland/c/{name}.c"));
    common::build::compile(name, "musl-gcc", &["-static", "-O2"], &[source])
}

/// The program's own lines, from `BEGIN name` to `END name`: kernel log
/// lines (pageos's `[kernel ...]`, Linux's `[    1.23]`) and serial
/// carriage returns left out.
fn program_lines(output: &str, name: &str) -> Vec<String> {
    let lines: Vec<String> = output
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.starts_with('['))
        .collect();
    let begin = lines
        .iter()
        .position(|l| l.ends_with(&format!("BEGIN {name}")));
    let end = lines.iter().position(|l| *l == format!("END {name}"));
    match (begin, end) {
        (Some(b), Some(e)) if b < e => {
            let mut out = lines[b..=e].to_vec();
            // Serial noise (terminal resets) may precede the first line.
            out[0] = format!("BEGIN {name}");
            out
        }
        _ => panic!("no BEGIN/END {name} in the output:\n{output}"),
    }
}

fn expected_lines(name: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../userland/c/{name}.expected"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

fn run_c_on_pageos(name: &str, path: &Path) -> Vec<String> {
    let run = pageos(&["--exec", path.to_str().expect("UTF-8 path")]);
    assert_eq!(
        run.status, 0,
        "{name}: status {}:\n{}",
        run.status, run.stdout
    );
    program_lines(&run.stdout, name)
}

/// A musl program (printf, malloc over brk and mmap, fork and wait with
/// exit and signal statuses, a SIGSEGV handler that mprotects and
/// returns, execve of itself) prints what it prints on Linux, as recorded
/// in userland/c/hello_musl.expected.
#[test]
fn musl_hello_runs_unchanged() {
    let Some(path) = musl_program("hello_musl") else {
        return;
    };
    assert_eq!(
        run_c_on_pageos("hello_musl", &path),
        expected_lines("hello_musl")
    );
}

/// The Linux comparison: the same binary as init of Debian's Linux 6.1 in
/// the same QEMU (scripts/linux-run.py), same lines as on pageos.
#[test]
fn linux_comparison_musl_hello_prints_the_same_on_linux() {
    let Some(path) = musl_program("hello_musl") else {
        return;
    };
    let Some(out) = linux_run(&["--elf", path.to_str().expect("UTF-8 path")]) else {
        return;
    };
    let linux = program_lines(&out, "hello_musl");
    assert_eq!(run_c_on_pageos("hello_musl", &path), linux);
}
