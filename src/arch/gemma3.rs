//! gemma3: gemma2's names plus qwen3's per-head q/k norms, gemma's `+1` on every RMSNorm weight
//! (the q/k norms included), and local layers (a sliding window, their own rope base) between
//! global ones. The text model of `Gemma3ForConditionalGeneration` converts as well (its
//! `language_model.` names, its values in `text_config`); the vision tower and projector are
//! left out (llama.cpp's converter writes them to a separate projector file).
//!
//! Which layers are local is written per layer (`attention.sliding_window_pattern`, from
//! `layer_types` or `sliding_window_pattern`), where llama.cpp's converter writes none and
//! llama.cpp then takes every sixth layer as global; the local rope base is
//! `rope.freq_base_swa` (llama.cpp's default is 10000).

use serde_json::Value;

use super::registry::{no_computed, Arch, LeftOut};
use super::{gemma, gemma2, keys, qwen3, Config};
use crate::error::{shown_json, Result};
use crate::kv::{Array, Metadata};
use crate::source::item::Item;

/// gemma3, and the text model of the multimodal gemma3.
pub(crate) const ARCH: Arch = Arch {
    name: "gemma3",
    hf_names: &["Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"],
    gguf_name: "gemma3",
    pairs: &[TEXT_MODEL_PAIRS, qwen3::EXTRA_PAIRS, gemma2::EXTRA_PAIRS, gemma::PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: gemma::adjust,
    left_out: Some(LeftOut {
        prefixes: &VISION_PREFIXES,
        what: "the vision tower and projector",
        instead: "this file holds the text model (llama.cpp's converter writes them to a projector file with --mmproj)",
    }),
};

/// The multimodal checkpoint's text model names (`language_model.model.*` as saved, and
/// `model.language_model.*` as transformers 5 names them in memory), before gemma's pairs.
#[rustfmt::skip]
pub const TEXT_MODEL_PAIRS: &[&str] = &[
    "language_model.model.embed_tokens", "token_embd",
    "language_model.model.layers", "blk",
    "language_model.model.norm", "output_norm",
    "language_model.lm_head", "lm_head",
    "model.language_model.embed_tokens", "token_embd",
    "model.language_model.layers", "blk",
    "model.language_model.norm", "output_norm",
];

/// The multimodal checkpoint's vision tower and projector, left out of the text model.
const VISION_PREFIXES: [&str; 4] = [
    "vision_tower.",
    "multi_modal_projector.",
    "model.vision_tower.",
    "model.multi_modal_projector.",
];

/// Drops the vision tower and projector, and a stored `lm_head.weight` (tied embeddings).
pub fn transform(mut items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    items.retain(|i| !VISION_PREFIXES.iter().any(|p| i.name.starts_with(p)));
    gemma::transform(items, config)
}

/// Whether each layer is local (sliding window): `layer_types` as transformers 5 saves it,
/// else every `sliding_window_pattern`-th layer global (as transformers computes it), else
/// `None`.
pub(crate) fn local_layers(config: &Config, blocks: u32) -> Result<Option<Vec<bool>>> {
    if let Some(types) = config.value("layer_types") {
        let Value::Array(types) = types else {
            return Err(config.inconsistent(&format!(
                "\"layer_types\" is {}, not a list",
                shown_json(types)
            )));
        };
        if types.len() != blocks as usize {
            return Err(config.inconsistent(&format!(
                "\"layer_types\" lists {} layers, \"num_hidden_layers\" is {blocks}",
                types.len()
            )));
        }
        let local = types
            .iter()
            .map(|t| match t.as_str() {
                Some("sliding_attention") => Ok(true),
                Some("full_attention") => Ok(false),
                _ => Err(config.inconsistent(&format!(
                    "\"layer_types\" holds {}, not \"sliding_attention\" or \"full_attention\"",
                    shown_json(t)
                ))),
            })
            .collect::<Result<Vec<bool>>>()?;
        return Ok(Some(local));
    }
    let pattern = config.first_u32(&["sliding_window_pattern", "_sliding_window_pattern"])?;
    Ok(pattern.map(|n| (0..blocks).map(|i| (i + 1) % n != 0).collect()))
}

/// gemma3's GGUF metadata: gemma's keys; the global layers' rope base and scaling
/// (`rope_parameters.full_attention`, else `rope_theta` and `rope_scaling`), the local layers'
/// rope base (`rope_parameters.sliding_attention`, else `rope_local_base_freq`), the sliding
/// window with the per-layer pattern, and `final_logit_softcapping`. A config that llama.cpp
/// would compute differently is refused: attention logit soft-capping (llama.cpp's gemma3 has
/// none) and a `query_pre_attn_scalar` other than the one llama.cpp derives.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "gemma3";
    let heads = keys::base(config, arch, kv)?;
    keys::rms_eps(config, arch, kv)?;
    kv.set(format!("{arch}.attention.key_length"), heads.head_dim);
    kv.set(format!("{arch}.attention.value_length"), heads.head_dim);
    if config.optional_f64("attn_logit_softcapping")?.is_some() {
        return Err(config.inconsistent(
            "\"attn_logit_softcapping\" is set, and llama.cpp's gemma3 does not soft-cap attention logits",
        ));
    }
    // llama.cpp scales queries by 1/sqrt(head_dim), or for 62 layers (Gemma 3 27B) by
    // 1/sqrt(hidden_size / num_attention_heads): every released size's query_pre_attn_scalar.
    let blocks = config.required_u32(&["num_hidden_layers"])?;
    let scalar = if blocks == 62 {
        heads.hidden / heads.heads
    } else {
        heads.head_dim
    };
    let want = config.required_f64("query_pre_attn_scalar")?;
    if want != f64::from(scalar) {
        return Err(config.inconsistent(&format!(
            "\"query_pre_attn_scalar\" is {want}, but llama.cpp's gemma3 scales queries by 1/sqrt({scalar})"
        )));
    }
    let parameters = config.object("rope_parameters")?;
    let global = match &parameters {
        Some(p) => p.object("full_attention")?,
        None => None,
    };
    match global {
        Some(section) => {
            let theta = section
                .optional_f64("rope_theta")?
                .ok_or_else(|| section.inconsistent("rope_theta", "is missing"))?;
            kv.set(
                format!("{arch}.rope.freq_base"),
                keys::positive_f32_of(config, "rope_parameters.full_attention.rope_theta", theta)?,
            );
            if let Some((kind, section)) = keys::rope_type_of(section)? {
                keys::rope_scaling_of(config, &kind, &section, arch, kv, false)?;
            }
        }
        None => {
            keys::rope_base(config, arch, kv)?;
            keys::rope_scaling(config, arch, kv, false)?;
        }
    }
    let local_theta = match parameters.as_ref().map(|p| p.object("sliding_attention")) {
        Some(section) => match section? {
            Some(s) => s.optional_f64("rope_theta")?,
            None => None,
        },
        None => config.optional_f64("rope_local_base_freq")?,
    };
    if let Some(theta) = local_theta {
        kv.set(
            format!("{arch}.rope.freq_base_swa"),
            keys::positive_f32_of(config, "sliding_attention.rope_theta", theta)?,
        );
    }
    if let Some(cap) = config.optional_f64("final_logit_softcapping")? {
        kv.set(
            format!("{arch}.final_logit_softcapping"),
            keys::positive_f32_of(config, "final_logit_softcapping", cap)?,
        );
    }
    let local = local_layers(config, blocks)?;
    if local.as_ref().is_none_or(|l| l.iter().any(|&b| b)) {
        let window = config.required_u32(&["sliding_window"])?;
        kv.set(format!("{arch}.attention.sliding_window"), window);
        if let Some(local) = local {
            kv.set(
                format!("{arch}.attention.sliding_window_pattern"),
                Array::Bool(local),
            );
        }
    }
    Ok(())
}
