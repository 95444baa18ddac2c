//! Processes, threads and the scheduler.
//!
//! A process (`Process`) is an address space, a descriptor table, signal
//! dispositions, ids and limits; it has one or more threads (`Thread`,
//! thread.rs), each a kernel stack on which its user state (a
//! `TrapFrame`) sits while it is in the kernel. The scheduler (sched.rs)
//! runs threads; it runs on the boot stack (xv6's design): a thread gives
//! up the CPU by switching to it (`switch_to_scheduler`), and the
//! scheduler picks the next runnable thread round-robin and switches to
//! its stack. The timer makes a thread running in user mode give up the
//! CPU at each tick.
//!
//! The kernel itself is not preemptible: it runs with interrupts masked, so
//! the only switches happen at the points sched.rs names. One lock, the
//! table's, covers every process and thread; every CPU runs them, one at a
//! time in the kernel (kernel/src/kernel_lock.rs), all at once in user
//! mode.
//!
//! Process life: `fork` (fork.rs) copies the caller, `clone` with
//! CLONE_THREAD (fork.rs) adds a thread; `exec` replaces the image (the
//! other threads are killed first); a thread's exit ends it alone, the
//! last one's (or exit_group, or a fatal signal) the process (exit.rs):
//! everything but the wait status is freed, and the process stays a
//! zombie until its parent's `wait4` reaps it (job.rs, with process
//! groups, sessions and stops). Orphans are handed to init.

mod exit;
mod fork;
mod job;
mod runq;
mod sched;
mod spaces;
mod thread;

use crate::Space;
use crate::arch::idt::TrapFrame;
use crate::arch::percpu;
use crate::arch::switch::{self, FpuState};
use crate::fd::FdTable;
use crate::mm::Mm;
use crate::mm::WriteGuard;
use crate::phys::KernelPhys;
use crate::resource::Resources;
use crate::signal::{self, Signals, ThreadSignals};
use crate::{heap, phys, qemu};
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
pub use exit::*;
pub use fork::*;
pub use job::*;
pub use runq::{RunQueue, balance_tick, kick_idle_cpu};
pub use sched::*;
pub use spaces::try_with_spaces;
use spin::Mutex;
pub use thread::{Run, Thread, Tid};
use vm::errno::Errno;

pub type Pid = u32;
pub const INIT_PID: Pid = 1;
/// Threads (zombies' included) at most: fork and clone fail with EAGAIN past it.
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
    /// Its threads run, wait or are runnable (each thread's `Run` says).
    Alive,
    /// Stopped by SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU until SIGCONT (or
    /// SIGKILL) comes: none of its threads runs.
    Stopped,
    Zombie(WaitStatus),
}

/// A process that is going away thread by thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exiting {
    No,
    /// exit_group or a fatal signal: every thread was sent SIGKILL, and
    /// the last one to go makes the process a zombie with this status.
    Group(WaitStatus),
    /// execve in thread `Tid`: the others were sent SIGKILL, and the last
    /// of them to go wakes it.
    Exec(Tid),
}

pub struct Process {
    pub pid: Pid,
    pub parent: Pid,
    pub name: String,
    pub state: State,
    /// Its address space behind the address-space lock (mm.rs), shared
    /// with the fault path of every CPU that runs one of its threads.
    pub space: Option<Arc<Mm>>,
    pub files: FdTable,
    /// Dispositions and process-directed pending signals (each thread's
    /// mask and own pending set are in its `Thread`).
    pub signals: Signals,
    /// Limits, accounting, ids, argv and program path (`resource.rs`).
    pub res: Resources,
    /// Its live threads, the first one first (tid = pid until it exits).
    pub threads: Vec<Tid>,
    pub exiting: Exiting,
    /// TSC cycles its exited threads ran (CPU-time clocks).
    dead_cycles: u64,
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
}

impl Process {
    /// The address space, for writing (mm.rs): how every system call and
    /// the kernel's other paths reach it, inside the process table's lock.
    pub fn space(&self) -> WriteGuard<'_> {
        self.space
            .as_ref()
            .expect("proc: a running process has an address space")
            .write()
    }

    /// As `space`, for a process that may have none (a zombie, one being
    /// made).
    pub fn space_if_any(&self) -> Option<WriteGuard<'_>> {
        self.space.as_ref().map(|mm| mm.write())
    }
}

struct Table {
    procs: BTreeMap<Pid, Box<Process>>,
    threads: BTreeMap<Tid, Box<Thread>>,
    next_pid: Pid,
    /// Free frames (plus heap and file frames) before init started: the leak check.
    frames_before_init: usize,
}

impl Table {
    /// Thread `tid` and its process.
    fn pair(&mut self, tid: Tid) -> Option<(&mut Process, &mut Thread)> {
        let thread = self.threads.get_mut(&tid)?;
        let process = self.procs.get_mut(&thread.pid)?;
        Some((process, thread))
    }

