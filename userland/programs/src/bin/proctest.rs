//! `proctest`: processes and signals as a user program sees them: fork and
//! copy-on-write, shared memory across fork, minherit and its madvise
//! equivalents, wait4 and the wait status, orphans, kill, signal handlers
//! that repair a fault and return, execve.
//!
//! Run without arguments it prints `ok NAME` / `FAIL NAME: why` per case and
//! `N passed, M failed`. The same binary runs as init of a Linux kernel
//! (`scripts/linux-run.py proctest`): minherit is ENOSYS there, and then only
//! the cases whose rule Linux shares run. `proctest exec-child ARGS...` is
//! what the execve case runs. `proctest bench` measures fork (eager page
//! table copy) against the faults a lazy copy would take instead.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use rt::sys::{self, ANON, RW, SigInfo, peek, poke};
use rt::test::{Outcome, Suite, Why, expect_err, why};
use rt::{Args, ensure, fail, println};

rt::main!(main);

const PAGE: usize = 4096;

fn main(args: Args) -> i32 {
    match args.get(1) {
        "" => cases(args),
        "exec-child" => exec_child(args),
        "rules-child" => rules_child(),
        "bench" => bench(),
        other => {
            println!("proctest: unknown command {other:?}");
            2
        }
    }
}

/// Run `body` in a child process, which exits with its result.
fn spawn(body: impl FnOnce() -> i32) -> Result<usize, Why> {
    match sys::fork().map_err(why("fork"))? {
        0 => sys::exit(body()),
        pid => Ok(pid),
    }
}

/// Wait for `pid` and return its wait status.
fn wait_for(pid: usize) -> Result<i32, Why> {
    let mut status = 0;
    let got = sys::wait4(pid as isize, &mut status, 0).map_err(why("wait4"))?;
    ensure!(got == pid, "wait4 returned pid {got}, want {pid}")?;
    Ok(status)
}

/// Run `body` in a child and check that it exits with 0.
fn in_child(body: impl FnOnce() -> i32) -> Outcome {
    let status = wait_for(spawn(body)?)?;
    ensure!(
        sys::exited(status) == Some(0),
        "child: wait status {status:#x} (exit code 0 expected)"
    )
}

/// Private anonymous memory, mapped and written with `value` on every page.
fn private_pages(pages: usize, value: u8) -> Result<usize, Why> {
    let a = sys::mmap_anon(pages * PAGE).map_err(why("mmap"))?;
    for i in 0..pages {
        poke(a + i * PAGE, value);
    }
    Ok(a)
}

fn shared_pages(pages: usize) -> Result<usize, Why> {
    sys::mmap(
        0,
        pages * PAGE,
        RW,
        sys::MAP_SHARED | sys::MAP_ANONYMOUS,
        -1,
        0,
    )
    .map_err(why("mmap shared"))
}

fn unmap(addr: usize, pages: usize) -> Outcome {
    sys::munmap(addr, pages * PAGE)
        .map(|_| ())
        .map_err(why("munmap"))
}

/// Spin (yielding) until the shared byte at `addr` is `value`.
fn await_byte(addr: usize, value: u8) {
    while peek(addr) != value {
        sys::sched_yield();
    }
}

fn cases(args: Args) -> i32 {
    let mut s = Suite::new("proctest");
    s.both("fork-returns-twice", fork_returns_twice);
    s.both("fork-cow-isolation-both-ways", cow_isolation);
    s.both("fork-cow-page-shared-by-300-children", cow_300_children);
    s.both("fork-shared-anonymous-stays-shared", shared_across_fork);
    s.pageos("minherit-share-copy-none-zero", minherit_modes);
    s.pageos("minherit-bad-value-is-einval", minherit_errors);
    s.both("madvise-dontfork-dofork", madvise_dontfork);
    s.both("madvise-wipeonfork-keeponfork", madvise_wipeonfork);
    s.both("fork-40-concurrent-children", many_children);
    s.both("wait4-wnohang-and-specific-pid", wait_nohang);
    s.both("wait4-echild", wait_echild);
    s.both("wait4-exit-codes", exit_codes);
    s.both("wait4-status-sigsegv-bad-store", || {
        dies_by(sys::SIGSEGV, bad_store)
    });
    s.both("wait4-status-sigill-ud2", || dies_by(sys::SIGILL, ud2));
    s.both("wait4-status-sigbus-from-kill", || {
        dies_by(sys::SIGBUS, raise_sigbus)
    });
    s.both("wait4-status-sigkill-via-kill", killed_by_parent);
    s.both("wait4-status-sigterm-default", || {
        dies_by(sys::SIGTERM, raise_sigterm)
    });
    s.both("getppid-and-orphans-go-to-init", orphans);
    s.both("kill-errors", kill_errors);
    s.both("sigaction-errors", sigaction_errors);
    s.both("sigsegv-handler-accerr-mprotect-resume", segv_accerr);
    s.both("sigsegv-handler-maperr-mmap-resume", segv_maperr);
    s.both("signal-handler-via-kill-sees-sender", kill_handler);
    s.both("ignored-signal-is-discarded", ignored_signal);
    s.both("blocked-signal-waits-for-unblock", blocked_signal);
    s.both("handler-preserves-registers", registers_survive_handler);
    s.both("an-async-signal-keeps-rcx-and-r11", || {
        in_child(async_signals_keep_rcx_and_r11)
    });
    s.both("syscall-keeps-user-nt-and-ac-flags", || {
        in_child(flags_survive_syscalls)
    });
    s.both("trap-flag-from-sigreturn-is-trap-trace", || {
        in_child(single_step_from_sigreturn)
    });
    s.both("execve-args-and-environment", || exec_with_args(args));
    s.both("execve-errors", || exec_errors(args));
    s.pageos("execve-refuses-interp-and-misaligned-segments", bad_elves);
    s.both("sa-restart-restarts-wait4-eintr-without", || {
        in_child(wait4_restarts)
    });
    s.both("sigaltstack-sa-onstack-handler-runs-on-it", || {
        in_child(alternate_stack)
    });
    s.both("running-executable-is-etxtbsy", || running_executable(args));
    s.pageos("freebsd-branded-elf-runs-under-bsd-rules", || branded(args));
    s.finish()
}

fn fork_returns_twice() -> Outcome {
    let me = sys::getpid();
    // The child is another process, and we are its parent.
    in_child(|| i32::from(sys::getppid() != me || sys::getpid() == me))
}

fn cow_isolation() -> Outcome {
    let a = private_pages(4, 1)?;
    let pid = spawn(|| {
        // The parent may already have written 3: the child must still see 1.
        if peek(a) != 1 || peek(a + 3 * PAGE) != 1 {
            return 1;
        }
        poke(a, 2);
        poke(a + PAGE, 2);
        i32::from(peek(a) != 2 || peek(a + PAGE) != 2 || peek(a + 2 * PAGE) != 1)
    })?;
    poke(a, 3);
    let status = wait_for(pid)?;
    ensure!(
        sys::exited(status) == Some(0),
        "child saw the parent's store or lost its own (status {status:#x})"
    )?;
    ensure!(peek(a) == 3, "parent's store lost: {}", peek(a))?;
    ensure!(
        peek(a + PAGE) == 1,
        "the child's store reached the parent: {}",
        peek(a + PAGE)
    )?;
    unmap(a, 4)
}

