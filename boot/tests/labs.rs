//! The labs that need the kernel (`docs/src/labs.md`): each boots
//! `labtest N` as init and checks its report. They fail until the lab is
//! done, so they are `#[ignore]`d: `make test` skips them, `make lab N=5`
//! runs lab 5's with `--ignored`.

mod common;

use common::{assert_report_passed, program};

#[test]
#[ignore = "lab 5: see docs/src/labs.md"]
fn lab5_mremap_keeps_2mib_pages() {
    let run = program("labtest", &["5"]);
    assert_report_passed(&run);
}
