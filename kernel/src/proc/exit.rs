//! The end of threads and processes: exit (one thread) versus
//! exit_group (every thread: also a fatal signal's effect), zombies and
//! reaping, and execve's killing of the other threads (Linux's de_thread).
//!
//! A thread that ends alone first writes 0 to its `clear_child_tid` word
//! and wakes one futex waiter there (how pthread_join learns of it), and
//! walks its robust futex list. It leaves its process's thread list at
//! once; the scheduler frees its kernel stack once it has switched away.
//! The last thread to go ends the process: its memory and descriptors go
//! now, the wait status stays for the parent.

use super::{
    Exiting, INIT_PID, Pid, Run, State, TABLE, Table, Tid, WaitStatus, current_tid, running,
    switch_to_scheduler, wake, wake_process,
};
use crate::fd::FdTable;
use crate::phys::KernelPhys;
use crate::resource::Usage;
use crate::signal::{self, SigInfo};
use crate::{heap, phys, pmap, qemu};

/// exit_group, or a fatal signal: end every thread of the current
/// process, which becomes a zombie with `status` once the last is gone.
pub fn exit_current(status: WaitStatus) -> ! {
    {
        let mut table = TABLE.lock();
        let me = current_tid();
        let p = table.current_process();
        if p.exiting == Exiting::No {
            p.exiting = Exiting::Group(status);
            let pid = p.pid;
            kill_others(&mut table, pid, me);
        }
    }
    end_thread(status)
}

/// exit: end the current thread; its process ends with `status` if it
/// was the last.
pub fn exit_thread(status: WaitStatus) -> ! {
    end_thread(status)
}

/// Send SIGKILL to every thread of `pid` but `me` and make each run: it
/// dies at its next return towards user mode (a blocked call returns
/// EINTR first: SIGKILL interrupts every wait).
fn kill_others(table: &mut Table, pid: Pid, me: Tid) {
    let Some(p) = table.procs.get(&pid) else {
        return;
    };
    let others: alloc::vec::Vec<Tid> = p.threads.iter().copied().filter(|&t| t != me).collect();
    let kill = SigInfo {
        signo: signal::SIGKILL,
        code: signal::SI_KERNEL,
        ..SigInfo::default()
    };
    for tid in others {
        if let Some(t) = table.threads.get_mut(&tid) {
            t.sig.pending.post(kill);
            if t.run == Run::Stopped {
                t.run = Run::Runnable;
                super::runq::enqueue(tid, t.last_cpu);
            }
        }
        wake(table, tid);
    }
}

/// execve in a thread of a process that has others: they are killed, and
/// this one waits until they are gone, then takes the process's pid as
/// its tid (as Linux's de_thread: the exec'd program is one thread whose
/// tid is its pid).
pub fn kill_other_threads() {
    let me = current_tid();
    loop {
        {
            let mut table = TABLE.lock();
            let p = table.current_process();
            let pid = p.pid;
            if p.threads.len() == 1 {
                p.exiting = Exiting::No;
                if me != pid
                    && let Some(mut t) = table.threads.remove(&me)
                {
                    t.tid = pid;
                    table.threads.insert(pid, t);
                    if let Some(p) = table.procs.get_mut(&pid) {
                        p.threads = alloc::vec![pid];
                    }
                    crate::arch::percpu::this().set_current(Some(pid));
                }
                return;
            }
            if p.exiting == Exiting::No {
                p.exiting = Exiting::Exec(me);
                kill_others(&mut table, pid, me);
            }
            let (_, t) = table.current();
            t.run = Run::Waiting;
        }
        switch_to_scheduler();
    }
}

/// The thread's part of exiting, then the process's if it is the last.
fn end_thread(own_status: WaitStatus) -> ! {
    let (clear, robust, last) = super::with_current_thread(|p, t| {
        let last = p.threads.len() == 1;
        (core::mem::take(&mut t.clear_child_tid), t.robust_list, last)
    });
    if !last {
        // With other threads left the memory stays: tell them.
        crate::futex::robust_exit(robust, current_tid());
        if clear != 0 {
            let zero = 0u32.to_le_bytes();
            let written =
                super::with_current(|p| crate::usercopy::copy_out(&mut *p.space(), clear, &zero));
            if written.is_ok() {
                crate::futex::wake_at(clear, 1);
            }
        }
    }
    let (pid, frames_before, zombie) = {
        let mut table = TABLE.lock();
        let me = current_tid();
        let now = crate::arch::rdtsc();
        let (p, t) = table.current();
        let cycles = t.cycles(now);
        t.run = Run::Dead;
        p.dead_cycles += cycles;
        p.threads.retain(|&tid| tid != me);
        let pid = p.pid;
        let zombie = p.threads.is_empty();
        if zombie {
            let status = match p.exiting {
                Exiting::Group(status) => status,
                _ => own_status,
            };
            end_process(&mut table, pid, status);
        } else if let Exiting::Exec(waiter) = p.exiting
            && p.threads.len() == 1
        {
            wake(&mut table, waiter);
        }
        (pid, table.frames_before_init, zombie)
    };
    if zombie && pid == INIT_PID {
        let status = with_zombie_status(pid);
        init_exited(status, frames_before);
    }
    switch_to_scheduler();
    unreachable!("proc::end_thread: a dead thread was scheduled");
}

