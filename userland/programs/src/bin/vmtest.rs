//! `vmtest`: the VM subsystem's rules, one case each, as a user program
//! sees them: mmap and its flags and errors, munmap, mprotect, madvise,
//! mincore, mlock, msync, minherit, brk, demand paging.
//!
//! Run without arguments it prints `ok NAME` / `FAIL NAME: why` per case and
//! `N passed, M failed`. The same binary runs as init of a Linux kernel
//! (`make linux-vmtest`): it notices (minherit is ENOSYS there) and runs
//! only the cases whose rule Linux shares.
//!
//! `vmtest fault NAME` performs one access that must kill the process
//! (SIGSEGV, or SIGKILL when memory runs out); the QEMU tests check the
//! status. (Once fork exists these become children of one run.)
#![no_std]
#![no_main]

use rt::sys::{self, ANON, PROT_EXEC, PROT_NONE, PROT_READ, RW, peek, poke};
use rt::test::{Outcome, Suite, expect_err, proc_number, resident, why};
use rt::{Args, ensure, fail, println};

rt::main!(main);

const PAGE: usize = 4096;
const HUGE: usize = 2 << 20;
/// The end of the user half (Linux's TASK_SIZE).
const USER_END: usize = 0x7fff_ffff_f000;

fn main(args: Args) -> i32 {
    match args.get(1) {
        "" => cases(),
        "fault" => fault(args.get(2)),
        other => {
            println!("vmtest: unknown command {other:?}");
            2
        }
    }
}

/// Fill [addr, addr + len) with a pattern derived from the address.
fn fill(addr: usize, len: usize, seed: u8) {
    for a in (addr..addr + len).step_by(512) {
        poke(a, (a / 512) as u8 ^ seed);
    }
}

fn check_fill(addr: usize, len: usize, seed: u8) -> Outcome {
    for a in (addr..addr + len).step_by(512) {
        let (got, want) = (peek(a), (a / 512) as u8 ^ seed);
        ensure!(
            got == want,
            "byte at {a:#x} is {got:#x}, expected {want:#x}"
        )?;
    }
    Ok(())
}

fn check_zero(addr: usize, len: usize) -> Outcome {
    for a in (addr..addr + len).step_by(256) {
        ensure!(peek(a) == 0, "byte at {a:#x} is {:#x}, expected 0", peek(a))?;
    }
    Ok(())
}

/// Linux's PER_BSD persona.
const PER_BSD: usize = 0x0006;

fn cases() -> i32 {
    let mut s = Suite::new("vmtest");
    mmap_basics(&mut s);
    mmap_placement(&mut s);
    mmap_bsd_flags(&mut s);
    mmap_special(&mut s);
    munmap_cases(&mut s);
    mprotect_cases(&mut s);
    advice_cases(&mut s);
    brk_and_kernel_access(&mut s);
    s.finish()
}

