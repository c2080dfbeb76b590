//! GGUF → Hugging Face directory (`stload convert X.gguf --out DIR --to-hf`): the inverse of
//! stload's GGUF export for the architectures in [`BACK`]. Tensor names come from the
//! architecture's own rename pairs, inverted (each inverse checked by renaming forward again);
//! llama's Q/K repack is undone by the inverse of its row order; `config.json` and
//! `tokenizer.json` are rebuilt from the GGUF keys (`config.rs`, `tokenizer.rs`).

mod config;
mod tokenizer;

use std::path::{Path, PathBuf};

use crate::arch::{llama, lookup};
use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::file::Format;
use crate::kv::Value;
use crate::model::Model;
use crate::rename::Replacer;
use crate::write::{write_bytes, write_streaming, TensorSpec};

/// How one architecture's GGUF goes back to Hugging Face: the stload architecture whose rename
/// pairs are inverted, and what `config.json` declares.
pub(crate) struct Back {
    /// The stload architecture (one of `arch::NAMES`).
    pub arch: &'static str,
    /// `general.architecture` of its GGUF files.
    pub gguf_name: &'static str,
    /// `config.json`'s `architectures[0]`.
    pub hf_class: &'static str,
    /// `config.json`'s `model_type`.
    pub model_type: &'static str,
    /// Whether the export repacked Q/K (llama's rope layout), to be undone.
    pub unrepack_qk: bool,
}

/// Every architecture `--to-hf` rebuilds. A GGUF of Mistral is llama's (llama.cpp's converter
/// writes it so) and comes back as `LlamaForCausalLM`, which computes the same.
pub(crate) const BACK: &[Back] = &[
    Back {
        arch: "llama",
        gguf_name: "llama",
        hf_class: "LlamaForCausalLM",
        model_type: "llama",
        unrepack_qk: true,
    },
    Back {
        arch: "qwen2",
        gguf_name: "qwen2",
        hf_class: "Qwen2ForCausalLM",
        model_type: "qwen2",
        unrepack_qk: false,
    },
    Back {
        arch: "qwen3",
        gguf_name: "qwen3",
        hf_class: "Qwen3ForCausalLM",
        model_type: "qwen3",
        unrepack_qk: false,
    },
];

/// The `general.architecture` values `--to-hf` rebuilds, for messages.
pub fn supported() -> String {
    BACK.iter()
        .map(|b| b.gguf_name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The dtypes `--to-hf` writes floats as.
pub const TARGETS: &[Dtype] = &[Dtype::F32, Dtype::F16, Dtype::BF16];

/// The file the GGUF model was opened from, for messages.
fn source_name(model: &Model) -> String {
    model
        .files()
        .next()
        .map_or_else(|| "the model".into(), |p| p.display().to_string())
}

/// A string key of the GGUF.
pub(crate) fn string_key<'a>(model: &'a Model, key: &str) -> Option<&'a str> {
    match model.gguf_value(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// An integer key of the GGUF (any integer type), refused when negative or of another type.
pub(crate) fn int_key(model: &Model, key: &str) -> Result<Option<u64>> {
    let v = match model.gguf_value(key) {
        None => return Ok(None),
        Some(v) => v,
    };
    let n = match *v {
        Value::U8(n) => Some(u64::from(n)),
        Value::U16(n) => Some(u64::from(n)),
        Value::U32(n) => Some(u64::from(n)),
        Value::U64(n) => Some(n),
        Value::I8(n) => u64::try_from(n).ok(),
        Value::I16(n) => u64::try_from(n).ok(),
        Value::I32(n) => u64::try_from(n).ok(),
        Value::I64(n) => u64::try_from(n).ok(),
        _ => None,
    };
    n.map(Some).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{}: key {key} is {v:?}, not a count",
            source_name(model)
        ))
    })
}

