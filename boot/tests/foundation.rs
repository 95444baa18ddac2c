//! The foundation: boot, user mode, exit statuses, faults, the runner's options.

mod common;
use common::{assert_report_passed, pageos, program};
use std::path::PathBuf;
use std::process::Command;

#[test]
fn init_greets_and_exits_zero() {
    let run = pageos(&[]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("Hello from user mode"),
        "{}",
        run.stdout
    );
}

#[test]
fn init_status_is_the_runners_status() {
    assert_eq!(program("probe", &["exit", "42"]).status, 42);
    assert_eq!(program("probe", &["exit", "255"]).status, 255);
}

#[test]
fn store_to_address_zero_kills_with_sigsegv() {
    let run = program("probe", &["segv"]);
    assert_eq!(run.status, 128 + 11, "{}", run.stdout);
    assert!(
        run.stdout.contains("SIGSEGV on write at 0x0"),
        "{}",
        run.stdout
    );
}

#[test]
fn invalid_opcode_kills_with_sigill() {
    let run = program("probe", &["ud2"]);
    assert_eq!(run.status, 128 + 4, "{}", run.stdout);
}

#[test]
fn kernel_panic_gives_101_and_the_message() {
    let run = pageos(&["--kernel-arg", "test-panic"]);
    assert_eq!(run.status, 101);
    assert!(
        run.stdout.contains("[kernel PANIC]") && run.stdout.contains("test-panic switch"),
        "{}",
        run.stdout
    );
}

#[test]
fn argv_and_envp_reach_the_program() {
    let run = program("probe", &["args", "two words", "x"]);
    assert_eq!(run.status, 0);
    for line in [
        "argv[0]=/bin/probe",
        "argv[1]=args",
        "argv[2]=two words",
        "argv[3]=x",
        "env PATH=/bin:/sbin",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing {line:?} in:\n{}",
            run.stdout
        );
    }
}

#[test]
fn foundation_syscalls_validate_their_arguments() {
    assert_report_passed(&program("probe", &["syscalls"]));
}

#[test]
fn kernel_self_tests_pass() {
    assert_report_passed(&pageos(&["--kernel-arg", "selftest"]));
}

#[test]
fn timeout_gives_124() {
    let run = pageos(&[
        "--timeout",
        "5",
        "--kernel-arg",
        "init=/bin/probe",
        "--",
        "spin",
    ]);
    assert_eq!(run.status, 124);
}

#[test]
fn file_option_adds_a_host_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("motd.txt");
    std::fs::write(&file, "a file from the host\n").unwrap();
    let spec = format!("{}:/etc/motd", file.display());
    let run = pageos(&[
        "--file",
        &spec,
        "--kernel-arg",
        "init=/bin/probe",
        "--",
        "cat",
        "/etc/motd",
    ]);
    assert_eq!(run.status, 0);
    assert!(
        run.stdout.contains("a file from the host"),
        "{}",
        run.stdout
    );
}

#[test]
fn uefi_boot_works_like_bios() {
    let run = pageos(&["--uefi"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Hello from user mode"));
}

/// Build userland/c/raw_hello.c with gcc as a freestanding static binary.
fn build_c_program() -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../userland/c/raw_hello.c");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("raw_hello");
    let status = Command::new("gcc")
        .args([
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-stack-protector",
            "-O2",
            "-o",
        ])
        .arg(&out)
        .arg(&source)
        .status()
        .expect("gcc not found (apt-get install gcc)");
    assert!(status.success(), "gcc failed");
    out
}

#[test]
fn freestanding_c_program_runs_with_exec() {
    let binary = build_c_program();
    let run = pageos(&["--exec", binary.to_str().unwrap(), "--", "7"]);
    assert_eq!(run.status, 7, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("hello from freestanding C"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("sse ok"), "{}", run.stdout);
}
