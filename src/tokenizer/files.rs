//! Reading the small files of a model directory with a size bound.

use std::io::{self, Read};
use std::path::Path;

use crate::error::{Error, Result};

/// The largest tokenizer or config file read (256 MiB): real `tokenizer.json` files stay under
/// 50 MiB, and the bound keeps a hostile file from exhausting memory.
pub const MAX_FILE_BYTES: u64 = crate::side_files::MAX_BYTES;

/// The bytes of `path`, `None` when it does not exist; an error when it is larger than
/// [`MAX_FILE_BYTES`] or cannot be read.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path.display(), "open", &e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io(path.display(), "stat", &e))?;
    if meta.is_dir() {
        return Err(Error::Format(format!(
            "{}: is a directory, not a file",
            path.display()
        )));
    }
    let too_large = || {
        Error::Limit(format!(
            "{}: larger than the {MAX_FILE_BYTES} bytes a tokenizer file may have",
            path.display()
        ))
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow after the stat: read one byte past the bound to notice.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path.display(), "read", &e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(Some(bytes))
}

/// Parses the JSON file `path` (if it exists) into `T`; errors name the file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match read_optional(path)? {
        None => Ok(None),
        Some(bytes) => parse_json(path, &bytes).map(Some),
    }
}

/// Parses JSON bytes of `path` into `T`; errors name the file.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::format(path.display(), None, format!("invalid JSON: {e}")))
}
