//! The ramfs and file-backed mappings from a user program's side:
//! `filetest`'s cases (open/read/write/lseek/stat/ftruncate/unlink,
//! directories, dup; MAP_SHARED coherence, MAP_PRIVATE copy-on-write, the
//! tail of the last page, msync, mmap's descriptor errors, fault-around),
//! `memfdtest`'s (memfd_create and file seals), and the two SIGBUS faults,
//! one boot each.

mod common;

use common::{assert_report_passed, program};

const SIGBUS: i32 = 7;

#[test]
fn filetest_cases_pass() {
    let run = program("filetest", &[]);
    assert_report_passed(&run);
}

/// `memfdtest`: memfd_create's flags and errors, a memfd's shared and
/// private mappings, its /proc/self/maps name, every seal rule (also run
/// on Linux: `scripts/linux-run.py memfdtest`).
#[test]
fn memfdtest_cases_pass() {
    let run = program("memfdtest", &[]);
    assert_report_passed(&run);
}

fn dies_with_sigbus(name: &str) {
    let run = program("filetest", &["fault", name]);
    assert_eq!(
        run.status,
        128 + SIGBUS,
        "fault {name}: status {}; output:\n{}",
        run.status,
        run.stdout
    );
    assert!(
        run.stdout.contains("SIGBUS on read"),
        "no SIGBUS reported:\n{}",
        run.stdout
    );
}

#[test]
fn touching_a_page_wholly_past_end_of_file_is_sigbus() {
    dies_with_sigbus("past-eof");
}

#[test]
fn touching_a_page_after_ftruncate_shrank_the_file_is_sigbus() {
    dies_with_sigbus("after-truncate");
}