fn with_zombie_status(pid: Pid) -> WaitStatus {
    match TABLE.lock().procs.get(&pid).map(|p| p.state) {
        Some(State::Zombie(status)) => status,
        _ => 0,
    }
}

/// The last thread of `pid` is gone: free its memory and files now,
/// keep it as a zombie for its parent (woken if it waits, and sent its
/// exit signal), and hand its children to init.
fn end_process(table: &mut Table, pid: Pid, status: WaitStatus) {
    let Some(process) = table.procs.get_mut(&pid) else {
        return;
    };
    pmap::activate_kernel();
    // Its last thread ran here: this CPU lets go of the space too, so that
    // the space goes with the process's reference below.
    crate::mm::set_running(None);
    if let Some(mm) = process.space.take() {
        let mut space = mm.write();
        let usage = &mut process.res.usage;
        usage.maxrss_kb = usage.maxrss_kb.max(space.pmap.peak_pages() * 4);
        usage.minflt += mm.minor_faults();
        // Debug kernels audit the frame reference counts against the
        // page tables before tearing them down (vm/src/audit.rs).
        if cfg!(debug_assertions)
            && let Err(short) = space.audit_frames(&KernelPhys)
        {
            panic!("proc::end_process: pid {pid}: frame reference count too low: {short:?}");
        }
        if cfg!(debug_assertions)
            && let Err(wrong) = space.audit_rmap()
        {
            panic!("proc::end_process: pid {pid}: reverse map wrong: {wrong:?}");
        }
        space.clear(&mut KernelPhys);
    }
    process.files = FdTable::empty();
    process.res.image = None;
    crate::locks::release_process(pid);
    process.state = State::Zombie(status);
    let parent = process.parent;
    let exit_signal = process.exit_signal;
    let mut orphaned_zombie = false;
    for child in table.procs.values_mut().filter(|c| c.parent == pid) {
        child.parent = INIT_PID;
        orphaned_zombie |= matches!(child.state, State::Zombie(_));
    }
    if orphaned_zombie {
        wake_process(table, INIT_PID);
    }
    let (code, detail) = if status & 0x7f == 0 {
        (signal::CLD_EXITED, (status >> 8) & 0xff)
    } else {
        (signal::CLD_KILLED, status & 0x7f)
    };
    if exit_signal != 0
        && let Some(p) = table.procs.get_mut(&parent)
    {
        p.signals.post(SigInfo {
            signo: exit_signal,
            code,
            pid,
            status: detail,
            addr: 0,
        });
    }
    wake_process(table, parent);
}

/// What a zombie used, its waited-for children included (wait4's rusage).
pub fn zombie_usage(pid: Pid) -> Usage {
    let table = TABLE.lock();
    table.procs.get(&pid).map_or_else(Usage::default, |p| {
        let mut total = p.res.usage;
        total.add_child(&p.res.children);
        total
    })
}

/// Forget a zombie child of the current process (its status was delivered);
/// what it used joins the caller's children totals (RUSAGE_CHILDREN).
pub fn reap(pid: Pid) {
    let usage = zombie_usage(pid);
    let mut table = TABLE.lock();
    let zombie = table
        .procs
        .get(&pid)
        .is_some_and(|p| matches!(p.state, State::Zombie(_)));
    if zombie {
        table.procs.remove(&pid);
        if running().is_some() {
            table.current_process().res.children.add_child(&usage);
        }
    }
}

/// Load the kernel's tables and let go of the space this CPU ran.
fn leave_user_space() {
    pmap::activate_kernel();
    crate::mm::leave_running();
}

/// The runner's status for init's wait status (DESIGN §1), after a leak check.
fn init_exited(status: WaitStatus, frames_before: usize) -> ! {
    // Processes still running when init ends go with it (as on Linux,
    // where the machine stops): their memory is not a leak.
    let mut survivors = 0;
    // Their threads may run on other CPUs: those leave every user space
    // first (they then wait for the kernel lock, which this CPU keeps
    // until the machine stops), so the spaces can go; this CPU too.
    crate::arch::ipi::call(
        crate::arch::ipi::CpuSet::others(),
        crate::arch::ipi::Request::Run(leave_user_space),
    );
    leave_user_space();
    let mut table = TABLE.lock();
    let caller = running().and_then(|t| table.threads.get(&t)).map(|t| t.pid);
    for p in table.procs.values_mut() {
        if let Some(mm) = p.space.take() {
            mm.write().clear(&mut KernelPhys);
            survivors += usize::from(Some(p.pid) != caller);
        }
        p.files = FdTable::empty();
    }
    drop(table);
    if survivors > 0 {
        log::info!("{survivors} processes were still running when init exited");
    }
    // Files init left behind keep their pages: those are in use, not lost.
    let in_files = crate::ramfs::cached_frames() as usize;
    let frames_after = phys::free_frames() + heap::frames() + in_files;
    log::info!(
        "init exited (wait status {status:#x}); frames free before init {frames_before}, after {frames_after} (counting {in_files} in files)"
    );
    if frames_after != frames_before {
        log::error!(
            "frame leak: {} frames",
            frames_before as isize - frames_after as isize
        );
    }
    let code = if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    };
    qemu::exit(code as u8);
}

/// reboot(POWER_OFF): stop the machine now. The runner exits with status 0
/// (the leak check runs as if init had exited normally).
pub fn power_off() -> ! {
    pmap::activate_kernel();
    let frames_before = TABLE.lock().frames_before_init;
    init_exited(super::exited(0), frames_before);
}
