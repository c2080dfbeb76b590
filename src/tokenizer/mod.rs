//! The tokenizer of a Hugging Face model directory, as the `tokenizer.*` keys of a GGUF.
//!
//! Reads `tokenizer.model` (a SentencePiece `ModelProto`, [`spm`]) or `tokenizer.json` (BPE or
//! WordPiece, [`hf`]), then the special tokens and the chat template from `tokenizer_config.json`,
//! `special_tokens_map.json`, `config.json` and `generation_config.json` ([`special`]). The
//! result is a [`Vocabulary`]; [`Vocabulary::write_kv`] sets the keys llama.cpp and ollama read.
//!
//! Where llama.cpp's Python converter and ollama differ, llama.cpp's choice is followed (it must
//! load the file), except where noted:
//! - `tokenizer.model` wins over `tokenizer.json` when both exist (both converters agree).
//! - BPE and WordPiece vocabularies carry no `tokenizer.ggml.scores` (llama.cpp writes none;
//!   ollama writes each token's id as its score, which no engine reads).
//! - merges in the `["a", "b"]` form are joined with a space after mapping spaces inside a part
//!   to U+0120, as llama.cpp's `gguf.SpecialVocab` does (ollama joins them unchanged).
//! - `cls` and `sep` fall back to `bos` and `eos` when those are unset (`gguf.SpecialVocab`);
//!   there is no `cls` key in the `gguf` package's constants, so none is written.
//! - ids missing between 0 and the largest id become `[PAD{id}]` of type unused (llama.cpp;
//!   ollama would renumber every token after the hole). Padding up to `config.json`'s
//!   `vocab_size` is type user-defined with score -1 (ollama), named `[PAD{id}]` by its id as
//!   llama.cpp's converter names it (ollama counts from 0, which can repeat a hole's name).
//! - a token string at two ids (an added token repeating a vocabulary token or another added
//!   token, a real token named like a filler) is refused, naming the token and both ids:
//!   llama.cpp aborts loading such a vocabulary, and llama.cpp's converter would write it
//!   unchanged. Empty tokens are exempt (llama.cpp renames them at load).
//! - memory stays a small multiple of the files' size: counts are checked while lists are
//!   read (before `tokenizer.model`'s pieces are decoded), values the keys do not need are
//!   skipped without being built, and the lists move into the metadata.
//! - `tokenizer.ggml.eos_token_ids` (a list from `generation_config.json`) is an ollama key;
//!   llama.cpp ignores it, so the list's ids llama.cpp would not stop on are also written as
//!   the eot and eom ids ([`special`]).
//! - `tokenizer.ggml.pre` of a BPE vocabulary is derived from the pre-tokenizer's definition
//!   ([`pre`]), not from a hash of tokenized text (llama.cpp's converter) nor of the Split
//!   regexes (ollama); one no llama.cpp type matches is refused unless the caller names a type.
//! - a `tokenizer.model`'s added tokens listed only in `tokenizer.json` (transformers 5) are
//!   kept; llama.cpp's converter reads only `added_tokens.json` and `added_tokens_decoder`.
//!
//! Every file is read by the one reader of side files ([`crate::file::read_side`]): regular
//! files only (a FIFO or device is refused without blocking), `tokenizer.json` and
//! `tokenizer.model` bounded by [`MAX_FILE_BYTES`], the other files by `max_json_size`.

mod files;
pub mod hf;
pub mod pre;
pub mod special;
pub mod spm;

use std::path::Path;

use crate::error::{Error, Result};
use crate::file::DEFAULT_MAX_JSON_SIZE;
use crate::kv;
use crate::side_files::{self, SideFiles};

pub use files::MAX_FILE_BYTES;
pub use special::{Special, SpecialTokens};

/// A token's type, with the numbers of the `gguf` package's `TokenType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum TokenType {
    /// An ordinary token.
    Normal = 1,
    /// The unknown token.
    Unknown = 2,
    /// A control token (special: never produced from text unless asked).
    Control = 3,
    /// A user-defined token, matched whole in text.
    UserDefined = 4,
    /// A token that is never produced (padding, holes).
    Unused = 5,
    /// A byte-fallback token `<0xNN>`.
    Byte = 6,
}

/// The tokenizer algorithm, the value of `tokenizer.ggml.model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Byte-level BPE from `tokenizer.json`: `"gpt2"`.
    Gpt2,
    /// WordPiece from `tokenizer.json`: `"bert"`.
    Bert,
    /// SentencePiece from `tokenizer.model`: `"llama"`.
    Llama,
}

