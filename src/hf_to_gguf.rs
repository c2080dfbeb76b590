//! A Hugging Face model directory to a GGUF file, as ollama's converter does it: the
//! architecture (from `config.json`, or the one the model was opened with) gives tensor names,
//! layouts, `ARCH.*` keys, computed tensors and value fix-ups; the tokenizer files give the
//! `tokenizer.*` keys; the GGUF writer streams it all out. This is the one place that knows all
//! three, so `arch`, `tokenizer` and `gguf` need not know each other.

use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::sync::Arc;

use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::gguf::tensor_types::TypeOverrides;
use crate::gguf::{self, BlockScale, GgufPlan, OutType, Split};
use crate::model::Model;
use crate::options::Options;
use crate::side_files::SideFiles;
use crate::{arch, tokenizer};

/// Every file besides the weights that a GGUF conversion of the model whose configuration
/// directory is `dir` reads (whether or not it exists): the fixed names of
/// `side_files::ALL`, and the Pooling module's `config.json` that bert's `modules.json`
/// names (read within `max_json` bytes). An output may be none of them. A `modules.json` that
/// cannot be read adds nothing here: the conversion reports it when it reads it. Nothing is
/// read when `dir` is a URL (a remote model's directory), which is no local path.
pub fn side_files(dir: &Path, max_json: u64) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = crate::side_files::ALL
        .iter()
        .map(|name| dir.join(name))
        .collect();
    files.push(dir.join(crate::side_files::MODEL_CARD));
    let remote = dir.to_str().and_then(crate::remote::url_of).is_some();
    if !remote {
        let modules = SideFiles::read_only(dir, &[crate::side_files::MODULES], max_json);
        if let Ok(Some(pooling)) = modules.pooling_config() {
            files.push(dir.join(pooling));
        }
    }
    files
}

impl Model {
    /// Writes this model as a GGUF file that llama.cpp and ollama run, with tensor types
    /// chosen by `outtype`. The architecture is the one the model was opened with, else
    /// `config.json`'s `architectures[0]`; `config.json` and the tokenizer files are read once
    /// each (within `max_json_size`) from [`Model::config_dir`], or, for a model opened from a
    /// URL without a cache directory, fetched from its URL prefix (never read as a local path
    /// spelled like the URL). A model opened without that architecture's GGUF layout is opened
    /// again with it (headers only). The sizes config.json gives are checked against the
    /// tensors before anything is computed from them: `vocab_size` and the tokenizer's token
    /// count must equal the token embedding's rows, a computed tensor's length the attention
    /// tensors'. A quantised `outtype` applies the model's `Options::type_overrides` (a float
    /// one with any set is refused). `progress(done, total)` counts tensor bytes written;
    /// returning false cancels with [`crate::Error::Cancelled`]. Nothing is left at `path` on
    /// any error, and `path` may not be one of the model's files nor one of the files beside
    /// them that the conversion reads (`config.json`, the tokenizer's files, ...).
    pub fn write_gguf(
        &self,
        path: impl AsRef<Path>,
        outtype: OutType,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        self.write_gguf_as(
            path.as_ref(),
            outtype,
            None,
            self.options().type_overrides.clone(),
            progress,
        )
        .map(drop)
    }

