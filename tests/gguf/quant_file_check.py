"""Quantised GGUF files from `stload convert --outtype TYPE` against llama.cpp's quantizer.

For each tiny model below (built with transformers by hf_reference.py) stload writes an F32
GGUF, then one GGUF per quantised file type; llama.cpp's `llama_model_quantize` (through
llama-cpp-python, no importance matrix, the same file type) quantises stload's F32 GGUF. Every
tensor's GGML type and bytes must be equal, and `general.file_type` too. The models cover
llama.cpp's rule: a llama of 8 layers (the layers given more bits), a GQA model with tied
embeddings (attn_v rules, the output type on the token embedding), a mixtral of 8 experts (the
n_expert == 8 rules, 3-D expert tensors, the router kept F32), and a qwen2 whose rows are 96
and 80 values (the fallback types, and F16 where no block fits). Also checked against
llama.cpp: --output-tensor-type, --token-embedding-type, --tensor-type and --pure, and a split
Q4_K_M output. llama.cpp loads and runs stload's Q4_K_M file: its logits within a measured
bound of the F32 file's.

Q2_K_S: llama.cpp refuses it without an importance matrix (stload writes it without one). Its
types are checked against llama.cpp's dry run (the types it logs), its bytes against the same
tensor of the same type in llama.cpp's other files.

Prints one line per check and closes with "N passed, N failed"; exits non-zero on any failure.

Usage: quant_file_check.py --stload PATH [--keep DIR] [-k SUBSTRING]
"""

import argparse
import ctypes
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gguf  # noqa: E402
import numpy as np  # noqa: E402
from quant_check import Results  # noqa: E402

# stload's name -> llama.cpp's LLAMA_FTYPE number (llama.h).
FILE_TYPES = {
    "q8_0": 7, "q4_0": 2, "q4_1": 3, "q5_0": 8, "q5_1": 9, "q2_k": 10, "q2_k_s": 21,
    "q3_k_s": 11, "q3_k_m": 12, "q3_k_l": 13, "q4_k_s": 14, "q4_k_m": 15, "q5_k_s": 16,
    "q5_k_m": 17, "q6_k": 18, "iq4_nl": 25, "iq4_xs": 30, "tq1_0": 36, "tq2_0": 37,
}
# Needs an importance matrix in llama.cpp: types from its dry run only.
DRY_RUN_ONLY = {"q2_k_s"}

# name -> (hf_reference architecture, config overrides). Sizes: rows of 256 so the K-quants
# apply (except "odd"); head_dim kept hidden / heads.
MODELS = {
    "llama8": ("llama", dict(hidden_size=256, intermediate_size=512, num_hidden_layers=8,
                             num_attention_heads=4, num_key_value_heads=4, head_dim=64)),
    "gqa-tied": ("llama", dict(hidden_size=256, intermediate_size=256, num_hidden_layers=4,
                               num_attention_heads=8, num_key_value_heads=2, head_dim=32,
                               tie_word_embeddings=True)),
    "mixtral8": ("mixtral", dict(hidden_size=256, intermediate_size=256, num_hidden_layers=2,
                                 num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                                 num_local_experts=8)),
    "odd-rows": ("qwen2", dict(hidden_size=96, intermediate_size=80, num_hidden_layers=2,
                               num_attention_heads=3, num_key_value_heads=1, head_dim=32)),
}

GGML_Q8_0, GGML_F16 = 8, 1

# stload's Q4_K_M of llama8 against its F32 file, in llama.cpp: the correlation of the logits
# of 8 positions. Measured 0.954 (Q8_0: 0.9993, Q6_K: 0.996): random Gaussian weights lose
# more to 4 bits than trained ones, and 8 layers compound it. Logits of unrelated weights
# correlate about 0, so 0.8 still tells a working file from a broken one.
Q4_K_M_MIN_CORRELATION = 0.8


