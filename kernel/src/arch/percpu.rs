//! Per-CPU state, reached through the GS base.
//!
//! Each CPU owns one `PerCpu`: the kernel stack the syscall entry switches
//! to and a scratch slot for the user rsp (the entry assembly reads them at
//! fixed offsets), the CPU's number and local APIC id, its GDT and TSS, the
//! thread it runs and the address space it has loaded, the scheduler's
//! saved stack pointer, its signal re-check flag, its cache of free
//! frames and its run queue.
//!
//! The GS rule (Linux's and FreeBSD's): while the kernel runs, the GS base
//! holds this CPU's `PerCpu`; while user code runs it holds the user's
//! value (always 0: pageos lets no user program set it) and
//! `IA32_KERNEL_GS_BASE` keeps the `PerCpu` pointer. `swapgs` exchanges the
//! two, so every entry from user mode (the syscall entry, the trap stubs)
//! executes it first and every return to user mode executes it last; an
//! entry from kernel mode leaves GS alone. NMI and double-fault handlers can
//! arrive in the few instructions between `syscall` and its `swapgs` (or
//! between the last `swapgs` and `sysretq`/`iretq`), where CS says kernel
//! but GS is the user's: they never read per-CPU state (arch/idt.rs).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use x86_64::VirtAddr;
use x86_64::registers::model_specific::{GsBase, KernelGsBase};
use x86_64::structures::gdt::GlobalDescriptorTable;
use x86_64::structures::tss::TaskStateSegment;

/// CPUs pageos drives at most; the MADT may list more (they stay parked).
pub const MAX_CPUS: usize = 16;

/// Offsets the entry assembly uses (arch/syscall.rs): the first fields.
pub const KERNEL_STACK_OFFSET: usize = 8;
pub const USER_RSP_OFFSET: usize = 16;

/// Each CPU's struct starts a cache line of its own: the fields one CPU
/// writes on every fault and system call (its frame cache, `user_rsp`)
/// never share a line with the next CPU's.
#[repr(C, align(64))]
pub struct PerCpu {
    /// The address of this struct: `gs:[0]` turns the GS base into a pointer.
    this: AtomicU64,
    /// Top of the running process's kernel stack (syscall entry, TSS rsp0).
    kernel_stack_top: AtomicU64,
    /// Where the syscall entry parks the user rsp before it has a stack.
    user_rsp: AtomicU64,
    /// The scheduler's rsp while a process runs (proc.rs switches to it).
    pub scheduler_rsp: UnsafeCell<u64>,
    /// 0 for the boot CPU, then 1, 2, ... in the order the MADT lists them.
    index: AtomicUsize,
    apic_id: AtomicU32,
    /// The thread running on this CPU, 0 when it runs the scheduler or idles.
    current: AtomicU32,
    /// The L4 (physical address) of the user address space this CPU has
    /// loaded, 0 for the kernel's: the CPUs a space's TLB shootdown must
    /// reach are those that name its L4 here (kernel/src/pmap/mod.rs).
    user_tables: AtomicU64,
    /// The next return to user mode on this CPU looks for pending signals
    /// (kernel/src/signal/mod.rs).
    pub recheck: AtomicBool,
    /// Interrupts this CPU took, by kind (the SMP self-test reads them).
    pub ticks: AtomicU64,
    pub ipis: AtomicU64,
    /// A `fn()` an idle CPU runs once it wakes (0: none; arch/smp.rs).
    idle_work: AtomicUsize,
    /// Free 4 KiB frames this CPU takes and gives back without the frame
    /// table's lock (kernel/src/phys/cache.rs).
    pub frames: crate::phys::cache::FrameCache,
    /// The threads waiting to run here (kernel/src/proc/runq.rs).
    pub run_queue: crate::proc::RunQueue,
    /// The CPU reads both through the descriptors `gdt::load` installs.
    pub(super) tss: UnsafeCell<TaskStateSegment>,
    pub(super) gdt: UnsafeCell<GlobalDescriptorTable>,
}

// SAFETY: the atomics are shared freely; `tss`, `gdt` and `scheduler_rsp`
// are written only by the CPU that owns the struct (or by the boot CPU
// before that CPU starts), with interrupts masked.
unsafe impl Sync for PerCpu {}

