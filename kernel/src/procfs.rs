//! Synthesized files under /proc, in Linux's formats, so the same program
//! reads the same numbers on pageos and on Linux: /proc/meminfo,
//! /proc/vmstat, /proc/swaps and /proc/self/maps. Each open takes a snapshot.
//!
//! One file is pageos's own, for readers of the page tables:
//! /proc/self/pagewalk/ADDR shows the four levels of the hardware's walk
//! for ADDR (hex) in the opening process's address space.

use crate::{heap, phys, proc, vmstat};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use vm::errno::Errno;
use vm::mmap::{Prot, Sharing};
use vm::vma::{Backing, Vma, VmaFlags};

/// The contents of `path` if it is a /proc file (None: not under /proc).
pub fn snapshot(path: &str) -> Option<Result<Vec<u8>, Errno>> {
    let text = match path.strip_prefix("/proc/")? {
        "meminfo" => meminfo(),
        "vmstat" => vmstat(),
        "swaps" => crate::swap::proc_swaps(),
        "self/maps" => proc::with_current(|p| maps(p.space())),
        other => match other.strip_prefix("self/pagewalk/").map(parse_hex) {
            Some(Some(addr)) => proc::with_current(|p| pagewalk(p.pid, p.space(), addr)),
            _ => return Some(Err(Errno::ENOENT)),
        },
    };
    Some(Ok(text.into_bytes()))
}

fn meminfo() -> String {
    let kib = |frames: u64| frames * 4;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "MemTotal:       {:>8} kB",
        kib(phys::total_frames() as u64)
    );
    let _ = writeln!(
        out,
        "MemFree:        {:>8} kB",
        kib(phys::free_frames() as u64)
    );
    let _ = writeln!(out, "KernelHeap:     {:>8} kB", kib(heap::frames() as u64));
    let (swap_total, swap_used) = crate::swap::totals();
    let _ = writeln!(out, "SwapTotal:      {:>8} kB", kib(swap_total));
    let _ = writeln!(out, "SwapFree:       {:>8} kB", kib(swap_total - swap_used));
    let _ = writeln!(out, "CommitLimit:    {:>8} kB", kib(phys::commit_limit()));
    let _ = writeln!(out, "Committed_AS:   {:>8} kB", kib(phys::committed()));
    out
}

fn vmstat() -> String {
    let mut out = format!("nr_free_pages {}\n", phys::free_frames());
    for (name, count) in vmstat::counts() {
        let _ = writeln!(out, "{name} {count}");
    }
    out
}

/// `start-end perms offset dev inode name`, one line per VMA.
fn maps(space: &crate::Space) -> String {
    let mut out = String::new();
    for v in space.vmas() {
        let offset = match &v.backing {
            Backing::Object { offset, .. } => *offset,
            _ => 0,
        };
        let line = format!(
            "{:08x}-{:08x} {} {:08x} 00:00 0",
            v.start,
            v.end,
            perms(v),
            offset
        );
        let _ = writeln!(out, "{line:<72} {}", v.label());
    }
    out
}

fn parse_hex(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    u64::from_str_radix(digits, 16).ok()
}

/// The walk for `addr`: one line per level with the entry's index, raw
/// value and flags, then the physical address it translates to.
fn pagewalk(pid: u32, space: &crate::Space, addr: u64) -> String {
    let mut out = format!("pagewalk {addr:#018x} (pid {pid})\n");
    let Ok(va) = x86_64::VirtAddr::try_new(addr) else {
        out.push_str("not a canonical address: no walk\n");
        return out;
    };
    let steps = space.pmap.walk_levels(va);
    for step in &steps {
        let frame = step.entry & 0x000f_ffff_ffff_f000;
        let what = match (step.entry & 1 != 0, step.leaf) {
            (false, _) => "not present: no translation".into(),
            (true, true) if step.level == 2 => format!("-> 2 MiB page at {frame:#x}"),
            (true, true) => format!("-> 4 KiB page at {frame:#x}"),
            (true, false) => format!("-> table at {frame:#x}"),
        };
        let _ = writeln!(
            out,
            "L{}[{:>3}] {:#018x} {:<22} {what}",
            step.level,
            step.index,
            step.entry,
            entry_flags(step.entry)
        );
    }
    if let Some(leaf) = steps.last().filter(|s| s.leaf) {
        let page_size = if leaf.level == 2 { 2 << 20 } else { 4096u64 };
        let base = leaf.entry & 0x000f_ffff_ffff_f000 & !(page_size - 1);
        let _ = writeln!(out, "physical {:#x}", base + (addr & (page_size - 1)));
    }
    out
}

/// The flag bits of a page-table entry, by their Intel names.
fn entry_flags(entry: u64) -> String {
    let names = [
        (0, "P"),
        (1, "W"),
        (2, "U"),
        (3, "PWT"),
        (4, "PCD"),
        (5, "A"),
        (6, "D"),
        (7, "PS"),
        (8, "G"),
        (63, "NX"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| entry & (1 << bit) != 0)
        .map(|&(_, name)| name)
        .collect();
    set.join(" ")
}

/// `rwxp` as /proc/self/maps shows a VMA's rights and sharing.
pub fn perms(v: &Vma) -> String {
    let bit = |p: Prot, c: char| if v.prot.contains(p) { c } else { '-' };
    let share = if v.sharing == Sharing::Shared {
        's'
    } else {
        'p'
    };
    format!(
        "{}{}{}{}",
        bit(Prot::READ, 'r'),
        bit(Prot::WRITE, 'w'),
        bit(Prot::EXEC, 'x'),
        share
    )
}

/// A short word for what backs a VMA (the fault trace prints it).
pub fn kind(v: &Vma) -> &'static str {
    match &v.backing {
        Backing::Guard => "guard",
        Backing::StackGap => "stack-gap",
        Backing::Object { object, .. } => match object.kind() {
            vm::vm_object::ObjectKind::File => "file",
            vm::vm_object::ObjectKind::Anonymous => "shm",
        },
        Backing::Anonymous if v.flags.contains(VmaFlags::GROWSDOWN) => "stack",
        Backing::Anonymous if v.flags.contains(VmaFlags::HEAP) => "heap",
        Backing::Anonymous if v.flags.contains(VmaFlags::HUGE) => "anon-huge",
        Backing::Anonymous => "anon",
    }
}
