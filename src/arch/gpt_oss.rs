//! gpt-oss: attention with biases and per-head sinks (`attn_sinks.weight`), a biased router
//! (`ffn_gate_inp`), and each layer's experts already stacked in one tensor per projection,
//! as llama.cpp's converter writes them.
//!
//! The fused `gate_up_proj` interleaves its outputs (gate = even columns, up = odd ones) and a
//! float checkpoint stores each expert's matrix as (in, out): both are undone with strided views
//! of the stored tensor (one copy, no arithmetic). A released checkpoint stores the expert
//! matrices as MXFP4 `*_blocks` (16 bytes of 32 FP4 values per block) and `*_scales` (one E8M0
//! byte per block), rows already (out, in): those are split the same way and listed as
//! `blk.N.ffn_{gate,up,down}_exps.blocks` and `.scales`, which the GGUF writer joins into one
//! MXFP4 tensor `.weight` without dequantizing.
//!
//! Which layers use the sliding window is written per layer from `layer_types` (llama.cpp
//! otherwise takes every other layer, the first one local). llama.cpp fixes the SwiGLU's
//! `swiglu_alpha` 1.702 and `swiglu_limit` 7.0, so a config.json with others is refused.

use super::registry::{no_adjust, no_computed, Arch};
use super::{gemma3, keys, Config};
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::kv::{Array, Metadata};
use crate::shape::Shape;
use crate::source::item::Item;
use crate::source::Source;
use crate::torch::TorchTensor;

