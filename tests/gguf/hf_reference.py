"""Tiny random Hugging Face models built with `transformers`, and their reference logits.

`make(arch, dir)` builds the architecture's model from a config written here (fixed seed, every
weight redrawn so the logits reach a few units and a wrong layout moves them by as much), saves
it with `save_pretrained` (safetensors) beside the byte-level BPE tokenizer that llama_oracle
trains, and returns the directory. `logits(dir, ids)` loads that directory back with
transformers and runs it on CPU in float32 on `ids`: the logits of every position. No weight is
downloaded: every model is built from its config.

The configs are shaped so that transformers and llama.cpp compute the same thing (each choice
is written beside its value):
- No sliding window shorter than the sequence: `sliding_window` is None where the
  architecture allows it, else the context length (128), longer than the IDS sequence.
- Eager attention in transformers (gemma2's soft-capping needs it; the same math everywhere).
- gemma2's `query_pre_attn_scalar` equals its head size: llama.cpp scales queries by
  1/sqrt(head size) for every gemma2 size it knows.
- Token ids (`pad_token_id`, `bos_token_id`, `eos_token_id`) inside the tiny vocabulary.
- No "phi3" in phi3's directory name (general.name): llama.cpp then looks up Phi-3's own
  special tokens, which the tiny vocabulary lacks (e2e.py names the directory).

Usage as a script (by e2e.py, in its own process so torch's threads and memory go with it):
  hf_reference.py ARCH DIR OUT.json  -> the model in DIR; {"ids", "logits", "unrouted"} in OUT.json
  hf_reference.py fp8 SRC FP8_DIR DEQ_DIR OUT.json  -> SRC (a deepseekv3 model) as FP8 with block
      scales in FP8_DIR, dequantised in DEQ_DIR; transformers' logits of DEQ_DIR in OUT.json
  hf_reference.py tohf SRC BACK OUT.json  -> transformers' logits of BACK (a directory written by
      `stload convert --to-hf`) on SRC's ids, and the ids and pre-tokenizer pieces SRC's and BACK's
      tokenizers (both loaded with AutoTokenizer) give each of TOKENIZER_TEXTS, in OUT.json
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import llama_oracle  # noqa: E402

HIDDEN = 64
HEADS = 4
KV_HEADS = 2
LAYERS = 2
INTERMEDIATE = 128
CONTEXT = 128
ROPE_THETA = 50000.0  # not the default 10000, so a converter that drops it is caught
LOCAL_ROPE_THETA = 20000.0  # gemma3's local layers: not 10000 either
RMS_EPS = 1e-5
SEED = 7

# The token ids every architecture is run on: fixed, well inside the trained vocabulary (~400),
# 32 positions (enough that each of mixtral's, qwen3moe's and llama4's experts is routed to).
IDS_LEN = 32


def _common(vocab: int, bos: int, eos: int) -> dict:
    return dict(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=CONTEXT,
        rms_norm_eps=RMS_EPS,
        rope_theta=ROPE_THETA,
        tie_word_embeddings=False,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=None,
    )


def _config(arch: str, vocab: int, bos: int, eos: int):
    """The transformers config object of `arch` and the model class that builds it."""
    import transformers as t

    c = _common(vocab, bos, eos)
    if arch == "llama":
        return t.LlamaConfig(**c), t.LlamaForCausalLM
    if arch == "mistral":
        # sliding_window None: llama.cpp runs Mistral as llama, with full attention.
        # head_dim 32, not hidden/heads = 16 (as Mistral NeMo sets it): key_length is written.
        return t.MistralConfig(**c, sliding_window=None, head_dim=32), t.MistralForCausalLM
    if arch == "qwen2":
        return t.Qwen2Config(**c, use_sliding_window=False, sliding_window=None), t.Qwen2ForCausalLM
    if arch == "qwen3":
        # head_dim 32, not hidden/heads = 16, as every Qwen3 size sets it apart.
        return (
            t.Qwen3Config(**c, head_dim=32, attention_bias=False, use_sliding_window=False, sliding_window=None),
            t.Qwen3ForCausalLM,
        )
    if arch == "qwen3moe":
        return (
            t.Qwen3MoeConfig(
                **c,
                head_dim=32,
                attention_bias=False,
                use_sliding_window=False,
                sliding_window=None,
                num_experts=4,
                num_experts_per_tok=2,
                moe_intermediate_size=48,
                norm_topk_prob=True,  # llama.cpp's qwen3moe always renormalises (false is refused)
                decoder_sparse_step=1,
                mlp_only_layers=[],
            ),
            t.Qwen3MoeForCausalLM,
        )
    if arch == "gemma":
        c["tie_word_embeddings"] = True  # gemma's output is its token embedding
        return t.GemmaConfig(**c, head_dim=16, hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh"), t.GemmaForCausalLM
    if arch == "gemma2":
        c["tie_word_embeddings"] = True
        return (
            t.Gemma2Config(
                **c,
                head_dim=16,
                hidden_activation="gelu_pytorch_tanh",
                query_pre_attn_scalar=16,  # = head_dim: llama.cpp scales by 1/sqrt(head_dim)
                sliding_window=CONTEXT,  # longer than the sequence: every layer sees it all
                attn_logit_softcapping=50.0,
                final_logit_softcapping=30.0,
            ),
            t.Gemma2ForCausalLM,
        )
    if arch in ("gemma3", "gemma3mm"):
        c["tie_word_embeddings"] = True
        del c["rope_theta"]  # per layer kind, in rope_parameters
        text = dict(
            **c,
            head_dim=16,
            hidden_activation="gelu_pytorch_tanh",
            query_pre_attn_scalar=16,  # = head_dim: llama.cpp scales by 1/sqrt(head_dim) (but for 27B)
            sliding_window=CONTEXT,  # longer than the sequence: every layer sees it all
            # One local and one global layer, each with its own rope base (neither 10000): the
            # GGUF must say which layer is which, and both bases.
            layer_types=["sliding_attention", "full_attention"],
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": LOCAL_ROPE_THETA},
                "full_attention": {"rope_type": "default", "rope_theta": ROPE_THETA},
            },
        )
        if arch == "gemma3":
            return t.Gemma3TextConfig(**text), t.Gemma3ForCausalLM
        # The multimodal model with a tiny vision tower, which the text GGUF leaves out.
        vision = t.SiglipVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8
        )
        config = t.Gemma3Config(text_config=text, vision_config=vision.to_dict(), mm_tokens_per_image=4)
        config.tie_word_embeddings = True
        return config, t.Gemma3ForConditionalGeneration
    if arch == "olmo2":
        return t.Olmo2Config(**c), t.Olmo2ForCausalLM
    if arch == "granite":
        # Each multiplier apart from 1 and (attention) from 1/sqrt(head size), so a dropped or
        # swapped one shows in the logits.
        return (
            t.GraniteConfig(
                **c, embedding_multiplier=4.0, attention_multiplier=0.2, residual_multiplier=0.5, logits_scaling=2.0
            ),
            t.GraniteForCausalLM,
        )
    if arch == "stablelm":
        # A quarter of each head rotated, and q/k/v biases, as StableLM 2 1.6B has them.
        del c["rms_norm_eps"]
        del c["rope_theta"]
        return (
            t.StableLmConfig(
                **c,
                layer_norm_eps=RMS_EPS,
                use_qkv_bias=True,
                rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA, "partial_rotary_factor": 0.25},
            ),
            t.StableLmForCausalLM,
        )
    if arch == "command-r":
        # Tied embeddings (Cohere's output is its token embedding) and a logit scale apart from 1.
        c["tie_word_embeddings"] = True
        del c["rms_norm_eps"]
        return t.CohereConfig(**c, layer_norm_eps=RMS_EPS, logit_scale=0.5, use_qk_norm=False), t.CohereForCausalLM
    if arch == "phi3":
        # sliding_window None: llama.cpp's phi3 applies a window only when the GGUF names one.
        return (
            t.Phi3Config(**c, sliding_window=None, original_max_position_embeddings=CONTEXT, rope_scaling=None),
            t.Phi3ForCausalLM,
        )
    if arch == "phi4mini":
        # Phi-4-mini's shape: three quarters of each head rotated, embeddings tied.
        c["tie_word_embeddings"] = True
        return (
            t.Phi3Config(
                **c, sliding_window=None, original_max_position_embeddings=CONTEXT, rope_scaling=None,
                partial_rotary_factor=0.75,
            ),
            t.Phi3ForCausalLM,
        )
    if arch in ("llama4", "llama4mm"):
        # Four layers, so that the fourth runs without rope (llama.cpp fixes that to every fourth
        # layer), and MoE in every second one: dense layers 0 and 2, experts in 1 and 3. Top-1
        # routing with the shared expert beside it, as Llama 4 Scout routes; 3 experts, since
        # the 32 positions route to each of 3 in both MoE layers (not to one of 4).
        del c["rope_theta"]  # with the rope type, in rope_parameters
        text = dict(
            **{**c, "num_hidden_layers": 4, "intermediate_size": 48},
            intermediate_size_mlp=INTERMEDIATE,
            head_dim=16,  # Llama4TextConfig's default is 128
            num_local_experts=3,
            num_experts_per_tok=1,
            interleave_moe_layer_step=2,
            use_qk_norm=True,  # llama.cpp norms q/k unless there are 128 experts
            # Scout's llama3 rope scaling (low and high factors equal): with the 16-value heads
            # the two slowest rotations are scaled, so rope_freqs.weight is not all ones.
            rope_parameters={
                "rope_type": "llama3", "rope_theta": ROPE_THETA, "factor": 16.0,
                "low_freq_factor": 1.0, "high_freq_factor": 1.0, "original_max_position_embeddings": 8192,
            },
            # llama.cpp's fixed values (it reads none of them): the 32 positions lie in one chunk
            # and below the temperature floor, so chunked attention and temperature tuning leave
            # both sides' attention as it is.
            attention_chunk_size=8192,
            attn_temperature_tuning=True,
            floor_scale=8192,
            attn_scale=0.1,
        )
        if arch == "llama4":
            return t.Llama4TextConfig(**text), t.Llama4ForCausalLM
        # The multimodal model with a tiny vision model, which the text GGUF leaves out.
        vision = t.Llama4VisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28,
            patch_size=14, vision_output_dim=32, projector_input_dim=32, projector_output_dim=HIDDEN,
        )
        return t.Llama4Config(text_config=text, vision_config=vision.to_dict()), t.Llama4ForConditionalGeneration
    if arch == "deepseekv3":
        # MLA with a q LoRA, one dense layer then one of 4 routed experts (2 per token, in
        # 2 groups of which 1 is chosen) plus a shared expert, sigmoid gating with a score bias,
        # renormalised and scaled by 2.5. No rope scaling (yarn): transformers and llama.cpp
        # then both scale attention by 1/sqrt(qk head size) (see docs/ARCHITECTURES.md).
        # Sizes: the no-rope key and value heads are a whole 128 rows each, as DeepSeek-V3's
        # are, so the FP8 variant's 128x128 scale blocks fall on head bounds of kv_b_proj;
        # q_lora_rank 192, kv_lora_rank 96 and the 144-row kv_a_proj leave partial blocks.
        c.update(hidden_size=256, num_attention_heads=2, num_key_value_heads=2, intermediate_size=320)
        return (
            t.DeepseekV3Config(
                **c,
                q_lora_rank=192,
                kv_lora_rank=96,  # apart from the head sizes, so no two length keys agree
                qk_nope_head_dim=128,
                qk_rope_head_dim=48,
                v_head_dim=128,
                n_routed_experts=4,
                num_experts_per_tok=2,
                n_group=2,
                topk_group=1,
                n_shared_experts=1,
                moe_intermediate_size=160,
                first_k_dense_replace=1,
                routed_scaling_factor=2.5,
                norm_topk_prob=True,
                rope_interleave=True,
                # DeepSeek-V3's config.json says so; transformers gates with a sigmoid whatever
                # it says, llama.cpp's converter writes the gating only from this key (without
                # it llama.cpp gates deepseek2 with a softmax).
                scoring_func="sigmoid",
            ),
            t.DeepseekV3ForCausalLM,
        )
    if arch == "mixtral":
        return (
            t.MixtralConfig(**c, sliding_window=None, num_local_experts=4, num_experts_per_tok=2, router_jitter_noise=0.0),
            t.MixtralForCausalLM,
        )
    if arch in ("gpt-oss", "gpt-oss-mxfp4"):  # -mxfp4: the experts stored as MXFP4 (make)
        # One sliding-window layer then one global one (llama.cpp's gpt-oss fixes this
        # alternation), the window 8 shorter than the 32 positions so it matters; yarn rope
        # scaling as the released models have it; attention biases and sinks as they have them.
        del c["rope_theta"]
        return (
            t.GptOssConfig(
                **c,
                head_dim=16,
                num_local_experts=4,
                num_experts_per_tok=2,
                sliding_window=8,
                layer_types=["sliding_attention", "full_attention"],
                attention_bias=True,
                rope_parameters={
                    "rope_type": "yarn",
                    "rope_theta": ROPE_THETA,
                    "factor": 4.0,
                    "original_max_position_embeddings": 32,
                    "beta_fast": 32.0,
                    "beta_slow": 1.0,
                    # Released configs say false (no rounding of yarn's correction range), but
                    # llama.cpp always rounds it (ggml_rope_yarn_corr_dims): at these sizes the
                    # logits then move by 2.7, with either converter's file.
                    "truncate": True,
                },
            ),
            t.GptOssForCausalLM,
        )
    raise ValueError(f"no tiny config for {arch}")


def ids(vocab: int) -> list[int]:
    """IDS_LEN fixed token ids of trained tokens (below `vocab`), BOS first."""
    import random

    rng = random.Random(SEED)
    return [0] + [rng.randrange(2, vocab) for _ in range(IDS_LEN - 1)]


def make(arch: str, out: Path, overrides: dict | None = None) -> Path:
    """Builds the tiny `arch` model and writes it with its tokenizer to `out`; `overrides` sets
    config values (sizes, layers, experts: keep head_dim = hidden_size / heads in step)."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    tok = llama_oracle.train_tokenizer(SEED)
    tok.save(str(out / "tokenizer.json"))
    bos, eos = tok.token_to_id(llama_oracle.BOS), tok.token_to_id(llama_oracle.EOS)
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "bos_token": llama_oracle.BOS,
                "eos_token": llama_oracle.EOS,
                "model_max_length": CONTEXT,
                "tokenizer_class": "PreTrainedTokenizerFast",
            },
            indent=2,
        )
    )
    # The embedding padded past the tokenizer to a multiple of 64, as released models pad it
    # (and as transformers' tokenizer classes may add a token of their own past the trained ones).
    vocab = -(-(tok.get_vocab_size(with_added_tokens=True) + 1) // 64) * 64
    config, cls = _config(arch, vocab, bos, eos)
    config.update(overrides or {})
    config._attn_implementation = "eager"
    torch.manual_seed(SEED)
    model = cls(config).to(torch.float32)
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        params = list(model.named_parameters())
        if arch == "llama4mm":
            # The text model drawn first, so it is llama4's own model (whose ids route to every
            # expert); the vision model after it.
            params.sort(key=lambda np_: np_[0].startswith(("vision_model.", "multi_modal_projector.")))
        for name, p in params:
            if p.ndim == 1 and "norm" in name:
                # Norm weights near 1 (gemma stores w - 1: near 0), never all equal.
                base = 0.0 if arch.startswith("gemma") else 1.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))  # biases
            elif "embed_tokens" in name:
                p.copy_(0.125 * torch.randn(p.shape, generator=g))
            else:
                # Stacked experts (llama4's) multiply as x @ W: their fan-in is the middle axis.
                fan_in = p.shape[-2] if p.ndim == 3 else p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
        if arch == "gpt-oss-mxfp4":
            mxfp4 = _quantize_experts(model)
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                # The routing bias (a buffer, saved with the weights) apart from 0.
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
    model.save_pretrained(str(out), safe_serialization=True)
    if arch == "gpt-oss-mxfp4":
        _store_mxfp4(out, mxfp4)
    if arch == "deepseekv3":
        _add_mtp_layer(out, config, g)
    return out


