#!/usr/bin/env bash
# Runs stload's cargo-fuzz targets, each for a bounded time, and fails when any finds a crash.
# Usage: scripts/fuzz.sh [TARGET...]        (default: every target in fuzz/fuzz_targets)
#   FUZZ_SECONDS   seconds per target (default 60); hours-long runs: see the README
#   FUZZ_JOBS      parallel fuzzing processes per target (default 1; libFuzzer then writes
#                  fuzz-N.log files in the current directory)
#   FUZZ_TARGET_DIR  cargo target directory of the instrumented build (default fuzz/target)
# cargo-fuzz needs nightly compiler flags; on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks them.
# New inputs the fuzzer finds go to fuzz/corpus/TARGET (git ignores all but the seed-* files);
# a crash is saved under fuzz/artifacts/TARGET and its log tail printed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-1}"
target_dir="${FUZZ_TARGET_DIR:-$root/fuzz/target}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
echo "building the fuzz targets (instrumented; a few minutes the first time)"
if ! cargo fuzz build --target-dir "$target_dir" >"$logs/build.log" 2>&1; then
    cat "$logs/build.log"
    exit 1
fi
failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    printf 'fuzz %-12s %ss ... ' "$t" "$seconds"
    # -timeout: one input may take at most 10 s; -rss_limit_mb: a leak or a huge allocation
    # driven by the input is a finding too. gguf_export reads a few KB of config and tokenizer
    # text beside a tiny model, so it gets a tighter bound: any single allocation past 64 MiB
    # (-malloc_limit_mb) is sized by a number the input claims.
    rss=2048
    malloc=2048
    if [ "$t" = gguf_export ]; then
        rss=512
        malloc=64
    fi
    flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb="$rss" -malloc_limit_mb="$malloc"
        -print_final_stats=1)
    if [ "$jobs" -gt 1 ]; then
        flags+=(-jobs="$jobs" -workers="$jobs")
    fi
    if cargo fuzz run --target-dir "$target_dir" "$t" "fuzz/corpus/$t" -- "${flags[@]}" \
        >"$logs/$t.log" 2>&1; then
        runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' | tail -1)"
        echo "ok (${runs:-?} runs)"
    else
        echo "FAILED"
        tail -40 "$logs/$t.log"
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in ${failed[*]}; inputs are under fuzz/artifacts/ (reproduce with" \
        "RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET ARTIFACT)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each, no crash"
