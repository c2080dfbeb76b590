"""Remote load speed: load(F32) of a BF16 model kept in a local S3 server (s3s-fs or Garage on
loopback), stload against runai-model-streamer, against boto3 + numpy, and against stload on the
same local file; the server's limit; the same file over plain HTTP (nginx); a model of many small
tensors.

Usage (from the repository root, after scripts/python-env.sh and tests/remote/install.sh):
    cargo build --release --lib
    .venv/bin/python benches/remote.py [--server s3s-fs|garage] [--gib 2] [--repeat 1]
        [--cache-dir DIR] [--small-gib GIB] [--small-tensor-kib 256] [--runai-concurrency 8]
        [--stload-option KEY=VALUE ...]

The servers are started by tests/remote/servers.sh on loopback ports (s3s-fs and nginx). With
--server garage every s3:// row (stload, runai, boto3, the server's limit, the latency) reads from
a single-node Garage instead, started by benches/garage.sh (which builds it into target/tools on
first use, a long build; STLOAD_GARAGE names a garage binary built elsewhere): s3s-fs reads its
files in 4 KiB pieces and caps every client at about a third of a GiB/s; Garage is a production
S3 store, run as a separate process (it is AGPL software, never linked), with limits of its own:
it checks the BLAKE2 hash of every block it reads, which on 2 cores keeps it near s3s-fs's speed.
Garage answers path-style requests (no root domain is set) signed for its own region (AWS_REGION
and AWS_DEFAULT_REGION from garage.sh). What
runs, each in a fresh process, against the same servers in the same run (rows of the table):
  big model (--gib GiB of 128 MiB BF16 tensors, random normal bits):
  - stload s3:// load(F32): open + load(F32) through the C library (ctypes), default remote
    options (or --stload-option);
  - stload local load(F32): open + load(F32) of the same file on local disk (warm page cache);
  - runai-model-streamer load(F32): runai's native streamer (libstreamer.so with the S3 backend
    libstreamers3.so of runai-model-streamer-s3) driven through its own ctypes binding
    `runai_model_streamer.libstreamer.libstreamer`: header, then one range per tensor into a numpy
    buffer, each tensor converted with ml_dtypes astype(float32) as it arrives (runai leaves
    conversion to torch). Its PyPI package declares torch as a dependency and its package
    __init__ imports torch, which this project never installs: the two packages (release
    RUNAI_VERSION) are installed with `pip install --no-deps`, plus humanize, numpy and boto3,
    and benches/remote_runai.py imports the subpackage without running the package __init__
    (it registers the package in sys.modules with its __path__). Path-style addressing
    (RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING=0), AWS_ENDPOINT_URL and the AWS_* credentials of
    the server, RUNAI_STREAMER_OBJ_CONCURRENCY=--runai-concurrency (default 8, runai's
    documented default for object storage), runai's default 8 MiB object-storage chunks. The
    bytes are compared with the file after every timed run (a mismatch fails the row);
  - boto3 + numpy astype: get_object of the whole file, the header parsed, every tensor viewed
    as ml_dtypes.bfloat16 and converted with astype(float32) (the safetensors package's numpy
    loader has no BF16);
  - the server's limit, the same bytes moved with no conversion: stload s3:// load(BF16) (the
    stored dtype), runai fetch only, boto3 get_object only; the fastest is "the server limit";
  - stload http:// load(F32) and load(BF16): the same file served by nginx (tests/remote/
    servers.sh starts it; the file is hard-linked into its root), a server that is not the
    limit: what stload does when the network side is fast (its BF16 row is the HTTP limit);
  many-small-tensors model (--small-gib GiB of --small-tensor-kib KiB BF16 tensors; default
  half of --gib, so 4,096 tensors of 256 KiB at --gib 2):
  - stload s3:// load(F32), stload local load(F32), stload http:// load(F32),
    runai-model-streamer load(F32). A client that fetches one tensor after another pays one
    round trip per tensor, so the bench also measures one 4 KiB ranged GET on each server
    (boto3 on the S3 server, urllib on nginx) to tell the server's latency from the client's.
The table gives each row's median time over --repeat runs, GiB/s of BF16 read, how many times
faster stload is than each peer (peer time / stload time, same model, dtype and server), and the
row's throughput as a share of its server's limit; the goals of issue 18 follow it.
The models are written once into --cache-dir (default <system temp>/stload-remote-bench) and
uploaded through the S3 API (multipart, so the server keeps the ETag as a real store does).
boto3, numpy, ml_dtypes and runai live in a virtual environment made there on first use (pip
from the package index).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
LIB = TARGET_DIR / "release" / "libstload.so"
RUNAI_SCRIPT = Path(__file__).resolve().parent / "remote_runai.py"
KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
BUCKET = "bench"
# The runai release whose libstreamer binding remote_runai.py drives (its API is internal).
RUNAI_VERSION = "0.17.1"
# The S3 servers the bench can run against.
SERVERS = ("s3s-fs", "garage")
RUNAI_PACKAGES = [f"runai-model-streamer=={RUNAI_VERSION}",
                  f"runai-model-streamer-s3=={RUNAI_VERSION}"]


def write_model(path, total_bytes, tensor_bytes):
    """A BF16 safetensors file of about `total_bytes` in tensors of `tensor_bytes`, random bits."""
    import numpy as np

    n = max(1, total_bytes // tensor_bytes)
    elems = tensor_bytes // 2
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
    # Written in pieces of at most 128 MiB, whatever the tensor size.
    per_write = max(1, 128 * MIB // tensor_bytes)
    with open(tmp, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        left = n
        while left:
            k = min(left, per_write)
            # Normal floats (no NaN payloads): what real weights hold.
            bits = rng.standard_normal(k * elems, dtype=np.float32).view(np.uint32) >> 16
            f.write(bits.astype(np.uint16).tobytes())
            left -= k
    tmp.rename(path)


def ensure_model(cache, name, total_bytes, tensor_bytes):
    model_dir = cache / name
    model_dir.mkdir(exist_ok=True)
    model = model_dir / "model.safetensors"
    if not model.exists():
        print(f"writing {model} ...", flush=True)
        write_model(model, total_bytes, tensor_bytes)
    return model_dir, model


def tensor_count(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return sum(1 for name in json.loads(f.read(n)) if name != "__metadata__")


def tools_python(cache):
    """A virtual environment with boto3, numpy, ml_dtypes and runai (made on first use).

    Returns the interpreter and, when runai could not be installed, why."""
    venv = cache / "venv"
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "boto3", "numpy", "ml_dtypes"],
                       check=True)
    marker = venv / f".runai-{RUNAI_VERSION}"
    if not marker.exists():
        # --no-deps: runai's package requires torch, used only by its Python glue, not by the
        # native streamer and its binding; its other dependencies are installed by name.
        steps = [["--no-deps", *RUNAI_PACKAGES], ["humanize", "numpy", "boto3"]]
        for step in steps:
            done = subprocess.run([str(py), "-m", "pip", "install", "-q", *step],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                return py, "pip install failed: " + last_lines(done.stderr)
        marker.touch()
    return py, None


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
    if mode == "latency":
        # One 4 KiB ranged GET, S3 (boto3) and HTTP (urllib): [min, median] of 30, in ms.
        import statistics, urllib.request
        def ms(get):
            times = []
            for i in range(30):
                t0 = time.perf_counter()
                get(f"bytes={i * 4096}-{i * 4096 + 4095}")
                times.append((time.perf_counter() - t0) * 1000)
            return [min(times), statistics.median(times)]
        s3_ms = ms(lambda r: s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3],
                                           Range=r)["Body"].read())
        http_ms = ms(lambda r: urllib.request.urlopen(
            urllib.request.Request(sys.argv[4], headers={"Range": r})).read())
        print(json.dumps({"s3": s3_ms, "http": http_ms}))
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


def last_lines(text, n=3):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:]) if lines else "(no output)"


def timed(cmd, env):
    """The time a run printed last, or the reason it failed."""
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return None, f"exit {done.returncode}: {last_lines(done.stderr + done.stdout)}"
    try:
        return float(done.stdout.strip().splitlines()[-1]), None
    except (IndexError, ValueError):
        return None, f"no time printed: {last_lines(done.stdout + done.stderr)}"


def link_or_copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)


class Row:
    """One line of the table: a command run --repeat times."""

    def __init__(self, name, model, server, cmd, env, ref=None, limit=False, required=True,
                 prime=False):
        self.name = name  # what the table shows
        self.model = model  # "big" or "small"
        self.server = server  # "s3", "http" or "local"
        self.cmd = cmd
        self.env = env
        self.ref = ref  # the stload row a peer is compared with
        self.limit = limit  # a transfer with no conversion: a candidate for the server's limit
        self.required = required  # a failure stops the bench (stload, boto3) or is reported
        self.prime = prime  # run once untimed first (fills the cache directory)
        self.seconds = None
        self.error = None


def start_garage(servers, watch):
    """Garage on loopback (benches/garage.sh) with the bench's bucket: its env lines and pids."""
    subprocess.run(["bash", str(ROOT / "benches" / "garage.sh"), "start", str(servers / "g"),
                    str(watch.pid), BUCKET], check=True)
    env = dict(line.split("=", 1) for line in (servers / "g" / "env").read_text().splitlines())
    return env, (servers / "g" / "pids").read_text().split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", choices=SERVERS, default="s3s-fs",
                    help="the S3 server of the s3:// rows (garage: benches/garage.sh)")
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--tensor-mib", type=int, default=128)
    ap.add_argument("--small-gib", type=float, default=None,
                    help="size of the many-small-tensors model (default: half of --gib)")
    ap.add_argument("--small-tensor-kib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--cache-dir", type=Path,
                    default=Path(tempfile.gettempdir()) / "stload-remote-bench")
    ap.add_argument("--stload-option", action="append", default=[],
                    help="KEY=VALUE for stload_options_set_remote (e.g. concurrency=32)")
    ap.add_argument("--runai-concurrency", type=int, default=8,
                    help="RUNAI_STREAMER_OBJ_CONCURRENCY (runai's documented default: 8)")
    args = ap.parse_args()
    if not LIB.exists():
        sys.exit(f"{LIB} missing: run cargo build --release --lib")
    small_gib = args.gib / 2 if args.small_gib is None else args.small_gib
    if args.small_tensor_kib <= 0 or args.small_tensor_kib % 8 or args.tensor_mib <= 0:
        sys.exit("--tensor-mib must be positive and --small-tensor-kib a positive multiple of 8 "
                 "(the tensors are rows of 4096 BF16 values)")
    cache = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    big_name = f"model-{args.gib:g}gib"
    small_name = f"small-{small_gib:g}gib-{args.small_tensor_kib}k"
    big_dir, big = ensure_model(cache, big_name, int(args.gib * GIB), args.tensor_mib * MIB)
    small_dir, small = ensure_model(cache, small_name, int(small_gib * GIB),
                                    args.small_tensor_kib * KIB)
    sizes = {"big": big.stat().st_size, "small": small.stat().st_size}
    n_tensors = {"big": tensor_count(big), "small": tensor_count(small)}
    py, runai_missing = tools_python(cache)

    servers = Path(tempfile.mkdtemp(prefix="stload-remote-bench-"))
    os.chmod(servers, 0o755)
    watch = subprocess.Popen(["sleep", "infinity"])
    pids = []
    try:
        subprocess.run(["bash", str(ROOT / "tests/remote/servers.sh"), str(servers / "s"),
                        str(watch.pid)], check=True)
        pids += (servers / "s" / "pids").read_text().split()
        env = dict(os.environ)
        env.pop("STLOAD_CACHE_DIR", None)  # only the cache_dir row reads a cache
        for line in (servers / "s" / "env").read_text().splitlines():
            k, v = line.split("=", 1)
            env[k] = v
        if args.server == "garage":
            # The s3:// rows go to Garage (its endpoint, key and region); nginx stays the HTTP
            # server. s3s-fs idles.
            garage_env, garage_pids = start_garage(servers, watch)
            pids += garage_pids
            env.update(garage_env)
            env["STLOAD_TEST_S3_ENDPOINT"] = garage_env["AWS_ENDPOINT_URL"]
        keys = {"big": f"{big_name}/model.safetensors", "small": f"{small_name}/model.safetensors"}
        for which, path in (("big", big), ("small", small)):
            print(f"uploading {sizes[which] / GIB:.2f} GiB to {args.server} ...", flush=True)
            subprocess.run([str(py), "-c", BOTO, "upload", BUCKET, keys[which], str(path)],
                           env=env, check=True)
        # nginx serves its root directory: the big model is placed there (a hard link if it can).
        for path, name in ((big, big_name), (small, small_name)):
            link_or_copy(path, Path(env["STLOAD_TEST_HTTP_ROOT"]) / name / "model.safetensors")
        env["AWS_ENDPOINT_URL"] = env["STLOAD_TEST_S3_ENDPOINT"]
        runai_env = dict(env)
        runai_env.update({
            "RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING": "0",  # path-style, as both servers serve
            "AWS_EC2_METADATA_DISABLED": "true",
            "RUNAI_STREAMER_OBJ_CONCURRENCY": str(args.runai_concurrency),
        })
        f32 = str(dtype_number("F32"))
        bf16 = str(dtype_number("BF16"))
        s3_url = {w: f"s3://{BUCKET}/{n}/" for w, n in (("big", big_name), ("small", small_name))}
        http_url = {w: f"{env['STLOAD_TEST_HTTP_URL']}/{n}/"
                    for w, n in (("big", big_name), ("small", small_name))}
        local_file = {"big": big, "small": small}

        def stload(url, dtype, opts=args.stload_option):
            return [sys.executable, "-c", STLOAD, str(LIB), str(url), dtype, *opts]

        def runai(which, mode):
            return [str(py), str(RUNAI_SCRIPT), mode, f"s3://{BUCKET}/{keys[which]}",
                    str(local_file[which])]

        rows = [
            Row("stload s3:// load(F32)", "big", "s3", stload(s3_url["big"], f32), env),
            Row("stload local load(F32)", "big", "local", stload(big_dir, f32, []), env),
            Row("runai-model-streamer load(F32)", "big", "s3", runai("big", "load"), runai_env,
                ref="stload s3:// load(F32)", required=False),
            Row("boto3 + numpy astype", "big", "s3", [str(py), "-c", BOTO, "get", BUCKET,
                                                      keys["big"]], env,
                ref="stload s3:// load(F32)"),
            Row("stload s3:// load(BF16)", "big", "s3", stload(s3_url["big"], bf16), env,
                limit=True),
            Row("runai fetch only", "big", "s3", runai("big", "fetch"), runai_env,
                ref="stload s3:// load(BF16)", limit=True, required=False),
            Row("boto3 get_object only", "big", "s3", [str(py), "-c", BOTO, "fetch", BUCKET,
                                                       keys["big"]], env,
                ref="stload s3:// load(BF16)", limit=True),
            Row("stload s3:// load(F32), cache_dir, later start", "big", "s3",
                stload(s3_url["big"], f32,
                       args.stload_option + [f"cache_dir={servers / 'stload-cache'}"]),
                env, prime=True),
            Row("stload http:// load(F32)", "big", "http", stload(http_url["big"], f32), env),
            Row("stload http:// load(BF16)", "big", "http", stload(http_url["big"], bf16), env,
                limit=True),
            Row("stload s3:// load(F32)", "small", "s3", stload(s3_url["small"], f32),
                env),
            Row("stload local load(F32)", "small", "local",
                stload(small_dir, f32, []), env),
            Row("stload http:// load(F32)", "small", "http", stload(http_url["small"], f32),
                env),
            Row("runai-model-streamer load(F32)", "small", "s3", runai("small", "load"),
                runai_env, ref="stload s3:// load(F32)", required=False),
        ]
        # The local files are read once first, so the local runs see a warm page cache.
        for path in (big, small):
            with open(path, "rb") as f:
                while f.read(64 * MIB):
                    pass
        # What one request costs on each server: the small-tensor rows depend on it.
        done = subprocess.run([str(py), "-c", BOTO, "latency", BUCKET, keys["small"],
                               f"{http_url['small']}model.safetensors"],
                              env=env, check=True, capture_output=True, text=True)
        latency = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{len(rows)} rows, {args.repeat} run(s) each:", flush=True)
        for row in rows:
            if runai_missing and row.name.startswith("runai"):
                row.error = runai_missing
            else:
                times = []
                if row.prime:
                    _, row.error = timed(row.cmd, row.env)
                for _ in range(args.repeat if not row.error else 0):
                    seconds, error = timed(row.cmd, row.env)
                    if error:
                        row.error = error
                        break
                    times.append(seconds)
                if times and not row.error:
                    row.seconds = statistics.median(times)
            if row.error and row.required:
                sys.exit(f"{row.name} ({row.model} model): {row.error}")
            shown = f"{row.seconds:7.2f} s" if row.seconds else f"failed: {row.error}"
            print(f"  {row.model:5} {row.name:32} {shown}", flush=True)
        report(args, rows, sizes, n_tensors, latency)
    finally:
        watch.kill()
        watch.wait()
        for pid in pids:
            try:
                os.kill(int(pid), 15)
            except ProcessLookupError:
                pass
        subprocess.run(["rm", "-rf", str(servers)], check=False)


