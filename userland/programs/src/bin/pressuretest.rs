//! `pressuretest [CASE...]`: memory pressure as a program sees it, on a
//! small machine with swap (`--memory 64M --swap 512M` on pageos; the same
//! binary is /init of Linux with a swap disk of the same size,
//! `scripts/linux-run.py --memory 64M --swap 512M pressuretest`, where it
//! first enables /dev/vda with swapon(2)). docs/src/pressure.md.
//!
//! Every case sizes itself from MemTotal, runs in a child process (a case
//! the kernel cannot serve ends with that child killed, not the suite), and
//! checks every byte it wrote: each 8-byte word holds a value computed from
//! its page, its place in the page and the case's seed. After each case
//! the swap slots in use (SwapTotal - SwapFree) are back where they were,
//! and on pageos the frames too (rt::test::Suite).
//!
//! `pressuretest sysctl MODE RATIO` only checks that /proc/sys/vm shows the
//! overcommit mode and ratio given on the kernel command line.
#![no_std]
#![no_main]

use rt::sys::{self, ANON, ENOMEM, MAP_ANONYMOUS, MAP_SHARED, PROT_READ, RW};
use rt::test::{Outcome, Suite, Why, proc_number, why};
use rt::{Args, ensure, fail, println};

rt::main!(main);

// A crate root's modules sit next to it, not in a directory of its name.
#[path = "pressuretest/madvise.rs"]
mod madvise;

const PAGE: usize = 4096;
/// A case, given the size of RAM in bytes.
type Case = fn(usize) -> Outcome;
const WORDS: usize = PAGE / 8;
const SWAPON: usize = 167;
const PIPE: usize = 22;
const MOUNT: usize = 165;
const UMOUNT2: usize = 166;
const MLOCKALL: usize = 151;
const MCL_CURRENT: usize = 1;
const MCL_FUTURE: usize = 2;
const MLOCK_LIMIT: usize = 2 << 20;

fn main(args: Args) -> i32 {
    let mut s = Suite::new("pressuretest");
    if args.get(1) == "sysctl" {
        s.both("boot_sysctls_set_the_overcommit_mode", || {
            let mode = sysctl("overcommit_memory")?.0;
            let ratio = sysctl("overcommit_ratio")?.0;
            let want = (args.get(2).parse().ok(), args.get(3).parse().ok());
            ensure!(
                (Some(mode), Some(ratio)) == want,
                "overcommit_memory {mode}, overcommit_ratio {ratio}"
            )
        });
        return s.finish();
    }
    if s.linux && kb("SwapTotal") == 0 {
        let path = b"/dev/vda\0";
        if let Err(e) = sys::raw(SWAPON, [path.as_ptr() as usize, 0, 0, 0, 0, 0]) {
            println!("pressuretest: swapon /dev/vda: errno {}", e.0);
        }
    }
    // The suite's own pages stay in RAM, so that the slots and frames in
    // use before and after a case are the case's alone (locks are not
    // inherited: the cases' children page freely).
    if let Err(e) = sys::raw(MLOCKALL, [MCL_CURRENT | MCL_FUTURE, 0, 0, 0, 0, 0]) {
        println!("pressuretest: mlockall: errno {}", e.0);
    }
    let ram = kb("MemTotal") as usize * 1024;
    println!(
        "pressuretest: MemTotal {} kB, SwapTotal {} kB",
        ram / 1024,
        kb("SwapTotal")
    );
    let wanted = |name: &str| args.len() == 1 || (1..args.len()).any(|i| args.get(i) == name);
    let cases: [(&str, Case); 15] = [
        ("overcommit_modes_as_linux", overcommit_modes),
        ("anonymous_twice_ram_reads_back_twice", anonymous_twice_ram),
        (
            "pages_only_read_go_again_without_a_write",
            read_pages_go_clean,
        ),
        (
            "slowly_growing_memory_is_reclaimed_by_the_page_out_thread",
            slow_growth,
        ),
        ("fork_cow_under_pressure_keeps_each_side", fork_cow),
        (
            "shared_anonymous_written_by_child_read_by_parent",
            shared_anonymous,
        ),
        ("tmpfs_file_larger_than_ram_reads_back_mapped", tmpfs_file),
        ("mlocked_pages_stay_resident", mlocked),
        ("oom_kills_the_hog_and_spares_its_sibling", oom_hog),
        (
            "madvise_free_pages_go_without_a_write",
            madvise::free_then_pageout,
        ),
        ("madvise_pageout_writes_pages_to_swap_now", madvise::pageout),
        (
            "madvise_willneed_reads_swapped_pages_back",
            madvise::willneed,
        ),
        ("madvise_on_a_2mib_page_splits_it_first", madvise::huge_page),
        (
            "madvise_free_pages_go_first_under_pressure",
            madvise::under_pressure,
        ),
        ("page_tables_of_dropped_pages_go", madvise::sparse_tables),
    ];
    let linux = s.linux;
    for (name, case) in cases {
        if wanted(name) {
            s.both(name, || slots_back(linux, || in_child(|| case(ram))));
        }
    }
    s.finish()
}

