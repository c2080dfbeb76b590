//! phi3: llama-style renames, with the fused `qkv_proj` split into q, k, v by head counts and
//! the fused `gate_up_proj` split into its gate and up halves (all zero-copy row ranges).

use super::Config;
use crate::error::Result;
use crate::transform::{split, Item, SplitRule};

/// Renames applied before llama's (which cover the rest of phi3's names); the fused tensors get
/// temporary names that the splits replace.
#[rustfmt::skip]
pub const PAIRS: &[&str] = &[
    "self_attn.qkv_proj", "attn_qkv",
    "mlp.gate_up_proj", "ffn_gate_up",
];

/// Splits every `attn_qkv.*` into `attn_q/k/v.*` and every `ffn_gate_up.*` into `ffn_gate/up.*`.
pub fn transform(mut items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    let (heads, kv_heads, head_dim) = config.attention()?;
    let fused: Vec<(String, u64)> = items
        .iter()
        .filter(|i| i.name.contains("attn_qkv.") || i.name.contains("ffn_gate_up."))
        .map(|i| (i.name.clone(), i.shape.first().copied().unwrap_or(0)))
        .collect();
    for (name, rows) in fused {
        let rule = if name.contains("attn_qkv.") {
            // Checked: config.json values are input; a wrapped sum must not pass.
            let q = heads.checked_mul(head_dim);
            let kv = kv_heads.checked_mul(head_dim);
            let total = q
                .zip(kv)
                .and_then(|(q, kv)| q.checked_add(kv.checked_mul(2)?));
            let (Some(q), Some(kv), true) = (q, kv, total == Some(rows)) else {
                return Err(config.inconsistent(&format!(
                    "tensor \"{name}\" has {rows} rows but q + k + v heads need {heads} × {head_dim} + 2 × {kv_heads} × {head_dim}"
                )));
            };
            SplitRule {
                name: name.clone(),
                parts: vec![
                    (name.replace("attn_qkv.", "attn_q."), q),
                    (name.replace("attn_qkv.", "attn_k."), kv),
                    (name.replace("attn_qkv.", "attn_v."), kv),
                ],
            }
        } else {
            if rows % 2 != 0 {
                return Err(config.inconsistent(&format!(
                    "tensor \"{name}\" has {rows} rows: not two equal halves"
                )));
            }
            SplitRule {
                name: name.clone(),
                parts: vec![
                    (name.replace("ffn_gate_up.", "ffn_gate."), rows / 2),
                    (name.replace("ffn_gate_up.", "ffn_up."), rows / 2),
                ],
            }
        };
        items = split(items, &rule)?;
    }
    Ok(items)
}
