//! `config.json` rebuilt from a GGUF's `ARCH.*` keys: the inverse of the keys `arch::keys`
//! writes for the llama family (sizes, heads, rope, norm epsilon), plus what the tensors say
//! (vocabulary size, tied embeddings, biases).

use serde_json::{json, Map, Value as Json};

use super::{int_key, source_name, string_key, Back};
use crate::error::{Error, Result};
use crate::kv::Value;
use crate::model::Model;
use crate::write::TensorSpec;

/// A float key as the decimal it was written from: GGUF stores `f32`, and the shortest decimal
/// that gives the same `f32` (`1e-5`, not `9.999999747378752e-6`) is what config.json held, so
/// transformers computes with the same value again.
fn float_key(model: &Model, key: &str) -> Result<Option<f64>> {
    let v = match model.gguf_value(key) {
        None => return Ok(None),
        Some(v) => v,
    };
    let f = match *v {
        Value::F32(f) => format!("{f}").parse::<f64>().ok(),
        Value::F64(f) => Some(f),
        _ => None,
    };
    f.filter(|f| f.is_finite()).map(Some).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{}: key {key} is {v:?}, not a finite float",
            source_name(model)
        ))
    })
}

/// The config.json of the GGUF `model` of architecture `back`, whose tensors (Hugging Face
/// names) are `tensors`.
pub(super) fn build(model: &Model, back: &Back, tensors: &[&TensorSpec]) -> Result<Json> {
    let file = source_name(model);
    let arch = back.gguf_name;
    let key = |k: &str| format!("{arch}.{k}");
    let required = |k: &str| -> Result<u64> {
        int_key(model, &key(k))?.ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{file}: key {} is missing: config.json needs it",
                key(k)
            ))
        })
    };
    let has = |name: &str| tensors.iter().any(|t| t.name == name);
    let embed = tensors
        .iter()
        .find(|t| t.name == "model.embed_tokens.weight")
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{file}: no tensor token_embd.weight: config.json's vocab_size comes from it"
            ))
        })?;
    let hidden = required("embedding_length")?;
    let heads = required("attention.head_count")?;
    let mut c = Map::new();
    c.insert("architectures".into(), json!([back.hf_class]));
    c.insert("model_type".into(), json!(back.model_type));
    c.insert("vocab_size".into(), json!(embed.shape.first().copied()));
    c.insert("hidden_size".into(), json!(hidden));
    if let Some(n) = int_key(model, &key("feed_forward_length"))? {
        c.insert("intermediate_size".into(), json!(n));
    }
    c.insert("num_hidden_layers".into(), json!(required("block_count")?));
    c.insert("num_attention_heads".into(), json!(heads));
    c.insert(
        "num_key_value_heads".into(),
        json!(int_key(model, &key("attention.head_count_kv"))?.unwrap_or(heads)),
    );
    if let Some(head_dim) = int_key(model, &key("attention.key_length"))? {
        c.insert("head_dim".into(), json!(head_dim));
    }
    if let Some(n) = int_key(model, &key("context_length"))? {
        c.insert("max_position_embeddings".into(), json!(n));
    }
    if let Some(eps) = float_key(model, &key("attention.layer_norm_rms_epsilon"))? {
        c.insert("rms_norm_eps".into(), json!(eps));
    }
    // llama.cpp's default when the key is absent.
    let theta = float_key(model, &key("rope.freq_base"))?.unwrap_or(10000.0);
    c.insert("rope_theta".into(), json!(theta));
    if let Some(scaling) = rope_scaling(model, arch, &file)? {
        c.insert("rope_scaling".into(), scaling);
    }
    c.insert("hidden_act".into(), json!("silu"));
    c.insert("tie_word_embeddings".into(), json!(!has("lm_head.weight")));
    let bias = |suffix: &str| json!(tensors.iter().any(|t| t.name.ends_with(suffix)));
    let used = || required("expert_used_count");
    match back.model_type {
        "llama" => {
            c.insert("attention_bias".into(), bias("self_attn.q_proj.bias"));
            c.insert("mlp_bias".into(), bias("mlp.up_proj.bias"));
        }
        "mixtral" => {
            c.insert("num_local_experts".into(), json!(required("expert_count")?));
            c.insert("num_experts_per_tok".into(), json!(used()?));
            c.insert("sliding_window".into(), Json::Null);
        }
        // qwen2 always has q/k/v biases.
        "qwen2" => {}
        _ => {
            c.insert("attention_bias".into(), bias("self_attn.q_proj.bias"));
        }
    }
    if back.model_type.starts_with("qwen") {
        c.insert("use_sliding_window".into(), json!(false));
        c.insert("sliding_window".into(), Json::Null);
    }
    if back.model_type == "phi3" {
        phi3(model, &mut c, &file, heads, hidden)?;
    }
    if back.model_type == "qwen3_moe" {
        c.insert("num_experts".into(), json!(required("expert_count")?));
        c.insert("num_experts_per_tok".into(), json!(used()?));
        c.insert(
            "moe_intermediate_size".into(),
            json!(required("expert_feed_forward_length")?),
        );
        // llama.cpp's qwen3moe always renormalises the chosen experts' weights and has experts
        // in every layer: the export refuses a config.json that says otherwise.
        c.insert("norm_topk_prob".into(), json!(true));
        c.insert("decoder_sparse_step".into(), json!(1));
        c.insert("mlp_only_layers".into(), json!([]));
    }
    for (gguf, hf) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ] {
        // null when absent: some classes default to an id of their real vocabulary (phi3's
        // pad_token_id 32000), past a smaller one.
        c.insert(hf.into(), json!(int_key(model, gguf)?));
    }
    let dtype = tensors.first().map_or("float32", |t| torch_name(t.dtype));
    c.insert("torch_dtype".into(), json!(dtype));
    Ok(Json::Object(c))
}

