//! A spin lock whose waiters answer cross-calls (DESIGN §6: every spin
//! loop polls `ipi::poll`).
//!
//! Kernel code runs with interrupts masked, so a CPU spinning for a plain
//! spin lock takes no IPI. That is fine while the holder never waits for
//! another CPU; but some holders do: a fault under the address-space read
//! lock allocates a page table under the page-table lock, the reverse map
//! grows its table under its lock, the heap grows under its own, and an
//! allocation that finds no frame asks every CPU to give its cached frames
//! back (`phys::cache::drain_all`, a cross-call) before it fails. A CPU
//! spinning for one of those locks must answer that call, or the two wait
//! for each other forever. With everything under the kernel lock no other
//! CPU could be spinning there; faults without it (trap.rs) can.
//!
//! The rule for what may run under such a lock: nothing a cross-call's
//! handler needs (it takes the frame table's lock, `phys::with_table`,
//! which is never held around one of these).

use crate::arch::ipi;
use spin::MutexGuard;

pub struct Mutex<T>(spin::Mutex<T>);

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Mutex(spin::Mutex::new(value))
    }

    /// The lock, answering cross-calls while another CPU holds it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        spin_until(|| self.0.try_lock())
    }
}

/// Try `attempt` until it gives something, answering cross-calls between
/// tries: the wait of every spin lock whose holder may wait for this CPU.
pub fn spin_until<R>(mut attempt: impl FnMut() -> Option<R>) -> R {
    loop {
        if let Some(got) = attempt() {
            return got;
        }
        ipi::poll();
        core::hint::spin_loop();
    }
}
