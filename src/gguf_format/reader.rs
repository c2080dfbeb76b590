//! Reading a GGUF file's header back: version, metadata and tensor infos, each count, length
//! and offset checked against the file size, so hostile input gives an error, never a panic
//! or an allocation larger than the file. Enough for `stload inspect FILE.gguf`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::kv::{Array, Metadata, Value, ValueType};

use super::split::{shard_info, shard_path, ShardInfo};
use super::{GgmlType, DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};

/// Deepest nesting of arrays the reader accepts (an array of arrays is 2 deep): more is
/// refused as hostile, since no writer needs it and each level costs stack.
pub(crate) const MAX_ARRAY_DEPTH: usize = 8;

/// One tensor listed by a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    /// Tensor name.
    pub name: String,
    /// ggml type.
    pub ty: GgmlType,
    /// Dimensions, outermost first (the file stores them innermost first).
    pub shape: Vec<u64>,
    /// Data bytes.
    pub nbytes: u64,
    /// Absolute offset of the data in the file.
    pub data_offset: u64,
}

/// The header of a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufFile {
    /// Format version (2 or 3).
    pub version: u32,
    /// Key/value metadata in file order.
    pub metadata: Metadata,
    /// Tensors in file order.
    pub tensors: Vec<GgufTensorInfo>,
    /// Absolute offset of the data section.
    pub data_start: u64,
    /// What the `split.*` keys say, for a shard of a split model.
    pub shard: Option<ShardInfo>,
}

/// Reads the header of the GGUF file at `path`.
pub fn read(path: &Path) -> Result<GgufFile> {
    let shown = path.display().to_string();
    // Regular files only: a FIFO named like a shard would block the read forever.
    let (file, _) = crate::identity::open_regular(path)?;
    // SAFETY: the mapping is read-only and dropped before returning; a file truncated while
    // it is parsed is the documented risk of every mapped read.
    let map =
        unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&shown, "cannot map", &e))?;
    parse(&shown, &map)
}

/// Reads the GGUF file at `path` and, when it is a shard of a split model, every shard of its
/// set, found by the names gguf-split gives them (`PREFIX-00002-of-00003.gguf`), in order.
/// The set must be what llama.cpp's loader accepts: every shard present and named for its
/// `split.no`, one `split.count` and `split.tensors.count` in all, that many tensors in all,
/// and no tensor name in two shards. A file that is no shard gives itself alone.
pub fn read_set(path: &Path) -> Result<Vec<(PathBuf, GgufFile)>> {
    let given = read(path)?;
    let Some(info) = given.shard else {
        return Ok(vec![(path.to_path_buf(), given)]);
    };
    let mut given = Some(given);
    let mut set = Vec::with_capacity(usize::from(info.count));
    for (i, p) in set_paths(path, info)?.into_iter().enumerate() {
        let file = match given.take_if(|_| i == usize::from(info.no)) {
            Some(f) => f,
            None => read(&p)?,
        };
        set.push((p, file));
    }
    check_set(path, info, set.iter().map(|(p, f)| (p.as_path(), f)))?;
    Ok(set)
}

/// The paths of every shard of the split set whose shard `path` is (its `split.*` keys say
/// `info`), in order, `path` among them: llama.cpp finds the others by the names gguf-split
/// gives them, so `path` must be named for its `split.no` (a set of one may have any name).
pub fn set_paths(path: &Path, info: ShardInfo) -> Result<Vec<PathBuf>> {
    let (no, count) = (u32::from(info.no), u32::from(info.count));
    let base = match split_base(path).filter(|base| shard_path(base, no + 1, count) == path) {
        Some(base) => base,
        None if count == 1 => return Ok(vec![path.to_path_buf()]),
        None => {
            return Err(Error::format(
                path.display(),
                None,
                format!(
                    "shard {} of {count} of a split model, but not named \
                     PREFIX-{:05}-of-{count:05}.gguf: its other shards are found by name",
                    no + 1,
                    no + 1
                ),
            ))
        }
    };
    Ok((0..count)
        .map(|i| {
            if i == no {
                path.to_path_buf()
            } else {
                shard_path(&base, i + 1, count)
            }
        })
        .collect())
}

