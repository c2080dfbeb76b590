//! deepseek2: DeepSeek-V3's multi-head latent attention (MLA) and mixture of experts, in the
//! layout llama.cpp loads today, as llama.cpp's converter writes it:
//! - `kv_b_proj` ([heads × (nope + v), kv_lora] rows per head) is split per head into
//!   `attn_k_b` ([heads, kv_lora, nope]: each head's key rows transposed, for the absorbed
//!   attention) and `attn_v_b` ([heads, v, kv_lora]), both as strided views, no copy at open;
//! - the routed experts are stacked into `ffn_{gate,up,down}_exps`, the shared experts are
//!   `ffn_*_shexp`, the router `ffn_gate_inp` and its score bias `e_score_correction_bias`
//!   `exp_probs_b.bias`; the first `first_k_dense_replace` layers keep a dense `ffn_*`;
//! - the multi-token-prediction layers (index ≥ `num_hidden_layers`) are left out.
//!
//! FP8 checkpoints keep a `weight_scale_inv` beside each FP8 weight; the GGUF export
//! dequantises the pairs (`hf_to_gguf`). Here a scale only follows its weight: stacked with the
//! experts, and split with `kv_b_proj`, which needs each head's key and value rows to fill
//! whole scale blocks (DeepSeek-V3's 128 of each do).

use super::registry::{no_adjust, no_computed, Arch};
use super::{keys, mixtral, Config};
use crate::error::{Error, Result};
use crate::kv::Metadata;
use crate::shape::Shape;
use crate::source::item::Item;
use crate::source::Source;
use crate::torch::TorchTensor;

/// deepseek2.
pub(crate) const ARCH: Arch = Arch {
    name: "deepseek2",
    hf_names: &["DeepseekV3ForCausalLM"],
    gguf_name: "deepseek2",
    pairs: &[PAIRS],
    transform,
    gguf_transform: None,
    kv,
    computed: no_computed,
    adjust: no_adjust,
    left_out: None,
};

/// Hugging Face names to GGUF names (llama.cpp's tensor map for deepseek2).
#[rustfmt::skip]
pub const PAIRS: &[&str] = &[
    "lm_head", "output",
    "model.embed_tokens", "token_embd",
    "model.norm", "output_norm",
    "model.layers", "blk",
    "input_layernorm", "attn_norm",
    "post_attention_layernorm", "ffn_norm",
    "self_attn.q_proj", "attn_q",
    "self_attn.q_a_proj", "attn_q_a",
    "self_attn.q_a_layernorm", "attn_q_a_norm",
    "self_attn.q_b_proj", "attn_q_b",
    "self_attn.kv_a_proj_with_mqa", "attn_kv_a_mqa",
    "self_attn.kv_a_layernorm", "attn_kv_a_norm",
    "self_attn.kv_b_proj", "attn_kv_b",
    "self_attn.o_proj", "attn_output",
    "mlp.gate.e_score_correction_bias", "exp_probs_b.bias",
    "mlp.gate.weight", "ffn_gate_inp.weight",
    "mlp.shared_experts.gate_proj", "ffn_gate_shexp",
    "mlp.shared_experts.up_proj", "ffn_up_shexp",
    "mlp.shared_experts.down_proj", "ffn_down_shexp",
    "mlp.gate_proj", "ffn_gate",
    "mlp.up_proj", "ffn_up",
    "mlp.down_proj", "ffn_down",
];

const EXPERTS: &str = ".mlp.experts.";

/// The suffix of an FP8 weight's block scales (`X.weight` → `X.weight_scale_inv`).
pub const SCALE_SUFFIX: &str = "_scale_inv";

