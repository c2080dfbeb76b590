//! Parse and validate one safetensors header: JSON bytes in, a checked tensor table out. No I/O.
//!
//! The rules are those of the reference implementation (the `safetensors` crate 0.8), plus a few
//! deliberate stricter ones listed in docs/SECURITY.md: duplicate names, NUL bytes in names, and a second
//! `__metadata__` key are refused rather than silently resolved.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::dtype::Dtype;
use crate::error::{Error, Result};
use crate::shape::Shape;

/// The largest header the reference implementation accepts (bytes of JSON).
pub const MAX_HEADER_SIZE: u64 = 100_000_000;

/// One tensor as its header describes it, offsets relative to the data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderTensor {
    /// The tensor's name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions, outermost first.
    pub shape: Shape,
    /// First byte in the data section.
    pub start: u64,
    /// One past the last byte in the data section.
    pub end: u64,
}

/// A validated header.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// Tensors sorted by name.
    pub tensors: Vec<HeaderTensor>,
    /// The `__metadata__` string map (empty when absent).
    pub metadata: BTreeMap<String, String>,
}

/// What the first bytes of a file that is not a safetensors file look like, when they match a
/// known signature or read as text: `"a zip archive (a PyTorch checkpoint?)"`, `"a GGUF file"`,
/// `"text"`, ... A safetensors file starts with its header length, whose upper bytes are zero.
pub fn sniff(first: &[u8]) -> Option<&'static str> {
    const SIGNATURES: [(&[u8], &str); 9] = [
        (
            b"PK\x03\x04",
            "a zip archive (a PyTorch checkpoint or an .npz?)",
        ),
        (b"PK\x05\x06", "an empty zip archive"),
        (b"GGUF", "a GGUF file"),
        (b"\x89HDF", "an HDF5 file (a Keras .h5?)"),
        (b"\x93NUMPY", "a numpy .npy array"),
        (b"\x1f\x8b", "a gzip archive"),
        (b"\x7fELF", "an ELF executable or library"),
        (
            b"version ",
            "text (a Git LFS pointer? fetch the file with `git lfs pull`)",
        ),
        (b"<", "text (an HTML or XML page?)"),
    ];
    if let Some(&(_, what)) = SIGNATURES
        .iter()
        .find(|(magic, _)| first.starts_with(magic))
    {
        return Some(what);
    }
    if matches!(first, [0x80, 2..=5, ..]) {
        return Some("a pickle (a PyTorch checkpoint in the legacy format?)");
    }
    if first.first() == Some(&b'{') {
        return Some("JSON text (a config or index file?)");
    }
    // Text: UTF-8 (the last character may be cut) without control characters but whitespace.
    let valid = match std::str::from_utf8(first) {
        Ok(s) => s.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => return None,
    };
    let text = String::from_utf8_lossy(&first[..valid]);
    let readable = !text.is_empty() && text.chars().all(|c| !c.is_control() || c.is_whitespace());
    readable.then_some("text")
}

/// The error for `file` whose first bytes `first` give no plausible header length: names the
/// file, says it is not a safetensors file, shows the bytes and what they look like.
pub fn not_safetensors(file: &str, first: &[u8]) -> Error {
    let hex: Vec<String> = first.iter().map(|b| format!("{b:02x}")).collect();
    let shown: String = first
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    let what = sniff(first).unwrap_or("unknown binary data");
    Error::format(
        file,
        None,
        format!(
            "not a safetensors file: it starts with bytes {} (\"{shown}\"), which look like {what}",
            hex.join(" ")
        ),
    )
}

/// Parses the JSON `header` of `file` (for messages) and checks every tensor against
/// `data_len`, the number of bytes after the header.
pub fn parse(file: &str, header: &[u8], data_len: u64) -> Result<Header> {
    let text = std::str::from_utf8(header).map_err(|e| {
        Error::format(
            file,
            None,
            format!("header is not valid UTF-8 (byte {})", e.valid_up_to()),
        )
    })?;
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = de
        .deserialize_map(HeaderVisitor)
        .and_then(|h| de.end().map(|()| h))
        .map_err(|e| {
            Error::format(
                file,
                None,
                format!("header is not a valid safetensors JSON object: {e}"),
            )
        })?;
    validate(file, parsed, data_len)
}

/// A tensor entry exactly as the JSON spells it; unknown fields are ignored, like the reference.
#[derive(Deserialize)]
struct RawInfo<'a> {
    #[serde(borrow)]
    dtype: Cow<'a, str>,
    shape: Shape,
    data_offsets: Offsets,
}

