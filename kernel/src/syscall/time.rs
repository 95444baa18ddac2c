//! Clocks and sleeps: clock_gettime, clock_getres, gettimeofday, time,
//! nanosleep and clock_nanosleep (Linux's numbers, clocks and errors).
//!
//! Every clock reads the TSC (kernel/src/time.rs), so each has a
//! resolution of 1 ns, which clock_getres reports, as Linux does with a
//! TSC clocksource. The *_COARSE clocks are the same clocks rounded down
//! to the tick (1/HZ), as cheap in Linux as they are imprecise.
//!
//! A sleep computes its deadline on the monotonic clock once, then blocks
//! until it passes (kernel/src/sleep.rs). A signal that would run a
//! handler or kill ends it with EINTR, and a relative sleep writes the
//! time left to `rem`. EINTR is final: signal(7) lists nanosleep and
//! clock_nanosleep among the calls never restarted after a handler,
//! whatever SA_RESTART says. Any other wake-up (a child's exit, a signal
//! that is ignored, SIGCONT after a stop) sleeps again to the same
//! deadline, so a stop/continue needs no restart machinery here.

use crate::arch::timer::HZ;
use crate::time::{self, NANOS_PER_SEC};
use crate::{proc, usercopy};
use vm::errno::{Errno, SysResult};

const CLOCK_REALTIME: u64 = 0;
const CLOCK_MONOTONIC: u64 = 1;
const CLOCK_PROCESS_CPUTIME_ID: u64 = 2;
const CLOCK_THREAD_CPUTIME_ID: u64 = 3;
const CLOCK_MONOTONIC_RAW: u64 = 4;
const CLOCK_REALTIME_COARSE: u64 = 5;
const CLOCK_MONOTONIC_COARSE: u64 = 6;
const CLOCK_BOOTTIME: u64 = 7;
const CLOCK_REALTIME_ALARM: u64 = 8;
const CLOCK_BOOTTIME_ALARM: u64 = 9;
/// TAI: real time plus the TAI offset, which stays 0 until adjtimex sets
/// it (as on Linux without an NTP daemon).
const CLOCK_TAI: u64 = 11;
const TIMER_ABSTIME: u64 = 1;
const TICK_NANOS: u64 = NANOS_PER_SEC / HZ as u64;

/// The clock's time now in nanoseconds, or EINVAL for an unknown clock
/// (negative ids: other processes' CPU clocks, which we do not offer).
fn now(clock: u64) -> Result<u64, Errno> {
    let coarse = |ns: u64| ns - ns % TICK_NANOS;
    Ok(match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM | CLOCK_TAI => time::realtime(),
        CLOCK_MONOTONIC | CLOCK_MONOTONIC_RAW | CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => {
            time::monotonic()
        }
        CLOCK_PROCESS_CPUTIME_ID => proc::cpu_time(false),
        CLOCK_THREAD_CPUTIME_ID => proc::cpu_time(true),
        CLOCK_REALTIME_COARSE => time::realtime_offset() + coarse(time::monotonic()),
        CLOCK_MONOTONIC_COARSE => coarse(time::monotonic()),
        _ => return Err(Errno::EINVAL),
    })
}

/// struct timespec / struct timeval: two 64-bit fields.
fn pair(seconds: u64, fraction: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&seconds.to_le_bytes());
    out[8..].copy_from_slice(&fraction.to_le_bytes());
    out
}

fn write_timespec(addr: u64, ns: u64) -> Result<(), Errno> {
    let bytes = pair(ns / NANOS_PER_SEC, ns % NANOS_PER_SEC);
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), addr, &bytes))
}

/// A user timespec as nanoseconds: EFAULT if unreadable, EINVAL unless
/// 0 <= tv_nsec < 10^9 and tv_sec >= 0 (Linux's timespec64_valid).
pub fn read_timespec(addr: u64) -> Result<u64, Errno> {
    let mut bytes = [0u8; 16];
    proc::with_current(|p| usercopy::copy_in(&mut *p.space(), addr, &mut bytes))?;
    let seconds = i64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    let nanos = i64::from_le_bytes(bytes[8..].try_into().unwrap_or_default());
    if seconds < 0 || !(0..NANOS_PER_SEC as i64).contains(&nanos) {
        return Err(Errno::EINVAL);
    }
    // Past ~584 years the deadline saturates: that sleep never ends anyway.
    Ok((seconds as u64)
        .saturating_mul(NANOS_PER_SEC)
        .saturating_add(nanos as u64))
}

