"""Reference GGUF writer: the `gguf` package's GGUFWriter fed from numpy.

An independent second path from a Hugging Face directory to GGUF for the two architectures the
end-to-end tests use (LlamaForCausalLM and BertModel), following llama.cpp's own converter:
llama.cpp's tensor names, its Q/K row permutation for llama, metadata keys from the package's
constants, tokenizer keys through `gguf.vocab` (BpeVocab, SpecialVocab). Per-tensor types follow
the rule stload uses: F32 for 1-D tensors, `*.bias`, `token_types.weight` and `position_embd.weight`; Q8_0 only where the
row length is a multiple of 32 (else F16); the out type for the rest.

When llama.cpp agrees with the numpy oracle on this file, the oracle and the thresholds are right;
when a stload file then disagrees, the converter is at fault.

Usage: ref_writer.py SRC_DIR OUT.gguf [--outtype f32|f16|q8_0]
"""

import argparse
import json
import logging
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

# gguf.vocab warns about keys this gguf version has no writer method for (cls_token_id):
# llama.cpp's BERT defaults cover them, and the warnings would only clutter the test log.
logging.getLogger("gguf").setLevel(logging.ERROR)

FILE_TYPES = {
    "f32": gguf.LlamaFileType.ALL_F32,
    "f16": gguf.LlamaFileType.MOSTLY_F16,
    "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
}


def _add(w: gguf.GGUFWriter, name: str, a: np.ndarray, outtype: str) -> None:
    """Adds tensor `name` in the type the per-tensor rule gives."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    keep_f32 = a.ndim == 1 or name.endswith(".bias") or name in ("token_types.weight", "position_embd.weight")
    if keep_f32 or outtype == "f32":
        w.add_tensor(name, a)
    elif outtype == "q8_0" and a.shape[-1] % 32 == 0:
        q = gguf.quants.quantize(a, gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    else:
        w.add_tensor(name, a.astype(np.float16))


def _permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """HF q/k rows (two halves per head) to llama.cpp's interleaved RoPE pairs."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _finish(w: gguf.GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_llama(src: Path, out: Path, outtype: str) -> None:
    cfg = json.loads((src / "config.json").read_text())
    t = load_file(str(src / "model.safetensors"))
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    hidden = cfg["hidden_size"]

    vocab = gguf.vocab.BpeVocab(src)
    tokens, types = [], []
    specials = {
        a["content"]
        for a in json.loads((src / "tokenizer.json").read_text()).get("added_tokens", [])
        if a.get("special")
    }
    for text, _score, typ in vocab.all_tokens():
        text = text.decode("utf-8") if isinstance(text, bytes) else text
        tokens.append(text)
        types.append(gguf.TokenType.CONTROL if text in specials else typ)

    w = gguf.GGUFWriter(str(out), "llama")
    w.add_name(src.name)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(hidden)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(hidden // n_head)
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(len(tokens))
    w.add_file_type(FILE_TYPES[outtype])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")  # the tiny tokenizer is ByteLevel with its GPT-2 regex
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.vocab.SpecialVocab(src, load_merges=True, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)

    _add(w, "token_embd.weight", t["model.embed_tokens.weight"], outtype)
    _add(w, "output_norm.weight", t["model.norm.weight"], outtype)
    if "lm_head.weight" in t:
        _add(w, "output.weight", t["lm_head.weight"], outtype)
    for i in range(cfg["num_hidden_layers"]):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        _add(w, b + "attn_norm.weight", t[p + "input_layernorm.weight"], outtype)
        _add(w, b + "attn_q.weight", _permute(t[p + "self_attn.q_proj.weight"], n_head), outtype)
        _add(w, b + "attn_k.weight", _permute(t[p + "self_attn.k_proj.weight"], n_kv), outtype)
        _add(w, b + "attn_v.weight", t[p + "self_attn.v_proj.weight"], outtype)
        _add(w, b + "attn_output.weight", t[p + "self_attn.o_proj.weight"], outtype)
        _add(w, b + "ffn_norm.weight", t[p + "post_attention_layernorm.weight"], outtype)
        _add(w, b + "ffn_gate.weight", t[p + "mlp.gate_proj.weight"], outtype)
        _add(w, b + "ffn_up.weight", t[p + "mlp.up_proj.weight"], outtype)
        _add(w, b + "ffn_down.weight", t[p + "mlp.down_proj.weight"], outtype)
    _finish(w)


BERT_LAYER = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
BERT_TOP = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.LayerNorm": "token_embd_norm",
}


def _pooling(src: Path) -> gguf.PoolingType:
    path = src / "1_Pooling" / "config.json"
    if not path.is_file():
        return gguf.PoolingType.CLS
    p = json.loads(path.read_text())
    if p.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if p.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    raise ValueError(f"{path}: no pooling mode llama.cpp has")


def _wordpiece_token(tok: str) -> str:
    """llama.cpp's WordPiece vocabulary: "##" continuations lose the prefix, word starts gain a
    phantom space (U+2581)."""
    return tok[2:] if tok.startswith("##") else "\u2581" + tok


def write_bert(src: Path, out: Path, outtype: str) -> None:
    cfg = json.loads((src / "config.json").read_text())
    t = load_file(str(src / "model.safetensors"))
    tj = json.loads((src / "tokenizer.json").read_text())
    by_id = {i: tok for tok, i in tj["model"]["vocab"].items()}
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(max(cfg["vocab_size"], len(by_id))):
        tok = by_id.get(i, f"[PAD{i}]")
        if i in added and added[i].get("special"):
            tokens.append(tok)  # control tokens keep their text
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(_wordpiece_token(tok))
            types.append(gguf.TokenType.NORMAL if i in by_id else gguf.TokenType.UNUSED)

    w = gguf.GGUFWriter(str(out), "bert")
    w.add_name(src.name)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(_pooling(src))
    w.add_file_type(FILE_TYPES[outtype])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model("bert")
    w.add_token_type_count(cfg.get("type_vocab_size", 1))
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.vocab.SpecialVocab(src, n_vocab=len(tokens)).add_to_gguf(w, quiet=True)

    for name, a in sorted(t.items()):
        base = name[5:] if name.startswith("bert.") else name
        if base == "embeddings.position_ids" or base.startswith("pooler."):
            continue
        stem, _, kind = base.rpartition(".")
        if stem in BERT_TOP:
            new = BERT_TOP[stem]
        elif stem.startswith("encoder.layer."):
            layer, _, rest = stem[len("encoder.layer.") :].partition(".")
            new = f"blk.{layer}.{BERT_LAYER[rest]}"
        else:
            raise ValueError(f"{src}: unexpected tensor {name!r}")
        _add(w, f"{new}.{kind}", a, outtype)
    _finish(w)


WRITERS = {"LlamaForCausalLM": write_llama, "BertModel": write_bert}


def write(src: Path, out: Path, outtype: str) -> None:
    """Writes SRC (a Hugging Face directory) to OUT as GGUF with the given out type."""
    arch = json.loads((src / "config.json").read_text())["architectures"][0]
    if arch not in WRITERS:
        raise ValueError(f"{src}: the reference writer has no {arch}")
    if outtype not in FILE_TYPES:
        raise ValueError(f"out type {outtype!r}: the reference writer has {sorted(FILE_TYPES)}")
    WRITERS[arch](src, out, outtype)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--outtype", default="f32", choices=sorted(FILE_TYPES))
    args = ap.parse_args()
    write(args.src, args.out, args.outtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
