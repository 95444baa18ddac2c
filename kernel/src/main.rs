//! pageos: a small x86_64 kernel whose heart is its virtual-memory subsystem.
//!
//! `kmain` is where the bootloader hands over. It brings the machine up in
//! the order each part needs the previous one: the console (to report
//! everything else), the CPU's tables, physical memory, page tables, the
//! heap, the command line and the initrd, and finally init, after which the
//! scheduler runs for good.

#![no_std]
#![no_main]
#![feature(abi_x86_interrupt)]
// Every `unsafe` block says why it is sound (`make lint` runs clippy).
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod acpi;
mod arch;
mod block;
mod cmdline;
mod commit;
mod dev;
mod diskbench;
mod exec;
mod fd;
mod futex;
mod heap;
mod initrd;
mod kernel_lock;
mod locks;
mod logger;
mod mm;
mod mmio;
mod oom;
mod pageout;
mod pci;
mod phys;
mod pmap;
mod proc;
mod procfs;
mod qemu;
mod ramfs;
mod reclaim;
mod resource;
mod selftest;
mod sigaltstack;
mod signal;
mod sleep;
mod smptest;
mod socket;
mod swap;
mod sync;
mod syscall;
mod time;
mod trap;
mod tty;
mod usercopy;
mod vfs;
mod vmstat;

use bootloader_api::config::{BootloaderConfig, Mapping};

/// A process's address space: the machine-independent VM layer over this
/// machine's page tables.
pub type Space = vm::space::AddressSpace<pmap::Pmap>;
use bootloader_api::{BootInfo, entry_point};

/// DESIGN §5: the physical map and every bootloader mapping in the kernel
/// half, the kernel at a fixed address (stable for gdb), a 256 KiB boot stack.
pub static BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.mappings.dynamic_range_start = Some(0xffff_8000_0000_0000);
    config.mappings.kernel_base = Mapping::FixedAddress(0xffff_ffff_8000_0000);
    config.kernel_stack_size = 256 * 1024;
    config
};

entry_point!(kmain, config = &BOOTLOADER_CONFIG);

fn kmain(boot_info: &'static mut BootInfo) -> ! {
    let entered = arch::rdtsc();
    logger::init();
    log::info!("pageos {} booting", env!("CARGO_PKG_VERSION"));
    arch::init();
    let phys_offset = boot_info
        .physical_memory_offset
        .into_option()
        .expect("kmain: no physical map");
    phys::init(phys_offset, &boot_info.memory_regions);
    pmap::init();
    heap::init();
    // Before any process: the clock's one allocation, for every frame.
    reclaim::init();
    // The shared zero frame lives forever: take it before anyone counts frames.
    vm::pmap::PhysMem::zero_frame(&phys::KernelPhys);
    // The APIC, the clocks, the tick, and the other CPUs.
    arch::smp::init(boot_info);

    let cmdline = cmdline::read();
    tty::init(cmdline.interactive);
    vmstat::set_trace(cmdline.trace_faults);
    procfs::allow_kernel_walks(cmdline.debug_pagewalk);
    if cmdline.test_panic {
        panic!("test-panic switch on the command line");
    }
    let ramdisk = boot_info.ramdisk_addr.into_option().map(|addr| {
        // SAFETY: the bootloader mapped the ramdisk here, and its frames are
        // never handed to the frame allocator (not a Usable region).
        unsafe { core::slice::from_raw_parts(addr as *const u8, boot_info.ramdisk_len as usize) }
    });
    let files = initrd::unpack(ramdisk.unwrap_or_default());
    log::info!("initrd: {files} entries in ramfs");
    vfs::mount_boot_filesystems();

    // The disks, and the swap device among them (docs/src/pressure.md).
    block::init();
    swap::init();
    pageout::start();

    if cmdline.selftest {
        selftest::run();
    }
    if cmdline.diskbench {
        diskbench::run();
    }
    proc::spawn_init(&cmdline);
    // Boot time against RAM size (docs/src/performance.md): from kernel
    // entry to the switch into init's first instruction.
    log::info!(
        "boot: {} cycles from kmain to init",
        arch::rdtsc() - entered
    );
    proc::run();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    logger::print_force(format_args!("[kernel PANIC] {info}\n"));
    qemu::exit(qemu::STATUS_PANIC);
}
