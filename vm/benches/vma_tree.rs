//! How the VMA tree scales: `cargo bench -p vm --bench vma_tree`.
//!
//! For trees of n one-page segments separated by one-page gaps (alternating
//! colours, so nothing ever merges), the mean cost of
//!   - map+unmap: inserting a one-page segment into a gap and removing it again,
//!   - find-free: a top-down search for two free pages, where the only gap that
//!     wide lies somewhere in the middle of the tree,
//!   - find: looking up a random address.
//!
//! All three should grow with log2(n), not with n. A plain binary: no
//! external crates, timing with `Instant`, each figure adaptively measured
//! over about 0.2 s.

use std::hint::black_box;
use std::time::{Duration, Instant};

use vm::vm_map::{GRANULE, Segment, VmaTree};

const P: u64 = GRANULE;
/// Each measurement runs for about this long.
const TARGET: Duration = Duration::from_millis(200);
/// Pre-drawn random positions, cycled through (a power of two).
const POSITIONS: usize = 4096;

struct Seg {
    start: u64,
    end: u64,
    colour: u8,
}

impl Segment for Seg {
    fn start(&self) -> u64 {
        self.start
    }
    fn end(&self) -> u64 {
        self.end
    }
    fn split_off(&mut self, at: u64) -> Self {
        let upper = Seg {
            start: at,
            end: self.end,
            colour: self.colour,
        };
        self.end = at;
        upper
    }
    fn can_merge(&self, next: &Self) -> bool {
        self.colour == next.colour
    }
    fn merge(&mut self, next: Self) {
        self.end = next.end;
    }
}

/// xorshift64*: deterministic and good enough to scatter positions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Segment `i` sits at page 2i, or 2i + 1 from index `wide` on: every gap is
/// one page except the single two-page gap before segment `wide` (if any).
fn page_of(i: u64, wide: Option<u64>) -> u64 {
    2 * i + u64::from(wide.is_some_and(|w| i >= w))
}

fn build(n: u64, wide: Option<u64>) -> VmaTree<Seg> {
    let mut t = VmaTree::new();
    for i in 0..n {
        let start = page_of(i, wide) * P;
        let seg = Seg {
            start,
            end: start + P,
            colour: (i % 2) as u8,
        };
        assert!(t.insert(seg).is_ok(), "bench: overlapping segment");
    }
    assert_eq!(t.len() as u64, n, "bench: segments merged");
    t
}

/// Mean ns per call of `f(i)`, run for about `TARGET`.
fn measure(mut f: impl FnMut(usize)) -> f64 {
    // Warm up and calibrate.
    let mut iters = 1_000usize;
    let mut elapsed;
    loop {
        let t0 = Instant::now();
        for i in 0..iters {
            f(i);
        }
        elapsed = t0.elapsed();
        if elapsed >= TARGET / 20 {
            break;
        }
        iters *= 4;
    }
    let iters = ((iters as f64) * TARGET.as_secs_f64() / elapsed.as_secs_f64()).max(1.0) as usize;
    let t0 = Instant::now();
    for i in 0..iters {
        f(i);
    }
    t0.elapsed().as_nanos() as f64 / iters as f64
}

fn main() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    println!(
        "{:>8}  {:>13}  {:>13}  {:>9}  {:>6}",
        "n", "map+unmap ns", "find-free ns", "find ns", "log2 n"
    );
    for n in [10u64, 1_000, 100_000] {
        // (a) map+unmap: a one-page segment into the gap after a random segment.
        let mut t = build(n, None);
        let gaps: Vec<u64> = (0..POSITIONS).map(|_| (2 * rng.below(n) + 1) * P).collect();
        let map_unmap = measure(|i| {
            let start = gaps[i % POSITIONS];
            // Colour 2 matches neither neighbour: a real insert, no merge.
            let inserted = t.insert(black_box(Seg {
                start,
                end: start + P,
                colour: 2,
            }));
            assert!(inserted.is_ok());
            let taken = t.remove_range(black_box(start), start + P);
            assert_eq!(taken.len(), 1);
            black_box(taken);
        });
        assert_eq!(t.len() as u64, n);
        t.verify();
        drop(t);

        // (b) find-free: the only two-page gap sits before a random segment in
        // the middle half; the window ends where the last segment does, so
        // there is no free space above the tree to take instead.
        let wide = n / 4 + rng.below(n / 2);
        let t = build(n, Some(wide));
        let hi = (page_of(n - 1, Some(wide)) + 1) * P;
        let expect = Some((page_of(wide, Some(wide)) - 2) * P);
        assert_eq!(t.find_free_top_down(0, hi, 2 * P, P), expect);
        let find_free = measure(|_| {
            let r =
                t.find_free_top_down(black_box(0), black_box(hi), black_box(2 * P), black_box(P));
            black_box(r);
        });

        // (c) find at random addresses, half of them in gaps.
        let addrs: Vec<u64> = (0..POSITIONS).map(|_| rng.below(hi)).collect();
        let find = measure(|i| {
            black_box(t.find(black_box(addrs[i % POSITIONS])));
        });

        println!(
            "{n:>8}  {map_unmap:>13.1}  {find_free:>13.1}  {find:>9.1}  {:>6.1}",
            (n as f64).log2()
        );
    }
    println!("Each cost should grow with log2(n) (here ~3.3, ~10 and ~16.6), not with n.");
}
