//! Memory pressure (`pressuretest`, docs/src/pressure.md): a small machine
//! with swap, where a working set twice RAM pages out and back, a fork
//! shares pages copy-on-write under pressure, locked pages stay; Linux's
//! overcommit modes, the OOM killer; and the same program as /init of
//! Linux with a swap disk of the same size.
//!
//! Pages of objects (shared anonymous memory, a tmpfs file) page out and
//! back in a boot of their own (vm/src/reclaim/objects.rs).

mod common;
use common::{assert_report_passed, linux_run, pageos};

/// The cases that page out, on the machine: 64 MiB and 512 MiB of
/// swap. The second checks that pages only read go out again without a
/// write, the third that the page-out thread did work.
const RECLAIM: [&str; 5] = [
    "anonymous_twice_ram_reads_back_twice",
    "pages_only_read_go_again_without_a_write",
    "slowly_growing_memory_is_reclaimed_by_the_page_out_thread",
    "fork_cow_under_pressure_keeps_each_side",
    "mlocked_pages_stay_resident",
];

#[test]
fn a_working_set_larger_than_ram_pages_out_and_back() {
    // Some 100 000 pages go through the disk: minutes on a loaded machine.
    let mut args = vec![
        "--memory",
        "64M",
        "--swap",
        "512M",
        "--timeout",
        "400",
        "--kernel-arg",
        "init=/bin/pressuretest",
        "--",
    ];
    args.extend(RECLAIM);
    let run = pageos(&args);
    assert_report_passed(&run);
    assert!(
        !run.stdout.contains("out of memory: killed"),
        "{}",
        run.stdout
    );
}

/// Reclaim and faults on two CPUs (DESIGN §6: the pager keeps the lock
/// order with threads on several CPUs): a fork under pressure, each side
/// writing while the other may be faulting on the other CPU. Reclaim
/// leaves out a space a fault holds, its pages counting as used; a round
/// that then went round the whole active list once per page it looked at
/// held the kernel lock for minutes (vm/src/clock.rs, `choose`).
#[test]
fn fork_under_pressure_on_two_cpus() {
    let run = pageos(&[
        "--cpus",
        "2",
        "--memory",
        "64M",
        "--swap",
        "512M",
        "--timeout",
        "300",
        "--kernel-arg",
        "init=/bin/pressuretest",
        "--",
        "fork_cow_under_pressure_keeps_each_side",
    ]);
    assert_report_passed(&run);
    assert!(run.stdout.contains("1 passed, 0 failed"), "{}", run.stdout);
}

/// The cases whose pages are an object's, on the same machine: shared
/// anonymous memory 1.5x RAM written by a child and read by its parent,
/// and a tmpfs file 1.25x RAM written with write() and read back through
/// a shared mapping. Both must page out (pswpout grows by at least the
/// part that does not fit) and read back.
const OBJECTS: [&str; 2] = [
    "shared_anonymous_written_by_child_read_by_parent",
    "tmpfs_file_larger_than_ram_reads_back_mapped",
];

