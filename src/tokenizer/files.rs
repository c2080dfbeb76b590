//! The files of a model the tokenizer needs, taken from its side files ([`SideFiles`]), each
//! read once through the one bounded, regular-file-only reader ([`crate::file::read_side`]).

use std::path::Path;

use crate::error::{Error, Result};
use crate::side_files::SideFiles;

/// The largest `tokenizer.json` or `tokenizer.model` read (256 MiB, or `max_json_size` when
/// larger): real ones stay under 50 MiB, and the bound keeps a hostile file from exhausting
/// memory. The other tokenizer files (`tokenizer_config.json`, `generation_config.json`, ...)
/// are JSON beside the weights, bounded by `max_json_size`.
pub const MAX_FILE_BYTES: u64 = crate::file::MAX_TOKENIZER_SIZE;

/// The bytes of the side file `name` of `side` (read once, within its bound), `None` when
/// it does not exist; the error met reading it when it is not a regular file or larger than
/// its bound.
pub(crate) fn read<'a>(side: &'a SideFiles, name: &str) -> Result<Option<&'a [u8]>> {
    side.get(name)
}

/// Parses the JSON side file `name` of `side` (if it exists) into `T`; errors name the file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    side: &SideFiles,
    name: &str,
) -> Result<Option<T>> {
    match read(side, name)? {
        None => Ok(None),
        Some(bytes) => parse_json(&side.path(name), bytes).map(Some),
    }
}

/// Parses JSON bytes of `path` into `T`; errors name the file.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::format(path.display(), None, format!("invalid JSON: {e}")))
}
