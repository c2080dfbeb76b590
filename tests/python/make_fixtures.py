"""Writes the safetensors fixtures the Rust, C and Go tests read, with Python's `safetensors`.

Usage: make_fixtures.py OUT_DIR

OUT_DIR/all_dtypes.safetensors   one tensor of every safetensors dtype, plus __metadata__
OUT_DIR/sharded/                 two shards and model.safetensors.index.json
OUT_DIR/expected.json            for every tensor: file, dtype, shape and the hex of its bytes
OUT_DIR/expected/NAME.bin        the same bytes, one raw file per tensor
Values come from numpy and ml_dtypes, so the bytes are what those libraries produce.
"""

import json
import os
import sys

import ml_dtypes
import numpy as np
from safetensors import TensorSpec, serialize_file

# safetensors' Python writer names dtypes the torch way.
WRITER_NAMES = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
    "I32": "int32", "U32": "uint32", "I64": "int64", "U64": "uint64", "F16": "float16",
    "BF16": "bfloat16", "F32": "float32", "F64": "float64", "C64": "complex64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "F8_E8M0": "float8_e8m0fnu",
    "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz", "F4": "float4_e2m1fn_x2",
}

RNG = np.random.default_rng(20261122)


def floats(shape, dtype):
    """Random normals with the special values mixed in, cast by numpy/ml_dtypes."""
    values = RNG.standard_normal(shape).astype(np.float32) * 4
    flat = values.reshape(-1)
    specials = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-8]
    flat[: len(specials)] = specials[: flat.size]
    with np.errstate(all="ignore"):
        return values.astype(dtype)


def ints(shape, dtype):
    info = np.iinfo(dtype)
    values = RNG.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    flat = values.reshape(-1)
    flat[:2] = [info.min, info.max]
    return values


def arrays():
    """name -> (safetensors dtype, numpy array or raw bytes with a shape)."""
    out = {
        "bool": ("BOOL", RNG.integers(0, 2, size=(3, 5)).astype(np.bool_)),
        "u8": ("U8", ints((4, 4), np.uint8)),
        "i8": ("I8", ints((17,), np.int8)),
        "i16": ("I16", ints((2, 3, 4), np.int16)),
        "u16": ("U16", ints((9,), np.uint16)),
        "i32": ("I32", ints((5, 2), np.int32)),
        "u32": ("U32", ints((7,), np.uint32)),
        "i64": ("I64", ints((3, 3), np.int64)),
        "u64": ("U64", ints((4,), np.uint64)),
        "f16": ("F16", floats((8, 6), np.float16)),
        "bf16": ("BF16", floats((16, 8), ml_dtypes.bfloat16)),
        "f32": ("F32", floats((5, 7), np.float32)),
        "f64": ("F64", floats((6,), np.float64)),
        "c64": ("C64", (RNG.standard_normal(4) + 1j * RNG.standard_normal(4)).astype(np.complex64)),
        "f8_e4m3": ("F8_E4M3", floats((10, 3), ml_dtypes.float8_e4m3fn)),
        "f8_e5m2": ("F8_E5M2", floats((12,), ml_dtypes.float8_e5m2)),
        "f8_e8m0": ("F8_E8M0", np.abs(floats((8,), np.float32)).astype(ml_dtypes.float8_e8m0fnu)),
        "f8_e4m3fnuz": ("F8_E4M3FNUZ", floats((11,), ml_dtypes.float8_e4m3fnuz)),
        "f8_e5m2fnuz": ("F8_E5M2FNUZ", floats((13,), ml_dtypes.float8_e5m2fnuz)),
        # Sub-byte types are stored packed; numpy has no packed form, so write raw bytes.
        "f4": ("F4", (RNG.integers(0, 256, size=6, dtype=np.uint8).tobytes(), [3, 4])),
        "scalar": ("F32", np.array(3.5, dtype=np.float32)),
        "empty": ("F32", np.zeros((0, 4), dtype=np.float32)),
    }
    return out


