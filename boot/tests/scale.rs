//! pageos from a small machine to a large one: the VM and file test programs pass
//! at both ends of the supported range, 64 MiB and 16 GiB of RAM (the frame
//! table, the buddy allocator's orders and the commit limit all scale with
//! it). Boot time against RAM is measured in docs/src/performance.md.

mod common;

use common::{assert_report_passed, pageos};

fn passes_with(program: &str, memory: &str) {
    let init = format!("init=/bin/{program}");
    let run = pageos(&[
        "--memory",
        memory,
        "--timeout",
        "180",
        "--kernel-arg",
        &init,
    ]);
    assert_report_passed(&run);
}

#[test]
fn vmtest_passes_with_64_mib() {
    passes_with("vmtest", "64M");
}

#[test]
fn vmtest_passes_with_16_gib() {
    passes_with("vmtest", "16G");
}

#[test]
fn filetest_passes_with_64_mib() {
    passes_with("filetest", "64M");
}

#[test]
fn filetest_passes_with_16_gib() {
    passes_with("filetest", "16G");
}
