//! The `config.json` beside the weights: head counts and sizes the transforms need.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::error::{shown, shown_json, Error, Result};
pub use crate::file::DEFAULT_MAX_JSON_SIZE;
use crate::side_files::{self, SideFiles};

/// A model's `config.json`, with checked accessors whose errors name the file (and quote a
/// value shortened, however long it is).
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    json: Value,
    /// The side files it was read from, which an architecture reads more of (bert's pooling
    /// modules).
    side: Arc<SideFiles>,
}

impl Config {
    /// Reads `dir/config.json` (a regular file of at most [`DEFAULT_MAX_JSON_SIZE`] bytes);
    /// `arch` names who needs it in the error.
    pub fn read(dir: &Path, arch: &str) -> Result<Config> {
        Config::read_limited(dir, arch, DEFAULT_MAX_JSON_SIZE)
    }

    /// Reads `dir/config.json` if it is a regular file of at most `max_bytes` bytes.
    pub fn read_limited(dir: &Path, arch: &str, max_bytes: u64) -> Result<Config> {
        let side = SideFiles::read_arch(dir, max_bytes);
        Config::of(Arc::new(side), arch)
    }

    /// The `config.json` of the side files `side`, which must have it; `arch` names who needs
    /// it in the error.
    pub fn of(side: Arc<SideFiles>, arch: &str) -> Result<Config> {
        let path = side.path(side_files::CONFIG);
        let need = format!("architecture {arch} needs config.json beside the weights");
        let text = side.need(side_files::CONFIG, &need)?;
        let json: Value = side.parse(side_files::CONFIG, text)?;
        let Value::Object(mut root) = json else {
            return Err(Error::format(path.display(), None, "not a JSON object"));
        };
        // A multimodal model (Gemma 3's ConditionalGeneration) keeps its text model's values
        // in `text_config`: they are read as top-level keys, as llama.cpp's converter reads
        // them, while `architectures` stays the model's own.
        if let Some(Value::Object(text)) = root.remove("text_config") {
            for (key, value) in text {
                if key != "architectures" {
                    root.insert(key, value);
                }
            }
        }
        let json = Value::Object(root);
        Ok(Config { path, json, side })
    }

    /// The bound on JSON files this config was read with (`max_json_size`).
    pub fn max_json(&self) -> u64 {
        self.side.max_json()
    }

    /// The side files this config was read from.
    pub fn side_files(&self) -> &SideFiles {
        &self.side
    }

    /// The architecture `architectures[0]` declares, when it names one stload knows
    /// (`None` when the list is missing, malformed or names another).
    pub fn declared(&self) -> Option<(&str, &'static str)> {
        let first = self.json.get("architectures")?.get(0)?.as_str()?;
        super::registry::by_hf_name(first).map(|arch| (first, arch.name))
    }

    /// A positive integer field, if present. Present but not a positive integer is an error.
    pub fn optional(&self, key: &str) -> Result<Option<u64>> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(self.inconsistent(&format!(
                    "\"{key}\" is {}, not a positive integer",
                    shown_json(v)
                ))),
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

/// Typed reads for the GGUF metadata: floats, strings, nested objects and the counts llama.cpp
/// reads as 32-bit. Every error names config.json and the key.
impl Config {
    /// The file read (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw value of `key`, `None` when absent or null.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.json.get(key).filter(|v| !v.is_null())
    }

    /// A finite number, if present. Present but not a finite number is an error.
    pub fn optional_f64(&self, key: &str) -> Result<Option<f64>> {
        number(self, key, self.value(key))
    }

    /// A finite number that must be present.
    pub fn required_f64(&self, key: &str) -> Result<f64> {
        self.optional_f64(key)?
            .ok_or_else(|| self.inconsistent(&format!("\"{key}\" is missing")))
    }

