#!/usr/bin/env bash
# Creates .venv at the repository root with the Python packages the tests use as oracles.
# Usage: scripts/python-env.sh [--mlx]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
pkgs=(numpy==2.4.6 safetensors==0.8.0 ml_dtypes==0.6.0)
if [ "${1:-}" = "--mlx" ]; then
    pkgs+=(mlx==0.32.4 mlx-cpu==0.32.4)
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pkgs[@]}"
