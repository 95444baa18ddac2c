//! /sbin/init: the guided tour of pageos's virtual memory, run by `make run`.
//!
//! Each step does one thing a program does with memory and prints what the
//! kernel did about it, with the numbers a user can read anywhere: the
//! fault counters of /proc/vmstat, MemFree of /proc/meminfo, mincore, the
//! VMAs of /proc/self/maps, and /proc/self/pagewalk (the page-table walk).
//! The book (docs/) explains each step; `--trace-faults` shows every fault.
//!
//! With arguments (`init A B`), init only greets and echoes them: the
//! runner's tests use that to check argv.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use rt::sys::{self, ANON, PROT_READ, RW, peek, poke};
use rt::test::{Why, proc_number, resident, why};
use rt::{Args, println};

rt::main!(main);

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;
/// madvise: no 2 MiB pages in this range (Linux's value).
const MADV_NOHUGEPAGE: usize = 15;

fn main(args: Args) -> i32 {
    println!(
        "Hello from user mode: this is pageos's init (pid {}).",
        sys::getpid()
    );
    if args.len() > 1 {
        for i in 1..args.len() {
            println!("  argv[{i}] = {}", args.get(i));
        }
        return 0;
    }
    match tour() {
        Ok(()) => {
            println!("\nEnd of the tour: every frame the steps took is free again.");
            0
        }
        Err(why) => {
            println!("\nThe tour stopped: {}", why.as_str());
            1
        }
    }
}

type Step = Result<(), Why>;

fn tour() -> Step {
    println!("A guided tour of demand paging. Each step: what the program does,");
    println!("then what the kernel did, counted.");
    // The stack keeps the pages it grows into (signal frames are deep):
    // grow it first, so that the check at the end counts only the steps.
    rt::test::grow_stack();
    // Likewise the data page of the handler's statics (.bss).
    SEGV_CODE.store(0, Ordering::SeqCst);
    SEGV_ADDR.store(0, Ordering::SeqCst);
    let free_at_start = mem_free()?;
    reserve_a_gigabyte()?;
    maps_and_munmap()?;
    a_growing_stack()?;
    a_huge_page()?;
    a_file_shared_and_private()?;
    a_caught_sigsegv()?;
    fork_and_copy_on_write()?;
    let free_at_end = mem_free()?;
    if free_at_end != free_at_start {
        return rt::fail!("MemFree {free_at_start} kB before the tour, {free_at_end} kB after");
    }
    // Last, as it pages out some of init's own memory too (its stack):
    // its frames and slots are accounted for in the step itself.
    more_memory_than_ram()
}

fn heading(n: u32, title: &str) {
    println!("\nStep {n}. {title}");
}

fn counter(name: &str) -> Result<u64, Why> {
    proc_number("/proc/vmstat\0", name)
}

fn mem_free() -> Result<u64, Why> {
    proc_number("/proc/meminfo\0", "MemFree")
}

/// Print the lines of a /proc file that contain `needle` (all if empty).
fn show(path: &str, needle: &str) -> Step {
    let fd = sys::open(path, 0).map_err(why("open"))?;
    let mut buf = [0u8; 4096];
    let n = sys::read(fd as i32, &mut buf).map_err(why("read"));
    let _ = sys::close(fd);
    let text = core::str::from_utf8(&buf[..n?]).unwrap_or("");
    for line in text.lines().filter(|l| l.contains(needle)) {
        println!("    {}", line.trim_end());
    }
    Ok(())
}

/// Show the page-table walk for `addr` (see the page-tables chapter).
fn walk(addr: usize) -> Step {
    let mut path = [0u8; 40];
    let prefix = b"/proc/self/pagewalk/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut len = prefix.len();
    for shift in (0..16).rev() {
        let digit = (addr >> (shift * 4)) & 0xf;
        path[len] = b"0123456789abcdef"[digit];
        len += 1;
    }
    let path = core::str::from_utf8(&path[..=len]).unwrap_or("");
    show(path, "")
}

