//! The cargo-fuzz targets' checks (`fuzz/checks.rs`) as an ordinary test:
//! every seed and corpus file in `fuzz/`, then a fixed-seed run of
//! mutations of them (byte flips, interesting values, truncations). This is
//! what `make test` runs; libFuzzer's coverage-guided search stays in
//! `make fuzz-host` (docs/src/reliability.md).

#[path = "../../fuzz/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

/// Mutations per target (PROPTEST_CASES, read by the other tests, does not
/// apply: these are cheap). FUZZ_MUTATIONS overrides.
fn mutations() -> usize {
    std::env::var("FUZZ_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000_000)
}

/// The seeds and the corpus libFuzzer kept, if any: fuzz/{seeds,corpus}/TARGET/*.
fn inputs(target: &str) -> Vec<Vec<u8>> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files: Vec<PathBuf> = ["seeds", "corpus"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(fuzz.join(dir).join(target)).ok())
        .flatten()
        .map(|entry| entry.expect("a fuzz input").path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!inputs.is_empty(), "no seeds for {target} in fuzz/seeds");
    inputs
}

/// splitmix64: the same small generator the in-QEMU fuzzer uses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A value near a boundary the validators and the parser care about.
    fn interesting(&mut self) -> u64 {
        const VALUES: [u64; 14] = [
            0,
            1,
            0xfff,
            0x1000,
            0x1001,
            0x20_0000,
            0x7fff_ffff,
            0xffff_ffff,
            0x0000_7fff_ffff_f000,
            0x0000_8000_0000_0000,
            0xffff_8000_0000_0000,
            u64::MAX - 0xfff,
            u64::MAX - 1,
            u64::MAX,
        ];
        let value = VALUES[self.below(VALUES.len())];
        match self.below(3) {
            0 => value,
            1 => value.wrapping_add(self.next() % 0x2000),
            _ => value.wrapping_sub(self.next() % 0x2000),
        }
    }
}

/// One mutant of `input`: a few byte flips, writes of interesting values
/// (as 1, 2, 4 or 8 little-endian bytes) and maybe a truncation.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    if data.is_empty() {
        data.push(0);
    }
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len());
        match rng.below(3) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = rng.next() as u8,
            _ => {
                let width = 1 << rng.below(4);
                let bytes = rng.interesting().to_le_bytes();
                for (i, byte) in bytes.iter().take(width).enumerate() {
                    if let Some(slot) = data.get_mut(at + i) {
                        *slot = *byte;
                    }
                }
            }
        }
    }
    if rng.below(16) == 0 {
        data.truncate(rng.below(data.len() + 1));
    }
    data
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    let inputs = inputs(target);
    for input in &inputs {
        check(input);
    }
    let mut rng = Rng(1);
    for _ in 0..mutations() {
        let input = &inputs[rng.below(inputs.len())];
        check(&mutate(&mut rng, input));
    }
}

#[test]
fn mmap_validate_seeds_and_mutations() {
    replay("mmap_validate", |bytes| {
        checks::mmap_validate(checks::mmap_args(bytes))
    });
    // And arguments made only of boundary values, six at a time.
    let mut rng = Rng(2);
    for _ in 0..mutations() {
        checks::mmap_validate(std::array::from_fn(|_| rng.interesting()));
    }
}

#[test]
fn elf_plan_seeds_and_mutations() {
    replay("elf_plan", checks::elf_plan);
}
