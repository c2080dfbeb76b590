//! qwen3moe: qwen3's names and keys, with each layer's experts stacked into one tensor per
//! projection (`blk.N.ffn_{gate,up,down}_exps.weight`) and the router `ffn_gate_inp`, as
//! llama.cpp's converter writes them. llama.cpp always renormalises the chosen experts'
//! weights for qwen3moe, so a config.json with `norm_topk_prob` false is refused; so are dense
//! layers between the sparse ones (`mlp_only_layers`, `decoder_sparse_step` above 1), which
//! its qwen3moe graph does not have.

use super::registry::{no_adjust, no_computed, Arch};
use super::{mixtral, qwen3, Config};
use crate::error::Result;
use crate::kv::Metadata;
use crate::source::item::Item;

/// qwen3moe.
pub(crate) const ARCH: Arch = Arch {
    name: "qwen3moe",
    hf_names: &["Qwen3MoeForCausalLM"],
    gguf_name: "qwen3moe",
    pairs: &[EXTRA_PAIRS, qwen3::EXTRA_PAIRS, super::qwen2::PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: no_adjust,
    left_out: None,
};

/// The router's rename, before qwen3's pairs.
#[rustfmt::skip]
pub const EXTRA_PAIRS: &[&str] = &[
    "mlp.gate.weight", "ffn_gate_inp.weight",
];

/// Where a layer's experts are in a Hugging Face name: `PREFIX{EXPERTS}E.PROJ.weight`.
pub const EXPERTS: &str = ".mlp.experts.";

/// Each expert projection's Hugging Face name and the stacked GGUF tensor it goes into.
#[rustfmt::skip]
pub const EXPERT_NAMES: &[(&str, &str)] = &[
    ("gate_proj", "ffn_gate_exps"),
    ("up_proj", "ffn_up_exps"),
    ("down_proj", "ffn_down_exps"),
];

/// The expert count: `num_experts` in Qwen's configs, `num_local_experts` as transformers 5
/// saves it.
const EXPERT_COUNT: [&str; 2] = ["num_experts", "num_local_experts"];

/// Stacks `blk.L.mlp.experts.E.{gate,up,down}_proj.weight` over E.
pub fn transform(items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    mixtral::stack_experts(items, config, EXPERTS, &EXPERT_COUNT, |p| {
        mixtral::stacked_name(EXPERT_NAMES, p)
    })
}

/// qwen3moe's GGUF metadata: qwen3's keys plus `expert_count` (`num_experts`, or
/// `num_local_experts`),
/// `expert_used_count` (`num_experts_per_tok`) and `expert_feed_forward_length`
/// (`moe_intermediate_size`).
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "qwen3moe";
    qwen3::kv_for(config, arch, kv)?;
    let experts = config.required_u32(&EXPERT_COUNT)?;
    let used = config.required_u32(&["num_experts_per_tok"])?;
    if used > experts {
        return Err(config.inconsistent(&format!(
            "\"num_experts_per_tok\" {used} is more than the {experts} experts"
        )));
    }
    if config.value("norm_topk_prob") == Some(&serde_json::Value::Bool(false)) {
        return Err(config.inconsistent(
            "\"norm_topk_prob\" is false: llama.cpp's qwen3moe always renormalises the chosen experts' weights",
        ));
    }
    if let Some(step) = config.optional("decoder_sparse_step")? {
        if step != 1 {
            return Err(config.inconsistent(&format!(
                "\"decoder_sparse_step\" is {step}: llama.cpp's qwen3moe has experts in every layer"
            )));
        }
    }
    if let Some(list) = config.value("mlp_only_layers") {
        if list.as_array().is_none_or(|l| !l.is_empty()) {
            return Err(config.inconsistent(
                "\"mlp_only_layers\" is not empty: llama.cpp's qwen3moe has experts in every layer",
            ));
        }
    }
    kv.set(format!("{arch}.expert_count"), experts);
    kv.set(format!("{arch}.expert_used_count"), used);
    let ffn = config.required_u32(&["moe_intermediate_size"])?;
    kv.set(format!("{arch}.expert_feed_forward_length"), ffn);
    Ok(())
}
