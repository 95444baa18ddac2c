//! The local APIC: each CPU's interrupt controller, timer and IPI sender.
//!
//! pageos drives it in xAPIC mode, through its 4 KiB of registers at the
//! physical address `IA32_APIC_BASE` names (0xfee00000 on every PC), which
//! the kernel reaches through the physical map. QEMU 7.2's TCG has no
//! x2APIC (the MSR interface), so xAPIC is what runs everywhere. The
//! physical map is write-back, but the firmware's MTRRs make the APIC
//! range uncacheable, and the stricter type wins (Intel SDM 11.5.2.2);
//! the APIC also decodes its own page whatever the page tables say.
//!
//! Registers are 32 bits wide at 16-byte strides. Every function here runs
//! with interrupts masked: `send` writes two registers that an interrupt
//! handler sending its own IPI in between would scramble.

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::PhysAddr;
use x86_64::registers::model_specific::Msr;

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_GLOBAL_ENABLE: u64 = 1 << 11;
const APIC_X2APIC_ENABLE: u64 = 1 << 10;

const ID: usize = 0x20;
const TPR: usize = 0x80;
const EOI: usize = 0xb0;
const SVR: usize = 0xf0;
const ESR: usize = 0x280;
const ICR_LOW: usize = 0x300;
const ICR_HIGH: usize = 0x310;
const LVT_TIMER: usize = 0x320;
const LVT_LINT0: usize = 0x350;
const LVT_LINT1: usize = 0x360;
const LVT_ERROR: usize = 0x370;
const TIMER_INITIAL: usize = 0x380;
const TIMER_CURRENT: usize = 0x390;
const TIMER_DIVIDE: usize = 0x3e0;

const SVR_ENABLE: u32 = 1 << 8;
const LVT_MASKED: u32 = 1 << 16;
const LVT_EXTINT: u32 = 0b111 << 8;
const LVT_NMI: u32 = 0b100 << 8;
const TIMER_PERIODIC: u32 = 1 << 17;
/// Divide the timer's input clock by 16 (encoding 0b0011).
const DIVIDE_BY_16: u32 = 0b0011;
const ICR_PENDING: u32 = 1 << 12;
const ICR_INIT: u32 = 0b101 << 8;
const ICR_STARTUP: u32 = 0b110 << 8;
const ICR_ASSERT: u32 = 1 << 14;
const ICR_LEVEL: u32 = 1 << 15;
const ICR_ALL_BUT_SELF: u32 = 0b11 << 18;

/// The registers' kernel-virtual address (0 until `init_boot_cpu`).
static BASE: AtomicU64 = AtomicU64::new(0);

fn read(reg: usize) -> u32 {
    let addr = BASE.load(Ordering::Relaxed) as usize + reg;
    // SAFETY: `init_boot_cpu` pointed BASE at the APIC page in the physical
    // map; `reg` is one of the register offsets above, 16-byte aligned.
    unsafe { core::ptr::read_volatile(addr as *const u32) }
}

fn write(reg: usize, value: u32) {
    let addr = BASE.load(Ordering::Relaxed) as usize + reg;
    // SAFETY: as in `read`.
    unsafe { core::ptr::write_volatile(addr as *mut u32, value) };
}

/// The boot CPU's APIC id before the APIC is mapped (CPUID leaf 1).
pub fn boot_apic_id() -> u32 {
    core::arch::x86_64::__cpuid(1).ebx >> 24
}

/// Find the APIC's registers (the same physical page on every CPU) and
/// enable this CPU's: call on the boot CPU once the physical map exists.
pub fn init_boot_cpu() {
    // SAFETY: reading IA32_APIC_BASE has no side effect; every x86_64 CPU has it.
    let msr = unsafe { Msr::new(IA32_APIC_BASE).read() };
    assert!(
        msr & APIC_X2APIC_ENABLE == 0,
        "apic::init_boot_cpu: the firmware left x2APIC mode on"
    );
    let phys = PhysAddr::new(msr & 0x000f_ffff_ffff_f000);
    BASE.store(crate::phys::to_virt(phys).as_u64(), Ordering::Relaxed);
    enable(msr);
    // Virtual-wire mode: the 8259s' interrupts (the disks', arch/timer.rs)
    // come in on LINT0, NMIs on LINT1. Set them rather than trust the
    // firmware: an APIC it left disabled has every line masked.
    write(LVT_LINT0, LVT_EXTINT);
    write(LVT_LINT1, LVT_NMI);
}

