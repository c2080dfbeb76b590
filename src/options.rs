//! Settings for opening a model. New settings get defaults, so old callers keep working.

use crate::header::MAX_HEADER_SIZE;

/// How a model is opened and served.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest accepted header (JSON bytes) per file; the reference's 100 MB by default.
    pub max_header_size: u64,
    /// Threads used to convert large tensors; 0 means one per available core.
    pub threads: usize,
    /// Keep converted tensors so a second `get` of the same name and dtype is free.
    pub cache_converted: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_header_size: MAX_HEADER_SIZE,
            threads: 0,
            cache_converted: true,
        }
    }
}

impl Options {
    /// The thread count to use: the configured one, or the available cores.
    pub fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}
