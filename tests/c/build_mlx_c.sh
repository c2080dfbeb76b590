#!/usr/bin/env bash
# Builds mlx-c (MLX's C API) against the prebuilt libmlx of the Python mlx-cpu wheel, for the
# interop tests of stload_mlx_array_to_mlx_c. mlx-c has no binary package; its source ships
# inside the `mlx-sys` crate, which cargo fetches here into its own cache (nothing is copied
# into the repository). The build is cached under target/mlx-c and redone only when the crate
# version or libmlx changes.
#
# Prints two lines on stdout: the mlx-c source directory (holding mlx/c/*.h) and the directory
# of libmlxc.so. Progress goes to stderr.
# Usage: tests/c/build_mlx_c.sh   (needs cargo, cmake, a C++20 compiler and STLOAD_PYTHON with mlx)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="${STLOAD_PYTHON:-$root/.venv/bin/python}"
# mlx-sys 0.7.0 vendors mlx-c 0.7.0, which MLX 0.32.x builds against.
crate_version=0.7.0
work="$root/target/mlx-c"
fetch="$work/fetch"
build="$work/build-$crate_version"

mlx_prefix="${MLX_DIR:-$("$python" -c 'import mlx; print(list(mlx.__path__)[0])')}"
if [ ! -f "$mlx_prefix/share/cmake/MLX/MLXConfig.cmake" ]; then
    echo "build_mlx_c: no MLXConfig.cmake under $mlx_prefix (install mlx-cpu)" >&2
    exit 1
fi

# A scratch package whose only dependency is mlx-sys: cargo metadata downloads it into cargo's
# registry cache and tells where its source is.
mkdir -p "$fetch/src"
cat >"$fetch/Cargo.toml" <<EOF
[package]
name = "stload-mlx-c-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[lib]
path = "src/lib.rs"

[dependencies]
mlx-sys = { version = "=$crate_version", default-features = false }

[workspace]
EOF
: >"$fetch/src/lib.rs"
manifest="$(cd "$fetch" && cargo metadata --format-version 1 --quiet |
    "$python" -c 'import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "mlx-sys":
        print(p["manifest_path"])')"
src="$(dirname "$manifest")/src/mlx-c"
if [ ! -f "$src/mlx/c/array.h" ]; then
    echo "build_mlx_c: mlx-sys $crate_version has no mlx-c source at $src" >&2
    exit 1
fi

# Rebuild when libmlx (another wheel version) or the compatibility header changes.
stamp="$crate_version $(stat -c '%s %Y' "$mlx_prefix/lib/libmlx.so") \
$(cksum <"$root/tests/c/mlx_c_compat.hpp")"
if [ ! -f "$build/libmlxc.so" ] || [ "$(cat "$build/stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "== building mlx-c $crate_version against $mlx_prefix (cached in $build)" >&2
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
        -DMLX_C_USE_SYSTEM_MLX=ON -DMLX_C_BUILD_EXAMPLES=OFF \
        -DMLX_DIR="$mlx_prefix/share/cmake/MLX" \
        -DCMAKE_BUILD_RPATH="$mlx_prefix/lib" \
        -DCMAKE_CXX_FLAGS="-include $root/tests/c/mlx_c_compat.hpp" >&2
    cmake --build "$build" --target mlxc -j "$(nproc)" >&2
    echo "$stamp" >"$build/stamp"
fi
echo "$src"
echo "$build"
