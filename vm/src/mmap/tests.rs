//! The mmap validators' unit tests (the model test is vm/tests/mmap_model.rs).

use super::*;

const RW: u64 = 3;
const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;

fn mmap(
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd: i32,
    off: u64,
) -> Result<MmapRequest, Errno> {
    validate_mmap(addr, len, prot, flags, fd, off)
}

#[test]
fn plain_anonymous() {
    let r = mmap(0, 5000, RW, ANON, -1, 0).unwrap();
    assert_eq!(r.len, 8192);
    assert_eq!(r.placement, Placement::Anywhere { hint: 0 });
    assert_eq!(
        (r.kind, r.sharing, r.align),
        (Kind::Anonymous, Sharing::Private, PAGE)
    );
    assert!(!r.populate);
}

/// Found by the model test (vm/tests/mmap_model.rs): DESIGN §2 makes
/// MAP_ALIGNED_SUPER a hint, so a fixed address need only be page
/// aligned; MAP_ALIGNED(21) and MAP_HUGETLB still demand 2 MiB.
#[test]
fn aligned_super_at_a_fixed_address_is_a_hint() {
    let fixed = ANON | MAP_FIXED | MAP_ALIGNED_SUPER;
    let r = mmap(0x20_1000, 4 << 20, RW, fixed, -1, 0).unwrap();
    assert_eq!(
        r.placement,
        Placement::Fixed {
            addr: 0x20_1000,
            on_conflict: OnConflict::Replace
        }
    );
    assert!(r.vma_flags.contains(VmaFlags::HUGE));
    let aligned = ANON | MAP_FIXED | map_aligned(21);
    assert_eq!(
        mmap(0x20_1000, 4 << 20, RW, aligned, -1, 0),
        Err(Errno::EINVAL)
    );
    let hugetlb = ANON | MAP_FIXED | MAP_HUGETLB;
    assert_eq!(
        mmap(0x20_1000, 4 << 20, RW, hugetlb, -1, 0),
        Err(Errno::EINVAL)
    );
}

#[test]
fn type_is_required_except_for_guard_and_stack() {
    assert_eq!(mmap(0, 4096, RW, MAP_ANONYMOUS, -1, 0), Err(Errno::EINVAL));
    assert!(mmap(0, 4096, 0, MAP_GUARD, -1, 0).is_ok());
    assert!(mmap(0, 4096, RW, MAP_STACK, -1, 0).is_ok());
    assert_eq!(
        mmap(0, 4096, RW, 0x4 | MAP_ANONYMOUS, -1, 0),
        Err(Errno::EINVAL)
    );
}

#[test]
fn undefined_bits() {
    assert_eq!(mmap(0, 4096, 8, ANON, -1, 0), Err(Errno::EINVAL));
    assert_eq!(mmap(0, 4096, 1 << 32, ANON, -1, 0), Err(Errno::EINVAL));
    assert_eq!(mmap(0, 4096, RW, ANON | 1 << 48, -1, 0), Err(Errno::EINVAL));
    assert_eq!(mmap(0, 4096, RW, ANON | 1 << 63, -1, 0), Err(Errno::EINVAL));
    // Legacy types ignore unknown low flags; SHARED_VALIDATE refuses them.
    assert!(mmap(0, 4096, RW, ANON | 0x200, -1, 0).is_ok());
    assert_eq!(
        mmap(
            0,
            4096,
            RW,
            MAP_SHARED_VALIDATE | MAP_ANONYMOUS | 0x200,
            -1,
            0
        ),
        Err(Errno::EOPNOTSUPP)
    );
    assert!(mmap(0, 4096, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0).is_ok());
}

#[test]
fn lengths() {
    assert_eq!(mmap(0, 0, RW, ANON, -1, 0), Err(Errno::EINVAL));
    assert_eq!(mmap(0, u64::MAX, RW, ANON, -1, 0), Err(Errno::ENOMEM));
    assert_eq!(mmap(0, USER_END + 1, RW, ANON, -1, 0), Err(Errno::ENOMEM));
}

#[test]
fn anonymous_wants_fd_minus_one_and_offset_zero_under_bsd_rules() {
    let bsd = |fd, offset| validate_mmap_under(Rules::Bsd, 0, 4096, RW, ANON, fd, offset);
    assert_eq!(bsd(3, 0).map(|_| ()), Err(Errno::EINVAL));
    assert_eq!(bsd(-1, 4096).map(|_| ()), Err(Errno::EINVAL));
}

#[test]
fn linux_rules_ignore_an_anonymous_mappings_fd_and_offset() {
    assert_eq!(mmap(0, 4096, RW, ANON, 3, 0).unwrap().kind, Kind::Anonymous);
    assert_eq!(
        mmap(0, 4096, RW, ANON, 0, 4096).unwrap().kind,
        Kind::Anonymous
    );
    assert_eq!(
        mmap(0, 4096, RW, ANON, 0, 1).map(|_| ()),
        Err(Errno::EINVAL)
    );
}

