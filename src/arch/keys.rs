//! The `ARCH.*` keys every architecture shares (sizes, counts, head layout, rope scaling), with
//! names and types as the `gguf` Python package's `Keys` and llama.cpp read them: counts as u32,
//! floats as f32.

use super::config::Section;
use super::Config;
use crate::error::{shown, Result};
use crate::kv::Metadata;

/// The attention layout all architectures check the same way.
pub struct Heads {
    /// Query heads.
    pub heads: u32,
    /// Size of one head.
    pub head_dim: u32,
    /// Model width.
    pub hidden: u32,
}

/// Writes `general.architecture` and the keys every architecture has: context, embedding and
/// feed-forward lengths, block count, head counts (and vocab_size when config.json has it).
/// Head counts that do not divide the width, or key/value heads that do not divide the heads,
/// are errors naming config.json and the key.
pub fn base(config: &Config, arch: &str, kv: &mut Metadata) -> Result<Heads> {
    kv.set("general.architecture", arch);
    if let Some(n) = config.first_u32(&["vocab_size"])? {
        kv.set(format!("{arch}.vocab_size"), n);
    }
    let context = config.required_u32(&["max_position_embeddings", "n_ctx", "n_positions"])?;
    kv.set(format!("{arch}.context_length"), context);
    let hidden = config.required_u32(&["hidden_size", "n_embd"])?;
    kv.set(format!("{arch}.embedding_length"), hidden);
    let blocks = config.required_u32(&["num_hidden_layers", "n_layers", "n_layer"])?;
    kv.set(format!("{arch}.block_count"), blocks);
    let ffn = config.required_u32(&["intermediate_size", "n_inner"])?;
    kv.set(format!("{arch}.feed_forward_length"), ffn);
    let heads = config.required_u32(&["num_attention_heads", "n_head"])?;
    kv.set(format!("{arch}.attention.head_count"), heads);
    let kv_heads = config
        .first_u32(&["num_key_value_heads", "n_head_kv"])?
        .unwrap_or(heads);
    if heads % kv_heads != 0 {
        return Err(config.inconsistent(&format!(
            "\"num_key_value_heads\" {kv_heads} does not divide \"num_attention_heads\" {heads}"
        )));
    }
    kv.set(format!("{arch}.attention.head_count_kv"), kv_heads);
    let head_dim = match config.first_u32(&["head_dim"])? {
        Some(d) => d,
        None => {
            if hidden % heads != 0 {
                return Err(config.inconsistent(&format!(
                    "\"hidden_size\" {hidden} is not a multiple of \"num_attention_heads\" {heads}"
                )));
            }
            hidden / heads
        }
    };
    Ok(Heads {
        heads,
        head_dim,
        hidden,
    })
}

/// Refuses a `head_dim` apart from `hidden_size / num_attention_heads`, for architectures whose
/// llama.cpp graph derives the head size from those two (olmo2, granite).
pub fn derived_head_dim(config: &Config, heads: &Heads, arch: &str) -> Result<()> {
    if u64::from(heads.head_dim) * u64::from(heads.heads) == u64::from(heads.hidden) {
        return Ok(());
    }
    Err(config.inconsistent(&format!(
        "\"head_dim\" {} is not \"hidden_size\" / \"num_attention_heads\" ({} / {}), the head size llama.cpp's {arch} uses",
        heads.head_dim, heads.hidden, heads.heads
    )))
}

/// The rotary dimensions of a head, as llama.cpp's converter computes them:
/// `floor(partial_rotary_factor × hidden_size) / num_attention_heads`, all of the head when
/// config.json sets no factor. The factor is read at the top level, else in `rope_parameters`
/// (where transformers 5 saves it; Phi-4-mini, StableLM).
pub fn rotary_dims(config: &Config, heads: &Heads) -> Result<u32> {
    let factor = match config.optional_f64("partial_rotary_factor")? {
        Some(p) => Some(p),
        None => match config.rope_scaling()? {
            Some(section) => section.optional_f64("partial_rotary_factor")?,
            None => None,
        },
    };
    let dims = match factor {
        None => return Ok(heads.head_dim),
        Some(p) if p > 0.0 && p <= 1.0 => {
            ((p * f64::from(heads.hidden)).floor() as u32) / heads.heads
        }
        Some(p) => {
            return Err(
                config.inconsistent(&format!("\"partial_rotary_factor\" is {p}, not in (0, 1]"))
            )
        }
    };
    if dims == 0 || dims % 2 != 0 || dims > heads.head_dim {
        return Err(config.inconsistent(&format!(
            "\"partial_rotary_factor\" {} leaves {dims} rotary dimensions of a head of {}: rotary embeddings need an even number, at least 2",
            factor.unwrap_or(1.0),
            heads.head_dim
        )));
    }
    Ok(dims)
}

