//! Dequantisation: ggml's block types back to f32, bit-identical to the `gguf` package's
//! `gguf.quants.dequantize` (and so to ggml's `dequantize_row_*`, which it mirrors).
//!
//! [`TYPES`] lists every type stload can dequantise with its kernel; block sizes and bytes per
//! block come from the one ggml type table ([`Dtype::block`]). [`super::convert`] runs these
//! kernels for a block type into F32, F16 or BF16 (the last two narrowed from the exact F32). Each kernel computes every
//! value with the f32 operations of the reference in its order (`d * q`, `d * q + m`,
//! `(d * s) * q - m`, ...), with no fused multiply-add, so NaN and infinite scales give the same
//! bits too. F16 scales widen exactly, NaN payloads kept (`convert::float::f16_to_f32`).
//!
//! Kernels: `legacy` (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), `k_quants` (Q2_K to Q6_K), `iq`
//! (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS, with the lattice
//! tables of `grids`), `fp4` (MXFP4, NVFP4), `ternary` (TQ1_0, TQ2_0) and the plain
//! F32, F16 and BF16 here.

mod fp4;
mod grids;
mod iq;
mod k_quants;
mod legacy;
mod ternary;

use super::float::f16_to_f32;
use crate::dtype::Dtype;
use crate::error::{Error, Result};

/// Values per super-block of the K-quant, IQ and ternary types.
const QK_K: usize = 256;

/// One type stload dequantises.
#[derive(Debug, Clone, Copy)]
pub struct DequantType {
    /// The dtype dequantised (a block type, or F32, F16, BF16).
    pub dtype: Dtype,
    /// Dequantises whole blocks of `src` into `dst` (one f32 per value), on the calling thread.
    /// The lengths are checked by [`DequantType::dequantize`]; a kernel given others handles
    /// the whole blocks that fit both.
    pub(super) kernel: fn(src: &[u8], dst: &mut [f32]),
}

impl DequantType {
    /// ggml's name of the type (`"Q4_K"`).
    pub fn name(&self) -> &'static str {
        self.dtype.name()
    }

    /// Values per block and bytes per block.
    pub fn block(&self) -> (usize, usize) {
        let (values, bytes) = self.dtype.block();
        (values as usize, bytes as usize)
    }

    /// The number of values `bytes` of blocks hold, or an error naming the type when `bytes`
    /// is not a whole number of blocks.
    pub fn values_in(&self, bytes: usize) -> Result<usize> {
        let (values, block_bytes) = self.block();
        if !bytes.is_multiple_of(block_bytes) {
            return Err(Error::InvalidArgument(format!(
                "{}: {bytes} bytes are not whole blocks of {block_bytes} bytes",
                self.name()
            )));
        }
        Ok(bytes / block_bytes * values)
    }

    /// Dequantises the blocks of `src` into `dst`, which must hold exactly their values.
    /// Refuses a `src` that is not whole blocks and a `dst` of another length, naming the type.
    pub fn dequantize(&self, src: &[u8], dst: &mut [f32]) -> Result<()> {
        let values = self.values_in(src.len())?;
        if dst.len() != values {
            return Err(Error::InvalidArgument(format!(
                "{}: {} bytes of blocks hold {values} values, not {}",
                self.name(),
                src.len(),
                dst.len()
            )));
        }
        (self.kernel)(src, dst);
        Ok(())
    }
}

/// Every type stload dequantises, in GGML type number order: the types the `gguf` package's
/// `quants.dequantize` knows.
pub static TYPES: &[DequantType] = &[
    DequantType {
        dtype: Dtype::F32,
        kernel: f32_kernel,
    },
    DequantType {
        dtype: Dtype::F16,
        kernel: f16_kernel,
    },
    DequantType {
        dtype: Dtype::Q4_0,
        kernel: legacy::q4_0,
    },
    DequantType {
        dtype: Dtype::Q4_1,
        kernel: legacy::q4_1,
    },
    DequantType {
        dtype: Dtype::Q5_0,
        kernel: legacy::q5_0,
    },
    DequantType {
        dtype: Dtype::Q5_1,
        kernel: legacy::q5_1,
    },
    DequantType {
        dtype: Dtype::Q8_0,
        kernel: legacy::q8_0,
    },
    DequantType {
        dtype: Dtype::Q2_K,
        kernel: k_quants::q2_k,
    },
    DequantType {
        dtype: Dtype::Q3_K,
        kernel: k_quants::q3_k,
    },
    DequantType {
        dtype: Dtype::Q4_K,
        kernel: k_quants::q4_k,
    },
    DequantType {
        dtype: Dtype::Q5_K,
        kernel: k_quants::q5_k,
    },
    DequantType {
        dtype: Dtype::Q6_K,
        kernel: k_quants::q6_k,
    },
    DequantType {
        dtype: Dtype::IQ2_XXS,
        kernel: iq::iq2_xxs,
    },
    DequantType {
        dtype: Dtype::IQ2_XS,
        kernel: iq::iq2_xs,
    },
    DequantType {
        dtype: Dtype::IQ3_XXS,
        kernel: iq::iq3_xxs,
    },
    DequantType {
        dtype: Dtype::IQ1_S,
        kernel: iq::iq1_s,
    },
    DequantType {
        dtype: Dtype::IQ4_NL,
        kernel: iq::iq4_nl,
    },
    DequantType {
        dtype: Dtype::IQ3_S,
        kernel: iq::iq3_s,
    },
    DequantType {
        dtype: Dtype::IQ2_S,
        kernel: iq::iq2_s,
    },
    DequantType {
        dtype: Dtype::IQ4_XS,
        kernel: iq::iq4_xs,
    },
    DequantType {
        dtype: Dtype::IQ1_M,
        kernel: iq::iq1_m,
    },
    DequantType {
        dtype: Dtype::BF16,
        kernel: bf16_kernel,
    },
    DequantType {
        dtype: Dtype::TQ1_0,
        kernel: ternary::tq1_0,
    },
    DequantType {
        dtype: Dtype::TQ2_0,
        kernel: ternary::tq2_0,
    },
    DequantType {
        dtype: Dtype::MXFP4,
        kernel: fp4::mxfp4,
    },
    DequantType {
        dtype: Dtype::NVFP4,
        kernel: fp4::nvfp4,
    },
];

