#!/usr/bin/env bash
# End-to-end GGUF export check: llama.cpp (llama-cpp-python, built by scripts/python-env.sh)
# runs what `stload convert` writes, against numpy oracles of the same weights. See e2e.py.
# Usage: tests/gguf/run.sh [--writer stload|gguf-py] [--stload PATH] [--keep DIR] [-k NAME]
#   --writer gguf-py checks the oracles and thresholds on files the `gguf` package writes,
#   without stload. The default writer builds target/release/stload unless --stload is given.
# Prints one line per test and closes with "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
python="${STLOAD_PYTHON:-$root/.venv/bin/python}"

writer=stload
given_binary=false
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --writer) writer="${args[i + 1]:-}" ;;
        --writer=*) writer="${args[i]#--writer=}" ;;
        --stload | --stload=*) given_binary=true ;;
    esac
done
if [ "$writer" = stload ] && ! $given_binary; then
    cargo build --release --quiet --bin stload
fi

if ! "$python" -c 'import numpy, safetensors, gguf, tokenizers, llama_cpp' 2>/dev/null; then
    echo "$python lacks numpy, safetensors, gguf, tokenizers or llama-cpp-python: run scripts/python-env.sh"
    echo "0 passed, 1 failed"
    exit 1
fi

# llama.cpp on 2 threads (the runner passes n_threads); numpy's BLAS likewise.
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
exec "$python" tests/gguf/e2e.py "$@"
