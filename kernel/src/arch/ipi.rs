//! Inter-processor interrupts: a handler table, and the cross-call that
//! TLB shootdown is built on.
//!
//! An IPI is a fixed interrupt one local APIC sends another (arch/apic.rs),
//! on a vector in `IPI_BASE..IPI_BASE + IPI_COUNT`. `set_handler` names
//! what runs for each; `send` and `send_all_but_self` raise them.
//!
//! `call(targets, request)` runs a request on a set of CPUs and returns
//! once every one of them has done it: Linux's `smp_call_function_many`,
//! FreeBSD's `smp_rendezvous`, shaped for shootdown. The request is a
//! range to flush (or everything), or a function; the initiator publishes
//! it, sets one bit per target in `PENDING`, sends each target the call
//! IPI and waits until the targets cleared their bits. Whatever the
//! request made unreachable (a frame unmapped from those CPUs' TLBs) may be
//! reused once `call` returns, not before: that is the acknowledgment the
//! shootdown needs (DESIGN §6).
//!
//! One call is in flight at a time (`CALL_LOCK`). A CPU that waits, for
//! the lock or for its targets, answers the call in flight itself between
//! two polls, with interrupts still masked: so two CPUs that call each
//! other from code running with interrupts masked (all kernel code here)
//! cannot deadlock, the case Linux forbids by requiring interrupts on.

use super::apic::{self, Destination};
use super::idt::{IPI_BASE, IPI_COUNT};
use super::percpu::{self, PerCpu};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use x86_64::VirtAddr;
use x86_64::instructions::tlb;

/// The cross-call's vector.
pub const CALL_VECTOR: u8 = IPI_BASE as u8;
/// A vector whose handler only counts (the self-test's plain IPI).
pub const COUNT_VECTOR: u8 = IPI_BASE as u8 + 1;
/// Past this many pages a range flush flushes everything (Linux's
/// `tlb_single_page_flush_ceiling` is 33).
const FLUSH_ALL_PAGES: u64 = 32;

/// Handlers by vector - IPI_BASE, as `fn()` addresses (0: none).
static HANDLERS: [AtomicUsize; IPI_COUNT] = [const { AtomicUsize::new(0) }; IPI_COUNT];

/// Run `handler` on every IPI with `vector` (one of ours).
pub fn set_handler(vector: u8, handler: fn()) {
    let slot = usize::from(vector) - IPI_BASE as usize;
    HANDLERS[slot].store(handler as usize, Ordering::Release);
}

/// Register the cross-call's handler (boot CPU, before any other starts).
pub fn init() {
    set_handler(CALL_VECTOR, poll);
    set_handler(COUNT_VECTOR, || {});
}

/// An IPI arrived on this CPU (trap.rs): count it, run its handler, and
/// acknowledge it to the APIC.
pub fn dispatch(vector: u64) {
    percpu::this().ipis.fetch_add(1, Ordering::Relaxed);
    let slot = (vector - IPI_BASE) as usize;
    let handler = HANDLERS[slot].load(Ordering::Acquire);
    if handler != 0 {
        // SAFETY: only `set_handler` stores here, always a `fn()`'s address.
        let handler: fn() = unsafe { core::mem::transmute(handler) };
        handler();
    }
    apic::end_of_interrupt();
}

/// Send `vector` to `cpu`.
pub fn send(cpu: &PerCpu, vector: u8) {
    apic::send(Destination::One(cpu.apic_id()), vector);
}

/// Send `vector` to every other CPU.
pub fn send_all_but_self(vector: u8) {
    apic::send(Destination::AllButSelf, vector);
}

/// A set of CPUs, by index (bit i: CPU i).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSet(u64);

impl CpuSet {
    /// Every online CPU but the running one.
    pub fn others() -> Self {
        let me = percpu::this().index();
        CpuSet(Self::online().0 & !(1 << me))
    }

    /// Every online CPU.
    pub fn online() -> Self {
        CpuSet((1u64 << percpu::online_count()) - 1)
    }

    pub fn insert(&mut self, index: usize) {
        self.0 |= 1 << index;
    }

