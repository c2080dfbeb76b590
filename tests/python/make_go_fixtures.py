#!/usr/bin/env python3
"""Writes the safetensors fixtures the Go package tests read, plus the expected values.

Usage: make_go_fixtures.py OUTDIR

Every file is written by the Python `safetensors` package from numpy / ml_dtypes arrays, except
the F6 tensors, which `safetensors` cannot serialise yet: those go in their own file written
here by hand (8-byte header length, JSON header, data), following the format's rules.
OUTDIR/expected.json records, for every tensor, its dtype, shape and the hex of its bytes
(`arr.tobytes()`, or the packed bytes for the sub-byte types), so the Go tests need no Python.
For every tensor whose dtype stload converts (all but C64, F4 and F6) it also records, under
"as", the hex of `arr.astype(target)` for the float targets (F32, F16, BF16, F64, and the FP8
targets F8_E4M3 and F8_E5M2 for F32, F16 and BF16 sources): what a converted get must return.
"""

import json
import os
import struct
import sys

import ml_dtypes
import numpy as np
import safetensors
import safetensors.numpy
from safetensors import TensorSpec

METADATA = {"format": "pt", "origin": "stload go tests"}

FLOATS = np.array(
    [[0.0, 1.0, -2.5, 0.333, 65504.0, -1e-3], [3.140625, 1e-8, -0.0, 7.5, 100.0, -448.0]],
    dtype=np.float64,
)


def float_array(dtype):
    """FLOATS rounded to `dtype` the way ml_dtypes / numpy round."""
    return FLOATS.astype(dtype)


# Conversion targets of every convertible source, and the extra targets of 16/32-bit floats.
AS_TARGETS = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16, "F64": np.float64}
FP8_TARGETS = {"F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E5M2": ml_dtypes.float8_e5m2}
NO_CONVERSION = {"C64", "F4", "F6_E2M3", "F6_E3M2"}


def converted(dtype, arr):
    """{target: hex of arr.astype(target)} for a stored dtype stload converts, else None.
    Overflow to inf/NaN is intended (e.g. 65504 in FP8), so numpy's warnings are silenced."""
    if dtype in NO_CONVERSION:
        return None
    targets = dict(AS_TARGETS)
    if dtype in ("F32", "F16", "BF16"):
        targets.update(FP8_TARGETS)
    out = {}
    with np.errstate(all="ignore"):
        for name, target in targets.items():
            if name != dtype:
                out[name] = np.ascontiguousarray(arr.astype(target)).tobytes().hex()
    return out