fn mmap_basics(s: &mut Suite) {
    s.both("anon_is_zero_filled_and_keeps_data", || {
        let a = sys::mmap_anon(3 * PAGE).map_err(why("mmap"))?;
        ensure!(a % PAGE == 0, "address {a:#x} not page aligned")?;
        check_zero(a, 3 * PAGE)?;
        fill(a, 3 * PAGE, 0x5a);
        check_fill(a, 3 * PAGE, 0x5a)?;
        sys::munmap(a, 3 * PAGE).map_err(why("munmap"))?;
        Ok(())
    });
    s.both("anon_length_is_rounded_up_to_pages", || {
        let a = sys::mmap_anon(5000).map_err(why("mmap"))?;
        poke(a + 8191, 1);
        let r = resident(a, 2)?;
        sys::munmap(a, 5000).map_err(why("munmap"))?;
        ensure!(r == 1, "{r} pages resident after touching the second")
    });
    s.both("pages_are_mapped_on_first_touch", || {
        let a = sys::mmap_anon(8 * PAGE).map_err(why("mmap"))?;
        let before = resident(a, 8)?;
        poke(a + 3 * PAGE, 7);
        let _ = peek(a + 5 * PAGE);
        let after = resident(a, 8)?;
        sys::munmap(a, 8 * PAGE).map_err(why("munmap"))?;
        ensure!(
            before == 0 && after == 2,
            "resident: {before} before, {after} after two touches"
        )
    });
    s.both("vm_hwm_keeps_the_peak_after_munmap", || {
        // VmHWM is the most VmRSS ever was (Linux's hiwater_rss): 4 MiB
        // written raise both; after the munmap VmRSS falls, VmHWM stays.
        let status = "/proc/self/status\0";
        sys::mount_proc().map_err(why("mount /proc"))?;
        let len = 1024 * PAGE;
        let a = sys::mmap_anon(len).map_err(why("mmap"))?;
        for i in (0..len).step_by(PAGE) {
            poke(a + i, 1);
        }
        let (rss, hwm) = (proc_number(status, "VmRSS")?, proc_number(status, "VmHWM")?);
        sys::munmap(a, len).map_err(why("munmap"))?;
        let (rss_after, hwm_after) = (proc_number(status, "VmRSS")?, proc_number(status, "VmHWM")?);
        ensure!(
            rss >= 4096 && hwm >= rss && rss_after + 3072 <= rss && hwm_after >= hwm,
            "VmRSS {rss} kB, VmHWM {hwm} kB; after munmap {rss_after} kB, {hwm_after} kB"
        )
    });
    s.both("zero_length_is_einval", || {
        expect_err(sys::mmap(0, 0, RW, ANON, -1, 0), sys::EINVAL, "len 0")
    });
    s.both("huge_length_is_enomem", || {
        expect_err(
            sys::mmap(0, usize::MAX - PAGE, RW, ANON, -1, 0),
            sys::ENOMEM,
            "len ~2^64",
        )?;
        expect_err(
            sys::mmap(0, 1 << 48, RW, ANON | sys::MAP_NORESERVE, -1, 0),
            sys::ENOMEM,
            "len 2^48",
        )
    });
    s.both("no_type_is_einval", || {
        expect_err(
            sys::mmap(0, PAGE, RW, sys::MAP_ANONYMOUS, -1, 0),
            sys::EINVAL,
            "MAP_ANONYMOUS alone",
        )
    });
    s.pageos("undefined_prot_bits_are_einval", || {
        expect_err(sys::mmap(0, PAGE, 8, ANON, -1, 0), sys::EINVAL, "prot 8")
    });
    // DESIGN §2's rules mode: BSD rules after personality(PER_BSD).
    s.pageos("anon_with_fd_or_offset_is_einval_under_per_bsd", || {
        let old = sys::raw(135, [PER_BSD, 0, 0, 0, 0, 0]).map_err(why("personality"))?;
        let fd0 = sys::mmap(0, PAGE, RW, ANON, 0, 0);
        let offset = sys::mmap(0, PAGE, RW, ANON, -1, PAGE);
        let fixed_high = sys::mmap(
            0xffff_8000_0000_0000,
            PAGE,
            RW,
            ANON | sys::MAP_FIXED,
            -1,
            0,
        );
        let now = sys::raw(135, [0xffff_ffff, 0, 0, 0, 0, 0]);
        sys::raw(135, [old, 0, 0, 0, 0, 0]).map_err(why("personality back"))?;
        ensure!(now == Ok(PER_BSD), "personality(0xffffffff) gave {now:?}")?;
        expect_err(fd0, sys::EINVAL, "fd 0")?;
        expect_err(offset, sys::EINVAL, "offset 4096")?;
        expect_err(fixed_high, sys::EINVAL, "MAP_FIXED in the kernel half")
    });
    s.both("madv_remove_over_mlocked_memory_is_einval", || {
        let shared = sys::MAP_SHARED | sys::MAP_ANONYMOUS;
        let a = sys::mmap(0, 2 * PAGE, RW, shared, -1, 0).map_err(why("mmap"))?;
        poke(a, 7);
        sys::mlock(a, PAGE).map_err(why("mlock"))?;
        let locked = sys::madvise(a, 2 * PAGE, 9);
        let unlocked = sys::madvise(a + PAGE, PAGE, 9);
        let kept = peek(a);
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        expect_err(locked, sys::EINVAL, "MADV_REMOVE over a locked page")?;
        ensure!(
            unlocked == Ok(0),
            "MADV_REMOVE of the unlocked page: {unlocked:?}"
        )?;
        ensure!(kept == 7, "the locked page's byte is {kept}")
    });
    // Linux's rules by default: LTP's mincore03 and munlock02 pass fd 0.
    s.both("anon_ignores_fd_and_offset_by_default", || {
        let fd0 = sys::mmap(0, PAGE, RW, ANON, 0, 0).map_err(why("fd 0"))?;
        sys::munmap(fd0, PAGE).map_err(why("munmap"))?;
        let offset = sys::mmap(0, PAGE, RW, ANON, -1, PAGE).map_err(why("offset 4096"))?;
        sys::munmap(offset, PAGE).map_err(why("munmap"))?;
        let high = sys::mmap(
            0xffff_8000_0000_0000,
            PAGE,
            RW,
            ANON | sys::MAP_FIXED,
            -1,
            0,
        );
        expect_err(high, sys::ENOMEM, "MAP_FIXED in the kernel half")
    });
    s.pageos("undefined_bsd_flag_is_einval", || {
        expect_err(
            sys::mmap(0, PAGE, RW, ANON | 1 << 50, -1, 0),
            sys::EINVAL,
            "bit 50",
        )
    });
    s.pageos("shared_validate_refuses_unknown_flags", || {
        let validate = sys::MAP_SHARED_VALIDATE | sys::MAP_ANONYMOUS;
        expect_err(
            sys::mmap(0, PAGE, RW, validate | 0x200, -1, 0),
            sys::EOPNOTSUPP,
            "unknown 0x200",
        )?;
        let a =
            sys::mmap(0, PAGE, RW, ANON | 0x200, -1, 0).map_err(why("MAP_PRIVATE ignores it"))?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        Ok(())
    });
    s.both("bad_fd_is_ebadf", || {
        expect_err(
            sys::mmap(0, PAGE, PROT_READ, sys::MAP_PRIVATE, 77, 0),
            sys::EBADF,
            "fd 77",
        )
    });
    s.both("shared_anonymous_memory_works", || {
        let a = sys::mmap(0, 4 * PAGE, RW, sys::MAP_SHARED | sys::MAP_ANONYMOUS, -1, 0)
            .map_err(why("mmap"))?;
        check_zero(a, 4 * PAGE)?;
        fill(a, 4 * PAGE, 3);
        check_fill(a, 4 * PAGE, 3)?;
        sys::munmap(a, 4 * PAGE).map_err(why("munmap"))?;
        Ok(())
    });
    s.both("populate_makes_pages_resident", || {
        let a =
            sys::mmap(0, 16 * PAGE, RW, ANON | sys::MAP_POPULATE, -1, 0).map_err(why("mmap"))?;
        let r = resident(a, 16)?;
        check_zero(a, 16 * PAGE)?;
        sys::munmap(a, 16 * PAGE).map_err(why("munmap"))?;
        ensure!(r == 16, "{r} of 16 pages resident")
    });
    s.both("locked_makes_pages_resident", || {
        let a = sys::mmap(0, 8 * PAGE, RW, ANON | sys::MAP_LOCKED, -1, 0).map_err(why("mmap"))?;
        let r = resident(a, 8)?;
        sys::munmap(a, 8 * PAGE).map_err(why("munmap"))?;
        ensure!(r == 8, "{r} of 8 pages resident")
    });
    s.both("uninitialized_is_still_zero", || {
        let a = sys::mmap(0, 4 * PAGE, RW, ANON | sys::MAP_UNINITIALIZED, -1, 0)
            .map_err(why("mmap"))?;
        let zero = check_zero(a, 4 * PAGE);
        sys::munmap(a, 4 * PAGE).map_err(why("munmap"))?;
        zero
    });
    s.both("commit_limit_refuses_more_than_ram", || {
        // 64 GiB of private writable memory cannot be promised by a small VM...
        let big = 64usize << 30;
        expect_err(
            sys::mmap(0, big, RW, ANON, -1, 0),
            sys::ENOMEM,
            "64 GiB committed",
        )?;
        // ...but reserving address space without a promise is fine.
        let a = sys::mmap(0, big, RW, ANON | sys::MAP_NORESERVE, -1, 0)
            .map_err(why("64 GiB MAP_NORESERVE"))?;
        poke(a + big / 2, 1);
        sys::munmap(a, big).map_err(why("munmap"))?;
        // Read-only memory needs no promise either.
        let r = sys::mmap(0, big, PROT_READ, ANON, -1, 0).map_err(why("64 GiB read-only"))?;
        sys::munmap(r, big).map_err(why("munmap"))?;
        Ok(())
    });
}