/// Checks the shards of a split set, in order (as [`set_paths`] names them), as llama.cpp's
/// loader does: each shard's `split.*` keys agree with `info` (those of `given`, the shard the
/// set was found from) and its place, no tensor name is in two shards, and the shards list
/// `split.tensors.count` tensors in all.
pub fn check_set<'a>(
    given: &Path,
    info: ShardInfo,
    shards: impl IntoIterator<Item = (&'a Path, &'a GgufFile)>,
) -> Result<()> {
    let shown = given.display().to_string();
    let count = u32::from(info.count);
    // Each tensor name and the shard that lists it.
    let mut owner: HashMap<&str, &Path> = HashMap::new();
    let mut total = 0u64;
    for (i, (p, file)) in shards.into_iter().enumerate() {
        let here = p.display().to_string();
        let want = ShardInfo {
            no: i as u16,
            ..info
        };
        match file.shard {
            Some(s) if s == want => {}
            got => {
                let got = match got {
                    Some(s) => format!(
                        "split keys say shard {} of {} of {} tensors",
                        u32::from(s.no) + 1,
                        s.count,
                        s.tensors
                    ),
                    None => "no split keys".to_string(),
                };
                return Err(Error::format(
                    &here,
                    None,
                    format!(
                        "{got}, but by its name and {shown} it is shard {} of {count} of {} \
                         tensors",
                        i + 1,
                        info.tensors
                    ),
                ));
            }
        }
        for t in &file.tensors {
            if let Some(first) = owner.insert(&t.name, p) {
                return Err(Error::format(
                    &here,
                    Some(&t.name),
                    format!("also listed by {}", first.display()),
                ));
            }
        }
        total += file.tensors.len() as u64;
    }
    if total != info.tensors {
        return Err(Error::format(
            &shown,
            None,
            format!(
                "split.tensors.count is {} but the {count} shards list {total} tensors",
                info.tensors
            ),
        ));
    }
    Ok(())
}

/// The path a split set's shard names are formed from (`dir/X.gguf` for
/// `dir/X-00001-of-00003.gguf`), if `path` has a name long enough to be a shard's.
fn split_base(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name
        .len()
        .checked_sub(SHARD_SUFFIX_LEN)
        .map(|i| name.get(..i))??;
    Some(path.with_file_name(format!("{stem}.gguf")))
}

/// Length of the `-00001-of-00003.gguf` end of a shard's name.
const SHARD_SUFFIX_LEN: usize = 20;

/// Parses a GGUF header from the whole file's bytes; `shown` names the file in errors.
pub fn parse(shown: &str, bytes: &[u8]) -> Result<GgufFile> {
    let len = bytes.len() as u64;
    parse_cursor(&mut Cursor::new(shown, bytes, len, len))
}

/// What [`parse_prefix`] makes of the first bytes of a file.
#[derive(Debug)]
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) enum Prefix {
    /// The whole header was in them.
    Header(GgufFile),
    /// The header goes on past them: at least this many first bytes are needed.
    Needs(u64),
}

/// Parses a GGUF header from `bytes`, the first bytes of a file of `file_len` bytes (a remote
/// file, fetched in pieces: the format has no header length to fetch by). The header may take
/// at most `max_header` bytes: one longer is refused, naming that limit, however long the file.
/// Every rule of [`parse`] holds, checked against the file's length, not the bytes at hand.
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) fn parse_prefix(
    shown: &str,
    bytes: &[u8],
    file_len: u64,
    max_header: u64,
) -> Result<Prefix> {
    let mut r = Cursor::new(shown, bytes, file_len, max_header.min(file_len));
    match parse_cursor(&mut r) {
        Ok(file) => Ok(Prefix::Header(file)),
        Err(_) if r.need.is_some() => Ok(Prefix::Needs(r.need.unwrap_or_default())),
        Err(e) => Err(e),
    }
}