fn reserve_a_gigabyte() -> Step {
    heading(1, "Reserve 1 GiB of memory.");
    let len = 1 << 30;
    let pages = len / PAGE;
    let free = mem_free()?;
    let flags = ANON | sys::MAP_NORESERVE;
    let a = sys::mmap(0, len, RW, flags, -1, 0).map_err(why("mmap"))?;
    println!("  mmap(1 GiB, read-write, private, anonymous) returned {a:#x}. The kernel");
    println!("  recorded one VMA and allocated nothing: no frame, not even a page table.");
    println!(
        "  resident pages (mincore): {} of {pages}; MemFree {free} kB before, {} kB after.",
        resident(a, pages)?,
        mem_free()?
    );

    heading(2, "Touch it: demand paging.");
    // By default a write would fill a whole 2 MiB with one page (step 5):
    // this step shows 4 KiB pages, one fault each.
    sys::madvise(a, len, MADV_NOHUGEPAGE).map_err(why("madvise"))?;
    println!("  (madvise(MADV_NOHUGEPAGE) first: 4 KiB pages here; step 5 shows the default.)");
    let (faults, fills, zero) = (
        counter("pgfault")?,
        counter("pgfault_zero_fill")?,
        counter("pgfault_zero_page")?,
    );
    let free = mem_free()?;
    for page in 0..256 {
        poke(a + page * PAGE, 1);
    }
    println!("  Writing one byte into each of the first 256 pages took");
    println!(
        "  {} page faults ({} zero-fills): each gave the page a fresh zeroed frame.",
        counter("pgfault")? - faults,
        counter("pgfault_zero_fill")? - fills,
    );
    println!(
        "  Resident now: {} pages; MemFree went down {} kB (the frames and their page tables).",
        resident(a, pages)?,
        free - mem_free()?
    );
    let free = mem_free()?;
    for page in 256..512 {
        peek(a + page * PAGE);
    }
    println!(
        "  Reading 256 other pages took {} faults, each mapping the one shared zero",
        counter("pgfault_zero_page")? - zero
    );
    println!(
        "  frame read-only: MemFree moved {} kB (a page table at most).",
        free.abs_diff(mem_free()?)
    );
    println!("  The walk for the first page, from the L4 table down to its frame:");
    walk(a)?;
    sys::munmap(a, len).map_err(why("munmap"))?;
    println!(
        "  munmap gave every frame back: MemFree {} kB.",
        mem_free()?
    );
    Ok(())
}

fn maps_and_munmap() -> Step {
    heading(3, "VMAs: /proc/self/maps, munmap in the middle, mprotect.");
    let a = sys::mmap(0, 16 * PAGE, RW, ANON, -1, 0).map_err(why("mmap"))?;
    println!("  A 16-page mapping is one line of /proc/self/maps:");
    show_maps(a, a + 16 * PAGE)?;
    sys::munmap(a + 4 * PAGE, 4 * PAGE).map_err(why("munmap"))?;
    sys::mprotect(a + 12 * PAGE, 4 * PAGE, PROT_READ).map_err(why("mprotect"))?;
    println!("  munmap of pages 4..8 split it in two; mprotect of pages 12..16 split");
    println!("  the upper part again: three VMAs, one read-only.");
    show_maps(a, a + 16 * PAGE)?;
    sys::munmap(a, 16 * PAGE).map_err(why("munmap"))?;
    Ok(())
}

/// Print the lines of /proc/self/maps for the VMAs that start in [lo, hi).
fn show_maps(lo: usize, hi: usize) -> Step {
    let fd = sys::open("/proc/self/maps\0", 0).map_err(why("open"))?;
    let mut buf = [0u8; 4096];
    let n = sys::read(fd as i32, &mut buf).map_err(why("read"));
    let _ = sys::close(fd);
    let text = core::str::from_utf8(&buf[..n?]).unwrap_or("");
    for line in text.lines() {
        let start = line
            .split('-')
            .next()
            .and_then(|h| usize::from_str_radix(h, 16).ok());
        if start.is_some_and(|s| (lo..hi).contains(&s)) {
            println!("    {}", line.trim_end());
        }
    }
    Ok(())
}

