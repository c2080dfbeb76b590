//! A Hugging Face model directory to a GGUF file, as ollama's converter does it: the
//! architecture (from `config.json`, or the one the model was opened with) gives tensor names,
//! layouts, `ARCH.*` keys, computed tensors and value fix-ups; the tokenizer files give the
//! `tokenizer.*` keys; the GGUF writer streams it all out. This is the one place that knows all
//! three, so `arch`, `tokenizer` and `gguf` need not know each other.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::gguf::{self, GgufPlan, OutType, Split};
use crate::model::Model;
use crate::options::Options;
use crate::{arch, tokenizer};

/// The files beside the weights that a GGUF conversion reads, by name in the model's
/// configuration directory: `config.json` (the architecture), the tokenizer's files, and
/// bert's sentence-transformers `modules.json`. [`side_files`] adds the Pooling module's
/// `config.json` that `modules.json` names.
pub const SIDE_FILES: [&str; 10] = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "modules.json",
];

/// Every file besides the weights that a GGUF conversion of the model whose configuration
/// directory is `dir` reads (whether or not it exists): an output may be none of them. A
/// `modules.json` that is not a regular file or cannot be read adds nothing here: the
/// conversion reports it when it reads it. Nothing is read when `dir` is a URL (a remote
/// model's directory), which is no local path.
pub fn side_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = SIDE_FILES.iter().map(|name| dir.join(name)).collect();
    let remote = dir.to_str().and_then(crate::remote::url_of).is_some();
    let modules = dir.join("modules.json");
    if !remote && std::fs::metadata(&modules).is_ok_and(|m| m.is_file()) {
        if let Ok(Some(pooling)) = arch::pooling_config(dir) {
            files.push(pooling);
        }
    }
    files
}

impl Model {
    /// Writes this model as a GGUF file that llama.cpp and ollama run, with tensor types
    /// chosen by `outtype`. The architecture is the one the model was opened with, else
    /// `config.json`'s `architectures[0]`; `config.json` and the tokenizer files are read from
    /// [`Model::config_dir`]. A model opened without that architecture's GGUF layout is opened
    /// again with it (headers only). `progress(done, total)` counts tensor bytes written;
    /// returning false cancels with [`crate::Error::Cancelled`]. Nothing is left at `path` on
    /// any error, and `path` may not be one of the model's files nor one of the files beside
    /// them that the conversion reads (`config.json`, the tokenizer's files, ...).
    pub fn write_gguf(
        &self,
        path: impl AsRef<Path>,
        outtype: OutType,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<()> {
        self.write_gguf_as(path.as_ref(), outtype, None, progress)
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
        self.write_gguf_as(path.as_ref(), outtype, Some(split), progress)
    }

    fn write_gguf_as(
        &self,
        path: &Path,
        outtype: OutType,
        split: Option<Split>,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<Vec<PathBuf>> {
        if let Some(s) = &split {
            s.check(path)?;
        }
        let dir = self.config_dir();
        let parts = arch::gguf_parts(dir, self.options().arch.as_deref())?;
        let mut metadata = parts.metadata;
        tokenizer::write_kv(dir, parts.vocab_size, &mut metadata)?;
        let reopened;
        let model =
            if self.options().gguf_layout && self.options().arch.as_deref() == Some(parts.arch) {
                self
            } else {
                let options = Options {
                    arch: Some(parts.arch.to_string()),
                    gguf_layout: true,
                    ..self.options().clone()
                };
                let files: Vec<&Path> = self.files().collect();
                reopened = Model::open_files(&files, &options)?;
                &reopened
            };
        let adjust = parts.adjust;
        let plan = GgufPlan {
            metadata,
            extra: parts.computed,
            adjust: &adjust,
            skip: &|_| false,
            split,
            inputs: side_files(dir),
        };
        gguf::write_model(model, path, outtype, plan, progress)
    }
}
