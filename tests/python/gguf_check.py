"""Fixtures and an independent oracle for stload's GGUF writer, read back with the gguf package.

  gguf_check.py make DIR                 writes f32.safetensors, f16.safetensors, bf16.safetensors
  gguf_check.py check SRC OUT OUTTYPE    checks OUT (a GGUF stload wrote from SRC with OUTTYPE)
  gguf_check.py q8 IN OUT                quantises the float32 values of IN to Q8_0 bytes in OUT

The oracle: ollama's type rule written again here; F32 values exact, F16/BF16 numpy/ml_dtypes
astype of the source, Q8_0 gguf.quants.quantize of the source's float32 values.
"""
import json
import struct
import sys
import warnings

import gguf
import ml_dtypes
import numpy as np

warnings.filterwarnings("ignore", category=RuntimeWarning)

DTYPES = {
    "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64,
}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}
RNG = np.random.default_rng(14)
Q = gguf.GGMLQuantizationType


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        data = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=DTYPES[h["dtype"]]).reshape(h["shape"])
    return out


def values(shape):
    """Normal values with the cases conversions get wrong: ties, overflow, subnormals, zeros."""
    v = RNG.standard_normal(int(np.prod(shape))).astype(np.float32) * 3
    special = np.array([0.0, -0.0, 1 + 2.0**-11, 1 + 3 * 2.0**-11, 65520.0, -1e6, 1e-8, 2.0**-24,
                        3e38, np.inf, -np.inf, np.nan, 2.5, -0.5, 127.0, 1e-40], np.float32)
    n = min(len(special), v.size)
    v[:n] = special[:n]
    return v.reshape(shape)


def make(out):
    shapes = {
        "tok_embd.weight": (8, 64),
        "blk.0.attn_q.weight": (64, 64),
        "blk.0.ffn_down.weight": (48, 40),
        "blk.0.attn_norm.weight": (64,),
        "blk.0.attn_q.bias": (64,),
        "blk.0.x.bias": (2, 32),
        "blk.0.ffn_gate_inp.weight": (4, 64),
        "token_types.weight": (2, 64),
        "blk.0.ffn_gate_exps.weight": (2, 32, 64),
        "blk.0.four.weight": (2, 2, 3, 32),
        "zeros.weight": (2, 64),
    }
    for dtype in ["F32", "F16", "BF16"]:
        tensors = {}
        for name, shape in shapes.items():
            v = values(shape)
            if name == "zeros.weight":
                v = np.zeros(shape, np.float32)
            # Keep the first block finite in F32 so its scale is a number; NaN blocks come later.
            tensors[name] = v.astype(DTYPES[dtype])
        if dtype == "F32":
            tensors["int.i8"] = RNG.integers(-128, 127, (4,), dtype=np.int8)
            tensors["int.i16"] = RNG.integers(-999, 999, (3, 5), dtype=np.int16)
            tensors["int.i32"] = RNG.integers(-9999, 9999, (2, 3), dtype=np.int32)
            tensors["int.i64"] = RNG.integers(-99999, 99999, (5,), dtype=np.int64)
        write_safetensors(f"{out}/{dtype.lower()}.safetensors", tensors)


def expected_type(name, a, outtype):
    if a.dtype.kind == "i":
        return {1: Q.I8, 2: Q.I16, 4: Q.I32, 8: Q.I64}[a.dtype.itemsize]
    if a.ndim <= 1 or name.endswith((".bias", ".ffn_gate_inp.weight", "token_types.weight")):
        return Q.F32
    if outtype == "q8_0":
        return Q.Q8_0 if a.shape[-1] % 32 == 0 else Q.F16
    return {"auto": Q.F16, "f16": Q.F16, "f32": Q.F32, "bf16": Q.BF16}[outtype]


def oracle(a, t):
    if t in (Q.I8, Q.I16, Q.I32, Q.I64):
        return a.tobytes()
    if t == Q.F32:
        return a.astype(np.float32).tobytes()
    if t == Q.F16:
        return a.astype(np.float16).tobytes()
    if t == Q.BF16:
        return a.astype(ml_dtypes.bfloat16).tobytes()
    return gguf.quants.quantize(a.astype(np.float32), Q.Q8_0).tobytes()


def field(reader, key):
    f = reader.fields[key]
    return f.types, f.contents()


def check(src, out, outtype):
    source = read_safetensors(src)
    r = gguf.GGUFReader(out)
    V = gguf.GGUFValueType
    assert field(r, "general.architecture") == ([V.STRING], "none"), field(r, "general.architecture")
    file_type = {"auto": 1, "f16": 1, "f32": 0, "bf16": 32, "q8_0": 7}[outtype]
    assert field(r, "general.file_type") == ([V.UINT32], file_type), field(r, "general.file_type")
    assert field(r, "general.quantization_version") == ([V.UINT32], 2)
    assert field(r, "general.alignment") == ([V.UINT32], 32)
    assert field(r, "general.name")[0] == [V.STRING]
    names = [t.name for t in r.tensors]
    assert names == sorted(source), (names, sorted(source))
    for t in r.tensors:
        a = source[t.name]
        want = expected_type(t.name, a, outtype)
        assert t.tensor_type == want, (t.name, t.tensor_type, want)
        assert list(t.shape) == list(reversed(a.shape)), (t.name, list(t.shape), a.shape)
        assert t.data_offset % 32 == 0, t.name
        got, exp = t.data.tobytes(), oracle(a, want)
        if got != exp:
            g, e = np.frombuffer(got, np.uint8), np.frombuffer(exp, np.uint8)
            bad = np.flatnonzero(g != e) if len(g) == len(e) else "length"
            raise AssertionError(f"{t.name} {want.name}: bytes differ at {bad}")
    print(f"ok: {out} ({len(r.tensors)} tensors, {outtype})")


def q8(inp, out):
    v = np.fromfile(inp, dtype=np.float32).reshape(-1, 32)
    gguf.quants.quantize(v, Q.Q8_0).tofile(out)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"make": make, "check": check, "q8": q8}[cmd](*args)
