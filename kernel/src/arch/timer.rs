//! The periodic tick: the legacy PIT on IRQ 0 through the 8259 PICs,
//! remapped to vectors 32..48 so they do not collide with exceptions.

use core::sync::atomic::{AtomicU64, Ordering};
use pic8259::ChainedPics;
use spin::Mutex;
use x86_64::instructions::port::Port;

pub const HZ: u32 = 100;
const PIT_FREQUENCY: u32 = 1_193_182;

static PICS: Mutex<ChainedPics> = Mutex::new(
    // SAFETY: 32..48 is free: the exceptions end at 31.
    unsafe { ChainedPics::new(32, 40) },
);

pub fn init() {
    let divisor = (PIT_FREQUENCY / HZ) as u16;
    // SAFETY: standard PIT programming: channel 0, lobyte/hibyte, mode 3.
    unsafe {
        let mut pics = PICS.lock();
        pics.initialize();
        pics.write_masks(0b1111_1110, 0b1111_1111); // only IRQ 0
        Port::<u8>::new(0x43).write(0x36);
        let mut data = Port::<u8>::new(0x40);
        data.write(divisor as u8);
        data.write((divisor >> 8) as u8);
    }
}

/// Let IRQ `line` (0..16) through the PICs, or hold it back. A device's
/// line (the virtio disks', see block/virtio.rs) is masked while its
/// interrupt waits to be acknowledged at the device. A line of the slave
/// PIC needs the master's cascade line (2) open too.
pub fn set_irq_masked(line: u8, masked: bool) {
    // SAFETY: the masks only decide which IRQ lines are delivered.
    unsafe {
        let mut pics = PICS.lock();
        let mut masks = pics.read_masks();
        let (chip, bit) = (usize::from(line / 8), line % 8);
        if masked {
            masks[chip] |= 1 << bit;
        } else {
            masks[chip] &= !(1 << bit);
            if chip == 1 {
                masks[0] &= !(1 << 2);
            }
        }
        pics.write_masks(masks[0], masks[1]);
    }
}

/// Acknowledge an IRQ so the PIC delivers the next one.
pub fn end_of_interrupt(vector: u8) {
    // SAFETY: vector came from the PIC range.
    unsafe { PICS.lock().notify_end_of_interrupt(vector) };
}

const NANOS_PER_TICK: u64 = 1_000_000_000 / HZ as u64;
static TICKS: AtomicU64 = AtomicU64::new(0);
static LAST_TICK_TSC: AtomicU64 = AtomicU64::new(0);
/// TSC cycles between two ticks, measured (the TSC's rate is not known otherwise).
static TSC_PER_TICK: AtomicU64 = AtomicU64::new(0);

/// Count a timer tick (called on each IRQ 0).
pub fn tick() {
    let now = super::rdtsc();
    let last = LAST_TICK_TSC.swap(now, Ordering::Relaxed);
    let cycles = now.wrapping_sub(last);
    let known = TSC_PER_TICK.load(Ordering::Relaxed);
    // A tick delayed by the masked kernel spans several periods: keep the shortest.
    if last != 0 && (known == 0 || cycles < known) {
        TSC_PER_TICK.store(cycles, Ordering::Relaxed);
    }
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Time since the timer started: whole ticks, plus the TSC's progress
/// since the last one (capped below a tick, so the clock never goes back).
pub fn nanos_since_boot() -> u64 {
    let base = TICKS.load(Ordering::Relaxed) * NANOS_PER_TICK;
    let per_tick = TSC_PER_TICK.load(Ordering::Relaxed);
    if per_tick == 0 {
        return base;
    }
    let since = super::rdtsc().wrapping_sub(LAST_TICK_TSC.load(Ordering::Relaxed));
    let extra = (u128::from(since) * u128::from(NANOS_PER_TICK) / u128::from(per_tick)) as u64;
    base + extra.min(NANOS_PER_TICK - 1)
}