fn cow_300_children() -> Outcome {
    const CHILDREN: usize = 300;
    let a = private_pages(1, 42)?;
    let go = shared_pages(1)?;
    let mut pids = [0usize; CHILDREN];
    for pid in pids.iter_mut() {
        *pid = spawn(|| {
            await_byte(go, 1);
            if peek(a) != 42 {
                return 1;
            }
            poke(a, 7);
            i32::from(peek(a) != 7)
        })?;
    }
    // All 300 children and we share the page now; let them write.
    poke(go, 1);
    poke(a, 43);
    for pid in pids {
        let status = wait_for(pid)?;
        ensure!(
            sys::exited(status) == Some(0),
            "child {pid}: status {status:#x}"
        )?;
    }
    ensure!(peek(a) == 43, "parent's page is {}", peek(a))?;
    unmap(go, 1)?;
    unmap(a, 1)
}

fn shared_across_fork() -> Outcome {
    let a = shared_pages(2)?;
    poke(a, 5);
    in_child(|| {
        if peek(a) != 5 {
            return 1;
        }
        poke(a, 6);
        // A page nobody touched before the fork is shared too.
        poke(a + PAGE, 9);
        0
    })?;
    ensure!(
        peek(a) == 6,
        "the child's store is not visible: {}",
        peek(a)
    )?;
    ensure!(peek(a + PAGE) == 9, "second page: {}", peek(a + PAGE))?;
    unmap(a, 2)
}

/// mincore says whether [addr, addr + PAGE) is mapped at all (ENOMEM if not).
fn mapped(addr: usize) -> bool {
    let mut v = [0u8; 1];
    sys::mincore(addr, PAGE, &mut v).is_ok()
}

fn minherit_modes() -> Outcome {
    let modes = [
        sys::INHERIT_SHARE,
        sys::INHERIT_COPY,
        sys::INHERIT_NONE,
        sys::INHERIT_ZERO,
    ];
    let mut addrs = [0usize; 4];
    for (i, &mode) in modes.iter().enumerate() {
        addrs[i] = private_pages(2, 50 + i as u8)?;
        sys::minherit(addrs[i], 2 * PAGE, mode).map_err(why("minherit"))?;
    }
    let [share, copy, none, zero] = addrs;
    in_child(|| {
        let ok = peek(share) == 50
            && peek(copy) == 51
            && !mapped(none)
            && peek(zero) == 0
            && peek(zero + PAGE) == 0;
        poke(share, 60);
        poke(share + PAGE, 61);
        poke(copy, 70);
        poke(zero, 80);
        i32::from(!ok)
    })?;
    ensure!(
        peek(share) == 60 && peek(share + PAGE) == 61,
        "INHERIT_SHARE: the child's stores are not visible"
    )?;
    ensure!(peek(copy) == 51, "INHERIT_COPY: the child's store leaked")?;
    ensure!(peek(none) == 52, "INHERIT_NONE: the parent's data changed")?;
    ensure!(peek(zero) == 53, "INHERIT_ZERO: the parent's data changed")?;
    // After the fork, INHERIT_SHARE memory stays shared with the next child.
    in_child(|| {
        poke(share, 62);
        0
    })?;
    ensure!(
        peek(share) == 62,
        "INHERIT_SHARE: second child's store lost"
    )?;
    for a in addrs {
        unmap(a, 2)?;
    }
    Ok(())
}

fn minherit_errors() -> Outcome {
    let a = private_pages(1, 0)?;
    expect_err(sys::minherit(a, PAGE, 4), sys::EINVAL, "inherit 4")?;
    unmap(a, 1)?;
    expect_err(
        sys::minherit(a, PAGE, sys::INHERIT_NONE),
        sys::EINVAL,
        "unmapped range",
    )
}

const MADV_DONTFORK: usize = 10;
const MADV_DOFORK: usize = 11;
const MADV_WIPEONFORK: usize = 18;
const MADV_KEEPONFORK: usize = 19;

fn madvise_dontfork() -> Outcome {
    let gone = private_pages(1, 1)?;
    let back = private_pages(1, 2)?;
    sys::madvise(gone, PAGE, MADV_DONTFORK).map_err(why("DONTFORK"))?;
    sys::madvise(back, PAGE, MADV_DONTFORK).map_err(why("DONTFORK"))?;
    sys::madvise(back, PAGE, MADV_DOFORK).map_err(why("DOFORK"))?;
    in_child(|| i32::from(mapped(gone) || peek(back) != 2))?;
    ensure!(peek(gone) == 1, "the parent lost its DONTFORK page")?;
    unmap(gone, 1)?;
    unmap(back, 1)
}

fn madvise_wipeonfork() -> Outcome {
    let wiped = private_pages(1, 1)?;
    let kept = private_pages(1, 2)?;
    sys::madvise(wiped, PAGE, MADV_WIPEONFORK).map_err(why("WIPEONFORK"))?;
    sys::madvise(kept, PAGE, MADV_WIPEONFORK).map_err(why("WIPEONFORK"))?;
    sys::madvise(kept, PAGE, MADV_KEEPONFORK).map_err(why("KEEPONFORK"))?;
    in_child(|| i32::from(peek(wiped) != 0 || peek(kept) != 2))?;
    ensure!(peek(wiped) == 1, "the parent's WIPEONFORK page was wiped")?;
    // Shared memory cannot be wiped on fork (Linux: EINVAL).
    let shared = shared_pages(1)?;
    expect_err(
        sys::madvise(shared, PAGE, MADV_WIPEONFORK),
        sys::EINVAL,
        "WIPEONFORK on shared memory",
    )?;
    unmap(shared, 1)?;
    unmap(wiped, 1)?;
    unmap(kept, 1)
}

fn many_children() -> Outcome {
    const N: usize = 40;
    let go = shared_pages(1)?;
    for i in 0..N {
        spawn(|| {
            await_byte(go, 1);
            i as i32 + 1
        })?;
    }
    poke(go, 1);
    let mut seen = [false; N + 1];
    for _ in 0..N {
        let mut status = 0;
        sys::wait4(-1, &mut status, 0).map_err(why("wait4(-1)"))?;
        let Some(code) = sys::exited(status) else {
            return fail!("a child died: status {status:#x}");
        };
        ensure!(
            (1..=N as i32).contains(&code) && !seen[code as usize],
            "unexpected or repeated exit code {code}"
        )?;
        seen[code as usize] = true;
    }
    let mut status = 0;
    expect_err(sys::wait4(-1, &mut status, 0), sys::ECHILD, "all reaped")?;
    unmap(go, 1)
}

