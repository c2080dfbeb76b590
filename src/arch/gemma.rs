//! gemma and gemma2: llama-style names without `lm_head` (the output layer is the token
//! embedding, tied), no Q/K repack (NEOX-style rope), and RMSNorm weights stored as
//! `weight - 1`: the GGUF gets `weight + 1`, a value fix-up at write time (the model served at
//! open keeps the stored values). gemma2 adds a norm after attention and one after the
//! feed-forward block, and logit soft-capping.

use super::{keys, llama, Config};
use crate::error::Result;
use crate::kv::Metadata;
use crate::source::item::Item;

/// ollama's gemma replacements, in its order: llama's without `lm_head` (tied embeddings).
pub const PAIRS: &[&str] = llama::PAIRS.split_at(2).1;

/// gemma2's replacements, applied before gemma's (for an identical `old` the first pair wins):
/// gemma2's `post_attention_layernorm` follows the attention (`post_attention_norm`, not gemma's
/// `ffn_norm`), its `pre_feedforward_layernorm` is the `ffn_norm`.
#[rustfmt::skip]
pub const EXTRA_PAIRS2: &[&str] = &[
    "post_attention_layernorm", "post_attention_norm",
    "pre_feedforward_layernorm", "ffn_norm",
    "post_feedforward_layernorm", "post_ffw_norm",
];

/// Drops a stored `lm_head.weight`: the embeddings are tied and llama.cpp refuses a tensor it
/// does not read.
pub fn transform(mut items: Vec<Item>, _config: &Config) -> Result<Vec<Item>> {
    items.retain(|i| i.name != "lm_head.weight");
    Ok(items)
}

/// Adds one to every value: gemma's RMSNorm computes `x * (1 + w)`, llama.cpp `x * w`.
pub fn add_one(values: &mut [f32]) {
    for v in values {
        *v += 1.0;
    }
}

/// The fix-up for a tensor (GGUF name): [`add_one`] for the RMSNorm weights (`*_norm.weight`).
pub fn adjust(name: &str) -> Option<fn(&mut [f32])> {
    name.ends_with("_norm.weight")
        .then_some(add_one as fn(&mut [f32]))
}

fn common(config: &Config, arch: &str, kv: &mut Metadata) -> Result<()> {
    let heads = keys::base(config, arch, kv)?;
    keys::rms_eps(config, arch, kv)?;
    kv.set(format!("{arch}.attention.key_length"), heads.head_dim);
    kv.set(format!("{arch}.attention.value_length"), heads.head_dim);
    keys::rope_base(config, arch, kv)
}

/// gemma's GGUF metadata: the shared sizes, RMS epsilon, key/value lengths (`head_dim`) and
/// `rope.freq_base`.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    common(config, "gemma", kv)
}

/// gemma2's GGUF metadata: gemma's, plus `attn_logit_softcapping`, `final_logit_softcapping`
/// and `attention.sliding_window` when config.json has them.
pub fn kv2(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "gemma2";
    common(config, arch, kv)?;
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