impl Model {
    /// The name llama.cpp reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::Gpt2 => "gpt2",
            Model::Bert => "bert",
            Model::Llama => "llama",
        }
    }
}

/// BertNormalizer options llama.cpp's WordPiece tokenizer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Normalizer {
    /// Lower-case the text.
    pub lowercase: bool,
    /// Strip accents.
    pub strip_accents: bool,
}

/// A parsed tokenizer: everything the `tokenizer.*` keys hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    /// The algorithm.
    pub model: Model,
    /// `tokenizer.ggml.pre`: the pre-tokenizer llama.cpp applies (BPE), else `"default"`.
    pub pre: String,
    /// Tokens by id, as written (WordPiece already in llama.cpp's phantom-space form).
    pub tokens: Vec<String>,
    /// Scores by id (SentencePiece; `None` for BPE and WordPiece).
    pub scores: Option<Vec<f32>>,
    /// Types by id.
    pub types: Vec<TokenType>,
    /// BPE merges, `"left right"`.
    pub merges: Vec<String>,
    /// Special token ids and whether to add them.
    pub special: SpecialTokens,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
    /// SentencePiece `add_dummy_prefix` (`tokenizer.ggml.add_space_prefix`).
    pub add_space_prefix: Option<bool>,
    /// WordPiece normalizer options.
    pub normalizer: Option<Normalizer>,
    /// `tokenizer.ggml.token_type_count` (WordPiece): config.json's `type_vocab_size`, the rows
    /// of BERT's token-type embedding that llama.cpp checks the tensor against.
    pub token_type_count: Option<u32>,
}

/// Where the base vocabulary came from.
pub(crate) struct Base {
    pub model: Model,
    pub pre: pre::Pre,
    pub tokens: Vec<String>,
    pub scores: Option<Vec<f32>>,
    pub types: Vec<TokenType>,
    pub merges: Vec<String>,
    pub add_space_prefix: Option<bool>,
    pub normalizer: Option<Normalizer>,
    /// Added tokens of tokenizer.json (content, id), in file order: special tokens are
    /// looked up here first.
    pub added: Vec<(String, u32)>,
    /// The post-processor of tokenizer.json, for add_bos/add_eos/add_sep.
    pub post_processor: Option<hf::PostProcessor>,
    /// Special ids a SentencePiece model declares (unk, bos, eos, pad), lowest precedence.
    pub spm_ids: Vec<(Special, u32)>,
}

impl Vocabulary {
    /// Reads the tokenizer of the Hugging Face directory `dir`. `vocab_size` (config.json's)
    /// pads the vocabulary with `[PAD{id}]` tokens; a smaller value than the tokenizer's token
    /// count is an error, and so is a token string at two ids. JSON files are bounded by the
    /// default `max_json_size`.
    pub fn read(dir: &Path, vocab_size: Option<u64>) -> Result<Vocabulary> {
        Vocabulary::read_limited(dir, vocab_size, DEFAULT_MAX_JSON_SIZE)
    }

    /// [`Vocabulary::read`] with `max_json` (`Options::max_json_size`) bounding the JSON and
    /// text files, and [`MAX_FILE_BYTES`] (or `max_json` when larger) `tokenizer.json` and
    /// `tokenizer.model`.
    pub fn read_limited(dir: &Path, vocab_size: Option<u64>, max_json: u64) -> Result<Vocabulary> {
        Vocabulary::read_with(dir, vocab_size, max_json, None)
    }

    /// [`Vocabulary::read_limited`] with `tokenizer_pre` (`Options::tokenizer_pre`) written as
    /// `tokenizer.ggml.pre` in place of the type derived from the pre-tokenizer ([`pre`]).
    /// Without it, a BPE pre-tokenizer no llama.cpp type matches is refused, describing it.
    pub fn read_with(
        dir: &Path,
        vocab_size: Option<u64>,
        max_json: u64,
        tokenizer_pre: Option<&str>,
    ) -> Result<Vocabulary> {
        let side = SideFiles::read(dir, max_json);
        Vocabulary::read_in(&side, vocab_size, tokenizer_pre)
    }

