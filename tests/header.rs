//! include/stload.h must be exactly what cbindgen generates from the sources.
//! Regenerate with `STLOAD_BLESS=1 cargo test --test header`.

use std::path::Path;

#[test]
fn header_is_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = root.join("include/stload.h");
    if std::env::var_os("STLOAD_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/stload.h");
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/stload.h is stale: run `STLOAD_BLESS=1 cargo test --test header` and commit it"
    );
}

/// Every name the header declares is prefixed: internal constants and types of the Rust crate
/// (which cbindgen picks up from any public module) must be excluded in cbindgen.toml.
#[test]
fn header_declares_only_prefixed_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/stload.h")).expect("read header");
    let mut strays = Vec::new();
    for line in header.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let pointer = line
            .split_once("(*")
            .and_then(|(_, rest)| rest.split_once(')'));
        let declared = match words.as_slice() {
            ["typedef", ..] if pointer.is_some() => pointer.map(|(name, _)| name),
            ["#define", name, ..] => Some(*name),
            ["typedef", "enum" | "struct", name, ..] => Some(*name),
            ["typedef", .., last] if last.ends_with(';') => Some(last.trim_end_matches(';')),
            _ => None,
        };
        if let Some(name) = declared {
            let name = name.trim_start_matches('*');
            let ok = name.starts_with("stload_") || name.starts_with("STLOAD_");
            if !ok && name != "{" {
                strays.push(name.to_string());
            }
        }
    }
    assert!(
        strays.is_empty(),
        "unprefixed names in include/stload.h: {strays:?}"
    );
}
