//! Split GGUF output as llama.cpp's `gguf-split` writes it: shards named
//! `PREFIX-00001-of-0000N.gguf`, the first carrying all the metadata, every shard carrying
//! `split.no` (u16, from 0), `split.count` (u16) and `split.tensors.count` (i32, tensors in all
//! shards). llama.cpp loads the set when given the first shard.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::kv::{Metadata, Value};

/// Key of the shard's number, from 0 (u16).
pub const KEY_SPLIT_NO: &str = "split.no";
/// Key of the number of shards (u16).
pub const KEY_SPLIT_COUNT: &str = "split.count";
/// Key of the number of tensors in all the shards (i32).
pub const KEY_SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// Where the output is cut into shards. A shard closes before the tensor that would take it
/// past `max_bytes` of tensor data (each tensor counted padded to the alignment; the metadata
/// is not counted, so this is a soft limit, as in gguf-split) or past `max_tensors` tensors.
/// A tensor larger than `max_bytes` goes alone in a shard. 0 means no limit; at least one
/// limit must be set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    /// Most tensor data bytes in a shard; 0 = no limit.
    pub max_bytes: u64,
    /// Most tensors in a shard; 0 = no limit.
    pub max_tensors: u64,
}

/// What a shard's `split.*` keys say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    /// The shard's number, from 0 (`split.no`).
    pub no: u16,
    /// Number of shards (`split.count`).
    pub count: u16,
    /// Tensors in all the shards (`split.tensors.count`).
    pub tensors: u64,
}

impl Split {
    /// Refuses a split with no limit; `path` (the output) names it in the error.
    pub fn check(&self, path: &Path) -> Result<()> {
        if self.max_bytes == 0 && self.max_tensors == 0 {
            return Err(Error::InvalidArgument(format!(
                "{}: split output needs a size or a tensor limit (both are 0)",
                path.display()
            )));
        }
        Ok(())
    }

    /// The tensors of each shard, given each tensor's padded size, in order. Every shard
    /// holds at least one tensor (one shard when there are none).
    pub fn shards(&self, padded_sizes: &[u64]) -> Vec<Range<usize>> {
        let mut shards = Vec::new();
        let (mut start, mut bytes) = (0usize, 0u64);
        for (i, &n) in padded_sizes.iter().enumerate() {
            let count = (i - start) as u64;
            let full = (self.max_tensors > 0 && count >= self.max_tensors)
                || (self.max_bytes > 0 && bytes.saturating_add(n) > self.max_bytes);
            if count > 0 && full {
                shards.push(start..i);
                (start, bytes) = (i, 0);
            }
            bytes = bytes.saturating_add(n);
        }
        shards.push(start..padded_sizes.len());
        shards
    }
}

/// Parses a `--split-max-size` value: bytes, or a whole number followed by K, M or G
/// (thousands, millions, billions of bytes, as llama.cpp's converter and gguf-split read
/// them). Zero, a negative or fractional number, another suffix and overflow are errors.
pub fn parse_size(text: &str) -> Result<u64> {
    let bad = |rule: &str| Error::InvalidArgument(format!("split size \"{text}\": {rule}"));
    let t = text.trim();
    let (digits, scale) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1_000u64),
        Some((i, 'M' | 'm')) => (&t[..i], 1_000_000),
        Some((i, 'G' | 'g')) => (&t[..i], 1_000_000_000),
        _ => (t, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "not a whole number of bytes, optionally followed by K, M or G",
        ));
    }
    let n: u64 = digits.parse().map_err(|_| bad("larger than 2^64 bytes"))?;
    let bytes = n
        .checked_mul(scale)
        .ok_or_else(|| bad("larger than 2^64 bytes"))?;
    if bytes == 0 {
        return Err(bad("must be positive"));
    }
    Ok(bytes)
}

/// The path of shard `no` (from 1) of `count`: `dir/X.gguf` gives `dir/X-00001-of-00003.gguf`
/// (a `.gguf` extension is dropped to form the prefix; any other name is the prefix whole).
pub fn shard_path(path: &Path, no: u32, count: u32) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let stem = match name.len().checked_sub(5) {
        Some(i) if name.is_char_boundary(i) && name[i..].eq_ignore_ascii_case(".gguf") => {
            &name[..i]
        }
        _ => &name[..],
    };
    path.with_file_name(format!("{stem}-{no:05}-of-{count:05}.gguf"))
}

/// Whether `name` is a shard name of the prefix of `path` (any number and count), e.g. one
/// left by an earlier run with another count.
pub fn is_shard_of(path: &Path, name: &str) -> bool {
    let prefix = shard_path(path, 0, 0);
    let prefix = prefix.file_name().unwrap_or_default().to_string_lossy();
    let Some(stem) = prefix.strip_suffix("-00000-of-00000.gguf") else {
        return false;
    };
    let Some(rest) = name.strip_prefix(stem) else {
        return false;
    };
    let b = rest.as_bytes();
    b.len() == 20
        && b[0] == b'-'
        && b[1..6].iter().all(u8::is_ascii_digit)
        && &b[6..10] == b"-of-"
        && b[10..15].iter().all(u8::is_ascii_digit)
        && rest[15..].eq_ignore_ascii_case(".gguf")
}

