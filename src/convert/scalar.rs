//! The scalar reference: one element at a time, any target, built from [`super::float`].
//!
//! Every source type says how it widens to F32 and, where the rule differs from going through
//! F32, to the other targets; the loops are generic over source and target.

use super::float::{self, F8};
use crate::Dtype;

/// A kernel converting whole elements from one byte slice into another of matching length.
pub(crate) type KernelFn = fn(&[u8], &mut [u8]);

/// A source element type.
pub(crate) trait Element: Copy {
    /// Bytes per element.
    const SIZE: usize;
    /// Whether conversion into FP8 is supported from this type.
    const TO_F8: bool = false;
    /// Reads one little-endian element from exactly `SIZE` bytes.
    fn read(b: &[u8]) -> Self;
    /// The value as F32 bits.
    fn to_f32(self) -> u32;
    /// The value as F64 bits.
    fn to_f64(self) -> u64 {
        float::f32_to_f64(self.to_f32())
    }
    /// The value as F16 bits.
    fn to_f16(self) -> u16 {
        float::f32_to_f16(self.to_f32())
    }
    /// The value as BF16 bits.
    fn to_bf16(self) -> u16 {
        float::f32_to_bf16(self.to_f32())
    }
    /// The value in an FP8 format.
    fn to_f8(self, f: &float::FloatLayout) -> u8 {
        float::f32_to_f8(f, self.to_f32())
    }
}

/// Copies `N` bytes out of a slice the caller cut to exactly that length.
fn bytes<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(b);
    a
}

#[derive(Clone, Copy)]
pub(crate) struct Bool(u8);
impl Element for Bool {
    const SIZE: usize = 1;
    fn read(b: &[u8]) -> Self {
        Bool(b[0])
    }
    fn to_f32(self) -> u32 {
        // numpy reads any nonzero byte as true.
        if self.0 != 0 {
            1f32.to_bits()
        } else {
            0
        }
    }
}

/// Integers: numpy casts with the C conversion (round to nearest even) into F32 and F64, and
/// `ml_dtypes` goes through F32 into BF16 (rounding twice). Into F16 going through F32 is exact:
/// every integer that is finite in F16 is exact in F32.
macro_rules! int_source {
    ($name:ident, $t:ty) => {
        #[derive(Clone, Copy)]
        pub(crate) struct $name($t);
        impl Element for $name {
            const SIZE: usize = std::mem::size_of::<$t>();
            fn read(b: &[u8]) -> Self {
                $name(<$t>::from_le_bytes(bytes(b)))
            }
            fn to_f32(self) -> u32 {
                (self.0 as f32).to_bits()
            }
            fn to_f64(self) -> u64 {
                (self.0 as f64).to_bits()
            }
        }
    };
}
int_source!(U8, u8);
int_source!(I8, i8);
int_source!(I16, i16);
int_source!(U16, u16);
int_source!(I32, i32);
int_source!(U32, u32);
int_source!(I64, i64);
int_source!(U64, u64);

