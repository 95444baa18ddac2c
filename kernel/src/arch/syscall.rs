//! The `syscall` instruction's entry path.
//!
//! `syscall` jumps to `syscall_entry` in ring 0 but leaves rsp pointing at
//! the user stack, and puts the user rip in rcx and rflags in r11. The entry
//! switches to the running process's kernel stack and pushes a `TrapFrame`
//! shaped exactly like the one the trap stubs build, then calls
//! `syscall::dispatch`. It leaves through `trap_return` (iretq), which also
//! handles frames that execve or signal delivery rewrote.

use super::gdt;
use x86_64::VirtAddr;
use x86_64::registers::model_specific::{LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;

/// Top of the running process's kernel stack; the scheduler sets it.
#[unsafe(no_mangle)]
static mut KERNEL_STACK_TOP: u64 = 0;
/// Where the entry parks the user rsp while it has no stack of its own.
#[unsafe(no_mangle)]
static mut USER_RSP_SCRATCH: u64 = 0;

pub fn init() {
    Star::write(gdt::USER_CS, gdt::USER_DS, gdt::KERNEL_CS, gdt::KERNEL_DS)
        .expect("syscall::init: GDT layout does not suit sysret");
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    // The kernel runs with interrupts masked; AC cleared keeps SMAP armed.
    SFMask::write(
        RFlags::INTERRUPT_FLAG
            | RFlags::DIRECTION_FLAG
            | RFlags::TRAP_FLAG
            | RFlags::ALIGNMENT_CHECK,
    );
}

/// Point the syscall entry (and the TSS, for traps) at a process's kernel stack.
pub fn set_kernel_stack(top: VirtAddr) {
    // SAFETY: single CPU, interrupts masked: no syscall entry runs concurrently.
    unsafe { KERNEL_STACK_TOP = top.as_u64() };
    gdt::set_kernel_stack(top);
}

unsafe extern "C" {
    fn syscall_entry();
}

core::arch::global_asm!(
    r#"
.section .text
.global syscall_entry
syscall_entry:
    mov [rip + USER_RSP_SCRATCH], rsp
    mov rsp, [rip + KERNEL_STACK_TOP]
    push {user_ds}
    push [rip + USER_RSP_SCRATCH]
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
    jmp trap_return
"#,
    user_ds = const gdt::USER_DS.0 as u64,
    user_cs = const gdt::USER_CS.0 as u64,
    vector = const super::idt::SYSCALL,
    dispatch = sym crate::syscall::dispatch,
);
