//! Measuring the TSC's and the APIC timer's rates against the PIT.
//!
//! The time-stamp counter is the kernel's clock (kernel/src/time.rs), but
//! nothing tells its rate: `qemu64` reports neither CPUID leaf 0x15 nor an
//! invariant TSC. Under TCG, QEMU's `rdtsc` returns the host's TSC, so the
//! guest's counter runs at the host's fixed rate and keeps counting while
//! the vCPU thread waits for a host core (unlike timer ticks, which a
//! loaded host delays and merges). The PIT's counter is derived from
//! QEMU's virtual clock, which under TCG is host time too. So one careful
//! measurement at boot gives a rate good for the whole run:
//!
//! PIT channel 2 (gated through port 0x61, no interrupt) counts down from
//! 0xffff at 1.193182 MHz. We read the count at two points ~30 ms apart,
//! each reading bracketed by two `rdtsc`s, and keep the reading with the
//! tightest bracket: a read the host delayed (the vCPU descheduled between
//! the port access and the counter) shows up as a wide bracket and is
//! dropped, so the error is a PIT count and the bracket's width over
//! 30 ms (tens of ppm) rather than a scheduling delay. Between the two
//! readings we poll the count, so that its 16-bit wrap-around (every
//! 55 ms) is counted; a poll the host delayed by milliseconds could hide a
//! wrap, and the whole measurement is then taken again. The same window
//! gives the APIC timer's rate, read the same way.

use super::apic;
use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;
const PIT_CHANNEL2: u16 = 0x42;
const PIT_COMMAND: u16 = 0x43;
const SPEAKER_PORT: u16 = 0x61;
/// About 30 ms of PIT counts between the two readings. A reading is good
/// to one PIT count (0.84 us) plus its bracket (~0.25 us), so the rate is
/// good to ~70 ppm at worst over 30 ms (boots measure within ~20 ppm).
const WINDOW_COUNTS: u16 = 36_000;
/// Readings taken at each end; the tightest is kept.
const TRIES: usize = 8;

/// Rates measured at boot, in Hz.
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    pub tsc_hz: u64,
    /// The APIC timer's count rate with its divide-by-16 (apic.rs).
    pub apic_timer_hz: u64,
}

/// One reading: the PIT count, and the TSC and APIC timer counts at the
/// middle of the `rdtsc` bracket around it (and the bracket's width).
#[derive(Clone, Copy)]
struct Reading {
    pit: u16,
    tsc: u64,
    apic: u32,
    width: u64,
}

fn pit_count() -> u16 {
    // SAFETY: latching and reading PIT channel 2 only affects that channel,
    // which nothing else uses.
    unsafe {
        Port::<u8>::new(PIT_COMMAND).write(0b1000_0000); // latch channel 2
        let mut data = Port::<u8>::new(PIT_CHANNEL2);
        let low = data.read();
        let high = data.read();
        u16::from_le_bytes([low, high])
    }
}

fn reading() -> Reading {
    (0..TRIES)
        .map(|_| {
            let before = super::rdtsc();
            let apic = apic::timer_count();
            let pit = pit_count();
            let after = super::rdtsc();
            Reading {
                pit,
                tsc: before + (after - before) / 2,
                apic,
                width: after - before,
            }
        })
        .min_by_key(|r| r.width)
        .expect("tsc::reading: TRIES > 0")
}

/// A gap between two polls of the PIT longer than this many TSC cycles
/// may hide a wrap of its 16-bit count (55 ms): at any plausible TSC rate
/// (1 to 5 GHz) it is 8 to 40 ms. A loaded host deschedules the vCPU for
/// a few milliseconds all the time, which the modular count absorbs; a
/// measurement with a longer gap is taken again.
const MAX_POLL_GAP: u64 = 40_000_000;
const ATTEMPTS: usize = 20;
/// A PIT that has not moved after this many cycles (about a second) is
/// missing or broken.
const GIVE_UP: u64 = 1 << 32;

/// One measurement: the two readings and the PIT counts between them,
/// and whether a poll in between was delayed (then it may be wrong).
struct Measurement {
    start: Reading,
    end: Reading,
    pit_ticks: u64,
    delayed: bool,
}

fn measure() -> Measurement {
    // SAFETY: channel 2 drives only the PC speaker, whose output stays off
    // (bit 1 clear); bit 0 opens the channel's gate.
    unsafe {
        let mut speaker = Port::<u8>::new(SPEAKER_PORT);
        let old = speaker.read();
        speaker.write((old & !0b10) | 0b1);
        // Channel 2, low then high byte, mode 0 (count down), binary.
        Port::<u8>::new(PIT_COMMAND).write(0b1011_0000);
        let mut data = Port::<u8>::new(PIT_CHANNEL2);
        data.write(0xff);
        data.write(0xff);
    }
    apic::timer_start_free_running();
    // The count loads on the PIT's next clock edge: start below the top.
    let began = super::rdtsc();
    while pit_count() > 0xff00 {
        assert!(
            super::rdtsc() - began < GIVE_UP,
            "tsc::calibrate: the PIT does not count"
        );
        core::hint::spin_loop();
    }
    let start = reading();
    // Mode 0 keeps counting down past 0, wrapping to 0xffff: each poll
    // adds the counts since the previous one, modulo 2^16.
    let (mut pit, mut tsc) = (start.pit, start.tsc);
    let mut pit_ticks = 0;
    let mut delayed = false;
    while pit_ticks < u64::from(WINDOW_COUNTS) {
        let now = super::rdtsc();
        assert!(
            now - start.tsc < GIVE_UP,
            "tsc::calibrate: the PIT stopped counting"
        );
        let count = pit_count();
        delayed |= now - tsc > MAX_POLL_GAP;
        pit_ticks += u64::from(pit.wrapping_sub(count));
        (pit, tsc) = (count, now);
    }
    let end = reading();
    delayed |= end.tsc - tsc > MAX_POLL_GAP;
    pit_ticks += u64::from(pit.wrapping_sub(end.pit));
    Measurement {
        start,
        end,
        pit_ticks,
        delayed,
    }
}

/// Measure both rates (boot CPU, interrupts masked, APIC enabled).
pub fn calibrate() -> Rates {
    let mut attempts = 1;
    let mut m = measure();
    while m.delayed && attempts < ATTEMPTS {
        m = measure();
        attempts += 1;
    }
    if m.delayed {
        log::warn!("time: every calibration was disturbed by the host; the TSC's rate may be off");
    }
    let rates = Rates {
        tsc_hz: (m.end.tsc - m.start.tsc) * PIT_HZ / m.pit_ticks,
        apic_timer_hz: u64::from(m.start.apic - m.end.apic) * PIT_HZ / m.pit_ticks,
    };
    log::info!(
        "time: TSC {}.{:03} MHz, APIC timer {}.{:03} MHz (against the PIT over {} us, brackets {} and {} cycles, {attempts} attempt(s))",
        rates.tsc_hz / 1_000_000,
        rates.tsc_hz / 1000 % 1000,
        rates.apic_timer_hz / 1_000_000,
        rates.apic_timer_hz / 1000 % 1000,
        m.pit_ticks * 1_000_000 / PIT_HZ,
        m.start.width,
        m.end.width,
    );
    rates
}
