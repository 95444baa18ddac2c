//! `stress WORKERS ROUNDS`: many processes forking, taking signals and
//! writing copy-on-write memory at once, each checking every byte it owns
//! and its callee-saved registers across syscalls and signal returns.
//!
//! Each worker, per round: fills 16 private pages with its own pattern,
//! forks a child that checks them, overwrites them with the child's
//! pattern (copy-on-write) and checks again; meanwhile the worker sends
//! itself SIGUSR1 (a handler that clobbers every scratch register runs)
//! and makes syscalls with rbx, rbp and r12-r15 holding known values. Then
//! wait4 must return exactly that child with its exit code, and the
//! worker's pages must still hold the worker's pattern. A worker exits
//! with the number of its first broken check (0: none). Prints one check
//! per worker, `N passed, M failed`, and `stress: W workers, R rounds`.
//! `make test` runs it briefly (boot/tests/fuzz.rs); run it longer by hand
//! with `cargo run -- --kernel-arg init=/bin/stress -- 8 2000`.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicUsize, Ordering};
use rt::println;
use rt::sys::{self, SigInfo, peek, poke};

rt::main!(main);

const PAGE: usize = 4096;
const PAGES: usize = 16;

static HANDLED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn clobber(_: i32, _: &SigInfo, _: *mut u8) {
    HANDLED.fetch_add(1, Ordering::SeqCst);
    // SAFETY: only caller-saved registers change, which the handler's
    // caller (the kernel's frame) restores on sigreturn.
    unsafe {
        core::arch::asm!(
            "mov rax, -1", "mov rcx, -1", "mov rdx, -1", "mov rsi, -1", "mov rdi, -1",
            "mov r8, -1", "mov r9, -1", "mov r10, -1", "mov r11, -1",
            out("rax") _, out("rcx") _, out("rdx") _, out("rsi") _, out("rdi") _,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
}

fn byte(owner: usize, round: usize, i: usize) -> u8 {
    (owner.wrapping_mul(31) ^ round.wrapping_mul(7) ^ i) as u8
}

fn fill(buf: usize, owner: usize, round: usize) {
    for i in 0..PAGES * PAGE {
        poke(buf + i, byte(owner, round, i));
    }
}

fn intact(buf: usize, owner: usize, round: usize) -> bool {
    (0..PAGES * PAGE).all(|i| peek(buf + i) == byte(owner, round, i))
}

/// Syscall `nr` (args rdi, rsi) with the callee-saved registers set to
/// known values; whether they all came back unchanged.
fn callee_saved_survive(nr: usize, rdi: usize, rsi: usize) -> bool {
    let bad: usize;
    // SAFETY: rbx and rbp are saved and restored around the block by hand
    // (the compiler reserves them); r12-r15 are declared clobbered.
    unsafe {
        core::arch::asm!(
            "push rbx",
            "push rbp",
            "mov rbx, 0x1111",
            "mov rbp, 0x2222",
            "mov r12, 0x3333",
            "mov r13, 0x4444",
            "mov r14, 0x5555",
            "mov r15, 0x6666",
            "syscall",
            "xor ecx, ecx",
            "xor edx, edx",
            "cmp rbx, 0x1111", "setne cl", "or rdx, rcx",
            "cmp rbp, 0x2222", "setne cl", "or rdx, rcx",
            "cmp r12, 0x3333", "setne cl", "or rdx, rcx",
            "cmp r13, 0x4444", "setne cl", "or rdx, rcx",
            "cmp r14, 0x5555", "setne cl", "or rdx, rcx",
            "cmp r15, 0x6666", "setne cl", "or rdx, rcx",
            "pop rbp",
            "pop rbx",
            inlateout("rax") nr => _,
            in("rdi") rdi,
            in("rsi") rsi,
            out("rcx") _, out("r11") _,
            lateout("rdx") bad,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
        );
    }
    bad == 0
}

fn worker(id: usize, rounds: usize) -> i32 {
    if sys::catch(sys::SIGUSR1, clobber, 0).is_err() {
        return 1;
    }
    let Ok(buf) = sys::mmap_anon(PAGES * PAGE) else {
        return 2;
    };
    let me = sys::getpid();
    for round in 0..rounds {
        fill(buf, id, round);
        let child = match sys::fork() {
            Ok(0) => {
                let ok = intact(buf, id, round);
                fill(buf, id + 1000, round);
                let cow = intact(buf, id + 1000, round);
                let regs = callee_saved_survive(39, 0, 0);
                sys::exit(if !ok {
                    10
                } else if !cow {
                    11
                } else if !regs {
                    12
                } else {
                    42
                });
            }
            Ok(pid) => pid,
            Err(_) => return 3,
        };
        // kill(me, SIGUSR1): the handler runs on this syscall's way out.
        if !callee_saved_survive(62, me, sys::SIGUSR1) {
            return 4;
        }
        if !callee_saved_survive(24, 0, 0) {
            return 5;
        }
        let mut status = 0;
        let got = sys::wait4(child as isize, &mut status, 0);
        if got != Ok(child) {
            println!("worker {id}: wait4({child}) gave {got:?}");
            return 6;
        }
        if sys::exited(status) != Some(42) {
            println!("worker {id}: child {child} ended with status {status:#x}");
            return 7;
        }
        if !intact(buf, id, round) {
            return 8;
        }
    }
    if HANDLED.load(Ordering::SeqCst) != rounds {
        return 9;
    }
    0
}

fn main(args: rt::Args) -> i32 {
    let workers: usize = args.get(1).parse().unwrap_or(4);
    let rounds: usize = args.get(2).parse().unwrap_or(20);
    let mut pids = [0usize; 64];
    let workers = workers.min(pids.len());
    for (id, slot) in pids.iter_mut().enumerate().take(workers) {
        match sys::fork() {
            Ok(0) => sys::exit(worker(id, rounds)),
            Ok(pid) => *slot = pid,
            Err(e) => println!("stress: fork of worker {id}: {e:?}"),
        }
    }
    let (mut passed, mut failed) = (0, 0);
    for (id, &pid) in pids.iter().enumerate().take(workers) {
        let mut status = 0;
        let got = sys::wait4(pid as isize, &mut status, 0);
        if got == Ok(pid) && sys::exited(status) == Some(0) {
            passed += 1;
        } else {
            failed += 1;
            println!("FAIL worker {id}: wait4 gave {got:?}, status {status:#x}");
        }
    }
    println!("stress: {workers} workers, {rounds} rounds");
    println!("{passed} passed, {failed} failed");
    i32::from(failed > 0)
}
