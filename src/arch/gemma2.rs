//! gemma2: gemma's names, fix-up and keys, plus a norm after attention and one after the
//! feed-forward block, logit soft-capping and a sliding window.

use super::registry::{no_computed, Arch};
use super::{gemma, keys, Config};
use crate::error::Result;
use crate::kv::Metadata;

/// gemma2.
pub(crate) const ARCH: Arch = Arch {
    name: "gemma2",
    hf_names: &["Gemma2ForCausalLM"],
    gguf_name: "gemma2",
    pairs: &[EXTRA_PAIRS, gemma::PAIRS],
    transform: gemma::transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: gemma::adjust,
    left_out: None,
};

/// gemma2's replacements, applied before gemma's (for an identical `old` the first pair wins):
/// gemma2's `post_attention_layernorm` follows the attention (`post_attention_norm`, not gemma's
/// `ffn_norm`), its `pre_feedforward_layernorm` is the `ffn_norm`.
#[rustfmt::skip]
pub const EXTRA_PAIRS: &[&str] = &[
    "post_attention_layernorm", "post_attention_norm",
    "pre_feedforward_layernorm", "ffn_norm",
    "post_feedforward_layernorm", "post_ffw_norm",
];

/// gemma2's GGUF metadata: gemma's, plus `attn_logit_softcapping`, `final_logit_softcapping`
/// and `attention.sliding_window` when config.json has them.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "gemma2";
    gemma::common(config, arch, kv)?;
    for key in ["attn_logit_softcapping", "final_logit_softcapping"] {
        if let Some(x) = config.optional_f64(key)? {
            // llama.cpp divides by the cap.
            kv.set(
                format!("{arch}.{key}"),
                keys::positive_f32_of(config, key, x)?,
            );
        }
    }
    if let Some(window) = config.first_u32(&["sliding_window"])? {
        kv.set(format!("{arch}.attention.sliding_window"), window);
    }
    Ok(())
}
