//! Reading a GGUF file's header back: version, metadata and tensor infos, each count, length
//! and offset checked against the file size, so hostile input gives an error, never a panic
//! or an allocation larger than the file. Enough for `stload inspect FILE.gguf`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::kv::{Array, Metadata, Value, ValueType};

use super::split::{shard_info, ShardInfo};
use super::types::GgmlType;
use super::writer::{DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};

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
    let file = std::fs::File::open(path).map_err(|e| Error::io(&shown, "cannot open", &e))?;
    // SAFETY: the mapping is read-only and dropped before returning; a file truncated while
    // it is parsed is the documented risk of every mapped read.
    let map =
        unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&shown, "cannot map", &e))?;
    parse(&shown, &map)
}

/// Parses a GGUF header from the whole file's bytes; `shown` names the file in errors.
pub fn parse(shown: &str, bytes: &[u8]) -> Result<GgufFile> {
    let mut r = Cursor {
        shown,
        bytes,
        pos: 0,
    };
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
    for _ in 0..n_kv {
        let key = r.string("key")?;
        let ty = r.u32(&format!("value type of key \"{key}\""))?;
        let value = r.value(ty, &key)?;
        if metadata.get(&key).is_some() {
            return Err(Error::format(
                shown,
                None,
                format!("key \"{key}\" appears twice"),
            ));
        }
        metadata.set(key, value);
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
    let len = bytes.len() as u64;
    let mut tensors = Vec::with_capacity(raw.len());
    for (name, dims, ty, offset) in raw {
        let bad = |rule: String| Error::format(shown, Some(&name), rule);
        if ty.name().is_none() {
            return Err(bad(format!("unknown ggml type {}", ty.0)));
        }
        let elements = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        let inner = dims.first().copied().unwrap_or(1);
        let nbytes = elements
            .and_then(|n| ty.nbytes(inner, n))
            .ok_or_else(|| bad(format!("dimensions {dims:?} have no {ty} byte size")))?;
        if !offset.is_multiple_of(alignment) {
            return Err(bad(format!("offset {offset} not aligned to {alignment}")));
        }
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

struct Cursor<'a> {
    shown: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&[u8]> {
        if n > self.remaining() as u64 {
            return Err(Error::format(
                self.shown,
                None,
                format!(
                    "{what} at byte {} needs {n} bytes but the file ends after {}",
                    self.pos,
                    self.remaining()
                ),
            ));
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
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
        if n.saturating_mul(min_size) > self.remaining() as u64 {
            return Err(Error::format(
                self.shown,
                None,
                format!(
                    "{what} {n} cannot fit in the {} bytes left of the file",
                    self.remaining()
                ),
            ));
        }
        Ok(())
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.u64(what)?;
        let at = self.pos;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| {
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
        if n > self.remaining() as u64 {
            return Err(self.bad_key(
                key,
                format!(
                    "value at byte {} needs {n} bytes but the file ends after {}",
                    self.pos,
                    self.remaining()
                ),
            ));
        }
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
        if n.saturating_mul(min_size) > self.remaining() as u64 {
            return Err(self.bad_key(
                key,
                format!(
                    "{n} array elements of {min_size} or more bytes cannot fit in the {} bytes left of the file",
                    self.remaining()
                ),
            ));
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

/// A metadata value as JSON (arrays in full).
pub fn value_json(v: &Value) -> serde_json::Value {
    use serde_json::json;
    match v {
        Value::U8(x) => json!(x),
        Value::I8(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::F32(x) => json!(x),
        Value::Bool(x) => json!(x),
        Value::String(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::Array(a) => array_json(a),
    }
}

fn array_json(a: &Array) -> serde_json::Value {
    use serde_json::json;
    match a {
        Array::U8(v) => json!(v),
        Array::I8(v) => json!(v),
        Array::U16(v) => json!(v),
        Array::I16(v) => json!(v),
        Array::U32(v) => json!(v),
        Array::I32(v) => json!(v),
        Array::F32(v) => json!(v),
        Array::Bool(v) => json!(v),
        Array::String(v) => json!(v),
        Array::U64(v) => json!(v),
        Array::I64(v) => json!(v),
        Array::F64(v) => json!(v),
        Array::Array(v) => serde_json::Value::Array(v.iter().map(array_json).collect()),
    }
}

impl GgufFile {
    /// `{"format":"gguf","version","metadata":{...},"tensors":[{name,type,shape,nbytes,
    /// data_offset}]}` with shapes outermost first and absolute data offsets; a shard adds
    /// `"shard":{"number","count","tensors"}` (number from 1, tensors in all shards).
    pub fn to_json(&self) -> serde_json::Value {
        let metadata: serde_json::Map<String, serde_json::Value> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.to_string(), value_json(v)))
            .collect();
        let tensors: Vec<serde_json::Value> = self
            .tensors
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "type": t.ty.to_string(),
                    "shape": t.shape,
                    "nbytes": t.nbytes,
                    "data_offset": t.data_offset,
                })
            })
            .collect();
        let mut json = serde_json::json!({
            "format": "gguf",
            "version": self.version,
            "metadata": metadata,
            "tensors": tensors,
        });
        if let Some(s) = &self.shard {
            json["shard"] = serde_json::json!({
                "number": u32::from(s.no) + 1,
                "count": s.count,
                "tensors": s.tensors,
            });
        }
        json
    }
}
