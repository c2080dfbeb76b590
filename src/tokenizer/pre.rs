//! `tokenizer.ggml.pre` derived from the `pre_tokenizer` of a BPE `tokenizer.json`.
//!
//! llama.cpp does not read a pre-tokenizer definition: it knows a fixed set of named types, each
//! a list of regexes that split text in turn before byte-level BPE (`llm_tokenizer_bpe` in
//! llama.cpp's `llama-vocab.cpp`). llama.cpp's converter recognises a type by hashing the token
//! ids of one test text (`get_vocab_base_pre`), which only knows files it has seen. Here the
//! definition itself is reduced to the same form, the split regexes in order followed by the
//! byte-level step, and looked up in [`TYPES`], llama.cpp's own regex lists for the types these
//! architectures use (written as the tokenizer.json files spell them, before llama.cpp's
//! rewrites of `(?i:...)`). A definition that is not one of them is [`Pre::Unmapped`], with a
//! description naming its parts: writing `"default"` would make llama.cpp split text otherwise.

use super::hf::PreTokenizerJson;

/// The split GPT-2's `ByteLevel` pre-tokenizer applies when `use_regex` is true (the
/// `tokenizers` library's `ByteLevel`), llama.cpp's `gpt-2` type.
pub const BYTE_LEVEL_REGEX: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// Llama 3's split (cl100k's), llama.cpp's `llama-bpe` (with `ignore_merges`) and `dbrx`.
const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2's split (Llama 3's with single digits), llama.cpp's `qwen2` and `stablelm2`.
const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// o200k's split (gpt-oss, Llama 4), llama.cpp's `gpt-4o` and `llama4`.
const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Mistral's tekken split (Mistral Nemo), llama.cpp's `tekken`.
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// DeepSeek-V3's last split, after digits and kana/kanji runs.
const DEEPSEEK3: &str = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;

/// A `Digits` pre-tokenizer with `individual_digits`, as a split.
const DIGIT: &str = r"\p{N}";
/// A `Digits` pre-tokenizer without `individual_digits`, as a split.
const DIGITS: &str = r"\p{N}+";

/// llama.cpp's pre-tokenizer types by their splits, in order, each followed by byte-level BPE.
/// Where llama.cpp gives one list several names, the one its converter writes for the
/// best-known model is used; the names of one list behave the same in llama.cpp's tokenizer.
pub const TYPES: &[(&str, &[&str])] = &[
    ("llama-bpe", &[LLAMA3]),
    ("qwen2", &[QWEN2]),
    ("gpt-2", &[BYTE_LEVEL_REGEX]),
    ("gpt-4o", &[GPT4O]),
    ("tekken", &[TEKKEN]),
    (
        "deepseek-v3",
        &[r"\p{N}{1,3}", "[一-龥\u{3040}-ゟ゠-ヿ]+", DEEPSEEK3],
    ),
    (
        "deepseek-coder",
        &[
            r"[\r\n]",
            r"\s?\p{L}+",
            r"\s?\p{P}+",
            "[一-龥ࠀ-一가-\u{d7ff}]+",
            DIGIT,
        ],
    ),
    // Command-R, SmolLM and StarCoder: single digits, then GPT-2's split.
    ("command-r", &[DIGIT, BYTE_LEVEL_REGEX]),
];

/// DeepSeek LLM's Split regexes are long lists of Unicode ranges that llama.cpp's source spells
/// differently from the files: they are known by the SHA-256 of their concatenation, as
/// before (ollama's way).
const DEEPSEEK_LLM_SPLITS: &str =
    "03df5c5863ad70781dcfdef491ead25140f895fe8010964be0daefe27be32b02";

/// What a pre-tokenizer definition maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pre {
    /// A type llama.cpp knows.
    Known(&'static str),
    /// No type llama.cpp knows splits text this way: what the definition is, for a message.
    Unmapped(String),
}

/// One step of a definition as llama.cpp would run it.
enum Step {
    /// Split around the matches of a regex, keeping both (`Isolated`).
    Split(String),
    /// Map bytes to GPT-2's printable characters.
    ByteLevel,
}

