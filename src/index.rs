//! The Hugging Face `model.safetensors.index.json`: which shard holds which tensor.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The file name that marks a sharded checkpoint.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// A parsed, checked index.
#[derive(Debug)]
pub struct ShardIndex {
    /// Tensor name → shard file name (relative to the directory).
    pub weight_map: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RawIndex {
    weight_map: BTreeMap<String, String>,
}

impl ShardIndex {
    /// Parses the index JSON of `path` (named in messages) and checks that every shard name
    /// stays inside the directory: relative, no `..`, no root or drive.
    pub fn parse(path: &str, json: &[u8]) -> Result<ShardIndex> {
        let raw: RawIndex = serde_json::from_slice(json).map_err(|e| {
            Error::format(
                path,
                None,
                format!("not a valid index (needs a \"weight_map\" of strings): {e}"),
            )
        })?;
        if raw.weight_map.is_empty() {
            return Err(Error::format(path, None, "the weight_map lists no tensors"));
        }
        for (tensor, shard) in &raw.weight_map {
            let inside = !shard.is_empty()
                && Path::new(shard)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)));
            if !inside {
                return Err(Error::format(
                    path,
                    Some(tensor),
                    format!("shard \"{shard}\" is not a file name inside the model directory"),
                ));
            }
        }
        Ok(ShardIndex {
            weight_map: raw.weight_map,
        })
    }

    /// The distinct shard names, sorted.
    pub fn shards(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self.weight_map.values().map(String::as_str).collect();
        set.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names_and_refuses_escapes() {
        let ok = ShardIndex::parse("i.json", br#"{"metadata":{"total_size":8},"weight_map":{"a":"m-1.safetensors","b":"m-1.safetensors","c":"sub/m-2.safetensors"}}"#).unwrap();
        assert_eq!(ok.shards(), vec!["m-1.safetensors", "sub/m-2.safetensors"]);
        for bad in ["../x.safetensors", "/etc/passwd", "a/../../b", ""] {
            let json = format!(r#"{{"weight_map":{{"t":"{bad}"}}}}"#);
            let err = ShardIndex::parse("i.json", json.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(err.contains("not a file name inside"), "{bad}: {err}");
        }
        assert!(ShardIndex::parse("i.json", b"{}").is_err());
    }
}