/// A field of /proc/meminfo in kB (0 if it cannot be read).
fn kb(name: &str) -> u64 {
    proc_number("/proc/meminfo\0", name).unwrap_or(0)
}

/// A counter of /proc/vmstat (longer than rt::test::proc_number reads).
fn vmstat(name: &str) -> Result<u64, Why> {
    let mut buf = [0u8; 16384];
    let fd = sys::open("/proc/vmstat\0", 0).map_err(why("open /proc/vmstat"))?;
    let mut len = 0;
    while let Ok(n @ 1..) = sys::read(fd as i32, &mut buf[len..]) {
        len += n;
    }
    let _ = sys::close(fd);
    let text = core::str::from_utf8(&buf[..len]).unwrap_or("");
    let value = text.lines().find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    });
    match value {
        Some(v) => Ok(v),
        None => fail!("no {name} in /proc/vmstat"),
    }
}

/// Swap slots in use, in kB.
fn swap_used() -> u64 {
    kb("SwapTotal") - kb("SwapFree")
}

/// Run `case`, then check the swap slots in use are back where they were.
/// Linux gives a slot back lazily when the page is still in its swap cache
/// (locked or under writeback as its last mapper exits: reclaim frees it
/// later), so there up to 1 MiB may come and go between cases; pageos's
/// count is exact.
fn slots_back(linux: bool, case: impl FnOnce() -> Outcome) -> Outcome {
    let slack = if linux { 1024 } else { 0 };
    let before = swap_used();
    case()?;
    let after = swap_used();
    ensure!(
        after.abs_diff(before) <= slack,
        "swap in use: {before} kB before the case, {after} kB after (SwapCached {} kB)",
        kb("SwapCached")
    )
}

/// Run `body` in a child: Ok when it exits 0; its reason is printed there.
fn in_child(body: impl FnOnce() -> Outcome) -> Outcome {
    match sys::fork().map_err(why("fork"))? {
        0 => sys::exit(match body() {
            Ok(()) => 0,
            Err(w) => {
                println!("pressuretest: {}", w.as_str());
                1
            }
        }),
        pid => {
            let status = wait(pid)?;
            if let Some(signal) = sys::killed_by(status) {
                fail!("the case's process was killed by signal {signal}")
            } else {
                ensure!(sys::exited(status) == Some(0), "the case failed (above)")
            }
        }
    }
}

fn wait(pid: usize) -> Result<i32, Why> {
    let mut status = 0;
    sys::wait4(pid as isize, &mut status, 0).map_err(why("wait4"))?;
    Ok(status)
}

/// The value of word `word` of page `page` for `seed`.
fn pattern(seed: u64, page: usize, word: usize) -> u64 {
    let x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((page as u64) << 12 | word as u64);
    x.wrapping_mul(0xbf58_476d_1ce4_e5b9) | 1
}

/// Write `seed`'s pattern over pages [first, first + pages) at `addr`.
fn fill(addr: usize, first: usize, pages: usize, seed: u64) {
    for page in first..first + pages {
        let words = (addr + page * PAGE) as *mut u64;
        for w in 0..WORDS {
            // SAFETY: the caller mapped these pages writable.
            unsafe { words.add(w).write_volatile(pattern(seed, page, w)) };
        }
    }
}

