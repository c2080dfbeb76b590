//! `general.name` of a GGUF converted from a Hugging Face directory, taken as llama.cpp's
//! converter takes it (`gguf.Metadata.load` in the `gguf` package): the model card's `name` or
//! `model_name` (the YAML front matter of `README.md`), else `config.json`'s `_name_or_path`
//! when it is a model id (`org/name` or `name`) rather than a path, else the directory's name;
//! an id or directory name is written as a title (`Metadata.id_to_title`: `-` to spaces,
//! lower-case words capitalised, versions and numbers kept). llama.cpp keys some tokenizer
//! quirks on the name (Phi-3's special tokens), so it must be the converter's.

use crate::side_files::{self, SideFiles, MODEL_CARD};

/// The name of the model whose side files are `side`, from its model card and `config.json`.
/// A card or config that could not be read or parsed adds nothing (the converter too goes on
/// without what it cannot parse): the name only labels the file.
pub(crate) fn of(side: &SideFiles) -> String {
    let read = |name: &str| side.get(name).ok().flatten();
    if let Some(name) = read(MODEL_CARD).and_then(|card| card_name(&String::from_utf8_lossy(card)))
    {
        return name;
    }
    let config = read(side_files::CONFIG)
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).ok());
    if let Some(id) = config
        .as_ref()
        .and_then(|c| c.get("_name_or_path"))
        .and_then(serde_json::Value::as_str)
    {
        if id.matches('/').count() <= 1 {
            return id_to_title(full_name(id));
        }
    }
    let dir_name = side
        .dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    id_to_title(full_name(&dir_name))
}

/// The card's top-level `name`, else `model_name`, from the YAML front matter between a first
/// line `---` and the next: plain or quoted one-line scalars only (the forms cards use).
fn card_name(card: &str) -> Option<String> {
    let mut lines = card.lines();
    if lines.next() != Some("---") {
        return None;
    }
    let front: Vec<&str> = lines.take_while(|l| *l != "---").collect();
    ["name", "model_name"].iter().find_map(|key| {
        front.iter().find_map(|line| {
            let value = line.strip_prefix(key)?.strip_prefix(':')?;
            scalar(value.trim())
        })
    })
}

/// A one-line YAML scalar: quotes removed; a comment, block, list or map is no name.
fn scalar(v: &str) -> Option<String> {
    let unquoted = if let Some(s) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        s.replace("\\\"", "\"")
    } else if let Some(s) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        s.replace("''", "'")
    } else {
        let plain = v.split(" #").next().unwrap_or("").trim();
        if plain.is_empty()
            || plain.starts_with(['|', '>', '[', '{', '&', '*', '!', '#'])
            || plain == "~"
            || plain == "null"
        {
            return None;
        }
        plain.to_string()
    };
    Some(unquoted)
}

/// The name part of a model id: after `org/`; a sentence (with a space) is a name whole.
fn full_name(id: &str) -> &str {
    if id.contains(' ') {
        return id;
    }
    id.split_once('/').map_or(id, |(_, name)| name)
}

/// `Metadata.id_to_title`: `-` becomes a space, and each all-lower-case word that is not a
/// version (`v1.2`) or a number is capitalised as Python's `str.title` does.
fn id_to_title(id: &str) -> String {
    let replaced = id.trim().replace('-', " ");
    let words: Vec<String> = replaced
        .split_whitespace()
        .map(|w| {
            if is_lower(w) && !is_version_or_number(w) {
                title(w)
            } else {
                w.to_string()
            }
        })
        .collect();
    words.join(" ")
}

/// Whether a character has case (Python's "cased").
fn cased(c: char) -> bool {
    c.is_lowercase() || c.is_uppercase()
}

/// Python's `str.islower`: some cased character, and none upper-case.
fn is_lower(w: &str) -> bool {
    w.chars().any(cased) && !w.chars().any(char::is_uppercase)
}

/// `^(v\d+(?:\.\d+)*|\d.*)$`: a version such as `v2` or `v1.5`, or anything starting with a
/// digit.
fn is_version_or_number(w: &str) -> bool {
    if w.chars().next().is_some_and(|c| c.is_numeric()) {
        return true;
    }
    let Some(rest) = w.strip_prefix('v') else {
        return false;
    };
    !rest.is_empty()
        && rest
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_numeric()))
}

/// Python's `str.title`: a cased character after an uncased one is upper-cased, after a cased
/// one lower-cased.
fn title(w: &str) -> String {
    let mut out = String::with_capacity(w.len());
    let mut previous_cased = false;
    for c in w.chars() {
        if cased(c) {
            if previous_cased {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            previous_cased = true;
        } else {
            out.push(c);
            previous_cased = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_titles_as_the_gguf_package_writes_them() {
        // Expected values from gguf.Metadata.id_to_title.
        for (id, want) in [
            ("tiny-llama3", "Tiny Llama3"),
            ("Meta-Llama-3-8B-Instruct", "Meta Llama 3 8B Instruct"),
            ("qwen2.5-0.5b-instruct", "Qwen2.5 0.5b Instruct"),
            ("phi3_mini-v1.5", "Phi3_Mini v1.5"),
            ("gpt-oss-20b", "Gpt Oss 20b"),
            ("a  b", "A B"),
        ] {
            assert_eq!(id_to_title(full_name(id)), want, "{id}");
        }
        assert_eq!(full_name("meta-llama/Llama-2-7b-hf"), "Llama-2-7b-hf");
        assert_eq!(full_name("my model/x"), "my model/x");
    }

    #[test]
    fn the_card_then_name_or_path_then_the_directory_name() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("tiny-phi3-mini");
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(of(&SideFiles::read(&dir, 1 << 20)), "Tiny Phi3 Mini");
        std::fs::write(dir.join("config.json"), r#"{"_name_or_path": "/home/x/y"}"#).unwrap();
        assert_eq!(
            of(&SideFiles::read(&dir, 1 << 20)),
            "Tiny Phi3 Mini",
            "a path is no model id"
        );
        std::fs::write(
            dir.join("config.json"),
            r#"{"_name_or_path": "microsoft/Phi-3-mini-4k-instruct"}"#,
        )
        .unwrap();
        assert_eq!(
            of(&SideFiles::read(&dir, 1 << 20)),
            "Phi 3 Mini 4k Instruct"
        );
        std::fs::write(
            dir.join("README.md"),
            "---\nlicense: mit\nmodel_name: 'My ''Model'''\n---\n# Card\nname: not front matter\n",
        )
        .unwrap();
        assert_eq!(of(&SideFiles::read(&dir, 1 << 20)), "My 'Model'");
        std::fs::write(
            dir.join("README.md"),
            "---\nname: \"Card Name\"\nmodel_name: other\n---\n",
        )
        .unwrap();
        assert_eq!(of(&SideFiles::read(&dir, 1 << 20)), "Card Name");
        // A card without front matter, or past the size bound, adds nothing.
        std::fs::write(dir.join("README.md"), "# name: x\n").unwrap();
        assert_eq!(
            of(&SideFiles::read(&dir, 1 << 20)),
            "Phi 3 Mini 4k Instruct"
        );
        std::fs::write(dir.join("README.md"), "---\nname: big\n---\n").unwrap();
        // Nothing fits in 4 bytes: the directory's name.
        assert_eq!(of(&SideFiles::read(&dir, 4)), "Tiny Phi3 Mini");
    }
}