fn mmap_placement(s: &mut Suite) {
    s.both("placement_is_top_down", || {
        let a = sys::mmap_anon(PAGE).map_err(why("mmap a"))?;
        let b = sys::mmap_anon(PAGE).map_err(why("mmap b"))?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        sys::munmap(b, PAGE).map_err(why("munmap"))?;
        ensure!(b < a, "second mapping {b:#x} not below first {a:#x}")
    });
    s.both("free_hint_is_honoured", || {
        let hint = 0x3000_0000_0000;
        let a = sys::mmap(hint, 2 * PAGE, RW, ANON, -1, 0).map_err(why("mmap"))?;
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        ensure!(a == hint, "got {a:#x} for hint {hint:#x}")
    });
    s.both("busy_hint_goes_elsewhere_and_replaces_nothing", || {
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        fill(a, 2 * PAGE, 9);
        let b = sys::mmap(a, 2 * PAGE, RW, ANON, -1, 0).map_err(why("mmap with hint"))?;
        let kept = check_fill(a, 2 * PAGE, 9);
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        sys::munmap(b, 2 * PAGE).map_err(why("munmap"))?;
        ensure!(b != a, "hint over a mapping was used")?;
        kept
    });
    s.both("fixed_replaces_and_splits", || {
        let a = sys::mmap_anon(4 * PAGE).map_err(why("mmap"))?;
        fill(a, 4 * PAGE, 1);
        let b = sys::mmap(a + PAGE, 2 * PAGE, RW, ANON | sys::MAP_FIXED, -1, 0)
            .map_err(why("MAP_FIXED"))?;
        ensure!(b == a + PAGE, "MAP_FIXED gave {b:#x}, not {:#x}", a + PAGE)?;
        let outcome = check_fill(a, PAGE, 1)
            .and_then(|_| check_zero(a + PAGE, 2 * PAGE))
            .and_then(|_| check_fill(a + 3 * PAGE, PAGE, 1));
        sys::munmap(a, 4 * PAGE).map_err(why("munmap"))?;
        outcome
    });
    s.both("fixed_unaligned_is_einval", || {
        expect_err(
            sys::mmap(0x3000_0000_0123, PAGE, RW, ANON | sys::MAP_FIXED, -1, 0),
            sys::EINVAL,
            "addr ...123",
        )
    });
    s.both("fixed_beyond_user_space_is_enomem", || {
        expect_err(
            sys::mmap(USER_END, PAGE, RW, ANON | sys::MAP_FIXED, -1, 0),
            sys::ENOMEM,
            "at TASK_SIZE",
        )?;
        expect_err(
            sys::mmap(USER_END - PAGE, 2 * PAGE, RW, ANON | sys::MAP_FIXED, -1, 0),
            sys::ENOMEM,
            "across TASK_SIZE",
        )
    });
    s.both("fixed_noreplace_over_a_mapping_is_eexist", || {
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        poke(a, 42);
        let r = sys::mmap(a + PAGE, PAGE, RW, ANON | sys::MAP_FIXED_NOREPLACE, -1, 0);
        let kept = peek(a);
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        expect_err(r, sys::EEXIST, "NOREPLACE")?;
        ensure!(kept == 42, "data changed to {kept}")
    });
    s.pageos("fixed_excl_over_a_mapping_is_einval", || {
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        let r = sys::mmap(a, PAGE, RW, ANON | sys::MAP_FIXED | sys::MAP_EXCL, -1, 0);
        let free = sys::mmap(
            a + 2 * PAGE,
            PAGE,
            RW,
            ANON | sys::MAP_FIXED | sys::MAP_EXCL,
            -1,
            0,
        );
        sys::munmap(a, 3 * PAGE).map_err(why("munmap"))?;
        expect_err(r, sys::EINVAL, "EXCL over a mapping")?;
        ensure!(free == Ok(a + 2 * PAGE), "EXCL on free space gave {free:?}")
    });
    s.pageos("excl_without_fixed_is_einval", || {
        expect_err(
            sys::mmap(0, PAGE, RW, ANON | sys::MAP_EXCL, -1, 0),
            sys::EINVAL,
            "EXCL alone",
        )
    });
    s.pageos("tryfixed_uses_a_free_address_and_never_replaces", || {
        let hint = 0x3100_0000_0000;
        let a = sys::mmap(hint, PAGE, RW, ANON | sys::MAP_TRYFIXED, -1, 0).map_err(why("mmap"))?;
        poke(a, 5);
        let b = sys::mmap(hint, PAGE, RW, ANON | sys::MAP_TRYFIXED, -1, 0)
            .map_err(why("mmap again"))?;
        let kept = peek(a);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        sys::munmap(b, PAGE).map_err(why("munmap"))?;
        ensure!(
            a == hint && b != hint && kept == 5,
            "a {a:#x} b {b:#x} kept {kept}"
        )
    });
    s.both("map_32bit_lies_below_2gib", || {
        let a = sys::mmap(0, 4 * PAGE, RW, ANON | sys::MAP_32BIT, -1, 0).map_err(why("mmap"))?;
        poke(a, 1);
        sys::munmap(a, 4 * PAGE).map_err(why("munmap"))?;
        ensure!(a + 4 * PAGE <= 1 << 31, "{a:#x} is above 2 GiB")
    });
    s.pageos("fixed_32bit_beyond_2gib_is_einval", || {
        let flags = ANON | sys::MAP_FIXED | sys::MAP_32BIT;
        expect_err(
            sys::mmap(0x7fff_f000, 2 * PAGE, RW, flags, -1, 0),
            sys::EINVAL,
            "across 2 GiB",
        )
    });
    s.pageos("map_aligned_aligns", || {
        for n in [16, 21, 30] {
            let a =
                sys::mmap(0, PAGE, RW, ANON | sys::map_aligned(n), -1, 0).map_err(why("mmap"))?;
            sys::munmap(a, PAGE).map_err(why("munmap"))?;
            ensure!(a % (1 << n) == 0, "MAP_ALIGNED({n}) gave {a:#x}")?;
        }
        for n in [1 + 1, 11, 48, 255] {
            expect_err(
                sys::mmap(0, PAGE, RW, ANON | sys::map_aligned(n), -1, 0),
                sys::EINVAL,
                "bad MAP_ALIGNED",
            )?;
        }
        Ok(())
    });
}