/// Check `seed`'s pattern over pages [first, first + pages) at `addr`.
fn check(addr: usize, first: usize, pages: usize, seed: u64, what: &str) -> Outcome {
    for page in first..first + pages {
        let words = (addr + page * PAGE) as *const u64;
        for w in 0..WORDS {
            // SAFETY: the caller mapped these pages readable.
            let got = unsafe { words.add(w).read_volatile() };
            if got != pattern(seed, page, w) {
                fail!("{what}: page {page} word {w} reads {got:#x}")?;
            }
        }
    }
    Ok(())
}

fn anonymous_twice_ram(ram: usize) -> Outcome {
    let pages = 2 * ram / PAGE;
    let a = sys::mmap(0, pages * PAGE, RW, ANON, -1, 0).map_err(why("mmap 2x RAM"))?;
    fill(a, 0, pages, 1);
    check(a, 0, pages, 1, "first pass")?;
    check(a, 0, pages, 1, "second pass")?;
    sys::munmap(a, pages * PAGE).map_err(why("munmap"))?;
    Ok(())
}

/// Twice RAM written once and pushed out whole (MADV_PAGEOUT: no page is
/// left that was written and not paged out since), then read twice: in
/// both read passes the pages that make room for the next ones are clean
/// copies of their slots and go without a write (the swap cache keeps a
/// page read back with its slot: Linux's do_swap_page,
/// docs/src/pressure.md). pswpout may grow by a few pages (the kernel's,
/// another process's), not by the RAM's worth of pages each pass sends
/// out.
fn read_pages_go_clean(ram: usize) -> Outcome {
    const MADV_PAGEOUT: usize = 21;
    let pages = 2 * ram / PAGE;
    let a = sys::mmap(0, pages * PAGE, RW, ANON, -1, 0).map_err(why("mmap 2x RAM"))?;
    fill(a, 0, pages, 7);
    sys::madvise(a, pages * PAGE, MADV_PAGEOUT).map_err(why("MADV_PAGEOUT"))?;
    let (before, back_before) = (vmstat("pswpout")?, vmstat("pswpin")?);
    check(a, 0, pages, 7, "first read pass")?;
    let (first, back_first) = (vmstat("pswpout")?, vmstat("pswpin")?);
    check(a, 0, pages, 7, "second read pass")?;
    let (second, back_second) = (vmstat("pswpout")?, vmstat("pswpin")?);
    sys::munmap(a, pages * PAGE).map_err(why("munmap"))?;
    let (out1, out2) = (first - before, second - first);
    let (in1, in2) = (back_first - back_before, back_second - back_first);
    println!(
        "pressuretest: {pages} pages written and paged out, then read twice: pswpout +{out1} and \
         +{out2}, pswpin +{in1} and +{in2}"
    );
    // The second pass reads back what did not fit in RAM: it did page out.
    ensure!(
        in2 >= (pages - ram / PAGE) as u64 / 2,
        "the second read pass read only {in2} pages from swap"
    )?;
    ensure!(
        out1 + out2 <= pages as u64 / 64,
        "the read passes wrote {out1} and {out2} pages to swap (at most {} in all): \
         pages only read were written again",
        pages / 64
    )
}

