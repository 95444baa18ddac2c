//! Processes and the scheduler.
//!
//! A process is an address space, a descriptor table, and a kernel stack on
//! which its user state (a `TrapFrame`) sits while it is in the kernel. The
//! scheduler runs on the boot stack (xv6's design): a process gives up the
//! CPU by switching to it (`switch_to_scheduler`), and the scheduler picks
//! the next runnable process round-robin and switches to its stack. The
//! timer makes a process running in user mode give up the CPU at each tick.
//!
//! The kernel itself is not preemptible: it runs with interrupts masked, so
//! the only switches happen at the points this module names.
//!
//! Process life: `fork` (fork.rs) copies the caller; `exec` replaces the
//! image; exit frees everything but the wait status, and the process stays
//! a zombie until its parent's `wait4` reaps it (job.rs, with process
//! groups, sessions and stops). Orphans are handed to init.

mod fork;
mod job;

use crate::Space;
use crate::arch::idt::TrapFrame;
use crate::arch::percpu;
use crate::arch::switch::{self, FpuState};
use crate::fd::FdTable;
use crate::phys::KernelPhys;
use crate::pmap;
use crate::resource::{Resources, Usage};
use crate::signal::{self, SigInfo, Signals};
use crate::{heap, phys, qemu};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
pub use fork::*;
pub use job::*;
use spin::Mutex;
use vm::errno::Errno;
use x86_64::VirtAddr;

pub type Pid = u32;
const KERNEL_STACK_SIZE: usize = 32 * 1024;
pub const INIT_PID: Pid = 1;
/// Processes (zombies included) at most: fork fails with EAGAIN past it.
const MAX_PROCS: usize = 1024;
/// Whether exec randomises the mmap base (off with the `no-aslr` switch).
static ASLR: AtomicBool = AtomicBool::new(true);

/// Linux's wait status: `code << 8` after exit, the signal number when killed.
pub type WaitStatus = i32;

pub fn exited(code: i32) -> WaitStatus {
    (code & 0xff) << 8
}

pub fn killed(signal: i32) -> WaitStatus {
    signal & 0x7f
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Runnable,
    Running,
    /// In wait4 or a sleep, off the run queue until a child exits, a
    /// signal comes or the sleep's deadline passes.
    Waiting,
    /// Stopped by SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU until SIGCONT (or
    /// SIGKILL) comes: off the run queue.
    Stopped,
    Zombie(WaitStatus),
}

pub struct Process {
    pub pid: Pid,
    pub parent: Pid,
    pub name: String,
    pub state: State,
    pub space: Option<Space>,
    pub files: FdTable,
    pub signals: Signals,
    /// The user FS base (arch_prctl ARCH_SET_FS), loaded when it runs.
    pub fs_base: u64,
    /// Limits, accounting, ids, argv and program path (`resource.rs`).
    pub res: Resources,
    /// TSC cycles spent running, up to its last switch (CPU-time clocks).
    cpu_cycles: u64,
    /// The TSC when it last started running.
    ran_since: u64,
    /// A wake came while it was not waiting: its next `block` returns at
    /// once (sleep.rs: a wake between a check and the sleep is not lost).
    woken: bool,
    /// The signal its parent gets when it exits (clone's low byte; fork:
    /// SIGCHLD; 0: none).
    pub exit_signal: i32,
    /// Its process group and session (job control, kernel/src/tty/).
    pub pgid: Pid,
    pub sid: Pid,
    /// The current directory and its absolute path (None: the root).
    pub cwd: Option<(crate::vfs::Node, String)>,
    /// A stop or continue its parent has not waited for yet.
    pub job_change: Option<JobChange>,
    kernel_stack: Vec<u8>,
    saved_rsp: u64,
    fpu: Box<FpuState>,
}

impl Process {
    fn kernel_stack_top(&self) -> u64 {
        (self.kernel_stack.as_ptr() as u64 + KERNEL_STACK_SIZE as u64) & !15
    }

    pub fn space(&mut self) -> &mut Space {
        self.space
            .as_mut()
            .expect("proc: a running process has an address space")
    }
}

struct Table {
    procs: BTreeMap<Pid, Box<Process>>,
    run_queue: VecDeque<Pid>,
    next_pid: Pid,
    /// Free frames (plus heap and file frames) before init started: the leak check.
    frames_before_init: usize,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    procs: BTreeMap::new(),
    run_queue: VecDeque::new(),
    next_pid: INIT_PID,
    frames_before_init: 0,
});

/// The process this CPU runs (each CPU's `PerCpu` records it).
fn running() -> Option<Pid> {
    percpu::this().current()
}