fn wait_nohang() -> Outcome {
    let go = shared_pages(1)?;
    let first = spawn(|| {
        await_byte(go, 1);
        11
    })?;
    let second = spawn(|| 22)?;
    let mut status = 0;
    // The first child cannot exit before we let it.
    let got = sys::wait4(first as isize, &mut status, sys::WNOHANG).map_err(why("WNOHANG"))?;
    ensure!(got == 0, "wait4(WNOHANG) on a running child returned {got}")?;
    // A specific pid: the second child, whichever exits first.
    ensure!(
        sys::exited(wait_for(second)?) == Some(22),
        "second child's code"
    )?;
    poke(go, 1);
    ensure!(
        sys::exited(wait_for(first)?) == Some(11),
        "first child's code"
    )?;
    unmap(go, 1)
}

fn wait_echild() -> Outcome {
    let mut status = 0;
    expect_err(sys::wait4(-1, &mut status, 0), sys::ECHILD, "no children")?;
    expect_err(
        sys::wait4(-1, &mut status, sys::WNOHANG),
        sys::ECHILD,
        "no children, WNOHANG",
    )?;
    // A pid that is not our child (our own).
    expect_err(
        sys::wait4(sys::getpid() as isize, &mut status, 0),
        sys::ECHILD,
        "not a child",
    )?;
    expect_err(
        sys::wait4(-1, &mut status, 0x100_0000),
        sys::EINVAL,
        "bad options",
    )
}

fn exit_codes() -> Outcome {
    for code in [0, 1, 42, 255] {
        let status = wait_for(spawn(|| code)?)?;
        ensure!(
            status == code << 8 && sys::exited(status) == Some(code),
            "exit({code}) gave status {status:#x}"
        )?;
    }
    Ok(())
}

/// The child runs `body` and must be killed by `signal` (status = signal).
fn dies_by(signal: usize, body: fn() -> i32) -> Outcome {
    let status = wait_for(spawn(body)?)?;
    ensure!(
        status == signal as i32 && sys::killed_by(status) == Some(signal as i32),
        "want killed by signal {signal}, got status {status:#x}"
    )
}

fn bad_store() -> i32 {
    poke(0, 1);
    100
}

fn ud2() -> i32 {
    // SAFETY: raises #UD on purpose; the process dies of SIGILL.
    unsafe { core::arch::asm!("ud2") };
    100
}

fn raise_sigbus() -> i32 {
    let _ = sys::kill(sys::getpid() as isize, sys::SIGBUS);
    100
}

fn raise_sigterm() -> i32 {
    let _ = sys::kill(sys::getpid() as isize, sys::SIGTERM);
    100
}

fn killed_by_parent() -> Outcome {
    let pid = spawn(|| {
        loop {
            sys::sched_yield();
        }
    })?;
    sys::kill(pid as isize, sys::SIGKILL).map_err(why("kill"))?;
    let status = wait_for(pid)?;
    ensure!(
        sys::killed_by(status) == Some(sys::SIGKILL as i32),
        "status {status:#x}"
    )
}

fn orphans() -> Outcome {
    let box_ = shared_pages(1)?;
    let me = sys::getpid();
    let child = spawn(|| {
        if sys::getppid() != me {
            return 1;
        }
        match sys::fork() {
            Ok(0) => {
                // Wait until our parent has gone, then report our new parent.
                let mut tries = 0;
                while sys::getppid() != 1 && tries < 100_000 {
                    sys::sched_yield();
                    tries += 1;
                }
                poke(box_, sys::getppid() as u8);
                poke(box_ + 1, 1);
                sys::exit(0)
            }
            Ok(_) => 0,
            Err(_) => 2,
        }
    })?;
    ensure!(sys::exited(wait_for(child)?) == Some(0), "child failed")?;
    // We are init here (pid 1, on pageos and on Linux): the orphan is ours
    // to reap now.
    if me == 1 {
        let mut status = 0;
        let got = sys::wait4(-1, &mut status, 0).map_err(why("wait4 orphan"))?;
        ensure!(got != child, "reaped the dead child twice")?;
    } else {
        await_byte(box_ + 1, 1);
    }
    ensure!(peek(box_ + 1) == 1, "the orphan did not report")?;
    ensure!(
        peek(box_) == 1,
        "the orphan's parent is {}, not init",
        peek(box_)
    )?;
    unmap(box_, 1)
}

fn kill_errors() -> Outcome {
    let me = sys::getpid() as isize;
    expect_err(sys::kill(99_999, 0), sys::ESRCH, "kill of a missing pid")?;
    expect_err(sys::kill(me, 65), sys::EINVAL, "signal 65")?;
    ensure!(sys::kill(me, 0).is_ok(), "kill(self, 0) failed")?;
    // A reaped child is gone for kill.
    let pid = spawn(|| 0)?;
    let status = wait_for(pid)?;
    ensure!(sys::exited(status) == Some(0), "child status")?;
    expect_err(
        sys::kill(pid as isize, 0),
        sys::ESRCH,
        "kill of a reaped pid",
    )
}

extern "C" fn never_called(_: i32, _: &SigInfo, _: *mut u8) {}

fn sigaction_errors() -> Outcome {
    expect_err(
        sys::catch(sys::SIGKILL, never_called, 0),
        sys::EINVAL,
        "catching SIGKILL",
    )?;
    expect_err(
        sys::catch(sys::SIGSTOP, never_called, 0),
        sys::EINVAL,
        "catching SIGSTOP",
    )?;
    expect_err(sys::catch(0, never_called, 0), sys::EINVAL, "signal 0")?;
    expect_err(sys::catch(65, never_called, 0), sys::EINVAL, "signal 65")?;
    let bad = sys::raw(sys::nr_signal::RT_SIGACTION, [sys::SIGUSR1, 8, 0, 8, 0, 0]);
    expect_err(bad, sys::EFAULT, "act at address 8")?;
    let size = sys::raw(sys::nr_signal::RT_SIGACTION, [sys::SIGUSR1, 0, 0, 4, 0, 0]);
    expect_err(size, sys::EINVAL, "sigsetsize 4")?;
    // The old action comes back as it was set.
    sys::set_disposition(sys::SIGUSR1, sys::SIG_IGN).map_err(why("SIG_IGN"))?;
    let mut old = sys::SigAction::default();
    sys::rt_sigaction(sys::SIGUSR1, None, Some(&mut old)).map_err(why("query"))?;
    ensure!(
        old.handler == sys::SIG_IGN,
        "old handler {:#x}",
        old.handler
    )?;
    sys::set_disposition(sys::SIGUSR1, sys::SIG_DFL).map_err(why("SIG_DFL"))?;
    Ok(())
}

// What the fault handlers saw.
static SEEN_SIGNAL: AtomicI32 = AtomicI32::new(0);
static SEEN_CODE: AtomicI32 = AtomicI32::new(-1);
static SEEN_ADDR: AtomicUsize = AtomicUsize::new(0);
static SEEN_PID: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);
/// The page the fault handlers repair.
static REPAIR: AtomicUsize = AtomicUsize::new(0);

fn record(signal: i32, info: &SigInfo) {
    SEEN_SIGNAL.store(signal, Ordering::SeqCst);
    SEEN_CODE.store(info.code, Ordering::SeqCst);
    SEEN_ADDR.store(info.addr(), Ordering::SeqCst);
    SEEN_PID.store(info.pid() as usize, Ordering::SeqCst);
    CALLS.fetch_add(1, Ordering::SeqCst);
}

