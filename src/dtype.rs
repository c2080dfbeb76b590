//! Element types of the safetensors format: names, aliases and sizes.

use std::fmt;

/// One element type a safetensors file can store.
///
/// The discriminants are the numbers of the C constants `STLOAD_DTYPE_*` and never change;
/// 0 is reserved for `STLOAD_DTYPE_NATIVE` ("as stored") in the C API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Dtype {
    /// Boolean, one byte per element (0 or 1).
    Bool = 1,
    /// Unsigned 8-bit integer.
    U8 = 2,
    /// Signed 8-bit integer.
    I8 = 3,
    /// Signed 16-bit integer.
    I16 = 4,
    /// Unsigned 16-bit integer.
    U16 = 5,
    /// Signed 32-bit integer.
    I32 = 6,
    /// Unsigned 32-bit integer.
    U32 = 7,
    /// Signed 64-bit integer.
    I64 = 8,
    /// Unsigned 64-bit integer.
    U64 = 9,
    /// IEEE 754 half precision.
    F16 = 10,
    /// bfloat16: the upper half of an IEEE single.
    BF16 = 11,
    /// IEEE 754 single precision.
    F32 = 12,
    /// IEEE 754 double precision.
    F64 = 13,
    /// Complex number made of two F32 parts.
    C64 = 14,
    /// FP8 E4M3 without infinities (OCP "E4M3FN").
    F8E4M3 = 15,
    /// FP8 E5M2 (IEEE-like, with infinities).
    F8E5M2 = 16,
    /// FP8 E8M0: an unsigned power of two (MX scale).
    F8E8M0 = 17,
    /// FP8 E4M3 "FNUZ": no infinities, no negative zero, one NaN.
    F8E4M3Fnuz = 18,
    /// FP8 E5M2 "FNUZ": no infinities, no negative zero, one NaN.
    F8E5M2Fnuz = 19,
    /// MX FP4 (E2M1), two elements per byte.
    F4 = 20,
    /// MX FP6 E2M3, six bits per element.
    F6E2M3 = 21,
    /// MX FP6 E3M2, six bits per element.
    F6E3M2 = 22,
}

impl Dtype {
    /// Every dtype, in the order of their numbers.
    pub const ALL: [Dtype; 22] = [
        Dtype::Bool,
        Dtype::U8,
        Dtype::I8,
        Dtype::I16,
        Dtype::U16,
        Dtype::I32,
        Dtype::U32,
        Dtype::I64,
        Dtype::U64,
        Dtype::F16,
        Dtype::BF16,
        Dtype::F32,
        Dtype::F64,
        Dtype::C64,
        Dtype::F8E4M3,
        Dtype::F8E5M2,
        Dtype::F8E8M0,
        Dtype::F8E4M3Fnuz,
        Dtype::F8E5M2Fnuz,
        Dtype::F4,
        Dtype::F6E2M3,
        Dtype::F6E3M2,
    ];

    /// The dtype with this C number, if any (0, NATIVE, is not a dtype).
    pub fn from_code(code: u32) -> Option<Dtype> {
        Dtype::ALL.get((code as usize).wrapping_sub(1)).copied()
    }

    /// The C number of this dtype (`STLOAD_DTYPE_*`).
    pub fn code(self) -> u32 {
        self as u32
    }