/// 1.25 x RAM of private memory written 64 pages at a time with a 1 ms
/// sleep after each: free memory crosses the low watermark slowly, and the
/// page-out thread (Linux's kswapd, pageos's page-out daemon) has the CPU
/// between two steps to reclaim ahead of the program. It must have done
/// some of the work (pgscan_kswapd, pgsteal_kswapd); every word reads back.
fn slow_growth(ram: usize) -> Outcome {
    const STEP: usize = 64;
    let pages = 5 * ram / 4 / PAGE;
    let a = sys::mmap(0, pages * PAGE, RW, ANON, -1, 0).map_err(why("mmap 1.25x RAM"))?;
    let counts = || -> Result<[u64; 4], Why> {
        Ok([
            vmstat("pgscan_kswapd")?,
            vmstat("pgsteal_kswapd")?,
            vmstat("pgscan_direct")?,
            vmstat("pgsteal_direct")?,
        ])
    };
    let before = counts()?;
    for first in (0..pages).step_by(STEP) {
        fill(a, first, STEP.min(pages - first), 6);
        nanosleep_ms(1)?;
    }
    let after = counts()?;
    let [scan_k, steal_k, scan_d, steal_d] = [0, 1, 2, 3].map(|i| after[i] - before[i]);
    println!(
        "pressuretest: {pages} pages written slowly: pgscan_kswapd +{scan_k}, pgsteal_kswapd +{steal_k}, \
         pgscan_direct +{scan_d}, pgsteal_direct +{steal_d}"
    );
    ensure!(
        scan_k > 0 && steal_k > 0,
        "the page-out thread did nothing (pgscan_kswapd +{scan_k}, pgsteal_kswapd +{steal_k})"
    )?;
    check(a, 0, pages, 6, "written slowly")?;
    sys::munmap(a, pages * PAGE).map_err(why("munmap"))?;
    Ok(())
}

/// Sleep `ms` milliseconds (nanosleep).
fn nanosleep_ms(ms: u64) -> Outcome {
    const NANOSLEEP: usize = 35;
    let request = [0i64, (ms * 1_000_000) as i64];
    sys::raw(NANOSLEEP, [request.as_ptr() as usize, 0, 0, 0, 0, 0]).map_err(why("nanosleep"))?;
    Ok(())
}

/// RAM's worth of private memory, written, then forked: the child rewrites
/// all of it while the parent rewrites its second half, so the copies need
/// twice RAM. Each side must see only its own writes.
fn fork_cow(ram: usize) -> Outcome {
    let pages = ram / PAGE;
    let half = pages / 2;
    let a = sys::mmap(0, pages * PAGE, RW, ANON, -1, 0).map_err(why("mmap RAM"))?;
    fill(a, 0, pages, 3);
    let pid = sys::fork().map_err(why("fork"))?;
    if pid == 0 {
        let ok = check(a, 0, pages, 3, "child before writing").is_ok() && {
            fill(a, 0, pages, 4);
            check(a, 0, pages, 4, "child after writing").is_ok()
        };
        sys::exit(if ok { 0 } else { 1 });
    }
    fill(a, half, pages - half, 5);
    let status = wait(pid)?;
    check(a, 0, half, 3, "parent's untouched half")?;
    check(a, half, pages - half, 5, "parent's written half")?;
    sys::munmap(a, pages * PAGE).map_err(why("munmap"))?;
    ensure!(
        sys::exited(status) == Some(0),
        "the child's view was wrong (wait status {status:#x})"
    )
}

fn shared_anonymous(ram: usize) -> Outcome {
    let pages = 3 * ram / 2 / PAGE;
    let flags = MAP_SHARED | MAP_ANONYMOUS;
    let a = sys::mmap(0, pages * PAGE, RW, flags, -1, 0).map_err(why("mmap 1.5x RAM shared"))?;
    let (out, back) = (vmstat("pswpout")?, vmstat("pswpin")?);
    let pid = sys::fork().map_err(why("fork"))?;
    if pid == 0 {
        fill(a, 0, pages, 6);
        sys::exit(0);
    }
    let status = wait(pid)?;
    ensure!(sys::exited(status) == Some(0), "child: {status:#x}")?;
    check(a, 0, pages, 6, "the parent's view")?;
    sys::munmap(a, pages * PAGE).map_err(why("munmap"))?;
    went_and_came_back(out, back, pages - ram / PAGE)
}

/// What did not fit in RAM (`excess` pages) went to swap and came back:
/// pswpout and pswpin grew by half of it at least since `out` and `back`
/// (the case's own pages; the rest of RAM held the kernel and others).
fn went_and_came_back(out: u64, back: u64, excess: usize) -> Outcome {
    let out = vmstat("pswpout")? - out;
    let back = vmstat("pswpin")? - back;
    println!("pressuretest: {excess} pages past RAM; pswpout +{out}, pswpin +{back}");
    let half = excess as u64 / 2;
    ensure!(
        out >= half && back >= half,
        "pswpout +{out}, pswpin +{back}: fewer than half of the {excess} pages past RAM"
    )
}

