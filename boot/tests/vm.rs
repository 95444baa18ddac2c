//! The VM subsystem from a user program's side: `vmtest`'s cases (every
//! mmap flag and errno, munmap, mprotect, madvise, mincore, mlock, msync,
//! minherit, brk), `remaptest`'s (mremap), `thptest`'s (transparent
//! superpages), and the faults that must kill a process, one boot each.

mod common;

use common::{assert_report_passed, pageos, program};

const SIGKILL: i32 = 9;
const SIGSEGV: i32 = 11;

#[test]
fn vmtest_cases_pass() {
    let run = program("vmtest", &[]);
    assert_report_passed(&run);
}

/// `remaptest`: mremap of every kind, with the data checked and no frame
/// copied by a move (also run on Linux: `scripts/linux-run.py remaptest`).
#[test]
fn remaptest_cases_pass() {
    let run = program("remaptest", &[]);
    assert_report_passed(&run);
}

/// `thptest`: transparent superpages on the default policy: the first
/// write fills a 2 MiB page, a partial munmap/mprotect/MADV_DONTNEED
/// splits it in place, a write after fork copies 4 KiB (also run on
/// Linux: `scripts/linux-run.py thptest`).
#[test]
fn thptest_cases_pass() {
    let run = program("thptest", &[]);
    assert_report_passed(&run);
}

/// `sysctl.vm.transparent_hugepage=never` on the command line: 4 KiB
/// pages unless a range asks (MADV_HUGEPAGE).
#[test]
fn thptest_never_cases_pass() {
    let run = pageos(&[
        "--kernel-arg",
        "init=/bin/thptest",
        "--kernel-arg",
        "sysctl.vm.transparent_hugepage=never",
        "--",
        "never",
    ]);
    assert_report_passed(&run);
}

/// `vmtest fault NAME` must die by `signal` (status 128 + N), and the
/// kernel must go on to report init's end normally.
fn dies_with(name: &str, signal: i32) {
    let run = program("vmtest", &["fault", name]);
    assert_eq!(
        run.status,
        128 + signal,
        "fault {name}: status {}; output:\n{}",
        run.status,
        run.stdout
    );
    assert!(!run.stdout.contains("did not kill"), "{}", run.stdout);
}

#[test]
fn reading_prot_none_memory_is_sigsegv() {
    dies_with("read-prot-none", SIGSEGV);
}

#[test]
fn writing_read_only_memory_is_sigsegv() {
    dies_with("write-read-only", SIGSEGV);
}

#[test]
fn touching_unmapped_memory_is_sigsegv() {
    dies_with("unmapped", SIGSEGV);
}

#[test]
fn touching_memory_after_munmap_is_sigsegv() {
    dies_with("after-munmap", SIGSEGV);
}

#[test]
fn executing_a_data_page_is_sigsegv() {
    dies_with("exec-no-exec", SIGSEGV);
}

#[test]
fn touching_a_guard_is_sigsegv() {
    dies_with("guard", SIGSEGV);
}

#[test]
fn reaching_a_stack_guard_is_sigsegv() {
    dies_with("stack-guard", SIGSEGV);
}

#[test]
fn running_out_of_memory_in_a_fault_is_sigkill() {
    // A small machine, so that memory runs out quickly.
    let run = common::pageos(&[
        "--memory",
        "96M",
        "--kernel-arg",
        "init=/bin/vmtest",
        "--",
        "fault",
        "out-of-memory",
    ]);
    assert_eq!(
        run.status,
        128 + SIGKILL,
        "status {}; output:\n{}",
        run.status,
        run.stdout
    );
}

#[test]
fn trace_faults_logs_each_fault() {
    // The stack case touches the top page (zero fill), then the guard.
    let run = common::pageos(&[
        "--trace-faults",
        "--kernel-arg",
        "init=/bin/vmtest",
        "--",
        "fault",
        "stack-guard",
    ]);
    assert_eq!(run.status, 128 + SIGSEGV, "{}", run.stdout);
    let traced: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_once("] fault ").map(|(_, rest)| rest))
        .map(|rest| rest.split_whitespace().collect())
        .collect();
    let header = traced.first().expect("no trace header");
    assert_eq!(header[0], "pid", "header: {header:?}");
    assert!(header.contains(&"frame") && header.last() == Some(&"cycles"));
    // pid, address, access, range, rights, kind, resolution, frame, cycles
    let rows: Vec<&Vec<&str>> = traced[1..].iter().filter(|r| r[2] == "write").collect();
    let zero_fill = rows.iter().find(|r| r[6] == "zero-fill");
    let segv = rows.iter().find(|r| r[6] == "SIGSEGV");
    let all = format!("{traced:?}");
    let zero_fill = zero_fill.unwrap_or_else(|| panic!("no zero-fill row: {all}"));
    let segv = segv.unwrap_or_else(|| panic!("no SIGSEGV row: {all}"));
    assert!(
        zero_fill[7].starts_with("0x"),
        "zero-fill maps a frame: {zero_fill:?}"
    );
    assert_eq!(segv[7], "-", "a SIGSEGV maps no frame: {segv:?}");
    for row in [zero_fill, segv] {
        assert_eq!(row.len(), 9, "columns: {row:?}");
        row[8].parse::<u64>().expect("cycles is a number");
    }
}

/// The address `probe mmap` got, booted with these extra kernel switches.
fn mmap_address(switches: &[&str]) -> String {
    let mut args = vec!["--kernel-arg", "init=/bin/probe"];
    for s in switches {
        args.extend(["--kernel-arg", s]);
    }
    args.extend(["--", "mmap"]);
    let run = common::pageos(&args);
    assert_eq!(run.status, 0, "{}", run.stdout);
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("mmap at "))
        .expect("no address printed")
        .to_string()
}

#[test]
fn no_aslr_makes_placement_reproducible() {
    assert_eq!(mmap_address(&["no-aslr"]), mmap_address(&["no-aslr"]));
}

#[test]
fn aslr_randomises_placement() {
    assert_ne!(
        mmap_address(&[]),
        mmap_address(&[]),
        "two boots placed the page at the same address"
    );
}
