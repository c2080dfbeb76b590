//! Reading the files of a model directory the tokenizer needs, through the one bounded,
//! regular-file-only reader of side files ([`crate::file::read_side`]).

use std::path::Path;

use crate::error::{Error, Result};
use crate::file::{read_side, SideLimit};

/// The largest `tokenizer.json` or `tokenizer.model` read (256 MiB, or `max_json_size` when
/// larger): real ones stay under 50 MiB, and the bound keeps a hostile file from exhausting
/// memory. The other tokenizer files (`tokenizer_config.json`, `generation_config.json`, ...)
/// are JSON beside the weights, bounded by `max_json_size`.
pub const MAX_FILE_BYTES: u64 = crate::file::MAX_TOKENIZER_SIZE;

/// The bytes of the tokenizer file `path` (`tokenizer.json`, `tokenizer.model`), `None` when
/// it does not exist; an error when it is not a regular file or larger than its bound.
pub(crate) fn read_tokenizer(path: &Path, max_json: u64) -> Result<Option<Vec<u8>>> {
    read_side(path, SideLimit::Tokenizer(max_json))
}

/// The bytes of the JSON or text file `path` (at most `max_json` bytes), `None` when it does
/// not exist.
pub(crate) fn read_small(path: &Path, max_json: u64) -> Result<Option<Vec<u8>>> {
    read_side(path, SideLimit::Json(max_json))
}

/// Parses the JSON file `path` (if it exists, at most `max_json` bytes) into `T`; errors name
/// the file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    max_json: u64,
) -> Result<Option<T>> {
    match read_small(path, max_json)? {
        None => Ok(None),
        Some(bytes) => parse_json(path, &bytes).map(Some),
    }
}

/// Parses JSON bytes of `path` into `T`; errors name the file.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::format(path.display(), None, format!("invalid JSON: {e}")))
}
