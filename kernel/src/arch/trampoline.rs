//! The real-mode trampoline that takes a starting CPU into long mode.
//!
//! A CPU woken by INIT-SIPI-SIPI starts in 16-bit real mode at the 4 KiB
//! page the SIPI names (below 1 MiB), with no stack, no GDT and paging
//! off. The code below is copied into such a page at boot and climbs the
//! modes the way every x86 kernel does (Linux's trampoline_64.S,
//! xv6's entryother.S): load a small GDT, set CR0.PE and far-jump into
//! 32-bit protected mode; enable PAE, load a CR3, set EFER.LME (and NXE,
//! which the kernel's page tables need, and SCE), set CR0.PG and far-jump
//! into a 64-bit code segment; load the stack, and call the kernel's
//! entry (`smp::other_cpu_main`) at its kernel-half address.
//!
//! CR3 in 32-bit mode takes a 32-bit address, so the trampoline has its
//! own page tables, in the three pages after its code: an L4 whose entry 0
//! identity-maps the first 2 MiB (so the code keeps running at its
//! physical address when paging comes on) and whose kernel half is the
//! kernel's own (so the entry call reaches the kernel). The entry then
//! loads the kernel's CR3 and never comes back here.
//!
//! The code is position-independent: the 16-bit part finds its base in CS
//! (the SIPI sets CS to page << 8), the 32-bit part keeps it in ebx, the
//! 64-bit part uses rip-relative addressing, and `install` writes the
//! absolute addresses the far jumps and the GDT pointer need. The code
//! must sit at the start of its section (`.org` places the data at a
//! fixed offset from there).

use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use core::sync::atomic::{Ordering, fence};
use x86_64::PhysAddr;
use x86_64::registers::control::Cr3;
use x86_64::structures::paging::{PageTable, PageTableFlags as Flags};

/// Code page plus L4, L3 and L2.
const PAGES: u64 = 4;
const PAGE: u64 = 4096;
/// Real mode reaches the first MiB; the EBDA and ROMs start at 0x9f000.
const LOW_MEMORY_END: u64 = 0x9f000;

// Offsets into the code, in `ap_trampoline_layout`'s order.
const LEN: usize = 0;
const JUMP32: usize = 1;
const PROTECTED: usize = 2;
const JUMP64: usize = 3;
const LONG: usize = 4;

// The data, at fixed offsets: 16- and 32-bit code can only name them by
// number (it has no rip-relative addressing).
const DATA: u64 = 0x100;
const GDT: u64 = DATA;
const GDTR: u64 = DATA + 32;
const CR3: u64 = DATA + 40;
const STACK: u64 = DATA + 48;
const ENTRY: u64 = DATA + 56;
const ARG: u64 = DATA + 64;

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_layout: [u64; 5];
}

/// The trampoline, installed in low memory.
pub struct Trampoline {
    base: u64,
}

fn layout(field: usize) -> u64 {
    // SAFETY: the table is assembled below and never written.
    unsafe { ap_trampoline_layout[field] }
}

fn write<T>(phys: u64, value: T) {
    let ptr = crate::phys::to_virt(PhysAddr::new(phys)).as_mut_ptr::<T>();
    // SAFETY: `phys` lies in the trampoline's pages, which `install` took
    // (below 1 MiB, never handed out by phys.rs) and only we touch. The
    // far jumps' fields are not aligned.
    unsafe { ptr.write_unaligned(value) };
}

