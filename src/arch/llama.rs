//! llama: ollama's renames, and its Q/K repack: each head's rows go from
//! `[2, rows/heads/2]` order to `[rows/heads/2, 2]` (reshape, swap axes 1 and 2, reshape back).

use super::registry::{no_adjust, Arch};
use super::{check_computed, keys, ComputedTensor, Config, Tensors};
use crate::error::{Error, Result};
use crate::kv::Metadata;
use crate::shape::Shape;
use crate::source::item::Item;

/// llama (and Mistral, which llama.cpp's converter writes as llama).
pub(crate) const ARCH: Arch = Arch {
    name: "llama",
    hf_names: &["LlamaForCausalLM", "MistralForCausalLM"],
    gguf_name: "llama",
    pairs: &[PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed,
    adjust: no_adjust,
    left_out: None,
};

/// ollama's llama replacements, in its order.
#[rustfmt::skip]
pub const PAIRS: &[&str] = &[
    "lm_head", "output",
    "model.embed_tokens", "token_embd",
    "model.norm", "output_norm",
    "model.layers", "blk",
    "input_layernorm", "attn_norm",
    "self_attn.q_proj", "attn_q",
    "self_attn.k_proj", "attn_k",
    "self_attn.v_proj", "attn_v",
    "self_attn.o_proj", "attn_output",
    "mlp.gate_proj", "ffn_gate",
    "mlp.down_proj", "ffn_down",
    "mlp.up_proj", "ffn_up",
    "post_attention_layernorm", "ffn_norm",
];

/// Repacks every `attn_q.weight` (num_attention_heads) and `attn_k.weight`
/// (num_key_value_heads, else num_attention_heads).
pub fn transform(items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    repack_qk(items, config)
}

/// The Q/K repack, shared with the architectures built on llama.
pub fn repack_qk(mut items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    let (heads, kv_heads, head_dim) = config.attention()?;
    for item in &mut items {
        let h = if item.name.ends_with("attn_q.weight") {
            heads
        } else if item.name.ends_with("attn_k.weight") {
            kv_heads
        } else {
            continue;
        };
        let rows = item.shape.first().copied().unwrap_or(0);
        // Checked: config.json values are input; a wrapped product must not pass.
        let need = h.checked_mul(head_dim);
        let fits = need == Some(rows) && h.checked_mul(2).is_some_and(|p| rows % p == 0);
        if !fits {
            let need = need.map_or("more than 2^64".into(), |n| n.to_string());
            return Err(config.inconsistent(&format!(
                "tensor \"{}\" has {rows} rows, but {h} heads of size {head_dim} need {need} (and an even head size)",
                item.original(),
            )));
        }
        if item.source.len() == 0 {
            // No bytes to move, however many rows.
            continue;
        }
        let order = repack_order(rows, h);
        item.source = item
            .source
            .permute_rows(&item.shape, item.dtype, &order, item.original())?;
    }
    Ok(items)
}

/// For each output row, the input row it takes: output (head, j, k) in shape
/// `[heads, half, 2]` comes from input (head, k, j) in shape `[heads, 2, half]`.
pub fn repack_order(rows: u64, heads: u64) -> Vec<u64> {
    let half = rows / heads / 2;
    let mut order = Vec::with_capacity(rows as usize);
    for h in 0..heads {
        for j in 0..half {
            for k in 0..2 {
                order.push(h * 2 * half + k * half + j);
            }
        }
    }
    order
}

/// llama's GGUF metadata: the shared sizes, `rope.dimension_count` (the head size),
/// `rope.freq_base`, the RMS norm epsilon, key/value lengths when config.json sets `head_dim`,
/// and linear or yarn rope scaling (llama3 scaling is the computed `rope_freqs.weight`).
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    kv_for(config, "llama", kv).map(|_| ())
}

/// [`kv`] under another `general.architecture` prefix (mixtral writes llama's keys).
pub fn kv_for(config: &Config, arch: &str, kv: &mut Metadata) -> Result<keys::Heads> {
    let heads = keys::base(config, arch, kv)?;
    if heads.head_dim % 2 != 0 {
        return Err(config.inconsistent(&format!(
            "the head size {} is odd: rotary embeddings need an even one",
            heads.head_dim
        )));
    }
    kv.set(format!("{arch}.rope.dimension_count"), heads.head_dim);
    keys::rope_base(config, arch, kv)?;
    keys::rms_eps(config, arch, kv)?;
    if config.first_u32(&["head_dim"])?.is_some() {
        kv.set(format!("{arch}.attention.key_length"), heads.head_dim);
        kv.set(format!("{arch}.attention.value_length"), heads.head_dim);
    }
    keys::rope_scaling(config, arch, kv, true)?;
    Ok(heads)
}