fn a_growing_stack() -> Step {
    heading(4, "A stack that grows (MAP_STACK).");
    let len = MIB;
    let base =
        sys::mmap(0, len, RW, sys::MAP_STACK | sys::MAP_PRIVATE, -1, 0).map_err(why("mmap"))?;
    let top = base + len;
    let grown = counter("pgfault_stack_growth")?;
    println!("  mmap(1 MiB, MAP_STACK) reserves the range but maps only its top page;");
    println!("  the rest is a gap the stack grows into, all of it; the page below is its guard:");
    show_maps(base - PAGE, top)?;
    for page in 1..=64 {
        poke(top - page * PAGE, 1);
    }
    println!(
        "  Pushing 64 pages down the stack took {} stack-growth faults:",
        counter("pgfault_stack_growth")? - grown
    );
    show_maps(base, top)?;
    sys::munmap(base, len).map_err(why("munmap"))?;
    Ok(())
}

fn a_huge_page() -> Step {
    heading(5, "A 2 MiB page.");
    let len = 4 * MIB;
    let a = sys::mmap(0, len, RW, ANON, -1, 0).map_err(why("mmap"))?;
    let (faults, huge) = (counter("pgfault")?, counter("pgfault_huge")?);
    poke(a, 1);
    println!("  mmap(4 MiB, read-write, private, anonymous), nothing more, returned {a:#x}:");
    println!("  memory of 2 MiB or more is placed 2 MiB-aligned, and by default the first");
    println!("  write fills the whole aligned 2 MiB (transparent superpages). One write took");
    println!(
        "  {} fault ({} huge) and made {} pages resident: one level-2 entry maps",
        counter("pgfault")? - faults,
        counter("pgfault_huge")? - huge,
        resident(a, len / PAGE)?
    );
    println!("  2 MiB at once (the PS bit), one TLB entry instead of 512:");
    walk(a + 5 * PAGE + 0x123)?;
    sys::munmap(a, len).map_err(why("munmap"))?;
    Ok(())
}

fn a_file_shared_and_private() -> Step {
    heading(6, "A file, mapped shared and private.");
    let fd = sys::open_mode(
        "/tour.txt",
        sys::O_CREAT | sys::O_RDWR | sys::O_TRUNC,
        0o644,
    )
    .map_err(why("open"))?;
    sys::write(fd as i32, b"the file's bytes live in its page cache\n").map_err(why("write"))?;
    let shared = sys::mmap(0, PAGE, RW, sys::MAP_SHARED, fd as i32, 0).map_err(why("mmap"))?;
    let private = sys::mmap(0, PAGE, RW, sys::MAP_PRIVATE, fd as i32, 0).map_err(why("mmap"))?;
    poke(shared, b'T');
    let mut first = [0u8; 8];
    sys::pread(fd, &mut first, 0).map_err(why("pread"))?;
    println!("  A store of 'T' through the MAP_SHARED mapping is in the file at once:");
    println!(
        "  read() returns {:?}. The mapping and read() use the same frame.",
        core::str::from_utf8(&first).unwrap_or("?")
    );
    let copies = counter("pgfault_cow_copy")?;
    poke(private + 4, b'F');
    sys::pread(fd, &mut first, 0).map_err(why("pread"))?;
    println!(
        "  The MAP_PRIVATE mapping saw the 'T' too; its first store took {} copy-on-",
        counter("pgfault_cow_copy")? - copies
    );
    println!(
        "  write fault and went to a private copy: the file still reads {:?}.",
        core::str::from_utf8(&first).unwrap_or("?")
    );
    println!("  A touch of a page wholly past the end of the file would be SIGBUS.");
    sys::munmap(shared, PAGE).map_err(why("munmap"))?;
    sys::munmap(private, PAGE).map_err(why("munmap"))?;
    sys::close(fd).map_err(why("close"))?;
    sys::unlink("/tour.txt").map_err(why("unlink"))?;
    Ok(())
}