/// Leaves out the multi-token-prediction layers, stacks the routed experts and splits each
/// `attn_kv_b` into `attn_k_b` and `attn_v_b` (and their scales likewise).
pub fn transform(items: Vec<Item>, config: &Config) -> Result<Vec<Item>> {
    let layers = u64::from(config.required_u32(&["num_hidden_layers"])?);
    let items: Vec<Item> = items
        .into_iter()
        .filter(|i| layer_of(&i.name).is_none_or(|l| l < layers))
        .collect();
    let items =
        mixtral::stack_experts(items, config, EXPERTS, &["n_routed_experts"], |p| match p {
            "gate_proj" => Some("ffn_gate_exps"),
            "up_proj" => Some("ffn_up_exps"),
            "down_proj" => Some("ffn_down_exps"),
            _ => None,
        })?;
    let (kv_b, mut rest): (Vec<Item>, Vec<Item>) = items
        .into_iter()
        .partition(|i| i.name.contains(".attn_kv_b.weight"));
    let mut weights = Vec::new();
    let mut scales = Vec::new();
    for item in kv_b {
        if item.name.ends_with(SCALE_SUFFIX) {
            scales.push(item);
        } else {
            weights.push(item);
        }
    }
    if weights.is_empty() && scales.is_empty() {
        return Ok(rest);
    }
    let mla = Mla::of(config)?;
    for weight in weights {
        let scale_name = format!("{}{SCALE_SUFFIX}", weight.name);
        let scale = scales
            .iter()
            .position(|s| s.name == scale_name)
            .map(|p| scales.swap_remove(p));
        rest.extend(mla.split(&weight, config)?);
        if let Some(scale) = scale {
            rest.extend(mla.split_scale(&weight, &scale, config)?);
        }
    }
    if let Some(orphan) = scales.first() {
        return Err(config.inconsistent(&format!(
            "tensor \"{}\" has no weight \"{}\" to scale",
            orphan.original(),
            orphan.name.trim_end_matches(SCALE_SUFFIX)
        )));
    }
    Ok(rest)
}

/// The layer index of a `blk.N.` name.
fn layer_of(name: &str) -> Option<u64> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// The sizes that cut `kv_b_proj`.
struct Mla {
    heads: u64,
    nope: u64,
    v: u64,
}

impl Mla {
    fn of(config: &Config) -> Result<Mla> {
        Ok(Mla {
            heads: config.required("num_attention_heads")?,
            nope: config.required("qk_nope_head_dim")?,
            v: config.required("v_head_dim")?,
        })
    }

    /// `attn_k_b` ([heads, kv_lora, nope]) and `attn_v_b` ([heads, v, kv_lora]) of `kv_b`.
    fn split(&self, kv_b: &Item, config: &Config) -> Result<[Item; 2]> {
        let per_head = self.nope + self.v;
        let [rows, lora] = dims2(kv_b, config)?;
        if self.heads.checked_mul(per_head) != Some(rows) {
            return Err(config.inconsistent(&format!(
                "tensor \"{}\" has {rows} rows, not num_attention_heads {} x (qk_nope_head_dim {} + v_head_dim {})",
                kv_b.original(),
                self.heads,
                self.nope,
                self.v
            )));
        }
        let head = per_head * lora;
        let k = [self.heads, lora, self.nope];
        let v = [self.heads, self.v, lora];
        Ok([
            view(kv_b, "attn_k_b", k, [head, 1, lora], 0)?,
            view(kv_b, "attn_v_b", v, [head, lora, 1], self.nope * lora)?,
        ])
    }

    /// The scales of [`Mla::split`]'s two tensors: `scale` holds one value per block of
    /// `kv_b`, so each head's key and value rows must be whole blocks, and the blocks square
    /// (the key part is transposed).
    fn split_scale(&self, kv_b: &Item, scale: &Item, config: &Config) -> Result<[Item; 2]> {
        let block = config.weight_block_size()?.ok_or_else(|| {
            config.inconsistent(&format!(
                "tensor \"{}\" has block scales but \"quantization_config.weight_block_size\" is missing",
                scale.original()
            ))
        })?;
        let [_, lora] = dims2(kv_b, config)?;
        let b = block[0];
        if block[0] != block[1] || !self.nope.is_multiple_of(b) || !self.v.is_multiple_of(b) {
            return Err(Error::Unsupported(format!(
                "tensor \"{}\": splitting kv_b_proj's FP8 scales needs square blocks that hold \
                 whole heads, but the blocks are {block:?} for qk_nope_head_dim {} and v_head_dim {}",
                scale.original(),
                self.nope,
                self.v
            )));
        }
        let [srows, scols] = dims2(scale, config)?;
        let (nope, v, per_head) = (self.nope / b, self.v / b, (self.nope + self.v) / b);
        if srows != self.heads * per_head || scols != lora.div_ceil(b) {
            return Err(config.inconsistent(&format!(
                "tensor \"{}\" has shape [{srows}, {scols}], not the [{}, {}] blocks of {b} of its weight",
                scale.original(),
                self.heads * per_head,
                lora.div_ceil(b)
            )));
        }
        let head = per_head * scols;
        let name = |part: &str| format!("{part}.weight{SCALE_SUFFIX}");
        let k = [self.heads, scols, nope];
        let vs = [self.heads, v, scols];
        Ok([
            view_named(
                scale,
                &renamed(kv_b, &name("attn_k_b")),
                k,
                [head, 1, scols],
                0,
            )?,
            view_named(
                scale,
                &renamed(kv_b, &name("attn_v_b")),
                vs,
                [head, scols, 1],
                nope * scols,
            )?,
        ])
    }
}