/// The architecture a GGUF model goes back as, or an error naming what it is and what is
/// supported.
fn back_of(model: &Model) -> Result<&'static Back> {
    let file = source_name(model);
    let name = string_key(model, "general.architecture").ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{file}: no general.architecture key: --to-hf rebuilds a Hugging Face model only \
             from a GGUF model file (supported: {})",
            supported()
        ))
    })?;
    // mixtral's GGUF is llama's with experts: not rebuilt yet.
    if name == "llama" && model.gguf_value("llama.expert_count").is_some() {
        return Err(Error::Unsupported(format!(
            "{file}: a llama GGUF with experts (mixtral): --to-hf does not rebuild it yet \
             (supported: {})",
            supported()
        )));
    }
    BACK.iter().find(|b| b.gguf_name == name).ok_or_else(|| {
        Error::Unsupported(format!(
            "{file}: general.architecture \"{}\": --to-hf does not rebuild it (supported: {})",
            crate::error::shown(name),
            supported()
        ))
    })
}

/// The inverse of the architecture's renames: each GGUF name part back to its Hugging Face
/// part, longest first, so `output_norm` and `attn_output` are not taken for `output`.
fn inverse(forward: &Replacer) -> Replacer {
    let mut pairs: Vec<(String, String)> = forward
        .pairs()
        .iter()
        .map(|(hf, gguf)| (gguf.clone(), hf.clone()))
        .collect();
    pairs.sort_by_key(|(gguf, _)| std::cmp::Reverse(gguf.len()));
    Replacer::new(pairs)
}

/// One tensor to write: its GGUF name, Hugging Face name, and the row order of its rows in the
/// GGUF when the export permuted them (`hf row order[i]` = GGUF row `i`).
struct Planned {
    gguf: String,
    spec: TensorSpec,
    rows: Option<Vec<u64>>,
}

/// The tensors of `model` under their Hugging Face names, each checked to rename forward to its
/// GGUF name again.
fn plan(model: &Model, back: &Back, target: Dtype) -> Result<Vec<Planned>> {
    let file = source_name(model);
    let forward = lookup(back.arch)?.replacer()?;
    let backward = inverse(&forward);
    let heads = |key: &str| int_key(model, &format!("{}.attention.{key}", back.gguf_name));
    let q_heads = heads("head_count")?;
    let k_heads = heads("head_count_kv")?.or(q_heads);
    let mut out = Vec::with_capacity(model.len());
    for info in model.infos() {
        let name = info.name;
        if name == "rope_freqs.weight" {
            return Err(Error::Unsupported(format!(
                "{file}: tensor \"rope_freqs.weight\" (llama3 rope scaling): --to-hf cannot \
                 rebuild config.json's rope_scaling from its factors"
            )));
        }
        let hf = String::from_utf8_lossy(&backward.replace_bytes(name.as_bytes())).into_owned();
        let again = String::from_utf8_lossy(&forward.replace_bytes(hf.as_bytes())).into_owned();
        if hf == name || again != name {
            return Err(Error::Unsupported(format!(
                "{file}: tensor \"{}\" is not one of {}'s tensors as stload writes them \
                 (no Hugging Face name renames to it)",
                crate::error::shown(name),
                back.arch
            )));
        }
        let dtype = if info.dtype.is_float() || info.dtype.is_block() {
            target
        } else {
            info.dtype
        };
        let rows = match (back.unrepack_qk, info.shape.first().copied()) {
            (true, Some(rows))
                if name.ends_with("attn_q.weight") || name.ends_with("attn_k.weight") =>
            {
                let h = if name.ends_with("attn_q.weight") {
                    q_heads
                } else {
                    k_heads
                };
                let h = h.ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{file}: tensor \"{name}\" needs {}.attention.head_count to undo the Q/K \
                         repack, and the key is missing",
                        back.gguf_name
                    ))
                })?;
                if h == 0 || rows % (2 * h) != 0 {
                    return Err(Error::InvalidArgument(format!(
                        "{file}: tensor \"{name}\" has {rows} rows, not a whole number of {h} \
                         heads of an even size"
                    )));
                }
                Some(llama::repack_order(rows, h))
            }
            _ => None,
        };
        out.push(Planned {
            gguf: name.to_string(),
            spec: TensorSpec {
                name: hf,
                dtype,
                shape: info.shape.to_vec(),
            },
            rows,
        });
    }
    Ok(out)
}