static SEGV_CODE: AtomicI32 = AtomicI32::new(0);
static SEGV_ADDR: AtomicUsize = AtomicUsize::new(0);

/// What a garbage collector's write barrier or a user-space pager does: note
/// the fault, make the page writable, return so the store runs again.
extern "C" fn unprotect(_: i32, info: &sys::SigInfo, _: *mut u8) {
    SEGV_CODE.store(info.code, Ordering::SeqCst);
    SEGV_ADDR.store(info.addr(), Ordering::SeqCst);
    if sys::mprotect(info.addr() & !(PAGE - 1), PAGE, RW).is_err() {
        sys::exit(90);
    }
}

fn a_caught_sigsegv() -> Step {
    heading(7, "mprotect, and a SIGSEGV caught and repaired.");
    let a = sys::mmap(0, PAGE, RW, ANON, -1, 0).map_err(why("mmap"))?;
    poke(a, 1);
    sys::mprotect(a, PAGE, PROT_READ).map_err(why("mprotect"))?;
    sys::catch(sys::SIGSEGV, unprotect, 0).map_err(why("sigaction"))?;
    poke(a + 0x10, 2);
    sys::set_disposition(sys::SIGSEGV, sys::SIG_DFL).map_err(why("sigaction"))?;
    let code = SEGV_CODE.load(Ordering::SeqCst);
    let code = if code == sys::SEGV_ACCERR {
        "SEGV_ACCERR"
    } else {
        "SEGV_MAPERR"
    };
    println!("  After mprotect(PROT_READ), a store raised SIGSEGV. The handler saw");
    println!(
        "  si_code {code} (mapped, but not writable) and si_addr {:#x}, made the",
        SEGV_ADDR.load(Ordering::SeqCst)
    );
    println!(
        "  page writable again and returned: the store ran again and the byte is {}.",
        peek(a + 0x10)
    );
    sys::munmap(a, PAGE).map_err(why("munmap"))?;
    Ok(())
}

fn fork_and_copy_on_write() -> Step {
    heading(8, "fork and copy-on-write.");
    let pages = 64;
    let a = sys::mmap(0, pages * PAGE, RW, ANON, -1, 0).map_err(why("mmap"))?;
    for page in 0..pages {
        poke(a + page * PAGE, 1);
    }
    // The child reports through a page of shared memory, which fork keeps
    // shared: [0] what fork cost in kB, [1] its copy-on-write copies.
    let report = sys::mmap(0, PAGE, RW, sys::MAP_SHARED | sys::MAP_ANONYMOUS, -1, 0)
        .map_err(why("mmap shared"))?;
    let slot = |i: usize| (report + 8 * i) as *mut u64;
    poke(report, 0);
    let free = mem_free()?;
    let child = sys::fork().map_err(why("fork"))?;
    if child == 0 {
        let after_fork = mem_free().unwrap_or(0);
        let copies = counter("pgfault_cow_copy").unwrap_or(0);
        for page in 0..pages / 4 {
            poke(a + page * PAGE, 2);
        }
        let copied = counter("pgfault_cow_copy").unwrap_or(0) - copies;
        // SAFETY: the shared page is mapped read-write in this process.
        unsafe {
            slot(0).write_volatile(free.saturating_sub(after_fork));
            slot(1).write_volatile(copied);
        }
        sys::exit(0);
    }
    let mut status = 0;
    sys::wait4(child as isize, &mut status, 0).map_err(why("wait4"))?;
    // SAFETY: as above, in the parent.
    let (fork_kb, copied) = unsafe { (slot(0).read_volatile(), slot(1).read_volatile()) };
    println!("  The parent wrote 64 pages, then forked. The child shares all 64 frames,");
    println!("  read-only in both: fork itself took {fork_kb} kB (the child's page tables and");
    println!("  kernel stack), none for data.");
    println!("  The child wrote 16 pages: {copied} copy-on-write faults, each copying one frame.");
    let (copies, reuses) = (counter("pgfault_cow_copy")?, counter("pgfault_cow_reuse")?);
    for page in 0..pages {
        poke(a + page * PAGE, 3);
    }
    println!(
        "  After the child exited, the parent wrote all 64: {} copies, {} faults that",
        counter("pgfault_cow_copy")? - copies,
        counter("pgfault_cow_reuse")? - reuses
    );
    println!("  just made the page writable again: each frame had one owner left.");
    sys::munmap(a, pages * PAGE).map_err(why("munmap"))?;
    sys::munmap(report, PAGE).map_err(why("munmap"))?;
    Ok(())
}

