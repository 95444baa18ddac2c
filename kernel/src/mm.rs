//! A process's address space behind its own lock: DESIGN §6's
//! address-space lock (Linux's mmap_lock, FreeBSD's vm_map lock).
//!
//! **Readers** are page faults that change one entry of anonymous private
//! memory: the first touch, the copy-on-write of a 4 KiB page, and
//! spurious faults (`AddressSpace::fault_shared`,
//! vm/src/vm_fault/shared.rs). trap.rs runs them before it
//! takes the kernel lock, so the threads of one process fault their new
//! pages in parallel on different CPUs, and entering the PTEs is
//! serialised only by the space's page-table lock (kernel/src/pmap/shared.rs).
//!
//! **Writers** are everything else: every system call's look at the space
//! (mmap, munmap, mprotect, copies to and from user memory, ...), the
//! other faults, fork, exec, exit, /proc, reclaim. Each takes the write
//! lock under the kernel lock (system calls inside the process table's
//! lock, `Process::space`; the other faults through `running`, outside
//! it), but munmap of anonymous memory, which takes it without
//! (syscall/memory.rs `munmap_lockless`): one writer at a time, by
//! compare-and-exchange, and it waits only for the readers in flight.
//!
//! The lock is a spin lock, not a sleeping one, because nobody sleeps
//! holding it: a writer holds it under the kernel lock, where nothing
//! switches (a swap-in waits for the disk in `sti; hlt` on its CPU), or
//! in a munmap that needs no disk, and a reader only for a fault that
//! never waits for a disk (at most for the other CPUs' answer to a
//! cross-call, when an allocation asks them for their cached frames). So a waiting writer waits briefly, for faults that
//! need nothing it holds; it answers cross-calls meanwhile (the rule for
//! every spin loop, DESIGN §6). A reader never gets in while a writer
//! holds the lock or waits for it, which keeps a stream of faults from
//! starving writers: it waits for the writer to be through
//! (`read`), with interrupts let in between looks as the kernel
//! lock's waiters do, and then takes the read lock. (It used to go the
//! way of the other faults instead, the kernel lock then `fault` under the
//! write lock: but the writer is a system call holding the kernel lock,
//! so a fault that met munmap's short first half then waited for the
//! whole munmap, and in page_fault1 on two threads each thread's faults
//! met the other's munmaps and mmaps.)
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
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use spin::Mutex;

pub struct Mm {
    space: UnsafeCell<Space>,
    /// The CPU (its index + 1) whose writer holds the lock or waits for
    /// the readers in flight, 0 for none: new readers wait until it is
    /// through. Writers come one at a time, as they take it by
    /// compare-and-exchange: most hold the kernel lock too, but munmap of
    /// anonymous memory does not (`syscall::lockless`).
    writer: AtomicUsize,
    /// The readers in, counted on the CPU each came in on: a fault adds
    /// to its own CPU's count and takes from it, so the faults of two CPUs
    /// write no common line (one shared count would move between them
    /// twice a fault). A writer waits for every count to be zero. Linux's
    /// percpu_rw_semaphore, and FreeBSD's rmlock, split their readers the
    /// same way.
    readers: [PerCpuCount; MAX_CPUS],
    /// Faults resolved under the read lock (minor faults: getrusage and
    /// /proc/PID/stat add them to the process's own count), one count per
    /// CPU for the same reason.
    minflt: [PerCpuCount; MAX_CPUS],
}

#[repr(align(64))]
struct PerCpuCount(AtomicU64);

/// `Mm::writer` when no writer holds the lock or waits for it.
const NO_WRITER: usize = 0;

/// This CPU as `Mm::writer` names it.
fn writer_id() -> usize {
    percpu::this().index() + 1
}

// SAFETY: `space` is reached only through the guards below, which the
// lock hands out as a reader-writer lock does: a `WriteGuard` while no
// reader is in and no other writer holds it, `ReadGuard`s (shared
// references) otherwise. `Space` is Send and Sync.
unsafe impl Sync for Mm {}

/// The space, for writing (`Mm::write`, `Mm::try_write`).
pub struct WriteGuard<'a> {
    mm: &'a Mm,
}

/// The space, for reading (a fault under the read lock).
pub struct ReadGuard<'a> {
    mm: &'a Mm,
    /// The CPU whose count this reader is in (its fault does not move).
    cpu: usize,
}

impl Mm {
    pub fn new(space: Space) -> Arc<Mm> {
        Arc::new(Mm {
            space: UnsafeCell::new(space),
            writer: AtomicUsize::new(NO_WRITER),
            readers: [const { PerCpuCount(AtomicU64::new(0)) }; MAX_CPUS],
            minflt: [const { PerCpuCount(AtomicU64::new(0)) }; MAX_CPUS],
        })
    }

