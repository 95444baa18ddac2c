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
    let mut all = vec![
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
    assert_report_passed(&run);
    run
}

#[test]
fn isotest_cases_pass() {
    let run = isotest("128M", &[]);
    assert!(!run.stdout.contains("panicked"), "{}", run.stdout);
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
