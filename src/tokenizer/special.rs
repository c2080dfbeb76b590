//! Special tokens (bos, eos, unk, sep, pad, cls, mask, eot, eom), whether encoding adds them, and the chat
//! template, from the config files beside the tokenizer.
//!
//! Precedence, highest first, for each special token: `tokenizer_config.json`'s `X_token`
//! (a string or `{"content": ...}`), `special_tokens_map.json`'s, `cls` standing in for an unset
//! `bos` and `sep` for an unset `eos`, `config.json`'s `X_token_id`, the ids a SentencePiece
//! model declares; then `generation_config.json`'s `eos_token_id` fills an unset eos, and when it
//! is a list it becomes `tokenizer.ggml.eos_token_ids` (ollama); its ids llama.cpp would not
//! end generation on become the eot and eom ids (`end_of_generation`). A content is looked up in
//! `tokenizer.json`'s `added_tokens` first (as `gguf.SpecialVocab` and ollama do), then in the
//! whole vocabulary. `add_X_token`: `tokenizer_config.json` if it says, else what the
//! `tokenizer.json` post-processor adds.

use std::path::Path;

use serde_json::{Map, Value};

use super::hf::PostProcessor;
use super::{files, Base};
use crate::error::{shown_json, Error, Result};
use crate::kv;
use crate::side_files::{self, SideFiles};

/// A kind of special token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Special {
    /// Beginning of sequence.
    Bos,
    /// End of sequence.
    Eos,
    /// Unknown.
    Unk,
    /// Separator.
    Sep,
    /// Padding.
    Pad,
    /// Classification (BERT's `[CLS]`); written as bos when bos is unset.
    Cls,
    /// Mask.
    Mask,
    /// End of turn: an end-of-generation id of `generation_config.json` besides eos.
    Eot,
    /// End of message: a second such id.
    Eom,
}

impl Special {
    /// Every kind the config files name (`X_token`, `X_token_id`), in the order keys are
    /// written; eot and eom come from `generation_config.json` only, and are written after.
    pub const ALL: [Special; 7] = [
        Special::Bos,
        Special::Eos,
        Special::Unk,
        Special::Sep,
        Special::Pad,
        Special::Cls,
        Special::Mask,
    ];

    /// The short name of the config files (`bos` in `bos_token`, `add_bos_token`).
    pub fn name(self) -> &'static str {
        match self {
            Special::Bos => "bos",
            Special::Eos => "eos",
            Special::Unk => "unk",
            Special::Sep => "sep",
            Special::Pad => "pad",
            Special::Cls => "cls",
            Special::Mask => "mask",
            Special::Eot => "eot",
            Special::Eom => "eom",
        }
    }

    /// The GGUF key of its id (`gguf` package constants); `None` for cls, which has none.
    pub fn id_key(self) -> Option<&'static str> {
        Some(match self {
            Special::Bos => "tokenizer.ggml.bos_token_id",
            Special::Eos => "tokenizer.ggml.eos_token_id",
            Special::Unk => "tokenizer.ggml.unknown_token_id",
            Special::Sep => "tokenizer.ggml.seperator_token_id",
            Special::Pad => "tokenizer.ggml.padding_token_id",
            Special::Mask => "tokenizer.ggml.mask_token_id",
            Special::Eot => "tokenizer.ggml.eot_token_id",
            Special::Eom => "tokenizer.ggml.eom_token_id",
            Special::Cls => return None,
        })
    }

    /// The GGUF key of whether encoding adds it (bos, eos and sep only).
    pub fn add_key(self) -> Option<&'static str> {
        match self {
            Special::Bos => Some("tokenizer.ggml.add_bos_token"),
            Special::Eos => Some("tokenizer.ggml.add_eos_token"),
            Special::Sep => Some("tokenizer.ggml.add_sep_token"),
            _ => None,
        }
    }
}

/// The special token ids of a tokenizer and whether encoding adds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecialTokens {
    /// Ids by kind, each kind at most once.
    pub ids: Vec<(Special, u32)>,
    /// Whether encoding adds bos, eos, sep.
    pub add: Vec<(Special, bool)>,
    /// Every end-of-sequence id of `generation_config.json` when it lists several.
    pub eos_ids: Vec<u32>,
}

impl SpecialTokens {
    /// The id of `kind`.
    pub fn id(&self, kind: Special) -> Option<u32> {
        self.ids.iter().find(|(k, _)| *k == kind).map(|(_, id)| *id)
    }

