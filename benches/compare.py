"""Compares stload's conversions with memcpy, numpy + ml_dtypes and MLX (CPU) on the same inputs.

Usage (from the repository root, after scripts/python-env.sh --mlx):
    .venv/bin/python benches/compare.py [--mib 1024] [--sweep-mib 64] [--reps 3] [--no-sweep]

Main pairs run on --mib MiB inputs: memcpy of the same input (a Rust copy into a reused buffer,
glibc memcpy, and a copy into new memory allocated and faulted as conversions do it; its row
shows the limits of 2T/1T and new/reuse on this machine), stload into a reused buffer on 1 and 2 threads, stload into a new buffer
(convert_to_new, allocation and page faults included), numpy `astype` (which allocates) and MLX
`astype` (or from_fp8/to_fp8). Two more limit rows: a loop that reads 4-byte (2-byte) elements
and writes 2 bytes each with the kernels' loads, prefetch and streaming stores, converting
nothing: what a narrowing conversion (F32 into a 16-bit type; BF16 into F16) can reach. The
sweep runs every supported pair on --sweep-mib MiB inputs against numpy. GB/s counts input plus
output bytes; each number is the best of --reps runs, except "1T/memcpy median", the ratio of
the median runs (on a shared machine the best run may be a lucky one).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import ml_dtypes as mld
import numpy as np

warnings.simplefilter("ignore")
ROOT = Path(__file__).resolve().parent.parent
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BENCH = TARGET_DIR / "release" / "examples" / "convert_bench"

NP = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
    "I32": np.int32, "U32": np.uint32, "I64": np.int64, "U64": np.uint64,
    "F16": np.float16, "BF16": mld.bfloat16, "F32": np.float32, "F64": np.float64,
    "F8_E4M3": mld.float8_e4m3fn, "F8_E5M2": mld.float8_e5m2, "F8_E8M0": mld.float8_e8m0fnu,
    "F8_E4M3FNUZ": mld.float8_e4m3fnuz, "F8_E5M2FNUZ": mld.float8_e5m2fnuz,
}
FLOAT_TARGETS = ["F32", "F16", "BF16", "F64"]
MAIN = [("BF16", "F32"), ("F16", "F32"), ("F32", "BF16"), ("F32", "F16"),
        ("BF16", "F16"), ("F8_E4M3", "F32"), ("F8_E5M2", "F32"), ("F32", "F8_E4M3"), ("BF16", "F8_E4M3")]


def all_pairs():
    for src in NP:
        for dst in FLOAT_TARGETS:
            if src != dst:
                yield src, dst
    for src in ["F32", "F16", "BF16"]:
        for dst in ["F8_E4M3", "F8_E5M2"]:
            yield src, dst


def size_of(name):
    return np.dtype(NP[name]).itemsize


def make_input(name, nbytes, path):
    """Weight-like values (normal, scale 0.05; integers 0..99; bool 0/1), none repeated: a
    tiled block would let a hypervisor merge identical pages and serve them from cache."""
    n = nbytes // size_of(name)
    rng = np.random.default_rng(7)
    with open(path, "wb") as f:
        for start in range(0, n, 1 << 24):
            block = min(n - start, 1 << 24)
            if name == "BOOL":
                part = rng.integers(0, 2, block).astype(np.bool_)
            elif name[0] in "IU":
                part = rng.integers(0, 100, block).astype(NP[name])
            elif name == "F8_E8M0":
                part = rng.integers(100, 150, block).astype(np.uint8).view(NP[name])
            else:
                part = (rng.standard_normal(block, dtype=np.float32) * 0.05).astype(NP[name])
            part.tofile(f)


def best(reps, fn):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run_bench(args):
    out = subprocess.run([str(BENCH), *map(str, args)], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def numpy_time(src, dst, path, reps):
    a = np.fromfile(path, dtype=NP[src])
    return best(reps, lambda: a.astype(NP[dst])), a.nbytes, a.size * size_of(dst)


def mlx_time(src, dst, path, reps):
    try:
        import mlx.core as mx
    except ImportError:
        return None
    mx.set_default_device(mx.cpu)
    kinds = {"F32": mx.float32, "F16": mx.float16, "BF16": mx.bfloat16, "F64": mx.float64}
    raw = np.fromfile(path, dtype=np.uint8 if size_of(src) == 1 else {2: np.uint16, 4: np.uint32}[size_of(src)])
    x = mx.array(raw)
    if src == "F8_E4M3" and dst in kinds:
        op = lambda: mx.from_fp8(x, dtype=kinds[dst])  # noqa: E731
    elif src in kinds and dst == "F8_E4M3":
        x = x.view(kinds[src])
        op = lambda: mx.to_fp8(x)  # noqa: E731
    elif src in kinds and dst in kinds:
        x = x.view(kinds[src])
        op = lambda: x.astype(kinds[dst])  # noqa: E731
    else:
        return None
    mx.eval(x)
    try:
        return best(reps, lambda: mx.eval(op()))
    except Exception:  # an op MLX's CPU backend lacks (e.g. float64 on some builds)
        return None


def fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=1024, help="input size of the main pairs")
    ap.add_argument("--sweep-mib", type=int, default=64, help="input size of the all-pairs sweep")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-sweep", action="store_true")
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "convert_bench"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = {}

        def input_file(name, mib):
            key = (name, mib)
            if key not in inputs:
                inputs[key] = tmp / f"{name}-{mib}.bin"
                make_input(name, mib << 20, inputs[key])
            return inputs[key]

        copies = {(r["threads"], r["mode"]): r for r in
                  run_bench([input_file("F32", args.mib), "memcpy", args.reps, 1, 2])}
        memcpy = {t: copies[(t, "reuse")]["gbps"] for t in (1, 2)}
        fills = {r["threads"]: r["gbps"] for r in
                 run_bench([input_file("F32", args.mib), "memset", args.reps, 1, 2])}
        print(f"memcpy of {args.mib} MiB (GB/s counts read + write): "
              f"1 thread {memcpy[1]:.1f} GB/s, 2 threads {memcpy[2]:.1f} GB/s")
        print(f"memset of {args.mib} MiB (GB/s counts bytes written): "
              f"1 thread {fills[1]:.1f} GB/s, 2 threads {fills[2]:.1f} GB/s "
              f"(a second thread adds {fills[2] / fills[1]:.2f}x to the write bandwidth, the bound of "
              f"conversions that widen)\n")

        moves = {}
        for (ins, outs), name in (((4, 2), "F32"), ((2, 2), "BF16")):
            res = run_bench([input_file(name, args.mib), "move", ins, outs, args.reps, 1, 2])
            moves[(ins, outs)] = {r["threads"]: r for r in res}

        head = ("pair", "1T GB/s", "2T GB/s", "new 2T GB/s", "numpy GB/s", "MLX GB/s",
                "1T/memcpy", "1T/memcpy median", "2T/1T", "2T writes/memset", "new/reuse time",
                "stload/numpy", "stload/MLX")
        # The physical limits in the same columns: what a plain copy gains from a second thread
        # and loses to new memory bounds what any conversion can.
        c1, c2, cnew = copies[(1, "reuse")], copies[(2, "reuse")], copies[(2, "new")]
        rows = [head, ("memcpy (limit)", fmt(c1["gbps"]), fmt(c2["gbps"]), fmt(cnew["gbps"]), "-", "-",
                       "1.00", "1.00", fmt(c2["gbps"] / c1["gbps"], 2), fmt(c2["gbps"] / 2 / fills[2], 2),
                       fmt(cnew["seconds"] / c2["seconds"], 2), "-", "-")]
        for (ins, outs), m in moves.items():
            m1, m2 = m[1], m[2]
            rows.append((
                f"load+store {ins}->{outs} bytes (limit)", fmt(m1["gbps"]), fmt(m2["gbps"]), "-", "-", "-",
                fmt(m1["gbps"] / memcpy[1], 2), fmt(m1["median_gbps"] / c1["median_gbps"], 2),
                fmt(m2["gbps"] / m1["gbps"], 2), fmt(m2["gbps"] * outs / (ins + outs) / fills[2], 2),
                "-", "-", "-",
            ))
        for src, dst in MAIN:
            path = input_file(src, args.mib)
            res = run_bench([path, src, dst, args.reps, 1, 2])
            g = {(r["threads"], r["mode"]): r for r in res}
            t1, t2, new2 = g[(1, "reuse")], g[(2, "reuse")], g[(2, "new")]
            nbytes = t1["bytes"]
            np_t, _, _ = numpy_time(src, dst, path, args.reps)
            np_gbps = nbytes / np_t / 1e9
            mlx_t = mlx_time(src, dst, path, args.reps)
            mlx_gbps = None if mlx_t is None else nbytes / mlx_t / 1e9
            best_gbps = max(t1["gbps"], t2["gbps"])
            rows.append((
                f"{src}->{dst}", fmt(t1["gbps"]), fmt(t2["gbps"]), fmt(new2["gbps"]), fmt(np_gbps), fmt(mlx_gbps),
                fmt(t1["gbps"] / memcpy[1], 2), fmt(t1["median_gbps"] / c1["median_gbps"], 2),
                fmt(t2["gbps"] / t1["gbps"], 2),
                fmt(t2["gbps"] * size_of(dst) / (size_of(src) + size_of(dst)) / fills[2], 2),
                fmt(new2["seconds"] / t2["seconds"], 2), fmt(best_gbps / np_gbps, 1),
                fmt(None if mlx_gbps is None else best_gbps / mlx_gbps, 1),
            ))
        print_table(rows)

        if args.no_sweep:
            return
        print(f"\nAll supported pairs, {args.sweep_mib} MiB inputs, into a reused buffer vs numpy astype:")
        rows = [("pair", "1T GB/s", "2T GB/s", "numpy GB/s", "stload/numpy")]
        worst = None
        for src, dst in all_pairs():
            path = input_file(src, args.sweep_mib)
            res = run_bench([path, src, dst, args.reps, 1, 2])
            g = {(r["threads"], r["mode"]): r for r in res}
            t1, t2 = g[(1, "reuse")], g[(2, "reuse")]
            np_t, _, _ = numpy_time(src, dst, path, args.reps)
            np_gbps = t1["bytes"] / np_t / 1e9
            ratio = max(t1["gbps"], t2["gbps"]) / np_gbps
            worst = ratio if worst is None else min(worst, ratio)
            rows.append((f"{src}->{dst}", fmt(t1["gbps"]), fmt(t2["gbps"]), fmt(np_gbps), fmt(ratio, 1)))
        print_table(rows)
        print(f"\nlowest stload/numpy ratio over all pairs: {worst:.1f}x")


def print_table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
