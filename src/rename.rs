//! Renaming with exactly the semantics of Go's `strings.NewReplacer(old, new, ...)`, which
//! ollama's converter uses to turn Hugging Face tensor names into GGUF names.
//!
//! At each byte position, left to right, the earliest pair whose `old` starts there wins (not
//! the longest); matches never overlap; an empty `old` matches at every position, including the
//! end, but never twice in a row. Identical `old` strings: the first pair counts.

use crate::error::{Error, Result};

/// A compiled list of replacement pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replacer {
    pairs: Vec<(String, String)>,
}

impl Replacer {
    /// Builds a replacer from `(old, new)` pairs, in priority order.
    pub fn new(pairs: Vec<(String, String)>) -> Replacer {
        Replacer { pairs }
    }

    /// Builds a replacer from a flat list `old, new, old, new, ...`, as Go's `NewReplacer` takes.
    pub fn from_flat(list: &[impl AsRef<str>]) -> Result<Replacer> {
        if !list.len().is_multiple_of(2) {
            return Err(Error::InvalidArgument(format!(
                "rename pairs need an even number of strings (old, new, ...), got {}",
                list.len()
            )));
        }
        let pairs = list
            .chunks_exact(2)
            .map(|p| (p[0].as_ref().to_string(), p[1].as_ref().to_string()))
            .collect();
        Ok(Replacer { pairs })
    }

    /// The pairs, in priority order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Whether there is nothing to replace.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Appends the pairs of `other` after these (lower priority).
    pub fn extend(&mut self, other: &Replacer) {
        self.pairs.extend(other.pairs.iter().cloned());
    }

    /// Replaces in bytes, exactly as Go does (Go strings are bytes: an empty `old` can split a
    /// multi-byte character).
    pub fn replace_bytes(&self, s: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(s.len());
        let mut last = 0;
        let mut prev_match_empty = false;
        let mut i = 0;
        while i <= s.len() {
            let rest = &s[i..];
            // The first pair in argument order whose old string starts here; an empty one is
            // skipped right after an empty match, so it cannot match twice at one place.
            let found = self.pairs.iter().find(|(old, _)| {
                rest.starts_with(old.as_bytes()) && !(old.is_empty() && prev_match_empty)
            });
            prev_match_empty = found.is_some_and(|(old, _)| old.is_empty());
            match found {
                Some((old, new)) => {
                    out.extend_from_slice(&s[last..i]);
                    out.extend_from_slice(new.as_bytes());
                    i += old.len();
                    last = i;
                }
                None => i += 1,
            }
        }
        if last < s.len() {
            out.extend_from_slice(&s[last..]);
        }
        out
    }

    /// Replaces in a tensor name. A result that is not UTF-8 (possible only with an empty
    /// `old` and a non-ASCII name) is refused, naming the tensor.
    pub fn replace(&self, name: &str) -> Result<String> {
        if self.pairs.is_empty() {
            return Ok(name.to_string());
        }
        String::from_utf8(self.replace_bytes(name.as_bytes())).map_err(|_| {
            Error::InvalidArgument(format!(
                "renaming tensor \"{name}\" splits a UTF-8 character (empty old string)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(list: &[&str], s: &str) -> String {
        String::from_utf8(
            Replacer::from_flat(list)
                .unwrap()
                .replace_bytes(s.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn follows_go_semantics() {
        // Examples whose results Go's strings.Replacer documents or produces.
        assert_eq!(r(&["a", "1", "a", "2"], "brad"), "br1d");
        assert_eq!(r(&["aaa", "3", "aa", "2", "a", "1"], "aaaa"), "31");
        assert_eq!(r(&["a", "1", "aa", "2"], "aaaa"), "1111");
        assert_eq!(r(&["", "X"], "ab"), "XaXbX");
        assert_eq!(r(&["", "X", "a", "A"], "ab"), "XAXbX");
        assert_eq!(r(&["a", "A", "", "X"], "ab"), "AXbX");
        assert_eq!(
            r(
                &["model.layers", "blk", "lm_head", "output"],
                "model.layers.0.lm_head"
            ),
            "blk.0.output"
        );
        assert_eq!(r(&[], "same"), "same");
        assert!(Replacer::from_flat(&["odd"]).is_err());
    }

    #[test]
    fn refuses_non_utf8_results() {
        let rep = Replacer::from_flat(&["", "-"]).unwrap();
        assert!(rep.replace("é").is_err());
        assert_eq!(rep.replace("ab").unwrap(), "-a-b-");
    }
}
