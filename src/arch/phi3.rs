//! phi3: llama-style renames, with the fused `qkv_proj` split into q, k, v by head counts and
//! the fused `gate_up_proj` split into its gate and up halves (all zero-copy row ranges).

use super::registry::{no_adjust, Arch};
use super::{check_computed, keys, ComputedTensor, Config, Tensors};
use crate::error::{shown, shown_json, Result};
use crate::kv::Metadata;
use crate::shape::Shape;
use crate::source::item::{split, Item};

/// phi3: its fused tensors split when served, kept in a GGUF file.
pub(crate) const ARCH: Arch = Arch {
    name: "phi3",
    hf_names: &["Phi3ForCausalLM"],
    gguf_name: "phi3",
    pairs: &[PAIRS, super::llama::PAIRS],
    transform,
    gguf_transform: Some(gguf_transform),
    kv,
    computed,
    adjust: no_adjust,
    left_out: None,
};

/// Renames applied before llama's (which cover the rest of phi3's names); the fused tensors get
/// temporary names that the splits replace.
#[rustfmt::skip]
pub const PAIRS: &[&str] = &[
    "self_attn.qkv_proj", "attn_qkv",
    "mlp.gate_up_proj", "ffn_gate_up",
];

/// The names the GGUF layout gives a tensor apart from the rename pairs (old part, new part):
/// llama.cpp's phi3 reads the fused gate and up projection as `ffn_up`.
pub const GGUF_RENAMES: &[(&str, &str)] = &[("ffn_gate_up.", "ffn_up.")];

/// Splits every `attn_qkv.*` into `attn_q/k/v.*` and every `ffn_gate_up.*` into `ffn_gate/up.*`.
pub fn transform(mut items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    let (heads, kv_heads, head_dim) = config.attention()?;
    let fused: Vec<(String, u64)> = items
        .iter()
        .filter(|i| i.name.contains("attn_qkv.") || i.name.contains("ffn_gate_up."))
        .map(|i| (i.name.clone(), i.shape.first().copied().unwrap_or(0)))
        .collect();
    for (name, rows) in fused {
        let parts = if name.contains("attn_qkv.") {
            // Checked: config.json values are input; a wrapped sum must not pass.
            let q = heads.checked_mul(head_dim);
            let kv = kv_heads.checked_mul(head_dim);
            let total = q
                .zip(kv)
                .and_then(|(q, kv)| q.checked_add(kv.checked_mul(2)?));
            let (Some(q), Some(kv), true) = (q, kv, total == Some(rows)) else {
                return Err(config.inconsistent(&format!(
                    "tensor \"{name}\" has {rows} rows but q + k + v heads need {heads} × {head_dim} + 2 × {kv_heads} × {head_dim}"
                )));
            };
            vec![
                (name.replace("attn_qkv.", "attn_q."), q),
                (name.replace("attn_qkv.", "attn_k."), kv),
                (name.replace("attn_qkv.", "attn_v."), kv),
            ]
        } else {
            if rows % 2 != 0 {
                return Err(config.inconsistent(&format!(
                    "tensor \"{name}\" has {rows} rows: not two equal halves"
                )));
            }
            vec![
                (name.replace("ffn_gate_up.", "ffn_gate."), rows / 2),
                (name.replace("ffn_gate_up.", "ffn_up."), rows / 2),
            ]
        };
        items = split(items, &name, &parts)?;
    }
    Ok(items)
}

/// The GGUF layout: llama.cpp's phi3 reads the fused tensors, so `attn_qkv` stays whole and
/// `ffn_gate_up` becomes `ffn_up` (gate rows first, as stored); both are checked against the
/// head counts.
pub fn gguf_transform(mut items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    let (heads, kv_heads, head_dim) = config.attention()?;
    let q = heads.checked_mul(head_dim);
    let kv = kv_heads
        .checked_mul(head_dim)
        .and_then(|k| k.checked_mul(2));
    let qkv = q.zip(kv).and_then(|(q, kv)| q.checked_add(kv));
    for item in &mut items {
        let rows = item.shape.first().copied().unwrap_or(0);
        if item.name.contains("attn_qkv.") && item.name.ends_with(".weight") && Some(rows) != qkv {
            return Err(config.inconsistent(&format!(
                "tensor \"{}\" has {rows} rows but {heads} query and 2 x {kv_heads} key/value heads of size {head_dim} need {qkv:?}",
                item.original()
            )));
        }
        if item.name.contains("ffn_gate_up.") {
            if rows % 2 != 0 {
                return Err(config.inconsistent(&format!(
                    "tensor \"{}\" has {rows} rows: not two equal halves",
                    item.original()
                )));
            }
            let name = item.name.replace(GGUF_RENAMES[0].0, GGUF_RENAMES[0].1);
            item.rename(name);
        }
    }
    Ok(items)
}