/// A tmpfs file of 1.25 x RAM written with write(), read back through a
/// shared mapping. (Linux's tmpfs holds half of RAM unless told: size=.)
fn tmpfs_file(ram: usize) -> Outcome {
    let pages = 5 * ram / 4 / PAGE;
    let _ = sys::mkdir("/pressure\0", 0o755);
    let mut data = [0u8; 32];
    let mut text = Text(&mut data, 0);
    let _ = core::fmt::write(&mut text, format_args!("size={}k\0", 2 * pages * 4));
    let mounted = sys::raw(
        MOUNT,
        [
            c"tmpfs".as_ptr() as usize,
            c"/pressure".as_ptr() as usize,
            c"tmpfs".as_ptr() as usize,
            0,
            data.as_ptr() as usize,
            0,
        ],
    );
    mounted.map_err(why("mount tmpfs"))?;
    let (out, back) = (vmstat("pswpout")?, vmstat("pswpin")?);
    let result = write_and_map("/pressure/big\0", pages)
        .and_then(|()| went_and_came_back(out, back, pages - ram / PAGE));
    let _ = sys::unlink("/pressure/big\0");
    sys::raw(UMOUNT2, [c"/pressure".as_ptr() as usize, 0, 0, 0, 0, 0]).map_err(why("umount"))?;
    result
}

fn write_and_map(path: &str, pages: usize) -> Outcome {
    let fd = sys::open_mode(path, sys::O_CREAT | sys::O_RDWR | sys::O_TRUNC, 0o644)
        .map_err(why("create"))?;
    const CHUNK: usize = 16;
    let buf = sys::mmap_anon(CHUNK * PAGE).map_err(why("mmap buffer"))?;
    for first in (0..pages).step_by(CHUNK) {
        let n = CHUNK.min(pages - first);
        // The buffer's page i carries the pattern of file page first + i.
        for i in 0..n {
            fill(buf - (first * PAGE), first + i, 1, 7);
        }
        // SAFETY: the buffer is mapped, n pages long at most.
        let bytes = unsafe { core::slice::from_raw_parts(buf as *const u8, n * PAGE) };
        let written = sys::write(fd as i32, bytes).map_err(why("write"))?;
        ensure!(
            written == n * PAGE,
            "write: {written} of {} bytes",
            n * PAGE
        )?;
    }
    sys::munmap(buf, CHUNK * PAGE).map_err(why("munmap buffer"))?;
    let a = sys::mmap(0, pages * PAGE, PROT_READ, MAP_SHARED, fd as i32, 0)
        .map_err(why("mmap the file"))?;
    let checked = check(a, 0, pages, 7, "the mapped file");
    sys::munmap(a, pages * PAGE).map_err(why("munmap"))?;
    let _ = sys::close(fd);
    checked
}

/// 2 MiB locked, then 1.5 x RAM of other memory swept: every locked page
/// stays resident (mincore) after every 4 MiB of the sweep, and reads back.
fn mlocked(ram: usize) -> Outcome {
    let locked = MLOCK_LIMIT / PAGE;
    let l = sys::mmap(0, locked * PAGE, RW, ANON, -1, 0).map_err(why("mmap"))?;
    fill(l, 0, locked, 8);
    sys::mlock(l, locked * PAGE).map_err(why("mlock"))?;
    let pages = 3 * ram / 2 / PAGE;
    let a = sys::mmap(0, pages * PAGE, RW, ANON, -1, 0).map_err(why("mmap the sweep"))?;
    let step = (4 << 20) / PAGE;
    for first in (0..pages).step_by(step) {
        fill(a, first, step.min(pages - first), 9);
        let r = rt::test::resident(l, locked)?;
        ensure!(
            r == locked,
            "{r} of {locked} locked pages resident after {first} pages"
        )?;
    }
    check(l, 0, locked, 8, "the locked pages")?;
    check(a, 0, pages, 9, "the sweep")?;
    sys::munmap(a, pages * PAGE).map_err(why("munmap"))?;
    sys::munlock(l, locked * PAGE).map_err(why("munlock"))?;
    sys::munmap(l, locked * PAGE).map_err(why("munmap"))?;
    Ok(())
}

