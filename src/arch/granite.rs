//! granite: llama's names, Q/K repack and keys, plus IBM's four multipliers, which llama.cpp's
//! granite reads as `attention.scale` (replacing 1/sqrt(head size)), `embedding_scale`,
//! `residual_scale` and `logit_scale` (the logits are divided by it).

use super::registry::{no_adjust, Arch};
use super::{keys, llama, Config};
use crate::error::Result;
use crate::kv::Metadata;

/// granite.
pub(crate) const ARCH: Arch = Arch {
    name: "granite",
    hf_names: &["GraniteForCausalLM"],
    gguf_name: "granite",
    pairs: &[llama::PAIRS],
    transform: llama::transform,
    gguf_transform: None,
    kv,
    computed: llama::computed,
    adjust: no_adjust,
    left_out: None,
};

/// config.json's multipliers and the keys llama.cpp reads them from. Each is written, with
/// transformers' default 1.0 when config.json leaves it out (transformers saves only values
/// apart from the defaults; llama.cpp's defaults differ: 1/sqrt(head size) for attention).
const MULTIPLIERS: [(&str, &str); 4] = [
    ("attention_multiplier", "attention.scale"),
    ("embedding_multiplier", "embedding_scale"),
    ("residual_multiplier", "residual_scale"),
    ("logits_scaling", "logit_scale"),
];

/// granite's GGUF metadata: llama's keys and the multipliers. llama.cpp takes the head size as
/// `hidden_size / num_attention_heads`, so a `head_dim` apart from it is refused.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "granite";
    let heads = llama::kv_for(config, arch, kv)?;
    keys::derived_head_dim(config, &heads, arch)?;
    for (key, gguf) in MULTIPLIERS {
        let value = config.optional_f64(key)?.unwrap_or(1.0);
        kv.set(
            format!("{arch}.{gguf}"),
            keys::positive_f32_of(config, key, value)?,
        );
    }
    Ok(())
}
