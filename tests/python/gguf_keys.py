"""The oracle for the architectures' GGUF side, from the gguf package itself.

Tensor names: gguf's TensorNameMap (what llama.cpp's converter maps Hugging Face names with),
checked against the architecture's MODEL_TENSORS. Metadata: the keys and value types that
gguf's GGUFWriter.add_* methods produce for the values in config.json.

Usage:
  gguf_keys.py names ARCH DIR          print the GGUF names of DIR's safetensors tensors (JSON)
  gguf_keys.py check FIXTURES GOT.json compare metadata written by stload with the oracle's
"""

import glob
import json
import math
import os
import sys

import gguf
from gguf.constants import MODEL_ARCH, MODEL_ARCH_NAMES, MODEL_TENSORS, TENSOR_NAMES

ARCHS = {
    "llama": MODEL_ARCH.LLAMA,
    "mixtral": MODEL_ARCH.LLAMA,
    "phi3": MODEL_ARCH.PHI3,
    "qwen2": MODEL_ARCH.QWEN2,
    "gemma": MODEL_ARCH.GEMMA,
    "gemma2": MODEL_ARCH.GEMMA2,
    "bert": MODEL_ARCH.BERT,
}

# What llama.cpp's converter leaves out of each architecture's file.
def dropped(arch, name):
    if arch == "bert":
        return name in ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias") or name.startswith(
            ("cls.predictions", "cls.seq_relationship")
        )
    if arch in ("gemma", "gemma2"):
        return name == "lm_head.weight"
    return False


def gguf_name(arch, name, blocks):
    """The GGUF name llama.cpp's converter gives `name`, checked against the arch's tensors."""
    if arch == "bert" and name.startswith("bert."):
        name = name[len("bert."):]
    if dropped(arch, name):
        return None
    a = ARCHS[arch]
    new = gguf.get_tensor_name_map(a, blocks).get_name(name, try_suffixes=(".weight", ".bias"))
    assert new is not None, f"{arch}: the gguf package has no name for {name}"
    stem = new.rsplit(".", 1)[0]
    allowed = {TENSOR_NAMES[t].format(bid=b) for t in MODEL_TENSORS[a] for b in range(blocks)}
    assert stem in allowed, f"{arch}: {new} is not a tensor llama.cpp's {MODEL_ARCH_NAMES[a]} reads"
    return new


def names(arch, directory):
    from safetensors import safe_open

    keys = []
    for f in sorted(glob.glob(os.path.join(directory, "*.safetensors"))):
        with safe_open(f, "np") as s:
            keys += list(s.keys())
    config = json.load(open(os.path.join(directory, "config.json")))
    blocks = config["num_hidden_layers"]
    return sorted(n for n in (gguf_name(arch, k, blocks) for k in keys) if n is not None)


def expected_kv(arch, config, directory):
    """What stload must write for `arch`, through GGUFWriter's own key names and types."""
    c = config
    w = gguf.GGUFWriter(None, MODEL_ARCH_NAMES[ARCHS[arch]])
    heads = c["num_attention_heads"]
    kv_heads = c.get("num_key_value_heads") or heads
    head_dim = c.get("head_dim") or c["hidden_size"] // heads
    if c.get("vocab_size"):
        w.add_vocab_size(c["vocab_size"])
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    rope = c.get("rope_scaling") or {}
    rope_type = (rope.get("rope_type") or rope.get("type") or "").lower()
    if arch in ("llama", "mixtral"):
        w.add_rope_dimension_count(head_dim)
        if "rope_theta" in c:
            w.add_rope_freq_base(c["rope_theta"])
        w.add_layer_norm_rms_eps(c["rms_norm_eps"])
        if "head_dim" in c:
            w.add_key_length(head_dim)
            w.add_value_length(head_dim)
        if rope_type == "linear":
            w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(rope["factor"])
        if arch == "mixtral":
            w.add_expert_count(c["num_local_experts"])
            w.add_expert_used_count(c["num_experts_per_tok"])
    elif arch == "qwen2":
        if "rope_theta" in c:
            w.add_rope_freq_base(c["rope_theta"])
        w.add_layer_norm_rms_eps(c["rms_norm_eps"])
        if rope_type == "yarn":
            w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
            w.add_rope_scaling_factor(rope["factor"])
            w.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
    elif arch in ("gemma", "gemma2"):
        w.add_layer_norm_rms_eps(c["rms_norm_eps"])
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
        if "rope_theta" in c:
            w.add_rope_freq_base(c["rope_theta"])
        if arch == "gemma2":
            w.add_attn_logit_softcapping(c["attn_logit_softcapping"])
            w.add_final_logit_softcapping(c["final_logit_softcapping"])
            w.add_sliding_window(c["sliding_window"])
    elif arch == "phi3":
        w.add_layer_norm_rms_eps(c["rms_norm_eps"])
        w.add_rope_dimension_count(head_dim)
        if "rope_theta" in c:
            w.add_rope_freq_base(c["rope_theta"])
        original = c["original_max_position_embeddings"]
        w.add_rope_scaling_orig_ctx_len(original)
        w.add_sliding_window(c.get("sliding_window") or 0)
        if rope_type in ("su", "longrope"):
            scale = c["max_position_embeddings"] / original
            w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(original)) if scale > 1 else 1.0)
    elif arch == "bert":
        w.add_layer_norm_eps(c["layer_norm_eps"])
        w.add_causal_attention(False)
        pooling = gguf.PoolingType.NONE
        modules = os.path.join(directory, "modules.json")
        if os.path.exists(modules):
            for m in json.load(open(modules)):
                if m["type"].endswith("Pooling"):
                    p = json.load(open(os.path.join(directory, m["path"], "config.json")))
                    if p.get("pooling_mode_mean_tokens"):
                        pooling = gguf.PoolingType.MEAN
                    elif p.get("pooling_mode_cls_token"):
                        pooling = gguf.PoolingType.CLS
        w.add_pooling_type(pooling)
        w.add_token_type_count(c.get("type_vocab_size", 2))
    return {k: (int(v.type), v.value) for k, v in w.kv_data[0].items()}


def same(vtype, want, got):
    if vtype == gguf.GGUFValueType.FLOAT32:
        import numpy as np

        return np.float32(want) == np.float32(got)
    if isinstance(want, gguf.PoolingType):
        want = int(want)
    return want == got


def check(fixtures, got_path):
    got_all = json.load(open(got_path))
    failures = []
    for directory, got in got_all.items():
        d = os.path.join(fixtures, directory)
        config = json.load(open(os.path.join(d, "config.json")))
        arch = got.pop("__arch__")[1]
        want = expected_kv(arch, config, d)
        for key in sorted(set(want) | set(got)):
            if key not in got:
                failures.append(f"{directory}: {key} missing (want {want[key]})")
            elif key not in want:
                failures.append(f"{directory}: {key} = {got[key]} is not a key the oracle writes")
            elif want[key][0] != got[key][0]:
                failures.append(f"{directory}: {key} has type {got[key][0]}, want {want[key][0]}")
            elif not same(want[key][0], want[key][1], got[key][1]):
                failures.append(f"{directory}: {key} = {got[key][1]}, want {want[key][1]}")
        print(f"{directory}: {len(want)} keys checked")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1] == "names":
        print(json.dumps(names(sys.argv[2], sys.argv[3])))
    elif sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