/// The two dimensions of a matrix.
fn dims2(item: &Item, config: &Config) -> Result<[u64; 2]> {
    match item.shape.as_slice() {
        &[rows, cols] => Ok([rows, cols]),
        other => Err(config.inconsistent(&format!(
            "tensor \"{}\" has shape {other:?}, not a matrix",
            item.original()
        ))),
    }
}

/// `blk.N.attn_kv_b.weight` with `attn_kv_b.weight` replaced by `part`.
fn renamed(kv_b: &Item, part: &str) -> String {
    let prefix = kv_b.name.split(".attn_kv_b.").next().unwrap_or(&kv_b.name);
    format!("{prefix}.{part}")
}

/// A strided view of `item` named after it (`attn_kv_b` → `part`).
fn view(item: &Item, part: &str, shape: [u64; 3], strides: [u64; 3], at: u64) -> Result<Item> {
    view_named(
        item,
        &renamed(item, &format!("{part}.weight")),
        shape,
        strides,
        at,
    )
}

/// A view `name` of `item`'s elements: `shape` with `strides` (in elements) from element `at`.
fn view_named(
    item: &Item,
    name: &str,
    shape: [u64; 3],
    strides: [u64; 3],
    at: u64,
) -> Result<Item> {
    let Source::Contiguous(stored) = &item.source else {
        return Err(Error::Unsupported(format!(
            "tensor \"{}\": splitting it needs it stored in one piece",
            item.original()
        )));
    };
    let size = item.dtype.byte_size().ok_or_else(|| {
        Error::Unsupported(format!(
            "tensor \"{}\": {} has no whole-byte elements to split",
            item.original(),
            item.dtype
        ))
    })? as u64;
    let view = TorchTensor {
        name: item.original().to_string(),
        dtype: item.dtype,
        shape: shape.to_vec(),
        strides: strides.to_vec(),
        data_offset: stored.offset + at * size,
        storage_start: stored.offset,
        storage_len: stored.len,
        contiguous: false,
    };
    Ok(Item {
        name: name.to_string(),
        original: Some(item.original().to_string()),
        dtype: item.dtype,
        shape: Shape::from_slice(&shape),
        source: Source::view(stored.file, view),
    })
}

/// GGUF's `expert_gating_func` value for sigmoid.
const GATING_SIGMOID: u32 = 2;