fn parse_cursor(r: &mut Cursor) -> Result<GgufFile> {
    let shown = r.shown;
    if r.take(4, "magic")? != MAGIC {
        return Err(Error::format(
            shown,
            None,
            "not a GGUF file (no \"GGUF\" magic)",
        ));
    }
    let version = r.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(Error::format(
            shown,
            None,
            format!("GGUF version {version} is not supported (2 or 3)"),
        ));
    }
    let n_tensors = r.u64("tensor count")?;
    let n_kv = r.u64("key/value count")?;
    // Each key/value takes at least 13 bytes, each tensor info at least 28.
    r.check_count(n_kv, 13, "key/value count")?;
    r.check_count(n_tensors, 28, "tensor count")?;
    let mut metadata = Metadata::new();
    // Keys seen so far, borrowed from the file: a set keeps the duplicate check linear in the
    // number of keys (a search of the list was quadratic: 300k keys took minutes).
    // n_kv was checked against the file size above.
    let mut keys = std::collections::HashSet::with_capacity(n_kv as usize);
    for _ in 0..n_kv {
        let key = r.str("key")?;
        let ty = match r.remaining() {
            ..4 => r.u32(&format!("value type of key \"{key}\""))?,
            _ => r.u32("value type")?,
        };
        let value = r.value(ty, key)?;
        if !keys.insert(key) {
            return Err(Error::format(
                shown,
                None,
                format!("key \"{key}\" appears twice"),
            ));
        }
        metadata.push_new(key.to_string(), value);
    }
    let alignment = match metadata.get("general.alignment") {
        None => u64::from(DEFAULT_ALIGNMENT),
        Some(Value::U32(a)) if *a > 0 && a.is_multiple_of(8) => u64::from(*a),
        Some(v) => {
            return Err(Error::format(
                shown,
                None,
                format!("general.alignment {v:?} is not a u32 multiple of 8"),
            ))
        }
    };
    let mut raw = Vec::new();
    let mut names = std::collections::HashSet::new();
    for _ in 0..n_tensors {
        let name = r.string("tensor name")?;
        if !names.insert(name.clone()) {
            return Err(Error::format(shown, Some(&name), "listed twice"));
        }
        let n_dims = r.u32("dimension count")? as usize;
        if n_dims > MAX_DIMS {
            return Err(Error::format(
                shown,
                Some(&name),
                format!("{n_dims} dimensions, at most {MAX_DIMS}"),
            ));
        }
        let mut dims = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            dims.push(r.u64("dimension")?);
        }
        let ty = GgmlType(r.u32("tensor type")?);
        let offset = r.u64("tensor offset")?;
        raw.push((name, dims, ty, offset));
    }
    let data_start = (r.pos as u64).next_multiple_of(alignment);
    let len = r.file_len;
    let mut tensors: Vec<GgufTensorInfo> = Vec::with_capacity(raw.len());
    // Where the next tensor's data must start, relative to the data section.
    let mut expected = 0u64;
    for (name, dims, ty, offset) in raw {
        let bad = |rule: String| Error::format(shown, Some(&name), rule);
        if ty.name().is_none() {
            return Err(bad(format!("unknown ggml type {}", ty.0)));
        }
        // ggml counts elements in int64 (gguf.cpp refuses more). The zero dimensions left out,
        // so a zero-element tensor cannot hide dimensions whose other products overflow: every
        // product of a subset of them, as slicing takes, fits.
        if dims
            .iter()
            .filter(|&&d| d != 0)
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .is_none_or(|n| n > i64::MAX as u64)
        {
            return Err(bad(format!(
                "dimensions {dims:?} multiply past 2^63 - 1 (ggml counts elements in int64)"
            )));
        }
        let elements = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let inner = dims.first().copied().unwrap_or(1);
        let nbytes = elements
            .and_then(|n| ty.nbytes(inner, n))
            .ok_or_else(|| bad(format!("dimensions {dims:?} have no {ty} byte size")))?;
        if !offset.is_multiple_of(alignment) {
            return Err(bad(format!("offset {offset} not aligned to {alignment}")));
        }
        // llama.cpp's rule (gguf.cpp): each tensor starts where the one before it ends,
        // padded to the alignment, in the order they are listed. So no two tensors share
        // bytes, and there are no gaps.
        if offset < expected {
            return Err(bad(overlap(&tensors, data_start, offset, nbytes)));
        }
        if offset > expected {
            return Err(bad(format!(
                "data offset {offset} leaves a gap after the tensor before it: llama.cpp \
                 needs offset {expected} (each tensor's data right after the previous one's, \
                 padded to {alignment})"
            )));
        }
        expected = nbytes
            .checked_next_multiple_of(alignment)
            .and_then(|padded| expected.checked_add(padded))
            .ok_or_else(|| bad(format!("data [{offset}, +{nbytes}) overflows")))?;
        let start = data_start.checked_add(offset);
        let end = start.and_then(|s| s.checked_add(nbytes));
        match (start, end) {
            (Some(start), Some(end)) if end <= len => tensors.push(GgufTensorInfo {
                shape: dims.into_iter().rev().collect(),
                name,
                ty,
                nbytes,
                data_offset: start,
            }),
            _ => {
                return Err(bad(format!(
                    "data [{offset}, +{nbytes}) past the end of the file ({len} bytes)"
                )))
            }
        }
    }
    let shard = shard_info(shown, &metadata)?;
    Ok(GgufFile {
        version,
        metadata,
        tensors,
        data_start,
        shard,
    })
}

