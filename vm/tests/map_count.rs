//! vm.max_map_count (65 530, Linux's default) bounds every way of making
//! VMAs: mmap, and the splits of munmap, mprotect, madvise, mlock and
//! minherit. Found by isotest: mprotect split past the limit.

use vm::errno::Errno;
use vm::fake::{FakeMemory, FakePmap};
use vm::mmap::{self, Prot};
use vm::space::{AddressSpace, MAX_MAP_COUNT};
use vm::vma::{PAGE, Vma};

#[test]
fn splitting_past_the_mapping_count_limit_is_enomem() {
    let mut mem = FakeMemory::new(1024);
    let mut s = AddressSpace::new(FakePmap::default(), 0x7f00_0000_0000);
    let pages = 65_600u64;
    let flags = mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS | mmap::MAP_NORESERVE;
    let req = mmap::validate_mmap(0, pages * PAGE, 0, flags, -1, 0).unwrap();
    let base = s
        .mmap(&mut mem, &req, Vma::for_request(&req).unwrap())
        .unwrap();
    // Every other page read-only: neighbours never merge.
    let mut refused = None;
    for i in (0..pages).step_by(2) {
        let at = base + i * PAGE;
        if let Err(e) = s.mprotect(&mut mem, at, at + PAGE, Prot::READ) {
            refused = Some(e);
            break;
        }
    }
    assert_eq!(refused, Some(Errno::ENOMEM));
    assert_eq!(
        s.vma_count(),
        MAX_MAP_COUNT,
        "the limit is reached, not passed"
    );
    // The other splitting calls refuse too, and change nothing.
    let inside = base + (pages - 4) * PAGE;
    let (span, advice) = mmap::validate_madvise(inside, PAGE, 1).unwrap();
    assert_eq!(
        s.madvise(&mut mem, span.start, span.end, advice),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        s.mlock(&mut mem, inside, inside + PAGE, true),
        Err(Errno::ENOMEM)
    );
    assert_eq!(
        s.munmap(&mut mem, inside, inside + PAGE),
        Err(Errno::ENOMEM)
    );
    assert_eq!(s.vma_count(), MAX_MAP_COUNT);
    // Whole VMAs can still change: no split is needed.
    s.munmap(&mut mem, base, base + pages * PAGE).unwrap();
    assert_eq!(s.vma_count(), 0);
    s.clear(&mut mem);
}
