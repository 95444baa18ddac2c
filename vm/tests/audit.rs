//! The frame reference-count audit (`vm/src/audit.rs`): quiet on spaces
//! built by the real operations — faults, copy-on-write, fork, shared and
//! file objects — and loud when a reference goes missing.

use vm::fake::{FakeMemory, FakePmap};
use vm::mmap;
use vm::pmap::{PhysMem, Pmap};
use vm::space::AddressSpace;
use vm::vm_fault::Access;
use vm::vm_object::ObjectRef;
use vm::vma::{PAGE, Vma};

type Space = AddressSpace<FakePmap>;
const TOP: u64 = 0x7f00_0000_0000;

fn space() -> Space {
    AddressSpace::new(FakePmap::default(), TOP)
}

fn map(
    space: &mut Space,
    mem: &mut FakeMemory,
    len: u64,
    flags: u64,
    fd: i32,
    file: Option<&ObjectRef>,
) -> u64 {
    let req = mmap::validate_mmap(0, len, 3, flags, fd, 0).expect("valid request");
    let vma = match file {
        Some(object) => Vma::for_file(&req, object.clone(), mmap::Prot::all()),
        None => Vma::for_request(&req).expect("anonymous"),
    };
    space.mmap(mem, &req, vma).expect("mmap")
}

#[test]
fn a_space_built_by_faults_fork_and_objects_passes() {
    let mut mem = FakeMemory::new(4096);
    let file = ObjectRef::new_file();
    file.write_at(0, &[1; 3 * PAGE as usize], &mut mem).unwrap();
    let mut parent = space();
    let anon = map(
        &mut parent,
        &mut mem,
        4 * PAGE,
        mmap::MAP_PRIVATE | mmap::MAP_ANONYMOUS,
        -1,
        None,
    );
    let shm = map(
        &mut parent,
        &mut mem,
        2 * PAGE,
        mmap::MAP_SHARED | mmap::MAP_ANONYMOUS,
        -1,
        None,
    );
    let shared = map(
        &mut parent,
        &mut mem,
        3 * PAGE,
        mmap::MAP_SHARED,
        3,
        Some(&file),
    );
    let private = map(
        &mut parent,
        &mut mem,
        3 * PAGE,
        mmap::MAP_PRIVATE,
        3,
        Some(&file),
    );
    for (addr, access) in [
        (anon, Access::Write),
        (anon + PAGE, Access::Read),
        (shm, Access::Write),
        (shared, Access::Read),
        (private, Access::Read),
        (private + PAGE, Access::Write),
    ] {
        parent.fault(&mut mem, addr, access).expect("fault");
    }
    let mut child = parent.fork(&mut mem, FakePmap::default()).expect("fork");
    child
        .fault(&mut mem, anon, Access::Write)
        .expect("copy-on-write");
    assert_eq!(parent.audit_frames(&mem), Ok(()));
    assert_eq!(child.audit_frames(&mem), Ok(()));
    child.clear(&mut mem);
    parent.clear(&mut mem);
    file.release(&mut mem);
    assert_eq!(mem.in_use(), 0);
}

#[test]
fn a_missing_reference_is_reported() {
    let mut mem = FakeMemory::new(4096);
    let mut s = space();
    let flags = mmap::MAP_SHARED | mmap::MAP_ANONYMOUS;
    let a = map(&mut s, &mut mem, 2 * PAGE, flags, -1, None);
    s.fault(&mut mem, a + PAGE, Access::Write).expect("fault");
    let pfn = s.pmap.query(a + PAGE).expect("mapped").pfn;
    // What a fault that forgot its `get` would leave: the object and the
    // PTE both hold the frame, on one reference.
    mem.put(pfn);
    let short = s.audit_frames(&mem).expect_err("the audit must notice");
    assert_eq!(
        (short.va, short.pfn, short.refcount, short.held),
        (a + PAGE, pfn, 1, 2)
    );
    // Give the reference back so that tearing down is clean.
    mem.get(pfn);
    s.clear(&mut mem);
    assert_eq!(mem.in_use(), 0);
}
