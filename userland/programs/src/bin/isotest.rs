//! Isolation and resource exhaustion: a user program may only ever hurt
//! itself. Each dangerous probe runs in a child whose wait status is the
//! verdict; after each case the frames in use are back where they were and
//! the system still forks, maps and faults.
//!
//! Cases: another process's private memory, kernel memory (loads, stores,
//! and the kernel's own copies through user pointers), unmapped pages
//! (munmap + remap + read in a loop: stale TLB entries), zeroed frames and
//! MAP_UNINITIALIZED, stack overflow into the guard, stores to read-only and
//! copy-on-write pages, out of memory in a fault, the commit limit, the
//! mapping-count limit and a fork bomb.
#![no_std]
#![no_main]

use rt::sys::{self, ANON, PROT_READ, RW, SigInfo};
use rt::test::{Outcome, Suite, Why, why};
use rt::{ensure, fail};

rt::main!(main);

const PAGE: usize = 4096;
const KERNEL_TEXT: usize = 0xffff_ffff_8000_0000;
const PHYS_MAP: usize = 0xffff_8000_0000_0000;

/// Run `body` in a child; return its wait status.
fn child(body: impl FnOnce() -> i32) -> Result<i32, Why> {
    match sys::fork().map_err(why("fork"))? {
        0 => sys::exit(body()),
        pid => {
            let mut status = 0;
            let got = sys::wait4(pid as isize, &mut status, 0).map_err(why("wait4"))?;
            ensure!(got == pid, "wait4: pid {got}, want {pid}")?;
            Ok(status)
        }
    }
}

fn expect_exit(status: i32, code: i32, what: &str) -> Outcome {
    ensure!(
        sys::exited(status) == Some(code),
        "{what}: wait status {status:#x}, want exit {code}"
    )
}

fn expect_signal(status: i32, signal: usize, what: &str) -> Outcome {
    ensure!(
        sys::killed_by(status) == Some(signal as i32),
        "{what}: wait status {status:#x}, want signal {signal}"
    )
}

/// The SIGSEGV handler of `segv_code`: exit with 10 + si_code when the
/// fault address is the one probed, 99 otherwise.
static mut PROBED: usize = 0;
extern "C" fn report_segv(_: i32, info: &SigInfo, _: *mut u8) {
    // SAFETY: written before the probe, in this (single-threaded) child.
    let probed = unsafe { PROBED };
    let code = if info.addr() == probed {
        10 + info.code
    } else {
        99
    };
    sys::exit(code);
}

/// Touch `addr` in a child with a SIGSEGV handler: its si_code (MAPERR 1,
/// ACCERR 2), or an error when the access did not fault.
fn segv_code(addr: usize, write: bool) -> Result<i32, Why> {
    let status = child(|| {
        // SAFETY: single-threaded child; read by the handler.
        unsafe { PROBED = addr };
        if sys::catch(sys::SIGSEGV, report_segv, 0).is_err() {
            return 98;
        }
        if write {
            sys::poke(addr, 1);
        } else {
            core::hint::black_box(sys::peek(addr));
        }
        0
    })?;
    match sys::exited(status) {
        Some(code @ 11..=12) => Ok(code - 10),
        _ => fail!("touching {addr:#x}: wait status {status:#x}, want a SIGSEGV with its address"),
    }
}

/// The system still works: fork, map, fault, and a child's exit.
fn still_usable() -> Outcome {
    let a = sys::mmap_anon(4 * PAGE).map_err(why("mmap after the case"))?;
    sys::poke(a, 7);
    let status = child(|| i32::from(sys::peek(a) != 7))?;
    sys::munmap(a, 4 * PAGE).map_err(why("munmap"))?;
    expect_exit(status, 0, "a child after the case")
}