#[test]
fn fixed_outside_the_user_space_is_enomem_for_linux_einval_for_bsd() {
    let fixed = ANON | MAP_FIXED;
    let high = 0xffff_8000_0000_0000;
    assert_eq!(
        mmap(high, 4096, RW, fixed, -1, 0).map(|_| ()),
        Err(Errno::ENOMEM)
    );
    let bsd = validate_mmap_under(Rules::Bsd, high, 4096, RW, fixed, -1, 0);
    assert_eq!(bsd.map(|_| ()), Err(Errno::EINVAL));
}

#[test]
fn file_offsets() {
    let r = mmap(0, 4096, 1, MAP_PRIVATE, 3, 8192).unwrap();
    assert_eq!(
        r.kind,
        Kind::File {
            fd: 3,
            offset: 8192
        }
    );
    assert_eq!(mmap(0, 4096, 1, MAP_PRIVATE, 3, 100), Err(Errno::EINVAL));
    assert_eq!(
        mmap(0, 4096, 1, MAP_PRIVATE, 3, -4096i64 as u64),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mmap(0, 8192, 1, MAP_PRIVATE, 3, (i64::MAX as u64) & !0xfff),
        Err(Errno::EOVERFLOW)
    );
    assert_eq!(
        mmap(0, 4096, 1, MAP_PRIVATE | MAP_HUGETLB, 3, 0),
        Err(Errno::EINVAL)
    );
}

#[test]
fn fixed_placement_rules() {
    let fixed =
        |addr, extra| mmap(addr, 8192, RW, ANON | MAP_FIXED | extra, -1, 0).map(|r| r.placement);
    assert_eq!(
        fixed(0x40_0000, 0),
        Ok(Placement::Fixed {
            addr: 0x40_0000,
            on_conflict: OnConflict::Replace
        })
    );
    assert_eq!(fixed(0x40_0001, 0), Err(Errno::EINVAL));
    assert_eq!(fixed(0, 0), Err(Errno::ENOMEM));
    assert_eq!(fixed(USER_END - 4096, 0), Err(Errno::ENOMEM));
    assert_eq!(fixed(!0xfff, 0), Err(Errno::ENOMEM));
    assert_eq!(fixed(0x7fff_f000, MAP_32BIT), Err(Errno::EINVAL));
    assert!(fixed(0x7fff_e000, MAP_32BIT).is_ok());
    assert_eq!(
        fixed(0x40_0000, MAP_EXCL),
        Ok(Placement::Fixed {
            addr: 0x40_0000,
            on_conflict: OnConflict::FailEinval
        })
    );
    let noreplace = mmap(0x40_0000, 4096, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0).unwrap();
    assert_eq!(
        noreplace.placement,
        Placement::Fixed {
            addr: 0x40_0000,
            on_conflict: OnConflict::FailEexist
        }
    );
    assert_eq!(
        mmap(0x40_0000, 4096, RW, ANON | MAP_EXCL, -1, 0),
        Err(Errno::EINVAL)
    );
    let try_fixed = mmap(0x40_0123, 4096, RW, ANON | MAP_TRYFIXED, -1, 0).unwrap();
    assert_eq!(try_fixed.placement, Placement::TryFixed { addr: 0x40_0000 });
}

