//! The reverse map: for each frame, the (address space, virtual address)
//! pairs whose PTEs map it — "who maps this frame?" in O(mappings).
//!
//! It is kept at the one place a user PTE is written or cleared: inside the
//! `Pmap` implementations (the kernel's `pmap`, `fake::FakePmap`), which
//! call `add` before they make a PTE present and `remove` when they clear
//! one. No VM operation (fault, fork, munmap, mremap) has to remember it.
//! FreeBSD keeps its pv entries the same way, in `pmap_enter` and
//! `pmap_remove`. Why a reverse map rather than FreeBSD's shadow objects:
//! docs/src/rmap.md.
//!
//! - A 2 MiB page is recorded once, at its head frame.
//! - The shared zero frame is not recorded (Linux does not rmap its zero
//!   page either): every space maps it, nothing ever unmaps it to reclaim
//!   it, and its list would be the longest of all.
//! - A frame's first two mappings live in its table slot; a third moves
//!   the frame's list to the heap. A private page (the common case), and a
//!   page shared copy-on-write by a parent and one child, cost one 32-byte
//!   slot and no allocation of their own; growing the table is amortised
//!   over all frames.
//! - A frame's first mapping can live in a word of its own instead
//!   (`FirstOwners`, one word per frame of RAM, as Linux keeps an
//!   anonymous page's in its `struct page`), changed with one
//!   compare-and-exchange and no lock: the common case, a fault mapping a
//!   new private page or munmap clearing it, then takes no lock shared by
//!   every CPU. Only a frame's second and later mappings go to the table,
//!   under the caller's lock (the kernel's, pmap/rmap.rs).
//! - Allocation can fail, and `add` then says so instead of panicking: the
//!   `Pmap` refuses the PTE (`NoMemory`), as it does when a page table
//!   cannot be had. `remove` and `moved` never allocate.
//!
//! Memory mapped by another page table cannot be found from here: a
//! private copy-on-write copy of a file page is a different frame, so
//! truncate finds those through the object's list of mapping spaces
//! (`vm_object`, Linux's i_mmap) instead.

use crate::frame::Pfn;
use crate::pmap::NoMemory;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

mod first;
pub use first::{FirstOwners, OwnersOf, new_first_words};

/// An address space's name in the reverse map. 28 bits: the kernel uses
/// the frame number of the space's level-4 table (unique among live
/// spaces, below 2^28 up to 1 TiB of RAM), the host fake a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpaceId(pub u32);

impl SpaceId {
    pub const BITS: u32 = 28;

    /// A fresh id for a host-side space (the fake's counter).
    pub fn fresh() -> SpaceId {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed) & ((1 << Self::BITS) - 1);
        SpaceId(id)
    }
}

/// One mapping of a frame: a space and the page address, in 8 bytes
/// (28 bits of id, 36 of virtual page number: user addresses are below 2^47).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner(u64);

const VPN_BITS: u32 = 36;

impl Owner {
    pub fn new(space: SpaceId, va: u64) -> Owner {
        debug_assert!(space.0 < 1 << SpaceId::BITS, "rmap: space id too wide");
        debug_assert!(va >> 12 < 1 << VPN_BITS, "rmap: address too high");
        Owner((u64::from(space.0) << VPN_BITS) | (va >> 12))
    }

    pub fn space(self) -> SpaceId {
        SpaceId((self.0 >> VPN_BITS) as u32)
    }

    /// The mapped page's address (4 KiB aligned; a 2 MiB page's start).
    pub fn va(self) -> u64 {
        (self.0 & ((1 << VPN_BITS) - 1)) << 12
    }
}

impl core::fmt::Debug for Owner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Owner({}, {:#x})", self.space().0, self.va())
    }
}

/// The mappings of one frame: up to two inline (a private page, and one
/// shared copy-on-write by a parent and its child), more on the heap.
#[derive(Clone, Debug)]
enum Owners {
    One(Owner),
    Two([Owner; 2]),
    Many(Vec<Owner>),
}

