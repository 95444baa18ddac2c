//! EXPERIMENT ONLY (not for main): per-CPU cycle buckets.
use crate::arch::percpu;
use core::sync::atomic::{AtomicU64, Ordering};
pub const N: usize = 16;
#[repr(align(64))]
struct Cpu([AtomicU64; N], [AtomicU64; N]);
static P: [Cpu; 8] = [const { Cpu([const { AtomicU64::new(0) }; N], [const { AtomicU64::new(0) }; N]) }; 8];
pub fn now() -> u64 { crate::arch::rdtsc() }
pub fn add(i: usize, since: u64) {
    let c = &P[percpu::this().index()];
    c.0[i].fetch_add(now() - since, Ordering::Relaxed);
    c.1[i].fetch_add(1, Ordering::Relaxed);
}
pub const NAMES: [&str; N] = ["pf_total","try_read","fault_shared","drop_read","look","alloc_zeroed","enter","enter_lockwait","rmap_add","unmap_shared","unmap_flush","unmap_release","unmap_clear","put_pfn","rmap_remove","x15"];
pub fn dump() {
    for (cpu, c) in P.iter().enumerate() {
        for i in 0..N {
            let n = c.1[i].load(Ordering::Relaxed);
            if n == 0 { continue; }
            let cy = c.0[i].load(Ordering::Relaxed);
            log::info!("prof cpu{cpu} {:14} n {:9} avg {:7} total {}M", NAMES[i], n, cy / n, cy / 1_000_000);
        }
    }
}
