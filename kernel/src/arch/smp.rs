//! Bringing up the other CPUs (the application processors).
//!
//! The boot CPU enables its local APIC, measures the clocks and starts its
//! tick; then it reads the MADT (kernel/src/acpi.rs) for the other CPUs'
//! APIC ids, installs the real-mode trampoline (arch/trampoline.rs) below
//! 1 MiB, and starts each CPU in turn with the MP specification's
//! INIT-SIPI-SIPI sequence: INIT resets it into "wait for startup", each
//! STARTUP IPI names the trampoline's page. The second SIPI is there for
//! CPUs that missed the first (Intel's rule); one that is already running
//! ignores it.
//!
//! Each CPU gets a 64 KiB boot stack and two IST stacks from the heap, and
//! its `PerCpu` slot (arch/percpu.rs). Once it reaches `other_cpu_main` it
//! loads the kernel's page tables, its own GDT and TSS, the shared IDT,
//! turns on the same CPU features as the boot CPU, enables its APIC and
//! timer, says it is online, and idles with interrupts on, answering IPIs.
//! The boot CPU waits for that before it starts the next (they share the
//! trampoline's parameters). Until the boot CPU starts the scheduler
//! (after the self-tests) they only answer cross-calls (arch/ipi.rs);
//! then each runs the scheduler (proc/sched.rs) on its boot stack.

use super::percpu::{self, MAX_CPUS, PerCpu};
use super::trampoline::Trampoline;
use super::{apic, gdt, ipi, timer};
use crate::time;
use alloc::vec;
use bootloader_api::BootInfo;
use x86_64::VirtAddr;

const BOOT_STACK_SIZE: usize = 64 * 1024;
/// How long a CPU may take to say it is online: generous, because with
/// multi-threaded TCG on a loaded host a vCPU thread may wait for a core.
const START_TIMEOUT_NS: u64 = 2_000_000_000;

/// What a starting CPU needs, handed over through the trampoline.
struct Start {
    cpu: &'static PerCpu,
    ist: [VirtAddr; 2],
}

/// Enable the boot CPU's APIC and timer, measure the clocks, and start
/// every other CPU the MADT lists (at most MAX_CPUS in all).
pub fn init(boot_info: &BootInfo) {
    apic::init_boot_cpu();
    assert!(
        apic::id() == percpu::this().apic_id(),
        "smp::init: CPUID and the APIC disagree on the boot CPU's id"
    );
    time::init();
    ipi::init();
    timer::start_this_cpu();
    percpu::mark_online(percpu::this());
    let listed = start_others(boot_info);
    log::info!("smp: {} of {listed} CPUs up", percpu::online_count());
}

/// Start the CPUs the MADT lists besides this one; returns how many CPUs
/// it lists in all (1 without a readable MADT).
fn start_others(boot_info: &BootInfo) -> usize {
    let listed = match boot_info
        .rsdp_addr
        .into_option()
        .map(crate::acpi::processors)
    {
        Some(Ok(cpus)) => cpus,
        Some(Err(e)) => {
            log::warn!("smp: cannot read the MADT ({e:?}): one CPU");
            return 1;
        }
        None => {
            log::warn!("smp: no ACPI tables: one CPU");
            return 1;
        }
    };
    // xAPIC addresses 8-bit ids, 0xff being the broadcast: larger ids
    // (x2APIC entries of the MADT) cannot be started from here.
    let (others, unreachable): (vec::Vec<u32>, vec::Vec<u32>) = listed
        .others
        .iter()
        .copied()
        .filter(|&id| id != listed.boot)
        .partition(|&id| id < 0xff);
    if !unreachable.is_empty() {
        log::warn!(
            "smp: {} CPUs have APIC ids past xAPIC's reach",
            unreachable.len()
        );
    }
    if others.len() >= MAX_CPUS {
        log::warn!(
            "smp: the MADT lists {} CPUs, pageos drives {MAX_CPUS}",
            others.len() + 1
        );
    }
    if !others.is_empty() {
        match Trampoline::install(&boot_info.memory_regions) {
            Some(trampoline) => {
                for (index, &apic_id) in (1..MAX_CPUS).zip(&others) {
                    if !start_cpu(&trampoline, index, apic_id) {
                        log::error!("smp: CPU {index} (APIC id {apic_id}) did not start");
                        break;
                    }
                }
            }
            None => log::warn!("smp: no free page below 1 MiB for the trampoline"),
        }
    }
    others.len() + 1
}

/// Start CPU `index` (APIC id `apic_id`); true once it is online.
fn start_cpu(trampoline: &Trampoline, index: usize, apic_id: u32) -> bool {
    let cpu = percpu::assign(index, apic_id);
    let stack = |size| VirtAddr::from_ptr(vec![0u8; size].leak().as_ptr()) + size as u64;
    let ist = [
        stack(gdt::IST_STACK_SIZE).align_down(16u64),
        stack(gdt::IST_STACK_SIZE).align_down(16u64),
    ];
    let boot_stack = stack(BOOT_STACK_SIZE).align_down(16u64);
    let start = alloc::boxed::Box::leak(alloc::boxed::Box::new(Start { cpu, ist }));
    trampoline.prepare(
        boot_stack.as_u64(),
        other_cpu_main,
        start as *const Start as u64,
    );
    let online = || percpu::online_count() > index;
    apic::send_init(apic_id);
    time::busy_wait(10_000_000);
    for _ in 0..2 {
        apic::send_startup(apic_id, trampoline.page());
        time::busy_wait(200_000);
        if online() {
            return true;
        }
    }
    let deadline = time::monotonic() + START_TIMEOUT_NS;
    while !online() && time::monotonic() < deadline {
        core::hint::spin_loop();
    }
    online()
}

/// Where a started CPU enters the kernel (from the trampoline), with the
/// trampoline's page tables and GDT and interrupts masked.
extern "C" fn other_cpu_main(start: u64) -> ! {
    crate::pmap::load_kernel_l4();
    // SAFETY: `start` is the leaked `Start` that `start_cpu` handed the trampoline.
    let start = unsafe { &*(start as *const Start) };
    super::init_other_cpu(start.cpu, start.ist);
    apic::init_this_cpu();
    timer::start_this_cpu();
    percpu::mark_online(start.cpu);
    // Idle, answering IPIs, until the boot CPU starts the scheduler
    // (`proc::run`): then this CPU runs threads too.
    loop {
        super::idle();
        if let Some(work) = start.cpu.take_idle_work() {
            work();
        }
        if crate::proc::scheduler_started() {
            crate::proc::run();
        }
    }
}

/// Have idle CPU `cpu` (not the boot CPU) run `work` once, outside any
/// interrupt handler (the self-test uses it to make CPUs initiate
/// cross-calls at the same time). False if it still has work queued.
pub fn run_when_idle(cpu: &PerCpu, work: fn()) -> bool {
    let queued = cpu.set_idle_work(work);
    if queued {
        ipi::send(cpu, ipi::COUNT_VECTOR);
    }
    queued
}
