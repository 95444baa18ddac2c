//! The SMP self-tests (`--kernel-arg selftest`, boot/tests/smp.rs): every
//! CPU the MADT listed came up, ticks, answers an IPI, and runs a
//! cross-call (and only its targets do); cross-calls started by several
//! CPUs at once all finish.

use crate::arch::ipi::{self, CpuSet, Request};
use crate::arch::percpu::{self, PerCpu};
use crate::arch::smp;
use crate::phys::Frame;
use crate::pmap::{self, Pmap};
use crate::time;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use x86_64::VirtAddr;
use x86_64::structures::paging::{Page, PageTableFlags as Flags, PhysFrame};

type Test = (&'static str, fn() -> Result<(), &'static str>);

pub const TESTS: &[Test] = &[
    ("smp_every_cpu_ticks", every_cpu_ticks),
    ("smp_every_cpu_answers_an_ipi", every_cpu_answers_an_ipi),
    ("smp_cross_call_runs_everywhere", cross_call_runs_everywhere),
    ("smp_concurrent_cross_calls", concurrent_cross_calls),
    (
        "smp_flush_range_reaches_other_tlbs",
        flush_range_reaches_other_tlbs,
    ),
];

/// Wait (interrupts on, so the boot CPU's own tick runs) until `done`,
/// for at most `seconds`.
fn wait_for(seconds: u64, done: impl Fn() -> bool) -> bool {
    let deadline = time::monotonic() + seconds * time::NANOS_PER_SEC;
    while !done() {
        if time::monotonic() > deadline {
            return false;
        }
        x86_64::instructions::interrupts::enable();
        core::hint::spin_loop();
        x86_64::instructions::interrupts::disable();
    }
    true
}

fn others() -> impl Iterator<Item = &'static PerCpu> {
    percpu::online().skip(1)
}

fn every_cpu_ticks() -> Result<(), &'static str> {
    for cpu in percpu::online() {
        let before = cpu.ticks.load(Ordering::Relaxed);
        if !wait_for(5, || cpu.ticks.load(Ordering::Relaxed) >= before + 2) {
            return Err("a CPU's APIC timer does not tick");
        }
    }
    Ok(())
}

fn every_cpu_answers_an_ipi() -> Result<(), &'static str> {
    for cpu in others() {
        let before = cpu.ipis.load(Ordering::Relaxed);
        ipi::send(cpu, ipi::COUNT_VECTOR);
        if !wait_for(5, || cpu.ipis.load(Ordering::Relaxed) > before) {
            return Err("a CPU did not take an IPI sent to it");
        }
    }
    let before: u64 = others().map(|c| c.ipis.load(Ordering::Relaxed)).sum();
    let count = others().count() as u64;
    ipi::send_all_but_self(ipi::COUNT_VECTOR);
    let all_took = || {
        others()
            .map(|c| c.ipis.load(Ordering::Relaxed))
            .sum::<u64>()
            >= before + count
    };
    if !wait_for(5, all_took) {
        return Err("the all-but-self IPI missed a CPU");
    }
    Ok(())
}

/// Bit i: CPU i ran the function.
static RAN_ON: AtomicU64 = AtomicU64::new(0);

fn record_cpu() {
    RAN_ON.fetch_or(1 << percpu::this().index(), Ordering::Relaxed);
}

fn cross_call_runs_everywhere() -> Result<(), &'static str> {
    let all = CpuSet::online();
    RAN_ON.store(0, Ordering::Relaxed);
    // call returns only once every target has run it: no waiting here.
    ipi::call(all, Request::Run(record_cpu));
    let expected = (1u64 << percpu::online_count()) - 1;
    if RAN_ON.load(Ordering::Relaxed) != expected {
        return Err("call returned before every target ran the function");
    }
    // Only the targets run it: here the last CPU alone.
    let last = percpu::online_count() - 1;
    let mut one = CpuSet::default();
    one.insert(last);
    RAN_ON.store(0, Ordering::Relaxed);
    ipi::call(one, Request::Run(record_cpu));
    if RAN_ON.load(Ordering::Relaxed) != 1 << last {
        return Err("a call to one CPU ran elsewhere too");
    }
    let answered = ipi::ANSWERED.load(Ordering::Relaxed);
    ipi::call(
        CpuSet::others(),
        Request::FlushRange {
            start: 0x40_0000,
            end: 0x40_8000,
        },
    );
    ipi::call(CpuSet::others(), Request::FlushAll);
    let remote = CpuSet::others().len() as u64;
    if ipi::ANSWERED.load(Ordering::Relaxed) != answered + 2 * remote {
        return Err("a flush was not answered by every other CPU");
    }
    Ok(())
}

const ROUNDS: usize = 50;
static BUSY_INITIATORS: AtomicUsize = AtomicUsize::new(0);
static COUNTED: AtomicU64 = AtomicU64::new(0);

fn count() {
    COUNTED.fetch_add(1, Ordering::Relaxed);
}

/// Every CPU calls every other CPU ROUNDS times, all at once.
fn call_everyone() {
    for _ in 0..ROUNDS {
        ipi::call(CpuSet::others(), Request::Run(count));
    }
    BUSY_INITIATORS.fetch_sub(1, Ordering::AcqRel);
}