fn mmap_bsd_flags(s: &mut Suite) {
    s.pageos("recorded_bsd_flags_are_accepted", || {
        let flags =
            ANON | sys::MAP_NOCORE | sys::MAP_NOSYNC | sys::MAP_HASSEMAPHORE | sys::MAP_INHERIT;
        let a = sys::mmap(0, PAGE, RW, flags, -1, 0).map_err(why("mmap"))?;
        poke(a, 1);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        Ok(())
    });
    s.pageos("prefault_read_on_anonymous_memory_is_accepted", || {
        let a =
            sys::mmap(0, PAGE, RW, ANON | sys::MAP_PREFAULT_READ, -1, 0).map_err(why("mmap"))?;
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        Ok(())
    });
    s.pageos("guard_reserves_space_nothing_lands_in", || {
        let g =
            sys::mmap(0, 16 * PAGE, PROT_NONE, sys::MAP_GUARD, -1, 0).map_err(why("MAP_GUARD"))?;
        let hinted =
            sys::mmap(g + 4 * PAGE, PAGE, RW, ANON, -1, 0).map_err(why("mmap with hint"))?;
        let prot = sys::mprotect(g, PAGE, RW);
        let fixed = sys::mmap(g + 8 * PAGE, PAGE, RW, ANON | sys::MAP_FIXED, -1, 0);
        if let Ok(f) = fixed {
            poke(f, 1);
        }
        sys::munmap(hinted, PAGE).map_err(why("munmap"))?;
        sys::munmap(g, 16 * PAGE).map_err(why("munmap"))?;
        ensure!(
            hinted < g || hinted >= g + 16 * PAGE,
            "a hint landed in the guard"
        )?;
        expect_err(prot, sys::EACCES, "mprotect of a guard")?;
        ensure!(
            fixed == Ok(g + 8 * PAGE),
            "MAP_FIXED over a guard gave {fixed:?}"
        )
    });
    s.pageos("guard_argument_rules", || {
        let guard =
            |prot, flags, fd, off| sys::mmap(0, PAGE, prot, sys::MAP_GUARD | flags, fd, off);
        expect_err(guard(PROT_READ, 0, -1, 0), sys::EINVAL, "prot")?;
        expect_err(guard(PROT_NONE, 0, 3, 0), sys::EINVAL, "fd")?;
        expect_err(guard(PROT_NONE, 0, -1, PAGE), sys::EINVAL, "offset")?;
        for other in [
            sys::MAP_ANONYMOUS,
            sys::MAP_PRIVATE,
            sys::MAP_SHARED,
            sys::MAP_STACK,
            sys::MAP_PREFAULT_READ,
        ] {
            expect_err(
                guard(PROT_NONE, other, -1, 0),
                sys::EINVAL,
                "with a type flag",
            )?;
        }
        Ok(())
    });
    s.pageos("stack_grows_down_page_by_page", || {
        let len = 16 * PAGE;
        let a = sys::mmap(0, len, RW, sys::MAP_STACK, -1, 0).map_err(why("MAP_STACK"))?;
        let top = a + len;
        poke(top - 1, 1);
        let first = resident(a, 16)?;
        // Walk down to the lowest page of the reservation: all of it is
        // the stack's (DESIGN §2; the guard is the page below).
        for page in 2..=16 {
            poke(top - page * PAGE, page as u8);
        }
        let grown = resident(a, 16)?;
        let kept = peek(top - 5 * PAGE);
        let lowest = peek(a);
        sys::munmap(a, len).map_err(why("munmap"))?;
        ensure!(first == 1, "{first} pages resident after touching the top")?;
        ensure!(
            grown == 16 && kept == 5 && lowest == 16,
            "{grown} pages resident after growing, bytes {kept} and {lowest}"
        )
    });
    // Issue 14 item 9: a 256-page MAP_STACK written from the top to the
    // bottom died at the lowest page. FreeBSD's rule: "the bottom of the
    // stack at maximum growth is the starting address returned by the call".
    // Linux's MAP_GROWSDOWN grows the same way, so this runs on both.
    s.both("map_stack_gives_all_of_len_to_the_stack", || {
        let pages = 256;
        let len = pages * PAGE;
        let a = sys::mmap(
            0,
            len,
            RW,
            ANON | sys::MAP_GROWSDOWN | sys::MAP_STACK,
            -1,
            0,
        )
        .map_err(why("MAP_STACK | MAP_GROWSDOWN"))?;
        for page in 1..=pages {
            poke(a + len - page * PAGE, (page % 251) as u8);
        }
        let resident_pages = resident(a, pages)?;
        let bad = (1..=pages).find(|&page| peek(a + len - page * PAGE) != (page % 251) as u8);
        sys::munmap(a, len).map_err(why("munmap"))?;
        ensure!(bad.is_none(), "page {bad:?} from the top lost its byte")?;
        ensure!(
            resident_pages == pages,
            "{resident_pages} of {pages} pages resident"
        )
    });
    s.pageos("growsdown_grows_like_a_stack", || {
        let len = 8 * PAGE;
        let a = sys::mmap(0, len, RW, ANON | sys::MAP_GROWSDOWN, -1, 0)
            .map_err(why("MAP_GROWSDOWN"))?;
        for page in 1..8 {
            poke(a + len - page * PAGE, 1);
        }
        let r = resident(a, 8)?;
        sys::munmap(a, len).map_err(why("munmap"))?;
        ensure!(r == 7, "{r} pages resident")
    });
    s.pageos("stack_argument_rules", || {
        expect_err(
            sys::mmap(0, PAGE, PROT_READ, sys::MAP_STACK, -1, 0),
            sys::EINVAL,
            "read-only stack",
        )?;
        expect_err(
            sys::mmap(0, PAGE, RW, sys::MAP_STACK, 3, 0),
            sys::EINVAL,
            "fd 3",
        )?;
        expect_err(
            sys::mmap(0, PAGE, RW, sys::MAP_STACK | sys::MAP_SHARED, -1, 0),
            sys::EINVAL,
            "shared stack",
        )
    });
    s.pageos("hugetlb_maps_a_2mib_page_on_one_touch", || {
        let a = sys::mmap(
            0,
            HUGE,
            RW,
            ANON | sys::MAP_HUGETLB | sys::MAP_HUGE_2MB,
            -1,
            0,
        )
        .map_err(why("mmap"))?;
        ensure!(a % HUGE == 0, "{a:#x} not 2 MiB aligned")?;
        poke(a + 12345, 9);
        let r = resident(a, 512)?;
        let zero = check_zero(a + HUGE / 2, PAGE);
        sys::munmap(a, HUGE).map_err(why("munmap"))?;
        ensure!(r == 512, "{r} of 512 pages resident after one touch")?;
        zero
    });
    s.pageos("hugetlb_split_by_munmap_keeps_the_rest", || {
        let a = sys::mmap(0, HUGE, RW, ANON | sys::MAP_HUGETLB, -1, 0).map_err(why("mmap"))?;
        fill(a, HUGE, 4);
        sys::munmap(a + PAGE, PAGE).map_err(why("munmap one page"))?;
        let kept =
            check_fill(a, PAGE, 4).and_then(|_| check_fill(a + 2 * PAGE, HUGE - 2 * PAGE, 4));
        let hole = sys::mincore(a + PAGE, PAGE, &mut [0u8; 1]);
        sys::munmap(a, HUGE).map_err(why("munmap"))?;
        expect_err(hole, sys::ENOMEM, "mincore of the hole")?;
        kept
    });
    s.pageos("aligned_super_uses_2mib_pages", || {
        let a = sys::mmap(0, 2 * HUGE, RW, ANON | sys::MAP_ALIGNED_SUPER, -1, 0)
            .map_err(why("mmap"))?;
        poke(a + HUGE + 1, 1);
        let r = resident(a + HUGE, 512)?;
        sys::munmap(a, 2 * HUGE).map_err(why("munmap"))?;
        ensure!(
            a % HUGE == 0 && r == 512,
            "address {a:#x}, {r} pages resident"
        )
    });
}

