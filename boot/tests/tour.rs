//! `make run`: the guided tour that /sbin/init gives. It must finish, exit
//! 0, and show each step with numbers that say what the kernel did.

mod common;

use common::{pageos, pageos_as_run};

#[test]
fn the_tour_runs_every_step_and_exits_zero() {
    // As `make run` boots it: the runner's default, 2 CPUs.
    let run = pageos_as_run(&[]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    for key in [
        "Step 1. Reserve 1 GiB of memory.",
        "resident pages (mincore): 0 of 262144",
        "256 page faults (256 zero-fills)",
        "Resident now: 256 pages",
        "Reading 256 other pages took 256 faults",
        "-> 4 KiB page at 0x",
        "Step 3. VMAs",
        "r--p",
        "[stack gap]",
        "took 63 stack-growth faults",
        "1 fault (1 huge) and made 512 pages resident",
        "-> 2 MiB page at 0x",
        "read() returns \"The file\"",
        "took 1 copy-on-",
        "the file still reads \"The file\"",
        "si_code SEGV_ACCERR",
        "the store ran again and the byte is 2",
        "The child wrote 16 pages: 16 copy-on-write faults",
        "the parent wrote all 64: 0 copies, 64 faults",
        "This machine has no swap disk.",
        "End of the tour: every frame the steps took is free again.",
    ] {
        assert!(out.contains(key), "missing {key:?} in:\n{out}");
    }
}

/// Step 9 on a small machine with swap (`make run ARGS="--memory 32M
/// --swap 128M"`): twice RAM goes out and comes back, one swap-in is shown
/// from the PTE holding the slot to the PTE mapping the frame again. (With
/// `--trace-faults` the same boot shows each swap-in's disk time, but its
/// 12 000 lines of log triple the boot's time: not in `make test`; see it
/// with `cargo run -- --memory 32M --swap 128M --trace-faults`.)
#[test]
fn the_tour_pages_twice_ram_out_and_back_with_swap() {
    let run = pageos(&["--memory", "32M", "--swap", "128M"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let out = &run.stdout;
    for key in [
        "Step 9. More memory than RAM: swap.",
        "wrote ",
        "not present: in swap, slot ",
        "Reading it: 1 major fault, ",
        "Every page read back its number: ",
        "End of the tour: every frame the steps took is free again.",
    ] {
        assert!(out.contains(key), "missing {key:?} in:\n{out}");
    }
}

/// `vmwalk`: the page-table walk of a fresh page stops at an absent entry;
/// after a store it ends in a 4 KiB frame; code pages are neither writable
/// nor no-execute.
#[test]
fn vmwalk_shows_a_page_being_born() {
    let run = common::program("vmwalk", &[]);
    assert_eq!(run.status, 0, "{}", run.stdout);
    let out = &run.stdout;
    let before = out.split("After one store").next().unwrap_or("");
    assert!(before.contains("not present: no translation"), "{out}");
    let after = out.split("After one store").nth(1).unwrap_or("");
    assert!(
        after.contains("P W U A D NX") && after.contains("-> 4 KiB page at 0x"),
        "{out}"
    );
    let code = out.split("Its code").nth(1).unwrap_or("");
    let leaf = code.lines().find(|l| l.contains("L1[")).unwrap_or("");
    assert!(
        leaf.contains(" P U A") && !leaf.contains("NX"),
        "code leaf: {leaf}"
    );
}
