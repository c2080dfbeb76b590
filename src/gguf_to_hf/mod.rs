//! GGUF → Hugging Face directory (`stload convert X.gguf --out DIR --to-hf`): the inverse of
//! stload's GGUF export for the architectures in [`BACK`]. Tensor names come from the
//! architecture's own rename pairs, inverted (each inverse checked by renaming forward again);
//! llama's Q/K repack is undone by the inverse of its row order; stacked experts are cut apart
//! by the architecture's own expert tables (the ones its transform stacks by); `config.json` and
//! `tokenizer.json` are rebuilt from the GGUF keys (`config.rs`, `tokenizer.rs`).

mod config;
mod tokenizer;

use std::path::{Path, PathBuf};

use crate::arch::{llama, lookup, mixtral, phi3, qwen3moe};
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
    /// The experts the export stacked, to be unstacked.
    pub experts: Option<Experts>,
    /// Renames the GGUF layout made after the rename pairs (old part, new part), undone first.
    pub gguf_renames: &'static [(&'static str, &'static str)],
}

/// How an architecture's experts are named apart and stacked (its own tables, shared with
/// its transform).
pub(crate) struct Experts {
    /// Between a layer's prefix and the expert index: `.mlp.experts.`.
    pub infix: &'static str,
    /// Each projection's Hugging Face name and its stacked GGUF name.
    pub names: &'static [(&'static str, &'static str)],
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
        experts: None,
        gguf_renames: &[],
    },
    Back {
        arch: "mixtral",
        gguf_name: "llama",
        hf_class: "MixtralForCausalLM",
        model_type: "mixtral",
        unrepack_qk: true,
        experts: Some(Experts {
            infix: mixtral::EXPERTS,
            names: mixtral::EXPERT_NAMES,
        }),
        gguf_renames: &[],
    },
    Back {
        arch: "qwen2",
        gguf_name: "qwen2",
        hf_class: "Qwen2ForCausalLM",
        model_type: "qwen2",
        unrepack_qk: false,
        experts: None,
        gguf_renames: &[],
    },
    Back {
        arch: "qwen3",
        gguf_name: "qwen3",
        hf_class: "Qwen3ForCausalLM",
        model_type: "qwen3",
        unrepack_qk: false,
        experts: None,
        gguf_renames: &[],
    },
    Back {
        arch: "qwen3moe",
        gguf_name: "qwen3moe",
        hf_class: "Qwen3MoeForCausalLM",
        model_type: "qwen3_moe",
        unrepack_qk: false,
        experts: Some(Experts {
            infix: qwen3moe::EXPERTS,
            names: qwen3moe::EXPERT_NAMES,
        }),
        gguf_renames: &[],
    },
    Back {
        arch: "phi3",
        gguf_name: "phi3",
        hf_class: "Phi3ForCausalLM",
        model_type: "phi3",
        unrepack_qk: false,
        experts: None,
        gguf_renames: phi3::GGUF_RENAMES,
    },
];

