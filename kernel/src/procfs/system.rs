//! The files of /proc about the whole machine: meminfo, vmstat, uptime,
//! loadavg, cpuinfo, version, stat, filesystems, mounts, and /proc/sys/vm.

use super::Sysctl;
use crate::{heap, phys, proc, ramfs, vfs, vmstat};
use alloc::format;
use alloc::string::String;
use core::fmt::Write;
use vm::errno::Errno;

pub fn global(g: super::Global) -> String {
    use super::Global as G;
    match g {
        G::Meminfo => meminfo(),
        G::Vmstat => vmstat(),
        G::Uptime => uptime(),
        G::Loadavg => loadavg(),
        G::Cpuinfo => cpuinfo(),
        G::Version => format!(
            "pageos version {} (rustc) #1 SMP PREEMPT_DYNAMIC\n",
            env!("CARGO_PKG_VERSION")
        ),
        G::Stat => stat(),
        G::Swaps => crate::swap::proc_swaps(),
        G::Filesystems => {
            let mut out = String::new();
            for fs in vfs::FILESYSTEMS {
                let dev = if fs == "ramfs" || fs == "tmpfs" || fs == "devtmpfs" {
                    ""
                } else {
                    "nodev"
                };
                let _ = writeln!(out, "{dev}\t{fs}");
            }
            out
        }
    }
}

/// Kernel stack pages per process (proc.rs's 32 KiB).
const KERNEL_STACK_PAGES: u64 = 8;

/// Every field Linux 6.1 prints, in its order and format (`%-16s%8lu kB`),
/// then pageos's KernelHeap.
/// pageos fills what it has: MemTotal, MemFree, MemAvailable (the free
/// frames: ramfs pages cannot be dropped), Cached (the ramfs's page cache),
/// SwapTotal and SwapFree (the swap device), Unevictable and Mlocked (the
/// pages resident in locked mappings), Slab/SUnreclaim (the kernel heap),
/// KernelStack, CommitLimit, Committed_AS (commit.rs), Active and
/// Inactive (the reclaim clock's lists), SwapCached (the swap cache).
fn meminfo() -> String {
    let total = phys::total_frames() as u64;
    let free = phys::free_frames() as u64;
    let cached = ramfs::cached_frames();
    let heap = heap::frames() as u64;
    let (procs, _) = proc::counts();
    let (swap_total, swap_used) = crate::swap::totals();
    // The clock's lists: user pages reclaim may take (anonymous ones).
    let (active, inactive) = crate::reclaim::lengths();
    let mut mlocked = 0;
    for pid in proc::pids() {
        let _ = proc::with_process(pid, |p| {
            mlocked += p
                .space_if_any()
                .map_or(0, |mut s| super::maps::locked_pages(&mut s));
        });
    }
    let fields: [(&str, u64); 45] = [
        ("MemTotal", total),
        ("MemFree", free),
        // ramfs pages cannot be dropped (they are the files): not available.
        ("MemAvailable", free),
        ("Buffers", 0),
        ("Cached", cached),
        ("SwapCached", crate::swap::cached_pages() as u64),
        ("Active", active as u64),
        ("Inactive", inactive as u64),
        ("Active(anon)", active as u64),
        ("Inactive(anon)", inactive as u64),
        ("Active(file)", 0),
        ("Inactive(file)", 0),
        ("Unevictable", mlocked),
        ("Mlocked", mlocked),
        ("SwapTotal", swap_total),
        ("SwapFree", swap_total - swap_used),
        ("Zswap", 0),
        ("Zswapped", 0),
        ("Dirty", 0),
        ("Writeback", 0),
        ("AnonPages", 0),
        ("Mapped", 0),
        ("Shmem", cached),
        ("KReclaimable", 0),
        ("Slab", heap),
        ("SReclaimable", 0),
        ("SUnreclaim", heap),
        ("KernelStack", procs as u64 * KERNEL_STACK_PAGES),
        ("PageTables", crate::pmap::table_frames()),
        ("SecPageTables", 0),
        ("NFS_Unstable", 0),
        ("Bounce", 0),
        ("WritebackTmp", 0),
        ("CommitLimit", crate::commit::limit()),
        ("Committed_AS", crate::commit::committed()),
        ("VmallocTotal", 34_359_738_367 / 4),
        ("VmallocUsed", 0),
        ("VmallocChunk", 0),
        ("Percpu", 0),
        ("HardwareCorrupted", 0),
        ("AnonHugePages", phys::huge_frames()),
        ("ShmemHugePages", vm::vm_object::shmem_huge_frames()),
        ("ShmemPmdMapped", vm::vm_object::shmem_pmd_mapped_frames()),
        ("FileHugePages", 0),
        ("FilePmdMapped", 0),
    ];
    let mut out = String::new();
    for (name, pages) in fields {
        let _ = writeln!(out, "{:<16}{:>8} kB", format!("{name}:"), pages * 4);
    }
    for name in [
        "HugePages_Total",
        "HugePages_Free",
        "HugePages_Rsvd",
        "HugePages_Surp",
    ] {
        let _ = writeln!(out, "{:<16}{:>8}", format!("{name}:"), 0);
    }
    let _ = writeln!(out, "{:<16}{:>8} kB", "Hugepagesize:", 2048);
    let _ = writeln!(out, "{:<16}{:>8} kB", "Hugetlb:", 0);
    let _ = writeln!(out, "{:<16}{:>8} kB", "DirectMap4k:", 0);
    let _ = writeln!(out, "{:<16}{:>8} kB", "DirectMap2M:", total * 4);
    // pageos's own line, after Linux's: the heap only grows, so the test
    // programs' leak checks leave it out of the frames in use.
    let _ = writeln!(out, "{:<16}{:>8} kB", "KernelHeap:", heap * 4);
    out
}

