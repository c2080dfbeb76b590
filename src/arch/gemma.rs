//! gemma: llama-style names without `lm_head` (the output layer is the token embedding,
//! tied), no Q/K repack (NEOX-style rope), and RMSNorm weights stored as `weight - 1`: the GGUF
//! gets `weight + 1`, a value fix-up at write time (the model served at open keeps the stored
//! values).

use super::registry::{no_computed, Arch};
use super::{keys, llama, Config};
use crate::error::Result;
use crate::kv::Metadata;
use crate::source::item::Item;

/// gemma.
pub(crate) const ARCH: Arch = Arch {
    name: "gemma",
    hf_names: &["GemmaForCausalLM"],
    gguf_name: "gemma",
    pairs: &[PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust,
    left_out: None,
};

/// ollama's gemma replacements, in its order: llama's without `lm_head` (tied embeddings).
pub const PAIRS: &[&str] = llama::PAIRS.split_at(2).1;

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

/// The keys gemma and gemma2 share.
pub fn common(config: &Config, arch: &str, kv: &mut Metadata) -> Result<()> {
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