/// deepseek2's GGUF metadata, as llama.cpp's converter writes it: one key/value head (MLA runs
/// as multi-query attention over the latent), key and value lengths of the latent
/// (`kv_lora_rank` + rope dims, `kv_lora_rank`) and of the decompressed heads (`*_mla`), the
/// LoRA ranks, the leading dense layers, the experts (routed, shared, used, groups, weight
/// scale and renormalisation), sigmoid gating, the rope dims, and yarn scaling with
/// `yarn_log_multiplier` 0.1 × `mscale_all_dim`.
pub fn kv(config: &Config, kv: &mut Metadata) -> Result<()> {
    let arch = "deepseek2";
    keys::base(config, arch, kv)?;
    kv.set(format!("{arch}.attention.head_count_kv"), 1u32);
    keys::rope_base(config, arch, kv)?;
    keys::rms_eps(config, arch, kv)?;
    let experts = config.required_u32(&["n_routed_experts"])?;
    let used = config.required_u32(&["num_experts_per_tok"])?;
    if used > experts {
        return Err(config.inconsistent(&format!(
            "\"num_experts_per_tok\" {used} is more than the {experts} \"n_routed_experts\""
        )));
    }
    let dense = match config.value("first_k_dense_replace") {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(0) => 0,
        _ => config.first_u32(&["first_k_dense_replace"])?.unwrap_or(0),
    };
    kv.set(format!("{arch}.leading_dense_block_count"), dense);
    if let Some(rank) = config.first_u32(&["q_lora_rank"])? {
        kv.set(format!("{arch}.attention.q_lora_rank"), rank);
    }
    let lora = config.required_u32(&["kv_lora_rank"])?;
    let rope = config.required_u32(&["qk_rope_head_dim"])?;
    let nope = config.required_u32(&["qk_nope_head_dim"])?;
    let v = config.required_u32(&["v_head_dim"])?;
    let sum = |a: u32, b: u32, what: &str| {
        a.checked_add(b)
            .ok_or_else(|| config.inconsistent(&format!("{what} is more than a 32-bit count")))
    };
    kv.set(format!("{arch}.attention.kv_lora_rank"), lora);
    kv.set(
        format!("{arch}.attention.key_length"),
        sum(lora, rope, "kv_lora_rank + qk_rope_head_dim")?,
    );
    kv.set(format!("{arch}.attention.value_length"), lora);
    kv.set(
        format!("{arch}.attention.key_length_mla"),
        sum(nope, rope, "qk_nope_head_dim + qk_rope_head_dim")?,
    );
    kv.set(format!("{arch}.attention.value_length_mla"), v);
    let ffn = config.required_u32(&["moe_intermediate_size"])?;
    kv.set(format!("{arch}.expert_feed_forward_length"), ffn);
    kv.set(format!("{arch}.expert_count"), experts);
    kv.set(format!("{arch}.expert_used_count"), used);
    let shared = match config.value("n_shared_experts") {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(0) => 0,
        _ => config.first_u32(&["n_shared_experts"])?.unwrap_or(0),
    };
    kv.set(format!("{arch}.expert_shared_count"), shared);
    if let Some(scale) = config.optional_f64("routed_scaling_factor")? {
        let scale = keys::f32_of(config, "routed_scaling_factor", scale)?;
        kv.set(format!("{arch}.expert_weights_scale"), scale);
    }
    if config.optional_bool("norm_topk_prob")? == Some(true) {
        kv.set(format!("{arch}.expert_weights_norm"), true);
    }
    if let Some(groups) = config.first_u32(&["n_group"])? {
        if experts % groups != 0 {
            return Err(config.inconsistent(&format!(
                "\"n_group\" {groups} does not divide the {experts} \"n_routed_experts\""
            )));
        }
        kv.set(format!("{arch}.expert_group_count"), groups);
    }
    if let Some(chosen) = config.first_u32(&["topk_group"])? {
        kv.set(format!("{arch}.expert_group_used_count"), chosen);
    }
    // transformers' DeepseekV3 always gates with a sigmoid; a config saying otherwise is
    // another model.
    if let Some(func) = config.optional_str("scoring_func")? {
        if func != "sigmoid" {
            return Err(config.inconsistent(&format!(
                "\"scoring_func\" is \"{}\": DeepseekV3 gates its experts with a sigmoid",
                crate::error::shown(func)
            )));
        }
    }
    kv.set(format!("{arch}.expert_gating_func"), GATING_SIGMOID);
    kv.set(format!("{arch}.rope.dimension_count"), rope);
    keys::rope_scaling(config, arch, kv, false)?;
    if let Some((_, section)) = keys::rope_type(config)? {
        if let Some(m) = section.optional_f64("mscale_all_dim")? {
            // llama.cpp divides this key by 0.1 again for deepseek2 (its converter writes it so).
            let key = "rope_scaling.mscale_all_dim";
            kv.set(
                format!("{arch}.rope.scaling.yarn_log_multiplier"),
                keys::f32_of(config, key, 0.1 * m)?,
            );
        }
    }
    Ok(())
}
