"""End-to-end proof of GGUF export: llama.cpp runs what `stload convert` writes.

(a) The real MiniLM checkpoint (BertModel) converted to F32, F16 and Q8_0: llama.cpp's pooled
    embeddings against a numpy forward pass of the same weights (cosine >= 0.999 F32, >= 0.995 F16
    and Q8_0), and llama.cpp's token ids against the `tokenizers` library's.
(b) A tiny random llama with grouped-query attention and a trained BPE tokenizer, generated here:
    llama.cpp's logits against a numpy llama forward pass (max abs diff <= 1e-3 F32; F16 below).
(c) Bad input through the CLI: non-zero exit, a message naming the problem, nothing left behind.
(d) Split output (--split-max-tensors, --split-max-size): llama.cpp loads the tiny llama from its
    first shard and gives the same logits as from the unsplit file, bit for bit.
(e) Hugging Face transformers as the reference (tests hf_ARCH_OUTTYPE): a tiny random model per
    decoder architecture built with transformers (hf_reference.py), llama.cpp's logits from
    stload's f32, f16 and q8_0 files against transformers' float32 ones, within measured
    bounds and within 2x the error of llama.cpp's own converter (llama_cpp_convert.py).

--writer stload (default) converts with the stload binary; --writer gguf-py with the reference
writer (the `gguf` package, ref_writer.py), which proves the oracles and the thresholds without
stload. When a stload file fails (a) or (b), the same case is run on the reference file and the
message says whether llama.cpp agrees with the oracle there, i.e. whether stload is at fault.

--mutants runs the reference writer broken in known ways (Q/K order, rope_theta, epsilon,
vocabulary, pooling, swapped weights) and checks that each breakage fails its test.

Usage: e2e.py [--writer stload|gguf-py] [--stload PATH] [--keep DIR] [-k SUBSTRING] [--mutants]
Prints one line per test and closes with "N passed, N failed[, N skipped]"; exit 1 on a failure.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bert_oracle  # noqa: E402
import llama_oracle  # noqa: E402
import ref_writer  # noqa: E402

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "GGUF files are read by llama.cpp!",
    "Unbelievably, tokenization-heavy sentences split into word-pieces: 12345 and 3.14.",
    "A café in Zürich serves naïve crème brûlée.",
    "hello",
    "  Multiple   spaces\tand\ttabs\nnewlines  ",
    "中文字符 and 日本語 mixed in, emoji 🙂 and symbols © ™ ±",
    "e-mail: someone@example.com, https://example.org/a?b=c don't",
]
LLAMA_TEXT = "Hello world, 1234 tokens of text!"
BERT_MIN_COSINE = {"f32": 0.999, "f16": 0.995, "q8_0": 0.995}
LLAMA_F32_MAX_ABS = 1e-3
# F16: the oracle rounds the same weights to f16, so what remains is llama.cpp's own rounding:
# ggml's CPU matmul converts its activations to f16 (unit roundoff u = 2^-11) before every product
# with an f16 weight, 7 such products per layer plus the output one, 15 in all for 2 layers.
# Allowing each of them a full u of the logits' scale, all adding up, gives 15 u max|logit|
# (0.038 for this model, whose logits reach about 5); measured: 0.0037, about 1.5 u max|logit|.
# A converter bug (Q/K permutation, rope_theta, head counts, a norm epsilon) moves logits by 3 to
# 5, a thousand times more: it was checked by breaking the reference writer in each of these ways.
F16_ROUNDINGS = 7 * llama_oracle.LAYERS + 1
LLAMA_F16_REL = F16_ROUNDINGS * 2.0**-11
RUN_TIMEOUT = 300


class Failure(Exception):
    """A test's assertion, with a message saying what differed."""


class Skip(Exception):
    """A test that does not apply to this writer."""


class Env:
    """The run's settings, work directory, and caches of fixtures, conversions and llama.cpp runs."""

    def __init__(self, args: argparse.Namespace, work: Path):
        self.writer = args.writer
        self.stload = Path(args.stload).resolve()
        self.work = work
        self._converted: dict = {}
        self._runs: dict = {}
        self._tiny: dict = {}
        self._hf: dict = {}
        self.last_case = None

    # -- fixtures -------------------------------------------------------------------------------
    def tiny_llama(self, tied: bool) -> Path:
        if tied not in self._tiny:
            name = f"tiny-llama-{'tied' if tied else 'untied'}"
            self._tiny[tied] = llama_oracle.make(self.work / name, seed=int(tied), tied=tied)
        return self._tiny[tied]

    # -- conversion -----------------------------------------------------------------------------
    def convert(self, src: Path, outtype: str, writer: str, split: tuple = ()) -> Path:
        """The converted file; with `split` (extra CLI arguments), the first shard."""
        key = (src, outtype, writer, split)
        self.last_case = (src, outtype)
        if key in self._converted:
            return self._converted[key]
        tag = "-split" + "".join(split).replace("--split-max-", "-") if split else ""
        out = self.work / "out" / writer / f"{src.name}-{outtype}{tag}.gguf"
        out.parent.mkdir(parents=True, exist_ok=True)
        for old in out.parent.glob(f"{out.stem}*.gguf"):
            old.unlink()  # left by an earlier run in a --keep directory
        if writer == "gguf-py":
            ref_writer.write(src, out, outtype)
        else:
            cmd = [str(self.stload), "convert", str(src), "--out", str(out), "--outtype", outtype, *split]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
            written = out
            if split:
                written = next(iter(sorted(out.parent.glob(f"{out.stem}-00001-of-*.gguf"))), out)
            if r.returncode != 0 or not written.is_file():
                raise Failure(
                    f"`{' '.join(cmd[1:3])} ... --outtype {outtype} {' '.join(split)}` exited "
                    f"{r.returncode} {'without writing' if not written.is_file() else 'after writing'} "
                    f"{written.name}: {_tail(r.stderr)}"
                )
            out = written
        self._converted[key] = out
        return out

    # -- llama.cpp ------------------------------------------------------------------------------
    def llama_cpp(self, mode: str, gguf_path: Path, data) -> dict:
        key = (mode, gguf_path)
        if key in self._runs:
            return self._runs[key]
        tag = hashlib.sha256(f"{mode}{gguf_path}".encode()).hexdigest()[:12]
        arg, out = self.work / f"{tag}.in.json", self.work / f"{tag}.out.json"
        arg.write_text(json.dumps(data))
        cmd = [sys.executable, str(HERE / "llama_cpp_run.py"), mode, str(gguf_path), str(arg), str(out)]
        # No gdb backtrace on an abort: the assertion line is what the failure message needs.
        run_env = dict(os.environ, GGML_NO_BACKTRACE="1")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=run_env)
        if r.returncode != 0:
            raise Failure(
                f"llama.cpp could not run {gguf_path.name} (exit {r.returncode}): "
                f"{_tail(r.stderr, errors=True)}"
            )
        self._runs[key] = json.loads(out.read_text())
        return self._runs[key]