fn reset_seen() {
    SEEN_SIGNAL.store(0, Ordering::SeqCst);
    SEEN_CODE.store(-1, Ordering::SeqCst);
    SEEN_ADDR.store(0, Ordering::SeqCst);
    CALLS.store(0, Ordering::SeqCst);
}

/// A user-space pager's handler: make the page writable and return, so
/// the faulting store runs again and completes.
extern "C" fn unprotect(signal: i32, info: &SigInfo, _: *mut u8) {
    record(signal, info);
    let page = REPAIR.load(Ordering::SeqCst);
    if sys::mprotect(page, PAGE, RW).is_err() {
        sys::exit(90);
    }
}

/// The handler for a hole: map a page there and return.
extern "C" fn map_in(signal: i32, info: &SigInfo, _: *mut u8) {
    record(signal, info);
    let page = info.addr() & !(PAGE - 1);
    let fixed = sys::MAP_FIXED | ANON;
    if sys::mmap(page, PAGE, RW, fixed, -1, 0) != Ok(page) {
        sys::exit(91);
    }
}

fn segv_accerr() -> Outcome {
    reset_seen();
    let a = private_pages(1, 0)?;
    sys::mprotect(a, PAGE, sys::PROT_READ).map_err(why("mprotect"))?;
    REPAIR.store(a, Ordering::SeqCst);
    sys::catch(sys::SIGSEGV, unprotect, 0).map_err(why("sigaction"))?;
    poke(a + 123, 77);
    sys::set_disposition(sys::SIGSEGV, sys::SIG_DFL).map_err(why("SIG_DFL"))?;
    ensure!(peek(a + 123) == 77, "the store did not complete")?;
    ensure!(
        CALLS.load(Ordering::SeqCst) == 1,
        "handler calls: {}",
        CALLS.load(Ordering::SeqCst)
    )?;
    ensure!(
        SEEN_SIGNAL.load(Ordering::SeqCst) == sys::SIGSEGV as i32,
        "signal"
    )?;
    ensure!(
        SEEN_CODE.load(Ordering::SeqCst) == sys::SEGV_ACCERR,
        "si_code {} (want SEGV_ACCERR)",
        SEEN_CODE.load(Ordering::SeqCst)
    )?;
    ensure!(
        SEEN_ADDR.load(Ordering::SeqCst) == a + 123,
        "si_addr {:#x}, want {:#x}",
        SEEN_ADDR.load(Ordering::SeqCst),
        a + 123
    )?;
    unmap(a, 1)
}

fn segv_maperr() -> Outcome {
    reset_seen();
    let hole = private_pages(1, 0)?;
    unmap(hole, 1)?;
    sys::catch(sys::SIGSEGV, map_in, 0).map_err(why("sigaction"))?;
    poke(hole + 8, 5);
    sys::set_disposition(sys::SIGSEGV, sys::SIG_DFL).map_err(why("SIG_DFL"))?;
    ensure!(peek(hole + 8) == 5, "the store did not complete")?;
    ensure!(
        SEEN_CODE.load(Ordering::SeqCst) == sys::SEGV_MAPERR,
        "si_code {} (want SEGV_MAPERR)",
        SEEN_CODE.load(Ordering::SeqCst)
    )?;
    ensure!(
        SEEN_ADDR.load(Ordering::SeqCst) == hole + 8,
        "si_addr {:#x}",
        SEEN_ADDR.load(Ordering::SeqCst)
    )?;
    unmap(hole, 1)
}

extern "C" fn count(signal: i32, info: &SigInfo, _: *mut u8) {
    record(signal, info);
}

fn kill_handler() -> Outcome {
    reset_seen();
    sys::catch(sys::SIGUSR2, count, 0).map_err(why("sigaction"))?;
    let me = sys::getpid();
    sys::kill(me as isize, sys::SIGUSR2).map_err(why("kill"))?;
    sys::set_disposition(sys::SIGUSR2, sys::SIG_DFL).map_err(why("SIG_DFL"))?;
    ensure!(CALLS.load(Ordering::SeqCst) == 1, "handler did not run")?;
    ensure!(SEEN_CODE.load(Ordering::SeqCst) == sys::SI_USER, "si_code")?;
    ensure!(
        SEEN_PID.load(Ordering::SeqCst) == me,
        "si_pid {}",
        SEEN_PID.load(Ordering::SeqCst)
    )?;
    // A caught signal from the parent, in a child that waits for it.
    let go = shared_pages(1)?;
    let pid = spawn(|| {
        reset_seen();
        if sys::catch(sys::SIGUSR1, count, 0).is_err() {
            return 1;
        }
        poke(go, 1);
        while CALLS.load(Ordering::SeqCst) == 0 {
            sys::sched_yield();
        }
        i32::from(SEEN_PID.load(Ordering::SeqCst) != sys::getppid())
    })?;
    await_byte(go, 1);
    sys::kill(pid as isize, sys::SIGUSR1).map_err(why("kill child"))?;
    ensure!(sys::exited(wait_for(pid)?) == Some(0), "child's handler")?;
    unmap(go, 1)
}

fn ignored_signal() -> Outcome {
    in_child(|| {
        if sys::set_disposition(sys::SIGUSR1, sys::SIG_IGN).is_err() {
            return 1;
        }
        let _ = sys::kill(sys::getpid() as isize, sys::SIGUSR1);
        // SIGCHLD's default is to ignore: a child's exit does not kill us.
        match sys::fork() {
            Ok(0) => sys::exit(0),
            Ok(pid) => {
                let mut status = 0;
                let _ = sys::wait4(pid as isize, &mut status, 0);
            }
            Err(_) => return 2,
        }
        0
    })
}

fn blocked_signal() -> Outcome {
    reset_seen();
    sys::catch(sys::SIGUSR1, count, 0).map_err(why("sigaction"))?;
    let mut old = 0;
    sys::rt_sigprocmask(
        sys::SIG_BLOCK,
        Some(sys::sigbit(sys::SIGUSR1)),
        Some(&mut old),
    )
    .map_err(why("block"))?;
    sys::kill(sys::getpid() as isize, sys::SIGUSR1).map_err(why("kill"))?;
    let held = CALLS.load(Ordering::SeqCst);
    sys::rt_sigprocmask(sys::SIG_SETMASK, Some(old), None).map_err(why("unblock"))?;
    let after = CALLS.load(Ordering::SeqCst);
    sys::set_disposition(sys::SIGUSR1, sys::SIG_DFL).map_err(why("SIG_DFL"))?;
    ensure!(held == 0, "a blocked signal was delivered")?;
    ensure!(
        after == 1,
        "the unblocked signal was not delivered ({after})"
    )?;
    expect_err(
        sys::rt_sigprocmask(7, Some(0), None),
        sys::EINVAL,
        "how = 7",
    )
}