/// Refuses an output that exists and is not an empty directory.
fn check_out(out: &Path) -> Result<()> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::InvalidArgument(format!(
                    "--out {}: the directory is not empty: --to-hf writes into a new or empty \
                     directory",
                    out.display()
                )));
            }
            Ok(())
        }
        Err(_) if out.exists() => Err(Error::InvalidArgument(format!(
            "--out {}: is not a directory: --to-hf writes a directory",
            out.display()
        ))),
        Err(_) => std::fs::create_dir_all(out)
            .map_err(|e| Error::io(out.display(), "cannot create the directory", &e)),
    }
}

/// Writes the Hugging Face directory `out` (new or empty) from the GGUF `model`: weights as
/// `model.safetensors` with floats and quantised types as `target` (F32, F16 or BF16),
/// `config.json`, `tokenizer.json` and `tokenizer_config.json`. `progress(bytes)` is told the
/// bytes of each tensor written; `false` cancels. Returns the files written.
pub fn write_hf(
    model: &Model,
    out: &Path,
    target: Dtype,
    progress: &mut dyn FnMut(u64) -> bool,
) -> Result<Vec<PathBuf>> {
    if !TARGETS.contains(&target) {
        return Err(Error::InvalidArgument(format!(
            "--to-hf writes f32, f16 or bf16, not {}",
            target.name()
        )));
    }
    if let Some(file) = (0..model.files().count())
        .find(|&i| model.file_format(i) != Format::Gguf)
        .and_then(|i| model.files().nth(i))
    {
        return Err(Error::InvalidArgument(format!(
            "{}: --to-hf converts a GGUF model, and this is not a GGUF file",
            file.display()
        )));
    }
    let back = back_of(model)?;
    let planned = plan(model, back, target)?;
    // Everything rebuilt from the keys before a byte is written: a refusal leaves no output.
    let config = config::build(
        model,
        back,
        &planned.iter().map(|p| &p.spec).collect::<Vec<_>>(),
    )?;
    let (tokenizer, tokenizer_config) = tokenizer::build(model)?;
    check_out(out)?;
    let weights = out.join("model.safetensors");
    let specs: Vec<TensorSpec> = planned.iter().map(|p| p.spec.clone()).collect();
    let metadata = [("format".to_string(), "pt".to_string())].into();
    let shown = weights.display().to_string();
    write_streaming(&weights, &specs, &metadata, |i, w| {
        let p = &planned[i];
        let t = model.get_as(&p.gguf, p.spec.dtype)?;
        let data = t.data();
        let io = |e: std::io::Error| Error::io(&shown, "cannot write", &e);
        match &p.rows {
            None => w.write_all(data).map_err(io)?,
            Some(order) => {
                let row = data.len() / order.len().max(1);
                let mut hf = vec![0u8; data.len()];
                for (i, &r) in order.iter().enumerate() {
                    let (to, from) = (r as usize * row, i * row);
                    hf[to..to + row].copy_from_slice(&data[from..from + row]);
                }
                w.write_all(&hf).map_err(io)?;
            }
        }
        let bytes = data.len() as u64;
        drop(t);
        // The converted copy is cached by the model: let it go, so memory holds one tensor.
        model.release_all();
        if progress(bytes) {
            Ok(())
        } else {
            Err(Error::Cancelled(format!("{shown}: conversion cancelled")))
        }
    })?;
    let mut written = vec![weights];
    for (name, value) in [
        ("config.json", config),
        ("tokenizer.json", tokenizer),
        ("tokenizer_config.json", tokenizer_config),
    ] {
        let path = out.join(name);
        let mut text = serde_json::to_vec_pretty(&value)
            .map_err(|e| Error::InvalidArgument(format!("{name}: {e}")))?;
        text.push(b'\n');
        write_bytes(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}
