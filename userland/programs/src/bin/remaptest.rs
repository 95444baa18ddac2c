//! `remaptest`: mremap(2) as a user program sees it: growing and
//! shrinking in place, MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP,
//! the "duplicate" of a shared mapping (old length 0), and the errors.
//! Every case checks the data where it ends up; on pageos the cases also
//! check that a move copies no frame and zeroes none but the few page
//! tables the target needs (/proc/vmstat's pgfault_cow_copy and
//! frames_zeroed): moving is moving page-table entries.
//!
//! It prints `ok NAME` / `FAIL NAME: why` per case and `N passed, M
//! failed`. The same binary passes as init of a Linux kernel
//! (`python3 scripts/linux-run.py remaptest`), which skips the counters.
#![no_std]
#![no_main]

use rt::sys::{self, ANON, EFAULT, EINVAL, ENOMEM, PROT_READ, RW, peek, poke};
use rt::test::{Outcome, Suite, expect_err, proc_number, why};
use rt::{ensure, fail};

rt::main!(main);

const PAGE: usize = 4096;
const HUGE: usize = 2 << 20;
const MADV_NOHUGEPAGE: usize = 15;

fn main(_args: rt::Args) -> i32 {
    cases()
}

/// Linux's mremap(2): syscall 25 and its flags.
const SYS_MREMAP: usize = 25;
const MREMAP_MAYMOVE: usize = 1;
const MREMAP_FIXED: usize = 2;
const MREMAP_DONTUNMAP: usize = 4;

fn mremap(
    old: usize,
    old_len: usize,
    new_len: usize,
    flags: usize,
    new: usize,
) -> sys::Result<usize> {
    sys::raw(SYS_MREMAP, [old, old_len, new_len, flags, new, 0])
}

/// Whether every page of [addr, addr + len) is mapped: mincore says ENOMEM
/// for a hole (Linux and pageos alike).
fn mapped(addr: usize, len: usize) -> bool {
    let mut vec = [0u8; 64];
    sys::mincore(addr, len, &mut vec[..len.div_ceil(PAGE)]).is_ok()
}

/// Whether no page of [addr, addr + len) is mapped.
fn unmapped(addr: usize, len: usize) -> bool {
    (addr..addr + len)
        .step_by(PAGE)
        .all(|page| !mapped(page, PAGE))
}

/// Fill [addr, addr + len) with a pattern that depends on the offset from
/// `addr`, so that it can be checked wherever the pages end up.
fn fill(addr: usize, len: usize, seed: u8) {
    for off in (0..len).step_by(256) {
        poke(addr + off, (off / 256) as u8 ^ seed);
    }
}

fn check_fill(addr: usize, len: usize, seed: u8) -> Outcome {
    for off in (0..len).step_by(256) {
        let (got, want) = (peek(addr + off), (off / 256) as u8 ^ seed);
        ensure!(
            got == want,
            "byte at +{off:#x} is {got:#x}, expected {want:#x}"
        )?;
    }
    Ok(())
}

fn check_zero(addr: usize, len: usize) -> Outcome {
    for a in (addr..addr + len).step_by(512) {
        ensure!(peek(a) == 0, "byte at {a:#x} is {:#x}, expected 0", peek(a))?;
    }
    Ok(())
}

/// `pages` pages of private anonymous memory with `free` free pages above.
fn anon_with_room(pages: usize, free: usize) -> Result<usize, rt::test::Why> {
    let a = sys::mmap_anon((pages + free) * PAGE).map_err(why("mmap"))?;
    sys::munmap(a + pages * PAGE, free * PAGE).map_err(why("munmap"))?;
    Ok(a)
}

