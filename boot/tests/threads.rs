//! Threads from a real program's side: userland/c/pthreads.c, built with
//! `musl-gcc -static -O2 -pthread`, runs as init of pageos and prints
//! only `ok` lines and the statuses of its children; the same binary as
//! init of Debian's Linux with 4 CPUs prints the same lines. And
//! userland/c/scalebench.c, `make bench`'s page_fault1 and mmap1, for a
//! second each on 2 CPUs, so that the benchmark keeps working.

mod common;

use common::{linux_run, pageos};
use std::path::PathBuf;

fn pthreads() -> Option<PathBuf> {
    common::build::pthread_program("pthreads")
}

fn program_lines(output: &str) -> Vec<String> {
    common::build::marked_lines(output, "pthreads")
}

fn run_on_pageos(path: &std::path::Path, cpus: &str) -> Vec<String> {
    let exec = path.to_str().expect("UTF-8 path");
    let run = pageos(&["--timeout", "300", "--cpus", cpus, "--exec", exec]);
    assert_eq!(run.status, 0, "status {}:\n{}", run.status, run.stdout);
    let lines = program_lines(&run.stdout);
    let failed: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", run.stdout);
    assert!(lines.contains(&"0 failures".to_string()), "{lines:?}");
    lines
}

/// 64 threads, mutex, condvar, barrier, TLS, futex, thread signals, the
/// guard page (caught by the faulting thread; uncaught: SIGSEGV ends the
/// process), exit versus exit_group, fork and execve from a thread; and
/// the same binary as init of Linux with `-smp 4` (booted at the same
/// time) prints the same lines.
#[test]
fn pthreads_program_passes_and_prints_what_linux_smp4_prints() {
    let Some(path) = pthreads() else {
        return;
    };
    let linux = std::thread::spawn({
        let elf = path.to_str().expect("UTF-8 path").to_string();
        move || linux_run(&["--smp", "4", "--elf", &elf])
    });
    let lines = run_on_pageos(&path, "1");
    for status in [
        "uncaught overflow in a thread: signal 11",
        "exit in one thread, others blocked: exit 7",
        "pthread_exit of main, another thread exits last: exit 9",
        "fork in a thread of a 5-thread process: child: exit 11",
        "execve in a thread of a 5-thread process: exit 42",
    ] {
        assert!(lines.contains(&status.to_string()), "{status}: {lines:?}");
    }
    let Some(out) = linux.join().expect("the Linux run panicked") else {
        return;
    };
    let linux = program_lines(&out);
    assert!(linux.contains(&"0 failures".to_string()), "{linux:?}");
    assert_eq!(lines, linux);
}

/// The same program with its threads spread over two and four CPUs (the
/// SMP scheduler: they run at once in user mode, and munmap, mprotect and
/// fork's write protection reach the other CPUs' TLBs).
#[test]
fn pthreads_program_passes_on_two_cpus() {
    let Some(path) = pthreads() else {
        return;
    };
    run_on_pageos(&path, "2");
}

/// 4 vCPUs on 2 host cores (boot/tests/smp.rs says why this is in
/// `make test` again).
#[test]
fn pthreads_program_passes_on_four_cpus() {
    let Some(path) = pthreads() else {
        return;
    };
    run_on_pageos(&path, "4");
}

/// scalebench (scripts/bench.py --scale-only) for one second per figure
/// on 2 CPUs: each mode at 1 and 2 threads ends, every call succeeds and
/// every page a thread wrote reads back before its munmap.
#[test]
fn scalebench_runs_and_its_pages_read_back_on_two_cpus() {
    let Some(path) = common::build::pthread_program("scalebench") else {
        return;
    };
    let exec = path.to_str().expect("UTF-8 path");
    let mut args = vec!["--timeout", "300", "--cpus", "2", "--exec", exec, "--"];
    for mode in ["page_fault1", "page_fault1_thp", "mmap1"] {
        for threads in ["1", "2"] {
            args.extend([mode, threads, "1"]);
        }
    }
    let run = pageos(&args);
    assert_eq!(run.status, 0, "status {}:\n{}", run.status, run.stdout);
    let lines = common::build::marked_lines(&run.stdout, "scalebench");
    let failed: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", run.stdout);
    assert!(lines.contains(&"0 failures".to_string()), "{lines:?}");
    let figures = lines.iter().filter(|l| l.starts_with("scale ")).count();
    assert_eq!(figures, 6, "{lines:?}");
}
