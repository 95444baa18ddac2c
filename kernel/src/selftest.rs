//! In-kernel self-tests (`--kernel-arg selftest`): the parts that need real
//! hardware state and cannot run on the host. Same report format as the user
//! test programs: `ok NAME` or `FAIL NAME: why`, then `N passed, M failed`.

use crate::phys::{self, Frame};
use crate::pmap::Pmap;
use crate::{kprintln, qemu};
use x86_64::VirtAddr;
use x86_64::structures::paging::{Page, PageTableFlags as Flags};

type Test = (&'static str, fn() -> Result<(), &'static str>);

const TESTS: &[Test] = &[
    ("frames_are_zeroed", frames_are_zeroed),
    (
        "frame_refcount_shares_and_frees",
        frame_refcount_shares_and_frees,
    ),
    ("pmap_enter_query_remove", pmap_enter_query_remove),
    ("pmap_teardown_frees_tables", pmap_teardown_frees_tables),
    ("heap_grows", heap_grows),
];

/// Tests of the swap device, run when there is one (`--swap SIZE`).
const SWAP_TESTS: &[Test] = &[
    ("swap_slots_count_holders", swap_slots_count_holders),
    ("swap_pages_round_trip", swap_pages_round_trip),
    ("swap_cluster_round_trip", swap_cluster_round_trip),
];

pub fn run() -> ! {
    let mut failed = 0;
    let swap_tests = if crate::swap::active() {
        SWAP_TESTS
    } else {
        kprintln!("skip swap tests: no swap device (boot with --swap SIZE)");
        &[]
    };
    let smp_tests = crate::smptest::TESTS;
    let all = TESTS.len() + swap_tests.len() + smp_tests.len();
    for (name, test) in TESTS.iter().chain(swap_tests).chain(smp_tests) {
        match test() {
            Ok(()) => kprintln!("ok {name}"),
            Err(why) => {
                failed += 1;
                kprintln!("FAIL {name}: {why}");
            }
        }
    }
    kprintln!("{} passed, {} failed", all - failed, failed);
    qemu::exit(u8::from(failed > 0));
}

fn check(condition: bool, why: &'static str) -> Result<(), &'static str> {
    if condition { Ok(()) } else { Err(why) }
}

fn frames_are_zeroed() -> Result<(), &'static str> {
    // Dirty a frame, free it, and check that a new allocation comes zeroed.
    let frame = Frame::alloc_zeroed().ok_or("out of memory")?;
    frame.write(0, &[0xab; 4096]);
    drop(frame);
    let frame = Frame::alloc_zeroed().ok_or("out of memory")?;
    let mut bytes = [1u8; 4096];
    frame.read(0, &mut bytes);
    check(bytes.iter().all(|&b| b == 0), "a fresh frame held old data")
}

fn frame_refcount_shares_and_frees() -> Result<(), &'static str> {
    let before = phys::free_frames();
    let frame = Frame::alloc_zeroed().ok_or("out of memory")?;
    let shared = frame.share();
    check(frame.refcount() == 2, "share did not count")?;
    drop(frame);
    check(
        phys::free_frames() == before - 1,
        "freed while still shared",
    )?;
    drop(shared);
    check(phys::free_frames() == before, "last reference did not free")
}

fn pmap_enter_query_remove() -> Result<(), &'static str> {
    use vm::pmap::{Pmap as _, PteProt};
    let mut pmap = Pmap::new().ok_or("out of memory")?;
    let va = 0x4000_0000;
    let frame = Frame::alloc_zeroed().ok_or("out of memory")?;
    let pfn = vm::frame::Pfn::from_addr(frame.phys().start_address().as_u64());
    let rw = PteProt {
        user: true,
        write: true,
        exec: false,
    };
    vm::pmap::Pmap::enter(&mut pmap, va, pfn, rw).map_err(|_| "enter failed")?;
    core::mem::forget(frame); // the PTE owns the reference now
    let found = pmap.query(va).ok_or("query found nothing")?;
    check(
        found.pfn == pfn && found.prot == rw && !found.huge,
        "query returned something else",
    )?;
    pmap.protect_range(va, va + 4096, &mut |_, _| PteProt::READ);
    let found = pmap.query(va).ok_or("query after protect")?;
    check(found.prot == PteProt::READ, "protect kept WRITABLE")?;
    let mut released = None;
    pmap.unmap_range(va, va + 4096, &mut |at, m| released = Some((at, m.pfn)));
    check(released == Some((va, pfn)), "unmap returned another frame")?;
    // SAFETY: unmap_range handed the PTE's reference back to us.
    drop(unsafe {
        Frame::from_raw(x86_64::structures::paging::PhysFrame::containing_address(
            x86_64::PhysAddr::new(pfn.addr()),
        ))
    });
    check(pmap.query(va).is_none(), "page still mapped after unmap")
}

fn pmap_teardown_frees_tables() -> Result<(), &'static str> {
    let before = phys::free_frames();
    let mut pmap = Pmap::new().ok_or("out of memory")?;
    for i in 0..600u64 {
        // Spread over two L2 tables and two L3 entries.
        let page = Page::containing_address(VirtAddr::new(0x7000_0000_0000 + i * 0x20_0000 / 300));
        if pmap.query_flags(page.start_address()).is_none() {
            let frame = Frame::alloc_zeroed().ok_or("out of memory")?;
            pmap.enter(page, frame, Flags::USER_ACCESSIBLE)
                .map_err(|_| "enter failed")?;
        }
    }
    drop(pmap);
    check(phys::free_frames() == before, "frames leaked by Pmap drop")
}

