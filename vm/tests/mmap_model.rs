//! Model test: the mmap argument rules (`vm::mmap::validate_*`) against a
//! second, deliberately plain reading of DESIGN §2 and the spec pages.
//!
//! The model is written clause by clause from the text, not from
//! `vm/src/mmap/mod.rs`: for one set of arguments it lists every rule they break
//! (each with the errno its clause names) and, when they break none, what
//! the mapping must be. The validator may report any one of the broken rules
//! (the text gives no order between them), but it must report one exactly
//! when the model finds one, and its accepted requests must say what the
//! model says about length, type, placement and alignment.

use proptest::prelude::*;
use vm::errno::Errno;
use vm::mmap::{self, Kind, OnConflict, Placement, Prot, Sharing};
use vm::space::{USER_END, USER_START};
use vm::vma::HUGE_PAGE;

const PAGE: u64 = 4096;
const HUGE: u64 = 2 << 20;
const TWO_GIB: u64 = 1 << 31;

// The flag values as DESIGN §2 lists them (spelled out again on purpose).
const SHARED: u64 = 0x1;
const PRIVATE: u64 = 0x2;
const SHARED_VALIDATE: u64 = 0x3;
const FIXED: u64 = 0x10;
const ANON: u64 = 0x20;
const BIT32: u64 = 0x40;
const GROWSDOWN: u64 = 0x100;
const LOCKED: u64 = 0x2000;
const NORESERVE: u64 = 0x4000;
const POPULATE: u64 = 0x8000;
const STACK: u64 = 0x20000;
const HUGETLB: u64 = 0x40000;
const FIXED_NOREPLACE: u64 = 0x100000;
const UNINITIALIZED: u64 = 0x400_0000;
const HUGE_SHIFT: u64 = 26;
const ALIGNED_SUPER: u64 = 1 << 32;
const GUARD: u64 = 1 << 40;
const EXCL: u64 = 1 << 41;
const NOCORE: u64 = 1 << 42;
const NOSYNC: u64 = 1 << 43;
const HASSEMAPHORE: u64 = 1 << 44;
const TRYFIXED: u64 = 1 << 45;
const PREFAULT_READ: u64 = 1 << 46;
const INHERIT: u64 = 1 << 47;
/// Linux's older flags a legacy MAP_SHARED/MAP_PRIVATE call may carry and
/// Linux still knows (MAP_DENYWRITE, MAP_EXECUTABLE, MAP_NONBLOCK).
const LINUX_LEGACY: u64 = 0x800 | 0x1000 | 0x10000;

/// What the model expects the request to be when no rule is broken.
#[derive(Debug)]
struct Expected {
    len: u64,
    sharing: Sharing,
    kind: Kind,
    fixed: Option<(u64, OnConflict)>,
    try_fixed: bool,
    /// The alignment the address must have (at least).
    align: u64,
    below_2g: bool,
    populate: bool,
}

