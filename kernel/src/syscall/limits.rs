//! Resource limits and usage: getrlimit, setrlimit, prlimit64, getrusage,
//! times; and the checks that make the memory limits bite where Linux's
//! do (mmap, brk, mlock, the main stack's growth). The limits themselves
//! and the counters are in `resource.rs`.

use crate::Space;
use crate::proc::{self, Process};
use crate::resource::{
    INFINITY, NR_OPEN, RLIM_NLIMITS, RLIMIT_AS, RLIMIT_DATA, RLIMIT_MEMLOCK, RLIMIT_NOFILE,
    RLIMIT_STACK, Rlimit, Usage,
};
use crate::usercopy;
use vm::errno::{Errno, SysResult};
use vm::mmap::{Prot, Sharing};
use vm::vma::{Backing, PAGE, Vma, VmaFlags};

fn read_limit(addr: u64) -> Result<Rlimit, Errno> {
    let mut raw = [0u8; 16];
    proc::with_current(|p| usercopy::copy_in(&mut *p.space(), addr, &mut raw))?;
    let word = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().unwrap_or_default());
    Ok(Rlimit {
        cur: word(0),
        max: word(8),
    })
}

fn write_limit(addr: u64, limit: Rlimit) -> Result<(), Errno> {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&limit.cur.to_le_bytes());
    raw[8..].copy_from_slice(&limit.max.to_le_bytes());
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), addr, &raw))
}

/// prlimit64(pid, resource, new, old): read and/or set a limit of `pid`
/// (0: the caller). EINVAL for an unknown resource or soft > hard; EPERM
/// for raising a hard limit without being root, or RLIMIT_NOFILE past
/// fs.nr_open; ESRCH for no such process.
pub fn prlimit64(pid: u64, which: u64, new: u64, old: u64) -> SysResult {
    let which = usize::try_from(which)
        .ok()
        .filter(|&w| w < RLIM_NLIMITS)
        .ok_or(Errno::EINVAL)?;
    let new = if new != 0 {
        Some(read_limit(new)?)
    } else {
        None
    };
    if new.is_some_and(|n| n.cur > n.max) {
        return Err(Errno::EINVAL);
    }
    let pid = match pid as u32 {
        0 => proc::current_pid(),
        p => p,
    };
    let previous = proc::with_process(pid, |p| -> Result<Rlimit, Errno> {
        let previous = p.res.limits[which];
        if let Some(new) = new {
            if new.max > previous.max && p.res.euid != 0 {
                return Err(Errno::EPERM);
            }
            if which == RLIMIT_NOFILE && new.max > NR_OPEN {
                return Err(Errno::EPERM);
            }
            p.res.limits[which] = new;
            if which == RLIMIT_NOFILE {
                p.files.set_limit(new.cur.min(NR_OPEN) as usize);
            }
        }
        Ok(previous)
    })??;
    if old != 0 {
        write_limit(old, previous)?;
    }
    Ok(0)
}

pub fn getrlimit(which: u64, old: u64) -> SysResult {
    if old == 0 {
        return Err(Errno::EFAULT);
    }
    prlimit64(0, which, 0, old)
}

pub fn setrlimit(which: u64, new: u64) -> SysResult {
    if new == 0 {
        return Err(Errno::EFAULT);
    }
    prlimit64(0, which, new, 0)
}

const RUSAGE_SELF: i64 = 0;
const RUSAGE_CHILDREN: i64 = -1;
const RUSAGE_THREAD: i64 = 1;

/// Timer ticks as a timeval (seconds, microseconds).
fn timeval(ticks: u64) -> [u64; 2] {
    let us = ticks * 1_000_000 / u64::from(crate::arch::timer::HZ);
    [us / 1_000_000, us % 1_000_000]
}

/// struct rusage: utime, stime, then 14 longs of which pageos fills
/// maxrss (KiB), minflt and majflt.
pub fn encode_rusage(u: &Usage) -> [u8; 144] {
    let mut words = [0u64; 18];
    words[..2].copy_from_slice(&timeval(u.user_ticks));
    words[2..4].copy_from_slice(&timeval(u.system_ticks));
    words[4] = u.maxrss_kb;
    words[8] = u.minflt;
    words[9] = u.majflt;
    let mut out = [0u8; 144];
    for (i, w) in words.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// The caller's own usage, its current resident peak included.
fn own_usage(p: &Process) -> Usage {
    let mut u = p.res.usage;
    if let Some(mm) = &p.space {
        u.maxrss_kb = u.maxrss_kb.max(mm.write().pmap.peak_pages() * 4);
        u.minflt += mm.minor_faults();
    }
    u
}

/// getrusage(who, usage): RUSAGE_SELF (and RUSAGE_THREAD: one thread per
/// process), RUSAGE_CHILDREN (the children waited for, and theirs).
pub fn getrusage(who: u64, buf: u64) -> SysResult {
    let usage = proc::with_current(|p| match who as i64 {
        RUSAGE_SELF | RUSAGE_THREAD => Ok(own_usage(p)),
        RUSAGE_CHILDREN => Ok(p.res.children),
        _ => Err(Errno::EINVAL),
    })?;
    proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf, &encode_rusage(&usage)))?;
    Ok(0)
}

