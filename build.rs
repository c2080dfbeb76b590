//! Build script. Each concern lives in its own file under `build/`.

#[cfg(feature = "mlx")]
#[path = "build/mlx.rs"]
mod mlx;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/mlx.rs");
    #[cfg(feature = "mlx")]
    mlx::build();
}