fn cases() -> i32 {
    let mut s = Suite::new("remaptest");
    s.both("mremap_grows_in_place_when_the_space_above_is_free", || {
        let a = anon_with_room(4, 4)?;
        fill(a, 4 * PAGE, 0x51);
        let got = mremap(a, 4 * PAGE, 8 * PAGE, 0, 0);
        let result = (|| {
            ensure!(got == Ok(a), "mremap: {got:?}, expected {a:#x} (in place)")?;
            ensure!(mapped(a, 8 * PAGE), "the grown range is not all mapped")?;
            check_fill(a, 4 * PAGE, 0x51)?;
            check_zero(a + 4 * PAGE, 4 * PAGE)?;
            fill(a + 4 * PAGE, 4 * PAGE, 0x52);
            check_fill(a + 4 * PAGE, 4 * PAGE, 0x52)
        })();
        let _ = sys::munmap(a, 8 * PAGE);
        result
    });
    s.both("mremap_without_maymove_is_enomem_when_blocked", || {
        let a = sys::mmap_anon(3 * PAGE).map_err(why("mmap"))?;
        fill(a, 3 * PAGE, 0x53);
        let got = mremap(a, PAGE, 2 * PAGE, 0, 0);
        let result = expect_err(got, ENOMEM, "growing into the next page")
            .and_then(|()| check_fill(a, 3 * PAGE, 0x53));
        let _ = sys::munmap(a, 3 * PAGE);
        result
    });
    s.both("mremap_maymove_moves_the_pages_and_their_data", || {
        let a = sys::mmap_anon(3 * PAGE).map_err(why("mmap"))?;
        fill(a, 3 * PAGE, 0x54);
        let got = mremap(a, 2 * PAGE, 6 * PAGE, MREMAP_MAYMOVE, 0);
        let Ok(b) = got else {
            let _ = sys::munmap(a, 3 * PAGE);
            return fail!("mremap with MREMAP_MAYMOVE: {got:?}");
        };
        let result = (|| {
            ensure!(b != a && b % PAGE == 0, "moved to {b:#x} (from {a:#x})")?;
            check_fill(b, 2 * PAGE, 0x54)?;
            check_zero(b + 2 * PAGE, 4 * PAGE)?;
            fill(b + 2 * PAGE, 4 * PAGE, 0x55);
            ensure!(unmapped(a, 2 * PAGE), "the old pages are still mapped")?;
            ensure!(
                mapped(a + 2 * PAGE, PAGE),
                "the page not moved was unmapped"
            )?;
            check_fill(a + 2 * PAGE, PAGE, 0x54 ^ 32)
        })();
        let _ = sys::munmap(b, 6 * PAGE);
        let _ = sys::munmap(a, 3 * PAGE);
        result
    });
    s.both("mremap_shrinks_in_place_and_frees_the_tail", || {
        let a = sys::mmap_anon(4 * PAGE).map_err(why("mmap"))?;
        fill(a, 4 * PAGE, 0x56);
        let got = mremap(a, 4 * PAGE, PAGE + 1, 0, 0);
        let result = (|| {
            ensure!(got == Ok(a), "mremap: {got:?}, expected {a:#x}")?;
            check_fill(a, 2 * PAGE, 0x56)?;
            ensure!(unmapped(a + 2 * PAGE, 2 * PAGE), "the tail is still mapped")
        })();
        let _ = sys::munmap(a, 4 * PAGE);
        result
    });
    s.both(
        "mremap_fixed_moves_to_the_address_and_replaces_what_was_there",
        || {
            let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
            let t = sys::mmap_anon(4 * PAGE).map_err(why("mmap"))?;
            fill(a, 2 * PAGE, 0x57);
            fill(t, 4 * PAGE, 0x58);
            let got = mremap(
                a,
                2 * PAGE,
                2 * PAGE,
                MREMAP_MAYMOVE | MREMAP_FIXED,
                t + PAGE,
            );
            let result = (|| {
                ensure!(
                    got == Ok(t + PAGE),
                    "mremap: {got:?}, expected {:#x}",
                    t + PAGE
                )?;
                check_fill(t + PAGE, 2 * PAGE, 0x57)?;
                check_fill(t, PAGE, 0x58)?;
                check_fill(t + 3 * PAGE, PAGE, 0x58 ^ 48)?;
                ensure!(unmapped(a, 2 * PAGE), "the old pages are still mapped")
            })();
            let _ = sys::munmap(t, 4 * PAGE);
            let _ = sys::munmap(a, 2 * PAGE);
            result
        },
    );
    s.both("mremap_moves_shared_memory_with_its_data", || {
        let flags = sys::MAP_SHARED | sys::MAP_ANONYMOUS;
        let a = sys::mmap(0, 2 * PAGE, RW, flags, -1, 0).map_err(why("mmap"))?;
        let t = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        fill(a, 2 * PAGE, 0x59);
        let got = mremap(a, 2 * PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, t);
        let result = (|| {
            ensure!(got == Ok(t), "mremap: {got:?}, expected {t:#x}")?;
            check_fill(t, 2 * PAGE, 0x59)?;
            ensure!(unmapped(a, 2 * PAGE), "the old pages are still mapped")
        })();
        let _ = sys::munmap(t, 2 * PAGE);
        let _ = sys::munmap(a, 2 * PAGE);
        result
    });
    s.both("mremap_refuses_bad_arguments", || {
        // Four read-write pages, one read-only page, then four free ones.
        let a = anon_with_room(4, 5)?;
        let b = sys::mmap(a + 4 * PAGE, PAGE, PROT_READ, ANON | sys::MAP_FIXED, -1, 0);
        let result = (|| {
            expect_err(
                mremap(a + 1, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0),
                EINVAL,
                "unaligned old address",
            )?;
            expect_err(mremap(a, PAGE, 0, MREMAP_MAYMOVE, 0), EINVAL, "new_len 0")?;
            expect_err(
                mremap(a, PAGE, 2 * PAGE, 0x80, 0),
                EINVAL,
                "an undefined flag",
            )?;
            expect_err(
                mremap(a, PAGE, PAGE, MREMAP_FIXED, a + 8 * PAGE),
                EINVAL,
                "MREMAP_FIXED without MREMAP_MAYMOVE",
            )?;
            let fixed = MREMAP_MAYMOVE | MREMAP_FIXED;
            expect_err(
                mremap(a, 2 * PAGE, 2 * PAGE, fixed, a + PAGE),
                EINVAL,
                "MREMAP_FIXED onto the old range",
            )?;
            expect_err(
                mremap(a, PAGE, PAGE, fixed, a + 8 * PAGE + 1),
                EINVAL,
                "MREMAP_FIXED to an unaligned address",
            )?;
            expect_err(
                mremap(a + 8 * PAGE, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0),
                EFAULT,
                "nothing mapped at the old address",
            )?;
            ensure!(b == Ok(a + 4 * PAGE), "mmap MAP_FIXED: {b:?}")?;
            expect_err(
                mremap(a + 3 * PAGE, 2 * PAGE, 4 * PAGE, MREMAP_MAYMOVE, 0),
                EFAULT,
                "an old range over two mappings",
            )?;
            ensure!(mapped(a, 4 * PAGE), "a refused mremap unmapped something")
        })();
        let _ = sys::munmap(a, 5 * PAGE);
        result
    });
    let linux = s.linux;
    s.both(
        "mremap_dontunmap_moves_the_pages_and_leaves_the_old_range_empty",
        || {
            let a = sys::mmap_anon(4 * PAGE).map_err(why("mmap"))?;
            fill(a, 4 * PAGE, 0x61);
            let counters = Counters::read(linux)?;
            let got = mremap(a, 4 * PAGE, 4 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0);
            let Ok(b) = got else {
                let _ = sys::munmap(a, 4 * PAGE);
                return fail!("mremap with MREMAP_DONTUNMAP: {got:?}");
            };
            let result = (|| {
                counters.unchanged("the move")?;
                check_fill(b, 4 * PAGE, 0x61)?;
                ensure!(mapped(a, 4 * PAGE), "the old range is no longer mapped")?;
                check_zero(a, 4 * PAGE)?;
                expect_err(
                    mremap(b, 4 * PAGE, 5 * PAGE, MREMAP_MAYMOVE | MREMAP_DONTUNMAP, 0),
                    EINVAL,
                    "MREMAP_DONTUNMAP changing the size",
                )?;
                expect_err(
                    mremap(b, 4 * PAGE, 4 * PAGE, MREMAP_DONTUNMAP, 0),
                    EINVAL,
                    "MREMAP_DONTUNMAP without MREMAP_MAYMOVE",
                )
            })();
            let _ = sys::munmap(b, 4 * PAGE);
            let _ = sys::munmap(a, 4 * PAGE);
            result
        },
    );
    s.both(
        "mremap_of_old_length_zero_duplicates_a_shared_mapping",
        || {
            let flags = sys::MAP_SHARED | sys::MAP_ANONYMOUS;
            let a = sys::mmap(0, 2 * PAGE, RW, flags, -1, 0).map_err(why("mmap"))?;
            fill(a, 2 * PAGE, 0x62);
            let got = mremap(a, 0, 2 * PAGE, MREMAP_MAYMOVE, 0);
            let Ok(d) = got else {
                let _ = sys::munmap(a, 2 * PAGE);
                return fail!("mremap(old_len 0): {got:?}");
            };
            let result = (|| {
                ensure!(d != a, "the duplicate is at the old address")?;
                check_fill(d, 2 * PAGE, 0x62)?;
                poke(d + 7, 0x99);
                ensure!(
                    peek(a + 7) == 0x99,
                    "a store through the duplicate is not seen"
                )?;
                check_fill(a + PAGE, PAGE, 0x62 ^ 16)
            })();
            let _ = sys::munmap(d, 2 * PAGE);
            let _ = sys::munmap(a, 2 * PAGE);
            result
        },
    );
    s.both(
        "mremap_of_old_length_zero_is_einval_for_private_memory",
        || {
            let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
            let got = mremap(a, 0, PAGE, MREMAP_MAYMOVE, 0);
            let _ = sys::munmap(a, PAGE);
            expect_err(got, EINVAL, "old_len 0 of a private mapping")
        },
    );
    s.both(
        "mremap_moves_64_pages_without_zeroing_or_copying_a_frame",
        || {
            let a = sys::mmap_anon(65 * PAGE).map_err(why("mmap"))?;
            fill(a, 64 * PAGE, 0x63);
            let counters = Counters::read(linux)?;
            let got = mremap(a, 64 * PAGE, 128 * PAGE, MREMAP_MAYMOVE, 0);
            let Ok(b) = got else {
                let _ = sys::munmap(a, 65 * PAGE);
                return fail!("mremap: {got:?}");
            };
            let result = counters
                .unchanged("the move")
                .and_then(|()| check_fill(b, 64 * PAGE, 0x63))
                .and_then(|()| check_zero(b + 64 * PAGE, 64 * PAGE));
            let _ = sys::munmap(b, 128 * PAGE);
            let _ = sys::munmap(a, 65 * PAGE);
            result
        },
    );
    s.both(
        "mremap_fixed_moves_small_pages_by_whole_tables_there_and_back",
        || {
            // Two whole 2 MiB regions of 4 KiB pages and 3 pages more, moved
            // to an aligned place (whole level-1 tables on pageos, the
            // tail PTE by PTE), back, to an unaligned place (every PTE),
            // and on from there by a multiple of 2 MiB (a partial region
            // at each end, whole tables between).
            let len = 2 * HUGE + 3 * PAGE;
            let room = 2 * (len + HUGE) + HUGE;
            let m = sys::mmap_anon(room).map_err(why("mmap"))?;
            let _ = sys::madvise(m, room, MADV_NOHUGEPAGE);
            let a = m.next_multiple_of(HUGE);
            let t = (a + len).next_multiple_of(HUGE) + HUGE;
            fill(a, len, 0x65);
            let result = (|| {
                for (from, to) in [(a, t), (t, a), (a, t + PAGE), (t + PAGE, a + PAGE)] {
                    let counters = Counters::read(linux)?;
                    let got = mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
                    ensure!(got == Ok(to), "mremap {from:#x} to {to:#x}: {got:?}")?;
                    // An unaligned target spans 3 level-1 tables.
                    counters.within("the move", TABLES + 2)?;
                    check_fill(to, len, 0x65)?;
                    ensure!(
                        unmapped(from, PAGE) && unmapped(from + len - PAGE, PAGE),
                        "the old range {from:#x} is still mapped"
                    )?;
                }
                Ok(())
            })();
            let _ = sys::munmap(m, room);
            result
        },
    );
    s.pageos("mremap_fixed_moves_2mib_pages_as_they_are", || {
        let a = sys::mmap(0, 2 * HUGE, RW, ANON | sys::MAP_ALIGNED_SUPER, -1, 0)
            .map_err(why("mmap"))?;
        let t = sys::mmap(0, 2 * HUGE, RW, ANON | sys::MAP_ALIGNED_SUPER, -1, 0)
            .map_err(why("mmap"))?;
        fill(a, 2 * HUGE, 0x64);
        let counters = Counters::read(linux)?;
        let got = mremap(a, 2 * HUGE, 2 * HUGE, MREMAP_MAYMOVE | MREMAP_FIXED, t);
        let result = (|| {
            ensure!(got == Ok(t), "mremap: {got:?}, expected {t:#x}")?;
            counters.unchanged("the move of two 2 MiB pages")?;
            check_fill(t, 2 * HUGE, 0x64)?;
            ensure!(unmapped(a, PAGE), "the old range is still mapped")
        })();
        let _ = sys::munmap(t, 2 * HUGE);
        let _ = sys::munmap(a, 2 * HUGE);
        result
    });
    s.finish()
}

