"""Byte equality of stload's quantisation kernels with llama.cpp's quantizer and the `gguf`
package.

1. llama.cpp: writes an F32 GGUF of a llama-shaped model (rows of 256 and 512 values, 8
   layers so llama.cpp's per-layer type rule gives more than one type per file), quantises it
   with `llama_model_quantize` (no importance matrix) to each file type below, and checks every
   tensor of a type stload has a kernel for: stload's kernel on the same f32 rows must give
   llama.cpp's bytes. The first rows of every matrix are adversarial (zero, constant, one
   outlier, subnormal, tiny, huge range, negative zero, one sign, exact rounding ties).
2. The `gguf` package: adversarial and random blocks, NaN and infinities included, against
   `gguf.quants.quantize` for the types it implements a quantiser of (Q4_0, Q4_1, Q5_0, Q5_1
   field by field, see check_gguf_package; TQ1_0 and TQ2_0 byte for byte on whole
   super-blocks). llama.cpp refuses to write NaN scales, so only the package sees NaN.

The kernels are reached through the example `quantize_rows` (TYPE, f32 on stdin, blocks on
stdout). Prints one line per check and closes with "N passed, N failed"; exits non-zero on any
failure.

Usage: quant_check.py [--bin PATH_TO_quantize_rows] [--keep DIR]
"""

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np

HIDDEN, FFN, LAYERS, HEADS, KV_HEADS, VOCAB = 256, 512, 8, 4, 2, 512

# llama.cpp file types whose tensors use the kernels under test.
FILE_TYPES = {
    "Q4_0": 2,
    "Q4_1": 3,
    "Q5_0": 8,
    "Q5_1": 9,
    "Q2_K": 10,
    "Q3_K_M": 12,
    "Q4_K_M": 15,
    "Q5_K_M": 17,
    "Q6_K": 18,
    "IQ4_NL": 25,
    "IQ4_XS": 30,
    "TQ1_0": 36,
    "TQ2_0": 37,
}

KERNELS = {
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "TQ1_0", "TQ2_0"
}