/// Every rule of DESIGN §2 the arguments break, as the errnos the rules
/// name, under BSD rules (`bsd`) or Linux's.
#[allow(clippy::too_many_arguments)]
fn model_mmap(
    bsd: bool,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
    fd: i32,
    offset: u64,
) -> Result<Expected, Vec<Errno>> {
    use Errno::*;
    let mut broken = Vec::new();
    let has = |f: u64| flags & f != 0;

    // "Undefined bits in prot: EINVAL."
    if prot & !7 != 0 {
        broken.push(EINVAL);
    }
    // "Any other set bit in the upper half is an undefined flag: EINVAL."
    let upper_defined = 0xff << 32
        | GUARD
        | EXCL
        | NOCORE
        | NOSYNC
        | HASSEMAPHORE
        | TRYFIXED
        | PREFAULT_READ
        | INHERIT;
    let undefined_upper = flags & 0xffff_ffff_0000_0000 & !upper_defined != 0;
    if undefined_upper {
        broken.push(EINVAL);
    }
    // MAP_ALIGNED(n): "n in 12..=47, else EINVAL" (1 is MAP_ALIGNED_SUPER).
    let n = (flags >> 32) & 0xff;
    if !(n == 0 || n == 1 || (12..=47).contains(&n)) {
        broken.push(EINVAL);
    }
    // The type: Linux's MAP_TYPE field (0xf); 0x3 is MAP_SHARED_VALIDATE,
    // which refuses flags it does not know with EOPNOTSUPP.
    let typ = flags & 0xf;
    let guard = has(GUARD);
    let stack = has(STACK);
    let linux_known = 0xf
        | FIXED
        | ANON
        | BIT32
        | GROWSDOWN
        | LOCKED
        | NORESERVE
        | POPULATE
        | STACK
        | HUGETLB
        | FIXED_NOREPLACE
        | UNINITIALIZED
        | 0x3f << HUGE_SHIFT
        | LINUX_LEGACY;
    if typ == SHARED_VALIDATE && flags & 0xffff_ffff & !linux_known != 0 {
        broken.push(EOPNOTSUPP);
    }
    if undefined_upper && typ == SHARED_VALIDATE {
        broken.push(EOPNOTSUPP);
    }
    // "A type is required unless MAP_GUARD or MAP_STACK is given."
    let sharing = match typ {
        SHARED | SHARED_VALIDATE => Sharing::Shared,
        PRIVATE => Sharing::Private,
        0 if guard || stack => Sharing::Private,
        _ => {
            broken.push(EINVAL);
            Sharing::Private
        }
    };
    // "The len argument was equal to zero." (EINVAL); too long: ENOMEM.
    let unit = if has(HUGETLB) { HUGE } else { PAGE };
    let rounded = len.div_ceil(unit).checked_mul(unit);
    if len == 0 {
        broken.push(EINVAL);
    }
    let rounded = match rounded {
        Some(r) if r <= USER_END => r,
        _ => {
            broken.push(ENOMEM);
            0
        }
    };
    let anonymous = has(ANON) || guard || stack;

    let kind = if guard {
        // "MAP_GUARD: PROT_NONE only, fd -1, offset 0, no other type flag".
        let other = typ != 0 || has(ANON) || stack || has(GROWSDOWN) || has(PREFAULT_READ);
        if other || fd != -1 || offset != 0 || prot != 0 {
            broken.push(EINVAL);
        }
        Kind::Guard
    } else if stack || has(GROWSDOWN) {
        // "MAP_STACK ... implies anonymous private memory; fd must be -1,
        // offset 0, prot must include READ and WRITE"; MAP_GROWSDOWN grows
        // the same way, so it is anonymous memory too.
        if !anonymous || sharing == Sharing::Shared || fd != -1 || offset != 0 || prot & 3 != 3 {
            broken.push(EINVAL);
        }
        Kind::Stack
    } else if anonymous {
        // "MAP_ANONYMOUS with fd != -1 or offset != 0: ignored under Linux
        // rules, EINVAL under BSD rules"; Linux still refuses an offset
        // that is not page-aligned.
        if bsd && (fd != -1 || offset != 0) || !offset.is_multiple_of(PAGE) {
            broken.push(EINVAL);
        }
        Kind::Anonymous
    } else {
        // A file: Linux wants a page-aligned offset (EINVAL); FreeBSD refuses
        // a negative one (EINVAL); "offset + len overflowing: EOVERFLOW" (a
        // negative offset overflows too, by Linux's arithmetic).
        if !offset.is_multiple_of(PAGE) || (offset as i64) < 0 {
            broken.push(EINVAL);
        }
        if (offset as i64) < 0
            || offset
                .checked_add(rounded)
                .is_none_or(|end| end > i64::MAX as u64)
        {
            broken.push(EOVERFLOW);
        }
        // Huge pages back anonymous memory only (Linux: EINVAL off hugetlbfs).
        if has(HUGETLB) {
            broken.push(EINVAL);
        }
        Kind::File { fd, offset }
    };

    // MAP_HUGETLB: only MAP_HUGE_2MB (or the default size) exists here.
    if has(HUGETLB) && !matches!((flags >> HUGE_SHIFT) & 0x3f, 0 | 21) {
        broken.push(EINVAL);
    }
    let mut align = if (12..=47).contains(&n) { 1 << n } else { PAGE };
    if has(HUGETLB) {
        align = align.max(HUGE);
    }

    // Placement. "MAP_EXCL: only with MAP_FIXED."
    if has(EXCL) && !has(FIXED) {
        broken.push(EINVAL);
    }
    let fixed = has(FIXED) || has(FIXED_NOREPLACE);
    let fixed = if fixed {
        // "addr must be a multiple of the page size" (of 2^n with MAP_ALIGNED,
        // of 2 MiB with MAP_HUGETLB).
        if !addr.is_multiple_of(align) {
            broken.push(EINVAL);
        }
        let end = addr.checked_add(rounded.max(unit));
        // "MAP_FIXED | MAP_32BIT beyond 2 GiB: EINVAL."
        if has(BIT32) && end.is_none_or(|e| e > TWO_GIB) {
            broken.push(EINVAL);
        }
        // "Out of the user address space with MAP_FIXED: ENOMEM (Linux)";
        // BSD rules: "MAP_FIXED outside the user space: EINVAL".
        if addr < USER_START || end.is_none_or(|e| e > USER_END) {
            broken.push(if bsd { EINVAL } else { ENOMEM });
        }
        let on_conflict = if has(FIXED_NOREPLACE) {
            OnConflict::FailEexist
        } else if has(EXCL) {
            OnConflict::FailEinval
        } else {
            OnConflict::Replace
        };
        Some((addr, on_conflict))
    } else {
        None
    };

    if !broken.is_empty() {
        return Err(broken);
    }
    Ok(Expected {
        len: rounded,
        sharing,
        kind,
        fixed,
        try_fixed: fixed.is_none() && has(TRYFIXED),
        align,
        below_2g: has(BIT32),
        populate: has(POPULATE) || has(LOCKED),
    })
}

