//! The page cache on the host: a file's `VmObject` read and written as the
//! kernel's read()/write()/ftruncate() do, and mapped into address spaces
//! (fake page tables) as mmap does. Each test checks what a user would see:
//! the bytes through read() and through the mapping, SIGBUS past the end,
//! how many faults a sequential read takes, and that every frame comes back.

use vm::errno::Errno;
use vm::fake::{FakeMemory, FakePmap};
use vm::frame::Pfn;
use vm::mmap::{self, Prot};
use vm::pager::FAULT_AROUND_PAGES;
use vm::pmap::Pmap;
use vm::space::AddressSpace;
use vm::vm_fault::{Access, FaultError, Resolution};
use vm::vm_object::ObjectRef;
use vm::vma::{PAGE, Vma};

type Space = AddressSpace<FakePmap>;
const P: u64 = PAGE;
const TOP: u64 = 0x7f00_0000_0000;

const PROT_READ: u64 = 1;
const PROT_RW: u64 = 3;
const SHARED: u64 = mmap::MAP_SHARED;
const PRIVATE: u64 = mmap::MAP_PRIVATE;

/// The machine: memory, one file, and processes that map it.
struct World {
    mem: FakeMemory,
    file: ObjectRef,
}

impl World {
    fn new() -> World {
        World {
            mem: FakeMemory::new(1 << 16),
            file: ObjectRef::new_file(),
        }
    }

    fn space(&self) -> Space {
        AddressSpace::new(FakePmap::default(), TOP)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> usize {
        self.file
            .write_at(offset, data, &mut self.mem)
            .expect("write_at")
    }

    fn read(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0xee; len];
        let n = self
            .file
            .read_at(offset, &mut buf, &mut self.mem)
            .expect("read_at");
        buf.truncate(n);
        buf
    }

    /// mmap(2) of the file, as kernel/src/syscall/memory.rs makes it; a
    /// descriptor opened read-write unless `max_prot` says otherwise.
    fn mmap(&mut self, space: &mut Space, len: u64, prot: u64, flags: u64, offset: u64) -> u64 {
        self.mmap_max(space, len, prot, flags, offset, Prot::all())
            .expect("mmap")
    }

    fn mmap_max(
        &mut self,
        space: &mut Space,
        len: u64,
        prot: u64,
        flags: u64,
        offset: u64,
        max_prot: Prot,
    ) -> Result<u64, Errno> {
        let req = mmap::validate_mmap(0, len, prot, flags, 3, offset)?;
        let vma = Vma::for_file(&req, self.file.clone(), max_prot);
        space.mmap(&mut self.mem, &req, vma)
    }

    /// The frame and offset `addr` reaches with `access`, faulting as the
    /// CPU would until the PTE allows it.
    fn access(
        &mut self,
        space: &mut Space,
        addr: u64,
        access: Access,
    ) -> Result<(Pfn, usize), FaultError> {
        for _ in 0..3 {
            if let Some(m) = space.pmap.query(addr)
                && m.prot.user
                && (access != Access::Write || m.prot.write)
            {
                return Ok((m.pfn, (addr % P) as usize));
            }
            space.fault(&mut self.mem, addr, access)?;
        }
        panic!("access to {addr:#x} still faults");
    }

    fn load(&mut self, space: &mut Space, addr: u64) -> Result<u8, FaultError> {
        let (pfn, at) = self.access(space, addr, Access::Read)?;
        Ok(self.mem.bytes(pfn)[at])
    }

    fn store(&mut self, space: &mut Space, addr: u64, value: u8) -> Result<(), FaultError> {
        let (pfn, at) = self.access(space, addr, Access::Write)?;
        self.mem.bytes_mut(pfn)[at] = value;
        Ok(())
    }

    /// ftruncate: resize, then unmap what went from every space.
    fn truncate(&mut self, spaces: &mut [&mut Space], size: u64) {
        self.file.set_size(size, &mut self.mem).expect("set_size");
        for space in spaces {
            space.truncate_object(&mut self.mem, &self.file, size);
        }
    }

