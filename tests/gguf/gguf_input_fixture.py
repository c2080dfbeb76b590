"""Writes a GGUF file with the `gguf` package holding a tensor of every type the package
dequantises, and what `gguf.quants.dequantize` makes of each, for tests/gguf_input.rs.

Blocks of the types the package has a quantiser of are quantised from random values (NaN,
infinity and extremes included in one row); the others (K-quants, IQ types, NVFP4) are random
bytes, which cover NaN and infinite scales too. Shapes are 2-D or 3-D, rows a whole number of
blocks. Writes DIR/model.gguf and, per tensor, DIR/NAME.f32 (the package's values, little-endian
f32), DIR/NAME.f16 (those values as numpy's astype(float16)) and DIR/NAME.bf16 (ml_dtypes'
bfloat16), plus DIR/expected.json (name, type, shape outermost first, data offset and length).

With --llama FTYPE: instead, a llama-shaped F32 model (quant_check.py's) quantised by
llama.cpp's `llama_model_quantize` to that file type (Q4_K_M, IQ4_XS, TQ1_0, ...), with the
same files per tensor: real blocks as llama.cpp writes them.

With --pad BYTES: the same file with a key "test.padding" (an array of strings) that makes its
header at least BYTES long, for readers that fetch a header in pieces.

Usage: gguf_input_fixture.py DIR [--llama FTYPE | --pad BYTES]
"""

import json
import sys
from pathlib import Path

import gguf
import ml_dtypes
import numpy as np

T = gguf.GGMLQuantizationType
QUANTISABLE = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "TQ1_0", "TQ2_0", "BF16", "MXFP4"}
TYPES = [
    "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
    "Q6_K", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ1_S", "IQ1_M", "IQ4_NL",
    "IQ4_XS", "TQ1_0", "TQ2_0", "MXFP4", "NVFP4",
]


def write_expected(out: Path, shapes: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    """The package's values of every tensor of out/model.gguf, and expected.json."""
    reader = gguf.GGUFReader(str(out / "model.gguf"))
    expected = []
    for t in reader.tensors:
        name, shape = shapes.get(t.name) or (t.tensor_type.name, tuple(int(d) for d in reversed(t.shape)))
        with np.errstate(all="ignore"):
            values = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype("<f4").reshape(shape)
            (out / f"{t.name}.f32").write_bytes(values.tobytes())
            (out / f"{t.name}.f16").write_bytes(values.astype("<f2").tobytes())
            (out / f"{t.name}.bf16").write_bytes(values.astype(ml_dtypes.bfloat16).tobytes())
        expected.append(
            {
                "name": t.name,
                "type": name,
                "shape": list(shape),
                "data_offset": int(t.data_offset),
                "nbytes": int(t.n_bytes),
            }
        )
    (out / "expected.json").write_text(json.dumps(expected, indent=1))


def llama(out: Path, ftype: str) -> int:
    from quant_check import FILE_TYPES, llama_quantize, write_model

    write_model(out / "f32.gguf")
    llama_quantize(out / "f32.gguf", out / "model.gguf", {**FILE_TYPES, "Q8_0": 7}[ftype])
    (out / "f32.gguf").unlink()
    write_expected(out, {})
    return 0


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    if len(sys.argv) == 4 and sys.argv[2] == "--llama":
        return llama(out, sys.argv[3])
    rng = np.random.default_rng(27)
    w = gguf.GGUFWriter(str(out / "model.gguf"), "llama")
    w.add_block_count(1)
    if len(sys.argv) == 4 and sys.argv[2] == "--pad":
        # Strings of 1000 bytes, each with its 8-byte length.
        w.add_array("test.padding", ["p" * 1000] * (int(sys.argv[3]) // 1008 + 1))
    tensors = {}
    for i, name in enumerate(TYPES):
        qtype = T[name]
        block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        cols = max(block, 256) * 2
        shape = (3, 5, cols) if i % 2 else (7, cols)
        tname = f"blk.{i}.{name.lower()}.weight"
        if name in QUANTISABLE or name in ("F32", "F16"):
            x = (rng.standard_normal(shape) * 2).astype(np.float32)
            flat = x.reshape(-1, cols)
            flat[0, :8] = [np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-40, -0.0, 65504.0]
            with np.errstate(all="ignore"):
                data = gguf.quants.quantize(x, qtype) if name != "F32" else x
                if name == "F16":
                    data = x.astype(np.float16)
            w.add_tensor(tname, data, raw_dtype=qtype if name not in ("F32", "F16") else None)
        else:
            n_bytes = int(np.prod(shape[:-1])) * cols // block * block_bytes
            raw = rng.integers(0, 256, size=n_bytes, dtype=np.uint8)
            data = raw.reshape(*shape[:-1], cols // block * block_bytes)
            w.add_tensor(tname, data, raw_dtype=qtype)
        tensors[tname] = (name, shape)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    write_expected(out, tensors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
