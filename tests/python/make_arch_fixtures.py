"""Writes small llama, phi3 and mixtral checkpoints (with config.json) and what ollama's
converter makes of them, computed independently with numpy.

Usage: make_arch_fixtures.py OUT_DIR

OUT_DIR/{llama,phi3,mixtral}/model.safetensors + config.json   (BF16 weights)
OUT_DIR/expected.json   arch -> converted name -> {dtype, shape, hex, f32_hex}
The llama Q/K repack is numpy's reshape [heads, 2, rows/heads/2, cols], swap axes 1 and 2,
reshape back: the permutation ollama's llamaModel.repack applies.
"""

import json
import os
import sys

import ml_dtypes
import numpy as np
from safetensors import TensorSpec, serialize_file

RNG = np.random.default_rng(7)
HEADS, KV_HEADS, HEAD_DIM = 4, 2, 8
HIDDEN = HEADS * HEAD_DIM
LAYERS, EXPERTS, FFN = 2, 3, 16


def bf16(*shape):
    return (RNG.standard_normal(shape) * 0.5).astype(ml_dtypes.bfloat16)


def repack(w, heads):
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def save(path, tensors):
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    specs = {
        k: TensorSpec(dtype="bfloat16", shape=list(v.shape), data_ptr=v.ctypes.data, data_len=v.nbytes)
        for k, v in arrays.items()
    }
    serialize_file(specs, path, metadata={"format": "pt"})


def entry(a):
    return {
        "dtype": "BF16",
        "shape": list(a.shape),
        "hex": np.ascontiguousarray(a).tobytes().hex(),
        "f32_hex": np.ascontiguousarray(a).astype(np.float32).tobytes().hex(),
    }


def common_layer(i):
    return {
        f"model.layers.{i}.input_layernorm.weight": bf16(HIDDEN),
        f"model.layers.{i}.post_attention_layernorm.weight": bf16(HIDDEN),
        f"model.layers.{i}.self_attn.o_proj.weight": bf16(HIDDEN, HIDDEN),
    }


def embeddings():
    return {"model.embed_tokens.weight": bf16(10, HIDDEN), "model.norm.weight": bf16(HIDDEN), "lm_head.weight": bf16(10, HIDDEN)}


def separate_qkv(i):
    """Grouped-query attention: HEADS query heads, KV_HEADS key/value heads."""
    return {
        f"model.layers.{i}.self_attn.q_proj.weight": bf16(HEADS * HEAD_DIM, HIDDEN),
        f"model.layers.{i}.self_attn.k_proj.weight": bf16(KV_HEADS * HEAD_DIM, HIDDEN),
        f"model.layers.{i}.self_attn.v_proj.weight": bf16(KV_HEADS * HEAD_DIM, HIDDEN),
    }


def rename(name, renames):
    """Plain replacement in order: these names never overlap, so it equals Go's Replacer."""
    for old, rep in renames:
        name = name.replace(old, rep)
    return name


def llama_like(src, out, renames):
    """Expected names by plain replacement (no overlaps in these names) plus Q/K repack."""
    for name, w in src.items():
        new = rename(name, renames)
        if new.endswith("attn_q.weight"):
            w = repack(w, HEADS)
        elif new.endswith("attn_k.weight"):
            w = repack(w, KV_HEADS)
        out[new] = entry(w)


LLAMA_RENAMES = [
    ("lm_head", "output"), ("model.embed_tokens", "token_embd"), ("model.norm", "output_norm"),
    ("model.layers", "blk"), ("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"),
    ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"),
    ("mlp.gate_proj", "ffn_gate"), ("mlp.down_proj", "ffn_down"), ("mlp.up_proj", "ffn_up"),
    ("post_attention_layernorm", "ffn_norm"),
]


def llama(out_dir, expected):
    t = embeddings()
    for i in range(LAYERS):
        t |= common_layer(i)
        t |= separate_qkv(i)
        t[f"model.layers.{i}.mlp.gate_proj.weight"] = bf16(FFN, HIDDEN)
        t[f"model.layers.{i}.mlp.up_proj.weight"] = bf16(FFN, HIDDEN)
        t[f"model.layers.{i}.mlp.down_proj.weight"] = bf16(HIDDEN, FFN)
    save(os.path.join(out_dir, "model.safetensors"), t)
    llama_like(t, expected, LLAMA_RENAMES)


def phi3(out_dir, expected):
    t = embeddings()
    for i in range(LAYERS):
        t |= common_layer(i)
        t[f"model.layers.{i}.self_attn.qkv_proj.weight"] = bf16((HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN)
        t[f"model.layers.{i}.mlp.gate_up_proj.weight"] = bf16(2 * FFN, HIDDEN)
        t[f"model.layers.{i}.mlp.down_proj.weight"] = bf16(HIDDEN, FFN)
    save(os.path.join(out_dir, "model.safetensors"), t)
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    for name, w in t.items():
        new = rename(name, LLAMA_RENAMES)
        if "qkv_proj" in new:
            base = new.replace("self_attn.qkv_proj", "attn_{}")
            expected[base.format("q")] = entry(w[:q])
            expected[base.format("k")] = entry(w[q : q + kv])
            expected[base.format("v")] = entry(w[q + kv :])
        elif "gate_up_proj" in new:
            base = new.replace("mlp.gate_up_proj", "ffn_{}")
            expected[base.format("gate")] = entry(w[:FFN])
            expected[base.format("up")] = entry(w[FFN:])
        else:
            expected[new] = entry(w)


def mixtral(out_dir, expected):
    t = embeddings()
    for i in range(LAYERS):
        t |= common_layer(i)
        t |= separate_qkv(i)
        t[f"model.layers.{i}.block_sparse_moe.gate.weight"] = bf16(EXPERTS, HIDDEN)
        for e in range(EXPERTS):
            for w, shape in (("w1", (FFN, HIDDEN)), ("w2", (HIDDEN, FFN)), ("w3", (FFN, HIDDEN))):
                t[f"model.layers.{i}.block_sparse_moe.experts.{e}.{w}.weight"] = bf16(*shape)
    save(os.path.join(out_dir, "model.safetensors"), t)
    plain = {k: v for k, v in t.items() if ".experts." not in k}
    llama_like(plain, expected, LLAMA_RENAMES + [("block_sparse_moe.gate", "ffn_gate_inp")])
    for i in range(LAYERS):
        for w, new in (("w1", "ffn_gate_exps"), ("w2", "ffn_down_exps"), ("w3", "ffn_up_exps")):
            stacked = np.stack([t[f"model.layers.{i}.block_sparse_moe.experts.{e}.{w}.weight"] for e in range(EXPERTS)])
            expected[f"blk.{i}.{new}.weight"] = entry(stacked)


def main(out):
    config = {"num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "hidden_size": HIDDEN, "head_dim": HEAD_DIM}
    expected = {}
    for name, make in (("llama", llama), ("phi3", phi3), ("mixtral", mixtral)):
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        cfg = dict(config, num_local_experts=EXPERTS) if name == "mixtral" else config
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        expected[name] = {}
        make(d, expected[name])
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


if __name__ == "__main__":
    main(sys.argv[1])
