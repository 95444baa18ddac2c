//! The madvise cases of `pressuretest` (docs/src/pressure.md, "madvise
//! under pressure"): MADV_FREE'd pages go without a write and read back
//! as zeros unless written since, MADV_PAGEOUT writes pages to swap now,
//! MADV_WILLNEED reads them back before they are touched, and a 2 MiB
//! page is split before either advice takes part of it: these need swap
//! but no pressure (at most 512 KiB each goes to swap, half of what
//! `slots_back` lets Linux free lazily). And under pressure, with swap or
//! without, reclaim takes MADV_FREE'd pages first. Seconds on both kernels.

use super::{PAGE, check, fill, pipe, vmstat};
use rt::sys;
use rt::test::{Outcome, resident, why};
use rt::{ensure, fail, println};

const MADV_PAGEOUT: usize = 21;
const PAGES: usize = 128;
/// Pages written again after MADV_FREE by the program, and after them
/// pages the kernel writes (read() from a pipe).
const REWRITTEN: usize = 16;
const COPIED: usize = 4;

/// MADV_FREE, then a write to the first pages (by the program, then by
/// the kernel's copy of a read()), then MADV_PAGEOUT (which reclaims the
/// range now): the pages not written since go without a write
/// (/proc/vmstat's pglazyfreed counts them) and read back as zeros; the
/// written ones keep their data (on pageos they go to swap; Linux finds
/// them dirty and leaves them in RAM this time).
pub fn free_then_pageout(_ram: usize) -> Outcome {
    let a = sys::mmap_anon(PAGES * PAGE).map_err(why("mmap"))?;
    fill(a, 0, PAGES, 11);
    sys::madvise(a, PAGES * PAGE, sys::MADV_FREE).map_err(why("MADV_FREE"))?;
    fill(a, 0, REWRITTEN - COPIED, 12);
    copy_in_by_read(a, REWRITTEN - COPIED, COPIED, 12)?;
    let (lazy, out) = (vmstat("pglazyfreed")?, vmstat("pswpout")?);
    sys::madvise(a, PAGES * PAGE, MADV_PAGEOUT).map_err(why("MADV_PAGEOUT"))?;
    let lazy = vmstat("pglazyfreed")? - lazy;
    let out = vmstat("pswpout")? - out;
    let dropped = (PAGES - REWRITTEN) as u64;
    ensure!(lazy >= dropped, "pglazyfreed +{lazy}, want +{dropped}")?;
    ensure!(
        out <= REWRITTEN as u64,
        "pswpout +{out}: more than the {REWRITTEN} pages written since"
    )?;
    let r = resident(a + REWRITTEN * PAGE, PAGES - REWRITTEN)?;
    ensure!(r == 0, "{r} dropped pages still resident")?;
    check(a, 0, REWRITTEN, 12, "the pages written after MADV_FREE")?;
    zeros(a, REWRITTEN, PAGES)?;
    sys::munmap(a, PAGES * PAGE).map_err(why("munmap"))?;
    Ok(())
}

/// MADV_PAGEOUT writes the pages to swap before it returns (pswpout), and
/// a fault reads each back.
pub fn pageout(_ram: usize) -> Outcome {
    let linux = sys::minherit(0, 0, 0) == Err(sys::ENOSYS);
    let a = sys::mmap_anon(PAGES * PAGE).map_err(why("mmap"))?;
    fill(a, 0, PAGES, 13);
    let out = vmstat("pswpout")?;
    sys::madvise(a, PAGES * PAGE, MADV_PAGEOUT).map_err(why("MADV_PAGEOUT"))?;
    let out = vmstat("pswpout")? - out;
    ensure!(out >= PAGES as u64, "pswpout +{out}, want +{PAGES}")?;
    // Linux's mincore counts a page still in its swap cache (it stays
    // there, written, until reclaim needs the frame) as resident; pageos
    // frees the frame once the write is done.
    let r = resident(a, PAGES)?;
    ensure!(
        linux || r == 0,
        "{r} of {PAGES} pages resident after MADV_PAGEOUT"
    )?;
    let major = vmstat("pgmajfault")?;
    check(a, 0, PAGES, 13, "after MADV_PAGEOUT")?;
    let major = vmstat("pgmajfault")? - major;
    ensure!(
        linux || major > 0,
        "no major fault reading swapped pages back"
    )?;
    sys::munmap(a, PAGES * PAGE).map_err(why("munmap"))?;
    Ok(())
}

