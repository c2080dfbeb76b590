//! `tokenizer.json` of the Hugging Face `tokenizers` library: a typed model of the parts a GGUF
//! needs (BPE and WordPiece vocabularies, added tokens, merges, the pre-tokenizer's Split
//! regexes, the BERT normalizer and the post-processor).

use std::fmt;
use std::path::Path;

use super::pre::{self, Pre};
use super::{files, shorten, Base, Model, Normalizer, TokenType, MAX_TOKENS};
use crate::error::{Error, Result};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// The file name.
pub const FILE: &str = crate::side_files::TOKENIZER_JSON;

#[derive(Deserialize)]
struct TokenizerFile {
    #[serde(default, deserialize_with = "up_to_max_tokens")]
    added_tokens: Vec<AddedToken>,
    #[serde(default)]
    normalizer: Option<NormalizerJson>,
    #[serde(default)]
    pre_tokenizer: Option<PreTokenizerJson>,
    #[serde(default)]
    post_processor: Option<PostProcessor>,
    #[serde(default)]
    decoder: Option<Typed>,
    model: ModelJson,
}

/// One entry of `added_tokens`.
#[derive(Deserialize)]
struct AddedToken {
    id: u64,
    content: String,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct ModelJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    vocab: VocabField,
    #[serde(default)]
    merges: Merges,
    #[serde(default)]
    byte_fallback: bool,
    #[serde(default)]
    ignore_merges: bool,
}

/// `model.merges`, each rule read straight into the joined `"left right"` form GGUF stores
/// (no list of parsed rules to copy from), at most [`MAX_TOKENS`] of them. A rule is a string
/// `"left right"`, or a pair `["left", "right"]` (tokenizers ≥ 0.20, so parts may hold spaces:
/// written as byte-level BPE's U+0120, as gguf.SpecialVocab does, or the joined form would
/// split in the wrong place).
#[derive(Default)]
struct Merges(Vec<String>);