class Quiet:
    """Sends the process's stderr (llama.cpp's log of every tensor) to a file while open."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def __enter__(self):
        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = os.dup(2)
        self.file = open(self.log, "ab")
        os.dup2(self.file.fileno(), 2)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.close()


_LOG: list[str] = []


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _collect(level, text, user_data):
    _LOG.append(text.decode("utf-8", "replace"))


def llama_quantize(src: Path, dst: Path, ftype: int, work: Path, dry_run=False, **settings) -> int:
    """llama.cpp's quantizer; returns its status (0 = done)."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    params.dry_run = dry_run
    keep = []
    for key, value in settings.items():
        if key == "tensor_types":
            arr = (llama_cpp.llama_model_tensor_override * (len(value) + 1))()
            for i, (pattern, ggml_type) in enumerate(value):
                arr[i].pattern = pattern.encode()
                arr[i].type = ggml_type
            arr[len(value)].pattern = None
            keep.append(arr)
            params.tt_overrides = ctypes.cast(arr, ctypes.POINTER(llama_cpp.llama_model_tensor_override))
        else:
            setattr(params, key, value)
    with Quiet(work / "llama.cpp.log"):
        return llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))


def dry_run_types(src: Path, ftype: int, work: Path) -> dict[str, str]:
    """The type llama.cpp's dry run logs for each tensor (its own type when kept)."""
    import llama_cpp

    _LOG.clear()
    llama_cpp.llama_log_set(_collect, ctypes.c_void_p())
    try:
        rc = llama_quantize(src, work / "dry.gguf", ftype, work, dry_run=True)
    finally:
        llama_cpp.llama_log_set(ctypes.cast(None, llama_cpp.llama_log_callback), ctypes.c_void_p())
    if rc != 0:
        raise RuntimeError(f"llama.cpp's dry run of file type {ftype} returned {rc}")
    text = "".join(_LOG)
    found = re.findall(r"\]\s+(\S+)\s+- \[[^\]]*\], type =\s*(\w+), size =[^\n(]*(?:\((\w+)\))?", text)
    return {name: (new or cur).upper() for name, cur, new in found}


def tensors_of(path: Path) -> tuple[dict, int]:
    r = gguf.GGUFReader(str(path))
    field = r.fields.get("general.file_type")  # in the first shard only
    ftype = int(field.contents()) if field else -1
    return {t.name: (t.tensor_type.name, t.data.tobytes()) for t in r.tensors}, ftype


def difference(mine: dict, ref: dict) -> str:
    """'' when every tensor has the same type and bytes, else what differs first."""
    if set(mine) != set(ref):
        return f"tensor names differ: {sorted(set(mine) ^ set(ref))[:5]}"
    bad = []
    for name in sorted(mine):
        (mt, mb), (rt, rb) = mine[name], ref[name]
        if mt != rt:
            bad.append(f"{name}: stload {mt}, llama.cpp {rt}")
        elif mb != rb:
            n = int(np.count_nonzero(np.frombuffer(mb, np.uint8) != np.frombuffer(rb, np.uint8))) if len(mb) == len(rb) else -1
            bad.append(f"{name} ({mt}): {n} bytes differ")
    return "; ".join(bad[:6]) + (f" (+{len(bad) - 6} more)" if len(bad) > 6 else "")


def convert(stload: str, src: Path, out: Path, outtype: str, *extra: str) -> None:
    cmd = [stload, "convert", str(src), "--out", str(out), "--outtype", outtype, "--force", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"`stload convert ... --outtype {outtype} {' '.join(extra)}`: {r.stderr.strip()}")


