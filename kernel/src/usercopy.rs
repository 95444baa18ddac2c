//! Copying between the kernel and user memory.
//!
//! The kernel never dereferences a user address: SMAP would stop it, and a
//! bad pointer would fault inside the kernel. Instead each page of the user
//! range is resolved to its frame (`UserMemory::user_frame`, which may fault
//! the page in the way a user access would), and the bytes are copied through
//! the physical map. A range that cannot be resolved is EFAULT, never a crash.

use crate::phys;
use alloc::vec::Vec;
use vm::errno::Errno;
use x86_64::VirtAddr;
use x86_64::structures::paging::{Page, PhysFrame};

pub use vm::space::USER_END;
const PAGE: u64 = 4096;

/// Something that can produce the frame behind a user page.
pub trait UserMemory {
    /// The frame mapped at `page`, present and allowing the access (`write`),
    /// faulting it in if the mapping allows; EFAULT otherwise.
    fn user_frame(&mut self, page: Page, write: bool) -> Result<PhysFrame, Errno>;
}

/// A process's memory: each page is faulted in as the process's own access
/// would be, so a read() into freshly mmapped memory fills it, and a
/// pointer into a hole or a read-only page is EFAULT.
impl UserMemory for crate::Space {
    fn user_frame(&mut self, page: Page, write: bool) -> Result<PhysFrame, Errno> {
        let pfn = crate::Space::user_frame(
            self,
            &mut crate::phys::KernelPhys,
            page.start_address().as_u64(),
            write,
        )?;
        Ok(PhysFrame::containing_address(x86_64::PhysAddr::new(
            pfn.addr(),
        )))
    }
}

/// EFAULT unless [addr, addr+len) lies inside the user half.
pub fn check_range(addr: u64, len: usize) -> Result<(), Errno> {
    match addr.checked_add(len as u64) {
        Some(end) if end <= USER_END => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// Walk [addr, addr+len) page by page, handing each piece's kernel pointer to `f`.
fn for_each_piece(
    mem: &mut dyn UserMemory,
    addr: u64,
    len: usize,
    write: bool,
    mut f: impl FnMut(*mut u8, usize, usize),
) -> Result<(), Errno> {
    check_range(addr, len)?;
    let mut done = 0;
    while done < len {
        let at = addr + done as u64;
        let in_page = (PAGE - at % PAGE).min((len - done) as u64) as usize;
        let page = Page::containing_address(VirtAddr::new(at));
        let frame = mem.user_frame(page, write)?;
        let ptr = phys::to_virt(frame.start_address() + at % PAGE).as_mut_ptr::<u8>();
        f(ptr, done, in_page);
        done += in_page;
    }
    Ok(())
}

/// Copy user memory at `src` into `dst`.
pub fn copy_in(mem: &mut dyn UserMemory, src: u64, dst: &mut [u8]) -> Result<(), Errno> {
    let len = dst.len();
    for_each_piece(mem, src, len, false, |ptr, done, n| {
        // SAFETY: ptr is n bytes inside a resolved user frame in the physical map.
        unsafe { core::ptr::copy_nonoverlapping(ptr, dst[done..].as_mut_ptr(), n) }
    })
}

/// Copy `src` to user memory at `dst`.
pub fn copy_out(mem: &mut dyn UserMemory, dst: u64, src: &[u8]) -> Result<(), Errno> {
    for_each_piece(mem, dst, src.len(), true, |ptr, done, n| {
        // SAFETY: as in copy_in; the frame was resolved for writing.
        unsafe { core::ptr::copy_nonoverlapping(src[done..].as_ptr(), ptr, n) }
    })
}

pub fn read_u64(mem: &mut dyn UserMemory, addr: u64) -> Result<u64, Errno> {
    let mut bytes = [0; 8];
    copy_in(mem, addr, &mut bytes)?;
    Ok(u64::from_ne_bytes(bytes))
}

/// A NUL-terminated string of at most `max` bytes (ENAMETOOLONG past it).
pub fn read_cstr(mem: &mut dyn UserMemory, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::new();
    let mut at = addr;
    loop {
        let chunk = (PAGE - at % PAGE) as usize;
        let mut buf = [0u8; PAGE as usize];
        copy_in(mem, at, &mut buf[..chunk])?;
        if let Some(nul) = buf[..chunk].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..nul]);
            return if out.len() > max {
                Err(Errno::ENAMETOOLONG)
            } else {
                Ok(out)
            };
        }
        out.extend_from_slice(&buf[..chunk]);
        if out.len() > max {
            return Err(Errno::ENAMETOOLONG);
        }
        at += chunk as u64;
    }
}
