//! The PCI bus: finding devices and setting them up to work.
//!
//! Every PCI function has a 256-byte configuration space: who made it
//! (vendor and device id), what it is (class), where its registers are
//! (the BARs, which the firmware has assigned addresses), which interrupt
//! line it raises (register 0x3c, filled in by the firmware). On a PC the
//! space is read through *configuration mechanism #1*: write the address
//! of a register (enable bit, bus, device, function, offset) to I/O port
//! 0xcf8, then move its 32 bits through port 0xcfc. QEMU's default machine
//! (i440fx) puts every device on bus 0.
//!
//! The walk over a bus and the parsing of BARs and capabilities are the
//! `virtio-drivers` crate's (`PciRoot`); this module supplies the port
//! access it needs and the devices it found.

use alloc::vec::Vec;
use virtio_drivers::transport::pci::bus::{
    Command, ConfigurationAccess, DeviceFunction, DeviceFunctionInfo, PciRoot,
};
use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;
/// Interrupt line (byte 0) and pin (byte 1): 0 pin means no INTx.
const INTERRUPT_REGISTER: u8 = 0x3c;

/// Configuration mechanism #1 over ports 0xcf8/0xcfc. The two port
/// accesses of one register are not interleaved with another's because
/// the kernel runs them with interrupts masked, on one CPU.
pub struct PortCam;

impl PortCam {
    fn select(device: DeviceFunction, register: u8) {
        let address = 1 << 31
            | u32::from(device.bus) << 16
            | u32::from(device.device) << 11
            | u32::from(device.function) << 8
            | u32::from(register & 0xfc);
        // SAFETY: the address port only selects which register the data port moves.
        unsafe { Port::<u32>::new(CONFIG_ADDRESS).write(address) };
    }
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, device: DeviceFunction, register: u8) -> u32 {
        Self::select(device, register);
        // SAFETY: reading a configuration register has no side effect.
        unsafe { Port::<u32>::new(CONFIG_DATA).read() }
    }

    fn write_word(&mut self, device: DeviceFunction, register: u8, data: u32) {
        Self::select(device, register);
        // SAFETY: the callers (PciRoot, `enable`) write registers whose meaning they know.
        unsafe { Port::<u32>::new(CONFIG_DATA).write(data) };
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}

/// A function found on the bus.
pub struct Device {
    pub function: DeviceFunction,
    pub info: DeviceFunctionInfo,
    /// The PIC line its INTx is routed to, when it has one.
    pub irq: Option<u8>,
}

/// The root of the bus, for drivers that set devices up.
pub fn root() -> PciRoot<PortCam> {
    PciRoot::new(PortCam)
}

/// Every function on bus 0, logged as it is found.
pub fn scan() -> Vec<Device> {
    let root = root();
    root.enumerate_bus(0)
        .map(|(function, info)| {
            let interrupt = PortCam.read_word(function, INTERRUPT_REGISTER);
            let (line, pin) = (interrupt as u8, (interrupt >> 8) as u8);
            // Line 0xff: the firmware routed nothing.
            let irq = (pin != 0 && line < 16).then_some(line);
            log::info!(
                "pci {function} {:04x}:{:04x} class {:02x}.{:02x}{}",
                info.vendor_id,
                info.device_id,
                info.class,
                info.subclass,
                irq.map(|l| alloc::format!(" irq {l}")).unwrap_or_default()
            );
            Device {
                function,
                info,
                irq,
            }
        })
        .collect()
}

/// Let `device` decode its memory BARs and master the bus (DMA), with its
/// INTx enabled: what a driver needs before it talks to it.
pub fn enable(root: &mut PciRoot<PortCam>, device: DeviceFunction) {
    let (_, command) = root.get_status_command(device);
    let command =
        (command | Command::MEMORY_SPACE | Command::BUS_MASTER) - Command::INTERRUPT_DISABLE;
    root.set_command(device, command);
}
