//! What architectures and tokenizers hand the GGUF writer: key/value metadata (typed values
//! in an ordered list of keys) and tensors computed from `config.json`. A leaf module, so the
//! architectures, the tokenizer and the writer share these types without importing each other.

use crate::shape::Shape;

/// The value types of GGUF metadata, with their numbers in the file (`GGUFValueType` of the
/// `gguf` Python package).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ValueType {
    /// Unsigned 8-bit integer.
    U8 = 0,
    /// Signed 8-bit integer.
    I8 = 1,
    /// Unsigned 16-bit integer.
    U16 = 2,
    /// Signed 16-bit integer.
    I16 = 3,
    /// Unsigned 32-bit integer.
    U32 = 4,
    /// Signed 32-bit integer.
    I32 = 5,
    /// IEEE single.
    F32 = 6,
    /// Boolean (one byte, 0 or 1).
    Bool = 7,
    /// UTF-8 string with a u64 length.
    String = 8,
    /// Array of one element type with a u64 count.
    Array = 9,
    /// Unsigned 64-bit integer.
    U64 = 10,
    /// Signed 64-bit integer.
    I64 = 11,
    /// IEEE double.
    F64 = 12,
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`: counts and lengths llama.cpp reads as 32-bit.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`: epsilons, rope bases.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// A string.
    String(String),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f64`.
    F64(f64),
    /// An array whose elements share one type.
    Array(Array),
}

/// An array value: every GGUF element type, and arrays of arrays (each inner array with its
/// own element type).
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// `u8`.
    U8(Vec<u8>),
    /// `i8`.
    I8(Vec<i8>),
    /// `u16`.
    U16(Vec<u16>),
    /// `i16`.
    I16(Vec<i16>),
    /// `u32`.
    U32(Vec<u32>),
    /// `i32` (token types, per-layer counts).
    I32(Vec<i32>),
    /// `f32` (token scores).
    F32(Vec<f32>),
    /// `bool`.
    Bool(Vec<bool>),
    /// Strings (tokens, merges).
    String(Vec<String>),
    /// `u64`.
    U64(Vec<u64>),
    /// `i64`.
    I64(Vec<i64>),
    /// `f64`.
    F64(Vec<f64>),
    /// Arrays (llama.cpp itself refuses these; the `gguf` package writes and reads them).
    Array(Vec<Array>),
}

impl Value {
    /// The value's type number in the file.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
            Value::Array(_) => ValueType::Array,
        }
    }
}

impl Array {
    /// The element type number.
    pub fn element_type(&self) -> ValueType {
        match self {
            Array::U8(_) => ValueType::U8,
            Array::I8(_) => ValueType::I8,
            Array::U16(_) => ValueType::U16,
            Array::I16(_) => ValueType::I16,
            Array::U32(_) => ValueType::U32,
            Array::I32(_) => ValueType::I32,
            Array::F32(_) => ValueType::F32,
            Array::Bool(_) => ValueType::Bool,
            Array::String(_) => ValueType::String,
            Array::U64(_) => ValueType::U64,
            Array::I64(_) => ValueType::I64,
            Array::F64(_) => ValueType::F64,
            Array::Array(_) => ValueType::Array,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            Array::U8(v) => v.len(),
            Array::I8(v) => v.len(),
            Array::U16(v) => v.len(),
            Array::I16(v) => v.len(),
            Array::U32(v) => v.len(),
            Array::I32(v) => v.len(),
            Array::F32(v) => v.len(),
            Array::Bool(v) => v.len(),
            Array::String(v) => v.len(),
            Array::U64(v) => v.len(),
            Array::I64(v) => v.len(),
            Array::F64(v) => v.len(),
            Array::Array(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ValueType {
    /// The type of number `n` in the file, or `None` for a number GGUF does not define.
    pub fn from_u32(n: u32) -> Option<ValueType> {
        use ValueType::*;
        [
            U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64,
        ]
        .into_iter()
        .find(|t| *t as u32 == n)
    }

    /// Bytes of one value of this type, or `None` for strings and arrays (whose size is in
    /// the file).
    pub fn fixed_size(self) -> Option<u64> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }
}

impl From<u16> for Value {
    fn from(v: u16) -> Value {
        Value::U16(v)
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::U64(v)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::U32(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::I32(v)
    }
}

impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::F32(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<Array> for Value {
    fn from(v: Array) -> Value {
        Value::Array(v)
    }
}

/// Metadata in insertion order; setting a key again replaces its value in place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, Value)>,
}

impl Metadata {
    /// An empty list.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// Sets `key` to `value`, keeping the key's first position when it was set before.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Appends `key`, which the caller knows is not set yet (a reader that checks duplicates
    /// itself): no search, so building a list of n keys stays linear.
    pub(crate) fn push_new(&mut self, key: String, value: Value) {
        self.entries.push((key, value));
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(pos).1)
    }

    /// Every pair, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Every pair, in insertion order, owned.
    pub fn into_pairs(self) -> impl Iterator<Item = (String, Value)> {
        self.entries.into_iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A tensor computed in f32 rather than read from the weights (llama3's `rope_freqs.weight`,
/// phi3's rope factors), written after the model's tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputedTensor {
    /// GGUF tensor name.
    pub name: String,
    /// Dimensions, outermost first (row-major, as the model lists tensors).
    pub shape: Shape,
    /// Row-major values; as many as the shape holds.
    pub values: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_a_key_again_replaces_it_in_place() {
        let mut m = Metadata::new();
        m.set("a", 1u32);
        m.set("b", "x");
        m.set("a", 2u32);
        let keys: Vec<&str> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(m.get("a"), Some(&Value::U32(2)));
        assert_eq!(m.remove("b"), Some(Value::String("x".into())));
        assert_eq!(m.len(), 1);
    }
}
