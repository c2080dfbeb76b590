"""Writes small llama, phi3, mixtral, qwen2, gemma, gemma2, bert and llama3 checkpoints (with
config.json) and what ollama's converter makes of them, computed independently with numpy.

Usage: make_arch_fixtures.py OUT_DIR

OUT_DIR/<dir>/model.safetensors + config.json   (BF16 weights; bert also an int64 tensor)
OUT_DIR/<dir>/tokenizer.json + tokenizer_config.json   a ten-token vocabulary (byte-level BPE, or
                        WordPiece for bert), so every directory also converts to GGUF
OUT_DIR/expected.json   dir -> converted name -> {dtype, shape, hex, f32_hex[, adjusted_hex]}
OUT_DIR/computed.json   dir -> computed GGUF tensor name -> {shape, f32_hex}
The llama Q/K repack is numpy's reshape [heads, 2, rows/heads/2, cols], swap axes 1 and 2,
reshape back: the permutation ollama's llamaModel.repack applies. For the architectures added
with GGUF export, the expected names come from the gguf package's TensorNameMap (the names
llama.cpp's converter writes, checked against the architecture's MODEL_TENSORS), not from a
list written here; "phi3_gguf" is phi3 in the GGUF layout (fused qkv and gate_up).
llama3's rope_freqs are computed here in numpy float64, as llama.cpp's converter defines them.
"""

import json
import os
import sys

import ml_dtypes
import numpy as np
from safetensors import TensorSpec, serialize_file

from gguf_keys import gguf_name

RNG = np.random.default_rng(7)
HEADS, KV_HEADS, HEAD_DIM = 4, 2, 8
HIDDEN = HEADS * HEAD_DIM
LAYERS, EXPERTS, FFN = 2, 3, 16


def bf16(*shape):
    return (RNG.standard_normal(shape) * 0.5).astype(ml_dtypes.bfloat16)


def repack(w, heads):
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


SAFETENSORS_DTYPES = {"bfloat16": "bfloat16", "int64": "int64"}