/// `original_max_position_embeddings`, at the top level or in `rope_scaling`.
fn original_context(config: &Config) -> Result<Option<u32>> {
    if let Some(n) = config.first_u32(&["original_max_position_embeddings"])? {
        return Ok(Some(n));
    }
    match config.rope_scaling()? {
        Some(s) => s.optional_u32("original_max_position_embeddings"),
        None => Ok(None),
    }
}

/// phi3's GGUF metadata: the shared sizes, RMS epsilon, rotary dimensions and base, the
/// original context length, the sliding window (0 when unset, as llama.cpp's converter writes
/// it) and, for longrope/su and yarn scaling, `rope.scaling.attn_factor`.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "phi3";
    let heads = keys::base(config, arch, kv)?;
    keys::rms_eps(config, arch, kv)?;
    kv.set(
        format!("{arch}.rope.dimension_count"),
        keys::rotary_dims(config, &heads)?,
    );
    keys::rope_base(config, arch, kv)?;
    let original = original_context(config)?;
    if let Some(n) = original {
        kv.set(format!("{arch}.rope.scaling.original_context_length"), n);
    }
    let window = match config.value("sliding_window") {
        None => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                config.inconsistent(&format!(
                    "\"sliding_window\" is {}, not a 32-bit count",
                    shown_json(v)
                ))
            })?,
    };
    kv.set(format!("{arch}.attention.sliding_window"), window);
    if let Some((kind, section)) = keys::rope_type(config)? {
        let longrope = matches!(kind.as_str(), "su" | "longrope");
        if !longrope && kind != "yarn" && kind != "default" {
            return Err(section.inconsistent(
                "type",
                &format!(
                    "is \"{}\": phi3 supports longrope, su and yarn",
                    shown(&kind)
                ),
            ));
        }
        if kind != "default" {
            let original = original.ok_or_else(|| {
                config.inconsistent("\"original_max_position_embeddings\" is missing")
            })?;
            let context = config.required_u32(&["max_position_embeddings", "n_positions"])?;
            let scale = f64::from(context) / f64::from(original);
            let factor = match (scale > 1.0, longrope) {
                (false, _) => 1.0,
                (true, true) => (1.0 + scale.ln() / f64::from(original).ln()).sqrt(),
                (true, false) => 0.1 * scale.ln() + 1.0,
            };
            kv.set(format!("{arch}.rope.scaling.attn_factor"), factor as f32);
        }
    }
    Ok(())
}

/// `rope_factors_long.weight` and `rope_factors_short.weight` from `rope_scaling.long_factor`
/// and `short_factor` when config.json has them (each one factor per pair of rotary
/// dimensions), checked against every `attn_qkv.weight` of `tensors` first.
pub fn computed(config: &Config, tensors: &Tensors) -> Result<Vec<ComputedTensor>> {
    let Some(section) = config.rope_scaling()? else {
        return Ok(Vec::new());
    };
    let long = section.optional_f64s("long_factor")?;
    let short = section.optional_f64s("short_factor")?;
    let (long, short) = match (long, short) {
        (None, None) => return Ok(Vec::new()),
        (Some(l), Some(s)) => (l, s),
        (Some(_), None) => return Err(section.inconsistent("short_factor", "is missing")),
        (None, Some(_)) => return Err(section.inconsistent("long_factor", "is missing")),
    };
    let heads = keys::base(config, "phi3", &mut Metadata::new())?;
    let half = keys::rotary_dims(config, &heads)? / 2;
    let (q, kv, head_dim) = config.attention()?;
    let rows = kv
        .checked_mul(2)
        .and_then(|kv| kv.checked_add(q))
        .and_then(|n| n.checked_mul(head_dim))
        .ok_or_else(|| config.inconsistent("the head counts and size need more rows than 2^64"))?;
    let mut out = Vec::new();
    for (key, values, name) in [
        ("long_factor", long, "rope_factors_long.weight"),
        ("short_factor", short, "rope_factors_short.weight"),
    ] {
        if values.len() != half as usize {
            return Err(section.inconsistent(
                key,
                &format!(
                    "has {} values, but {half} pairs of rotary dimensions need {half}",
                    values.len()
                ),
            ));
        }
        check_computed(
            config,
            tensors,
            name,
            u64::from(half),
            "attn_qkv.weight",
            Some(rows),
        )?;
        // Checked as stored: a factor that f32 rounds to 0 or infinity is an error.
        let values = values
            .iter()
            .map(|&v| keys::positive_f32_of(config, &format!("rope_scaling.{key}"), v))
            .collect::<Result<Vec<f32>>>()?;
        out.push(ComputedTensor {
            name: name.into(),
            shape: Shape::from_slice(&[u64::from(half)]),
            values,
        });
    }
    Ok(out)
}