    /// Whether encoding adds `kind`, when known.
    pub fn adds(&self, kind: Special) -> Option<bool> {
        self.add.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
    }

    fn set_id(&mut self, kind: Special, id: u32) {
        if self.id(kind).is_none() {
            self.ids.push((kind, id));
        }
    }

    fn set_add(&mut self, kind: Special, value: bool) {
        match self.add.iter_mut().find(|(k, _)| *k == kind) {
            Some(e) => e.1 = value,
            None => self.add.push((kind, value)),
        }
    }

    /// Sets the ids and add flags in `md`.
    pub fn write_kv(&self, md: &mut kv::Metadata) {
        for kind in Special::ALL.into_iter().chain([Special::Eot, Special::Eom]) {
            if let (Some(key), Some(id)) = (kind.id_key(), self.id(kind)) {
                md.set(key, id);
            }
        }
        if !self.eos_ids.is_empty() {
            md.set(
                "tokenizer.ggml.eos_token_ids",
                kv::Array::I32(self.eos_ids.iter().map(|&i| i as i32).collect()),
            );
        }
        for kind in Special::ALL {
            if let (Some(key), Some(v)) = (kind.add_key(), self.adds(kind)) {
                md.set(key, v);
            }
        }
    }
}

/// The most elements an array or object inside a kept value may have: real special-token
/// entries, eos lists and chat template lists hold a handful.
const MAX_ELEMENTS: usize = 4096;