/// A sibling holding 8 MiB and a hog that touches memory until RAM and
/// swap are gone: the kernel kills the hog (the largest), the sibling's
/// every byte survives, and /proc/vmstat's oom_kill counts one kill.
fn oom_hog(_ram: usize) -> Outcome {
    let kills = vmstat("oom_kill")?;
    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let sibling = sys::fork().map_err(why("fork"))?;
    if sibling == 0 {
        let pages = (8 << 20) / PAGE;
        let Ok(a) = sys::mmap(0, pages * PAGE, RW, ANON, -1, 0) else {
            sys::exit(2);
        };
        fill(a, 0, pages, 10);
        let _ = sys::write(ready_w, b"r");
        let mut byte = [0u8];
        let _ = sys::read(go_r, &mut byte);
        sys::exit(i32::from(check(a, 0, pages, 10, "sibling").is_err()));
    }
    let mut byte = [0u8];
    sys::read(ready_r, &mut byte).map_err(why("read ready"))?;
    let hog = sys::fork().map_err(why("fork"))?;
    if hog == 0 {
        // 64 MiB at a time: each request alone fits, so mode 0 grants it.
        let chunk = 64 << 20;
        loop {
            let Ok(a) = sys::mmap(0, chunk, RW, ANON, -1, 0) else {
                sys::exit(3);
            };
            for off in (0..chunk).step_by(PAGE) {
                sys::poke(a + off, 1);
            }
        }
    }
    let hog_status = wait(hog)?;
    let _ = sys::write(go_w, b"g");
    let sibling_status = wait(sibling)?;
    for fd in [ready_r, ready_w, go_r, go_w] {
        let _ = sys::close(fd as usize);
    }
    ensure!(
        sys::killed_by(hog_status) == Some(sys::SIGKILL as i32),
        "the hog: wait status {hog_status:#x}, want SIGKILL"
    )?;
    ensure!(
        sys::exited(sibling_status) == Some(0),
        "the sibling: wait status {sibling_status:#x}, want exit 0"
    )?;
    let after = vmstat("oom_kill")?;
    ensure!(after == kills + 1, "oom_kill {kills} -> {after}")
}

/// Linux's commit accounting, mode by mode (vm.overcommit_memory), and
/// CommitLimit = RAM x ratio / 100 + swap.
fn overcommit_modes(_ram: usize) -> Outcome {
    // 64 TiB: far more than any RAM + swap here, and a hole that both
    // kernels have below the program (pageos loads it at 0x5555_5555_4000).
    let huge = 64usize << 40;
    let noreserve = ANON | sys::MAP_NORESERVE;
    let limit_pages = |ratio: u64| kb("MemTotal") / 4 * ratio / 100 + kb("SwapTotal") / 4;
    let ratio = sysctl("overcommit_ratio")?.0;
    ensure!(
        kb("CommitLimit") == limit_pages(ratio) * 4,
        "CommitLimit {} kB with ratio {ratio}",
        kb("CommitLimit")
    )?;
    let old_mode = sysctl("overcommit_memory")?.0;
    let result = (|| {
        // Mode 0: a promise larger than RAM + swap is refused, address
        // space without a promise is not.
        set_sysctl("overcommit_memory", 0)?;
        map_unmap(huge, noreserve).map_err(why("mode 0: 64 TiB MAP_NORESERVE"))?;
        expect_enomem(map_unmap(huge, ANON), "mode 0: 64 TiB")?;
        let within = (kb("MemTotal") + kb("SwapTotal")) as usize * 1024 / 2;
        map_unmap(within, ANON).map_err(why("mode 0: (RAM + swap) / 2"))?;
        // Mode 1: everything is granted, and still counted.
        set_sysctl("overcommit_memory", 1)?;
        let before = kb("Committed_AS");
        let a = sys::mmap(0, huge, RW, ANON, -1, 0).map_err(why("mode 1: 64 TiB"))?;
        let during = kb("Committed_AS");
        sys::munmap(a, huge).map_err(why("munmap"))?;
        ensure!(
            during >= before + (huge / 1024) as u64,
            "mode 1: Committed_AS {before} -> {during} kB"
        )?;
        // Mode 2: nothing past CommitLimit, MAP_NORESERVE included.
        set_sysctl("overcommit_memory", 2)?;
        let room = (kb("CommitLimit").saturating_sub(kb("Committed_AS"))) as usize * 1024;
        expect_enomem(map_unmap(room + (16 << 20), ANON), "mode 2: past the limit")?;
        expect_enomem(
            map_unmap(room + (16 << 20), noreserve),
            "mode 2: MAP_NORESERVE past the limit",
        )?;
        map_unmap((room / 2) & !(PAGE - 1), ANON).map_err(why("mode 2: half the room"))?;
        // The ratio moves the limit.
        set_sysctl("overcommit_ratio", 80)?;
        let moved = kb("CommitLimit");
        set_sysctl("overcommit_ratio", ratio)?;
        ensure!(
            moved == limit_pages(80) * 4,
            "ratio 80: CommitLimit {moved} kB"
        )?;
        let bad = write_file("/proc/sys/vm/overcommit_memory\0", b"3\n");
        ensure!(bad == Err(sys::EINVAL), "overcommit_memory=3: {bad:?}")
    })();
    set_sysctl("overcommit_memory", old_mode)?;
    result
}