/// Run `f` on the current process.
pub fn with_current<R>(f: impl FnOnce(&mut Process) -> R) -> R {
    let mut table = TABLE.lock();
    let pid = running().expect("proc::with_current: no process is running");
    f(table
        .procs
        .get_mut(&pid)
        .expect("proc: current process vanished"))
}

/// Run `f` on the live address space named `id` in the reverse map
/// (`vm::rmap`: its `Pmap::id`); None when no such space exists (it
/// exited). ftruncate reaches the spaces a file lists this way, and
/// reclaim the owners of a frame.
// The registry is the process table: a scan of at most MAX_PROCS entries
// under the lock a lookup takes anyway.
pub fn with_space<R>(id: vm::rmap::SpaceId, f: impl FnOnce(&mut Space) -> R) -> Option<R> {
    let mut table = TABLE.lock();
    let space = table
        .procs
        .values_mut()
        .filter_map(|p| p.space.as_mut())
        .find(|s| s.pmap.id() == id)?;
    Some(f(space))
}

/// A process not yet started: fresh signal state, FPU state, FS base 0.
fn new_process(
    name: &str,
    parent: Pid,
    space: Space,
    files: FdTable,
    res: Resources,
) -> Box<Process> {
    Box::new(Process {
        pid: 0,
        parent,
        name: name.into(),
        state: State::Runnable,
        space: Some(space),
        files,
        signals: Signals::new(),
        fs_base: 0,
        res,
        cpu_cycles: 0,
        ran_since: 0,
        woken: false,
        exit_signal: signal::SIGCHLD,
        pgid: 0,
        sid: 0,
        job_change: None,
        cwd: None,
        kernel_stack: vec![0; KERNEL_STACK_SIZE],
        saved_rsp: 0,
        fpu: Box::new(FpuState::initial()),
    })
}

/// A pid no process has had.
fn reserve_pid() -> Pid {
    let mut table = TABLE.lock();
    let pid = table.next_pid;
    table.next_pid += 1;
    pid
}

/// Give `process` a pid and make it runnable, starting in user mode with `frame`.
fn start(process: Box<Process>, frame: &TrapFrame) -> Pid {
    let pid = reserve_pid();
    start_as(pid, process, frame);
    pid
}

/// Make `process` runnable as `pid` (from `reserve_pid`).
fn start_as(pid: Pid, mut process: Box<Process>, frame: &TrapFrame) {
    let mut table = TABLE.lock();
    process.pid = pid;
    // SAFETY: the stack was just allocated and is used by nothing yet.
    process.saved_rsp = unsafe { switch::prepare_stack(process.kernel_stack_top(), frame) };
    table.procs.insert(pid, process);
    table.run_queue.push_back(pid);
}

/// The running process's pid.
pub fn current_pid() -> Pid {
    running().expect("proc::current_pid: no process")
}

/// Start init (pid 1) from `path` with `args`. On failure the machine stops:
/// without init there is nothing to run.
pub fn spawn_init(cmdline: &crate::cmdline::Cmdline) {
    let (path, args) = (cmdline.init.as_str(), &cmdline.args);
    TABLE.lock().frames_before_init =
        phys::free_frames() + heap::frames() + crate::ramfs::cached_frames() as usize;
    ASLR.store(!cmdline.no_aslr, Ordering::Relaxed);
    let mut argv: Vec<Vec<u8>> = vec![path.as_bytes().to_vec()];
    argv.extend(args.iter().map(|a| a.as_bytes().to_vec()));
    let envp = [
        b"HOME=/".to_vec(),
        b"PATH=/bin:/sbin".to_vec(),
        b"TERM=dumb".to_vec(),
    ];
    let mut res = Resources::new(path, crate::resource::cmdline_of(&argv));
    let loaded = crate::vfs::lookup_file(path).and_then(|inode| {
        let elf = inode.contents()?;
        let image = crate::exec::load(&elf, &argv, &envp, !cmdline.no_aslr, &res, inode.object());
        image.map(|image| (image, inode))
    });
    match loaded {
        Ok(((space, frame), inode)) => {
            res.image = Some(crate::ramfs::Executing::new(inode));
            let name = path.rsplit('/').next().unwrap_or(path);
            let files = FdTable::with_console();
            start(new_process(name, 0, space, files, res), &frame);
        }
        Err(e) => {
            log::error!("cannot start init {path}: {e:?}");
            qemu::exit(127);
        }
    }
}

