"""Runs llama.cpp (through llama-cpp-python) on one GGUF file and writes its results as JSON.

A separate process per file, so that a file llama.cpp refuses or aborts on fails one test with
llama.cpp's own log, instead of ending the whole run.

Usage:
  llama_cpp_run.py embed MODEL.gguf SENTENCES.json OUT.json  -> {"tokens": [[id...]], "embeddings": [[f...]]}
  llama_cpp_run.py logits MODEL.gguf IDS.json OUT.json       -> {"logits": [[f...] per position]}
"""

import json
import sys

import llama_cpp

GGML_TYPE_F32 = 0
THREADS = 2


def load(model: str, n_ctx: int, **settings) -> "llama_cpp.Llama":
    """llama.cpp on `model` with the settings every run shares: a batch of the whole context,
    THREADS threads, and llama.cpp's log on stderr (shown when a test fails)."""
    return llama_cpp.Llama(
        model_path=model,
        n_ctx=n_ctx,
        n_batch=n_ctx,
        n_ubatch=n_ctx,
        n_threads=THREADS,
        n_threads_batch=THREADS,
        verbose=True,
        **settings,
    )


def embed(model: str, sentences: list[str]) -> dict:
    llm = load(model, 128, embedding=True)
    tokens = [llm.tokenize(s.encode("utf-8"), add_bos=True, special=False) for s in sentences]
    # One sentence per call: no padding, no cross-sequence batching to reason about.
    embeddings = [llm.embed([s], normalize=False)[0] for s in sentences]
    return {"tokens": tokens, "embeddings": embeddings, "pooling_type": llm.pooling_type()}


def logits(model: str, ids: list[int]) -> dict:
    llm = load(
        model,
        64,
        logits_all=True,
        flash_attn=False,
        type_k=GGML_TYPE_F32,  # an F16 KV cache would round K and V: keep the f32 path exact
        type_v=GGML_TYPE_F32,
    )
    llm.eval(ids)
    return {"logits": llm.scores[: len(ids)].tolist(), "n_vocab": llm.n_vocab()}


def main() -> int:
    mode, model, arg, out = sys.argv[1:5]
    with open(arg, encoding="utf-8") as f:
        data = json.load(f)
    result = embed(model, data) if mode == "embed" else logits(model, data)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
