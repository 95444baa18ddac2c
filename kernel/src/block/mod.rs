//! Block devices: the disks, read and written a page at a time.
//!
//! At boot `init` finds every virtio-blk disk on the PCI bus and names them
//! as Linux does, vda, vdb, ... in bus order. A transfer moves whole 4 KiB
//! pages between frames and consecutive page indexes of a disk; all of its
//! pages are in flight at once, as far as the disk's queue allows, and the
//! call returns when the last is done. Each disk counts its requests,
//! bytes, and the time callers spent waiting.
//!
//! Waiting sleeps the CPU until the disk's interrupt: `sti; hlt` (see
//! `arch::idle`), after which the waiter looks at the used ring again. The
//! kernel is not preemptible, so the waiter keeps the CPU; the timer only
//! ticks meanwhile (it switches processes only when it interrupts user
//! mode). Interrupt handling is split in two halves so that the handler
//! never takes the disks' lock, which the sleeping waiter holds: the
//! handler masks the line at the PIC and notes it (`interrupt`); the
//! waiter, once awake, reads every disk's interrupt status on that line
//! (which lowers it) and unmasks it. When nobody waits, the handler does
//! both itself. The disks' lines reach the boot CPU only, so a waiter on
//! another CPU is woken by the handler with an IPI (`WAITER`): it would
//! otherwise sleep until its own next tick, 10 ms a transfer. The
//! page-out daemon waits here holding no other lock, the kernel lock
//! included (kernel/src/reclaim.rs), so a CPU that waits for the disks
//! meanwhile lets interrupts in (`lock_disks`).

pub mod virtio;

use crate::arch::{self, timer};
use crate::arch::{ipi, percpu};
use crate::pci;
use crate::phys::Frame;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use spin::Mutex;
pub use virtio::Op;

const SECTOR: u64 = 512;
const SECTORS_PER_PAGE: u64 = 4096 / SECTOR;

/// Why a transfer did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError {
    /// No such disk.
    NoDisk,
    /// A page past the end of the disk.
    PastEnd,
    /// A write to a read-only disk.
    ReadOnly,
    /// The device reported an error (the data may be partly moved).
    Device,
}

/// What a disk has done since boot.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub reads: u64,
    pub writes: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// TSC cycles callers spent waiting for this disk.
    pub wait_cycles: u64,
    /// The same, in nanoseconds of the kernel's clock.
    pub wait_nanos: u64,
}

struct Disk {
    name: String,
    pages: u64,
    driver: virtio::VirtioDisk,
    stats: Stats,
    /// Physically contiguous room for one run of `CLUSTER` pages: see
    /// `transfer`. None if the block could not be had at boot (then every
    /// page is a request of its own).
    cluster: Option<Frame>,
}

/// Pages one request moves at most: a run of consecutive disk pages goes
/// as one request through the disk's cluster block (128 KiB).
const CLUSTER_ORDER: usize = 5;
const CLUSTER: usize = 1 << CLUSTER_ORDER;

static DISKS: Mutex<Vec<Disk>> = Mutex::new(Vec::new());
/// IRQ lines (a bit per line) some disk raises, set once at boot.
static LINES: AtomicU16 = AtomicU16::new(0);
/// IRQ lines whose interrupt the handler noted and masked.
static PENDING: AtomicU16 = AtomicU16::new(0);
/// The CPU (its index + 1) whose transfer holds the disks and may sleep
/// for their interrupt; 0 when none.
static WAITER: AtomicUsize = AtomicUsize::new(0);

/// The disks. Their holder may be a CPU that waits in a transfer with no
/// other lock held (the page-out daemon lets the kernel lock go for its
/// writes, kernel/src/reclaim.rs), for an interrupt that only the boot
/// CPU receives: so the wait lets interrupts in between tries (and
/// answers cross-calls), as the kernel lock's does. A boot CPU spinning
/// here with interrupts masked would never take the interrupt that ends
/// the holder's transfer.
fn lock_disks() -> spin::MutexGuard<'static, Vec<Disk>> {
    let open = x86_64::instructions::interrupts::are_enabled();
    loop {
        if let Some(disks) = DISKS.try_lock() {
            return disks;
        }
        ipi::poll();
        if !open {
            x86_64::instructions::interrupts::enable();
        }
        core::hint::spin_loop();
        if !open {
            x86_64::instructions::interrupts::disable();
        }
    }
}

