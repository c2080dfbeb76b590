//! `tokenizer.json` (and the `tokenizer_config.json` that makes transformers load it as it is)
//! rebuilt from `tokenizer.ggml.*`: byte-level BPE only, whose vocabulary, merges and
//! pre-tokenizer (the regexes of llama.cpp's type `tokenizer.ggml.pre`, as
//! `tokenizer::pre::TYPES` lists them) say all there is. A kind the keys do not describe
//! faithfully (sentencepiece, WordPiece, a pre-tokenizer type without its regexes) is refused
//! by name, never approximated.

use serde_json::{json, Map, Value as Json};

use super::{int_key, source_name, string_key};
use crate::error::{Error, Result};
use crate::kv::{Array, Value};
use crate::model::Model;
use crate::tokenizer::pre::{BYTE_LEVEL_REGEX, TYPES};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;

/// The pre-tokenizer of llama.cpp's type `pre`: GPT-2's byte-level split, or the type's split
/// regexes in order, each isolating its matches, then the byte-level mapping.
fn pre_tokenizer(pre: &str) -> Option<Json> {
    let splits = TYPES.iter().find(|(name, _)| *name == pre)?.1;
    if splits == [BYTE_LEVEL_REGEX] {
        return Some(json!({
            "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true
        }));
    }
    let mut steps: Vec<Json> = splits
        .iter()
        .map(|r| {
            json!({"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": false})
        })
        .collect();
    steps.push(json!({
        "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false
    }));
    Some(json!({"type": "Sequence", "pretokenizers": steps}))
}

/// A string array key.
fn strings<'a>(model: &'a Model, key: &str) -> Result<&'a [String]> {
    match model.gguf_value(key) {
        Some(Value::Array(Array::String(s))) => Ok(s),
        Some(_) => Err(Error::InvalidArgument(format!(
            "{}: key {key} is not an array of strings",
            source_name(model)
        ))),
        None => Err(Error::InvalidArgument(format!(
            "{}: key {key} is missing: tokenizer.json needs it",
            source_name(model)
        ))),
    }
}

/// A bool key, `None` when absent.
fn flag(model: &Model, key: &str) -> Option<bool> {
    match model.gguf_value(key) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

/// `tokenizer.json` and `tokenizer_config.json` of the GGUF `model`.
pub(super) fn build(model: &Model) -> Result<(Json, Json)> {
    let file = source_name(model);
    let kind = string_key(model, "tokenizer.ggml.model").ok_or_else(|| {
        Error::InvalidArgument(format!(
            "{file}: no tokenizer.ggml.model key: there is no tokenizer to rebuild"
        ))
    })?;
    if kind != "gpt2" {
        return Err(Error::Unsupported(format!(
            "{file}: tokenizer.ggml.model \"{}\": --to-hf rebuilds byte-level BPE tokenizers \
             (gpt2) only; sentencepiece (llama), WordPiece (bert) and the others are not \
             rebuilt, rather than written wrong",
            crate::error::shown(kind)
        )));
    }
    let pre_name = string_key(model, "tokenizer.ggml.pre").unwrap_or("default");
    let pre = pre_tokenizer(pre_name).ok_or_else(|| {
        Error::Unsupported(format!(
            "{file}: tokenizer.ggml.pre \"{}\": --to-hf knows the split regexes of {} only, \
             and a tokenizer.json with other splits would tokenize differently",
            crate::error::shown(pre_name),
            TYPES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ))
    })?;
    let tokens = strings(model, "tokenizer.ggml.tokens")?;
    let merges = strings(model, "tokenizer.ggml.merges")?;
    let types: &[i32] = match model.gguf_value("tokenizer.ggml.token_type") {
        Some(Value::Array(Array::I32(t))) if t.len() == tokens.len() => t,
        None => &[],
        Some(_) => {
            return Err(Error::InvalidArgument(format!(
                "{file}: key tokenizer.ggml.token_type is not {} i32 values, one per token",
                tokens.len()
            )))
        }
    };
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        if vocab.insert(token.clone(), json!(id)).is_some() {
            return Err(Error::Unsupported(format!(
                "{file}: token \"{}\" appears twice in tokenizer.ggml.tokens: a tokenizer.json \
                 vocabulary holds each token once",
                crate::error::shown(token)
            )));
        }
        let t = types.get(id).copied().unwrap_or(1);
        if t == CONTROL || t == USER_DEFINED {
            added.push(json!({
                "id": id, "content": token, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": t == USER_DEFINED, "special": t == CONTROL,
            }));
        }
    }
    let token_of = |key: &str| -> Result<Option<&String>> {
        match int_key(model, key)? {
            None => Ok(None),
            Some(id) => usize::try_from(id)
                .ok()
                .and_then(|i| tokens.get(i))
                .map(Some)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{file}: key {key} is {id}, past the {} tokens",
                        tokens.len()
                    ))
                }),
        }
    };
    let bos = token_of("tokenizer.ggml.bos_token_id")?;
    let eos = token_of("tokenizer.ggml.eos_token_id")?;
    let add_bos = flag(model, "tokenizer.ggml.add_bos_token").unwrap_or(false);
    let add_eos = flag(model, "tokenizer.ggml.add_eos_token").unwrap_or(false);
    let post = post_processor(
        add_bos.then_some(bos).flatten(),
        add_eos.then_some(eos).flatten(),
        &vocab,
    );
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre,
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false,
            // llama.cpp's llama-bpe type looks whole words up before merging (Llama 3's flag).
            "ignore_merges": pre_name == "llama-bpe",
            "vocab": vocab, "merges": merges,
        },
    });
    let mut config = Map::new();
    config.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    for (name, token) in [("bos_token", bos), ("eos_token", eos)] {
        if let Some(t) = token {
            config.insert(name.into(), json!(t));
        }
    }
    if let Some(pad) = token_of("tokenizer.ggml.padding_token_id")? {
        config.insert("pad_token".into(), json!(pad));
    }
    if let Some(n) = context_length(model)? {
        config.insert("model_max_length".into(), json!(n));
    }
    if let Some(template) = string_key(model, "tokenizer.chat_template") {
        config.insert("chat_template".into(), json!(template));
    }
    Ok((tokenizer, Json::Object(config)))
}

/// `ARCH.context_length`, when the GGUF names its architecture and has the key.
fn context_length(model: &Model) -> Result<Option<u64>> {
    match string_key(model, "general.architecture") {
        Some(arch) => int_key(model, &format!("{arch}.context_length")),
        None => Ok(None),
    }
}

/// The post-processor adding `bos` before and `eos` after each sequence (neither: none).
fn post_processor(bos: Option<&String>, eos: Option<&String>, vocab: &Map<String, Json>) -> Json {
    if bos.is_none() && eos.is_none() {
        return Json::Null;
    }
    let special = |t: &String, type_id: u32| json!({"SpecialToken": {"id": t, "type_id": type_id}});
    let seq = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    let one = |id: &str, type_id: u32| {
        let mut v = Vec::new();
        v.extend(bos.map(|b| special(b, type_id)));
        v.push(seq(id, type_id));
        v.extend(eos.map(|e| special(e, type_id)));
        v
    };
    let mut pair = one("A", 0);
    pair.extend(one("B", 1));
    let mut specials = Map::new();
    for t in bos.into_iter().chain(eos) {
        specials.insert(
            t.clone(),
            json!({"id": t, "ids": [vocab.get(t).cloned().unwrap_or(Json::Null)], "tokens": [t]}),
        );
    }
    json!({"type": "TemplateProcessing", "single": one("A", 0), "pair": pair, "special_tokens": specials})
}
