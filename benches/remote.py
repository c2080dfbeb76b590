"""Remote load speed: load(F32) of a BF16 model kept in a local S3 server (s3s-fs on loopback),
stload against boto3 + numpy and against stload on the same local file.

Usage (from the repository root, after scripts/python-env.sh and tests/remote/install.sh):
    cargo build --release --lib
    .venv/bin/python benches/remote.py [--gib 2] [--repeat 1] [--cache-dir DIR]

What runs, each in a fresh process, in this order, against the same server in the same run:
  - stload, s3://: open + load(F32) through the C library (ctypes), default remote options;
  - stload, local: open + load(F32) of the same file on local disk (warm page cache);
  - boto3 + numpy: get_object of the whole file, the safetensors header parsed, every tensor
    viewed as ml_dtypes.bfloat16 and converted with astype(float32) (the safetensors package's
    numpy loader has no BF16);
  - the server's limit: stload load(BF16) (the stored dtype, no conversion) and boto3
    get_object alone, the same bytes moved by each client with nothing else to do;
  - runai-model-streamer is not run: its PyPI package requires torch, which this project never
    installs (the note in the output says so).
The model (--gib GiB of 128 MiB BF16 tensors, random bits) is written once into --cache-dir
(default <system temp>/stload-remote-bench) and uploaded through the S3 API (multipart, so the
server keeps the ETag as a real store does). boto3, numpy and ml_dtypes live in a virtual
environment made there on first use (pip from the package index).
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

ROOT = Path(__file__).resolve().parent.parent
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
LIB = TARGET_DIR / "release" / "libstload.so"
MIB = 1 << 20
GIB = 1 << 30
BUCKET = "bench"


def write_model(path, gib, tensor_mib):
    """A BF16 safetensors file of `gib` GiB in tensors of `tensor_mib` MiB, random bits."""
    import numpy as np

    n = max(1, int(gib * GIB) // (tensor_mib * MIB))
    elems = tensor_mib * MIB // 2
    header, offset = {}, 0
    for i in range(n):
        header[f"layers.{i}.weight"] = {
            "dtype": "BF16",
            "shape": [elems // 4096, 4096],
            "data_offsets": [offset, offset + elems * 2],
        }
        offset += elems * 2
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    rng = np.random.default_rng(0)
    tmp = path.with_suffix(".partial")
    with open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for _ in range(n):
            # Normal floats (no NaN payloads): what real weights hold.
            bits = rng.standard_normal(elems, dtype=np.float32).view(np.uint32) >> 16
            f.write(bits.astype(np.uint16).tobytes())
    tmp.rename(path)


def tools_python(cache):
    """A virtual environment with boto3, numpy and ml_dtypes (made on first use)."""
    venv = cache / "venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "boto3", "numpy", "ml_dtypes"],
                       check=True)
    return py


BOTO = textwrap.dedent(
    """
    import json, os, sys, time
    import boto3
    from botocore.config import Config
    s3 = boto3.client("s3", endpoint_url=os.environ["STLOAD_TEST_S3_ENDPOINT"],
                      config=Config(max_pool_connections=32))
    mode = sys.argv[1]
    if mode == "upload":
        try:
            s3.create_bucket(Bucket=sys.argv[2])
        except s3.exceptions.ClientError:
            pass
        s3.upload_file(sys.argv[4], sys.argv[2], sys.argv[3])
        sys.exit(0)
    import numpy as np, ml_dtypes
    t0 = time.perf_counter()
    data = s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])["Body"].read()
    if mode == "fetch":
        print(time.perf_counter() - t0)
        sys.exit(0)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = np.frombuffer(data, dtype=ml_dtypes.bfloat16, count=(b - a) // 2, offset=base + a)
        out[name] = raw.astype(np.float32).reshape(t["shape"])
    print(time.perf_counter() - t0)
    """
)

STLOAD = textwrap.dedent(
    """
    import ctypes, os, sys, time
    lib = ctypes.CDLL(sys.argv[1])
    lib.stload_options_new.restype = ctypes.c_void_p
    lib.stload_options_set_remote.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    lib.stload_open_dir.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p)]
    lib.stload_model_load.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.stload_error_message.restype = ctypes.c_char_p
    lib.stload_error_message.argtypes = [ctypes.c_void_p]
    lib.stload_model_free.argtypes = [ctypes.c_void_p]
    F32 = int(sys.argv[3])
    opts = lib.stload_options_new()
    for kv in sys.argv[4:]:
        k, v = kv.split("=", 1)
        assert lib.stload_options_set_remote(opts, k.encode(), v.encode(), None) == 0, kv
    model, err = ctypes.c_void_p(), ctypes.c_void_p()
    t0 = time.perf_counter()
    if lib.stload_open_dir(sys.argv[2].encode(), opts, ctypes.byref(model), ctypes.byref(err)) != 0:
        sys.exit("open: " + lib.stload_error_message(err).decode())
    if lib.stload_model_load(model, F32, None, None, ctypes.byref(err)) != 0:
        sys.exit("load: " + lib.stload_error_message(err).decode())
    print(time.perf_counter() - t0)
    lib.stload_model_free(model)
    """
)


def dtype_number(name):
    for line in (ROOT / "include" / "stload.h").read_text().splitlines():
        parts = line.split()
        if parts[:2] == ["#define", f"STLOAD_DTYPE_{name}"]:
            return int(parts[2])
    raise SystemExit(f"STLOAD_DTYPE_{name} not found in include/stload.h")


def timed(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--tensor-mib", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--cache-dir", type=Path,
                    default=Path(tempfile.gettempdir()) / "stload-remote-bench")
    ap.add_argument("--stload-option", action="append", default=[],
                    help="KEY=VALUE for stload_options_set_remote (e.g. concurrency=32)")
    args = ap.parse_args()
    if not LIB.exists():
        sys.exit(f"{LIB} missing: run cargo build --release --lib")
    cache = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    model_dir = cache / f"model-{args.gib:g}gib"
    model_dir.mkdir(exist_ok=True)
    model = model_dir / "model.safetensors"
    if not model.exists():
        print(f"writing {model} ...", flush=True)
        write_model(model, args.gib, args.tensor_mib)
    size = model.stat().st_size
    py = tools_python(cache)

    servers = Path(tempfile.mkdtemp(prefix="stload-remote-bench-"))
    os.chmod(servers, 0o755)
    watch = subprocess.Popen(["sleep", "infinity"])
    try:
        subprocess.run(["bash", str(ROOT / "tests/remote/servers.sh"), str(servers / "s"),
                        str(watch.pid)], check=True)
        env = dict(os.environ)
        for line in (servers / "s" / "env").read_text().splitlines():
            k, v = line.split("=", 1)
            env[k] = v
        key = f"model-{args.gib:g}gib/model.safetensors"
        print(f"uploading {size / GIB:.2f} GiB to s3s-fs ...", flush=True)
        subprocess.run([str(py), "-c", BOTO, "upload", BUCKET, key, str(model)], env=env,
                       check=True)
        env["AWS_ENDPOINT_URL"] = env["STLOAD_TEST_S3_ENDPOINT"]
        f32 = str(dtype_number("F32"))
        bf16 = str(dtype_number("BF16"))
        url = f"s3://{BUCKET}/model-{args.gib:g}gib/"
        runs = {
            "stload s3:// load(F32)": [sys.executable, "-c", STLOAD, str(LIB), url, f32,
                                       *args.stload_option],
            "stload local load(F32)": [sys.executable, "-c", STLOAD, str(LIB), str(model_dir),
                                       f32],
            "boto3 + numpy astype": [str(py), "-c", BOTO, "get", BUCKET, key],
            # The server's limit: the same bytes moved with no conversion, by both clients.
            "stload s3:// load(BF16)": [sys.executable, "-c", STLOAD, str(LIB), url, bf16,
                                        *args.stload_option],
            "boto3 get_object only": [str(py), "-c", BOTO, "fetch", BUCKET, key],
        }
        # The local file is read once first, so the local run sees a warm page cache.
        with open(model, "rb") as f:
            while f.read(64 * MIB):
                pass
        results = {}
        for name, cmd in runs.items():
            times = [timed(cmd, env) for _ in range(args.repeat)]
            results[name] = statistics.median(times)
            print(f"  {name:26} {results[name]:7.2f} s  {size / GIB / results[name]:5.2f} GiB/s "
                  f"(of BF16 read)", flush=True)
        s3 = results["stload s3:// load(F32)"]
        print(f"\n{size / GIB:.2f} GiB BF16 -> F32, cores: {os.cpu_count()}")
        print(f"  stload s3:// vs boto3 + numpy: {results['boto3 + numpy astype'] / s3:.2f}x faster")
        print(f"  stload s3:// vs local file:    {s3 / results['stload local load(F32)']:.2f}x "
              f"the local time")
        fetch = min(results["stload s3:// load(BF16)"], results["boto3 get_object only"])
        print(f"  server limit (fastest transfer with no conversion): {size / GIB / fetch:.2f} "
              f"GiB/s; stload s3:// load(F32) at {fetch / s3:.2f}x of it")
        print("  runai-model-streamer: not run (its PyPI package requires torch)")
    finally:
        watch.kill()
        watch.wait()
        pids = servers / "s" / "pids"
        if pids.exists():
            for pid in pids.read_text().split():
                try:
                    os.kill(int(pid), 15)
                except ProcessLookupError:
                    pass
        subprocess.run(["rm", "-rf", str(servers)], check=False)


if __name__ == "__main__":
    main()
