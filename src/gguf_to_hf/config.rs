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
    c.insert(
        "intermediate_size".into(),
        json!(required("feed_forward_length")?),
    );
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
    if back.model_type != "qwen2" {
        // qwen2 always has q/k/v biases; llama and qwen3 say whether they do.
        c.insert(
            "attention_bias".into(),
            json!(tensors
                .iter()
                .any(|t| t.name.ends_with("self_attn.q_proj.bias"))),
        );
    }
    if back.model_type == "llama" {
        c.insert(
            "mlp_bias".into(),
            json!(tensors.iter().any(|t| t.name.ends_with("mlp.up_proj.bias"))),
        );
    }
    if back.model_type != "llama" {
        c.insert("use_sliding_window".into(), json!(false));
    }
    for (gguf, hf) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ] {
        if let Some(id) = int_key(model, gguf)? {
            c.insert(hf.into(), json!(id));
        }
    }
    let dtype = tensors.first().map_or("float32", |t| torch_name(t.dtype));
    c.insert("torch_dtype".into(), json!(dtype));
    Ok(Json::Object(c))
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