/// `[start, end)`: exactly two numbers, with a message that says so.
struct Offsets(u64, u64);

impl<'de> Deserialize<'de> for Offsets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Offsets, D::Error> {
        struct Two;
        impl<'de> Visitor<'de> for Two {
            type Value = Offsets;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("data_offsets as two numbers [start, end]")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Offsets, A::Error> {
                let start = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let end = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(3, &self));
                }
                Ok(Offsets(start, end))
            }
        }
        d.deserialize_seq(Two)
    }
}

/// A tensor name, borrowed from the JSON text unless escapes made the parser unescape it.
/// (serde's own `Cow<str>` always copies.)
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Key<'de>, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tensor name")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Text)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = Header;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of tensors")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Header, A::Error> {
        let mut header = Header::default();
        let mut seen_metadata = false;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "__metadata__" {
                if seen_metadata {
                    return Err(de::Error::custom("__metadata__ appears twice"));
                }
                seen_metadata = true;
                let meta: Option<BTreeMap<String, String>> = map.next_value().map_err(|e| {
                    de::Error::custom(format!("__metadata__ must map strings to strings: {e}"))
                })?;
                header.metadata = meta.unwrap_or_default();
                continue;
            }
            let raw: RawInfo = map
                .next_value()
                .map_err(|e| de::Error::custom(format!("tensor \"{key}\": {e}")))?;
            let dtype = Dtype::from_header_name(&raw.dtype).ok_or_else(|| {
                de::Error::custom(format!("tensor \"{key}\": unknown dtype \"{}\"", raw.dtype))
            })?;
            header.tensors.push(HeaderTensor {
                // One spare byte: the index appends a NUL for C without reallocating.
                name: {
                    let mut name = String::with_capacity(key.len() + 1);
                    name.push_str(&key);
                    name
                },
                dtype,
                shape: raw.shape,
                start: raw.data_offsets.0,
                end: raw.data_offsets.1,
            });
        }
        Ok(header)
    }
}

/// Applies the reference's rules: offsets contiguous from 0 in offset order, each byte length
/// equal to shape × dtype size without overflow, and the data section covered exactly. Leaves
/// the tensors sorted by name, the order the model lists them in, so that a one-file model
/// does not sort its names a second time.
fn validate(file: &str, mut header: Header, data_len: u64) -> Result<Header> {
    check_names(file, &mut header.tensors)?;
    if let Some((k, v)) = header
        .metadata
        .iter()
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return Err(Error::format(
            file,
            None,
            format!(
                "__metadata__ entry \"{}\" = \"{}\" contains a NUL byte",
                k.escape_debug(),
                v.escape_debug()
            ),
        ));
    }
    // Offset order through a permutation of indices: comparing two numbers and moving four
    // bytes is cheaper than moving whole tensors again.
    let mut by_offset: Vec<u32> = (0..header.tensors.len() as u32).collect();
    by_offset.sort_unstable_by_key(|&i| {
        let t = &header.tensors[i as usize];
        (t.start, t.end)
    });
    let mut expected_start = 0u64;
    for &i in &by_offset {
        let t = &header.tensors[i as usize];
        check_extent(file, t, expected_start, data_len)?;
        expected_start = t.end;
    }
    if expected_start != data_len {
        return Err(Error::format(
            file,
            None,
            format!("tensors cover {expected_start} of the {data_len} data bytes; the rest is unaccounted for"),
        ));
    }
    Ok(header)
}

/// Checks one tensor, next in offset order, that should start at `expected_start`.
fn check_extent(file: &str, t: &HeaderTensor, expected_start: u64, data_len: u64) -> Result<()> {
    let rule = |r: String| Error::format(file, Some(&t.name), r);
    if t.end < t.start {
        return Err(rule(format!(
            "data_offsets [{}, {}) end before they start",
            t.start, t.end
        )));
    }
    if t.start != expected_start {
        let what = if t.start > expected_start {
            "a gap"
        } else {
            "an overlap"
        };
        return Err(rule(format!(
            "data_offsets [{}, {}) start at {} but the previous tensor ends at {expected_start} ({what})",
            t.start, t.end, t.start
        )));
    }
    if t.end > data_len {
        return Err(rule(format!(
            "data_offsets [{}, {}) end past the {data_len} data bytes",
            t.start, t.end
        )));
    }
    let elements = t
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| rule(format!("shape {:?} overflows the element count", t.shape)))?;
    let bits = elements
        .checked_mul(u64::from(t.dtype.bits()))
        .ok_or_else(|| {
            rule(format!(
                "shape {:?} of {} overflows the byte count",
                t.shape, t.dtype
            ))
        })?;
    if bits % 8 != 0 {
        return Err(rule(format!(
            "{elements} elements of {} ({} bits each) do not fill whole bytes",
            t.dtype,
            t.dtype.bits()
        )));
    }
    if t.end - t.start != bits / 8 {
        return Err(rule(format!(
            "data_offsets [{}, {}) hold {} bytes but shape {:?} of {} needs {}",
            t.start,
            t.end,
            t.end - t.start,
            t.shape,
            t.dtype,
            bits / 8
        )));
    }
    Ok(())
}

