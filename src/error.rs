//! The one error type of the library. Every message names the file and tensor involved.

use std::io;

/// What went wrong, in the categories the C API reports as `stload_status`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller passed something unusable (bad name, null, out-of-range index...).
    #[error("{0}")]
    InvalidArgument(String),
    /// The operating system refused a file operation, or a file changed under us.
    #[error("{path}: {message}")]
    Io {
        /// The file the operation was on.
        path: String,
        /// What failed, with the OS reason.
        message: String,
    },
    /// A file breaks the safetensors format (or an index.json or config.json is wrong).
    #[error("{0}")]
    Format(String),
    /// No tensor (or key) of that name.
    #[error("{0}")]
    NotFound(String),
    /// A valid request stload does not implement (e.g. a conversion without meaning).
    #[error("{0}")]
    Unsupported(String),
    /// Two tensors claim one name.
    #[error("{0}")]
    Duplicate(String),
    /// A configured resource limit was reached.
    #[error("{0}")]
    Limit(String),
    /// The caller's buffer has the wrong size.
    #[error("{0}")]
    BufferSize(String),
    /// Memory for an output could not be allocated.
    #[error("{0}")]
    OutOfMemory(String),
    /// A progress callback asked to stop.
    #[error("{0}")]
    Cancelled(String),
}

impl Error {
    /// An I/O error on `path`, keeping the OS message.
    pub fn io(path: impl std::fmt::Display, what: &str, err: &io::Error) -> Error {
        Error::Io {
            path: path.to_string(),
            message: format!("{what}: {err}"),
        }
    }

    /// A format error in `file`, optionally about `tensor`.
    pub fn format(
        file: impl std::fmt::Display,
        tensor: Option<&str>,
        rule: impl std::fmt::Display,
    ) -> Error {
        match tensor {
            Some(t) => Error::Format(format!("{file}: tensor \"{t}\": {rule}")),
            None => Error::Format(format!("{file}: {rule}")),
        }
    }
}

/// Shorthand for results of this library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