fn vmstat() -> String {
    let mut out = format!("nr_free_pages {}\n", phys::free_frames());
    for (name, count) in vmstat::counts() {
        let _ = writeln!(out, "{name} {count}");
    }
    out
}

/// Seconds since boot, with hundredths; then idle time (not measured: 0).
fn uptime() -> String {
    let cs = crate::time::monotonic() / 10_000_000;
    format!("{}.{:02} 0.00\n", cs / 100, cs % 100)
}

/// The load averages are not measured (0.00); then runnable/total and the
/// last pid, as Linux prints them.
fn loadavg() -> String {
    let (total, running) = proc::counts();
    let last = proc::pids().last().copied().unwrap_or(0);
    format!("0.00 0.00 0.00 {running}/{total} {last}\n")
}

fn cpuinfo() -> String {
    // The TSC's rate, as the boot calibrated it: 1e9 cycles take this long.
    let mhz = 1_000_000_000_000u64
        .checked_div(crate::time::cycles_to_nanos(1_000_000_000))
        .unwrap_or(0);
    format!(
        "processor\t: 0\nvendor_id\t: pageos\ncpu family\t: 6\nmodel\t\t: 0\n\
         model name\t: QEMU Virtual CPU\nstepping\t: 0\ncpu MHz\t\t: {mhz}.000\n\
         cache size\t: 0 KB\nphysical id\t: 0\nsiblings\t: 1\ncore id\t\t: 0\n\
         cpu cores\t: 1\nfpu\t\t: yes\nflags\t\t: fpu pse tsc msr pae cx8 apic sep pge cmov \
         pat mmx fxsr sse sse2 syscall nx lm smep smap\nbogomips\t: {}\n\
         clflush size\t: 64\naddress sizes\t: 40 bits physical, 48 bits virtual\n\n",
        mhz * 2
    )
}

/// The `cpu` lines of /proc/stat (in USER_HZ ticks) and the process counts.
fn stat() -> String {
    let ticks = crate::time::monotonic() / 10_000_000;
    let (total, running) = proc::counts();
    let line = format!("{ticks} 0 0 0 0 0 0 0 0 0");
    format!(
        "cpu  0 0 0 {line}\ncpu0 0 0 0 {line}\nintr 0\nctxt 0\nbtime 0\nprocesses {total}\n\
         procs_running {running}\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n"
    )
}

/// Linux's format: `source target fstype options 0 0`.
pub fn mounts() -> String {
    let mut out = String::from("rootfs / rootfs rw 0 0\n");
    for m in vfs::mounts() {
        let options = match m.fstype {
            "proc" => "rw,nosuid,nodev,noexec,relatime",
            "devtmpfs" => "rw,nosuid,relatime,mode=755",
            _ => "rw,relatime",
        };
        let _ = writeln!(out, "{} {} {} {options} 0 0", m.source, m.target, m.fstype);
    }
    out
}

pub fn sysctl(s: Sysctl) -> String {
    let value = match s {
        Sysctl::MaxMapCount => vm::space::max_map_count() as u64,
        Sysctl::MmapMinAddr => vm::space::USER_START,
        Sysctl::OvercommitMemory => crate::commit::mode() as u64,
        Sysctl::OvercommitRatio => crate::commit::ratio(),
    };
    format!("{value}\n")
}

/// A write to a sysctl file: a decimal number (EINVAL otherwise).
pub fn set_sysctl(s: Sysctl, data: &[u8]) -> Result<usize, Errno> {
    let text = core::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
    let value: usize = text.trim().parse().map_err(|_| Errno::EINVAL)?;
    match s {
        Sysctl::MaxMapCount => vm::space::set_max_map_count(value),
        // Linux's proc_dointvec_minmax: 0 to 2, EINVAL otherwise.
        Sysctl::OvercommitMemory if !crate::commit::set_mode(value) => return Err(Errno::EINVAL),
        Sysctl::OvercommitMemory => {}
        Sysctl::OvercommitRatio => crate::commit::set_ratio(value as u64),
        Sysctl::MmapMinAddr => return Err(Errno::EACCES),
    }
    Ok(data.len())
}