def integer_array(dtype):
    info = np.iinfo(dtype)
    vals = [info.min, info.max, 0, 1, 2, 3, 4, 5, 42, info.max // 2, info.min // 2 + 1, 7]
    return np.array(vals, dtype=dtype).reshape(2, 6)


def pack_bits(codes, bits):
    """Packs small integer codes little-endian first: element i occupies bits [i*bits, (i+1)*bits)."""
    acc = 0
    for i, c in enumerate(codes):
        acc |= (int(c) & ((1 << bits) - 1)) << (i * bits)
    nbytes = len(codes) * bits // 8
    return acc.to_bytes(nbytes, "little")


def write_raw(path, tensors, metadata=None):
    """A minimal safetensors writer for dtypes the Python package lacks: tensors is a list of
    (name, dtype, shape, bytes); offsets are contiguous from 0 in the given order."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for _, _, _, data in tensors:
            f.write(data)


def main(out):
    os.makedirs(out, exist_ok=True)
    expected = {"files": {}, "tensors": {}, "metadata": METADATA}

    def record(name, dtype, shape, data, file, arr=None):
        expected["tensors"][name] = {
            "dtype": dtype,
            "shape": [int(s) for s in shape],
            "hex": bytes(data).hex(),
            "file": file,
        }
        conv = converted(dtype, arr) if arr is not None else None
        if conv is not None:
            expected["tensors"][name]["as"] = conv

    # One tensor per byte-sized dtype, through safetensors.numpy (ml_dtypes arrays go through
    # TensorSpec, which names them as numpy does).
    arrays = {
        "t_bool": ("BOOL", np.array([[True, False, True], [False, False, True]])),
        "t_u8": ("U8", integer_array(np.uint8)),
        "t_i8": ("I8", integer_array(np.int8)),
        "t_i16": ("I16", integer_array(np.int16)),
        "t_u16": ("U16", integer_array(np.uint16)),
        "t_i32": ("I32", integer_array(np.int32)),
        "t_u32": ("U32", integer_array(np.uint32)),
        "t_i64": ("I64", integer_array(np.int64)),
        "t_u64": ("U64", integer_array(np.uint64)),
        "t_f16": ("F16", float_array(np.float16)),
        "t_bf16": ("BF16", float_array(ml_dtypes.bfloat16)),
        "t_f32": ("F32", float_array(np.float32)),
        "t_f64": ("F64", float_array(np.float64)),
        "t_c64": ("C64", (float_array(np.float32) + 1j * float_array(np.float32)[::-1]).astype(np.complex64)),
        "t_f8_e4m3": ("F8_E4M3", float_array(ml_dtypes.float8_e4m3fn)),
        "t_f8_e5m2": ("F8_E5M2", float_array(ml_dtypes.float8_e5m2)),
        "t_f8_e8m0": ("F8_E8M0", np.array([[1.0, 2.0, 0.5, 0.25], [1024.0, 2.0**-20, 4.0, 8.0]]).astype(ml_dtypes.float8_e8m0fnu)),
        "t_f8_e4m3fnuz": ("F8_E4M3FNUZ", float_array(ml_dtypes.float8_e4m3fnuz)),
        "t_f8_e5m2fnuz": ("F8_E5M2FNUZ", float_array(ml_dtypes.float8_e5m2fnuz)),
        "scalar_f32": ("F32", np.array(1.5, dtype=np.float32)),
        "empty_f32": ("F32", np.zeros((0, 4), dtype=np.float32)),
    }
    specs, keep = {}, []
    for name, (dtype, arr) in arrays.items():
        if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn a scalar into shape [1])
            arr = arr.copy(order="C")
        keep.append(arr)
        specs[name] = TensorSpec(dtype=arr.dtype.name, shape=list(arr.shape), data_ptr=arr.ctypes.data, data_len=arr.nbytes)
        record(name, dtype, arr.shape, arr.tobytes(), "dtypes.safetensors", arr)
    # F4 travels as float4_e2m1fn_x2: one byte holds two elements, the first in the low nibble.
    f4 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -6.0, 5.0, 0.25, -3.0, 2.5])
    f4 = f4.astype(ml_dtypes.float4_e2m1fn).reshape(2, 8)
    codes = f4.view(np.uint8) & 0xF
    f4_packed = np.ascontiguousarray((codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8))
    keep.append(f4_packed)
    specs["t_f4"] = TensorSpec(dtype="float4_e2m1fn_x2", shape=[2, 4], data_ptr=f4_packed.ctypes.data, data_len=f4_packed.nbytes)
    record("t_f4", "F4", [2, 8], f4_packed.tobytes(), "dtypes.safetensors")
    safetensors.serialize_file(specs, os.path.join(out, "dtypes.safetensors"), metadata=METADATA)
    expected["files"]["dtypes"] = "dtypes.safetensors"

    # F6: the Python package has no F6 dtype, so this file is written by write_raw.
    f6 = []
    for name, dtype, mlt in [("t_f6_e2m3", "F6_E2M3", ml_dtypes.float6_e2m3fn), ("t_f6_e3m2", "F6_E3M2", ml_dtypes.float6_e3m2fn)]:
        vals = np.array([0.0, 0.5, 1.0, -1.5, 2.0, 3.0, 4.0, -7.5]).astype(mlt)
        data = pack_bits(vals.view(np.uint8), 6)
        f6.append((name, dtype, [2, 4], data))
        record(name, dtype, [2, 4], data, "f6.safetensors")
    write_raw(os.path.join(out, "f6.safetensors"), f6)
    expected["files"]["f6"] = "f6.safetensors"

    # A sharded model with an index.json, as Hugging Face writes it.
    shard_dir = os.path.join(out, "sharded")
    os.makedirs(shard_dir, exist_ok=True)
    shards = {
        "model-00001-of-00002.safetensors": {"layers.0.w": np.arange(12, dtype=np.float32).reshape(3, 4)},
        "model-00002-of-00002.safetensors": {"layers.1.w": np.arange(6, dtype=np.int64).reshape(2, 3) - 3},
    }
    weight_map = {}
    for fname, tensors in shards.items():
        safetensors.numpy.save_file(tensors, os.path.join(shard_dir, fname), metadata=METADATA)
        for name, arr in tensors.items():
            weight_map[name] = fname
            dtype = {"float32": "F32", "int64": "I64"}[arr.dtype.name]
            record(name, dtype, arr.shape, arr.tobytes(), "sharded/" + fname, arr)
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 72}, "weight_map": weight_map}, f)
    expected["files"]["sharded"] = "sharded"

    # Two files that both hold "x": opening them together is a duplicate.
    dup = os.path.join(out, "dup")
    os.makedirs(dup, exist_ok=True)
    for fname in ("a.safetensors", "b.safetensors"):
        safetensors.numpy.save_file({"x": np.ones(4, dtype=np.float32)}, os.path.join(dup, fname))

    # Broken files.
    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    with open(os.path.join(out, "dtypes.safetensors"), "rb") as f:
        whole = f.read()
    (hlen,) = struct.unpack("<Q", whole[:8])
    with open(os.path.join(bad, "truncated_data.safetensors"), "wb") as f:
        f.write(whole[: 8 + hlen + 10])  # header intact, data cut short
    with open(os.path.join(bad, "truncated_header.safetensors"), "wb") as f:
        f.write(whole[: 8 + hlen // 2])  # header length runs past the end
    with open(os.path.join(bad, "garbage.safetensors"), "wb") as f:
        junk = bytes((i * 151 + 7) % 256 for i in range(200))
        f.write(struct.pack("<Q", 64) + junk)  # plausible length, not JSON
    with open(os.path.join(bad, "tiny.safetensors"), "wb") as f:
        f.write(b"abc")
    with open(os.path.join(bad, "huge_header.safetensors"), "wb") as f:
        f.write(b"\xff" * 16)  # header length far beyond any limit

    # Larger tensors for the benchmarks: 4 MiB of F32, and the same values in BF16 (2 MiB) as
    # the source of the BF16 -> F32 conversion benchmarks.
    big = np.random.default_rng(7).standard_normal((1024, 1024)).astype(np.float32)
    big_bf16 = big.astype(ml_dtypes.bfloat16)
    bench_specs = {
        name: TensorSpec(dtype=arr.dtype.name, shape=list(arr.shape), data_ptr=arr.ctypes.data, data_len=arr.nbytes)
        for name, arr in (("big", big), ("big_bf16", big_bf16))
    }
    safetensors.serialize_file(bench_specs, os.path.join(out, "bench.safetensors"))
    expected["files"]["bench"] = "bench.safetensors"

    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_go_fixtures.py OUTDIR")
    main(sys.argv[1])
