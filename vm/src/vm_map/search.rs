//! The free-range search: top-down (mmap without a hint) or first fit
//! above a hint, skipping every subtree whose widest gap is too small.

use super::{GRANULE, Node, Segment, VmaTree};

impl<T: Segment> VmaTree<T> {
    /// The highest `align`-aligned start of a free range of `size` bytes in
    /// [lo, hi): top-down placement, as mmap does without a hint.
    pub fn find_free_top_down(&self, lo: u64, hi: u64, size: u64, align: u64) -> Option<u64> {
        let q = Self::query(lo, hi, size, align)?;
        search_down(self.root.as_deref(), lo, hi, &q)
    }

    /// The lowest `align`-aligned start of a free range of `size` bytes in
    /// [lo, hi): first fit at or after a hint.
    pub fn find_free(&self, lo: u64, hi: u64, size: u64, align: u64) -> Option<u64> {
        let q = Self::query(lo, hi, size, align)?;
        search_up(self.root.as_deref(), lo, hi, &q)
    }

    fn query(lo: u64, hi: u64, size: u64, align: u64) -> Option<Query> {
        assert!(
            align.is_power_of_two(),
            "vm_map: alignment {align:#x} is not a power of two"
        );
        let need = size.checked_add(align.saturating_sub(GRANULE))?;
        (size > 0 && lo < hi).then_some(Query {
            lo,
            hi,
            size,
            align,
            need,
        })
    }
}

/// A free-range search: `size` bytes aligned to `align` within [lo, hi).
struct Query {
    lo: u64,
    hi: u64,
    size: u64,
    align: u64,
    /// A gap at least this wide holds an aligned range wherever it lies
    /// (Linux's `length + align_mask`, with page-granular gaps): subtrees
    /// without one are skipped. A narrower gap that happens to be aligned
    /// is still taken when the walk passes by it.
    need: u64,
}

impl Query {
    /// The gap [gs, ge) clamped to [lo, hi), if it can still hold `size` bytes.
    fn clamp(&self, gs: u64, ge: u64) -> Option<(u64, u64)> {
        let (s, e) = (gs.max(self.lo), ge.min(self.hi));
        (e > s && e - s >= self.size).then_some((s, e))
    }

    fn highest_fit(&self, gs: u64, ge: u64) -> Option<u64> {
        let (s, e) = self.clamp(gs, ge)?;
        let addr = (e - self.size) / self.align * self.align;
        (addr >= s).then_some(addr)
    }

    fn lowest_fit(&self, gs: u64, ge: u64) -> Option<u64> {
        let (s, e) = self.clamp(gs, ge)?;
        let addr = s.checked_next_multiple_of(self.align)?;
        (addr.checked_add(self.size)? <= e).then_some(addr)
    }

    /// Whether the subtree `n`, lying in the gap-bounded span [lb, rb), may
    /// hold a fit: its span overlaps the window and some gap is wide enough.
    fn worth_visiting<T>(&self, n: &Node<T>, lb: u64, rb: u64) -> bool {
        let widest = n
            .max_gap
            .max(n.min_start.saturating_sub(lb))
            .max(rb.saturating_sub(n.max_end));
        self.clamp(lb, rb).is_some() && widest >= self.need
    }
}

/// The highest fit in the subtree at `link`, whose neighbours outside it
/// end at `lb` and start at `rb`.
fn search_down<T: Segment>(link: Option<&Node<T>>, lb: u64, rb: u64, q: &Query) -> Option<u64> {
    let Some(n) = link else {
        return q.highest_fit(lb, rb);
    };
    if !q.worth_visiting(n, lb, rb) {
        return None;
    }
    search_down(n.right.as_deref(), n.seg.end(), rb, q)
        .or_else(|| search_down(n.left.as_deref(), lb, n.seg.start(), q))
}

fn search_up<T: Segment>(link: Option<&Node<T>>, lb: u64, rb: u64, q: &Query) -> Option<u64> {
    let Some(n) = link else {
        return q.lowest_fit(lb, rb);
    };
    if !q.worth_visiting(n, lb, rb) {
        return None;
    }
    search_up(n.left.as_deref(), lb, n.seg.start(), q)
        .or_else(|| search_up(n.right.as_deref(), n.seg.end(), rb, q))
}
