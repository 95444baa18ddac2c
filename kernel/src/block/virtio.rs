//! virtio-blk over PCI, through the `virtio-drivers` crate.
//!
//! A virtio device and its driver share *virtqueues* in guest memory: a
//! table of descriptors (address, length, direction of a buffer), an
//! *available* ring where the driver lists the chains it has queued, and a
//! *used* ring where the device lists those it has finished. One disk
//! request is a chain of three buffers: a header (read or write, first
//! sector), the data, and a status byte the device fills in. The driver
//! queues the chain, writes the queue's number to a notify register, and
//! the device raises an interrupt once the chain is on the used ring. The
//! crate keeps the rings; this module gives it memory (`KernelHal`) and
//! keeps several requests in flight at once.
//!
//! The crate's `Hal` needs DMA memory that is physically contiguous (the
//! device reads physical addresses): frames from the buddy allocator, seen
//! through the physical map. Buffers it is handed elsewhere (the chains of
//! indirect descriptors it allocates on the kernel heap) are copied
//! through *bounce frames*, as Linux's swiotlb does for devices that cannot
//! reach a buffer.

use crate::mmio;
use crate::pci::{self, PortCam};
use crate::phys::{self, Frame};
use alloc::vec::Vec;
use core::ptr::NonNull;
use spin::Mutex;
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::PciRoot;
use virtio_drivers::{BufferDirection, Hal};
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

const PAGE: usize = 4096;
/// The crate's queue has 16 descriptors: at most 16 requests in flight.
const IN_FLIGHT: usize = 16;
/// Room per request in the request page: a BlkReq (16 bytes), a BlkResp.
const REQUEST_BYTES: usize = 32;

/// Memory for the crate: see the module comment.
pub struct KernelHal;

/// Bounce frames kept for reuse. The pool is full whenever no request is
/// in flight, so it holds as many frames when init exits as when it
/// started (the kernel's leak check counts them).
const BOUNCE_POOL: usize = 16;
static BOUNCE: Mutex<Vec<PhysFrame>> = Mutex::new(Vec::new());

/// Fill the bounce pool (at boot, before any request).
pub fn init() {
    let mut pool = BOUNCE.lock();
    while pool.len() < BOUNCE_POOL {
        match Frame::alloc_zeroed() {
            Some(frame) => pool.push(frame.into_raw()),
            None => break,
        }
    }
}

fn order_of(bytes: usize) -> usize {
    bytes.div_ceil(PAGE).next_power_of_two().trailing_zeros() as usize
}

/// A buffer's physical address when it lies whole in the physical map.
fn in_physical_map(buffer: NonNull<[u8]>) -> Option<u64> {
    let start = VirtAddr::from_ptr(buffer.as_ptr() as *const u8);
    let last = start + (buffer.len().max(1) as u64 - 1);
    phys::phys_of(last)?;
    phys::phys_of(start).map(PhysAddr::as_u64)
}

// SAFETY: dma_alloc hands out zeroed, page-aligned blocks of frames that
// nothing else owns until dma_dealloc; mmio_phys_to_virt maps device
// memory where no RAM is; share/unshare give the device either the
// buffer's own frames or a bounce frame that only this request uses.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (u64, NonNull<u8>) {
        match Frame::alloc_block_zeroed(order_of(pages * PAGE)) {
            Some(block) => {
                let ptr = NonNull::new(block.as_mut_ptr()).expect("phys: null physical map");
                (block.into_raw().start_address().as_u64(), ptr)
            }
            // The crate reads a zero address as failure.
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: u64, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // SAFETY: the crate gives back what dma_alloc handed out: the
        // block's head reference, whose drop frees the whole block.
        drop(unsafe { Frame::from_raw(PhysFrame::containing_address(PhysAddr::new(paddr))) });
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: u64, size: usize) -> NonNull<u8> {
        let virt = mmio::map(PhysAddr::new(paddr), size).expect("virtio: no room to map a BAR");
        NonNull::new(virt.as_mut_ptr()).expect("mmio: null mapping")
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> u64 {
        if let Some(paddr) = in_physical_map(buffer) {
            return paddr;
        }
        let len = buffer.len();
        let pooled = if len <= PAGE {
            BOUNCE.lock().pop()
        } else {
            None
        };
        let frame = pooled
            .or_else(|| Frame::alloc_block_zeroed(order_of(len)).map(Frame::into_raw))
            .expect("virtio: no frame to bounce a buffer through");
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller promises `buffer` is valid and not used
            // meanwhile; the bounce block is ours and at least `len` long.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    buffer.as_ptr() as *const u8,
                    phys::to_virt(frame.start_address()).as_mut_ptr(),
                    len,
                )
            };
        }
        frame.start_address().as_u64()
    }

    unsafe fn unshare(paddr: u64, buffer: NonNull<[u8]>, direction: BufferDirection) {
        if in_physical_map(buffer).is_some() {
            return;
        }
        let frame = PhysFrame::containing_address(PhysAddr::new(paddr));
        let len = buffer.len();
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: as in `share`; the device is done with the bounce block.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    phys::to_virt(frame.start_address()).as_ptr::<u8>(),
                    buffer.as_ptr() as *mut u8,
                    len,
                )
            };
        }
        let mut pool = BOUNCE.lock();
        if len <= PAGE && pool.len() < BOUNCE_POOL {
            pool.push(frame);
        } else {
            drop(pool);
            // SAFETY: `share` took this block's reference for the request.
            drop(unsafe { Frame::from_raw(frame) });
        }
    }
}

/// Whether a request reads the disk into memory or writes memory to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
}

