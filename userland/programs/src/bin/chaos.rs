//! `chaos SEED N`: the syscall-wide chaos fuzzer. N forked children each
//! make seeded random calls to every syscall number (0..=460 and 1000)
//! with arguments drawn from hostile pools: 0, -1, small integers, huge
//! lengths, and pointers into mapped, read-only, PROT_NONE, unmapped,
//! crossing-into-unmapped, kernel-half and non-canonical memory. Some
//! children instead return through a forged rt_sigreturn frame (trap flag,
//! IOPL, NT, kernel selectors and instruction pointers) or execve a
//! malformed ELF.
//!
//! A child may die of anything; the kernel may not. The parent (init)
//! checks, after each child, that it was reaped (a child still running
//! after its time is SIGKILLed: that must end it too, blocked or not), that
//! the parent's own memory still holds its pattern, and that the system
//! still maps, faults and forks. Prints `N passed, M failed` (one check
//! per child) and `chaos: seed S: N children`.
#![no_std]
#![no_main]

use rt::println;
use rt::sys::{self, RW};

use rt::rng::Rng;

rt::main!(main);

const PAGE: usize = 4096;
/// Calls per child.
const CALLS: usize = 120;
/// How long a child may run (in yields of the parent) before SIGKILL.
const PATIENCE: usize = 400;

/// The memory the argument pools point into.
struct Pools {
    rw: usize,
    read_only: usize,
    none: usize,
    unmapped: usize,
    /// The last 16 bytes of a mapped page followed by an unmapped one.
    crossing: usize,
}

impl Pools {
    fn new() -> Option<Pools> {
        let base = sys::mmap_anon(5 * PAGE).ok()?;
        for i in 0..PAGE {
            sys::poke(base + i, (i * 7) as u8);
        }
        sys::mprotect(base + PAGE, PAGE, sys::PROT_READ).ok()?;
        sys::mprotect(base + 2 * PAGE, PAGE, sys::PROT_NONE).ok()?;
        sys::munmap(base + 3 * PAGE, PAGE).ok()?;
        sys::munmap(base + 4 * PAGE, PAGE).ok()?;
        Some(Pools {
            rw: base,
            read_only: base + PAGE,
            none: base + 2 * PAGE,
            unmapped: base + 3 * PAGE,
            crossing: base + 3 * PAGE - 16,
        })
    }

    fn arg(&self, rng: &mut Rng) -> usize {
        match rng.below(16) {
            0 => 0,
            1 => usize::MAX,
            2 => rng.below(8),
            3 => rng.below(4096),
            4 => PAGE,
            5 => 1 << 40,
            6 => usize::MAX - PAGE + 1,
            7 => self.rw + rng.below(PAGE),
            8 => self.read_only,
            9 => self.none,
            10 => self.unmapped,
            11 => self.crossing,
            12 => 0xffff_ffff_8000_0000,
            13 => 0x0000_8000_0000_0000,
            14 => rng.next() as usize,
            _ => (rng.next() as usize) & 0xffff_ffff,
        }
    }
}

fn poke_u64(addr: usize, value: u64) {
    for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
        sys::poke(addr + i, byte);
    }
}

/// Calls a child never makes at random: they would hurt the harness, not
/// the kernel (power off, signals to other processes, more processes).
fn skipped(nr: usize) -> bool {
    matches!(nr, 56..=58 | 62 | 129 | 169 | 200 | 234 | 297 | 435)
}

fn random_calls(seed: u64, pools: &Pools) -> i32 {
    let mut rng = Rng(seed);
    for _ in 0..CALLS {
        let nr = match rng.below(462) {
            461 => 1000,
            n => n,
        };
        if skipped(nr) {
            continue;
        }
        let a: [usize; 6] = core::array::from_fn(|_| pools.arg(&mut rng));
        let _ = sys::raw(nr, a);
    }
    0
}

/// Return through a forged signal frame: random registers, rflags with
/// TF, NT, IOPL or AC, kernel or user selectors and instruction pointers.
fn forged_sigreturn(seed: u64, pools: &Pools) -> ! {
    let mut rng = Rng(seed);
    let frame = pools.rw + 1024;
    // rt_sigframe: pretcode, ucontext (uc_mcontext at 40 from ucontext,
    // which is at 8), siginfo; rsp on entry to rt_sigreturn = frame + 8.
    for i in 0..(440 / 8) {
        poke_u64(frame + i * 8, pools.arg(&mut rng) as u64);
    }
    let mcontext = frame + 8 + 40;
    let flags = [0x100u64, 0x4000, 0x3000, 0x40000, 0x4302, 0x202];
    poke_u64(mcontext + 17 * 8, flags[rng.below(flags.len())]);
    let rips = [
        0xffff_ffff_8000_0000u64,
        0x0000_8000_0000_0000,
        0,
        pools.rw as u64,
    ];
    poke_u64(mcontext + 16 * 8, rips[rng.below(rips.len())]);
    let segments = [0x10u64, 0x08, 0x2b | (0x33 << 48), 0];
    poke_u64(mcontext + 144, segments[rng.below(segments.len())]);
    if rng.below(2) == 0 {
        poke_u64(mcontext + 184, 0); // no FPU state
    }
    // SAFETY: deliberately leaves this function through rt_sigreturn with a
    // forged frame; whatever the kernel does, nothing here runs again.
    unsafe {
        core::arch::asm!(
            "mov rsp, {sp}",
            "syscall",
            "ud2",
            sp = in(reg) frame + 8,
            in("rax") 15usize,
            options(noreturn),
        )
    }
}

