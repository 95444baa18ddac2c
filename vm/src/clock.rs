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
//! `accessed` function, which also clears it.
//!
//! The lists are intrusive, as Linux's `page->lru`: one `Link` per frame
//! (12 bytes: the previous and next frame on its list, and which list),
//! in an array indexed by frame number that `Clock::new` allocates once,
//! for every frame there is. Insert, remove and move are O(1) and never
//! allocate: the clock is filled during reclaim, when memory is short, and
//! an allocation there is one the kernel heap may be unable to make (its
//! lazy lists and map did, and a heap that could not grow panicked the
//! kernel: the pressure test's flake, docs/src/pressure.md). A frame
//! beyond the array is not tracked (insert does nothing, `contains` says
//! no): the kernel's array covers every frame of RAM, so only a caller's
//! mistake can name one.
//!
//! `Policy::Fifo` is lab 6's (docs/src/labs.md): the oldest page goes,
//! used or not. Not done yet: a Fifo clock chooses as the two-list clock does.

use crate::frame::Pfn;
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

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

/// No frame: the end of a list.
const NONE: u32 = u32::MAX;

/// A frame's place: its neighbours on its list (towards the oldest and
/// towards the newest end), and the list, None when it is on neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Link {
    older: u32,
    newer: u32,
    on: Option<List>,
}

const UNLISTED: Link = Link {
    older: NONE,
    newer: NONE,
    on: None,
};

/// A list's two ends: the oldest frame (the head, where reclaim looks
/// first) and the newest (the tail, where frames join).
#[derive(Clone, Copy, Debug)]
struct Ends {
    oldest: u32,
    newest: u32,
}

const EMPTY: Ends = Ends {
    oldest: NONE,
    newest: NONE,
};

/// The clock's two lists, threaded through `links`.
pub struct Clock {
    policy: Policy,
    /// One per frame, by frame number; never grows after `new`.
    links: Vec<Link>,
    /// The active and the inactive list (indexed by `List as usize`).
    ends: [Ends; 2],
    counts: [usize; 2],
    /// Pages looked at (pgscan) and chosen (pgsteal) since creation.
    pub scanned: u64,
    pub chosen: u64,
}

/// Not the links (a million lines for a 4 GiB machine).
impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("policy", &self.policy)
            .field("frames", &self.links.len())
            .field("lengths", &self.lengths())
            .field("scanned", &self.scanned)
            .field("chosen", &self.chosen)
            .finish()
    }
}

impl Clock {
    /// The memory a frame takes: `new(_, frames)` allocates
    /// `frames * LINK_BYTES` bytes.
    pub const LINK_BYTES: usize = core::mem::size_of::<Link>();