/// The `split.*` keys of shard `no` (from 0) of `count`, with `tensors` tensors in all.
pub(crate) fn shard_keys(
    shown: &str,
    m: &mut Metadata,
    no: usize,
    count: usize,
    tensors: usize,
) -> Result<()> {
    let count16 = u16::try_from(count).map_err(|_| {
        Error::InvalidArgument(format!(
            "{shown}: {count} shards, more than the {} split.count holds; raise the split limits",
            u16::MAX
        ))
    })?;
    let tensors32 = i32::try_from(tensors).map_err(|_| {
        Error::InvalidArgument(format!(
            "{shown}: {tensors} tensors, more than split.tensors.count (i32) holds"
        ))
    })?;
    // no < count, so it fits in u16 too.
    m.set(KEY_SPLIT_NO, no as u16);
    m.set(KEY_SPLIT_COUNT, count16);
    m.set(KEY_SPLIT_TENSORS_COUNT, tensors32);
    Ok(())
}

/// The shard description of a file's metadata, if it has `split.count`; wrong types or
/// values are an error naming the key.
pub(crate) fn shard_info(shown: &str, m: &Metadata) -> Result<Option<ShardInfo>> {
    let Some(count) = m.get(KEY_SPLIT_COUNT) else {
        return Ok(None);
    };
    let bad = |key: &str, v: Option<&Value>| {
        Error::format(
            shown,
            None,
            format!("key \"{key}\": {v:?} is not what a split file holds"),
        )
    };
    let count = match count {
        Value::U16(n) if *n > 0 => *n,
        v => return Err(bad(KEY_SPLIT_COUNT, Some(v))),
    };
    let no = match m.get(KEY_SPLIT_NO) {
        Some(Value::U16(n)) if *n < count => *n,
        v => return Err(bad(KEY_SPLIT_NO, v)),
    };
    let tensors = match m.get(KEY_SPLIT_TENSORS_COUNT) {
        Some(Value::I32(n)) if *n >= 0 => *n as u64,
        v => return Err(bad(KEY_SPLIT_TENSORS_COUNT, v)),
    };
    Ok(Some(ShardInfo { no, count, tensors }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_the_converter() {
        assert_eq!(parse_size("1234").unwrap(), 1234);
        assert_eq!(parse_size("5K").unwrap(), 5_000);
        assert_eq!(parse_size("500M").unwrap(), 500_000_000);
        assert_eq!(parse_size("2G").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("2g").unwrap(), 2_000_000_000);
        for bad in [
            "0",
            "0M",
            "abc",
            "",
            "M",
            "-5M",
            "1.5G",
            "4T",
            "99999999999G",
        ] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("\"{bad}\"")), "{bad}: {e}");
        }
        assert!(parse_size("0")
            .unwrap_err()
            .to_string()
            .contains("positive"));
    }

    #[test]
    fn shard_names_follow_gguf_split() {
        let p = Path::new("out/model.gguf");
        assert_eq!(
            shard_path(p, 2, 13),
            Path::new("out/model-00002-of-00013.gguf")
        );
        assert_eq!(
            shard_path(Path::new("m.bin"), 1, 1),
            Path::new("m.bin-00001-of-00001.gguf")
        );
        assert!(is_shard_of(p, "model-00002-of-00013.gguf"));
        assert!(is_shard_of(p, "model-99999-of-00001.GGUF"));
        assert!(!is_shard_of(p, "model.gguf"));
        assert!(!is_shard_of(p, "model-2-of-13.gguf"));
        assert!(!is_shard_of(p, "other-00001-of-00002.gguf"));
        assert!(!is_shard_of(p, "model-00001-of-00002.gguf.tmp"));
    }

    #[test]
    fn shards_close_at_either_limit_and_big_tensors_go_alone() {
        let by_size = Split {
            max_bytes: 100,
            max_tensors: 0,
        };
        assert_eq!(
            by_size.shards(&[40, 60, 10, 500, 30, 70, 1]),
            [0..2, 2..3, 3..4, 4..6, 6..7]
        );
        assert_eq!(by_size.shards(&[500, 1]), [0..1, 1..2]);
        assert_eq!(
            by_size.shards(&[]),
            std::iter::once(0..0).collect::<Vec<_>>()
        );
        let by_count = Split {
            max_bytes: 0,
            max_tensors: 2,
        };
        assert_eq!(by_count.shards(&[1, 1, 1, 1, 1]), [0..2, 2..4, 4..5]);
        let both = Split {
            max_bytes: 100,
            max_tensors: 2,
        };
        assert_eq!(both.shards(&[10, 10, 10, 95, 10]), [0..2, 2..3, 3..4, 4..5]);
        let e = Split::default().check(Path::new("m.gguf")).unwrap_err();
        assert!(
            e.to_string().starts_with("m.gguf: split output needs"),
            "{e}"
        );
    }
}
