"""stload's MLX loading against Python MLX on a synthetic BF16 model, each run in a fresh process.

Usage: benches/mlx_load.py [--gib 1.5] [--keep DIR] [--runs 3] [--go [--thp]]
  (run from the repository root with the venv of scripts/python-env.sh; builds
   `cargo build --release --features mlx --example mlx_load_bench --target-dir target/mlx`
   first, and with --go mlx-c (tests/c/build_mlx_c.sh) and go/cmd/mlxbench)

Writes a BF16 model of about --gib GiB (tensors of 4096 x 8192, plus a 4096-element
model.norm.weight) to a temporary directory, reads it once so every side starts from a warm page
cache, then measures, alternating the sides in each run:
  stload   stload_model_load_mlx(F32) (Model::load_mlx through examples/mlx_load_bench.rs)
  go       with --go: Open + LoadMLX(F32) from Go (go/cmd/mlxbench load)
  mlx      mx.load(path) + astype(mx.float32) for every array + mx.eval
  memcpy   with --go: the physical limit, copying the output's size from the file mapping
           (faulted in first) into new memory on every core (go/cmd/mlxbench memcpy)
  --thp    go, mlx and memcpy once more each with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, which
           makes malloc ask for transparent huge pages (madvise): the cost of first touching
           the new output memory is mostly page faults, one per 4 KiB page without it
wall time (whole process, and the load alone as timed inside) and peak RSS (ru_maxrss of the
process). Then, per tensor, converting BF16 to F32 with stload's kernel straight into MLX memory
against wrapping the bytes as an MLX array and running MLX's astype + eval. With --go, last, the
time per call of Go's GetMLX(name, Native) (without a cache and from the cache) against MLX's
own array construction from the same host bytes through mlx-c, for model.norm.weight (8 KiB)
and one 64 MiB tensor.
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
# MLX builds have their own target directory, so the plain libraries in target/ stay as they are
# (the Go build tag stload_mlx links from there too).
TARGET = os.path.join(ROOT, "target", "mlx")
BENCH = os.path.join(TARGET, "release", "examples", "mlx_load_bench")
GO_BENCH = os.path.join(TARGET, "mlxbench")

PY_MLX = r"""
import json, resource, sys, time
import mlx.core as mx
start = time.perf_counter()
arrays = mx.load(sys.argv[1])
arrays = {k: v.astype(mx.float32) for k, v in arrays.items()}
mx.eval(arrays)
seconds = time.perf_counter() - start
nbytes = sum(a.nbytes for a in arrays.values())
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": round(seconds, 3), "peak_rss": usage.ru_maxrss * 1024,
                  "minor_faults": usage.ru_minflt, "array_bytes": nbytes}))