def report(args, rows, sizes, n_tensors, latency):
    """The table (markdown) and the ratios that answer the issue's goals."""
    by = {(r.model, r.name): r for r in rows}

    def gibps(row):
        return sizes[row.model] / GIB / row.seconds if row.seconds else None

    # The server's limit: the fastest transfer with no conversion from that server (big model).
    limit = {}
    for server in ("s3", "http"):
        cands = [r for r in rows if r.limit and r.server == server and r.seconds]
        if cands:
            limit[server] = max(cands, key=gibps)

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "-"

    small_run = args.gib < 2
    print()
    if small_run:
        print(f"SMALL RUN (--gib {args.gib:g}): not the issue's >= 2 GiB measurement.")
    print(f"big model: {sizes['big'] / GIB:.2f} GiB BF16, {n_tensors['big']} tensors of "
          f"{args.tensor_mib} MiB; small-tensor model: {sizes['small'] / GIB:.2f} GiB BF16, "
          f"{n_tensors['small']} tensors of {args.small_tensor_kib} KiB; cores: {os.cpu_count()}; "
          f"median of {args.repeat} run(s); servers on loopback: S3 {args.server}, HTTP nginx.")
    print(f"stload remote options: {' '.join(args.stload_option) or 'defaults'}; "
          f"runai-model-streamer {RUNAI_VERSION} native streamer through its libstreamer binding "
          f"(package __init__ not run: it imports torch), "
          f"RUNAI_STREAMER_OBJ_CONCURRENCY={args.runai_concurrency}; runai rows: the bytes are "
          f"compared with the file after every run (stload's are checked bit-exact by "
          f"tests/remote.rs).")
    print("stload speed-up: the peer's time / stload's time (same model, dtype and server; "
          "above 1: stload is faster). Share of server limit: the row's GiB/s / the fastest "
          "transfer with no conversion from the same server on the big model.")
    print()
    print("| model | row | server | time (s) | GiB/s | stload speed-up | share of server limit |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    server_name = {"s3": args.server, "http": "nginx", "local": "local file"}
    for r in rows:
        ref = by.get((r.model, r.ref)) if r.ref else None
        faster = ratio(r.seconds, ref.seconds) if ref else ""
        lim = limit.get(r.server)
        share = f"{gibps(r) / gibps(lim):.0%}" if r.seconds and lim else ""
        time_s = f"{r.seconds:.2f}" if r.seconds else "failed"
        rate = f"{gibps(r):.2f}" if r.seconds else "-"
        print(f"| {r.model} | {r.name} | {server_name[r.server]} | {time_s} | {rate} | {faster} "
              f"| {share} |")
    for r in rows:
        if r.error:
            print(f"\n{r.model} model, {r.name}: not measured: {r.error}")

    s3 = by[("big", "stload s3:// load(F32)")].seconds
    local = by[("big", "stload local load(F32)")].seconds
    runai = by[("big", "runai-model-streamer load(F32)")].seconds
    boto = by[("big", "boto3 + numpy astype")].seconds

    def goal(text, value, target, higher_is_better=True):
        if value is None:
            return f"  {text}: not measured (goal {target})"
        ok = value >= target if higher_is_better else value <= target
        sign = ">=" if higher_is_better else "<="
        return f"  {text}: {value:.2f}x (goal {sign} {target}x: {'met' if ok else 'not met'})"

    print("\nGoals of issue 18 (big model, load(F32)):")
    print(goal("stload s3:// vs runai-model-streamer, times faster", runai and runai / s3, 1.5))
    print(goal("stload s3:// vs boto3 + numpy, times faster", boto / s3, 3.0))
    print(goal("stload s3:// vs stload local file, times the local time", s3 / local, 1.5,
               higher_is_better=False))
    cached = by[("big", "stload s3:// load(F32), cache_dir, later start")].seconds
    print(goal("  the same with cache_dir, a later start (served from the local copy)",
               cached and cached / local, 1.5, higher_is_better=False))
    print("\nThe servers' limits (fastest transfer with no conversion, big model):")
    for server, row in limit.items():
        print(f"  {server} ({server_name[server]}): {gibps(row):.2f} GiB/s ({row.name})")
    http32 = by[("big", "stload http:// load(F32)")].seconds
    http16 = by[("big", "stload http:// load(BF16)")].seconds
    print(f"  stload http:// load(F32) takes {ratio(http32, http16)} the time of its load(BF16) "
          f"(1.00x: the conversion is hidden behind the transfer), {ratio(http32, s3)} the time "
          f"of s3:// load(F32)")
    s3_small = by[("small", "stload s3:// load(F32)")]
    local_small = by[("small", "stload local load(F32)")]
    http_small = by[("small", "stload http:// load(F32)")]
    print(f"\nMany small tensors ({n_tensors['small']} x {args.small_tensor_kib} KiB), "
          f"load(F32): stload s3:// at {ratio(s3_small.seconds, local_small.seconds)} the local "
          f"time, http:// at {ratio(http_small.seconds, local_small.seconds)}; s3:// "
          f"{gibps(s3_small):.2f} GiB/s against {gibps(by[('big', 'stload s3:// load(F32)')]):.2f} "
          f"GiB/s with {args.tensor_mib} MiB tensors.")
    (s3_min, s3_med), (http_min, http_med) = latency["s3"], latency["http"]
    print(f"  one 4 KiB ranged GET, median (min) of 30: {args.server} {s3_med:.1f} ms "
          f"({s3_min:.1f}, boto3), nginx {http_med:.1f} ms ({http_min:.1f}, urllib); "
          f"{n_tensors['small']} requests one after another take "
          f"{n_tensors['small'] * s3_med / 1000:.2f} s at the {args.server} median.")


if __name__ == "__main__":
    main()
