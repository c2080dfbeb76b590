//! stablelm: llama's names on LayerNorm blocks (weights and biases: `attn_norm.bias`,
//! `ffn_norm.bias`, `output_norm.bias`), optional q/k/v biases, and rotary embeddings on the
//! first `partial_rotary_factor` of each head. No Q/K repack: llama.cpp runs stablelm with
//! NEOX-style rope on Hugging Face's row order, as llama.cpp's converter writes it.

use super::registry::{no_adjust, no_computed, Arch};
use super::{keys, qwen2, Config};
use crate::error::Result;
use crate::kv::Metadata;

/// stablelm.
pub(crate) const ARCH: Arch = Arch {
    name: "stablelm",
    hf_names: &["StableLmForCausalLM"],
    gguf_name: "stablelm",
    pairs: &[qwen2::PAIRS],
    transform: qwen2::transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: no_adjust,
    left_out: None,
};

/// stablelm's GGUF metadata: the shared sizes, the LayerNorm epsilon (`layer_norm_eps`), the
/// rotary dimensions and `rope.freq_base` (which llama.cpp's converter leaves out, so its files
/// run with 10000). StableLM 2 12B's per-head q/k LayerNorms (`qk_layernorm`) are refused:
/// they are not converted yet.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "stablelm";
    let heads = keys::base(config, arch, kv)?;
    keys::derived_head_dim(config, &heads, arch)?;
    if config.optional_bool("qk_layernorm")? == Some(true) {
        return Err(config.inconsistent(
            "\"qk_layernorm\" is true: stablelm's per-head q/k LayerNorms are not supported",
        ));
    }
    keys::layer_norm_eps(config, arch, kv)?;
    kv.set(
        format!("{arch}.rope.dimension_count"),
        keys::rotary_dims(config, &heads)?,
    );
    keys::rope_base(config, arch, kv)?;
    keys::rope_scaling(config, arch, kv, false)
}
