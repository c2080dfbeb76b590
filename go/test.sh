#!/usr/bin/env bash
# Builds the Rust library, then vets, tests (static and shared linking) and benchmarks the Go
# package. Works from any directory. Needs Go >= 1.19 and the Python oracle environment
# (scripts/python-env.sh, or STLOAD_PYTHON) for the fixtures.
#
#   go/test.sh            everything
#   STLOAD_GO_SKIP_BUILD=1 ...     reuse target/release (and target/mlx/release) as they are
#   STLOAD_GO_SKIP_MLX=1 ...       skip the MLX part (build tag stload_mlx)
#
# The MLX part builds the library with --features mlx into its own target directory
# (target/mlx: the plain target/release/libstload.a stays as it is), finds libmlx in the Python
# mlx-cpu wheel and mlx-c through tests/c/build_mlx_c.sh (built once, cached in target/mlx-c).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

step() { printf '\n== %s\n' "$*"; }

if [ "${STLOAD_GO_SKIP_BUILD:-}" != 1 ]; then
    step "cargo build --release"
    (cd "$root" && cargo build --release)
fi

cd "$here"
# Go needs a build cache; without HOME (some CI sandboxes) fall back to one in this directory.
gocache="$(go env GOCACHE 2>/dev/null || true)"
if [ -z "$gocache" ] || [ "$gocache" = off ]; then
    export GOCACHE="$here/.cache/go-build"
fi
go version

step "gofmt"
unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
    echo "gofmt: these files need formatting:" >&2
    echo "$unformatted" >&2
    exit 1
fi

step "go vet"
go vet ./...
go vet -tags stload_shared ./...

# cgocheck=2 (full pointer checks) is a GODEBUG setting in Go 1.19 and 1.20; Go 1.21 made it
# a build-time GOEXPERIMENT=cgocheck2 and ignores the GODEBUG value. GOGC=1 makes finalizers
# and moving stacks run often.
step "go test -race, GODEBUG=cgocheck=2 GOGC=1 (static library)"
GODEBUG=cgocheck=2 GOGC=1 go test -race -count=1 ./...

step "go test -tags stload_shared (shared library)"
go test -tags stload_shared -count=1 ./...

step "benchmarks"
go test -run '^$' -bench . -benchtime 2000x .

if [ "${STLOAD_GO_SKIP_MLX:-}" = 1 ]; then
    exit 0
fi
python="${STLOAD_PYTHON:-$root/.venv/bin/python}"
export STLOAD_PYTHON="$python"
if [ "${STLOAD_GO_SKIP_BUILD:-}" != 1 ]; then
    step "cargo build --release --features mlx --target-dir target/mlx"
    (cd "$root" && cargo build --release --features mlx --target-dir "$root/target/mlx")
fi
mlx_lib="${MLX_DIR:-$("$python" -c 'import mlx; print(list(mlx.__path__)[0])')}/lib"
mlxc="$("$root/tests/c/build_mlx_c.sh")"
mlxc_src="$(sed -n 1p <<<"$mlxc")"
mlxc_lib="$(sed -n 2p <<<"$mlxc")"

step "go vet -tags stload_mlx"
go vet -tags stload_mlx ./...
CGO_CFLAGS="-I$mlxc_src" go vet -tags "stload_mlx stload_mlxc stload_shared" ./...

step "go test -race -tags stload_mlx, GODEBUG=cgocheck=2 GOGC=1 (static library + libmlx)"
GODEBUG=cgocheck=2 GOGC=1 CGO_LDFLAGS="-L$mlx_lib -Wl,-rpath,$mlx_lib" \
    go test -race -count=1 -tags stload_mlx ./...

step "go test -tags 'stload_mlx stload_mlxc stload_shared' (shared library, a host using mlx-c)"
CGO_CFLAGS="-I$mlxc_src" CGO_LDFLAGS="-L$mlxc_lib -Wl,-rpath,$mlxc_lib" \
    go test -count=1 -tags "stload_mlx stload_mlxc stload_shared" ./...

step "MLX benchmarks (GetMLX latency, LoadMLX(F32) throughput)"
go test -tags "stload_mlx stload_shared" -run '^$' -bench MLX -benchtime 2000x .

step "example: cmd/mlxweights (ModelWeights, Load(BF16), one MLX operation through mlx-c)"
wdir="$(mktemp -d)"
trap 'rm -rf "$wdir"' EXIT
want="$("$python" "$root/tests/python/make_mlx_weights_fixture.py" "$wdir")"
got="$(CGO_CFLAGS="-I$mlxc_src" CGO_LDFLAGS="-L$mlxc_lib -Wl,-rpath,$mlxc_lib" \
    go run -tags "stload_mlx stload_mlxc stload_shared" ./cmd/mlxweights "$wdir")"
echo "$got"
# Same dtype and shape; MLX sums in float32, numpy's reference in float64.
"$python" - "$want" "$got" <<'EOF'
import sys

want, got = (a.split(" sum ") for a in sys.argv[1:])
ok = want[0] == got[0] and abs(float(want[1]) - float(got[1])) <= 1e-4 * (1 + abs(float(want[1])))
sys.exit(0 if ok else f"mlxweights printed {sys.argv[2]!r}, numpy expects {sys.argv[1]!r}")
EOF

step "benchmark program: cmd/mlxbench (load, memcpy, get) on the same model"
mlxbench() {
    CGO_CFLAGS="-I$mlxc_src" CGO_LDFLAGS="-L$mlxc_lib -Wl,-rpath,$mlxc_lib" \
        go run -tags "stload_mlx stload_mlxc stload_shared" ./cmd/mlxbench "$@"
}
bench="$(mlxbench load "$wdir")"
copy="$(mlxbench memcpy "$wdir")"
get="$(mlxbench get "$wdir" model.embed_tokens.weight 100)"
printf '%s\n' "$bench" "$copy" "$get"
# LoadMLX(F32) and memcpy produce the F32 size of every float tensor and the stored size of the
# others, as safetensors' numpy loader reads the file.
"$python" - "$wdir/model.safetensors" "$bench" "$copy" "$get" <<'EOF'
import json
import sys

from safetensors.numpy import load_file

arrays = load_file(sys.argv[1])
want = sum(a.size * 4 if a.dtype.kind == "f" else a.nbytes for a in arrays.values())
load, copy, get = (json.loads(a) for a in sys.argv[2:])
ok = load["array_bytes"] == want and copy["bytes"] == want
ok = ok and get["nbytes"] == arrays["model.embed_tokens.weight"].nbytes
ok = ok and all(get[k] > 0 for k in ("getmlx_uncached_ns", "getmlx_cached_ns", "mlxc_new_data_managed_ns"))
sys.exit(0 if ok else f"mlxbench: expected {want} bytes of arrays, got {sys.argv[2:]}")
EOF
