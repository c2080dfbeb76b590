//! What the architecture tests (tests/arch.rs, tests/arch_gguf.rs) share: the fixtures of
//! tests/python/make_arch_fixtures.py, written once per test binary, and the options that open
//! a model with an architecture.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use stload::Options;

/// A script of tests/python.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// The directory make_arch_fixtures.py wrote: one model directory per architecture and
/// expected.json.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ok = Command::new(super::python())
            .arg(script("make_arch_fixtures.py"))
            .arg(dir.path())
            .status()
            .expect("run python")
            .success();
        assert!(ok, "make_arch_fixtures.py failed");
        dir
    })
    .path()
}

/// The bytes of a hex string the fixture scripts write.
pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// Options opening a model as `arch`, with GGUF's names and layouts or ollama's renames.
pub fn options(arch: &str, gguf_layout: bool) -> Options {
    let mut o = Options::default();
    o.arch = Some(arch.to_string());
    o.gguf_layout = gguf_layout;
    o
}
