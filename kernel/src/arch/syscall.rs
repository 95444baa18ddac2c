//! The `syscall` instruction's entry path.
//!
//! `syscall` jumps to `syscall_entry` in ring 0 but leaves rsp pointing at
//! the user stack, and puts the user rip in rcx and rflags in r11. The entry
//! swaps in the kernel's GS base (arch/percpu.rs), switches to the running
//! process's kernel stack (this CPU's `PerCpu` holds it) and pushes a `TrapFrame`
//! shaped exactly like the one the trap stubs build, then calls
//! `syscall::dispatch`. It leaves by `sysretq` when the frame still looks
//! like the one `syscall` made (what Linux checks too: rip in rcx, rflags
//! in r11, user segments, a canonical user rip): sysret only reloads rip
//! and rflags from registers, which is several times cheaper than iretq's
//! stack frame and segment checks under emulation. Any other frame (one
//! execve or signal delivery rewrote) leaves through `trap_return` (iretq).

use super::gdt;
use x86_64::VirtAddr;
use x86_64::registers::model_specific::{LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;

pub fn init() {
    Star::write(gdt::USER_CS, gdt::USER_DS, gdt::KERNEL_CS, gdt::KERNEL_DS)
        .expect("syscall::init: GDT layout does not suit sysret");
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    // The kernel runs with interrupts masked; AC cleared keeps SMAP armed.
    // Every flag user mode can set that would change how the kernel runs
    // goes too (Linux masks the same): TF would single-step the kernel, and
    // NT (which popf sets in ring 3) makes the kernel's next iretq raise #GP
    // — on whichever process the CPU switches to, since a context switch
    // keeps rflags. The user's own flags come back from r11 or the frame.
    SFMask::write(
        RFlags::INTERRUPT_FLAG
            | RFlags::DIRECTION_FLAG
            | RFlags::TRAP_FLAG
            | RFlags::ALIGNMENT_CHECK
            | RFlags::NESTED_TASK
            | RFlags::IOPL_LOW
            | RFlags::IOPL_HIGH
            | RFlags::RESUME_FLAG
            | RFlags::ID,
    );
}

/// Whether a frame can leave by sysretq: it returns to user mode with the
/// user segments, a canonical lower-half rip (sysret with a non-canonical
/// one faults in ring 0 on Intel CPUs) and no trap or resume flag, and its
/// rcx and r11 already hold its rip and rflags. sysret takes rip from rcx
/// and rflags from r11, so any other frame would come back with those two
/// registers overwritten: one rt_sigreturn restored from an interrupt
/// (a signal that arrived while the program ran in user mode, where rcx
/// and r11 are live) is such a frame, and busybox's sh crashed on one
/// (proctest's an-async-signal-keeps-rcx-and-r11; Linux checks the same
/// in do_syscall_64).
pub fn can_sysret(frame: &super::idt::TrapFrame) -> bool {
    let flags = RFlags::from_bits_truncate(frame.rflags);
    frame.rcx == frame.rip
        && frame.r11 == frame.rflags
        && frame.cs == u64::from(gdt::USER_CS.0)
        && frame.ss == u64::from(gdt::USER_DS.0)
        && frame.rip < 0x0000_8000_0000_0000
        && !flags.intersects(RFlags::TRAP_FLAG | RFlags::RESUME_FLAG)
}

/// Point the syscall entry (and the TSS, for traps) at a process's kernel stack.
pub fn set_kernel_stack(top: VirtAddr) {
    super::percpu::this().set_kernel_stack(top);
}

unsafe extern "C" {
    fn syscall_entry();
}

core::arch::global_asm!(
    r#"
.section .text
.global syscall_entry
syscall_entry:
    swapgs
    mov gs:[{user_rsp}], rsp
    mov rsp, gs:[{kernel_stack}]
    push {user_ds}
    push gs:[{user_rsp}]
    push r11
    push {user_cs}
    push rcx
    push 0
    push {vector}
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call {dispatch}
    test al, al
    jz trap_return
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    mov rcx, [rsp]
    mov r11, [rsp + 16]
    mov rsp, [rsp + 24]
    swapgs
    sysretq
"#,
    user_ds = const gdt::USER_DS.0 as u64,
    user_cs = const gdt::USER_CS.0 as u64,
    vector = const super::idt::SYSCALL,
    user_rsp = const super::percpu::USER_RSP_OFFSET,
    kernel_stack = const super::percpu::KERNEL_STACK_OFFSET,
    dispatch = sym crate::syscall::dispatch,
);