impl Trampoline {
    /// Copy the code and build its page tables in four free pages of
    /// conventional memory (the memory map's usable RAM below 0x9f000;
    /// phys.rs never hands out frames below 1 MiB, so they stay ours).
    /// None if the map has no such run.
    pub fn install(regions: &MemoryRegions) -> Option<Trampoline> {
        let base = regions
            .iter()
            .filter(|r| r.kind == MemoryRegionKind::Usable)
            .map(|r| {
                (
                    r.start.max(PAGE).next_multiple_of(PAGE),
                    r.end.min(LOW_MEMORY_END),
                )
            })
            .find(|&(start, end)| start + PAGES * PAGE <= end)?
            .0;
        let len = layout(LEN) as usize;
        assert!(len as u64 == ARG + 8, "trampoline::install: data layout");
        // SAFETY: the code is `len` bytes of the kernel image from the label on.
        let code = unsafe { core::slice::from_raw_parts(&raw const ap_trampoline_start, len) };
        for (i, &byte) in code.iter().enumerate() {
            write(base + i as u64, byte);
        }
        write(base + GDTR + 2, (base + GDT) as u32);
        write(base + layout(JUMP32), (base + layout(PROTECTED)) as u32);
        write(base + layout(JUMP64), (base + layout(LONG)) as u32);
        let (l4, l3, l2) = (base + PAGE, base + 2 * PAGE, base + 3 * PAGE);
        write(base + CR3, l4);

        let table = |phys: u64| {
            // SAFETY: one of our three table pages, through the physical map.
            unsafe { &mut *crate::phys::to_virt(PhysAddr::new(phys)).as_mut_ptr::<PageTable>() }
        };
        let (new_l4, new_l3, new_l2) = (table(l4), table(l3), table(l2));
        for t in [&mut *new_l4, &mut *new_l3, &mut *new_l2] {
            t.zero();
        }
        let rw = Flags::PRESENT | Flags::WRITABLE;
        new_l2[0].set_addr(PhysAddr::new(0), rw | Flags::HUGE_PAGE);
        new_l3[0].set_addr(PhysAddr::new(l2), rw);
        new_l4[0].set_addr(PhysAddr::new(l3), rw);
        // No process has run yet: CR3 is the kernel's own L4.
        let kernel = table(Cr3::read().0.start_address().as_u64());
        for i in 256..512 {
            new_l4[i] = kernel[i].clone();
        }
        Some(Trampoline { base })
    }

    /// The SIPI's vector: the trampoline's page number.
    pub fn page(&self) -> u8 {
        (self.base / PAGE) as u8
    }

    /// Set what the next CPU to start gets: its stack top, and the kernel
    /// function it calls (`extern "C" fn(arg) -> !`) with `arg`.
    pub fn prepare(&self, stack_top: u64, entry: extern "C" fn(u64) -> !, arg: u64) {
        write(self.base + STACK, stack_top);
        write(self.base + ENTRY, entry as usize as u64);
        write(self.base + ARG, arg);
        // The SIPI (an APIC register write) must not pass these stores.
        fence(Ordering::SeqCst);
    }
}

core::arch::global_asm!(
    r#"
.pushsection .rodata.ap_trampoline, "a"
.global ap_trampoline_start
.code16
ap_trampoline_start:
    cli
    cld
    mov ax, cs
    mov ds, ax
    xor ebx, ebx
    mov bx, ax
    shl ebx, 4
    lgdt [{gdtr}]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    // jmp far 0x08:(base + ap_protected), 32-bit offset
    .byte 0x66, 0xea
ap_jump32:
    .long 0
    .word 0x08
.code32
ap_protected:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, 1 << 5
    mov cr4, eax
    mov eax, [ebx + {cr3}]
    mov cr3, eax
    mov ecx, 0xc0000080
    rdmsr
    or eax, (1 << 0) | (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | (1 << 16)
    mov cr0, eax
    // jmp far 0x18:(base + ap_long)
    .byte 0xea
ap_jump64:
    .long 0
    .word 0x18
.code64
ap_long:
    mov rsp, [rip + ap_stack]
    mov rdi, [rip + ap_arg]
    mov rax, [rip + ap_entry]
    call rax
    ud2
.org {data}
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00af9a000000ffff
ap_gdtr:
    .word 4 * 8 - 1
    .long 0
    .word 0
ap_cr3:
    .quad 0
ap_stack:
    .quad 0
ap_entry:
    .quad 0
ap_arg:
    .quad 0
ap_trampoline_end:

.balign 8
.global ap_trampoline_layout
ap_trampoline_layout:
    .quad ap_trampoline_end - ap_trampoline_start
    .quad ap_jump32 - ap_trampoline_start
    .quad ap_protected - ap_trampoline_start
    .quad ap_jump64 - ap_trampoline_start
    .quad ap_long - ap_trampoline_start
.popsection
"#,
    data = const DATA,
    gdtr = const GDTR,
    cr3 = const CR3,
);
