//! A VMA (virtual memory area): one range of an address space whose pages
//! all behave alike — same protection, same sharing, same backing.
//!
//! Anonymous private memory keeps its pages only in the page tables: the
//! PTE (with the frame's reference count) is the whole record, as in Linux.
//! Memory that must outlive one address space's page tables — shared
//! anonymous memory, and files in the ramfs issue — lives in a `VmObject`,
//! which holds the pages by offset (FreeBSD's vm_object).

use crate::mmap::{Prot, Sharing};
use crate::vm_map::Segment;
use crate::vm_object::ObjectRef;
use bitflags::bitflags;

pub const PAGE: u64 = 4096;
pub const HUGE_PAGE: u64 = 2 << 20;

/// What backs a VMA's pages.
#[derive(Clone, Debug)]
pub enum Backing {
    /// Private anonymous memory: zero-filled on first touch.
    Anonymous,
    /// Pages of an object, starting at byte `offset` of it.
    Object { object: ObjectRef, offset: u64 },
    /// MAP_GUARD: reserved address space; any access is SIGSEGV.
    Guard,
    /// The reserved space below a growing stack (MAP_STACK, MAP_GROWSDOWN):
    /// a fault anywhere here grows the stack VMA just above down to the
    /// faulting page. The guard lies below the gap (`VmaFlags::STACK_GUARD`).
    StackGap,
}

/// The guard below a growing stack's reservation: a `Backing::Guard` VMA
/// flagged `STACK_GUARD`, this many pages long, that the kernel places
/// nothing else in (MAP_FIXED may replace it, as Linux's stack_guard_gap
/// allows).
pub const STACK_GUARD_PAGES: u64 = 1;

bitflags! {
    /// Attributes recorded on a VMA, most straight from mmap flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct VmaFlags: u32 {
        /// MAP_LOCKED / MAP_WIRED / mlock: resident, never reclaimed.
        const LOCKED = 1 << 0;
        /// MAP_NORESERVE: no commit charge.
        const NORESERVE = 1 << 1;
        const NOCORE = 1 << 2;
        const NOSYNC = 1 << 3;
        const HASSEMAPHORE = 1 << 4;
        /// Use 2 MiB pages where a whole aligned 2 MiB lies inside the VMA.
        const HUGE = 1 << 5;
        /// A stack: grows down into the StackGap VMA below it.
        const GROWSDOWN = 1 << 6;
        /// The brk heap ([heap] in /proc/self/maps).
        const HEAP = 1 << 7;
        /// The initial process stack ([stack]).
        const MAIN_STACK = 1 << 8;
        /// MAP_UNINITIALIZED was asked (a hint: pages are zeroed anyway).
        const UNINITIALIZED = 1 << 9;
        /// MAP_INHERIT was given (NetBSD reserves it; recorded).
        const INHERIT_FLAG = 1 << 10;
        /// The guard page(s) below a growing stack's reservation
        /// (`STACK_GUARD_PAGES`): goes away with the stack it guards.
        const STACK_GUARD = 1 << 11;
        /// MADV_NOHUGEPAGE: never a 2 MiB page here, whatever the policy.
        const NOHUGE = 1 << 12;
    }
}

/// What fork does with a VMA (FreeBSD minherit; Linux MADV_DONTFORK & co).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inherit {
    /// The child shares the pages (INHERIT_SHARE).
    Share,
    /// The child gets a copy-on-write copy (INHERIT_COPY, the default for private).
    Copy,
    /// The child does not get this range (INHERIT_NONE, MADV_DONTFORK).
    None,
    /// The child gets fresh zero pages (INHERIT_ZERO, MADV_WIPEONFORK).
    Zero,
}

/// madvise's access-pattern hints, recorded (and shown in maps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    Normal,
    Random,
    Sequential,
}

#[derive(Clone, Debug)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    /// The most `mprotect` may grant (a MAP_SHARED file opened read-only has no WRITE).
    pub max_prot: Prot,
    pub sharing: Sharing,
    pub backing: Backing,
    pub flags: VmaFlags,
    pub inherit: Inherit,
    pub advice: Advice,
}

impl Vma {
    /// A private anonymous VMA with default attributes.
    pub fn anonymous(start: u64, end: u64, prot: Prot) -> Vma {
        Vma {
            start,
            end,
            prot,
            max_prot: Prot::all(),
            sharing: Sharing::Private,
            backing: Backing::Anonymous,
            flags: VmaFlags::empty(),
            inherit: Inherit::Copy,
            advice: Advice::Normal,
        }
    }

