#!/usr/bin/env bash
# Remote models end to end, against real servers on loopback: installs s3s-fs (cached in
# target/tools) and nginx when missing (install.sh), starts both (servers.sh), then runs the Rust tests
# (tests/remote.rs, tests/remote_cache.rs), the C test (tests/c/test_remote.c, static and shared),
# the Go test (go/remote_test.go) and the CLI on s3:// models, and stops the servers on exit.
# Usage: tests/remote/run.sh   (needs the Python env of scripts/python-env.sh)
#   STLOAD_REMOTE_SKIP_RUST=1   skip the Rust tests (already run by the caller)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export STLOAD_PYTHON="${STLOAD_PYTHON:-$root/.venv/bin/python}"
tests/remote/install.sh
# A cache directory in the caller's environment would serve the no-cache tests from disk.
unset STLOAD_CACHE_DIR

work="$(mktemp -d)"
chmod 755 "$work" # nginx workers run as an unprivileged user
stop() {
    if [ -f "$work/pids" ]; then
        # shellcheck disable=SC2046
        kill $(cat "$work/pids") 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop EXIT
tests/remote/servers.sh "$work/servers" $$
set -a
# shellcheck disable=SC1091
. "$work/servers/env"
set +a
cp "$work/servers/pids" "$work/pids"

# (scripts/test.sh has run them in its cargo test step, with servers of their own.)
if [ "${STLOAD_REMOTE_SKIP_RUST:-}" != 1 ]; then
    echo "== Rust tests against s3s-fs and nginx"
    cargo test --release --test remote
    cargo test --release --test remote_cache
fi

# The C and CLI models: fixture files placed in the S3 server's directory (s3s-fs serves the
# files of its root; bucket "cli" is a directory there).
"$STLOAD_PYTHON" tests/python/make_fixtures.py "$work/fixtures"
mkdir -p "$STLOAD_TEST_S3_ROOT/cli/single" "$STLOAD_TEST_S3_ROOT/cli/sharded"
cp "$work/fixtures/all_dtypes.safetensors" "$STLOAD_TEST_S3_ROOT/cli/single/model.safetensors"
cp "$work/fixtures/sharded/"* "$STLOAD_TEST_S3_ROOT/cli/sharded/"

echo "== C test on an s3:// model (static and shared library)"
cargo build --release --lib --quiet
lib="$root/target/release"
out="$root/tests/c/build"
mkdir -p "$out"
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -g -I "$root/include")
gcc "${cflags[@]}" tests/c/test_remote.c -o "$out/test_remote-static" "$lib/libstload.a" -lpthread -ldl -lm
gcc "${cflags[@]}" tests/c/test_remote.c -o "$out/test_remote-shared" -L "$lib" -lstload -Wl,-rpath,"$lib" -lpthread
for kind in static shared; do
    "$out/test_remote-$kind" s3://cli/single/ "$work/fixtures/all_dtypes.safetensors" "$work/cache-c-$kind"
done

echo "== Go on an s3:// model (WithRemote; the go/ package's build of the static library)"
go_out="$(cd go && GOCACHE="$root/go/.cache/go-build" go test -count=1 -run TestRemoteS3 -v .)" ||
    { echo "$go_out"; exit 1; }
echo "$go_out" | grep -E '^(--- |ok|FAIL)'
grep -q -- "--- PASS: TestRemoteS3" <<<"$go_out" # not skipped: the servers' env is exported

echo "== CLI on s3:// models (endpoint from AWS_ENDPOINT_URL, as the AWS tools read it)"
cargo build --release --quiet
stload="$root/target/release/stload"
export AWS_ENDPOINT_URL="$STLOAD_TEST_S3_ENDPOINT"
names() { "$stload" inspect --json "$@" | "$STLOAD_PYTHON" -c \
    'import json, sys; print("\n".join(t["name"] + " " + t["dtype"] + " " + str(t["shape"]) for t in json.load(sys.stdin)["tensors"]))'; }
diff <(names "$work/fixtures/sharded") <(names s3://cli/sharded/)
diff <(names "$work/fixtures/all_dtypes.safetensors") <(names s3://cli/single/model.safetensors)
"$stload" inspect s3://cli/sharded/ >/dev/null
"$stload" convert s3://cli/single/ --dtype f32 --out "$work/remote.safetensors"
"$stload" convert "$work/fixtures/all_dtypes.safetensors" --dtype f32 --out "$work/local.safetensors"
cmp "$work/local.safetensors" "$work/remote.safetensors"
# The cache directory from the environment: the first command fills it, the second reads it.
for _ in 1 2; do
    STLOAD_CACHE_DIR="$work/cache-cli" "$stload" convert s3://cli/single/ --dtype f32 --force \
        --out "$work/cached.safetensors"
    cmp "$work/local.safetensors" "$work/cached.safetensors"
done
# One complete copy, no temporary file (the prefix's directory links to the copy).
[ "$(find "$work/cache-cli" -maxdepth 1 -type f | wc -l)" = 1 ]
diff <(names "$work/fixtures/sharded") <(STLOAD_CACHE_DIR="$work/cache-cli" names s3://cli/sharded/)
# GGUF export of a remote llama: the cached prefix brings config.json and the tokenizer along.
"$STLOAD_PYTHON" tests/python/make_arch_fixtures.py "$work/arch" >/dev/null
mkdir -p "$STLOAD_TEST_S3_ROOT/cli/llama"
cp "$work/arch/llama/"* "$STLOAD_TEST_S3_ROOT/cli/llama/"
"$stload" convert "$work/arch/llama" --out "$work/local.gguf"
STLOAD_CACHE_DIR="$work/cache-cli" "$stload" convert s3://cli/llama/ --out "$work/remote.gguf"
cmp "$work/local.gguf" "$work/remote.gguf"
echo "cli: 7 passed, 0 failed"