#[test]
fn alignment_flags() {
    let r = mmap(0, 4096, RW, ANON | map_aligned(16), -1, 0).unwrap();
    assert_eq!(r.align, 1 << 16);
    assert_eq!(
        mmap(0, 4096, RW, ANON | map_aligned(11), -1, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mmap(0, 4096, RW, ANON | map_aligned(48), -1, 0),
        Err(Errno::EINVAL)
    );
    assert!(mmap(0, 4096, RW, ANON | map_aligned(47), -1, 0).is_ok());
    assert_eq!(
        mmap(
            0x1_1000,
            4096,
            RW,
            ANON | MAP_FIXED | map_aligned(16),
            -1,
            0
        ),
        Err(Errno::EINVAL)
    );
    let sup = mmap(0, 4 << 20, RW, ANON | MAP_ALIGNED_SUPER, -1, 0).unwrap();
    assert_eq!(sup.align, HUGE_PAGE);
    assert!(sup.vma_flags.contains(VmaFlags::HUGE));
    let small = mmap(0, 4096, RW, ANON | MAP_ALIGNED_SUPER, -1, 0).unwrap();
    assert_eq!(small.align, PAGE);
}

#[test]
fn hugetlb_rounds_to_2mib() {
    let r = mmap(0, 4096, RW, ANON | MAP_HUGETLB, -1, 0).unwrap();
    assert_eq!((r.len, r.align), (HUGE_PAGE, HUGE_PAGE));
    assert!(mmap(0, 4096, RW, ANON | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0).is_ok());
    assert_eq!(
        mmap(
            0,
            4096,
            RW,
            ANON | MAP_HUGETLB | 30 << MAP_HUGE_SHIFT,
            -1,
            0
        ),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mmap(0x20_1000, 4096, RW, ANON | MAP_HUGETLB | MAP_FIXED, -1, 0),
        Err(Errno::EINVAL)
    );
}

#[test]
fn guard_rules() {
    let g = mmap(0, 4096, 0, MAP_GUARD, -1, 0).unwrap();
    assert_eq!(g.kind, Kind::Guard);
    for bad in [
        mmap(0, 4096, 1, MAP_GUARD, -1, 0),
        mmap(0, 4096, 0, MAP_GUARD, 3, 0),
        mmap(0, 4096, 0, MAP_GUARD, -1, 4096),
    ] {
        assert_eq!(bad, Err(Errno::EINVAL));
    }
    for other in [
        MAP_ANON,
        MAP_PRIVATE,
        MAP_SHARED,
        MAP_STACK,
        MAP_PREFAULT_READ,
    ] {
        assert_eq!(
            mmap(0, 4096, 0, MAP_GUARD | other, -1, 0),
            Err(Errno::EINVAL),
            "{other:#x}"
        );
    }
}

#[test]
fn stack_rules() {
    let s = mmap(0, 1 << 20, RW, MAP_STACK, -1, 0).unwrap();
    assert_eq!((s.kind, s.sharing), (Kind::Stack, Sharing::Private));
    assert!(s.vma_flags.contains(VmaFlags::GROWSDOWN));
    assert_eq!(mmap(0, 4096, 1, MAP_STACK, -1, 0), Err(Errno::EINVAL));
    assert_eq!(mmap(0, 4096, RW, MAP_STACK, 3, 0), Err(Errno::EINVAL));
    assert_eq!(
        mmap(0, 4096, RW, MAP_STACK | MAP_SHARED, -1, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mmap(0, 4096, RW, MAP_GROWSDOWN | MAP_PRIVATE, 3, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        mmap(0, 4096, RW, ANON | MAP_GROWSDOWN, -1, 0).unwrap().kind,
        Kind::Stack
    );
}

#[test]
fn recorded_flags_and_population() {
    let r = mmap(
        0,
        4096,
        RW,
        ANON | MAP_LOCKED
            | MAP_NORESERVE
            | MAP_NOCORE
            | MAP_NOSYNC
            | MAP_HASSEMAPHORE
            | MAP_INHERIT
            | MAP_UNINITIALIZED,
        -1,
        0,
    )
    .unwrap();
    assert!(r.populate);
    for f in [
        VmaFlags::LOCKED,
        VmaFlags::NORESERVE,
        VmaFlags::NOCORE,
        VmaFlags::NOSYNC,
        VmaFlags::HASSEMAPHORE,
        VmaFlags::INHERIT_FLAG,
        VmaFlags::UNINITIALIZED,
    ] {
        assert!(r.vma_flags.contains(f), "{f:?}");
    }
    assert!(
        mmap(0, 4096, RW, ANON | MAP_POPULATE, -1, 0)
            .unwrap()
            .populate
    );
}

#[test]
fn companion_ranges() {
    assert_eq!(validate_munmap(0x1001, 4096), Err(Errno::EINVAL));
    assert_eq!(validate_munmap(0x1000, 0), Err(Errno::EINVAL));
    assert_eq!(validate_munmap(0x1000, u64::MAX), Err(Errno::EINVAL));
    assert_eq!(
        validate_munmap(0x1000, 1),
        Ok(Span {
            start: 0x1000,
            end: 0x2000
        })
    );
    assert_eq!(
        validate_mprotect(0x1000, 0, 1).map(|r| r.0.is_empty()),
        Ok(true)
    );
    assert_eq!(validate_mprotect(0x1000, 4096, 8), Err(Errno::EINVAL));
    assert_eq!(validate_mprotect(0x1001, 4096, 1), Err(Errno::EINVAL));
    assert_eq!(validate_mprotect(USER_END, 4096, 1), Err(Errno::ENOMEM));
    assert_eq!(
        validate_msync(0x1000, 4096, MS_SYNC | MS_ASYNC),
        Err(Errno::EINVAL)
    );
    assert_eq!(validate_msync(0x1000, 4096, 8), Err(Errno::EINVAL));
    assert_eq!(validate_msync(0x1001, 4096, MS_SYNC), Err(Errno::EINVAL));
    assert!(validate_msync(0x1000, 4096, MS_SYNC | MS_INVALIDATE).is_ok());
    assert_eq!(validate_madvise(0x1000, 4096, 12), Err(Errno::EINVAL));
    assert_eq!(validate_madvise(0x1000, u64::MAX, 4), Err(Errno::EINVAL));
    assert_eq!(validate_madvise(USER_END, 4096, 4), Err(Errno::ENOMEM));
    assert_eq!(
        validate_madvise(0x1000, 4096, 4).map(|r| r.1),
        Ok(Madvice::DontNeed)
    );
    assert_eq!(
        validate_mlock(0x1234, 10),
        Ok(Span {
            start: 0x1000,
            end: 0x2000
        })
    );
    assert_eq!(validate_mlock(u64::MAX, 2), Err(Errno::EINVAL));
    assert_eq!(validate_minherit(0x1000, 4096, 4), Err(Errno::EINVAL));
    assert_eq!(
        validate_minherit(0x1000, 4096, 3).map(|r| r.1),
        Ok(Inherit::Zero)
    );
}