fn main(args: rt::Args) -> i32 {
    let mut s = Suite::new("isotest");
    // `isotest map-count` and `isotest bomb` run one case each, in boots of
    // their own (boot/tests/isolation.rs); `isotest slow` runs both.
    match args.get(1) {
        "bomb" => {
            fork_bomb_case(&mut s);
            return s.finish();
        }
        "map-count" => {
            map_count_case(&mut s);
            return s.finish();
        }
        _ => {}
    }
    let slow = args.len() > 1 && args.get(1) == "slow";
    if slow {
        map_count_case(&mut s);
        fork_bomb_case(&mut s);
        return s.finish();
    }

    s.both(
        "a_child_cannot_see_or_change_the_parents_private_memory",
        || {
            let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
            sys::poke(a, 0x5e);
            let status = child(|| {
                // The same address in the child, after a fresh mapping there:
                // the parent's secret must not show through.
                sys::poke(a, 0x11);
                if sys::munmap(a, PAGE).is_err() {
                    return 2;
                }
                let fixed = sys::MAP_FIXED | ANON;
                if sys::mmap(a, PAGE, RW, fixed, -1, 0) != Ok(a) {
                    return 3;
                }
                i32::from(sys::peek(a) != 0)
            })?;
            expect_exit(status, 0, "child")?;
            ensure!(sys::peek(a) == 0x5e, "the child's store reached the parent")?;
            sys::munmap(a, PAGE).map_err(why("munmap"))?;
            still_usable()
        },
    );

    s.both(
        "user_mode_loads_and_stores_to_kernel_memory_are_sigsegv",
        || {
            for addr in [
                KERNEL_TEXT,
                KERNEL_TEXT + 0x10_0000,
                PHYS_MAP,
                PHYS_MAP + 0x10_0000,
            ] {
                for write in [false, true] {
                    let code = segv_code(addr, write)?;
                    ensure!(
                        code == sys::SEGV_MAPERR || code == sys::SEGV_ACCERR,
                        "{addr:#x}: si_code {code}"
                    )?;
                }
            }
            still_usable()
        },
    );

    s.both("the_kernel_never_copies_through_kernel_pointers", || {
        // SMAP's job in copy_out/copy_in is done by checks: EFAULT, no crash.
        for addr in [
            KERNEL_TEXT,
            PHYS_MAP,
            0x0000_8000_0000_0000,
            usize::MAX - 15,
        ] {
            let w = sys::raw(sys::nr::WRITE, [1, addr, 16, 0, 0, 0]);
            rt::test::expect_err(w, sys::EFAULT, "write from a kernel pointer")?;
            let fd = sys::open("/proc/meminfo\0", 0).map_err(why("open"))?;
            let r = sys::raw(sys::nr::READ, [fd, addr, 16, 0, 0, 0]);
            let _ = sys::close(fd);
            rt::test::expect_err(r, sys::EFAULT, "read into a kernel pointer")?;
        }
        still_usable()
    });

    s.both("munmap_then_remap_never_shows_the_old_page", || {
        // A stale TLB entry after munmap would show the old value (or let
        // the store land in a freed frame).
        let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
        for i in 0..300 {
            sys::poke(a, (i % 250) as u8 + 1);
            ensure!(sys::peek(a) != 0, "round {i}: the store vanished")?;
            sys::munmap(a, PAGE).map_err(why("munmap"))?;
            let again = sys::mmap(a, PAGE, RW, ANON | sys::MAP_FIXED, -1, 0);
            ensure!(again == Ok(a), "round {i}: remap gave {again:?}")?;
            ensure!(
                sys::peek(a) == 0,
                "round {i}: the old page shows after remap"
            )?;
        }
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        // And a page unmapped for good faults.
        let code = segv_code(a, false)?;
        ensure!(code == sys::SEGV_MAPERR, "after munmap: si_code {code}")
    });

    s.both(
        "frames_handed_out_are_zeroed_even_with_map_uninitialized",
        || {
            for flags in [ANON, ANON | sys::MAP_UNINITIALIZED] {
                for round in 0..4 {
                    let a = sys::mmap(0, 64 * PAGE, RW, flags, -1, 0).map_err(why("mmap"))?;
                    for i in 0..64 {
                        let page = a + i * PAGE;
                        for off in [0, 1000, PAGE - 1] {
                            ensure!(
                                sys::peek(page + off) == 0,
                                "flags {flags:#x} round {round}: page {i} not zero"
                            )?;
                        }
                        // Dirty it for the next round's frames.
                        for off in (0..PAGE).step_by(512) {
                            sys::poke(page + off, 0xcc);
                        }
                    }
                    sys::munmap(a, 64 * PAGE).map_err(why("munmap"))?;
                }
            }
            Ok(())
        },
    );

    s.both("a_stack_overflow_stops_at_the_guard", || {
        #[inline(never)]
        #[allow(unconditional_recursion)]
        fn recurse(depth: usize) -> usize {
            let frame = [depth as u8; 512];
            core::hint::black_box(&frame);
            recurse(depth + 1) + usize::from(frame[7])
        }
        let status = child(|| recurse(0) as i32)?;
        expect_signal(status, sys::SIGSEGV, "endless recursion")?;
        still_usable()
    });

    s.both(
        "stores_to_read_only_and_copy_on_write_pages_never_reach_the_original",
        || {
            let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
            sys::poke(a, 0x33);
            sys::mprotect(a, PAGE, PROT_READ).map_err(why("mprotect"))?;
            let code = segv_code(a, true)?;
            ensure!(
                code == sys::SEGV_ACCERR,
                "store to read-only: si_code {code}"
            )?;
            ensure!(sys::peek(a) == 0x33, "the read-only page changed")?;
            sys::mprotect(a, PAGE, RW).map_err(why("mprotect"))?;
            // Copy-on-write: the child's store stays in the child.
            let status = child(|| {
                sys::poke(a, 0x44);
                i32::from(sys::peek(a) != 0x44)
            })?;
            expect_exit(status, 0, "child")?;
            ensure!(
                sys::peek(a) == 0x33,
                "a child's copy-on-write store reached the parent"
            )?;
            sys::munmap(a, PAGE).map_err(why("munmap"))?;
            Ok(())
        },
    );

    // The bug the fuzzer found (seeds 2 and 7): fork entered the child's
    // copy of a PROT_NONE page with the user bit set, so the child could
    // read (not write) the parent's data through it.
    s.both(
        "a_prot_none_page_stays_unreadable_in_a_forked_child",
        || {
            let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
            sys::poke(a, 0x66);
            sys::mprotect(a, PAGE, sys::PROT_NONE).map_err(why("mprotect"))?;
            let code = segv_code(a, false)?;
            ensure!(code == sys::SEGV_ACCERR, "read in a child: si_code {code}")?;
            let code = segv_code(a, true)?;
            ensure!(code == sys::SEGV_ACCERR, "write in a child: si_code {code}")?;
            sys::mprotect(a, PAGE, PROT_READ).map_err(why("mprotect"))?;
            ensure!(sys::peek(a) == 0x66, "the data did not survive PROT_NONE")?;
            sys::munmap(a, PAGE).map_err(why("munmap"))?;
            Ok(())
        },
    );

    s.pageos("out_of_memory_in_a_fault_kills_only_that_process", || {
        let status = child(|| {
            // MAP_NORESERVE is exempt from the commit limit: the faults run out.
            let len = 1 << 30;
            let flags = ANON | sys::MAP_NORESERVE;
            let Ok(a) = sys::mmap(0, len, RW, flags, -1, 0) else {
                return 2;
            };
            for off in (0..len).step_by(PAGE) {
                sys::poke(a + off, 1);
            }
            3
        })?;
        expect_signal(status, sys::SIGKILL, "touching more than RAM")?;
        still_usable()
    });

    s.both("the_commit_limit_refuses_mmap_instead_of_dying", || {
        // Strict accounting is vm.overcommit_memory=2 (the default, 0,
        // only refuses a single request larger than RAM + swap).
        let mode = b"/proc/sys/vm/overcommit_memory\0";
        set_file(mode, b"2\n")?;
        let refused = commit_until_refused();
        set_file(mode, b"0\n")?;
        ensure!(
            refused.1 == Some(sys::ENOMEM),
            "{} x 64 MiB committed, then {:?} (ENOMEM wanted before 4 GiB)",
            refused.0,
            refused.1
        )?;
        still_usable()
    });

    // ramfs directories are ordered maps: creating, finding and removing
    // 20 000 long names in one directory takes a lookup each, not a scan
    // (a linear directory did not finish in 200 s).
    s.both("twenty_thousand_long_names_in_one_directory", || {
        const FILES: usize = 20_000;
        let _ = sys::mkdir("/big\0", 0o755);
        let name = |i: usize| {
            let mut p = [b'n'; 5 + 200 + 6];
            p[..5].copy_from_slice(b"/big/");
            for (k, digit) in p[205..210].iter_mut().enumerate() {
                *digit = b'0' + (i / 10usize.pow(4 - k as u32) % 10) as u8;
            }
            p[210] = 0;
            p
        };
        for i in 0..FILES {
            let p = name(i);
            let fd = sys::open_mode(text(&p), sys::O_CREAT | sys::O_WRONLY | sys::O_EXCL, 0o644)
                .map_err(why("create"))?;
            let _ = sys::close(fd);
        }
        let found = [0, 9_999, 19_999].map(|i| sys::stat(text(&name(i))).is_ok());
        for i in 0..FILES {
            sys::unlink(text(&name(i))).map_err(why("unlink"))?;
        }
        sys::rmdir("/big\0").map_err(why("rmdir"))?;
        ensure!(found == [true; 3], "stat of created names: {found:?}")
    });

    s.finish()
}

