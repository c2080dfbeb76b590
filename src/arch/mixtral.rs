//! mixtral: llama's renames and repack, plus each layer's experts stacked into one tensor per
//! projection, named as ollama's converter names them (`blk.N.ffn_{gate,down,up}_exps.weight`).

use std::collections::BTreeMap;

use super::{llama, Config};
use crate::error::Result;
use crate::kv::Metadata;
use crate::transform::{stack, Item, StackRule};

/// Renames added to llama's.
pub const EXTRA_PAIRS: &[&str] = &["block_sparse_moe.gate", "ffn_gate_inp"];

const EXPERTS: &str = ".block_sparse_moe.experts.";

/// Stacks `blk.L.block_sparse_moe.experts.E.wN.weight` over E, then repacks Q/K like llama.
pub fn transform(mut items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    // (prefix "blk.L", projection "w1.weight") -> expert index -> tensor name
    let mut groups: BTreeMap<(String, String), BTreeMap<u64, String>> = BTreeMap::new();
    for item in &items {
        let Some((prefix, rest)) = item.name.split_once(EXPERTS) else {
            continue;
        };
        let Some((expert, projection)) = rest.split_once('.') else {
            continue;
        };
        let Ok(expert) = expert.parse::<u64>() else {
            continue;
        };
        groups
            .entry((prefix.to_string(), projection.to_string()))
            .or_default()
            .insert(expert, item.name.clone());
    }
    let expected = config.optional("num_local_experts")?;
    for ((prefix, projection), experts) in groups {
        let n = experts.len() as u64;
        if experts.keys().copied().ne(0..n) || expected.is_some_and(|e| e != n) {
            return Err(config.inconsistent(&format!(
                "{prefix}{EXPERTS}*.{projection}: experts {:?} are not 0..{} (num_local_experts {expected:?})",
                experts.keys().collect::<Vec<_>>(),
                expected.unwrap_or(n)
            )));
        }
        let target = match projection.split_once('.') {
            Some(("w1", tail)) => format!("ffn_gate_exps.{tail}"),
            Some(("w2", tail)) => format!("ffn_down_exps.{tail}"),
            Some(("w3", tail)) => format!("ffn_up_exps.{tail}"),
            _ => continue,
        };
        let rule = StackRule {
            names: experts.into_values().collect(),
            into: format!("{prefix}.{target}"),
        };
        items = stack(items, &rule)?;
    }
    llama::repack_qk(items, config)
}

/// mixtral's GGUF metadata: llama's keys (its `general.architecture` is llama) plus
/// `expert_count` (`num_local_experts`) and `expert_used_count` (`num_experts_per_tok`).
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    llama::kv_for(config, "llama", kv)?;
    let experts = config.required_u32(&["num_local_experts"])?;
    let used = config.required_u32(&["num_experts_per_tok"])?;
    if used > experts {
        return Err(config.inconsistent(&format!(
            "\"num_experts_per_tok\" {used} is more than \"num_local_experts\" {experts}"
        )));
    }
    kv.set("llama.expert_count", experts);
    kv.set("llama.expert_used_count", used);
    Ok(())
}