ERROR_WORDS = ("error", "failed", "assert", "exception", "invalid", "unknown", "missing", "wrong")


def _tail(text: str, lines: int = 12, errors: bool = False) -> str:
    """The last lines of a log; with errors=True, the lines that report an error if any do."""
    kept = [l for l in text.strip().splitlines() if l.strip()]
    if errors:
        kept = [l for l in kept if any(w in l.lower() for w in ERROR_WORDS)] or kept
    kept = kept[-lines:]
    return "\n    " + "\n    ".join(kept) if kept else "(no output)"


# -- (a) real BERT ----------------------------------------------------------------------------------
_bert_cache: dict = {}


def _bert_reference():
    """Oracle tokens and pooled embeddings of SENTENCES, computed once."""
    if not _bert_cache:
        d = bert_oracle.model_dir()
        ids = bert_oracle.tokenize(d, SENTENCES)
        model = bert_oracle.Bert(d)
        _bert_cache["ids"] = ids
        _bert_cache["emb"] = [model.embed(i) for i in ids]
        _bert_cache["pooling"] = model.pooling
    return _bert_cache


def bert_tokens(env: Env, writer: str) -> str:
    ref = _bert_reference()
    path = env.convert(bert_oracle.model_dir(), "f32", writer)
    got = env.llama_cpp("embed", path, SENTENCES)["tokens"]
    for s, want, have in zip(SENTENCES, ref["ids"], got):
        if want != have:
            raise Failure(f"token ids of {s!r}: llama.cpp {have}, tokenizers {want}")
    return f"{len(SENTENCES)} sentences, {sum(map(len, got))} ids equal"


def _bert_embed(env: Env, writer: str, outtype: str) -> str:
    ref = _bert_reference()
    path = env.convert(bert_oracle.model_dir(), outtype, writer)
    res = env.llama_cpp("embed", path, SENTENCES)
    cosines = []
    for s, want, have, ids, tok in zip(SENTENCES, ref["emb"], res["embeddings"], ref["ids"], res["tokens"]):
        have = np.asarray(have, dtype=np.float64)
        if have.shape != want.shape:
            raise Failure(f"{s!r}: llama.cpp embedding has shape {have.shape}, oracle {want.shape}")
        cos = float(have @ want / (np.linalg.norm(have) * np.linalg.norm(want)))
        cosines.append(cos)
        if not cos >= BERT_MIN_COSINE[outtype]:
            note = "" if tok == ids else f" (llama.cpp tokenized it differently: {tok} vs {ids})"
            raise Failure(
                f"{outtype}: cosine(llama.cpp, numpy {ref['pooling']}-pooled BERT) = {cos:.6f} "
                f"< {BERT_MIN_COSINE[outtype]} for {s!r}{note}"
            )
    return f"min cosine {min(cosines):.6f} >= {BERT_MIN_COSINE[outtype]}"


def bert_embed_f32(env: Env, writer: str) -> str:
    return _bert_embed(env, writer, "f32")


def bert_embed_f16(env: Env, writer: str) -> str:
    return _bert_embed(env, writer, "f16")


def bert_embed_q8_0(env: Env, writer: str) -> str:
    return _bert_embed(env, writer, "q8_0")


# -- (b) tiny llama ---------------------------------------------------------------------------------
def _llama_logits(env: Env, writer: str, outtype: str, tied: bool) -> str:
    src = env.tiny_llama(tied)
    ids = llama_oracle.tokenize(src, LLAMA_TEXT)
    want = llama_oracle.forward(src, ids, round_f16=outtype == "f16")
    path = env.convert(src, outtype, writer)
    res = env.llama_cpp("logits", path, ids)
    have = np.asarray(res["logits"], dtype=np.float64)
    if have.shape != want.shape:
        raise Failure(f"logits shape: llama.cpp {have.shape}, numpy {want.shape} (n_vocab {res['n_vocab']})")
    diff = np.abs(have - want)
    bound = LLAMA_F32_MAX_ABS if outtype == "f32" else LLAMA_F16_REL * float(np.abs(want).max())
    pos, tok = np.unravel_index(int(diff.argmax()), diff.shape)
    if not diff.max() <= bound:
        raise Failure(
            f"{outtype} {'tied' if tied else 'untied'}: max |llama.cpp - numpy| = {diff.max():.3g} "
            f"> {bound:.3g} at position {pos}, token {tok} "
            f"(llama.cpp {have[pos, tok]:.6f}, numpy {want[pos, tok]:.6f}); "
            f"argmax agrees at {int((have.argmax(1) == want.argmax(1)).sum())} of {len(ids)} positions"
        )
    return f"{len(ids)} positions x {want.shape[1]} logits, max abs diff {diff.max():.2e} <= {bound:.2e}"


def llama_logits_f32(env: Env, writer: str) -> str:
    return _llama_logits(env, writer, "f32", tied=False)


def llama_logits_f32_tied(env: Env, writer: str) -> str:
    return _llama_logits(env, writer, "f32", tied=True)


def llama_logits_f16(env: Env, writer: str) -> str:
    return _llama_logits(env, writer, "f16", tied=False)