    /// [`Vocabulary::read_with`] from the side files `side` (read once, within their bounds).
    pub fn read_in(
        side: &SideFiles,
        vocab_size: Option<u64>,
        tokenizer_pre: Option<&str>,
    ) -> Result<Vocabulary> {
        if let Some(name) = tokenizer_pre {
            crate::options::check_tokenizer_pre(name)?;
        }
        let dir = side.dir();
        let mut base = if let Some(bytes) = files::read(side, spm::FILE)? {
            spm::parse(side, bytes)?
        } else if let Some(bytes) = files::read(side, hf::FILE)? {
            hf::parse(&dir.join(hf::FILE), bytes, vocab_size)?
        } else {
            return Err(Error::NotFound(format!(
                "{}: no tokenizer: neither {} nor {} exists",
                dir.display(),
                spm::FILE,
                hf::FILE
            )));
        };
        pad(dir, &mut base, vocab_size)?;
        let (special, chat_template) = special::read(side, &base)?;
        let mut token_type_count = None;
        if base.model == Model::Bert {
            base.tokens = base.tokens.into_iter().map(phantom).collect();
            token_type_count = type_vocab_size(side)?;
        }
        check_unique(dir, &base.tokens)?;
        let pre = match (tokenizer_pre, base.pre) {
            (Some(name), _) => name.to_string(),
            (None, pre::Pre::Known(name)) => name.to_string(),
            (None, pre::Pre::Unmapped(what)) => {
                return Err(Error::Unsupported(format!(
                    "{}: pre_tokenizer {what}: no llama.cpp pre-tokenizer type splits text this \
                     way; name the type to write with the tokenizer-pre option (--tokenizer-pre)",
                    dir.join(hf::FILE).display()
                )))
            }
        };
        Ok(Vocabulary {
            model: base.model,
            pre,
            tokens: base.tokens,
            scores: base.scores,
            types: base.types,
            merges: base.merges,
            special,
            chat_template,
            add_space_prefix: base.add_space_prefix,
            normalizer: base.normalizer,
            token_type_count,
        })
    }

    /// Sets the `tokenizer.*` keys of `md`, moving the token and merge lists into it rather
    /// than copying them (they are the bulk of a tokenizer's memory).
    pub fn into_kv(mut self, md: &mut kv::Metadata) {
        let tokens = std::mem::take(&mut self.tokens);
        let scores = self.scores.take();
        let merges = std::mem::take(&mut self.merges);
        self.set_kv(md, tokens, scores, merges);
    }

    /// Sets the `tokenizer.*` keys of `md`.
    pub fn write_kv(&self, md: &mut kv::Metadata) {
        self.set_kv(
            md,
            self.tokens.clone(),
            self.scores.clone(),
            self.merges.clone(),
        );
    }

    /// The keys, in the order both converters write them, with the lists given.
    fn set_kv(
        &self,
        md: &mut kv::Metadata,
        tokens: Vec<String>,
        scores: Option<Vec<f32>>,
        merges: Vec<String>,
    ) {
        md.set("tokenizer.ggml.model", self.model.as_str());
        md.set("tokenizer.ggml.pre", self.pre.as_str());
        md.set("tokenizer.ggml.tokens", kv::Array::String(tokens));
        if let Some(scores) = scores {
            md.set("tokenizer.ggml.scores", kv::Array::F32(scores));
        }
        md.set(
            "tokenizer.ggml.token_type",
            kv::Array::I32(self.types.iter().map(|t| *t as i32).collect()),
        );
        if !merges.is_empty() {
            md.set("tokenizer.ggml.merges", kv::Array::String(merges));
        }
        if let Some(prefix) = self.add_space_prefix {
            md.set("tokenizer.ggml.add_space_prefix", prefix);
        }
        if let Some(n) = self.token_type_count {
            md.set("tokenizer.ggml.token_type_count", n);
        }
        if let Some(n) = self.normalizer {
            md.set("tokenizer.ggml.normalizer.lowercase", n.lowercase);
            md.set("tokenizer.ggml.normalizer.strip_accents", n.strip_accents);
        }
        self.special.write_kv(md);
        if let Some(t) = &self.chat_template {
            md.set("tokenizer.chat_template", t.as_str());
        }
    }
}

/// Reads the tokenizer files of a Hugging Face model directory and sets the `tokenizer.*` keys
/// of a GGUF. `vocab_size` (config.json's) pads the vocabulary with `[PAD{id}]` tokens; fewer
/// entries than the tokenizer has is an error.
pub fn write_kv(dir: &Path, vocab_size: Option<u64>, md: &mut kv::Metadata) -> Result<()> {
    write_kv_limited(dir, vocab_size, DEFAULT_MAX_JSON_SIZE, md)
}