/// The validator against the model under both rule sets.
fn check_mmap(addr: u64, len: u64, prot: u64, flags: u64, fd: i32, offset: u64) {
    check_mmap_under(false, addr, len, prot, flags, fd, offset);
    check_mmap_under(true, addr, len, prot, flags, fd, offset);
}

#[allow(clippy::too_many_arguments)]
fn check_mmap_under(bsd: bool, addr: u64, len: u64, prot: u64, flags: u64, fd: i32, offset: u64) {
    let rules = if bsd {
        mmap::Rules::Bsd
    } else {
        mmap::Rules::Linux
    };
    let got = mmap::validate_mmap_under(rules, addr, len, prot, flags, fd, offset);
    let want = model_mmap(bsd, addr, len, prot, flags, fd, offset);
    let args = format!(
        "mmap({addr:#x}, {len:#x}, {prot:#x}, {flags:#x}, {fd}, {offset:#x}) under {rules:?} rules"
    );
    match (got, want) {
        (Err(e), Err(allowed)) => assert!(
            allowed.contains(&e),
            "{args}: validator says {e:?}, the model allows only {allowed:?}"
        ),
        (Err(e), Ok(want)) => {
            panic!("{args}: validator refuses ({e:?}), the model accepts: {want:?}")
        }
        (Ok(req), Err(allowed)) => {
            panic!("{args}: validator accepts {req:?}, the model refuses with {allowed:?}")
        }
        (Ok(req), Ok(want)) => {
            assert_eq!(req.len, want.len, "{args}: length");
            assert_eq!(req.sharing, want.sharing, "{args}: sharing");
            assert_eq!(req.kind, want.kind, "{args}: kind");
            assert_eq!(
                req.prot,
                Prot::from_bits(prot as u32).unwrap(),
                "{args}: prot"
            );
            assert_eq!(req.below_2g, want.below_2g, "{args}: MAP_32BIT");
            assert_eq!(req.populate, want.populate, "{args}: populate");
            assert!(
                req.align >= want.align && req.align.is_power_of_two(),
                "{args}: alignment {:#x}, want at least {:#x}",
                req.align,
                want.align
            );
            match (req.placement, want.fixed) {
                (Placement::Fixed { addr, on_conflict }, Some(fixed)) => {
                    assert_eq!((addr, on_conflict), fixed, "{args}: fixed placement")
                }
                (Placement::TryFixed { .. }, None) => assert!(want.try_fixed, "{args}"),
                (Placement::Anywhere { hint }, None) => {
                    assert!(!want.try_fixed, "{args}: MAP_TRYFIXED lost");
                    // A file placed for 2 MiB entries: its offset's phase
                    // (0: no hint).
                    assert!(
                        hint <= addr && (hint == 0 || hint % req.align == req.phase),
                        "{args}: hint {hint:#x}"
                    );
                    assert!(req.phase == 0 || req.align == HUGE_PAGE, "{args}: phase");
                }
                (got, want) => panic!("{args}: placement {got:?}, model {want:?}"),
            }
        }
    }
}

