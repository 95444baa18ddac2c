//! The interrupt descriptor table and the trap entry path.
//!
//! Every exception and IRQ that can arrive from user mode enters through a
//! 16-byte stub below, which pushes the vector (and a zero where the CPU
//! pushes no error code), then `trap_common` saves every general register.
//! The result is one `TrapFrame` at the top of the process's kernel stack,
//! the same layout `syscall` builds (see `syscall.rs`), so fork, signals and
//! execve deal with one shape of saved user state. A trap from user mode
//! swaps in the kernel's GS base first and swaps it back last (the GS rule
//! of arch/percpu.rs); the saved CS says which it was. Double faults and
//! NMIs run on IST stacks through plain `x86-interrupt` handlers: they only
//! report, and never read per-CPU state, because they can arrive where CS
//! is the kernel's but GS still the user's (around `swapgs`). Every CPU
//! loads this one IDT; the IST indices name stacks in each CPU's own TSS.

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
/// The local APIC timer (arch/apic.rs).
pub const TIMER: u64 = 48;
/// Inter-processor interrupts (arch/ipi.rs): `IPI_BASE..IPI_BASE + IPI_COUNT`.
pub const IPI_BASE: u64 = 0xf0;
pub const IPI_COUNT: usize = 8;
/// The local APIC's spurious-interrupt vector (its low four bits must be set).
pub const SPURIOUS: u64 = 0xff;
const STUBS: usize = 256;
/// The vector number `syscall` entries record, past every hardware vector.
pub const SYSCALL: u64 = 256;

static mut IDT: InterruptDescriptorTable = InterruptDescriptorTable::new();

unsafe extern "C" {
    static trap_stubs: u8;
}

/// Build the IDT (once, on the boot CPU) and load it.
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
        for vector in 32..STUBS {
            idt[vector as u8].set_handler_addr(stub(vector as u64));
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

/// Load the IDT `init` built on another CPU.
pub fn load() {
    // SAFETY: the IDT was built by `init` on the boot CPU before any other
    // CPU started, and is never written again.
    unsafe { (*(&raw const IDT)).load() };
}

extern "x86-interrupt" fn double_fault(frame: InterruptStackFrame, code: u64) -> ! {
    panic!("double fault (error code {code:#x})\n{frame:#?}");
}

extern "x86-interrupt" fn nmi(frame: InterruptStackFrame) {
    log::error!("NMI at {:#x}", frame.instruction_pointer.as_u64());
}

// Each stub fits its 16 bytes: push imm8 (2), push imm32 (5), jmp rel32 (5).
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
.irp hi, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
.irp lo, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    TRAP_STUB \hi*16+\lo
.endr
.endr

// Stack: vector, error code, then the CPU's rip, cs, rflags, rsp, ss.
trap_common:
    test byte ptr [rsp + 24], 3
    jz 2f
    swapgs
2:
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
    test byte ptr [rsp + 8], 3
    jz 3f
    swapgs
3:
    iretq
"#,
    dispatch = sym crate::trap::trap_dispatch,
);