/// The rule a tensor at `offset` (relative to the data section) of `nbytes` bytes breaks when
/// it starts before the end of the tensors listed before it (`placed`, laid out one after
/// the other): it starts inside one of them, named here.
fn overlap(placed: &[GgufTensorInfo], data_start: u64, offset: u64, nbytes: u64) -> String {
    let at = data_start.saturating_add(offset);
    // `placed` is in file order and contiguous, so the first tensor ending after `at` holds it.
    let i = placed.partition_point(|t| t.data_offset + t.nbytes <= at);
    let shown = |t: &GgufTensorInfo| {
        format!(
            "tensor \"{}\" at [{}, +{})",
            t.name,
            t.data_offset - data_start,
            t.nbytes
        )
    };
    let other = match placed.get(i) {
        Some(t) => shown(t),
        // Only padding after the last one (not reachable with aligned offsets).
        None => match placed.last() {
            Some(t) => format!("the padding after {}", shown(t)),
            None => "the tensors before it".to_string(),
        },
    };
    format!(
        "data [{offset}, +{nbytes}) starts inside {other}: tensors may not share bytes \
         (llama.cpp needs each tensor's data right after the previous one's, padded)"
    )
}

struct Cursor<'a> {
    shown: &'a str,
    /// The bytes at hand: the file's first bytes (all of them, for a local file).
    bytes: &'a [u8],
    pos: usize,
    /// The file's length, which data ranges are checked against.
    file_len: u64,
    /// Where the header must end: the file's end, or the limit on a remote header before it.
    end: u64,
    /// Set when a read went past `bytes` but not past `end`: the first bytes it needs.
    need: Option<u64>,
}

