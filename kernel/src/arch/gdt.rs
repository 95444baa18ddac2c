//! Segments and the TSS, one set per CPU.
//!
//! Long mode ignores segment bases, but the CPU still needs: code segments
//! for ring 0 and ring 3, the order `syscall`/`sysret` expect (kernel code,
//! kernel data, user data, user code), and a TSS holding the stack the CPU
//! switches to on a trap from user mode (`rsp0`) and the IST stacks for
//! double faults and NMIs, which must work even when the kernel stack is
//! bad. Every CPU has its own GDT and TSS in its `PerCpu` (a TSS is busy
//! while loaded and holds that CPU's rsp0), with the same selectors.

use super::percpu::PerCpu;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, SegmentSelector};

pub const DOUBLE_FAULT_IST: u16 = 0;
pub const NMI_IST: u16 = 1;
pub const IST_STACK_SIZE: usize = 16 * 1024;

pub const KERNEL_CS: SegmentSelector = SegmentSelector(0x08);
pub const KERNEL_DS: SegmentSelector = SegmentSelector(0x10);
pub const USER_DS: SegmentSelector = SegmentSelector(0x18 | 3);
pub const USER_CS: SegmentSelector = SegmentSelector(0x20 | 3);

/// Only the CPU uses these bytes, through the IST entries that point at them.
#[repr(align(16))]
struct Stack(#[allow(dead_code)] [u8; IST_STACK_SIZE]);
/// The boot CPU's IST stacks (it loads its GDT before the heap exists);
/// the other CPUs' come from the heap (arch/smp.rs).
static mut DOUBLE_FAULT_STACK: Stack = Stack([0; IST_STACK_SIZE]);
static mut NMI_STACK: Stack = Stack([0; IST_STACK_SIZE]);

/// The boot CPU's IST stack tops: double fault, NMI.
pub fn boot_ist_stacks() -> [VirtAddr; 2] {
    [
        VirtAddr::from_ptr(&raw const DOUBLE_FAULT_STACK) + IST_STACK_SIZE as u64,
        VirtAddr::from_ptr(&raw const NMI_STACK) + IST_STACK_SIZE as u64,
    ]
}

/// Build `cpu`'s GDT and TSS (IST stacks at `ist`, tops) and load them on
/// the running CPU, which must be the one `cpu` describes.
pub fn load(cpu: &'static PerCpu, ist: [VirtAddr; 2]) {
    // SAFETY: runs once per CPU, on that CPU, before anything reads its GDT
    // or TSS; both live in the 'static PerCpu, as the CPU requires.
    unsafe {
        let tss = &mut *cpu.tss.get();
        tss.interrupt_stack_table[DOUBLE_FAULT_IST as usize] = ist[0];
        tss.interrupt_stack_table[NMI_IST as usize] = ist[1];
        let gdt = &mut *cpu.gdt.get();
        let kernel_cs = gdt.append(Descriptor::kernel_code_segment());
        let kernel_ds = gdt.append(Descriptor::kernel_data_segment());
        let user_ds = gdt.append(Descriptor::user_data_segment());
        let user_cs = gdt.append(Descriptor::user_code_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment_unchecked(cpu.tss.get()));
        assert!(
            kernel_cs == KERNEL_CS && kernel_ds == KERNEL_DS,
            "gdt::load: selector layout"
        );
        assert!(
            user_ds == USER_DS && user_cs == USER_CS,
            "gdt::load: selector layout"
        );
        gdt.load_unsafe();
        CS::set_reg(KERNEL_CS);
        SS::set_reg(KERNEL_DS);
        DS::set_reg(KERNEL_DS);
        ES::set_reg(KERNEL_DS);
        load_tss(tss_sel);
    }
}
