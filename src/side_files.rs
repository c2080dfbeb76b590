//! Which files beside the weights a model has: the one list of side files that GGUF export
//! reads (architectures and the tokenizer read them from the model's directory by these names)
//! and that a cached remote prefix fetches along with the weights, so both see the same files.
//! It names files only; how one is read (bounded, regular files only) belongs to the readers.
//!
//! A new side file is a constant here and a line in [`ALL`]; a file whose name another file
//! gives (the pooling configuration `modules.json` names) gets a function beside
//! [`pooling_config`].

use serde_json::Value;

use crate::error::{Error, Result};
use crate::file::SideLimit;

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
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
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