/// execve of a malformed ELF: random bytes after a valid magic.
fn bad_exec(seed: u64) -> i32 {
    let mut rng = Rng(seed);
    let mut image = [0u8; 512];
    for b in image.iter_mut() {
        *b = rng.next() as u8;
    }
    image[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    image[16] = 2;
    image[18] = 62;
    image[32..40].copy_from_slice(&64u64.to_le_bytes());
    image[54..56].copy_from_slice(&56u16.to_le_bytes());
    image[56..58].copy_from_slice(&(1 + (rng.next() % 8) as u16).to_le_bytes());
    let path = "/chaos-elf\0";
    let Ok(fd) = sys::open_mode(path, sys::O_CREAT | sys::O_WRONLY | sys::O_TRUNC, 0o755) else {
        return 1;
    };
    let _ = sys::write(fd as i32, &image);
    let _ = sys::close(fd);
    let argv = [path.as_ptr(), core::ptr::null()];
    let envp = [core::ptr::null()];
    let _ = sys::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
    0
}

/// Wait for `pid` (yielding), SIGKILL it when it takes too long; true if
/// it was reaped.
fn reap(pid: usize) -> bool {
    let mut status = 0;
    for _ in 0..PATIENCE {
        match sys::wait4(pid as isize, &mut status, sys::WNOHANG) {
            Ok(got) if got == pid => return true,
            Ok(_) => sys::sched_yield(),
            Err(_) => return false,
        }
    }
    let _ = sys::kill(pid as isize, sys::SIGKILL);
    sys::wait4(pid as isize, &mut status, 0) == Ok(pid)
}

/// Orphans the children left (their grandchildren) go to init: reap them.
fn reap_orphans() {
    let mut status = 0;
    while let Ok(pid) = sys::wait4(-1, &mut status, sys::WNOHANG) {
        if pid == 0 {
            break;
        }
    }
}

fn pattern_intact(buf: usize) -> bool {
    (0..16 * PAGE).all(|i| sys::peek(buf + i) == (i % 251) as u8)
}

/// The system still maps, faults and forks.
fn still_works() -> bool {
    let Ok(a) = sys::mmap(0, PAGE, RW, sys::ANON, -1, 0) else {
        return false;
    };
    sys::poke(a, 9);
    let ok = sys::peek(a) == 9;
    let _ = sys::munmap(a, PAGE);
    let forked = match sys::fork() {
        Ok(0) => sys::exit(3),
        Ok(pid) => {
            let mut status = 0;
            sys::wait4(pid as isize, &mut status, 0) == Ok(pid) && sys::exited(status) == Some(3)
        }
        Err(_) => false,
    };
    ok && forked
}

fn main(args: rt::Args) -> i32 {
    let seed: u64 = args.get(1).parse().unwrap_or(1);
    let children: usize = args.get(2).parse().unwrap_or(30);
    let Some(pools) = Pools::new() else {
        println!("chaos: cannot set up the pools");
        return 2;
    };
    let Ok(mine) = sys::mmap_anon(16 * PAGE) else {
        return 2;
    };
    for i in 0..16 * PAGE {
        sys::poke(mine + i, (i % 251) as u8);
    }
    let (mut passed, mut failed) = (0, 0);
    let mut rng = Rng(seed);
    for child in 0..children {
        let child_seed = rng.next();
        let kind = rng.below(10);
        let pid = match sys::fork() {
            Ok(0) => sys::exit(match kind {
                0 => forged_sigreturn(child_seed, &pools),
                1 => bad_exec(child_seed),
                _ => random_calls(child_seed, &pools),
            }),
            Ok(pid) => pid,
            Err(e) => {
                println!("FAIL child {child}: fork gave {e:?}");
                failed += 1;
                continue;
            }
        };
        let reaped = reap(pid);
        reap_orphans();
        let intact = pattern_intact(mine);
        let works = still_works();
        if reaped && intact && works {
            passed += 1;
        } else {
            failed += 1;
            println!(
                "FAIL child {child} (seed {child_seed:#x}, kind {kind}): reaped {reaped}, parent's memory intact {intact}, system works {works}"
            );
        }
    }
    let _ = sys::unlink("/chaos-elf\0");
    println!("chaos: seed {seed}: {children} children");
    println!("{passed} passed, {failed} failed");
    i32::from(failed > 0)
}
