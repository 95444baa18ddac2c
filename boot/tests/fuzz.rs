//! The syscall fuzzer (`userland/programs/src/bin/fuzz.rs`) on a short
//! fixed seed: every answer matches its models, no call takes the kernel
//! down, and every frame comes back. `make fuzz SEED=... N=...` runs long ones.

mod common;

use common::{assert_report_passed, pageos};

/// Seconds a boot may take: 4 vCPUs on 2 loaded host cores, passing the
/// kernel lock around, take from 3 s to over a minute for the same run.
const SMP_TIMEOUT: &str = "300";

/// Boot `program` as init with `args` on `cpus` CPUs; its report passed,
/// no panic, every CPU came up, and its summary line says `summary`.
fn run_on(cpus: &str, program: &str, args: &[&str], summary: &str) {
    let init = format!("init=/bin/{program}");
    let mut all = vec![
        "--cpus",
        cpus,
        "--timeout",
        SMP_TIMEOUT,
        "--kernel-arg",
        &init,
        "--",
    ];
    all.extend_from_slice(args);
    let run = pageos(&all);
    let up = format!("smp: {cpus} of {cpus} CPUs up");
    assert!(
        cpus == "1" || run.stdout.contains(&up),
        "no {up:?} line:\n{}",
        run.stdout
    );
    assert_report_passed(&run);
    assert!(run.stdout.contains(summary), "no summary:\n{}", run.stdout);
    assert!(!run.stdout.contains("panicked"), "{}", run.stdout);
}

#[test]
fn a_short_fixed_seed_fuzz_run_is_clean() {
    fuzz_on("1");
}

/// The same run on several CPUs: the fuzzer's forked children run beside
/// it, so its munmaps and mprotects need their shootdowns.
#[test]
fn a_short_fixed_seed_fuzz_run_is_clean_with_two_cpus() {
    fuzz_on("2");
}

#[test]
fn a_short_fixed_seed_fuzz_run_is_clean_with_four_cpus() {
    fuzz_on("4");
}

fn fuzz_on(cpus: &str) {
    run_on(
        cpus,
        "fuzz",
        &["1", "1500"],
        "fuzz: seed 1: 1500 operations",
    );
}

/// The chaos fuzzer (`userland/programs/src/bin/chaos.rs`) on two fixed
/// seeds: children making random calls to every syscall number, forged
/// signal frames and malformed ELFs; the kernel neither panics nor hangs,
/// every child is reaped and init's memory is intact. `make chaos SEED=
/// N=` runs long ones.
#[test]
fn chaos_fixed_seeds_leave_the_kernel_running() {
    chaos_on("1");
}

#[test]
fn chaos_fixed_seeds_leave_the_kernel_running_with_two_cpus() {
    chaos_on("2");
}

#[test]
fn chaos_fixed_seeds_leave_the_kernel_running_with_four_cpus() {
    chaos_on("4");
}

fn chaos_on(cpus: &str) {
    for seed in ["1", "2"] {
        let summary = format!("chaos: seed {seed}: 40 children");
        run_on(cpus, "chaos", &[seed, "40"], &summary);
    }
}

/// The stress program (`userland/programs/src/bin/stress.rs`), briefly:
/// workers forking, signalling themselves and writing copy-on-write pages,
/// every byte and callee-saved register checked, every wait4 answer exact.
#[test]
fn a_short_stress_run_keeps_every_byte_and_register() {
    stress_on("1");
}

/// With two CPUs the workers run at once: their copy-on-write breaks and
/// signal frames race on separate CPUs.
#[test]
fn a_short_stress_run_keeps_every_byte_and_register_with_two_cpus() {
    stress_on("2");
}

fn stress_on(cpus: &str) {
    run_on(cpus, "stress", &["4", "25"], "stress: 4 workers, 25 rounds");
}
