//! The periodic tick: the legacy PIT on IRQ 0 through the 8259 PICs,
//! remapped to vectors 32..48 so they do not collide with exceptions.

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

/// Acknowledge an IRQ so the PIC delivers the next one.
pub fn end_of_interrupt(vector: u8) {
    // SAFETY: vector came from the PIC range.
    unsafe { PICS.lock().notify_end_of_interrupt(vector) };
}
