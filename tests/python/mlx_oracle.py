"""What MLX itself gives for the fixtures: the oracle of tests/mlx.rs.

Usage: mlx_oracle.py FIXTURES_DIR OUT_DIR

Splits FIXTURES_DIR/all_dtypes.safetensors (written by make_fixtures.py) into one file per
tensor, since `mx.load` refuses a whole file when one dtype is unknown to it, and writes
OUT_DIR/big.safetensors (larger tensors, so stload's vectorised and threaded conversion paths
run). For every tensor `mx.load` accepts it records the MLX dtype, the shape and the raw bytes
(hex), natively and after `astype` to float32, float16 and bfloat16, in OUT_DIR/mlx.json:

  {"tensors": {NAME: {"file", "dtype", "shape", "hex", "as": {"F32", "F16", "BF16"}}},
   "refused": {NAME: MESSAGE}}
"""

import json
import os
import struct
import sys

import mlx.core as mx
import numpy as np
from safetensors.numpy import save_file

import ml_dtypes

NAMES = {
    mx.bool_: "BOOL", mx.uint8: "U8", mx.uint16: "U16", mx.uint32: "U32", mx.uint64: "U64",
    mx.int8: "I8", mx.int16: "I16", mx.int32: "I32", mx.int64: "I64", mx.float16: "F16",
    mx.float32: "F32", mx.float64: "F64", mx.bfloat16: "BF16", mx.complex64: "C64",
}
TARGETS = {"F32": mx.float32, "F16": mx.float16, "BF16": mx.bfloat16}


def raw_hex(a):
    """The array's bytes as MLX holds them (row-major), as hex."""
    mx.eval(a)
    flat = a.reshape(-1)
    if a.dtype == mx.bool_:
        flat = flat.astype(mx.uint8)
    return bytes(np.array(flat.view(mx.uint8), copy=True)).hex()


def split(path, out_dir):
    """One single-tensor safetensors file per tensor of `path`, with the same bytes."""
    blob = open(path, "rb").read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = blob[8 + n :]
    files = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        one = {name: {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [0, end - start]}}
        text = json.dumps(one).encode()
        text += b" " * (-len(text) % 8)
        file = os.path.join(out_dir, f"one_{name}.safetensors")
        with open(file, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + data[start:end])
        files[name] = file
    return files


def big(out_dir):
    """Larger tensors: 300k values with every special, ints across their whole range."""
    rng = np.random.default_rng(7)
    f = (rng.standard_normal((300, 1000)) * 8).astype(np.float32)
    flat = f.reshape(-1)
    flat[:10] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-40, -1e-40, 65504.0, 65520.0, 3.0e38]
    ints = rng.integers(-(2**62), 2**62, size=(200, 500), dtype=np.int64)
    ints.reshape(-1)[:2] = [np.iinfo(np.int64).min, np.iinfo(np.int64).max]
    with np.errstate(over="ignore"):
        f16 = f.astype(np.float16)
    tensors = {
        "big_f32": f,
        "big_f16": f16,
        "big_bf16": f.astype(ml_dtypes.bfloat16),
        "big_i64": ints,
        "big_i32": rng.integers(-(2**31), 2**31, size=(100, 1000), dtype=np.int64).astype(np.int32),
        "big_u8": rng.integers(0, 256, size=(100, 1000), dtype=np.uint8),
    }
    path = os.path.join(out_dir, "big.safetensors")
    save_file(tensors, path)
    return {name: path for name in tensors}


def main():
    fixtures, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    files = split(os.path.join(fixtures, "all_dtypes.safetensors"), out_dir)
    files.update(big(out_dir))
    result = {"tensors": {}, "refused": {}}
    for name, file in sorted(files.items()):
        try:
            a = mx.load(file)[name]
        except Exception as e:  # MLX's loader refuses dtypes it does not know
            result["refused"][name] = str(e)
            continue
        entry = {
            "file": os.path.basename(file),
            "dtype": NAMES[a.dtype],
            "shape": list(a.shape),
            "hex": raw_hex(a),
            "as": {},
        }
        for target, t in TARGETS.items():
            entry["as"][target] = raw_hex(a.astype(t))
        result["tensors"][name] = entry
    with open(os.path.join(out_dir, "mlx.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
