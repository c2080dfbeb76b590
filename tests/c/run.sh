#!/usr/bin/env bash
# Builds the C tests and examples against the static and the shared library and runs them,
# the tests also under valgrind memcheck (zero errors, zero leaks).
# Usage: tests/c/run.sh   (needs the Python env of scripts/python-env.sh for the fixtures)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
python="${STLOAD_PYTHON:-$root/.venv/bin/python}"
lib="$root/target/release"
out="$root/tests/c/build"
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -g -I "$root/include")
mkdir -p "$out"

cargo build --release --lib --quiet

echo "== header compiles alone as C and as C++"
for std in c99 c11; do
    gcc -std=$std -Wall -Wextra -Wpedantic -Werror -fsyntax-only -x c include/stload.h
done
g++ -std=c++11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only -x c++ include/stload.h

fixtures="$(mktemp -d)"
trap 'rm -rf "$fixtures"' EXIT
"$python" tests/python/make_fixtures.py "$fixtures"
"$python" tests/python/make_arch_fixtures.py "$fixtures/arch"

# Each test reads the fixtures it was written for.
fixtures_of() { case "$1" in test_transform | test_gguf) echo "$fixtures/arch" ;; *) echo "$fixtures" ;; esac; }

build() { # name source kind
    local name=$1 src=$2 kind=$3
    if [ "$kind" = static ]; then
        gcc "${cflags[@]}" "$src" -o "$out/$name-static" "$lib/libstload.a" -lpthread -ldl -lm
    else
        gcc "${cflags[@]}" "$src" -o "$out/$name-shared" -L "$lib" -lstload -Wl,-rpath,"$lib" -lpthread
    fi
}

tests=(test_core test_convert test_transform test_gguf)
for kind in static shared; do
    for t in "${tests[@]}"; do
        build "$t" "tests/c/$t.c" $kind
        echo "== $t ($kind)"
        "$out/$t-$kind" "$(fixtures_of "$t")"
    done
    build inspect examples/c/inspect.c $kind
    echo "== inspect ($kind)"
    "$out/inspect-$kind" "$fixtures/sharded" | tail -3
done

for t in "${tests[@]}"; do
    echo "== $t under valgrind"
    valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --suppressions=tests/c/valgrind.supp \
        "$out/$t-static" "$(fixtures_of "$t")"
done