"""


def write_model(directory, gib):
    rows, cols = 4096, 8192
    count = max(1, round(gib * 2**30 / (rows * cols * 2)))
    rng = np.random.default_rng(1)
    tensors = {}
    for i in range(count):
        values = rng.standard_normal((rows, cols), dtype=np.float32) * 0.02
        tensors[f"model.layers.{i}.weight"] = values.astype(ml_dtypes.bfloat16)
    tensors["model.norm.weight"] = np.ones(cols // 2, dtype=ml_dtypes.bfloat16)
    path = os.path.join(directory, "model.safetensors")
    save_file(tensors, path)
    return path, count


THP = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.hugetlb=1")


def run(cmd, env=None):
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    wall = time.perf_counter() - start
    result = json.loads(out.strip().splitlines()[-1])
    result["wall"] = round(wall, 3)
    return result


def median(results, key=None):
    """The run with the median load time (or `key`), and the spread of all runs' values."""
    key = key or ("seconds" if "seconds" in results[0] else "kernel_seconds")
    ordered = sorted(results, key=lambda r: r[key])
    middle = dict(ordered[len(ordered) // 2])
    middle["spread"] = ", ".join(f"{r[key]:.2f}" for r in results)
    return middle


def build_go():
    """go/cmd/mlxbench, linked with the shared MLX build of target/mlx and mlx-c."""
    env = dict(os.environ, STLOAD_PYTHON=os.environ.get("STLOAD_PYTHON", sys.executable))
    mlxc = subprocess.run([os.path.join(ROOT, "tests", "c", "build_mlx_c.sh")], env=env,
                          check=True, capture_output=True, text=True).stdout.splitlines()
    env["CGO_CFLAGS"] = f"-I{mlxc[0]}"
    env["CGO_LDFLAGS"] = f"-L{mlxc[1]} -Wl,-rpath,{mlxc[1]}"
    subprocess.run(["go", "build", "-tags", "stload_mlx stload_mlxc stload_shared", "-o", GO_BENCH,
                    "./cmd/mlxbench"], cwd=os.path.join(ROOT, "go"), env=env, check=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.5)
    parser.add_argument("--keep", help="write the model here and keep it")
    parser.add_argument("--runs", type=int, default=3, help="processes per side, alternating")
    parser.add_argument("--go", action="store_true", help="also Go's LoadMLX, memcpy and GetMLX")
    parser.add_argument("--thp", action="store_true", help="with --go: also with malloc on huge pages")
    args = parser.parse_args()
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--features", "mlx", "--example", "mlx_load_bench",
         "--target-dir", TARGET],
        cwd=ROOT, check=True)
    if args.go:
        build_go()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.keep or tmp
        os.makedirs(directory, exist_ok=True)
        path, count = write_model(directory, args.gib)
        size = os.path.getsize(path)
        with open(path, "rb") as f:  # warm the page cache for both sides
            while f.read(1 << 24):
                pass
        stloads, gos, mlxs, memcpys, convs = [], [], [], [], []
        thp = {"go": [], "mlx": [], "memcpy": []}
        small, large = [], []
        for _ in range(args.runs):  # alternate, so drifting machine load hits every side
            stloads.append(run([BENCH, "load", directory, "F32"]))
            if args.go:
                gos.append(run([GO_BENCH, "load", directory]))
            mlxs.append(run([sys.executable, "-c", PY_MLX, path]))
            if args.go:
                memcpys.append(run([GO_BENCH, "memcpy", directory]))
            convs.append(run([BENCH, "convert", directory]))
            if args.go and args.thp:
                thp["go"].append(run([GO_BENCH, "load", directory], THP))
                thp["mlx"].append(run([sys.executable, "-c", PY_MLX, path], THP))
                thp["memcpy"].append(run([GO_BENCH, "memcpy", directory], THP))
        if args.go:
            for _ in range(args.runs):
                small.append(run([GO_BENCH, "get", directory, "model.norm.weight", "20000"]))
                large.append(run([GO_BENCH, "get", directory, "model.layers.0.weight", "20"]))
    stload, mlx, conv = median(stloads), median(mlxs), median(convs)
    gib = lambda b: f"{b / 2**30:.2f} GiB"
    print(f"model: {count} BF16 tensors of 4096 x 8192, {gib(size)} on disk; "
          f"output {gib(stload['array_bytes'])} of F32; {os.cpu_count()} cores")
    print()
    print(f"median of {args.runs} fresh processes per side (all load times in the last column)")
    print()
    print("| run | load time | process wall time | peak RSS | minor page faults | all load times (s) |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    rows = [("stload_model_load_mlx(F32) (Rust)", stload)]
    if args.go:
        rows.append(("Go Open + LoadMLX(F32)", median(gos)))
    rows.append(("mx.load + astype(float32) + eval", mlx))
    if args.go:
        rows.append((f"memcpy of the output size ({memcpys[0]['workers']} threads)", median(memcpys)))
    if args.go and args.thp:
        rows.append(("Go Open + LoadMLX(F32), malloc on huge pages", median(thp["go"])))
        rows.append(("mx.load + astype + eval, malloc on huge pages", median(thp["mlx"])))
        rows.append(("memcpy of the output size, huge pages", median(thp["memcpy"])))
    for label, r in rows:
        faults = r.get("minor_faults", "")
        print(f"| {label} | {r['seconds']:.2f} s | {r['wall']:.2f} s | {gib(r['peak_rss'])} | {faults} "
              f"| {r['spread']} |")
    if args.go:
        go, limit = median(gos), median(memcpys)
        print()
        print(f"Go LoadMLX(F32) against mx.load + astype + eval: {mlx['seconds'] / go['seconds']:.2f}x "
              f"faster (medians); the memcpy limit is {mlx['seconds'] / limit['seconds']:.2f}x "
              f"faster than MLX, and Go takes {go['seconds'] / limit['seconds']:.2f}x the memcpy time")
    print()
    print(f"BF16 -> F32, {conv['tensors']} tensors ({conv['threads']} threads for stload):")
    print(f"  stload kernel into MLX memory:  {conv['kernel_seconds']:.2f} s (runs: {conv['spread']})")
    print(f"  wrap + MLX astype + eval:       {conv['wrap_plus_astype_seconds']:.2f} s "
          f"(of which the wrap {conv['wrap_seconds']:.2f} s; "
          f"{conv['wrapped']} of {conv['tensors']} arrays wrapped the mapping without a copy)")
    if args.go:
        print()
        print(f"GetMLX(name, Native) per call from Go, median of {args.runs} processes (ns per call, "
              "one untimed call first)")
        print()
        print("| tensor | GetMLX, no cache | GetMLX, cached | mlx-c new_data_managed | mlx-c new_data "
              "| no cache − managed |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for results in (small, large):
            r = median(results, "getmlx_uncached_ns")
            extra = r["getmlx_uncached_ns"] - r["mlxc_new_data_managed_ns"]
            print(f"| {r['name']} ({r['nbytes']} bytes, {r['calls']} calls) "
                  f"| {r['getmlx_uncached_ns']:.0f} | {r['getmlx_cached_ns']:.0f} "
                  f"| {r['mlxc_new_data_managed_ns']:.0f} | {r['mlxc_new_data_ns']:.0f} | {extra:.0f} |")


if __name__ == "__main__":
    main()