extern "C" fn clobber(signal: i32, info: &SigInfo, _: *mut u8) {
    record(signal, info);
    // SAFETY: only caller-saved registers, which the kernel must restore
    // for the interrupted code anyway.
    unsafe {
        core::arch::asm!(
            "mov rcx, 0x1111", "mov rdx, 0x2222", "mov rsi, 0x3333", "mov r8, 0x4444",
            // The programs are soft-float, so the compiler keeps nothing in xmm0.
            "pcmpeqd xmm0, xmm0",
            out("rcx") _, out("rdx") _, out("rsi") _, out("r8") _,
        );
    }
}

fn registers_survive_handler() -> Outcome {
    reset_seen();
    sys::catch(sys::SIGUSR1, clobber, 0).map_err(why("sigaction"))?;
    let pid = sys::getpid();
    let (r8, xmm): (u64, u64);
    // SAFETY: kill(getpid(), SIGUSR1) by hand, so that r8 and xmm0 hold
    // known values across the syscall during which the handler runs.
    unsafe {
        core::arch::asm!(
            "mov r8, 0x5eed",
            "mov r9, 0x77",
            "movq xmm0, r9",
            "syscall",
            "movq r9, xmm0",
            inlateout("rax") 62usize => _,
            in("rdi") pid,
            in("rsi") sys::SIGUSR1,
            lateout("r8") r8,
            lateout("r9") xmm,
            out("rcx") _, out("r11") _,
        );
    }
    sys::set_disposition(sys::SIGUSR1, sys::SIG_DFL).map_err(why("SIG_DFL"))?;
    ensure!(CALLS.load(Ordering::SeqCst) == 1, "the handler did not run")?;
    ensure!(r8 == 0x5eed, "r8 {r8:#x} after the handler")?;
    ensure!(xmm == 0x77, "xmm0 {xmm:#x} after the handler")
}

/// Signals that arrive while the program runs in user mode (not in a
/// system call) are delivered from the interrupt that took the CPU, so the
/// registers the handler's rt_sigreturn puts back include rcx and r11,
/// which a `syscall` would have clobbered but ordinary code keeps live. A
/// kernel that leaves rt_sigreturn by sysret (which loads rip from rcx and
/// rflags from r11) hands the program its rip in rcx: busybox's sh then
/// stored the low bits of an address as a malloc count (the crash that
/// the typed shell session met once in 28 runs). A child sends SIGUSR1
/// again and again while this loop checks rcx and r11 after every step,
/// until 20 signals came or 1.5 billion steps went by.
fn async_signals_keep_rcx_and_r11() -> i32 {
    reset_seen();
    if sys::catch(sys::SIGUSR1, count, 0).is_err() {
        return 2;
    }
    let parent = sys::getpid();
    let Ok(sender) = spawn(|| {
        for _ in 0..2000 {
            if sys::kill(parent as isize, sys::SIGUSR1).is_err() {
                return 0;
            }
            sys::sched_yield();
        }
        0
    }) else {
        return 3;
    };
    let calls = core::ptr::addr_of!(CALLS) as usize;
    let broken: u64;
    // SAFETY: a loop over registers only, reading CALLS through its
    // address; rcx and r11 are declared clobbered.
    unsafe {
        core::arch::asm!(
            "mov rcx, rdx",
            "mov r11, rsi",
            "2:",
            "cmp rcx, rdx",
            "jne 3f",
            "cmp r11, rsi",
            "jne 3f",
            "cmp qword ptr [r8], 20",
            "jae 4f",
            "dec rdi",
            "jnz 2b",
            "4:",
            "xor eax, eax",
            "jmp 5f",
            "3:",
            "mov eax, 1",
            "5:",
            in("rdx") 0x5eed_5eed_0000_0c0cu64,
            in("rsi") 0x0000_1111_0000_0b0bu64,
            in("r8") calls,
            inlateout("rdi") 1_500_000_000u64 => _,
            lateout("rax") broken,
            out("rcx") _, out("r11") _,
        );
    }
    let _ = sys::kill(sender as isize, sys::SIGKILL);
    let _ = wait_for(sender);
    let _ = sys::set_disposition(sys::SIGUSR1, sys::SIG_DFL);
    let seen = CALLS.load(Ordering::SeqCst);
    if broken != 0 {
        rt::println!("an-async-signal-keeps-rcx-and-r11: rcx or r11 changed after {seen} signals");
        return 1;
    }
    // Linux's scheduler may let the sender run only a few times before
    // the loop ends: one signal that came during it is enough.
    if seen == 0 {
        rt::println!("an-async-signal-keeps-rcx-and-r11: no signal arrived during the loop");
        return 4;
    }
    0
}

const TF: u64 = 1 << 8;
const NT: u64 = 1 << 14;
const AC: u64 = 1 << 18;
/// Where the saved rflags sit in the ucontext a handler gets (uc_mcontext
/// at 40, eflags its 18th word).
const UC_RFLAGS: usize = 40 + 17 * 8;

/// Set `extra` in rflags, make syscall `nr` (no arguments but rdi = `arg`),
/// and return rflags as they came back, with `extra` cleared again.
fn syscall_with_flags(extra: u64, nr: usize, args: [usize; 2]) -> u64 {
    let flags: u64;
    // SAFETY: only rflags' NT/AC bits change, for the span of one syscall
    // that takes its arguments in rdi and rsi; both are cleared before
    // any compiled code runs again.
    unsafe {
        core::arch::asm!(
            "pushfq",
            "or [rsp], {extra}",
            "popfq",
            "syscall",
            "pushfq",
            "pop {flags}",
            "pushfq",
            "and qword ptr [rsp], {keep}",
            "popfq",
            extra = in(reg) extra,
            keep = in(reg) !(NT | AC),
            flags = lateout(reg) flags,
            inlateout("rax") nr => _,
            in("rdi") args[0],
            in("rsi") args[1],
            out("rcx") _, out("r11") _,
        );
    }
    flags
}

/// Linux's syscall_nt selftest: NT and AC set by popf survive a syscall.
/// A kernel that kept NT set for itself would #GP in its next iretq: here
/// the handler (which runs with the NT it was interrupted with) returns
/// through a frame with TF set, which leaves rt_sigreturn by iretq.
fn flags_survive_syscalls() -> i32 {
    let pid = sys::getpid();
    for extra in [NT, AC, NT | AC] {
        let flags = syscall_with_flags(extra, 39, [0, 0]);
        if flags & extra != extra {
            println!("rflags {flags:#x} after getpid, {extra:#x} set before");
            return 1;
        }
    }
    reset_seen();
    if sys::catch(sys::SIGUSR1, set_trap_flag, 0).is_err()
        || sys::catch(sys::SIGTRAP, end_single_step, 0).is_err()
    {
        return 2;
    }
    syscall_with_flags(NT, 62, [pid, sys::SIGUSR1]);
    for _ in 0..20 {
        syscall_with_flags(NT, 24, [0, 0]);
    }
    if CALLS.load(Ordering::SeqCst) != 1 {
        return 3;
    }
    0
}

/// A SIGUSR1 handler that returns with TF set in its saved rflags (a
/// forged frame rt_sigreturn restores, as Linux allows).
extern "C" fn set_trap_flag(_: i32, _: &SigInfo, context: *mut u8) {
    // SAFETY: `context` is the ucontext the kernel built for this handler.
    unsafe {
        let at = context.add(UC_RFLAGS).cast::<u64>();
        at.write_unaligned(at.read_unaligned() | TF);
    }
}

