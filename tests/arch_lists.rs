//! The architecture names written by hand (the C header's doc comments and the API reference
//! made from them, the Go and Rust option docs, the README, docs/ARCHITECTURES.md) against the
//! registry they describe: adding an architecture fails here until every list names it.

use std::collections::BTreeMap;
use std::path::Path;

use stload::__private::arch::{HF_NAMES, NAMES};

/// A file of the repository, with comment markers removed and whitespace runs made one space,
/// so a list wrapped over doc-comment lines reads as one line.
fn prose(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| !matches!(*w, "///" | "//" | "*" | "//!"))
        .collect();
    words.join(" ")
}

fn assert_lists(file: &str, want: &str) {
    assert!(
        prose(file).contains(want),
        "{file} does not list the registry's architectures as\n  {want}"
    );
}

#[test]
fn the_c_go_and_rust_docs_list_every_architecture() {
    let quoted: Vec<String> = NAMES.iter().map(|n| format!("\"{n}\"")).collect();
    let quoted = format!("({}, or \"auto\"", quoted.join(", "));
    for file in [
        "src/ffi/options.rs",
        "include/stload.h",
        "docs/API.md",
        "go/options.go",
    ] {
        assert_lists(file, &quoted);
    }
    assert_lists("src/options.rs", &format!("(one of {})", NAMES.join(", ")));
    assert_lists("README.md", &format!("({}, auto)", NAMES.join(", ")));
}

/// README's "**Architecture**" item maps each Hugging Face name to its architecture: the
/// backticked class names before each `→` select the name after it.
#[test]
fn the_readme_maps_every_hugging_face_name() {
    let text = prose("README.md");
    let start = text
        .find("**Architecture** from")
        .expect("README has the **Architecture** item");
    let item = &text[start..];
    let item = &item[..item
        .find(". It gives")
        .expect("the item ends with \". It gives\"")];
    let mut listed = BTreeMap::new();
    let mut pending: Vec<String> = Vec::new();
    for (i, segment) in item.split('→').enumerate() {
        if i > 0 {
            let name: String = segment
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            for hf in pending.drain(..) {
                listed.insert(hf, name.clone());
            }
        }
        // Backticked words in segment positions 1, 3, ... are the text between backticks.
        for hf in segment.split('`').skip(1).step_by(2) {
            let class = hf.starts_with(|c: char| c.is_ascii_uppercase())
                && hf.chars().all(|c| c.is_ascii_alphanumeric());
            if class {
                pending.push(hf.to_string());
            }
        }
    }
    assert!(pending.is_empty(), "README names {pending:?} without →");
    let want: BTreeMap<String, String> = HF_NAMES
        .iter()
        .map(|(hf, name)| (hf.to_string(), name.to_string()))
        .collect();
    assert_eq!(
        listed, want,
        "README's **Architecture** item against HF_NAMES"
    );
}

/// docs/ARCHITECTURES.md has a row of measurements for every decoder architecture, and each
/// row names a registered architecture (or a Hugging Face alias, "mistral (→ llama)").
#[test]
fn the_measurements_table_has_a_row_per_decoder() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURES.md");
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows = Vec::new();
    for line in text.lines() {
        let Some(first) = line.strip_prefix("| ").and_then(|l| l.split(" |").next()) else {
            continue;
        };
        if first == "architecture" || first.starts_with("---") {
            continue;
        }
        let name = match first.split_once(" (→ ") {
            Some((_, target)) => target.trim_end_matches(')'),
            None => first,
        };
        assert!(NAMES.contains(&name), "docs/ARCHITECTURES.md row {first:?}");
        rows.push(name.to_string());
    }
    // bert is an encoder: its embeddings are checked by the bert tests, not this table.
    for name in NAMES.iter().filter(|n| **n != "bert") {
        assert!(
            rows.iter().any(|r| r == name),
            "docs/ARCHITECTURES.md has no row for {name}"
        );
    }
}
