//! Memory syscalls: mmap and its companions, and brk.
//!
//! Each one is three steps: `vm::mmap` checks the raw arguments (every
//! errno the spec names for bad input comes from there), the current
//! process's `AddressSpace` does the work, and the result goes back. The
//! rules themselves live, host-tested, in the `vm` crate.

use super::limits;
use crate::dev::Device;
use crate::fd::FileKind;
use crate::phys::KernelPhys;
use crate::{proc, usercopy};
use alloc::vec;
use vm::errno::{Errno, SysResult};
use vm::mmap::{self, Kind, Placement, Prot, Sharing};
use vm::vm_object::ObjectRef;
use vm::vma::{Backing, Inherit, PAGE, Vma, VmaFlags};

pub fn mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: u64, offset: u64) -> SysResult {
    // Linux reads fd as an int: only the low 32 bits count.
    let rules = proc::with_current(|p| p.res.rules());
    let mut req = mmap::validate_mmap_under(rules, addr, len, prot, flags, fd as i32, offset)?;
    let mut vma = match req.kind {
        Kind::File { fd, .. } => file_vma(&req, fd)?,
        _ => Vma::for_request(&req).expect("mmap: only files need a descriptor"),
    };
    // Mode 2 of vm.overcommit_memory charges MAP_NORESERVE too (commit.rs).
    if !crate::commit::honours_noreserve() {
        vma.flags.remove(VmaFlags::NORESERVE);
    }
    // After mlockall(MCL_FUTURE), new mappings are locked (and faulted in
    // unless MCL_ONFAULT), as if MAP_LOCKED had been given.
    if let Some(on_fault) = proc::with_current(|p| p.res.lock_future) {
        vma.flags |= VmaFlags::LOCKED;
        req.populate |= !on_fault;
    }
    let fixed = match req.placement {
        Placement::Fixed { addr, .. } => Some(addr),
        _ => None,
    };
    proc::with_current(|p| {
        limits::may_map(p, &vma, req.len, fixed)?;
        if vma.flags.contains(VmaFlags::LOCKED) && !limits::may_lock(p, fixed.unwrap_or(0), req.len)
        {
            return Err(Errno::EAGAIN);
        }
        let space = &mut *p.space();
        let start = space.mmap(&mut KernelPhys, &req, vma)?;
        debug_verify(space);
        Ok(start as usize)
    })
}

/// The VMA for mapping descriptor `fd`, after the descriptor checks of the
/// spec: EBADF (not open), ENODEV (not a regular file), EACCES (not open
/// for reading; MAP_SHARED with PROT_WRITE on a descriptor not open for
/// writing), then the seals' EPERM (`ramfs/seals.rs`). A shared mapping of
/// a read-only descriptor or a write-sealed file can never be made
/// writable, so its max_prot lacks WRITE (mprotect: EACCES).
fn file_vma(req: &mmap::MmapRequest, fd: i32) -> Result<Vma, Errno> {
    let fd = u64::try_from(fd).map_err(|_| Errno::EBADF)?;
    let file = proc::with_current(|p| p.files.get(fd))?;
    let file = file.lock();
    let inode = match &file.kind {
        FileKind::Inode(inode) => inode,
        FileKind::Device(_, Device::Zero) if file.readable() => return Ok(zero_vma(req)),
        _ => return Err(Errno::ENODEV),
    };
    let object = inode.object().ok_or(Errno::ENODEV)?;
    if !file.readable() {
        return Err(Errno::EACCES);
    }
    let shared = req.sharing == Sharing::Shared;
    let mut max_prot = Prot::all();
    if shared && !file.writable() {
        if req.prot.contains(Prot::WRITE) {
            return Err(Errno::EACCES);
        }
        max_prot.remove(Prot::WRITE);
    }
    // A write-sealed file (F_SEAL_WRITE, F_SEAL_FUTURE_WRITE) maps shared
    // only read-only, for good (EPERM; mprotect later: EACCES), as Linux
    // since 6.7 (and Debian's 6.1.192, which has the change); before it a
    // read-only shared mapping under F_SEAL_WRITE was EPERM too. Private
    // mappings copy on write and are allowed.
    if shared && inode.write_sealed() {
        if req.prot.contains(Prot::WRITE) {
            return Err(Errno::EPERM);
        }
        max_prot.remove(Prot::WRITE);
    }
    Ok(Vma::for_file(req, object.clone(), max_prot))
}