/// The SIGTRAP handler: note the step, then clear TF so that it ends.
extern "C" fn end_single_step(signal: i32, info: &SigInfo, context: *mut u8) {
    record(signal, info);
    // SAFETY: as in set_trap_flag.
    unsafe {
        let at = context.add(UC_RFLAGS).cast::<u64>();
        at.write_unaligned(at.read_unaligned() & !TF);
    }
}

/// TF restored by rt_sigreturn single-steps the next user instruction:
/// SIGTRAP with si_code TRAP_TRACE and si_addr there, and the process goes on.
fn single_step_from_sigreturn() -> i32 {
    reset_seen();
    if sys::catch(sys::SIGUSR1, set_trap_flag, 0).is_err()
        || sys::catch(sys::SIGTRAP, end_single_step, 0).is_err()
    {
        return 2;
    }
    let _ = sys::kill(sys::getpid() as isize, sys::SIGUSR1);
    let (signal, code) = (
        SEEN_SIGNAL.load(Ordering::SeqCst),
        SEEN_CODE.load(Ordering::SeqCst),
    );
    if signal != sys::SIGTRAP as i32 || code != 2 || SEEN_ADDR.load(Ordering::SeqCst) == 0 {
        println!("after a TF return: signal {signal}, si_code {code} (SIGTRAP, TRAP_TRACE wanted)");
        return 1;
    }
    0
}

/// `proctest exec-child ARGS`: what execve starts. Exits 42 when its
/// arguments and environment are the ones the case passed.
fn exec_child(args: Args) -> i32 {
    let mut env_ok = false;
    for var in args.env() {
        env_ok |= var == "PROCTEST=exec env";
    }
    let args_ok = args.len() == 4 && args.get(2) == "one arg" && args.get(3).is_empty();
    if env_ok && args_ok { 42 } else { 1 }
}

fn exec_with_args(args: Args) -> Outcome {
    // Our own path: /bin/proctest on pageos, /init on Linux.
    let path = exec_path(args)?;
    let status = wait_for(spawn(|| {
        let argv = [
            path.as_ptr(),
            c"exec-child".as_ptr().cast(),
            c"one arg".as_ptr().cast(),
            c"".as_ptr().cast(),
            core::ptr::null(),
        ];
        let envp = [c"PROCTEST=exec env".as_ptr().cast(), core::ptr::null()];
        let _ = sys::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        99
    })?)?;
    ensure!(
        sys::exited(status) == Some(42),
        "exec'd program: status {status:#x} (42: arguments arrived; 99: execve failed)"
    )
}

fn exec_errors(args: Args) -> Outcome {
    let argv = [c"x".as_ptr().cast(), core::ptr::null()];
    let envp = [core::ptr::null()];
    let exec = |path: &[u8]| sys::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
    expect_err(exec(b"/no/such/program\0"), sys::ENOENT, "missing file")?;
    expect_err(exec(b"/sbin\0"), sys::EACCES, "a directory")?;
    // A file that is not an ELF program: the QEMU test adds one with
    // `--file` (the Linux run has none, so the check is skipped there).
    if let Ok(fd) = sys::open("/etc/notelf\0", 0) {
        let _ = sys::close(fd);
        expect_err(exec(b"/etc/notelf\0"), sys::ENOEXEC, "a text file")?;
    }
    expect_err(
        sys::execve(8 as *const u8, argv.as_ptr(), envp.as_ptr()),
        sys::EFAULT,
        "path at address 8",
    )?;
    // A path longer than PATH_MAX.
    let long = sys::mmap_anon(2 * PAGE).map_err(why("mmap"))?;
    for i in 0..5000 {
        poke(long + i, b'a');
    }
    poke(long, b'/');
    let got = sys::execve(long as *const u8, argv.as_ptr(), envp.as_ptr());
    expect_err(got, sys::ENAMETOOLONG, "5000-byte path")?;
    unmap(long, 2)?;
    // Arguments are checked against an existing program, run in a child:
    // if execve wrongly succeeded, only the child would be replaced.
    let me = exec_path(args)?;
    // One argument longer than MAX_ARG_STRLEN (128 KiB): E2BIG.
    let huge = sys::mmap_anon(33 * PAGE).map_err(why("mmap"))?;
    for i in 0..33 * PAGE - 1 {
        poke(huge + i, b'x');
    }
    let errno_of = |argv: [*const u8; 3]| {
        wait_for(spawn(|| {
            match sys::execve(me.as_ptr(), argv.as_ptr(), envp.as_ptr()) {
                Err(e) => e.0,
                Ok(_) => 99,
            }
        })?)
        .map(|status| sys::exited(status).unwrap_or(-1))
    };
    let got = errno_of([c"x".as_ptr().cast(), huge as *const u8, core::ptr::null()])?;
    ensure!(
        got == sys::E2BIG.0,
        "huge argument: child exited {got} (want E2BIG)"
    )?;
    unmap(huge, 33)?;
    let got = errno_of([c"x".as_ptr().cast(), 8 as *const u8, core::ptr::null()])?;
    ensure!(
        got == sys::EFAULT.0,
        "argv[1] at address 8: child exited {got} (want EFAULT)"
    )
}

/// A one-segment ET_EXEC file: its PT_LOAD at file offset `offset`,
/// address `vaddr`, alignment `align`; with `interp`, a PT_INTERP first.
fn tiny_elf(offset: u64, vaddr: u64, align: u64, interp: bool) -> [u8; 0x2000] {
    let mut f = [0u8; 0x2000];
    let mut put = |at: usize, bytes: &[u8]| f[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"\x7fELF\x02\x01\x01");
    put(16, &2u16.to_le_bytes()); // ET_EXEC
    put(18, &62u16.to_le_bytes()); // EM_X86_64
    put(20, &1u32.to_le_bytes());
    put(24, &(vaddr + 0x40).to_le_bytes()); // entry
    put(32, &64u64.to_le_bytes()); // e_phoff
    put(52, &64u16.to_le_bytes());
    put(54, &56u16.to_le_bytes());
    put(56, &(1 + u16::from(interp)).to_le_bytes());
    let mut ph = 64;
    if interp {
        let name = b"/lib64/ld-linux-x86-64.so.2\0";
        put(ph, &3u32.to_le_bytes());
        put(ph + 8, &0x1800u64.to_le_bytes());
        put(ph + 32, &(name.len() as u64).to_le_bytes());
        put(ph + 40, &(name.len() as u64).to_le_bytes());
        put(0x1800, name);
        ph += 56;
    }
    put(ph, &1u32.to_le_bytes()); // PT_LOAD
    put(ph + 4, &5u32.to_le_bytes()); // R+X
    put(ph + 8, &offset.to_le_bytes());
    put(ph + 16, &vaddr.to_le_bytes());
    put(ph + 32, &0x100u64.to_le_bytes());
    put(ph + 40, &0x100u64.to_le_bytes());
    put(ph + 48, &align.to_le_bytes());
    f
}

