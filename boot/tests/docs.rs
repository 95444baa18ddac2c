//! The book and the README lead readers to the code: every relative link
//! and every path they name in backquotes (`kernel/src/trap.rs`) must
//! exist. (No QEMU here: this reads files.)

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("boot/ has a parent")
        .to_path_buf()
}

/// The documents: README.md and every chapter of the book.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    let src = root().join("docs/src");
    for entry in std::fs::read_dir(&src).expect("docs/src") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    docs
}

/// Relative link targets: `](target)` not starting with a scheme or `#`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split('#').next().unwrap_or("").trim();
        let external = target.contains("://") || target.starts_with("mailto:");
        if !target.is_empty() && !external {
            out.push(target.to_string());
        }
        rest = &rest[end..];
    }
    out
}

/// Paths in backquotes that start with one of the repository's top folders.
fn code_paths(text: &str) -> Vec<String> {
    const TOP: [&str; 6] = ["kernel/", "vm/", "boot/", "userland/", "scripts/", "docs/"];
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| TOP.iter().any(|t| span.starts_with(t)))
        .filter(|span| !span.contains(' ') && !span.contains('*'))
        .map(|span| span.trim_end_matches([':', ',', '.']).to_string())
        .collect()
}

#[test]
fn every_linked_and_named_path_exists() {
    let mut missing = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("readable document");
        let dir = doc.parent().expect("a folder");
        for link in links(&text) {
            if !dir.join(&link).exists() {
                missing.push(format!("{}: link {link}", doc.display()));
            }
        }
        for path in code_paths(&text) {
            if !root().join(&path).exists() {
                missing.push(format!("{}: path {path}", doc.display()));
            }
        }
    }
    assert!(missing.is_empty(), "missing:\n{}", missing.join("\n"));
}

#[test]
fn every_chapter_is_in_the_summary() {
    let summary = std::fs::read_to_string(root().join("docs/src/SUMMARY.md")).expect("SUMMARY.md");
    for doc in documents().iter().skip(1) {
        let name = doc.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name != "SUMMARY.md" {
            assert!(
                summary.contains(&format!("({name})")),
                "{name} is not in SUMMARY.md"
            );
        }
    }
}