/// Page tables a move may have to make for its target (an L1, L2 and L3
/// table at most, for a target in new territory); every other zeroed
/// frame would be a page's.
const TABLES: u64 = 3;

/// pageos's counters of frames zeroed and copied (none on Linux, whose
/// /proc/vmstat has neither: there the check is skipped).
struct Counters(Option<(u64, u64)>);

impl Counters {
    fn read(linux: bool) -> Result<Counters, rt::test::Why> {
        if linux {
            return Ok(Counters(None));
        }
        let zeroed = proc_number("/proc/vmstat\0", "frames_zeroed")?;
        let copied = proc_number("/proc/vmstat\0", "pgfault_cow_copy")?;
        Ok(Counters(Some((zeroed, copied))))
    }

    fn unchanged(&self, what: &str) -> Outcome {
        self.within(what, TABLES)
    }

    /// As `unchanged`, for a move whose target may need `tables` tables.
    fn within(&self, what: &str, tables: u64) -> Outcome {
        let Some(before) = self.0 else { return Ok(()) };
        let Counters(now) = Counters::read(false)?;
        let now = now.expect("read on pageos");
        ensure!(
            now.1 == before.1 && now.0 <= before.0 + tables,
            "{what}: frames zeroed and copied went from {before:?} to {now:?} \
             (a move may zero {tables} page tables, nothing else)"
        )
    }
}
