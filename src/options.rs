//! Settings for opening a model. New settings get defaults, so old callers keep working.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::header::MAX_HEADER_SIZE;
use crate::rename::Replacer;
use crate::type_overrides::{parse_ggml_type, TensorTypeOverride, TypeOverrides};

/// Split one tensor along axis 0 into consecutive row ranges, each listed under a new name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRule {
    /// The tensor to split (its name after renaming).
    pub name: String,
    /// `(new name, rows)` in order; the rows must add up to the tensor's first dimension.
    pub parts: Vec<(String, u64)>,
}

/// Stack equal-shaped tensors on a new axis 0 under one new name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRule {
    /// The tensors to stack, in order (names after renaming).
    pub names: Vec<String>,
    /// The name of the stacked tensor.
    pub into: String,
}

/// How a model is opened and served.
///
/// Outside this crate, start from `Options::default()` and set fields or call the setters
/// (`#[non_exhaustive]`: new settings may be added without breaking callers).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Largest accepted header (JSON bytes) per file; the reference's 100 MB by default. It
    /// bounds a remote GGUF file's header too (whose length the format does not give, so it
    /// is fetched in growing pieces up to this many bytes); a local GGUF header is bounded by
    /// its file.
    pub max_header_size: u64,
    /// Threads used to convert large tensors; 0 means one per available core; at most
    /// 1024 (`MAX_THREADS`) are used.
    pub threads: usize,
    /// Keep converted tensors so a second `get` of the same name and dtype is free.
    pub cache_converted: bool,
    /// Renames applied to every tensor name (after the architecture's own).
    pub rename: Replacer,
    /// A built-in architecture (one of llama, mixtral, phi3, qwen2, qwen3, qwen3moe, gemma, gemma2,
    /// gemma3, olmo2, granite, stablelm, command-r, llama4, gpt-oss, deepseek2, bert) whose renames and transforms apply, or
    /// "auto" to pick it from `config.json` `architectures[0]`; it reads `config.json` beside the
    /// weights.
    pub arch: Option<String>,
    /// With `arch`: lay the tensors out as a GGUF file of the architecture stores them
    /// (phi3 keeps its fused `attn_qkv` and gate/up `ffn_up` instead of splitting them).
    pub gguf_layout: bool,
    /// Tensors to split along axis 0 (names after renaming).
    pub splits: Vec<SplitRule>,
    /// Tensors to stack on a new axis 0 (names after renaming).
    pub stacks: Vec<StackRule>,
    /// Read data with positioned reads into memory instead of mapping files: no SIGBUS when a
    /// file shrinks, and faster on network file systems; every get copies.
    pub read_mode: bool,
    /// How often a file is re-checked (size, inode, mtime) before data is served from it;
    /// zero checks on every access.
    pub check_interval: Duration,
    /// Most tensors a model may list.
    pub max_tensors: usize,
    /// Most bytes `load` may materialise (new memory; zero-copy tensors do not count).
    pub max_load_bytes: u64,
    /// Start bringing every file's data into memory on a background thread at open
    /// (mmap mode only).
    pub prefetch: bool,
    /// Largest `config.json`, `model.safetensors.index.json` or other JSON or text file
    /// beside the weights read (`tokenizer_config.json`, `generation_config.json`, a chat
    /// template, ...), in bytes (16 MiB by default). `tokenizer.json` and `tokenizer.model`
    /// may have 256 MiB, or this when larger.
    pub max_json_size: u64,
    /// Most bytes a PyTorch view may have per byte of its storage
    /// (64 by default): a stride-0 view of a few bytes
    /// would otherwise expand to gigabytes on get.
    pub max_view_expansion: u64,
    /// Models in object storage or behind HTTP: store configuration on top of the
    /// environment, parallel reads and retries ([`Options::set_remote`]). Feature `remote`.
    #[cfg(feature = "remote")]
    pub remote: RemoteOptions,
    /// GGUF output: the `tokenizer.ggml.pre` to write (a llama.cpp pre-tokenizer type such as
    /// "llama-bpe", "qwen2" or "gpt-2") in place of the type derived from `tokenizer.json`'s
    /// pre-tokenizer, which is refused when no llama.cpp type splits text as it does.
    pub tokenizer_pre: Option<String>,
    /// Quantised GGUF output: llama-quantize's overrides of the per-tensor types
    /// (`--output-tensor-type`, `--token-embedding-type`, `--tensor-type`, `--pure`), which
    /// `Model::write_gguf` and `Model::write_gguf_split` apply; a float output type with any
    /// of them set is refused there. `Model::write_gguf_with` takes its own instead.
    pub type_overrides: TypeOverrides,
}

