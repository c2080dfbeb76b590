//! Built-in architectures: the renames and transforms ollama's converters apply, so engines get
//! GGUF-style names and layouts straight from Hugging Face checkpoints, and for a GGUF file the
//! metadata llama.cpp reads (KV), the tensors computed from config.json and per-tensor value
//! fix-ups. One file per architecture, each with the same parts: parameters from config.json,
//! KV, tensor mapping, replacements.

mod bert;
mod command_r;
mod config;
mod deepseek2;
mod detect;
mod gemma;
mod gemma2;
mod gemma3;
mod gpt_oss;
mod granite;
mod keys;
pub(crate) mod llama;
mod llama4;
pub(crate) mod mixtral;
mod olmo2;
pub(crate) mod phi3;
mod qwen2;
mod qwen3;
pub(crate) mod qwen3moe;
mod registry;
mod stablelm;

use std::path::Path;
use std::sync::Arc;

pub use config::{Config, Section};
pub use detect::{detect, detect_in, detect_limited};
pub use registry::{help, leaves_out, left_out, HF_NAMES, NAMES};
pub(crate) use registry::{lookup, Arch};

use crate::error::{Error, Result};
use crate::file::DEFAULT_MAX_JSON_SIZE;
use crate::kv::Metadata;
use crate::side_files::SideFiles;

pub use crate::kv::ComputedTensor;

/// A value fix-up applied in f32 to one tensor before it is written (gemma's norms: +1).
pub type Adjust = fn(&mut [f32]);

/// The name that selects the architecture from `config.json` `architectures[0]` at open.
pub const AUTO: &str = "auto";

/// The model's tensors a GGUF is written from: GGUF name and shape (outermost first). Computed
/// tensors take their sizes from config.json, so each is checked against these first: a tiny
/// model with an absurd `head_dim` must not make a huge tensor.
pub type Tensors<'a> = [(&'a str, &'a [u64])];

/// Checks that a tensor of `count` values computed from config.json fits the model: at least
/// one tensor whose name ends with `suffix` exists, each has `rows` rows (when given), and none
/// holds fewer values than the computed tensor (which is derived from its rows).
pub(crate) fn check_computed(
    config: &Config,
    tensors: &Tensors,
    computed: &str,
    count: u64,
    suffix: &str,
    rows: Option<u64>,
) -> Result<()> {
    let mut found = false;
    for (name, shape) in tensors.iter().filter(|(n, _)| n.ends_with(suffix)) {
        found = true;
        let have = shape.first().copied().unwrap_or(0);
        if let Some(want) = rows.filter(|&r| r != have) {
            return Err(config.inconsistent(&format!(
                "tensor \"{computed}\" would take its size from config.json, but tensor \"{name}\" has {have} rows where config.json's head sizes need {want}"
            )));
        }
        let values = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        if values.is_some_and(|v| v < count) {
            return Err(config.inconsistent(&format!(
                "tensor \"{computed}\" would hold {count} values, more than tensor \"{name}\" of shape {shape:?} it is derived from"
            )));
        }
    }
    if !found {
        return Err(config.inconsistent(&format!(
            "tensor \"{computed}\" needs a tensor \"*{suffix}\" in the model to check its size against, and there is none"
        )));
    }
    Ok(())
}

/// Checks a name given to `Options::arch`: one of [`NAMES`] or [`AUTO`].
pub fn check_name(name: &str) -> Result<()> {
    if name.eq_ignore_ascii_case(AUTO) {
        return Ok(());
    }
    lookup(name).map(|_| ())
}

/// The architecture name `name` selects: [`AUTO`] is detected from `config_dir/config.json`,
/// any other name is checked and returned in its canonical spelling.
pub fn resolve(name: &str, config_dir: &Path) -> Result<&'static str> {
    resolve_limited(name, config_dir, DEFAULT_MAX_JSON_SIZE)
}

/// [`resolve`] with `config.json` bounded by `max_json` bytes.
pub fn resolve_limited(name: &str, config_dir: &Path, max_json: u64) -> Result<&'static str> {
    if name.eq_ignore_ascii_case(AUTO) {
        detect_limited(config_dir, max_json)
    } else {
        lookup(name).map(|a| a.name)
    }
}

/// [`resolve`] with [`AUTO`] detected from the `config.json` of `side`.
pub fn resolve_in(name: &str, side: &SideFiles) -> Result<&'static str> {
    if name.eq_ignore_ascii_case(AUTO) {
        detect_in(side)
    } else {
        lookup(name).map(|a| a.name)
    }
}

