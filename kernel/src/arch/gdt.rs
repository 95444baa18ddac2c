//! Segments and the TSS.
//!
//! Long mode ignores segment bases, but the CPU still needs: code segments
//! for ring 0 and ring 3, the order `syscall`/`sysret` expect (kernel code,
//! kernel data, user data, user code), and a TSS holding the stack the CPU
//! switches to on a trap from user mode (`rsp0`) and the IST stacks for
//! double faults and NMIs, which must work even when the kernel stack is bad.

use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

pub const DOUBLE_FAULT_IST: u16 = 0;
pub const NMI_IST: u16 = 1;
const IST_STACK_SIZE: usize = 16 * 1024;

pub const KERNEL_CS: SegmentSelector = SegmentSelector(0x08);
pub const KERNEL_DS: SegmentSelector = SegmentSelector(0x10);
pub const USER_DS: SegmentSelector = SegmentSelector(0x18 | 3);
pub const USER_CS: SegmentSelector = SegmentSelector(0x20 | 3);

/// Only the CPU uses these bytes, through the IST entries that point at them.
#[repr(align(16))]
struct Stack(#[allow(dead_code)] [u8; IST_STACK_SIZE]);
static mut DOUBLE_FAULT_STACK: Stack = Stack([0; IST_STACK_SIZE]);
static mut NMI_STACK: Stack = Stack([0; IST_STACK_SIZE]);

// The TSS is written at every context switch (rsp0), so it cannot be a plain
// immutable static; it is touched only through `set_kernel_stack`.
static mut TSS: TaskStateSegment = TaskStateSegment::new();
static mut GDT: GlobalDescriptorTable = GlobalDescriptorTable::new();

pub fn init() {
    // SAFETY: runs once on the boot CPU before anything else reads the GDT
    // or TSS; the statics live forever, as the CPU requires.
    unsafe {
        let tss = &mut *(&raw mut TSS);
        tss.interrupt_stack_table[DOUBLE_FAULT_IST as usize] =
            stack_top(&raw const DOUBLE_FAULT_STACK);
        tss.interrupt_stack_table[NMI_IST as usize] = stack_top(&raw const NMI_STACK);
        let gdt = &mut *(&raw mut GDT);
        let kernel_cs = gdt.append(Descriptor::kernel_code_segment());
        let kernel_ds = gdt.append(Descriptor::kernel_data_segment());
        let user_ds = gdt.append(Descriptor::user_data_segment());
        let user_cs = gdt.append(Descriptor::user_code_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment_unchecked(&raw const TSS));
        assert!(
            kernel_cs == KERNEL_CS && kernel_ds == KERNEL_DS,
            "gdt::init: selector layout"
        );
        assert!(
            user_ds == USER_DS && user_cs == USER_CS,
            "gdt::init: selector layout"
        );
        gdt.load();
        CS::set_reg(KERNEL_CS);
        SS::set_reg(KERNEL_DS);
        DS::set_reg(KERNEL_DS);
        ES::set_reg(KERNEL_DS);
        load_tss(tss_sel);
    }
}

/// The stack the CPU loads on a trap from ring 3: the top of the running
/// process's kernel stack.
pub fn set_kernel_stack(top: VirtAddr) {
    // SAFETY: single CPU with interrupts masked in the kernel: nothing reads
    // the TSS while we write this field.
    unsafe { (*(&raw mut TSS)).privilege_stack_table[0] = top };
}

fn stack_top(stack: *const Stack) -> VirtAddr {
    VirtAddr::from_ptr(stack) + IST_STACK_SIZE as u64
}
