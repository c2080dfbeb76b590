//! bert: ollama's names (`token_embd`, `token_types`, `position_embd`, `token_embd_norm`,
//! `blk.N.attn_q/k/v/output`, `attn_output_norm`, `ffn_up`, `ffn_down`, `layer_output_norm`);
//! a `bert.` prefix (checkpoints saved from a task model) is removed, and the tensors an
//! embedding model does not use (`embeddings.position_ids`, the pooler, pre-training heads)
//! are dropped.

use serde_json::Value;

use super::registry::{no_adjust, no_computed, Arch};
use super::{keys, Config};
use crate::error::{Error, Result};
use crate::kv::Metadata;
use crate::side_files::{self, SideFiles};
use crate::source::item::Item;

/// bert (an encoder: no causal attention, pooling from the sentence-transformers files).
pub(crate) const ARCH: Arch = Arch {
    name: "bert",
    hf_names: &["BertModel"],
    gguf_name: "bert",
    pairs: &[PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: no_adjust,
    left_out: None,
};

/// ollama's bert replacements, in its order.
#[rustfmt::skip]
pub const PAIRS: &[&str] = &[
    "encoder.layer", "blk",
    "encoder.layers", "blk",
    "embeddings.word_embeddings", "token_embd",
    "embeddings.token_type_embeddings", "token_types",
    "embeddings.LayerNorm", "token_embd_norm",
    "embeddings.position_embeddings", "position_embd",
    "attention.self.query", "attn_q",
    "attention.self.key", "attn_k",
    "attention.self.value", "attn_v",
    "attention.output.dense", "attn_output",
    "attention.output.LayerNorm", "attn_output_norm",
    "intermediate.dense", "ffn_up",
    "output.dense", "ffn_down",
    "output.LayerNorm", "layer_output_norm",
];

/// Prefixes (after `bert.` is removed) of tensors left out, besides `embeddings.position_ids`.
const DROPPED_PREFIXES: [&str; 3] = ["pooler.", "cls.predictions.", "cls.seq_relationship."];

/// Removes a leading `bert.`, renames TensorFlow-style `gamma`/`beta` norms to
/// `weight`/`bias`, and drops position ids, the pooler and pre-training heads.
pub fn transform(mut items: Vec<Item>, _config: &Config) -> Result<Vec<Item>> {
    for item in &mut items {
        let mut name = item
            .name
            .strip_prefix("bert.")
            .unwrap_or(&item.name)
            .to_string();
        if let Some(stem) = name.strip_suffix(".gamma") {
            name = format!("{stem}.weight");
        } else if let Some(stem) = name.strip_suffix(".beta") {
            name = format!("{stem}.bias");
        }
        item.rename(name);
    }
    items.retain(|i| {
        i.name != "embeddings.position_ids"
            && !DROPPED_PREFIXES.iter().any(|p| i.name.starts_with(p))
    });
    Ok(items)
}

/// bert's GGUF metadata: the shared sizes, `attention.layer_norm_epsilon`,
/// `attention.causal` = false, `pooling_type` from the sentence-transformers files, and
/// `tokenizer.ggml.token_type_count` (`type_vocab_size`, 2 when unset) that llama.cpp needs to
/// read `token_types.weight`.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "bert";
    keys::base(config, arch, kv)?;
    let (key, eps) = match config.optional_f64("layer_norm_eps")? {
        Some(e) => ("layer_norm_eps", e),
        None => (
            "layer_norm_epsilon",
            config.required_f64("layer_norm_epsilon")?,
        ),
    };
    kv.set(
        format!("{arch}.attention.layer_norm_epsilon"),
        keys::positive_f32_of(config, key, eps)?,
    );
    kv.set(format!("{arch}.attention.causal"), false);
    kv.set(
        format!("{arch}.pooling_type"),
        pooling_type(config.side_files())?,
    );
    let types = config.first_u32(&["type_vocab_size"])?.unwrap_or(2);
    kv.set("tokenizer.ggml.token_type_count", types);
    Ok(())
}

/// llama.cpp's pooling type numbers (`PoolingType` of the gguf package).
const POOLING_NONE: u32 = 0;
/// Mean of the token embeddings.
const POOLING_MEAN: u32 = 1;
/// The first (CLS) token's embedding.
const POOLING_CLS: u32 = 2;
/// The last token's embedding.
const POOLING_LAST: u32 = 3;

/// The pooling of a sentence-transformers checkpoint: `modules.json` names the Pooling module's
/// directory, whose `config.json` says mean, cls or last token. Without `modules.json` or a
/// Pooling module: none (per-token embeddings), as ollama writes it. A pooling llama.cpp does
/// not have (max, mean of square roots) is an error naming the file. Both come from `side`.
pub fn pooling_type(side: &SideFiles) -> Result<u32> {
    let Some(name) = side.pooling_config()? else {
        return Ok(POOLING_NONE);
    };
    let path = side.path(&name);
    let config: Value = side.json(&name)?.ok_or_else(|| Error::Io {
        path: path.display().to_string(),
        message: format!(
            "missing: {} names this Pooling module",
            side.path(side_files::MODULES).display()
        ),
    })?;
    let flag = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(false);
    if flag("pooling_mode_mean_tokens") {
        return Ok(POOLING_MEAN);
    }
    if flag("pooling_mode_cls_token") {
        return Ok(POOLING_CLS);
    }
    if flag("pooling_mode_lasttoken") {
        return Ok(POOLING_LAST);
    }
    match config.get("pooling_mode").and_then(Value::as_str) {
        Some("mean") => Ok(POOLING_MEAN),
        Some("cls") => Ok(POOLING_CLS),
        Some("lasttoken") => Ok(POOLING_LAST),
        _ => Err(Error::Unsupported(format!(
            "{}: the pooling is neither mean, cls nor last token, which llama.cpp does not run",
            path.display()
        ))),
    }
}