#[cfg(feature = "remote")]
pub use crate::remote::RemoteOptions;

pub use crate::file::DEFAULT_MAX_JSON_SIZE;

/// Most threads one operation uses; [`Options::set_threads`] refuses more, and a larger
/// `threads` set directly is clamped.
pub const MAX_THREADS: usize = 1024;

impl Default for Options {
    fn default() -> Options {
        Options {
            max_header_size: MAX_HEADER_SIZE,
            threads: 0,
            cache_converted: true,
            rename: Replacer::default(),
            arch: None,
            gguf_layout: false,
            splits: Vec::new(),
            stacks: Vec::new(),
            read_mode: false,
            check_interval: Duration::from_millis(100),
            max_tensors: 10_000_000,
            max_load_bytes: u64::MAX,
            prefetch: false,
            max_json_size: DEFAULT_MAX_JSON_SIZE,
            max_view_expansion: crate::torch::DEFAULT_MAX_VIEW_EXPANSION,
            #[cfg(feature = "remote")]
            remote: RemoteOptions::default(),
            tokenizer_pre: None,
            type_overrides: TypeOverrides::default(),
        }
    }
}

impl Options {
    /// Sets the largest accepted header (JSON bytes per file); 0 is refused.
    pub fn set_max_header_size(&mut self, bytes: u64) -> Result<&mut Options> {
        at_least_one(bytes, "max header size must be at least 1 byte")?;
        self.max_header_size = bytes;
        Ok(self)
    }

    /// Sets the largest `config.json`, shard index or other JSON or text file beside the
    /// weights read ([`Options::max_json_size`]), in bytes; 0 is refused.
    pub fn set_max_json_size(&mut self, bytes: u64) -> Result<&mut Options> {
        at_least_one(bytes, "max JSON size must be at least 1 byte")?;
        self.max_json_size = bytes;
        Ok(self)
    }

    /// Sets how many bytes a PyTorch view may have per byte of its storage; 0 is refused.
    pub fn set_max_view_expansion(&mut self, factor: u64) -> Result<&mut Options> {
        at_least_one(factor, "max view expansion must be at least 1")?;
        self.max_view_expansion = factor;
        Ok(self)
    }

    /// Sets the conversion threads (0: one per core); more than 1024 (`MAX_THREADS`) is refused.
    pub fn set_threads(&mut self, threads: usize) -> Result<&mut Options> {
        check_threads(threads)?;
        self.threads = threads;
        Ok(self)
    }

    /// Selects a built-in architecture (one of the names listed on [`Options::arch`], or
    /// "auto"), or none; an unknown name is refused here, not at open.
    pub fn set_arch(&mut self, name: Option<&str>) -> Result<&mut Options> {
        if let Some(name) = name {
            crate::arch::check_name(name)?;
        }
        self.arch = name.map(str::to_string);
        Ok(self)
    }

    /// Sets the `tokenizer.ggml.pre` GGUF output writes ([`Options::tokenizer_pre`]), or none;
    /// a name that is not of llama.cpp's form is refused here.
    pub fn set_tokenizer_pre(&mut self, name: Option<&str>) -> Result<&mut Options> {
        if let Some(name) = name {
            check_tokenizer_pre(name)?;
        }
        self.tokenizer_pre = name.map(str::to_string);
        Ok(self)
    }

