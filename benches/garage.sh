#!/usr/bin/env bash
# Garage for the remote benchmark (benches/remote.py --server garage): a single-node S3 server on
# loopback, a production store to set beside s3s-fs (tests/remote/servers.sh), which reads its
# files in 4 KiB pieces. Garage is not free either: it checks the BLAKE2 hash of every block it
# reads, on every GET (no setting turns that off); on 2 cores that hash is most of its CPU time
# and keeps it near s3s-fs's speed. Where cores are plenty it reads blocks in parallel.
#
# Garage is AGPL-3.0 software. It is only built from crates.io and run here as a separate server
# process that the benchmark's clients talk to over HTTP; nothing of it is linked into stload,
# shipped with it or committed to this repository (the binary lives in the ignored target/tools).
#
# Usage:
#   benches/garage.sh install
#       builds Garage into target/tools once (skipped when the binary is there);
#   benches/garage.sh start DIR WATCH_PID [BUCKET ...]
#       installs when missing, then starts one Garage node on loopback ports chosen free, with its
#       configuration, metadata and data under DIR; gives the node the whole layout, imports an
#       access key and creates each BUCKET (default: bench) with read, write and owner rights for
#       that key. Writes DIR/env (KEY=VALUE lines to export: AWS_ENDPOINT_URL, the key, the
#       region, AWS_ALLOW_HTTP) and DIR/pids. The server stops when WATCH_PID exits (a watchdog
#       polls it) or when the pids in DIR/pids are killed.
# Settings (environment):
#   STLOAD_GARAGE             the garage binary to run (default: target/tools/bin/garage)
#   STLOAD_GARAGE_BLOCK_SIZE  Garage's block_size (default 1MiB, see below)
#   STLOAD_GARAGE_REGION      the S3 region it answers to (default garage)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/target/tools"
garage="${STLOAD_GARAGE:-$tools/bin/garage}"
python="${STLOAD_PYTHON:-$root/.venv/bin/python}"
# The release measured; lmdb (the metadata engine) and bundled-libs (no system sqlite or
# libsodium needed) are the only features the benchmark needs.
garage_version=2.5.0

install() {
    if ! "$garage" --version 2>/dev/null | grep -q "$garage_version"; then
        if [ -n "${STLOAD_GARAGE:-}" ]; then
            echo "garage.sh: STLOAD_GARAGE=$STLOAD_GARAGE is not garage $garage_version" >&2
            exit 1
        fi
        echo "installing garage $garage_version into $tools (a long build)"
        cargo install garage@"$garage_version" --locked --root "$tools" \
            --no-default-features --features bundled-libs,lmdb --quiet
    fi
}

start() {
    local dir="$1" watch="$2"
    shift 2
    local buckets=("$@")
    [ ${#buckets[@]} -gt 0 ] || buckets=(bench)
    install
    free_port() {
        "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    }
    local s3_port rpc_port secret
    s3_port="$(free_port)"
    rpc_port="$(free_port)"
    secret="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
    local block_size="${STLOAD_GARAGE_BLOCK_SIZE:-1MiB}"
    local region="${STLOAD_GARAGE_REGION:-garage}"
    # The same key as s3s-fs in tests/remote/servers.sh: Garage takes any id of 8 or more
    # characters and any secret of 16 or more.
    local key=stloadtest key_secret=stloadtestsecret
    mkdir -p "$dir/meta" "$dir/data"
    # What matters for reading large objects fast (Garage's configuration reference):
    # - compression_level "none": Garage compresses each block with zstd by default (level 1) and
    #   keeps the compressed copy when smaller, which BF16 weights are (their exponent bytes are
    #   compressible); every read would then decompress the block twice (once to check it, once
    #   to send it), on the same 2 cores as the client.
    # - block_size: Garage reads and checks (BLAKE2) a whole block for any range that touches it,
    #   so a block much larger than a client's ranged GET reads bytes it throws away: runai and
    #   stload ask for 8 MiB ranges that are not aligned to blocks (they start after the
    #   safetensors header). 1 MiB blocks read at most 2 MiB too many per range; the bench's
    #   multipart upload (8 MiB parts) caps a block at 8 MiB anyway. Measured on loopback: a
    #   1 MiB range took 8 ms with 1 MiB blocks and 32 ms with 8 MiB blocks, and a whole-object
    #   GET ran at the same speed with either.
    # - disable_scrub: no background pass re-reading every block while the benchmark runs.
    # - data_fsync and metadata_fsync stay off (their defaults): the upload is not measured.
    cat >"$dir/garage.toml" <<CONF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "lmdb"
replication_factor = 1
block_size = "$block_size"
compression_level = "none"
disable_scrub = true
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$secret"

[s3_api]
api_bind_addr = "127.0.0.1:$s3_port"
s3_region = "$region"
CONF
    chmod 600 "$dir/garage.toml"
    local g=("$garage" -c "$dir/garage.toml")
    # Warnings only: at info level the server logs every request.
    RUST_LOG="${RUST_LOG:-netapp=warn,garage=warn}" "${g[@]}" server >"$dir/garage.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/pids"
    (
        while kill -0 "$watch" 2>/dev/null; do sleep 1; done
        kill "$pid" 2>/dev/null || true
    ) >/dev/null 2>&1 </dev/null &

    fail() {
        echo "garage.sh: $1; log:" >&2
        cat "$dir/garage.log" >&2 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
        exit 1
    }
    local up=""
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || fail "garage exited"
        if "${g[@]}" status >/dev/null 2>&1; then
            up=1
            break
        fi
        sleep 0.2
    done
    [ -n "$up" ] || fail "garage did not answer on its RPC port"
    local node
    node="$("${g[@]}" node id -q 2>/dev/null)" || fail "garage node id failed"
    node="${node%%@*}"
    # One node holds every partition: zone and capacity are only labels for a single node.
    "${g[@]}" layout assign -z local -c 100G "$node" >/dev/null || fail "layout assign failed"
    "${g[@]}" layout apply --version 1 >/dev/null || fail "layout apply failed"
    "${g[@]}" key import --yes -n bench "$key" "$key_secret" >/dev/null || fail "key import failed"
    local b
    for b in "${buckets[@]}"; do
        "${g[@]}" bucket create "$b" >/dev/null || fail "bucket create $b failed"
        "${g[@]}" bucket allow --read --write --owner --key "$key" "$b" >/dev/null ||
            fail "bucket allow $b failed"
    done
    "$python" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" \
        "$s3_port" 2>/dev/null || fail "no S3 API on port $s3_port"
    # AWS_DEFAULT_REGION too: some clients (the AWS C++ SDK under runai) read only one of the two.
    cat >"$dir/env" <<ENV
AWS_ENDPOINT_URL=http://127.0.0.1:$s3_port
AWS_ACCESS_KEY_ID=$key
AWS_SECRET_ACCESS_KEY=$key_secret
AWS_REGION=$region
AWS_DEFAULT_REGION=$region
AWS_ALLOW_HTTP=true
ENV
}

case "${1:-}" in
install) install ;;
start)
    [ $# -ge 3 ] || { echo "usage: $0 start DIR WATCH_PID [BUCKET ...]" >&2; exit 2; }
    shift
    start "$@"
    ;;
*)
    echo "usage: $0 install | start DIR WATCH_PID [BUCKET ...]" >&2
    exit 2
    ;;
esac
