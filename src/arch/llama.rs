//! llama: ollama's renames, and its Q/K repack: each head's rows go from
//! `[2, rows/heads/2]` order to `[rows/heads/2, 2]` (reshape, swap axes 1 and 2, reshape back).

use super::Config;
use crate::error::Result;
use crate::transform::Item;

/// ollama's llama replacements, in its order.
#[rustfmt::skip]
pub const PAIRS: &[&str] = &[
    "lm_head", "output",
    "model.embed_tokens", "token_embd",
    "model.norm", "output_norm",
    "model.layers", "blk",
    "input_layernorm", "attn_norm",
    "self_attn.q_proj", "attn_q",
    "self_attn.k_proj", "attn_k",
    "self_attn.v_proj", "attn_v",
    "self_attn.o_proj", "attn_output",
    "mlp.gate_proj", "ffn_gate",
    "mlp.down_proj", "ffn_down",
    "mlp.up_proj", "ffn_up",
    "post_attention_layernorm", "ffn_norm",
];

/// Repacks every `attn_q.weight` (num_attention_heads) and `attn_k.weight`
/// (num_key_value_heads, else num_attention_heads).
pub fn transform(items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    repack_qk(items, config)
}

/// The Q/K repack, shared with the architectures built on llama.
pub fn repack_qk(mut items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    let (heads, kv_heads, head_dim) = config.attention()?;
    for item in &mut items {
        let h = if item.name.ends_with("attn_q.weight") {
            heads
        } else if item.name.ends_with("attn_k.weight") {
            kv_heads
        } else {
            continue;
        };
        let rows = item.shape.first().copied().unwrap_or(0);
        // Checked: config.json values are input; a wrapped product must not pass.
        let need = h.checked_mul(head_dim);
        let fits = need == Some(rows) && h.checked_mul(2).is_some_and(|p| rows % p == 0);
        if !fits {
            let need = need.map_or("more than 2^64".into(), |n| n.to_string());
            return Err(config.inconsistent(&format!(
                "tensor \"{}\" has {rows} rows, but {h} heads of size {head_dim} need {need} (and an even head size)",
                item.original(),
            )));
        }
        if item.source.len() == 0 {
            // No bytes to move, however many rows.
            continue;
        }
        let order = repack_order(rows, h);
        item.source = item
            .source
            .permute_rows(&item.shape, item.dtype, &order, item.original())?;
    }
    Ok(items)
}

/// For each output row, the input row it takes: output (head, j, k) in shape
/// `[heads, half, 2]` comes from input (head, k, j) in shape `[heads, 2, half]`.
pub fn repack_order(rows: u64, heads: u64) -> Vec<u64> {
    let half = rows / heads / 2;
    let mut order = Vec::with_capacity(rows as usize);
    for h in 0..heads {
        for j in 0..half {
            for k in 0..2 {
                order.push(h * 2 * half + k * half + j);
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_interleaves_the_two_halves_of_each_head() {
        // 2 heads of 4 rows: [0 1 | 2 3] [4 5 | 6 7] -> 0 2 1 3, 4 6 5 7
        assert_eq!(repack_order(8, 2), vec![0, 2, 1, 3, 4, 6, 5, 7]);
    }
}