impl<'a> Cursor<'a> {
    fn new(shown: &'a str, bytes: &'a [u8], file_len: u64, end: u64) -> Cursor<'a> {
        Cursor {
            shown,
            bytes,
            pos: 0,
            file_len,
            end,
            need: None,
        }
    }

    /// Bytes the header may still take (counts are checked against this, so nothing a count
    /// claims is allocated past it).
    fn remaining(&self) -> u64 {
        self.end.saturating_sub(self.pos as u64)
    }

    /// Whether `needed` bytes from here fit in the file but not under the limit on a remote
    /// header: refused as a limit ([`Error::Limit`], as a safetensors header past
    /// `max_header_size` is), not as a broken file.
    fn limited(&self, needed: u64) -> bool {
        self.end < self.file_len && needed <= self.file_len.saturating_sub(self.pos as u64)
    }

    /// The error `rule` (about `needed` bytes from here that are not there).
    fn short(&self, needed: u64, rule: String) -> Error {
        if self.limited(needed) {
            Error::Limit(format!("{}: {rule}", self.shown))
        } else {
            Error::format(self.shown, None, rule)
        }
    }

    /// Where the header's room ends for `needed` bytes, for messages: "the file ends after N"
    /// or the limit.
    fn ends_after(&self, needed: u64) -> String {
        if self.limited(needed) {
            format!(
                "the limit on a GGUF header ({} bytes, max_header_size) is reached after {}",
                self.end,
                self.remaining()
            )
        } else {
            format!("the file ends after {}", self.remaining())
        }
    }

    /// The room left for `needed` bytes, for messages about counts.
    fn left(&self, needed: u64) -> String {
        if self.limited(needed) {
            format!(
                "{} bytes left under the limit on a GGUF header ({} bytes, max_header_size)",
                self.remaining(),
                self.end
            )
        } else {
            format!("{} bytes left of the file", self.remaining())
        }
    }

    /// Refuses `n` more bytes past the header's room; `what` (made only then) leads the message.
    fn room(&self, n: u64, what: impl FnOnce() -> String) -> Result<()> {
        if n > self.remaining() {
            let rule = format!(
                "{} at byte {} needs {n} bytes but {}",
                what(),
                self.pos,
                self.ends_after(n)
            );
            return Err(self.short(n, rule));
        }
        Ok(())
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        self.room(n, || what.to_string())?;
        // Within `end`, so it fits in memory (a local file's bytes, or a bounded prefix).
        let stop = self.pos + n as usize;
        if stop > self.bytes.len() {
            self.need = Some(stop as u64);
            return Err(Error::format(
                self.shown,
                None,
                "header continues past the bytes read",
            ));
        }
        let s = &self.bytes[self.pos..stop];
        self.pos = stop;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N as u64, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Refuses a count whose items could not fit in the rest of the file.
    fn check_count(&self, n: u64, min_size: u64, what: &str) -> Result<()> {
        let needed = n.saturating_mul(min_size);
        if needed > self.remaining() {
            let rule = format!("{what} {n} cannot fit in the {}", self.left(needed));
            return Err(self.short(needed, rule));
        }
        Ok(())
    }

    fn string(&mut self, what: &str) -> Result<String> {
        self.str(what).map(str::to_string)
    }

    /// A string borrowed from the file.
    fn str(&mut self, what: &str) -> Result<&'a str> {
        let n = self.u64(what)?;
        let at = self.pos;
        let s = self.take(n, what)?;
        std::str::from_utf8(s).map_err(|_| {
            Error::format(
                self.shown,
                None,
                format!("{what} at byte {at} is not UTF-8"),
            )
        })
    }

    /// An error about the value of `key`.
    fn bad_key(&self, key: &str, rule: impl std::fmt::Display) -> Error {
        Error::format(self.shown, None, format!("key \"{key}\": {rule}"))
    }

    /// `n` bytes of the value of `key`.
    fn key_bytes(&mut self, n: u64, key: &str) -> Result<&[u8]> {
        self.room(n, || format!("key \"{key}\": value"))?;
        self.take(n, key)
    }

    fn key_array<const N: usize>(&mut self, key: &str) -> Result<[u8; N]> {
        let s = self.key_bytes(N as u64, key)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn key_string(&mut self, key: &str) -> Result<String> {
        let n = u64::from_le_bytes(self.key_array(key)?);
        let at = self.pos;
        let s = self.key_bytes(n, key)?.to_vec();
        String::from_utf8(s)
            .map_err(|_| self.bad_key(key, format!("string at byte {at} is not UTF-8")))
    }

    fn value(&mut self, ty: u32, key: &str) -> Result<Value> {
        let Some(t) = ValueType::from_u32(ty) else {
            return Err(self.bad_key(key, format!("unknown value type {ty}")));
        };
        Ok(match t {
            ValueType::U8 => Value::U8(self.key_array::<1>(key)?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.key_array(key)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.key_array(key)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.key_array(key)?)),
            ValueType::U32 => Value::U32(u32::from_le_bytes(self.key_array(key)?)),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.key_array(key)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.key_array(key)?)),
            ValueType::Bool => Value::Bool(self.bool(key)?),
            ValueType::String => Value::String(self.key_string(key)?),
            ValueType::U64 => Value::U64(u64::from_le_bytes(self.key_array(key)?)),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.key_array(key)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.key_array(key)?)),
            ValueType::Array => Value::Array(self.array_value(key, 1)?),
        })
    }

    fn bool(&mut self, key: &str) -> Result<bool> {
        match self.key_array::<1>(key)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.bad_key(key, format!("boolean byte {b} is neither 0 nor 1"))),
        }
    }

    /// `n` fixed-size elements decoded by `f`, after checking that they fit in the file.
    fn fixed<T, const N: usize>(
        &mut self,
        key: &str,
        n: u64,
        f: fn([u8; N]) -> T,
    ) -> Result<Vec<T>> {
        let bytes = self.key_bytes(n.saturating_mul(N as u64), key)?;
        Ok(bytes
            .chunks_exact(N)
            .map(|b| {
                let mut a = [0u8; N];
                a.copy_from_slice(b);
                f(a)
            })
            .collect())
    }

    /// An array (element type, count, elements) at nesting `depth` (1 for a key's value).
    fn array_value(&mut self, key: &str, depth: usize) -> Result<Array> {
        if depth > MAX_ARRAY_DEPTH {
            return Err(self.bad_key(
                key,
                format!("arrays nested more than {MAX_ARRAY_DEPTH} deep"),
            ));
        }
        let ty = u32::from_le_bytes(self.key_array(key)?);
        let n = u64::from_le_bytes(self.key_array(key)?);
        let Some(t) = ValueType::from_u32(ty) else {
            return Err(self.bad_key(key, format!("unknown array element type {ty}")));
        };
        // Strings take at least their 8-byte length, inner arrays their 12-byte type and count.
        let min_size = t
            .fixed_size()
            .unwrap_or(if t == ValueType::String { 8 } else { 12 });
        let needed = n.saturating_mul(min_size);
        if needed > self.remaining() {
            let rule = format!(
                "key \"{key}\": {n} array elements of {min_size} or more bytes cannot fit in \
                 the {}",
                self.left(needed)
            );
            return Err(self.short(needed, rule));
        }
        Ok(match t {
            ValueType::U8 => Array::U8(self.key_bytes(n, key)?.to_vec()),
            ValueType::I8 => Array::I8(self.fixed(key, n, i8::from_le_bytes)?),
            ValueType::U16 => Array::U16(self.fixed(key, n, u16::from_le_bytes)?),
            ValueType::I16 => Array::I16(self.fixed(key, n, i16::from_le_bytes)?),
            ValueType::U32 => Array::U32(self.fixed(key, n, u32::from_le_bytes)?),
            ValueType::I32 => Array::I32(self.fixed(key, n, i32::from_le_bytes)?),
            ValueType::F32 => Array::F32(self.fixed(key, n, f32::from_le_bytes)?),
            ValueType::U64 => Array::U64(self.fixed(key, n, u64::from_le_bytes)?),
            ValueType::I64 => Array::I64(self.fixed(key, n, i64::from_le_bytes)?),
            ValueType::F64 => Array::F64(self.fixed(key, n, f64::from_le_bytes)?),
            ValueType::Bool => {
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.bool(key)?);
                }
                Array::Bool(v)
            }
            ValueType::String => {
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.key_string(key)?);
                }
                Array::String(v)
            }
            ValueType::Array => {
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.array_value(key, depth + 1)?);
                }
                Array::Array(v)
            }
        })
    }
}