fn mmap_special(s: &mut Suite) {
    s.both("ten_thousand_mappings_with_alternating_protections", || {
        let n = 10_000;
        let a = sys::mmap(0, n * PAGE, PROT_NONE, ANON, -1, 0).map_err(why("mmap"))?;
        for i in (0..n).step_by(2) {
            sys::mprotect(a + i * PAGE, PAGE, RW).map_err(why("mprotect"))?;
        }
        for i in (0..n).step_by(2) {
            poke(a + i * PAGE, i as u8);
        }
        let mut ok = Ok(());
        for i in (0..n).step_by(2) {
            if peek(a + i * PAGE) != i as u8 {
                ok = fail!("page {i} lost its byte");
                break;
            }
        }
        sys::munmap(a, n * PAGE).map_err(why("munmap"))?;
        ok
    });
}

fn munmap_cases(s: &mut Suite) {
    s.both("munmap_in_the_middle_splits", || {
        let a = sys::mmap_anon(3 * PAGE).map_err(why("mmap"))?;
        fill(a, 3 * PAGE, 2);
        sys::munmap(a + PAGE, PAGE).map_err(why("munmap middle"))?;
        let sides = check_fill(a, PAGE, 2).and_then(|_| check_fill(a + 2 * PAGE, PAGE, 2));
        let hole = sys::mincore(a + PAGE, PAGE, &mut [0u8; 1]);
        sys::munmap(a, 3 * PAGE).map_err(why("munmap"))?;
        sides?;
        expect_err(hole, sys::ENOMEM, "mincore of the hole")
    });
    s.both("munmap_argument_rules", || {
        let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
        let unaligned = sys::munmap(a + 1, PAGE);
        let empty = sys::munmap(a, 0);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        expect_err(unaligned, sys::EINVAL, "unaligned")?;
        expect_err(empty, sys::EINVAL, "len 0")?;
        expect_err(
            sys::munmap(USER_END - PAGE, 4 * PAGE),
            sys::EINVAL,
            "past TASK_SIZE",
        )?;
        // Nothing mapped there: still a success.
        sys::munmap(a, PAGE).map_err(why("munmap of nothing"))?;
        Ok(())
    });
    s.both("munmap_across_several_mappings", || {
        let a = sys::mmap_anon(6 * PAGE).map_err(why("mmap"))?;
        sys::mprotect(a + 2 * PAGE, 2 * PAGE, PROT_READ).map_err(why("mprotect"))?;
        fill(a, 2 * PAGE, 1);
        sys::munmap(a + PAGE, 4 * PAGE).map_err(why("munmap"))?;
        let r = resident(a, 1)? + resident(a + 5 * PAGE, 1)?;
        let hole = sys::mincore(a + 2 * PAGE, PAGE, &mut [0u8; 1]);
        sys::munmap(a, 6 * PAGE).map_err(why("munmap"))?;
        expect_err(hole, sys::ENOMEM, "mincore of the hole")?;
        ensure!(r == 1, "{r} of the outer pages resident")
    });
}