const _: () = assert!(
    size_of::<Owners>() == 24,
    "rmap: a slot's owners stay 24 bytes"
);

impl Owners {
    fn as_slice(&self) -> &[Owner] {
        match self {
            Owners::One(o) => core::slice::from_ref(o),
            Owners::Two(two) => two,
            Owners::Many(v) => v,
        }
    }
}

/// An open-addressing hash table (linear probing, backward-shift delete)
/// from frame number to its owners. Not std's HashMap: the kernel has no
/// std, and every growth here must be able to fail.
#[derive(Debug, Default)]
pub struct Rmap<'a> {
    slots: Vec<Option<(u64, Owners)>>,
    /// Frames with at least one owner.
    frames: usize,
    /// Owners over all frames.
    mappings: usize,
    /// The frame never recorded (the shared zero frame).
    skip: Option<Pfn>,
    /// The frames' first mappings, when they have words of their own
    /// (the kernel's live as long as the machine: `Rmap<'static>`).
    first: Option<&'a FirstOwners<'a>>,
}

impl<'a> Rmap<'a> {
    pub const fn new() -> Rmap<'a> {
        Rmap {
            slots: Vec::new(),
            frames: 0,
            mappings: 0,
            skip: None,
            first: None,
        }
    }

    /// Keep each frame's first mapping in `first` from now on (before
    /// anything is recorded).
    pub fn set_first(&mut self, first: &'a FirstOwners<'a>) {
        assert!(self.is_empty(), "rmap: first-owner words given too late");
        self.first = Some(first);
    }

    /// The first-owner words `set_first` gave, if any.
    pub fn first(&self) -> Option<&'a FirstOwners<'a>> {
        self.first
    }

    /// Never record `pfn` (the zero frame: see the module comment).
    pub fn set_unrecorded(&mut self, pfn: Pfn) {
        self.skip = Some(pfn);
    }

    /// The frame `set_unrecorded` named, if any.
    pub fn unrecorded(&self) -> Option<Pfn> {
        self.skip
    }

    pub fn is_recorded(&self, pfn: Pfn) -> bool {
        self.skip != Some(pfn)
    }

    /// Mappings recorded, over all frames (with the first-owner words: a
    /// walk of all of them).
    pub fn len(&self) -> usize {
        self.mappings + self.first.map_or(0, |f| f.iter().count())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn home(&self, pfn: u64) -> usize {
        // Fibonacci hashing: consecutive frames spread over the table.
        (pfn.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & (self.slots.len() - 1)
    }

    fn find(&self, pfn: u64) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.home(pfn);
        loop {
            match &self.slots[i] {
                None => return None,
                Some((p, _)) if *p == pfn => return Some(i),
                Some(_) => i = (i + 1) & (self.slots.len() - 1),
            }
        }
    }

    /// Room for one more frame, at most 3/4 full; Err if the table cannot grow.
    fn reserve_frame(&mut self) -> Result<(), NoMemory> {
        if (self.frames + 1) * 4 <= self.slots.len() * 3 {
            return Ok(());
        }
        let size = (self.slots.len() * 2).max(64);
        let mut slots = Vec::new();
        slots.try_reserve_exact(size).map_err(|_| NoMemory)?;
        slots.resize_with(size, || None);
        let old = core::mem::replace(&mut self.slots, slots);
        for (pfn, owners) in old.into_iter().flatten() {
            let mut i = self.home(pfn);
            while self.slots[i].is_some() {
                i = (i + 1) & (size - 1);
            }
            self.slots[i] = Some((pfn, owners));
        }
        Ok(())
    }

    /// Record that `owner` maps `pfn` (before the PTE is made present).
    /// Err (and nothing recorded) when memory for it cannot be had.
    pub fn add(&mut self, pfn: Pfn, owner: Owner) -> Result<(), NoMemory> {
        if !self.is_recorded(pfn) {
            return Ok(());
        }
        if let Some(first) = self.first {
            debug_assert!(
                first.get(pfn) != Some(owner),
                "rmap::add: {owner:?} already maps {pfn:?}"
            );
            if first.try_add(pfn, owner) {
                return Ok(());
            }
        }
        match self.find(pfn.0) {
            Some(i) => {
                let (_, owners) = self.slots[i].as_mut().expect("found");
                debug_assert!(
                    !owners.as_slice().contains(&owner),
                    "rmap::add: {owner:?} already maps {pfn:?}"
                );
                match owners {
                    Owners::One(first) => *owners = Owners::Two([*first, owner]),
                    Owners::Two(two) => {
                        let mut list = Vec::new();
                        list.try_reserve_exact(4).map_err(|_| NoMemory)?;
                        list.extend_from_slice(two);
                        list.push(owner);
                        *owners = Owners::Many(list);
                    }
                    Owners::Many(list) => {
                        list.try_reserve(1).map_err(|_| NoMemory)?;
                        list.push(owner);
                    }
                }
            }
            None => {
                self.reserve_frame()?;
                let mut i = self.home(pfn.0);
                while self.slots[i].is_some() {
                    i = (i + 1) & (self.slots.len() - 1);
                }
                self.slots[i] = Some((pfn.0, Owners::One(owner)));
                self.frames += 1;
            }
        }
        self.mappings += 1;
        Ok(())
    }

    /// Forget that `owner` maps `pfn` (the PTE was cleared). Never allocates.
    pub fn remove(&mut self, pfn: Pfn, owner: Owner) {
        if !self.is_recorded(pfn) || self.first.is_some_and(|f| f.try_remove(pfn, owner)) {
            return;
        }
        let i = self
            .find(pfn.0)
            .unwrap_or_else(|| panic!("rmap::remove: {pfn:?} has no owners ({owner:?})"));
        let (_, owners) = self.slots[i].as_mut().expect("found");
        let last = match owners {
            Owners::One(o) => {
                assert!(*o == owner, "rmap::remove: {owner:?} does not map {pfn:?}");
                true
            }
            Owners::Two([a, b]) => {
                let other = if *a == owner {
                    *b
                } else {
                    assert!(*b == owner, "rmap::remove: {owner:?} does not map {pfn:?}");
                    *a
                };
                *owners = Owners::One(other);
                false
            }
            Owners::Many(list) => {
                let at = list.iter().position(|o| *o == owner);
                let at =
                    at.unwrap_or_else(|| panic!("rmap::remove: {owner:?} does not map {pfn:?}"));
                list.swap_remove(at);
                if let [a, b] = list[..] {
                    *owners = Owners::Two([a, b]);
                }
                false
            }
        };
        self.mappings -= 1;
        if last {
            self.delete_slot(i);
            self.frames -= 1;
        }
    }

    /// `from`'s PTE for `pfn` now lives at `to` (mremap moving a page, or
    /// anything else that moves a PTE without changing its frame). Never
    /// allocates: the entry is rewritten where it is.
    pub fn moved(&mut self, pfn: Pfn, from: Owner, to: Owner) {
        if !self.is_recorded(pfn) || self.first.is_some_and(|f| f.try_move(pfn, from, to)) {
            return;
        }
        let i = self
            .find(pfn.0)
            .unwrap_or_else(|| panic!("rmap::moved: {pfn:?} has no owners"));
        let (_, owners) = self.slots[i].as_mut().expect("found");
        let slot = match owners {
            Owners::One(o) => Some(o),
            Owners::Two(two) => two.iter_mut().find(|o| **o == from),
            Owners::Many(list) => list.iter_mut().find(|o| **o == from),
        };
        let slot = slot
            .filter(|o| **o == from)
            .unwrap_or_else(|| panic!("rmap::moved: {from:?} does not map {pfn:?}"));
        *slot = to;
    }

    /// Empty slot `i`, shifting back the entries after it that probed past
    /// it, so every entry stays reachable from its home without tombstones.
    fn delete_slot(&mut self, mut hole: usize) {
        let mask = self.slots.len() - 1;
        self.slots[hole] = None;
        let mut i = (hole + 1) & mask;
        while let Some((pfn, _)) = &self.slots[i] {
            let home = self.home(*pfn);
            // Move it into the hole unless its home lies cyclically in (hole, i].
            let stays = if hole <= i {
                hole < home && home <= i
            } else {
                hole < home || home <= i
            };
            if !stays {
                self.slots[hole] = self.slots[i].take();
                hole = i;
            }
            i = (i + 1) & mask;
        }
    }

    /// Every mapping of `pfn` (for a 2 MiB page: of its head frame).
    pub fn owners(&self, pfn: Pfn) -> OwnersOf<'_> {
        let rest = match self.find(pfn.0) {
            Some(i) => self.slots[i].as_ref().expect("found").1.as_slice(),
            None => &[],
        };
        OwnersOf::new(self.first.and_then(|f| f.get(pfn)), rest)
    }

    /// Every (frame, mapping) recorded, in no order (the debug audit).
    pub fn iter(&self) -> impl Iterator<Item = (Pfn, Owner)> + '_ {
        let first = self.first.into_iter().flat_map(|f| f.iter());
        let rest = self
            .slots
            .iter()
            .flatten()
            .flat_map(|(pfn, owners)| owners.as_slice().iter().map(|o| (Pfn(*pfn), *o)));
        first.chain(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_remove_many_frames_and_owners() {
        many_frames(&mut Rmap::new());
    }

    /// 2000 frames, one or two owners each, half the first owners gone
    /// again; the owners left are counted frame by frame.
    fn many_frames(r: &mut Rmap<'_>) {
        let a = SpaceId(1);
        let b = SpaceId(2);
        for pfn in 1..2000u64 {
            r.add(Pfn(pfn), Owner::new(a, pfn << 12)).unwrap();
        }
        for pfn in (1..2000u64).step_by(3) {
            r.add(Pfn(pfn), Owner::new(b, pfn << 12)).unwrap();
        }
        assert_eq!(r.owners(Pfn(4)).len(), 2);
        assert_eq!(r.owners(Pfn(5)).to_vec(), [Owner::new(a, 5 << 12)]);
        for pfn in (1..2000u64).step_by(2) {
            r.remove(Pfn(pfn), Owner::new(a, pfn << 12));
        }
        for pfn in 1..2000u64 {
            let want = usize::from(pfn % 2 == 0) + usize::from(pfn % 3 == 1);
            assert_eq!(r.owners(Pfn(pfn)).len(), want, "pfn {pfn}");
        }
        assert_eq!(r.iter().count(), r.len());
    }

    #[test]
    fn one_two_and_many_owners_come_and_go() {
        let mut r = Rmap::new();
        let owners: Vec<Owner> = (0..5).map(|i| Owner::new(SpaceId(i + 1), 0x1000)).collect();
        for &o in &owners {
            r.add(Pfn(9), o).unwrap();
        }
        assert_eq!(r.owners(Pfn(9)).len(), 5);
        for (gone, &o) in owners.iter().enumerate() {
            r.remove(Pfn(9), o);
            let left = r.owners(Pfn(9));
            assert_eq!(left.len(), 4 - gone);
            assert!(owners[gone + 1..].iter().all(|o| left.contains(o)));
        }
        assert!(r.is_empty());
    }

    /// `f` on an Rmap whose frames 0..n have first-owner words.
    fn with_first<R>(n: usize, f: impl FnOnce(&mut Rmap<'_>) -> R) -> R {
        let words = new_first_words(n);
        let first = FirstOwners::new(&words, Pfn(0));
        let mut r = Rmap::new();
        r.set_first(&first);
        f(&mut r)
    }

    #[test]
    fn the_first_owner_takes_the_word_and_the_others_the_table() {
        with_first(16, first_owner_and_table);
    }

    fn first_owner_and_table(r: &mut Rmap<'_>) {
        let o: Vec<Owner> = (0..4).map(|i| Owner::new(SpaceId(i + 1), 0x5000)).collect();
        for &owner in &o[..3] {
            r.add(Pfn(9), owner).unwrap();
        }
        let first = r.first().unwrap();
        assert_eq!(first.get(Pfn(9)), Some(o[0]));
        assert_eq!(r.owners(Pfn(9)).to_vec(), [o[0], o[1], o[2]]);
        // The first goes: its word is free for the next owner.
        r.remove(Pfn(9), o[0]);
        assert_eq!(first.get(Pfn(9)), None);
        r.add(Pfn(9), o[3]).unwrap();
        assert_eq!(first.get(Pfn(9)), Some(o[3]));
        assert_eq!(r.len(), 3);
        // A move renames the owner where it is, in the word or the table.
        let moved = Owner::new(SpaceId(4), 0x9000);
        r.moved(Pfn(9), o[3], moved);
        let table_moved = Owner::new(SpaceId(2), 0xa000);
        r.moved(Pfn(9), o[1], table_moved);
        let left = r.owners(Pfn(9));
        assert!(left.contains(&moved) && left.contains(&table_moved) && left.contains(&o[2]));
        assert_eq!(r.iter().count(), 3);
        for owner in [o[2], moved, table_moved] {
            r.remove(Pfn(9), owner);
        }
        assert!(r.is_empty());
        // A frame past the words lives in the table alone.
        r.add(Pfn(100), o[0]).unwrap();
        assert_eq!(r.owners(Pfn(100)).to_vec(), [o[0]]);
        assert_eq!(first.get(Pfn(100)), None);
    }

    #[test]
    fn many_frames_with_first_owner_words() {
        // Frames 1..1000 have words, the rest live in the table alone.
        with_first(1000, many_frames);
    }

    /// Four spaces map and unmap the same frames at once, each recording
    /// its mapping in the word without a lock when it finds it free, in
    /// the table under the lock otherwise (the kernel's way, pmap/rmap.rs):
    /// no mapping is lost or left behind.
    #[test]
    fn threads_record_owners_of_the_same_frames() {
        use std::sync::Mutex;
        let rounds = if cfg!(miri) { 3 } else { 300 };
        let frames = 32u64;
        let words = new_first_words(frames as usize);
        let first = &FirstOwners::new(&words, Pfn(0));
        let mut rmap = Rmap::new();
        rmap.set_first(first);
        let table = Mutex::new(rmap);
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let table = &table;
                s.spawn(move || {
                    let me = |pfn: u64| Owner::new(SpaceId(t + 1), pfn << 12);
                    for _ in 0..rounds {
                        for pfn in 0..frames {
                            if !first.try_add(Pfn(pfn), me(pfn)) {
                                table.lock().unwrap().add(Pfn(pfn), me(pfn)).unwrap();
                            }
                        }
                        for pfn in 0..frames {
                            if !first.try_remove(Pfn(pfn), me(pfn)) {
                                table.lock().unwrap().remove(Pfn(pfn), me(pfn));
                            }
                        }
                    }
                    // One mapping of each frame stays, for the check below.
                    for pfn in 0..frames {
                        if !first.try_add(Pfn(pfn), me(pfn)) {
                            table.lock().unwrap().add(Pfn(pfn), me(pfn)).unwrap();
                        }
                    }
                });
            }
        });
        let r = table.into_inner().unwrap();
        for pfn in 0..frames {
            let owners = r.owners(Pfn(pfn));
            assert_eq!(owners.len(), 4, "frame {pfn}");
            assert!((1..=4).all(|t| owners.contains(&Owner::new(SpaceId(t), pfn << 12))));
        }
    }

    #[test]
    fn owner_packs_space_and_address() {
        let o = Owner::new(SpaceId((1 << 28) - 1), 0x7fff_ffff_f000);
        assert_eq!(o.space(), SpaceId((1 << 28) - 1));
        assert_eq!(o.va(), 0x7fff_ffff_f000);
    }
}
