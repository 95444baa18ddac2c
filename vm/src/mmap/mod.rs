//! The rules of mmap(2) and its companions, as pure functions: raw syscall
//! arguments in, a checked request (or the errno the spec names) out.
//!
//! The ABI is DESIGN §2: Linux's numbers and flag values, with the BSD-only
//! flags of the FreeBSD and NetBSD pages in the upper 32 bits of `flags`.
//! Nothing here looks at the address space; whatever needs it (is the
//! range free? is it mapped?) is decided by `space::AddressSpace`.

use crate::errno::Errno;
use crate::space::{USER_END, USER_START};
use crate::vma::{HUGE_PAGE, Inherit, PAGE, VmaFlags};
use bitflags::bitflags;

mod remap;
pub use remap::{MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, RemapRequest, validate_mremap};

// Linux's flag values.
pub const MAP_SHARED: u64 = 0x1;
pub const MAP_PRIVATE: u64 = 0x2;
pub const MAP_SHARED_VALIDATE: u64 = 0x3;
pub const MAP_TYPE: u64 = 0xf;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_ANON: u64 = MAP_ANONYMOUS;
pub const MAP_FILE: u64 = 0;
pub const MAP_32BIT: u64 = 0x40;
pub const MAP_GROWSDOWN: u64 = 0x100;
pub const MAP_DENYWRITE: u64 = 0x800;
pub const MAP_EXECUTABLE: u64 = 0x1000;
pub const MAP_LOCKED: u64 = 0x2000;
/// NetBSD's name for MAP_LOCKED.
pub const MAP_WIRED: u64 = MAP_LOCKED;
pub const MAP_NORESERVE: u64 = 0x4000;
pub const MAP_POPULATE: u64 = 0x8000;
pub const MAP_NONBLOCK: u64 = 0x10000;
pub const MAP_STACK: u64 = 0x20000;
pub const MAP_HUGETLB: u64 = 0x40000;
pub const MAP_SYNC: u64 = 0x80000;
pub const MAP_FIXED_NOREPLACE: u64 = 0x100000;
pub const MAP_UNINITIALIZED: u64 = 0x400_0000;
/// With MAP_HUGETLB, bits 26..32 give log2 of the page size (0 = default).
pub const MAP_HUGE_SHIFT: u64 = 26;
pub const MAP_HUGE_MASK: u64 = 0x3f;
pub const MAP_HUGE_2MB: u64 = 21 << MAP_HUGE_SHIFT;

// The BSD flags, in the upper half (DESIGN §2).
pub const MAP_ALIGNMENT_SHIFT: u64 = 32;
pub const MAP_ALIGNMENT_MASK: u64 = 0xff << MAP_ALIGNMENT_SHIFT;
/// MAP_ALIGNED(n): the address is a multiple of 2^n.
pub const fn map_aligned(n: u64) -> u64 {
    n << MAP_ALIGNMENT_SHIFT
}
pub const MAP_ALIGNED_SUPER: u64 = 1 << 32;
pub const MAP_GUARD: u64 = 1 << 40;
pub const MAP_EXCL: u64 = 1 << 41;
pub const MAP_NOCORE: u64 = 1 << 42;
pub const MAP_NOSYNC: u64 = 1 << 43;
pub const MAP_HASSEMAPHORE: u64 = 1 << 44;
pub const MAP_TRYFIXED: u64 = 1 << 45;
pub const MAP_PREFAULT_READ: u64 = 1 << 46;
pub const MAP_INHERIT: u64 = 1 << 47;

/// Every lower-half flag this kernel knows (MAP_SHARED_VALIDATE refuses
/// others with EOPNOTSUPP; plain MAP_SHARED/MAP_PRIVATE ignore them, as
/// Linux must for old binaries).
const KNOWN_LOW: u64 = MAP_TYPE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_32BIT
    | MAP_GROWSDOWN
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB
    | MAP_FIXED_NOREPLACE
    | MAP_UNINITIALIZED
    | (MAP_HUGE_MASK << MAP_HUGE_SHIFT);
const KNOWN_HIGH: u64 = MAP_ALIGNMENT_MASK
    | MAP_GUARD
    | MAP_EXCL
    | MAP_NOCORE
    | MAP_NOSYNC
    | MAP_HASSEMAPHORE
    | MAP_TRYFIXED
    | MAP_PREFAULT_READ
    | MAP_INHERIT;

