//! The ggml tensor type numbers GGUF stores, with their names and block sizes (which
//! [`Dtype`] holds: one table of ggml's types).

use std::fmt;

use crate::dtype::Dtype;

/// A ggml tensor type, by its number in the file (`GGMLQuantizationType` of the `gguf` Python
/// package). The writer produces [`GgmlType::F32`], `F16`, `BF16`, `Q8_0` and the integer
/// types; the reader knows the sizes of every type, each a [`Dtype`] (which holds the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType(pub u32);

impl GgmlType {
    /// IEEE single.
    pub const F32: GgmlType = GgmlType(0);
    /// IEEE half.
    pub const F16: GgmlType = GgmlType(1);
    /// Blocks of 32 values: an F16 scale and 32 signed bytes.
    pub const Q8_0: GgmlType = GgmlType(8);
    /// Signed 8-bit integer.
    pub const I8: GgmlType = GgmlType(24);
    /// Signed 16-bit integer.
    pub const I16: GgmlType = GgmlType(25);
    /// Signed 32-bit integer.
    pub const I32: GgmlType = GgmlType(26);
    /// Signed 64-bit integer.
    pub const I64: GgmlType = GgmlType(27);
    /// bfloat16.
    pub const BF16: GgmlType = GgmlType(30);
    /// Blocks of 32 FP4 (E2M1) values: an E8M0 scale byte and 16 bytes of codes.
    pub const MXFP4: GgmlType = GgmlType(39);

    /// The dtype of this type ([`Dtype::from_ggml_type`]: the one table of ggml's types).
    pub fn as_dtype(self) -> Option<Dtype> {
        Dtype::from_ggml_type(self.0)
    }

    /// The name ggml gives the type (`"Q8_0"`), or `None` for a number it does not define.
    pub fn name(self) -> Option<&'static str> {
        self.as_dtype().map(Dtype::name)
    }

    /// Elements per block and bytes per block.
    pub fn block(self) -> Option<(u64, u64)> {
        self.as_dtype().map(Dtype::block)
    }

    /// Bytes of `elements` values of this type laid out as rows of `row` elements, or `None`
    /// for an unknown type, a row that is not a whole number of blocks, or overflow.
    pub fn nbytes(self, row: u64, elements: u64) -> Option<u64> {
        let (block, size) = self.block()?;
        if !row.is_multiple_of(block) || !elements.is_multiple_of(block) {
            return None;
        }
        (elements / block).checked_mul(size)
    }

    /// The dtype of one element when the type is not block-quantised.
    pub fn dtype(self) -> Option<Dtype> {
        self.as_dtype().filter(|d| !d.is_block())
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "type {}", self.0),
        }
    }
}