/// The architectures `--to-hf` rebuilds, for messages.
pub fn supported() -> String {
    BACK.iter()
        .map(|b| match b.gguf_name == b.arch {
            true => b.arch.to_string(),
            false => format!("{} (a {} GGUF with experts)", b.arch, b.gguf_name),
        })
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
    // mixtral's GGUF is llama's with experts.
    let experts = model.gguf_value(&format!("{name}.expert_count")).is_some();
    BACK.iter()
        .find(|b| b.gguf_name == name && b.experts.is_some() == experts)
        .ok_or_else(|| {
            Error::Unsupported(format!(
            "{file}: general.architecture \"{}\"{}: --to-hf does not rebuild it (supported: {})",
            crate::error::shown(name),
            if experts { " with experts" } else { "" },
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

/// One tensor to write: its GGUF name, Hugging Face name, the row order of its rows in the
/// GGUF when the export permuted them (`hf row order[i]` = GGUF row `i`), and which of how many
/// equal parts of the GGUF tensor it is (one expert of a stack).
struct Planned {
    gguf: String,
    spec: TensorSpec,
    rows: Option<Vec<u64>>,
    part: Option<(u64, u64)>,
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
        // Computed from config.json by the export (llama3's and phi3's longrope scaling).
        if name.starts_with("rope_freqs.") || name.starts_with("rope_factors_") {
            return Err(Error::Unsupported(format!(
                "{file}: tensor \"{name}\" was computed from config.json's rope_scaling, which \
                 --to-hf cannot rebuild from its factors"
            )));
        }
        let hf_name = |gguf: &str| -> Result<String> {
            let mut gguf = gguf.to_string();
            for (old, new) in back.gguf_renames {
                gguf = gguf.replace(new, old);
            }
            let gguf = gguf.as_str();
            let hf = String::from_utf8_lossy(&backward.replace_bytes(gguf.as_bytes())).into_owned();
            if hf == gguf || forward.replace_bytes(hf.as_bytes()) != gguf.as_bytes() {
                return Err(Error::Unsupported(format!(
                    "{file}: tensor \"{}\" is not one of {}'s tensors as stload writes them \
                     (no Hugging Face name renames to it)",
                    crate::error::shown(name),
                    back.arch
                )));
            }
            Ok(hf)
        };
        let dtype = if info.dtype.is_float() || info.dtype.is_block() {
            target
        } else {
            info.dtype
        };
        if let Some((prefix, proj, tail)) = back.experts.as_ref().and_then(|e| expert_of(e, name)) {
            let experts = back.experts.as_ref().map_or("", |e| e.infix);
            let (count, shape) = match info.shape.split_first() {
                Some((&n, rest)) if n > 0 && !rest.is_empty() => (n, rest),
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "{file}: tensor \"{name}\" of shape {:?} is no stack of experts",
                        info.shape
                    )))
                }
            };
            let prefix = hf_name(prefix)?;
            for e in 0..count {
                out.push(Planned {
                    gguf: name.to_string(),
                    spec: TensorSpec {
                        name: format!("{prefix}{experts}{e}.{proj}.{tail}"),
                        dtype,
                        shape: shape.to_vec(),
                    },
                    rows: None,
                    part: Some((e, count)),
                });
            }
            continue;
        }
        let hf = hf_name(name)?;
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
            part: None,
        });
    }
    Ok(out)
}

/// `(prefix, Hugging Face projection, tail)` of a stacked expert tensor `PREFIX.GGUF_PROJ.TAIL`.
fn expert_of<'a>(experts: &Experts, name: &'a str) -> Option<(&'a str, &'static str, &'a str)> {
    experts.names.iter().find_map(|(hf, gguf)| {
        let (prefix, tail) = name.split_once(&format!(".{gguf}."))?;
        Some((prefix, *hf, tail))
    })
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
    // The GGUF tensor last read: a stack of experts is read once for all its parts.
    let mut current: Option<(&str, crate::tensor::Tensor)> = None;
    write_streaming(&weights, &specs, &metadata, |i, w| {
        let p = &planned[i];
        if current.as_ref().is_none_or(|(name, _)| *name != p.gguf) {
            current = None;
            // The converted copy is cached by the model: let it go, so memory holds one tensor.
            model.release_all();
            current = Some((&p.gguf, model.get_as(&p.gguf, p.spec.dtype)?));
        }
        let Some((_, t)) = &current else {
            return Ok(());
        };
        let mut data = t.data();
        if let Some((index, count)) = p.part {
            let size = data.len() / count as usize;
            data = &data[index as usize * size..(index as usize + 1) * size];
        }
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
        if progress(data.len() as u64) {
            Ok(())
        } else {
            Err(Error::Cancelled(format!("{shown}: conversion cancelled")))
        }
    })?;
    drop(current);
    model.release_all();
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