fn heap_grows() -> Result<(), &'static str> {
    let before = crate::heap::frames();
    let big = alloc::vec![7u8; 4 << 20];
    check(big.iter().all(|&b| b == 7), "heap memory corrupt")?;
    check(crate::heap::frames() > before, "heap did not grow")
}

fn swap_slots_count_holders() -> Result<(), &'static str> {
    use crate::swap;
    let (_, used_before) = swap::totals();
    let slot = swap::alloc_slot().ok_or("no free slot")?;
    check(swap::slot_count(slot) == 1, "a fresh slot's count is not 1")?;
    check(swap::dup_slot(slot) == Ok(2), "dup did not count")?;
    check(
        swap::totals().1 == used_before + 1,
        "Used counted a slot twice",
    )?;
    check(swap::free_slot(slot) == 1, "free of a shared slot freed it")?;
    check(swap::free_slot(slot) == 0, "the last free left holders")?;
    check(swap::totals().1 == used_before, "the slot stayed in use")
}

/// A page pattern that differs in every slot and in every word.
fn pattern(frame: &Frame, seed: u32) {
    let mut bytes = [0u8; 4096];
    for (i, word) in bytes.chunks_mut(4).enumerate() {
        word.copy_from_slice(&(seed.wrapping_mul(2654435761) ^ i as u32).to_le_bytes());
    }
    frame.write(0, &bytes);
}

fn same(a: &Frame, b: &Frame) -> bool {
    let (mut x, mut y) = ([0u8; 4096], [0u8; 4096]);
    a.read(0, &mut x);
    b.read(0, &mut y);
    x == y
}

/// 32 pages written one request each, read back one request each into
/// other frames: every byte comes back from the disk.
fn swap_pages_round_trip() -> Result<(), &'static str> {
    use crate::swap;
    let slots: alloc::vec::Vec<_> = (0..32).filter_map(|_| swap::alloc_slot()).collect();
    check(slots.len() == 32, "not enough free slots")?;
    check(
        slots.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "consecutive allocations are not consecutive slots",
    )?;
    let page = Frame::alloc_zeroed().ok_or("out of memory")?;
    let back = Frame::alloc_zeroed().ok_or("out of memory")?;
    let mut result = Ok(());
    for &slot in &slots {
        pattern(&page, slot.0);
        swap::write_page(slot, &page).map_err(|_| "write failed")?;
    }
    for &slot in &slots {
        pattern(&page, slot.0);
        swap::read_page(slot, &back).map_err(|_| "read failed")?;
        if !same(&page, &back) {
            result = Err("a page read back differs from the one written");
        }
    }
    for slot in slots {
        swap::free_slot(slot);
    }
    result
}

/// 16 pages written and read as clusters (all requests in flight at
/// once), into frames in an order unlike the disk's.
fn swap_cluster_round_trip() -> Result<(), &'static str> {
    use crate::swap;
    const N: usize = 16;
    let slots: alloc::vec::Vec<_> = (0..N).filter_map(|_| swap::alloc_slot()).collect();
    check(slots.len() == N, "not enough free slots")?;
    let frames: alloc::vec::Vec<Frame> = (0..N).filter_map(|_| Frame::alloc_zeroed()).collect();
    let back: alloc::vec::Vec<Frame> = (0..N).filter_map(|_| Frame::alloc_zeroed()).collect();
    check(frames.len() == N && back.len() == N, "out of memory")?;
    for (i, f) in frames.iter().enumerate() {
        pattern(f, 1000 + i as u32);
    }
    let refs: alloc::vec::Vec<&Frame> = frames.iter().collect();
    let back_refs: alloc::vec::Vec<&Frame> = back.iter().collect();
    check(
        slots.windows(2).all(|w| w[1].0 == w[0].0 + 1),
        "the slots of a cluster are not consecutive",
    )?;
    let stats_before = swap::disk_stats();
    swap::write_cluster(slots[0], &refs).map_err(|_| "cluster write failed")?;
    swap::read_cluster(slots[0], &back_refs).map_err(|_| "cluster read failed")?;
    let stats = swap::disk_stats();
    let ok = frames.iter().zip(&back).all(|(a, b)| same(a, b));
    // The read-ahead window of the fourth slot: the 8-aligned run around it, taken slots only.
    let window = swap::readahead(slots[3], 8);
    let aligned = slots[3].0 & !7;
    let window_ok = window
        .iter()
        .map(|s| s.0)
        .eq((aligned..aligned + 8).filter(|s| swap::slot_count(vm::swap_map::Slot(*s)) > 0));
    let window_ok = window_ok && window.contains(&slots[3]);
    for slot in slots {
        swap::free_slot(slot);
    }
    check(ok, "a page of the cluster read back differs")?;
    check(
        window_ok,
        "the read-ahead window is not the taken slots around one",
    )?;
    check(
        // The run goes as one request each way (block::transfer's cluster).
        stats.reads - stats_before.reads == 1
            && stats.writes - stats_before.writes == 1
            && stats.bytes_read - stats_before.bytes_read == N as u64 * 4096
            && stats.bytes_written - stats_before.bytes_written == N as u64 * 4096,
        "the disk's counters missed requests, or a run took more than one",
    )
}