    /// Sets the type of `output.weight` (and of a tied token embedding) in quantised GGUF
    /// output, by ggml's name ("q8_0", "q6_k", "f16", ...), or none; an unknown name is
    /// refused here, naming the option and listing the known ones.
    pub fn set_output_tensor_type(&mut self, name: Option<&str>) -> Result<&mut Options> {
        self.type_overrides.output = override_type("output tensor type", name)?;
        Ok(self)
    }

    /// Sets the type of `token_embd.weight` in quantised GGUF output, by ggml's name, or
    /// none; an unknown name is refused here, naming the option.
    pub fn set_token_embedding_type(&mut self, name: Option<&str>) -> Result<&mut Options> {
        self.type_overrides.token_embedding = override_type("token embedding type", name)?;
        Ok(self)
    }

    /// Adds a `PATTERN=TYPE` override of quantised GGUF output: tensors whose name the
    /// regular expression PATTERN matches take TYPE (the first added that matches wins). A
    /// malformed pair, a bad expression or an unknown type is refused here; a pattern that
    /// matches no tensor is refused by the write.
    pub fn add_tensor_type(&mut self, pattern_type: &str) -> Result<&mut Options> {
        let o: TensorTypeOverride = pattern_type.parse().map_err(|e| named("tensor type", &e))?;
        self.type_overrides.tensor_types.push(o);
        Ok(self)
    }

    /// Sets whether quantised GGUF output gives every quantised tensor the file type's main
    /// type (no mix of types by layer), as llama-quantize's `--pure`.
    pub fn set_pure(&mut self, pure: bool) -> &mut Options {
        self.type_overrides.pure = pure;
        self
    }

    /// Adds a split of tensor `name` into `parts` (`(new name, rows)` in order); a split
    /// without parts is refused. The rows are checked against the tensor at open.
    pub fn add_split(
        &mut self,
        name: impl Into<String>,
        parts: Vec<(String, u64)>,
    ) -> Result<&mut Options> {
        let rule = SplitRule {
            name: name.into(),
            parts,
        };
        rule.check()?;
        self.splits.push(rule);
        Ok(self)
    }

    /// Adds a stack of the tensors `names` into one tensor `into`; an empty list is refused.
    /// Shapes and dtypes are checked at open.
    pub fn add_stack(
        &mut self,
        names: Vec<String>,
        into: impl Into<String>,
    ) -> Result<&mut Options> {
        let rule = StackRule {
            names,
            into: into.into(),
        };
        rule.check()?;
        self.stacks.push(rule);
        Ok(self)
    }

    /// Sets a remote option: `concurrency`, `chunk_size`, `max_retries`, `retry_timeout_ms`,
    /// `init_backoff_ms`, `cache_dir` (a directory of complete local copies of the weight
    /// files, read by later opens; default `$STLOAD_CACHE_DIR`, "" for none), or a store
    /// configuration key of the `object_store` crate
    /// (`aws_endpoint`, `aws_access_key_id`, `aws_region`, `google_service_account`,
    /// `azure_storage_account_name`, `allow_http`, `timeout`, ...). An unknown key is refused,
    /// naming it. Store keys apply on top of the environment's `AWS_*`, `GOOGLE_*`, `AZURE_*`.
    /// Without the feature `remote`, every key is refused ([`Error::Unsupported`]).
    pub fn set_remote(&mut self, key: &str, value: &str) -> Result<&mut Options> {
        set_remote(self, key, value)?;
        Ok(self)
    }