fn mprotect_cases(s: &mut Suite) {
    s.both("mprotect_read_only_then_back", || {
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        fill(a, 2 * PAGE, 6);
        sys::mprotect(a, 2 * PAGE, PROT_READ).map_err(why("mprotect READ"))?;
        let read = check_fill(a, 2 * PAGE, 6);
        sys::mprotect(a, 2 * PAGE, RW).map_err(why("mprotect RW"))?;
        fill(a, 2 * PAGE, 7);
        let again = check_fill(a, 2 * PAGE, 7);
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        read.and(again)
    });
    s.both("mprotect_none_keeps_the_data", || {
        let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
        poke(a, 33);
        sys::mprotect(a, PAGE, PROT_NONE).map_err(why("mprotect NONE"))?;
        let r = resident(a, 1)?;
        sys::mprotect(a, PAGE, PROT_READ).map_err(why("mprotect READ"))?;
        let v = peek(a);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        ensure!(v == 33 && r == 1, "byte {v}, resident {r}")
    });
    s.both("mprotect_argument_rules", || {
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        let unaligned = sys::mprotect(a + 1, PAGE, PROT_READ);
        let bad_prot = sys::mprotect(a, PAGE, 0x10);
        let empty = sys::mprotect(a, 0, PROT_READ);
        sys::munmap(a + PAGE, PAGE).map_err(why("munmap"))?;
        let hole = sys::mprotect(a, 2 * PAGE, PROT_READ);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        expect_err(unaligned, sys::EINVAL, "unaligned")?;
        expect_err(bad_prot, sys::EINVAL, "prot 0x10")?;
        ensure!(empty == Ok(0), "len 0 gave {empty:?}")?;
        expect_err(hole, sys::ENOMEM, "range with a hole")
    });
    s.both("mprotect_exec_page_runs", || {
        let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
        // mov eax, 42; ret
        for (i, b) in [0xb8u8, 42, 0, 0, 0, 0xc3].into_iter().enumerate() {
            poke(a + i, b);
        }
        sys::mprotect(a, PAGE, PROT_READ | PROT_EXEC).map_err(why("mprotect"))?;
        // SAFETY: the page holds a complete function following the C ABI.
        let f: extern "C" fn() -> u32 = unsafe { core::mem::transmute(a) };
        let v = f();
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        ensure!(v == 42, "returned {v}")
    });
}

fn advice_cases(s: &mut Suite) {
    s.both("madvise_dontneed_zeroes_private_memory", || {
        let a = sys::mmap_anon(4 * PAGE).map_err(why("mmap"))?;
        fill(a, 4 * PAGE, 8);
        sys::madvise(a, 4 * PAGE, sys::MADV_DONTNEED).map_err(why("madvise"))?;
        let r = resident(a, 4)?;
        let zero = check_zero(a, 4 * PAGE);
        sys::munmap(a, 4 * PAGE).map_err(why("munmap"))?;
        ensure!(r == 0, "{r} pages still resident")?;
        zero
    });
    s.both("madvise_dontneed_keeps_shared_memory", || {
        let a = sys::mmap(0, 2 * PAGE, RW, sys::MAP_SHARED | sys::MAP_ANONYMOUS, -1, 0)
            .map_err(why("mmap"))?;
        fill(a, 2 * PAGE, 8);
        sys::madvise(a, 2 * PAGE, sys::MADV_DONTNEED).map_err(why("madvise"))?;
        let kept = check_fill(a, 2 * PAGE, 8);
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        kept
    });
    s.both("madvise_free_gives_old_data_or_zeros", || {
        let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
        poke(a, 17);
        sys::madvise(a, PAGE, sys::MADV_FREE).map_err(why("madvise"))?;
        let v = peek(a);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        ensure!(v == 0 || v == 17, "read {v}")
    });
    s.pageos("madvise_willneed_faults_pages_in", || {
        let a = sys::mmap_anon(8 * PAGE).map_err(why("mmap"))?;
        sys::madvise(a, 8 * PAGE, sys::MADV_WILLNEED).map_err(why("madvise"))?;
        let r = resident(a, 8)?;
        sys::munmap(a, 8 * PAGE).map_err(why("munmap"))?;
        ensure!(r == 8, "{r} of 8 resident")
    });
    s.both("madvise_argument_rules", || {
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        let mut results = [Ok(0); 3];
        for (i, advice) in [sys::MADV_NORMAL, sys::MADV_RANDOM, sys::MADV_SEQUENTIAL]
            .into_iter()
            .enumerate()
        {
            results[i] = sys::madvise(a, 2 * PAGE, advice);
        }
        let unaligned = sys::madvise(a + 1, PAGE, sys::MADV_NORMAL);
        let unknown = sys::madvise(a, PAGE, 12345);
        sys::munmap(a + PAGE, PAGE).map_err(why("munmap"))?;
        let hole = sys::madvise(a, 2 * PAGE, sys::MADV_NORMAL);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        ensure!(
            results.iter().all(|r| *r == Ok(0)),
            "hints gave {results:?}"
        )?;
        expect_err(unaligned, sys::EINVAL, "unaligned")?;
        expect_err(unknown, sys::EINVAL, "advice 12345")?;
        expect_err(hole, sys::ENOMEM, "range with a hole")
    });
    s.both("mincore_argument_rules", || {
        let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
        let unaligned = sys::raw(
            sys::nr::MINCORE,
            [a + 1, PAGE, [0u8; 1].as_mut_ptr() as usize, 0, 0, 0],
        );
        let bad_vec = sys::raw(sys::nr::MINCORE, [a, PAGE, 0x10, 0, 0, 0]);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        let hole = sys::mincore(a, PAGE, &mut [0u8; 1]);
        expect_err(unaligned, sys::EINVAL, "unaligned")?;
        expect_err(bad_vec, sys::EFAULT, "vector at 0x10")?;
        expect_err(hole, sys::ENOMEM, "unmapped")
    });
    // A byte per page of a 128 TiB range: the kernel must not allocate the
    // 32 GiB vector before it looks (it once panicked out of memory).
    s.both("mincore_huge_range_is_enomem_not_a_panic", || {
        // The vector low enough that its 32 GiB would fit in the user half
        // (Linux checks that first: EFAULT otherwise), so the range is judged.
        let low = 0x3000_0000_0000;
        let fixed = sys::MAP_FIXED | ANON;
        let v = sys::mmap(low, PAGE, RW, fixed, -1, 0).map_err(why("mmap"))?;
        let huge = sys::raw(sys::nr::MINCORE, [0x10000, 0x7fff_0000_0000, v, 0, 0, 0]);
        // What is mapped is reported up to the hole, then ENOMEM.
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        sys::munmap(a + PAGE, PAGE).map_err(why("munmap"))?;
        let past = sys::raw(sys::nr::MINCORE, [a, 1 << 40, v, 0, 0, 0]);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        sys::munmap(v, PAGE).map_err(why("munmap"))?;
        expect_err(huge, sys::ENOMEM, "mincore(0x10000, 0x7fff00000000)")?;
        expect_err(past, sys::ENOMEM, "mincore past the mapping")
    });
    s.both("mlock_populates_and_munlock_unlocks", || {
        let a = sys::mmap_anon(8 * PAGE).map_err(why("mmap"))?;
        sys::mlock(a + 123, 3 * PAGE).map_err(why("mlock"))?;
        let r = resident(a, 8)?;
        sys::munlock(a, 8 * PAGE).map_err(why("munlock"))?;
        sys::munmap(a, 8 * PAGE).map_err(why("munmap"))?;
        let hole = sys::mlock(a, PAGE);
        // The range a+123 .. a+123+3 pages touches 4 pages.
        ensure!(r == 4, "{r} pages resident after mlock")?;
        expect_err(hole, sys::ENOMEM, "mlock of unmapped memory")
    });
    s.both("msync_rules", || {
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        let sync = sys::msync(a, 2 * PAGE, sys::MS_SYNC);
        let both = sys::msync(a, PAGE, sys::MS_SYNC | sys::MS_ASYNC);
        let bad = sys::msync(a, PAGE, 8);
        let unaligned = sys::msync(a + 1, PAGE, sys::MS_ASYNC);
        sys::mlock(a, PAGE).map_err(why("mlock"))?;
        let invalidate_locked = sys::msync(a, PAGE, sys::MS_INVALIDATE);
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        let hole = sys::msync(a, PAGE, sys::MS_SYNC);
        ensure!(sync == Ok(0), "MS_SYNC gave {sync:?}")?;
        expect_err(both, sys::EINVAL, "SYNC|ASYNC")?;
        expect_err(bad, sys::EINVAL, "flag 8")?;
        expect_err(unaligned, sys::EINVAL, "unaligned")?;
        expect_err(
            invalidate_locked,
            sys::EBUSY,
            "MS_INVALIDATE of locked memory",
        )?;
        expect_err(hole, sys::ENOMEM, "unmapped")
    });
    s.pageos("minherit_rules", || {
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        let mut results = [Ok(0); 4];
        for (i, inherit) in [
            sys::INHERIT_SHARE,
            sys::INHERIT_COPY,
            sys::INHERIT_NONE,
            sys::INHERIT_ZERO,
        ]
        .into_iter()
        .enumerate()
        {
            results[i] = sys::minherit(a, 2 * PAGE, inherit);
        }
        let bad = sys::minherit(a, PAGE, 4);
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        let hole = sys::minherit(a, PAGE, sys::INHERIT_COPY);
        ensure!(
            results.iter().all(|r| *r == Ok(0)),
            "values gave {results:?}"
        )?;
        expect_err(bad, sys::EINVAL, "value 4")?;
        expect_err(hole, sys::EINVAL, "unmapped")
    });
}