impl PerCpu {
    const fn new() -> Self {
        PerCpu {
            this: AtomicU64::new(0),
            kernel_stack_top: AtomicU64::new(0),
            user_rsp: AtomicU64::new(0),
            scheduler_rsp: UnsafeCell::new(0),
            index: AtomicUsize::new(0),
            apic_id: AtomicU32::new(0),
            current: AtomicU32::new(0),
            user_tables: AtomicU64::new(0),
            recheck: AtomicBool::new(true),
            ticks: AtomicU64::new(0),
            ipis: AtomicU64::new(0),
            idle_work: AtomicUsize::new(0),
            frames: crate::phys::cache::FrameCache::new(),
            run_queue: crate::proc::RunQueue::new(),
            tss: UnsafeCell::new(TaskStateSegment::new()),
            gdt: UnsafeCell::new(GlobalDescriptorTable::new()),
        }
    }

    pub fn index(&self) -> usize {
        self.index.load(Ordering::Relaxed)
    }

    pub fn apic_id(&self) -> u32 {
        self.apic_id.load(Ordering::Relaxed)
    }

    /// The running thread's tid, if any.
    pub fn current(&self) -> Option<u32> {
        match self.current.load(Ordering::Relaxed) {
            0 => None,
            pid => Some(pid),
        }
    }

    pub fn set_current(&self, pid: Option<u32>) {
        self.current.store(pid.unwrap_or(0), Ordering::Relaxed);
    }

    /// The user L4 this CPU translates through (0: the kernel's tables).
    pub fn user_tables(&self) -> u64 {
        self.user_tables.load(Ordering::SeqCst)
    }

    /// Record the L4 this CPU is about to load (before CR3 is written, so
    /// that a shootdown that changed the tables first either sees this CPU
    /// or is seen by its walk).
    pub fn set_user_tables(&self, l4: u64) {
        self.user_tables.store(l4, Ordering::SeqCst);
    }

    /// Queue `work` for this CPU's idle loop; false if some is queued.
    pub fn set_idle_work(&self, work: fn()) -> bool {
        self.idle_work
            .compare_exchange(0, work as usize, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    pub fn take_idle_work(&self) -> Option<fn()> {
        match self.idle_work.swap(0, Ordering::AcqRel) {
            0 => None,
            // SAFETY: only `set_idle_work` stores here, always a `fn()`.
            work => Some(unsafe { core::mem::transmute::<usize, fn()>(work) }),
        }
    }

    /// Point the syscall entry and the TSS at a process's kernel stack.
    pub fn set_kernel_stack(&self, top: VirtAddr) {
        self.kernel_stack_top.store(top.as_u64(), Ordering::Relaxed);
        // SAFETY: only this CPU writes its TSS, with interrupts masked; the
        // CPU reads rsp0 only when a trap from ring 3 arrives, which cannot
        // happen while the kernel runs.
        unsafe { (*self.tss.get()).privilege_stack_table[0] = top };
    }
}

static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];
/// CPUs that finished `bring_up` (the boot CPU included).
static ONLINE: AtomicUsize = AtomicUsize::new(0);

/// Every CPU that came up, the boot CPU first.
pub fn online() -> impl Iterator<Item = &'static PerCpu> {
    CPUS[..ONLINE.load(Ordering::Acquire)].iter()
}

/// Every CPU slot, online or not (a slot never used is all zeros).
pub fn all() -> &'static [PerCpu] {
    &CPUS
}

pub fn online_count() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// Name CPU slot `index` for the CPU whose local APIC id is `apic_id`.
pub fn assign(index: usize, apic_id: u32) -> &'static PerCpu {
    let cpu = &CPUS[index];
    cpu.index.store(index, Ordering::Relaxed);
    cpu.apic_id.store(apic_id, Ordering::Relaxed);
    cpu.this
        .store(cpu as *const PerCpu as u64, Ordering::Relaxed);
    cpu
}

/// Make `cpu` the running CPU's own: load the GS base (and an empty user
/// GS base for the first `swapgs` into user mode).
pub fn install(cpu: &'static PerCpu) {
    GsBase::write(VirtAddr::from_ptr(cpu));
    KernelGsBase::write(VirtAddr::zero());
}

/// Count `cpu` as online: its tables are loaded and it answers interrupts.
/// CPUs come up one at a time, in index order.
pub fn mark_online(cpu: &PerCpu) {
    ONLINE.store(cpu.index() + 1, Ordering::Release);
}

/// This CPU's `PerCpu` (kernel mode only: see the GS rule above).
pub fn this() -> &'static PerCpu {
    let ptr: u64;
    // SAFETY: in kernel mode the GS base is this CPU's PerCpu, whose first
    // field holds its own address; reading it has no side effect.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) ptr, options(nostack, readonly, preserves_flags));
    }
    // SAFETY: `install` pointed GS at an element of CPUS, which is 'static.
    unsafe { &*(ptr as *const PerCpu) }
}