    /// Tear everything down and check that no frame is left in use.
    fn finish(self, spaces: Vec<Space>) {
        let mut mem = self.mem;
        for mut space in spaces {
            space.clear(&mut mem);
        }
        self.file.release(&mut mem);
        assert_eq!(
            mem.in_use(),
            0,
            "frames still in use after the last reference"
        );
    }
}

#[test]
fn written_bytes_read_back_across_pages_and_holes_read_zeros() {
    let mut w = World::new();
    let data: Vec<u8> = (0..6000u32).map(|i| i as u8).collect();
    assert_eq!(w.write(3000, &data), 6000);
    assert_eq!(w.file.size(), 9000);
    assert_eq!(w.read(3000, 6000), data);
    assert_eq!(w.read(0, 3000), vec![0; 3000], "the gap before the write");
    assert_eq!(w.read(8990, 100).len(), 10, "a read stops at the end");
    assert!(
        w.read(9000, 10).is_empty(),
        "a read at the end returns nothing"
    );
    // A write far past the end leaves a hole: only the written page exists.
    w.write(100 * P, b"x");
    assert_eq!(w.file.resident_pages(), 4, "pages 0..3 and 100");
    assert_eq!(w.read(50 * P, 4), vec![0; 4]);
    w.finish(vec![]);
}

#[test]
fn shrinking_frees_pages_and_growing_again_reads_zeros() {
    let mut w = World::new();
    w.write(0, &vec![7; 5 * P as usize]);
    let before = w.mem.in_use();
    w.file.set_size(P + 10, &mut w.mem).unwrap();
    assert_eq!(w.mem.in_use(), before - 3, "pages 2..5 are freed");
    assert_eq!(w.read(0, 2 * P as usize).len(), P as usize + 10);
    w.file.set_size(3 * P, &mut w.mem).unwrap();
    let after = w.read(P, 2 * P as usize);
    assert_eq!(&after[..10], &[7; 10], "what stayed in the file stays");
    assert!(
        after[10..].iter().all(|&b| b == 0),
        "the regrown part reads zeros"
    );
    assert_eq!(
        w.file.set_size(u64::MAX, &mut w.mem),
        Err(Errno::EFBIG),
        "past the largest file size"
    );
    w.finish(vec![]);
}

#[test]
fn a_shared_mapping_and_read_write_see_the_same_bytes() {
    let mut w = World::new();
    w.write(0, &vec![1; 2 * P as usize]);
    let mut s = w.space();
    let a = w.mmap(&mut s, 2 * P, PROT_RW, SHARED, 0);
    assert_eq!(w.load(&mut s, a + 5).unwrap(), 1);
    w.write(P + 7, &[42]);
    assert_eq!(
        w.load(&mut s, a + P + 7).unwrap(),
        42,
        "write() shows in the mapping"
    );
    w.store(&mut s, a + 9, 99).unwrap();
    assert_eq!(w.read(9, 1), vec![99], "a store shows in read()");
    // The mapping holds the page cache's frames: no copy was made.
    assert_eq!(w.mem.in_use(), 2);
    // munmap without msync loses nothing.
    s.munmap(&mut w.mem, a, a + 2 * P).unwrap();
    assert_eq!(w.read(9, 1), vec![99]);
    w.finish(vec![s]);
}

#[test]
fn a_private_mapping_sees_the_file_until_its_first_write_copies_the_page() {
    let mut w = World::new();
    w.write(0, &vec![1; P as usize]);
    let mut private = w.space();
    let mut shared = w.space();
    let a = w.mmap(&mut private, P, PROT_RW, PRIVATE, 0);
    let b = w.mmap(&mut shared, P, PROT_RW, SHARED, 0);
    assert_eq!(w.load(&mut private, a).unwrap(), 1);
    w.store(&mut shared, b, 2).unwrap();
    assert_eq!(
        w.load(&mut private, a).unwrap(),
        2,
        "a shared store shows through"
    );
    w.store(&mut private, a + 1, 3).unwrap();
    assert_eq!(
        w.read(0, 2),
        vec![2, 1],
        "the private store never reaches the file"
    );
    w.store(&mut shared, b, 4).unwrap();
    assert_eq!(
        w.load(&mut private, a).unwrap(),
        2,
        "the copy no longer follows the file"
    );
    assert_eq!(w.load(&mut private, a + 1).unwrap(), 3);
    w.finish(vec![private, shared]);
}