fn brk_and_kernel_access(s: &mut Suite) {
    // pageos's own file: a walk of the kernel half would show any process
    // the kernel's page tables and physical layout.
    s.pageos("pagewalk_of_the_kernel_half_is_eacces", || {
        let kernel = sys::open("/proc/self/pagewalk/ffffffff80000000\0", 0);
        let direct = sys::open("/proc/self/pagewalk/ffff800000000000\0", 0);
        let a = sys::mmap_anon(PAGE).map_err(why("mmap"))?;
        let mut path = *b"/proc/self/pagewalk/0000000000000000\0";
        for i in 0..16 {
            path[20 + i] = b"0123456789abcdef"[(a >> ((15 - i) * 4)) & 0xf];
        }
        let user = sys::open(core::str::from_utf8(&path).unwrap_or(""), 0);
        sys::munmap(a, PAGE).map_err(why("munmap"))?;
        if let Ok(fd) = user {
            let _ = sys::close(fd);
        }
        expect_err(kernel, sys::EACCES, "walk of 0xffffffff80000000")?;
        expect_err(direct, sys::EACCES, "walk of 0xffff800000000000")?;
        ensure!(user.is_ok(), "walk of a user page: {user:?}")
    });
    s.both("brk_grows_and_shrinks", || {
        let start = sys::brk(0);
        ensure!(start != 0, "brk(0) gave 0")?;
        let grown = sys::brk(start + 3 * PAGE);
        ensure!(grown == start + 3 * PAGE, "brk up gave {grown:#x}")?;
        poke(start + 3 * PAGE - 1, 1);
        let shrunk = sys::brk(start);
        let regrown = sys::brk(start + 3 * PAGE);
        let zero = peek(start + 3 * PAGE - 1);
        sys::brk(start);
        ensure!(
            shrunk == start && regrown == start + 3 * PAGE,
            "shrink {shrunk:#x} regrow {regrown:#x}"
        )?;
        ensure!(zero == 0, "memory given back by brk came back with {zero}")
    });
    s.both("brk_refuses_to_overlap_a_mapping", || {
        let start = sys::brk(0);
        let top = (start + PAGE - 1) & !(PAGE - 1);
        let m = sys::mmap(
            top + 4 * PAGE,
            PAGE,
            RW,
            ANON | sys::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
        .map_err(why("mmap"))?;
        let r = sys::brk(top + 8 * PAGE);
        sys::munmap(m, PAGE).map_err(why("munmap"))?;
        ensure!(
            r == start,
            "brk over a mapping gave {r:#x}, break was {start:#x}"
        )
    });
    s.both("kernel_writes_into_untouched_memory", || {
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        let fd = sys::open("/sbin/init\0", 0).map_err(why("open"));
        let n = fd.and_then(|fd| {
            let n = sys::raw(sys::nr::READ, [fd, a + PAGE - 2, 4, 0, 0, 0]).map_err(why("read"));
            let _ = sys::close(fd);
            n
        });
        let magic = [
            peek(a + PAGE - 2),
            peek(a + PAGE - 1),
            peek(a + PAGE),
            peek(a + PAGE + 1),
        ];
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        ensure!(n? == 4 && magic == *b"\x7fELF", "read gave {magic:?}")
    });
    s.both("kernel_access_to_bad_memory_is_efault", || {
        let a = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
        sys::mprotect(a, PAGE, PROT_NONE).map_err(why("mprotect"))?;
        sys::mprotect(a + PAGE, PAGE, PROT_READ).map_err(why("mprotect"))?;
        let from_none = sys::raw(sys::nr::WRITE, [1, a, 8, 0, 0, 0]);
        let fd = sys::open("/sbin/init\0", 0).map_err(why("open"))?;
        let into_ro = sys::raw(sys::nr::READ, [fd, a + PAGE, 8, 0, 0, 0]);
        let _ = sys::close(fd);
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        let from_unmapped = sys::raw(sys::nr::WRITE, [1, a, 8, 0, 0, 0]);
        expect_err(from_none, sys::EFAULT, "write from PROT_NONE")?;
        expect_err(into_ro, sys::EFAULT, "read into PROT_READ")?;
        expect_err(from_unmapped, sys::EFAULT, "write from unmapped memory")
    });
    s.pageos("proc_counters_track_faults_and_commit", || {
        let faults = proc_number("/proc/vmstat\0", "pgfault_zero_fill")?;
        let committed = proc_number("/proc/meminfo\0", "Committed_AS")?;
        let a = sys::mmap_anon(64 * PAGE).map_err(why("mmap"))?;
        let charged = proc_number("/proc/meminfo\0", "Committed_AS")?;
        for page in 0..10 {
            poke(a + page * PAGE, 1);
        }
        let after = proc_number("/proc/vmstat\0", "pgfault_zero_fill")?;
        sys::munmap(a, 64 * PAGE).map_err(why("munmap"))?;
        let released = proc_number("/proc/meminfo\0", "Committed_AS")?;
        ensure!(
            after >= faults + 10,
            "pgfault_zero_fill went from {faults} to {after}"
        )?;
        ensure!(
            charged == committed + 256 && released == committed,
            "Committed_AS {committed} -> {charged} -> {released} kB"
        )
    });
    s.pageos("proc_self_maps_shows_the_mapping", || {
        let a = sys::mmap(0, 2 * PAGE, PROT_READ, ANON, -1, 0).map_err(why("mmap"))?;
        let fd = sys::open("/proc/self/maps\0", 0).map_err(why("open"))?;
        let mut buf = [0u8; 4096];
        let mut text = [0u8; 32];
        let line = format_range(&mut text, a, a + 2 * PAGE);
        let mut found = false;
        let mut carry = 0;
        loop {
            let n = match sys::read(fd as i32, &mut buf[carry..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..carry + n];
            found |= chunk.split(|&b| b == b'\n').any(|l| {
                l.starts_with(line) && l.get(line.len()..line.len() + 5) == Some(b" r--p")
            });
            // Keep a partial last line for the next read.
            let keep = chunk
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(chunk.len(), |i| chunk.len() - i - 1);
            buf.copy_within(carry + n - keep..carry + n, 0);
            carry = keep;
        }
        let _ = sys::close(fd);
        sys::munmap(a, 2 * PAGE).map_err(why("munmap"))?;
        ensure!(
            found,
            "no line for {}",
            core::str::from_utf8(line).unwrap_or("?")
        )
    });
}

/// A number from a /proc file of `name value` or `Name:  value kB` lines.
/// "start-end" in lower-case hex, as /proc/self/maps writes it.
fn format_range(out: &mut [u8; 32], start: usize, end: usize) -> &[u8] {
    let mut len = 0;
    for (i, value) in [start, end].into_iter().enumerate() {
        if i == 1 {
            out[len] = b'-';
            len += 1;
        }
        let digits = (usize::BITS - value.leading_zeros()).div_ceil(4).max(1) as usize;
        for d in (0..digits).rev() {
            out[len] = b"0123456789abcdef"[(value >> (d * 4)) & 0xf];
            len += 1;
        }
    }
    &out[..len]
}

/// One access that must kill the process; returns only if it did not.
fn fault(name: &str) -> i32 {
    match name {
        "read-prot-none" => {
            let a = sys::mmap(0, PAGE, PROT_NONE, ANON, -1, 0).unwrap_or(0);
            peek(a);
        }
        "write-read-only" => {
            let a = sys::mmap(0, PAGE, PROT_READ, ANON, -1, 0).unwrap_or(0);
            poke(a, 1);
        }
        "after-munmap" => {
            let a = sys::mmap_anon(PAGE).unwrap_or(0);
            poke(a, 1);
            let _ = sys::munmap(a, PAGE);
            poke(a, 1);
        }
        "unmapped" => {
            peek(0x2000_0000_0000);
        }
        "exec-no-exec" => {
            let a = sys::mmap_anon(PAGE).unwrap_or(0);
            poke(a, 0xc3); // ret: it would run if the page were executable
            // SAFETY: deliberately not: NX must stop this call.
            let f: extern "C" fn() = unsafe { core::mem::transmute(a) };
            f();
        }
        "guard" => {
            let g = sys::mmap(0, 4 * PAGE, PROT_NONE, sys::MAP_GUARD, -1, 0).unwrap_or(0);
            peek(g + PAGE);
        }
        "stack-guard" => {
            let a = sys::mmap(0, 8 * PAGE, RW, sys::MAP_STACK, -1, 0).unwrap_or(0);
            poke(a + 8 * PAGE - 1, 1);
            // The whole reservation is the stack's: the guard is the page below.
            poke(a, 1);
            poke(a - PAGE, 1);
        }
        "out-of-memory" => {
            // Promise nothing (MAP_NORESERVE), then use more than there is:
            // the kernel kills this process with SIGKILL and carries on.
            let len = 64usize << 30;
            let a = sys::mmap(0, len, RW, ANON | sys::MAP_NORESERVE, -1, 0).unwrap_or(0);
            for page in (a..a + len).step_by(PAGE) {
                poke(page, 1);
            }
        }
        other => {
            println!("vmtest: unknown fault {other:?}");
            return 2;
        }
    }
    println!("vmtest: fault {name} did not kill the process");
    1
}