impl<'de> Deserialize<'de> for Merges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Merges;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of merge rules")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(MergeRule(rule)) = s.next_element()? {
                    if out.len() as u64 >= MAX_TOKENS {
                        return Err(de::Error::custom(format!(
                            "model.merges has more than {MAX_TOKENS} rules"
                        )));
                    }
                    out.push(rule);
                }
                Ok(Merges(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// One merge rule, joined.
struct MergeRule(String);

impl<'de> Deserialize<'de> for MergeRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MergeRule;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a merge rule: \"left right\" or [\"left\", \"right\"]")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Self::Value, E> {
                Ok(MergeRule(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> std::result::Result<Self::Value, E> {
                Ok(MergeRule(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let parts = |n: usize| {
                    de::Error::custom(format!("a merge rule has {n} parts instead of 2"))
                };
                let Some(a) = s.next_element::<String>()? else {
                    return Err(parts(0));
                };
                let Some(b) = s.next_element::<String>()? else {
                    return Err(parts(1));
                };
                if s.next_element::<IgnoredAny>()?.is_some() {
                    return Err(parts(3));
                }
                let esc = |s: String| s.replace(' ', "\u{120}");
                Ok(MergeRule(format!("{} {}", esc(a), esc(b))))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct NormalizerJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    lowercase: Option<bool>,
    #[serde(default)]
    strip_accents: Option<bool>,
    #[serde(default, deserialize_with = "few")]
    normalizers: Vec<NormalizerJson>,
}

/// `pre_tokenizer`: the fields of the kinds llama.cpp has an equivalent of ([`super::pre`]).
#[derive(Deserialize)]
pub(crate) struct PreTokenizerJson {
    /// `Sequence`, `Split`, `ByteLevel`, `Digits`, ...
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The members of a `Sequence`.
    #[serde(default, deserialize_with = "few")]
    pub pretokenizers: Vec<PreTokenizerJson>,
    /// A `Split`'s pattern.
    #[serde(default)]
    pub pattern: Option<PatternJson>,
    /// A `Split`'s behavior (`Isolated`, `Removed`, ...).
    #[serde(default)]
    pub behavior: Option<String>,
    /// Whether a `Split` keeps what its pattern does not match.
    #[serde(default)]
    pub invert: Option<bool>,
    /// `ByteLevel`: a space put before the text.
    #[serde(default)]
    pub add_prefix_space: Option<bool>,
    /// `ByteLevel`: split by GPT-2's regex first (true when absent).
    #[serde(default)]
    pub use_regex: Option<bool>,
    /// `Digits`: each digit alone, else runs of digits.
    #[serde(default)]
    pub individual_digits: Option<bool>,
}

/// A `Split` pattern: a regex or a literal string.
#[derive(Deserialize)]
pub(crate) struct PatternJson {
    /// A regex.
    #[serde(rename = "Regex", default)]
    pub regex: Option<String>,
    /// A literal string.
    #[serde(rename = "String", default)]
    pub string: Option<String>,
}

/// The post-processor of `tokenizer.json`: which special tokens encoding adds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PostProcessor {
    /// `TemplateProcessing`, `RobertaProcessing`, `Sequence`, ...
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The members of a `Sequence`.
    #[serde(default, deserialize_with = "few")]
    pub processors: Vec<PostProcessor>,
    /// The template for one sequence.
    #[serde(default, deserialize_with = "few")]
    pub single: Vec<TemplatePiece>,
    /// The template for a pair of sequences.
    #[serde(default, deserialize_with = "few")]
    pub pair: Vec<TemplatePiece>,
}

/// One piece of a `TemplateProcessing` template.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TemplatePiece {
    /// A special token, by content.
    #[serde(rename = "SpecialToken", default)]
    pub special_token: Option<PieceId>,
    /// A sequence, `A` or `B`.
    #[serde(rename = "Sequence", default)]
    pub sequence: Option<PieceId>,
}

/// The `id` of a template piece.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PieceId {
    /// The token content or the sequence name.
    pub id: String,
}

/// The most members a structural list of tokenizer.json may have (normalizers,
/// pre-tokenizers, post-processors, template pieces): real files hold a handful, and each
/// element costs far more memory than its `{}` in the file.
const MAX_MEMBERS: usize = 256;

/// A list of at most [`MAX_MEMBERS`] elements.
fn few<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Vec<T>, D::Error> {
    bounded(d, MAX_MEMBERS as u64)
}

/// A list of at most [`MAX_TOKENS`] elements.
fn up_to_max_tokens<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Vec<T>, D::Error> {
    bounded(d, MAX_TOKENS)
}

/// A list refused, while it is read, once it has more than `max` elements.
fn bounded<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
    max: u64,
) -> std::result::Result<Vec<T>, D::Error> {
    struct V<T>(u64, std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of at most {} elements", self.0)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> std::result::Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(e) = s.next_element()? {
                if out.len() as u64 == self.0 {
                    return Err(de::Error::custom(format!(
                        "a list of more than {} elements",
                        self.0
                    )));
                }
                out.push(e);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V(max, std::marker::PhantomData))
}

/// `model.vocab`: a map from token to id (BPE, WordPiece, WordLevel) kept in file order with
/// duplicate keys visible, or something else (Unigram's list).
#[derive(Default)]
enum VocabField {
    #[default]
    Missing,
    Map(Vec<(String, u64)>),
    Other,
}

impl<'de> Deserialize<'de> for VocabField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VocabField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map from token to id, or a list")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(0).min(1 << 20));
                while let Some((k, v)) = m.next_entry::<String, u64>()? {
                    if out.len() as u64 >= MAX_TOKENS {
                        return Err(de::Error::custom(format!(
                            "model.vocab has more than {MAX_TOKENS} tokens"
                        )));
                    }
                    out.push((k, v));
                }
                Ok(VocabField::Map(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(VocabField::Other)
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
                Ok(VocabField::Missing)
            }
        }
        d.deserialize_any(V)
    }
}