fn map_unmap(len: usize, flags: usize) -> sys::Result<usize> {
    let a = sys::mmap(0, len, RW, flags, -1, 0)?;
    sys::munmap(a, len)
}

fn expect_enomem(got: sys::Result<usize>, what: &str) -> Outcome {
    ensure!(got == Err(ENOMEM), "{what}: {got:?}, want ENOMEM")
}

/// A number in /proc/sys/vm.
struct Number(u64);

fn sysctl(name: &str) -> Result<Number, Why> {
    let mut path = [0u8; 64];
    let mut t = Text(&mut path, 0);
    let _ = core::fmt::write(&mut t, format_args!("/proc/sys/vm/{name}\0"));
    let len = t.1;
    let path = core::str::from_utf8(&path[..len]).unwrap_or("");
    let fd = sys::open(path, 0).map_err(why("open sysctl"))?;
    let mut buf = [0u8; 32];
    let n = sys::read(fd as i32, &mut buf).map_err(why("read sysctl"));
    let _ = sys::close(fd);
    let text = core::str::from_utf8(&buf[..n?]).unwrap_or("");
    match text.trim().parse() {
        Ok(v) => Ok(Number(v)),
        Err(_) => fail!("{name}: {text:?}"),
    }
}

fn set_sysctl(name: &str, value: u64) -> Outcome {
    let mut path = [0u8; 64];
    let mut t = Text(&mut path, 0);
    let _ = core::fmt::write(&mut t, format_args!("/proc/sys/vm/{name}\0"));
    let len = t.1;
    let mut data = [0u8; 24];
    let mut d = Text(&mut data, 0);
    let _ = core::fmt::write(&mut d, format_args!("{value}\n"));
    let dlen = d.1;
    let path = core::str::from_utf8(&path[..len]).unwrap_or("");
    write_file(path, &data[..dlen]).map_err(why("write sysctl"))?;
    Ok(())
}

fn write_file(path: &str, data: &[u8]) -> sys::Result<usize> {
    let fd = sys::open(path, sys::O_WRONLY)?;
    let r = sys::write(fd as i32, data);
    let _ = sys::close(fd);
    r
}

fn pipe() -> Result<(i32, i32), Why> {
    let mut fds = [0i32; 2];
    sys::raw(PIPE, [fds.as_mut_ptr() as usize, 0, 0, 0, 0, 0]).map_err(why("pipe"))?;
    Ok((fds[0], fds[1]))
}

/// Formatting into a byte buffer (no heap).
struct Text<'a>(&'a mut [u8], usize);

impl core::fmt::Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.0.len() - self.1);
        self.0[self.1..self.1 + n].copy_from_slice(&s.as_bytes()[..n]);
        self.1 += n;
        Ok(())
    }
}