# -- (e) transformers as the reference ---------------------------------------------------------------
# For each architecture, a tiny random model built with transformers (hf_reference.py), its
# float32 CPU logits on fixed token ids, and llama.cpp's logits from stload's GGUF of it; the
# same model converted by llama.cpp's own converter (llama_cpp_convert.py) calibrates the bound.
# Two checks per (architecture, output type): stload's max abs logit difference is within the
# output type's bound, and within CALIBRATION_FACTOR times the converter's (plus a floor for the
# f32 rounding noise both share).
HF_ARCHS = [
    "llama", "mistral", "qwen2", "qwen3", "qwen3moe", "gemma", "gemma2", "gemma3", "gemma3mm", "olmo2", "granite",
    "stablelm", "command-r", "phi3", "phi4mini", "mixtral", "llama4", "llama4mm", "gpt-oss", "gpt-oss-mxfp4",
    "deepseekv3",
]
HF_OUTTYPES = ["f32", "f16", "q8_0", "bf16"]
# Bounds on the max abs logit difference against transformers, on logits that reach 4 to 7,
# about 3x the largest measured; beside each, the measured values, stload's equal to llama.cpp's
# converter's to the digits shown (except gemma, gemma2, gemma3 and stablelm, below).
HF_BOUND = {
    # qwen3 6.1e-6; llama 3.3e-6, mistral 3.6e-6, qwen2 3.3e-6, qwen3moe 3.6e-6, olmo2 2.6e-6,
    # granite 8.3e-7, stablelm 1.9e-6, command-r 1.5e-6, phi3 4.3e-6, phi4mini 3.2e-6, mixtral
    # 2.4e-6, llama4 3.3e-6, llama4mm 3.3e-6, gpt-oss 3.1e-6: float32 summation order only.
    "f32": 2e-5,
    # qwen3 7.5e-3; llama 5.2e-3, mistral 5.4e-3, qwen2 6.8e-3, qwen3moe 4.6e-3, gemma 3.2e-3,
    # gemma2 5.1e-3, gemma3 3.9e-3, gemma3mm 4.8e-3, olmo2 4.7e-3, granite 1.8e-3, stablelm
    # 3.1e-3, command-r 1.9e-3, phi3 5.5e-3, phi4mini 5.0e-3, mixtral 4.1e-3, llama4 6.9e-3,
    # llama4mm 6.9e-3, gpt-oss 5.2e-3: ggml rounds
    # activations to f16 before each product with an f16 weight (see F16_ROUNDINGS).
    "f16": 2e-2,
    # qwen3 0.177; llama 0.141, mistral 0.150, qwen2 0.173, gemma 0.084, gemma2 0.117, gemma3
    # 0.152, gemma3mm 0.115, olmo2 0.158, granite 0.039, stablelm 0.078, command-r 0.046, phi3
    # 0.168, phi4mini 0.141: q8_0 weights, and activations quantized to q8_0 for the products.
    "q8_0": 0.5,
    # deepseekv3 5.9e-2, phi4mini 5.8e-2, gpt-oss-mxfp4 6.0e-2, qwen3 4.7e-2, qwen2 4.7e-2, gpt-oss
    # 4.5e-2, llama 4.4e-2, mistral 4.3e-2, phi3 4.1e-2, gemma3mm 3.7e-2, gemma2 3.6e-2, gemma3
    # 3.3e-2, olmo2 3.3e-2, stablelm 2.7e-2, gemma 2.5e-2, qwen3moe 2.5e-2, command-r 1.8e-2,
    # granite 1.3e-2: bf16 weights keep 8 bits of mantissa (ggml multiplies them with activations
    # rounded to bf16), about 8x f16's error.
    "bf16": 0.2,
}
HF_BOUND_ARCH = {
    # ggml's CPU GELU reads a float16 table: gemma's GeGLU rounds its activations to ~1e-3.
    ("gemma", "f32"): 5e-3,  # measured 9.7e-4
    ("gemma2", "f32"): 5e-3,  # measured 1.16e-3
    ("gemma3", "f32"): 5e-3,  # measured 1.56e-3
    ("gemma3mm", "f32"): 5e-3,  # measured 1.07e-3
    # Routing: the router weights rounded to q8_0 flip a near-tie top-2 choice at a position,
    # whose logits then move by a whole expert's output (the calibration check binds here).
    ("mixtral", "q8_0"): 2.5,  # measured 1.11, argmax differing at 1 of 32 positions
    ("qwen3moe", "q8_0"): 2.5,  # measured 0.98, argmax differing at 1 of 32 positions
    # The same at bf16: a near-tie choice of experts flips (the converter's file the same).
    ("mixtral", "bf16"): 1.5,  # measured 0.474
    ("llama4", "bf16"): 1.5,  # measured 0.484, argmax differing at 1 of 32 positions
    ("llama4mm", "bf16"): 1.5,  # measured 0.484: the same text model
    # llama4 routes top-1: positions 1 and 17 (top-1/top-2 router margins 0.002 and 0.009 in the
    # second MoE layer) move by 0.51 and 0.36, every other by at most 0.16; argmax differs at 2.
    ("llama4", "q8_0"): 1.5,  # measured 0.508 (the converter's the same)
    ("llama4mm", "q8_0"): 1.5,  # measured 0.508: the same text model
    ("gpt-oss", "q8_0"): 2.5,  # measured 2.11, argmax differing at 3 of 32 positions
    ("gpt-oss-mxfp4", "q8_0"): 2.5,  # measured 1.78, argmax differing at 3 of 32 positions
    # ggml's CPU product of an MXFP4 weight rounds the activations to q8_0 (its vec_dot_type),
    # whatever the output type: the experts' outputs move by ~1e-2 against transformers'
    # float32 products of the same dequantized weights.
    ("gpt-oss-mxfp4", "f32"): 0.12,  # measured 4.75e-2
    # At f16 that rounding and the f16 activations together flip one near-tie expert choice
    # (argmax differing at 1 of 32 positions, llama.cpp's converter's file the same): routing, as
    # the q8_0 rows above.
    ("gpt-oss-mxfp4", "f16"): 2.5,  # measured 0.659
    # Four times as wide as the other test models (hidden 256, heads of 160 and 128: MLA's
    # no-rope heads are a whole FP8 block), and llama.cpp runs MLA absorbed (queries through
    # attn_k_b into the 96-wide latent) where transformers decompresses the keys: longer f32
    # sums in another order.
    ("deepseekv3", "f32"): 1.5e-4,  # measured 4.3e-5, llama.cpp's converter's file the same
}
# llama.cpp's converter of this version writes no rope.freq_base for gemma and gemma2 when
# config.json keeps rope_theta in rope_parameters, as transformers 5 saves it: its files run
# with 10000 instead of the model's 50000 (max abs diff 0.68 gemma, 1.18 gemma2, the same metadata
# otherwise), so there the calibration check holds trivially and the bound is what binds.
# For gemma3 (and gemma3mm, its multimodal model's text part) llama.cpp's converter writes no
# per-layer sliding-window pattern: llama.cpp then takes every layer of the 2-layer test model as
# local (its default makes every sixth layer global), so the global layer runs with the local
# rope base 20000 instead of 50000 (max abs diff 0.27 gemma3, 0.41 gemma3mm); stload writes the
# pattern, so again the bound is what binds. For stablelm it writes no rope.freq_base: its
# files run with 10000 instead of 50000 (max abs diff 0.072).
CALIBRATION_FACTOR = 2.0
CALIBRATION_FLOOR = {"f32": 1e-4, "f16": 2e-3, "q8_0": 1e-2, "bf16": 1e-2}
CONVERTER = Path(os.environ.get("STLOAD_LLAMA_CPP_CONVERTER", HERE.parent.parent / ".venv" / "src" / "llama.cpp"))


