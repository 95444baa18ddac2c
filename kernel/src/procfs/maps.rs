//! /proc/PID/maps and smaps: one entry per VMA, as Linux prints them, and
//! the sizes /proc/PID/status and statm add up from the same walk.
//!
//! A file mapping shows the file's device, inode, path and the offset of
//! the VMA's first page in it (the program's own segments are file mappings
//! too: `exec.rs`). A page counts in Rss when a PTE maps it (the shared
//! zero frame excepted, as on Linux); it is the file's (RssFile) when it is
//! the page cache's frame, shared memory's (RssShmem) when it is a shared
//! anonymous object's, and anonymous otherwise (private memory and the
//! copy-on-write copies of file pages). Pss divides each page by the number
//! of mappings that share its frame.

use crate::Space;
use crate::phys::KernelPhys;
use crate::proc::{self, Pid};
use crate::ramfs::{Inode, Kind, Mount};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;
use vm::errno::Errno;
use vm::mmap::{Prot, Sharing};
use vm::pmap::{Mapping, PhysMem, Pmap};
use vm::vm_object::{ObjectKind, ObjectRef};
use vm::vma::{Advice, Backing, Inherit, PAGE, Vma, VmaFlags};

/// What a process's VMAs add up to, in KiB (/proc/PID/status's fields).
#[derive(Clone, Copy, Default)]
pub struct Sizes {
    pub vm_size: u64,
    pub vm_lck: u64,
    pub vm_data: u64,
    pub vm_stk: u64,
    pub vm_exe: u64,
    pub rss_anon: u64,
    pub rss_file: u64,
    pub rss_shmem: u64,
    pub hwm: u64,
}

/// The resident pages of one VMA, by kind (bytes; Pss scaled by sharers).
#[derive(Default)]
struct Resident {
    anon: u64,
    file: u64,
    shmem: u64,
    pss: u64,
    shared: u64,
    private: u64,
    huge_anon: u64,
    /// Mapped by 2 MiB entries of an object's blocks (ramfs = tmpfs: Shmem).
    huge_shmem: u64,
}

/// Whether Linux would count the VMA in its sizes: pageos's stack gap (the
/// room a stack may grow into) and the guard below it are not mappings on
/// Linux. (maps and smaps still show them, as `[stack gap]` and `[stack
/// guard]`: the reservation is part of pageos's address space, and the
/// tour points at it.)
fn counted(v: &Vma) -> bool {
    !v.is_stack_reservation()
}

pub fn sizes(space: &mut Space) -> Sizes {
    let mut s = Sizes {
        hwm: space.pmap.peak_pages() * 4,
        ..Sizes::default()
    };
    let vmas: Vec<Vma> = space.vmas().filter(|v| counted(v)).cloned().collect();
    for v in &vmas {
        let kb = v.len() / 1024;
        s.vm_size += kb;
        if v.flags.contains(VmaFlags::LOCKED) {
            s.vm_lck += kb;
        }
        let stack = v.flags.contains(VmaFlags::GROWSDOWN);
        if stack {
            s.vm_stk += kb;
        } else if v.sharing == Sharing::Private && v.prot.contains(Prot::WRITE) {
            s.vm_data += kb;
        } else if v.prot.contains(Prot::EXEC) && !v.prot.contains(Prot::WRITE) {
            s.vm_exe += kb;
        }
        let r = resident(space, v);
        s.rss_anon += r.anon / 1024;
        s.rss_file += r.file / 1024;
        s.rss_shmem += r.shmem / 1024;
    }
    s
}

/// Pages resident in `space`'s locked mappings (mlock, MAP_LOCKED,
/// MAP_WIRED), the zero frame left out: /proc/meminfo's Mlocked.
pub fn locked_pages(space: &mut Space) -> u64 {
    let zero = KernelPhys.zero_frame();
    let locked: Vec<(u64, u64)> = space
        .vmas()
        .filter(|v| v.flags.contains(VmaFlags::LOCKED))
        .map(|v| (v.start, v.end))
        .collect();
    let mut pages = 0;
    for (start, end) in locked {
        space.pmap.visit(start, end, &mut |_, m: Mapping| {
            if m.pfn != zero {
                pages += if m.huge { 512 } else { 1 };
            }
        });
    }
    pages
}

