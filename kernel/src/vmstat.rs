//! Fault and VM event counters (/proc/vmstat) and the `--trace-faults` log.

use crate::arch::percpu::{self, MAX_CPUS};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use vm::vm_fault::{Access, FaultError, Resolution};

static TRACE: AtomicBool = AtomicBool::new(false);

/// Counter names, as /proc/vmstat prints them.
pub const NAMES: [&str; 16] = [
    "pgfault",
    "pgfault_zero_page",
    "pgfault_zero_fill",
    "pgfault_huge",
    "pgfault_object",
    "pgfault_cow_copy",
    "pgfault_cow_reuse",
    "pgfault_make_writable",
    "pgfault_stack_growth",
    "pgfault_spurious",
    "pgfault_sigsegv",
    "pgfault_sigbus",
    "pgfault_oom_kill",
    // Not faults: the pages fault-around mapped along with object pages.
    "pgfault_around_mapped",
    "pgfault_swap_in",
    "pgfault_swap_cached",
];

/// Turn the fault trace on (the `trace-faults` switch) and print the
/// header of its columns.
pub fn set_trace(on: bool) {
    TRACE.store(on, Ordering::Relaxed);
    if on {
        log::info!(
            "fault {:>4} {:<18} {:<6} {:<44} {:<14} {:>10} {:>9}",
            "pid",
            "address",
            "access",
            "vma (range, rights, kind)",
            "resolution",
            "frame",
            "cycles"
        );
    }
}

/// One line of the trace, in the header's columns: the frame is the one
/// the page maps after the fault (none when the process got a signal).
pub fn trace_line(
    pid: u32,
    addr: u64,
    access: Access,
    vma: &str,
    result: &Result<Resolution, FaultError>,
    frame: Option<vm::frame::Pfn>,
    cycles: u64,
) {
    let frame = match (result, frame) {
        (Ok(_), Some(pfn)) => alloc::format!("{:#x}", pfn.addr()),
        _ => "-".into(),
    };
    // A swap-in that read the disk: how long of `cycles` it waited there,
    // and how many pages it read (the fault's page and its read-ahead).
    let disk = match result {
        Ok(Resolution::SwapIn {
            read: read @ 1..,
            cycles,
        }) => alloc::format!(" disk {cycles} cycles, {read} pages"),
        _ => alloc::string::String::new(),
    };
    log::info!(
        "fault {pid:>4} {addr:#018x} {:<6} {vma:<44} {:<14} {frame:>10} {cycles:>9}{disk}",
        access_name(access),
        outcome_name(result),
    );
}

pub fn tracing() -> bool {
    TRACE.load(Ordering::Relaxed)
}

/// Count one fault and how it ended.
pub fn record(result: &Result<Resolution, FaultError>) {
    let index = match result {
        Ok(Resolution::ZeroPage) => 1,
        Ok(Resolution::ZeroFill) => 2,
        Ok(Resolution::HugeZeroFill) => {
            count(Event::ThpFaultAlloc, 1);
            3
        }
        Ok(Resolution::HugeObjectPage { allocated }) => {
            count(Event::ThpFileAlloc, u64::from(*allocated));
            count(Event::ThpFileMapped, 1);
            3
        }
        Ok(Resolution::ObjectPage { around, read }) => {
            add(Counter::Fault(13), u64::from(*around));
            // A page of an object read back from swap (pswpin counts its pages).
            if *read > 0 {
                paging(Paging::MajorFault, 1);
            }
            4
        }
        Ok(Resolution::CopyOnWrite) => 5,
        Ok(Resolution::Reuse) => 6,
        Ok(Resolution::MakeWritable) => 7,
        Ok(Resolution::StackGrowth) => 8,
        Ok(Resolution::Spurious) => 9,
        Ok(Resolution::SwapIn { read: 0, .. }) => 15,
        Ok(Resolution::SwapIn { .. }) => {
            // pswpin is counted where the pages are read (swap::swap_in).
            paging(Paging::MajorFault, 1);
            14
        }
        Err(FaultError::Segv(_)) => 10,
        Err(FaultError::Bus) => 11,
        Err(FaultError::OutOfMemory) => 12,
    };
    add(Counter::Fault(0), 1);
    add(Counter::Fault(index), 1);
}

/// Events on the VM paths, counted so that a benchmark can say what an
/// operation costs in work rather than guess (docs/src/performance.md).
#[derive(Clone, Copy)]
pub enum Event {
    /// One `invlpg`.
    TlbFlushPage,
    /// A whole-TLB flush by reloading CR3 with the same L4.
    TlbFlushAll,
    /// CR3 loaded with another address space (a switch).
    Cr3Load,
    /// 4 KiB frames filled with zeros.
    FrameZeroed,
    /// Trips into the frame table (allocations, frees, reference counts).
    FrameTableCall,
    /// Kernel heap allocations.
    HeapAlloc,
    /// TLB shootdowns: cross-calls that flushed a changed range (or
    /// everything) on the other CPUs running an address space.
    TlbShootdown,
    /// 4 KiB frames copied (copy-on-write, private file pages).
    FrameCopied,
    /// 2 MiB pages a fault gave (Linux's thp_fault_alloc).
    ThpFaultAlloc,
    /// 2 MiB entries split into 512 4 KiB ones in place (thp_split_pmd).
    ThpSplitPmd,
    /// 2 MiB blocks an object got on a fault (thp_file_alloc).
    ThpFileAlloc,
    /// Objects' 2 MiB blocks mapped by one entry on a fault (thp_file_mapped).
    ThpFileMapped,
    /// Page tables freed because reclaim took the last page they mapped
    /// (a MADV_FREE'd page dropped; pageos's own counter).
    PgtableReclaimed,
    /// Wake-ups of the page-out daemon (Linux's pageoutrun counts its
    /// rounds).
    PageoutRun,
}