def _hf_reference(env: Env, arch: str) -> tuple:
    """The tiny model's directory, token ids and transformers' logits, built once per run."""
    if arch not in env._hf:
        # general.name is the directory's name, and llama.cpp sets per-token attributes on
        # Phi-3's special tokens (<unk>, <|endoftext|>, ...) when the name holds "phi3": the
        # tiny vocabulary has none of them, so phi3's directory is named without it.
        name = "tiny-hf-phi" if arch == "phi3" else f"tiny-hf-{arch}"
        src, out = env.work / name, env.work / f"hf-{arch}.json"
        cmd = [sys.executable, str(HERE / "hf_reference.py"), arch, str(src), str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        if r.returncode != 0:
            raise Failure(f"hf_reference.py {arch} failed (exit {r.returncode}): {_tail(r.stderr, errors=True)}")
        res = json.loads(out.read_text())
        if res["unrouted"]:
            raise Failure(f"{arch}: the ids route to no position of {', '.join(res['unrouted'])}")
        env._hf[arch] = (src, res["ids"], np.asarray(res["logits"], dtype=np.float64))
    return env._hf[arch]


def _converter_gguf(env: Env, src: Path, outtype: str) -> Path:
    """llama.cpp's converter's GGUF of `src` (all of HF_OUTTYPES are written by its first call)."""
    if not (CONVERTER / "convert_hf_to_gguf.py").is_file():
        raise Failure(f"llama.cpp's converter is missing in {CONVERTER}: run scripts/python-env.sh")
    out_dir = env.work / "out" / "llama.cpp"
    out = out_dir / f"{src.name}-{outtype}.gguf"
    if not out.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(HERE / "llama_cpp_convert.py"), str(CONVERTER), str(src), str(out_dir), *HF_OUTTYPES]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        if r.returncode != 0 or not out.is_file():
            raise Failure(f"llama.cpp's converter failed on {src.name} (exit {r.returncode}): {_tail(r.stderr, errors=True)}")
    return out


def _max_diff(env: Env, path: Path, ids: list, want: np.ndarray) -> tuple:
    have = np.asarray(env.llama_cpp("logits", path, ids)["logits"], dtype=np.float64)
    if have.shape != want.shape:
        raise Failure(f"logits shape: llama.cpp {have.shape} from {path.name}, transformers {want.shape}")
    diff = np.abs(have - want)
    agree = int((have.argmax(1) == want.argmax(1)).sum())
    return float(diff.max()), agree


def _hf_logits(env: Env, writer: str, arch: str, outtype: str) -> str:
    if writer != "stload":
        raise Skip("checks stload's conversion against transformers")
    src, ids, want = _hf_reference(env, arch)
    ref, ref_agree = _max_diff(env, _converter_gguf(env, src, outtype), ids, want)
    mine, agree = _max_diff(env, env.convert(src, outtype, writer), ids, want)
    bound = HF_BOUND_ARCH.get((arch, outtype), HF_BOUND[outtype])
    calibrated = max(CALIBRATION_FACTOR * ref, CALIBRATION_FLOOR[outtype])
    detail = (
        f"{len(ids)} positions x {want.shape[1]} logits (max |logit| {np.abs(want).max():.2f}): "
        f"max abs diff stload {mine:.2e}, llama.cpp's converter {ref:.2e}; argmax agrees at {agree} "
        f"(converter {ref_agree}) of {len(ids)}"
    )
    if not mine <= bound:
        raise Failure(f"{arch} {outtype}: {detail}; stload's exceeds the bound {bound:.2e}")
    if not mine <= calibrated:
        raise Failure(f"{arch} {outtype}: {detail}; stload's exceeds {CALIBRATION_FACTOR}x the converter's")
    return detail


def _hf_test(arch: str, outtype: str):
    def test(env: Env, writer: str) -> str:
        return _hf_logits(env, writer, arch, outtype)

    test.__name__ = f"hf_{arch}_{outtype}"
    return test


HF_TESTS = [_hf_test(arch, outtype) for arch in HF_ARCHS for outtype in HF_OUTTYPES]


def hf_gpt_oss_mxfp4_bytes(env: Env, writer: str) -> str:
    """gpt-oss's MXFP4 experts (blocks and scales as released checkpoints store them) are
    written as GGML MXFP4 as they are: every tensor of stload's file, the experts' bytes
    included, equals the one llama.cpp's converter writes, for each output type."""
    if writer != "stload":
        raise Skip("checks stload's conversion against llama.cpp's converter")
    import gguf

    src, _, _ = _hf_reference(env, "gpt-oss-mxfp4")
    mxfp4 = 0
    for outtype in HF_OUTTYPES:
        mine = {t.name: t for t in gguf.GGUFReader(str(env.convert(src, outtype, writer))).tensors}
        ref = {t.name: t for t in gguf.GGUFReader(str(_converter_gguf(env, src, outtype))).tensors}
        if mine.keys() != ref.keys():
            raise Failure(f"{outtype}: tensors only stload writes {sorted(mine.keys() - ref.keys())}, "
                          f"only the converter {sorted(ref.keys() - mine.keys())}")
        for name, r in ref.items():
            m = mine[name]
            if (m.tensor_type, list(m.shape)) != (r.tensor_type, list(r.shape)):
                raise Failure(f"{outtype} {name}: stload {m.tensor_type.name} {list(m.shape)}, "
                              f"converter {r.tensor_type.name} {list(r.shape)}")
            if not np.array_equal(np.asarray(m.data).view(np.uint8), np.asarray(r.data).view(np.uint8)):
                raise Failure(f"{outtype} {name}: {m.tensor_type.name} bytes differ from the converter's")
            mxfp4 += r.tensor_type == gguf.GGMLQuantizationType.MXFP4
    if mxfp4 != 6 * len(HF_OUTTYPES):
        raise Failure(f"{mxfp4} MXFP4 tensors in {len(HF_OUTTYPES)} files, expected 6 a file (2 layers x 3)")
    return f"{len(HF_OUTTYPES)} output types: every tensor equal to the converter's, {mxfp4 // len(HF_OUTTYPES)} MXFP4 each"


