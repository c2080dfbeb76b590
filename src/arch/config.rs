//! The `config.json` beside the weights: head counts and sizes the transforms need.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
pub use crate::options::DEFAULT_MAX_JSON_SIZE;

/// A model's `config.json`, with checked accessors whose errors name the file.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    json: Value,
}

impl Config {
    /// Reads `dir/config.json` (a regular file of at most [`DEFAULT_MAX_JSON_SIZE`] bytes);
    /// `arch` names who needs it in the error.
    pub fn read(dir: &Path, arch: &str) -> Result<Config> {
        Config::read_limited(dir, arch, DEFAULT_MAX_JSON_SIZE)
    }

    /// Reads `dir/config.json` if it is a regular file of at most `max_bytes` bytes.
    pub fn read_limited(dir: &Path, arch: &str, max_bytes: u64) -> Result<Config> {
        let path = dir.join("config.json");
        let need = format!("architecture {arch} needs config.json beside the weights");
        let text = crate::file::read_limited(&path, max_bytes, &need)?;
        let json: Value = serde_json::from_slice(&text)
            .map_err(|e| Error::format(path.display(), None, format!("not valid JSON: {e}")))?;
        if !json.is_object() {
            return Err(Error::format(path.display(), None, "not a JSON object"));
        }
        Ok(Config { path, json })
    }

    /// A positive integer field, if present. Present but not a positive integer is an error.
    pub fn optional(&self, key: &str) -> Result<Option<u64>> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(self.inconsistent(&format!("\"{key}\" is {v}, not a positive integer"))),
            },
        }
    }

    /// A positive integer field that must be present.
    pub fn required(&self, key: &str) -> Result<u64> {
        self.optional(key)?
            .ok_or_else(|| self.inconsistent(&format!("\"{key}\" is missing")))
    }

    /// Attention heads, key/value heads (defaulting to heads) and the head size (`head_dim`,
    /// defaulting to hidden_size / heads).
    pub fn attention(&self) -> Result<(u64, u64, u64)> {
        let heads = self.required("num_attention_heads")?;
        let kv_heads = self.optional("num_key_value_heads")?.unwrap_or(heads);
        let head_dim = match self.optional("head_dim")? {
            Some(d) => d,
            None => {
                let hidden = self.required("hidden_size")?;
                if hidden % heads != 0 {
                    return Err(self.inconsistent(&format!(
                        "hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
                    )));
                }
                hidden / heads
            }
        };
        Ok((heads, kv_heads, head_dim))
    }

    /// An error about this file.
    pub fn inconsistent(&self, what: &str) -> Error {
        Error::format(self.path.display(), None, what)
    }
}
