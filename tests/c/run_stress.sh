#!/usr/bin/env bash
# Stress and sanitizer runs of the C ABI:
#   1. tests/c/stress.c against the static library: 8 threads x 100,000 mixed operations on one
#      model, 10,000 open/free cycles, RSS growth bounded (counts: STRESS_* variables, see the
#      top of stress.c);
#   2. the same program under ThreadSanitizer (smaller counts: STRESS_TSAN_OPS, _OPENS);
#   3. the C test suite and the stress program under AddressSanitizer + LeakSanitizer.
# The sanitizers instrument the C side only: the Rust library is linked as cargo builds it.
# ASan still sees every heap block the library hands out (it replaces malloc/free for the whole
# process), and LSan every block it never frees. TSan checks the C side's use of the API from
# eight threads; it cannot see the Rust side's synchronisation (std's mutexes and Arc are
# precompiled without instrumentation), so the program links the shared library and TSan is
# told to ignore the memset/free calls made from inside it, which it would otherwise report as
# races between accesses that a Rust mutex orders. Instrumenting the Rust side too needs
# -Zbuild-std and the rust-src component (RUSTFLAGS=-Zsanitizer=thread alone gives false
# reports from Arc's fences), which this toolchain setup does not have.
# Usage: tests/c/run_stress.sh   (needs the Python env of scripts/python-env.sh for fixtures)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
python="${STLOAD_PYTHON:-$root/.venv/bin/python}"
lib="${CARGO_TARGET_DIR:-$root/target}/release"
out="$root/tests/c/build"
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -g -pthread -I "$root/include")
libs=("$lib/libstload.a" -lpthread -ldl -lm)
mkdir -p "$out"

cargo build --release --lib --quiet

echo "== stress (static, -O2)"
gcc "${cflags[@]}" -O2 tests/c/stress.c -o "$out/stress-static" "${libs[@]}"
start=$SECONDS
"$out/stress-static"
echo "   $((SECONDS - start)) s"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

echo "== stress under ThreadSanitizer (shared library)"
gcc "${cflags[@]}" -O1 -fsanitize=thread tests/c/stress.c -o "$out/stress-tsan" \
    -L "$lib" -lstload -Wl,-rpath,"$lib" -lpthread
echo "called_from_lib:libstload.so" >"$scratch/tsan.supp"
start=$SECONDS
# RSS means nothing under TSan (shadow memory), so its bound is lifted there.
TSAN_OPTIONS="halt_on_error=1 exitcode=66 suppressions=$scratch/tsan.supp" \
    STRESS_OPS="${STRESS_TSAN_OPS:-20000}" STRESS_OPENS="${STRESS_TSAN_OPENS:-1000}" \
    STRESS_RSS_MIB=1000000 "$out/stress-tsan"
echo "   $((SECONDS - start)) s"

fixtures="$scratch/fixtures"
mkdir -p "$fixtures"
"$python" tests/python/make_fixtures.py "$fixtures"
"$python" tests/python/make_arch_fixtures.py "$fixtures/arch"

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1"
for t in test_core test_convert test_transform; do
    echo "== $t under AddressSanitizer + LeakSanitizer"
    gcc "${cflags[@]}" -O1 -fsanitize=address -fno-omit-frame-pointer "tests/c/$t.c" \
        -o "$out/$t-asan" "${libs[@]}"
    if [ "$t" = test_transform ]; then "$out/$t-asan" "$fixtures/arch"; else "$out/$t-asan" "$fixtures"; fi
done
echo "== stress under AddressSanitizer + LeakSanitizer"
gcc "${cflags[@]}" -O1 -fsanitize=address -fno-omit-frame-pointer tests/c/stress.c \
    -o "$out/stress-asan" "${libs[@]}"
STRESS_OPS="${STRESS_ASAN_OPS:-20000}" STRESS_OPENS="${STRESS_ASAN_OPENS:-2000}" \
    STRESS_RSS_MIB=1000000 "$out/stress-asan"
