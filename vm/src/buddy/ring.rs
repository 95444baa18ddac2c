//! A CPU's list of free frames (kernel/src/phys/cache.rs): a ring of up
//! to `N` frame numbers, here so that the host can test it.
//!
//! The most recently freed frame is at the tail and is taken first: it
//! is still warm in the CPU's caches. The coldest is at the head and is
//! the first to go back to the buddy allocator when the list overflows,
//! which then copies nothing (a flat array that moved its tail down to
//! the front on each overflow copied 160 KiB of it each time with 20 000
//! entries).
//!
//! ```text
//!   head                 tail
//!    v                     v
//!   [ c0 c1 c2 ... w2 w1 w0 ]   pop -> w0;  take_coldest -> c0, c1, ...
//! ```

use crate::frame::Pfn;

pub struct FrameRing<const N: usize> {
    pfns: [Pfn; N],
    /// Where the coldest frame is.
    head: usize,
    len: usize,
}

impl<const N: usize> FrameRing<N> {
    pub const fn new() -> Self {
        FrameRing {
            pfns: [Pfn(0); N],
            head: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot(&self, i: usize) -> usize {
        (self.head + i) % N
    }

    /// The warmest frame, taken off the list.
    pub fn pop(&mut self) -> Option<Pfn> {
        self.len = self.len.checked_sub(1)?;
        Some(self.pfns[self.slot(self.len)])
    }

    /// False, and nothing changed, when the list holds `high` frames (or
    /// `N`, if that is fewer).
    pub fn push(&mut self, pfn: Pfn, high: usize) -> bool {
        let room = self.len < high.min(N);
        if room {
            self.pfns[self.slot(self.len)] = pfn;
            self.len += 1;
        }
        room
    }

    /// The coldest `n` frames (all, if fewer), taken off the list.
    pub fn take_coldest(&mut self, n: usize) -> impl Iterator<Item = Pfn> + '_ {
        let n = n.min(self.len);
        let head = self.head;
        self.head = (head + n) % N;
        self.len -= n;
        (0..n).map(move |i| self.pfns[(head + i) % N])
    }

    /// Fill the empty list with up to `n` frames from `fill`, which
    /// writes frames into the slice it is given and says how many.
    pub fn refill(&mut self, n: usize, fill: impl FnOnce(&mut [Pfn]) -> usize) {
        assert!(self.is_empty(), "FrameRing::refill: the list is not empty");
        self.head = 0;
        self.len = fill(&mut self.pfns[..n.min(N)]).min(n.min(N));
    }
}

impl<const N: usize> Default for FrameRing<N> {
    fn default() -> Self {
        Self::new()
    }
}