bitflags! {
    /// PROT_* (PROT_NONE is the empty set).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Prot: u32 {
        const READ = 0x1;
        const WRITE = 0x2;
        const EXEC = 0x4;
    }
}

impl Prot {
    /// `prot` from a syscall: undefined bits are EINVAL.
    pub fn from_user(prot: u64) -> Result<Prot, Errno> {
        u32::try_from(prot)
            .ok()
            .and_then(Prot::from_bits)
            .ok_or(Errno::EINVAL)
    }
}

/// Whether stores reach other mappings of the same memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    Private,
    Shared,
}

/// What to do when a fixed mapping lands on existing ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnConflict {
    /// MAP_FIXED: unmap what was there.
    Replace,
    /// MAP_FIXED_NOREPLACE (Linux).
    FailEexist,
    /// MAP_FIXED | MAP_EXCL (FreeBSD).
    FailEinval,
}

impl OnConflict {
    /// The error to fail with when the range is in use, if any.
    pub fn refusal(self) -> Option<Errno> {
        match self {
            OnConflict::Replace => None,
            OnConflict::FailEexist => Some(Errno::EEXIST),
            OnConflict::FailEinval => Some(Errno::EINVAL),
        }
    }
}

/// Where a mapping goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere; `hint` (0 = none) is used if that range is free.
    Anywhere { hint: u64 },
    /// Exactly at `addr`.
    Fixed { addr: u64, on_conflict: OnConflict },
    /// MAP_TRYFIXED (NetBSD): at `addr` if free, else anywhere; never replaces.
    TryFixed { addr: u64 },
}

/// What the new mapping maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Anonymous,
    /// A file: the kernel still has to check the descriptor.
    File {
        fd: i32,
        offset: u64,
    },
    /// MAP_GUARD: a reservation nothing may touch.
    Guard,
    /// MAP_STACK / MAP_GROWSDOWN: reserved, mapped from the top down as it grows.
    Stack,
}

/// A checked mmap request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmapRequest {
    pub placement: Placement,
    /// Page-rounded (2 MiB-rounded for MAP_HUGETLB).
    pub len: u64,
    pub align: u64,
    /// Where in the alignment the start goes: the object offset modulo
    /// 2 MiB for a file mapping placed for 2 MiB entries, so that its
    /// aligned 2 MiB ranges map aligned runs of the object; else 0.
    pub phase: u64,
    pub below_2g: bool,
    pub prot: Prot,
    pub sharing: Sharing,
    pub kind: Kind,
    /// Attributes recorded on the VMA (LOCKED, NORESERVE, HUGE, ...).
    pub vma_flags: VmaFlags,
    /// Fault everything in before returning (MAP_POPULATE, MAP_LOCKED).
    pub populate: bool,
    /// Map the object's resident pages now (MAP_PREFAULT_READ).
    pub prefault_read: bool,
}

/// Whose rules a process follows where Linux and the BSD seeds differ
/// (DESIGN §2): Linux's unless its ELF is branded FreeBSD (EI_OSABI 9) or
/// it called personality(PER_BSD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rules {
    #[default]
    Linux,
    Bsd,
}

/// Check mmap's arguments (DESIGN §2 and the spec pages' ERRORS) under
/// Linux's rules, what an unbranded program gets.
pub fn validate_mmap(
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd: i32,
    offset: u64,
) -> Result<MmapRequest, Errno> {
    validate_mmap_under(Rules::Linux, addr, len, prot, flags, fd, offset)
}