    pub fn contains(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// What a cross-call asks of each target.
#[derive(Clone, Copy, Debug)]
pub enum Request {
    /// Drop the TLB entries of the pages in [start, end): the shootdown
    /// after an unmap or a narrowing of rights (everything past
    /// FLUSH_ALL_PAGES pages).
    FlushRange { start: u64, end: u64 },
    /// Drop every non-global TLB entry (reload CR3).
    FlushAll,
    /// Run a function.
    Run(fn()),
}

impl Request {
    fn perform(self) {
        match self {
            Request::FlushRange { start, end } if (end - start) / 4096 <= FLUSH_ALL_PAGES => {
                for page in (start..end).step_by(4096) {
                    tlb::flush(VirtAddr::new(page));
                }
            }
            Request::FlushRange { .. } | Request::FlushAll => tlb::flush_all(),
            Request::Run(f) => f(),
        }
    }
}

/// Held by the one initiator whose call is in flight.
static CALL_LOCK: AtomicBool = AtomicBool::new(false);
/// The call in flight's targets that have not answered yet.
static PENDING: AtomicU64 = AtomicU64::new(0);
/// The call in flight; written only by the holder of CALL_LOCK while
/// PENDING is 0, read by targets while their PENDING bit is set.
struct Slot(UnsafeCell<Request>);
// SAFETY: the protocol above: one writer at a time, never while read.
unsafe impl Sync for Slot {}
static REQUEST: Slot = Slot(UnsafeCell::new(Request::FlushAll));
/// Cross-call requests this kernel answered (the self-test and the
/// performance chapter count them).
pub static ANSWERED: AtomicU64 = AtomicU64::new(0);

/// Run `request` on every online CPU in `targets` (the running one
/// included, if it is in the set: it runs it directly) and return once all
/// have. Call with interrupts masked.
pub fn call(targets: CpuSet, request: Request) {
    let me = percpu::this().index();
    let mut remote = targets;
    remote.0 &= CpuSet::online().0 & !(1 << me);
    if !remote.is_empty() {
        while CALL_LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            poll();
            core::hint::spin_loop();
        }
        // SAFETY: we hold CALL_LOCK and PENDING is 0 (the last holder waited for it).
        unsafe { *REQUEST.0.get() = request };
        PENDING.store(remote.0, Ordering::Release);
        for cpu in percpu::online().filter(|c| remote.contains(c.index())) {
            send(cpu, CALL_VECTOR);
        }
    }
    if targets.contains(me) {
        request.perform();
    }
    if !remote.is_empty() {
        wait_for_answers();
        CALL_LOCK.store(false, Ordering::Release);
    }
}

/// Spin until every target answered; complain (once) about a CPU that
/// takes a whole second, which means it runs with interrupts masked for
/// far too long, or is dead.
fn wait_for_answers() {
    let patience = crate::time::nanos_to_cycles(crate::time::NANOS_PER_SEC);
    let started = super::rdtsc();
    let mut warned = false;
    while PENDING.load(Ordering::Acquire) != 0 {
        core::hint::spin_loop();
        if !warned && super::rdtsc() - started > patience {
            warned = true;
            log::warn!(
                "ipi::call: CPUs {:#x} have not answered for a second",
                PENDING.load(Ordering::Relaxed)
            );
        }
    }
}

/// Answer the call in flight if this CPU is one of its targets: the IPI
/// handler, the polls of a CPU waiting to call, and what any loop that
/// spins with interrupts masked must call (a spin lock's, in the next
/// phase): a CPU that spins for a lock whose holder waits for this CPU's
/// answer would otherwise wait forever.
pub fn poll() {
    let bit = 1 << percpu::this().index();
    if PENDING.load(Ordering::Acquire) & bit != 0 {
        // SAFETY: our PENDING bit is set, so the request is published and
        // stays unchanged until we clear it.
        let request = unsafe { *REQUEST.0.get() };
        request.perform();
        ANSWERED.fetch_add(1, Ordering::Relaxed);
        PENDING.fetch_and(!bit, Ordering::AcqRel);
    }
}
