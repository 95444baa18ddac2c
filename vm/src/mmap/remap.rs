//! The rules of mremap(2) that need no address space: flags, alignment,
//! lengths, and a fixed target's place (Linux's `SYSCALL_DEFINE5(mremap)`
//! and `mremap_to` in mm/mremap.c). What needs the space (is `old` mapped,
//! does the range fit one mapping, is there room above it) is
//! `space::AddressSpace::mremap`'s.

use crate::errno::Errno;
use crate::space::USER_END;
use crate::vma::PAGE;

pub const MREMAP_MAYMOVE: u64 = 1;
pub const MREMAP_FIXED: u64 = 2;
pub const MREMAP_DONTUNMAP: u64 = 4;

/// A checked mremap: `old` page-aligned, both lengths rounded up to pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemapRequest {
    pub old: u64,
    /// 0 asks for a second mapping of a shared one (Linux's "duplicate").
    pub old_len: u64,
    pub new_len: u64,
    pub may_move: bool,
    /// MREMAP_FIXED's address, not yet checked: Linux looks at it only
    /// after finding the old mapping (EFAULT comes first), see `check_fixed`.
    pub fixed: Option<u64>,
    /// `new_address` as given: without MREMAP_FIXED, MREMAP_DONTUNMAP takes
    /// it as a hint (Linux passes it to get_unmapped_area).
    pub hint: u64,
    /// Move the pages but leave the old mapping in place, empty.
    pub dont_unmap: bool,
}

/// mremap's arguments as Linux checks them before it looks at the space:
/// EINVAL for an undefined flag, MREMAP_FIXED or MREMAP_DONTUNMAP without
/// MREMAP_MAYMOVE, MREMAP_DONTUNMAP with a change of size (the lengths as
/// given, before rounding), an unaligned `old`, and a new length that
/// rounds to 0 (a length whose rounding wraps does too, as Linux's
/// PAGE_ALIGN wraps).
pub fn validate_mremap(
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: u64,
    new_addr: u64,
) -> Result<RemapRequest, Errno> {
    let has = |f| flags & f != 0;
    if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
        || (has(MREMAP_FIXED) && !has(MREMAP_MAYMOVE))
        || (has(MREMAP_DONTUNMAP) && (!has(MREMAP_MAYMOVE) || old_len != new_len))
        || !old.is_multiple_of(PAGE)
    {
        return Err(Errno::EINVAL);
    }
    let round = |len: u64| len.wrapping_add(PAGE - 1) & !(PAGE - 1);
    let (old_len, new_len) = (round(old_len), round(new_len));
    if new_len == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(RemapRequest {
        old,
        old_len,
        new_len,
        may_move: has(MREMAP_MAYMOVE),
        fixed: has(MREMAP_FIXED).then_some(new_addr),
        hint: new_addr,
        dont_unmap: has(MREMAP_DONTUNMAP),
    })
}

impl RemapRequest {
    /// MREMAP_FIXED's target, checked as `mremap_to` does: EINVAL when it
    /// is unaligned, runs past the user half, or overlaps the old range.
    pub fn check_fixed(&self) -> Result<Option<u64>, Errno> {
        let Some(new) = self.fixed else {
            return Ok(None);
        };
        if !new.is_multiple_of(PAGE) || self.new_len > USER_END || new > USER_END - self.new_len {
            return Err(Errno::EINVAL);
        }
        let old_end = self.old.checked_add(self.old_len).ok_or(Errno::EINVAL)?;
        if old_end > new && new + self.new_len > self.old {
            return Err(Errno::EINVAL);
        }
        Ok(Some(new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u64 = 0x10_0000;

    #[test]
    fn undefined_flags_and_flag_combinations_are_einval() {
        let bad = [
            0x8,
            MREMAP_FIXED,
            MREMAP_DONTUNMAP,
            MREMAP_FIXED | MREMAP_DONTUNMAP,
        ];
        for flags in bad {
            assert_eq!(
                validate_mremap(A, PAGE, PAGE, flags, 0),
                Err(Errno::EINVAL),
                "{flags:#x}"
            );
        }
        // DONTUNMAP may not resize, not even by less than a page.
        let dontunmap = MREMAP_MAYMOVE | MREMAP_DONTUNMAP;
        assert_eq!(
            validate_mremap(A, PAGE, PAGE + 1, dontunmap, 0),
            Err(Errno::EINVAL)
        );
        assert!(validate_mremap(A, PAGE, PAGE, dontunmap, 0).is_ok());
    }

    #[test]
    fn lengths_round_up_and_a_new_length_of_zero_is_einval() {
        assert_eq!(validate_mremap(A + 1, PAGE, PAGE, 0, 0), Err(Errno::EINVAL));
        assert_eq!(validate_mremap(A, PAGE, 0, 0, 0), Err(Errno::EINVAL));
        // Rounding u64::MAX wraps to 0, as PAGE_ALIGN does.
        assert_eq!(validate_mremap(A, PAGE, u64::MAX, 0, 0), Err(Errno::EINVAL));
        let req = validate_mremap(A, 1, PAGE + 1, MREMAP_MAYMOVE, 0).unwrap();
        assert_eq!((req.old_len, req.new_len), (PAGE, 2 * PAGE));
        // An old length of 0 is allowed here (the space decides).
        assert_eq!(
            validate_mremap(A, 0, PAGE, MREMAP_MAYMOVE, 0)
                .unwrap()
                .old_len,
            0
        );
    }

    #[test]
    fn a_fixed_target_must_be_aligned_in_range_and_apart_from_the_old_range() {
        let fixed = MREMAP_MAYMOVE | MREMAP_FIXED;
        let check = |new, old_len, new_len| {
            validate_mremap(A, old_len, new_len, fixed, new)
                .unwrap()
                .check_fixed()
        };
        assert_eq!(check(A + 8 * PAGE, PAGE, PAGE), Ok(Some(A + 8 * PAGE)));
        assert_eq!(check(A + 8 * PAGE + 1, PAGE, PAGE), Err(Errno::EINVAL));
        assert_eq!(check(A + PAGE, 2 * PAGE, PAGE), Err(Errno::EINVAL));
        assert_eq!(check(A - PAGE, PAGE, 2 * PAGE), Err(Errno::EINVAL));
        assert_eq!(check(A - PAGE, PAGE, PAGE), Ok(Some(A - PAGE)));
        assert_eq!(check(USER_END - PAGE, PAGE, 2 * PAGE), Err(Errno::EINVAL));
        assert_eq!(
            check(USER_END - PAGE, PAGE, PAGE),
            Ok(Some(USER_END - PAGE))
        );
        let anywhere = validate_mremap(A, PAGE, PAGE, MREMAP_MAYMOVE, 7).unwrap();
        assert_eq!(anywhere.check_fixed(), Ok(None));
    }
}
