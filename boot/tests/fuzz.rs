//! The syscall fuzzer (`userland/programs/src/bin/fuzz.rs`) on a short
//! fixed seed: every answer matches its models, no call takes the kernel
//! down, and every frame comes back. `make fuzz SEED=... N=...` runs long ones.

mod common;

use common::{assert_report_passed, program};

#[test]
fn a_short_fixed_seed_fuzz_run_is_clean() {
    let run = program("fuzz", &["1", "1500"]);
    assert_report_passed(&run);
    assert!(
        run.stdout.contains("fuzz: seed 1: 1500 operations"),
        "no summary:\n{}",
        run.stdout
    );
    assert!(!run.stdout.contains("panicked"), "{}", run.stdout);
}

/// The chaos fuzzer (`userland/programs/src/bin/chaos.rs`) on two fixed
/// seeds: children making random calls to every syscall number, forged
/// signal frames and malformed ELFs; the kernel neither panics nor hangs,
/// every child is reaped and init's memory is intact. `make chaos SEED=
/// N=` runs long ones.
#[test]
fn chaos_fixed_seeds_leave_the_kernel_running() {
    for seed in ["1", "2"] {
        let run = program("chaos", &[seed, "40"]);
        assert_report_passed(&run);
        assert!(
            run.stdout
                .contains(&format!("chaos: seed {seed}: 40 children")),
            "no summary:\n{}",
            run.stdout
        );
        assert!(!run.stdout.contains("panicked"), "{}", run.stdout);
    }
}

/// The stress program (`userland/programs/src/bin/stress.rs`), briefly:
/// workers forking, signalling themselves and writing copy-on-write pages,
/// every byte and callee-saved register checked, every wait4 answer exact.
#[test]
fn a_short_stress_run_keeps_every_byte_and_register() {
    let run = program("stress", &["4", "25"]);
    assert_report_passed(&run);
    assert!(
        run.stdout.contains("stress: 4 workers, 25 rounds"),
        "no summary:\n{}",
        run.stdout
    );
}