/// A metadata value as JSON (arrays in full). Builds one JSON value per element: for a large
/// array, [`GgufFile::write_json`] streams the text instead.
pub fn value_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(ValueJson(v)).unwrap_or(serde_json::Value::Null)
}

/// A metadata value serialized element by element, so JSON text can be streamed without a
/// `serde_json::Value` per element (32 bytes each and more: a 32 MiB array took 2 GiB).
struct ValueJson<'a>(&'a Value);

/// An array serialized element by element.
struct ArrayJson<'a>(&'a Array);

// f32 values go out as the f64 of the same value, as `serde_json::json!` writes them, so the
// text is what `to_json` gave before it streamed (NaN and infinities are `null` either way).
impl Serialize for ValueJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Value::U8(x) => s.serialize_u8(*x),
            Value::I8(x) => s.serialize_i8(*x),
            Value::U16(x) => s.serialize_u16(*x),
            Value::I16(x) => s.serialize_i16(*x),
            Value::U32(x) => s.serialize_u32(*x),
            Value::I32(x) => s.serialize_i32(*x),
            Value::F32(x) => s.serialize_f64(f64::from(*x)),
            Value::Bool(x) => s.serialize_bool(*x),
            Value::String(x) => s.serialize_str(x),
            Value::U64(x) => s.serialize_u64(*x),
            Value::I64(x) => s.serialize_i64(*x),
            Value::F64(x) => s.serialize_f64(*x),
            Value::Array(a) => ArrayJson(a).serialize(s),
        }
    }
}

impl Serialize for ArrayJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.0 {
            Array::U8(v) => s.collect_seq(v),
            Array::I8(v) => s.collect_seq(v),
            Array::U16(v) => s.collect_seq(v),
            Array::I16(v) => s.collect_seq(v),
            Array::U32(v) => s.collect_seq(v),
            Array::I32(v) => s.collect_seq(v),
            Array::F32(v) => s.collect_seq(v.iter().map(|&x| f64::from(x))),
            Array::Bool(v) => s.collect_seq(v),
            Array::String(v) => s.collect_seq(v),
            Array::U64(v) => s.collect_seq(v),
            Array::I64(v) => s.collect_seq(v),
            Array::F64(v) => s.collect_seq(v),
            Array::Array(v) => s.collect_seq(v.iter().map(ArrayJson)),
        }
    }
}

