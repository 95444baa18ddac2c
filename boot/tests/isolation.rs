//! Isolation and resource exhaustion (`isotest`): another process's private
//! memory, kernel memory, unmapped pages (munmap + remap in a loop), zeroed
//! frames and MAP_UNINITIALIZED, the stack guard, read-only and
//! copy-on-write pages, out of memory in a fault, the commit limit; and,
//! one boot each, the mapping-count limit and a fork bomb. Small machines,
//! so that running out of memory is quick under TCG.

mod common;

use common::{assert_report_passed, pageos};

/// Boot `isotest` with `memory` of RAM and `args`, and check its report.
fn isotest(memory: &str, args: &[&str]) -> common::Run {
    isotest_on("1", memory, args)
}

/// `isotest` on `cpus` CPUs: with several, the probes' children run on
/// other CPUs than their parents, and a stale TLB entry on any of them
/// would be a way into memory the process no longer owns.
fn isotest_on(cpus: &str, memory: &str, args: &[&str]) -> common::Run {
    let mut all = vec![
        "--cpus",
        cpus,
        "--memory",
        memory,
        "--timeout",
        "240",
        "--kernel-arg",
        "init=/bin/isotest",
        "--",
    ];
    all.extend_from_slice(args);
    let run = pageos(&all);
    let up = format!("smp: {cpus} of {cpus} CPUs up");
    assert!(
        cpus == "1" || run.stdout.contains(&up),
        "no {up:?} line:\n{}",
        run.stdout
    );
    assert_report_passed(&run);
    run
}

#[test]
fn isotest_cases_pass() {
    let run = isotest("128M", &[]);
    assert!(!run.stdout.contains("panicked"), "{}", run.stdout);
}

#[test]
fn isotest_cases_pass_with_two_cpus() {
    let run = isotest_on("2", "128M", &[]);
    assert!(!run.stdout.contains("panicked"), "{}", run.stdout);
}

#[test]
fn isotest_cases_pass_with_four_cpus() {
    isotest_on("4", "128M", &[]);
    isotest_on("4", "256M", &["map-count"]);
    isotest_on("4", "128M", &["bomb"]);
}

/// The mapping-count limit: splitting one reservation into 65 600
/// mappings with mprotect stops with ENOMEM at 65 530 (vm.max_map_count),
/// and the process goes on.
#[test]
fn the_mapping_count_limit_gives_enomem() {
    isotest("256M", &["map-count"]);
}

/// A fork bomb stops at the process limit (EAGAIN), and once its children
/// are reaped fork works again; on a small machine, so that memory would
/// run out first if the limit did not hold.
#[test]
fn a_fork_bomb_is_bounded_by_the_process_limit() {
    isotest("128M", &["bomb"]);
}
