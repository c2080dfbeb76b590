//! qwen2: llama's names (ollama's list, in its order); the q/k/v biases stay as they are
//! (`attn_q.bias`, ...), and there is no Q/K repack: llama.cpp runs qwen2 with NEOX-style rope,
//! which reads the rows in the order Hugging Face stores them.

use super::registry::{no_adjust, no_computed, Arch};
use super::{keys, Config};
use crate::error::Result;
use crate::kv::Metadata;
use crate::source::item::Item;

/// qwen2.
pub(crate) const ARCH: Arch = Arch {
    name: "qwen2",
    hf_names: &["Qwen2ForCausalLM"],
    gguf_name: "qwen2",
    pairs: &[PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: no_adjust,
    left_out: None,
};

/// ollama's qwen2 replacements, in its order.
#[rustfmt::skip]
pub const PAIRS: &[&str] = &[
    "lm_head", "output",
    "model.embed_tokens", "token_embd",
    "model.layers", "blk",
    "input_layernorm", "attn_norm",
    "self_attn.k_proj", "attn_k",
    "self_attn.v_proj", "attn_v",
    "self_attn.q_proj", "attn_q",
    "self_attn.o_proj", "attn_output",
    "mlp.down_proj", "ffn_down",
    "mlp.gate_proj", "ffn_gate",
    "mlp.up_proj", "ffn_up",
    "post_attention_layernorm", "ffn_norm",
    "model.norm", "output_norm",
];

/// No structural change: renames only.
pub fn transform(items: Vec<Item>, _config: &Config) -> Result<Vec<Item>> {
    Ok(items)
}

/// qwen2's GGUF metadata: the shared sizes, `rope.freq_base`, the RMS epsilon and linear or
/// yarn rope scaling.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "qwen2";
    keys::base(config, arch, kv)?;
    keys::rope_base(config, arch, kv)?;
    keys::rms_eps(config, arch, kv)?;
    keys::rope_scaling(config, arch, kv, false)
}