/// A request the device has, and what it was for.
struct InFlight {
    token: u16,
    slot: usize,
    op: Op,
    data: NonNull<u8>,
    len: usize,
    /// The caller's index of the request.
    index: usize,
}

/// One virtio-blk disk.
pub struct VirtioDisk {
    blk: VirtIOBlk<KernelHal, PciTransport>,
    pub irq: Option<u8>,
    /// The request headers and status bytes, in RAM the device can reach.
    requests: Frame,
    free_slots: Vec<usize>,
    in_flight: Vec<InFlight>,
}

// SAFETY: the raw data pointers in `in_flight` point into frames a caller
// lent for the duration of one transfer, which the block layer's lock
// serialises; nothing else is thread-bound.
unsafe impl Send for VirtioDisk {}

impl VirtioDisk {
    /// Set up the virtio-blk device `device` (found by pci::scan). None
    /// with a log line when it does not come up.
    pub fn new(root: &mut PciRoot<PortCam>, device: &pci::Device) -> Option<VirtioDisk> {
        pci::enable(root, device.function);
        let transport = PciTransport::new::<KernelHal, _>(root, device.function)
            .map_err(|e| log::warn!("virtio-blk {}: {e}", device.function))
            .ok()?;
        let blk = VirtIOBlk::<KernelHal, _>::new(transport)
            .map_err(|e| log::warn!("virtio-blk {}: {e}", device.function))
            .ok()?;
        let requests = Frame::alloc_zeroed()?;
        Some(VirtioDisk {
            blk,
            irq: device.irq,
            requests,
            free_slots: (0..IN_FLIGHT).rev().collect(),
            in_flight: Vec::with_capacity(IN_FLIGHT),
        })
    }

    /// Size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.blk.capacity()
    }

    pub fn readonly(&self) -> bool {
        self.blk.readonly()
    }

    /// Queue one request at `sector` for the `len` bytes at `data`
    /// (physically contiguous RAM: a frame, or a block of them; `len` a
    /// multiple of the page). Ok(false) when the queue is full (complete
    /// some first). The bytes must stay lent to the disk until `poll`
    /// reports `index` done.
    pub fn submit(
        &mut self,
        op: Op,
        sector: u64,
        data: NonNull<u8>,
        len: usize,
        index: usize,
    ) -> Result<bool, ()> {
        let Some(slot) = self.free_slots.pop() else {
            return Ok(false);
        };
        let (req, resp) = self.slot(slot, true);
        let ptr = data;
        // SAFETY: the bytes are lent until completion (the block layer
        // waits for every request it submits); `req` and `resp` belong to
        // this slot, which is not reused before completion either.
        let submitted = unsafe {
            let buf = core::slice::from_raw_parts_mut(ptr.as_ptr(), len);
            match op {
                Op::Read => self.blk.read_blocks_nb(sector as usize, req, buf, resp),
                Op::Write => self.blk.write_blocks_nb(sector as usize, req, buf, resp),
            }
        };
        match submitted {
            Ok(token) => {
                self.in_flight.push(InFlight {
                    token,
                    slot,
                    op,
                    data: ptr,
                    len,
                    index,
                });
                Ok(true)
            }
            Err(virtio_drivers::Error::QueueFull) => {
                self.free_slots.push(slot);
                Ok(false)
            }
            Err(e) => {
                self.free_slots.push(slot);
                log::error!("virtio-blk: submit: {e}");
                Err(())
            }
        }
    }

    /// A finished request, if the device has one: the caller's index and
    /// whether the device did it.
    pub fn poll(&mut self) -> Option<(usize, bool)> {
        let token = self.blk.peek_used()?;
        let at = self
            .in_flight
            .iter()
            .position(|r| r.token == token)
            .expect("virtio::poll: the device finished a request we never made");
        let done = self.in_flight.swap_remove(at);
        let (req, resp) = self.slot(done.slot, false);
        // SAFETY: the same buffers as `submit` passed for this token.
        let result = unsafe {
            let buf = core::slice::from_raw_parts_mut(done.data.as_ptr(), done.len);
            match done.op {
                Op::Read => self.blk.complete_read_blocks(token, req, buf, resp),
                Op::Write => self.blk.complete_write_blocks(token, req, buf, resp),
            }
        };
        self.free_slots.push(done.slot);
        if let Err(e) = result {
            log::error!("virtio-blk: {:?} request failed: {e}", done.op);
        }
        Some((done.index, result.is_ok()))
    }

    /// Read the device's interrupt status, which lowers its interrupt line.
    pub fn acknowledge(&mut self) {
        self.blk.ack_interrupt();
    }

    /// The header and status of request slot `slot`, in the request page;
    /// with `fresh`, reset for a new request first.
    fn slot(&self, slot: usize, fresh: bool) -> (&'static mut BlkReq, &'static mut BlkResp) {
        assert!(slot < IN_FLIGHT, "virtio::slot: {slot} out of range");
        let base = self.requests.as_mut_ptr();
        // SAFETY: the request page is this disk's alone, and lives as long
        // as the disk (disks are never removed); slot `slot` serves one
        // request at a time, and `submit` and `poll` hold these references
        // only for the crate call that needs them. 32-byte slots are
        // aligned for both types, and a slot is written whole (`fresh`,
        // in `submit`) before it is first read.
        unsafe {
            let req = base.add(slot * REQUEST_BYTES).cast::<BlkReq>();
            let resp = base.add(slot * REQUEST_BYTES + 16).cast::<BlkResp>();
            if fresh {
                req.write(BlkReq::default());
                resp.write(BlkResp::default());
            }
            (&mut *req, &mut *resp)
        }
    }
}