/// The type of `pre` (tokenizer.json's `pre_tokenizer`, `None` when it has none) for a BPE model
/// whose `ignore_merges` is as given.
pub(crate) fn derive(pre: Option<&PreTokenizerJson>, ignore_merges: bool) -> Pre {
    let Some(pre) = pre else {
        return Pre::Unmapped("no pre_tokenizer (the whole text is one word)".into());
    };
    let mut steps = Vec::new();
    if let Err(why) = flatten(pre, &mut steps) {
        return Pre::Unmapped(why);
    }
    let described = describe(&steps);
    let Some((Step::ByteLevel, splits)) = steps.split_last() else {
        return Pre::Unmapped(format!(
            "{described}: llama.cpp's BPE types end in ByteLevel"
        ));
    };
    let mut regexes = Vec::with_capacity(splits.len());
    for step in splits {
        match step {
            Step::Split(r) => regexes.push(canonical(r)),
            Step::ByteLevel => {
                return Pre::Unmapped(format!("{described}: ByteLevel twice"));
            }
        }
    }
    for (name, list) in TYPES {
        if list.len() == regexes.len() && list.iter().zip(&regexes).all(|(a, b)| *a == b) {
            // Llama 3's split without ignore_merges is llama.cpp's dbrx (llama-bpe ignores
            // merges for a word in the vocabulary, as the tokenizers library does when asked).
            if *name == "llama-bpe" && !ignore_merges {
                return Pre::Known("dbrx");
            }
            return Pre::Known(name);
        }
    }
    if is_deepseek_llm(pre) {
        return Pre::Known("deepseek-llm");
    }
    Pre::Unmapped(described)
}

/// Whether the Split regexes of `pre` hash to DeepSeek LLM's.
fn is_deepseek_llm(pre: &PreTokenizerJson) -> bool {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for member in &pre.pretokenizers {
        if member.kind.as_deref() == Some("Split") {
            if let Some(re) = member.pattern.as_ref().and_then(|p| p.regex.as_deref()) {
                hash.update(re.as_bytes());
            }
        }
    }
    let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    digest == DEEPSEEK_LLM_SPLITS
}

/// A regex with literal CR, LF and tab written as escapes, the form both spellings of a file
/// share (`"\r"` in JSON is a literal CR in the regex, `"\\r"` the escape).
fn canonical(regex: &str) -> String {
    regex
        .replace('\r', r"\r")
        .replace('\n', r"\n")
        .replace('\t', r"\t")
}

/// Appends the steps of `p` to `out`, or says why llama.cpp has no equivalent.
fn flatten(p: &PreTokenizerJson, out: &mut Vec<Step>) -> Result<(), String> {
    let kind = p.kind.as_deref().unwrap_or("");
    match kind {
        "Sequence" => {
            for member in &p.pretokenizers {
                flatten(member, out)?;
            }
            Ok(())
        }
        "Split" => {
            let regex = match &p.pattern {
                Some(pattern) => match (&pattern.regex, &pattern.string) {
                    (Some(r), _) => r.clone(),
                    (None, Some(s)) => {
                        return Err(format!(
                            "Split on the string {:?}: llama.cpp splits by regexes",
                            crate::error::shown(s)
                        ))
                    }
                    (None, None) => return Err("Split without a pattern".into()),
                },
                None => return Err("Split without a pattern".into()),
            };
            let behavior = p.behavior.as_deref().unwrap_or("");
            if !behavior.eq_ignore_ascii_case("isolated") || p.invert == Some(true) {
                return Err(format!(
                    "Split {} with behavior {behavior:?}{}: llama.cpp keeps matches isolated",
                    quoted(&regex),
                    if p.invert == Some(true) {
                        ", inverted"
                    } else {
                        ""
                    }
                ));
            }
            out.push(Step::Split(regex));
            Ok(())
        }
        "ByteLevel" => {
            if p.add_prefix_space == Some(true) {
                return Err(
                    "ByteLevel with add_prefix_space: llama.cpp's BPE adds no space before the text"
                        .into(),
                );
            }
            if p.use_regex != Some(false) {
                out.push(Step::Split(BYTE_LEVEL_REGEX.into()));
            }
            out.push(Step::ByteLevel);
            Ok(())
        }
        "Digits" => {
            let one = p.individual_digits == Some(true);
            out.push(Step::Split(if one { DIGIT } else { DIGITS }.into()));
            Ok(())
        }
        other => Err(format!(
            "the {:?} pre-tokenizer, which no llama.cpp BPE type has",
            crate::error::shown(other)
        )),
    }
}

/// The steps as a message shows them: each Split regex quoted (shortened), then ByteLevel.
fn describe(steps: &[Step]) -> String {
    let parts: Vec<String> = steps
        .iter()
        .map(|s| match s {
            Step::Split(r) if r == BYTE_LEVEL_REGEX => "GPT-2's split".to_string(),
            Step::Split(r) => format!("Split {}", quoted(r)),
            Step::ByteLevel => "ByteLevel".to_string(),
        })
        .collect();
    if parts.is_empty() {
        "an empty Sequence".to_string()
    } else {
        parts.join(", then ")
    }
}

/// The longest regex quoted whole in a message (real ones are under 300 bytes).
const QUOTED_BYTES: usize = 512;