/// mmap 64 MiB at a time until refused (at most 64 times), then unmap it
/// all: how many were granted, and the error that ended it.
fn commit_until_refused() -> (usize, Option<sys::Errno>) {
    let mut maps = [0usize; 64];
    let mut n = 0;
    let chunk = 64 << 20;
    let refused = loop {
        if n == maps.len() {
            break None;
        }
        match sys::mmap(0, chunk, RW, ANON, -1, 0) {
            Ok(a) => {
                maps[n] = a;
                n += 1;
            }
            Err(e) => break Some(e),
        }
    };
    for &a in &maps[..n] {
        let _ = sys::munmap(a, chunk);
    }
    (n, refused)
}

/// Write `data` to the file at `path` (NUL-terminated), a sysctl.
fn set_file(path: &[u8], data: &[u8]) -> Outcome {
    let fd = sys::open(text(path), sys::O_WRONLY).map_err(why("open"))?;
    let written = sys::write(fd as i32, data).map_err(why("write"));
    let _ = sys::close(fd);
    written.map(|_| ())
}

fn text(p: &[u8]) -> &str {
    core::str::from_utf8(p).unwrap_or("")
}

fn map_count_case(s: &mut Suite) {
    s.both("the_mapping_count_limit_gives_enomem", || {
        // Alternate protections so that neighbours never merge.
        let pages = 65_600;
        let base = sys::mmap(
            0,
            pages * PAGE,
            sys::PROT_NONE,
            ANON | sys::MAP_NORESERVE,
            -1,
            0,
        )
        .map_err(why("mmap the reservation"))?;
        let mut refused = None;
        for i in (0..pages).step_by(2) {
            if let Err(e) = sys::mprotect(base + i * PAGE, PAGE, PROT_READ) {
                refused = Some((i, e));
                break;
            }
        }
        sys::munmap(base, pages * PAGE).map_err(why("munmap"))?;
        match refused {
            Some((_, e)) if e == sys::ENOMEM => still_usable(),
            other => fail!("splitting into 65 600 mappings: {other:?} (ENOMEM wanted)"),
        }
    });
}

fn fork_bomb_case(s: &mut Suite) {
    s.pageos("a_fork_bomb_is_bounded_by_the_process_limit", || {
        let status = child(|| {
            let mut made = 0;
            let err = loop {
                match sys::fork() {
                    Ok(0) => sys::exit(0),
                    Ok(_) => made += 1,
                    Err(e) => break e,
                }
                if made > 5000 {
                    return 2;
                }
            };
            let mut status = 0;
            while sys::wait4(-1, &mut status, 0).is_ok() {}
            if err != sys::EAGAIN {
                return 3;
            }
            // Reaped: forking works again.
            match sys::fork() {
                Ok(0) => sys::exit(0),
                Ok(_) => i32::from(sys::wait4(-1, &mut status, 0).is_err()),
                Err(_) => 4,
            }
        })?;
        expect_exit(
            status,
            0,
            "the fork bomb (2: no limit, 3: not EAGAIN, 4: no fork after)",
        )?;
        still_usable()
    });
}