/// Step 9, on a machine with a swap disk (`make run ARGS="--memory 32M
/// --swap 128M"`): a working set twice RAM goes out to swap and comes back.
fn more_memory_than_ram() -> Step {
    heading(9, "More memory than RAM: swap.");
    let swap_kb = proc_number("/proc/meminfo\0", "SwapTotal")?;
    if swap_kb == 0 {
        println!("  This machine has no swap disk. On a small one with swap the kernel pages");
        println!("  memory out and back: make run ARGS=\"--memory 32M --swap 128M\"");
        return Ok(());
    }
    let ram_kb = proc_number("/proc/meminfo\0", "MemTotal")?;
    let pages = (ram_kb as usize * 1024 * 2) / PAGE;
    let len = pages * PAGE;
    let a = sys::mmap_anon(len).map_err(why("mmap"))?;
    sys::madvise(a, len, MADV_NOHUGEPAGE).map_err(why("madvise"))?;
    println!(
        "  MemTotal {ram_kb} kB, SwapTotal {swap_kb} kB: writing {} MiB, twice RAM,",
        len / MIB
    );
    println!("  each page its own number.");
    let (outs, ins, majors) = (
        counter("pswpout")?,
        counter("pswpin")?,
        counter("pgmajfault")?,
    );
    for page in 0..pages {
        poke(a + page * PAGE, page as u8);
    }
    println!(
        "  The clock chose pages nobody had used lately and wrote {} of them to swap",
        counter("pswpout")? - outs
    );
    println!(
        "  (pswpout); resident now (mincore): {} of {pages}. A swapped page's PTE holds",
        resident(a, pages)?
    );
    println!("  its slot on the disk instead of a frame. A page a quarter of the way in (the");
    println!("  first pages' slots sit next to those of init's own stack, which went out too):");
    // Out for sure: the clock sends the oldest pages first.
    let quarter = a + pages / 4 * PAGE;
    walk(quarter)?;
    let majors_now = counter("pgmajfault")?;
    let ins_now = counter("pswpin")?;
    peek(quarter);
    println!(
        "  Reading it: {} major fault, {} pages read (it and its neighbours on the disk,",
        counter("pgmajfault")? - majors_now,
        counter("pswpin")? - ins_now
    );
    println!("  into the swap cache; --trace-faults shows it as swap-in):");
    walk(quarter)?;
    for page in 0..pages {
        if peek(a + page * PAGE) != page as u8 {
            return rt::fail!("page {page} came back wrong");
        }
    }
    println!(
        "  Every page read back its number: {} major faults, {} pages read in all.",
        counter("pgmajfault")? - majors,
        counter("pswpin")? - ins
    );
    sys::munmap(a, len).map_err(why("munmap"))?;
    let used = swap_kb - proc_number("/proc/meminfo\0", "SwapFree")?;
    println!("  munmap freed the region's frames and slots: {used} kB of swap stay in use,");
    println!("  pages of init's own stack and data that went out too and were not touched since.");
    Ok(())
}