def check_model(stload: str, name: str, src: Path, work: Path, res: Results, only: str) -> None:
    f32 = work / f"{name}-f32.gguf"
    convert(stload, src, f32, "f32")
    seen: dict[tuple[str, str], bytes] = {}  # (tensor, type) -> llama.cpp's bytes
    for outtype, ftype in FILE_TYPES.items():
        if outtype in DRY_RUN_ONLY or only not in f"{name} {outtype}":
            continue
        label = f"{name} {outtype}: every tensor's type and bytes as llama.cpp's quantizer"
        mine_path, ref_path = work / f"{name}-{outtype}.gguf", work / f"{name}-{outtype}-llama.gguf"
        try:
            convert(stload, src, mine_path, outtype)
            rc = llama_quantize(f32, ref_path, ftype, work)
            if rc != 0:
                raise RuntimeError(f"llama_model_quantize returned {rc}")
            mine, mine_ftype = tensors_of(mine_path)
            ref, ref_ftype = tensors_of(ref_path)
        except Exception as e:  # noqa: BLE001 - reported as this check's failure
            res.check(False, label, str(e))
            continue
        seen.update({(n, t): b for n, (t, b) in ref.items()})
        diff = difference(mine, ref)
        if not diff and mine_ftype != ref_ftype:
            diff = f"general.file_type {mine_ftype}, llama.cpp {ref_ftype}"
        types = sorted({t for t, _ in mine.values()})
        res.check(not diff, f"{label} ({', '.join(types)})", diff)
        for p in (mine_path, ref_path):
            p.unlink()
    for outtype in sorted(DRY_RUN_ONLY):
        if only not in f"{name} {outtype}":
            continue
        label = f"{name} {outtype}: types as llama.cpp's dry run, bytes as its other files"
        try:
            mine_path = work / f"{name}-{outtype}.gguf"
            convert(stload, src, mine_path, outtype)
            mine, mine_ftype = tensors_of(mine_path)
            want = dry_run_types(f32, FILE_TYPES[outtype], work)
            # Q2_K where the Q2_K mix raises a tensor: llama.cpp's pure Q2_K has its bytes.
            pure = work / f"{name}-q2_k-pure-llama.gguf"
            if llama_quantize(f32, pure, FILE_TYPES["q2_k"], work, pure=True) != 0:
                raise RuntimeError("llama_model_quantize of pure Q2_K failed")
            seen.update({(n, t): b for n, (t, b) in tensors_of(pure)[0].items()})
            pure.unlink()
        except Exception as e:  # noqa: BLE001
            res.check(False, label, str(e))
            continue
        bad = [f"{n}: stload {t}, llama.cpp {want.get(n)}" for n, (t, _) in mine.items() if want.get(n) != t]
        missing = [n for n, (t, _) in mine.items() if t != "F32" and (n, t) not in seen]
        bad += [f"{n} ({mine[n][0]}): bytes differ" for n, (t, b) in mine.items() if seen.get((n, t), b) != b]
        if mine_ftype != FILE_TYPES[outtype]:
            bad.append(f"general.file_type {mine_ftype}")
        if len(want) != len(mine):
            bad.append(f"{len(want)} tensors in the dry run's log, {len(mine)} written")
        if missing and not only:
            bad.append(f"no llama.cpp bytes to compare for {missing[:4]}")
        res.check(not bad, label, "; ".join(bad[:6]))
    f32.unlink()