/// After MADV_PAGEOUT, MADV_WILLNEED reads the pages back: mincore shows
/// them resident (Linux reads them into its swap cache in the background:
/// a little wait), and touching them takes no major fault.
pub fn willneed(_ram: usize) -> Outcome {
    let a = sys::mmap_anon(PAGES * PAGE).map_err(why("mmap"))?;
    fill(a, 0, PAGES, 14);
    sys::madvise(a, PAGES * PAGE, MADV_PAGEOUT).map_err(why("MADV_PAGEOUT"))?;
    sys::madvise(a, PAGES * PAGE, sys::MADV_WILLNEED).map_err(why("MADV_WILLNEED"))?;
    let mut r = resident(a, PAGES)?;
    for _ in 0..10_000 {
        if r == PAGES {
            break;
        }
        sys::sched_yield();
        r = resident(a, PAGES)?;
    }
    ensure!(
        r == PAGES,
        "{r} of {PAGES} pages resident after MADV_WILLNEED"
    )?;
    let major = vmstat("pgmajfault")?;
    check(a, 0, PAGES, 14, "after MADV_WILLNEED")?;
    let major = vmstat("pgmajfault")? - major;
    ensure!(major == 0, "{major} major faults after MADV_WILLNEED")?;
    sys::munmap(a, PAGES * PAGE).map_err(why("munmap"))?;
    Ok(())
}

/// The kernel writes `seed`'s pattern over pages [first, first + pages)
/// at `a`: each page goes through a pipe and read() copies it there.
fn copy_in_by_read(a: usize, first: usize, pages: usize, seed: u64) -> Outcome {
    let (r, w) = pipe()?;
    let buf = sys::mmap_anon(PAGE).map_err(why("mmap buffer"))?;
    let result = (|| {
        for page in first..first + pages {
            fill(buf - page * PAGE, page, 1, seed);
            // SAFETY: the buffer is one mapped page.
            let bytes = unsafe { core::slice::from_raw_parts(buf as *const u8, PAGE) };
            let n = sys::write(w, bytes).map_err(why("write the pipe"))?;
            ensure!(n == PAGE, "wrote {n} bytes into the pipe")?;
            // SAFETY: the caller mapped these pages writable.
            let into =
                unsafe { core::slice::from_raw_parts_mut((a + page * PAGE) as *mut u8, PAGE) };
            let n = sys::read(r, into).map_err(why("read the pipe"))?;
            ensure!(n == PAGE, "read {n} bytes from the pipe")?;
        }
        Ok(())
    })();
    let _ = sys::munmap(buf, PAGE);
    for fd in [r, w] {
        let _ = sys::close(fd as usize);
    }
    result
}