/// Mapping /dev/zero is anonymous memory (the seeds' "character special
/// file"): MAP_PRIVATE gives private zero pages, MAP_SHARED shared memory,
/// as Linux's shmem_zero_setup does; the offset does not matter.
fn zero_vma(req: &mmap::MmapRequest) -> Vma {
    let mut vma = Vma::anonymous(0, 0, req.prot);
    vma.flags = req.vma_flags;
    if req.sharing == Sharing::Shared {
        vma.sharing = Sharing::Shared;
        vma.inherit = Inherit::Share;
        vma.backing = Backing::Object {
            object: ObjectRef::new_anonymous(),
            offset: 0,
        };
    }
    vma
}

/// munmap in two halves (`unmap`): the VMAs leave the
/// tree under the write lock, then their pages go under the read lock,
/// while the other threads' faults elsewhere in the space go on (a 64 MiB
/// munmap holds the space for milliseconds). Outside the process table:
/// the space is all it needs.
pub fn munmap(addr: u64, len: u64) -> SysResult {
    let span = mmap::validate_munmap(addr, len)?;
    let mm = proc::with_current(|p| p.space.clone()).expect("munmap: a process with no space");
    unmap(&mm, span, |_| true).expect("munmap: the locked way takes every range")
}

/// The smallest munmap a one-thread process makes without the kernel
/// lock: 2 MiB, one slot (a few hundred thousand cycles of unmapping).
const LOCKLESS_ALONE: u64 = 2 << 20;

/// munmap without the kernel lock (`syscall::lockless`) when the range
/// holds only private anonymous memory, guards and stack gaps, none of it
/// locked, and there is no swap: then both halves need only the space,
/// its page tables, the frame allocator and the reverse map, which have
/// locks of their own, and a shootdown (cross-calls, which any CPU may
/// send). Not objects (their pages and the page cache are the kernel
/// lock's), nor swap slots (the swap cache's lock is taken without
/// answering cross-calls), nor mlock's counts. So two threads' munmaps
/// run at the same time, as on Linux, where only their first halves
/// meet, at the mmap_lock. None, with nothing done: the usual way, which
/// also gives the errors of bad arguments.
pub fn munmap_lockless(addr: u64, len: u64) -> Option<u64> {
    let span = mmap::validate_munmap(addr, len).ok()?;
    if crate::swap::active() {
        return None;
    }
    // When no other CPU runs the space (one thread), the kernel lock's
    // way is cheaper (pmap/shared.rs: no gather; 14 060 instructions for
    // mmap + touch + munmap of a page, against 16 660 this way), but for
    // a large range it holds every other CPU's system calls back for the
    // whole munmap (12 M cycles for 64 MiB under TCG): from
    // `LOCKLESS_ALONE` up, this way.
    let may = |space: &crate::Space| {
        space.holds_only_anonymous(span.start, span.end)
            && (space.pmap.runs_elsewhere() || span.end - span.start >= LOCKLESS_ALONE)
    };
    let mm = crate::mm::running()?;
    let result = unmap(&mm, span, may)?;
    Some(result.map_or_else(Errno::to_return, |value| value as u64))
}

/// munmap in its two halves if `may(space)` says so under the write lock:
/// the write lock for the first, then the read lock for the second
/// without letting go in between (`downgrade`), so that the faults of
/// the space's other threads go on while the detached range's pages go;
/// their frames go back last, with no lock of the space held, so that
/// the other threads' mmaps and munmaps, which wait for the read lock to
/// go, do not wait for that too (`vm::space::Unmapped`).
fn unmap(
    mm: &crate::mm::Mm,
    span: mmap::Span,
    may: impl FnOnce(&crate::Space) -> bool,
) -> Option<SysResult> {
    let mut space = mm.write();
    if !may(&space) {
        return None;
    }
    let detached = space.munmap_detach(&mut KernelPhys, span.start, span.end);
    debug_verify(&space);
    let space = space.downgrade();
    let unmapped = match detached {
        Ok(Some(detached)) => space.munmap_finish(&mut KernelPhys, detached),
        Ok(None) => return Some(Ok(0)),
        Err(errno) => return Some(Err(errno)),
    };
    drop(space);
    unmapped.release(&mut KernelPhys);
    Some(Ok(0))
}