/// The scheduler loop, on the boot stack: run each runnable process in turn,
/// idle (interrupts on, `hlt`) when there is none.
pub fn run() -> ! {
    loop {
        crate::sleep::wake_deferred();
        let next = {
            let mut table = TABLE.lock();
            let pid = table.run_queue.pop_front();
            pid.and_then(|pid| table.procs.get_mut(&pid)).map(|p| {
                p.state = State::Running;
                crate::arch::syscall::set_kernel_stack(VirtAddr::new(p.kernel_stack_top()));
                p.space().pmap.activate();
                p.fpu.restore();
                // Another process's pending signals are not known to be seen.
                crate::signal::recheck();
                crate::arch::set_fs_base(p.fs_base);
                p.ran_since = crate::arch::rdtsc();
                (p.pid, p.saved_rsp)
            })
        };
        let Some((pid, rsp)) = next else {
            crate::arch::idle();
            continue;
        };
        let cpu = percpu::this();
        cpu.set_current(Some(pid));
        // SAFETY: rsp was saved by `switch` or built by `prepare_stack` on the
        // process's kernel stack, which lives as long as the process.
        unsafe { switch::switch(cpu.scheduler_rsp.get(), rsp) };
        cpu.set_current(None);
        let mut table = TABLE.lock();
        if let Some(p) = table.procs.get_mut(&pid) {
            p.cpu_cycles += crate::arch::rdtsc() - p.ran_since;
            if p.state == State::Running {
                p.state = State::Runnable;
                table.run_queue.push_back(pid);
            }
        }
    }
}

/// Give the CPU to the scheduler; returns when this process is picked again.
fn switch_to_scheduler() {
    let save = with_current(|p| {
        p.fpu.save();
        &raw mut p.saved_rsp
    });
    // SAFETY: the scheduler's rsp was saved when it switched to us; `save`
    // points into our boxed Process, which outlives this switch.
    unsafe { switch::switch(save, *percpu::this().scheduler_rsp.get()) };
}

/// Let other processes run (the timer tick, sched_yield).
pub fn yield_now() {
    switch_to_scheduler();
}