/// [`write_kv`] with `max_json` (`Options::max_json_size`) bounding the files read, as
/// [`Vocabulary::read_limited`] does.
pub fn write_kv_limited(
    dir: &Path,
    vocab_size: Option<u64>,
    max_json: u64,
    md: &mut kv::Metadata,
) -> Result<()> {
    Vocabulary::read_limited(dir, vocab_size, max_json)?.into_kv(md);
    Ok(())
}

/// The largest vocabulary accepted (16 Mi tokens, 60 times the largest real one): ids and
/// `vocab_size` come from files, and padding or filling holes up to them allocates.
pub(crate) const MAX_TOKENS: u64 = 1 << 24;

/// config.json's `type_vocab_size`, when present.
fn type_vocab_size(side: &SideFiles) -> Result<Option<u32>> {
    #[derive(serde::Deserialize)]
    struct Config {
        #[serde(default)]
        type_vocab_size: Option<u32>,
    }
    Ok(files::read_json::<Config>(side, side_files::CONFIG)?.and_then(|c| c.type_vocab_size))
}

/// Pads with `[PAD{id}]` up to `vocab_size` (ollama's type and score, llama.cpp's names).
fn pad(dir: &Path, base: &mut Base, vocab_size: Option<u64>) -> Result<()> {
    let Some(size) = vocab_size else {
        return Ok(());
    };
    let have = base.tokens.len() as u64;
    if size > MAX_TOKENS {
        return Err(Error::format(
            dir.join(side_files::CONFIG).display(),
            None,
            format!("vocab_size {size} is above the limit of {MAX_TOKENS} tokens"),
        ));
    }
    if size < have {
        return Err(Error::format(
            dir.join(side_files::CONFIG).display(),
            None,
            format!("vocab_size {size} is smaller than the tokenizer's {have} tokens"),
        ));
    }
    for id in have..size {
        base.tokens.push(format!("[PAD{id}]"));
        base.types.push(TokenType::UserDefined);
        if let Some(scores) = &mut base.scores {
            scores.push(-1.0);
        }
    }
    Ok(())
}

/// Refuses a token string that appears at two ids (llama.cpp aborts loading such a
/// vocabulary), naming it and both ids. Sorting ids by token costs 4 bytes a token, where a
/// set of the strings would copy every token.
fn check_unique(dir: &Path, tokens: &[String]) -> Result<()> {
    let mut order: Vec<u32> = Vec::new();
    if order.try_reserve_exact(tokens.len()).is_err() {
        return Err(Error::OutOfMemory(format!(
            "{}: no memory to check {} tokens for repeats",
            dir.display(),
            tokens.len()
        )));
    }
    // Ids fit in u32: the count was checked against MAX_TOKENS.
    order.extend(
        (0..tokens.len())
            .filter(|&i| !tokens[i].is_empty())
            .map(|i| i as u32),
    );
    order.sort_unstable_by(|&a, &b| tokens[a as usize].cmp(&tokens[b as usize]).then(a.cmp(&b)));
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if tokens[a as usize] == tokens[b as usize] {
            return Err(Error::format(
                dir.display(),
                None,
                format!(
                    "token {} appears twice, at ids {a} and {b}: llama.cpp refuses a vocabulary with a repeated token",
                    shorten(&tokens[a as usize])
                ),
            ));
        }
    }
    Ok(())
}

/// A token quoted for a message, cut as `error::shown` cuts values.
pub(crate) fn shorten(token: &str) -> String {
    format!("{:?}", crate::error::shown(token))
}

/// llama.cpp's phantom-space form of a WordPiece token: `##x` → `x`, `[X]` stays, else `▁x`.
fn phantom(token: String) -> String {
    if token.starts_with('[') && token.ends_with(']') {
        token
    } else if let Some(rest) = token.strip_prefix("##") {
        rest.to_string()
    } else {
        format!("\u{2581}{token}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phantom_space_keeps_brackets_and_drops_continuation_marks() {
        assert_eq!(phantom("[CLS]".into()), "[CLS]");
        assert_eq!(phantom("##ing".into()), "ing");
        assert_eq!(phantom("hello".into()), "\u{2581}hello");
        assert_eq!(phantom("[".into()), "\u{2581}[");
    }
}
