//! `fuzz SEED N`: N seeded random memory syscalls against the kernel, each
//! answer checked against a model.
//!
//! Two models judge the answers:
//! - the **arena model**: the fuzzer owns 64 pages of address space at
//!   `ARENA` and keeps, for each page, whether it is mapped, with which
//!   protection, shared or private, and which byte it holds. mmap (MAP_FIXED,
//!   MAP_FIXED_NOREPLACE, MAP_FIXED|MAP_EXCL), munmap, mprotect, madvise,
//!   mincore, msync, loads, stores, read()/write() through arena pages, brk
//!   and fork (a child checks every page, then writes: its private stores
//!   must not reach the parent, its shared ones must) all have one right
//!   answer there; a child also touches a page the model says it may not,
//!   and must die of SIGSEGV exactly then.
//! - the **validator model**: raw calls with hostile arguments (kernel-half
//!   and non-canonical addresses, unaligned ones, huge lengths, undefined
//!   flag and prot bits, bad descriptors) must fail with exactly the errno
//!   that `vm::mmap`'s validators (proptested on the host against DESIGN §2)
//!   give; calls they accept must succeed or fail only for a reason the
//!   address space decides, and whatever they map is unmapped again.
//!
//! At the end every frame must be back: the kernel's frames in use equal
//! their count before the first call (bound: 0 kB).
//! Prints each mismatch, a summary and `N passed, M failed` (one per call).
#![no_std]
#![no_main]

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use rt::sys::{self, Errno, PROT_NONE, PROT_READ, PROT_WRITE, RW};
use rt::{println, test};
use vm::mmap::{self as rules, Kind, Placement};

use rt::rng::Rng;

rt::main!(main);

const PAGE: usize = 4096;
const ARENA: usize = 0x1000_0000_0000;
const ARENA_PAGES: usize = 64;
const KERNEL_ADDR: usize = 0xffff_8000_0000_0000;
const NON_CANONICAL: usize = 0x0000_8000_0000_0000;
const USER_END: usize = 0x0000_7fff_ffff_f000;

/// The vm crate is linked for its validators, which never allocate; a small
/// bump allocator satisfies the `alloc` crate it is built with.
struct Bump;
static mut HEAP: [u8; 16 * 1024] = [0; 16 * 1024];
static NEXT: AtomicUsize = AtomicUsize::new(0);

// SAFETY: hands out disjoint, aligned pieces of a static array; never frees.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = (&raw mut HEAP) as usize;
        let start = (base + NEXT.load(Ordering::Relaxed)).next_multiple_of(layout.align());
        let end = start + layout.size();
        if end > base + 16 * 1024 {
            return core::ptr::null_mut();
        }
        NEXT.store(end - base, Ordering::Relaxed);
        start as *mut u8
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Share {
    Private,
    Shared,
}

#[derive(Clone, Copy, Debug)]
struct Page {
    prot: usize,
    share: Share,
    /// The byte at offset 0 of the page.
    value: u8,
}

struct Fuzzer {
    rng: Rng,
    pages: [Option<Page>; ARENA_PAGES],
    passed: usize,
    failed: usize,
    skipped: usize,
    forks: usize,
    /// A ramfs file whose first byte is 0xa5, for read()/write() through arena pages.
    file: usize,
    op: usize,
    /// Print every arena operation from this one on (`fuzz SEED N FROM`).
    trace_from: usize,
}

fn addr_of(page: usize) -> usize {
    ARENA + page * PAGE
}

impl Fuzzer {
    fn trace(&self, what: core::fmt::Arguments) {
        if self.op >= self.trace_from {
            println!("op {}: {what}", self.op);
        }
    }