def check_overrides(stload: str, src: Path, work: Path, res: Results) -> None:
    """llama-quantize's overrides and a split output, on llama8 Q4_K_M / Q5_K_S."""
    f32 = work / "ov-f32.gguf"
    convert(stload, src, f32, "f32")
    cases = [
        ("q4_k_m", ["--output-tensor-type", "q8_0", "--token-embedding-type", "F16"],
         dict(output_tensor_type=GGML_Q8_0, token_embedding_type=GGML_F16)),
        ("q4_k_m", ["--tensor-type", "attn_v=q8_0", "--tensor-type", r"blk\.[0-3]\.ffn_.*=Q5_0"],
         dict(tensor_types=[("attn_v", GGML_Q8_0), (r"blk\.[0-3]\.ffn_.*", 6)])),
        ("q5_k_s", ["--pure"], dict(pure=True)),
    ]
    for outtype, flags, settings in cases:
        label = f"llama8 {outtype} {' '.join(flags)}: as llama.cpp's quantizer with the same overrides"
        mine_path, ref_path = work / "ov.gguf", work / "ov-llama.gguf"
        try:
            convert(stload, src, mine_path, outtype, *flags)
            rc = llama_quantize(f32, ref_path, FILE_TYPES[outtype], work, **settings)
            if rc != 0:
                raise RuntimeError(f"llama_model_quantize returned {rc}")
            diff = difference(tensors_of(mine_path)[0], tensors_of(ref_path)[0])
        except Exception as e:  # noqa: BLE001
            diff = str(e)
        res.check(not diff, label, diff)
    # A split output holds the same tensors as the single file.
    label = "llama8 q4_k_m --split-max-size 1M: the shards hold the single file's tensors"
    try:
        single, split = work / "one.gguf", work / "split.gguf"
        convert(stload, src, single, "q4_k_m")
        convert(stload, src, split, "q4_k_m", "--split-max-size", "1M")
        shards = sorted(work.glob("split-*-of-*.gguf"))
        joined: dict = {}
        for s in shards:
            joined.update(tensors_of(s)[0])
        diff = difference(joined, tensors_of(single)[0])
        if not diff and len(shards) < 2:
            diff = f"{len(shards)} shards"
    except Exception as e:  # noqa: BLE001
        diff = str(e)
    res.check(not diff, f"{label} ({len(shards)} shards)" if not diff else label, diff)


def check_runs(stload: str, src: Path, work: Path, res: Results) -> None:
    """llama.cpp runs stload's Q4_K_M file; its logits near the F32 file's."""
    import hf_reference

    label = "llama8 q4_k_m: llama.cpp loads and runs stload's file, logits near the F32 file's"
    ids = hf_reference.ids(448)[:8]
    outs = {}
    try:
        for t in ("f32", "q4_k_m"):
            path = work / f"run-{t}.gguf"
            convert(stload, src, path, t)
            ids_json, out_json = work / "ids.json", work / f"logits-{t}.json"
            ids_json.write_text(str(ids))
            r = subprocess.run(
                [sys.executable, str(HERE / "llama_cpp_run.py"), "logits", str(path), str(ids_json), str(out_json)],
                capture_output=True, text=True, check=False,
            )
            if r.returncode != 0:
                raise RuntimeError(f"llama.cpp on {t}: {r.stderr[-2000:]}")
            import json

            outs[t] = np.array(json.loads(out_json.read_text())["logits"])
        corr = float(np.corrcoef(outs["f32"].ravel(), outs["q4_k_m"].ravel())[0, 1])
        ok = bool(np.isfinite(outs["q4_k_m"]).all()) and corr >= Q4_K_M_MIN_CORRELATION
        res.check(ok, f"{label} (correlation {corr:.3f} >= {Q4_K_M_MIN_CORRELATION})", f"correlation {corr:.3f}")
    except Exception as e:  # noqa: BLE001
        res.check(False, label, str(e))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stload", required=True)
    ap.add_argument("--keep", type=Path)
    ap.add_argument("-k", default="", help="only the checks whose 'MODEL TYPE' contains this")
    args = ap.parse_args()
    import hf_reference

    res = Results()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name, (arch, overrides) in MODELS.items():
            if args.k and not any(args.k in f"{name} {t}" for t in FILE_TYPES):
                continue
            src = work / name
            if not (src / "config.json").exists():
                hf_reference.make(arch, src, overrides)
            check_model(args.stload, name, src, work, res, args.k)
            if name == "llama8" and not args.k:
                check_overrides(args.stload, src, work, res)
                check_runs(args.stload, src, work, res)
    print(f"{res.passed} passed, {res.failed} failed")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
