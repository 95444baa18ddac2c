//! What happens on each trap (the entry stubs are in arch/idt.rs).
//!
//! From user mode, an exception becomes a signal for the process (a
//! handler runs, or the process dies with it: `signal::force`); the timer
//! makes it yield. Every trap from user mode leaves through
//! `signal::deliver_pending`. From kernel mode, any exception is a kernel
//! bug: report and panic.

use crate::arch::idt::{IPI_BASE, IPI_COUNT, PAGE_FAULT, SPURIOUS, TIMER, TrapFrame};
use crate::arch::{apic, ipi, timer};
use crate::oom::Verdict;
use crate::phys::KernelPhys;
use crate::signal::{self, SIGBUS, SIGFPE, SIGILL, SIGKILL, SIGSEGV, SIGTRAP, SigInfo};
use crate::syscall::limits::StackLimits;
use crate::{proc, vmstat};
use vm::vm_fault::{Access, FaultError, Resolution, SegvCode};
use x86_64::registers::control::Cr2;

const NAMES: [&str; 32] = [
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor overrun",
    "invalid TSS",
    "segment not present",
    "stack fault",
    "general protection",
    "page fault",
    "reserved",
    "x87 floating point",
    "alignment check",
    "machine check",
    "SIMD floating point",
    "virtualization",
    "control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "hypervisor injection",
    "VMM communication",
    "security",
    "reserved",
];

pub extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    if !frame.is_user_mode() {
        // Kernel code the interrupt arrived in holds what it holds (the
        // kernel lock or not: an idle or waiting CPU); handlers only
        // try-lock the state they share with it.
        handle(frame);
        return;
    }
    let step = without_kernel_lock(frame);
    if step == Step::Done && !signal::may_be_pending() && !crate::reclaim::due() {
        return;
    }
    // The kernel lock for the handling and the signal delivery
    // (kernel_lock.rs); the handler may switch threads, and the thread
    // may come back on another CPU, which then holds the lock.
    crate::kernel_lock::enter();
    match step {
        Step::Done => crate::reclaim::balance(),
        Step::Yield => proc::yield_now(),
        Step::Wait => {}
        Step::Locked => handle(frame),
    }
    signal::deliver_pending(frame);
    crate::kernel_lock::leave();
}

/// How far a trap from user mode got without the kernel lock.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Handled: back to user mode, unless signals or reclaim want the lock.
    Done,
    /// The tick, handled; another thread waits for this CPU.
    Yield,
    /// A cross-call, handled, that took this CPU out of its space (init's
    /// exit): it waits for the kernel lock instead of returning.
    Wait,
    /// Not handled: `handle` runs under the kernel lock.
    Locked,
}

/// The traps from user mode that need no kernel lock, handled: a first
/// touch or copy-on-write of anonymous memory, resolved under the
/// address-space read lock in parallel with the other CPUs
/// (kernel/src/mm.rs); the tick, whose
/// own work only try-locks (the yield, if another thread waits, takes the
/// lock); a cross-call (a TLB shootdown: its handler takes no lock), so
/// that a thread running here does not wait for the munmap on another
/// CPU that sent it.
fn without_kernel_lock(frame: &TrapFrame) -> Step {
    match frame.vector {
        PAGE_FAULT if parallel_fault(frame) => Step::Done,
        TIMER => {
            tick(true);
            if proc::others_wait() {
                Step::Yield
            } else {
                Step::Done
            }
        }
        vector if (IPI_BASE..IPI_BASE + IPI_COUNT as u64).contains(&vector) => {
            ipi::dispatch(vector);
            if crate::arch::percpu::this().user_tables() != 0 {
                Step::Done
            } else {
                Step::Wait
            }
        }
        _ => Step::Locked,
    }
}

/// The tick's own work: the clock, the sleepers, CPU-time accounting.
fn tick(user: bool) {
    timer::tick();
    proc::account_tick(user);
    apic::end_of_interrupt();
}

