//! Element types of the safetensors format and GGML's block types: names, aliases, sizes and
//! GGML type numbers.

use std::fmt;

/// One element type a safetensors file can store, or one of GGML's block-quantised types a
/// GGUF file can store ([`Dtype::is_block`]).
///
/// The discriminants are the numbers of the C constants `STLOAD_DTYPE_*` and never change;
/// 0 is reserved for `STLOAD_DTYPE_NATIVE` ("as stored") in the C API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
#[allow(non_camel_case_types)] // the block types keep ggml's names (Q4_K, IQ2_XXS)
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
    // GGML's block-quantised types (`Dtype::is_block`): a value is only addressable as part of
    // its block; [`Dtype::block`] gives values and bytes per block.
    /// ggml Q4_0: blocks of 32 4-bit values and an F16 scale.
    Q4_0 = 23,
    /// ggml Q4_1: blocks of 32 4-bit values, an F16 scale and an F16 minimum.
    Q4_1 = 24,
    /// ggml Q5_0: blocks of 32 5-bit values and an F16 scale.
    Q5_0 = 25,
    /// ggml Q5_1: blocks of 32 5-bit values, an F16 scale and an F16 minimum.
    Q5_1 = 26,
    /// ggml Q8_0: blocks of 32 signed bytes and an F16 scale.
    Q8_0 = 27,
    /// ggml Q8_1: blocks of 32 signed bytes, an F32 scale and an F32 sum (dot products only).
    Q8_1 = 28,
    /// ggml Q2_K: super-blocks of 256 2-bit values.
    Q2_K = 29,
    /// ggml Q3_K: super-blocks of 256 3-bit values.
    Q3_K = 30,
    /// ggml Q4_K: super-blocks of 256 4-bit values.
    Q4_K = 31,
    /// ggml Q5_K: super-blocks of 256 5-bit values.
    Q5_K = 32,
    /// ggml Q6_K: super-blocks of 256 6-bit values.
    Q6_K = 33,
    /// ggml Q8_K: super-blocks of 256 signed bytes (dot products only).
    Q8_K = 34,
    /// ggml IQ2_XXS: 2.06 bits a value on a lattice.
    IQ2_XXS = 35,
    /// ggml IQ2_XS: 2.31 bits a value on a lattice.
    IQ2_XS = 36,
    /// ggml IQ3_XXS: 3.06 bits a value on a lattice.
    IQ3_XXS = 37,
    /// ggml IQ1_S: 1.56 bits a value on a lattice.
    IQ1_S = 38,
    /// ggml IQ4_NL: blocks of 32 non-linear 4-bit values.
    IQ4_NL = 39,
    /// ggml IQ3_S: 3.44 bits a value on a lattice.
    IQ3_S = 40,
    /// ggml IQ2_S: 2.5 bits a value on a lattice.
    IQ2_S = 41,
    /// ggml IQ4_XS: super-blocks of 256 non-linear 4-bit values.
    IQ4_XS = 42,
    /// ggml IQ1_M: 1.75 bits a value on a lattice.
    IQ1_M = 43,
    /// ggml TQ1_0: ternary values, five to a byte.
    TQ1_0 = 44,
    /// ggml TQ2_0: ternary values, two bits each.
    TQ2_0 = 45,
    /// ggml MXFP4: blocks of 32 FP4 (E2M1) values and an E8M0 scale.
    MXFP4 = 46,
    /// ggml NVFP4: blocks of 64 FP4 (E2M1) values, four E4M3 scales.
    NVFP4 = 47,
    /// ggml Q1_0: blocks of 128 1-bit values and an F16 scale.
    Q1_0 = 48,
}