/// `validate_mmap` under `rules`: BSD rules refuse MAP_ANON with a
/// descriptor or an offset (FreeBSD: EINVAL), which Linux ignores (LTP
/// passes fd 0), and make MAP_FIXED outside the user space EINVAL, not
/// Linux's ENOMEM.
pub fn validate_mmap_under(
    rules: Rules,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd: i32,
    offset: u64,
) -> Result<MmapRequest, Errno> {
    let bsd = rules == Rules::Bsd;
    let einval = Err(Errno::EINVAL);
    let prot = Prot::from_user(prot)?;
    if flags & !(KNOWN_LOW | KNOWN_HIGH) & !0xffff_ffff != 0 {
        return einval; // an undefined BSD flag
    }
    let typ = flags & MAP_TYPE;
    if typ == MAP_SHARED_VALIDATE && flags & !(KNOWN_LOW | KNOWN_HIGH) != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let has = |f: u64| flags & f != 0;
    let guard = has(MAP_GUARD);
    let stack = has(MAP_STACK) || has(MAP_GROWSDOWN);
    let sharing = match typ {
        MAP_SHARED | MAP_SHARED_VALIDATE => Sharing::Shared,
        MAP_PRIVATE => Sharing::Private,
        0 if guard || has(MAP_STACK) => Sharing::Private,
        _ => return einval,
    };
    if len == 0 {
        return einval;
    }
    let huge_tlb = has(MAP_HUGETLB);
    let page = if huge_tlb { HUGE_PAGE } else { PAGE };
    let len = match len.checked_next_multiple_of(page) {
        Some(len) if len <= USER_END => len,
        _ => return Err(Errno::ENOMEM),
    };

    // What is mapped.
    let anonymous = has(MAP_ANONYMOUS) || guard || has(MAP_STACK);
    let kind = if guard {
        // FreeBSD: a guard is nothing but a reservation.
        let other_type =
            typ != 0 || has(MAP_ANONYMOUS | MAP_PREFAULT_READ | MAP_STACK | MAP_GROWSDOWN);
        if other_type || fd != -1 || offset != 0 || !prot.is_empty() {
            return einval;
        }
        Kind::Guard
    } else if stack {
        // FreeBSD's MAP_STACK: private anonymous read-write memory.
        let rw = Prot::READ | Prot::WRITE;
        if !anonymous && has(MAP_GROWSDOWN) {
            return einval; // a growing file mapping makes no sense
        }
        if sharing == Sharing::Shared || fd != -1 || offset != 0 || !prot.contains(rw) {
            return einval;
        }
        Kind::Stack
    } else if anonymous {
        // Linux ignores fd and offset here but still wants the offset
        // page-aligned (its offset_in_page check comes first).
        let refused = if bsd {
            fd != -1 || offset != 0
        } else {
            !offset.is_multiple_of(PAGE)
        };
        if refused {
            return einval;
        }
        Kind::Anonymous
    } else {
        if !offset.is_multiple_of(PAGE) || (offset as i64) < 0 {
            return einval;
        }
        if offset
            .checked_add(len)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(Errno::EOVERFLOW);
        }
        if huge_tlb {
            return einval; // huge pages are for anonymous memory only
        }
        Kind::File { fd, offset }
    };

    // Alignment.
    let mut align = PAGE;
    let mut vma_flags = VmaFlags::empty();
    match (flags & MAP_ALIGNMENT_MASK) >> MAP_ALIGNMENT_SHIFT {
        0 => {}
        1 => {
            // MAP_ALIGNED_SUPER: only worth it when a whole large page fits.
            if len >= HUGE_PAGE {
                align = HUGE_PAGE;
            }
            vma_flags |= VmaFlags::HUGE;
        }
        n @ 12..=47 => align = 1 << n,
        _ => return einval,
    }
    if huge_tlb {
        match (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK {
            0 | 21 => {}
            _ => return einval, // only 2 MiB pages exist here
        }
        align = align.max(HUGE_PAGE);
        vma_flags |= VmaFlags::HUGE;
    }

    // Placement.
    let fixed = has(MAP_FIXED) || has(MAP_FIXED_NOREPLACE);
    // Anonymous memory of 2 MiB or more goes where a 2 MiB page can fill
    // it from its start, as Linux's thp_get_unmapped_area places it; a
    // hint is followed as given (it is not rounded to this alignment).
    // A file (a ramfs file or memfd: Linux's shmem_get_unmapped_area) goes
    // where its offset's 2 MiB runs fall on aligned 2 MiB, and so does
    // MAP_ALIGNED_SUPER of a file (FreeBSD's pmap_align_superpage): its
    // object's blocks can then be mapped whole.
    let super_hint = (flags & MAP_ALIGNMENT_MASK) >> MAP_ALIGNMENT_SHIFT == 1;
    let mut phase = 0;
    match kind {
        Kind::Anonymous if !fixed && addr == 0 && len >= HUGE_PAGE => {
            align = align.max(HUGE_PAGE);
        }
        // Not under MAP_ALIGNED(n), which asks for the address's alignment.
        Kind::File { offset, .. }
            if !fixed && len >= HUGE_PAGE && (super_hint || align == PAGE) =>
        {
            if addr == 0 {
                align = HUGE_PAGE;
            }
            if align == HUGE_PAGE {
                phase = offset % HUGE_PAGE;
            }
        }
        _ => {}
    }
    if has(MAP_EXCL) && !has(MAP_FIXED) {
        return einval;
    }
    let below_2g = has(MAP_32BIT);
    // MAP_ALIGNED_SUPER asks for superpages "where the mapping allows": at
    // a fixed address it is a hint (2 MiB pages wherever a whole aligned
    // 2 MiB lies inside), not a demand; MAP_ALIGNED(n) and MAP_HUGETLB are.
    let fixed_align = if super_hint && !huge_tlb { PAGE } else { align };
    let placement = if fixed {
        if !addr.is_multiple_of(fixed_align) {
            return einval;
        }
        let end = addr.checked_add(len);
        if below_2g && end.is_none_or(|end| end > 1 << 31) {
            return einval;
        }
        if addr < USER_START || end.is_none_or(|end| end > USER_END) {
            return Err(if bsd { Errno::EINVAL } else { Errno::ENOMEM });
        }
        let on_conflict = if has(MAP_FIXED_NOREPLACE) {
            OnConflict::FailEexist
        } else if has(MAP_EXCL) {
            OnConflict::FailEinval
        } else {
            OnConflict::Replace
        };
        Placement::Fixed { addr, on_conflict }
    } else {
        // A hint is rounded down to the alignment, as Linux rounds it to a page.
        let hint = addr
            .checked_sub(phase)
            .map_or(0, |a| a / align * align + phase);
        if has(MAP_TRYFIXED) {
            Placement::TryFixed { addr: hint }
        } else {
            Placement::Anywhere { hint }
        }
    };

    for (flag, recorded) in [
        (MAP_LOCKED, VmaFlags::LOCKED),
        (MAP_NORESERVE, VmaFlags::NORESERVE),
        (MAP_NOCORE, VmaFlags::NOCORE),
        (MAP_NOSYNC, VmaFlags::NOSYNC),
        (MAP_HASSEMAPHORE, VmaFlags::HASSEMAPHORE),
        (MAP_UNINITIALIZED, VmaFlags::UNINITIALIZED),
        (MAP_INHERIT, VmaFlags::INHERIT_FLAG),
    ] {
        if has(flag) {
            vma_flags |= recorded;
        }
    }
    if kind == Kind::Stack {
        vma_flags |= VmaFlags::GROWSDOWN;
    }
    Ok(MmapRequest {
        placement,
        len,
        align,
        phase,
        below_2g,
        prot,
        sharing,
        kind,
        vma_flags,
        populate: has(MAP_POPULATE) || has(MAP_LOCKED),
        prefault_read: has(MAP_PREFAULT_READ),
    })
}

