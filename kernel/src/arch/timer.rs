//! The periodic tick: each CPU's local APIC timer, HZ times a second.
//!
//! The tick drives scheduling (a process in user mode gives up the CPU)
//! and wakes sleepers whose deadline passed (kernel/src/sleep.rs); it is
//! not a clock: time comes from the TSC (kernel/src/time.rs). The legacy
//! 8259 PICs are remapped to vectors 32..48, so that a spurious interrupt
//! from them cannot pose as an exception, and masked but for the lines
//! devices open (`set_irq_masked`: the virtio disks); they reach the boot
//! CPU through its APIC's LINT0 line. The PIT, which ticked before the
//! APIC timer did, now only serves the calibration.

use super::percpu;
use core::sync::atomic::Ordering;
use pic8259::ChainedPics;
use spin::Mutex;
use x86_64::instructions::port::Port;

pub const HZ: u32 = 100;

static PICS: Mutex<ChainedPics> = Mutex::new(
    // SAFETY: 32..48 is free: the exceptions end at 31.
    unsafe { ChainedPics::new(32, 40) },
);

/// Remap and mask the PICs; stop the PIT's periodic interrupt.
pub fn init_pic() {
    // SAFETY: standard PIC and PIT programming. PIT channel 0 in mode 0
    // with a count of 1 fires once (masked) and then stays quiet.
    unsafe {
        let mut pics = PICS.lock();
        pics.initialize();
        pics.write_masks(0b1111_1111, 0b1111_1111);
        Port::<u8>::new(0x43).write(0x30);
        let mut data = Port::<u8>::new(0x40);
        data.write(1);
        data.write(0);
    }
}

/// Start the running CPU's tick (after `time::init` measured the APIC timer).
pub fn start_this_cpu() {
    let count = crate::time::apic_timer_hz() / u64::from(HZ);
    super::apic::timer_start_periodic(super::idt::TIMER as u8, count as u32);
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

/// One tick on this CPU (the timer interrupt, already acknowledged):
/// every CPU wakes the sleepers whose time came and delivers deferred
/// wake-ups (each one atomic load when there is nothing to do), so that
/// a timeout does not wait for one CPU that has interrupts masked; the
/// boot CPU, which takes the terminal's interrupt, sends its signals.
pub fn tick() {
    let cpu = percpu::this();
    let ticks = cpu.ticks.fetch_add(1, Ordering::Relaxed) + 1;
    crate::proc::balance_tick(ticks);
    crate::sleep::wake_expired();
    crate::sleep::wake_deferred();
    if cpu.index() == 0 {
        crate::tty::tick();
    }
}