def spec(dtype, value):
    if isinstance(value, tuple):
        data, shape = value
    else:
        data, shape = np.ascontiguousarray(value).tobytes(), list(value.shape)
    return {"dtype": dtype, "shape": shape, "data": data}


# Targets of the conversion oracle: what numpy/ml_dtypes astype gives for each stored array.
CONVERSION_TARGETS = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16, "F64": np.float64}
NOT_CONVERTIBLE = {"C64"}


def conversions(dtype, value):
    if isinstance(value, tuple) or dtype in NOT_CONVERTIBLE:
        return {}
    with np.errstate(all="ignore"):
        return {to: value.astype(t).tobytes().hex() for to, t in CONVERSION_TARGETS.items()}


def write(path, tensors, metadata, expected):
    specs = {name: spec(dtype, value) for name, (dtype, value) in tensors.items()}
    writer_specs = {}
    for name, s in specs.items():
        shape = list(s["shape"])
        if s["dtype"] == "F4":  # the writer takes the storage shape: two values per byte
            shape[-1] //= 2
        writer_specs[name] = TensorSpec(
            dtype=WRITER_NAMES[s["dtype"]],
            shape=shape,
            data_ptr=np.frombuffer(s["data"], np.uint8).ctypes.data if s["data"] else 0,
            data_len=len(s["data"]),
        )
    # The specs hold raw pointers into `specs[...]["data"]`, which stays alive until here.
    serialize_file(writer_specs, path, metadata=metadata)
    for name, s in specs.items():
        expected[name] = {
            "file": os.path.basename(path),
            "dtype": s["dtype"],
            "shape": s["shape"],
            "hex": s["data"].hex(),
            "as": conversions(*tensors[name]),
        }


def write_by_hand(path, tensors, expected):
    """The Python writer has no F6 dtypes: lay out header and data as the format defines."""
    header, data = {}, b""
    for name, (dtype, (raw, shape)) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
        expected[name] = {"file": os.path.basename(path), "dtype": dtype, "shape": shape, "hex": raw.hex()}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + data)


def main(out):
    os.makedirs(os.path.join(out, "sharded"), exist_ok=True)
    expected = {"all_dtypes": {}, "sharded": {}}
    write(
        os.path.join(out, "all_dtypes.safetensors"),
        arrays(),
        {"format": "pt", "note": "grüße ✓"},
        expected["all_dtypes"],
    )
    write_by_hand(
        os.path.join(out, "subbyte_f6.safetensors"),
        {
            "f6_e2m3": ("F6_E2M3", (RNG.integers(0, 256, size=6, dtype=np.uint8).tobytes(), [8])),
            "f6_e3m2": ("F6_E3M2", (RNG.integers(0, 256, size=3, dtype=np.uint8).tobytes(), [2, 2])),
        },
        expected["all_dtypes"],
    )
    shard_tensors = [
        {f"model.layers.{i}.weight": ("BF16", floats((4, 4), ml_dtypes.bfloat16)) for i in range(3)},
        {f"model.layers.{i}.weight": ("BF16", floats((4, 4), ml_dtypes.bfloat16)) for i in range(3, 5)}
        | {"lm_head.weight": ("F32", floats((2, 4), np.float32))},
    ]
    weight_map = {}
    for i, tensors in enumerate(shard_tensors, start=1):
        name = f"model-{i:05d}-of-00002.safetensors"
        write(os.path.join(out, "sharded", name), tensors, {"format": "pt"}, expected["sharded"])
        weight_map.update({t: name for t in tensors})
    with open(os.path.join(out, "sharded", "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2)
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    # The same bytes as plain files, for the C tests: expected/NAME.bin
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    for group in expected.values():
        for name, e in group.items():
            with open(os.path.join(out, "expected", name + ".bin"), "wb") as f:
                f.write(bytes.fromhex(e["hex"]))


if __name__ == "__main__":
    main(sys.argv[1])