/// PT_INTERP (no dynamic loader here) and a PT_LOAD whose offset and
/// address disagree modulo p_align are ENOEXEC, and the old image goes on;
/// the same file with the segment aligned loads (and dies at its entry,
/// which holds no code: SIGSEGV in the child is success).
fn bad_elves() -> Outcome {
    let path = "/bad-elf\0";
    let run = |image: &[u8]| -> Result<i32, Why> {
        let fd = sys::open_mode(path, sys::O_CREAT | sys::O_WRONLY | sys::O_TRUNC, 0o755)
            .map_err(why("create"))?;
        sys::write(fd as i32, image).map_err(why("write"))?;
        let _ = sys::close(fd);
        let argv = [c"bad-elf".as_ptr().cast::<u8>(), core::ptr::null()];
        let envp = [core::ptr::null()];
        wait_for(spawn(|| {
            match sys::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) {
                Err(e) => e.0,
                Ok(_) => 99,
            }
        })?)
    };
    let interp = run(&tiny_elf(0x1000, 0x40_1000, 0x1000, true))?;
    let misaligned = run(&tiny_elf(0x1010, 0x40_1020, 0x1000, false))?;
    let off_align = run(&tiny_elf(0x1000, 0x40_0000, 0x20_0000, false))?;
    let good = run(&tiny_elf(0x1000, 0x40_1000, 0x1000, false))?;
    // A sparse file of 1 TiB: the loader must not try to hold it.
    let fd = sys::open_mode(path, sys::O_WRONLY | sys::O_TRUNC, 0).map_err(why("open"))?;
    sys::ftruncate(fd, 1 << 40).map_err(why("ftruncate 1 TiB"))?;
    let _ = sys::close(fd);
    let argv = [c"bad-elf".as_ptr().cast::<u8>(), core::ptr::null()];
    let envp = [core::ptr::null()];
    let sparse = sys::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
    let _ = sys::unlink(path);
    expect_err(sparse, sys::ENOEXEC, "a sparse 1 TiB file of zeros")?;
    let enoexec = sys::ENOEXEC.0;
    ensure!(
        sys::exited(interp) == Some(enoexec),
        "PT_INTERP: status {interp:#x}"
    )?;
    ensure!(
        sys::exited(misaligned) == Some(enoexec),
        "offset 0x1010 at 0x401020: status {misaligned:#x}"
    )?;
    ensure!(
        sys::exited(off_align) == Some(enoexec),
        "offset 0x1000 at 0x400000, p_align 2 MiB: status {off_align:#x}"
    )?;
    ensure!(
        sys::killed_by(good).is_some(),
        "the aligned file should load and fault: status {good:#x}"
    )
}

/// A file some process runs cannot be opened for writing or truncated
/// (ETXTBSY); reading it is fine.
fn running_executable(args: Args) -> Outcome {
    let me = exec_path(args)?;
    let len = me.iter().position(|&b| b == 0).unwrap_or(0);
    let Ok(path) = core::str::from_utf8(&me[..=len]) else {
        return fail!("argv[0] is not UTF-8");
    };
    let write = sys::open_mode(path, sys::O_WRONLY, 0);
    let truncate = sys::truncate(path, 0);
    let read = sys::open_mode(path, sys::O_RDONLY, 0);
    for fd in [write, read].into_iter().flatten() {
        let _ = sys::close(fd);
    }
    expect_err(write, sys::ETXTBSY, "open(O_WRONLY) of the running program")?;
    expect_err(truncate, sys::ETXTBSY, "truncate of the running program")?;
    ensure!(read.is_ok(), "open(O_RDONLY) gave {read:?}")
}

const SA_RESTART: usize = 0x1000_0000;
const SA_ONSTACK: usize = 0x0800_0000;

fn sleep_ms(ms: u64) {
    let req = [ms / 1000, (ms % 1000) * 1_000_000];
    let _ = sys::raw(35, [req.as_ptr() as usize, 0, 0, 0, 0, 0]);
}

/// A child that signals its parent with SIGUSR1 while the parent waits
/// for it, then exits 7; the parent's wait4 result.
fn wait_through_a_signal() -> Result<(sys::Result<usize>, usize), Why> {
    let child = spawn(|| {
        sleep_ms(100);
        let _ = sys::kill(sys::getppid() as isize, sys::SIGUSR1);
        sleep_ms(100);
        7
    })?;
    let mut status = 0;
    Ok((sys::wait4(child as isize, &mut status, 0), child))
}

/// signal(7): wait4 interrupted by a handler with SA_RESTART starts again
/// and returns the child; without the flag it fails with EINTR.
fn wait4_restarts() -> i32 {
    reset_seen();
    if sys::catch(sys::SIGUSR1, record_signal, SA_RESTART).is_err() {
        return 2;
    }
    let Ok((restarted, child)) = wait_through_a_signal() else {
        return 3;
    };
    if restarted != Ok(child) || CALLS.load(Ordering::SeqCst) != 1 {
        println!("with SA_RESTART: wait4 gave {restarted:?} (child {child})");
        return 1;
    }
    if sys::catch(sys::SIGUSR1, record_signal, 0).is_err() {
        return 2;
    }
    let Ok((interrupted, child)) = wait_through_a_signal() else {
        return 3;
    };
    let mut status = 0;
    let _ = sys::wait4(child as isize, &mut status, 0);
    if interrupted != Err(sys::EINTR) {
        println!("without SA_RESTART: wait4 gave {interrupted:?}");
        return 4;
    }
    0
}

extern "C" fn record_signal(signal: i32, info: &SigInfo, _: *mut u8) {
    record(signal, info);
}

static ALT_SEEN: AtomicUsize = AtomicUsize::new(0);
static ALT_FLAGS: AtomicI32 = AtomicI32::new(-1);

extern "C" fn note_stack(_: i32, _: &SigInfo, _: *mut u8) {
    let local = 0u8;
    ALT_SEEN.store(core::ptr::addr_of!(local) as usize, Ordering::SeqCst);
    let mut old = [0u64; 3];
    if sys::raw(131, [0, old.as_mut_ptr() as usize, 0, 0, 0, 0]).is_ok() {
        ALT_FLAGS.store(old[1] as i32, Ordering::SeqCst);
    }
}

/// sigaltstack: an SA_ONSTACK handler runs on the alternate stack and
/// sees SS_ONSTACK there; too small a stack is ENOMEM, unknown flags
/// EINVAL, and SS_DISABLE reads back as such.
fn alternate_stack() -> i32 {
    let size = 64 * 1024;
    let Ok(base) = sys::mmap_anon(size) else {
        return 2;
    };
    let set = |sp: usize, flags: usize, size: usize| {
        let ss = [sp as u64, flags as u64, size as u64];
        sys::raw(131, [ss.as_ptr() as usize, 0, 0, 0, 0, 0])
    };
    let small = set(base, 0, 100);
    let bad_flags = set(base, 5, size);
    if small != Err(sys::ENOMEM) || bad_flags != Err(sys::EINVAL) {
        println!("size 100: {small:?}, flags 5: {bad_flags:?}");
        return 1;
    }
    if set(base, 0, size).is_err() || sys::catch(sys::SIGUSR2, note_stack, SA_ONSTACK).is_err() {
        return 3;
    }
    let _ = sys::kill(sys::getpid() as isize, sys::SIGUSR2);
    let at = ALT_SEEN.load(Ordering::SeqCst);
    let flags = ALT_FLAGS.load(Ordering::SeqCst);
    if !(base..base + size).contains(&at) || flags != 1 {
        println!("handler stack {at:#x} (alt {base:#x}+{size:#x}), ss_flags {flags}");
        return 4;
    }
    let mut old = [0u64; 3];
    let _ = set(0, 2, 0);
    let _ = sys::raw(131, [0, old.as_mut_ptr() as usize, 0, 0, 0, 0]);
    if old[1] as i32 != 2 {
        println!("after SS_DISABLE: ss_flags {}", old[1] as i32);
        return 5;
    }
    0
}

