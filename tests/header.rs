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