def adversarial_rows(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Rows of `n` values that exercise the kernels' edge cases, all finite."""
    f = np.float32
    rows = [
        np.zeros(n, f),
        np.full(n, 0.75, f),
        np.full(n, -1.25, f),
    ]
    one = np.zeros(n, f)
    one[::37] = 1e-3
    one[5] = 50.0
    rows.append(one)
    rows.append((rng.standard_normal(n) * 1e-39).astype(f))  # subnormal
    rows.append((rng.standard_normal(n) * 1e-20).astype(f))  # under GROUP_MAX_EPS
    huge = (rng.standard_normal(n) * 1e-5).astype(f)
    huge[::64] = 3e3
    huge[7::64] = -2e3
    rows.append(huge)
    negz = np.full(n, -0.0, f)
    negz[100] = 0.5
    rows.append(negz)
    rows.append(np.abs(rng.standard_normal(n)).astype(f) + f(0.5))  # all positive
    rows.append(-np.abs(rng.standard_normal(n)).astype(f) - f(0.5))  # all negative
    rows.append(((np.arange(n) % 17) - 8).astype(f) * f(0.5))  # exact ties
    rows.append(((np.arange(n) % 32) - 15.5).astype(f))
    sparse = np.zeros(n, f)
    sparse[::16] = rng.standard_normal(n // 16).astype(f)
    rows.append(sparse)
    return rows


def matrix(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """Random weights with per-row scales and heavy tails; the first rows adversarial."""
    scale = np.exp(rng.uniform(-4, 1, size=(rows, 1))).astype(np.float32)
    a = (rng.standard_t(5, size=(rows, cols)) * scale).astype(np.float32)
    adv = adversarial_rows(cols, rng)
    a[: len(adv)] = np.stack(adv)
    return a


def write_model(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(LAYERS)
    w.add_context_length(256)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(HIDDEN // HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"<t{i}>".encode() for i in range(VOCAB)])
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_types([gguf.TokenType.NORMAL] * VOCAB)
    kv = HIDDEN // HEADS * KV_HEADS
    tensors = {
        "token_embd.weight": matrix(VOCAB, HIDDEN, rng),
        "output_norm.weight": np.ones(HIDDEN, np.float32),
        "output.weight": matrix(VOCAB, HIDDEN, rng),
    }
    for i in range(LAYERS):
        p = f"blk.{i}."
        tensors[p + "attn_norm.weight"] = np.ones(HIDDEN, np.float32)
        tensors[p + "attn_q.weight"] = matrix(HIDDEN, HIDDEN, rng)
        tensors[p + "attn_k.weight"] = matrix(kv, HIDDEN, rng)
        tensors[p + "attn_v.weight"] = matrix(kv, HIDDEN, rng)
        tensors[p + "attn_output.weight"] = matrix(HIDDEN, HIDDEN, rng)
        tensors[p + "ffn_norm.weight"] = np.ones(HIDDEN, np.float32)
        tensors[p + "ffn_gate.weight"] = matrix(FFN, HIDDEN, rng)
        tensors[p + "ffn_up.weight"] = matrix(FFN, HIDDEN, rng)
        tensors[p + "ffn_down.weight"] = matrix(HIDDEN, FFN, rng)
    for name, a in tensors.items():
        w.add_tensor(name, a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return tensors


def llama_quantize(src: Path, dst: Path, ftype: int) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    # llama.cpp logs every tensor to stderr: keep it out of the test's output.
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize returned {rc}")


def stload_quantize(binary: str, type_name: str, x: np.ndarray) -> bytes:
    r = subprocess.run(
        [binary, type_name],
        input=np.ascontiguousarray(x, dtype="<f4").tobytes(),
        capture_output=True,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"quantize_rows {type_name}: {r.stderr.decode().strip()}")
    return r.stdout


def first_difference(a: bytes, b: bytes, block_bytes: int) -> str:
    if len(a) != len(b):
        return f"{len(a)} bytes vs {len(b)}"
    diff = np.flatnonzero(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8))
    i = int(diff[0])
    blk = i // block_bytes
    return f"{len(diff)} bytes differ, first at byte {i} (block {blk}, offset {i % block_bytes})"


class Results:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, label: str, detail: str = "") -> None:
        if ok:
            self.passed += 1
            print(f"ok    {label}")
        else:
            self.failed += 1
            print(f"FAIL  {label}: {detail}")


def check_llama_cpp(binary: str, work: Path, res: Results) -> None:
    src = work / "model-f32.gguf"
    tensors = write_model(src)
    for ftype_name, ftype in FILE_TYPES.items():
        out = work / f"model-{ftype_name}.gguf"
        llama_quantize(src, out, ftype)
        reader = gguf.GGUFReader(str(out))
        seen: dict[str, list[str]] = {}
        bad: list[str] = []
        for t in reader.tensors:
            tname = t.tensor_type.name
            if tname not in KERNELS:
                continue
            x = tensors[t.name]
            want = bytes(t.data.tobytes())
            got = stload_quantize(binary, tname, x)
            seen.setdefault(tname, []).append(t.name)
            if got != want:
                block_bytes = gguf.GGML_QUANT_SIZES[t.tensor_type][1]
                bad.append(f"{t.name} ({tname}): {first_difference(got, want, block_bytes)}")
        summary = ", ".join(f"{k} ×{len(v)}" for k, v in sorted(seen.items()))
        res.check(not bad and bool(seen), f"llama.cpp {ftype_name}: {summary}", "; ".join(bad[:5]))


def gguf_blocks(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs for the `gguf` package's quantisers, as named cases (the adversarial rows are
    256 values, the non-finite cases one block of 32)."""
    f = np.float32
    n = 32
    cases = {f"adversarial {i}": r for i, r in enumerate(adversarial_rows(256, rng))}
    nan = rng.standard_normal(n).astype(f)
    nan[3] = np.nan
    inf = rng.standard_normal(n).astype(f)
    inf[9] = np.inf
    ninf = rng.standard_normal(n).astype(f)
    ninf[0] = -np.inf
    big = np.full(n, 3e38, f)
    big[1] = -3e38
    cases.update(
        {
            "nan": nan,
            "inf": inf,
            "-inf": ninf,
            "range overflow": big,
            "random": rng.standard_normal(32 * 4096).astype(f),
            "random small": (rng.standard_normal(32 * 1024) * 1e-3).astype(f),
        }
    )
    return cases


# Where each legacy type's fields sit: the F16 header values, the fifth-bit mask, the nibbles.
LEGACY = {"Q4_0": (1, None, 2), "Q4_1": (2, None, 4), "Q5_0": (1, 2, 6), "Q5_1": (2, 4, 8)}


def legacy_fields(tname: str, blocks: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The F16 header values and the 32 levels of each block."""
    n_f16, qh_at, qs_at = LEGACY[tname]
    size = qs_at + 16
    b = np.frombuffer(blocks, np.uint8).reshape(-1, size)
    head = b[:, : 2 * n_f16].copy().view(np.float16)
    qs = b[:, qs_at:]
    levels = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.uint32)
    if qh_at is not None:
        qh = b[:, qh_at : qh_at + 4].copy().view("<u4")
        levels |= ((qh >> np.arange(32, dtype=np.uint32)) & 1) << 4
    return head, levels


def check_gguf_package(binary: str, res: Results) -> None:
    """stload against `gguf.quants.quantize`, field by field where ggml and the package differ.

    The package is numpy, not ggml's C, and departs from it in two places, which the
    comparison allows for (llama.cpp itself refuses to write a NaN scale, so it cannot be the
    oracle for NaN): a block of zeros whose largest magnitude is -0.0 gets the scale -0.0 in
    ggml (its running maximum starts at +0.0) and +0.0 in the package; and ggml's min/max scans
    skip NaN, quantising a NaN to level 0 against the finite values' scale, where numpy's
    propagate it. So scales are compared as values (-0.0 == +0.0), and a block holding NaN is
    compared with the package's quantisation of the block with each NaN replaced by the
    block's first finite value, every NaN's level expected to be 0.
    """
    rng = np.random.default_rng(1)
    cases = gguf_blocks(rng)
    for tname in ("Q4_0", "Q4_1", "Q5_0", "Q5_1"):
        qtype = gguf.GGMLQuantizationType[tname]
        for label, x in cases.items():
            blocks = x.reshape(-1, 32).copy()
            nan = np.isnan(blocks)
            for i in np.flatnonzero(nan.any(axis=1)):
                blocks[i, nan[i]] = blocks[i, ~nan[i]][0]
            with np.errstate(all="ignore"):
                want = gguf.quants.quantize(blocks, qtype).tobytes()
            got = stload_quantize(binary, tname, x)
            gh, gl = legacy_fields(tname, got)
            wh, wl = legacy_fields(tname, want)
            wl[nan] = 0
            same_head = np.array_equal(gh, wh, equal_nan=True)
            same_levels = np.array_equal(gl, wl)
            exact = "" if got == want else " (scale sign or NaN allowed for)"
            res.check(
                same_head and same_levels,
                f"gguf {tname} {label}{exact}",
                f"headers {'equal' if same_head else 'differ'}, levels {'equal' if same_levels else 'differ'}",
            )


def check_gguf_ternary(binary: str, res: Results) -> None:
    """TQ1_0 and TQ2_0 against `gguf.quants.quantize`, byte for byte, on whole super-blocks."""
    rng = np.random.default_rng(2)
    cases = {k: v for k, v in gguf_blocks(rng).items() if v.size % 256 == 0}
    for tname in ("TQ1_0", "TQ2_0"):
        qtype = gguf.GGMLQuantizationType[tname]
        block_bytes = gguf.GGML_QUANT_SIZES[qtype][1]
        for label, x in cases.items():
            with np.errstate(all="ignore"):
                want = gguf.quants.quantize(x.reshape(-1, 256), qtype).tobytes()
            got = stload_quantize(binary, tname, x)
            detail = first_difference(got, want, block_bytes) if got != want else ""
            res.check(got == want, f"gguf {tname} {label}", detail)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/examples/quantize_rows")
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    res = Results()
    check_gguf_package(args.bin, res)
    check_gguf_ternary(args.bin, res)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        check_llama_cpp(args.bin, args.keep, res)
    else:
        with tempfile.TemporaryDirectory() as d:
            check_llama_cpp(args.bin, Path(d), res)
    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
