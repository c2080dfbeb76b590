#!/usr/bin/env bash
# Builds the release library and installs it like any C library (Linux):
#   PREFIX/lib/libstload.so.X.Y.Z, with links libstload.so.X (the soname) and libstload.so
#   PREFIX/lib/libstload.a
#   PREFIX/include/stload.h
#   PREFIX/lib/pkgconfig/stload.pc
#   PREFIX/lib/cmake/stload/stloadConfig.cmake, stloadConfigVersion.cmake
# A plain script rather than cargo-c: nothing extra to compile before installing or in CI.
# The soname (libstload.so.X) is written into the installed copy with patchelf, not at link
# time: programs linked in the tree against target/release/libstload.so must keep finding it
# under that name, and no libstload.so.X exists there.
# The installed libraries are stripped of debug information (the release profile keeps line
# tables, which make the shared library several times larger and the archive larger still);
# --debug-file keeps it instead in PREFIX/lib/debug/libstload.so.X.Y.Z.debug, linked from the
# library by a .gnu_debuglink section so debuggers find it.
# A library built with the mlx feature (--mlx, or CARGO_TARGET_DIR naming such a build) is
# installed with what linking it needs: the header defines STLOAD_FEATURE_MLX, and stload.pc
# and the CMake package name libmlx's directory (taken from the shared library's run path,
# i.e. the libmlx it was built against), an rpath to it, -lmlx and the C++ runtime.
#
# Usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [--no-build] [--mlx] [--debug-file | --no-strip]
#   --prefix DIR   where the files will live (default /usr/local); written into stload.pc
#   --destdir DIR  stage the files under DIR/PREFIX instead, for packaging
#   --no-build     install what target/release already holds
#   --mlx          build with --features mlx into target/mlx (its own target directory) and
#                  install that build
#   --debug-file   also install the shared library's debug information as a separate file
#   --no-strip     install the libraries with their debug information
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

usage() { sed -n '/^# Usage:/,/^[^#]/s/^# \{0,1\}//p' "$root/scripts/install.sh"; }
die() { echo "install.sh: $*" >&2; exit 2; }

prefix=/usr/local
destdir=
build=1
mlx=0
strip_mode=strip
while [ $# -gt 0 ]; do
    case $1 in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir) [ $# -ge 2 ] || die "--destdir needs a directory"; destdir=$2; shift 2 ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --no-build) build=0; shift ;;
        --mlx) mlx=1; shift ;;
        --debug-file) strip_mode=split; shift ;;
        --no-strip) strip_mode=keep; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
[ "$(uname -s)" = Linux ] || die "only Linux is supported (the soname and links are ELF-specific)"
# pkg-config and CMake need an absolute prefix.
prefix="$(realpath -m "$prefix")"
[ -z "$destdir" ] || destdir="$(realpath -m "$destdir")"

version="$(sed -n 's/^version = "\([^"]*\)"$/\1/p' Cargo.toml | head -n 1)"
IFS=. read -r major minor _ <<<"$version"
if [ "$mlx" = 1 ]; then
    # Never the default target directory: the plain libraries there must stay as they are.
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/mlx}"
fi
built="${CARGO_TARGET_DIR:-$root/target}/release"

need() { # command apt-package
    command -v "$1" >/dev/null 2>&1 && return
    [ "$(id -u)" = 0 ] || die "$1 is missing: install it (apt-get install $2)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need patchelf patchelf
[ "$strip_mode" = keep ] || { need strip binutils; need objcopy binutils; }
if [ "$build" = 1 ] && [ "$mlx" = 1 ]; then
    cargo build --release --lib --quiet --features mlx
elif [ "$build" = 1 ]; then
    cargo build --release --lib --quiet
fi
for f in libstload.so libstload.a; do
    [ -f "$built/$f" ] || die "$built/$f is missing: build first or drop --no-build"
done

lib="$destdir$prefix/lib"
inc="$destdir$prefix/include"
install -d "$lib/pkgconfig" "$lib/cmake/stload" "$inc"
install -m 755 "$built/libstload.so" "$lib/libstload.so.$version"
install -m 644 "$built/libstload.a" "$lib/libstload.a"
# Stripped before patchelf edits the library: strip can break what patchelf rewrote.
so="$lib/libstload.so.$version"
case $strip_mode in
    split)
        install -d "$lib/debug"
        objcopy --only-keep-debug "$so" "$lib/debug/libstload.so.$version.debug"
        chmod 644 "$lib/debug/libstload.so.$version.debug"
        strip --strip-unneeded "$so"
        # Debuggers look for the named file beside the library and in its debug/ directory.
        (cd "$lib/debug" && objcopy --add-gnu-debuglink="libstload.so.$version.debug" "$so")
        strip --strip-debug "$lib/libstload.a"
        ;;
    strip)
        strip --strip-unneeded "$so"
        # Only debug sections: the archive's symbols are what programs link against.
        strip --strip-debug "$lib/libstload.a"
        ;;