    /// A clock for frames 0 to `frames` - 1 (at most `u32::MAX` - 1 of
    /// them, 16 TiB): the one allocation it makes, 12 bytes a frame.
    pub fn new(policy: Policy, frames: usize) -> Clock {
        Clock {
            policy,
            links: vec![UNLISTED; frames.min(NONE as usize)],
            ends: [EMPTY; 2],
            counts: [0; 2],
            scanned: 0,
            chosen: 0,
        }
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The frames it can track: those below this.
    pub fn frames(&self) -> usize {
        self.links.len()
    }

    /// Pages on the active and on the inactive list (/proc/meminfo's Active, Inactive).
    pub fn lengths(&self) -> (usize, usize) {
        (self.counts[0], self.counts[1])
    }

    pub fn len(&self) -> usize {
        self.counts[0] + self.counts[1]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, pfn: Pfn) -> bool {
        self.list_of(pfn).is_some()
    }

    pub fn list_of(&self, pfn: Pfn) -> Option<List> {
        self.index(pfn).and_then(|i| self.links[i as usize].on)
    }

    /// `pfn`'s index in `links`; None beyond it (not tracked).
    fn index(&self, pfn: Pfn) -> Option<u32> {
        (pfn.0 < self.links.len() as u64).then_some(pfn.0 as u32)
    }

    /// A page became evictable (first mapped, swapped back in): it joins
    /// the inactive list's tail. Already listed, or beyond the frames the
    /// clock was made for: nothing changes.
    pub fn insert(&mut self, pfn: Pfn) {
        if let Some(i) = self.index(pfn)
            && self.links[i as usize].on.is_none()
        {
            self.push(i, List::Inactive);
        }
    }

    /// A page is no longer evictable (freed, pinned for good).
    pub fn remove(&mut self, pfn: Pfn) {
        if let Some(i) = self.index(pfn) {
            self.unlink(i);
        }
    }

    /// Link frame `i`, on no list, at `list`'s newest end.
    fn push(&mut self, i: u32, list: List) {
        let ends = &mut self.ends[list as usize];
        let older = ends.newest;
        match older {
            NONE => ends.oldest = i,
            _ => self.links[older as usize].newer = i,
        }
        ends.newest = i;
        self.links[i as usize] = Link {
            older,
            newer: NONE,
            on: Some(list),
        };
        self.counts[list as usize] += 1;
    }

    /// Take frame `i` off its list, if it is on one.
    fn unlink(&mut self, i: u32) {
        let Link { older, newer, on } = self.links[i as usize];
        let Some(list) = on else {
            return;
        };
        let ends = &mut self.ends[list as usize];
        match older {
            NONE => ends.oldest = newer,
            _ => self.links[older as usize].newer = newer,
        }
        match newer {
            NONE => ends.newest = older,
            _ => self.links[newer as usize].older = older,
        }
        self.links[i as usize] = UNLISTED;
        self.counts[list as usize] -= 1;
    }

    /// The oldest frame of `list`, taken off it.
    fn pop(&mut self, list: List) -> Option<u32> {
        let i = self.ends[list as usize].oldest;
        if i == NONE {
            return None;
        }
        self.unlink(i);
        Some(i)
    }

    /// Choose up to `want` victims, looking at no more than `budget` pages
    /// and moving no more than `budget` off the active list to balance the
    /// two (so a round of reclaim is bounded by twice its budget whatever
    /// the pages say, and the kernel lock it holds is let go in time):
    /// `accessed(pfn)` reads and clears the page's accessed bits, `verdict`
    /// says whether the page may go now. The victims are off the lists
    /// (re-insert one that could not be paged out after all). The vector
    /// returned is the only allocation, made once, of at most `want`.
    pub fn choose(
        &mut self,
        want: usize,
        budget: usize,
        accessed: &mut dyn FnMut(Pfn) -> bool,
        verdict: &mut dyn FnMut(Pfn) -> Verdict,
    ) -> Vec<Pfn> {
        let mut victims = Vec::with_capacity(want.min(self.len()));
        let (mut looked, mut balanced) = (0, 0);
        while victims.len() < want && looked < budget {
            // Lab 6: FIFO neither balances nor promotes; not done yet, the
            // policy is recorded but both run the clock.
            balanced += self.balance(accessed, budget - balanced);
            let Some(i) = self.pop(List::Inactive).or_else(|| self.pop(List::Active)) else {
                break;
            };
            let pfn = Pfn(u64::from(i));
            looked += 1;
            self.scanned += 1;
            if accessed(pfn) {
                self.push(i, List::Active);
                continue;
            }
            match verdict(pfn) {
                Verdict::Evict => {
                    self.chosen += 1;
                    victims.push(pfn);
                }
                Verdict::Keep => self.push(i, List::Inactive),
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
            let Some(i) = self.pop(List::Active) else {
                break;
            };
            if accessed(Pfn(u64::from(i))) {
                self.push(i, List::Active);
            } else {
                self.push(i, List::Inactive);
            }
        }
        looked
    }
}

/// Run a reference string through `frames` frames managed by a clock of
/// `policy`, the accessed bit set on each use, evicting one page per miss
/// when full: the number of misses (major faults, once memory is full).
/// The lab's and the benchmark's model of a pattern. The page numbers
/// stand for frames: the clock covers them up to the largest.
pub fn misses(policy: Policy, frames: usize, refs: &[u64]) -> u64 {
    let pages = refs
        .iter()
        .max()
        .map_or(0, |&p| (p as usize).saturating_add(1));
    let mut clock = Clock::new(policy, pages);
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
        let mut c = Clock::new(Policy::Clock, 100);
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
        let mut c = Clock::new(Policy::Clock, 100);
        for i in 0..4 {
            c.insert(Pfn(i));
        }
        let v = c.choose(2, 10, &mut never, &mut |_| Verdict::Evict);
        assert_eq!(v, [Pfn(0), Pfn(1)]);
        assert_eq!(c.lengths(), (0, 2));
    }

    #[test]
    fn a_used_page_gets_a_second_chance_on_the_active_list() {
        let mut c = Clock::new(Policy::Clock, 100);
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
        let mut c = Clock::new(Policy::Clock, 100);
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
        let mut c = Clock::new(Policy::Clock, 100);
        for i in 0..3 {
            c.insert(Pfn(i));
        }
        c.remove(Pfn(0));
        c.insert(Pfn(0)); // back, now the youngest
        let v = c.choose(3, 10, &mut never, &mut |_| Verdict::Evict);
        assert_eq!(v, [Pfn(1), Pfn(2), Pfn(0)]);
        assert!(c.is_empty());
    }

    #[test]
    fn the_links_never_grow_after_new() {
        const FRAMES: u64 = 64;
        let mut c = Clock::new(Policy::Clock, FRAMES as usize);
        let capacity = c.links.capacity();
        for round in 0..3 {
            for i in 0..FRAMES {
                c.insert(Pfn(i));
            }
            assert_eq!(c.len(), FRAMES as usize);
            for i in (0..FRAMES).step_by(2) {
                c.remove(Pfn(i));
            }
            for i in (0..FRAMES).step_by(2) {
                c.insert(Pfn(i));
            }
            // Every other page used: promotions, balancing, victims.
            let v = c.choose(8, 200, &mut |p| (p.0 + round) % 2 == 0, &mut |_| {
                Verdict::Evict
            });
            assert_eq!(v.len(), 8);
            for p in v {
                c.insert(p);
            }
        }
        assert_eq!(c.links.capacity(), capacity);
        assert_eq!(Clock::LINK_BYTES, 12);
        assert_eq!(c.links.len(), FRAMES as usize);
    }

    #[test]
    fn a_frame_beyond_the_array_is_not_tracked() {
        let mut c = Clock::new(Policy::Clock, 4);
        c.insert(Pfn(3));
        c.insert(Pfn(4));
        c.insert(Pfn(u64::MAX));
        c.remove(Pfn(1 << 40));
        assert!(!c.contains(Pfn(4)));
        assert_eq!(c.list_of(Pfn(u64::MAX)), None);
        assert_eq!(c.len(), 1);
        let v = c.choose(4, 10, &mut never, &mut |_| Verdict::Evict);
        assert_eq!(v, [Pfn(3)]);
    }

    #[test]
    fn the_lists_keep_their_order_through_moves() {
        let mut c = Clock::new(Policy::Clock, 8);
        for i in 0..6 {
            c.insert(Pfn(i));
        }
        // 0 and 1 used: promoted, in that order; 2 kept: to the tail.
        let v = c.choose(1, 10, &mut |p| p.0 < 2, &mut |p| {
            if p == Pfn(2) {
                Verdict::Keep
            } else {
                Verdict::Evict
            }
        });
        assert_eq!(v, [Pfn(3)]);
        assert_eq!(c.lengths(), (2, 3));
        c.remove(Pfn(4)); // from the middle of the inactive list
        let v = c.choose(8, 20, &mut never, &mut |_| Verdict::Evict);
        // The inactive list 5, 2 first; then the active one, oldest first.
        assert_eq!(v, [Pfn(5), Pfn(2), Pfn(0), Pfn(1)]);
        assert!(c.is_empty());
        assert!(c.links.iter().all(|&l| l == UNLISTED));
    }
}
