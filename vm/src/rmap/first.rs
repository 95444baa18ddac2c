//! Each frame's first reverse-map entry in a word of the frame's own
//! (the module comment of `rmap`), and a frame's owners as `owners` reads
//! them: that word, then the table's list.

use super::Owner;
use crate::frame::Pfn;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Each frame's first mapping, in a word of its own (0: none; no owner
/// is 0, as no space's id is). The words change only by one
/// compare-and-exchange each, so CPUs record and forget the mappings of
/// different frames with no lock, and those of one frame without losing
/// one: an owner goes here only into an empty word, and leaves it only if
/// the word still holds it. Whatever does not fit goes to the `Rmap`'s
/// table, which reads these words too for a frame's whole list.
pub struct FirstOwners<'a> {
    words: &'a [AtomicU64],
    /// The frame of `words[0]`.
    base: u64,
}

impl core::fmt::Debug for FirstOwners<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "FirstOwners({} frames from {})",
            self.words.len(),
            self.base
        )
    }
}

/// `n` empty words, for frames `base..base + n` (tests; the kernel carves
/// its array out of RAM beside the frame table).
pub fn new_first_words(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl<'a> FirstOwners<'a> {
    pub fn new(words: &'a [AtomicU64], base: Pfn) -> Self {
        FirstOwners {
            words,
            base: base.0,
        }
    }

    fn word(&self, pfn: Pfn) -> Option<&AtomicU64> {
        let i = pfn.0.checked_sub(self.base)?;
        self.words.get(usize::try_from(i).ok()?)
    }

    /// Record `owner` as `pfn`'s first mapping if it has none; false (and
    /// nothing changed) when it has one, or `pfn` has no word.
    pub fn try_add(&self, pfn: Pfn, owner: Owner) -> bool {
        debug_assert!(owner.0 != 0, "rmap: an owner of zero");
        self.word(pfn).is_some_and(|w| {
            w.compare_exchange(0, owner.0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Forget `owner`'s mapping of `pfn` if it is the one here.
    pub fn try_remove(&self, pfn: Pfn, owner: Owner) -> bool {
        self.try_replace(pfn, owner, 0)
    }

    /// `from`'s mapping of `pfn` is `to`'s now, if it is the one here.
    pub fn try_move(&self, pfn: Pfn, from: Owner, to: Owner) -> bool {
        self.try_replace(pfn, from, to.0)
    }

    fn try_replace(&self, pfn: Pfn, old: Owner, new: u64) -> bool {
        self.word(pfn).is_some_and(|w| {
            w.compare_exchange(old.0, new, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// The mapping of `pfn` recorded here, if any.
    pub fn get(&self, pfn: Pfn) -> Option<Owner> {
        let raw = self.word(pfn)?.load(Ordering::Acquire);
        (raw != 0).then_some(Owner(raw))
    }

    /// Every (frame, mapping) recorded here: a walk of every word.
    pub fn iter(&self) -> impl Iterator<Item = (Pfn, Owner)> + '_ {
        self.words.iter().enumerate().filter_map(|(i, w)| {
            let raw = w.load(Ordering::Acquire);
            (raw != 0).then(|| (Pfn(self.base + i as u64), Owner(raw)))
        })
    }
}

/// The mappings of one frame (`Rmap::owners`): its first owner's word,
/// then the table's list.
#[derive(Clone, Copy, Debug)]
pub struct OwnersOf<'a> {
    first: Option<Owner>,
    rest: &'a [Owner],
}

impl<'a> OwnersOf<'a> {
    pub(super) fn new(first: Option<Owner>, rest: &'a [Owner]) -> Self {
        OwnersOf { first, rest }
    }

    pub fn iter(&self) -> impl Iterator<Item = Owner> + '_ {
        self.first.into_iter().chain(self.rest.iter().copied())
    }

    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, owner: &Owner) -> bool {
        self.iter().any(|o| o == *owner)
    }

    pub fn to_vec(&self) -> Vec<Owner> {
        self.iter().collect()
    }
}
