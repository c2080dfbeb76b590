//! Build script. Each concern lives in its own file under `build/`.

#[path = "build/exports.rs"]
mod exports;
#[cfg(feature = "mlx")]
#[path = "build/mlx.rs"]
mod mlx;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/exports.rs");
    println!("cargo:rerun-if-changed=build/mlx.rs");
    exports::configure();
    #[cfg(feature = "mlx")]
    mlx::build();
}