fn handle(frame: &mut TrapFrame) {
    match frame.vector {
        // From user mode the tick is `without_kernel_lock`'s.
        TIMER => tick(false),
        vector if (IPI_BASE..IPI_BASE + IPI_COUNT as u64).contains(&vector) => {
            ipi::dispatch(vector)
        }
        // The serial port's line (the terminal's input, kernel/src/tty/)
        // and the disks' (block::interrupt); the others are masked, and
        // a spurious IRQ 7/15 needs no EOI.
        vector if vector == 32 + u64::from(crate::tty::IRQ) => {
            crate::tty::interrupt();
            timer::end_of_interrupt(vector as u8);
        }
        vector @ 33..=47 => {
            crate::block::interrupt((vector - 32) as u8);
        }
        // IRQ 0 (the PIT) is masked since the APIC timer ticks, and the
        // APIC's spurious interrupt takes no end-of-interrupt.
        32 | SPURIOUS => {}
        PAGE_FAULT => page_fault(frame),
        vector if frame.is_user_mode() => {
            // Linux's signal and si_code for each exception; si_addr is the
            // instruction for SIGILL/SIGFPE, 0 for the rest.
            let (signo, code, addr) = match vector {
                0 => (SIGFPE, signal::FPE_INTDIV, frame.rip),
                16 | 19 => (SIGFPE, 0, frame.rip),
                // A single step (TF, which rt_sigreturn may restore) is
                // TRAP_TRACE at the next instruction, as Linux reports it;
                // int3 and int1 are SI_KERNEL.
                1 if crate::arch::take_debug_status() & DR6_SINGLE_STEP != 0 => {
                    (SIGTRAP, signal::TRAP_TRACE, frame.rip)
                }
                1 | 3 => (SIGTRAP, signal::SI_KERNEL, 0),
                6 => (SIGILL, signal::ILL_ILLOPN, frame.rip),
                17 => (SIGBUS, signal::BUS_ADRALN, 0),
                _ => (SIGSEGV, signal::SI_KERNEL, 0),
            };
            let rip = frame.rip;
            let info = SigInfo {
                signo,
                code,
                addr,
                ..SigInfo::default()
            };
            signal::force(info, || {
                log::info!(
                    "{}: {} at rip {rip:#x}",
                    describe_current(),
                    NAMES[vector as usize % 32],
                );
                log_registers(frame);
            });
        }
        _ => kernel_fault(frame, None),
    }
}

/// DR6's BS bit: the #DB came from the trap flag.
const DR6_SINGLE_STEP: u64 = 1 << 14;

/// Page-fault error code bits (Intel SDM 4.7).
const PF_WRITE: u64 = 2;
const PF_INSTRUCTION: u64 = 16;

/// What the faulting access was, from the page-fault error code.
fn access_of(frame: &TrapFrame) -> Access {
    if frame.error_code & PF_INSTRUCTION != 0 {
        Access::Execute
    } else if frame.error_code & PF_WRITE != 0 {
        Access::Write
    } else {
        Access::Read
    }
}

/// A page fault from user mode resolved under the address-space read
/// lock, without the kernel lock or the process table (mm.rs,
/// vm/src/vm_fault/shared.rs), after a writer of the space in or waiting
/// is through (`Mm::read`); false, with nothing changed, when it
/// needs `page_fault`: not a first touch or a 4 KiB copy-on-write of
/// anonymous memory, or the fault trace on (its line names the process, which takes the table).
fn parallel_fault(frame: &TrapFrame) -> bool {
    if vmstat::tracing() {
        return false;
    }
    let addr = Cr2::read_raw();
    let resolved = crate::mm::with_running(|mm| {
        let space = mm.read();
        let done = space.fault_shared(&mut KernelPhys, addr, access_of(frame))?;
        drop(space);
        mm.count_minor_fault();
        Some(done)
    });
    let Some(done) = resolved.flatten() else {
        return false;
    };
    vmstat::record(&Ok(done));
    true
}