const EVENT_NAMES: [&str; 14] = [
    "tlb_flush_page",
    "tlb_flush_all",
    "cr3_load",
    "frames_zeroed",
    "frame_table_calls",
    "heap_allocs",
    "tlb_shootdown",
    "frames_copied",
    "thp_fault_alloc",
    "thp_split_pmd",
    "thp_file_alloc",
    "thp_file_mapped",
    "pgtable_reclaimed",
    "pageoutrun",
];

/// Count `n` occurrences of `event`.
pub fn count(event: Event, n: u64) {
    add(Counter::Event(event as usize), n);
}

/// Paging under memory pressure, under the names Linux's /proc/vmstat
/// gives them (docs/src/pressure.md): pages read from and written to swap,
/// faults that waited for the disk, and what reclaim scanned and took,
/// from the page-out thread (`_kswapd`) or an allocation (`_direct`).
#[derive(Clone, Copy)]
pub enum Paging {
    SwapIn,
    SwapOut,
    MajorFault,
    ScanKswapd,
    ScanDirect,
    StealKswapd,
    StealDirect,
    /// MADV_FREE'd pages reclaim dropped without a write.
    LazyFreed,
}

const PAGING_NAMES: [&str; 8] = [
    "pswpin",
    "pswpout",
    "pgmajfault",
    "pgscan_kswapd",
    "pgscan_direct",
    "pgsteal_kswapd",
    "pgsteal_direct",
    "pglazyfreed",
];

/// Count `n` pages (or faults) of paging event `event`.
pub fn paging(event: Paging, n: u64) {
    add(Counter::Paging(event as usize), n);
}

pub fn counts() -> impl Iterator<Item = (&'static str, u64)> {
    let gauges = [
        ("oom_kill", crate::oom::kills()),
        ("nr_page_table_pages", crate::pmap::table_frames()),
    ];
    let faults = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, sum(Counter::Fault(i))));
    let events = EVENT_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, sum(Counter::Event(i))));
    let paging = PAGING_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, sum(Counter::Paging(i))));
    faults.chain(events).chain(paging).chain(gauges)
}

/// The counters, one set per CPU (Linux's per-CPU `vm_event_states`):
/// every CPU counts every fault it takes, and one shared set would move
/// its cache lines between the CPUs on each (under multi-threaded TCG a
/// contended atomic costs as much as a few dozen instructions). A CPU adds
/// to its own set only; /proc/vmstat adds the sets up, a sum that may miss
/// what another CPU counts meanwhile, as Linux's does.
#[repr(align(64))]
struct Counters {
    faults: [AtomicU64; NAMES.len()],
    events: [AtomicU64; EVENT_NAMES.len()],
    paging: [AtomicU64; PAGING_NAMES.len()],
}

static PER_CPU: [Counters; MAX_CPUS] = [const {
    Counters {
        faults: [const { AtomicU64::new(0) }; NAMES.len()],
        events: [const { AtomicU64::new(0) }; EVENT_NAMES.len()],
        paging: [const { AtomicU64::new(0) }; PAGING_NAMES.len()],
    }
}; MAX_CPUS];

#[derive(Clone, Copy)]
enum Counter {
    Fault(usize),
    Event(usize),
    Paging(usize),
}

impl Counters {
    fn get(&self, counter: Counter) -> &AtomicU64 {
        match counter {
            Counter::Fault(i) => &self.faults[i],
            Counter::Event(i) => &self.events[i],
            Counter::Paging(i) => &self.paging[i],
        }
    }
}

/// Add to this CPU's count (the GS base names the CPU from the first
/// line of `arch::init` on, before anything is counted).
fn add(counter: Counter, n: u64) {
    PER_CPU[percpu::this().index()]
        .get(counter)
        .fetch_add(n, Ordering::Relaxed);
}

fn sum(counter: Counter) -> u64 {
    PER_CPU
        .iter()
        .map(|c| c.get(counter).load(Ordering::Relaxed))
        .sum()
}

pub fn access_name(access: Access) -> &'static str {
    match access {
        Access::Read => "read",
        Access::Write => "write",
        Access::Execute => "exec",
    }
}

pub fn outcome_name(result: &Result<Resolution, FaultError>) -> &'static str {
    match result {
        Ok(r) => r.name(),
        Err(FaultError::Segv(_)) => "SIGSEGV",
        Err(FaultError::Bus) => "SIGBUS",
        Err(FaultError::OutOfMemory) => "out-of-memory",
    }
}
