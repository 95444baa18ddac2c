//! /proc/PID/pagemap and /proc/PID/mem: a process's page tables and memory,
//! read (and mem written) at the offset that is the virtual address.
//!
//! pagemap has one 64-bit entry per virtual page, at offset (addr / 4096) *
//! 8, Linux's layout: bits 0-54 the frame number (Linux hides it from
//! readers without CAP_SYS_ADMIN; every pageos process is root, so it is
//! shown), 55 soft-dirty (every VMA is soft-dirty: pageos has no
//! clear_refs), 56 the page is mapped exclusively (its frame has one
//! mapping), 61 a file or shared-memory page, 62 swapped (never yet), 63
//! present. A page outside every VMA reads as 0. Offsets and lengths must
//! be multiples of 8 (EINVAL), as Linux wants.
//!
//! mem reads and writes go through the target's page tables as the
//! target's own accesses would (pages are faulted in), so an address
//! outside its mappings, or a write to a read-only page, is EIO. (Linux's
//! FOLL_FORCE lets a debugger write read-only private pages: pageos does
//! not have it.)

use crate::phys::KernelPhys;
use crate::proc::{self, Pid};
use crate::usercopy;
use vm::errno::Errno;
use vm::pmap::{PhysMem, Pmap};
use vm::vm_object::ObjectKind;
use vm::vma::{Backing, PAGE};

const PFN_MASK: u64 = (1 << 55) - 1;
const SOFT_DIRTY: u64 = 1 << 55;
const EXCLUSIVE: u64 = 1 << 56;
const FILE_OR_SHARED: u64 = 1 << 61;
const PRESENT: u64 = 1 << 63;

pub fn read(pid: Pid, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    if !offset.is_multiple_of(8) || !buf.len().is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let first = offset / 8;
    proc::with_process(pid, |p| {
        let Some(space) = p.space_if_any() else {
            return 0;
        };
        let phys = KernelPhys;
        let mut n = 0;
        for (i, slot) in buf.as_chunks_mut::<8>().0.iter_mut().enumerate() {
            let Some(addr) = (first + i as u64).checked_mul(PAGE) else {
                break;
            };
            if addr >= vm::space::USER_END {
                break;
            }
            let entry = match space.find(addr).cloned() {
                None => 0,
                Some(vma) => {
                    let mut entry = SOFT_DIRTY;
                    if let Some(m) = space.pmap.query(addr) {
                        let within = if m.huge {
                            (addr & ((2 << 20) - 1)) / PAGE
                        } else {
                            0
                        };
                        entry |= PRESENT | ((m.pfn.0 + within) & PFN_MASK);
                        let zero = m.pfn == phys.zero_frame();
                        let cached = vma.object_offset(addr).is_some_and(|(object, off)| {
                            object.frame_at(off / PAGE) == Some(m.pfn)
                        });
                        let shared = matches!(&vma.backing, Backing::Object { object, .. }
                            if object.kind() == ObjectKind::Anonymous);
                        let maps = phys.refcount(m.pfn) - u32::from(cached);
                        if !zero && (cached || shared) {
                            entry |= FILE_OR_SHARED;
                        }
                        if !zero && maps == 1 {
                            entry |= EXCLUSIVE;
                        }
                    }
                    entry
                }
            };
            slot.copy_from_slice(&entry.to_le_bytes());
            n += 8;
        }
        n
    })
    .map_err(|_| Errno::ESRCH)
}

pub fn read_mem(pid: Pid, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    transfer(pid, addr, buf.len(), |space, at, range| {
        usercopy::copy_in(space, at, &mut buf[range])
    })
}

pub fn write_mem(pid: Pid, addr: u64, data: &[u8]) -> Result<usize, Errno> {
    transfer(pid, addr, data.len(), |space, at, range| {
        usercopy::copy_out(space, at, &data[range])
    })
}

/// Move `len` bytes at `addr` of process `pid` a page at a time; the bytes
/// moved before the first page that fails, or EIO if it is the first.
fn transfer(
    pid: Pid,
    addr: u64,
    len: usize,
    mut step: impl FnMut(&mut crate::Space, u64, core::ops::Range<usize>) -> Result<(), Errno>,
) -> Result<usize, Errno> {
    proc::with_process(pid, |p| {
        let mut space = p.space_if_any().ok_or(Errno::EIO)?;
        let mut done = 0;
        while done < len {
            let at = addr.checked_add(done as u64).ok_or(Errno::EIO)?;
            let n = (len - done).min((PAGE - at % PAGE) as usize);
            if step(&mut space, at, done..done + n).is_err() {
                break;
            }
            done += n;
        }
        if done == 0 && len > 0 {
            Err(Errno::EIO)
        } else {
            Ok(done)
        }
    })
    .map_err(|_| Errno::ESRCH)?
}
