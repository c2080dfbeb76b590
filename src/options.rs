//! Settings for opening a model. New settings get defaults, so old callers keep working.

use std::time::Duration;

use crate::header::MAX_HEADER_SIZE;
use crate::rename::Replacer;

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
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest accepted header (JSON bytes) per file; the reference's 100 MB by default.
    pub max_header_size: u64,
    /// Threads used to convert large tensors; 0 means one per available core; at most
    /// [`MAX_THREADS`] are used.
    pub threads: usize,
    /// Keep converted tensors so a second `get` of the same name and dtype is free.
    pub cache_converted: bool,
    /// Renames applied to every tensor name (after the architecture's own).
    pub rename: Replacer,
    /// A built-in architecture (one of [`crate::arch::NAMES`]: llama, mixtral, phi3, qwen2,
    /// gemma, gemma2, bert) whose renames and transforms apply, or "auto" to pick it from
    /// `config.json` `architectures[0]`; it reads `config.json` beside the weights.
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
    /// Largest `config.json` or `model.safetensors.index.json` read, in bytes
    /// ([`DEFAULT_MAX_JSON_SIZE`] by default).
    pub max_json_size: u64,
    /// Most bytes a PyTorch view may have per byte of its storage
    /// ([`crate::torch::DEFAULT_MAX_VIEW_EXPANSION`] by default): a stride-0 view of a few bytes
    /// would otherwise expand to gigabytes on get.
    pub max_view_expansion: u64,
}

pub use crate::file::DEFAULT_MAX_JSON_SIZE;

/// Most threads one operation uses; larger settings are refused by the C API and clamped here.
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
        }
    }
}

impl Options {
    /// The thread count to use: the configured one (at most [`MAX_THREADS`]), or the available
    /// cores when it is 0.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads.min(MAX_THREADS)
        } else {
            available_cores().min(MAX_THREADS)
        }
    }
}

/// The cores this process may use, asked once: the answer reads cgroup files, which costs
/// more than a whole `get`, and does not change while a process runs.
pub(crate) fn available_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
