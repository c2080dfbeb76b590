//! command-r (Cohere's Command R): llama's names without `lm_head` (the output is the token
//! embedding, tied), one LayerNorm without bias before attention and the feed-forward block
//! that run in parallel (no `ffn_norm`), per-head q/k LayerNorms in the 64-layer Command R+,
//! and logits multiplied by `logit_scale`. No Q/K repack: Cohere's rotary embedding pairs
//! neighbouring dimensions, which is llama.cpp's normal rope on Hugging Face's row order, as
//! llama.cpp's converter writes it.

use super::registry::{no_adjust, no_computed, Arch};
use super::{gemma, keys, qwen3, Config};
use crate::error::Result;
use crate::kv::Metadata;

/// command-r.
pub(crate) const ARCH: Arch = Arch {
    name: "command-r",
    hf_names: &["CohereForCausalLM"],
    gguf_name: "command-r",
    pairs: &[qwen3::EXTRA_PAIRS, gemma::PAIRS],
    transform: gemma::transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: no_adjust,
    left_out: None,
};

/// llama.cpp's command-r reads q/k norms from this many layers on (Command R+), and none below.
const QK_NORM_LAYERS: u32 = 64;

/// command-r's GGUF metadata: the shared sizes with the context length from
/// `model_max_length` where set (the length the model was trained on; its
/// `max_position_embeddings` says 8192), the LayerNorm epsilon, `rope.freq_base`,
/// `logit_scale` and no rope scaling. `use_qk_norm` must agree with what llama.cpp derives from
/// the layer count.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "command-r";
    let heads = keys::base(config, arch, kv)?;
    keys::derived_head_dim(config, &heads, arch)?;
    if let Some(n) = config.first_u32(&["model_max_length"])? {
        kv.set(format!("{arch}.context_length"), n);
    }
    let blocks = config.required_u32(&["num_hidden_layers"])?;
    let qk_norm = config.optional_bool("use_qk_norm")?.unwrap_or(false);
    if qk_norm != (blocks >= QK_NORM_LAYERS) {
        return Err(config.inconsistent(&format!(
            "\"use_qk_norm\" is {qk_norm} with {blocks} layers: llama.cpp's command-r reads q/k norms exactly when a model has {QK_NORM_LAYERS} layers or more"
        )));
    }
    keys::layer_norm_eps(config, arch, kv)?;
    keys::rope_base(config, arch, kv)?;
    if let Some((kind, section)) = keys::rope_type(config)? {
        if kind != "default" {
            return Err(section.inconsistent(
                "rope_type",
                &format!("is \"{kind}\": command-r has no rope scaling"),
            ));
        }
    }
    let scale = config.required_f64("logit_scale")?;
    kv.set(
        format!("{arch}.logit_scale"),
        keys::positive_f32_of(config, "logit_scale", scale)?,
    );
    Ok(())
}