/// Walk the PTEs of `v` and sort its resident pages.
fn resident(space: &mut Space, v: &Vma) -> Resident {
    let mut r = Resident::default();
    let phys = KernelPhys;
    let zero = phys.zero_frame();
    let object = match &v.backing {
        Backing::Object { object, offset } => Some((object.clone(), *offset)),
        _ => None,
    };
    space.pmap.visit(v.start, v.end, &mut |va, m: Mapping| {
        if m.pfn == zero {
            return;
        }
        let bytes = if m.huge { 512 * PAGE } else { PAGE };
        let cached = object.as_ref().and_then(|(o, off)| {
            let index = (off + (va - v.start)) / PAGE;
            (o.frame_at(index) == Some(m.pfn)).then_some(o.kind())
        });
        // The object's own reference is not a mapping.
        let refs = u64::from(phys.refcount(m.pfn)).max(1);
        let maps = if cached.is_some() {
            (refs - 1).max(1)
        } else {
            refs
        };
        match cached {
            Some(ObjectKind::File) => r.file += bytes,
            Some(ObjectKind::Anonymous) => r.shmem += bytes,
            None => r.anon += bytes,
        }
        if m.huge && cached.is_none() {
            r.huge_anon += bytes;
        }
        if m.huge && cached.is_some() {
            r.huge_shmem += bytes;
        }
        r.pss += bytes / maps;
        if maps > 1 {
            r.shared += bytes;
        } else {
            r.private += bytes;
        }
    });
    r
}

