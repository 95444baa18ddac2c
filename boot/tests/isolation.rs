//! Isolation and resource exhaustion (`isotest`): another process's private
//! memory, kernel memory, unmapped pages (munmap + remap in a loop), zeroed
//! frames and MAP_UNINITIALIZED, the stack guard, read-only and
//! copy-on-write pages, out of memory in a fault, the commit limit, the
//! mapping-count limit and a fork bomb. A small machine, so that running
//! out of memory is quick under TCG.

mod common;

use common::{assert_report_passed, pageos};

#[test]
fn isotest_cases_pass() {
    let run = pageos(&[
        "--memory",
        "128M",
        "--timeout",
        "240",
        "--kernel-arg",
        "init=/bin/isotest",
    ]);
    assert_report_passed(&run);
    assert!(!run.stdout.contains("panicked"), "{}", run.stdout);
}

/// The mapping-count limit (65 530) and the fork bomb (1 024 processes):
/// minutes under TCG, so outside `make test`; `cargo test -p boot --test
/// isolation -- --ignored` runs them.
#[test]
#[ignore]
fn the_mapping_count_and_process_limits() {
    let run = pageos(&[
        "--memory",
        "512M",
        "--timeout",
        "1800",
        "--kernel-arg",
        "init=/bin/isotest",
        "--",
        "slow",
    ]);
    assert_report_passed(&run);
}
