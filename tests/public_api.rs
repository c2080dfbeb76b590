//! The public Rust API is what the crate documentation says it is: the items listed under
//! "Public API" in `src/lib.rs` are exactly the `pub mod` and `pub use` items of `lib.rs`, every
//! other module is crate-private, and the `__private` module exists only with the feature
//! `internals`, hidden from the documentation.

use std::collections::BTreeSet;
use std::path::Path;

fn lib_rs() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap()
}

/// The names the "Public API" section of the crate documentation lists: every [`X`] link
/// without a path, and a bullet's leading `X` (for the feature-gated `mlx`, which is no link).
fn documented(text: &str) -> BTreeSet<String> {
    let section: Vec<&str> = text
        .lines()
        .skip_while(|l| l.trim() != "//! ## Public API")
        .skip(1)
        .take_while(|l| l.starts_with("//!") && !l.starts_with("//! ##"))
        .collect();
    assert!(
        !section.is_empty(),
        "src/lib.rs has no \"## Public API\" section"
    );
    let mut names = BTreeSet::new();
    for line in &section {
        let mut rest = *line;
        while let Some(at) = rest.find("[`") {
            rest = &rest[at + 2..];
            let end = rest.find("`]").expect("a link [`X`] closes on its line");
            let name = &rest[..end];
            if !name.contains("::") {
                names.insert(name.to_string());
            }
            rest = &rest[end..];
        }
        if let Some(bullet) = line.strip_prefix("//! - `") {
            names.insert(bullet.split('`').next().unwrap().to_string());
        }
    }
    names
}

/// The names `lib.rs` makes public at the crate root: `pub mod X;` and the last segment of each
/// `pub use` path (or each name of a `pub use a::{B, C};` group), `__private` aside.
fn declared(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(m) = line.strip_prefix("pub mod ") {
            let name = m.trim_end_matches(';').trim_end_matches(" {");
            if name != "__private" {
                names.insert(name.to_string());
            }
        } else if let Some(path) = line.strip_prefix("pub use ") {
            let path = path.trim_end_matches(';');
            match path.split_once('{') {
                Some((_, group)) => names.extend(
                    group
                        .trim_end_matches('}')
                        .split(',')
                        .map(|n| n.trim().to_string())
                        .filter(|n| !n.is_empty()),
                ),
                None => {
                    names.insert(path.rsplit("::").next().unwrap().to_string());
                }
            }
        }
    }
    names
}

#[test]
fn the_documented_api_is_the_declared_api() {
    let text = lib_rs();
    let documented = documented(&text);
    let declared = declared(&text);
    assert!(
        declared.contains("Model") && declared.contains("ffi"),
        "the grep found no public items: {declared:?}"
    );
    assert_eq!(
        documented, declared,
        "the \"Public API\" list of src/lib.rs and its pub items differ"
    );
}

#[test]
fn every_other_module_is_crate_private() {
    let text = lib_rs();
    let public = declared(&text);
    let lines: Vec<&str> = text.lines().collect();
    let mut private = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line
            .split_once("mod ")
            .filter(|(vis, _)| !vis.contains("//") && !line.starts_with(' '))
            .map(|(_, rest)| rest.trim_end_matches(';').trim_end_matches(" {"))
        else {
            continue;
        };
        if public.contains(name) {
            continue;
        }
        if name == "__private" {
            let attrs = lines[i.saturating_sub(2)..i].join("\n");
            assert!(
                attrs.contains("#[cfg(feature = \"internals\")]")
                    && attrs.contains("#[doc(hidden)]"),
                "__private must be hidden and exist only with the feature internals:\n{attrs}"
            );
            continue;
        }
        assert!(
            line.starts_with("pub(crate) mod ") || line.starts_with("mod "),
            "src/lib.rs makes `{name}` public without listing it: {line}"
        );
        private += 1;
    }
    assert!(
        private > 10,
        "the grep found only {private} internal modules"
    );
}