// ---- the companions ------------------------------------------------------

/// What an empty range gets.
#[derive(Clone, Copy, PartialEq)]
enum Empty {
    /// munmap: "zero length ... EINVAL".
    Einval,
    /// mprotect, msync, madvise: success, wherever it lies.
    Ok,
    /// mincore: success if it starts in the user half (Linux's access_ok).
    OkInUserHalf,
}

/// munmap, mprotect, mincore, msync, madvise: Linux's checks of the range.
/// `past_end`: what a range beyond the user half gets.
fn model_range(addr: u64, len: u64, empty: Empty, past_end: Errno) -> Vec<Errno> {
    let mut broken = Vec::new();
    // "unaligned address ... EINVAL".
    if !addr.is_multiple_of(PAGE) {
        broken.push(Errno::EINVAL);
    }
    if len == 0 {
        match empty {
            Empty::Einval => broken.push(Errno::EINVAL),
            Empty::OkInUserHalf if addr > USER_END => broken.push(Errno::ENOMEM),
            _ => {}
        }
        return broken;
    }
    let end = len
        .div_ceil(PAGE)
        .checked_mul(PAGE)
        .and_then(|l| addr.checked_add(l));
    match end {
        // An overflowing length: Linux's own errno for each call.
        None => broken.push(past_end),
        Some(end) if end > USER_END => broken.push(past_end),
        Some(_) => {}
    }
    broken
}

fn compare<T: std::fmt::Debug>(what: &str, got: Result<T, Errno>, allowed: Vec<Errno>) {
    match got {
        Ok(v) => assert!(
            allowed.is_empty(),
            "{what}: accepted ({v:?}), model: {allowed:?}"
        ),
        Err(e) => assert!(
            allowed.contains(&e),
            "{what}: {e:?}, the model allows {allowed:?}"
        ),
    }
}

fn check_companions(addr: u64, len: u64, prot: u64, advice: u64, msync_flags: u64) {
    let args = format!("({addr:#x}, {len:#x})");
    compare(
        &format!("munmap{args}"),
        mmap::validate_munmap(addr, len),
        model_range(addr, len, Empty::Einval, Errno::EINVAL),
    );

    let mut allowed = model_range(addr, len, Empty::Ok, Errno::ENOMEM);
    if prot & !7 != 0 {
        allowed.push(Errno::EINVAL);
    }
    compare(
        &format!("mprotect{args} prot {prot:#x}"),
        mmap::validate_mprotect(addr, len, prot),
        allowed,
    );

    compare(
        &format!("mincore{args}"),
        mmap::validate_mincore(addr, len),
        model_range(addr, len, Empty::OkInUserHalf, Errno::ENOMEM),
    );

    let mut allowed = model_range(addr, len, Empty::Ok, Errno::ENOMEM);
    if msync_flags & !7 != 0 || msync_flags & 5 == 5 {
        allowed.push(Errno::EINVAL); // unknown flags; MS_ASYNC with MS_SYNC
    }
    compare(
        &format!("msync{args} flags {msync_flags:#x}"),
        mmap::validate_msync(addr, len, msync_flags),
        allowed,
    );

    // madvise: an overflowing length is EINVAL (Linux), past the user half
    // nothing is mapped (ENOMEM).
    let mut allowed = model_range(addr, len, Empty::Ok, Errno::ENOMEM);
    let wraps = len
        .div_ceil(PAGE)
        .checked_mul(PAGE)
        .and_then(|l| addr.checked_add(l))
        .is_none();
    if wraps {
        allowed.push(Errno::EINVAL);
    }
    // Linux's advice values that pageos implements (KSM's 12/13 and
    // MADV_COLLAPSE 25 are not built in).
    let known = [
        0, 1, 2, 3, 4, 8, 9, 10, 11, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
    ];
    if !known.contains(&advice) {
        allowed.push(Errno::EINVAL);
    }
    compare(
        &format!("madvise{args} advice {advice}"),
        mmap::validate_madvise(addr, len, advice),
        allowed,
    );
}