    /// The VMA an anonymous, guard or stack mmap request asks for (its range
    /// is set when placed); None for a file, whose VMA needs the file.
    pub fn for_request(req: &crate::mmap::MmapRequest) -> Option<Vma> {
        use crate::mmap::Kind;
        let mut vma = Vma::anonymous(0, 0, req.prot);
        vma.flags = req.vma_flags;
        match req.kind {
            Kind::Anonymous | Kind::Stack if req.sharing == Sharing::Shared => {
                // Shared anonymous memory lives in an object, so that every
                // mapping of it (after fork too) sees the same frames.
                vma.sharing = Sharing::Shared;
                vma.inherit = Inherit::Share;
                vma.backing = Backing::Object {
                    object: ObjectRef::new_anonymous(),
                    offset: 0,
                };
            }
            Kind::Anonymous | Kind::Stack => {}
            Kind::Guard => {
                vma.backing = Backing::Guard;
                vma.max_prot = Prot::empty();
            }
            Kind::File { .. } => return None,
        }
        Some(vma)
    }

    /// The VMA a file mmap request asks for: pages of the file's `object`
    /// from the request's offset, private (copy-on-write) or shared.
    /// `max_prot` is what the descriptor's access mode allows (a shared
    /// mapping of a file opened read-only can never become writable).
    pub fn for_file(req: &crate::mmap::MmapRequest, object: ObjectRef, max_prot: Prot) -> Vma {
        let crate::mmap::Kind::File { offset, .. } = req.kind else {
            panic!("Vma::for_file: not a file request");
        };
        let mut vma = Vma::anonymous(0, 0, req.prot);
        vma.flags = req.vma_flags;
        vma.max_prot = max_prot;
        vma.sharing = req.sharing;
        if req.sharing == Sharing::Shared {
            vma.inherit = Inherit::Share;
        }
        vma.backing = Backing::Object { object, offset };
        vma
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn contains(&self, addr: u64) -> bool {
        (self.start..self.end).contains(&addr)
    }

    /// Whether this VMA counts against the commit limit: private memory
    /// that may be written, hence may need a frame of its own for every page.
    pub fn is_charged(&self) -> bool {
        self.is_charged_with(self.prot)
    }

    /// Whether the VMA would be charged with protection `prot` (mprotect
    /// asks before it changes anything).
    pub fn is_charged_with(&self, prot: Prot) -> bool {
        self.is_charged_as(self.sharing, prot)
    }

    /// Whether the VMA would be charged with `sharing` and `prot` (fork
    /// asks for the child's copy before making it).
    pub fn is_charged_as(&self, sharing: Sharing, prot: Prot) -> bool {
        sharing == Sharing::Private
            && prot.contains(Prot::WRITE)
            && !self.flags.contains(VmaFlags::NORESERVE)
            && !matches!(self.backing, Backing::Guard | Backing::StackGap)
    }

    /// Pages charged to the commit limit for this VMA.
    pub fn charge(&self) -> u64 {
        if self.is_charged() {
            self.len() / PAGE
        } else {
            0
        }
    }

    /// Offset into the backing object of `addr`'s page, for object-backed VMAs.
    pub fn object_offset(&self, addr: u64) -> Option<(ObjectRef, u64)> {
        match &self.backing {
            Backing::Object { object, offset } => {
                Some((object.clone(), offset + (addr & !(PAGE - 1)) - self.start))
            }
            _ => None,
        }
    }

    /// pageos's reservation for a growing stack: the gap it grows into and
    /// the guard below. Linux maps neither, so its sizes (VmSize, total_vm)
    /// leave them out.
    pub fn is_stack_reservation(&self) -> bool {
        matches!(self.backing, Backing::StackGap) || self.flags.contains(VmaFlags::STACK_GUARD)
    }

    /// The name /proc/self/maps shows in its last column.
    pub fn label(&self) -> &'static str {
        if self.flags.contains(VmaFlags::HEAP) {
            "[heap]"
        } else if self.flags.contains(VmaFlags::MAIN_STACK) {
            "[stack]"
        } else {
            match self.backing {
                Backing::Guard if self.flags.contains(VmaFlags::STACK_GUARD) => "[stack guard]",
                Backing::Guard => "[guard]",
                Backing::StackGap => "[stack gap]",
                _ => "",
            }
        }
    }
}

impl Segment for Vma {
    fn start(&self) -> u64 {
        self.start
    }

    fn end(&self) -> u64 {
        self.end
    }

    fn split_off(&mut self, at: u64) -> Self {
        let mut upper = self.clone();
        upper.start = at;
        if let Backing::Object { offset, .. } = &mut upper.backing {
            *offset += at - self.start;
        }
        self.end = at;
        upper
    }

    fn can_merge(&self, next: &Self) -> bool {
        let same_backing = match (&self.backing, &next.backing) {
            (Backing::Anonymous, Backing::Anonymous)
            | (Backing::Guard, Backing::Guard)
            | (Backing::StackGap, Backing::StackGap) => true,
            (
                Backing::Object {
                    object: a,
                    offset: oa,
                },
                Backing::Object {
                    object: b,
                    offset: ob,
                },
            ) => a.same(b) && oa + self.len() == *ob,
            _ => false,
        };
        self.end == next.start
            && same_backing
            && self.prot == next.prot
            && self.max_prot == next.max_prot
            && self.sharing == next.sharing
            && self.flags == next.flags
            && self.inherit == next.inherit
            && self.advice == next.advice
    }

    fn merge(&mut self, next: Self) {
        self.end = next.end;
    }
}
