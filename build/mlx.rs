//! Build step of the `mlx` feature: finds a prebuilt libmlx, compiles the C++ bridge
//! (`src/mlx/bridge.cc`) against its headers and links it, with an rpath so programs run
//! without `LD_LIBRARY_PATH`.
//!
//! MLX is looked up, in order, in `$MLX_DIR` (a directory with `include/mlx/mlx.h` and
//! `lib/libmlx.*`, e.g. a CMake install prefix) and in the installed Python `mlx` package
//! (the `mlx-cpu` wheel on Linux, `mlx-metal` on macOS), asking `$STLOAD_PYTHON`, then
//! `.venv/bin/python` at the crate root, then `python3`. Without an rpath-aware loader, point
//! `LD_LIBRARY_PATH` (macOS: `DYLD_LIBRARY_PATH`) at MLX's `lib` directory instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles and links the bridge; exits the build with a message naming both ways to provide
/// MLX when neither finds it.
pub fn build() {
    println!("cargo:rerun-if-env-changed=MLX_DIR");
    println!("cargo:rerun-if-env-changed=STLOAD_PYTHON");
    println!("cargo:rerun-if-changed=src/mlx/bridge.cc");
    println!("cargo:rerun-if-changed=src/mlx/bridge.h");
    let root = match find() {
        Ok(root) => root,
        Err(tried) => {
            eprintln!(
                "error: the `mlx` feature needs a prebuilt MLX and none was found.\n\
                 Either set MLX_DIR to a directory holding include/mlx/mlx.h and lib/libmlx.so \
                 (or libmlx.dylib),\n\
                 or install the Python package in the interpreter named by STLOAD_PYTHON \
                 (else .venv/bin/python, else python3):\n\
                 \x20   pip install mlx==0.32.4 mlx-cpu==0.32.4   # Linux\n\
                 \x20   pip install mlx==0.32.4                   # macOS (brings mlx-metal)\n\
                 Tried:\n{tried}"
            );
            std::process::exit(1);
        }
    };
    let include = root.join("include");
    let lib = root.join("lib");
    println!(
        "cargo:rerun-if-changed={}",
        include.join("mlx/version.h").display()
    );
    cc::Build::new()
        .cpp(true)
        // MLX 0.32's headers use C++20 (defaulted comparison operators).
        .std("c++20")
        .file("src/mlx/bridge.cc")
        .include("src/mlx")
        // A system include: MLX's own headers are not ours to keep warning-free.
        .flag("-isystem")
        .flag(include.as_os_str())
        .warnings(true)
        .extra_warnings(true)
        .flag_if_supported("-Wno-unused-parameter")
        .compile("stload_mlx_bridge");
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=mlx");
    // The runtime search path of every binary, test, example and the cdylib: MLX's own
    // directory, where its bundled dependencies are found relative to it.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-env=STLOAD_MLX_LIB_DIR={}", lib.display());
}

/// The MLX root (holding `include/` and `lib/`), or the list of places tried.
fn find() -> Result<PathBuf, String> {
    let mut tried = String::new();
    if let Some(dir) = env::var_os("MLX_DIR") {
        let dir = PathBuf::from(dir);
        if usable(&dir) {
            return Ok(dir);
        }
        tried += &format!(
            "  MLX_DIR={}: no include/mlx/mlx.h with lib/libmlx\n",
            dir.display()
        );
    } else {
        tried += "  MLX_DIR: not set\n";
    }
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let venv = manifest.join(".venv/bin/python");
    let mut pythons: Vec<PathBuf> = Vec::new();
    if let Some(p) = env::var_os("STLOAD_PYTHON") {
        pythons.push(p.into());
    }
    if venv.exists() {
        pythons.push(venv);
    }
    pythons.push("python3".into());
    for python in pythons {
        let output = Command::new(&python)
            // `mlx` is a namespace package (no __file__): take its first path.
            .args(["-c", "import mlx; print(list(mlx.__path__)[0])"])
            .output();
        match output {
            Ok(o) if o.status.success() => {
                let dir = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
                if usable(&dir) {
                    return Ok(dir);
                }
                tried += &format!(
                    "  {}: mlx at {} lacks include/mlx/mlx.h or lib/libmlx (install mlx-cpu \
                     or mlx-metal)\n",
                    python.display(),
                    dir.display()
                );
            }
            Ok(o) => {
                let stderr = String::from_utf8_lossy(&o.stderr);
                let last = stderr.lines().last().unwrap_or("").trim();
                tried += &format!("  {}: cannot import mlx ({last})\n", python.display());
            }
            Err(e) => tried += &format!("  {}: cannot run ({e})\n", python.display()),
        }
    }
    Err(tried)
}

fn usable(dir: &Path) -> bool {
    dir.join("include/mlx/mlx.h").is_file()
        && ["libmlx.so", "libmlx.dylib"]
            .iter()
            .any(|l| dir.join("lib").join(l).is_file())
}