/// A transparent 2 MiB page (pageos's default policy; Linux turns them off
/// below 512 MiB of RAM, so there the same pages are 4 KiB ones): MADV_FREE
/// of its first three quarters splits it (thp_split_pmd), MADV_PAGEOUT of
/// all of it drops those and writes the last quarter, and each reads back
/// as it should.
pub fn huge_page(_ram: usize) -> Outcome {
    const BLOCK: usize = 512;
    const FREED: usize = 3 * BLOCK / 4;
    let linux = sys::minherit(0, 0, 0) == Err(sys::ENOSYS);
    let m = sys::mmap_anon(2 * BLOCK * PAGE).map_err(why("mmap 4 MiB"))?;
    let a = (m + BLOCK * PAGE - 1) & !(BLOCK * PAGE - 1);
    let huge = rt::test::proc_number("/proc/meminfo\0", "AnonHugePages")?;
    fill(a, 0, BLOCK, 16);
    let grew = rt::test::proc_number("/proc/meminfo\0", "AnonHugePages")? - huge;
    ensure!(
        linux || grew >= 2048,
        "AnonHugePages +{grew} kB: no 2 MiB page"
    )?;
    let split = vmstat("thp_split_pmd")?;
    sys::madvise(a, FREED * PAGE, sys::MADV_FREE).map_err(why("MADV_FREE"))?;
    let split = vmstat("thp_split_pmd")? - split;
    ensure!(linux || split == 1, "thp_split_pmd +{split}, want +1")?;
    let (lazy, out) = (vmstat("pglazyfreed")?, vmstat("pswpout")?);
    sys::madvise(a, BLOCK * PAGE, MADV_PAGEOUT).map_err(why("MADV_PAGEOUT"))?;
    let lazy = vmstat("pglazyfreed")? - lazy;
    let out = vmstat("pswpout")? - out;
    ensure!(lazy >= FREED as u64, "pglazyfreed +{lazy}, want +{FREED}")?;
    let kept = (BLOCK - FREED) as u64;
    ensure!(out >= kept, "pswpout +{out}, want +{kept}")?;
    zeros(a, 0, FREED)?;
    check(a, FREED, BLOCK - FREED, 16, "the 2 MiB page's last quarter")?;
    sys::munmap(m, 2 * BLOCK * PAGE).map_err(why("munmap"))?;
    Ok(())
}

/// MADV_FREE of a quarter of RAM, then three quarters of RAM of other
/// memory written: reclaim takes the freed pages first (their accessed bits were
/// cleared, and they go without a write), pglazyfreed counts them, each
/// reads back either as it was or as zeros, and the sweep reads back.
pub fn under_pressure(ram: usize) -> Outcome {
    let freed = ram / 4 / PAGE;
    let a = sys::mmap_anon(freed * PAGE).map_err(why("mmap RAM / 4"))?;
    fill(a, 0, freed, 17);
    sys::madvise(a, freed * PAGE, sys::MADV_FREE).map_err(why("MADV_FREE"))?;
    let lazy = vmstat("pglazyfreed")?;
    let pages = 3 * ram / 4 / PAGE;
    let b = sys::mmap_anon(pages * PAGE).map_err(why("mmap 3/4 RAM"))?;
    fill(b, 0, pages, 18);
    let lazy = vmstat("pglazyfreed")? - lazy;
    ensure!(lazy > 0, "no MADV_FREE'd page dropped under pressure")?;
    check(b, 0, pages, 18, "the sweep")?;
    for page in 0..freed {
        // SAFETY: mapped readable above.
        let first = unsafe { ((a + page * PAGE) as *const u64).read_volatile() };
        if first == 0 {
            zeros(a, page, page + 1)?;
        } else {
            check(a, page, 1, 17, "a MADV_FREE'd page kept")?;
        }
    }
    sys::munmap(b, pages * PAGE).map_err(why("munmap"))?;
    sys::munmap(a, freed * PAGE).map_err(why("munmap"))?;
    Ok(())
}