/// The `added_tokens` of `tokenizer.json` (`bytes` of `path`) as (id, content, special), for a
/// `tokenizer.model` beside it: transformers 5 lists added tokens only there.
pub(crate) fn added_tokens(path: &Path, bytes: &[u8]) -> Result<Vec<(u64, String, bool)>> {
    #[derive(Deserialize)]
    struct Added {
        #[serde(default, deserialize_with = "up_to_max_tokens")]
        added_tokens: Vec<AddedToken>,
    }
    let file: Added = files::parse_json(path, bytes)?;
    Ok(file
        .added_tokens
        .into_iter()
        .map(|t| (t.id, t.content, t.special))
        .collect())
}

/// The BertNormalizer options (top level or inside a `Sequence`); without one, the text is
/// neither lower-cased nor stripped of accents.
fn normalizer(n: Option<&NormalizerJson>) -> Normalizer {
    fn find(n: &NormalizerJson) -> Option<&NormalizerJson> {
        if n.kind.as_deref() == Some("BertNormalizer") {
            return Some(n);
        }
        n.normalizers.iter().find_map(find)
    }
    match n.and_then(find) {
        Some(b) => {
            let lowercase = b.lowercase.unwrap_or(true);
            Normalizer {
                lowercase,
                strip_accents: b.strip_accents.unwrap_or(lowercase),
            }
        }
        None => Normalizer {
            lowercase: false,
            strip_accents: false,
        },
    }
}