esac
patchelf --set-soname "libstload.so.$major" "$lib/libstload.so.$version"
ln -sfn "libstload.so.$version" "$lib/libstload.so.$major"
ln -sfn "libstload.so.$major" "$lib/libstload.so"
install -m 644 include/stload.h "$inc/stload.h"

# The directory of libmlx.so among the run path entries of the shared library $1.
mlx_libdir_of() {
    local runpath dir dirs
    runpath="$(readelf -d "$1" | sed -n 's/.*(\(RUNPATH\|RPATH\)).*\[\(.*\)\]/\2/p')"
    IFS=: read -ra dirs <<<"$runpath"
    for dir in "${dirs[@]}"; do
        if [ -e "$dir/libmlx.so" ]; then
            realpath "$dir"
            return
        fi
    done
    return 1
}

libs_private="-lgcc_s -lutil -lrt -lpthread -lm -ldl"
cmake_mlx_libs=
# The installed header declares the mlx functions on its own when the library has them (built
# with --features mlx, e.g. --mlx, or CARGO_TARGET_DIR=target/mlx ... --no-build). grep reads
# all of nm's output: -q would close the pipe early and fail the test under pipefail.
if nm --defined-only "$built/libstload.a" 2>/dev/null | grep ' T stload_model_get_mlx$' >/dev/null; then
    sed -i 's|^/\* STLOAD_FEATURES: none \*/$|#define STLOAD_FEATURE_MLX 1|' "$inc/stload.h"
    need readelf binutils
    mlx_lib="$(mlx_libdir_of "$built/libstload.so")" ||
        die "$built/libstload.so was built with mlx but no run path entry of it holds libmlx.so"
    # The shared library names libmlx and finds it through its own run path; a program linking
    # the archive needs libmlx and the C++ runtime itself, and an rpath to find libmlx.
    libs_private="-L$mlx_lib -Wl,-rpath,$mlx_lib -lmlx -lstdc++ $libs_private"
    cmake_mlx_libs="$mlx_lib/libmlx.so;stdc++;"
fi

# Fills a template from scripts/install/ and installs it with mode 644.
fill() { # template destination
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" \
        -e "s|@MAJOR@|$major|g" -e "s|@MINOR@|$minor|g" \
        -e "s|@LIBS_PRIVATE@|$libs_private|g" -e "s|@CMAKE_MLX_LIBS@|$cmake_mlx_libs|g" \
        "scripts/install/$1" >"$2"
    chmod 644 "$2"
}
fill stload.pc.in "$lib/pkgconfig/stload.pc"
fill stloadConfig.cmake.in "$lib/cmake/stload/stloadConfig.cmake"
fill stloadConfigVersion.cmake.in "$lib/cmake/stload/stloadConfigVersion.cmake"

echo "installed stload $version into $destdir$prefix"
if [ -z "$destdir" ] && [ "$(id -u)" = 0 ] && [[ $prefix == /usr || $prefix == /usr/local ]]; then
    # A new soname in a system directory is found by the loader only after its cache is rebuilt.
    ldconfig
fi