    /// The thread this CPU runs and its process.
    fn current(&mut self) -> (&mut Process, &mut Thread) {
        let tid = running().expect("proc: no thread is running");
        self.pair(tid).expect("proc: current thread vanished")
    }

    fn current_process(&mut self) -> &mut Process {
        self.current().0
    }

    /// Threads and zombies: what MAX_PROCS bounds (Linux counts tasks,
    /// a zombie's included).
    fn tasks(&self) -> usize {
        let zombies = self
            .procs
            .values()
            .filter(|p| matches!(p.state, State::Zombie(_)))
            .count();
        self.threads.len() + zombies
    }
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    procs: BTreeMap::new(),
    threads: BTreeMap::new(),
    next_pid: INIT_PID,
    frames_before_init: 0,
});

/// The thread this CPU runs (each CPU's `PerCpu` records it).
fn running() -> Option<Tid> {
    percpu::this().current()
}

/// Run `f` on the current process.
pub fn with_current<R>(f: impl FnOnce(&mut Process) -> R) -> R {
    f(TABLE.lock().current_process())
}

/// Run `f` on the current process and thread.
pub fn with_current_thread<R>(f: impl FnOnce(&mut Process, &mut Thread) -> R) -> R {
    let mut table = TABLE.lock();
    let (p, t) = table.current();
    f(p, t)
}

/// Run `f` on the live address space named `id` in the reverse map
/// (`vm::rmap`: its `Pmap::id`); None when no such space exists (it
/// exited). ftruncate reaches the spaces a file lists this way, and
/// reclaim the owners of a frame.
// The registry is the process table: a scan of at most MAX_PROCS entries
// under the lock a lookup takes anyway.
pub fn with_space<R>(id: vm::rmap::SpaceId, f: impl FnOnce(&mut Space) -> R) -> Option<R> {
    let table = TABLE.lock();
    let mut space = table
        .procs
        .values()
        .filter_map(|p| p.space_if_any())
        .find(|s| s.pmap.id() == id)?;
    Some(f(&mut space))
}

/// Punch a hole in `object`: unmap its pages [first, last) from every
/// space that maps it (the object's mappers, as truncate visits them;
/// private copies stay: `AddressSpace::punch_object`), then free them
/// and their swap slots. fallocate's FALLOC_FL_PUNCH_HOLE and MADV_REMOVE.
pub fn punch_object(object: &vm::vm_object::ObjectRef, first: u64, last: u64) {
    for_each_mapper(object, |space| {
        space.punch_object(&mut crate::phys::KernelPhys, object, first, last)
    });
    object.discard(first, last, &mut crate::phys::KernelPhys);
}

/// Run `f` on every live space `object` lists as a mapper (Linux's
/// i_mmap walk, at the grain of spaces: truncate and hole punching); `f`
/// says whether the space still maps the object, and one that no longer
/// does (or is gone) leaves the list.
pub fn for_each_mapper(object: &vm::vm_object::ObjectRef, mut f: impl FnMut(&mut Space) -> bool) {
    for id in object.mappers() {
        if with_space(id, &mut f) != Some(true) {
            object.forget_mapper(id);
        }
    }
}

/// A process not yet started, without threads, with signal state
/// `signals` (passed in, not set after: it is over 3 KiB, and fork made a
/// fresh one only to overwrite it).
fn new_process(
    name: &str,
    parent: Pid,
    space: Space,
    files: FdTable,
    res: Resources,
    signals: Signals,
) -> Box<Process> {
    Box::new(Process {
        pid: 0,
        parent,
        name: name.into(),
        state: State::Alive,
        space: Some(Mm::new(space)),
        files,
        signals,
        res,
        threads: Vec::new(),
        exiting: Exiting::No,
        dead_cycles: 0,
        exit_signal: signal::SIGCHLD,
        pgid: 0,
        sid: 0,
        job_change: None,
        cwd: None,
    })
}

/// A pid (or tid) no process or thread has had.
fn reserve_pid(table: &mut Table) -> Pid {
    let pid = table.next_pid;
    table.next_pid += 1;
    pid
}

/// Make `thread` runnable as `tid`, starting in user mode with `frame`.
fn start_thread(table: &mut Table, tid: Tid, mut thread: Box<Thread>, frame: &TrapFrame) {
    thread.tid = tid;
    // SAFETY: the stack was just allocated and is used by nothing yet.
    thread.saved_rsp = unsafe { switch::prepare_stack(thread.kernel_stack_top(), frame) };
    // An idle CPU takes it (clone's new thread runs beside its creator).
    runq::enqueue(tid, thread.last_cpu);
    table.threads.insert(tid, thread);
}

/// Make `process` runnable as `pid` with its first thread `thread`.
fn start_process(
    table: &mut Table,
    pid: Pid,
    mut process: Box<Process>,
    mut thread: Box<Thread>,
    frame: &TrapFrame,
) {
    process.pid = pid;
    process.threads = vec![pid];
    thread.pid = pid;
    table.procs.insert(pid, process);
    start_thread(table, pid, thread, frame);
}