// ---- generators --------------------------------------------------------

fn address() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(PAGE),
        Just(USER_START),
        Just(USER_START - PAGE),
        Just(TWO_GIB - PAGE),
        Just(TWO_GIB - 2 * PAGE),
        Just(TWO_GIB),
        Just(0x4000_0000u64),
        Just(USER_END - PAGE),
        Just(USER_END),
        Just(1u64 << 47),
        Just(0xffff_8000_0000_0000u64),
        Just(!(PAGE - 1)),
        (1u64..0x4000).prop_map(|p| p * PAGE),
        (1u64..64).prop_map(|p| p * HUGE),
        (1u64..64).prop_map(|p| p * HUGE + PAGE),
        any::<u64>(),
        (0u64..0x10_0000).prop_map(|a| a + 0x1_0001),
    ]
}

fn length() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        Just(PAGE),
        Just(PAGE + 1),
        Just(HUGE),
        Just(HUGE + 1),
        Just(USER_END - USER_START),
        Just(USER_END),
        Just(USER_END + 1),
        Just(u64::MAX),
        Just(u64::MAX - PAGE + 2),
        Just(i64::MAX as u64),
        (1u64..64).prop_map(|p| p * PAGE),
        1u64..0x10_0000,
        any::<u64>(),
    ]
}

fn flags() -> impl Strategy<Value = u64> {
    let known = [
        SHARED,
        PRIVATE,
        FIXED,
        ANON,
        BIT32,
        GROWSDOWN,
        LOCKED,
        NORESERVE,
        POPULATE,
        STACK,
        HUGETLB,
        FIXED_NOREPLACE,
        UNINITIALIZED,
        21 << HUGE_SHIFT,
        ALIGNED_SUPER,
        GUARD,
        EXCL,
        NOCORE,
        NOSYNC,
        HASSEMAPHORE,
        TRYFIXED,
        PREFAULT_READ,
        INHERIT,
    ];
    let typ = prop_oneof![
        Just(PRIVATE),
        Just(SHARED),
        Just(SHARED_VALIDATE),
        Just(0u64),
        0u64..16,
    ];
    let anon = prop_oneof![Just(ANON), Just(0u64)];
    let extras = proptest::collection::vec(proptest::sample::select(known.to_vec()), 0..4);
    let align = prop_oneof![
        4 => Just(0u64),
        1 => (0u64..256).prop_map(|n| n << 32),
        1 => (12u64..=47).prop_map(|n| n << 32),
    ];
    let noise = prop_oneof![
        8 => Just(0u64),
        1 => (0u32..64).prop_map(|b| 1u64 << b),
        1 => any::<u64>(),
    ];
    (typ, anon, extras, align, noise).prop_map(|(t, a, e, al, n)| {
        let extra = e.into_iter().fold(0, |acc, f| acc | f);
        t | a | extra | al | n
    })
}

fn prot() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..8, 1 => 0u64..64, 1 => any::<u64>()]
}