    fn check(&mut self, ok: bool, what: core::fmt::Arguments) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            if self.failed <= 20 {
                println!("FAIL op {}: {what}", self.op);
            }
        }
    }

    fn expect(&mut self, got: sys::Result<usize>, want: sys::Result<usize>, call: &str) {
        self.check(
            got == want,
            format_args!("{call}: got {got:?}, the model says {want:?}"),
        );
    }

    /// A random range of arena pages: (first page, page count).
    fn range(&mut self) -> (usize, usize) {
        let first = self.rng.below(ARENA_PAGES);
        let n = 1 + self.rng.below(8.min(ARENA_PAGES - first));
        (first, n)
    }

    fn hole_in(&self, first: usize, n: usize) -> bool {
        self.pages[first..first + n].iter().any(Option::is_none)
    }

    fn readable(&self, page: usize) -> bool {
        self.pages[page].is_some_and(|p| p.prot & PROT_READ != 0)
    }

    fn writable(&self, page: usize) -> bool {
        self.pages[page].is_some_and(|p| p.prot & PROT_WRITE != 0)
    }

    fn random_prot(&mut self) -> usize {
        self.rng.pick(&[PROT_NONE, PROT_READ, RW, RW, RW])
    }

    fn step(&mut self) {
        let choice = self.rng.below(100);
        self.trace(format_args!("choice {choice}"));
        match choice {
            0..=13 => self.map_fixed(),
            14..=21 => self.unmap(),
            22..=29 => self.protect(),
            30..=35 => self.advise(),
            36..=41 => self.mincore(),
            42..=44 => self.msync(),
            45..=57 => self.store(),
            58..=65 => self.load(),
            66..=72 => self.io(),
            73..=75 => self.brk(),
            76..=78 => self.fork_and_check(),
            79..=81 => self.probe(),
            82..=92 => self.raw_mmap(),
            _ => self.raw_range(),
        }
    }

    fn map_fixed(&mut self) {
        let (first, n) = self.range();
        let prot = self.random_prot();
        let share = if self.rng.chance(30) {
            Share::Shared
        } else {
            Share::Private
        };
        let kind = match share {
            Share::Private => sys::MAP_PRIVATE,
            Share::Shared => sys::MAP_SHARED,
        };
        let (placement, name) = match self.rng.below(10) {
            0..=6 => (sys::MAP_FIXED, "MAP_FIXED"),
            7 | 8 => (sys::MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
            _ => (sys::MAP_FIXED | sys::MAP_EXCL, "MAP_FIXED|MAP_EXCL"),
        };
        let populate = if self.rng.chance(20) {
            sys::MAP_POPULATE
        } else {
            0
        };
        let flags = kind | sys::MAP_ANONYMOUS | placement | populate;
        let occupied = self.pages[first..first + n].iter().any(Option::is_some);
        let want = match placement {
            sys::MAP_FIXED_NOREPLACE if occupied => Err(sys::EEXIST),
            p if p != sys::MAP_FIXED && occupied => Err(sys::EINVAL),
            _ => Ok(addr_of(first)),
        };
        let got = sys::mmap(addr_of(first), n * PAGE, prot, flags, -1, 0);
        self.trace(format_args!(
            "{name} pages {first}+{n} prot {prot} {share:?} populate {populate:#x}: {got:?}"
        ));
        self.expect(got, want, name);
        if got.is_ok() {
            for p in &mut self.pages[first..first + n] {
                *p = Some(Page {
                    prot,
                    share,
                    value: 0,
                });
            }
        }
    }

    fn unmap(&mut self) {
        let (first, n) = self.range();
        let got = sys::munmap(addr_of(first), n * PAGE);
        self.trace(format_args!("munmap pages {first}+{n}: {got:?}"));
        self.expect(got, Ok(0), "munmap");
        if got.is_ok() {
            self.pages[first..first + n].fill(None);
        }
    }

    fn protect(&mut self) {
        let (first, n) = self.range();
        let prot = self.random_prot();
        let want = if self.hole_in(first, n) {
            Err(sys::ENOMEM)
        } else {
            Ok(0)
        };
        let got = sys::mprotect(addr_of(first), n * PAGE, prot);
        self.trace(format_args!(
            "mprotect pages {first}+{n} prot {prot}: {got:?}"
        ));
        self.expect(got, want, "mprotect");
        if got.is_ok() {
            for p in self.pages[first..first + n].iter_mut().flatten() {
                p.prot = prot;
            }
        }
    }

    fn advise(&mut self) {
        let (first, n) = self.range();
        let advice = self.rng.pick(&[
            sys::MADV_DONTNEED,
            sys::MADV_WILLNEED,
            sys::MADV_NORMAL,
            sys::MADV_RANDOM,
            sys::MADV_SEQUENTIAL,
        ]);
        let want = if self.hole_in(first, n) {
            Err(sys::ENOMEM)
        } else {
            Ok(0)
        };
        let got = sys::madvise(addr_of(first), n * PAGE, advice);
        self.trace(format_args!(
            "madvise pages {first}+{n} advice {advice}: {got:?}"
        ));
        self.expect(got, want, "madvise");
        if got.is_ok() && advice == sys::MADV_DONTNEED {
            // Private anonymous memory reads back as zeros; shared keeps its data.
            for p in self.pages[first..first + n].iter_mut().flatten() {
                if p.share == Share::Private {
                    p.value = 0;
                }
            }
        }
    }

    fn mincore(&mut self) {
        let (first, n) = self.range();
        let hole = self.hole_in(first, n);
        let mut vec = [0xffu8; 8];
        // Sometimes a vector the kernel may not write: EFAULT once the range is fine.
        let bad_vec = match self.rng.below(8) {
            0 => Some(KERNEL_ADDR),
            1 => Some(NON_CANONICAL),
            2 => (0..ARENA_PAGES).find(|&p| !self.writable(p)).map(addr_of),
            _ => None,
        };
        let target = bad_vec.unwrap_or(vec.as_mut_ptr() as usize);
        let want = match (hole, bad_vec) {
            (_, Some(_)) if !hole => Err(sys::EFAULT),
            (true, None) => Err(sys::ENOMEM),
            (true, Some(_)) => Err(sys::EFAULT), // either is right: see below
            _ => Ok(0),
        };
        let got = sys::raw(
            sys::nr::MINCORE,
            [addr_of(first), n * PAGE, target, 0, 0, 0],
        );
        let allowed = got == want || (hole && bad_vec.is_some() && got == Err(sys::ENOMEM));
        self.check(
            allowed,
            format_args!("mincore: got {got:?}, the model says {want:?}"),
        );
        if got.is_ok() {
            for i in 0..n {
                let byte = vec[i];
                let must_be_resident = self.pages[first + i].is_some_and(|p| p.value != 0);
                self.check(
                    byte <= 1 && (byte == 1 || !must_be_resident),
                    format_args!("mincore: page {} says {byte}", first + i),
                );
            }
        }
    }

    fn msync(&mut self) {
        let (first, n) = self.range();
        let flags = self
            .rng
            .pick(&[sys::MS_SYNC, sys::MS_ASYNC, sys::MS_INVALIDATE]);
        let want = if self.hole_in(first, n) {
            Err(sys::ENOMEM)
        } else {
            Ok(0)
        };
        let got = sys::msync(addr_of(first), n * PAGE, flags);
        self.expect(got, want, "msync");
    }

    fn store(&mut self) {
        let page = self.rng.below(ARENA_PAGES);
        if !self.writable(page) {
            self.skipped += 1;
            return;
        }
        let value = 1 + self.rng.below(255) as u8;
        self.trace(format_args!("store {value} to page {page}"));
        sys::poke(addr_of(page), value);
        sys::poke(addr_of(page) + PAGE - 1, value);
        if let Some(p) = self.pages[page].as_mut() {
            p.value = value;
        }
        self.passed += 1;
    }

    fn load(&mut self) {
        let page = self.rng.below(ARENA_PAGES);
        let Some(p) = self.pages[page].filter(|_| self.readable(page)) else {
            self.skipped += 1;
            return;
        };
        let got = sys::peek(addr_of(page));
        self.check(
            got == p.value,
            format_args!("load of page {page}: {got}, the model says {}", p.value),
        );
    }

    /// read() into and write() from arena pages and hostile pointers:
    /// EFAULT exactly where user mode could not do the same access.
    fn io(&mut self) {
        let page = self.rng.below(ARENA_PAGES);
        let (buf, target) = match self.rng.below(6) {
            0 => (KERNEL_ADDR + self.rng.below(1 << 20) * PAGE, None),
            1 => (NON_CANONICAL + self.rng.below(1 << 20) * PAGE, None),
            _ => (addr_of(page), Some(page)),
        };
        let fd = match self.rng.below(10) {
            0 => usize::MAX, // -1
            1 => 1000,
            _ => self.file,
        };
        let bad_fd = fd != self.file;
        if self.rng.chance(50) {
            // pread one byte (0xa5) from the file into the page.
            let want = if bad_fd {
                Err(sys::EBADF)
            } else if target.is_some_and(|p| self.writable(p)) {
                Ok(1)
            } else {
                Err(sys::EFAULT)
            };
            let got = sys::raw(sys::nr::PREAD64, [fd, buf, 1, 0, 0, 0]);
            self.trace(format_args!("pread into {buf:#x}: {got:?}"));
            self.expect(got, want, "pread into an arena page");
            if got == Ok(1)
                && let Some(p) = target.and_then(|p| self.pages[p].as_mut())
            {
                p.value = 0xa5;
            }
        } else {
            let want = if bad_fd {
                Err(sys::EBADF)
            } else if target.is_some_and(|p| self.readable(p) || self.writable(p)) {
                Ok(16)
            } else {
                Err(sys::EFAULT)
            };
            let got = sys::raw(sys::nr::PWRITE64, [fd, buf, 16, 8192, 0, 0]);
            self.expect(got, want, "pwrite from an arena page");
        }
    }

    fn brk(&mut self) {
        let start = sys::brk(0);
        let hostile = self.rng.pick(&[KERNEL_ADDR, NON_CANONICAL, usize::MAX, 1]);
        let got = sys::brk(hostile);
        self.expect(Ok(got), Ok(start), "brk to a hostile address");
        let pages = 1 + self.rng.below(16);
        let top = start + pages * PAGE;
        let got = sys::brk(top);
        self.expect(Ok(got), Ok(top), "brk up");
        if got == top {
            let page = start.next_multiple_of(PAGE);
            if page < top {
                self.check(
                    sys::peek(page) == 0,
                    format_args!("fresh brk memory is not zero"),
                );
                sys::poke(page, 0x77);
            }
        }
        let got = sys::brk(start);
        self.expect(Ok(got), Ok(start), "brk down");
    }

    /// A child checks every readable page, then stores into every writable
    /// one: the parent must see the shared stores and none of the private ones.
    fn fork_and_check(&mut self) {
        self.forks += 1;
        self.trace(format_args!("fork and check"));
        let child_value = 1 + self.rng.below(255) as u8;
        let pid = match sys::fork() {
            Ok(0) => {
                let mut wrong = 0;
                for page in 0..ARENA_PAGES {
                    if let Some(p) = self.pages[page].filter(|_| self.readable(page)) {
                        let got = sys::peek(addr_of(page));
                        if got != p.value {
                            wrong += 1;
                            println!(
                                "FAIL op {}: the child reads {got} at page {page}, the model says {p:?}",
                                self.op
                            );
                        }
                    }
                    if self.writable(page) {
                        sys::poke(addr_of(page), child_value);
                    }
                }
                sys::exit(wrong.min(100));
            }
            Ok(pid) => pid,
            Err(e) => {
                self.check(false, format_args!("fork: errno {}", e.0));
                return;
            }
        };
        let mut status = 0;
        let got = sys::wait4(pid as isize, &mut status, 0);
        self.check(
            got == Ok(pid) && sys::exited(status) == Some(0),
            format_args!("fork check: child status {status:#x} ({got:?})"),
        );
        for page in 0..ARENA_PAGES {
            let writable = self.writable(page);
            if let Some(p) = self.pages[page].as_mut()
                && writable
                && p.share == Share::Shared
            {
                p.value = child_value;
            }
            if let Some(p) = self.pages[page].filter(|_| self.readable(page)) {
                let got = sys::peek(addr_of(page));
                self.check(
                    got == p.value,
                    format_args!("after fork, page {page}: {got}, the model says {}", p.value),
                );
            }
        }
    }

    /// A child touches one page (or a kernel address): it must die of
    /// SIGSEGV exactly when the model says the access is not allowed.
    fn probe(&mut self) {
        self.forks += 1;
        let write = self.rng.chance(50);
        let mut target = None;
        let (addr, allowed) = match self.rng.below(8) {
            0 => (KERNEL_ADDR + self.rng.below(1 << 20) * PAGE, false),
            1 => (0xffff_ffff_8000_0000 + self.rng.below(512) * PAGE, false),
            _ => {
                let page = self.rng.below(ARENA_PAGES);
                target = Some(page);
                let ok = if write {
                    self.writable(page)
                } else {
                    self.readable(page) || self.writable(page)
                };
                (addr_of(page), ok)
            }
        };
        let pid = match sys::fork() {
            Ok(0) => {
                if write {
                    sys::poke(addr, 0x42);
                } else {
                    core::hint::black_box(sys::peek(addr));
                }
                sys::exit(0);
            }
            Ok(pid) => pid,
            Err(e) => {
                self.check(false, format_args!("fork: errno {}", e.0));
                return;
            }
        };
        let mut status = 0;
        let _ = sys::wait4(pid as isize, &mut status, 0);
        let ok = if allowed {
            sys::exited(status) == Some(0)
        } else {
            sys::killed_by(status) == Some(sys::SIGSEGV as i32)
        };
        // The child's store reaches a shared page of ours.
        if let Some(p) = target.and_then(|page| self.pages[page].as_mut())
            && allowed
            && write
            && p.share == Share::Shared
        {
            p.value = 0x42;
        }
        self.check(
            ok,
            format_args!(
                "probe {} {addr:#x}: status {status:#x}, allowed: {allowed}, model {:?}",
                if write { "write" } else { "read" },
                target.map(|page| self.pages[page])
            ),
        );
    }

    fn hostile_addr(&mut self) -> usize {
        let page = self.rng.below(ARENA_PAGES);
        let (inside, random) = (self.rng.below(PAGE - 1), self.rng.next() as usize);
        self.rng.pick(&[
            0,
            PAGE,
            KERNEL_ADDR,
            NON_CANONICAL,
            USER_END,
            USER_END - PAGE,
            usize::MAX & !(PAGE - 1),
            0x7fff_f000,
            addr_of(page),
            addr_of(page) + 1 + inside,
            random,
        ])
    }

    fn hostile_len(&mut self) -> usize {
        let random = self.rng.next() as usize;
        self.rng.pick(&[
            0,
            1,
            PAGE,
            PAGE + 1,
            3 * PAGE,
            2 << 20,
            USER_END,
            usize::MAX,
            usize::MAX - PAGE + 2,
            1 << 46,
            random,
        ])
    }

    /// mmap with hostile arguments: the kernel must answer as the validator.
    fn raw_mmap(&mut self) {
        let addr = self.hostile_addr();
        let len = self.hostile_len();
        let prot = if self.rng.chance(85) {
            self.rng.below(8)
        } else {
            self.rng.next() as usize
        };
        let mut flags = self.rng.pick(&[
            sys::MAP_PRIVATE,
            sys::MAP_SHARED,
            sys::MAP_SHARED_VALIDATE,
            0,
            0xf,
        ]);
        for _ in 0..self.rng.below(4) {
            let (align, high, low) = (self.rng.below(64), self.rng.below(16), self.rng.below(32));
            flags |= self.rng.pick(&[
                sys::MAP_ANONYMOUS,
                sys::MAP_ANONYMOUS,
                sys::MAP_FIXED,
                sys::MAP_FIXED_NOREPLACE,
                sys::MAP_32BIT,
                sys::MAP_STACK,
                sys::MAP_GROWSDOWN,
                sys::MAP_NORESERVE,
                sys::MAP_POPULATE,
                sys::MAP_HUGETLB,
                sys::MAP_UNINITIALIZED,
                sys::MAP_GUARD,
                sys::MAP_EXCL,
                sys::MAP_TRYFIXED,
                sys::MAP_ALIGNED_SUPER,
                sys::map_aligned(align),
                1 << (48 + high),
                1 << low,
            ]);
        }
        let fd = self.rng.pick(&[-1, -1, -1, self.file as i32, 0, 1000]);
        let offset = self.rng.pick(&[0, 0, PAGE, 100, usize::MAX & !(PAGE - 1)]);
        let verdict = rules::validate_mmap(
            addr as u64,
            len as u64,
            prot as u64,
            flags as u64,
            fd,
            offset as u64,
        );
        if let Ok(req) = &verdict {
            // MAP_FIXED could replace this program's own memory (or arena
            // pages behind the model's back); MAP_FIXED_NOREPLACE and
            // MAP_EXCL never replace, so they stay. A huge populated mapping
            // would only measure the memory size.
            let replaces = matches!(
                req.placement,
                Placement::Fixed {
                    on_conflict: rules::OnConflict::Replace,
                    ..
                }
            );
            if replaces || (req.populate && req.len > 1 << 20) {
                self.skipped += 1;
                return;
            }
        }
        let got = sys::mmap(addr, len, prot, flags, fd, offset);
        if got.is_ok() {
            self.trace(format_args!(
                "raw mmap({addr:#x}, {len:#x}, {prot:#x}, {flags:#x}, {fd}, {offset:#x}): {got:?}"
            ));
        }
        match verdict {
            Err(e) => self.expect(got, Err(Errno(e as i32)), "mmap with hostile arguments"),
            Ok(req) => {
                let file_errors = [sys::EBADF, sys::ENODEV, sys::EACCES];
                let ok = match got {
                    Ok(at) => {
                        let at = at as u64;
                        at.is_multiple_of(req.align)
                            && at
                                .checked_add(req.len)
                                .is_some_and(|e| e <= USER_END as u64)
                            && (!req.below_2g || at + req.len <= 1 << 31)
                    }
                    Err(e) => {
                        e == sys::ENOMEM
                            || e == sys::EEXIST
                            || (matches!(req.kind, Kind::File { .. }) && file_errors.contains(&e))
                    }
                };
                self.check(
                    ok,
                    format_args!(
                        "mmap({addr:#x}, {len:#x}, {prot:#x}, {flags:#x}, {fd}, {offset:#x}): {got:?}, validator accepted {req:?}"
                    ),
                );
                if let Ok(at) = got {
                    let back = sys::munmap(at, req.len as usize);
                    self.expect(back, Ok(0), "munmap of a hostile mapping");
                }
            }
        }
    }

    /// munmap/mprotect/madvise/msync/mincore with hostile ranges: the
    /// validators' errno exactly; accepted ranges only where nothing of
    /// this program lives (the arena model judges those elsewhere).
    fn raw_range(&mut self) {
        let addr = self.hostile_addr();
        let len = self.hostile_len();
        let (a, l) = (addr as u64, len as u64);
        let arg = self.rng.pick(&[0, 1, 3, 4, 5, 8, 12, 30, 1 << 33]);
        let (call, verdict, nr) = match self.rng.below(5) {
            0 => ("munmap", rules::validate_munmap(a, l), sys::nr::MUNMAP),
            1 => (
                "mprotect",
                rules::validate_mprotect(a, l, arg).map(|r| r.0),
                sys::nr::MPROTECT,
            ),
            2 => (
                "madvise",
                rules::validate_madvise(a, l, arg).map(|r| r.0),
                sys::nr::MADVISE,
            ),
            3 => ("msync", rules::validate_msync(a, l, arg), sys::nr::MSYNC),
            _ => ("mincore", rules::validate_mincore(a, l), sys::nr::MINCORE),
        };
        let mut vec = [0u8; 8];
        let third = if nr == sys::nr::MINCORE {
            vec.as_mut_ptr() as usize
        } else {
            arg as usize
        };
        match verdict {
            Err(e) => {
                let got = sys::raw(nr, [addr, len, third, 0, 0, 0]);
                self.expect(got, Err(Errno(e as i32)), call);
            }
            // Empty ranges and ranges past everything this program maps.
            Ok(span) if span.is_empty() || span.start >= (USER_END as u64) => {
                let got = sys::raw(nr, [addr, len, third, 0, 0, 0]);
                let want = if span.is_empty() || nr == sys::nr::MUNMAP {
                    Ok(0)
                } else {
                    Err(sys::ENOMEM)
                };
                self.expect(got, want, call);
            }
            Ok(_) => self.skipped += 1,
        }
    }
}