/// `regex` quoted for a message, whole unless longer than [`QUOTED_BYTES`].
fn quoted(regex: &str) -> String {
    if regex.len() <= QUOTED_BYTES {
        return format!("{regex:?}");
    }
    let mut cut = QUOTED_BYTES;
    while !regex.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{:?}... ({} bytes)", &regex[..cut], regex.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn parse(json: &str) -> PreTokenizerJson {
        serde_json::from_str(json).unwrap()
    }

    /// A Sequence of a Split per regex, then ByteLevel without its own regex (Llama 3's shape).
    fn sequence(regexes: &[&str]) -> String {
        let mut members: Vec<String> = regexes
            .iter()
            .map(|r| {
                format!(
                    r#"{{"type":"Split","pattern":{{"Regex":{}}},"behavior":"Isolated","invert":false}}"#,
                    serde_json::to_string(r).unwrap()
                )
            })
            .collect();
        members.push(
            r#"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":false}"#
                .into(),
        );
        format!(
            r#"{{"type":"Sequence","pretokenizers":[{}]}}"#,
            members.join(",")
        )
    }

    #[test]
    fn the_regexes_are_those_ollama_knew_by_digest() {
        // ollama's digests of the concatenated Split regexes of Llama 3, Qwen2 and
        // DeepSeek Coder's files: the table spells them as the files do.
        let digest = |parts: &[&str]| -> String {
            let mut h = Sha256::new();
            for p in parts {
                h.update(p.as_bytes());
            }
            h.finalize().iter().map(|b| format!("{b:02x}")).collect()
        };
        assert!(digest(&[LLAMA3]).starts_with("d98f9631be1e9607"));
        assert!(digest(&[QWEN2]).starts_with("1ff7f41064896984"));
        let coder = TYPES
            .iter()
            .find(|(n, _)| *n == "deepseek-coder")
            .unwrap()
            .1;
        // Its file spells the first with a literal CR and LF; its last step is the Digits
        // pre-tokenizer, not a Split.
        let first = coder[0].replace(r"\r", "\r").replace(r"\n", "\n");
        assert!(digest(&[&first, coder[1], coder[2], coder[3]]).starts_with("21cde974d587f0d5"));
    }

    #[test]
    fn every_type_is_found_from_its_definition() {
        for (name, regexes) in TYPES {
            let got = derive(Some(&parse(&sequence(regexes))), true);
            assert_eq!(got, Pre::Known(name), "{name}");
        }
        // Llama 3's split without ignore_merges is dbrx.
        assert_eq!(
            derive(Some(&parse(&sequence(&[LLAMA3]))), false),
            Pre::Known("dbrx")
        );
        // GPT-2's ByteLevel alone, with its regex, and Command-R's digits before it.
        let gpt2 =
            r#"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}"#;
        assert_eq!(derive(Some(&parse(gpt2)), false), Pre::Known("gpt-2"));
        let command_r = format!(
            r#"{{"type":"Sequence","pretokenizers":[{{"type":"Digits","individual_digits":true}},{gpt2}]}}"#
        );
        assert_eq!(
            derive(Some(&parse(&command_r)), false),
            Pre::Known("command-r")
        );
        // A file with literal line breaks in the regex (JSON "\n") is the same split.
        let literal = LLAMA3.replace(r"\r", "\r").replace(r"\n", "\n");
        assert_eq!(
            derive(Some(&parse(&sequence(&[&literal]))), true),
            Pre::Known("llama-bpe")
        );
    }

    #[test]
    fn what_llama_cpp_cannot_split_is_described() {
        let unmapped = |json: Option<&str>| match derive(json.map(parse).as_ref(), false) {
            Pre::Unmapped(why) => why,
            known => panic!("{json:?}: {known:?}"),
        };
        assert!(unmapped(None).contains("no pre_tokenizer"));
        assert!(unmapped(Some(r#"{"type":"Whitespace"}"#)).contains("\"Whitespace\""));
        assert!(
            unmapped(Some(r#"{"type":"ByteLevel","add_prefix_space":true}"#))
                .contains("add_prefix_space")
        );
        let removed = r#"{"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"Removed"}"#;
        assert!(unmapped(Some(removed)).contains(r#""\\s+" with behavior "Removed""#));
        // An unknown regex is quoted whole, then ByteLevel.
        let why = unmapped(Some(&sequence(&[r"\p{L}+|\p{N}{1,2}"])));
        assert_eq!(why, r#"Split "\\p{L}+|\\p{N}{1,2}", then ByteLevel"#);
        // Splits without ByteLevel after them.
        let why = unmapped(Some(r#"{"type":"Digits","individual_digits":false}"#));
        assert!(why.contains(r#"Split "\\p{N}+""#) && why.contains("end in ByteLevel"));
    }
}
