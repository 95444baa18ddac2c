//! Which page goes when memory is short: a clock over the accessed bits,
//! with an active and an inactive list (Linux's two LRU lists, FreeBSD's
//! active and inactive queues; docs/src/pressure.md, "The clock").
//!
//! The hardware sets a PTE's accessed bit whenever the page is used; the
//! clock only ever reads and clears it, so a page's recent use costs one
//! bit and no work on the access itself. Pages enter on the inactive list.
//! Reclaim looks at the inactive list's oldest page first:
//!
//! - accessed since it was last looked at: it is in use. It is promoted to
//!   the active list (its second chance) and the bit is cleared;
//! - not accessed: it is the victim, unless the caller says it cannot go
//!   now (pinned by mlock, its address space busy): then it goes round to
//!   the inactive list's tail.
//!
//! The active list is kept at no more than the inactive one: when it grows
//! past, its oldest pages are moved to the inactive list with their bits
//! cleared (deactivated), and a page accessed again before reclaim reaches
//! it is promoted again. A page that is used all the time stays active; a
//! page used once drifts to the inactive head and goes, so a sweep through
//! a large file does not push out the pages a program keeps using.
//!
//! What it does not do: a loop over a little more memory than there is
//! (the pattern that defeats LRU) evicts every page before its next use, as
//! LRU and FIFO do. Linux's remedy is the refault distance of
//! mm/workingset.c (a page that comes back sooner than the lists' length
//! joins the active list), which pageos does not have yet.
//!
//! The clock names frames only; what a frame's accessed bit is (the OR of
//! every PTE that maps it, found through the reverse map) is the caller's
//! `accessed` function, which also clears it. Removing a frame (it was
//! freed, unmapped) is O(1): the lists are lazy, and an entry whose frame
//! left or moved is skipped when it comes up.
//!
//! `Policy::Fifo` is lab 6's (docs/src/labs.md): the oldest page goes,
//! used or not. Not done yet: a Fifo clock chooses as the two-list clock does.

use crate::frame::Pfn;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum List {
    Active,
    Inactive,
}

/// How the victim is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    /// The two-list clock above.
    #[default]
    Clock,
    /// First in, first out: the accessed bits are not looked at (lab 6;
    /// not done yet, it behaves as `Clock`).
    Fifo,
}

/// What the caller says about a page the clock is about to choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It may go.
    Evict,
    /// Not now (pinned, or its address space is busy): keep it listed.
    Keep,
    /// It is no longer the clock's business (freed meanwhile): drop it.
    Forget,
}

/// The clock's lists. A frame is on at most one list; `place` is the truth,
/// the deques may hold stale entries (a stamp that no longer matches).
#[derive(Debug, Default)]
pub struct Clock {
    policy: Policy,
    active: VecDeque<(Pfn, u64)>,
    inactive: VecDeque<(Pfn, u64)>,
    /// The list each frame is on and the stamp of its live entry.
    place: BTreeMap<Pfn, (List, u64)>,
    next_stamp: u64,
    counts: [usize; 2],
    /// Pages looked at (pgscan) and chosen (pgsteal) since creation.
    pub scanned: u64,
    pub chosen: u64,
}

