//! Which files beside the weights a model has: the one list of side files that GGUF export
//! reads (architectures and the tokenizer read them from the model's directory by these names)
//! and that a cached remote prefix fetches along with the weights, so both see the same files.
//! [`SideFiles`] holds them, each read once through the one bounded reader, and is what
//! architecture detection, `config.json`, the pooling configuration, the tokenizer and the
//! model's name are made from: they take values, never a directory.
//!
//! A new side file is a constant here and a line in [`ALL`]; a file whose name another file
//! gives (the pooling configuration `modules.json` names) gets a function beside
//! [`pooling_config`].

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::file::{read_side, SideLimit};

/// The model card beside the weights (read for `general.name`).
pub(crate) const MODEL_CARD: &str = "README.md";
/// The model's configuration: architecture, sizes, token ids.
pub(crate) const CONFIG: &str = "config.json";
/// Generation defaults: `eos_token_id` lists.
pub(crate) const GENERATION_CONFIG: &str = "generation_config.json";
/// A Hugging Face `tokenizers` tokenizer.
pub(crate) const TOKENIZER_JSON: &str = "tokenizer.json";
/// A SentencePiece model.
pub(crate) const TOKENIZER_MODEL: &str = "tokenizer.model";
/// Special tokens, added tokens and the chat template.
pub(crate) const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
/// Special tokens, where `tokenizer_config.json` does not give them.
pub(crate) const SPECIAL_TOKENS_MAP: &str = "special_tokens_map.json";
/// Tokens added to a SentencePiece model (content → id).
pub(crate) const ADDED_TOKENS: &str = "added_tokens.json";
/// The chat template as a file of its own.
pub(crate) const CHAT_TEMPLATE_JINJA: &str = "chat_template.jinja";
/// The chat template as JSON (`{"chat_template": ...}`).
pub(crate) const CHAT_TEMPLATE_JSON: &str = "chat_template.json";
/// A sentence-transformers checkpoint's modules, naming its Pooling module's directory.
pub(crate) const MODULES: &str = "modules.json";

/// How large the side file `name` may be, given `max_json_size`: the tokenizer's own files
/// (`tokenizer.json`, `tokenizer.model`) are bounded as tokenizers, every other one as JSON. The
/// same bound holds for a local read and for a remote fetch.
pub(crate) fn limit(name: &str, max_json: u64) -> SideLimit {
    if name == TOKENIZER_JSON || name == TOKENIZER_MODEL {
        SideLimit::Tokenizer(max_json)
    } else {
        SideLimit::Json(max_json)
    }
}

/// Every side file at a fixed name, in the order a remote prefix fetches them. The pooling
/// configuration is not here: [`MODULES`] names its directory ([`pooling_config`]).
// Remote prefixes fetch by the list, and an output may name none of them; local readers take
// each name.
pub(crate) const ALL: &[&str] = &[
    CONFIG,
    GENERATION_CONFIG,
    TOKENIZER_JSON,
    TOKENIZER_MODEL,
    TOKENIZER_CONFIG,
    SPECIAL_TOKENS_MAP,
    ADDED_TOKENS,
    CHAT_TEMPLATE_JINJA,
    CHAT_TEMPLATE_JSON,
    MODULES,
];