#[test]
fn the_tail_of_the_last_page_reads_zeros_and_stores_there_never_extend_the_file() {
    let mut w = World::new();
    w.write(0, &[5; 100]);
    let mut s = w.space();
    let a = w.mmap(&mut s, 2 * P, PROT_RW, SHARED, 0);
    assert_eq!(w.load(&mut s, a + 99).unwrap(), 5);
    assert_eq!(
        w.load(&mut s, a + 100).unwrap(),
        0,
        "past the end, same page"
    );
    w.store(&mut s, a + 200, 9).unwrap();
    assert_eq!(
        w.file.size(),
        100,
        "a store past the end does not grow the file"
    );
    assert_eq!(w.read(0, 300).len(), 100);
    // When the file grows over the tail, the stray store is not part of it.
    w.write(300, &[1]);
    assert_eq!(w.read(200, 1), vec![0]);
    assert_eq!(w.load(&mut s, a + 200).unwrap(), 0);
    // A page wholly past the end is SIGBUS.
    assert_eq!(w.load(&mut s, a + P), Err(FaultError::Bus));
    assert_eq!(w.store(&mut s, a + P, 1), Err(FaultError::Bus));
    w.finish(vec![s]);
}

#[test]
fn truncate_unmaps_the_pages_past_the_end_from_every_mapping() {
    let mut w = World::new();
    w.write(0, &vec![6; 4 * P as usize]);
    let mut s1 = w.space();
    let mut s2 = w.space();
    let a = w.mmap(&mut s1, 4 * P, PROT_RW, SHARED, 0);
    let b = w.mmap(&mut s2, 4 * P, PROT_RW, PRIVATE, 0);
    for i in 0..4 {
        w.load(&mut s1, a + i * P).unwrap();
        w.store(&mut s2, b + i * P, 8).unwrap(); // private copies
    }
    w.truncate(&mut [&mut s1, &mut s2], P + 1);
    for (space, base) in [(&mut s1, a), (&mut s2, b)] {
        assert!(w.load(space, base).is_ok());
        assert_eq!(w.load(space, base + 2 * P), Err(FaultError::Bus));
        assert_eq!(w.load(space, base + 3 * P), Err(FaultError::Bus));
    }
    assert_eq!(w.load(&mut s1, a + P).unwrap(), 6, "the partial page stays");
    assert_eq!(
        w.load(&mut s1, a + P + 1).unwrap(),
        0,
        "...zeroed past the end"
    );
    // Growing the file again makes the pages reachable, reading zeros.
    w.truncate(&mut [&mut s1, &mut s2], 4 * P);
    assert_eq!(w.load(&mut s1, a + 3 * P).unwrap(), 0);
    w.finish(vec![s1, s2]);
}