/// A page fault from user mode: the VM layer resolves it, or the process
/// gets the signal it earned. (The kernel never touches user memory
/// directly, so a page fault in kernel mode is always a kernel bug.)
fn page_fault(frame: &mut TrapFrame) {
    // Still the faulting address after `parallel_fault`: nothing faulted since.
    let addr = Cr2::read_raw();
    if !frame.is_user_mode() {
        kernel_fault(frame, Some(addr));
    }
    let access = access_of(frame);
    // The process table only for what the fault needs of the process,
    // before and after: the fault itself runs on the space alone, under
    // its write lock (a swap-in waits for the disk there), so the table
    // stays free meanwhile for the other CPUs' ticks, /proc and wake-ups.
    let (pid, limits) = proc::with_current(|p| (p.pid, StackLimits::of(p)));
    let mm = crate::mm::running().expect("trap: a user fault with no space running");
    let (result, cycles, vma) = {
        let space = &mut *mm.write();
        let started = crate::arch::rdtsc();
        let result = if limits.allow(space, addr) {
            space.fault(&mut KernelPhys, addr, access)
        } else {
            Err(FaultError::Segv(vm::vm_fault::SegvCode::MapErr))
        };
        let cycles = crate::arch::rdtsc() - started;
        let traced = vmstat::tracing().then(|| {
            let frame = vm::pmap::Pmap::query(&space.pmap, addr).map(|m| m.pfn);
            (describe_vma(space, addr), frame)
        });
        (result, cycles, traced)
    };
    drop(mm);
    match result {
        Ok(Resolution::SwapIn { read: 1.., .. } | Resolution::ObjectPage { read: 1.., .. }) => {
            proc::with_current(|p| p.res.usage.majflt += 1)
        }
        Ok(_) => proc::with_current(|p| p.res.usage.minflt += 1),
        Err(_) => {}
    }
    vmstat::record(&result);
    if let Some((vma, frame)) = vma {
        vmstat::trace_line(pid, addr, access, &vma, &result, frame, cycles);
    }
    let (signo, code) = match result {
        Ok(_) => {
            crate::reclaim::balance();
            return;
        }
        // No frame: reclaim frees some, or else the OOM killer does (the
        // fault is taken again) or names this process (SIGKILL, below).
        Err(FaultError::OutOfMemory) if crate::reclaim::direct() => return,
        Err(FaultError::OutOfMemory) if matches!(crate::oom::out_of_memory(), Verdict::Retry) => {
            return;
        }
        Err(FaultError::Segv(code)) => (SIGSEGV, code as i32),
        Err(FaultError::Bus) => (SIGBUS, signal::BUS_ADRERR),
        Err(FaultError::OutOfMemory) => (SIGKILL, signal::SI_KERNEL),
    };
    let rip = frame.rip;
    let why = match result {
        Err(FaultError::Segv(SegvCode::MapErr)) => " (nothing mapped there)",
        Err(FaultError::Segv(SegvCode::AccErr)) => " (the mapping does not allow it)",
        _ => "",
    };
    // The registers too: a program's crash that the kernel may have caused
    // (a rare one above all) is read from them.
    let frame = &*frame;
    let report = || {
        log::info!(
            "{}: {} on {} at {addr:#x}, rip {rip:#x}{why}",
            describe_current(),
            signal_name(signo),
            vmstat::access_name(access),
        );
        log_registers(frame);
    };
    if signo == SIGKILL {
        report();
        proc::exit_current(proc::killed(SIGKILL));
    }
    let info = SigInfo {
        signo,
        code,
        addr,
        ..SigInfo::default()
    };
    signal::force(info, report);
}

/// The VMA around `addr` for the trace: range, rights, kind.
fn describe_vma(space: &crate::Space, addr: u64) -> alloc::string::String {
    match space.find(addr) {
        Some(v) => alloc::format!(
            "{:x}-{:x} {} {}",
            v.start,
            v.end,
            crate::procfs::perms(v),
            crate::procfs::kind(v)
        ),
        None => "(no vma)".into(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGSEGV => "SIGSEGV",
        SIGBUS => "SIGBUS",
        SIGKILL => "SIGKILL (out of memory)",
        _ => "signal",
    }
}

fn describe_current() -> alloc::string::String {
    proc::with_current(|p| alloc::format!("pid {} ({})", p.pid, p.name))
}

/// The general registers of a user trap frame, for a crash report: two
/// log lines, each a kernel line of its own (the tests that compare a
/// program's output with Linux's leave out the kernel's lines).
fn log_registers(f: &TrapFrame) {
    log::info!(
        "  rax {:#x} rbx {:#x} rcx {:#x} rdx {:#x} rsi {:#x} rdi {:#x} rbp {:#x} rsp {:#x}",
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.rsp
    );
    log::info!(
        "  r8 {:#x} r9 {:#x} r10 {:#x} r11 {:#x} r12 {:#x} r13 {:#x} r14 {:#x} r15 {:#x} rflags {:#x}",
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
        f.rflags
    );
}

/// A trap in kernel mode: print everything a reader needs, then panic.
fn kernel_fault(frame: &TrapFrame, cr2: Option<u64>) -> ! {
    let name = NAMES.get(frame.vector as usize).unwrap_or(&"interrupt");
    panic!(
        "kernel {name} (vector {}, error code {:#x}) at rip {:#x}{}\n  rsp {:#x} rflags {:#x} rax {:#x} rdi {:#x} rsi {:#x}",
        frame.vector,
        frame.error_code,
        frame.rip,
        cr2.map(|a| alloc::format!(", cr2 {a:#x}"))
            .unwrap_or_default(),
        frame.rsp,
        frame.rflags,
        frame.rax,
        frame.rdi,
        frame.rsi,
    );
}
