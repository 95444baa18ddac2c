//! `timetest`: clocks and sleeps as a program sees them: clock_gettime's
//! clocks and their resolution, real time, nanosleep and clock_nanosleep
//! (relative, absolute, bad arguments, a signal's EINTR with the time
//! left), CPU-time clocks, and CLOCK_MONOTONIC against the TSC while
//! another process keeps the CPU busy.
//!
//! The same binary runs as init of a Linux kernel
//! (`scripts/linux-run.py timetest`). It prints `timetest: realtime S`
//! (seconds since the epoch) for boot/tests/time.rs to compare with the
//! host's clock.
#![no_std]
#![no_main]

use rt::sys::{self, Errno, SigInfo};
use rt::test::{Outcome, Suite, Why, expect_err, why};
use rt::{Args, ensure, println};

rt::main!(main);

const CLOCK_REALTIME: usize = 0;
const CLOCK_MONOTONIC: usize = 1;
const CLOCK_PROCESS_CPUTIME_ID: usize = 2;
const CLOCK_THREAD_CPUTIME_ID: usize = 3;
const CLOCK_MONOTONIC_RAW: usize = 4;
const CLOCK_REALTIME_COARSE: usize = 5;
const CLOCK_MONOTONIC_COARSE: usize = 6;
const CLOCK_BOOTTIME: usize = 7;
const TIMER_ABSTIME: usize = 1;

const NR_NANOSLEEP: usize = 35;
const NR_GETTIMEOFDAY: usize = 96;
const NR_TIME: usize = 201;
const NR_CLOCK_GETTIME: usize = 228;
const NR_CLOCK_GETRES: usize = 229;
const NR_CLOCK_NANOSLEEP: usize = 230;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;
const EINVAL: Errno = Errno(22);
const EFAULT: Errno = Errno(14);
const EINTR: Errno = Errno(4);
const EOPNOTSUPP: Errno = Errno(95);

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

impl Timespec {
    fn from_nanos(ns: u64) -> Self {
        Timespec {
            sec: (ns / SEC) as i64,
            nsec: (ns % SEC) as i64,
        }
    }

    fn nanos(self) -> u64 {
        self.sec as u64 * SEC + self.nsec as u64
    }
}

/// A pointer argument the kernel only reads.
fn ptr<T>(value: &T) -> usize {
    value as *const T as usize
}

/// A pointer argument the kernel writes through.
fn out<T>(value: &mut T) -> usize {
    value as *mut T as usize
}

fn gettime(clock: usize) -> Result<u64, Why> {
    let mut ts = Timespec::default();
    sys::raw(NR_CLOCK_GETTIME, [clock, out(&mut ts), 0, 0, 0, 0]).map_err(why("clock_gettime"))?;
    Ok(ts.nanos())
}

fn monotonic() -> u64 {
    gettime(CLOCK_MONOTONIC).unwrap_or(0)
}

fn nanosleep(ns: u64, rem: Option<&mut Timespec>) -> Result<usize, Errno> {
    let req = Timespec::from_nanos(ns);
    let rem = rem.map_or(0, |r| r as *mut Timespec as usize);
    sys::raw(NR_NANOSLEEP, [ptr(&req), rem, 0, 0, 0, 0])
}

fn clock_nanosleep(clock: usize, flags: usize, req: &Timespec) -> Result<usize, Errno> {
    sys::raw(NR_CLOCK_NANOSLEEP, [clock, flags, ptr(req), 0, 0, 0])
}

fn main(_args: Args) -> i32 {
    let mut suite = Suite::new("timetest");
    if let Ok(now) = gettime(CLOCK_REALTIME) {
        println!("timetest: realtime {}", now / SEC);
    }
    suite.both("clock_getres_reports_1ns", getres);
    suite.both("monotonic_never_goes_back", monotonic_is_fine_grained);
    suite.both("realtime_is_the_date", realtime_is_the_date);
    suite.both("nanosleep_50ms", nanosleep_50ms);
    suite.both("nanosleep_rejects_bad_arguments", nanosleep_errors);
    suite.both("clock_nanosleep_absolute", clock_nanosleep_absolute);
    suite.both("clock_nanosleep_clocks", clock_nanosleep_clocks);
    suite.both("signal_interrupts_nanosleep", signal_interrupts_nanosleep);
    suite.both("cpu_time_counts_running_only", cpu_time);
    suite.both("monotonic_follows_tsc_under_load", monotonic_under_load);
    suite.finish()
}

