//! Linux's own mm selftests (tools/testing/selftests/vm of Debian's
//! linux-source-6.1, fetched by scripts/mm-selftests.sh), built unchanged
//! with musl-gcc -static and run on both kernels, one boot each: every
//! test (and subtest) that passes on Linux passes on pageos, but for the
//! ones that need mremap (issue 17). The table is in
//! docs/src/real_programs.md.

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

/// What pageos does not pass yet although Linux does, and why: a whole
/// test, or (test, subtest numbers) of a TAP test.
const NEEDS_MREMAP: [(&str, &[u32]); 2] = [
    ("mremap_dontunmap", &[]),
    ("mremap_test", &[4, 5, 6, 7, 8, 9]),
];

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
    // What pageos passes, whatever Linux says: the set cannot regress.
    for test in [
        "map_fixed_noreplace",
        "map_populate",
        "mlock2-tests",
        "virtual_address_range",
    ] {
        assert_eq!(
            pageos[test].status, 0,
            "{test} failed on pageos: {pageos:?}"
        );
    }
    for n in [1, 2, 3] {
        assert_eq!(
            pageos["mremap_test"].subtests.get(&n),
            Some(&true),
            "mremap_test {n} on pageos: {pageos:?}"
        );
    }
    let Some(linux) = linux else {
        return;
    };
    let linux = outcomes(&linux);
    let excused = |test: &str, subtest: Option<u32>| {
        NEEDS_MREMAP.iter().any(|(t, subtests)| {
            *t == test && subtest.is_none_or(|n| subtests.is_empty() || subtests.contains(&n))
        })
    };
    for test in TESTS {
        let (l, p) = (&linux[test], &pageos[test]);
        if l.status == 0 && !excused(test, None) {
            assert_eq!(p.status, 0, "{test} passes on Linux, not on pageos");
        }
        for (n, passed) in &l.subtests {
            if *passed && !excused(test, Some(*n)) {
                assert_eq!(
                    p.subtests.get(n),
                    Some(&true),
                    "{test} subtest {n} passes on Linux, not on pageos"
                );
            }
        }
    }
}