def save(path, tensors):
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    specs = {
        k: TensorSpec(dtype=SAFETENSORS_DTYPES[str(v.dtype)], shape=list(v.shape), data_ptr=v.ctypes.data, data_len=v.nbytes)
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


def oracle(arch, t, out, repack_qk=False, adjust=False):
    """Expected GGUF names from the gguf package's TensorNameMap; values as stored (llama:
    Q/K repacked). `adjust` adds the f32 values plus one for the RMSNorm weights."""
    for name, w in t.items():
        new = gguf_name(arch, name, LAYERS)
        if new is None:
            continue
        if repack_qk and new.endswith("attn_q.weight"):
            w = repack(w, HEADS)
        elif repack_qk and new.endswith("attn_k.weight"):
            w = repack(w, KV_HEADS)
        out[new] = entry(w)
        if adjust and new.endswith("_norm.weight"):
            out[new]["adjusted_hex"] = (w.astype(np.float32) + np.float32(1)).tobytes().hex()


def llama_tensors():
    t = embeddings()
    for i in range(LAYERS):
        t |= common_layer(i)
        t |= separate_qkv(i)
        t[f"model.layers.{i}.mlp.gate_proj.weight"] = bf16(FFN, HIDDEN)
        t[f"model.layers.{i}.mlp.up_proj.weight"] = bf16(FFN, HIDDEN)
        t[f"model.layers.{i}.mlp.down_proj.weight"] = bf16(HIDDEN, FFN)
    return t


def llama3(out_dir, expected):
    t = llama_tensors()
    save(os.path.join(out_dir, "model.safetensors"), t)
    oracle("llama", t, expected, repack_qk=True)


def qwen2(out_dir, expected):
    t = llama_tensors()
    for i in range(LAYERS):
        t[f"model.layers.{i}.self_attn.q_proj.bias"] = bf16(HEADS * HEAD_DIM)
        t[f"model.layers.{i}.self_attn.k_proj.bias"] = bf16(KV_HEADS * HEAD_DIM)
        t[f"model.layers.{i}.self_attn.v_proj.bias"] = bf16(KV_HEADS * HEAD_DIM)
    save(os.path.join(out_dir, "model.safetensors"), t)
    oracle("qwen2", t, expected)


def gemma(out_dir, expected):
    t = llama_tensors()  # with lm_head, which the tied gemma drops
    save(os.path.join(out_dir, "model.safetensors"), t)
    oracle("gemma", t, expected, adjust=True)


def gemma2(out_dir, expected):
    t = llama_tensors()
    for i in range(LAYERS):
        t[f"model.layers.{i}.pre_feedforward_layernorm.weight"] = bf16(HIDDEN)
        t[f"model.layers.{i}.post_feedforward_layernorm.weight"] = bf16(HIDDEN)
    save(os.path.join(out_dir, "model.safetensors"), t)
    oracle("gemma2", t, expected, adjust=True)


def bert(out_dir, expected):
    """A task-model checkpoint: every name under `bert.`, position ids and a pooler to drop."""
    p = "bert."
    t = {
        p + "embeddings.word_embeddings.weight": bf16(10, HIDDEN),
        p + "embeddings.position_embeddings.weight": bf16(16, HIDDEN),
        p + "embeddings.token_type_embeddings.weight": bf16(2, HIDDEN),
        p + "embeddings.LayerNorm.weight": bf16(HIDDEN),
        p + "embeddings.LayerNorm.bias": bf16(HIDDEN),
        p + "embeddings.position_ids": np.arange(16, dtype=np.int64).reshape(1, 16),
        p + "pooler.dense.weight": bf16(HIDDEN, HIDDEN),
        p + "pooler.dense.bias": bf16(HIDDEN),
    }
    for i in range(LAYERS):
        layer = f"{p}encoder.layer.{i}."
        for part in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            t[layer + part + ".weight"] = bf16(HIDDEN, HIDDEN)
            t[layer + part + ".bias"] = bf16(HIDDEN)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[layer + norm + ".weight"] = bf16(HIDDEN)
            t[layer + norm + ".bias"] = bf16(HIDDEN)
        t[layer + "intermediate.dense.weight"] = bf16(FFN, HIDDEN)
        t[layer + "intermediate.dense.bias"] = bf16(FFN)
        t[layer + "output.dense.weight"] = bf16(HIDDEN, FFN)
        t[layer + "output.dense.bias"] = bf16(HIDDEN)
    save(os.path.join(out_dir, "model.safetensors"), t)
    oracle("bert", t, expected)
    with open(os.path.join(out_dir, "modules.json"), "w") as f:
        json.dump([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ], f)
    os.makedirs(os.path.join(out_dir, "1_Pooling"), exist_ok=True)
    with open(os.path.join(out_dir, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, f)


def phi3_gguf(phi3_dir, expected):
    """phi3 in the GGUF layout: the same checkpoint, fused tensors kept."""
    from safetensors.numpy import load_file

    t = load_file(os.path.join(phi3_dir, "model.safetensors"))
    oracle("phi3", t, expected)


def llama3_rope_freqs(config):
    """llama.cpp's converter's llama3 rope factors, in float64, one per pair of head dims."""
    rope = config["rope_scaling"]
    dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    base = config.get("rope_theta", 10000.0)
    factor, low, high = rope.get("factor", 8.0), rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old = rope.get("original_max_position_embeddings", 8192)
    wavelen = 2 * np.pi * base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    smooth = (old / wavelen - low) / (high - low)
    mixed = 1 / ((1 - smooth) / factor + smooth)
    out = np.where(wavelen < old / high, 1.0, np.where(wavelen > old / low, factor, mixed))
    return out.astype(np.float32)


BASE = {
    "vocab_size": 10, "max_position_embeddings": 256, "hidden_size": HIDDEN, "intermediate_size": FFN,
    "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
    "head_dim": HEAD_DIM, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
}
HALF = HEAD_DIM // 2
CONFIGS = {
    "llama": dict(BASE, architectures=["LlamaForCausalLM"]),
    "phi3": dict(
        BASE, architectures=["Phi3ForCausalLM"], max_position_embeddings=131072,
        original_max_position_embeddings=4096, sliding_window=2047,
        rope_scaling={"type": "longrope", "long_factor": [1.0, 1.5, 2.25, 3.375], "short_factor": [1.0, 1.1, 1.2, 1.3]},
    ),
    "mixtral": dict(BASE, architectures=["MixtralForCausalLM"], num_local_experts=EXPERTS, num_experts_per_tok=2),
    "qwen2": dict(
        BASE, architectures=["Qwen2ForCausalLM"], rope_theta=1000000.0,
        rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768},
    ),
    "gemma": dict(BASE, architectures=["GemmaForCausalLM"], rms_norm_eps=1e-6),
    "gemma2": dict(
        BASE, architectures=["Gemma2ForCausalLM"], attn_logit_softcapping=50.0,
        final_logit_softcapping=30.0, sliding_window=4096, query_pre_attn_scalar=8,
    ),
    "bert": {
        "architectures": ["BertModel"], "vocab_size": 10, "max_position_embeddings": 16, "hidden_size": HIDDEN,
        "intermediate_size": FFN, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
        "layer_norm_eps": 1e-12, "type_vocab_size": 2,
    },
    "llama3": {
        k: v for k, v in dict(
            BASE, architectures=["LlamaForCausalLM"], rope_theta=500000.0, max_position_embeddings=131072,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192},
        ).items() if k != "head_dim"
    },
}
assert len(CONFIGS["phi3"]["rope_scaling"]["long_factor"]) == HALF


