//! A process's address space behind its own lock: DESIGN §6's
//! address-space lock (Linux's mmap_lock, FreeBSD's vm_map lock).
//!
//! **Readers** are page faults that only add an entry: the first touch of
//! anonymous private memory, and spurious faults (`AddressSpace::
//! fault_shared`, vm/src/vm_fault/shared.rs). trap.rs runs them before it
//! takes the kernel lock, so the threads of one process fault their new
//! pages in parallel on different CPUs, and entering the PTEs is
//! serialised only by the space's page-table lock (kernel/src/pmap/shared.rs).
//!
//! **Writers** are everything else: every system call's look at the space
//! (mmap, munmap, mprotect, copies to and from user memory, ...), the
//! other faults, fork, exec, exit, /proc, reclaim. Each takes the write
//! lock under the kernel lock (system calls inside the process table's
//! lock, `Process::space`; the other faults through `running`, outside
//! it): one writer at a time, and it waits only for the readers in flight.
//!
//! The lock is a spin lock, not a sleeping one, because nobody sleeps
//! holding it: a writer holds it under the kernel lock, where nothing
//! switches (a swap-in waits for the disk in `sti; hlt` on its CPU), and a
//! reader only for a fault that never waits for a disk (at most for the
//! other CPUs' answer to a cross-call, when an allocation asks them for
//! their cached frames). So a waiting writer waits briefly, for faults that
//! need nothing it holds; it answers cross-calls meanwhile (the rule for
//! every spin loop, DESIGN §6). A reader does not wait at all: when the
//! lock is taken for writing, or a writer waits for it, the fault goes the
//! way of the others (the kernel lock, then `fault` under the write lock),
//! which keeps a stream of faults from starving writers.
//!
//! Reclaim reaches spaces from frames, against the lock order, so it only
//! try-locks (proc/spaces.rs).
//!
//! The space each CPU runs is kept here too (`running`): the fault path
//! finds it without the process table, which the kernel-lock holder may
//! hold at that moment.

use crate::Space;
use crate::arch::percpu::{self, MAX_CPUS};
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub struct Mm {
    space: RwLock<Space>,
    /// A writer waits for the readers in flight: new ones go the
    /// writers' way until it is through.
    writer_waiting: AtomicBool,
    /// Faults resolved under the read lock (minor faults: getrusage and
    /// /proc/PID/stat add them to the process's own count), one count per
    /// CPU: one shared counter would move its cache line between the CPUs
    /// of the space's threads on every fault.
    minflt: [PerCpuCount; MAX_CPUS],
}

#[repr(align(64))]
struct PerCpuCount(AtomicU64);

impl Mm {
    pub fn new(space: Space) -> Arc<Mm> {
        Arc::new(Mm {
            space: RwLock::new(space),
            writer_waiting: AtomicBool::new(false),
            minflt: [const { PerCpuCount(AtomicU64::new(0)) }; MAX_CPUS],
        })
    }

    /// The space, for writing: waits for the faults under the read lock
    /// in flight (the kernel lock keeps other writers away).
    pub fn write(&self) -> RwLockWriteGuard<'_, Space> {
        if let Some(space) = self.space.try_write() {
            return space;
        }
        // Writers hold the kernel lock, so a writer already in is this
        // CPU's own: a second `Process::space` while the first guard
        // lives would wait for itself forever.
        assert!(
            self.space.writer_count() == 0,
            "mm: the address-space lock taken twice for writing"
        );
        self.writer_waiting.store(true, Ordering::SeqCst);
        let space = crate::sync::spin_until(|| self.space.try_write());
        self.writer_waiting.store(false, Ordering::SeqCst);
        space
    }

    /// `write` for `change`, then the read lock for `then` without letting
    /// go in between (spin's `downgrade`): munmap's halves (vm's
    /// `munmap_detach` and `munmap_finish`), so that the faults of the
    /// space's other threads go on while the detached range's pages go.
    /// Only faults take the read lock, so nothing else gets in meanwhile.
    pub fn write_then_read<W, R>(
        &self,
        change: impl FnOnce(&mut Space) -> W,
        then: impl FnOnce(&Space, W) -> R,
    ) -> R {
        let mut space = self.write();
        let changed = change(&mut space);
        let space = RwLockWriteGuard::downgrade(space);
        then(&space, changed)
    }

    /// The space, for writing, if no one holds it (reclaim).
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, Space>> {
        self.space.try_write()
    }

    /// The space, for a fault under the read lock; None when a writer
    /// holds it or waits for it.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, Space>> {
        if self.writer_waiting.load(Ordering::SeqCst) {
            return None;
        }
        self.space.try_read()
    }

    /// Load the space's page tables on this CPU (the scheduler). Its L4
    /// is all this reads, so it shares the lock with the faults of the
    /// space's other threads instead of waiting for them.
    pub fn activate(&self) {
        self.space.read().pmap.activate();
    }

    pub fn count_minor_fault(&self) {
        let count = &self.minflt[percpu::this().index()].0;
        count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn minor_faults(&self) -> u64 {
        self.minflt
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// The address space of the thread each CPU runs, by CPU index (None:
/// the scheduler or the idle loop runs there). Only the CPU itself takes
/// its slot; each slot has a cache line of its own, so that the faults of
/// two CPUs do not move one line between them.
static RUNNING: [Running; MAX_CPUS] = [const { Running(Mutex::new(None)) }; MAX_CPUS];

#[repr(align(64))]
struct Running(Mutex<Option<Arc<Mm>>>);

/// This CPU now runs a thread of `mm` (the scheduler, and exec for the
/// new image), or none.
pub fn set_running(mm: Option<Arc<Mm>>) {
    // Dropped after the slot's lock is let go: the last reference to a
    // space frees its page tables.
    let old = core::mem::replace(&mut *RUNNING[percpu::this().index()].0.lock(), mm);
    drop(old);
}

/// The address space of the thread this CPU runs.
pub fn running() -> Option<Arc<Mm>> {
    RUNNING[percpu::this().index()].0.lock().clone()
}

/// `f` on the address space of the thread this CPU runs, borrowed from
/// the CPU's slot: the fault path's way, which takes no reference (the
/// reference count is shared by every CPU running the space, and each
/// increment would move its line). The slot cannot change meanwhile:
/// only this CPU's scheduler and exec change it, and neither runs
/// inside `f`.
pub fn with_running<R>(f: impl FnOnce(&Mm) -> R) -> Option<R> {
    RUNNING[percpu::this().index()].0.lock().as_deref().map(f)
}