/// An f64 from config.json as the f32 GGUF stores; a value f32 cannot hold is an error.
pub fn f32_of(config: &Config, key: &str, x: f64) -> Result<f32> {
    let v = x as f32;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(config.inconsistent(&format!("\"{key}\" is {x}, out of the f32 range")))
    }
}

/// [`f32_of`] for a value that must be positive as stored: checked after rounding, so a tiny
/// positive f64 that f32 rounds to 0 (a division by zero in the engine) is an error too.
pub fn positive_f32_of(config: &Config, key: &str, x: f64) -> Result<f32> {
    let v = f32_of(config, key, x)?;
    if v > 0.0 {
        Ok(v)
    } else if x > 0.0 {
        Err(config.inconsistent(&format!(
            "\"{key}\" is {x}, which rounds to {v} as the f32 GGUF stores: not positive"
        )))
    } else {
        Err(config.inconsistent(&format!("\"{key}\" is {x}, not positive")))
    }
}

/// `ARCH.attention.layer_norm_rms_epsilon` from `rms_norm_eps` (required: llama.cpp reads it;
/// positive as stored).
pub fn rms_eps(config: &Config, arch: &str, kv: &mut Metadata) -> Result<()> {
    let eps = config.required_f64("rms_norm_eps")?;
    kv.set(
        format!("{arch}.attention.layer_norm_rms_epsilon"),
        positive_f32_of(config, "rms_norm_eps", eps)?,
    );
    Ok(())
}

/// `ARCH.attention.layer_norm_epsilon` from `layer_norm_eps`, for LayerNorm architectures
/// (required: llama.cpp reads it; positive as stored).
pub fn layer_norm_eps(config: &Config, arch: &str, kv: &mut Metadata) -> Result<()> {
    let eps = config.required_f64("layer_norm_eps")?;
    kv.set(
        format!("{arch}.attention.layer_norm_epsilon"),
        positive_f32_of(config, "layer_norm_eps", eps)?,
    );
    Ok(())
}

/// `ARCH.rope.freq_base` from `rope_theta` (or `rope_parameters.rope_theta`), when present
/// (positive as stored).
pub fn rope_base(config: &Config, arch: &str, kv: &mut Metadata) -> Result<()> {
    if let Some(theta) = config.rope_theta()? {
        kv.set(
            format!("{arch}.rope.freq_base"),
            positive_f32_of(config, "rope_theta", theta)?,
        );
    }
    Ok(())
}

/// The `rope_scaling` (or `rope_parameters`) type (`rope_type`, else `type`), lower case, when
/// config.json has one.
pub fn rope_type(config: &Config) -> Result<Option<(String, Section<'_>)>> {
    match config.rope_scaling()? {
        Some(section) => rope_type_of(section),
        None => Ok(None),
    }
}

/// The rope type (`rope_type`, else `type`) of one rope object, lower case, when it has one.
pub fn rope_type_of(section: Section<'_>) -> Result<Option<(String, Section<'_>)>> {
    let kind = match section.optional_str("rope_type")? {
        Some(t) => Some(t),
        None => section.optional_str("type")?,
    }
    .map(str::to_ascii_lowercase);
    Ok(kind.map(|t| (t, section)))
}

/// The rope scaling keys of llama-style models: `linear` (type, factor) and `yarn` (type,
/// factor, original context length and the optional yarn parameters). `llama3` is carried by
/// the computed `rope_freqs.weight` tensor when `llama3` is true; `default` adds nothing. Any
/// other type is an error naming config.json and the key.
pub fn rope_scaling(config: &Config, arch: &str, kv: &mut Metadata, llama3: bool) -> Result<()> {
    match rope_type(config)? {
        Some((kind, section)) => rope_scaling_of(config, &kind, &section, arch, kv, llama3),
        None => Ok(()),
    }
}

