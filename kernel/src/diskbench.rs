//! `--kernel-arg diskbench`: the swap disk's raw throughput, for the
//! figures in docs/src/pressure.md. It writes and reads 4 KiB pages
//! through the swap interface (so through the virtio queue, the interrupt
//! and the wait), one request at a time and in clusters of 8 in flight,
//! then random single reads, and prints pages per second and cycles per
//! page. Then it stops the machine (status 0; 1 without a swap device).

use crate::arch::rdtsc;
use crate::phys::Frame;
use crate::{kprintln, qemu, swap};
use alloc::vec::Vec;
use vm::swap_map::Slot;

const PAGES: u32 = 16384;
const CLUSTER: usize = 8;

pub fn run() -> ! {
    if !swap::active() {
        kprintln!("diskbench: no swap device (boot with --swap SIZE)");
        qemu::exit(1);
    }
    let slots: Vec<Slot> = (0..PAGES).map_while(|_| swap::alloc_slot()).collect();
    let frames: Vec<Frame> = (0..CLUSTER).filter_map(|_| Frame::alloc_zeroed()).collect();
    let refs: Vec<&Frame> = frames.iter().collect();
    let n = slots.len();
    kprintln!("diskbench: {n} pages of 4 KiB on the swap disk");
    measure("write, 1 page a request", n, || {
        for &slot in &slots {
            swap::write_page(slot, &frames[0]).expect("diskbench: write");
        }
    });
    measure("read, 1 page a request", n, || {
        for &slot in &slots {
            swap::read_page(slot, &frames[0]).expect("diskbench: read");
        }
    });
    measure("write, 8 pages in flight", n, || {
        for first in slots.chunks(CLUSTER) {
            swap::write_cluster(first[0], &refs[..first.len()]).expect("diskbench: write");
        }
    });
    measure("read, 8 pages in flight", n, || {
        for first in slots.chunks(CLUSTER) {
            swap::read_cluster(first[0], &refs[..first.len()]).expect("diskbench: read");
        }
    });
    // A linear congruential walk over the slots: no two reads adjacent.
    let mut x = 12345u32;
    measure("read, random single pages", n, || {
        for _ in 0..n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let slot = slots[(x >> 8) as usize % n];
            swap::read_page(slot, &frames[0]).expect("diskbench: read");
        }
    });
    for slot in slots {
        swap::free_slot(slot);
    }
    let stats = swap::disk_stats();
    kprintln!(
        "diskbench: done; the disk read {} and wrote {} pages, waited {} ms",
        stats.reads,
        stats.writes,
        stats.wait_nanos / 1_000_000
    );
    qemu::exit(0);
}

fn measure(what: &str, pages: usize, run: impl FnOnce()) {
    let (t0, c0) = (crate::time::monotonic(), rdtsc());
    run();
    let (nanos, cycles) = (crate::time::monotonic() - t0, rdtsc() - c0);
    let per_second = pages as u64 * 1_000_000_000 / nanos.max(1);
    let tenths_mb = per_second * 4096 / 100_000;
    kprintln!(
        "diskbench: {what:<28} {per_second:>7} pages/s {:>4}.{} MB/s {:>9} cycles/page",
        tenths_mb / 10,
        tenths_mb % 10,
        cycles / pages.max(1) as u64
    );
}