/// Sorts the tensors by name and refuses names the reference would silently merge
/// (duplicates) or C cannot pass (NUL bytes).
fn check_names(file: &str, tensors: &mut [HeaderTensor]) -> Result<()> {
    if let Some(bad) = tensors.iter().find(|t| t.name.contains('\0')) {
        return Err(Error::format(
            file,
            Some(&bad.name.escape_debug().to_string()),
            "name contains a NUL byte",
        ));
    }
    // Names are unique once checked, so an unstable sort gives the one order there is.
    tensors.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = tensors.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(Error::Duplicate(format!(
            "{file}: tensor \"{}\" appears twice in the header",
            w[0].name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(json: &str, data_len: u64) -> Result<Header> {
        parse("m.safetensors", json.as_bytes(), data_len)
    }

    #[test]
    fn accepts_a_valid_header_and_sorts_by_name() {
        let h = parse_str(
            r#"{"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},
                "a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},
                "__metadata__":{"format":"pt"}}  "#,
            12,
        )
        .unwrap();
        // Name order, though "b" comes first in the file.
        assert_eq!(h.tensors[0].name, "a");
        assert_eq!(h.tensors[0].dtype, Dtype::F32);
        assert_eq!((h.tensors[1].start, h.tensors[1].end), (0, 4));
        assert_eq!(h.metadata.get("format").map(String::as_str), Some("pt"));
    }

    #[test]
    fn other_formats_are_named_by_their_first_bytes() {
        let cases: [(&[u8], &str); 6] = [
            (b"PK\x03\x04\x14\x00\x00\x00", "zip archive"),
            (b"GGUF\x03\x00\x00\x00", "GGUF file"),
            (b"version https://git-lfs", "Git LFS pointer"),
            (b"\x80\x02\x8a\x0alz\xfc", "pickle"),
            (b"hello, w", "text"),
            (b"\x00\x01\x02\x03\x04\x05\x06\xff", "unknown binary data"),
        ];
        for (bytes, what) in cases {
            let e = not_safetensors("m.bin", bytes).to_string();
            assert!(
                e.starts_with("m.bin: not a safetensors file: it starts with bytes ")
                    && e.contains(what),
                "{e}"
            );
        }
        // A real header length (small, upper bytes zero) is not mistaken for text, nor is an
        // absurd one of bytes that are not UTF-8.
        assert_eq!(sniff(&1234u64.to_le_bytes()), None);
        assert_eq!(sniff(&u64::MAX.to_le_bytes()), None);
    }

    #[test]
    fn refusals_name_file_tensor_and_rule() {
        let cases = [
            (
                r#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#,
                4,
                "needs 8",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                8,
                "a gap",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                8,
                "unaccounted",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                2,
                "end past the 2 data bytes",
            ),
            (
                r#"{"x":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}"#,
                4,
                "unknown dtype",
            ),
            (
                r#"{"x":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}"#,
                1,
                "whole bytes",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
                4,
                "end before",
            ),
            (
                r#"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#,
                4,
                "overflows",
            ),
            (r#"{"x":{"dtype":"F32","shape":[1]}}"#, 4, "missing field"),
            (
                r#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                8,
                "appears twice",
            ),
            (r#"{"__metadata__":{"a":1}}"#, 0, "strings to strings"),
            (r#"[1,2]"#, 0, "valid safetensors JSON"),
        ];
        for (json, len, needle) in cases {
            let err = parse_str(json, len).unwrap_err().to_string();
            assert!(err.starts_with("m.safetensors: "), "{err}");
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn escaped_names_are_unescaped() {
        let h = parse_str(
            r#"{"a\u0062.\"q\"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},
                "plain":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            8,
        )
        .unwrap();
        assert_eq!(h.tensors[0].name, "ab.\"q\"");
        assert_eq!(h.tensors[1].name, "plain");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let err = parse("m.safetensors", b"{\"\xff\":1}", 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("UTF-8"), "{err}");
    }
}