impl Dtype {
    /// Every dtype, in the order of their numbers.
    pub const ALL: [Dtype; 48] = [
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
        Dtype::Q4_0,
        Dtype::Q4_1,
        Dtype::Q5_0,
        Dtype::Q5_1,
        Dtype::Q8_0,
        Dtype::Q8_1,
        Dtype::Q2_K,
        Dtype::Q3_K,
        Dtype::Q4_K,
        Dtype::Q5_K,
        Dtype::Q6_K,
        Dtype::Q8_K,
        Dtype::IQ2_XXS,
        Dtype::IQ2_XS,
        Dtype::IQ3_XXS,
        Dtype::IQ1_S,
        Dtype::IQ4_NL,
        Dtype::IQ3_S,
        Dtype::IQ2_S,
        Dtype::IQ4_XS,
        Dtype::IQ1_M,
        Dtype::TQ1_0,
        Dtype::TQ2_0,
        Dtype::MXFP4,
        Dtype::NVFP4,
        Dtype::Q1_0,
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
            Dtype::Q4_0 => "Q4_0\0",
            Dtype::Q4_1 => "Q4_1\0",
            Dtype::Q5_0 => "Q5_0\0",
            Dtype::Q5_1 => "Q5_1\0",
            Dtype::Q8_0 => "Q8_0\0",
            Dtype::Q8_1 => "Q8_1\0",
            Dtype::Q2_K => "Q2_K\0",
            Dtype::Q3_K => "Q3_K\0",
            Dtype::Q4_K => "Q4_K\0",
            Dtype::Q5_K => "Q5_K\0",
            Dtype::Q6_K => "Q6_K\0",
            Dtype::Q8_K => "Q8_K\0",
            Dtype::IQ2_XXS => "IQ2_XXS\0",
            Dtype::IQ2_XS => "IQ2_XS\0",
            Dtype::IQ3_XXS => "IQ3_XXS\0",
            Dtype::IQ1_S => "IQ1_S\0",
            Dtype::IQ4_NL => "IQ4_NL\0",
            Dtype::IQ3_S => "IQ3_S\0",
            Dtype::IQ2_S => "IQ2_S\0",
            Dtype::IQ4_XS => "IQ4_XS\0",
            Dtype::IQ1_M => "IQ1_M\0",
            Dtype::TQ1_0 => "TQ1_0\0",
            Dtype::TQ2_0 => "TQ2_0\0",
            Dtype::MXFP4 => "MXFP4\0",
            Dtype::NVFP4 => "NVFP4\0",
            Dtype::Q1_0 => "Q1_0\0",
        }
    }

    /// The dtype a safetensors header names, spelled exactly as the format does (never a
    /// block type: safetensors has none).
    pub fn from_header_name(name: &str) -> Option<Dtype> {
        Dtype::ALL
            .iter()
            .copied()
            .find(|d| !d.is_block() && d.name() == name)
    }

    /// Parses a dtype name case-insensitively, accepting the format's spelling, ggml's names of
    /// the block types (`q4_k`) and the common aliases (`float32`, `bfloat16`, `int64`, `half`, `float8_e4m3fn`, ...).
    pub fn from_name(name: &str) -> Option<Dtype> {
        let upper = name.trim().to_ascii_uppercase();
        if let Some(d) = Dtype::ALL.iter().copied().find(|d| d.name() == upper) {
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

    /// Size of one element in bits (4 for F4, 6 for the F6 types); 0 for a block type, whose
    /// values have no whole number of bits each ([`Dtype::block`] gives its size).
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
            _ => 0, // the block types
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

    /// Size of one element in whole bytes, or `None` for the sub-byte and block types.
    pub fn byte_size(self) -> Option<usize> {
        let bits = self.bits();
        (bits != 0 && bits.is_multiple_of(8)).then_some(bits as usize / 8)
    }

    /// Whether this is one of GGML's block-quantised types (`Q4_K`, `IQ2_XXS`, `MXFP4`, ...).
    pub fn is_block(self) -> bool {
        self.ggml_block().is_some()
    }

    /// GGML type number, values per block and bytes per block of a block type.
    fn ggml_block(self) -> Option<(u32, u64, u64)> {
        Some(match self {
            Dtype::Q4_0 => (2, 32, 18),
            Dtype::Q4_1 => (3, 32, 20),
            Dtype::Q5_0 => (6, 32, 22),
            Dtype::Q5_1 => (7, 32, 24),
            Dtype::Q8_0 => (8, 32, 34),
            Dtype::Q8_1 => (9, 32, 40),
            Dtype::Q2_K => (10, 256, 84),
            Dtype::Q3_K => (11, 256, 110),
            Dtype::Q4_K => (12, 256, 144),
            Dtype::Q5_K => (13, 256, 176),
            Dtype::Q6_K => (14, 256, 210),
            Dtype::Q8_K => (15, 256, 292),
            Dtype::IQ2_XXS => (16, 256, 66),
            Dtype::IQ2_XS => (17, 256, 74),
            Dtype::IQ3_XXS => (18, 256, 98),
            Dtype::IQ1_S => (19, 256, 50),
            Dtype::IQ4_NL => (20, 32, 18),
            Dtype::IQ3_S => (21, 256, 110),
            Dtype::IQ2_S => (22, 256, 82),
            Dtype::IQ4_XS => (23, 256, 136),
            Dtype::IQ1_M => (29, 256, 56),
            Dtype::TQ1_0 => (34, 256, 54),
            Dtype::TQ2_0 => (35, 256, 66),
            Dtype::MXFP4 => (39, 32, 17),
            Dtype::NVFP4 => (40, 64, 36),
            Dtype::Q1_0 => (41, 128, 18),
            _ => return None,
        })
    }

    /// The smallest run of values that fills whole bytes, as (values, bytes): a block type's
    /// block (`(256, 144)` for Q4_K), `(2, 1)` for F4, `(4, 3)` for the F6 types and
    /// `(1, size)` for the others.
    pub fn block(self) -> (u64, u64) {
        if let Some((_, values, bytes)) = self.ggml_block() {
            return (values, bytes);
        }
        let bits = u64::from(self.bits());
        let values = 8 / gcd(bits, 8);
        (values, values * bits / 8)
    }

    /// The GGML type number of a dtype GGUF stores (`F32` 0, `Q4_K` 12, ...), or `None`.
    pub fn ggml_type(self) -> Option<u32> {
        if let Some((number, _, _)) = self.ggml_block() {
            return Some(number);
        }
        Some(match self {
            Dtype::F32 => 0,
            Dtype::F16 => 1,
            Dtype::I8 => 24,
            Dtype::I16 => 25,
            Dtype::I32 => 26,
            Dtype::I64 => 27,
            Dtype::F64 => 28,
            Dtype::BF16 => 30,
            _ => return None,
        })
    }

    /// The dtype of a GGML type number, or `None` for a number ggml does not define.
    pub fn from_ggml_type(number: u32) -> Option<Dtype> {
        Dtype::ALL
            .into_iter()
            .find(|d| d.ggml_type() == Some(number))
    }

    /// Bytes needed for `elements` values, or `None` on overflow or when they are not a whole
    /// number of [`Dtype::block`]s (the safetensors rule for sub-byte types; whole blocks for
    /// the block types).
    pub fn bytes_for(self, elements: u64) -> Option<u64> {
        let (values, bytes) = self.block();
        elements
            .is_multiple_of(values)
            .then(|| (elements / values).checked_mul(bytes))?
    }
}

/// Greatest common divisor of two bit counts.
fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
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
        assert_eq!(Dtype::from_code(Dtype::ALL.len() as u32 + 1), None);
        assert_eq!(Dtype::from_code(u32::MAX), None);
        for d in Dtype::ALL {
            assert_eq!(Dtype::from_code(d.code()), Some(d));
        }
    }

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for d in Dtype::ALL {
            let header = (!d.is_block()).then_some(d);
            assert_eq!(Dtype::from_header_name(d.name()), header);
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
        assert_eq!(Dtype::F4.block(), (2, 1));
        assert_eq!(Dtype::F6E3M2.block(), (4, 3));
        assert_eq!(Dtype::BF16.block(), (1, 2));
    }

    #[test]
    fn block_types_are_sized_by_block_and_numbered_after_the_others() {
        assert_eq!(
            Dtype::Q4_0.code(),
            23,
            "the first block type follows F6_E3M2"
        );
        assert_eq!(Dtype::Q4_K.block(), (256, 144));
        assert_eq!(Dtype::Q4_K.bytes_for(512), Some(288));
        assert_eq!(Dtype::Q4_K.bytes_for(255), None);
        assert_eq!(Dtype::Q8_0.bytes_for(u64::MAX / 32 * 32), None, "overflow");
        assert_eq!(Dtype::Q4_K.bits(), 0);
        assert_eq!(Dtype::Q4_K.byte_size(), None);
        assert!(Dtype::IQ2_XXS.is_block() && !Dtype::F4.is_block() && !Dtype::F32.is_block());
        assert_eq!(Dtype::from_name("q4_k"), Some(Dtype::Q4_K));
        assert_eq!(Dtype::from_name("iq2_xxs"), Some(Dtype::IQ2_XXS));
        assert_eq!(
            Dtype::from_header_name("Q4_K"),
            None,
            "safetensors has no block types"
        );
        for d in Dtype::ALL {
            if let Some(n) = d.ggml_type() {
                assert_eq!(Dtype::from_ggml_type(n), Some(d), "{d}");
            }
            assert_eq!(d.is_block(), d.code() >= 23, "{d}");
        }
        assert_eq!(Dtype::from_ggml_type(12), Some(Dtype::Q4_K));
        assert_eq!(Dtype::from_ggml_type(4), None, "Q4_2 was removed from ggml");
    }
}