/// End the current process with `status`: free its memory and files now,
/// keep it as a zombie for its parent (woken if it waits, and sent
/// SIGCHLD), and hand its children to init. When init ends, the machine
/// stops and init's status becomes the runner's exit status.
pub fn exit_current(status: WaitStatus) -> ! {
    let (pid, frames_before) = {
        let mut table = TABLE.lock();
        let pid = running().expect("proc::exit_current: no process");
        let process = table
            .procs
            .get_mut(&pid)
            .expect("proc: current process vanished");
        pmap::activate_kernel();
        if let Some(space) = &process.space {
            process.res.usage.maxrss_kb =
                process.res.usage.maxrss_kb.max(space.pmap.peak_pages() * 4);
        }
        if let Some(mut space) = process.space.take() {
            // Debug kernels audit the frame reference counts against the
            // page tables before tearing them down (vm/src/audit.rs).
            if cfg!(debug_assertions)
                && let Err(short) = space.audit_frames(&KernelPhys)
            {
                panic!("proc::exit_current: pid {pid}: frame reference count too low: {short:?}");
            }
            if cfg!(debug_assertions)
                && let Err(wrong) = space.audit_rmap()
            {
                panic!("proc::exit_current: pid {pid}: reverse map wrong: {wrong:?}");
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
            wake(&mut table, INIT_PID);
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
        wake(&mut table, parent);
        (pid, table.frames_before_init)
    };
    if pid == INIT_PID {
        init_exited(status, frames_before);
    }
    switch_to_scheduler();
    unreachable!("proc::exit_current: a zombie was scheduled");
}

/// Sleep until the monotonic clock reaches `deadline` (kernel/src/sleep.rs)
/// or something wakes this process sooner (a signal, a child's exit): the
/// caller checks which.
pub fn sleep_until(deadline: u64) {
    block(Some(deadline));
}

/// Give up the CPU until `wake` (or, with a deadline, the tick after it):
/// the one sleep of every blocking call (sleep.rs). Returns at once if a
/// wake came since the last one.
pub fn block(deadline: Option<u64>) {
    let pid = current_pid();
    let sleeps = with_current(|p| {
        let sleeps = !core::mem::take(&mut p.woken);
        if sleeps {
            p.state = State::Waiting;
        }
        sleeps
    });
    if !sleeps {
        return;
    }
    if let Some(deadline) = deadline {
        crate::sleep::add(deadline, pid);
    }
    switch_to_scheduler();
    if let Some(deadline) = deadline {
        crate::sleep::remove(deadline, pid);
    }
    // A stop signal woke it: it stops here, and its wait goes on after.
    crate::signal::stop_if_asked();
}

/// Wake a process whose sleep's deadline passed (the tick). False when
/// the table is busy (the tick interrupted a holder): try again later.
pub fn wake_sleeper(pid: Pid) -> bool {
    TABLE
        .try_lock()
        .map(|mut table| wake(&mut table, pid))
        .is_some()
}

/// The CPU time the current process used, in nanoseconds, up to now.
pub fn cpu_time() -> u64 {
    let cycles = with_current(|p| p.cpu_cycles + (crate::arch::rdtsc() - p.ran_since));
    crate::time::cycles_to_nanos(cycles)
}

/// Put a waiting process back on the run queue; one that is not waiting
/// yet (it is about to, on another CPU) gets a note that makes its next
/// `block` return at once.
fn wake(table: &mut Table, pid: Pid) {
    if let Some(p) = table.procs.get_mut(&pid) {
        if p.state == State::Waiting {
            p.state = State::Runnable;
            table.run_queue.push_back(pid);
        } else if !matches!(p.state, State::Zombie(_)) {
            p.woken = true;
        }
    }
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
        if let Some(me) = running()
            && let Some(p) = table.procs.get_mut(&me)
        {
            p.res.children.add_child(&usage);
        }
    }
}

/// Run `f` on process `pid` (ESRCH if there is none): /proc reads another
/// process's state this way.
pub fn with_process<R>(pid: Pid, f: impl FnOnce(&mut Process) -> R) -> Result<R, Errno> {
    let mut table = TABLE.lock();
    table.procs.get_mut(&pid).map(|p| f(p)).ok_or(Errno::ESRCH)
}

/// Every pid, in order (/proc's directory listing).
pub fn pids() -> Vec<Pid> {
    TABLE.lock().procs.keys().copied().collect()
}

/// A timer tick: charge it to the process this CPU runs, in user mode or
/// in the kernel (times, getrusage, /proc/PID/stat).
pub fn account_tick(user: bool) {
    // The tick may interrupt a holder of the table (a disk wait runs with
    // interrupts on): then this tick goes uncounted.
    let Some(mut table) = TABLE.try_lock() else {
        return;
    };
    if let Some(pid) = running()
        && let Some(p) = table.procs.get_mut(&pid)
    {
        if user {
            p.res.usage.user_ticks += 1;
        } else {
            p.res.usage.system_ticks += 1;
        }
    }
}

/// Processes in the table and those runnable (/proc/loadavg, sysinfo).
pub fn counts() -> (usize, usize) {
    let table = TABLE.lock();
    let running = table
        .procs
        .values()
        .filter(|p| matches!(p.state, State::Runnable | State::Running))
        .count();
    (table.procs.len(), running)
}

/// execve's last step: `space` and `frame` (from exec::load) replace the
/// current image. The old address space goes, handlers are reset, the
/// FPU and FS base start clean; descriptors stay, but for close-on-exec ones.
pub fn replace_image(
    name: &str,
    exe: &str,
    argv: &[Vec<u8>],
    space: Space,
    frame: &mut TrapFrame,
    new_frame: TrapFrame,
) {
    with_current(|p| {
        if let Some(old) = &p.space {
            // ru_maxrss is the process's, across the images it ran.
            let peak = old.pmap.peak_pages() * 4;
            p.res.usage.maxrss_kb = p.res.usage.maxrss_kb.max(peak);
        }
        p.res.exe = exe.into();
        p.res.lock_future = None; // mlockall(MCL_FUTURE) ends at execve
        p.res.cmdline = crate::resource::cmdline_of(argv);
        let old = p.space.replace(space);
        p.space().pmap.activate();
        if let Some(mut old) = old {
            old.clear(&mut KernelPhys);
        }
        p.name = name.into();
        p.fs_base = 0;
        p.signals.reset_for_exec();
        let closed = p.files.close_on_exec();
        crate::locks::closed(p.pid, &closed);
    });
    crate::arch::set_fs_base(0);
    FpuState::initial().restore();
    *frame = new_frame;
}

/// Whether exec should randomise the layout (the boot's `no-aslr` switch).
pub fn aslr() -> bool {
    ASLR.load(Ordering::Relaxed)
}

/// The runner's status for init's wait status (DESIGN §1), after a leak check.
fn init_exited(status: WaitStatus, frames_before: usize) -> ! {
    // Processes still running when init ends go with it (as on Linux,
    // where the machine stops): their memory is not a leak.
    let mut survivors = 0;
    let mut table = TABLE.lock();
    let caller = running();
    for p in table.procs.values_mut() {
        if let Some(mut space) = p.space.take() {
            space.clear(&mut KernelPhys);
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
    init_exited(exited(0), frames_before);
}
