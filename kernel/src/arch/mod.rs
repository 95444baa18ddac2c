//! Machine-dependent start-up: descriptor tables, traps, the syscall
//! instruction, context switches and the timer. Most of the kernel's
//! `unsafe` lives below this module, each block with the reason it holds.

// `&mut *(&raw mut STATIC)` is how edition 2024 borrows a `static mut`
// without a shared-reference lint; clippy's deref_addrof would undo that.
#![allow(clippy::deref_addrof)]

pub mod gdt;
pub mod idt;
pub mod switch;
pub mod syscall;
pub mod timer;

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// Bring the CPU into the state the rest of the kernel assumes: our own GDT
/// and TSS, the IDT, NX, write protection in ring 0, SSE for user programs,
/// SMEP/SMAP, `syscall` enabled, and the timer ticking (interrupts stay
/// masked until the scheduler idles or a process runs).
pub fn init() {
    gdt::init();
    idt::init();
    // SAFETY: enabling NX, CR0.WP and SSE changes no mapping the kernel
    // relies on: the bootloader already marks its data NX, and the kernel
    // itself is built soft-float, so it never executes an SSE instruction.
    unsafe {
        Efer::update(|f| *f |= EferFlags::NO_EXECUTE_ENABLE | EferFlags::SYSTEM_CALL_EXTENSIONS);
        Cr0::update(|f| {
            f.remove(Cr0Flags::EMULATE_COPROCESSOR);
            f.insert(Cr0Flags::WRITE_PROTECT | Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|f| *f |= Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE);
    }
    enable_smep_smap();
    switch::init_fpu();
    syscall::init();
    timer::init();
}

/// SMEP stops the kernel from executing user pages and SMAP from reading or
/// writing them: the kernel reaches user memory only through the physical
/// map (see `usercopy`), so neither ever needs to be lifted.
fn enable_smep_smap() {
    // CPUID leaf 7, EBX bit 7 = SMEP, bit 20 = SMAP.
    let ebx = core::arch::x86_64::__cpuid_count(7, 0).ebx;
    let mut flags = Cr4Flags::empty();
    if ebx & (1 << 7) != 0 {
        flags |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if ebx & (1 << 20) != 0 {
        flags |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    if flags.bits().count_ones() < 2 {
        log::warn!("CPU lacks SMEP or SMAP (run QEMU with -cpu qemu64,+smep,+smap)");
    }
    // SAFETY: the kernel never dereferences a user address (see above).
    unsafe { Cr4::update(|f| *f |= flags) };
}

/// Wait for the next interrupt with interrupts enabled, then mask them again.
pub fn idle() {
    x86_64::instructions::interrupts::enable_and_hlt();
    x86_64::instructions::interrupts::disable();
}

/// Cycle counter, for traces and benchmarks.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Load the user FS base (thread pointer: musl's TLS). Each process has its
/// own, loaded by the scheduler when it runs; `addr` must be canonical,
/// which `arch_prctl` checks (a non-canonical value would fault in wrmsr).
pub fn set_fs_base(addr: u64) {
    x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::new(addr));
}