fn getres() -> Outcome {
    let fine = [
        CLOCK_REALTIME,
        CLOCK_MONOTONIC,
        CLOCK_BOOTTIME,
        CLOCK_MONOTONIC_RAW,
        CLOCK_PROCESS_CPUTIME_ID,
        CLOCK_THREAD_CPUTIME_ID,
    ];
    for clock in fine {
        let mut res = Timespec::default();
        sys::raw(NR_CLOCK_GETRES, [clock, out(&mut res), 0, 0, 0, 0])
            .map_err(why("clock_getres"))?;
        ensure!(
            res.sec == 0 && res.nsec == 1,
            "clock {clock}: resolution {}.{:09} s, want 1 ns",
            res.sec,
            res.nsec
        )?;
    }
    for clock in [CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE] {
        let mut res = Timespec::default();
        sys::raw(NR_CLOCK_GETRES, [clock, out(&mut res), 0, 0, 0, 0])
            .map_err(why("clock_getres"))?;
        let ns = res.nanos();
        ensure!(
            ns > 0 && ns <= 20 * MS,
            "coarse clock {clock}: resolution {ns} ns"
        )?;
    }
    // A null res only checks the clock; an unknown clock is EINVAL.
    sys::raw(NR_CLOCK_GETRES, [CLOCK_MONOTONIC, 0, 0, 0, 0, 0])
        .map_err(why("clock_getres(NULL)"))?;
    expect_err(
        sys::raw(NR_CLOCK_GETRES, [100, 0, 0, 0, 0, 0]),
        EINVAL,
        "clock_getres(100)",
    )?;
    let mut ts = Timespec::default();
    expect_err(
        sys::raw(NR_CLOCK_GETTIME, [100, out(&mut ts), 0, 0, 0, 0]),
        EINVAL,
        "clock_gettime(100)",
    )?;
    expect_err(
        sys::raw(NR_CLOCK_GETTIME, [CLOCK_MONOTONIC, 8, 0, 0, 0, 0]),
        EFAULT,
        "clock_gettime to address 8",
    )
}

/// 2000 reads never go back, and consecutive ones differ by far less than
/// a timer tick (a clock that counted ticks would jump by 10 ms or stand still).
fn monotonic_is_fine_grained() -> Outcome {
    let mut last = gettime(CLOCK_MONOTONIC)?;
    let mut smallest_step = u64::MAX;
    for _ in 0..2000 {
        let now = gettime(CLOCK_MONOTONIC)?;
        ensure!(
            now >= last,
            "CLOCK_MONOTONIC went back from {last} to {now}"
        )?;
        if now > last {
            smallest_step = smallest_step.min(now - last);
        }
        last = now;
    }
    ensure!(
        smallest_step < 50_000,
        "the smallest step between two reads was {smallest_step} ns"
    )?;
    let coarse = gettime(CLOCK_MONOTONIC_COARSE)?;
    let fine = gettime(CLOCK_MONOTONIC)?;
    ensure!(
        coarse <= fine,
        "MONOTONIC_COARSE {coarse} ahead of MONOTONIC {fine}"
    )?;
    ensure!(
        fine - coarse < 50 * MS,
        "MONOTONIC_COARSE lags by {} ns",
        fine - coarse
    )?;
    let boot = gettime(CLOCK_BOOTTIME)?;
    ensure!(boot >= fine, "BOOTTIME {boot} behind MONOTONIC {fine}")
}

fn realtime_is_the_date() -> Outcome {
    let real = gettime(CLOCK_REALTIME)?;
    // After 2023-11-14 and before 2096: the RTC was read.
    ensure!(
        (1_700_000_000 * SEC..4_000_000_000 * SEC).contains(&real),
        "CLOCK_REALTIME says {} s since the epoch",
        real / SEC
    )?;
    let mut tv = [0i64; 2];
    sys::raw(NR_GETTIMEOFDAY, [out(&mut tv), 0, 0, 0, 0, 0]).map_err(why("gettimeofday"))?;
    ensure!((0..1_000_000).contains(&tv[1]), "tv_usec {}", tv[1])?;
    let tod = tv[0] as u64 * SEC + tv[1] as u64 * 1000;
    ensure!(
        tod.abs_diff(real) < SEC,
        "gettimeofday {tod} and CLOCK_REALTIME {real} disagree"
    )?;
    let mut stored = 0i64;
    let seconds = sys::raw(NR_TIME, [out(&mut stored), 0, 0, 0, 0, 0]).map_err(why("time"))?;
    ensure!(
        seconds as i64 == stored && (seconds as u64).abs_diff(real / SEC) <= 1,
        "time() returned {seconds}, stored {stored}, CLOCK_REALTIME {}",
        real / SEC
    )?;
    let coarse = gettime(CLOCK_REALTIME_COARSE)?;
    ensure!(
        coarse.abs_diff(real) < SEC,
        "REALTIME_COARSE {coarse} vs {real}"
    )
}

