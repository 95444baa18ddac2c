//! The labs that need the kernel (`docs/src/labs.md`): each boots
//! `labtest N` as init and checks its report. They fail until the lab is
//! done, so they are `#[ignore]`d: `make test` skips them, `make lab N=5`
//! runs lab 5's with `--ignored`. Lab 7's boots racetest with 2 CPUs.

mod common;

use common::{assert_report_passed, pageos, program};

#[test]
#[ignore = "lab 5: see docs/src/labs.md"]
fn lab5_mremap_keeps_2mib_pages() {
    let run = program("labtest", &["5"]);
    assert_report_passed(&run);
}

/// Lab 7: racetest on 2 CPUs with the kernel's `lab7` switch, which sends
/// an unmap of a space other CPUs run through `Pmap::lab7_unmap_shared`
/// (kernel/src/pmap/lab7.rs). Its munmap race — a thread reads a page
/// while another munmaps it and maps the next one there — sees the page
/// munmap took away until that function shoots the other CPUs down.
#[test]
#[ignore = "lab 7: see docs/src/labs.md"]
fn lab7_munmap_shoots_down_the_other_cpus() {
    let path = common::build::pthread_program("racetest")
        .expect("lab 7 needs musl-gcc (scripts/setup.sh installs it)");
    let exec = path.to_str().expect("UTF-8 path");
    let run = pageos(&[
        "--timeout",
        "300",
        "--cpus",
        "2",
        "--kernel-arg",
        "lab7",
        "--exec",
        exec,
        "--",
        "2",
    ]);
    let lines = common::build::marked_lines(&run.stdout, "racetest");
    let failed: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failed.is_empty(),
        "a thread read a page after munmap returned: another CPU kept its translation\n{failed:?}"
    );
    assert_eq!(run.status, 0, "status {}:\n{}", run.status, run.stdout);
}