#[derive(Clone, Copy)]
pub(crate) struct F16(u16);
impl Element for F16 {
    const SIZE: usize = 2;
    const TO_F8: bool = true;
    fn read(b: &[u8]) -> Self {
        F16(u16::from_le_bytes(bytes(b)))
    }
    fn to_f32(self) -> u32 {
        float::f16_to_f32(self.0)
    }
    fn to_f64(self) -> u64 {
        float::f16_to_f64(self.0)
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Bf16(u16);
impl Element for Bf16 {
    const SIZE: usize = 2;
    const TO_F8: bool = true;
    fn read(b: &[u8]) -> Self {
        Bf16(u16::from_le_bytes(bytes(b)))
    }
    fn to_f32(self) -> u32 {
        u32::from(self.0) << 16
    }
    fn to_f16(self) -> u16 {
        float::bf16_to_f16(self.0)
    }
}

#[derive(Clone, Copy)]
pub(crate) struct F32(u32);
impl Element for F32 {
    const SIZE: usize = 4;
    const TO_F8: bool = true;
    fn read(b: &[u8]) -> Self {
        F32(u32::from_le_bytes(bytes(b)))
    }
    fn to_f32(self) -> u32 {
        self.0
    }
}

/// F64 into F16 rounds once (numpy); into BF16 it goes through F32 (`ml_dtypes`).
#[derive(Clone, Copy)]
pub(crate) struct F64(u64);
impl Element for F64 {
    const SIZE: usize = 8;
    fn read(b: &[u8]) -> Self {
        F64(u64::from_le_bytes(bytes(b)))
    }
    fn to_f32(self) -> u32 {
        float::f64_to_f32(self.0)
    }
    fn to_f64(self) -> u64 {
        self.0
    }
    fn to_f16(self) -> u16 {
        float::f64_to_f16(self.0)
    }
}

/// One FP8 flavour, chosen by the const parameter (an [`F8`] as u8).
#[derive(Clone, Copy)]
pub(crate) struct Fp8<const K: u8>(u8);
const E4M3: u8 = 0;
const E5M2: u8 = 1;
const E8M0: u8 = 2;
const E4M3FNUZ: u8 = 3;
const E5M2FNUZ: u8 = 4;
impl<const K: u8> Element for Fp8<K> {
    const SIZE: usize = 1;
    fn read(b: &[u8]) -> Self {
        Fp8(b[0])
    }
    fn to_f32(self) -> u32 {
        let kind = match K {
            E4M3 => F8::E4M3,
            E5M2 => F8::E5M2,
            E8M0 => F8::E8M0,
            E4M3FNUZ => F8::E4M3Fnuz,
            _ => F8::E5M2Fnuz,
        };
        float::f8_to_f32(kind, self.0)
    }
}

/// A target element type.
pub(crate) trait Target {
    /// Bytes per element.
    const SIZE: usize;
    /// Writes `s` converted into exactly `SIZE` bytes, little-endian.
    fn write<S: Element>(s: S, out: &mut [u8]);
}

pub(crate) struct ToF32;
impl Target for ToF32 {
    const SIZE: usize = 4;
    fn write<S: Element>(s: S, out: &mut [u8]) {
        out.copy_from_slice(&s.to_f32().to_le_bytes());
    }
}

pub(crate) struct ToF64;
impl Target for ToF64 {
    const SIZE: usize = 8;
    fn write<S: Element>(s: S, out: &mut [u8]) {
        out.copy_from_slice(&s.to_f64().to_le_bytes());
    }
}

pub(crate) struct ToF16;
impl Target for ToF16 {
    const SIZE: usize = 2;
    fn write<S: Element>(s: S, out: &mut [u8]) {
        out.copy_from_slice(&s.to_f16().to_le_bytes());
    }
}

pub(crate) struct ToBf16;
impl Target for ToBf16 {
    const SIZE: usize = 2;
    fn write<S: Element>(s: S, out: &mut [u8]) {
        out.copy_from_slice(&s.to_bf16().to_le_bytes());
    }
}

pub(crate) struct ToE4m3;
impl Target for ToE4m3 {
    const SIZE: usize = 1;
    fn write<S: Element>(s: S, out: &mut [u8]) {
        out[0] = s.to_f8(&float::E4M3);
    }
}

pub(crate) struct ToE5m2;
impl Target for ToE5m2 {
    const SIZE: usize = 1;
    fn write<S: Element>(s: S, out: &mut [u8]) {
        out[0] = s.to_f8(&float::E5M2);
    }
}

/// Converts every element of `src` into `dst`; the caller has checked the lengths.
pub(crate) fn run<S: Element, T: Target>(src: &[u8], dst: &mut [u8]) {
    for (i, o) in src.chunks_exact(S::SIZE).zip(dst.chunks_exact_mut(T::SIZE)) {
        T::write(S::read(i), o);
    }
}

fn for_source<S: Element>(to: Dtype) -> Option<KernelFn> {
    Some(match to {
        Dtype::F32 => run::<S, ToF32>,
        Dtype::F64 => run::<S, ToF64>,
        Dtype::F16 => run::<S, ToF16>,
        Dtype::BF16 => run::<S, ToBf16>,
        Dtype::F8E4M3 if S::TO_F8 => run::<S, ToE4m3>,
        Dtype::F8E5M2 if S::TO_F8 => run::<S, ToE5m2>,
        _ => return None,
    })
}

/// The reference kernel for a pair of different dtypes, if the pair is supported.
pub(crate) fn kernel(from: Dtype, to: Dtype) -> Option<KernelFn> {
    match from {
        Dtype::Bool => for_source::<Bool>(to),
        Dtype::U8 => for_source::<U8>(to),
        Dtype::I8 => for_source::<I8>(to),
        Dtype::I16 => for_source::<I16>(to),
        Dtype::U16 => for_source::<U16>(to),
        Dtype::I32 => for_source::<I32>(to),
        Dtype::U32 => for_source::<U32>(to),
        Dtype::I64 => for_source::<I64>(to),
        Dtype::U64 => for_source::<U64>(to),
        Dtype::F16 => for_source::<F16>(to),
        Dtype::BF16 => for_source::<Bf16>(to),
        Dtype::F32 => for_source::<F32>(to),
        Dtype::F64 => for_source::<F64>(to),
        Dtype::F8E4M3 => for_source::<Fp8<E4M3>>(to),
        Dtype::F8E5M2 => for_source::<Fp8<E5M2>>(to),
        Dtype::F8E8M0 => for_source::<Fp8<E8M0>>(to),
        Dtype::F8E4M3Fnuz => for_source::<Fp8<E4M3FNUZ>>(to),
        Dtype::F8E5M2Fnuz => for_source::<Fp8<E5M2FNUZ>>(to),
        // C64, the sub-byte types and the block types (gguf::dequant dequantises those).
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_like_numpy() {
        let conv = |from: Dtype, to: Dtype, src: &[u8], n: usize| {
            let mut out = vec![0u8; n];
            if let Some(k) = kernel(from, to) {
                k(src, &mut out);
            }
            out
        };
        // 2^24 + 2^16 + 1 rounds to F32 first, then ties to even in BF16 (ml_dtypes).
        let v = (1i64 << 24) + (1 << 16) + 1;
        assert_eq!(
            conv(Dtype::I64, Dtype::BF16, &v.to_le_bytes(), 2),
            0x4b80u16.to_le_bytes()
        );
        // I64 → F32 rounds once, not through F64.
        let v = (1i64 << 62) + (1 << 38) + 1;
        assert_eq!(
            conv(Dtype::I64, Dtype::F32, &v.to_le_bytes(), 4),
            0x5e80_0001u32.to_le_bytes()
        );
        assert_eq!(
            conv(Dtype::U16, Dtype::F16, &65535u16.to_le_bytes(), 2),
            0x7c00u16.to_le_bytes()
        );
        assert_eq!(conv(Dtype::Bool, Dtype::F32, &[2], 4), 1f32.to_le_bytes());
    }

    #[test]
    fn fp8_targets_only_from_f32_f16_bf16() {
        assert!(kernel(Dtype::F32, Dtype::F8E4M3).is_some());
        assert!(kernel(Dtype::BF16, Dtype::F8E5M2).is_some());
        assert!(kernel(Dtype::F64, Dtype::F8E4M3).is_none());
        assert!(kernel(Dtype::F32, Dtype::F8E8M0).is_none());
        assert!(kernel(Dtype::F32, Dtype::Bool).is_none());
    }
}