/// [`rope_scaling`] of one rope object (`section`, of type `kind`): gemma3 keeps its global
/// layers' scaling in `rope_parameters.full_attention`.
pub fn rope_scaling_of(
    config: &Config,
    kind: &str,
    section: &Section,
    arch: &str,
    kv: &mut Metadata,
    llama3: bool,
) -> Result<()> {
    let factor = |s: &Section| -> Result<f32> {
        match s.optional_f64("factor")? {
            Some(f) => positive_f32_of(config, "rope_scaling.factor", f),
            None => Err(s.inconsistent("factor", "is missing")),
        }
    };
    match kind {
        "default" | "none" => {}
        "llama3" if llama3 => {}
        "linear" => {
            kv.set(format!("{arch}.rope.scaling.type"), "linear");
            kv.set(format!("{arch}.rope.scaling.factor"), factor(section)?);
        }
        "yarn" => {
            kv.set(format!("{arch}.rope.scaling.type"), "yarn");
            kv.set(format!("{arch}.rope.scaling.factor"), factor(section)?);
            let original = match section.optional_u32("original_max_position_embeddings")? {
                Some(n) => n,
                None => config
                    .first_u32(&["original_max_position_embeddings"])?
                    .ok_or_else(|| {
                        section.inconsistent("original_max_position_embeddings", "is missing")
                    })?,
            };
            kv.set(
                format!("{arch}.rope.scaling.original_context_length"),
                original,
            );
            // `attention_factor` is the current name, `attn_factor` the older one.
            let attn = if section.optional_f64("attention_factor")?.is_some() {
                "attention_factor"
            } else {
                "attn_factor"
            };
            let optional = [
                ("extrapolation_factor", "yarn_ext_factor"),
                (attn, "yarn_attn_factor"),
                ("beta_fast", "yarn_beta_fast"),
                ("beta_slow", "yarn_beta_slow"),
            ];
            for (key, gguf) in optional {
                if let Some(x) = section.optional_f64(key)? {
                    let full = format!("rope_scaling.{key}");
                    kv.set(
                        format!("{arch}.rope.scaling.{gguf}"),
                        f32_of(config, &full, x)?,
                    );
                }
            }
        }
        other => {
            return Err(section.inconsistent(
                "rope_type",
                &format!(
                    "is \"{}\": architecture {arch} supports linear, yarn{}",
                    shown(other),
                    if llama3 { ", llama3" } else { "" }
                ),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::Value;

    fn config(json: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        let c = Config::read(dir.path(), "test").unwrap();
        (dir, c)
    }

    #[test]
    fn yarn_writes_its_parameters_and_prefers_attention_factor() {
        let (_d, c) = config(
            r#"{"rope_scaling": {"rope_type": "YaRN", "factor": 4, "original_max_position_embeddings": 4096,
                "attention_factor": 0.5, "attn_factor": 0.25, "beta_fast": 32, "beta_slow": 1}}"#,
        );
        let mut kv = Metadata::new();
        rope_scaling(&c, "qwen2", &mut kv, false).unwrap();
        let get = |k: &str| kv.get(&format!("qwen2.rope.scaling.{k}")).cloned();
        assert_eq!(get("type"), Some(Value::from("yarn")));
        assert_eq!(get("factor"), Some(Value::F32(4.0)));
        assert_eq!(get("original_context_length"), Some(Value::U32(4096)));
        assert_eq!(get("yarn_attn_factor"), Some(Value::F32(0.5)));
        assert_eq!(get("yarn_beta_fast"), Some(Value::F32(32.0)));
        assert_eq!(get("yarn_beta_slow"), Some(Value::F32(1.0)));
        assert_eq!(get("yarn_ext_factor"), None);
    }

    #[test]
    fn llama3_is_refused_where_no_tensor_carries_it() {
        let (_d, c) = config(r#"{"rope_scaling": {"rope_type": "llama3", "factor": 8}}"#);
        let err = rope_scaling(&c, "qwen2", &mut Metadata::new(), false).unwrap_err();
        assert!(err.to_string().contains("rope_scaling.rope_type"), "{err}");
        rope_scaling(&c, "llama", &mut Metadata::new(), true).unwrap();
    }

    #[test]
    fn transformers_5_rope_parameters_give_the_base_and_the_scaling() {
        let (_d, c) = config(
            r#"{"rope_parameters": {"rope_theta": 50000.0, "rope_type": "yarn", "factor": 2,
                "original_max_position_embeddings": 1024}}"#,
        );
        let mut kv = Metadata::new();
        rope_base(&c, "qwen3", &mut kv).unwrap();
        rope_scaling(&c, "qwen3", &mut kv, false).unwrap();
        let get = |k: &str| kv.get(&format!("qwen3.rope.{k}")).cloned();
        assert_eq!(get("freq_base"), Some(Value::F32(50000.0)));
        assert_eq!(get("scaling.type"), Some(Value::from("yarn")));
        assert_eq!(
            get("scaling.original_context_length"),
            Some(Value::U32(1024))
        );
        // The top-level names win where both are given.
        let (_d, c) = config(
            r#"{"rope_theta": 1e6, "rope_scaling": null, "rope_parameters": {"rope_theta": 5, "rope_type": "default"}}"#,
        );
        let mut kv = Metadata::new();
        rope_base(&c, "qwen3", &mut kv).unwrap();
        rope_scaling(&c, "qwen3", &mut kv, false).unwrap();
        assert_eq!(
            kv.get("qwen3.rope.freq_base").cloned(),
            Some(Value::F32(1e6))
        );
        assert_eq!(kv.get("qwen3.rope.scaling.type"), None);
    }
}