pub fn clock_gettime(clock: u64, tp: u64) -> SysResult {
    let ns = now(clock)?;
    write_timespec(tp, ns).map(|()| 0)
}

/// clock_gettime without the kernel lock, when it can be (`dispatch`'s
/// `lockless`): a clock that reads only the TSC (the CPU-time clocks read
/// the process table), into a `timespec` whose page is mapped writable
/// now, written under the address-space read lock (`Pmap::write_user`).
/// None, with nothing done, sends the call the usual way, which gives the
/// errors. A thread reading the clock then never waits for another
/// thread's long system call (a 64 MiB munmap holds the kernel lock for
/// milliseconds); Linux answers these calls in user space, from the vDSO.
pub fn clock_gettime_lockless(clock: u64, tp: u64) -> Option<u64> {
    if matches!(clock, CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID) {
        return None;
    }
    let ns = now(clock).ok()?;
    let bytes = pair(ns / NANOS_PER_SEC, ns % NANOS_PER_SEC);
    let written = crate::mm::with_running(|mm| mm.read().pmap.write_user(tp, &bytes))?;
    written.then_some(0)
}

/// clock_getres: 1 ns for every clock but the coarse ones (a tick).
/// A null `res` only checks the clock.
pub fn clock_getres(clock: u64, res: u64) -> SysResult {
    now(clock)?;
    let resolution = match clock {
        CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => TICK_NANOS,
        _ => 1,
    };
    if res != 0 {
        write_timespec(res, resolution)?;
    }
    Ok(0)
}

/// gettimeofday(tv, tz): real time in microseconds; the obsolete time
/// zone, when asked for, is UTC (minutes west 0, no DST).
pub fn gettimeofday(tv: u64, tz: u64) -> SysResult {
    let ns = time::realtime();
    if tv != 0 {
        let bytes = pair(ns / NANOS_PER_SEC, ns % NANOS_PER_SEC / 1000);
        proc::with_current(|p| usercopy::copy_out(&mut *p.space(), tv, &bytes))?;
    }
    if tz != 0 {
        proc::with_current(|p| usercopy::copy_out(&mut *p.space(), tz, &[0u8; 8]))?;
    }
    Ok(0)
}

/// time(tloc): seconds since the epoch, also stored at tloc unless null.
pub fn time(tloc: u64) -> SysResult {
    let seconds = time::realtime() / NANOS_PER_SEC;
    if tloc != 0 {
        proc::with_current(|p| usercopy::copy_out(&mut *p.space(), tloc, &seconds.to_le_bytes()))?;
    }
    Ok(seconds as usize)
}

/// nanosleep(req, rem): a relative sleep on CLOCK_MONOTONIC.
pub fn nanosleep(req: u64, rem: u64) -> SysResult {
    clock_nanosleep(CLOCK_MONOTONIC, 0, req, rem)
}

/// clock_nanosleep(clock, flags, req, rem): sleep for `req`, or until
/// the clock reads `req` with TIMER_ABSTIME (then `rem` is not written).
/// Clocks that cannot be slept on: EOPNOTSUPP (Linux 6.1: the raw and
/// coarse clocks and the thread's CPU clock, though the man page says
/// EINVAL for the latter; we add the process's CPU clock).
pub fn clock_nanosleep(clock: u64, flags: u64, req: u64, rem: u64) -> SysResult {
    let realtime = match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM | CLOCK_TAI => true,
        CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => false,
        CLOCK_MONOTONIC_RAW
        | CLOCK_THREAD_CPUTIME_ID
        | CLOCK_REALTIME_COARSE
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_PROCESS_CPUTIME_ID => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EINVAL),
    };
    let absolute = flags & TIMER_ABSTIME != 0;
    let request = read_timespec(req)?;
    let deadline = if !absolute {
        time::monotonic().saturating_add(request)
    } else if realtime {
        request.saturating_sub(time::realtime_offset())
    } else {
        request
    };
    loop {
        let now = time::monotonic();
        if now >= deadline {
            return Ok(0);
        }
        if let Err(interrupted) = crate::sleep::interrupted() {
            if !absolute && rem != 0 {
                write_timespec(rem, deadline.saturating_sub(time::monotonic()))?;
            }
            return Err(interrupted);
        }
        proc::sleep_until(deadline);
    }
}
