//! Reading a GGUF file's header back: version, metadata and tensor infos, each count, length
//! and offset checked against the file size, so hostile input gives an error, never a panic
//! or an allocation larger than the file. Enough for `stload inspect FILE.gguf`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::kv::{Array, Metadata, Value, ValueType};

use super::types::GgmlType;
use super::writer::{DEFAULT_ALIGNMENT, MAGIC, MAX_DIMS};

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
        let ty = r.u32("value type")?;
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
    Ok(GgufFile {
        version,
        metadata,
        tensors,
        data_start,
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

    fn value(&mut self, ty: u32, key: &str) -> Result<Value> {
        Ok(match ty {
            t if t == ValueType::U8 as u32 => Value::U8(self.array::<1>(key)?[0]),
            t if t == ValueType::I8 as u32 => Value::I8(i8::from_le_bytes(self.array(key)?)),
            t if t == ValueType::U16 as u32 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            t if t == ValueType::I16 as u32 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            t if t == ValueType::U32 as u32 => Value::U32(self.u32(key)?),
            t if t == ValueType::I32 as u32 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            t if t == ValueType::F32 as u32 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            t if t == ValueType::Bool as u32 => Value::Bool(self.bool(key)?),
            t if t == ValueType::String as u32 => Value::String(self.string(key)?),
            t if t == ValueType::U64 as u32 => Value::U64(self.u64(key)?),
            t if t == ValueType::I64 as u32 => Value::I64(i64::from_le_bytes(self.array(key)?)),
            t if t == ValueType::F64 as u32 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            t if t == ValueType::Array as u32 => Value::Array(self.array_value(key)?),
            t => {
                return Err(Error::format(
                    self.shown,
                    None,
                    format!("key \"{key}\": unknown value type {t}"),
                ))
            }
        })
    }

    fn bool(&mut self, key: &str) -> Result<bool> {
        match self.array::<1>(key)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Error::format(
                self.shown,
                None,
                format!("key \"{key}\": boolean byte {b} is neither 0 nor 1"),
            )),
        }
    }

    fn array_value(&mut self, key: &str) -> Result<Array> {
        let ty = self.u32(key)?;
        let n = self.u64(key)?;
        let size = match ty {
            t if t == ValueType::String as u32 => 8,
            t if t == ValueType::F32 as u32
                || t == ValueType::I32 as u32
                || t == ValueType::U32 as u32 =>
            {
                4
            }
            t if t == ValueType::Bool as u32 => 1,
            t => {
                return Err(Error::Unsupported(format!(
                    "{}: key \"{key}\": arrays of value type {t} are not read",
                    self.shown
                )))
            }
        };
        self.check_count(n, size, key)?;
        let n = n as usize;
        Ok(match ty {
            t if t == ValueType::String as u32 => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.string(key)?);
                }
                Array::String(v)
            }
            t if t == ValueType::F32 as u32 => Array::F32(
                self.take(n as u64 * 4, key)?
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            t if t == ValueType::I32 as u32 => Array::I32(
                self.take(n as u64 * 4, key)?
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            t if t == ValueType::U32 as u32 => Array::U32(
                self.take(n as u64 * 4, key)?
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            _ => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.bool(key)?);
                }
                Array::Bool(v)
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
        Value::Array(a) => match a {
            Array::String(v) => json!(v),
            Array::F32(v) => json!(v),
            Array::I32(v) => json!(v),
            Array::U32(v) => json!(v),
            Array::Bool(v) => json!(v),
        },
    }
}

impl GgufFile {
    /// `{"format":"gguf","version","metadata":{...},"tensors":[{name,type,shape,nbytes,
    /// data_offset}]}` with shapes outermost first and absolute data offsets.
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
        serde_json::json!({
            "format": "gguf",
            "version": self.version,
            "metadata": metadata,
            "tensors": tensors,
        })
    }
}