#[test]
fn shared_memory_and_tmpfs_pages_go_to_swap_and_back() {
    let mut args = vec![
        "--memory",
        "64M",
        "--swap",
        "512M",
        "--timeout",
        "400",
        "--kernel-arg",
        "init=/bin/pressuretest",
        "--",
    ];
    args.extend(OBJECTS);
    let run = pageos(&args);
    assert_report_passed(&run);
    assert!(run.stdout.contains("2 passed, 0 failed"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("out of memory: killed"),
        "{}",
        run.stdout
    );
}

/// The OOM killer once RAM and swap are gone, with a small swap disk so
/// that filling it takes seconds (the hog's pages and its sibling's go to
/// swap before the kill).
#[test]
fn overcommit_and_the_oom_killer_on_a_small_machine_with_swap() {
    let run = pageos(&[
        "--memory",
        "64M",
        "--swap",
        "32M",
        "--timeout",
        "400",
        "--kernel-arg",
        "init=/bin/pressuretest",
        "--",
        "overcommit_modes_as_linux",
        "oom_kills_the_hog_and_spares_its_sibling",
    ]);
    assert_report_passed(&run);
    // The hog is the one killed, by name, though its sibling may have faulted.
    assert!(
        run.stdout.contains("out of memory: killed pid ") && run.stdout.contains("(pressuretest)"),
        "{}",
        run.stdout
    );
}

#[test]
fn overcommit_mode_and_ratio_from_the_kernel_command_line() {
    let run = pageos(&[
        "--kernel-arg",
        "sysctl.vm.overcommit_memory=2",
        "--kernel-arg",
        "sysctl.vm.overcommit_ratio=80",
        "--kernel-arg",
        "init=/bin/pressuretest",
        "--",
        "sysctl",
        "2",
        "80",
    ]);
    assert_report_passed(&run);
}

/// The cases pageos runs, on Linux. The Debian kernel and its initramfs do
/// not boot in 64 MiB, so Linux gets 128 MiB (the cases size themselves
/// from MemTotal) and the same swap sizes as pageos: 512 MiB for the cases
/// that page out, 32 MiB for the OOM killer. `make linux-pressuretest`
/// (in `make stress`) runs every case on Linux, the shared anonymous and
/// tmpfs ones too: those alone cost a minute of TCG time.
#[test]
fn linux_comparison_pressuretest_reclaim_cases() {
    let mut args = vec!["--memory", "128M", "--swap", "512M", "pressuretest", "--"];
    args.extend(RECLAIM);
    let Some(out) = linux_run(&args) else {
        return;
    };
    assert!(out.contains("5 passed, 0 failed"), "{out}");
}

/// Overcommit, the OOM killer and the command line's sysctls on Linux.
#[test]
fn linux_comparison_pressuretest_overcommit_and_oom() {
    let Some(out) = linux_run(&[
        "--memory",
        "128M",
        "--swap",
        "32M",
        "pressuretest",
        "--",
        "overcommit_modes_as_linux",
        "oom_kills_the_hog_and_spares_its_sibling",
    ]) else {
        return;
    };
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    let Some(out) = linux_run(&[
        "--swap",
        "64M",
        "--append",
        "sysctl.vm.overcommit_memory=2",
        "--append",
        "sysctl.vm.overcommit_ratio=80",
        "pressuretest",
        "--",
        "sysctl",
        "2",
        "80",
    ]) else {
        return;
    };
    assert!(out.contains("1 passed, 0 failed"), "{out}");
}

/// madvise under pressure (docs/src/pressure.md): MADV_FREE, MADV_PAGEOUT
/// and MADV_WILLNEED, 4 KiB and 2 MiB pages, with swap but no pressure
/// (seconds); and the page tables of a sparse range whose pages went.
const MADVISE: [&str; 6] = [
    "madvise_free_pages_go_without_a_write",
    "madvise_pageout_writes_pages_to_swap_now",
    "madvise_willneed_reads_swapped_pages_back",
    "madvise_on_a_2mib_page_splits_it_first",
    "madvise_free_pages_go_first_under_pressure",
    "page_tables_of_dropped_pages_go",
];

#[test]
fn madvise_free_pageout_and_willneed_with_swap() {
    let mut args = vec![
        "--memory",
        "64M",
        "--swap",
        "64M",
        "--kernel-arg",
        "init=/bin/pressuretest",
        "--",
    ];
    args.extend(MADVISE);
    let run = pageos(&args);
    assert_report_passed(&run);
    assert!(run.stdout.contains("6 passed, 0 failed"), "{}", run.stdout);
}

/// The madvise cases on Linux (128 MiB: the Debian kernel does not boot
/// in 64), with the same 64 MiB of swap.
#[test]
fn linux_comparison_pressuretest_madvise_cases() {
    let mut args = vec!["--memory", "128M", "--swap", "64M", "pressuretest", "--"];
    args.extend(MADVISE);
    let Some(out) = linux_run(&args) else {
        return;
    };
    assert!(out.contains("6 passed, 0 failed"), "{out}");
}

/// Without swap, MADV_FREE'd pages are all reclaim can take: it runs for
/// them (`kernel/src/reclaim.rs`), and a sweep that needs their frames
/// gets them instead of the OOM killer. (Linux's runs of pressuretest
/// need the swap disk: without a disk its init mounts no /proc.)
#[test]
fn madvise_free_pages_are_reclaimed_without_swap() {
    let run = pageos(&[
        "--memory",
        "64M",
        "--kernel-arg",
        "init=/bin/pressuretest",
        "--",
        "madvise_free_pages_go_first_under_pressure",
    ]);
    assert_report_passed(&run);
    assert!(run.stdout.contains("1 passed, 0 failed"), "{}", run.stdout);
    assert!(!run.stdout.contains("out of memory"), "{}", run.stdout);
}