/// times(buf): user and system time of the caller and of its waited-for
/// children, in clock ticks (100 a second); returns the ticks since boot.
pub fn times(buf: u64) -> SysResult {
    let to_clock = |ticks: u64| ticks * 100 / u64::from(crate::arch::timer::HZ);
    if buf != 0 {
        let (u, c) = proc::with_current(|p| (p.res.usage, p.res.children));
        let words = [u.user_ticks, u.system_ticks, c.user_ticks, c.system_ticks];
        let mut raw = [0u8; 32];
        for (i, w) in words.iter().enumerate() {
            raw[i * 8..i * 8 + 8].copy_from_slice(&to_clock(*w).to_le_bytes());
        }
        proc::with_current(|p| usercopy::copy_out(&mut *p.space(), buf, &raw))?;
    }
    Ok((crate::time::monotonic() / 10_000_000) as usize)
}

// ---- where the limits bite ------------------------------------------------

/// Linux's total_vm: every mapping (pageos's stack reservations are not
/// mappings there).
fn total_vm(space: &Space) -> u64 {
    space
        .vmas()
        .filter(|v| !v.is_stack_reservation())
        .map(Vma::len)
        .sum()
}

/// Linux's data_vm: private, writable, not a stack.
fn is_data(v: &Vma) -> bool {
    v.sharing == Sharing::Private
        && v.prot.contains(Prot::WRITE)
        && !v.flags.contains(VmaFlags::GROWSDOWN)
        && !matches!(v.backing, Backing::StackGap | Backing::Guard)
}

fn data_vm(space: &Space) -> u64 {
    space.vmas().filter(|v| is_data(v)).map(Vma::len).sum()
}

fn locked_vm(space: &Space) -> u64 {
    space
        .vmas()
        .filter(|v| v.flags.contains(VmaFlags::LOCKED))
        .map(Vma::len)
        .sum()
}

/// Bytes of [start, start + len) already mapped (a MAP_FIXED mapping
/// replaces them, so they do not count twice).
fn overlap(space: &Space, start: u64, len: u64, only: impl Fn(&Vma) -> bool) -> u64 {
    let end = start.saturating_add(len);
    space
        .vmas()
        .filter(|v| v.start < end && start < v.end && only(v))
        .map(|v| v.end.min(end) - v.start.max(start))
        .sum()
}

/// Linux's may_expand_vm for a new mapping `vma` of `len` bytes at `fixed`
/// (a fixed address, or None): RLIMIT_AS over all of it, RLIMIT_DATA when
/// it is private writable memory; ENOMEM past either.
pub fn may_map(p: &mut Process, vma: &Vma, len: u64, fixed: Option<u64>) -> Result<(), Errno> {
    let (as_limit, data_limit) = (p.res.limit(RLIMIT_AS), p.res.limit(RLIMIT_DATA));
    if as_limit == INFINITY && data_limit == INFINITY {
        return Ok(());
    }
    let space = &mut *p.space();
    let replaced = |only: &dyn Fn(&Vma) -> bool| fixed.map_or(0, |a| overlap(space, a, len, only));
    let counted = |v: &Vma| !v.is_stack_reservation();
    if (total_vm(space) - replaced(&counted)).saturating_add(len) > as_limit {
        return Err(Errno::ENOMEM);
    }
    if is_data(vma) && (data_vm(space) - replaced(&is_data)).saturating_add(len) > data_limit {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// brk growing the heap from `old` to `new`: RLIMIT_AS and RLIMIT_DATA
/// (false: brk keeps the old break, as Linux's does).
pub fn may_brk(p: &mut Process, new: u64) -> bool {
    let (_, old) = p.space().brk_range();
    if new > vm::space::USER_END {
        return true; // brk itself refuses it
    }
    let grow = new
        .next_multiple_of(PAGE)
        .saturating_sub(old.next_multiple_of(PAGE));
    if grow == 0 {
        return true;
    }
    let mut heap = Vma::anonymous(0, 0, Prot::READ | Prot::WRITE);
    heap.flags |= VmaFlags::HEAP;
    may_map(p, &heap, grow, None).is_ok()
}

/// mlock and MAP_LOCKED: RLIMIT_MEMLOCK for a process that is not root
/// (root has CAP_IPC_LOCK on Linux, which lifts the limit).
pub fn may_lock(p: &mut Process, start: u64, len: u64) -> bool {
    let limit = p.res.limit(RLIMIT_MEMLOCK);
    if p.res.euid == 0 || limit == INFINITY {
        return true;
    }
    let space = &mut *p.space();
    let already = overlap(space, start, len, |v| v.flags.contains(VmaFlags::LOCKED));
    (locked_vm(space) - already).saturating_add(len) <= limit
}

/// The limits a fault that grows the main stack must keep: RLIMIT_STACK
/// (the stack's size from its top) and RLIMIT_AS. Read from the process
/// before the fault, which then needs only the space.
pub struct StackLimits {
    stack: u64,
    address_space: u64,
}

impl StackLimits {
    pub fn of(p: &Process) -> StackLimits {
        StackLimits {
            stack: p.res.limit(RLIMIT_STACK),
            address_space: p.res.limit(RLIMIT_AS),
        }
    }

    /// A fault at `addr` that would grow the main stack: within both
    /// limits? Other faults: true.
    pub fn allow(&self, space: &Space, addr: u64) -> bool {
        let Some(gap) = space
            .find(addr)
            .filter(|v| matches!(v.backing, Backing::StackGap))
        else {
            return true;
        };
        let Some(stack) = space
            .find(gap.end)
            .filter(|v| v.flags.contains(VmaFlags::MAIN_STACK))
        else {
            return true;
        };
        let page = addr & !(PAGE - 1);
        let size = stack.end - page;
        let grow = stack.start - page;
        size <= self.stack && total_vm(space).saturating_add(grow) <= self.address_space
    }
}