/// One tensor of the JSON form.
struct TensorJson<'a>(&'a GgufTensorInfo);

impl Serialize for TensorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let t = self.0;
        // Keys in sorted order, as a `serde_json::Map` keeps them.
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("data_offset", &t.data_offset)?;
        m.serialize_entry("name", &t.name)?;
        m.serialize_entry("nbytes", &t.nbytes)?;
        m.serialize_entry("shape", &t.shape)?;
        m.serialize_entry("type", &t.ty.to_string())?;
        m.end()
    }
}

/// The whole JSON form of a file (see [`GgufFile::to_json`]).
struct FileJson<'a>(&'a GgufFile);

impl Serialize for FileJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let f = self.0;
        let mut keys: Vec<(&str, &Value)> = f.metadata.iter().collect();
        keys.sort_unstable_by_key(|&(k, _)| k);
        // Keys in sorted order, as a `serde_json::Map` keeps them.
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("format", "gguf")?;
        m.serialize_entry(
            "metadata",
            &Pairs(keys.iter().map(|&(k, v)| (k, ValueJson(v)))),
        )?;
        if let Some(sh) = &f.shard {
            m.serialize_entry(
                "shard",
                &serde_json::json!({
                    "number": u32::from(sh.no) + 1,
                    "count": sh.count,
                    "tensors": sh.tensors,
                }),
            )?;
        }
        m.serialize_entry("tensors", &Items(f.tensors.iter().map(TensorJson)))?;
        m.serialize_entry("version", &f.version)?;
        m.end()
    }
}

/// A JSON array serialized straight from an iterator.
struct Items<I>(I);

impl<I, T> Serialize for Items<I>
where
    I: Iterator<Item = T> + Clone,
    T: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

/// A JSON object serialized straight from an iterator of pairs.
struct Pairs<I>(I);

impl<I, K, V> Serialize for Pairs<I>
where
    I: Iterator<Item = (K, V)> + Clone,
    K: Serialize,
    V: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.0.clone())
    }
}

impl GgufFile {
    /// `{"format":"gguf","version","metadata":{...},"tensors":[{name,type,shape,nbytes,
    /// data_offset}]}` with shapes outermost first and absolute data offsets; a shard adds
    /// `"shard":{"number","count","tensors"}` (number from 1, tensors in all shards). Builds
    /// one JSON value per array element: [`GgufFile::write_json`] streams the same text.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(FileJson(self)).unwrap_or(serde_json::Value::Null)
    }

    /// Writes the JSON of [`GgufFile::to_json`] (keys in sorted order, on one line) to `w`
    /// element by element, so memory stays that of the parsed file whatever its arrays hold.
    pub fn write_json(&self, w: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer(w, &FileJson(self)).map_err(std::io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF header of one string key whose value is `len` bytes, and no tensors.
    fn one_key(len: usize) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.push(b'k');
        b.extend(8u32.to_le_bytes());
        b.extend((len as u64).to_le_bytes());
        b.extend(std::iter::repeat_n(b'v', len));
        b
    }

    /// A prefix asks for the bytes the header goes on to, parses whole once they are there, and
    /// is refused as a limit (not a broken file) when the header passes `max_header`.
    #[test]
    fn a_prefix_asks_for_more_up_to_the_limit() {
        let file = one_key(1000);
        let len = file.len() as u64;
        // Cut inside the value's length (bytes 37..45), then inside the value.
        for (cut, need) in [(40, 45), (45, len)] {
            match parse_prefix("f", &file[..cut], len, 1 << 20).unwrap() {
                Prefix::Needs(n) => assert_eq!(n, need),
                other => panic!("{other:?}"),
            }
        }
        match parse_prefix("f", &file, len, 1 << 20).unwrap() {
            Prefix::Header(h) => assert_eq!(h, parse("f", &file).unwrap()),
            other => panic!("{other:?}"),
        }
        let err = parse_prefix("f", &file[..45], len, 100).unwrap_err();
        assert!(matches!(err, Error::Limit(_)), "{err:?}");
        assert!(err.to_string().contains("max_header_size"), "{err}");
        // Past the file itself: a broken file, whatever the limit.
        let err = parse_prefix("f", &file[..45], 500, 100).unwrap_err();
        assert!(matches!(err, Error::Format(_)), "{err:?}");
    }
}