/// `rope_freqs.weight` for llama3 rope scaling (`rope_scaling.rope_type == "llama3"`), none
/// otherwise: one factor per pair of head dimensions, as llama.cpp's converter and ollama
/// compute it (wavelengths shorter than `original / high_freq_factor` keep 1, longer than
/// `original / low_freq_factor` get `factor`, those between a smooth mix). The head size comes
/// from config.json, so it is checked against every `attn_q.weight` of `tensors` (heads ×
/// head size rows) before a value is computed.
pub fn computed(config: &Config, tensors: &Tensors) -> Result<Vec<ComputedTensor>> {
    match keys::rope_type(config)? {
        Some((kind, section)) if kind == "llama3" => {
            let (heads, _, head_dim) = config.attention()?;
            let rows = heads.checked_mul(head_dim).ok_or_else(|| {
                config.inconsistent(&format!(
                    "{heads} heads of size {head_dim} are more rows than 2^64"
                ))
            })?;
            let theta = config.rope_theta()?.unwrap_or(10000.0);
            let get = |key: &str, default: f64| -> Result<f64> {
                Ok(section.optional_f64(key)?.unwrap_or(default))
            };
            let factor = get("factor", 8.0)?;
            let low = get("low_freq_factor", 1.0)?;
            let high = get("high_freq_factor", 4.0)?;
            let original = get("original_max_position_embeddings", 8192.0)?;
            if factor <= 0.0 || low <= 0.0 || high < low || original <= 0.0 || theta <= 0.0 {
                return Err(section.inconsistent(
                    "rope_type",
                    &format!(
                        "is llama3 with factor {factor}, low_freq_factor {low}, high_freq_factor {high}, original_max_position_embeddings {original} and rope_theta {theta}: need all positive and high_freq_factor >= low_freq_factor (Llama 4 sets them equal)"
                    ),
                ));
            }
            // Every factor lies between 1 and `factor`: positive as f32 when `factor` is.
            keys::positive_f32_of(config, "rope_scaling.factor", factor)?;
            let name = "rope_freqs.weight";
            check_computed(
                config,
                tensors,
                name,
                head_dim.div_ceil(2),
                "attn_q.weight",
                Some(rows),
            )?;
            let values =
                llama3_factors(head_dim, theta, factor, low, high, original).ok_or_else(|| {
                    Error::OutOfMemory(format!(
                        "{name}: no memory for the {} rope factors of head size {head_dim}",
                        head_dim / 2
                    ))
                })?;
            Ok(vec![ComputedTensor {
                name: name.into(),
                shape: Shape::from_slice(&[values.len() as u64]),
                values,
            }])
        }
        _ => Ok(Vec::new()),
    }
}

/// The llama3 rope factors for a head of `dim` dimensions, computed in f64; `None` when the
/// memory for them cannot be had (allocated fallibly, so a C host is never aborted).
pub fn llama3_factors(
    dim: u64,
    theta: f64,
    factor: f64,
    low: f64,
    high: f64,
    original: f64,
) -> Option<Vec<f32>> {
    let (low_wavelen, high_wavelen) = (original / low, original / high);
    let mut out = Vec::new();
    out.try_reserve_exact(usize::try_from(dim.div_ceil(2)).ok()?)
        .ok()?;
    let values = (0..dim).step_by(2).map(|i| {
        let wavelen = 2.0 * std::f64::consts::PI * theta.powf(i as f64 / dim as f64);
        let f = if wavelen < high_wavelen {
            1.0
        } else if wavelen > low_wavelen {
            factor
        } else if high == low {
            // Equal factors (Llama 4) leave no band between the two: its one edge keeps 1.
            1.0
        } else {
            let smooth = (original / wavelen - low) / (high - low);
            1.0 / ((1.0 - smooth) / factor + smooth)
        };
        f as f32
    });
    out.extend(values);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_interleaves_the_two_halves_of_each_head() {
        // 2 heads of 4 rows: [0 1 | 2 3] [4 5 | 6 7] -> 0 2 1 3, 4 6 5 7
        assert_eq!(repack_order(8, 2), vec![0, 2, 1, 3, 4, 6, 5, 7]);
    }
}
