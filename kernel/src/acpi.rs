//! The ACPI tables, read with the `acpi` crate: which CPUs the machine has.
//!
//! The bootloader hands over the RSDP's physical address; the crate walks
//! RSDT/XSDT to the MADT ("APIC" table), whose entries list each CPU's
//! local APIC id and whether it is usable. The tables live in RAM the
//! physical map covers, so "mapping" a table is an offset.

use crate::phys;
use acpi::platform::ProcessorState;
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use alloc::vec::Vec;
use core::ptr::NonNull;
use x86_64::PhysAddr;

#[derive(Clone, Copy)]
struct PhysicalMap;

impl AcpiHandler for PhysicalMap {
    unsafe fn map_physical_region<T>(
        &self,
        address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let virt = phys::to_virt(PhysAddr::new(address as u64));
        let ptr = NonNull::new(virt.as_mut_ptr::<T>()).expect("acpi: the physical map is not at 0");
        // SAFETY: the physical map covers the table (it is in RAM, or below
        // 4 GiB, which the bootloader always maps) for as long as we run.
        unsafe { PhysicalMapping::new(address, ptr, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// The CPUs the MADT lists: the boot CPU's APIC id, then the others that
/// can be started, in the table's order (the order to start them in).
pub struct Processors {
    pub boot: u32,
    pub others: Vec<u32>,
}

/// Read the MADT through the RSDP at `rsdp` (a physical address).
pub fn processors(rsdp: u64) -> Result<Processors, acpi::AcpiError> {
    // SAFETY: the bootloader found the RSDP at this address.
    let tables = unsafe { AcpiTables::from_rsdp(PhysicalMap, rsdp as usize) }?;
    let info = tables.platform_info()?;
    let cpus = info
        .processor_info
        .ok_or(acpi::AcpiError::TableMissing(acpi::sdt::Signature::MADT))?;
    Ok(Processors {
        boot: cpus.boot_processor.local_apic_id,
        others: cpus
            .application_processors
            .iter()
            .filter(|p| p.state != ProcessorState::Disabled)
            .map(|p| p.local_apic_id)
            .collect(),
    })
}