/// Where each file's page cache can be found: (object, st_dev, inode, path),
/// for every regular file reachable from the root, mounted trees included.
fn files() -> Vec<(ObjectRef, u64, u64, String)> {
    fn walk(node: &Arc<Inode>, path: &str, out: &mut Vec<(ObjectRef, u64, u64, String)>) {
        if let Some(Mount::Ram(tree)) = node.mounted() {
            return walk(&tree, path, out);
        }
        match &node.kind {
            Kind::File(object) => out.push((object.clone(), node.dev, node.ino, path.into())),
            Kind::Dir(_) => {
                for (name, child) in node.entries().unwrap_or_default() {
                    walk(
                        &child,
                        &format!("{}/{name}", path.trim_end_matches('/')),
                        out,
                    );
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&crate::ramfs::root(), "/", &mut out);
    out
}

/// The header line of a VMA: Linux's `start-end perms offset dev inode`,
/// padded so the name starts in column 73.
fn header(v: &Vma, files: &[(ObjectRef, u64, u64, String)]) -> String {
    let (offset, file) = match &v.backing {
        Backing::Object { object, offset } => {
            (*offset, files.iter().find(|(o, ..)| o.same(object)))
        }
        _ => (0, None),
    };
    let memfd: String;
    let (dev, ino, name) = match file {
        Some((_, dev, ino, path)) => (*dev, *ino, path.as_str()),
        None if matches!(&v.backing, Backing::Object { object, .. } if object.kind() == ObjectKind::Anonymous) => {
            (0, 0, "/dev/zero (deleted)")
        }
        None => match &v.backing {
            Backing::Object { object, .. } => match crate::syscall::memfd::maps_name(object) {
                Some((dev, ino, name)) => {
                    memfd = name;
                    (dev, ino, memfd.as_str())
                }
                None => (0, 0, v.label()),
            },
            _ => (0, 0, v.label()),
        },
    };
    let line = format!(
        "{:08x}-{:08x} {} {offset:08x} 00:{dev:02x} {ino} ",
        v.start,
        v.end,
        super::perms(v)
    );
    if name.is_empty() {
        line
    } else {
        format!("{line:<72} {name}")
    }
}

/// Run `f` over the VMAs of process `pid` (ENOENT once it has exited).
fn with_vmas(pid: Pid, f: impl FnOnce(&mut Space, &[Vma]) -> String) -> Result<String, Errno> {
    proc::with_process(pid, |p| {
        let mut space = p.space_if_any()?;
        let vmas: Vec<Vma> = space.vmas().cloned().collect();
        Some(f(&mut space, &vmas))
    })
    .ok()
    .flatten()
    .ok_or(Errno::ENOENT)
}

pub fn maps(pid: Pid) -> Result<String, Errno> {
    let files = files();
    with_vmas(pid, |_, vmas| {
        let mut out = String::new();
        for v in vmas {
            let _ = writeln!(out, "{}", header(v, &files));
        }
        out
    })
}

pub fn smaps(pid: Pid) -> Result<String, Errno> {
    let files = files();
    with_vmas(pid, |space, vmas| {
        let mut out = String::new();
        for v in vmas {
            let r = resident(space, v);
            let rss = r.anon + r.file + r.shmem;
            let locked = if v.flags.contains(VmaFlags::LOCKED) {
                rss
            } else {
                0
            };
            let _ = writeln!(out, "{}", header(v, &files));
            let anon_dirty = r.anon.min(r.private);
            for (name, bytes) in [
                ("Size", v.len()),
                ("KernelPageSize", PAGE),
                ("MMUPageSize", PAGE),
                ("Rss", rss),
                ("Pss", r.pss),
                ("Pss_Dirty", r.pss.min(r.anon)),
                ("Shared_Clean", r.shared.saturating_sub(r.anon)),
                ("Shared_Dirty", r.shared.min(r.anon)),
                ("Private_Clean", r.private - anon_dirty),
                ("Private_Dirty", anon_dirty),
                ("Referenced", rss),
                ("Anonymous", r.anon),
                ("LazyFree", 0),
                ("AnonHugePages", r.huge_anon),
                ("ShmemPmdMapped", r.huge_shmem),
                ("FilePmdMapped", 0),
                ("Shared_Hugetlb", 0),
                ("Private_Hugetlb", 0),
                ("Swap", 0),
                ("SwapPss", 0),
                ("Locked", locked),
            ] {
                let _ = writeln!(out, "{:<16}{:>8} kB", format!("{name}:"), bytes / 1024);
            }
            // A 2 MiB page may fault in here: the policy allows it and an
            // aligned 2 MiB lies inside.
            let huge = 2 << 20;
            let allocates =
                vm::thp::object_huge(v, space.thp) == Some(vm::thp::ObjectHuge::Allocate);
            let eligible = (vm::thp::huge_allowed(v, space.thp).is_some() || allocates)
                && v.start.next_multiple_of(huge) + huge <= v.end;
            let _ = writeln!(out, "THPeligible:    {}", u8::from(eligible));
            let _ = writeln!(out, "VmFlags: {}", vm_flags(v));
        }
        out
    })
}

/// smaps's VmFlags mnemonics, in Linux's bit order.
fn vm_flags(v: &Vma) -> String {
    let shared = v.sharing == Sharing::Shared;
    let flags = [
        (v.prot.contains(Prot::READ), "rd"),
        (v.prot.contains(Prot::WRITE), "wr"),
        (v.prot.contains(Prot::EXEC), "ex"),
        (shared, "sh"),
        (v.max_prot.contains(Prot::READ), "mr"),
        (v.max_prot.contains(Prot::WRITE), "mw"),
        (v.max_prot.contains(Prot::EXEC), "me"),
        (shared, "ms"),
        (v.flags.contains(VmaFlags::GROWSDOWN), "gd"),
        (v.flags.contains(VmaFlags::LOCKED), "lo"),
        (v.advice == Advice::Sequential, "sr"),
        (v.advice == Advice::Random, "rr"),
        (v.inherit == Inherit::None, "dc"),
        (v.is_charged(), "ac"),
        (v.flags.contains(VmaFlags::NORESERVE), "nr"),
        (v.inherit == Inherit::Zero, "wf"),
        (v.flags.contains(VmaFlags::NOCORE), "dd"),
        (true, "sd"),
        (v.flags.contains(VmaFlags::HUGE), "hg"),
        (v.flags.contains(VmaFlags::NOHUGE), "nh"),
    ];
    let mut out = String::new();
    for (on, name) in flags {
        if on {
            out.push_str(name);
            out.push(' ');
        }
    }
    out
}