/// Three 50 ms sleeps: never short, and the median at most 80 ms (the
/// tick is 10 ms; TCG on a busy host adds some).
fn nanosleep_50ms() -> Outcome {
    let mut took = [0u64; 3];
    for t in &mut took {
        let start = monotonic();
        nanosleep(50 * MS, None).map_err(why("nanosleep"))?;
        *t = monotonic() - start;
        ensure!(
            *t >= 50 * MS,
            "nanosleep(50 ms) returned after {} us",
            *t / 1000
        )?;
    }
    took.sort_unstable();
    ensure!(
        took[1] <= 80 * MS,
        "nanosleep(50 ms) took {:?} us",
        took.map(|t| t / 1000)
    )
}

fn nanosleep_errors() -> Outcome {
    let sleep = |sec: i64, nsec: i64| {
        let req = Timespec { sec, nsec };
        sys::raw(NR_NANOSLEEP, [ptr(&req), 0, 0, 0, 0, 0])
    };
    expect_err(sleep(0, 1_000_000_000), EINVAL, "tv_nsec = 10^9")?;
    expect_err(sleep(0, -1), EINVAL, "tv_nsec = -1")?;
    expect_err(sleep(-1, 0), EINVAL, "tv_sec = -1")?;
    expect_err(
        sys::raw(NR_NANOSLEEP, [0, 0, 0, 0, 0, 0]),
        EFAULT,
        "req = NULL",
    )?;
    expect_err(
        sys::raw(NR_NANOSLEEP, [0xffff_8000_0000_0000, 0, 0, 0, 0, 0]),
        EFAULT,
        "req in the kernel half",
    )?;
    let start = monotonic();
    sleep(0, 0).map_err(why("nanosleep(0)"))?;
    // Generous bounds here and below: a loaded host may take the vCPU
    // away for tens of milliseconds at any point.
    ensure!(monotonic() - start < 50 * MS, "nanosleep(0) slept")
}

fn clock_nanosleep_absolute() -> Outcome {
    let deadline = monotonic() + 30 * MS;
    clock_nanosleep(
        CLOCK_MONOTONIC,
        TIMER_ABSTIME,
        &Timespec::from_nanos(deadline),
    )
    .map_err(why("clock_nanosleep(MONOTONIC, ABSTIME)"))?;
    let now = monotonic();
    ensure!(
        now >= deadline,
        "woke {} us before the deadline",
        (deadline - now) / 1000
    )?;
    // A deadline in the past returns at once.
    let start = monotonic();
    clock_nanosleep(
        CLOCK_MONOTONIC,
        TIMER_ABSTIME,
        &Timespec::from_nanos(start / 2),
    )
    .map_err(why("clock_nanosleep(past deadline)"))?;
    ensure!(monotonic() - start < 50 * MS, "a past deadline slept")?;
    let real_deadline = gettime(CLOCK_REALTIME)? + 30 * MS;
    clock_nanosleep(
        CLOCK_REALTIME,
        TIMER_ABSTIME,
        &Timespec::from_nanos(real_deadline),
    )
    .map_err(why("clock_nanosleep(REALTIME, ABSTIME)"))?;
    let real = gettime(CLOCK_REALTIME)?;
    ensure!(real >= real_deadline, "REALTIME deadline: woke early")?;
    // Relative, on BOOTTIME.
    let start = monotonic();
    clock_nanosleep(CLOCK_BOOTTIME, 0, &Timespec::from_nanos(20 * MS))
        .map_err(why("clock_nanosleep(BOOTTIME)"))?;
    ensure!(monotonic() - start >= 20 * MS, "BOOTTIME sleep was short")
}

fn clock_nanosleep_clocks() -> Outcome {
    let req = Timespec::from_nanos(MS);
    // Linux 6.1 answers EOPNOTSUPP for the thread's CPU clock too (its
    // man page says EINVAL).
    let unsleepable = [
        CLOCK_THREAD_CPUTIME_ID,
        CLOCK_MONOTONIC_RAW,
        CLOCK_MONOTONIC_COARSE,
        CLOCK_REALTIME_COARSE,
    ];
    for clock in unsleepable {
        expect_err(
            clock_nanosleep(clock, 0, &req),
            EOPNOTSUPP,
            "sleep on a raw, coarse or thread CPU clock",
        )?;
    }
    expect_err(clock_nanosleep(100, 0, &req), EINVAL, "sleep on clock 100")?;
    let bad = Timespec { sec: 0, nsec: -5 };
    expect_err(
        clock_nanosleep(CLOCK_MONOTONIC, 0, &bad),
        EINVAL,
        "tv_nsec = -5",
    )
}

extern "C" fn on_usr1(_: i32, _: &SigInfo, _: *mut u8) {}