    /// The spelling the safetensors format uses in headers, e.g. `"BF16"`.
    pub fn name(self) -> &'static str {
        self.name_nul().trim_end_matches('\0')
    }

    /// [`Dtype::name`] with a trailing NUL, for handing to C without allocating.
    pub(crate) fn name_nul(self) -> &'static str {
        match self {
            Dtype::Bool => "BOOL\0",
            Dtype::U8 => "U8\0",
            Dtype::I8 => "I8\0",
            Dtype::I16 => "I16\0",
            Dtype::U16 => "U16\0",
            Dtype::I32 => "I32\0",
            Dtype::U32 => "U32\0",
            Dtype::I64 => "I64\0",
            Dtype::U64 => "U64\0",
            Dtype::F16 => "F16\0",
            Dtype::BF16 => "BF16\0",
            Dtype::F32 => "F32\0",
            Dtype::F64 => "F64\0",
            Dtype::C64 => "C64\0",
            Dtype::F8E4M3 => "F8_E4M3\0",
            Dtype::F8E5M2 => "F8_E5M2\0",
            Dtype::F8E8M0 => "F8_E8M0\0",
            Dtype::F8E4M3Fnuz => "F8_E4M3FNUZ\0",
            Dtype::F8E5M2Fnuz => "F8_E5M2FNUZ\0",
            Dtype::F4 => "F4\0",
            Dtype::F6E2M3 => "F6_E2M3\0",
            Dtype::F6E3M2 => "F6_E3M2\0",
        }
    }

    /// The dtype a safetensors header names, spelled exactly as the format does.
    pub fn from_header_name(name: &str) -> Option<Dtype> {
        Dtype::ALL.iter().copied().find(|d| d.name() == name)
    }

    /// Parses a dtype name case-insensitively, accepting the format's spelling and the
    /// common aliases (`float32`, `bfloat16`, `int64`, `half`, `float8_e4m3fn`, ...).
    pub fn from_name(name: &str) -> Option<Dtype> {
        let upper = name.trim().to_ascii_uppercase();
        if let Some(d) = Dtype::from_header_name(&upper) {
            return Some(d);
        }
        let d = match upper.as_str() {
            "BOOLEAN" => Dtype::Bool,
            "UINT8" | "BYTE" => Dtype::U8,
            "INT8" => Dtype::I8,
            "INT16" | "SHORT" => Dtype::I16,
            "UINT16" => Dtype::U16,
            "INT32" | "INT" => Dtype::I32,
            "UINT32" => Dtype::U32,
            "INT64" | "LONG" => Dtype::I64,
            "UINT64" => Dtype::U64,
            "FLOAT16" | "FP16" | "HALF" => Dtype::F16,
            "BFLOAT16" => Dtype::BF16,
            "FLOAT32" | "FP32" | "FLOAT" => Dtype::F32,
            "FLOAT64" | "FP64" | "DOUBLE" => Dtype::F64,
            "COMPLEX64" => Dtype::C64,
            "FLOAT8_E4M3FN" | "F8_E4M3FN" | "FLOAT8_E4M3" | "FP8_E4M3" => Dtype::F8E4M3,
            "FLOAT8_E5M2" | "FP8_E5M2" => Dtype::F8E5M2,
            "FLOAT8_E8M0FNU" | "F8_E8M0FNU" | "FLOAT8_E8M0" => Dtype::F8E8M0,
            "FLOAT8_E4M3FNUZ" => Dtype::F8E4M3Fnuz,
            "FLOAT8_E5M2FNUZ" => Dtype::F8E5M2Fnuz,
            "FLOAT4_E2M1FN" | "F4_E2M1" => Dtype::F4,
            "FLOAT6_E2M3FN" => Dtype::F6E2M3,
            "FLOAT6_E3M2FN" => Dtype::F6E3M2,
            _ => return None,
        };
        Some(d)
    }

    /// Size of one element in bits (4 for F4, 6 for the F6 types).
    pub fn bits(self) -> u32 {
        match self {
            Dtype::F4 => 4,
            Dtype::F6E2M3 | Dtype::F6E3M2 => 6,
            Dtype::Bool
            | Dtype::U8
            | Dtype::I8
            | Dtype::F8E4M3
            | Dtype::F8E5M2
            | Dtype::F8E8M0
            | Dtype::F8E4M3Fnuz
            | Dtype::F8E5M2Fnuz => 8,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 16,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 32,
            Dtype::I64 | Dtype::U64 | Dtype::F64 | Dtype::C64 => 64,
        }
    }

    /// Whether the dtype holds floating-point numbers (including FP8, FP6, FP4 and E8M0 scales).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Dtype::F16
                | Dtype::BF16
                | Dtype::F32
                | Dtype::F64
                | Dtype::F8E4M3
                | Dtype::F8E5M2
                | Dtype::F8E8M0
                | Dtype::F8E4M3Fnuz
                | Dtype::F8E5M2Fnuz
                | Dtype::F4
                | Dtype::F6E2M3
                | Dtype::F6E3M2
        )
    }

    /// Size of one element in whole bytes, or `None` for the sub-byte types.
    pub fn byte_size(self) -> Option<usize> {
        let bits = self.bits();
        bits.is_multiple_of(8).then_some(bits as usize / 8)
    }

    /// Bytes needed for `elements` values, or `None` on overflow or when the
    /// bits do not fill whole bytes (the safetensors rule for sub-byte types).
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        let bits = elements.checked_mul(u64::from(self.bits()))?;
        (bits % 8 == 0).then_some(bits / 8)
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_zero_is_not_a_dtype() {
        assert_eq!(Dtype::from_code(0), None);
        assert_eq!(Dtype::from_code(23), None);
        assert_eq!(Dtype::from_code(u32::MAX), None);
        for d in Dtype::ALL {
            assert_eq!(Dtype::from_code(d.code()), Some(d));
        }
    }

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for d in Dtype::ALL {
            assert_eq!(Dtype::from_header_name(d.name()), Some(d));
            assert_eq!(Dtype::from_name(&d.name().to_lowercase()), Some(d));
        }
        assert_eq!(Dtype::from_name("FLOAT32"), Some(Dtype::F32));
        assert_eq!(Dtype::from_name("bfloat16"), Some(Dtype::BF16));
        assert_eq!(Dtype::from_name("Int64"), Some(Dtype::I64));
        assert_eq!(Dtype::from_name("float8_e4m3fn"), Some(Dtype::F8E4M3));
        assert_eq!(Dtype::from_name("F12"), None);
        // The header spelling is exact: lower case is not a valid header dtype.
        assert_eq!(Dtype::from_header_name("bf16"), None);
    }

    #[test]
    fn sizes_follow_the_reference() {
        assert_eq!(Dtype::F4.bytes_for(3), None);
        assert_eq!(Dtype::F4.bytes_for(4), Some(2));
        assert_eq!(Dtype::F6E2M3.bytes_for(4), Some(3));
        assert_eq!(Dtype::BF16.bytes_for(5), Some(10));
        assert_eq!(Dtype::F64.bytes_for(u64::MAX), None);
        assert_eq!(Dtype::C64.byte_size(), Some(8));
        assert_eq!(Dtype::F4.byte_size(), None);
    }
}