/// Enable the running CPU's APIC (another CPU, after `init_boot_cpu`):
/// accept every priority, mask the legacy-PIC and NMI lines, which only
/// the boot CPU takes.
pub fn init_this_cpu() {
    // SAFETY: as in `init_boot_cpu`.
    let msr = unsafe { Msr::new(IA32_APIC_BASE).read() };
    enable(msr);
    write(LVT_LINT0, LVT_MASKED);
    write(LVT_LINT1, LVT_MASKED);
}

fn enable(msr: u64) {
    if msr & APIC_GLOBAL_ENABLE == 0 {
        // SAFETY: setting the global enable bit of this CPU's APIC base
        // keeps its address; nothing else depends on the APIC being off.
        unsafe { Msr::new(IA32_APIC_BASE).write(msr | APIC_GLOBAL_ENABLE) };
    }
    write(TPR, 0);
    write(LVT_ERROR, LVT_MASKED);
    write(SVR, SVR_ENABLE | super::idt::SPURIOUS as u32);
    // Writing the error status register latches (and so clears) old errors.
    write(ESR, 0);
}

/// This CPU's APIC id.
pub fn id() -> u32 {
    read(ID) >> 24
}

/// Tell the APIC the interrupt it delivered (timer, IPI) was handled.
pub fn end_of_interrupt() {
    write(EOI, 0);
}

/// Where an IPI goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The CPU with this APIC id.
    One(u32),
    /// Every CPU but the sender (the ICR's shorthand).
    AllButSelf,
}

/// Send a fixed interrupt with `vector` (the IPI path, arch/ipi.rs).
pub fn send(destination: Destination, vector: u8) {
    send_command(destination, u32::from(vector));
}

/// INIT: reset the CPU with `apic_id` into its wait-for-startup state.
pub fn send_init(apic_id: u32) {
    send_command(Destination::One(apic_id), ICR_INIT | ICR_ASSERT | ICR_LEVEL);
}

/// STARTUP (SIPI): the waiting CPU starts in real mode at `page` << 12.
pub fn send_startup(apic_id: u32, page: u8) {
    send_command(
        Destination::One(apic_id),
        ICR_STARTUP | ICR_ASSERT | u32::from(page),
    );
}

fn send_command(destination: Destination, low: u32) {
    wait_idle();
    match destination {
        Destination::One(apic_id) => {
            write(ICR_HIGH, apic_id << 24);
            write(ICR_LOW, low);
        }
        Destination::AllButSelf => write(ICR_LOW, low | ICR_ALL_BUT_SELF),
    }
    wait_idle();
}

/// The APIC accepts a new command only once it sent the previous one.
fn wait_idle() {
    while read(ICR_LOW) & ICR_PENDING != 0 {
        core::hint::spin_loop();
    }
}

/// Run the timer once from its largest count (the calibration: the count
/// then falls at the timer's input clock / 16).
pub fn timer_start_free_running() {
    write(TIMER_DIVIDE, DIVIDE_BY_16);
    write(LVT_TIMER, LVT_MASKED);
    write(TIMER_INITIAL, u32::MAX);
}

pub fn timer_count() -> u32 {
    read(TIMER_CURRENT)
}

/// Interrupt on `vector` every `count` timer clocks (input clock / 16).
pub fn timer_start_periodic(vector: u8, count: u32) {
    write(TIMER_DIVIDE, DIVIDE_BY_16);
    write(LVT_TIMER, TIMER_PERIODIC | u32::from(vector));
    write(TIMER_INITIAL, count.max(1));
}