def _to_mxfp4(rows):
    """`rows` [..., n] (float32 torch, n a multiple of 32) quantized by the `gguf` package's
    MXFP4 quantizer, in the Hugging Face layout: (blocks [..., n/32, 16] uint8, value 2i in the
    low nibble of byte i and 2i+1 in its high one; scales [..., n/32] uint8 E8M0) and the
    dequantized values [..., n]."""
    import gguf
    import numpy as np
    import torch

    a = rows.detach().numpy().astype(np.float32)
    q = gguf.quants.quantize(a, gguf.GGMLQuantizationType.MXFP4)  # ggml blocks: e, then 16 bytes
    q = q.reshape(*a.shape[:-1], a.shape[-1] // 32, 17)
    scales, ggml = q[..., 0], q[..., 1:]
    # ggml's byte j holds value j (low nibble) and j+16 (high): the codes in value order.
    codes = np.concatenate([ggml & 0x0F, ggml >> 4], axis=-1)
    blocks = (codes[..., 0::2] | (codes[..., 1::2] << 4)).astype(np.uint8)
    values = gguf.quants.dequantize(q.reshape(*a.shape[:-1], -1), gguf.GGMLQuantizationType.MXFP4)
    return torch.from_numpy(blocks), torch.from_numpy(scales.copy()), torch.from_numpy(values.reshape(a.shape))


def _quantize_experts(model) -> dict:
    """Quantizes every expert matrix of a gpt-oss model to MXFP4, sets the float parameters to
    the dequantized values (the model transformers then computes), and returns the blocks and
    scales tensors by checkpoint name, rows (out, in) as released checkpoints store them."""
    tensors = {}
    for name, p in model.named_parameters():
        if name.endswith("mlp.experts.gate_up_proj") or name.endswith("mlp.experts.down_proj"):
            # Stored (experts, in, out); quantized along `in` per output row.
            blocks, scales, values = _to_mxfp4(p.transpose(1, 2).contiguous())
            p.copy_(values.transpose(1, 2))
            tensors[f"{name}_blocks"], tensors[f"{name}_scales"] = blocks, scales
    return tensors


def _store_mxfp4(out: Path, mxfp4: dict) -> None:
    """Replaces the float expert matrices of the saved checkpoint by their MXFP4 blocks and
    scales, and declares the quantization in config.json as released gpt-oss checkpoints do."""
    from safetensors.torch import load_file, save_file

    path = out / "model.safetensors"
    tensors = {k: v for k, v in load_file(str(path)).items() if f"{k}_blocks" not in mxfp4}
    save_file({**tensors, **mxfp4}, str(path), metadata={"format": "pt"})
    config = json.loads((out / "config.json").read_text())
    config["quantization_config"] = {
        "quant_method": "mxfp4",
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))


