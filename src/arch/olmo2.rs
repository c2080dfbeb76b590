//! olmo2: llama's names without the pre-norms: each block normalises after attention
//! (`post_attention_norm`) and after the feed-forward block (`post_ffw_norm`), and RMS-normalises
//! the queries and keys over all heads at once (`attn_q_norm` of the width, `attn_k_norm` of the
//! key/value width). No Q/K repack: llama.cpp runs olmo2 with NEOX-style rope on Hugging Face's
//! row order, as llama.cpp's converter writes it.

use super::registry::{no_adjust, no_computed, Arch};
use super::{gemma2, keys, qwen2, qwen3, Config};
use crate::error::Result;
use crate::kv::Metadata;

/// olmo2.
pub(crate) const ARCH: Arch = Arch {
    name: "olmo2",
    hf_names: &["Olmo2ForCausalLM"],
    gguf_name: "olmo2",
    // gemma2's post-norm names (post_attention_layernorm follows the attention here too).
    pairs: &[gemma2::EXTRA_PAIRS, qwen3::EXTRA_PAIRS, qwen2::PAIRS],
    transform: qwen2::transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: no_adjust,
    left_out: None,
};

/// olmo2's GGUF metadata: the shared sizes, RMS epsilon, `rope.freq_base` and linear or yarn
/// scaling. llama.cpp takes the head size as `hidden_size / num_attention_heads`, so a
/// `head_dim` apart from it is refused.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "olmo2";
    let heads = keys::base(config, arch, kv)?;
    keys::derived_head_dim(config, &heads, arch)?;
    keys::rms_eps(config, arch, kv)?;
    keys::rope_base(config, arch, kv)?;
    keys::rope_scaling(config, arch, kv, false)
}