/// mremap(old, old_len, new_len, flags, new_addr): `vm::mmap` checks the
/// arguments, the space resizes or moves; what it adds (the growth, and
/// for MREMAP_DONTUNMAP the new mapping) is first held to RLIMIT_AS and
/// RLIMIT_DATA (ENOMEM) and, for a locked mapping, RLIMIT_MEMLOCK (EAGAIN),
/// as Linux's vma_to_resize does.
pub fn mremap(old: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> SysResult {
    let req = mmap::validate_mremap(old, old_len, new_len, flags, new_addr)?;
    proc::with_current(|p| {
        let vma = p.space().find(req.old).cloned();
        if let Some(vma) = vma {
            let kept = req.old_len.min(req.new_len);
            let added = req.new_len - kept + if req.dont_unmap { kept } else { 0 };
            if added > 0 {
                let locked = vma.flags.contains(VmaFlags::LOCKED);
                if locked && !limits::may_lock(p, vm::space::USER_END, added) {
                    return Err(Errno::EAGAIN);
                }
                limits::may_map(p, &vma, added, None)?;
            }
        }
        let space = &mut *p.space();
        let new = space.mremap(&mut KernelPhys, &req)?;
        debug_verify(space);
        Ok(new as usize)
    })
}

pub fn mprotect(addr: u64, len: u64, prot: u64) -> SysResult {
    let (span, prot) = mmap::validate_mprotect(addr, len, prot)?;
    if span.is_empty() {
        return Ok(0);
    }
    with_space(|space, phys| space.mprotect(phys, span.start, span.end, prot))
}

pub fn madvise(addr: u64, len: u64, advice: u64) -> SysResult {
    let (span, advice) = mmap::validate_madvise(addr, len, advice)?;
    if span.is_empty() {
        return Ok(0);
    }
    if advice == mmap::Madvice::PageOut {
        // The checks under the space's lock; then reclaim, which reaches
        // every space itself, pushes the pages out (docs/src/pressure.md,
        // "madvise under pressure").
        let id = proc::with_current(|p| {
            let space = &mut *p.space();
            space.madvise(&mut KernelPhys, span.start, span.end, advice)?;
            Ok::<_, Errno>(space.pmap.id())
        })?;
        crate::reclaim::page_out(id, span.start, span.end);
        return Ok(0);
    }
    if advice == mmap::Madvice::Remove {
        // A hole in the object, for every process that maps it (Linux's
        // madvise_remove is a FALLOC_FL_PUNCH_HOLE of the file's range),
        // not only in this one.
        let holes = proc::with_current(|p| p.space().holes_to_punch(span.start, span.end))?;
        for (object, first, last) in holes {
            proc::punch_object(&object, first, last);
        }
        return Ok(0);
    }
    with_space(|space, phys| space.madvise(phys, span.start, span.end, advice))?;
    if advice == mmap::Madvice::Free {
        crate::reclaim::note_lazy_free();
    }
    Ok(0)
}

pub fn msync(addr: u64, len: u64, flags: u64) -> SysResult {
    let span = mmap::validate_msync(addr, len, flags)?;
    if span.is_empty() {
        return Ok(0);
    }
    with_space(|space, _| space.msync(span.start, span.end, flags & mmap::MS_INVALIDATE != 0))
}

/// Pages mincore looks at per step: the kernel's buffer is this big
/// whatever length the caller asks for (Linux works a page of bytes at a
/// time too).
const MINCORE_CHUNK: u64 = 4096;

/// mincore: one byte per page into the user's vector, a chunk at a time,
/// so a huge range costs no kernel memory. As Linux, the chunks before a
/// hole are written and the hole gives ENOMEM.
pub fn mincore(addr: u64, len: u64, vec: u64) -> SysResult {
    let span = mmap::validate_mincore(addr, len)?;
    let pages = usize::try_from(span.pages()).map_err(|_| Errno::ENOMEM)?;
    usercopy::check_range(vec, pages)?;
    let mut bytes = [0u8; MINCORE_CHUNK as usize];
    let mut start = span.start;
    let mut out = vec;
    while start < span.end {
        let end = span.end.min(start + MINCORE_CHUNK * PAGE);
        let n = ((end - start) / PAGE) as usize;
        proc::with_current(|p| {
            let space = &mut *p.space();
            space.mincore(start, end, &mut bytes[..n])?;
            usercopy::copy_out(space, out, &bytes[..n])
        })?;
        start = end;
        out += n as u64;
    }
    Ok(0)
}

pub fn mlock(addr: u64, len: u64, lock: bool) -> SysResult {
    let span = mmap::validate_mlock(addr, len)?;
    if span.is_empty() {
        return Ok(0);
    }
    if lock && !proc::with_current(|p| limits::may_lock(p, span.start, span.end - span.start)) {
        return Err(Errno::ENOMEM);
    }
    with_space(|space, phys| space.mlock(phys, span.start, span.end, lock))
}

const MLOCK_ONFAULT: u64 = 1;

/// mlock2(addr, len, flags): mlock, or with MLOCK_ONFAULT only the mark
/// (pages are locked as they fault in). Other flags: EINVAL.
pub fn mlock2(addr: u64, len: u64, flags: u64) -> SysResult {
    if flags & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    if flags == 0 {
        return mlock(addr, len, true);
    }
    let span = mmap::validate_mlock(addr, len)?;
    if span.is_empty() {
        return Ok(0);
    }
    if !proc::with_current(|p| limits::may_lock(p, span.start, span.end - span.start)) {
        return Err(Errno::ENOMEM);
    }
    with_space(|space, _| space.mlock_on_fault(span.start, span.end))
}

const MCL_CURRENT: u64 = 1;
const MCL_FUTURE: u64 = 2;
const MCL_ONFAULT: u64 = 4;

/// mlockall(flags): MCL_CURRENT locks every mapping now (faulting it in,
/// unless MCL_ONFAULT); MCL_FUTURE makes later mappings locked too.
/// EINVAL for no flag, an unknown one, or MCL_ONFAULT alone.
pub fn mlockall(flags: u64) -> SysResult {
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT
    {
        return Err(Errno::EINVAL);
    }
    let on_fault = flags & MCL_ONFAULT != 0;
    proc::with_current(|p| {
        if flags & MCL_FUTURE != 0 {
            p.res.lock_future = Some(on_fault);
        }
        if flags & MCL_CURRENT == 0 {
            return Ok(0);
        }
        let space = &mut *p.space();
        for (start, end) in lockable(space) {
            if on_fault {
                space.mlock_on_fault(start, end)?;
            } else {
                // Populating is best effort here, as Linux's mlockall.
                let _ = space.mlock(&mut KernelPhys, start, end, true);
            }
        }
        Ok(0)
    })
}

/// munlockall: every mapping unlocked, and MCL_FUTURE forgotten.
pub fn munlockall() -> SysResult {
    proc::with_current(|p| {
        p.res.lock_future = None;
        let space = &mut *p.space();
        for (start, end) in lockable(space) {
            space.mlock(&mut KernelPhys, start, end, false)?;
        }
        Ok(0)
    })
}

/// The ranges mlockall acts on: every VMA but guards and stack gaps.
fn lockable(space: &crate::Space) -> vec::Vec<(u64, u64)> {
    space
        .vmas()
        .filter(|v| !matches!(v.backing, Backing::Guard | Backing::StackGap))
        .map(|v| (v.start, v.end))
        .collect()
}

/// minherit (FreeBSD; number 1000 here): what fork does with the range.
pub fn minherit(addr: u64, len: u64, inherit: u64) -> SysResult {
    let (span, inherit) = mmap::validate_minherit(addr, len, inherit)?;
    if span.is_empty() {
        return Ok(0);
    }
    with_space(|space, _| space.minherit(span.start, span.end, inherit))
}

/// brk: returns the break in force afterwards; asking for 0 (or anything
/// impossible) returns the current one, which is how callers find it.
pub fn brk(addr: u64) -> SysResult {
    let new = proc::with_current(|p| {
        if !limits::may_brk(p, addr) {
            return p.space().brk_range().1;
        }
        p.space().brk(&mut KernelPhys, addr)
    });
    Ok(new as usize)
}

fn with_space(
    f: impl FnOnce(&mut crate::Space, &mut KernelPhys) -> Result<(), Errno>,
) -> SysResult {
    proc::with_current(|p| {
        let space = &mut *p.space();
        f(space, &mut KernelPhys)?;
        debug_verify(space);
        Ok(0)
    })
}

/// Debug kernels check the VMA tree after every change (while it is small
/// enough that the O(n) check does not dominate).
fn debug_verify(space: &crate::Space) {
    if cfg!(debug_assertions) && space.vma_count() < 256 {
        space.verify();
    }
}