/// The configuration file of the Pooling module that `modules` (the parsed [`MODULES`],
/// `shown` in messages) names, relative to the model's directory (`1_Pooling/config.json`):
/// `None` when no module is a Pooling one. A path that leaves the model's directory is
/// refused, naming the file.
pub(crate) fn pooling_config(shown: &str, modules: &Value) -> Result<Option<String>> {
    let Some(list) = modules.as_array() else {
        return Err(Error::format(shown, None, "not a JSON list"));
    };
    let pooling = list.iter().find(|m| {
        m.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.ends_with("Pooling"))
    });
    let Some(module) = pooling else {
        return Ok(None);
    };
    let Some(sub) = module.get("path").and_then(Value::as_str) else {
        return Err(Error::format(
            shown,
            None,
            "the Pooling module has no \"path\"",
        ));
    };
    // Plain names only: the same text is a local path and a key under a remote prefix.
    let parts: Vec<&str> = sub.split('/').filter(|p| !p.is_empty()).collect();
    let plain = |p: &&str| *p != "." && *p != ".." && !p.contains('\\') && !p.contains(':');
    if parts.is_empty() || !parts.iter().all(plain) || sub.starts_with('/') {
        let mut sub = sub.to_string();
        if sub.len() > 200 {
            let mut end = 200;
            while !sub.is_char_boundary(end) {
                end -= 1;
            }
            sub.truncate(end);
            sub.push('…');
        }
        return Err(Error::format(
            shown,
            None,
            format!("the Pooling module's path \"{sub}\" leaves the model directory"),
        ));
    }
    Ok(Some(format!("{}/{CONFIG}", parts.join("/"))))
}

/// The side files of one model, each read once (within [`limit`] of `max_json_size`, a
/// regular file only) when the set is made: a missing file is absent, and a file that could
/// not be read keeps its error, reported to the reader that needs it (a broken model card does
/// not stop an export that never needs it).
#[derive(Debug)]
pub struct SideFiles {
    /// Where the files are: the model's directory, shown in messages as `dir/name`.
    dir: PathBuf,
    max_json: u64,
    /// Each file read, by name relative to `dir`.
    files: Vec<(String, Result<Option<Vec<u8>>>)>,
}

impl SideFiles {
    /// Every side file of the directory `dir` ([`ALL`], the model card, and the pooling
    /// configuration `modules.json` names), each within its bound of `max_json`.
    pub fn read(dir: &Path, max_json: u64) -> SideFiles {
        SideFiles::read_only(dir, &SideFiles::names(), max_json).with_pooling(local(dir, max_json))
    }

    /// The names [`SideFiles::read`] reads before the pooling configuration: [`ALL`] and the
    /// model card.
    pub(crate) fn names() -> Vec<&'static str> {
        let mut names: Vec<&str> = ALL.to_vec();
        names.push(MODEL_CARD);
        names
    }

    /// Side files fetched from elsewhere (a remote prefix, shown as `dir`): `files` holds each
    /// name looked for and what reading it gave, `None` when missing.
    #[cfg_attr(not(feature = "remote"), allow(dead_code))]
    pub(crate) fn from_parts(
        dir: PathBuf,
        max_json: u64,
        files: Vec<(String, Result<Option<Vec<u8>>>)>,
    ) -> SideFiles {
        SideFiles {
            dir,
            max_json,
            files,
        }
    }

    /// The side files an architecture reads of the directory `dir`: `config.json` and the
    /// pooling configuration (`modules.json` and the file it names), not the tokenizer's.
    pub fn read_arch(dir: &Path, max_json: u64) -> SideFiles {
        SideFiles::read_only(dir, &[CONFIG, MODULES], max_json).with_pooling(local(dir, max_json))
    }

    /// These files and the pooling configuration `modules.json` names, when it names one,
    /// read by `read` (a `modules.json` that cannot be read adds nothing here: bert reports
    /// it).
    pub(crate) fn with_pooling(
        mut self,
        read: impl Fn(&str) -> Result<Option<Vec<u8>>>,
    ) -> SideFiles {
        if let Ok(Some(pooling)) = self.pooling_config() {
            let bytes = read(&pooling);
            self.files.push((pooling, bytes));
        }
        self
    }

    /// The side files `names` of the directory `dir` only (detection needs `config.json`
    /// alone, not a tokenizer of tens of megabytes).
    pub fn read_only(dir: &Path, names: &[&str], max_json: u64) -> SideFiles {
        let read = local(dir, max_json);
        let files = names
            .iter()
            .map(|name| (name.to_string(), read(name)))
            .collect();
        SideFiles {
            dir: dir.to_path_buf(),
            max_json,
            files,
        }
    }

    /// Where the files are (a directory, or a remote model's URL prefix).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the side file `name`, as messages show it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The bound on JSON side files they were read with (`max_json_size`).
    pub fn max_json(&self) -> u64 {
        self.max_json
    }

    /// The bytes of the side file `name`: `None` when it is missing (or was not read); the
    /// error met reading it (not a regular file, past its bound) otherwise.
    pub fn get(&self, name: &str) -> Result<Option<&[u8]>> {
        match self.files.iter().find(|(n, _)| n == name) {
            None | Some((_, Ok(None))) => Ok(None),
            Some((_, Ok(Some(bytes)))) => Ok(Some(bytes)),
            Some((_, Err(e))) => Err(again(e)),
        }
    }

    /// The side file `name`, which must exist: missing is an error naming it, saying `what`
    /// needs it.
    pub fn need(&self, name: &str, what: &str) -> Result<&[u8]> {
        self.get(name)?.ok_or_else(|| Error::Io {
            path: self.path(name).display().to_string(),
            message: format!("{what}: missing"),
        })
    }

    /// The side file `name` parsed as JSON into `T`, `None` when missing; errors name it.
    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.get(name)? {
            None => Ok(None),
            Some(bytes) => self.parse(name, bytes).map(Some),
        }
    }

    /// The JSON `bytes` of the side file `name` parsed into `T`; errors name it.
    pub fn parse<T: serde::de::DeserializeOwned>(&self, name: &str, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| {
            Error::format(
                self.path(name).display(),
                None,
                format!("not valid JSON: {e}"),
            )
        })
    }

    /// The name of the Pooling module's configuration that `modules.json` names
    /// ([`pooling_config`]), `None` without one.
    pub fn pooling_config(&self) -> Result<Option<String>> {
        let Some(modules) = self.json::<Value>(MODULES)? else {
            return Ok(None);
        };
        pooling_config(&self.path(MODULES).display().to_string(), &modules)
    }
}

