#!/usr/bin/env bash
# Builds stload with the `mlx` feature, runs its MLX tests (tests/mlx.rs: values against
# Python's mx.load; tests/mlx_remote.rs: arrays of s3:// and http:// models against the local
# ones, on the loopback servers of tests/remote, which it starts), then builds the C example
# examples/c/mlx_load.c against the shared and the static library and runs it, also under
# valgrind memcheck (definite leaks and errors fail; MLX's own "still reachable" globals do
# not). Last, the mlx-c interop test: mlx-c is built from the source in the mlx-sys crate
# against the same libmlx (tests/c/build_mlx_c.sh, cached under target/mlx-c), and
# tests/c/test_mlx_c.c uses stload's arrays through mlx-c's own API.
# Usage: tests/c/run_mlx.sh   (needs the Python env of scripts/python-env.sh)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export STLOAD_PYTHON="${STLOAD_PYTHON:-$root/.venv/bin/python}"
# A target directory of its own: the feature build must not replace the plain libstload.a
# that the other C and Go tests link.
export CARGO_TARGET_DIR="${STLOAD_MLX_TARGET_DIR:-$root/target/mlx}"
target="$CARGO_TARGET_DIR"
lib="$target/release"
out="$root/tests/c/build"
mkdir -p "$out"

echo "== cargo build --release --features mlx"
cargo build --release --features mlx --quiet
echo "== cargo test --release --features mlx --test mlx"
cargo test --release --features mlx --quiet --test mlx
echo "== cargo test --release --features mlx --test mlx_remote (s3s-fs and nginx on loopback)"
tests/remote/install.sh
cargo test --release --features mlx --quiet --test mlx_remote

echo "== header with STLOAD_FEATURE_MLX compiles alone as C and as C++"
gcc -std=c11 -DSTLOAD_FEATURE_MLX -Wall -Wextra -Wpedantic -Werror -fsyntax-only -x c include/stload.h
g++ -std=c++11 -DSTLOAD_FEATURE_MLX -Wall -Wextra -Wpedantic -Werror -fsyntax-only -x c++ include/stload.h

fixtures="$(mktemp -d)"
trap 'rm -rf "$fixtures"' EXIT
"$STLOAD_PYTHON" tests/python/make_fixtures.py "$fixtures" >/dev/null

# libstload.so carries an rpath to libmlx's directory, so only stload's own is needed here.
gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -g -I include examples/c/mlx_load.c \
    -o "$out/mlx_load-shared" -L "$lib" -lstload -Wl,-rpath,"$lib"
echo "== mlx_load (shared)"
"$out/mlx_load-shared" "$fixtures/sharded"

# The static library needs libmlx (and the C++ runtime) named on the link line.
mlx_lib="${MLX_DIR:-$("$STLOAD_PYTHON" -c 'import mlx; print(list(mlx.__path__)[0])')}/lib"
gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -g -I include examples/c/mlx_load.c \
    -o "$out/mlx_load-static" "$lib/libstload.a" -L "$mlx_lib" -lmlx -lstdc++ -lpthread -ldl -lm \
    -Wl,-rpath,"$mlx_lib"
echo "== mlx_load (static)"
"$out/mlx_load-static" "$fixtures/sharded" | tail -1

if command -v valgrind >/dev/null 2>&1; then
    echo "== mlx_load under valgrind"
    valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite "$out/mlx_load-shared" "$fixtures/sharded" >/dev/null
fi
echo "== mlx-c: build (cached) and the interop test"
mlxc="$(tests/c/build_mlx_c.sh)"
mlxc_src="$(sed -n 1p <<<"$mlxc")"
mlxc_lib="$(sed -n 2p <<<"$mlxc")"
# mlx-c's headers are not ours to keep warning-free: a system include.
gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -g -I include -I tests/c -isystem "$mlxc_src" \
    tests/c/test_mlx_c.c -o "$out/test_mlx_c" -L "$lib" -lstload -L "$mlxc_lib" -lmlxc -lm \
    -Wl,-rpath,"$lib" -Wl,-rpath,"$mlxc_lib"
"$out/test_mlx_c" "$fixtures/sharded"
if command -v valgrind >/dev/null 2>&1; then
    echo "== test_mlx_c under valgrind"
    valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite "$out/test_mlx_c" "$fixtures/sharded" >/dev/null
fi
echo "== MLX tests passed"
