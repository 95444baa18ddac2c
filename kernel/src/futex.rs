//! futex(2): sleeping on a 32-bit word of user memory, the one kernel
//! call under every pthread mutex, condition variable, barrier and join.
//!
//! A waiter names the word by a `Key`: (process, address) for a private
//! futex (FUTEX_PRIVATE_FLAG) or a word of private memory, (object,
//! offset) for a word of shared memory — the same key in every process
//! that maps it, as Linux's. FUTEX_WAIT joins the waiters first and reads
//! the word after, so a FUTEX_WAKE from a thread that changed the word
//! either finds the waiter or is seen by its read: no wake-up is lost
//! between the check and the sleep. The sleep itself is sleep.rs's
//! (`proc::block`, with the timeout's deadline).
//!
//! Waiters are one list in arrival order (wakes go first-come): few
//! threads wait at once here, and a scan is short. Lock order: WAITERS,
//! then the process table (through `sleep::wake`, which only try-locks).
//! User memory is never read with WAITERS held (a read may sleep: swap-in).

use crate::proc::{self, Pid, Tid};
use crate::usercopy;
use alloc::vec::Vec;
use spin::Mutex;
use vm::errno::{Errno, SysResult};
use vm::mmap::Sharing;
use vm::vma::Backing;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
/// The bitset a plain WAIT or WAKE uses: matches every other.
const BITSET_MATCH_ANY: u32 = u32::MAX;

/// The size of struct robust_list_head (set_robust_list's `len`).
pub const ROBUST_HEAD_SIZE: u64 = 24;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Linux's ROBUST_LIST_LIMIT: a list longer (or circular) stops here.
const ROBUST_LIST_LIMIT: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Private(Pid, u64),
    Shared(usize, u64),
}

struct Waiter {
    key: Key,
    tid: Tid,
    bitset: u32,
    woken: bool,
}

static WAITERS: Mutex<Vec<Waiter>> = Mutex::new(Vec::new());

