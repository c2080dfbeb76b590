//! What the shared library exports: the C ABI of this crate and nothing else.
//!
//! rustc exports every `#[no_mangle]` function of every linked crate from a cdylib, and a
//! dependency may define some: object_store's `crc-fast` has a C API of its own (`crc_fast_*`).
//! A second version script cannot be combined with rustc's, but upstream crates reach the
//! linker as archives (rlibs), and `--exclude-libs ALL` keeps the symbols of archives out of
//! the dynamic symbol table; this crate's own code is not in an archive, so its exports stay.

/// Adds the linker argument for the cdylib on targets whose linker is GNU-compatible.
pub fn configure() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--exclude-libs,ALL");
    }
}
