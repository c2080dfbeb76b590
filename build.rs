//! Gives the shared library a soname carrying the major version, so programs linked against
//! `libstload.so` record `libstload.so.<MAJOR>` and keep loading it across compatible updates.
//! rustc already exports only the `#[no_mangle]` functions, so no version script is needed;
//! tests/install/run.sh checks that with `nm -D`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The target's OS, not the host's: build scripts also run for cross builds.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        let major = env!("CARGO_PKG_VERSION_MAJOR");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libstload.so.{major}");
    }
}