    /// Checks every setting as the setters do (for options built as a struct literal):
    /// `Model::open_dir` and `Model::open_files` call it first, so Rust and C callers get the
    /// same answers. One exception keeps old callers working: a thread count over
    /// 1024 (`MAX_THREADS`) in a struct literal is clamped ([`Options::effective_threads`]).
    pub fn validate(&self) -> Result<()> {
        at_least_one(
            self.max_header_size,
            "max header size must be at least 1 byte",
        )?;
        at_least_one(self.max_json_size, "max JSON size must be at least 1 byte")?;
        at_least_one(
            self.max_view_expansion,
            "max view expansion must be at least 1",
        )?;
        if let Some(name) = &self.arch {
            crate::arch::check_name(name)?;
        }
        if let Some(name) = &self.tokenizer_pre {
            check_tokenizer_pre(name)?;
        }
        self.type_overrides
            .check()
            .map_err(|e| named("type overrides", &e))?;
        for rule in &self.splits {
            rule.check()?;
        }
        for rule in &self.stacks {
            rule.check()?;
        }
        validate_remote(self)
    }

    /// The thread count to use: the configured one (at most 1024 (`MAX_THREADS`)), or the available
    /// cores when it is 0.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads.min(MAX_THREADS)
        } else {
            available_cores().min(MAX_THREADS)
        }
    }
}

impl SplitRule {
    /// Refuses a split without parts.
    fn check(&self) -> Result<()> {
        if self.parts.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "split of \"{}\": a split needs at least one part",
                self.name
            )));
        }
        Ok(())
    }
}

impl StackRule {
    /// Refuses a stack of no tensors.
    fn check(&self) -> Result<()> {
        if self.names.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "stack into \"{}\": a stack needs at least one tensor",
                self.into
            )));
        }
        Ok(())
    }
}

/// Sets remote option `key` to `value`.
#[cfg(feature = "remote")]
fn set_remote(options: &mut Options, key: &str, value: &str) -> Result<()> {
    options.remote.set(key, value)
}

/// Refuses remote option `key`: this build reads no remote models.
#[cfg(not(feature = "remote"))]
fn set_remote(_: &mut Options, key: &str, _: &str) -> Result<()> {
    Err(crate::remote::disabled(&format!("remote option \"{key}\"")))
}

/// Checks the remote settings.
#[cfg(feature = "remote")]
fn validate_remote(options: &Options) -> Result<()> {
    options.remote.validate()
}

/// Nothing to check: this build has no remote settings.
#[cfg(not(feature = "remote"))]
fn validate_remote(_: &Options) -> Result<()> {
    Ok(())
}

/// The override type `name` gives, the option named in an error.
fn override_type(option: &str, name: Option<&str>) -> Result<Option<crate::gguf_format::GgmlType>> {
    name.map(|n| parse_ggml_type(n).map_err(|e| named(option, &e)))
        .transpose()
}

/// `e`, an invalid argument, with the option that gave it in front.
fn named(option: &str, e: &Error) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{option}: {m}")),
        other => Error::InvalidArgument(format!("{option}: {other}")),
    }
}

fn at_least_one(value: u64, message: &str) -> Result<()> {
    if value == 0 {
        return Err(Error::InvalidArgument(message.to_string()));
    }
    Ok(())
}

fn check_threads(threads: usize) -> Result<()> {
    if threads > MAX_THREADS {
        return Err(Error::InvalidArgument(format!(
            "threads {threads} is over the maximum of {MAX_THREADS} (0 means one per core)"
        )));
    }
    Ok(())
}

/// The cores this process may use, asked once: the answer reads cgroup files, which costs
/// more than a whole `get`, and does not change while a process runs.
pub(crate) fn available_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Refuses a `tokenizer.ggml.pre` name that is not of the form of llama.cpp's type names
/// (lower-case letters, digits, `.`, `_` and `-`, at most 64 bytes); llama.cpp refuses a name it
/// does not know when it loads the file.
pub(crate) fn check_tokenizer_pre(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        return Ok(());
    }
    Err(Error::InvalidArgument(format!(
        "tokenizer pre-tokenizer type {:?} is not a llama.cpp type name (lower-case letters, \
         digits, '.', '_' and '-', e.g. \"llama-bpe\", \"qwen2\", \"gpt-2\")",
        crate::error::shown(name)
    )))
}