/// The dequantiser of a dtype, if stload has one.
pub fn by_dtype(dtype: Dtype) -> Option<&'static DequantType> {
    TYPES.iter().find(|d| d.dtype == dtype)
}

/// The dequantiser of a type by its ggml name, case-insensitively (`"q4_k"`).
pub fn by_name(name: &str) -> Option<&'static DequantType> {
    TYPES.iter().find(|d| d.name().eq_ignore_ascii_case(name))
}

/// Runs `f` on each block of `B` bytes of `src` and the `N` values of `dst` it becomes.
#[inline(always)]
fn each_block<const B: usize, const N: usize>(
    src: &[u8],
    dst: &mut [f32],
    f: impl Fn(&[u8; B], &mut [f32; N]),
) {
    let (blocks, _) = src.as_chunks::<B>();
    let (outs, _) = dst.as_chunks_mut::<N>();
    for (b, y) in blocks.iter().zip(outs) {
        f(b, y);
    }
}

/// The F16 at byte `at` of a block, widened exactly.
#[inline(always)]
fn f16_at(b: &[u8], at: usize) -> f32 {
    f32::from_bits(f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]])))
}

/// The little-endian u16 at byte `at`.
#[inline(always)]
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// The little-endian u32 at byte `at`.
#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn f32_kernel(src: &[u8], dst: &mut [f32]) {
    each_block::<4, 1>(src, dst, |b, y| y[0] = f32::from_le_bytes(*b));
}

fn f16_kernel(src: &[u8], dst: &mut [f32]) {
    each_block::<2, 1>(src, dst, |b, y| y[0] = f16_at(b, 0));
}

fn bf16_kernel(src: &[u8], dst: &mut [f32]) {
    each_block::<2, 1>(src, dst, |b, y| {
        y[0] = f32::from_bits(u32::from(u16::from_le_bytes(*b)) << 16);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_a_ggml_type_found_by_dtype_and_name() {
        for t in TYPES {
            assert!(t.dtype.ggml_type().is_some(), "{}", t.name());
            assert_eq!(by_dtype(t.dtype).map(|d| d.dtype), Some(t.dtype));
            assert_eq!(
                by_name(&t.name().to_lowercase()).map(|d| d.dtype),
                Some(t.dtype)
            );
        }
        assert!(
            by_dtype(Dtype::Q8_K).is_none(),
            "Q8_K has no dequantiser in ggml"
        );
    }

    #[test]
    fn lengths_that_are_not_whole_blocks_are_refused() {
        let q4k = by_name("Q4_K").unwrap();
        let e = q4k
            .dequantize(&[0; 145], &mut [0.0; 256])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Q4_K: 145 bytes are not whole blocks of 144 bytes"),
            "{e}"
        );
        let e = q4k
            .dequantize(&[0; 144], &mut [0.0; 255])
            .unwrap_err()
            .to_string();
        assert!(e.contains("hold 256 values, not 255"), "{e}");
        assert_eq!(q4k.values_in(288).unwrap(), 512);
    }

    #[test]
    fn a_q8_0_block_is_scale_times_value() {
        let mut b = vec![0u8; 34];
        b[..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
        for (i, x) in b[2..].iter_mut().enumerate() {
            *x = (i as i8 - 16) as u8;
        }
        let mut y = [0.0f32; 32];
        by_name("q8_0").unwrap().dequantize(&b, &mut y).unwrap();
        for (i, v) in y.iter().enumerate() {
            assert_eq!(*v, (i as f32 - 16.0) * 0.5);
        }
    }
}
