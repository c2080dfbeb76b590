//! qwen3: qwen2's names plus a per-head RMS norm of the queries and keys (`attn_q_norm`,
//! `attn_k_norm`, one weight of the head size each), no q/k/v biases, and a head size that
//! config.json's `head_dim` may set apart from `hidden_size / num_attention_heads`. Like
//! qwen2, no Q/K repack: llama.cpp runs qwen3 with NEOX-style rope on Hugging Face's row order.

use super::registry::{no_adjust, no_computed, Arch};
use super::{keys, qwen2, Config};
use crate::error::Result;
use crate::kv::Metadata;
use crate::source::item::Item;

/// qwen3.
pub(crate) const ARCH: Arch = Arch {
    name: "qwen3",
    hf_names: &["Qwen3ForCausalLM"],
    gguf_name: "qwen3",
    pairs: &[EXTRA_PAIRS, qwen2::PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: no_adjust,
    left_out: None,
};

/// The q/k norms, before qwen2's pairs (`self_attn.q_norm` is not a prefix of any of them).
#[rustfmt::skip]
pub const EXTRA_PAIRS: &[&str] = &[
    "self_attn.q_norm", "attn_q_norm",
    "self_attn.k_norm", "attn_k_norm",
];

/// No structural change: renames only.
pub fn transform(items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    qwen2::transform(items, config)
}

/// qwen3's GGUF metadata: qwen2's keys, and the key and value head sizes when config.json
/// gives `head_dim` (as llama.cpp's converter writes them).
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    kv_for(config, "qwen3", kv)
}

/// [`kv`] under another `general.architecture` prefix (qwen3moe shares these keys).
pub fn kv_for(config: &Config, arch: &str, kv: &mut Metadata) -> Result<()> {
    keys::base(config, arch, kv)?;
    keys::rope_base(config, arch, kv)?;
    keys::rms_eps(config, arch, kv)?;
    if let Some(head_dim) = config.first_u32(&["head_dim"])? {
        kv.set(format!("{arch}.attention.key_length"), head_dim);
        kv.set(format!("{arch}.attention.value_length"), head_dim);
    }
    keys::rope_scaling(config, arch, kv, false)
}
