//! mixtral: llama's renames and repack, plus each layer's experts stacked into one tensor per
//! projection, named as ollama's converter names them (`blk.N.ffn_{gate,down,up}_exps.weight`).

use std::collections::BTreeMap;

use super::registry::{no_adjust, Arch};
use super::{llama, Config};
use crate::error::Result;
use crate::kv::Metadata;
use crate::source::item::{stack_items, Item};

/// mixtral: llama's renames plus the router's, experts stacked, llama's GGUF name.
pub(crate) const ARCH: Arch = Arch {
    name: "mixtral",
    hf_names: &["MixtralForCausalLM"],
    gguf_name: "llama",
    pairs: &[llama::PAIRS, EXTRA_PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed: llama::computed,
    adjust: no_adjust,
    left_out: None,
};

/// Renames added to llama's.
pub const EXTRA_PAIRS: &[&str] = &["block_sparse_moe.gate", "ffn_gate_inp"];

/// Where a layer's experts are in a Hugging Face name: `PREFIX{EXPERTS}E.PROJ.weight`.
pub const EXPERTS: &str = ".block_sparse_moe.experts.";

/// Each expert projection's Hugging Face name and the stacked GGUF tensor it goes into.
#[rustfmt::skip]
pub const EXPERT_NAMES: &[(&str, &str)] = &[
    ("w1", "ffn_gate_exps"),
    ("w2", "ffn_down_exps"),
    ("w3", "ffn_up_exps"),
];

/// The GGUF name of expert projection `proj` in `names` (an `EXPERT_NAMES` table).
pub fn stacked_name(names: &[(&str, &'static str)], proj: &str) -> Option<&'static str> {
    names
        .iter()
        .find(|(hf, _)| *hf == proj)
        .map(|(_, gguf)| *gguf)
}

/// Stacks `blk.L.block_sparse_moe.experts.E.wN.weight` over E, then repacks Q/K like llama.
pub fn transform(items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    let rest = stack_experts(items, config, EXPERTS, &["num_local_experts"], |p| {
        stacked_name(EXPERT_NAMES, p)
    })?;
    llama::repack_qk(rest, config)
}

/// Stacks each layer's experts `PREFIX{infix}E.PROJ.TAIL` over E into one tensor
/// `PREFIX.{target(PROJ)}.TAIL` per projection (other projections are left as they are), the
/// experts counted against the first of config.json's `count_keys` present. One pass over the tensors
/// (no search per expert); an expert index must be written as a plain decimal number ("0",
/// "17"): "00" or "+1" would alias another expert and is refused.
pub fn stack_experts(
    items: Vec<Item>,
    config: &Config,
    infix: &str,
    count_keys: &[&str],
    target: fn(&str) -> Option<&'static str>,
) -> Result<Vec<Item>> {
    // (prefix "blk.L", projection "w1.weight") -> expert index -> tensor
    let mut groups: BTreeMap<(String, String), BTreeMap<u64, Item>> = BTreeMap::new();
    let mut rest = Vec::with_capacity(items.len());
    for item in items {
        let Some((prefix, expert, projection)) = expert_of(&item.name, infix) else {
            rest.push(item);
            continue;
        };
        let Ok(index) = expert.parse::<u64>() else {
            rest.push(item);
            continue;
        };
        if index.to_string() != expert {
            return Err(config.inconsistent(&format!(
                "tensor \"{}\": expert index \"{expert}\" is not written as a plain decimal \
                 number (it would alias expert {index})",
                item.original()
            )));
        }
        let key = (prefix.to_string(), projection.to_string());
        let group = groups.entry(key).or_default();
        if let Some(other) = group.get(&index) {
            return Err(config.inconsistent(&format!(
                "tensors \"{}\" and \"{}\" are both expert {index}",
                other.original(),
                item.original()
            )));
        }
        group.insert(index, item);
    }
    let expected = config.first_u32(count_keys)?.map(u64::from);
    let count_key = count_keys.join(" or ");
    for ((prefix, projection), experts) in groups {
        let n = experts.len() as u64;
        if experts.keys().copied().ne(0..n) || expected.is_some_and(|e| e != n) {
            return Err(config.inconsistent(&format!(
                "{prefix}{infix}*.{projection}: experts {:?} are not 0..{} ({count_key} {expected:?})",
                experts.keys().collect::<Vec<_>>(),
                expected.unwrap_or(n)
            )));
        }
        let name = match projection.split_once('.') {
            Some((proj, tail)) => target(proj).map(|t| format!("{prefix}.{t}.{tail}")),
            None => None,
        };
        let Some(name) = name else {
            rest.extend(experts.into_values());
            continue;
        };
        let parts = experts.into_values().collect();
        rest.push(stack_items(parts, &name)?);
    }
    Ok(rest)
}

/// `(prefix, expert, projection)` of an expert tensor's name.
fn expert_of<'a>(name: &'a str, infix: &str) -> Option<(&'a str, &'a str, &'a str)> {
    let (prefix, rest) = name.split_once(infix)?;
    let (expert, projection) = rest.split_once('.')?;
    Some((prefix, expert, projection))
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
