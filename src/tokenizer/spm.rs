//! `tokenizer.model`: a SentencePiece `ModelProto`, decoded by `prost` from the fields of
//! `sentencepiece_model.proto` a GGUF needs, plus the added tokens of `tokenizer.json`,
//! `added_tokens.json` and `tokenizer_config.json`'s `added_tokens_decoder`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{files, special::Special, Base, Model, TokenType, MAX_TOKENS};
use crate::error::{Error, Result};
use crate::side_files::{self, SideFiles};

/// The file name.
pub const FILE: &str = crate::side_files::TOKENIZER_MODEL;

/// `ModelProto`: only the fields read here; prost skips the others.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// The vocabulary, by id.
    #[prost(message, repeated, tag = "1")]
    pub pieces: Vec<SentencePiece>,
    /// How the model was trained (special ids).
    #[prost(message, optional, tag = "2")]
    pub trainer_spec: Option<TrainerSpec>,
    /// How text is normalised (the dummy prefix).
    #[prost(message, optional, tag = "3")]
    pub normalizer_spec: Option<NormalizerSpec>,
}

/// `ModelProto.SentencePiece`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SentencePiece {
    /// The piece text.
    #[prost(string, optional, tag = "1")]
    pub piece: Option<String>,
    /// Its score.
    #[prost(float, optional, tag = "2")]
    pub score: Option<f32>,
    /// Its type, `NORMAL` (1) when absent.
    #[prost(enumeration = "PieceType", optional, tag = "3")]
    pub r#type: Option<i32>,
}

/// `ModelProto.SentencePiece.Type`: the same numbers as GGUF's token types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PieceType {
    /// An ordinary piece.
    Normal = 1,
    /// The unknown piece.
    Unknown = 2,
    /// A control symbol.
    Control = 3,
    /// A user-defined symbol.
    UserDefined = 4,
    /// A byte-fallback piece.
    Byte = 6,
    /// An unused piece.
    Unused = 5,
}

/// `TrainerSpec`: the special ids.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TrainerSpec {
    /// Id of `<unk>` (default 0).
    #[prost(int32, optional, tag = "40")]
    pub unk_id: Option<i32>,
    /// Id of `<s>` (default 1, -1 = none).
    #[prost(int32, optional, tag = "41")]
    pub bos_id: Option<i32>,
    /// Id of `</s>` (default 2, -1 = none).
    #[prost(int32, optional, tag = "42")]
    pub eos_id: Option<i32>,
    /// Id of `<pad>` (default -1 = none).
    #[prost(int32, optional, tag = "43")]
    pub pad_id: Option<i32>,
}

/// `NormalizerSpec`: whether a space is put before the text.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NormalizerSpec {
    /// `add_dummy_prefix` (default true).
    #[prost(bool, optional, tag = "3")]
    pub add_dummy_prefix: Option<bool>,
}

/// One entry of `added_tokens_decoder` in tokenizer_config.json.
#[derive(Deserialize)]
struct AddedDecoderEntry {
    content: String,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
struct TokenizerConfigAdded {
    #[serde(default)]
    added_tokens_decoder: Option<BTreeMap<String, AddedDecoderEntry>>,
}

/// The type of an added token: control when special, else user-defined.
fn kind_of(special: bool) -> TokenType {
    if special {
        TokenType::Control
    } else {
        TokenType::UserDefined
    }
}

/// Calls `each(tag, bytes)` for every length-delimited top-level field of the protobuf message
/// `buf` (the fields read here are all messages), skipping the others without allocating.
fn walk(
    mut buf: &[u8],
    fail: &dyn Fn(String) -> Error,
    mut each: impl FnMut(u32, &[u8]) -> Result<()>,
) -> Result<()> {
    use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};
    let bad = |e: prost::DecodeError| fail(format!("not a SentencePiece model: {e}"));
    while !buf.is_empty() {
        let (tag, wire) = decode_key(&mut buf).map_err(bad)?;
        if wire != WireType::LengthDelimited {
            if tag <= 3 {
                return Err(fail(format!(
                    "not a SentencePiece model: field {tag} has wire type {wire:?}, not a message"
                )));
            }
            skip_field(wire, tag, &mut buf, DecodeContext::default()).map_err(bad)?;
            continue;
        }
        let len = decode_varint(&mut buf).map_err(bad)?;
        let Some(len) = usize::try_from(len).ok().filter(|&n| n <= buf.len()) else {
            return Err(fail(format!(
                "not a SentencePiece model: field {tag} of {len} bytes runs past the end"
            )));
        };
        let (field, rest) = buf.split_at(len);
        buf = rest;
        each(tag, field)?;
    }
    Ok(())
}

