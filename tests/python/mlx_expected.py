"""What Python's MLX makes of safetensors files: the oracle of the Go MLX tests.

    mlx_expected.py FILE.safetensors...

Prints JSON on stdout: for every tensor of every file, as `mx.load` gives it, its MLX dtype
name, its shape and the hex of its bytes ("native"), and the hex of `astype` to float32,
float16 and bfloat16 for the floating-point tensors ("as": {"F32": ..., "F16": ..., "BF16": ...}).
mx.load refuses a whole file for one dtype it lacks, so each tensor is loaded from a file of
its own; a tensor mx.load refuses is listed as {"unsupported": "<mlx's message>"}.
"""

import json
import os
import struct
import sys
import tempfile

import mlx.core as mx
import numpy as np

NAMES = {
    mx.bool_: "BOOL", mx.uint8: "U8", mx.uint16: "U16", mx.uint32: "U32", mx.uint64: "U64",
    mx.int8: "I8", mx.int16: "I16", mx.int32: "I32", mx.int64: "I64", mx.float16: "F16",
    mx.float32: "F32", mx.float64: "F64", mx.bfloat16: "BF16", mx.complex64: "C64",
}
FLOATS = {mx.float16, mx.float32, mx.float64, mx.bfloat16}


def raw(arr):
    """The array's bytes, row-major, on the CPU (bfloat16 has no numpy type: view it)."""
    if arr.dtype == mx.bfloat16:
        arr = arr.view(mx.uint16)
    return np.array(arr, copy=True).tobytes()


def tensors(path):
    """(name, header entry, bytes) of every tensor of a safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    for name, info in header.items():
        if name != "__metadata__":
            start, end = info["data_offsets"]
            yield name, info, data[start:end]


def load_one(name, info, data, tmp):
    """mx.load of a file holding only this tensor."""
    header = json.dumps({name: {"dtype": info["dtype"], "shape": info["shape"], "data_offsets": [0, len(data)]}})
    header += " " * (-len(header) % 8)
    path = os.path.join(tmp, "one.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header.encode() + data)
    return mx.load(path)[name]


def main(paths):
    out = {}
    tmp = tempfile.mkdtemp()
    for path in paths:
        for name, info, data in tensors(path):
            try:
                arr = load_one(name, info, data, tmp)
            except (RuntimeError, ValueError) as e:
                out[name] = {"unsupported": str(e)}
                continue
            entry = {"dtype": NAMES[arr.dtype], "shape": list(arr.shape), "native": raw(arr).hex()}
            if arr.dtype in FLOATS:
                entry["as"] = {
                    key: raw(arr.astype(dt)).hex()
                    for key, dt in (("F32", mx.float32), ("F16", mx.float16), ("BF16", mx.bfloat16))
                }
            out[name] = entry
    os.remove(os.path.join(tmp, "one.safetensors"))
    os.rmdir(tmp)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
