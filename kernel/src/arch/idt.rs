//! The interrupt descriptor table and the trap entry path.
//!
//! Every exception and IRQ that can arrive from user mode enters through a
//! 16-byte stub below, which pushes the vector (and a zero where the CPU
//! pushes no error code), then `trap_common` saves every general register.
//! The result is one `TrapFrame` at the top of the process's kernel stack,
//! the same layout `syscall` builds (see `syscall.rs`), so fork, signals and
//! execve deal with one shape of saved user state. Double faults and NMIs
//! run on IST stacks through plain `x86-interrupt` handlers: they only report.

use super::gdt;
use x86_64::VirtAddr;
use x86_64::structures::idt::{InterruptDescriptorTable, InterruptStackFrame};

/// The user (or interrupted kernel) state saved on a trap, lowest address first.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    // Pushed by the CPU (or by the syscall entry, in the same order).
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    pub fn is_user_mode(&self) -> bool {
        self.cs & 3 == 3
    }

    /// A frame that enters user mode at `rip` with stack `rsp`, interrupts on.
    pub fn new_user(rip: u64, rsp: u64) -> Self {
        TrapFrame {
            rip,
            rsp,
            cs: u64::from(gdt::USER_CS.0),
            ss: u64::from(gdt::USER_DS.0),
            rflags: 0x202, // IF, plus the always-one bit 1
            ..Default::default()
        }
    }
}

pub const PAGE_FAULT: u64 = 14;
pub const TIMER: u64 = 32;
const STUBS: usize = 48;
/// The vector number `syscall` entries record, past every hardware vector.
pub const SYSCALL: u64 = 256;

static mut IDT: InterruptDescriptorTable = InterruptDescriptorTable::new();

unsafe extern "C" {
    static trap_stubs: u8;
}

pub fn init() {
    // SAFETY: runs once before interrupts are enabled; the IDT is a static
    // that lives forever, and every stub address points at code below.
    unsafe {
        let idt = &mut *(&raw mut IDT);
        let base = VirtAddr::from_ptr(&raw const trap_stubs);
        let stub = |vector: u64| base + vector * 16;
        // Exceptions have typed entries; each one user code can raise gets its stub.
        idt.divide_error.set_handler_addr(stub(0));
        idt.debug.set_handler_addr(stub(1));
        // int3 may be used from ring 3 (debuggers, the signal tests).
        idt.breakpoint
            .set_handler_addr(stub(3))
            .set_privilege_level(x86_64::PrivilegeLevel::Ring3);
        idt.overflow.set_handler_addr(stub(4));
        idt.bound_range_exceeded.set_handler_addr(stub(5));
        idt.invalid_opcode.set_handler_addr(stub(6));
        idt.device_not_available.set_handler_addr(stub(7));
        idt.invalid_tss.set_handler_addr(stub(10));
        idt.segment_not_present.set_handler_addr(stub(11));
        idt.stack_segment_fault.set_handler_addr(stub(12));
        idt.general_protection_fault.set_handler_addr(stub(13));
        idt.page_fault.set_handler_addr(stub(PAGE_FAULT));
        idt.x87_floating_point.set_handler_addr(stub(16));
        idt.alignment_check.set_handler_addr(stub(17));
        idt.simd_floating_point.set_handler_addr(stub(19));
        idt.virtualization.set_handler_addr(stub(20));
        idt.cp_protection_exception.set_handler_addr(stub(21));
        for vector in 32..STUBS as u8 {
            idt[vector].set_handler_addr(stub(u64::from(vector)));
        }
        idt.double_fault
            .set_handler_fn(double_fault)
            .set_stack_index(gdt::DOUBLE_FAULT_IST);
        idt.non_maskable_interrupt
            .set_handler_fn(nmi)
            .set_stack_index(gdt::NMI_IST);
        idt.load();
    }
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    panic!("double fault (error code {code:#x})\n{frame:#?}");
}

extern "x86-interrupt" fn nmi(frame: InterruptStackFrame) {
    log::error!("NMI at {:#x}", frame.instruction_pointer.as_u64());
}

// Vectors whose exception pushes an error code: #DF 8, #TS 10, #NP 11,
// #SS 12, #GP 13, #PF 14, #AC 17, #CP 21, #VC 29, #SX 30.
core::arch::global_asm!(
    r#"
.macro TRAP_STUB n
    .balign 16
    .if \n == 8 || (\n >= 10 && \n <= 14) || \n == 17 || \n == 21 || \n == 29 || \n == 30
    .else
    push 0
    .endif
    push \n
    jmp trap_common
.endm

.section .text
.balign 16
.global trap_stubs
trap_stubs:
.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47
    TRAP_STUB \n
.endr

trap_common:
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

.global trap_return
trap_return:
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
    iretq
"#,
    dispatch = sym crate::trap::trap_dispatch,
);
