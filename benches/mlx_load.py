"""stload's MLX loading against Python MLX on a synthetic BF16 model, each run in a fresh process.

Usage: benches/mlx_load.py [--gib 1.5] [--keep DIR] [--runs 3]
  (run from the repository root with the venv of scripts/python-env.sh; builds
   `cargo build --release --features mlx --example mlx_load_bench` first)

Writes a BF16 model of about --gib GiB (tensors of 4096 x 8192) to a temporary directory, reads
it once so both sides start from a warm page cache, then measures:
  stload   stload_model_load_mlx(F32) (Model::load_mlx through examples/mlx_load_bench.rs)
  mlx      mx.load(path) + astype(mx.float32) for every array + mx.eval
wall time (whole process, and the load alone as timed inside) and peak RSS (ru_maxrss of the
process). Then, per tensor, converting BF16 to F32 with stload's kernel straight into MLX memory
against wrapping the bytes as an MLX array and running MLX's astype + eval.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BENCH = os.path.join(TARGET, "release", "examples", "mlx_load_bench")

PY_MLX = r"""
import json, resource, sys, time
import mlx.core as mx
start = time.perf_counter()
arrays = mx.load(sys.argv[1])
arrays = {k: v.astype(mx.float32) for k, v in arrays.items()}
mx.eval(arrays)
seconds = time.perf_counter() - start
nbytes = sum(a.nbytes for a in arrays.values())
print(json.dumps({"seconds": round(seconds, 3),
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "array_bytes": nbytes}))
"""


def write_model(directory, gib):
    rows, cols = 4096, 8192
    count = max(1, round(gib * 2**30 / (rows * cols * 2)))
    rng = np.random.default_rng(1)
    tensors = {}
    for i in range(count):
        values = rng.standard_normal((rows, cols), dtype=np.float32) * 0.02
        tensors[f"model.layers.{i}.weight"] = values.astype(ml_dtypes.bfloat16)
    path = os.path.join(directory, "model.safetensors")
    save_file(tensors, path)
    return path, count


def run(cmd):
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    result = json.loads(out.strip().splitlines()[-1])
    result["wall"] = round(wall, 3)
    return result


def median(results):
    """The run with the median load time, and the spread of all runs' load times."""
    key = "seconds" if "seconds" in results[0] else "kernel_seconds"
    ordered = sorted(results, key=lambda r: r[key])
    middle = dict(ordered[len(ordered) // 2])
    middle["spread"] = ", ".join(f"{r[key]:.2f}" for r in results)
    return middle


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.5)
    parser.add_argument("--keep", help="write the model here and keep it")
    parser.add_argument("--runs", type=int, default=3, help="processes per side, alternating")
    args = parser.parse_args()
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--features", "mlx", "--example", "mlx_load_bench"],
        cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or tmp
        os.makedirs(directory, exist_ok=True)
        path, count = write_model(directory, args.gib)
        size = os.path.getsize(path)
        with open(path, "rb") as f:  # warm the page cache for both sides
            while f.read(1 << 24):
                pass
        stloads, mlxs, convs = [], [], []
        for _ in range(args.runs):  # alternate, so drifting machine load hits both sides
            stloads.append(run([BENCH, "load", directory, "F32"]))
            mlxs.append(run([sys.executable, "-c", PY_MLX, path]))
            convs.append(run([BENCH, "convert", directory]))
    stload, mlx, conv = median(stloads), median(mlxs), median(convs)
    gib = lambda b: f"{b / 2**30:.2f} GiB"
    print(f"model: {count} BF16 tensors of 4096 x 8192, {gib(size)} on disk; "
          f"output {gib(stload['array_bytes'])} of F32; {os.cpu_count()} cores")
    print()
    print(f"median of {args.runs} fresh processes per side (all load times in the last column)")
    print()
    print("| run | load time | process wall time | peak RSS | all load times (s) |")
    print("| --- | ---: | ---: | ---: | --- |")
    for label, r in (("stload_model_load_mlx(F32)", stload), ("mx.load + astype(float32) + eval", mlx)):
        print(f"| {label} | {r['seconds']:.2f} s | {r['wall']:.2f} s | {gib(r['peak_rss'])} | {r['spread']} |")
    print()
    print(f"BF16 -> F32, {conv['tensors']} tensors ({conv['threads']} threads for stload):")
    print(f"  stload kernel into MLX memory:  {conv['kernel_seconds']:.2f} s (runs: {conv['spread']})")
    print(f"  wrap + MLX astype + eval:       {conv['wrap_plus_astype_seconds']:.2f} s "
          f"(of which the wrap {conv['wrap_seconds']:.2f} s; "
          f"{conv['wrapped']} of {conv['tensors']} arrays wrapped the mapping without a copy)")


if __name__ == "__main__":
    main()
