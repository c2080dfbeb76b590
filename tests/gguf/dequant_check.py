"""Bit equality of stload's dequantisation kernels with the `gguf` package's
`gguf.quants.dequantize` and with ggml's own `to_float` (llama.cpp's `dequantize_row_*`, through
the ggml library llama-cpp-python ships).

For every type the package dequantises: random bytes (every grid index, sign pattern and NaN
or infinite F16 scale that random bits give), all-zero and all-one-bits blocks, and blocks
whose scale fields hold the extremes (largest and smallest F16, subnormal, ±0, ±infinity,
quiet and signalling NaN; E8M0 and E4M3 scale bytes at their ends). stload's f32 output must
equal the package's bit for bit, NaN payloads included; ggml must agree too.
Against ggml a NaN is compared as a NaN, not by its bits: ggml's NaN bits depend on how it was
compiled (its F16 widening by the CPU quiets a signalling NaN; its `x * (s ? -1 : 1)` may be
compiled as a negation, which flips a NaN's sign), where numpy's are IEEE multiplication's.
A length that is not whole blocks must be refused with an error naming the type.

The kernels are reached through the example `dequantize_rows` (TYPE, blocks on stdin, f32 on
stdout). Prints one line per check and closes with "N passed, N failed"; exits non-zero on any
failure.

Usage: dequant_check.py [--bin PATH_TO_dequantize_rows]
"""

import argparse
import ctypes
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
from quant_check import Results

T = gguf.GGMLQuantizationType

# Types the package dequantises (gguf.quants' classes, plus F32 and F16 in `dequantize`).
TYPES = [
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
    "Q6_K", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M", "IQ4_NL",
    "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4", "NVFP4",
]

# Byte offsets of the F16 scale fields of each type's block (IQ1_M spreads its scale over
# four words: random bytes cover it).
F16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q2_K": [80, 82],
    "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208], "IQ2_XXS": [0],
    "IQ2_XS": [0], "IQ2_S": [0], "IQ3_XXS": [0], "IQ3_S": [0], "IQ1_S": [0], "IQ4_NL": [0],
    "IQ4_XS": [0], "TQ1_0": [52], "TQ2_0": [64],
}
# Byte scales (E8M0 for MXFP4, four UE4M3 for NVFP4).
BYTE_FIELDS = {"MXFP4": [0], "NVFP4": [0, 1, 2, 3]}
F16_EXTREMES = [0x7BFF, 0xFBFF, 0x0001, 0x8001, 0x0400, 0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00,
                0x7C01, 0xFE01, 0x3C00]
BYTE_EXTREMES = [0x00, 0x01, 0x02, 0x7E, 0x7F, 0x80, 0xFE, 0xFF]