/// Reads `tokenizer.model` (`bytes`) of `dir` and the added tokens beside it (JSON files of at
/// most `max_json` bytes). The pieces are counted before any is decoded and decoded one at a
/// time straight into the token lists, so memory stays a small multiple of the file's size.
pub(crate) fn parse(side: &SideFiles, bytes: &[u8]) -> Result<Base> {
    let dir = side.dir();
    let path = dir.join(FILE);
    let fail = |rule: String| Error::format(path.display(), None, rule);
    let mut count: u64 = 0;
    walk(bytes, &fail, |tag, _| {
        count += u64::from(tag == 1);
        Ok(())
    })?;
    if count == 0 {
        return Err(fail("the model has no pieces".into()));
    }
    if count > MAX_TOKENS {
        return Err(fail(format!(
            "{count} pieces are more than the {MAX_TOKENS} a vocabulary may have"
        )));
    }
    // At most MAX_TOKENS, so the casts below are exact.
    let count = count as usize;
    let mut tokens = Vec::with_capacity(count);
    let mut scores = Vec::with_capacity(count);
    let mut types = Vec::with_capacity(count);
    let mut trainer_spec: Option<TrainerSpec> = None;
    let mut normalizer_spec: Option<NormalizerSpec> = None;
    walk(bytes, &fail, |tag, field| {
        let bad = |e: prost::DecodeError| fail(format!("not a SentencePiece model: {e}"));
        match tag {
            1 => {
                let i = tokens.len();
                let p = <SentencePiece as prost::Message>::decode(field).map_err(bad)?;
                let piece = p.piece.unwrap_or_default();
                if piece.is_empty() {
                    // sentencepiece refuses an empty piece when it loads a model.
                    return Err(fail(format!("piece {i} is empty")));
                }
                let kind = match p.r#type.map(PieceType::try_from) {
                    None => TokenType::Normal,
                    Some(Ok(t)) => match t {
                        PieceType::Normal => TokenType::Normal,
                        PieceType::Unknown => TokenType::Unknown,
                        PieceType::Control => TokenType::Control,
                        PieceType::UserDefined => TokenType::UserDefined,
                        PieceType::Unused => TokenType::Unused,
                        PieceType::Byte => TokenType::Byte,
                    },
                    Some(Err(_)) => {
                        return Err(fail(format!(
                            "piece {i} {} has unknown type {}",
                            super::shorten(&piece),
                            p.r#type.unwrap_or_default()
                        )))
                    }
                };
                tokens.push(piece);
                scores.push(p.score.unwrap_or(0.0));
                types.push(kind);
            }
            // Repeated message fields merge, as protobuf decoders do.
            2 => prost::Message::merge(trainer_spec.get_or_insert_with(Default::default), field)
                .map_err(bad)?,
            3 => prost::Message::merge(normalizer_spec.get_or_insert_with(Default::default), field)
                .map_err(bad)?,
            _ => {}
        }
        Ok(())
    })?;

    // Added tokens: added_tokens.json (content → id), then tokenizer_config.json's
    // added_tokens_decoder (id → {content, special}); when neither lists any, tokenizer.json's
    // added_tokens (transformers 5 writes only those). Ids inside the model must name the
    // piece there; new ids must follow the pieces without a gap.
    let mut added: BTreeMap<u64, (String, TokenType, &Path)> = BTreeMap::new();
    let added_path = dir.join(side_files::ADDED_TOKENS);
    if let Some(map) = files::read_json::<BTreeMap<String, u64>>(side, side_files::ADDED_TOKENS)? {
        for (content, id) in map {
            added.insert(id, (content, TokenType::UserDefined, &added_path));
        }
    }
    let config_path = dir.join(side_files::TOKENIZER_CONFIG);
    if let Some(cfg) = files::read_json::<TokenizerConfigAdded>(side, side_files::TOKENIZER_CONFIG)?
    {
        for (key, e) in cfg.added_tokens_decoder.unwrap_or_default() {
            let id: u64 = key.parse().map_err(|_| {
                Error::format(
                    config_path.display(),
                    None,
                    format!("added_tokens_decoder key {key:?} is not a token id"),
                )
            })?;
            added.insert(id, (e.content, kind_of(e.special), &config_path));
        }
    }
    let json_path = dir.join(super::hf::FILE);
    if added.is_empty() {
        if let Some(bytes) = files::read(side, super::hf::FILE)? {
            for (id, content, special) in super::hf::added_tokens(&json_path, bytes)? {
                added.insert(id, (content, kind_of(special), &json_path));
            }
        }
    }
    let n = tokens.len() as u64;
    for (id, (content, kind, source)) in added {
        if id < n {
            let i = id as usize;
            if tokens[i] != content {
                // llama.cpp's converter lets tokenizer_config.json rename a piece (models
                // reuse unused pieces for their own tokens); Vocabulary::read refuses a name
                // that is then another token's too.
                tokens[i] = content;
                types[i] = kind;
            } else if kind == TokenType::Control && types[i] == TokenType::Normal {
                // llama.cpp marks special added tokens of the base vocabulary as control.
                types[i] = kind;
            }
            continue;
        }
        if id != tokens.len() as u64 {
            return Err(Error::format(
                source.display(),
                None,
                format!(
                    "added token {content:?} has id {id}, expected {} (ids must follow the {n} pieces without a gap)",
                    tokens.len()
                ),
            ));
        }
        tokens.push(content);
        scores.push(-1000.0);
        types.push(kind);
    }

    let spec = trainer_spec.unwrap_or_default();
    let mut spm_ids = Vec::new();
    for (kind, id, default) in [
        (Special::Unk, spec.unk_id, 0),
        (Special::Bos, spec.bos_id, 1),
        (Special::Eos, spec.eos_id, 2),
        (Special::Pad, spec.pad_id, -1),
    ] {
        let id = id.unwrap_or(default);
        if id >= 0 && (id as u64) < n {
            spm_ids.push((kind, id as u32));
        }
    }
    let add_space_prefix = normalizer_spec.is_none_or(|n| n.add_dummy_prefix.unwrap_or(true));
    Ok(Base {
        model: Model::Llama,
        pre: super::pre::Pre::Known("default"),
        tokens,
        scores: Some(scores),
        types,
        merges: Vec::new(),
        add_space_prefix: Some(add_space_prefix),
        normalizer: None,
        added: Vec::new(),
        post_processor: None,
        spm_ids,
    })
}