/// gpt-oss.
pub(crate) const ARCH: Arch = Arch {
    name: "gpt-oss",
    hf_names: &["GptOssForCausalLM"],
    gguf_name: "gpt-oss",
    pairs: &[PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: no_adjust,
    left_out: None,
};

/// llama.cpp's converter's names; the fused expert tensors get a `ffn_gate_up_exps` name that
/// the transform splits. Longer names first: the first pair that matches at a position wins.
#[rustfmt::skip]
pub const PAIRS: &[&str] = &[
    "lm_head", "output",
    "model.embed_tokens", "token_embd",
    "model.layers", "blk",
    "input_layernorm", "attn_norm",
    "post_attention_layernorm", "post_attention_norm",
    "self_attn.q_proj", "attn_q",
    "self_attn.k_proj", "attn_k",
    "self_attn.v_proj", "attn_v",
    "self_attn.o_proj", "attn_output",
    "self_attn.sinks", "attn_sinks.weight",
    "mlp.router", "ffn_gate_inp",
    "mlp.experts.gate_up_proj_bias", "ffn_gate_up_exps.bias",
    "mlp.experts.gate_up_proj_blocks", "ffn_gate_up_exps.blocks",
    "mlp.experts.gate_up_proj_scales", "ffn_gate_up_exps.scales",
    "mlp.experts.gate_up_proj", "ffn_gate_up_exps.weight",
    "mlp.experts.down_proj_bias", "ffn_down_exps.bias",
    "mlp.experts.down_proj_blocks", "ffn_down_exps.blocks",
    "mlp.experts.down_proj_scales", "ffn_down_exps.scales",
    "mlp.experts.down_proj", "ffn_down_exps.weight",
    "model.norm", "output_norm",
];

const GATE_UP: &str = ".ffn_gate_up_exps.";
const DOWN_WEIGHT: &str = ".ffn_down_exps.weight";

/// Splits the fused gate/up tensors (even outputs gate, odd up) and turns the float expert
/// matrices from (in, out) to (out, in).
pub fn transform(items: Vec<Item>, _config: &Config) -> Result<Vec<Item>> {
    let mut out = Vec::with_capacity(items.len() + 8);
    for item in items {
        if let Some((prefix, kind)) = item.name.split_once(GATE_UP) {
            let (gate, up) = (
                format!("{prefix}.ffn_gate_exps.{kind}"),
                format!("{prefix}.ffn_up_exps.{kind}"),
            );
            for (name, odd) in [(gate, false), (up, true)] {
                out.push(half(&item, name, kind, odd)?);
            }
        } else if item.name.ends_with(DOWN_WEIGHT) {
            let [e, f, h] = dims::<3>(&item, "experts x in x out")?;
            out.push(view(
                &item,
                item.name.clone(),
                &[e, h, f],
                &[f * h, 1, h],
                0,
            )?);
        } else {
            out.push(item);
        }
    }
    Ok(out)
}

/// The gate (even) or up (odd) half of a fused tensor of `kind` (`weight`, `bias`, `blocks`,
/// `scales`), as a strided view of it named `name`.
fn half(item: &Item, name: String, kind: &str, odd: bool) -> Result<Item> {
    let o = u64::from(odd);
    match kind {
        // (experts, hidden, 2 ff) stored (in, out): (experts, ff, hidden), every other column.
        "weight" => {
            let [e, h, f2] = dims::<3>(item, "experts x in x 2*ff")?;
            let f = even(item, f2)?;
            view(item, name, &[e, f, h], &[h * f2, 2, f2], o)
        }
        "bias" => {
            let [e, f2] = dims::<2>(item, "experts x 2*ff")?;
            let f = even(item, f2)?;
            view(item, name, &[e, f], &[f2, 2], o)
        }
        // (experts, 2 ff, blocks, 16 bytes), rows already (out, in): every other row.
        "blocks" => {
            let [e, f2, b, n] = dims::<4>(item, "experts x 2*ff x blocks x 16")?;
            if n != 16 || item.dtype != Dtype::U8 {
                return Err(bad(item, "U8 MXFP4 blocks of 16 bytes"));
            }
            let f = even(item, f2)?;
            view(
                item,
                name,
                &[e, f, b, n],
                &[f2 * b * n, 2 * b * n, n, 1],
                o * b * n,
            )
        }
        "scales" => {
            let [e, f2, b] = dims::<3>(item, "experts x 2*ff x blocks")?;
            if item.dtype != Dtype::U8 {
                return Err(bad(item, "U8 E8M0 scales"));
            }
            let f = even(item, f2)?;
            view(item, name, &[e, f, b], &[f2 * b, 2 * b, 1], o * b)
        }
        _ => Err(bad(
            item,
            "a gate_up_proj weight, bias, blocks or scales tensor",
        )),
    }
}

/// The shape of `item`, which must have `N` dimensions (described by `what`).
fn dims<const N: usize>(item: &Item, what: &str) -> Result<[u64; N]> {
    <[u64; N]>::try_from(&item.shape[..]).map_err(|_| bad(item, what))
}

/// Half of `n`, which must be even (the fused gate and up outputs).
fn even(item: &Item, n: u64) -> Result<u64> {
    if n.is_multiple_of(2) {
        Ok(n / 2)
    } else {
        Err(bad(item, "an even count of fused gate and up outputs"))
    }
}

fn bad(item: &Item, what: &str) -> Error {
    Error::InvalidArgument(format!(
        "tensor \"{}\" is {} {:?}: gpt-oss expects {what}",
        item.original(),
        item.dtype,
        item.shape
    ))
}

/// A strided view (element strides, first element `offset`) of the dense tensor `item`.
fn view(item: &Item, name: String, shape: &[u64], strides: &[u64], offset: u64) -> Result<Item> {
    let Source::Contiguous(seg) = item.source else {
        return Err(Error::Unsupported(format!(
            "tensor \"{}\": gpt-oss splits its expert tensors from a dense tensor, and this one \
             is stored as a strided view",
            item.original()
        )));
    };
    let elem = item
        .dtype
        .byte_size()
        .ok_or_else(|| bad(item, "whole-byte elements"))? as u64;
    // Every index of the view lies inside the stored tensor: the views above pick rows or
    // columns of its own shape.
    let view = TorchTensor {
        name: item.original().to_string(),
        dtype: item.dtype,
        shape: shape.to_vec(),
        strides: strides.to_vec(),
        data_offset: seg.offset + offset * elem,
        storage_start: seg.offset,
        storage_len: seg.len,
        contiguous: crate::torch::is_contiguous(shape, strides),
    };
    Ok(Item {
        original: Some(item.original().to_string()),
        name,
        dtype: item.dtype,
        shape: Shape::from_slice(shape),
        source: Source::view(seg.file, view),
    })
}

/// gpt-oss's GGUF metadata, as llama.cpp's converter writes it: the shared sizes, rope base and
/// yarn scaling, RMS epsilon, head size, experts (`num_local_experts`, `num_experts_per_tok`,
/// each `intermediate_size` wide) and the sliding window, plus the per-layer window pattern
/// from `layer_types`.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "gpt-oss";
    let heads = keys::base(config, arch, kv)?;
    keys::rope_base(config, arch, kv)?;
    keys::rms_eps(config, arch, kv)?;
    keys::rope_scaling(config, arch, kv, false)?;
    kv.set(format!("{arch}.attention.key_length"), heads.head_dim);
    kv.set(format!("{arch}.attention.value_length"), heads.head_dim);
    let experts = config.required_u32(&["num_local_experts"])?;
    let used = config.required_u32(&["num_experts_per_tok", "experts_per_token"])?;
    if used > experts {
        return Err(config.inconsistent(&format!(
            "\"num_experts_per_tok\" {used} is more than \"num_local_experts\" {experts}"
        )));
    }
    kv.set(format!("{arch}.expert_count"), experts);
    kv.set(format!("{arch}.expert_used_count"), used);
    let ffn = config.required_u32(&["intermediate_size"])?;
    kv.set(format!("{arch}.expert_feed_forward_length"), ffn);
    // llama.cpp's SwiGLU of gpt-oss has these constants built in.
    for (key, fixed) in [("swiglu_alpha", 1.702), ("swiglu_limit", 7.0)] {
        if let Some(x) = config.optional_f64(key)? {
            if x != fixed {
                return Err(config.inconsistent(&format!(
                    "\"{key}\" is {x}, and llama.cpp's gpt-oss computes with {fixed}"
                )));
            }
        }
    }
    let window = config.required_u32(&["sliding_window"])?;
    kv.set(format!("{arch}.attention.sliding_window"), window);
    let blocks = config.required_u32(&["num_hidden_layers"])?;
    if let Some(local) = gemma3::local_layers(config, blocks)? {
        kv.set(
            format!("{arch}.attention.sliding_window_pattern"),
            Array::Bool(local),
        );
    }
    Ok(())
}