/// A checked [start, end) range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

impl Span {
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn pages(&self) -> u64 {
        (self.end - self.start) / PAGE
    }
}

/// `addr` page-aligned and `len` rounded up to pages; `zero_len` is what an
/// empty range gets, `too_far` what a range past the user half gets.
fn span(addr: u64, len: u64, zero_len: Result<(), Errno>, too_far: Errno) -> Result<Span, Errno> {
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let end = len
        .checked_next_multiple_of(PAGE)
        .and_then(|len| addr.checked_add(len))
        .ok_or(too_far)?;
    if end == addr {
        // Linux returns before looking at where an empty range lies.
        zero_len?;
        return Ok(Span { start: addr, end });
    }
    if end > USER_END {
        return Err(too_far);
    }
    Ok(Span { start: addr, end })
}

/// munmap: unaligned, empty or out-of-range: EINVAL (Linux).
pub fn validate_munmap(addr: u64, len: u64) -> Result<Span, Errno> {
    span(addr, len, Err(Errno::EINVAL), Errno::EINVAL)
}

/// mprotect: unaligned address or bad prot: EINVAL; empty: success;
/// beyond the user half: ENOMEM (nothing is mapped there).
pub fn validate_mprotect(addr: u64, len: u64, prot: u64) -> Result<(Span, Prot), Errno> {
    let prot = Prot::from_user(prot)?;
    Ok((span(addr, len, Ok(()), Errno::ENOMEM)?, prot))
}