def _add_mtp_layer(out: Path, config, g) -> None:
    """Appends a multi-token-prediction layer (index num_hidden_layers, as DeepSeek-V3's
    checkpoints hold one) beside the weights: transformers does not build it, llama.cpp does
    not run it, so a converter must leave it out (a random one changes nothing if it does)."""
    import torch
    from safetensors.torch import save_file

    n, h = config.num_hidden_layers, config.hidden_size
    p = f"model.layers.{n}."
    extra = {
        p + "eh_proj.weight": torch.randn(h, 2 * h, generator=g),
        p + "enorm.weight": torch.ones(h),
        p + "hnorm.weight": torch.ones(h),
        p + "input_layernorm.weight": torch.ones(h),
        p + "self_attn.q_a_proj.weight": torch.randn(config.q_lora_rank, h, generator=g),
    }
    save_file(extra, str(out / "model-mtp.safetensors"), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {}}
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        index["weight_map"] = {k: "model.safetensors" for k in f.keys()}
    index["weight_map"].update({k: "model-mtp.safetensors" for k in extra})
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))


FP8_BLOCK = 128


def make_fp8(src: Path, fp8: Path, dequantized: Path) -> None:
    """DeepSeek-V3's FP8 layout of the model in `src`: every linear weight of the layers
    (not the router, embeddings or output) as float8 E4M3 with one `weight_scale_inv` per
    128x128 block (partial blocks at the edges have their own), and config.json's
    quantization_config, in `fp8`; the same weights dequantised (E4M3 value x its block's
    scale, in float32) as a plain model in `dequantized`, which transformers runs."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    for d in (fp8, dequantized):
        d.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.suffix != ".safetensors" and f.name != "model.safetensors.index.json":
                shutil.copy(f, d / f.name)
    index = json.loads((src / "model.safetensors.index.json").read_text())
    quantized, plain, weight_map = {}, {}, {}
    for file in sorted(set(index["weight_map"].values())):
        for name, w in load_file(str(src / file)).items():
            wanted = file == "model.safetensors"  # the MTP layer stays as it is
            kept = name.endswith(("norm.weight", "embed_tokens.weight", "mlp.gate.weight")) or "lm_head" in name
            if not wanted or w.ndim != 2 or kept:
                quantized[name] = plain[name] = w
                weight_map[name] = file
                continue
            rows, cols = -(-w.shape[0] // FP8_BLOCK), -(-w.shape[1] // FP8_BLOCK)
            padded = torch.zeros(rows * FP8_BLOCK, cols * FP8_BLOCK)
            padded[: w.shape[0], : w.shape[1]] = w
            blocks = padded.view(rows, FP8_BLOCK, cols, FP8_BLOCK)
            scale = blocks.abs().amax(dim=(1, 3)) / 448.0  # E4M3's largest finite value
            full = scale.repeat_interleave(FP8_BLOCK, 0).repeat_interleave(FP8_BLOCK, 1)[: w.shape[0], : w.shape[1]]
            q = (w / full).to(torch.float8_e4m3fn)
            quantized[name], quantized[name + "_scale_inv"] = q, scale.float()
            plain[name] = q.float() * full
            weight_map[name] = weight_map[name + "_scale_inv"] = file
    by_file = {}
    for name, file in weight_map.items():
        by_file.setdefault(file, []).append(name)
    for d, tensors, index_map in ((fp8, quantized, weight_map), (dequantized, plain, {n: f for n, f in weight_map.items() if n in plain})):
        for file, names in by_file.items():
            save_file({n: tensors[n].contiguous() for n in names if n in tensors}, str(d / file), metadata={"format": "pt"})
        (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index_map}, indent=2))
    config = json.loads((src / "config.json").read_text())
    config["quantization_config"] = {
        "activation_scheme": "dynamic",
        "fmt": "e4m3",
        "quant_method": "fp8",
        "weight_block_size": [FP8_BLOCK, FP8_BLOCK],
    }
    (fp8 / "config.json").write_text(json.dumps(config, indent=2))


def logits(model_dir: Path, token_ids: list[int]):
    """transformers' float32 CPU logits [len(ids), vocab] of the model in `model_dir`, and for
    a mixture of experts the (layer, expert) pairs that no position routed to."""
    import torch
    import transformers as t

    torch.set_num_threads(2)
    config = json.loads((model_dir / "config.json").read_text())
    # An MXFP4 checkpoint is dequantized on load (transformers computes MXFP4 only on GPUs).
    quant = t.Mxfp4Config(dequantize=True) if "quantization_config" in config else None
    model = t.AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=torch.float32, attn_implementation="eager", quantization_config=quant
    )
    model.eval()
    config = model.config.get_text_config()  # a multimodal model's text part (llama4)
    experts = getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None)
    # DeepSeek-V3's router chooses by biased scores within chosen groups, not by the top
    # logits: its choice (the router's third output) is recorded as it is made.
    chosen_by_router = []
    for module in model.modules():
        if type(module).__name__ == "DeepseekV3TopkRouter":
            module.register_forward_hook(lambda _m, _i, out: chosen_by_router.append(out[2]))
    with torch.no_grad():
        out = model(torch.tensor([token_ids]), use_cache=False, **({"output_router_logits": True} if experts else {}))
    unrouted = []
    if chosen_by_router:
        layers = [i for i, layer in enumerate(model.model.layers) if hasattr(layer.mlp, "gate")]
        for layer, indices in zip(layers, chosen_by_router, strict=True):
            chosen = set(indices.flatten().tolist())
            unrouted += [f"layer {layer} expert {e}" for e in range(experts) if e not in chosen]
    elif experts:
        top = config.num_experts_per_tok
        for layer, r in enumerate(out.router_logits):
            chosen = set(r.reshape(-1, experts).topk(top, dim=-1).indices.flatten().tolist())
            unrouted += [f"layer {layer} expert {e}" for e in range(experts) if e not in chosen]
    return out.logits[0].double().numpy(), unrouted


# Texts the rebuilt tokenizer must split as the source's does: words, contractions, digit runs,
# runs of spaces and newlines, punctuation, accents, CJK and emoji (bytes without a merge), the
# special tokens' text, and nothing at all.
TOKENIZER_TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "don't I'll we've they're",
    "12345 3.14159 2025-01-31",
    "  two spaces,\n\nnew lines\ttab   end  ",
    "naïve café über",
    "漢字とかな 한국어",
    "emoji 🙂👍🏽!",
    f"{llama_oracle.BOS}text{llama_oracle.EOS} more",
    "",
]


def tohf(src: Path, back: Path, out: Path) -> None:
    import transformers as t

    trained = json.loads((src / "tokenizer.json").read_text())["model"]["vocab"]
    token_ids = ids(len(trained))
    values, _ = logits(back, token_ids)
    a, b = t.AutoTokenizer.from_pretrained(str(src)), t.AutoTokenizer.from_pretrained(str(back))
    # The pre-tokenizers' pieces compared too: a BPE trained on split text has no merge across a
    # split, so the ids alone would not tell a coarser split from the source's.
    pieces = [t.backend_tokenizer.pre_tokenizer.pre_tokenize_str for t in (a, b)]
    tokens = [
        {"text": s, "source": [a(s)["input_ids"], pieces[0](s)], "back": [b(s)["input_ids"], pieces[1](s)]}
        for s in TOKENIZER_TEXTS
    ]
    out.write_text(json.dumps({"ids": token_ids, "logits": values.tolist(), "tokens": tokens}))


def main() -> int:
    if sys.argv[1] == "tohf":
        tohf(*(Path(a) for a in sys.argv[2:5]))
        return 0
    if sys.argv[1] == "fp8":
        # hf_reference.py fp8 SRC FP8_DIR DEQUANTIZED_DIR OUT.json: SRC built by `make`.
        src, fp8, dequantized, out = (Path(a) for a in sys.argv[2:6])
        make_fp8(src, fp8, dequantized)
        trained = json.loads((src / "tokenizer.json").read_text())["model"]["vocab"]
        token_ids = ids(len(trained))
        values, unrouted = logits(dequantized, token_ids)
        out.write_text(json.dumps({"ids": token_ids, "logits": values.tolist(), "unrouted": unrouted}))
        return 0
    arch, model_dir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    make(arch, model_dir)
    trained = json.loads((model_dir / "tokenizer.json").read_text())["model"]["vocab"]
    token_ids = ids(len(trained))
    values, unrouted = logits(model_dir, token_ids)
    out.write_text(json.dumps({"ids": token_ids, "logits": values.tolist(), "unrouted": unrouted}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
