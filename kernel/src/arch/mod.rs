//! Machine-dependent start-up: per-CPU state, descriptor tables, traps,
//! the syscall instruction, context switches, the local APIC and its
//! timer, the other CPUs' start-up and IPIs. Most of the kernel's `unsafe`
//! lives below this module, each block with the reason it holds.

// `&mut *(&raw mut STATIC)` is how edition 2024 borrows a `static mut`
// without a shared-reference lint; clippy's deref_addrof would undo that.
#![allow(clippy::deref_addrof)]

pub mod apic;
pub mod gdt;
pub mod idt;
pub mod ipi;
pub mod percpu;
pub mod rtc;
pub mod smp;
pub mod switch;
pub mod syscall;
pub mod timer;
mod trampoline;
pub mod tsc;

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

/// Bring the boot CPU into the state the rest of the kernel assumes: its
/// per-CPU area behind GS, our own GDT and TSS, the IDT, the CPU features
/// below and the legacy PICs masked (interrupts stay masked until the
/// scheduler idles or a process runs). The APIC, its timer and the other
/// CPUs need the physical map and the heap: `smp::init` starts them later.
pub fn init() {
    let boot_cpu = percpu::assign(0, apic::boot_apic_id());
    percpu::install(boot_cpu);
    gdt::load(boot_cpu, gdt::boot_ist_stacks());
    idt::init();
    init_features();
    switch::init_fpu();
    timer::init_pic();
}

/// The same state on another CPU, which `smp` started: `cpu` is its
/// per-CPU area, `ist` its IST stack tops.
pub fn init_other_cpu(cpu: &'static percpu::PerCpu, ist: [x86_64::VirtAddr; 2]) {
    percpu::install(cpu);
    gdt::load(cpu, ist);
    idt::load();
    init_features();
}

/// NX, write protection in ring 0, SSE for user programs, SMEP/SMAP and
/// `syscall`: the per-CPU switches every CPU sets alike.
fn init_features() {
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
    syscall::init();
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
    if flags.bits().count_ones() < 2 && percpu::this().index() == 0 {
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

/// The cause of a debug exception (DR6), reset for the next one: the CPU
/// sets DR6's bits but never clears them, so a stale single-step bit would
/// otherwise describe every later #DB.
pub fn take_debug_status() -> u64 {
    let status = x86_64::registers::debug::Dr6::read_raw();
    // SAFETY: DR6 only reports causes; 0xffff0ff0 is its reset value.
    unsafe { core::arch::asm!("mov dr6, {}", in(reg) 0xffff_0ff0u64, options(nomem, nostack)) };
    status
}

/// Load the user FS base (thread pointer: musl's TLS). Each process has its
/// own, loaded by the scheduler when it runs; `addr` must be canonical,
/// which `arch_prctl` checks (a non-canonical value would fault in wrmsr).
pub fn set_fs_base(addr: u64) {
    x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::new(addr));
}
