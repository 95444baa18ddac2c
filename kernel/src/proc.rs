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

use crate::Space;
use crate::arch::idt::TrapFrame;
use crate::arch::switch::{self, FpuState};
use crate::fd::FdTable;
use crate::phys::KernelPhys;
use crate::pmap;
use crate::{heap, phys, qemu};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use spin::Mutex;
use x86_64::VirtAddr;

pub type Pid = u32;
const KERNEL_STACK_SIZE: usize = 32 * 1024;
pub const INIT_PID: Pid = 1;

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
    Zombie(WaitStatus),
}

pub struct Process {
    pub pid: Pid,
    pub parent: Pid,
    pub name: String,
    pub state: State,
    pub space: Option<Space>,
    pub files: FdTable,
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
    current: Option<Pid>,
    next_pid: Pid,
    /// Free frames (plus heap and file frames) before init started: the leak check.
    frames_before_init: usize,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    procs: BTreeMap::new(),
    run_queue: VecDeque::new(),
    current: None,
    next_pid: INIT_PID,
    frames_before_init: 0,
});

/// Where the scheduler's own rsp is kept while a process runs.
static mut SCHEDULER_RSP: u64 = 0;

/// Run `f` on the current process.
pub fn with_current<R>(f: impl FnOnce(&mut Process) -> R) -> R {
    let mut table = TABLE.lock();
    let pid = table
        .current
        .expect("proc::with_current: no process is running");
    f(table
        .procs
        .get_mut(&pid)
        .expect("proc: current process vanished"))
}

/// Run `f` on every live address space (ftruncate unmaps a file's pages
/// past its new end from every mapping of it, in every process).
pub fn for_each_space(mut f: impl FnMut(&mut Space)) {
    let mut table = TABLE.lock();
    for process in table.procs.values_mut() {
        if let Some(space) = process.space.as_mut() {
            f(space);
        }
    }
}

/// Create a runnable process that starts in user mode with `frame`.
fn spawn(name: &str, parent: Pid, space: Space, frame: &TrapFrame, files: FdTable) -> Pid {
    let mut table = TABLE.lock();
    let pid = table.next_pid;
    table.next_pid += 1;
    let mut process = Box::new(Process {
        pid,
        parent,
        name: name.into(),
        state: State::Runnable,
        space: Some(space),
        files,
        kernel_stack: vec![0; KERNEL_STACK_SIZE],
        saved_rsp: 0,
        fpu: Box::new(FpuState::initial()),
    });
    // SAFETY: the stack was just allocated and is used by nothing yet.
    process.saved_rsp = unsafe { switch::prepare_stack(process.kernel_stack_top(), frame) };
    table.procs.insert(pid, process);
    table.run_queue.push_back(pid);
    pid
}

/// Start init (pid 1) from `path` with `args`. On failure the machine stops:
/// without init there is nothing to run.
pub fn spawn_init(cmdline: &crate::cmdline::Cmdline) {
    let (path, args) = (cmdline.init.as_str(), &cmdline.args);
    TABLE.lock().frames_before_init =
        phys::free_frames() + heap::frames() + crate::ramfs::cached_frames() as usize;
    let mut argv: Vec<Vec<u8>> = vec![path.as_bytes().to_vec()];
    argv.extend(args.iter().map(|a| a.as_bytes().to_vec()));
    let envp = [
        b"HOME=/".to_vec(),
        b"PATH=/bin:/sbin".to_vec(),
        b"TERM=dumb".to_vec(),
    ];
    let loaded = crate::ramfs::lookup(path)
        .and_then(|inode| inode.contents())
        .and_then(|elf| crate::exec::load(&elf, &argv, &envp, !cmdline.no_aslr));
    match loaded {
        Ok((space, frame)) => {
            let name = path.rsplit('/').next().unwrap_or(path);
            spawn(name, 0, space, &frame, FdTable::with_console());
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
        let next = {
            let mut table = TABLE.lock();
            let pid = table.run_queue.pop_front();
            pid.and_then(|pid| table.procs.get_mut(&pid)).map(|p| {
                p.state = State::Running;
                crate::arch::syscall::set_kernel_stack(VirtAddr::new(p.kernel_stack_top()));
                p.space().pmap.activate();
                p.fpu.restore();
                (p.pid, p.saved_rsp)
            })
        };
        let Some((pid, rsp)) = next else {
            crate::arch::idle();
            continue;
        };
        TABLE.lock().current = Some(pid);
        // SAFETY: rsp was saved by `switch` or built by `prepare_stack` on the
        // process's kernel stack, which lives as long as the process.
        unsafe { switch::switch(&raw mut SCHEDULER_RSP, rsp) };
        let mut table = TABLE.lock();
        table.current = None;
        if let Some(p) = table.procs.get_mut(&pid)
            && p.state == State::Running
        {
            p.state = State::Runnable;
            table.run_queue.push_back(pid);
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
    unsafe { switch::switch(save, SCHEDULER_RSP) };
}

/// Let other processes run (the timer tick, sched_yield).
pub fn yield_now() {
    switch_to_scheduler();
}

/// End the current process with `status`: free its memory and files now,
/// keep it as a zombie for its parent. When init ends, the machine stops
/// and init's status becomes the runner's exit status.
pub fn exit_current(status: WaitStatus) -> ! {
    let (pid, frames_before) = {
        let mut table = TABLE.lock();
        let pid = table.current.expect("proc::exit_current: no process");
        let process = table
            .procs
            .get_mut(&pid)
            .expect("proc: current process vanished");
        pmap::activate_kernel();
        if let Some(mut space) = process.space.take() {
            space.clear(&mut KernelPhys);
        }
        process.files = FdTable::empty();
        process.state = State::Zombie(status);
        for child in table.procs.values_mut().filter(|c| c.parent == pid) {
            child.parent = INIT_PID;
        }
        (pid, table.frames_before_init)
    };
    if pid == INIT_PID {
        init_exited(status, frames_before);
    }
    switch_to_scheduler();
    unreachable!("proc::exit_current: a zombie was scheduled");
}

/// The runner's status for init's wait status (DESIGN §1), after a leak check.
fn init_exited(status: WaitStatus, frames_before: usize) -> ! {
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