/// futex(uaddr, op, val, timeout or val2, uaddr2, val3).
pub fn futex(uaddr: u64, op: u64, val: u64, timeout: u64, uaddr2: u64, val3: u64) -> SysResult {
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if realtime && !matches!(cmd, FUTEX_WAIT | FUTEX_WAIT_BITSET) {
        return Err(Errno::ENOSYS);
    }
    let val = val as u32;
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if cmd == FUTEX_WAIT {
                BITSET_MATCH_ANY
            } else {
                val3 as u32
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            let deadline = if timeout == 0 {
                None
            } else {
                let ns = crate::syscall::time::read_timespec(timeout)?;
                Some(if cmd == FUTEX_WAIT {
                    // FUTEX_WAIT's timeout is relative.
                    crate::time::monotonic().saturating_add(ns)
                } else if realtime {
                    ns.saturating_sub(crate::time::realtime_offset())
                } else {
                    ns
                })
            };
            wait(key(uaddr, private)?, uaddr, val, bitset, deadline)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                BITSET_MATCH_ANY
            } else {
                val3 as u32
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(wake(key(uaddr, private)?, val as i32, bitset))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            // val2 travels in the timeout argument.
            let (nwake, nmove) = (val as i32, timeout as i32);
            if nwake < 0 || nmove < 0 {
                return Err(Errno::EINVAL);
            }
            let from = key(uaddr, private)?;
            let to = key(uaddr2, private)?;
            if cmd == FUTEX_CMP_REQUEUE && read_word(uaddr)? != val3 as u32 {
                return Err(Errno::EAGAIN);
            }
            Ok(requeue(from, to, nwake, nmove))
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// The key of the word at `uaddr`: EINVAL unless 4-byte aligned, EFAULT
/// outside every mapping.
fn key(uaddr: u64, private: bool) -> Result<Key, Errno> {
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    proc::with_current(|p| {
        let pid = p.pid;
        let space = p.space();
        let vma = space.find(uaddr).ok_or(Errno::EFAULT)?;
        if private || vma.sharing != Sharing::Shared {
            return Ok(Key::Private(pid, uaddr));
        }
        match &vma.backing {
            Backing::Object { object, offset } => {
                Ok(Key::Shared(object.id(), offset + (uaddr - vma.start)))
            }
            _ => Ok(Key::Private(pid, uaddr)),
        }
    })
}

fn read_word(uaddr: u64) -> Result<u32, Errno> {
    let mut bytes = [0u8; 4];
    proc::with_current(|p| usercopy::copy_in(&mut *p.space(), uaddr, &mut bytes))?;
    Ok(u32::from_le_bytes(bytes))
}

/// FUTEX_WAIT: sleep while the word at `uaddr` holds `val`, until a wake
/// that matches `bitset`, the deadline (ETIMEDOUT) or a signal (EINTR).
/// EAGAIN at once if the word holds something else.
fn wait(key: Key, uaddr: u64, val: u32, bitset: u32, deadline: Option<u64>) -> SysResult {
    let tid = proc::current_tid();
    WAITERS.lock().push(Waiter {
        key,
        tid,
        bitset,
        woken: false,
    });
    // Read after joining: a wake from now on finds this waiter.
    match read_word(uaddr) {
        Ok(word) if word == val => {}
        other => {
            // Woken already? Then the wake counted us: report it.
            if leave(tid) {
                return Ok(0);
            }
            return other.and(Err(Errno::EAGAIN));
        }
    }
    loop {
        if WAITERS.lock().iter().any(|w| w.tid == tid && w.woken) {
            leave(tid);
            return Ok(0);
        }
        let outcome = if let Err(e) = crate::sleep::interrupted() {
            Some(e)
        } else if deadline.is_some_and(|d| crate::time::monotonic() >= d) {
            Some(Errno::ETIMEDOUT)
        } else {
            None
        };
        if let Some(e) = outcome {
            return if leave(tid) { Ok(0) } else { Err(e) };
        }
        proc::block(deadline);
    }
}

/// Leave the waiters; whether a wake had chosen this one first.
fn leave(tid: Tid) -> bool {
    let mut waiters = WAITERS.lock();
    let Some(i) = waiters.iter().position(|w| w.tid == tid) else {
        return false;
    };
    waiters.remove(i).woken
}

/// Wake up to `n` waiters on `key` whose bitset meets `bitset`; how many.
fn wake(key: Key, n: i32, bitset: u32) -> usize {
    let mut woken = Vec::new();
    {
        let mut waiters = WAITERS.lock();
        for w in waiters.iter_mut() {
            if woken.len() as i64 >= i64::from(n) {
                break;
            }
            if w.key == key && !w.woken && w.bitset & bitset != 0 {
                w.woken = true;
                woken.push(w.tid);
            }
        }
    }
    for &tid in &woken {
        crate::sleep::wake(tid);
    }
    woken.len()
}

/// Wake up to `nwake` waiters on `from`, move up to `nmove` more to `to`;
/// how many were woken or moved (Linux's count for both REQUEUE calls).
fn requeue(from: Key, to: Key, nwake: i32, nmove: i32) -> usize {
    let woken = wake(from, nwake, BITSET_MATCH_ANY);
    let mut moved = 0;
    let mut waiters = WAITERS.lock();
    for w in waiters.iter_mut() {
        if moved >= nmove {
            break;
        }
        if w.key == from && !w.woken {
            w.key = to;
            moved += 1;
        }
    }
    woken + moved as usize
}

/// A thread's exit: FUTEX_WAKE one waiter on the word at `uaddr`
/// (clear_child_tid). Shared memory and private memory alike: Linux
/// wakes with a shared key, which for private memory is the private one.
pub fn wake_at(uaddr: u64, n: i32) {
    if let Ok(key) = key(uaddr, false) {
        wake(key, n, BITSET_MATCH_ANY);
    }
}

/// A thread's exit with robust futexes held (set_robust_list): each lock
/// word it owns gets FUTEX_OWNER_DIED (keeping FUTEX_WAITERS), and one
/// waiter on it is woken, so the next locker learns the owner died
/// (EOWNERDEAD). `head` is struct robust_list_head: next, futex_offset,
/// list_op_pending; each entry's low bit marks a PI futex.
pub fn robust_exit(head: u64, tid: Tid) {
    if head == 0 {
        return;
    }
    let read = |at: u64| -> Option<u64> {
        let mut bytes = [0u8; 8];
        proc::with_current(|p| usercopy::copy_in(&mut *p.space(), at, &mut bytes)).ok()?;
        Some(u64::from_le_bytes(bytes))
    };
    let (Some(mut entry), Some(offset), Some(pending)) =
        (read(head), read(head + 8), read(head + 16))
    else {
        return;
    };
    let mut count = 0;
    while entry != head && entry != 0 && count < ROBUST_LIST_LIMIT {
        let next = read(entry & !1);
        if entry & !1 != pending & !1 {
            owner_died(entry & !1, offset, tid);
        }
        let Some(next) = next else {
            break;
        };
        entry = next;
        count += 1;
    }
    if pending != 0 {
        owner_died(pending & !1, offset, tid);
    }
}

/// One robust lock word, at `entry + offset`, of a dying owner `tid`.
fn owner_died(entry: u64, offset: u64, tid: Tid) {
    let uaddr = entry.wrapping_add(offset);
    let Ok(word) = read_word(uaddr) else {
        return;
    };
    if word & FUTEX_TID_MASK != tid {
        return;
    }
    let new = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
    let written =
        proc::with_current(|p| usercopy::copy_out(&mut *p.space(), uaddr, &new.to_le_bytes()));
    if written.is_ok() && word & FUTEX_WAITERS != 0 {
        wake_at(uaddr, 1);
    }
}
