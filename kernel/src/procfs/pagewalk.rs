//! /proc/PID/pagewalk/ADDR, pageos's own file for readers of the page
//! tables: the four levels of the hardware's walk for ADDR (hex) in that
//! process's address space. Also the words the fault trace and maps use for
//! a VMA's rights and kind.

use crate::proc::{self, Pid};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};
use vm::errno::Errno;
use vm::mmap::{Prot, Sharing};
use vm::pmap::Pmap as _;
use vm::vma::{Backing, Vma, VmaFlags};

/// Whether walks of kernel-half addresses are shown: only when the kernel
/// was booted with `debug-pagewalk`. Their entries would hand any process
/// the kernel's physical layout (what KASLR and Linux's pagemap rules hide).
static KERNEL_WALKS: AtomicBool = AtomicBool::new(false);
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;

pub fn allow_kernel_walks(allow: bool) {
    KERNEL_WALKS.store(allow, Ordering::Relaxed);
}

/// The walk's text for `addr` in process `pid` (ENOENT once it has exited;
/// EACCES for a kernel-half address unless `debug-pagewalk` allows it).
pub fn pagewalk(pid: Pid, addr: u64) -> Result<String, Errno> {
    if addr >= KERNEL_HALF && !KERNEL_WALKS.load(Ordering::Relaxed) {
        return Err(Errno::EACCES);
    }
    proc::with_process(pid, |p| p.space_if_any().map(|s| walk_text(pid, &s, addr)))?
        .ok_or(Errno::ENOENT)
}

pub fn parse_hex(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    u64::from_str_radix(digits, 16).ok()
}

/// The walk for `addr`: one line per level with the entry's index, raw
/// value and flags, then the physical address it translates to.
fn walk_text(pid: u32, space: &crate::Space, addr: u64) -> String {
    let mut out = format!("pagewalk {addr:#018x} (pid {pid})\n");
    let Ok(va) = x86_64::VirtAddr::try_new(addr) else {
        out.push_str("not a canonical address: no walk\n");
        return out;
    };
    let steps = space.pmap.walk_levels(va);
    for step in &steps {
        let frame = step.entry & 0x000f_ffff_ffff_f000;
        let what = match (step.entry & 1 != 0, step.leaf) {
            (false, _) if step.level == 1 && step.entry != 0 => match space.pmap.query_swap(addr) {
                Some(slot) => format!("not present: in swap, slot {}", slot.0),
                None => "not present: no translation".into(),
            },
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