    /// The space, for writing: waits for another CPU's writer, then for
    /// the faults under the read lock in flight. Neither needs anything
    /// the caller may hold (the kernel lock, the process table): a writer
    /// that lacks the kernel lock is munmap's, which takes nothing else.
    pub fn write(&self) -> WriteGuard<'_> {
        let me = writer_id();
        crate::sync::spin_until(|| {
            match self
                .writer
                .compare_exchange(NO_WRITER, me, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => Some(()),
                // A second `Process::space` while this CPU's first guard
                // lives would wait for itself forever.
                Err(holder) if holder == me => {
                    panic!("mm: the address-space lock taken twice for writing")
                }
                Err(_) => None,
            }
        });
        crate::sync::spin_until(|| (!self.has_readers()).then_some(()));
        WriteGuard { mm: self }
    }

    /// The space, for writing, if no one holds it (reclaim).
    pub fn try_write(&self) -> Option<WriteGuard<'_>> {
        self.writer
            .compare_exchange(NO_WRITER, writer_id(), Ordering::SeqCst, Ordering::Relaxed)
            .ok()?;
        if self.has_readers() {
            self.writer.store(NO_WRITER, Ordering::SeqCst);
            return None;
        }
        Some(WriteGuard { mm: self })
    }

    /// Whether a reader is in. SeqCst on both sides (the writer's flag
    /// then this; a reader's count then the flag): either the reader sees
    /// the flag and leaves, or the writer sees its count and waits.
    fn has_readers(&self) -> bool {
        self.readers.iter().any(|c| c.0.load(Ordering::SeqCst) != 0)
    }

    /// The space, for reading (a fault, or a system call answered without
    /// the kernel lock), once no writer holds it or waits for it. The
    /// writer's work needs nothing this CPU holds, so waiting for it is
    /// safe; cross-calls are answered meanwhile, and interrupts taken
    /// between looks (the tick, a wake-up's IPI).
    pub fn read(&self) -> ReadGuard<'_> {
        loop {
            if let Some(space) = self.try_read() {
                return space;
            }
            while self.writer.load(Ordering::Relaxed) != NO_WRITER {
                crate::arch::ipi::poll();
                x86_64::instructions::interrupts::enable();
                core::hint::spin_loop();
                x86_64::instructions::interrupts::disable();
            }
        }
    }

    /// The space, for a fault under the read lock; None when a writer
    /// holds it or waits for it.
    pub fn try_read(&self) -> Option<ReadGuard<'_>> {
        let cpu = percpu::this().index();
        self.readers[cpu].0.fetch_add(1, Ordering::SeqCst);
        if self.writer.load(Ordering::SeqCst) != NO_WRITER {
            self.readers[cpu].0.fetch_sub(1, Ordering::Release);
            return None;
        }
        Some(ReadGuard { mm: self, cpu })
    }

    /// Load the space's page tables on this CPU (the scheduler). Its L4
    /// is all this reads, so it shares the lock with the faults of the
    /// space's other threads instead of waiting for them.
    pub fn activate(&self) {
        crate::sync::spin_until(|| self.try_read()).pmap.activate();
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

impl<'a> WriteGuard<'a> {
    /// The read lock, taken without letting go of the space in between.
    pub fn downgrade(self) -> ReadGuard<'a> {
        let mm = self.mm;
        let cpu = percpu::this().index();
        mm.readers[cpu].0.fetch_add(1, Ordering::SeqCst);
        // The guard's drop lets the writer's flag go.
        drop(self);
        ReadGuard { mm, cpu }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.mm.writer.store(NO_WRITER, Ordering::Release);
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.mm.readers[self.cpu].0.fetch_sub(1, Ordering::Release);
    }
}

impl Deref for WriteGuard<'_> {
    type Target = Space;
    fn deref(&self) -> &Space {
        // SAFETY: a writer has the space to itself (the `Sync` impl).
        unsafe { &*self.mm.space.get() }
    }
}

impl DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Space {
        // SAFETY: as `deref`; `&mut self` is this guard's only use.
        unsafe { &mut *self.mm.space.get() }
    }
}

impl Deref for ReadGuard<'_> {
    type Target = Space;
    fn deref(&self) -> &Space {
        // SAFETY: readers share the space, and no writer is in while one
        // is (the `Sync` impl).
        unsafe { &*self.mm.space.get() }
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

/// `set_running(None)` for a cross-call's handler (init's exit makes
/// every CPU leave its space, proc/exit.rs). The handler may have
/// interrupted this CPU's own fault inside `with_running`, polling while
/// it waits for another CPU (a shootdown of its copy-on-write, the
/// writer in `Mm::read`): the slot is then held by that fault, and
/// waiting for it would wait forever. So the slot is let be: that fault
/// ends, and the CPU then waits for the kernel lock, which init's exit
/// keeps until the machine stops.
pub fn leave_running() {
    let Some(mut slot) = RUNNING[percpu::this().index()].0.try_lock() else {
        return;
    };
    let old = slot.take();
    drop(slot);
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