/// Find and set up the disks (at boot, before init).
pub fn init() {
    virtio::init();
    let mut root = pci::root();
    let mut disks = lock_disks();
    for device in pci::scan() {
        let is_blk = virtio_drivers::transport::pci::virtio_device_type(&device.info)
            == Some(virtio_drivers::transport::DeviceType::Block);
        if !is_blk {
            continue;
        }
        let Some(driver) = virtio::VirtioDisk::new(&mut root, &device) else {
            continue;
        };
        let name = alloc::format!("vd{}", char::from(b'a' + disks.len() as u8));
        let pages = driver.sectors() / SECTORS_PER_PAGE;
        log::info!(
            "block: {name}: {} KiB, virtio-blk at pci {}{}",
            pages * 4,
            device.function,
            if driver.readonly() { ", read-only" } else { "" }
        );
        if let Some(line) = driver.irq {
            LINES.fetch_or(1 << line, Ordering::Relaxed);
            timer::set_irq_masked(line, false);
        }
        disks.push(Disk {
            name,
            pages,
            driver,
            stats: Stats::default(),
            cluster: Frame::alloc_block_zeroed(CLUSTER_ORDER),
        });
        if disks.len() == 26 {
            break;
        }
    }
}

/// How many disks there are; they are numbered 0..count.
pub fn count() -> usize {
    lock_disks().len()
}

/// A disk's name (vda, ...) and size in pages.
pub fn describe(disk: usize) -> Option<(String, u64)> {
    lock_disks().get(disk).map(|d| (d.name.clone(), d.pages))
}

pub fn stats(disk: usize) -> Option<Stats> {
    lock_disks().get(disk).map(|d| d.stats)
}

/// Read pages `first..first + frames.len()` of `disk` into `frames`.
/// Returns the TSC cycles spent waiting for the disk.
pub fn read_pages(disk: usize, first: u64, frames: &[&Frame]) -> Result<u64, IoError> {
    transfer(disk, Op::Read, first, frames)
}

/// Write `frames` to pages `first..first + frames.len()` of `disk`.
/// Returns the TSC cycles spent waiting for the disk.
pub fn write_pages(disk: usize, first: u64, frames: &[&Frame]) -> Result<u64, IoError> {
    transfer(disk, Op::Write, first, frames)
}

/// Move `frames` to or from disk pages `first..`. A single page is one
/// request on its own frame. A run of several goes `CLUSTER` pages per
/// request through the disk's cluster block, copied in before a write and
/// out after a read: each request costs the device (under QEMU, the vCPU's
/// exit to the emulator, the host I/O, the completion interrupt) far more
/// than copying 4 KiB, and the pages of a run are consecutive on disk but
/// scattered in RAM, while a request names one physically contiguous
/// buffer (the crate's `VirtIOBlk` has no scatter-gather). Swap-out's runs
/// and swap-in's read-ahead are such runs (kernel/src/swap.rs).
fn transfer(disk: usize, op: Op, first: u64, frames: &[&Frame]) -> Result<u64, IoError> {
    let mut disks = lock_disks();
    let d = disks.get_mut(disk).ok_or(IoError::NoDisk)?;
    let end = first
        .checked_add(frames.len() as u64)
        .ok_or(IoError::PastEnd)?;
    if end > d.pages {
        return Err(IoError::PastEnd);
    }
    if op == Op::Write && d.driver.readonly() {
        return Err(IoError::ReadOnly);
    }
    let started = (arch::rdtsc(), crate::time::monotonic());
    // Before the first request: its interrupt must find whom to wake.
    WAITER.store(percpu::this().index() + 1, Ordering::SeqCst);
    let mut requests = 0;
    let mut failed = false;
    let cluster = disks[disk].cluster.as_ref().map(|c| c.as_mut_ptr());
    match cluster {
        Some(buffer) if frames.len() > 1 => {
            for (run, pages) in frames.chunks(CLUSTER).enumerate() {
                if op == Op::Write {
                    for (i, frame) in pages.iter().enumerate() {
                        // SAFETY: the cluster block is this disk's, used by
                        // one transfer at a time (we hold the disks), and
                        // CLUSTER pages long; the frame is the caller's.
                        unsafe { copy_page(frame.as_mut_ptr(), buffer.add(i * PAGE)) };
                    }
                }
                let sector = (first + (run * CLUSTER) as u64) * SECTORS_PER_PAGE;
                let one = [(sector, buffer, pages.len() * PAGE)];
                let (done, bad) = run_requests(&mut disks, disk, op, &one);
                requests += done;
                failed |= bad;
                if failed {
                    break;
                }
                if op == Op::Read {
                    for (i, frame) in pages.iter().enumerate() {
                        // SAFETY: as above; the device is done with the block.
                        unsafe { copy_page(buffer.add(i * PAGE), frame.as_mut_ptr()) };
                    }
                }
            }
        }
        _ => {
            let each: Vec<_> = frames
                .iter()
                .enumerate()
                .map(|(i, f)| ((first + i as u64) * SECTORS_PER_PAGE, f.as_mut_ptr(), PAGE))
                .collect();
            (requests, failed) = run_requests(&mut disks, disk, op, &each);
        }
    }
    WAITER.store(0, Ordering::SeqCst);
    let d = &mut disks[disk];
    let (cycles, nanos) = (
        arch::rdtsc() - started.0,
        crate::time::monotonic() - started.1,
    );
    d.stats.wait_cycles += cycles;
    d.stats.wait_nanos += nanos;
    let bytes = if failed {
        0
    } else {
        frames.len() as u64 * 4096
    };
    match op {
        Op::Read => {
            d.stats.reads += requests;
            d.stats.bytes_read += bytes;
        }
        Op::Write => {
            d.stats.writes += requests;
            d.stats.bytes_written += bytes;
        }
    }
    if failed {
        Err(IoError::Device)
    } else {
        Ok(cycles)
    }
}

