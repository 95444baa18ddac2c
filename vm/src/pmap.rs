//! The interface between machine-independent decisions and page tables.
//!
//! The VM layer decides which frame goes where with which rights; a `Pmap`
//! carries it out on real page tables (the kernel's `pmap`) or on a map in
//! memory (`fake::FakePmap`, for host tests). `PhysMem` is the frame
//! allocator and the commit accounting as the VM layer sees them.
//!
//! Ownership: a present PTE holds one reference to its frame. `enter` takes
//! the caller's reference; `unmap_range` hands each back to the callback.
//!
//! The reverse map (`rmap`): every implementation records each PTE it
//! makes present and forgets each it clears, in the `Rmap` of its machine,
//! under its space's `id`. Whatever moves, copies or replaces PTEs (fork's
//! `copy_to`, `replace`, mremap's `move_range`) keeps it right
//! there, so callers never touch it.
//!
//! Swap PTEs: a swapped-out page's PTE is not present and holds its swap
//! slot (`query_swap`). It holds one count of the slot, as a present PTE
//! holds a frame reference; reclaim makes it (`swap_out`), a fault turns
//! it back (`swap_in`), fork copies it (`set_swap`, the VM layer takes
//! the count), munmap and exit clear it (`clear_swap`), mremap moves it
//! with the present ones (`move_range`). The other operations look at
//! present PTEs only.

use crate::frame::Pfn;
use crate::rmap::{Rmap, SpaceId};
use crate::swap_cache::{SwapInError, SwappedIn};
use crate::swap_map::Slot;

/// The rights a PTE grants user mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PteProt {
    /// Present for user mode at all (false: PROT_NONE, the frame is kept).
    pub user: bool,
    pub write: bool,
    pub exec: bool,
}

impl PteProt {
    pub const NONE: PteProt = PteProt {
        user: false,
        write: false,
        exec: false,
    };
    pub const READ: PteProt = PteProt {
        user: true,
        write: false,
        exec: false,
    };
}

/// A present PTE as `query` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub pfn: Pfn,
    pub prot: PteProt,
    /// A 2 MiB leaf: `pfn` heads a 512-frame block.
    pub huge: bool,
}

/// The frames of a 2 MiB block.
pub const BLOCK_FRAMES: u64 = 512;

/// No frame for a page table: the operation had no effect.
#[derive(Debug, PartialEq, Eq)]
pub struct NoMemory;