/// The running process's pid (its thread group id).
pub fn current_pid() -> Pid {
    with_current(|p| p.pid)
}

/// The running thread's id (gettid; what wait queues and sleeps name).
pub fn current_tid() -> Tid {
    running().expect("proc::current_tid: no thread")
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
            let process = new_process(name, 0, space, files, res, Signals::new());
            let thread = Thread::new(0, ThreadSignals::new(), 0);
            let mut table = TABLE.lock();
            let pid = reserve_pid(&mut table);
            start_process(&mut table, pid, process, thread, &frame);
        }
        Err(e) => {
            log::error!("cannot start init {path}: {e:?}");
            qemu::exit(127);
        }
    }
}

/// Run `f` on process `pid` (ESRCH if there is none): /proc reads another
/// process's state this way.
pub fn with_process<R>(pid: Pid, f: impl FnOnce(&mut Process) -> R) -> Result<R, Errno> {
    let mut table = TABLE.lock();
    table.procs.get_mut(&pid).map(|p| f(p)).ok_or(Errno::ESRCH)
}

/// What /proc/PID/status and stat say of a process's threads: the state
/// letter and word (R if one runs or may, T stopped, Z zombie, S when all
/// wait), how many it has and its first thread's blocked mask.
pub fn thread_summary(pid: Pid) -> Option<(char, &'static str, usize, u64, usize)> {
    let table = TABLE.lock();
    let p = table.procs.get(&pid)?;
    let threads: Vec<&Thread> = p
        .threads
        .iter()
        .filter_map(|t| table.threads.get(t).map(|t| &**t))
        .collect();
    let mask = threads.first().map_or(0, |t| t.sig.mask);
    let (c, word) = match p.state {
        State::Zombie(_) => ('Z', "zombie"),
        State::Stopped => ('T', "stopped"),
        State::Alive
            if threads
                .iter()
                .any(|t| matches!(t.run, Run::Running | Run::Runnable)) =>
        {
            ('R', "running")
        }
        State::Alive => ('S', "sleeping"),
    };
    let cpu = threads.first().map_or(0, |t| t.last_cpu);
    Some((c, word, threads.len(), mask, cpu))
}

/// Thread `tid`'s robust list head, if it is a thread of process `pid`.
pub fn robust_list_of(pid: Pid, tid: Tid) -> Option<u64> {
    let table = TABLE.lock();
    table
        .threads
        .get(&tid)
        .filter(|t| t.pid == pid)
        .map(|t| t.robust_list)
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
    if let Some(tid) = running()
        && let Some((p, _)) = table.pair(tid)
    {
        if user {
            p.res.usage.user_ticks += 1;
        } else {
            p.res.usage.system_ticks += 1;
        }
    }
}

/// Processes in the table and those with a thread that runs or may
/// (/proc/loadavg, sysinfo).
pub fn counts() -> (usize, usize) {
    let table = TABLE.lock();
    let running = table
        .procs
        .values()
        .filter(|p| {
            p.threads.iter().any(|t| {
                table
                    .threads
                    .get(t)
                    .is_some_and(|t| matches!(t.run, Run::Runnable | Run::Running))
            })
        })
        .count();
    (table.procs.len(), running)
}

/// execve's last step: `space` and `frame` (from exec::load) replace the
/// current image. The other threads are gone first (`kill_other_threads`);
/// the old address space goes, handlers are reset, the FPU and FS base
/// start clean; descriptors stay, but for close-on-exec ones.
pub fn replace_image(
    name: &str,
    exe: &str,
    argv: &[Vec<u8>],
    space: Space,
    frame: &mut TrapFrame,
    new_frame: TrapFrame,
) {
    kill_other_threads();
    with_current_thread(|p, t| {
        if let Some(old) = &p.space {
            // ru_maxrss and the fault counts are the process's, across the
            // images it ran.
            let peak = old.write().pmap.peak_pages() * 4;
            p.res.usage.maxrss_kb = p.res.usage.maxrss_kb.max(peak);
            p.res.usage.minflt += old.minor_faults();
        }
        p.res.exe = exe.into();
        p.res.lock_future = None; // mlockall(MCL_FUTURE) ends at execve
        p.res.cmdline = crate::resource::cmdline_of(argv);
        let old = p.space.replace(Mm::new(space));
        p.space().pmap.activate();
        crate::mm::set_running(p.space.clone());
        if let Some(old) = old {
            old.write().clear(&mut KernelPhys);
        }
        p.name = name.into();
        t.fs_base = 0;
        t.clear_child_tid = 0;
        t.robust_list = 0;
        p.signals.reset_for_exec();
        // The alternate stack was memory of the old image.
        t.sig.alt = Default::default();
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