/// phi3's keys: the rotated share of each head, the sliding window (0: none) and the original
/// context length. Its longrope and yarn scaling (factors computed into tensors, an attention
/// factor) is refused.
fn phi3(
    model: &Model,
    c: &mut Map<String, Json>,
    file: &str,
    heads: u64,
    hidden: u64,
) -> Result<()> {
    if model.gguf_value("phi3.rope.scaling.attn_factor").is_some() {
        return Err(Error::Unsupported(format!(
            "{file}: key phi3.rope.scaling.attn_factor: --to-hf does not rebuild phi3's longrope \
             or yarn rope scaling"
        )));
    }
    let head_dim = hidden.checked_div(heads).unwrap_or(0);
    if let Some(dims) = int_key(model, "phi3.rope.dimension_count")? {
        if dims != head_dim && head_dim > 0 {
            c.insert(
                "partial_rotary_factor".into(),
                json!(dims as f64 / head_dim as f64),
            );
        }
    }
    let window = int_key(model, "phi3.attention.sliding_window")?.filter(|&w| w > 0);
    c.insert("sliding_window".into(), json!(window));
    if let Some(n) = int_key(model, "phi3.rope.scaling.original_context_length")? {
        c.insert("original_max_position_embeddings".into(), json!(n));
    }
    c.insert("rope_scaling".into(), Json::Null);
    Ok(())
}

/// torch's name of a float dtype, as config.json's `torch_dtype` spells it.
fn torch_name(dtype: crate::dtype::Dtype) -> &'static str {
    use crate::dtype::Dtype;
    match dtype {
        Dtype::F16 => "float16",
        Dtype::BF16 => "bfloat16",
        _ => "float32",
    }
}

/// `rope_scaling` from `ARCH.rope.scaling.*` (linear, yarn), `None` without scaling; another
/// type is refused by name.
fn rope_scaling(model: &Model, arch: &str, file: &str) -> Result<Option<Json>> {
    let key = |k: &str| format!("{arch}.rope.scaling.{k}");
    let kind = match string_key(model, &key("type")) {
        None | Some("none") => return Ok(None),
        Some(kind) => kind,
    };
    let factor = float_key(model, &key("factor"))?.ok_or_else(|| {
        Error::InvalidArgument(format!("{file}: key {} is missing", key("factor")))
    })?;
    match kind {
        "linear" => Ok(Some(json!({"rope_type": "linear", "factor": factor}))),
        "yarn" => {
            let original = int_key(model, &key("original_context_length"))?.ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{file}: key {} is missing",
                    key("original_context_length")
                ))
            })?;
            Ok(Some(json!({
                "rope_type": "yarn",
                "factor": factor,
                "original_max_position_embeddings": original,
            })))
        }
        other => Err(Error::Unsupported(format!(
            "{file}: key {} is \"{}\": --to-hf rebuilds linear and yarn rope scaling only",
            key("type"),
            crate::error::shown(other)
        ))),
    }
}