/// Reads the JSON object file `path` keeping only the top-level `keys` (`None` when the file is
/// missing; at most `max_json` bytes). Every other value is skipped without being built, and a kept value may hold at
/// most [`MAX_ELEMENTS`] elements per array or object: a large `added_tokens_decoder` or a long
/// eos list costs no memory beyond the file's bytes.
fn object(side: &SideFiles, name: &str, keys: &[&str]) -> Result<Option<Map<String, Value>>> {
    let path = &side.path(name);
    let Some(bytes) = files::read(side, name)? else {
        return Ok(None);
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = serde::de::DeserializeSeed::deserialize(Keep(keys), &mut de).and_then(|m| {
        de.end()?;
        Ok(m)
    });
    match parsed {
        Ok(Some(m)) => Ok(Some(m)),
        Ok(None) => Err(Error::format(
            path.display(),
            None,
            "not a JSON object".to_string(),
        )),
        Err(e) => Err(Error::format(
            path.display(),
            None,
            format!("invalid JSON: {e}"),
        )),
    }
}

/// The top level of [`object`]: `Some(kept keys)` for an object, `None` for another value.
struct Keep<'k>(&'k [&'k str]);

impl<'de> serde::de::DeserializeSeed<'de> for Keep<'_> {
    type Value = Option<Map<String, Value>>;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Keep<'_> {
    type Value = Option<Map<String, Value>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut m: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = m.next_key::<std::borrow::Cow<'de, str>>()? {
            if self.0.contains(&key.as_ref()) {
                let v = m.next_value_seed(Bounded)?;
                out.insert(key.into_owned(), v);
            } else {
                m.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(Some(out))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut s: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }
}

/// A JSON value whose arrays and objects hold at most [`MAX_ELEMENTS`] elements each.
struct Bounded;

impl<'de> serde::de::DeserializeSeed<'de> for Bounded {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Bounded {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut s: A,
    ) -> std::result::Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = s.next_element_seed(Bounded)? {
            if out.len() == MAX_ELEMENTS {
                return Err(serde::de::Error::custom(format!(
                    "an array of more than {MAX_ELEMENTS} elements"
                )));
            }
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut m: A,
    ) -> std::result::Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = m.next_key::<String>()? {
            if out.len() == MAX_ELEMENTS {
                return Err(serde::de::Error::custom(format!(
                    "an object of more than {MAX_ELEMENTS} keys"
                )));
            }
            let v = m.next_value_seed(Bounded)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// The keys of the special tokens' entries `X{suffix}` (`bos_token`, `add_eos_token`, ...).
fn special_keys(prefix: &str, suffix: &str) -> Vec<String> {
    Special::ALL
        .iter()
        .map(|k| format!("{prefix}{}{suffix}", k.name()))
        .collect()
}

/// The content of `X_token` in a tokenizer config: a string or `{"content": string}`.
fn content(path: &Path, m: &Map<String, Value>, kind: Special) -> Result<Option<String>> {
    let key = format!("{}_token", kind.name());
    match m.get(&key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Object(o)) => match o.get("content") {
            Some(Value::String(s)) => Ok(Some(s.clone())),
            _ => Err(Error::format(
                path.display(),
                None,
                format!("{key} has no string \"content\""),
            )),
        },
        Some(_) => Err(Error::format(
            path.display(),
            None,
            format!("{key} is neither a string nor an object with \"content\""),
        )),
    }
}

/// A token id value of a config file, checked against the vocabulary.
fn token_id(path: &Path, key: &str, v: &Value, n: usize) -> Result<u32> {
    match v.as_u64() {
        Some(id) if id < n as u64 => Ok(id as u32),
        _ => Err(Error::format(
            path.display(),
            None,
            format!(
                "{key} {} is not a token id below the {n} tokens",
                shown_json(v)
            ),
        )),
    }
}

/// The special tokens and the chat template of `dir` for the vocabulary `base`; `max_json`
/// bounds each file read.
pub(crate) fn read(side: &SideFiles, base: &Base) -> Result<(SpecialTokens, Option<String>)> {
    let dir = side.dir();
    let tc_path = dir.join(side_files::TOKENIZER_CONFIG);
    let stm_path = dir.join(side_files::SPECIAL_TOKENS_MAP);
    let mut tc_keys = special_keys("", "_token");
    tc_keys.extend(special_keys("add_", "_token"));
    tc_keys.push("chat_template".into());
    let tc_keys: Vec<&str> = tc_keys.iter().map(String::as_str).collect();
    let tc = object(side, side_files::TOKENIZER_CONFIG, &tc_keys)?;
    let stm_keys = special_keys("", "_token");
    let stm_keys: Vec<&str> = stm_keys.iter().map(String::as_str).collect();
    let stm = object(side, side_files::SPECIAL_TOKENS_MAP, &stm_keys)?;
    let n = base.tokens.len();

    // Contents by kind.
    let mut contents: Vec<(Special, String)> = Vec::new();
    for kind in Special::ALL {
        let mut c = None;
        if let Some(m) = &tc {
            c = content(&tc_path, m, kind)?;
        }
        if c.is_none() {
            if let Some(m) = &stm {
                c = content(&stm_path, m, kind)?;
            }
        }
        if let Some(c) = c {
            contents.push((kind, c));
        }
    }
    let find = |list: &[(Special, String)], k: Special| {
        list.iter().find(|(c, _)| *c == k).map(|(_, s)| s.clone())
    };
    for (unset, stand_in) in [(Special::Bos, Special::Cls), (Special::Eos, Special::Sep)] {
        if find(&contents, unset).is_none() {
            if let Some(c) = find(&contents, stand_in) {
                contents.push((unset, c));
            }
        }
    }
    let content_of = |k: Special| {
        contents
            .iter()
            .find(|(c, _)| *c == k)
            .map(|(_, s)| s.as_str())
    };

    let mut out = SpecialTokens::default();
    for kind in Special::ALL {
        let Some(c) = content_of(kind) else { continue };
        let id = base
            .added
            .iter()
            .find(|(t, _)| t == c)
            .map(|(_, id)| *id)
            .or_else(|| base.tokens.iter().position(|t| t == c).map(|i| i as u32));
        if let Some(id) = id {
            out.set_id(kind, id);
        }
    }

    let config_path = dir.join(side_files::CONFIG);
    let id_keys = special_keys("", "_token_id");
    let id_keys: Vec<&str> = id_keys.iter().map(String::as_str).collect();
    if let Some(cfg) = object(side, side_files::CONFIG, &id_keys)? {
        for kind in Special::ALL {
            let key = format!("{}_token_id", kind.name());
            match cfg.get(&key) {
                None | Some(Value::Null) => {}
                // A list (some multi-eos models) is generation_config's business.
                Some(Value::Array(_)) => {}
                Some(v) => {
                    let id = token_id(&config_path, &key, v, n)?;
                    out.set_id(kind, id);
                }
            }
        }
    }
    for (kind, id) in &base.spm_ids {
        out.set_id(*kind, *id);
    }

    let gen_path = dir.join(side_files::GENERATION_CONFIG);
    if let Some(gen) = object(side, side_files::GENERATION_CONFIG, &["eos_token_id"])? {
        let ids = match gen.get("eos_token_id") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => {
                let mut ids = Vec::with_capacity(list.len());
                for v in list {
                    ids.push(token_id(&gen_path, "eos_token_id", v, n)?);
                }
                out.eos_ids.clone_from(&ids);
                ids
            }
            Some(v) => vec![token_id(&gen_path, "eos_token_id", v, n)?],
        };
        if let Some(&first) = ids.first() {
            out.set_id(Special::Eos, first);
        }
        end_of_generation(&ids, &base.tokens, &mut out);
    }

    if let Some(pp) = &base.post_processor {
        add_from_post_processor(pp, &contents, &mut out);
    }
    if let Some(m) = &tc {
        for kind in [Special::Bos, Special::Eos, Special::Sep] {
            let key = format!("add_{}_token", kind.name());
            match m.get(&key) {
                None | Some(Value::Null) => {}
                Some(Value::Bool(b)) => out.set_add(kind, *b),
                Some(v) => {
                    return Err(Error::format(
                        tc_path.display(),
                        None,
                        format!("{key} is {}, not true or false", shown_json(v)),
                    ))
                }
            }
        }
    }

    let template = chat_template(side, tc.as_ref(), &tc_path)?;
    Ok((out, template))
}

/// The tokens llama.cpp ends generation on by their text alone, whatever the ids written
/// (`llama_vocab::impl::load` in llama.cpp's `llama-vocab.cpp`).
const EOG_BY_TEXT: [&str; 22] = [
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "[e~[",
];

/// Makes llama.cpp stop on every end-of-generation id of `generation_config.json` (`ids`), as
/// transformers' `generate` does. llama.cpp ends generation on the eos, eot and eom ids and on
/// the tokens of [`EOG_BY_TEXT`]; an id that is none of them becomes the eot id, a second one
/// the eom id, as llama.cpp's converter registers the extra id of an eos list for models it
/// knows to need it (Laguna, HunYuan). Ids beyond those are only in
/// `tokenizer.ggml.eos_token_ids`, which llama.cpp does not read.
fn end_of_generation(ids: &[u32], tokens: &[String], out: &mut SpecialTokens) {
    let eos = out.id(Special::Eos);
    let mut slots = [Special::Eot, Special::Eom].into_iter();
    let mut seen = Vec::new();
    for &id in ids {
        let text = tokens.get(id as usize).map_or("", String::as_str);
        if Some(id) == eos || seen.contains(&id) || EOG_BY_TEXT.contains(&text) {
            continue;
        }
        seen.push(id);
        let Some(kind) = slots.next() else { break };
        out.set_id(kind, id);
    }
}

/// What a `tokenizer.json` post-processor adds, read the way `gguf.SpecialVocab` does for
/// simple templates: `RobertaProcessing` adds bos, eos and sep; a `TemplateProcessing` adds bos
/// when its single template starts with the bos (or cls) token, eos when it ends with the eos
/// token, and sep when the pair template puts a sep (or eos) between the sequences that is not
/// already the trailing token.
fn add_from_post_processor(
    pp: &PostProcessor,
    contents: &[(Special, String)],
    out: &mut SpecialTokens,
) {
    let get = |k: Special| {
        contents
            .iter()
            .find(|(c, _)| *c == k)
            .map(|(_, s)| s.as_str())
    };
    let members: Vec<&PostProcessor> = if pp.processors.is_empty() {
        vec![pp]
    } else {
        pp.processors.iter().collect()
    };
    for p in members {
        match p.kind.as_deref() {
            Some("RobertaProcessing") => {
                out.set_add(Special::Bos, true);
                out.set_add(Special::Eos, true);
                out.set_add(Special::Sep, true);
            }
            Some("TemplateProcessing") => {
                let special = |piece: &super::hf::TemplatePiece| {
                    piece.special_token.as_ref().map(|s| s.id.clone())
                };
                let mut first = None;
                let mut last = None;
                if p.single.len() > 1 {
                    first = p.single.first().and_then(special);
                    if let Some(f) = &first {
                        let is = Some(f.as_str()) == get(Special::Bos)
                            || Some(f.as_str()) == get(Special::Cls);
                        out.set_add(Special::Bos, is);
                    }
                    last = p.single.last().and_then(special);
                    if let Some(l) = &last {
                        out.set_add(Special::Eos, Some(l.as_str()) == get(Special::Eos));
                    }
                }
                let mut pair: &[super::hf::TemplatePiece] = &p.pair;
                if first.is_some() && pair.first().and_then(special) == first {
                    pair = &pair[1..];
                }
                if last.is_some() && pair.last().and_then(special) == last {
                    pair = &pair[..pair.len() - 1];
                }
                let seq = |x: Option<&super::hf::TemplatePiece>| {
                    x.and_then(|x| x.sequence.as_ref()).map(|s| s.id.clone())
                };
                if pair.len() > 2
                    && seq(pair.first()).as_deref() == Some("A")
                    && seq(pair.last()).as_deref() == Some("B")
                {
                    let middle = &pair[1..pair.len() - 1];
                    let is_sep = |x: &super::hf::TemplatePiece| {
                        special(x).is_some_and(|s| {
                            Some(s.as_str()) == get(Special::Sep)
                                || Some(s.as_str()) == get(Special::Eos)
                        })
                    };
                    let mut add_sep = is_sep(&middle[0]) && last.is_none();
                    if middle.len() == 2 && is_sep(&middle[1]) {
                        add_sep = true;
                    }
                    out.set_add(Special::Sep, add_sep);
                }
            }
            _ => {}
        }
    }
}

/// `tokenizer.chat_template`: tokenizer_config.json's `chat_template` (a string, or a list of
/// named templates of which the one named "default" is taken), else `chat_template.jinja`, else
/// `chat_template.json`'s `chat_template`.
fn chat_template(
    side: &SideFiles,
    tc: Option<&Map<String, Value>>,
    tc_path: &Path,
) -> Result<Option<String>> {
    let dir = side.dir();
    fn pick(path: &Path, v: &Value) -> Result<Option<String>> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            Value::Array(list) => {
                for e in list {
                    if e.get("name").and_then(Value::as_str) == Some("default") {
                        return match e.get("template") {
                            Some(Value::String(s)) => Ok(Some(s.clone())),
                            _ => Err(Error::format(
                                path.display(),
                                None,
                                "chat_template \"default\" has no string \"template\"".to_string(),
                            )),
                        };
                    }
                }
                Ok(None)
            }
            _ => Err(Error::format(
                path.display(),
                None,
                "chat_template is neither a string nor a list of named templates".to_string(),
            )),
        }
    }
    if let Some(v) = tc.and_then(|m| m.get("chat_template")) {
        return pick(tc_path, v);
    }
    let jinja = dir.join(side_files::CHAT_TEMPLATE_JINJA);
    if let Some(bytes) = files::read(side, side_files::CHAT_TEMPLATE_JINJA)? {
        return String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| Error::format(jinja.display(), None, "not UTF-8 text".to_string()));
    }
    let json = dir.join(side_files::CHAT_TEMPLATE_JSON);
    if let Some(m) = object(side, side_files::CHAT_TEMPLATE_JSON, &["chat_template"])? {
        if let Some(v) = m.get("chat_template") {
            return pick(&json, v);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::Vocabulary;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let tokenizer = r#"{"added_tokens":[{"id":2,"content":"<s>","special":true},{"id":3,"content":"</s>","special":true},{"id":4,"content":"<eot>","special":true}],
            "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},
            "model":{"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}"#;
        std::fs::write(dir.path().join("tokenizer.json"), tokenizer).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn generation_config_fills_an_unset_eos_and_lists_every_eos_as_ollama_does() {
        let d = dir_with(&[("generation_config.json", r#"{"eos_token_id": 4}"#)]);
        let v = Vocabulary::read(d.path(), None).unwrap();
        assert_eq!(v.special.id(Special::Eos), Some(4));
        assert!(v.special.eos_ids.is_empty());

        let d = dir_with(&[
            ("tokenizer_config.json", r#"{"eos_token": "</s>"}"#),
            ("generation_config.json", r#"{"eos_token_id": [4, 3]}"#),
        ]);
        let v = Vocabulary::read(d.path(), None).unwrap();
        assert_eq!(v.special.id(Special::Eos), Some(3), "tokenizer_config wins");
        assert_eq!(v.special.eos_ids, [4, 3]);
    }

    #[test]
    fn a_template_list_without_default_gives_no_template() {
        let d = dir_with(&[(
            "tokenizer_config.json",
            r#"{"chat_template": [{"name": "tool_use", "template": "x"}]}"#,
        )]);
        assert_eq!(
            Vocabulary::read(d.path(), None).unwrap().chat_template,
            None
        );
    }

    #[test]
    fn special_tokens_map_stands_in_for_tokenizer_config() {
        let d = dir_with(&[
            ("tokenizer_config.json", r#"{"bos_token": "<s>"}"#),
            (
                "special_tokens_map.json",
                r#"{"bos_token": "</s>", "eos_token": {"content": "<eot>"}}"#,
            ),
        ]);
        let v = Vocabulary::read(d.path(), None).unwrap();
        assert_eq!(v.special.id(Special::Bos), Some(2));
        assert_eq!(v.special.id(Special::Eos), Some(4));
    }
}