/// A hole punched in the file (FALLOC_FL_PUNCH_HOLE, MADV_REMOVE): every
/// mapping of its pages in every space is taken out, shared or private,
/// except a private copy a write made; the pages are freed; then every
/// mapping reads zeros there, and the copy keeps its bytes.
#[test]
fn a_punched_hole_unmaps_the_file_pages_but_not_the_private_copies() {
    let mut w = World::new();
    w.write(0, &vec![6; 4 * P as usize]);
    let mut s1 = w.space();
    let mut s2 = w.space();
    let a = w.mmap(&mut s1, 4 * P, PROT_RW, SHARED, 0);
    let b = w.mmap(&mut s2, 4 * P, PROT_RW, PRIVATE, 0);
    for i in 0..4 {
        w.load(&mut s1, a + i * P).unwrap();
        w.load(&mut s2, b + i * P).unwrap(); // the file's frames, read-only
    }
    w.store(&mut s2, b + 2 * P, 9).unwrap(); // a private copy of page 2
    let in_use = w.mem.in_use();
    // The hole is pages 1 and 2.
    for space in [&mut s1, &mut s2] {
        assert!(
            space.punch_object(&mut w.mem, &w.file, 1, 3),
            "it maps the file"
        );
    }
    w.file.discard(1, 3, &mut w.mem);
    assert_eq!(w.mem.in_use(), in_use - 2, "the two file pages are freed");
    for (space, base) in [(&mut s1, a), (&mut s2, b)] {
        assert_eq!(
            w.load(space, base).unwrap(),
            6,
            "page 0 is outside the hole"
        );
        assert_eq!(w.load(space, base + P).unwrap(), 0, "page 1 is a hole");
        assert_eq!(w.load(space, base + 3 * P).unwrap(), 6, "page 3 is outside");
    }
    assert_eq!(w.load(&mut s1, a + 2 * P).unwrap(), 0, "page 2 is a hole");
    assert_eq!(
        w.load(&mut s2, b + 2 * P).unwrap(),
        9,
        "the private copy stays"
    );
    assert_eq!(w.read(P, 2 * P as usize), vec![0; 2 * P as usize]);
    let mut s3 = w.space();
    assert!(
        !s3.punch_object(&mut w.mem, &w.file, 0, 4),
        "a space without it"
    );
    w.finish(vec![s1, s2, s3]);
}

#[test]
fn a_sequential_read_takes_one_fault_per_window() {
    let mut w = World::new();
    let pages = 4 * FAULT_AROUND_PAGES;
    w.write(0, &vec![3; (pages * P) as usize]);
    let mut s = w.space();
    let a = w.mmap(&mut s, pages * P, PROT_READ, SHARED, 0);
    let mut faults = 0;
    for i in 0..pages {
        let addr = a + i * P;
        if s.pmap.query(addr).is_none() {
            faults += 1;
            let r = s.fault(&mut w.mem, addr, Access::Read).unwrap();
            assert!(
                matches!(r, Resolution::ObjectPage { around, .. } if around == 15),
                "{r:?}"
            );
        }
    }
    assert_eq!(faults, pages / FAULT_AROUND_PAGES);
    // MADV_RANDOM turns fault-around off.
    s.munmap(&mut w.mem, a, a + pages * P).unwrap();
    let a = w.mmap(&mut s, pages * P, PROT_READ, SHARED, 0);
    let (span, advice) = mmap::validate_madvise(a, pages * P, 1).unwrap();
    s.madvise(&mut w.mem, span.start, span.end, advice).unwrap();
    let r = s.fault(&mut w.mem, a, Access::Read).unwrap();
    assert_eq!(r, Resolution::ObjectPage { around: 0, read: 0 });
    w.finish(vec![s]);
}

#[test]
fn fault_around_maps_only_resident_pages_inside_the_file() {
    let mut w = World::new();
    w.write(0, &[1]);
    w.write(5 * P, &[1]); // pages 1..5 are holes; the file ends in page 5
    let mut s = w.space();
    let a = w.mmap(&mut s, 16 * P, PROT_READ, PRIVATE, 0);
    let r = s.fault(&mut w.mem, a, Access::Read).unwrap();
    assert_eq!(
        r,
        Resolution::ObjectPage { around: 1, read: 0 },
        "page 5 only"
    );
    assert_eq!(w.file.resident_pages(), 2, "no hole was filled");
    let m = s.pmap.query(a + 5 * P).expect("page 5 mapped");
    assert!(!m.prot.write, "private pages go in read-only");
    w.finish(vec![s]);
}

#[test]
fn prefault_read_maps_every_resident_page_at_mmap_time() {
    let mut w = World::new();
    w.write(0, &vec![1; 3 * P as usize]);
    w.write(9 * P, &[1]);
    let mut s = w.space();
    let flags = SHARED | mmap::MAP_PREFAULT_READ;
    let a = w.mmap(&mut s, 10 * P, PROT_READ, flags, 0);
    let mapped: Vec<u64> = (0..10)
        .filter(|i| s.pmap.query(a + i * P).is_some())
        .collect();
    assert_eq!(mapped, vec![0, 1, 2, 9]);
    w.finish(vec![s]);
}

