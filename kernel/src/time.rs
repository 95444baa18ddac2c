//! The kernel's clocks: the TSC, converted to nanoseconds.
//!
//! At boot `init` measures the TSC's rate against the PIT (arch/tsc.rs) and
//! reads the date from the CMOS clock (arch/rtc.rs). From then on every
//! clock is the TSC read now: monotonic time is the TSC since boot times a
//! fixed-point factor, real time adds the RTC's date at boot. Timer ticks
//! are never counted: a loaded host delays and merges them, while the TSC
//! keeps time (issue 14 measured a tick-counting clock losing a third).
//!
//! Under TCG every CPU's TSC is the host's, so all CPUs read one clock.

use crate::arch::{self, tsc};
use core::sync::atomic::{AtomicU64, Ordering};

pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The TSC at `init`: monotonic time 0.
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static TSC_HZ: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC cycle, as a 32.32 fixed-point number.
static NANOS_PER_CYCLE_FIXED: AtomicU64 = AtomicU64::new(0);
/// The real time (ns since the Unix epoch) at monotonic time 0.
static REALTIME_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static APIC_TIMER_HZ: AtomicU64 = AtomicU64::new(0);

/// Measure the clocks (boot CPU, once, with its APIC enabled).
pub fn init() {
    let rates = tsc::calibrate();
    let now = arch::rdtsc();
    TSC_HZ.store(rates.tsc_hz, Ordering::Relaxed);
    APIC_TIMER_HZ.store(rates.apic_timer_hz, Ordering::Relaxed);
    NANOS_PER_CYCLE_FIXED.store(
        ((u128::from(NANOS_PER_SEC) << 32) / u128::from(rates.tsc_hz)) as u64,
        Ordering::Relaxed,
    );
    TSC_AT_BOOT.store(now, Ordering::Relaxed);
    let unix = arch::rtc::read_unix_time();
    // The RTC counts whole seconds: real time is good to a second.
    REALTIME_AT_BOOT.store(
        (unix * NANOS_PER_SEC).saturating_sub(monotonic()),
        Ordering::Relaxed,
    );
    log::info!("time: the RTC says {unix} s since the epoch");
}

/// Nanoseconds for `cycles` of the TSC.
pub fn cycles_to_nanos(cycles: u64) -> u64 {
    let fixed = NANOS_PER_CYCLE_FIXED.load(Ordering::Relaxed);
    ((u128::from(cycles) * u128::from(fixed)) >> 32) as u64
}

/// TSC cycles in `nanos` nanoseconds (for busy waits).
pub fn nanos_to_cycles(nanos: u64) -> u64 {
    (u128::from(nanos) * u128::from(TSC_HZ.load(Ordering::Relaxed)) / u128::from(NANOS_PER_SEC))
        as u64
}

/// Nanoseconds since boot (CLOCK_MONOTONIC, CLOCK_BOOTTIME: nothing
/// suspends or slews this machine).
pub fn monotonic() -> u64 {
    cycles_to_nanos(arch::rdtsc().saturating_sub(TSC_AT_BOOT.load(Ordering::Relaxed)))
}

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME).
pub fn realtime() -> u64 {
    REALTIME_AT_BOOT.load(Ordering::Relaxed) + monotonic()
}

/// The offset from monotonic to real time (absolute CLOCK_REALTIME sleeps).
pub fn realtime_offset() -> u64 {
    REALTIME_AT_BOOT.load(Ordering::Relaxed)
}

/// The APIC timer's count rate (arch/apic.rs's divide-by-16).
pub fn apic_timer_hz() -> u64 {
    APIC_TIMER_HZ.load(Ordering::Relaxed)
}

/// Spin for `nanos` (the AP start-up's delays), by the TSC.
pub fn busy_wait(nanos: u64) {
    let until = arch::rdtsc() + nanos_to_cycles(nanos);
    while arch::rdtsc() < until {
        core::hint::spin_loop();
    }
}
