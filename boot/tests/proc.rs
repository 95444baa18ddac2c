//! Processes and signals from a user program's side: `proctest`'s cases
//! (fork and copy-on-write, minherit, wait4 and statuses, orphans, kill,
//! signal handlers that repair faults, execve), and real static C programs
//! built with musl-gcc (userland/c/), run on pageos.

mod common;

use common::{assert_report_passed, pageos, program};
use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn proctest_cases_pass() {
    let run = program("proctest", &[]);
    assert_report_passed(&run);
}
