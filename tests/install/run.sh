#!/usr/bin/env bash
# Installs stload into a temporary prefix with scripts/install.sh and uses it the way a C, C++
# or Go project would: checks the file set, the soname and the exported symbols, builds
# examples/c/inspect.c through pkg-config (shared and static) and tests/install/cmake through
# find_package, and runs them on a small model written here.
# Then, when the Python environment has MLX ($STLOAD_PYTHON, else .venv/bin/python), installs
# the MLX build (scripts/install.sh --mlx) into a second prefix and proves that what it
# installs is enough to link: tests/install/mlx_bias.c through pkg-config (shared and static)
# and tests/install/cmake_mlx through find_package, and the Go package with the tags
# stload_mlx and stload_pkgconfig, whose MLX tests compare with Python's mx.load.
# Usage: tests/install/run.sh   (installs pkg-config, cmake, g++ with apt-get when missing)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

need() { # command apt-package
    command -v "$1" >/dev/null 2>&1 && return
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need pkg-config pkg-config
need cmake cmake
need g++ g++
need python3 python3
need readelf binutils

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
model="$work/model"
version="$(sed -n 's/^version = "\([^"]*\)"$/\1/p' Cargo.toml | head -n 1)"
major="${version%%.*}"
# Builds run in the caller's environment, not the one set below for pkg-config: cargo reruns a
# build script whose watched variables changed (aws-lc-sys watches PKG_CONFIG_PATH and takes
# minutes), once here and once more in the next build of the caller.
if [ -n "${PKG_CONFIG_PATH+set}" ]; then
    as_caller=(env PKG_CONFIG_PATH="$PKG_CONFIG_PATH")
else
    as_caller=(env -u PKG_CONFIG_PATH)
fi
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror)
passed=0
failed=0

# Runs one check in a subshell with errexit on, so any failing command inside fails the check.
check() { # description function
    local what=$1 rc=0
    shift
    set +e
    (
        set -e
        "$@"
    ) >"$work/log" 2>&1
    rc=$?
    set -e
    if [ "$rc" = 0 ]; then
        passed=$((passed + 1))
        echo "ok   $what"
    else
        failed=$((failed + 1))
        echo "FAIL $what"
        sed 's/^/     /' "$work/log"
    fi
}

# The dynamic section entries of kind $2 (NEEDED, SONAME) of ELF file $1.
dynamic() { readelf -d "$1" | sed -n "s/.*($2).*\[\(.*\)\]/\1/p"; }

installs() { "${as_caller[@]}" scripts/install.sh --prefix "$prefix"; }

file_set() {
    local want got
    want="$(printf '%s\n' include/stload.h lib/cmake/stload/stloadConfig.cmake \
        lib/cmake/stload/stloadConfigVersion.cmake lib/libstload.a lib/libstload.so \
        "lib/libstload.so.$major" "lib/libstload.so.$version" lib/pkgconfig/stload.pc | sort)"
    got="$(cd "$prefix" && find . -not -type d | sed 's|^\./||' | sort)"
    diff <(echo "$want") <(echo "$got")
}

soname() {
    [ "$(dynamic "$prefix/lib/libstload.so.$version" SONAME)" = "libstload.so.$major" ]
    [ "$(readlink "$prefix/lib/libstload.so.$major")" = "libstload.so.$version" ]
    [ "$(readlink "$prefix/lib/libstload.so")" = "libstload.so.$major" ]
}

# Exactly the functions the header declares, all code ("T"): nothing of Rust's std or the
# dependencies leaks. rustc exports the #[no_mangle] functions of every linked crate, and one
# dependency has some (crc-fast, through object_store): build/exports.rs keeps the linked
# crates' symbols out of the dynamic table; this check keeps it that way.
symbols() {
    nm -D --defined-only "$prefix/lib/libstload.so.$version" >"$work/nm"
    awk '$2 != "T" { print "not a function:", $0; bad = 1 } END { exit bad }' "$work/nm"
    # The default build has no `mlx` feature, so its functions (stload_*mlx*) are not exported.
    diff <(python3 scripts/gen-api-docs.py --list-functions | grep -v mlx | sort) \
        <(awk '{ print $3 }' "$work/nm" | sort)
}

# Neither library carries debug sections (the release profile's line tables stay in target/).
stripped() {
    if readelf -S "$prefix/lib/libstload.so.$version" | grep -F '.debug_'; then return 1; fi
    if readelf -S "$prefix/lib/libstload.a" 2>/dev/null | grep -F '.debug_'; then return 1; fi
    # The archive still has the symbols programs link against.
    nm "$prefix/lib/libstload.a" 2>/dev/null >"$work/nm-static" || true
    grep -q ' T stload_model_get$' "$work/nm-static"
}

# --debug-file: the shared library names its debug file, which holds the debug sections.
debug_file() {
    local split="$work/split" so dbg
    scripts/install.sh --no-build --debug-file --prefix "$split" >/dev/null
    so="$split/lib/libstload.so.$version"
    dbg="$split/lib/debug/libstload.so.$version.debug"
    readelf -S "$dbg" | grep -qF '.debug_line'
    if readelf -S "$so" | grep -F '.debug_'; then return 1; fi
    readelf --string-dump=.gnu_debuglink "$so" | grep -qF "libstload.so.$version.debug"
    [ "$(dynamic "$so" SONAME)" = "libstload.so.$major" ]
}

staged() {
    scripts/install.sh --no-build --prefix /opt/stload --destdir "$work/stage" >/dev/null
    [ -L "$work/stage/opt/stload/lib/libstload.so.$major" ]
    grep -qx 'prefix=/opt/stload' "$work/stage/opt/stload/lib/pkgconfig/stload.pc"
    if grep -rl "$work/stage" "$work/stage"; then return 1; fi
}

model() {
    mkdir -p "$model"
    python3 tests/install/make_model.py "$model/model.safetensors"
}

# inspect's output on the model: three tensors, weight's values read through the library.
inspect_output_ok() {
    grep -q '^weight  *F32  *\[2, 2\] 16 bytes \[1, 2, 3, 4\]$' "$1"
    grep -qx '3 tensors' "$1"
}

pkg_config_shared() {
    [ "$(pkg-config --modversion stload)" = "$version" ]
    # shellcheck disable=SC2046 # pkg-config prints flags to be split into words
    gcc "${cflags[@]}" examples/c/inspect.c $(pkg-config --cflags --libs stload) -o "$work/inspect"
    dynamic "$work/inspect" NEEDED | grep -qx "libstload.so.$major"
    LD_LIBRARY_PATH="$prefix/lib" "$work/inspect" "$model" >"$work/out"
    inspect_output_ok "$work/out"
}

# Both libraries sit in one directory, so the archive is asked for by file name.
pkg_config_static() {
    local libs
    libs="$(pkg-config --static --libs stload | sed 's/-lstload\b/-l:libstload.a/')"
    # shellcheck disable=SC2046,SC2086 # flags from pkg-config, split into words
    gcc "${cflags[@]}" examples/c/inspect.c $(pkg-config --cflags stload) $libs \
        -o "$work/inspect-static"
    if dynamic "$work/inspect-static" NEEDED | grep libstload; then return 1; fi
    "$work/inspect-static" "$model" >"$work/out"
    inspect_output_ok "$work/out"
}

cmake_find_package() {
    cmake -S tests/install/cmake -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_BUILD_TYPE=Release
    cmake --build "$work/cmake"
    [ "$("$work/cmake/count_tensors" "$model")" = "3 tensors" ]
    [ "$("$work/cmake/count_tensors_static" "$model")" = "3 tensors" ]
}

# The Go package's pkg-config build, once it has a file with the stload_pkgconfig build tag.
go_pkg_config() {
    local mod
    mod="$(dirname "$(grep -rl --include='*.go' 'stload_pkgconfig' go | head -n 1)")"
    while [ ! -f "$mod/go.mod" ]; do mod="$(dirname "$mod")"; done
    cd "$mod"
    # Go 1.19's build cache does not key cgo packages on PKG_CONFIG_PATH, so a package built
    # against an earlier (deleted) temporary prefix would be reused; naming this prefix in
    # CGO_LDFLAGS, which is part of the key, forces a build against it.
    export CGO_LDFLAGS="-g -O2 -L$prefix/lib"
    go vet -tags stload_pkgconfig ./...
    LD_LIBRARY_PATH="$prefix/lib" go test -tags stload_pkgconfig -count=1 -run '^$' ./...
}

# --- The MLX build (feature mlx), installed into its own prefix. ---
mprefix="$work/prefix-mlx"
python="${STLOAD_PYTHON:-$root/.venv/bin/python}"

installs_mlx() { "${as_caller[@]}" scripts/install.sh --mlx --prefix "$mprefix"; }

mlx_files() {
    grep -qx '#define STLOAD_FEATURE_MLX 1' "$mprefix/include/stload.h"
    # Everything the header declares is exported, the mlx functions included.
    nm -D --defined-only "$mprefix/lib/libstload.so.$version" | awk '$2 == "T" { print $3 }' |
        grep '^stload_' | sort >"$work/nm-mlx"
    diff <(python3 scripts/gen-api-docs.py --list-functions | sort) "$work/nm-mlx"
    local mlx_lib
    mlx_lib="$("$python" -c 'import mlx, os; print(os.path.realpath(list(mlx.__path__)[0]))')/lib"
    grep -qxF "Libs.private: -L$mlx_lib -Wl,-rpath,$mlx_lib -lmlx -lstdc++ -lgcc_s -lutil -lrt -lpthread -lm -ldl" \
        "$mprefix/lib/pkgconfig/stload.pc"
    grep -qF "\"$mlx_lib/libmlx.so;stdc++;Threads::Threads;" "$mprefix/lib/cmake/stload/stloadConfig.cmake"
}

# mlx_bias's output: the linked MLX is the Python package's, "bias" (I32 7, -1) as F32.
mlx_output_ok() {
    [ "$(sed -n 1p "$1")" = "mlx $("$python" -c 'import mlx.core as mx; print(mx.__version__)')" ]
    [ "$(sed -n 2p "$1")" = "bias F32 [2] 7 -1" ]
}

mlx_pkg_config_shared() {
    export PKG_CONFIG_PATH="$mprefix/lib/pkgconfig"
    # shellcheck disable=SC2046 # pkg-config prints flags to be split into words
    gcc "${cflags[@]}" tests/install/mlx_bias.c $(pkg-config --cflags --libs stload) -o "$work/mlx_bias"
    # libmlx comes in through libstload.so's own run path, not the program's.
    dynamic "$work/mlx_bias" NEEDED | grep -qx "libstload.so.$major"
    if dynamic "$work/mlx_bias" NEEDED | grep -x libmlx.so; then return 1; fi
    LD_LIBRARY_PATH="$mprefix/lib" "$work/mlx_bias" "$model" >"$work/out"
    mlx_output_ok "$work/out"
}

mlx_pkg_config_static() {
    export PKG_CONFIG_PATH="$mprefix/lib/pkgconfig"
    local libs
    libs="$(pkg-config --static --libs stload | sed 's/-lstload\b/-l:libstload.a/')"
    # shellcheck disable=SC2046,SC2086 # flags from pkg-config, split into words
    gcc "${cflags[@]}" tests/install/mlx_bias.c $(pkg-config --cflags stload) $libs \
        -o "$work/mlx_bias-static"
    if dynamic "$work/mlx_bias-static" NEEDED | grep libstload; then return 1; fi
    dynamic "$work/mlx_bias-static" NEEDED | grep -qx libmlx.so
    "$work/mlx_bias-static" "$model" >"$work/out"
    mlx_output_ok "$work/out"
}

mlx_cmake_find_package() {
    cmake -S tests/install/cmake_mlx -B "$work/cmake-mlx" -DCMAKE_PREFIX_PATH="$mprefix" \
        -DCMAKE_BUILD_TYPE=Release
    cmake --build "$work/cmake-mlx"
    LD_LIBRARY_PATH="$mprefix/lib" "$work/cmake-mlx/mlx_bias" "$model" >"$work/out"
    mlx_output_ok "$work/out"
    "$work/cmake-mlx/mlx_bias_static" "$model" >"$work/out"
    mlx_output_ok "$work/out"
}

# The Go package linked through pkg-config against the installed MLX build, running its MLX
# tests (arrays against Python's mx.load and astype).
go_mlx_pkg_config() {
    export PKG_CONFIG_PATH="$mprefix/lib/pkgconfig" STLOAD_PYTHON="$python"
    cd go
    export CGO_LDFLAGS="-g -O2 -L$mprefix/lib" # see go_pkg_config: keys the build cache
    go vet -tags 'stload_mlx stload_pkgconfig' ./...
    LD_LIBRARY_PATH="$mprefix/lib" go test -tags 'stload_mlx stload_pkgconfig' -count=1 \
        -run 'TestMLXGetMatchesMxLoad|TestModelWeights' .
    # The test binary links the installed library, not the tree's.
    go test -tags 'stload_mlx stload_pkgconfig' -c -o "$work/stload-go.test" .
    dynamic "$work/stload-go.test" NEEDED | grep -qx "libstload.so.$major"
}

check "scripts/install.sh --prefix installs" installs
[ "$failed" = 0 ] || exit 1
check "installed files: libraries, links, header, stload.pc, CMake package" file_set
check "soname libstload.so.$major and its links" soname
check "nm -D: exactly the header's stload_* functions are exported" symbols
check "installed libraries are stripped of debug information" stripped
check "--debug-file keeps it in lib/debug, named by .gnu_debuglink" debug_file
check "--destdir stages under DIR and writes only the prefix into files" staged
check "sample model written" model
check "inspect.c built with pkg-config --cflags --libs runs on the shared library" pkg_config_shared
check "inspect.c built with pkg-config --static runs without libstload.so" pkg_config_static
check "C++ find_package(stload): stload::stload and stload::stload_static" cmake_find_package
if command -v go >/dev/null 2>&1 && grep -rqs --include='*.go' 'stload_pkgconfig' go; then
    check "Go package builds with -tags stload_pkgconfig" go_pkg_config
fi


if "$python" -c 'import mlx.core' 2>/dev/null; then
    check "scripts/install.sh --mlx installs the MLX build" installs_mlx
    check "MLX build: the header defines STLOAD_FEATURE_MLX, stload.pc and the CMake package name libmlx" mlx_files
    check "mlx_bias.c built with pkg-config --cflags --libs runs on the shared MLX library" mlx_pkg_config_shared
    check "mlx_bias.c built with pkg-config --static runs without libstload.so" mlx_pkg_config_static
    check "C find_package(stload) of the MLX build: shared and static" mlx_cmake_find_package
    if command -v go >/dev/null 2>&1; then
        check "Go package with -tags 'stload_mlx stload_pkgconfig' on the installed MLX build" go_mlx_pkg_config
    fi
else
    echo "skip the MLX build: $python has no mlx (scripts/python-env.sh installs it)"
fi

echo "install: $passed passed, $failed failed"
[ "$failed" = 0 ]