const PAGE: usize = 4096;

/// Copy one page.
///
/// # Safety
/// `from` and `to` are page-sized, valid, and do not overlap.
unsafe fn copy_page(from: *const u8, to: *mut u8) {
    // SAFETY: the caller's.
    unsafe { core::ptr::copy_nonoverlapping(from, to, PAGE) };
}

/// Queue `requests` (sector, physically contiguous buffer, length) on
/// `disk`, as many at once as the device takes, and wait for them all.
/// Returns how many completed and whether one failed (then no more are
/// queued).
fn run_requests(
    disks: &mut [Disk],
    disk: usize,
    op: Op,
    requests: &[(u64, *mut u8, usize)],
) -> (u64, bool) {
    let (mut submitted, mut done, mut failed) = (0, 0, false);
    while done < submitted || (submitted < requests.len() && !failed) {
        // Queue what the disk will take, unless a request already failed.
        while submitted < requests.len() && !failed {
            let (sector, buffer, len) = requests[submitted];
            let data = core::ptr::NonNull::new(buffer).expect("block: null buffer");
            match disks[disk].driver.submit(op, sector, data, len, submitted) {
                Ok(true) => submitted += 1,
                Ok(false) => break,
                Err(()) => failed = true,
            }
        }
        acknowledge_pending(disks);
        match disks[disk].driver.poll() {
            Some((_, ok)) => {
                done += 1;
                failed |= !ok;
            }
            // Any interrupt from here on ends the sleep: the line is open.
            None if done < submitted && disks[disk].driver.irq.is_some() => arch::idle(),
            // A disk without an interrupt line is polled.
            None => core::hint::spin_loop(),
        }
    }
    (done as u64, failed)
}

/// The waiter's half of an interrupt: lower the lines the handler noted by
/// reading each of their disks' interrupt status, then unmask them.
fn acknowledge_pending(disks: &mut [Disk]) {
    let lines = PENDING.swap(0, Ordering::Acquire);
    if lines != 0 {
        acknowledge(disks, lines);
    }
}

fn acknowledge(disks: &mut [Disk], lines: u16) {
    for d in disks.iter_mut() {
        if d.driver.irq.is_some_and(|l| lines & (1 << l) != 0) {
            d.driver.acknowledge();
        }
    }
    for line in (0..16).filter(|l| lines & (1 << l) != 0) {
        timer::set_irq_masked(line, false);
    }
}

/// The handler's half, for IRQ `line` (the trap path calls it for every
/// PIC line but the timer). Returns false for a line no disk uses (a
/// spurious IRQ 7 or 15, which needs no EOI).
pub fn interrupt(line: u8) -> bool {
    if LINES.load(Ordering::Relaxed) & (1 << line) == 0 {
        return false;
    }
    match DISKS.try_lock() {
        Some(mut disks) => acknowledge(&mut disks, 1 << line),
        // A waiter holds the disks and sleeps: leave the device to it,
        // and wake it if it sleeps on another CPU.
        None => {
            timer::set_irq_masked(line, true);
            PENDING.fetch_or(1 << line, Ordering::Release);
            let (waiter, me) = (WAITER.load(Ordering::SeqCst), percpu::this().index());
            if let Some(cpu) = percpu::online().find(|c| c.index() + 1 == waiter && c.index() != me)
            {
                ipi::send(cpu, ipi::COUNT_VECTOR);
            }
        }
    }
    timer::end_of_interrupt(32 + line);
    true
}