def tokenizer(out_dir, wordpiece):
    """A ten-token tokenizer.json (vocab_size of every config here) and tokenizer_config.json."""
    if wordpiece:
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        vocab = specials + ["a", "b", "##a", "##b", "ab"]
        model = {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                 "max_input_chars_per_word": 100, "vocab": {v: i for i, v in enumerate(vocab)}}
        pre, config = {"type": "BertPreTokenizer"}, {"cls_token": "[CLS]", "sep_token": "[SEP]",
                                                     "unk_token": "[UNK]", "pad_token": "[PAD]",
                                                     "mask_token": "[MASK]", "do_lower_case": True}
    else:
        specials = ["<s>", "</s>"]
        vocab = specials + ["a", "b", "c", "ab", "bc", "abc", "\u0120", "\u0120a"]
        model = {"type": "BPE", "vocab": {v: i for i, v in enumerate(vocab)},
                 "merges": ["a b", "b c", "ab c", "\u0120 a"]}
        pre, config = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                       "use_regex": True}, {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True}
    added = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(vocab) if s in specials]
    with open(os.path.join(out_dir, "tokenizer.json"), "w") as f:
        json.dump({"version": "1.0", "added_tokens": added, "pre_tokenizer": pre, "model": model}, f)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(config, f)


def main(out):
    expected = {}
    makers = (("llama", llama), ("phi3", phi3), ("mixtral", mixtral), ("qwen2", qwen2), ("gemma", gemma),
              ("gemma2", gemma2), ("bert", bert), ("llama3", llama3))
    for name, make in makers:
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(CONFIGS[name], f)
        expected[name] = {}
        make(d, expected[name])
        tokenizer(d, wordpiece=name == "bert")
    expected["phi3_gguf"] = {}
    phi3_gguf(os.path.join(out, "phi3"), expected["phi3_gguf"])
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    rope = CONFIGS["phi3"]["rope_scaling"]
    computed = {
        "llama3": {"rope_freqs.weight": llama3_rope_freqs(CONFIGS["llama3"])},
        "phi3": {
            "rope_factors_long.weight": np.array(rope["long_factor"], dtype=np.float32),
            "rope_factors_short.weight": np.array(rope["short_factor"], dtype=np.float32),
        },
    }
    with open(os.path.join(out, "computed.json"), "w") as f:
        json.dump({d: {n: {"shape": list(v.shape), "f32_hex": v.tobytes().hex()} for n, v in c.items()}
                   for d, c in computed.items()}, f)


if __name__ == "__main__":
    main(sys.argv[1])