/// A sparse range, one page written in each of 64 2 MiB regions (64
/// level-1 tables, 256 kB of PageTables): half of it MADV_PAGEOUT'd to
/// swap keeps its tables (the swap PTEs live in them, on both kernels);
/// the other half MADV_FREE'd and MADV_PAGEOUT'd loses its pages without a
/// write, and on pageos its tables with them (pgtable_reclaimed; Linux 6.1
/// keeps empty tables until munmap). MADV_DONTNEED of the swapped half
/// then gives back its slots, and on pageos its tables too.
pub fn sparse_tables(_ram: usize) -> Outcome {
    const REGIONS: usize = 64;
    const REGION: usize = 512 * PAGE;
    const HALF: usize = REGIONS / 2 * REGION;
    const MADV_NOHUGEPAGE: usize = 15;
    let linux = sys::minherit(0, 0, 0) == Err(sys::ENOSYS);
    let tables = || rt::test::proc_number("/proc/meminfo\0", "PageTables");
    let flags = sys::ANON | sys::MAP_NORESERVE;
    let m = sys::mmap(0, (REGIONS + 1) * REGION, sys::RW, flags, -1, 0).map_err(why("mmap"))?;
    let a = (m + REGION - 1) & !(REGION - 1);
    // One 4 KiB page in each region, not a 2 MiB one.
    sys::madvise(a, REGIONS * REGION, MADV_NOHUGEPAGE).map_err(why("MADV_NOHUGEPAGE"))?;
    let before = tables()?;
    for region in 0..REGIONS {
        fill(a + region * REGION, 0, 1, 19 + region as u64);
    }
    let touched = tables()?;
    let want = (REGIONS * 4) as u64;
    // Linux keeps PageTables per CPU and folds each CPU's count into the
    // total in steps (its vmstat threshold: 4 pages on a 128 MiB machine
    // with one CPU, mm/vmstat.c calculate_normal_threshold), so its
    // /proc/meminfo may lag the tables made by up to that much; pageos's
    // figure is exact.
    let lag = if linux { 16 } else { 0 };
    ensure!(
        touched + lag >= before + want,
        "PageTables {before} kB -> {touched} kB after {REGIONS} sparse pages, want +{want}"
    )?;
    let out = vmstat("pswpout")?;
    sys::madvise(a, HALF, MADV_PAGEOUT).map_err(why("MADV_PAGEOUT"))?;
    let out = vmstat("pswpout")? - out;
    ensure!(
        out >= (REGIONS / 2) as u64,
        "pswpout +{out}, want +{}",
        REGIONS / 2
    )?;
    let swapped = tables()?;
    ensure!(
        swapped + 8 >= touched,
        "PageTables {touched} kB -> {swapped} kB: tables holding swap PTEs went"
    )?;
    let reclaimed = if linux {
        0
    } else {
        vmstat("pgtable_reclaimed")?
    };
    sys::madvise(a + HALF, HALF, sys::MADV_FREE).map_err(why("MADV_FREE"))?;
    sys::madvise(a + HALF, HALF, MADV_PAGEOUT).map_err(why("MADV_PAGEOUT"))?;
    let dropped = tables()?;
    let gone = (REGIONS / 2) as u64;
    if !linux {
        let reclaimed = vmstat("pgtable_reclaimed")? - reclaimed;
        ensure!(
            reclaimed >= gone,
            "pgtable_reclaimed +{reclaimed}, want +{gone}"
        )?;
        ensure!(
            dropped + gone * 4 <= swapped,
            "PageTables {swapped} kB -> {dropped} kB after the free half's pages went"
        )?;
    }
    sys::madvise(a, HALF, sys::MADV_DONTNEED).map_err(why("MADV_DONTNEED"))?;
    let cleared = tables()?;
    ensure!(
        linux || cleared <= before + 8,
        "PageTables {before} kB before, {cleared} kB once every page went"
    )?;
    println!(
        "pressuretest: PageTables {before} kB, {touched} kB touched, {swapped} kB half swapped, \
         {dropped} kB half dropped, {cleared} kB all gone"
    );
    zeros(a, 0, 1)?;
    zeros(a + HALF, 0, 1)?;
    sys::munmap(m, (REGIONS + 1) * REGION).map_err(why("munmap"))?;
    Ok(())
}

/// Every word of pages [first, last) at `a` reads zero.
fn zeros(a: usize, first: usize, last: usize) -> Outcome {
    for page in first..last {
        for w in 0..PAGE / 8 {
            // SAFETY: the caller mapped these pages readable.
            let got = unsafe { ((a + page * PAGE) as *const u64).add(w).read_volatile() };
            if got != 0 {
                fail!("page {page} word {w} reads {got:#x} after MADV_FREE")?;
            }
        }
    }
    Ok(())
}