/// The reader of the side files of the local directory `dir`: one regular file, within its
/// bound of `max_json`.
fn local(dir: &Path, max_json: u64) -> impl Fn(&str) -> Result<Option<Vec<u8>>> + '_ {
    move |name| read_side(&dir.join(name), limit(name, max_json))
}

/// The error `e` again: a side file's error is kept and reported to each reader that needs
/// the file.
fn again(e: &Error) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
        Error::Io { path, message } => Error::Io {
            path: path.clone(),
            message: message.clone(),
        },
        Error::Format(m) => Error::Format(m.clone()),
        Error::NotFound(m) => Error::NotFound(m.clone()),
        Error::Unsupported(m) => Error::Unsupported(m.clone()),
        Error::Duplicate(m) => Error::Duplicate(m.clone()),
        Error::Limit(m) => Error::Limit(m.clone()),
        Error::BufferSize(m) => Error::BufferSize(m.clone()),
        Error::OutOfMemory(m) => Error::OutOfMemory(m.clone()),
        Error::Cancelled(m) => Error::Cancelled(m.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pooling_module_names_a_directory_inside_the_model() {
        let of = |json: &str| pooling_config("modules.json", &serde_json::from_str(json).unwrap());
        let modules = r#"[{"type":"sentence_transformers.models.Transformer","path":""},
            {"type":"sentence_transformers.models.Pooling","path":"1_Pooling"}]"#;
        assert_eq!(
            of(modules).unwrap().as_deref(),
            Some("1_Pooling/config.json")
        );
        assert_eq!(of(r#"[{"type":"X","path":"a"}]"#).unwrap(), None);
        for bad in ["..", "../x", "/etc", "a/../..", "", ".", "c:\\x", "a\\b"] {
            let json = format!(r#"[{{"type":"Pooling","path":{bad:?}}}]"#);
            let err = of(&json).expect_err(bad).to_string();
            assert!(err.contains("modules.json"), "{err}");
        }
        assert!(of(r#"[{"type":"Pooling"}]"#).is_err());
        assert!(of("{}").is_err());
        // Every fixed name is listed once.
        for (i, name) in ALL.iter().enumerate() {
            assert!(!ALL[..i].contains(name), "{name}");
        }
    }
}
