//! Synthesized files under /proc, in Linux's formats, so the same program
//! reads the same numbers on pageos and on Linux: /proc/meminfo,
//! /proc/vmstat and /proc/self/maps. Each open takes a snapshot.

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
        "self/maps" => proc::with_current(|p| maps(p.space())),
        _ => return Some(Err(Errno::ENOENT)),
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
