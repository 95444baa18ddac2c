//! The swap device: the runner's `--swap` and `--disk`, the kernel's
//! virtio-blk driver and swap slots (its self-tests write pages to the
//! disk and read them back), /proc/swaps and /proc/meminfo, and one swap
//! image used by pageos and by Linux alike.

mod common;
use common::{Run, assert_report_passed, linux_run, pageos};
use std::process::Command;
use vm::swap_header::SwapHeader;

/// 64 MiB: 16384 pages, the header and 16383 slots of 4 kB.
const SWAP_KB: &str = "65532";

#[test]
fn kernel_self_tests_pass_with_a_swap_disk() {
    let run = pageos(&["--swap", "64M", "--kernel-arg", "selftest"]);
    assert_report_passed(&run);
    for case in [
        "ok swap_slots_count_holders",
        "ok swap_pages_round_trip",
        "ok swap_cluster_round_trip",
    ] {
        assert!(run.stdout.contains(case), "no {case:?}:\n{}", run.stdout);
    }
    assert!(
        run.stdout
            .contains("swap: /dev/vda: 65532 kB in 16383 slots, label \"pageos-swap\""),
        "{}",
        run.stdout
    );
}

/// swaptest with these disk options: its report must pass.
fn swaptest(disk: &[&str]) -> Run {
    let mut args = disk.to_vec();
    args.extend([
        "--kernel-arg",
        "init=/bin/swaptest",
        "--",
        "/dev/vda",
        SWAP_KB,
    ]);
    let run = pageos(&args);
    assert_report_passed(&run);
    run
}

#[test]
fn swaptest_sees_the_swap_disk() {
    swaptest(&["--swap", "64M"]);
}

#[test]
fn without_a_swap_disk_proc_swaps_is_empty() {
    let run = pageos(&[
        "--kernel-arg",
        "init=/bin/swaptest",
        "--",
        "/dev/vda",
        SWAP_KB,
    ]);
    assert!(
        run.stdout.contains(
            "BEGIN /proc/swaps\nFilename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\nEND /proc/swaps"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("FAIL proc_swaps_lists_the_device: 0 swap areas listed")
    );
}

#[test]
fn runner_refuses_bad_disks() {
    let runner = env!("CARGO_BIN_EXE_boot");
    for (args, message) in [
        (&["--swap", "16K"][..], "needs at least 10 pages"),
        (&["--swap", "lots"][..], "not a size"),
        (&["--disk", "/no/such/disk.img"][..], "no such file"),
    ] {
        let out = Command::new(runner).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// The lines between `BEGIN /proc/swaps` and `END /proc/swaps` (Linux's
/// console ends lines with CR LF).
fn proc_swaps(output: &str) -> String {
    let output = output.replace("\r\n", "\n");
    let start = output
        .find("BEGIN /proc/swaps\n")
        .unwrap_or_else(|| panic!("no /proc/swaps in:\n{output}"));
    let rest = &output[start..];
    let end = rest.find("END /proc/swaps").expect("no END /proc/swaps");
    rest[..end].to_string()
}

/// One image with the swap header the runner writes, given to pageos and
/// then to Linux (scripts/linux-run.py --disk, where the program calls
/// swapon): both take it as swap, and /proc/swaps reads the same.
#[test]
fn linux_comparison_one_swap_image_for_both_kernels() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("swap.img");
    let header = SwapHeader::new(16384, *b"pageos-swap-test", "pageos-swap");
    std::fs::write(&image, header.to_page()).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&image)
        .and_then(|f| f.set_len(64 << 20))
        .unwrap();
    let image = image.to_str().unwrap();
    let run = swaptest(&["--disk", image]);
    let Some(linux) = linux_run(&["--disk", image, "swaptest", "--", "/dev/vda", SWAP_KB]) else {
        return;
    };
    assert_eq!(proc_swaps(&run.stdout), proc_swaps(&linux));
}