/// Parses `tokenizer.json` (`bytes` of `path`). `vocab_size` (config.json's) is the largest
/// count ids may reach; ids beyond the token count without it are errors.
pub(crate) fn parse(path: &Path, bytes: &[u8], vocab_size: Option<u64>) -> Result<Base> {
    let file: TokenizerFile = files::parse_json(path, bytes)?;
    let fail = |rule: String| Error::format(path.display(), None, rule);
    let kind = file.model.kind.as_deref().unwrap_or("");
    let model = match kind {
        "BPE" => Model::Gpt2,
        "WordPiece" => Model::Bert,
        other => {
            return Err(Error::Unsupported(format!(
                "{}: tokenizer model type {other:?} is not supported (BPE and WordPiece are)",
                path.display()
            )))
        }
    };
    if model == Model::Gpt2
        && file.model.byte_fallback
        && file.decoder.as_ref().and_then(|d| d.kind.as_deref()) != Some("ByteLevel")
    {
        return Err(Error::Unsupported(format!(
            "{}: a BPE model with byte_fallback and no ByteLevel decoder is a SentencePiece \
             vocabulary: convert it from tokenizer.model",
            path.display()
        )));
    }
    let vocab = match file.model.vocab {
        VocabField::Map(v) => v,
        VocabField::Missing => return Err(fail("model has no vocab".into())),
        VocabField::Other => return Err(fail("model vocab is not a map from token to id".into())),
    };

    let entries = vocab.len() as u64 + file.added_tokens.len() as u64;
    let limit = entries.max(vocab_size.unwrap_or(0)).min(MAX_TOKENS);
    let check = |id: u64, token: &str| -> Result<usize> {
        if id >= limit {
            return Err(fail(format!(
                "token {} has id {id}, out of range: the tokenizer has {entries} entries{}",
                shorten(token),
                vocab_size.map_or(String::new(), |v| format!(
                    " and config.json vocab_size {v}"
                ))
            )));
        }
        Ok(id as usize)
    };

    // A token repeated at two ids is found once the whole vocabulary is known
    // (Vocabulary::read), without a second copy of every token here.
    let mut slots: Vec<Option<(String, TokenType)>> = Vec::new();
    for (token, id) in vocab {
        let i = check(id, &token)?;
        if slots.len() <= i {
            slots.resize(i + 1, None);
        }
        if let Some((other, _)) = &slots[i] {
            return Err(fail(format!(
                "id {id} is claimed by two tokens of model.vocab, {} and {}",
                shorten(other),
                shorten(&token)
            )));
        }
        slots[i] = Some((token, TokenType::Normal));
    }
    let mut added = Vec::with_capacity(file.added_tokens.len());
    let mut added_ids = std::collections::HashSet::new();
    for t in file.added_tokens {
        let i = check(t.id, &t.content)?;
        if !added_ids.insert(t.id) {
            return Err(fail(format!(
                "id {} is claimed by two entries of added_tokens",
                t.id
            )));
        }
        if slots.len() <= i {
            slots.resize(i + 1, None);
        }
        let kind = if t.special {
            TokenType::Control
        } else {
            TokenType::UserDefined
        };
        // An added token takes its id's slot, as in the tokenizers library.
        slots[i] = Some((t.content.clone(), kind));
        added.push((t.content, t.id as u32));
    }
    let mut tokens = Vec::with_capacity(slots.len());
    let mut types = Vec::with_capacity(slots.len());
    for (i, slot) in slots.into_iter().enumerate() {
        let (token, kind) = slot.unwrap_or_else(|| (format!("[PAD{i}]"), TokenType::Unused));
        tokens.push(token);
        types.push(kind);
    }

    let merges = file.model.merges.0;
    if model == Model::Gpt2 && merges.is_empty() {
        return Err(fail("a BPE model without merges".into()));
    }

    let (pre, norm) = match model {
        Model::Gpt2 => (
            pre::derive(file.pre_tokenizer.as_ref(), file.model.ignore_merges),
            None,
        ),
        // llama.cpp's WordPiece tokenizer has its own fixed split.
        _ => (
            Pre::Known("default"),
            Some(normalizer(file.normalizer.as_ref())),
        ),
    };
    Ok(Base {
        model,
        pre,
        tokens,
        scores: None,
        types,
        merges,
        add_space_prefix: None,
        normalizer: norm,
        added,
        post_processor: file.post_processor,
        spm_ids: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(json: &str) -> Result<Base> {
        parse(Path::new("tokenizer.json"), json.as_bytes(), None)
    }

    #[test]
    fn both_merge_forms_and_added_tokens() {
        let b = parse_str(
            r#"{"added_tokens":[{"id":3,"content":"<s>","special":true},{"id":4,"content":"x y","special":false}],
                "model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b",["a","b c"]]}}"#,
        )
        .unwrap();
        assert_eq!(b.tokens, ["a", "b", "ab", "<s>", "x y"]);
        use TokenType::*;
        assert_eq!(b.types, [Normal, Normal, Normal, Control, UserDefined]);
        assert_eq!(b.merges, ["a b", "a b\u{120}c"]);
        assert!(
            matches!(&b.pre, Pre::Unmapped(why) if why.contains("no pre_tokenizer")),
            "{:?}",
            b.pre
        );
    }

    #[test]
    fn hostile_vocabularies_are_errors_naming_the_file() {
        for (json, want) in [
            (
                r#"{"model":{"type":"BPE","vocab":{"a":0,"b":0},"merges":["a b"]}}"#,
                "claimed",
            ),
            (
                r#"{"model":{"type":"BPE","vocab":{"a":4000000000},"merges":["a a"]}}"#,
                "out of range",
            ),
            (
                r#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a"]]}}"#,
                "parts",
            ),
            (
                r#"{"model":{"type":"Unigram","vocab":[["a",0.0]]}}"#,
                "not supported",
            ),
            (
                r#"{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]}}"#,
                "invalid JSON",
            ),
            (r#"{"model":"#, "invalid JSON"),
        ] {
            let err = parse_str(json).err().expect(json).to_string();
            assert!(err.starts_with("tokenizer.json: "), "{err}");
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}