fn concurrent_cross_calls() -> Result<(), &'static str> {
    let cpus = percpu::online_count();
    COUNTED.store(0, Ordering::Relaxed);
    BUSY_INITIATORS.store(cpus, Ordering::Release);
    for cpu in others() {
        if !smp::run_when_idle(cpu, call_everyone) {
            return Err("a CPU still had idle work queued");
        }
    }
    call_everyone();
    // Generous: with four vCPU threads on a loaded two-core host, each call
    // waits for its targets' threads to get a core.
    if !wait_for(20, || BUSY_INITIATORS.load(Ordering::Acquire) == 0) {
        return Err("cross-calls from several CPUs at once did not finish (deadlock?)");
    }
    let expected = (cpus * ROUNDS * (cpus - 1)) as u64;
    if COUNTED.load(Ordering::Relaxed) != expected {
        return Err("a cross-call ran the wrong number of times");
    }
    Ok(())
}

/// The address space another CPU borrows in the flush test, and what it read.
static BORROWED: AtomicPtr<Pmap> = AtomicPtr::new(core::ptr::null_mut());
static READ: AtomicU64 = AtomicU64::new(0);
/// A lower-half address, mapped without USER so the kernel reads it
/// directly (SMAP guards only user pages).
const TEST_VA: u64 = 0x5000_0000;

fn borrow_space() {
    // SAFETY: the test keeps the Pmap alive until this CPU gave it back.
    unsafe { (*BORROWED.load(Ordering::Acquire)).activate() };
}

fn read_test_page() {
    // SAFETY: TEST_VA is mapped, readable, in the borrowed space this CPU runs on.
    READ.store(
        unsafe { (TEST_VA as *const u64).read_volatile() },
        Ordering::Release,
    );
}

fn return_space() {
    pmap::activate_kernel();
}

fn filled(pattern: u64) -> Result<Frame, &'static str> {
    let frame = Frame::alloc_zeroed().ok_or("out of memory")?;
    frame.write(0, &pattern.to_le_bytes());
    Ok(frame)
}

/// A CPU caches a translation; this CPU points the page elsewhere; after a
/// FlushRange cross-call the other CPU reads the new page. Until then it
/// may still read the old frame through its TLB, which is why a shootdown
/// must finish before that frame is reused (DESIGN §6): the old frame is
/// freed only after the flush. `unmap_range` itself shoots the page down
/// on the CPUs that have the space loaded, so the other CPU must already
/// read the new page before the explicit FlushRange.
fn flush_range_reaches_other_tlbs() -> Result<(), &'static str> {
    use vm::pmap::Pmap as _;
    let Some(other) = others().next().map(|c| c.index()) else {
        return Ok(());
    };
    let mut target = CpuSet::default();
    target.insert(other);
    let (old, new) = (0xaaaa_aaaa_aaaa_aaaa, 0xbbbb_bbbb_bbbb_bbbb);
    let mut space = Pmap::new().ok_or("out of memory")?;
    let page = Page::containing_address(VirtAddr::new(TEST_VA));
    space
        .enter(page, filled(old)?, Flags::empty())
        .map_err(|_| "enter failed")?;
    BORROWED.store(&mut space, Ordering::Release);
    ipi::call(target, Request::Run(borrow_space));
    ipi::call(target, Request::Run(read_test_page));
    let first = READ.load(Ordering::Acquire);

    let mut released = None;
    space.unmap_range(TEST_VA, TEST_VA + 4096, &mut |_, m| released = Some(m.pfn));
    let old_frame = released.ok_or("unmap found nothing")?;
    space
        .enter(page, filled(new)?, Flags::empty())
        .map_err(|_| "enter failed")?;
    ipi::call(target, Request::Run(read_test_page));
    let stale = READ.load(Ordering::Acquire) == old;
    ipi::call(
        target,
        Request::FlushRange {
            start: TEST_VA,
            end: TEST_VA + 4096,
        },
    );
    ipi::call(target, Request::Run(read_test_page));
    let after = READ.load(Ordering::Acquire);
    ipi::call(target, Request::Run(return_space));
    BORROWED.store(core::ptr::null_mut(), Ordering::Release);
    // SAFETY: unmap_range handed the PTE's reference to the old frame back,
    // and no TLB can reach it any more.
    drop(unsafe {
        Frame::from_raw(PhysFrame::containing_address(x86_64::PhysAddr::new(
            old_frame.addr(),
        )))
    });
    drop(space);
    log::info!(
        "smptest: before the flush CPU {other} {} the old page through its TLB",
        if stale {
            "still read"
        } else {
            "no longer read"
        }
    );
    if first != old {
        return Err("the other CPU did not read the mapped page");
    }
    // Pmap::flush shoots down by itself (docs/src/concurrency.md): the
    // unmap already reached the CPU that has the space loaded.
    if stale {
        return Err("unmap_range left the other CPU's TLB entry: no shootdown");
    }
    if after != new {
        return Err("after FlushRange the other CPU still read the old page");
    }
    Ok(())
}
