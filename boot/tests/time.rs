//! Clocks and sleeps (`timetest`, also run on Linux by `make linux-test`):
//! every case passes, and the guest's real time is the host's.

mod common;

use common::{assert_report_passed, program};
use std::time::{SystemTime, UNIX_EPOCH};

fn host_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the host clock is after 1970")
        .as_secs()
}

#[test]
fn timetest_passes_and_realtime_is_the_hosts() {
    let before = host_seconds();
    let run = program("timetest", &[]);
    let after = host_seconds();
    assert_report_passed(&run);
    let guest: u64 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("timetest: realtime "))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no realtime line:\n{}", run.stdout));
    // The RTC counts whole seconds: allow one on either side.
    assert!(
        (before.saturating_sub(1)..=after + 1).contains(&guest),
        "guest real time {guest}, host {before}..{after}"
    );
}
