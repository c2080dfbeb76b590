"""A tiny random llama in Hugging Face layout, and a numpy forward pass of it.

`make(dir, seed, tied)` writes config.json (LlamaForCausalLM, grouped-query attention),
model.safetensors (float32, HF's q/k row order), and a byte-level BPE tokenizer trained with the
`tokenizers` package on generated text (tokenizer.json, tokenizer_config.json).

`forward(dir, ids)` computes the logits of every position in float64 straight from those files:
RMSNorm, rotate-half RoPE with config.json's rope_theta on the unpermuted q/k weights, causal
grouped-query attention, SwiGLU feed-forward, final norm, output projection (tied or not).
Rounding the weights to float16 first (`round_f16=True`) gives the oracle of an F16 GGUF.
"""

import json
import random
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

HIDDEN = 64
HEADS = 4
KV_HEADS = 2
LAYERS = 2
INTERMEDIATE = 128
ROPE_THETA = 50000.0  # not the default 10000, so a converter that drops it is caught
RMS_EPS = 1e-5
CONTEXT = 128
BOS, EOS = "<s>", "</s>"


def _corpus(seed: int) -> list[str]:
    """Generated sentences over a made-up lexicon: words, digits, punctuation."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    lexicon = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 8))) for _ in range(120)]
    lines = []
    for _ in range(400):
        words = [rng.choice(lexicon) for _ in range(rng.randint(3, 12))]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 9999)))
        words[0] = words[0].capitalize()
        lines.append(" ".join(words) + rng.choice([".", "!", "?", ","]))
    return lines


def train_tokenizer(seed: int):
    """A byte-level BPE trained on the generated corpus, BOS prepended by the post-processor."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(seed), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B:1", special_tokens=[(BOS, tok.token_to_id(BOS))]
    )
    return tok


def make(out: Path, seed: int = 0, tied: bool = False) -> Path:
    """Writes the tiny llama checkpoint to `out` (created) and returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(seed)
    tok.save(str(out / "tokenizer.json"))
    vocab = tok.get_vocab_size(with_added_tokens=True)
    head_dim = HIDDEN // HEADS
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "vocab_size": vocab,
        "max_position_embeddings": CONTEXT,
        "rms_norm_eps": RMS_EPS,
        "rope_theta": ROPE_THETA,
        "tie_word_embeddings": tied,
        "hidden_act": "silu",
        "bos_token_id": tok.token_to_id(BOS),
        "eos_token_id": tok.token_to_id(EOS),
        "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "bos_token": BOS,
                "eos_token": EOS,
                "add_bos_token": True,
                "add_eos_token": False,
                "model_max_length": CONTEXT,
                "tokenizer_class": "PreTrainedTokenizerFast",
            },
            indent=2,
        )
    )

    rng = np.random.default_rng(seed)

    def linear(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    def norm() -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32)

    t = {"model.embed_tokens.weight": (0.125 * rng.standard_normal((vocab, HIDDEN))).astype(np.float32)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = norm()
        t[p + "self_attn.q_proj.weight"] = linear(HEADS * head_dim, HIDDEN)
        t[p + "self_attn.k_proj.weight"] = linear(KV_HEADS * head_dim, HIDDEN)
        t[p + "self_attn.v_proj.weight"] = linear(KV_HEADS * head_dim, HIDDEN)
        t[p + "self_attn.o_proj.weight"] = linear(HIDDEN, HEADS * head_dim)
        t[p + "post_attention_layernorm.weight"] = norm()
        t[p + "mlp.gate_proj.weight"] = linear(INTERMEDIATE, HIDDEN)
        t[p + "mlp.up_proj.weight"] = linear(INTERMEDIATE, HIDDEN)
        t[p + "mlp.down_proj.weight"] = linear(HIDDEN, INTERMEDIATE)
    t["model.norm.weight"] = norm()
    if not tied:
        t["lm_head.weight"] = linear(vocab, HIDDEN)
    save_file(t, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def tokenize(model_dir: Path, text: str) -> list[int]:
    """The `tokenizers` library's ids for `text`, with the BOS the tokenizer adds."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(text).ids


def _rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def forward(model_dir: Path, ids: list[int], round_f16: bool = False) -> np.ndarray:
    """Logits [len(ids), vocab] in float64 for the checkpoint in `model_dir`.

    round_f16: round every 2-D weight to float16 first (what an F16 GGUF stores; 1-D norms
    stay F32 under the per-tensor rule)."""
    cfg = json.loads((model_dir / "config.json").read_text())
    raw = load_file(str(model_dir / "model.safetensors"))

    def w(name: str) -> np.ndarray:
        a = raw[name]
        if round_f16 and a.ndim == 2:
            a = a.astype(np.float16)
        return a.astype(np.float64)

    hidden = cfg["hidden_size"]
    n_head = cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_head)
    hd = hidden // n_head
    eps = cfg["rms_norm_eps"]
    theta = cfg.get("rope_theta", 10000.0)
    n = len(ids)

    inv_freq = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    angles = np.outer(np.arange(n, dtype=np.float64), inv_freq)  # [n, hd/2]
    cos = np.cos(np.concatenate([angles, angles], axis=-1))  # [n, hd]
    sin = np.sin(np.concatenate([angles, angles], axis=-1))
    mask = np.triu(np.full((n, n), -np.inf), k=1)

    embed = w("model.embed_tokens.weight")
    x = embed[np.asarray(ids)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = _rms_norm(x, w(p + "input_layernorm.weight"), eps)
        q = (h @ w(p + "self_attn.q_proj.weight").T).reshape(n, n_head, hd).transpose(1, 0, 2)
        k = (h @ w(p + "self_attn.k_proj.weight").T).reshape(n, n_kv, hd).transpose(1, 0, 2)
        v = (h @ w(p + "self_attn.v_proj.weight").T).reshape(n, n_kv, hd).transpose(1, 0, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        group = n_head // n_kv
        k = np.repeat(k, group, axis=0)  # head j reads kv head j // group
        v = np.repeat(v, group, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        attn = (scores @ v).transpose(1, 0, 2).reshape(n, n_head * hd)
        x = x + attn @ w(p + "self_attn.o_proj.weight").T
        h = _rms_norm(x, w(p + "post_attention_layernorm.weight"), eps)
        gate = h @ w(p + "mlp.gate_proj.weight").T
        up = h @ w(p + "mlp.up_proj.weight").T
        x = x + (gate / (1.0 + np.exp(-gate)) * up) @ w(p + "mlp.down_proj.weight").T
    x = _rms_norm(x, w("model.norm.weight"), eps)
    head = w("lm_head.weight") if "lm_head.weight" in raw else embed
    return x @ head.T