    /// A string, if present. Present but not a string is an error.
    pub fn optional_str(&self, key: &str) -> Result<Option<&str>> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => {
                Err(self.inconsistent(&format!("\"{key}\" is {}, not a string", shown_json(v))))
            }
        }
    }

    /// A boolean, if present. Present but not a boolean is an error.
    pub fn optional_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.inconsistent(&format!(
                "\"{key}\" is {}, not true or false",
                shown_json(v)
            ))),
        }
    }

    /// The first of `keys` present, as a positive integer that fits in 32 bits.
    pub fn first_u32(&self, keys: &[&str]) -> Result<Option<u32>> {
        for key in keys {
            if let Some(n) = self.optional(key)? {
                return self.to_u32(key, n).map(Some);
            }
        }
        Ok(None)
    }

    /// Like [`Config::first_u32`], but one of `keys` must be present.
    pub fn required_u32(&self, keys: &[&str]) -> Result<u32> {
        self.first_u32(keys)?.ok_or_else(|| {
            let names: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
            self.inconsistent(&format!("{} is missing", names.join(" or ")))
        })
    }

    /// `n` (the value of `key`) as the 32-bit count llama.cpp reads.
    pub fn to_u32(&self, key: &str, n: u64) -> Result<u32> {
        u32::try_from(n).map_err(|_| {
            self.inconsistent(&format!("\"{key}\" is {n}, more than a 32-bit count holds"))
        })
    }

    /// The rope scaling object: `rope_scaling`, else `rope_parameters` (the one object
    /// transformers 5 saves for `rope_theta` and the scaling), if present and not null.
    pub fn rope_scaling(&self) -> Result<Option<Section<'_>>> {
        match self.object("rope_scaling")? {
            Some(s) => Ok(Some(s)),
            None => self.object("rope_parameters"),
        }
    }

    /// `quantization_config.weight_block_size` as [rows, columns]: the blocks of an FP8
    /// checkpoint's weights that each `weight_scale_inv` value scales, when config.json gives
    /// them.
    pub fn weight_block_size(&self) -> Result<Option<[u64; 2]>> {
        let Some(quant) = self.object("quantization_config")? else {
            return Ok(None);
        };
        let Some(sizes) = quant.optional_f64s("weight_block_size")? else {
            return Ok(None);
        };
        let whole = |x: f64| (1.0..=65536.0).contains(&x) && x.fract() == 0.0;
        match sizes.as_slice() {
            &[r, c] if whole(r) && whole(c) => Ok(Some([r as u64, c as u64])),
            _ => Err(quant.inconsistent(
                "weight_block_size",
                &format!("is {sizes:?}, not two block sizes (rows, columns) of 1 to 65536"),
            )),
        }
    }

    /// `rope_theta`, at the top level or (as transformers 5 saves it) in `rope_parameters`,
    /// if present.
    pub fn rope_theta(&self) -> Result<Option<f64>> {
        if let Some(theta) = self.optional_f64("rope_theta")? {
            return Ok(Some(theta));
        }
        match self.object("rope_parameters")? {
            Some(s) => s.optional_f64("rope_theta"),
            None => Ok(None),
        }
    }

    /// An object such as `rope_scaling`, if present and not null.
    pub fn object(&self, key: &str) -> Result<Option<Section<'_>>> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Section {
                config: self,
                name: key.to_string(),
                map,
            })),
            Some(v) => {
                Err(self.inconsistent(&format!("\"{key}\" is {}, not an object", shown_json(v))))
            }
        }
    }
}

/// A nested object of config.json (e.g. `rope_scaling`), with the same checked reads.
pub struct Section<'a> {
    config: &'a Config,
    name: String,
    map: &'a serde_json::Map<String, Value>,
}

impl Section<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// An error about `key` of this object.
    pub fn inconsistent(&self, key: &str, what: &str) -> Error {
        self.config
            .inconsistent(&format!("\"{}.{key}\" {what}", self.name))
    }

    /// A string field, if present.
    pub fn optional_str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.inconsistent(key, &format!("is {}, not a string", shown_json(v)))),
        }
    }

    /// A finite number field, if present.
    pub fn optional_f64(&self, key: &str) -> Result<Option<f64>> {
        let full = format!("{}.{key}", self.name);
        number(self.config, &full, self.get(key))
    }

    /// A positive integer field that fits in 32 bits, if present.
    pub fn optional_u32(&self, key: &str) -> Result<Option<u32>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(self.inconsistent(
                    key,
                    &format!("is {}, not a positive 32-bit integer", shown_json(v)),
                )),
            },
        }
    }

    /// A nested object (`rope_parameters.full_attention`), if present and not null.
    pub fn object(&self, key: &str) -> Result<Option<Section<'_>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Section {
                config: self.config,
                name: format!("{}.{key}", self.name),
                map,
            })),
            Some(v) => Err(self.inconsistent(key, &format!("is {}, not an object", shown_json(v)))),
        }
    }

    /// An array of finite numbers, if present.
    pub fn optional_f64s(&self, key: &str) -> Result<Option<Vec<f64>>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v.as_f64() {
                    Some(x) if x.is_finite() => Ok(x),
                    _ => Err(self.inconsistent(
                        key,
                        &format!("holds {}, not a finite number", shown_json(v)),
                    )),
                })
                .collect::<Result<Vec<f64>>>()
                .map(Some),
            Some(v) => Err(self.inconsistent(
                key,
                &format!("is {}, not an array of numbers", shown_json(v)),
            )),
        }
    }
}

fn number(config: &Config, key: &str, value: Option<&Value>) -> Result<Option<f64>> {
    match value {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(config.inconsistent(&format!(
                "\"{}\" is {}, not a finite number",
                shown(key),
                shown_json(v)
            ))),
        },
    }
}
