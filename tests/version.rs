//! One version everywhere: Cargo.toml, the header's STLOAD_VERSION_* defines (written through
//! cbindgen.toml), `stload_version()` and CHANGELOG.md. A release bumps them together.

use std::ffi::CStr;
use std::path::Path;

fn root_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The value of `#define NAME value` in the header, if present.
fn define<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("#define"), Some(n), Some(value)) if n == name => Some(value),
            _ => None,
        }
    })
}

#[test]
fn header_defines_match_cargo_version() {
    let header = root_file("include/stload.h");
    let expected = [
        ("STLOAD_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("STLOAD_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("STLOAD_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ];
    for (name, want) in expected {
        assert_eq!(
            define(&header, name),
            Some(want),
            "{name} in include/stload.h differs from Cargo.toml: edit cbindgen.toml, then run \
             `STLOAD_BLESS=1 cargo test --test header`"
        );
    }
}

#[test]
fn stload_version_reports_cargo_version() {
    // SAFETY: stload_version returns a static NUL-terminated string.
    let reported = unsafe { CStr::from_ptr(stload::ffi::stload_version()) };
    assert_eq!(reported.to_str(), Ok(env!("CARGO_PKG_VERSION")));
}

#[test]
fn changelog_has_a_section_for_this_version() {
    let heading = format!("## [{}]", env!("CARGO_PKG_VERSION"));
    assert!(
        root_file("CHANGELOG.md")
            .lines()
            .any(|l| l.starts_with(&heading)),
        "CHANGELOG.md has no `{heading}` section"
    );
}