/// `proctest rules-child`: exits 0 under BSD rules (MAP_ANON with fd 0 is
/// EINVAL), 1 under Linux's (it maps).
fn rules_child() -> i32 {
    match sys::mmap(0, PAGE, sys::RW, ANON, 0, 0) {
        Err(e) if e == sys::EINVAL => 0,
        Ok(_) => 1,
        Err(_) => 2,
    }
}

/// A copy of this program with EI_OSABI set to 9 (`brandelf -t FreeBSD`)
/// runs under BSD rules; the unbranded copy under Linux's.
fn branded(args: Args) -> Outcome {
    let me = exec_path(args)?;
    let len = me.iter().position(|&b| b == 0).unwrap_or(0);
    let Ok(me) = core::str::from_utf8(&me[..=len]) else {
        return fail!("argv[0] is not UTF-8");
    };
    let cap = 128 * PAGE;
    let image = sys::mmap_anon(cap).map_err(why("mmap"))?;
    let fd = sys::open_mode(me, sys::O_RDONLY, 0).map_err(why("open self"))?;
    let mut size = 0;
    loop {
        // SAFETY: [image, image + cap) is this case's own mapping.
        let buf = unsafe { core::slice::from_raw_parts_mut((image + size) as *mut u8, cap - size) };
        match sys::read(fd as i32, buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => size += n,
        }
    }
    let _ = sys::close(fd);
    let run = |brand: u8| -> Result<Option<i32>, Why> {
        poke(image + 7, brand);
        let path = "/branded\0";
        let out = sys::open_mode(path, sys::O_CREAT | sys::O_WRONLY | sys::O_TRUNC, 0o755)
            .map_err(why("create"))?;
        // SAFETY: the bytes read above.
        let bytes = unsafe { core::slice::from_raw_parts(image as *const u8, size) };
        sys::write(out as i32, bytes).map_err(why("write"))?;
        let _ = sys::close(out);
        let argv = [
            path.as_ptr(),
            c"rules-child".as_ptr().cast(),
            core::ptr::null(),
        ];
        let envp = [core::ptr::null()];
        let status = wait_for(spawn(|| {
            let _ = sys::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            3
        })?)?;
        let _ = sys::unlink(path);
        Ok(sys::exited(status))
    };
    let linux = run(0)?;
    let bsd = run(9)?;
    unmap(image, 128)?;
    ensure!(size < cap, "proctest is larger than {cap} bytes")?;
    ensure!(
        linux == Some(1),
        "unbranded copy: exit {linux:?} (Linux rules: 1)"
    )?;
    ensure!(
        bsd == Some(0),
        "EI_OSABI 9 copy: exit {bsd:?} (BSD rules: 0)"
    )
}

/// argv[0] (our own program), NUL-terminated.
fn exec_path(args: Args) -> Result<[u8; 64], Why> {
    let mut path = [0u8; 64];
    let me = args.get(0).as_bytes();
    ensure!(me.len() < path.len(), "argv[0] too long")?;
    path[..me.len()].copy_from_slice(me);
    Ok(path)
}

/// Fork a process with `pages` resident pages at `a`, measure the fork
/// (parent side) and, in the child, a read of every page; the child
/// reports its cycles through `out`. Returns (fork, child's touch).
fn fork_and_touch(a: usize, pages: usize, out: usize) -> Result<(u64, u64), Why> {
    let start = sys::rdtsc();
    let pid = sys::fork().map_err(why("fork"))?;
    if pid == 0 {
        let t = sys::rdtsc();
        let mut sum = 0u32;
        for i in 0..pages {
            sum += u32::from(peek(a + i * PAGE));
        }
        let touched = sys::rdtsc() - t;
        core::hint::black_box(sum);
        // SAFETY: `out` is a shared page mapped by the parent before the fork.
        unsafe { core::ptr::write_volatile(out as *mut u64, touched) };
        sys::exit(0);
    }
    let forked = sys::rdtsc() - start;
    wait_for(pid)?;
    // SAFETY: as above; the child has exited.
    Ok((forked, unsafe {
        core::ptr::read_volatile(out as *const u64)
    }))
}

/// Eager against lazy page-table copy, for a process with 16 MiB resident.
/// Private memory is copied eagerly (its PTEs are the only record of it);
/// shared memory is not copied at all, so the child takes one soft fault
/// per page: exactly what a lazy copy of the private PTEs would cost.
fn bench() -> i32 {
    const PAGES: usize = 4096;
    const RUNS: usize = 5;
    let run = || -> Result<(), Why> {
        let out = shared_pages(1)?;
        let private = private_pages(PAGES, 1)?;
        let shared = shared_pages(PAGES)?;
        for i in 0..PAGES {
            poke(shared + i * PAGE, 1);
        }
        // The shared mapping is inherited with no PTEs: a lazy fork.
        sys::madvise(private, PAGES * PAGE, MADV_DONTFORK).map_err(why("DONTFORK"))?;
        let mut lazy = (u64::MAX, u64::MAX);
        for _ in 0..RUNS {
            let (f, t) = fork_and_touch(shared, PAGES, out)?;
            lazy = (lazy.0.min(f), lazy.1.min(t));
        }
        sys::madvise(private, PAGES * PAGE, MADV_DOFORK).map_err(why("DOFORK"))?;
        sys::madvise(shared, PAGES * PAGE, MADV_DONTFORK).map_err(why("DONTFORK"))?;
        let mut eager = (u64::MAX, u64::MAX);
        for _ in 0..RUNS {
            let (f, t) = fork_and_touch(private, PAGES, out)?;
            eager = (eager.0.min(f), eager.1.min(t));
        }
        println!(
            "fork of a process with 16 MiB resident (4096 pages), best of {RUNS}, TSC cycles:"
        );
        println!(
            "  eager PTE copy:  fork {:>12}  child reads every page {:>12}",
            eager.0, eager.1
        );
        println!(
            "  no PTEs copied:  fork {:>12}  child reads every page {:>12}",
            lazy.0, lazy.1
        );
        unmap(private, PAGES)?;
        unmap(shared, PAGES)?;
        unmap(out, 1)
    };
    match run() {
        Ok(()) => {
            println!("proctest bench: done");
            0
        }
        Err(e) => {
            println!("proctest bench: {}", e.as_str());
            1
        }
    }
}