def cases(name: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Named (n_blocks, block_bytes) uint8 arrays."""
    block_bytes = gguf.GGML_QUANT_SIZES[T[name]][1]
    out = {
        "random": rng.integers(0, 256, size=(8192, block_bytes), dtype=np.uint8),
        "zero": np.zeros((4, block_bytes), np.uint8),
        "all ones": np.full((4, block_bytes), 0xFF, np.uint8),
    }
    if name in ("F16", "BF16"):
        out["extremes"] = np.array(F16_EXTREMES, "<u2").view(np.uint8).reshape(-1, 2)
    if name == "F32":
        special = [0x7F7FFFFF, 0x00000001, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00001, 0x7F800001]
        out["extremes"] = np.array(special, "<u4").view(np.uint8).reshape(-1, 4)
    for at in F16_FIELDS.get(name, []):
        b = rng.integers(0, 256, size=(len(F16_EXTREMES) * 4, block_bytes), dtype=np.uint8)
        for i, v in enumerate(F16_EXTREMES * 4):
            b[i, at : at + 2] = [v & 0xFF, v >> 8]
        out[f"extreme f16 at byte {at}"] = b
    for at in BYTE_FIELDS.get(name, []):
        b = rng.integers(0, 256, size=(len(BYTE_EXTREMES) * 4, block_bytes), dtype=np.uint8)
        for i, v in enumerate(BYTE_EXTREMES * 4):
            b[i, at] = v
        out[f"extreme scale byte {at}"] = b
    return out


def stload_dequantize(binary: str, name: str, data: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([binary, name], input=data, capture_output=True, check=False)


class Ggml:
    """ggml's `to_float` of each type, from the library llama-cpp-python ships."""

    class Traits(ctypes.Structure):
        _fields_ = [
            ("type_name", ctypes.c_char_p),
            ("blck_size", ctypes.c_int64),
            ("blck_size_interleave", ctypes.c_int64),
            ("type_size", ctypes.c_size_t),
            ("is_quantized", ctypes.c_bool),
            ("to_float", ctypes.c_void_p),
            ("from_float_ref", ctypes.c_void_p),
        ]

    def __init__(self) -> None:
        import llama_cpp

        lib_dir = Path(llama_cpp.__file__).parent / "lib"
        self.lib = ctypes.CDLL(str(lib_dir / "libggml-base.so"))
        self.lib.ggml_get_type_traits.restype = ctypes.POINTER(Ggml.Traits)
        self.lib.ggml_get_type_traits.argtypes = [ctypes.c_int]
        self.proto = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)

    def dequantize(self, name: str, blocks: np.ndarray) -> np.ndarray | None:
        traits = self.lib.ggml_get_type_traits(T[name].value).contents
        if not traits.to_float or traits.type_name.decode().upper() != name:
            return None
        src = np.ascontiguousarray(blocks)
        n = src.shape[0] * traits.blck_size
        out = np.empty(n, np.float32)
        self.proto(traits.to_float)(src.ctypes.data, out.ctypes.data, n)
        return out


def difference(got: np.ndarray, want: np.ndarray) -> str:
    if got.size != want.size:
        return f"{got.size} values vs {want.size}"
    g, w = got.view(np.uint32), want.view(np.uint32)
    bad = np.flatnonzero(g != w)
    i = int(bad[0])
    return f"{bad.size} values differ, first at {i}: {g[i]:#010x} vs {w[i]:#010x}"


def same_as_ggml(got: np.ndarray, ref: np.ndarray) -> bool:
    """Equal bits, except that a NaN only has to be a NaN."""
    if got.size != ref.size:
        return False
    nan = np.isnan(got)
    return np.array_equal(nan, np.isnan(ref)) and np.array_equal(got.view(np.uint32)[~nan], ref.view(np.uint32)[~nan])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/examples/dequantize_rows")
    args = ap.parse_args()
    res = Results()
    ggml = Ggml()
    rng = np.random.default_rng(7)
    for name in TYPES:
        for label, blocks in cases(name, rng).items():
            r = stload_dequantize(args.bin, name, blocks.tobytes())
            if r.returncode != 0:
                res.check(False, f"{name} {label}", r.stderr.decode().strip())
                continue
            got = np.frombuffer(r.stdout, "<f4")
            with np.errstate(all="ignore"):
                want = gguf.quants.dequantize(blocks, T[name]).astype("<f4").ravel()
            same = got.size == want.size and np.array_equal(got.view(np.uint32), want.view(np.uint32))
            res.check(same, f"{name} {label} = gguf package", "" if same else difference(got, want))
            ref = ggml.dequantize(name, blocks)
            if ref is not None:
                same = same_as_ggml(got, ref)
                res.check(same, f"{name} {label} = ggml (NaN as NaN)", "" if same else difference(got, ref))
        block_bytes = gguf.GGML_QUANT_SIZES[T[name]][1]
        r = stload_dequantize(args.bin, name, bytes(block_bytes + 1))
        err = r.stderr.decode()
        res.check(
            r.returncode != 0 and f"{name}: {block_bytes + 1} bytes are not whole blocks" in err,
            f"{name} refuses {block_bytes + 1} bytes",
            err.strip(),
        )
    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