    /// [`Model::write_gguf`] cut into shards as llama.cpp's gguf-split does: files
    /// `PREFIX-00001-of-0000N.gguf` beside `path` (`path` less its `.gguf` extension is the
    /// prefix; see [`gguf::shard_path`]), the first holding all the metadata. Each shard closes
    /// before `split.max_bytes` of tensor data or `split.max_tensors` tensors (0 = no limit,
    /// at least one limit set); a tensor larger than `max_bytes` goes alone in a shard. Returns
    /// the shards written, in order. On any error or a cancel no shard is left, and no shard
    /// may be one of the model's files or the files beside them that the conversion reads.
    pub fn write_gguf_split(
        &self,
        path: impl AsRef<Path>,
        outtype: OutType,
        split: Split,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<Vec<PathBuf>> {
        self.write_gguf_as(
            path.as_ref(),
            outtype,
            Some(split),
            self.options().type_overrides.clone(),
            progress,
        )
    }

    /// [`Model::write_gguf`], in shards when `split` is given ([`Model::write_gguf_split`]),
    /// with llama-quantize's overrides of the per-tensor types of a quantised `outtype`
    /// (`--output-tensor-type`, `--token-embedding-type`, `--tensor-type`, `--pure`) in place
    /// of the model's `Options::type_overrides`. Overrides with a float `outtype` are refused.
    /// Returns the files written.
    pub fn write_gguf_with(
        &self,
        path: impl AsRef<Path>,
        outtype: OutType,
        split: Option<Split>,
        types: TypeOverrides,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<Vec<PathBuf>> {
        self.write_gguf_as(path.as_ref(), outtype, split, types, progress)
    }

    fn write_gguf_as(
        &self,
        path: &Path,
        outtype: OutType,
        split: Option<Split>,
        types: TypeOverrides,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<Vec<PathBuf>> {
        if let Some(s) = &split {
            s.check(path)?;
        }
        if !types.is_empty() && outtype.quantized().is_none() {
            return Err(Error::InvalidArgument(format!(
                "the output tensor type, token embedding type, tensor type and pure overrides apply to a quantised output type, not {outtype}"
            )));
        }
        types.check()?;
        // Every file beside the weights is read here, once, within its bound.
        let side = Arc::new(self.side_files()?);
        let dir = self.config_dir();
        let max_json = self.options().max_json_size;
        let name = arch::resolve_in(self.options().arch.as_deref().unwrap_or(arch::AUTO), &side)?;
        let reopened;
        let model = if self.options().gguf_layout && self.options().arch.as_deref() == Some(name) {
            self
        } else {
            let options = Options {
                arch: Some(name.to_string()),
                gguf_layout: true,
                ..self.options().clone()
            };
            let files: Vec<&Path> = self.files().collect();
            reopened = Model::open_files_with(&files, &options, Some(Arc::clone(&side)))?;
            &reopened
        };
        // config.json's sizes are checked against the tensors before anything is computed or
        // padded from them: a small config must not make a large file.
        let tensors: Vec<(&str, &[u64])> = model.infos().map(|i| (i.name, i.shape)).collect();
        let parts = arch::gguf_parts_in(&side, Some(name), &tensors)?;
        // FP8 weights pair with their scales before anything else is read.
        let scales = block_scales(model, dir, parts.weight_block_size)?;
        let embeddings = embedding_rows(model)?;
        if let (Some(size), Some((tensor, rows))) = (parts.vocab_size, &embeddings) {
            if size != *rows {
                return Err(Error::format(
                    dir.join(crate::side_files::CONFIG).display(),
                    None,
                    format!(
                        "vocab_size {size} differs from the {rows} rows of tensor \"{tensor}\""
                    ),
                ));
            }
        }
        let mut metadata = parts.metadata;
        if metadata.get("general.name").is_none() {
            metadata.set("general.name", crate::general_name::of(&side));
        }
        let vocabulary = tokenizer::Vocabulary::read_in(
            &side,
            parts.vocab_size,
            self.options().tokenizer_pre.as_deref(),
        )?;
        if let Some((tensor, rows)) = &embeddings {
            let have = vocabulary.tokens.len() as u64;
            if have != *rows {
                return Err(Error::format(
                    dir.display(),
                    None,
                    format!(
                        "the tokenizer has {have} tokens but tensor \"{tensor}\" has {rows} rows (one per token); set vocab_size in config.json to pad the vocabulary"
                    ),
                ));
            }
        }
        vocabulary.into_kv(&mut metadata);
        let adjust = parts.adjust;
        let scale = |name: &str| scales.get(name).cloned();
        let scale_of_a_weight = |name: &str| scales.values().any(|s| s.tensor == name);
        let plan = GgufPlan {
            metadata,
            extra: parts.computed,
            adjust: &adjust,
            skip: &scale_of_a_weight,
            scale: &scale,
            split,
            inputs: side_files(dir, max_json),
            types,
        };
        gguf::write_model(model, path, outtype, plan, progress)
    }
}

/// The suffix of an FP8 weight's block scales (`X.weight` → `X.weight_scale_inv`).
const SCALE_SUFFIX: &str = "_scale_inv";

/// The block scales of the model's FP8 weights, by weight name: each `X_scale_inv` scales
/// tensor `X` in blocks of config.json's `quantization_config.weight_block_size`, and the pair
/// is written dequantised (as llama.cpp's converter does; the scales are not written). An FP8
/// weight without its scales is refused: its stored values alone are not the weight's.
fn block_scales(
    model: &Model,
    dir: &Path,
    block: Option<[u64; 2]>,
) -> Result<HashMap<String, BlockScale>> {
    let mut scales = HashMap::new();
    for info in model.infos() {
        let Some(weight) = info.name.strip_suffix(SCALE_SUFFIX) else {
            continue;
        };
        let Ok(scaled) = model.info(weight) else {
            return Err(Error::format(
                info.file.display(),
                Some(info.original_name),
                format!("holds block scales, but the model has no tensor \"{weight}\" they scale"),
            ));
        };
        let Some(block) = block else {
            return Err(Error::format(
                dir.join(crate::side_files::CONFIG).display(),
                None,
                format!(
                    "tensor \"{}\" has block scales \"{}\" but \"quantization_config.weight_block_size\" is missing",
                    scaled.original_name, info.original_name
                ),
            ));
        };
        let tensor = info.name.to_string();
        scales.insert(weight.to_string(), BlockScale { tensor, block });
    }
    let fp8 = [
        Dtype::F8E4M3,
        Dtype::F8E5M2,
        Dtype::F8E4M3Fnuz,
        Dtype::F8E5M2Fnuz,
    ];
    if let Some(bare) = model
        .infos()
        .find(|i| fp8.contains(&i.dtype) && !scales.contains_key(i.name))
    {
        return Err(Error::format(
            bare.file.display(),
            Some(bare.original_name),
            format!(
                "is an {} weight without its scales \"{}{SCALE_SUFFIX}\": FP8 values are written only dequantised by their block scales",
                bare.dtype, bare.original_name
            ),
        ));
    }
    Ok(scales)
}

/// The rows of the token embedding (`token_embd.weight`), which llama.cpp sizes by the token
/// count, as (original name, rows); an output projection (`output.weight`) must have as many.
/// `None` when the model has no token embedding.
fn embedding_rows(model: &Model) -> Result<Option<(String, u64)>> {
    let Ok(embd) = model.info("token_embd.weight") else {
        return Ok(None);
    };
    let n = embd.shape.first().copied().unwrap_or(0);
    // A token embedding with no values per row would let a tiny file claim any token count.
    if n > 0 && embd.shape.iter().skip(1).any(|&d| d == 0) {
        return Err(Error::format(
            embd.file.display(),
            Some(embd.original_name),
            format!("has {n} rows of no values: a token embedding needs a width"),
        ));
    }
    if let Ok(output) = model.info("output.weight") {
        let m = output.shape.first().copied().unwrap_or(0);
        if m != n {
            return Err(Error::format(
                output.file.display(),
                Some(output.original_name),
                format!(
                    "has {m} rows but tensor \"{}\" has {n}: both need one per token",
                    embd.original_name
                ),
            ));
        }
    }
    Ok(Some((embd.original_name.to_string(), n)))
}