/// A child's SIGUSR1 ends a 2 s sleep early with EINTR and the time left.
fn signal_interrupts_nanosleep() -> Outcome {
    sys::catch(sys::SIGUSR1, on_usr1, 0).map_err(why("rt_sigaction"))?;
    let parent = sys::getpid();
    let child = match sys::fork().map_err(why("fork"))? {
        0 => {
            let _ = nanosleep(40 * MS, None);
            let _ = sys::kill(parent as isize, sys::SIGUSR1);
            sys::exit(0)
        }
        pid => pid,
    };
    let start = monotonic();
    let mut rem = Timespec::default();
    let result = nanosleep(2 * SEC, Some(&mut rem));
    let elapsed = monotonic() - start;
    let mut status = 0;
    sys::wait4(child as isize, &mut status, 0).map_err(why("wait4"))?;
    sys::set_disposition(sys::SIGUSR1, sys::SIG_DFL).map_err(why("rt_sigaction"))?;
    ensure!(
        result == Err(EINTR),
        "nanosleep returned {result:?}, want EINTR"
    )?;
    ensure!(
        elapsed < SEC,
        "the signal ended the sleep after {} ms",
        elapsed / MS
    )?;
    // rem + elapsed is the 2 s, give or take what the host's scheduling
    // adds between the kernel's reading and ours.
    let left = rem.nanos();
    ensure!(
        left <= 2 * SEC - elapsed + 50 * MS && left + elapsed + 50 * MS >= 2 * SEC,
        "rem {} ms after {} ms of a 2 s sleep",
        left / MS,
        elapsed / MS
    )
}

fn cpu_time() -> Outcome {
    let before = gettime(CLOCK_PROCESS_CPUTIME_ID)?;
    let start = monotonic();
    while monotonic() - start < 40 * MS {}
    let spun = gettime(CLOCK_PROCESS_CPUTIME_ID)?;
    nanosleep(60 * MS, None).map_err(why("nanosleep"))?;
    let slept = gettime(CLOCK_PROCESS_CPUTIME_ID)?;
    let thread = gettime(CLOCK_THREAD_CPUTIME_ID)?;
    ensure!(
        spun - before >= 30 * MS,
        "40 ms of spinning counted {} us of CPU time",
        (spun - before) / 1000
    )?;
    // Under TCG a process's CPU time also counts the moments the host
    // took the vCPU away while it ran (milliseconds on a loaded host):
    // the bounds leave room for that, and still tell sleeping from running.
    ensure!(
        slept - spun < 30 * MS,
        "a 60 ms sleep counted {} us of CPU time",
        (slept - spun) / 1000
    )?;
    ensure!(
        thread >= slept && thread - slept < 20 * MS,
        "THREAD_CPUTIME {thread} vs PROCESS_CPUTIME {slept} (one thread)"
    )
}

/// The TSC and CLOCK_MONOTONIC read together: the middle of the
/// tightest of five `rdtsc` brackets around a clock_gettime, so that the
/// host descheduling us between the two reads does not skew the pair.
fn paired() -> (u64, u64) {
    (0..5)
        .map(|_| {
            let before = sys::rdtsc();
            let mono = monotonic();
            let after = sys::rdtsc();
            (after - before, before + (after - before) / 2, mono)
        })
        .min()
        .map(|(_, tsc, mono)| (tsc, mono))
        .unwrap_or_default()
}

/// TSC cycles per monotonic nanosecond over `ns` of sleeping, in millionths.
fn tsc_rate_while_sleeping(ns: u64) -> Result<u64, Why> {
    let (tsc0, t0) = paired();
    for _ in 0..ns / (50 * MS) {
        nanosleep(50 * MS, None).map_err(why("nanosleep"))?;
    }
    let (tsc1, t1) = paired();
    Ok(((tsc1 - tsc0) as u128 * 1_000_000 / (t1 - t0) as u128) as u64)
}

/// CLOCK_MONOTONIC keeps the TSC's pace while a busy child competes for
/// the CPU (issue 14: a tick-counting clock lost a third under load).
fn monotonic_under_load() -> Outcome {
    let quiet = tsc_rate_while_sleeping(200 * MS)?;
    let child = match sys::fork().map_err(why("fork"))? {
        0 => loop {
            core::hint::spin_loop();
        },
        pid => pid,
    };
    let start = monotonic();
    let loaded = tsc_rate_while_sleeping(500 * MS);
    let elapsed = monotonic() - start;
    let _ = sys::kill(child as isize, sys::SIGKILL);
    let mut status = 0;
    sys::wait4(child as isize, &mut status, 0).map_err(why("wait4"))?;
    let loaded = loaded?;
    ensure!(
        elapsed >= 500 * MS,
        "ten 50 ms sleeps took {} ms",
        elapsed / MS
    )?;
    ensure!(
        loaded.abs_diff(quiet) * 100 < quiet,
        "TSC cycles per us: {} quiet, {} with a busy child (more than 1% apart)",
        quiet / 1000,
        loaded / 1000
    )
}