# DeepSeek-V3 as its checkpoints are stored: weights in float8 E4M3 with a weight_scale_inv per
# 128x128 block (hf_reference.make_fp8, from the tiny deepseekv3 model). stload dequantises
# them as llama.cpp's converter does: its file must equal the converter's tensor by tensor, and
# run in llama.cpp as close to transformers (on the dequantised weights) as the f32 model does.
def _fp8_reference(env: Env) -> tuple:
    """The FP8 directory, its dequantised twin, token ids and transformers' logits of the twin."""
    if "deepseekv3-fp8" not in env._hf:
        src, _, _ = _hf_reference(env, "deepseekv3")
        fp8, deq, out = env.work / "tiny-hf-deepseekv3-fp8", env.work / "tiny-hf-deepseekv3-deq", env.work / "hf-fp8.json"
        cmd = [sys.executable, str(HERE / "hf_reference.py"), "fp8", str(src), str(fp8), str(deq), str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        if r.returncode != 0:
            raise Failure(f"hf_reference.py fp8 failed (exit {r.returncode}): {_tail(r.stderr, errors=True)}")
        res = json.loads(out.read_text())
        if res["unrouted"]:
            raise Failure(f"deepseekv3 fp8: the ids route to no position of {', '.join(res['unrouted'])}")
        env._hf["deepseekv3-fp8"] = (fp8, deq, res["ids"], np.asarray(res["logits"], dtype=np.float64))
    return env._hf["deepseekv3-fp8"]


def _same_tensors(mine: Path, theirs: Path) -> int:
    """Fails unless the two GGUF files hold the same tensors: names, types, shapes and bytes."""
    import gguf

    a = {t.name: t for t in gguf.GGUFReader(mine).tensors}
    b = {t.name: t for t in gguf.GGUFReader(theirs).tensors}
    if a.keys() != b.keys():
        raise Failure(f"{mine.name}: tensors only in it {sorted(a.keys() - b.keys())}, only in {theirs.name} {sorted(b.keys() - a.keys())}")
    for name, x in a.items():
        y = b[name]
        if (x.tensor_type, list(x.shape)) != (y.tensor_type, list(y.shape)):
            raise Failure(f"{name}: {x.tensor_type.name} {list(x.shape)} in {mine.name}, {y.tensor_type.name} {list(y.shape)} in {theirs.name}")
        if not np.array_equal(np.asarray(x.data).view(np.uint8), np.asarray(y.data).view(np.uint8)):
            raise Failure(f"{name}: its bytes differ between {mine.name} and {theirs.name}")
    return len(a)


def _hf_fp8(env: Env, writer: str, outtype: str) -> str:
    if writer != "stload":
        raise Skip("checks stload's conversion against llama.cpp's converter and transformers")
    fp8, deq, ids, want = _fp8_reference(env)
    mine = env.convert(fp8, outtype, writer)
    count = _same_tensors(mine, _converter_gguf(env, fp8, outtype))
    # The dequantised weights are exactly what a plain f32 checkpoint of them converts to.
    _same_tensors(mine, env.convert(deq, outtype, writer))
    detail = f"{count} tensors equal llama.cpp's converter's and the dequantised model's"
    if outtype != "f32":
        return detail
    ref, _ = _max_diff(env, _converter_gguf(env, fp8, outtype), ids, want)
    diff, agree = _max_diff(env, mine, ids, want)
    bound = HF_BOUND_ARCH[("deepseekv3", "f32")]
    detail += f"; max abs logit diff stload {diff:.2e}, converter {ref:.2e}, argmax agrees at {agree} of {len(ids)}"
    if not diff <= bound:
        raise Failure(f"deepseekv3 fp8 f32: {detail}; stload's exceeds the bound {bound:.2e}")
    return detail


def _hf_fp8_test(outtype: str):
    def test(env: Env, writer: str) -> str:
        return _hf_fp8(env, writer, outtype)

    test.__name__ = f"hf_deepseekv3_fp8_{outtype}"
    return test


def bad_fp8_without_scale(env: Env, writer: str) -> str:
    """An FP8 weight whose weight_scale_inv is missing is refused, naming the weight."""
    if writer != "stload":
        raise Skip("checks stload's refusal")
    from safetensors.torch import load_file, save_file  # numpy has no float8

    fp8, _, _, _ = _fp8_reference(env)
    src = env.work / "tiny-hf-deepseekv3-fp8-unscaled"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(fp8, src)
    weight = "model.layers.1.self_attn.kv_b_proj.weight"
    tensors = {k: v for k, v in load_file(str(src / "model.safetensors")).items() if k != weight + "_scale_inv"}
    save_file(tensors, str(src / "model.safetensors"), metadata={"format": "pt"})
    index = json.loads((src / "model.safetensors.index.json").read_text())
    del index["weight_map"][weight + "_scale_inv"]
    (src / "model.safetensors.index.json").write_text(json.dumps(index))
    out = env.work / "out" / "unscaled.gguf"
    cmd = [str(env.stload), "convert", str(src), "--out", str(out), "--outtype", "f32"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if r.returncode == 0 or out.exists():
        raise Failure(f"converted an FP8 weight without its scales (exit {r.returncode})")
    if weight not in r.stderr or "scale" not in r.stderr:
        raise Failure(f"the refusal does not name {weight} and its scales: {_tail(r.stderr)}")
    return r.stderr.strip().splitlines()[-1]


HF_FP8_TESTS = [_hf_fp8_test(outtype) for outtype in HF_OUTTYPES]


# -- (d) split output -------------------------------------------------------------------------------
def _llama_split(env: Env, writer: str, split: tuple, want_shards: int) -> str:
    if writer != "stload":
        raise Skip("checks the stload CLI's split output")
    src = env.tiny_llama(False)
    ids = llama_oracle.tokenize(src, LLAMA_TEXT)
    whole = env.llama_cpp("logits", env.convert(src, "f16", writer), ids)
    first = env.convert(src, "f16", writer, split)
    shards = sorted(first.parent.glob(first.name.replace("-00001-of-", "-*-of-")))
    if len(shards) != want_shards or not first.name.endswith(f"-00001-of-{want_shards:05d}.gguf"):
        raise Failure(f"{' '.join(split)}: shards {[p.name for p in shards]}, expected {want_shards}")
    parts = env.llama_cpp("logits", first, ids)
    have, want = np.asarray(parts["logits"]), np.asarray(whole["logits"])
    if have.shape != want.shape or not np.array_equal(have, want):
        diff = np.abs(have - want).max() if have.shape == want.shape else "shape"
        raise Failure(f"{' '.join(split)}: logits from the shards differ from the unsplit file's: {diff}")
    return f"{want_shards} shards, {have.shape[0]} x {have.shape[1]} logits equal to the unsplit file's"


def llama_logits_split_tensors(env: Env, writer: str) -> str:
    # 21 tensors, 5 a shard: 4 full shards and one of 1.
    return _llama_split(env, writer, ("--split-max-tensors", "5"), 5)


def llama_logits_split_size(env: Env, writer: str) -> str:
    # 40K of tensor data a shard: the 51200-byte F16 token embedding is larger, so it goes alone.
    return _llama_split(env, writer, ("--split-max-size", "40K"), llama_oracle_shards(env, 40_000))


def llama_oracle_shards(env: Env, max_bytes: int) -> int:
    """How many shards gguf-split's rule gives the unsplit F16 file at `max_bytes` a shard."""
    import gguf

    reader = gguf.GGUFReader(str(env.convert(env.tiny_llama(False), "f16", env.writer)))
    shards, used = 1, 0
    for t in reader.tensors:
        n = -(-int(t.n_bytes) // 32) * 32
        if used and used + n > max_bytes:
            shards, used = shards + 1, 0
        used += n
    return shards


# -- (c) bad input ----------------------------------------------------------------------------------
def _snapshot(*dirs: Path) -> dict:
    """Every file under `dirs` with a digest of its bytes (symlinks as their target)."""
    seen = {}
    for d in dirs:
        for p in sorted(d.rglob("*")):
            if p.is_symlink():
                seen[str(p)] = "-> " + os.readlink(p)
            elif p.is_file():
                seen[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                seen[str(p)] = "dir"
    return seen


def _bad(env: Env, name: str, mutate, words: list, extra: tuple = ()) -> str:
    """Copies the tiny llama, breaks it with `mutate(src, out)`, converts, checks the refusal.

    words: alternatives; each is a string or a tuple of strings that must all appear in the
    message (case-insensitive)."""
    if env.writer != "stload":
        raise Skip("checks the stload CLI")
    case = env.work / "bad" / name
    src, dst = case / "src", case / "dst"
    shutil.rmtree(case, ignore_errors=True)  # left by an earlier run in a --keep directory
    shutil.copytree(env.tiny_llama(False), src)
    dst.mkdir(parents=True)
    out = dst / "model.gguf"
    mutate(src, out)
    before = _snapshot(src, dst)
    cmd = [str(env.stload), "convert", str(src), "--out", str(out), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    message = (r.stderr + r.stdout).strip()
    if r.returncode == 0:
        raise Failure(f"{name}: stload convert exited 0; output: {_tail(message)}")
    if r.returncode == 101 or "panicked" in message:
        raise Failure(f"{name}: stload panicked (exit {r.returncode}): {_tail(message)}")
    # The case's own paths (".../head-counts/src/config.json") must not supply the words.
    low = message.replace(str(case), "<case>").lower()
    if not any(all(w.lower() in low for w in ((a,) if isinstance(a, str) else a)) for a in words):
        raise Failure(f"{name}: the message names none of {words}: {_tail(message)}")
    after = _snapshot(src, dst)
    if after != before:
        added = sorted(set(after) - set(before))
        changed = sorted(k for k in before if after.get(k) != before[k])
        raise Failure(f"{name}: files left or changed behind: new {added}, changed or removed {changed}")
    return f"exit {r.returncode}: {message.splitlines()[-1][:120] if message else ''}"


def _set_config(src: Path, **changes) -> None:
    path = src / "config.json"
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg, indent=2))


def bad_missing_config(env: Env, writer: str) -> str:
    return _bad(env, "missing-config", lambda src, out: (src / "config.json").unlink(), ["config.json"])


def bad_unknown_arch(env: Env, writer: str) -> str:
    # The message must name the value and list supported names (llama among them).
    return _bad(
        env,
        "unknown-arch",
        lambda src, out: _set_config(src, architectures=["FrobnicatorForCausalLM"]),
        [("FrobnicatorForCausalLM", "llama")],
    )


def bad_missing_tokenizer(env: Env, writer: str) -> str:
    return _bad(env, "missing-tokenizer", lambda src, out: (src / "tokenizer.json").unlink(), ["tokenizer"])


def bad_head_counts(env: Env, writer: str) -> str:
    # 3 key/value heads cannot serve 4 attention heads (nor match k_proj's 2 heads of rows).
    return _bad(
        env, "head-counts", lambda src, out: _set_config(src, num_key_value_heads=3), ["head"]
    )


def bad_output_onto_input(env: Env, writer: str) -> str:
    # DST.gguf is a symbolic link to the source's weights: writing through it would destroy the
    # input. Refusing it because it is an input or because it already exists is right; nothing in
    # either directory may change (the link itself included).
    def mutate(src: Path, out: Path) -> None:
        out.symlink_to(src / "model.safetensors")

    detail = _bad(
        env,
        "output-onto-input",
        mutate,
        ["input", "source", "same file", "onto", "overwrite", "exists"],
    )
    # With --force (overwrite an existing output), where the CLI has it, the refusal must come
    # from recognising the input itself.
    help_text = subprocess.run(
        [str(env.stload), "convert", "--help"], capture_output=True, text=True, timeout=RUN_TIMEOUT
    ).stdout
    if "--force" in help_text:
        detail += "; with --force: " + _bad(
            env,
            "output-onto-input-force",
            mutate,
            ["input", "source", "same file", "onto", "itself"],
            extra=("--force",),
        )
    return detail


def tokenizer_split(env: Env, writer: str) -> str:
    """tokenizer_split.py: for each tokenizer kind, llama.cpp's ids on stload's file equal the source's."""
    if writer != "stload":
        raise Skip("checks stload's tokenizer export (the reference writer writes no pre-tokenizer type)")
    cmd = [sys.executable, str(HERE / "tokenizer_split.py"), str(env.stload), str(env.work / "tokenizer-split")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=4 * RUN_TIMEOUT)
    lines = [line for line in r.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    if r.returncode != 0:
        failed = [line for line in lines if line.startswith("FAIL")]
        raise Failure("; ".join(failed) if failed else _tail(r.stderr, errors=True))
    return f"{len(lines)} cases: " + ", ".join(line.split(":")[0].split()[-1] for line in lines)


# `stload convert X.gguf --out DIR --to-hf` on stload's F32 GGUF of each tiny model above: the
# directory holds the source's tensors under the source's names with the source's bytes, and
# transformers loads it (AutoModelForCausalLM, AutoTokenizer). Bit-identical weights under the
# same config give bit-identical logits: the bound is 0 (measured 0.0 for each; mistral comes back
# as LlamaForCausalLM, whose eager float32 graph is the same). The rebuilt tokenizer.json gives
# the source's ids and pre-tokenizer pieces for each of hf_reference.TOKENIZER_TEXTS.
TO_HF_ARCHS = ["llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen3moe", "phi3", "phi4mini"]
TO_HF_MAX_ABS = 0.0


def _safetensors(d: Path) -> dict:
    from safetensors import safe_open

    out = {}
    for f in sorted(d.glob("*.safetensors")):
        with safe_open(str(f), "np") as st:
            out.update({k: st.get_tensor(k) for k in st.keys()})
    return out


def _to_hf(env: Env, writer: str, arch: str) -> str:
    if writer != "stload":
        raise Skip("checks stload's --to-hf")
    src, ids, want = _hf_reference(env, arch)
    gguf_path = env.convert(src, "f32", writer)
    back = env.work / "out" / "to-hf" / arch
    shutil.rmtree(back, ignore_errors=True)
    cmd = [str(env.stload), "convert", str(gguf_path), "--out", str(back), "--to-hf"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if r.returncode != 0:
        raise Failure(f"{arch}: --to-hf exited {r.returncode}: {_tail(r.stderr, errors=True)}")
    a, b = _safetensors(src), _safetensors(back)
    if a.keys() != b.keys():
        raise Failure(f"{arch}: tensors only in the source {sorted(a.keys() - b.keys())}, only in --to-hf's {sorted(b.keys() - a.keys())}")
    for name, x in a.items():
        y = b[name]
        if (x.dtype, x.shape) != (y.dtype, y.shape) or x.tobytes() != y.tobytes():
            raise Failure(f"{arch}: {name}: source {x.dtype} {list(x.shape)}, --to-hf {y.dtype} {list(y.shape)}, or other bytes")
    out = env.work / f"to-hf-{arch}.json"
    cmd = [sys.executable, str(HERE / "hf_reference.py"), "tohf", str(src), str(back), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if r.returncode != 0:
        raise Failure(f"{arch}: transformers on --to-hf's directory failed: {_tail(r.stderr, errors=True)}")
    res = json.loads(out.read_text())
    if res["ids"] != ids:
        raise Failure(f"{arch}: token ids {res['ids']} differ from the source run's {ids}")
    have = np.asarray(res["logits"], dtype=np.float64)
    diff = float(np.abs(have - want).max()) if have.shape == want.shape else float("inf")
    if not diff <= TO_HF_MAX_ABS:
        raise Failure(f"{arch}: logits {have.shape} vs the source's {want.shape}: max abs diff {diff:.3g} > {TO_HF_MAX_ABS}")
    for t in res["tokens"]:
        if t["source"] != t["back"]:
            raise Failure(f"{arch}: {t['text']!r}: source tokenizer (ids, pieces) {t['source']}, rebuilt {t['back']}")
    return f"{len(a)} tensors bit-identical, logits max abs diff {diff:.3g}, {len(res['tokens'])} texts tokenized alike"


def _to_hf_test(arch: str):
    def test(env: Env, writer: str) -> str:
        return _to_hf(env, writer, arch)

    test.__name__ = f"to_hf_{arch}"
    return test


TO_HF_TESTS = [_to_hf_test(arch) for arch in TO_HF_ARCHS]


TESTS = [
    bert_tokens,
    bert_embed_f32,
    bert_embed_f16,
    bert_embed_q8_0,
    llama_logits_f32,
    llama_logits_f32_tied,
    llama_logits_f16,
    llama_logits_split_tensors,
    llama_logits_split_size,
    *HF_TESTS,
    hf_gpt_oss_mxfp4_bytes,
    *HF_FP8_TESTS,
    *TO_HF_TESTS,
    bad_missing_config,
    bad_fp8_without_scale,
    bad_unknown_arch,
    bad_missing_tokenizer,
    bad_head_counts,
    bad_output_onto_input,
    tokenizer_split,
]
# (The transformers checks carry their own reference, llama.cpp's converter, in their message.)
DIAGNOSABLE = {t.__name__ for t in TESTS if not t.__name__.startswith(("bad_", "hf_", "tokenizer_", "to_hf_"))}


# -- mutants: the reference writer broken on purpose; each must make its test fail ------------------
def _patch(obj, attr: str, make):
    """Replaces obj.attr by make(original); returns the undo."""
    original = getattr(obj, attr)
    setattr(obj, attr, make(original))
    return lambda: setattr(obj, attr, original)


def _swap_bert(a: str, b: str):
    def undo():
        layer = ref_writer.BERT_LAYER
        layer[a], layer[b] = layer[b], layer[a]

    undo()  # swapping is its own inverse
    return undo


def _with(obj, attr: str, value):
    return lambda: _patch(obj, attr, lambda original: value)


def _with_arg(obj, attr: str, value):
    """obj.attr(self, v) called with `value` instead of v."""
    return lambda: _patch(obj, attr, lambda original: lambda self, v: original(self, value))


W = ref_writer.gguf.GGUFWriter
MUTANTS = [
    ("llama q/k rows left in HF order", _with(ref_writer, "_permute", lambda w, n: w), llama_logits_f32),
    (
        "llama k permuted with the query head count",
        lambda: _patch(ref_writer, "_permute", lambda f: lambda w, n: f(w, llama_oracle.HEADS)),
        llama_logits_f32_tied,
    ),
    ("llama rope_theta dropped", _with_arg(W, "add_rope_freq_base", 10000.0), llama_logits_f16),
    ("llama rms epsilon 1e-2", _with_arg(W, "add_layer_norm_rms_eps", 1e-2), llama_logits_f16),
    (
        "bert continuation tokens keep their ##",
        _with(ref_writer, "_wordpiece_token", lambda t: t if t.startswith("##") else "\u2581" + t),
        bert_tokens,
    ),
    (
        "bert CLS pooling instead of mean",
        _with(ref_writer, "_pooling", lambda src: ref_writer.gguf.PoolingType.CLS),
        bert_embed_f32,
    ),
    (
        "bert query and value weights swapped",
        lambda: _swap_bert("attention.self.query", "attention.self.value"),
        bert_embed_q8_0,
    ),
]


def run_mutants(args: argparse.Namespace, work: Path, select: str) -> tuple:
    """Runs each selected mutant's test on the broken reference writer; a pass is a failure."""
    killed = survived = 0
    for i, (what, apply, test) in enumerate(MUTANTS):
        if select not in test.__name__ and select not in what:
            continue
        env = Env(args, work / f"mutant-{i}")
        env.work.mkdir(parents=True, exist_ok=True)
        undo = apply()
        try:
            detail = test(env, "gguf-py")
        except Exception as e:  # noqa: BLE001 - any failure kills the mutant
            killed += 1
            print(f"PASS mutant {what!r} fails {test.__name__}: {str(e).splitlines()[0][:150]}")
        else:
            survived += 1
            print(f"FAIL mutant {what!r} passes {test.__name__}: {detail}")
        finally:
            undo()
    return killed, survived


def main() -> int:
    ap = argparse.ArgumentParser(description="End-to-end GGUF export checks with llama.cpp.")
    ap.add_argument("--writer", choices=["stload", "gguf-py"], default="stload")
    ap.add_argument("--stload", default=str(HERE.parent.parent / "target" / "release" / "stload"))
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it")
    ap.add_argument("-k", dest="select", default="", help="run only tests whose name contains this")
    ap.add_argument(
        "--mutants",
        action="store_true",
        help="instead of the tests, break the reference writer in known ways: each must fail its test",
    )
    args = ap.parse_args()
    if args.mutants:
        args.writer = "gguf-py"
    if args.writer == "stload" and not Path(args.stload).is_file():
        print(f"stload binary not found: {args.stload} (build it, or pass --stload PATH)")
        print("0 passed, 1 failed")
        return 1

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        work_ctx = None
        work = args.keep.resolve()
    else:
        work_ctx = tempfile.TemporaryDirectory(prefix="stload-gguf-e2e-")
        work = Path(work_ctx.name)
    env = Env(args, work)
    print(f"writer: {args.writer}" + (f" ({env.stload})" if args.writer == "stload" else ""))
    passed = failed = skipped = 0
    if args.mutants:
        passed, failed = run_mutants(args, work, args.select)
    for test in [] if args.mutants else TESTS:
        name = test.__name__
        if args.select not in name:
            continue
        start = time.monotonic()
        try:
            detail = test(env, args.writer)
        except subprocess.TimeoutExpired as e:
            failed += 1
            print(f"FAIL {name}: {' '.join(map(str, e.cmd))} did not finish in {e.timeout} s")
            continue
        except Skip as e:
            skipped += 1
            print(f"SKIP {name}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - every error is this test's failure
            failed += 1
            msg = str(e) if isinstance(e, Failure) else traceback.format_exc().strip()
            if args.writer == "stload" and name in DIAGNOSABLE:
                msg += "\n  " + _diagnose(env, test)
            print(f"FAIL {name}: {msg}")
            continue
        passed += 1
        print(f"PASS {name} ({time.monotonic() - start:.1f} s): {detail}")
    if work_ctx is not None:
        work_ctx.cleanup()
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


def _diagnose(env: Env, test) -> str:
    """Runs a failed case on the reference writer's file: who is at fault, and how do the files differ?"""
    env.last_case = None
    try:
        detail = test(env, "gguf-py")
        verdict = (
            f"on the reference file (gguf package writer) llama.cpp agrees with the oracle ({detail}): "
            "stload's conversion is at fault"
        )
    except Exception as e:  # noqa: BLE001
        verdict = (
            "the reference file (gguf package writer) fails too, so the oracle, the threshold or "
            f"llama.cpp is in question, not only stload: {e}"
        )
    if env.last_case is not None:
        src, outtype = env.last_case
        mine = env._converted.get((src, outtype, "stload"))
        ref = env._converted.get((src, outtype, "gguf-py"))
        if mine is not None and ref is not None:
            try:
                diffs = gguf_diff(mine, ref)
            except Exception as e:  # noqa: BLE001
                diffs = [f"could not compare the files: {e}"]
            if diffs:
                verdict += "\n  stload file vs reference file:\n    " + "\n    ".join(diffs[:25])
                if len(diffs) > 25:
                    verdict += f"\n    ... and {len(diffs) - 25} more"
    return verdict


def _field_value(field):
    try:
        value = field.contents()
    except Exception:  # noqa: BLE001 - an unreadable value compares by its raw parts
        value = [p.tobytes() for p in field.parts[field.data[0] :]] if field.data else None
    if isinstance(value, list) and len(value) > 8:
        digest = hashlib.sha256(repr(value).encode()).hexdigest()[:12]
        return f"[{len(value)} items, digest {digest}]"
    return value


def gguf_diff(mine: Path, ref: Path) -> list:
    """What differs between two GGUF files: keys, key types and values, tensor names, types, shapes."""
    import gguf

    a, b = gguf.GGUFReader(str(mine)), gguf.GGUFReader(str(ref))
    out = []
    # Keys both writers set differently by design, or that only name the file.
    ignore = {"general.name", "general.alignment", "GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"}
    fa = {k: f for k, f in a.fields.items() if k not in ignore}
    fb = {k: f for k, f in b.fields.items() if k not in ignore}
    for k in sorted(fb.keys() - fa.keys()):
        out.append(f"key {k} missing (reference: {_field_value(fb[k])!r})")
    for k in sorted(fa.keys() - fb.keys()):
        out.append(f"key {k} only in the stload file ({_field_value(fa[k])!r})")
    for k in sorted(fa.keys() & fb.keys()):
        ta, tb = [t.name for t in fa[k].types], [t.name for t in fb[k].types]
        va, vb = _field_value(fa[k]), _field_value(fb[k])
        if ta != tb:
            out.append(f"key {k}: type {ta}, reference {tb}")
        elif va != vb and not (
            isinstance(va, float) and isinstance(vb, float) and np.isclose(va, vb, rtol=1e-6)
        ):
            out.append(f"key {k}: {va!r}, reference {vb!r}")
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    for n in sorted(tb.keys() - ta.keys()):
        out.append(f"tensor {n} missing")
    for n in sorted(ta.keys() - tb.keys()):
        out.append(f"tensor {n} only in the stload file")
    for n in sorted(ta.keys() & tb.keys()):
        x, y = ta[n], tb[n]
        sx, sy = [int(d) for d in x.shape], [int(d) for d in y.shape]  # GGUF order
        if x.tensor_type != y.tensor_type or sx != sy:
            out.append(f"tensor {n}: {x.tensor_type.name} {sx}, reference {y.tensor_type.name} {sy}")
        elif not np.array_equal(np.asarray(x.data), np.asarray(y.data)):
            out.append(f"tensor {n}: same type and shape, different values")
    return out


if __name__ == "__main__":
    sys.exit(main())
