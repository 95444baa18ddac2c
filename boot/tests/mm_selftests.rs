//! Linux's own mm selftests (tools/testing/selftests/vm of Debian's
//! linux-source-6.1, fetched by scripts/mm-selftests.sh), built unchanged
//! with musl-gcc -static and run on both kernels, one boot each: pageos
//! passes every test and every subtest (mremap_test's 10-14 included,
//! which fail on Linux), so whatever passes on Linux passes on pageos. The
//! table is in docs/src/real_programs.md.

mod common;

use common::build::{compile, fetched, on_both, program_lines, progrun, root};
use std::collections::BTreeMap;

/// The selftests run, in order. (cow and mkdirty came after 6.1.)
const TESTS: [&str; 6] = [
    "map_fixed_noreplace",
    "map_populate",
    "mlock2-tests",
    "mremap_test",
    "mremap_dontunmap",
    "virtual_address_range",
];

/// mremap_test's TAP subtests: 13 moves of every alignment, then the
/// expand-and-merge case.
const MREMAP_SUBTESTS: u32 = 14;

/// One test's outcome: its exit status (0 when progrun printed none) and
/// its TAP subtests (number → passed).
#[derive(Debug, Default)]
struct Outcome {
    status: i32,
    subtests: BTreeMap<u32, bool>,
}

fn outcomes(output: &str) -> BTreeMap<String, Outcome> {
    let mut all: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut current = String::new();
    for line in program_lines(output) {
        if let Some(test) = line.strip_prefix("$ /bin/") {
            current = test.to_string();
            all.entry(current.clone()).or_default();
            continue;
        }
        let Some(outcome) = all.get_mut(&current) else {
            continue;
        };
        if let Some(code) = line
            .strip_prefix("[exit ")
            .and_then(|s| s.strip_suffix(']'))
        {
            outcome.status = code.parse().unwrap_or(-1);
        } else if line.starts_with("[signal ") {
            outcome.status = 128;
        }
        let (ok, rest) = match line.strip_prefix("ok ") {
            Some(rest) => (true, rest),
            None => match line.strip_prefix("not ok ") {
                Some(rest) => (false, rest),
                None => continue,
            },
        };
        if let Some(n) = rest.split(' ').next().and_then(|n| n.parse().ok()) {
            outcome.subtests.insert(n, ok);
        }
    }
    all
}

#[test]
fn linux_mm_selftests_that_pass_on_linux_pass_on_pageos() {
    let Some(dir) = fetched("mm-selftests.sh") else {
        return;
    };
    let kinc = root().join("target/linux-source/kinc");
    let includes = [
        format!("-I{}", kinc.display()),
        format!("-I{}", dir.display()),
    ];
    let mut files = vec![(
        progrun().expect("musl-gcc builds progrun"),
        "/init".to_string(),
    )];
    let list = common::build::build_dir().join("mm-selftests.list");
    let names: Vec<String> = TESTS.iter().map(|t| format!("/bin/{t}\n")).collect();
    std::fs::write(&list, names.concat()).expect("cannot write the list");
    files.push((list, "/etc/programs".into()));
    for test in TESTS {
        let flags = ["-static", "-O2", &includes[0], &includes[1]];
        let Some(binary) = compile(test, "musl-gcc", &flags, &[dir.join(format!("{test}.c"))])
        else {
            return;
        };
        files.push((binary, format!("/bin/{test}")));
    }
    let (pageos, linux) = on_both(&files, "600");
    let pageos = outcomes(&pageos);
    // Every test and subtest passes on pageos, whatever Linux says.
    for test in TESTS {
        assert_eq!(
            pageos[test].status, 0,
            "{test} failed on pageos: {pageos:?}"
        );
    }
    for n in 1..=MREMAP_SUBTESTS {
        assert_eq!(
            pageos["mremap_test"].subtests.get(&n),
            Some(&true),
            "mremap_test {n} on pageos: {pageos:?}"
        );
    }
    // The rule the table states, should a test join TESTS that pageos is
    // not required to pass: what passes on Linux (today all but
    // mremap_test 10-14) passes on pageos.
    let Some(linux) = linux else {
        return;
    };
    let linux = outcomes(&linux);
    for test in TESTS {
        let (l, p) = (&linux[test], &pageos[test]);
        if l.status == 0 {
            assert_eq!(p.status, 0, "{test} passes on Linux, not on pageos");
        }
        for (n, passed) in &l.subtests {
            if *passed {
                assert_eq!(
                    p.subtests.get(n),
                    Some(&true),
                    "{test} subtest {n} passes on Linux, not on pageos"
                );
            }
        }
    }
}