/// mincore: as mprotect (the vector is checked by the kernel: EFAULT),
/// except that even an empty range must start in the user half (Linux's
/// `access_ok`): ENOMEM.
pub fn validate_mincore(addr: u64, len: u64) -> Result<Span, Errno> {
    let span = span(addr, len, Ok(()), Errno::ENOMEM)?;
    if span.start > USER_END {
        return Err(Errno::ENOMEM);
    }
    Ok(span)
}

pub const MS_ASYNC: u64 = 1;
pub const MS_INVALIDATE: u64 = 2;
pub const MS_SYNC: u64 = 4;

/// msync: unknown flags, MS_ASYNC with MS_SYNC, unaligned address: EINVAL.
pub fn validate_msync(addr: u64, len: u64, flags: u64) -> Result<Span, Errno> {
    if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == MS_ASYNC | MS_SYNC
    {
        return Err(Errno::EINVAL);
    }
    span(addr, len, Ok(()), Errno::ENOMEM)
}

/// mlock/munlock: the address need not be aligned (the range is widened
/// to whole pages); an overflowing range is EINVAL, an empty one succeeds.
pub fn validate_mlock(addr: u64, len: u64) -> Result<Span, Errno> {
    let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
    let start = addr & !(PAGE - 1);
    let end = end.checked_next_multiple_of(PAGE).ok_or(Errno::EINVAL)?;
    if end > USER_END && start < end {
        return Err(Errno::ENOMEM);
    }
    Ok(Span { start, end })
}

/// madvise's advice values (Linux's numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Madvice {
    Normal,
    Random,
    Sequential,
    WillNeed,
    DontNeed,
    Free,
    Remove,
    DontFork,
    DoFork,
    HugePage,
    NoHugePage,
    DontDump,
    DoDump,
    WipeOnFork,
    KeepOnFork,
    Cold,
    PageOut,
    PopulateRead,
    PopulateWrite,
    DontNeedLocked,
}

impl Madvice {
    pub fn from_user(advice: u64) -> Result<Madvice, Errno> {
        use Madvice::*;
        Ok(match advice {
            0 => Normal,
            1 => Random,
            2 => Sequential,
            3 => WillNeed,
            4 => DontNeed,
            8 => Free,
            9 => Remove,
            10 => DontFork,
            11 => DoFork,
            14 => HugePage,
            15 => NoHugePage,
            16 => DontDump,
            17 => DoDump,
            18 => WipeOnFork,
            19 => KeepOnFork,
            20 => Cold,
            21 => PageOut,
            22 => PopulateRead,
            23 => PopulateWrite,
            24 => DontNeedLocked,
            // 12/13 (KSM's MERGEABLE) and 25 (COLLAPSE) are not built in: EINVAL, as Linux without them.
            _ => return Err(Errno::EINVAL),
        })
    }
}

/// madvise: unaligned address or unknown advice: EINVAL; empty: success;
/// a range that wraps: EINVAL; beyond the user half: ENOMEM (nothing is
/// mapped there, as over any hole). The model test `vm/tests/mmap_model.rs`
/// found that a range past the user half used to get EINVAL.
pub fn validate_madvise(addr: u64, len: u64, advice: u64) -> Result<(Span, Madvice), Errno> {
    let advice = Madvice::from_user(advice)?;
    let wraps = len
        .checked_next_multiple_of(PAGE)
        .and_then(|len| addr.checked_add(len))
        .is_none();
    if wraps {
        return Err(Errno::EINVAL);
    }
    Ok((span(addr, len, Ok(()), Errno::ENOMEM)?, advice))
}

/// minherit (FreeBSD): the range is widened to pages; unknown values: EINVAL.
pub fn validate_minherit(addr: u64, len: u64, inherit: u64) -> Result<(Span, Inherit), Errno> {
    let inherit = match inherit {
        0 => Inherit::Share,
        1 => Inherit::Copy,
        2 => Inherit::None,
        3 => Inherit::Zero,
        _ => return Err(Errno::EINVAL),
    };
    let span = validate_mlock(addr, len).map_err(|_| Errno::EINVAL)?;
    Ok((span, inherit))
}

#[cfg(test)]
mod tests;