pub trait Pmap {
    /// This space's name in the reverse map.
    fn id(&self) -> SpaceId;
    /// Run `f` on the reverse map this space records its PTEs in (shared
    /// by every space of the machine).
    fn with_rmap(&self, f: &mut dyn FnMut(&Rmap<'_>));
    /// Map the 4 KiB page at `va` to `pfn`; the PTE takes the caller's reference.
    /// `va` must not be mapped.
    fn enter(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory>;
    /// Map the 2 MiB page at `va` (2 MiB aligned, nothing mapped inside) to
    /// the block headed by `pfn`.
    fn enter_huge(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory>;
    /// Turn the 2 MiB entry at `va` (2 MiB aligned) into 512 4 KiB entries
    /// with its rights, mapping the same frames in place: nothing is
    /// copied. The caller has split the block first (`PhysMem::split_block`),
    /// so the 512 PTEs each hold a reference of the one the 2 MiB entry
    /// held. Err, with nothing changed, when no frame for the level-1
    /// table (or no reverse-map entry) could be had. Flushes the TLB.
    fn split_huge(&mut self, va: u64) -> Result<(), NoMemory>;
    /// Undo `split_huge`: the 512 entries at `va`, still mapping the frames
    /// of one block in order with the rights `split_huge` gave them, become
    /// one 2 MiB entry again. Never allocates (it frees the level-1 table).
    /// Flushes the TLB.
    fn join_huge(&mut self, va: u64);
    /// Whether nothing at all is mapped in the 2 MiB at `va` (2 MiB aligned)
    /// and no level-1 table is there: a 2 MiB page may go in. One look at
    /// one entry (a table that is present but empty counts as used).
    fn huge_slot_free(&self, va: u64) -> bool;
    /// The PTE covering `va`, if present.
    fn query(&self, va: u64) -> Option<Mapping>;
    /// Unmap every present page in [start, end) and hand each reference to
    /// `release` (with the page's address); flush the TLB; free page tables
    /// left empty. A huge PTE is reported once, at its 2 MiB-aligned address,
    /// and must lie wholly inside the range (the VM layer splits first).
    fn unmap_range(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping));
    /// Set the rights of every present page in [start, end) to what
    /// `rights` says for it; flush the TLB.
    fn protect_range(
        &mut self,
        start: u64,
        end: u64,
        rights: &mut dyn FnMut(u64, Mapping) -> PteProt,
    );
    /// Replace the frame of a present 4 KiB page (a copy-on-write break);
    /// returns the old mapping's reference. Flushes the TLB entry. Err
    /// (nothing changed, the caller keeps `pfn`'s reference) when the
    /// reverse map has no room for the new frame.
    fn replace(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<Mapping, NoMemory>;
    /// Tell `visit` every present page of [start, end) (a 2 MiB page once,
    /// at its aligned address), changing nothing: the debug audit of frame
    /// reference counts reads the page tables this way.
    fn visit(&mut self, start: u64, end: u64, visit: &mut dyn FnMut(u64, Mapping));
    /// Map `frames[i]` at `va + i * 4096` with `prot`, for every Some whose
    /// page is not mapped yet (fault-around, MAP_PREFAULT_READ); the PTEs
    /// take the caller's references. A frame that is not entered (its page
    /// is present, or no page table or reverse-map entry could be had) goes
    /// to `refuse`, which gives the reference back. Returns how many were
    /// entered. No flush: only absent pages change.
    fn enter_run(
        &mut self,
        va: u64,
        frames: &[Option<Pfn>],
        prot: PteProt,
        refuse: &mut dyn FnMut(Pfn),
    ) -> u32;
    /// mremap's move: every present entry of [from, from + len) goes to
    /// the same offset in [to, to + len), with its frame and rights as
    /// they are; no frame is copied and no reference changes hands (the
    /// reverse map follows). A 2 MiB entry moves as one: the caller makes
    /// sure each lies wholly inside the range and that `to - from` is a
    /// multiple of 2 MiB when there is one. [to, to + len) has nothing
    /// mapped and does not overlap [from, from + len). Err, with nothing
    /// changed, when a page table for the target could not be had.
    /// Flushes the old range's TLB entries.
    fn move_range(&mut self, from: u64, to: u64, len: u64) -> Result<(), NoMemory>;
    /// fork's copy of [start, end): take write access away from every
    /// present page here and map the same frame, with the same (now
    /// read-only) rights, at the same address in `child`, whose range is
    /// empty. `share` is told each mapping: the child's PTE needs a frame
    /// reference of its own. Err when the child has no frame for a page
    /// table; what was copied by then stays in the child for the caller to
    /// tear down. Flushes this space's TLB. (One walk of both spaces: the
    /// page-at-a-time `enter` would walk the child's tables 4096 times for
    /// 16 MiB.)
    fn copy_to(
        &mut self,
        child: &mut Self,
        start: u64,
        end: u64,
        share: &mut dyn FnMut(u64, Mapping),
    ) -> Result<(), NoMemory>
    where
        Self: Sized;
    /// The slot a swapped-out page's PTE at `va` holds (None: present or
    /// absent).
    fn query_swap(&self, va: u64) -> Option<Slot>;
    /// Page-out: if the 4 KiB PTE of `va` maps `pfn`, make it not present
    /// holding `slot`, forget it in the reverse map, flush its TLB entry
    /// and return the mapping it was (its frame reference is the
    /// caller's). None, and nothing changed, otherwise.
    fn swap_out(&mut self, va: u64, pfn: Pfn, slot: Slot) -> Option<Mapping>;
    /// Swap-in: the PTE of `va`, which holds a slot, maps `pfn` with
    /// `prot` (taking the caller's reference). Err, nothing changed, when
    /// the reverse map has no room.
    fn swap_in(&mut self, va: u64, pfn: Pfn, prot: PteProt) -> Result<(), NoMemory>;
    /// Make the absent PTE of `va` hold `slot` (fork's copy of a swap PTE).
    /// Err when no page table could be had.
    fn set_swap(&mut self, va: u64, slot: Slot) -> Result<(), NoMemory>;
    /// Clear every swap PTE in [start, end), telling `release` each slot
    /// (whose count the PTE held); free page tables left empty.
    fn clear_swap(&mut self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot));
    /// Tell `visit` every swap PTE in [start, end), changing nothing.
    fn visit_swap(&mut self, start: u64, end: u64, visit: &mut dyn FnMut(u64, Slot));
    /// Read and clear the accessed bit of the present 4 KiB PTE of `va`
    /// (false when there is none). No TLB flush: a stale entry only means
    /// the bit is set again a little late, as on Linux.
    fn take_accessed(&mut self, va: u64) -> bool;
    /// MADV_FREE: every present 4 KiB PTE of [start, end) that `pick`
    /// chooses becomes read-only and *lazily freeable*, its accessed bit
    /// cleared; one flush. A write to it faults (the copy-on-write path
    /// makes it writable again, `protect_range`), and whatever changes a
    /// PTE's rights or frame drops the mark, so a marked PTE is one nobody
    /// wrote since: reclaim may drop its page (`discard_lazy_free`).
    /// Returns how many were marked. (Not the dirty bit, as Linux: the
    /// kernel's copies into user memory go through the physical map, which
    /// never sets it.)
    fn mark_lazy_free(
        &mut self,
        start: u64,
        end: u64,
        pick: &mut dyn FnMut(u64, Mapping) -> bool,
    ) -> u64;
    /// Reclaim of a lazily freeable page: if the 4 KiB PTE of `va` maps
    /// `pfn` and still carries the mark, clear it (the page reads back as
    /// zeros), forget it in the reverse map, flush its TLB entry and return
    /// the mapping it was (its frame reference is the caller's). None, and
    /// nothing changed, otherwise.
    fn discard_lazy_free(&mut self, va: u64, pfn: Pfn) -> Option<Mapping>;
}

/// A PTE as a fault under the address-space read lock sees it (`SharedPmap::look`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pte {
    Absent,
    Present(Mapping),
    /// Not present, holding a swap slot.
    Swapped,
}

/// The page-table operations of a fault under the address-space *read*
/// lock (DESIGN §6; `AddressSpace::fault_shared`). Several CPUs may run
/// them on one space at once: a look reads the entries as they are (the
/// kernel's takes no lock), a change takes the
/// page-table lock (the kernel's: the lock of the entry's 2 MiB slot), and
/// the `enter_*` and `*_if` ones look again under it: another CPU may
/// have resolved the same fault since this one's lookup, and then nothing
/// changes (false) and the caller keeps its frame. Every other change of a space's tables is made under the write
/// lock, through `Pmap`'s `&mut self`, and so never meets these.
pub trait SharedPmap {
    /// The PTE covering `va`.
    fn look(&self, va: u64) -> Pte;
    /// `Pmap::huge_slot_free`, for a caller under the read lock.
    fn huge_slot_is_free(&self, va: u64) -> bool;
    /// Map the 4 KiB page at `va` to `pfn` if its PTE is still absent
    /// (no frame, no swap slot, no 2 MiB page over it): true, and the PTE
    /// took the caller's reference; false, nothing changed.
    fn enter_if_absent(&self, va: u64, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory>;
    /// Map the 2 MiB page at `va` to the block headed by `pfn` if the slot
    /// is still free (`huge_slot_free`); false, nothing changed.
    fn enter_huge_if_free(&self, va: u64, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory>;
    /// Copy-on-write's replace: if the 4 KiB PTE at `va` still is `old`,
    /// point it at `pfn` (the caller's reference) with `prot`, and return
    /// true once no CPU's TLB holds `old` any more (the shootdown: the
    /// old entry gave read access, which goes). `old`'s reference is then
    /// the caller's, to give back. False: the PTE changed meanwhile, and
    /// nothing did here.
    fn replace_if(&self, va: u64, old: Mapping, pfn: Pfn, prot: PteProt) -> Result<bool, NoMemory>;
    /// Copy-on-write of a frame's last reference: if the 4 KiB PTE at `va`
    /// still is `old`, give it `prot` (write added, so no shootdown).
    /// False: the PTE changed meanwhile, and nothing did here.
    fn protect_if(&self, va: u64, old: Mapping, prot: PteProt) -> bool;
    /// `Pmap::unmap_range` for munmap's second half, under the read lock
    /// (vm/src/space/unmap.rs): [start, end) is in no VMA any more, so no
    /// fault adds to it, but faults elsewhere in the space may walk and
    /// grow the same tables meanwhile, and take the page-table lock
    /// between the pieces this clears under it.
    fn unmap_range_shared(&self, start: u64, end: u64, release: &mut dyn FnMut(u64, Mapping));
    /// `Pmap::clear_swap`, likewise.
    fn clear_swap_shared(&self, start: u64, end: u64, release: &mut dyn FnMut(u64, Slot));
}

pub trait PhysMem {
    /// A zeroed frame with one reference, or None when memory is exhausted.
    fn alloc_zeroed(&mut self) -> Option<Pfn>;
    /// A zeroed, 2 MiB-aligned block of 512 frames (one reference on its head).
    fn alloc_huge_zeroed(&mut self) -> Option<Pfn>;
    /// A new frame with a copy of `src`'s contents.
    fn copy(&mut self, src: Pfn) -> Option<Pfn>;
    /// Copy the 4 KiB at `src` (which may lie inside a huge block) into `dst`.
    fn copy_into(&mut self, src: Pfn, dst: Pfn);
    /// Copy bytes of frame `pfn` from `offset` into `buf` (file reads).
    fn read(&self, pfn: Pfn, offset: usize, buf: &mut [u8]);
    /// Copy `data` into frame `pfn` at `offset` (file writes).
    fn write(&mut self, pfn: Pfn, offset: usize, data: &[u8]);
    fn get(&mut self, pfn: Pfn);
    /// `get` for every frame of `pfns` at once (fork takes one per page
    /// it shares).
    fn get_many(&mut self, pfns: &[Pfn]) {
        for &pfn in pfns {
            self.get(pfn);
        }
    }
    fn put(&mut self, pfn: Pfn);
    /// `put` for every frame of `pfns` at once (munmap gives back its
    /// pages in batches: the kernel frees the last references of a batch
    /// under one take of the frame table's lock).
    fn put_many(&mut self, pfns: &[Pfn]) {
        for &pfn in pfns {
            self.put(pfn);
        }
    }
    fn refcount(&self, pfn: Pfn) -> u32;
    /// Whether `head` still heads a whole 2 MiB block: one reference count
    /// on its head for the 512 frames (buddy/split.rs).
    fn is_block(&self, head: Pfn) -> bool;
    /// Give each frame of the 2 MiB block at `head` a reference count of
    /// its own, the block's (nothing if it is split already), so that its
    /// 4 KiB pages can be mapped, unmapped and copied one by one without
    /// moving the data. Never allocates.
    fn split_block(&mut self, head: Pfn);
    /// Undo a `split_block` of the block at `head` that nothing has
    /// followed (its 2 MiB entry could not be split after all): the block
    /// is whole again with the count it had, whoever holds it.
    fn unsplit_block(&mut self, head: Pfn);
    /// Whether the caller's one 2 MiB mapping of the block at `head` holds
    /// all of it: the whole block's count is 1, or, once split, every
    /// frame's is (the block is then made whole again). A copy-on-write
    /// of the 2 MiB page may then reuse it whole.
    fn sole_block_owner(&mut self, head: Pfn) -> bool;
    /// Take the reference a 2 MiB mapping of the block at `head` holds: on
    /// its head while it is whole, on each of its 512 frames once split.
    fn get_block(&mut self, head: Pfn) {
        if self.is_block(head) {
            self.get(head);
        } else {
            (0..BLOCK_FRAMES).for_each(|i| self.get(Pfn(head.0 + i)));
        }
    }
    /// Give back the reference `get_block` took.
    fn put_block(&mut self, head: Pfn) {
        if self.is_block(head) {
            self.put(head);
        } else {
            (0..BLOCK_FRAMES).for_each(|i| self.put(Pfn(head.0 + i)));
        }
    }
    /// The reference a PTE held, given back: its frame's, or for a 2 MiB
    /// entry, its block's.
    fn put_mapping(&mut self, m: &Mapping) {
        if m.huge {
            self.put_block(m.pfn);
        } else {
            self.put(m.pfn);
        }
    }
    /// The one shared, always-zero frame: read faults on untouched private
    /// anonymous memory map it read-only.
    fn zero_frame(&self) -> Pfn;
    /// Charge `pages` to the commit limit; false (and no charge) past it.
    fn charge(&mut self, pages: u64) -> bool;
    fn uncharge(&mut self, pages: u64);
    /// Whether any swap slot is taken (when none is, no PTE holds one and
    /// unmapping need not look for swap PTEs).
    fn swap_used(&self) -> bool;
    /// A frame with `slot`'s page for the PTE that holds it, through the
    /// swap cache (`swap_cache::SwapCache::swap_in`).
    fn swap_in(&mut self, slot: Slot) -> Result<SwappedIn, SwapInError>;
    /// One more PTE holds `slot` (fork); false at the maximum count.
    fn swap_dup(&mut self, slot: Slot) -> bool;
    /// A PTE holding `slot` let go of it (`SwapCache::release`).
    fn swap_release(&mut self, slot: Slot);
    /// `pfn` is about to be written by the one PTE that maps it, or was
    /// unmapped: out of the swap cache, its slot freed, unless a swap PTE
    /// still holds the slot (`SwapCache::free_swap`). Whether it is out.
    fn free_swap(&mut self, pfn: Pfn) -> bool;
}