fn main(args: rt::Args) -> i32 {
    let seed = args.get(1).parse::<u64>().unwrap_or(1);
    let ops = args.get(2).parse::<usize>().unwrap_or(2000);
    test::grow_stack();
    let before = match test::frames_in_use() {
        Ok(kb) => kb,
        Err(why) => {
            println!("fuzz: cannot read /proc/meminfo: {}", why.as_str());
            return 1;
        }
    };
    let path = "/fuzz.dat\0";
    let file = sys::open_mode(path, sys::O_RDWR | sys::O_CREAT | sys::O_TRUNC, 0o600)
        .expect("fuzz: cannot create its file");
    sys::pwrite(file, &[0xa5], 0).expect("fuzz: cannot write its file");
    let mut f = Fuzzer {
        rng: Rng(seed),
        pages: [None; ARENA_PAGES],
        passed: 0,
        failed: 0,
        skipped: 0,
        forks: 0,
        file,
        op: 0,
        trace_from: args.get(3).parse::<usize>().unwrap_or(usize::MAX),
    };
    println!("fuzz: seed {seed}, {ops} operations");
    for op in 0..ops {
        f.op = op;
        f.step();
    }
    let _ = sys::munmap(ARENA, ARENA_PAGES * PAGE);
    let _ = sys::close(file);
    let _ = sys::unlink(path);
    match test::frames_in_use() {
        Ok(after) => f.check(
            after == before,
            format_args!("frames in use: {before} kB before, {after} kB after"),
        ),
        Err(why) => f.check(false, format_args!("meminfo: {}", why.as_str())),
    }
    println!(
        "fuzz: seed {seed}: {ops} operations, {} checks, {} forks, {} skipped",
        f.passed + f.failed,
        f.forks,
        f.skipped
    );
    println!("{} passed, {} failed", f.passed, f.failed);
    i32::from(f.failed > 0)
}