fn fd() -> impl Strategy<Value = i32> {
    prop_oneof![Just(-1), Just(-1), Just(0), Just(3), Just(-2), any::<i32>()]
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => Just(0u64),
        1 => Just(PAGE),
        1 => Just(100u64),
        1 => Just((-4096i64) as u64),
        1 => Just(i64::MAX as u64 & !(PAGE - 1)),
        1 => (0u64..1024).prop_map(|p| p * PAGE),
        1 => any::<u64>(),
    ]
}

proptest! {
    #![proptest_config(cases(2048))]

    #[test]
    fn mmap_validator_agrees_with_the_model(
        addr in address(),
        len in length(),
        prot in prot(),
        flags in flags(),
        fd in fd(),
        offset in offset(),
    ) {
        check_mmap(addr, len, prot, flags, fd, offset);
    }

    #[test]
    fn companion_validators_agree_with_the_model(
        addr in address(),
        len in length(),
        prot in prot(),
        advice in prop_oneof![0u64..30, any::<u64>()],
        msync_flags in prop_oneof![0u64..8, 0u64..64, any::<u64>()],
    ) {
        check_companions(addr, len, prot, advice, msync_flags);
    }
}

/// Cases a reader would doubt, pinned so that a change of mind shows.
#[test]
fn the_model_and_the_validator_agree_on_pinned_cases() {
    let rw = 3;
    for (addr, len, prot, flags, fd, off) in [
        (0, PAGE, rw, PRIVATE | ANON, -1, 0),
        (0, PAGE, rw, ANON, -1, 0),
        (0, PAGE, 0, GUARD, -1, 0),
        (0, PAGE, 0, GUARD | FIXED, -1, 0),
        (0x40_0000, PAGE, 0, GUARD | FIXED, -1, 0),
        (0, PAGE, rw, STACK, -1, 0),
        (0, PAGE, 1, STACK, -1, 0),
        (0, PAGE, rw, GROWSDOWN | PRIVATE, -1, 0),
        (0, PAGE, rw, SHARED_VALIDATE | ANON | 0x200, -1, 0),
        (0, PAGE, rw, SHARED_VALIDATE | ANON | 1 << 50, -1, 0),
        (0, PAGE, rw, PRIVATE, 3, (-4096i64) as u64),
        (
            0x7fff_e000,
            2 * PAGE,
            rw,
            PRIVATE | ANON | FIXED | BIT32,
            -1,
            0,
        ),
        (
            0x7fff_f000,
            2 * PAGE,
            rw,
            PRIVATE | ANON | FIXED | BIT32,
            -1,
            0,
        ),
        (USER_END - PAGE, PAGE, rw, PRIVATE | ANON | FIXED, -1, 0),
        (USER_END, PAGE, rw, PRIVATE | ANON | FIXED, -1, 0),
        (0x20_0000, 1, rw, PRIVATE | ANON | FIXED | HUGETLB, -1, 0),
        (0, PAGE, rw, PRIVATE | ANON | HUGETLB | UNINITIALIZED, -1, 0),
        (0x40_0000, PAGE, rw, PRIVATE | ANON | EXCL, -1, 0),
        (
            0x40_0000,
            PAGE,
            rw,
            PRIVATE | ANON | FIXED_NOREPLACE | EXCL,
            -1,
            0,
        ),
    ] {
        check_mmap(addr, len, prot, flags, fd, off);
    }
    for (addr, len) in [
        (0x1000, 0),
        (0x1001, PAGE),
        (0x1000, u64::MAX),
        (USER_END - PAGE, PAGE),
        (USER_END, PAGE),
        (!(PAGE - 1), PAGE),
    ] {
        check_companions(addr, len, 1, 4, 4);
    }
}

/// `n` proptest cases, unless PROPTEST_CASES says otherwise (`make
/// miri-short` runs a handful under Miri, where each case is slow).
fn cases(n: u32) -> ProptestConfig {
    let from_env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok());
    ProptestConfig::with_cases(from_env.unwrap_or(n))
}