#[test]
fn populate_fills_the_file_pages_and_stops_at_the_end() {
    let mut w = World::new();
    w.write(0, &[1]);
    w.write(2 * P, &[1]);
    let mut s = w.space();
    let flags = SHARED | mmap::MAP_POPULATE | mmap::MAP_LOCKED;
    let a = w.mmap(&mut s, 8 * P, PROT_READ, flags, 0);
    let mapped = (0..8).filter(|i| s.pmap.query(a + i * P).is_some()).count();
    assert_eq!(
        mapped, 3,
        "pages 0..3: the hole is filled, nothing past the end"
    );
    w.finish(vec![s]);
}

#[test]
fn the_pages_live_until_the_last_mapping_goes() {
    let mut w = World::new();
    w.write(0, &vec![4; 2 * P as usize]);
    let mut s = w.space();
    let a = w.mmap(&mut s, 2 * P, PROT_RW, SHARED, 0);
    w.store(&mut s, a, 5).unwrap();
    // "unlink and close": the inode's reference goes; the mapping keeps the data.
    let file = w.file.clone();
    w.file = ObjectRef::new_file();
    file.clone().release(&mut w.mem);
    assert_eq!(file.references(), 2, "the VMA and our test handle");
    assert_eq!(w.load(&mut s, a + P).unwrap(), 4);
    assert_eq!(w.load(&mut s, a).unwrap(), 5);
    s.munmap(&mut w.mem, a, a + 2 * P).unwrap();
    file.release(&mut w.mem);
    assert_eq!(w.mem.in_use(), 0, "the last reference freed the pages");
    w.finish(vec![s]);
}

#[test]
fn mprotect_cannot_add_write_to_a_shared_mapping_of_a_read_only_descriptor() {
    let mut w = World::new();
    w.write(0, &[1]);
    let mut s = w.space();
    let read_only = Prot::READ | Prot::EXEC;
    let a = w
        .mmap_max(&mut s, P, PROT_READ, SHARED, 0, read_only)
        .unwrap();
    assert_eq!(
        s.mprotect(&mut w.mem, a, a + P, Prot::READ | Prot::WRITE),
        Err(Errno::EACCES)
    );
    // A private mapping of the same descriptor may become writable.
    let b = w
        .mmap_max(&mut s, P, PROT_READ, PRIVATE, 0, Prot::all())
        .unwrap();
    assert_eq!(
        s.mprotect(&mut w.mem, b, b + P, Prot::READ | Prot::WRITE),
        Ok(())
    );
    w.finish(vec![s]);
}

#[test]
fn writing_with_no_memory_left_is_enospc_or_short() {
    let mut w = World::new();
    w.mem.limit = 2;
    assert_eq!(w.write(0, &vec![1; 3 * P as usize]), 2 * P as usize);
    assert_eq!(w.file.write_at(3 * P, &[1], &mut w.mem), Err(Errno::ENOSPC));
    assert_eq!(w.file.size(), 2 * P);
    w.finish(vec![]);
}

/// The kernel's list of memfd names holds `WeakObject`s: they name an
/// object without keeping it or its pages.
#[test]
fn a_weak_object_names_its_object_without_keeping_it() {
    let mut mem = FakeMemory::new(64);
    let file = ObjectRef::new_file();
    let other = ObjectRef::new_file();
    let weak = file.downgrade();
    assert!(weak.is(&file) && !weak.is(&other));
    file.write_at(0, b"memfd", &mut mem).unwrap();
    assert_eq!(file.references(), 1, "the weak reference is not counted");
    assert!(weak.alive());
    file.release(&mut mem);
    other.release(&mut mem);
    assert!(!weak.alive(), "the last strong reference is gone");
    assert_eq!(mem.in_use(), 0, "the page went back");
}
