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

pub fn run() -> ! {
    let mut failed = 0;
    let all = TESTS.iter().chain(crate::smptest::TESTS);
    for (name, test) in all.clone() {
        match test() {
            Ok(()) => kprintln!("ok {name}"),
            Err(why) => {
                failed += 1;
                kprintln!("FAIL {name}: {why}");
            }
        }
    }
    kprintln!("{} passed, {} failed", all.count() - failed, failed);
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