impl Clock {
    pub fn new(policy: Policy) -> Clock {
        Clock {
            policy,
            ..Clock::default()
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Pages on the active and on the inactive list (/proc/meminfo's Active, Inactive).
    pub fn lengths(&self) -> (usize, usize) {
        (self.counts[0], self.counts[1])
    }

    pub fn len(&self) -> usize {
        self.place.len()
    }

    pub fn is_empty(&self) -> bool {
        self.place.is_empty()
    }

    pub fn contains(&self, pfn: Pfn) -> bool {
        self.place.contains_key(&pfn)
    }

    pub fn list_of(&self, pfn: Pfn) -> Option<List> {
        self.place.get(&pfn).map(|&(list, _)| list)
    }

    /// A page became evictable (first mapped, swapped back in): it joins
    /// the inactive list's tail. Already listed: nothing changes.
    pub fn insert(&mut self, pfn: Pfn) {
        if !self.contains(pfn) {
            self.push(pfn, List::Inactive);
        }
    }

    /// A page is no longer evictable (freed, pinned for good).
    pub fn remove(&mut self, pfn: Pfn) {
        if let Some((list, _)) = self.place.remove(&pfn) {
            self.counts[list as usize] -= 1;
        }
    }

    fn push(&mut self, pfn: Pfn, list: List) {
        self.remove(pfn);
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        self.place.insert(pfn, (list, stamp));
        self.counts[list as usize] += 1;
        match list {
            List::Active => self.active.push_back((pfn, stamp)),
            List::Inactive => self.inactive.push_back((pfn, stamp)),
        }
    }

    /// The oldest live entry of `list`, taken off it.
    fn pop(&mut self, list: List) -> Option<Pfn> {
        loop {
            let (pfn, stamp) = match list {
                List::Active => self.active.pop_front()?,
                List::Inactive => self.inactive.pop_front()?,
            };
            if self.place.get(&pfn) == Some(&(list, stamp)) {
                self.remove(pfn);
                return Some(pfn);
            }
        }
    }

    /// Choose up to `want` victims, looking at no more than `budget` pages
    /// and moving no more than `budget` off the active list to balance the
    /// two (so a round of reclaim is bounded by twice its budget whatever
    /// the pages say, and the kernel lock it holds is let go in time):
    /// `accessed(pfn)` reads and clears the page's accessed bits, `verdict`
    /// says whether the page may go now. The victims are off the lists
    /// (re-insert one that could not be paged out after all).
    pub fn choose(
        &mut self,
        want: usize,
        budget: usize,
        accessed: &mut dyn FnMut(Pfn) -> bool,
        verdict: &mut dyn FnMut(Pfn) -> Verdict,
    ) -> Vec<Pfn> {
        let mut victims = Vec::new();
        let (mut looked, mut balanced) = (0, 0);
        while victims.len() < want && looked < budget {
            // Lab 6: FIFO neither balances nor promotes; not done yet, the
            // policy is recorded but both run the clock.
            balanced += self.balance(accessed, budget - balanced);
            let Some(pfn) = self.pop(List::Inactive).or_else(|| self.pop(List::Active)) else {
                break;
            };
            looked += 1;
            self.scanned += 1;
            if accessed(pfn) {
                self.push(pfn, List::Active);
                continue;
            }
            match verdict(pfn) {
                Verdict::Evict => {
                    self.chosen += 1;
                    victims.push(pfn);
                }
                Verdict::Keep => self.push(pfn, List::Inactive),
                Verdict::Forget => {}
            }
        }
        victims
    }

    /// Keep the active list no longer than the inactive one: its oldest
    /// pages move to the inactive list, bits cleared; one used again since
    /// it was promoted goes round the active list once more. Looks at no
    /// more than `limit` pages (nor at any page twice); returns how many
    /// it looked at. Without the limit, pages that always read as used (a
    /// space busy on another CPU, `reclaim::accessed`) went round the
    /// whole active list once per victim chosen: a round of reclaim on two
    /// CPUs took minutes.
    fn balance(&mut self, accessed: &mut dyn FnMut(Pfn) -> bool, limit: usize) -> usize {
        let turns = self.counts[0].min(limit);
        let mut looked = 0;
        while self.counts[0] > self.counts[1] && looked < turns {
            looked += 1;
            let Some(pfn) = self.pop(List::Active) else {
                break;
            };
            if accessed(pfn) {
                self.push(pfn, List::Active);
            } else {
                self.push(pfn, List::Inactive);
            }
        }
        looked
    }
}

/// Run a reference string through `frames` frames managed by a clock of
/// `policy`, the accessed bit set on each use, evicting one page per miss
/// when full: the number of misses (major faults, once memory is full).
/// The lab's and the benchmark's model of a pattern.
pub fn misses(policy: Policy, frames: usize, refs: &[u64]) -> u64 {
    let mut clock = Clock::new(policy);
    let mut resident: BTreeMap<u64, bool> = BTreeMap::new(); // page -> accessed
    let mut misses = 0;
    for &page in refs {
        if let Some(bit) = resident.get_mut(&page) {
            *bit = true;
            continue;
        }
        misses += 1;
        if resident.len() == frames {
            let victims = clock.choose(
                1,
                usize::MAX,
                &mut |pfn| resident.get_mut(&pfn.0).is_some_and(core::mem::take),
                &mut |_| Verdict::Evict,
            );
            for v in victims {
                resident.remove(&v.0);
            }
        }
        resident.insert(page, false);
        clock.insert(Pfn(page));
    }
    misses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: Pfn) -> bool {
        false
    }

    #[test]
    fn the_budget_bounds_the_pages_looked_at_and_moved() {
        let mut c = Clock::new(Policy::Clock);
        for i in 0..100 {
            c.insert(Pfn(i));
        }
        // Every page used: they go to the active list, which outgrows the
        // inactive one, so that the next round balances first.
        c.choose(1, 100, &mut |_| true, &mut |_| Verdict::Evict);
        let (active, inactive) = c.lengths();
        assert!(active > inactive);
        let mut looks = 0;
        let v = c.choose(
            10,
            30,
            &mut |_| {
                looks += 1;
                true
            },
            &mut |_| Verdict::Evict,
        );
        assert!(v.is_empty());
        assert!(
            looks <= 60,
            "{looks} looks: at most 30 pages scanned and 30 moved, not a round of the active list per page"
        );
        assert_eq!(c.len(), 100);
    }

    #[test]
    fn unused_pages_go_oldest_first() {
        let mut c = Clock::new(Policy::Clock);
        for i in 0..4 {
            c.insert(Pfn(i));
        }
        let v = c.choose(2, 10, &mut never, &mut |_| Verdict::Evict);
        assert_eq!(v, [Pfn(0), Pfn(1)]);
        assert_eq!(c.lengths(), (0, 2));
    }

    #[test]
    fn a_used_page_gets_a_second_chance_on_the_active_list() {
        let mut c = Clock::new(Policy::Clock);
        for i in 0..4 {
            c.insert(Pfn(i));
        }
        let mut used = |p: Pfn| p == Pfn(0);
        let v = c.choose(1, 10, &mut used, &mut |_| Verdict::Evict);
        assert_eq!(v, [Pfn(1)]);
        assert_eq!(c.list_of(Pfn(0)), Some(List::Active));
    }

    #[test]
    fn a_pinned_page_is_kept_and_the_next_goes() {
        let mut c = Clock::new(Policy::Clock);
        for i in 0..3 {
            c.insert(Pfn(i));
        }
        let mut pinned = |p: Pfn| {
            if p == Pfn(0) {
                Verdict::Keep
            } else {
                Verdict::Evict
            }
        };
        let v = c.choose(1, 10, &mut never, &mut pinned);
        assert_eq!(v, [Pfn(1)]);
        assert!(c.contains(Pfn(0)));
    }

    #[test]
    fn removed_pages_are_never_chosen() {
        let mut c = Clock::new(Policy::Clock);
        for i in 0..3 {
            c.insert(Pfn(i));
        }
        c.remove(Pfn(0));
        c.insert(Pfn(0)); // back, now the youngest
        let v = c.choose(3, 10, &mut never, &mut |_| Verdict::Evict);
        assert_eq!(v, [Pfn(1), Pfn(2), Pfn(0)]);
        assert!(c.is_empty());
    }
}