/// The architecture for the model opened with `Options::arch = name` and the side files
/// `side` (their config.json).
pub(crate) fn for_open(name: &str, side: &SideFiles) -> Result<&'static Arch> {
    lookup(resolve_in(name, side)?)
}

/// The architecture of a GGUF export and the config.json it reads: `name` as given (or
/// [`AUTO`]), detected from the config.json of `side` when `None`.
pub(crate) fn for_gguf(
    side: &Arc<SideFiles>,
    name: Option<&str>,
) -> Result<(&'static Arch, Config)> {
    let arch = for_open(name.unwrap_or(AUTO), side)?;
    let config = config_for(arch.name, Arc::clone(side))?;
    Ok((arch, config))
}

/// The config.json of `side` for the architecture `name`. A config whose `architectures[0]`
/// declares another architecture stload knows is refused, naming both: the other's keys and
/// tensors would fail later with a misleading message, or worse, convert. A config that
/// declares none, or one stload does not know, is taken as `name`.
pub(crate) fn config_for(name: &str, side: Arc<SideFiles>) -> Result<Config> {
    let config = Config::of(side, name)?;
    match config.declared() {
        Some((hf, declared)) if declared != name => Err(Error::InvalidArgument(format!(
            "{}: declares \"{hf}\" (architecture {declared}), not {name}: give the \
             architecture {declared}, or auto to detect it",
            config.path().display()
        ))),
        _ => Ok(config),
    }
}

/// What a GGUF file of an architecture needs besides the model's tensors.
#[derive(Debug)]
pub struct GgufParts {
    /// The architecture's name (one of [`NAMES`]).
    pub arch: &'static str,
    /// `general.architecture` and the `ARCH.*` keys (plus bert's
    /// `tokenizer.ggml.token_type_count`).
    pub metadata: Metadata,
    /// Tensors computed from config.json, to append.
    pub computed: Vec<ComputedTensor>,
    /// Per GGUF tensor name, the value fix-up to apply in f32 before conversion.
    pub adjust: fn(&str) -> Option<Adjust>,
    /// config.json's `vocab_size`, which the tokenizer's vocabulary is padded to.
    pub vocab_size: Option<u64>,
    /// `quantization_config.weight_block_size` (rows, columns): the blocks each value of an
    /// FP8 weight's `weight_scale_inv` scales.
    pub weight_block_size: Option<[u64; 2]>,
}

/// The metadata, computed tensors and fix-ups of a GGUF export of the checkpoint whose
/// config.json is in `config_dir`; `name` selects the architecture (one of [`NAMES`] or
/// [`AUTO`]), `None` detects it. Open the model with `Options { arch, gguf_layout: true, .. }`
/// to get the tensors in the layout these describe, and pass them as `tensors`: every computed
/// tensor's size is checked against them before it is computed.
pub fn gguf_parts(config_dir: &Path, name: Option<&str>, tensors: &Tensors) -> Result<GgufParts> {
    gguf_parts_limited(config_dir, name, tensors, DEFAULT_MAX_JSON_SIZE)
}

/// [`gguf_parts`] with `config.json` and the files beside it (bert's `modules.json` and
/// pooling config) bounded by `max_json` bytes (`Options::max_json_size`).
pub fn gguf_parts_limited(
    config_dir: &Path,
    name: Option<&str>,
    tensors: &Tensors,
    max_json: u64,
) -> Result<GgufParts> {
    let side = Arc::new(SideFiles::read_arch(config_dir, max_json));
    gguf_parts_in(&side, name, tensors)
}

/// [`gguf_parts`] of the model whose side files are `side` (read once, within their bounds).
pub fn gguf_parts_in(
    side: &Arc<SideFiles>,
    name: Option<&str>,
    tensors: &Tensors,
) -> Result<GgufParts> {
    let (arch, config) = for_gguf(side, name)?;
    let mut metadata = Metadata::new();
    (arch.kv)(&config, &mut metadata)?;
    debug_assert!(
        metadata.get("general.architecture") == Some(&arch.gguf_name.into()),
        "{} writes general.architecture",
        arch.name
    );
    Ok(GgufParts {
        arch: arch.name,
        metadata,
        computed: (arch.computed)(&config, tensors)?,
        adjust: arch.adjust,
        vocab_size: config.optional("vocab_size")?,
        weight_block_size: config.weight_block_size()?,
    })
}
