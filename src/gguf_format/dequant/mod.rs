//! Dequantisation: ggml's block types back to f32, bit-identical to the `gguf` package's
//! `gguf.quants.dequantize` (and so to ggml's `dequantize_row_*`, which it mirrors).
//!
//! [`TYPES`] lists every type stload can dequantise with its kernel; block sizes and bytes per
//! block come from the one ggml type table ([`GgmlType::block`]). Each kernel computes every
//! value with the f32 operations of the reference in its order (`d * q`, `d * q + m`,
//! `(d * s) * q - m`, ...), with no fused multiply-add, so NaN and infinite scales give the same
//! bits too. F16 scales widen exactly, NaN payloads kept (`convert::float::f16_to_f32`).
//!
//! Kernels: [`legacy`] (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), [`k_quants`] (Q2_K to Q6_K), [`iq`]
//! (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ4_NL, IQ4_XS, with the lattice
//! tables of `grids`), [`fp4`] (MXFP4, NVFP4), [`ternary`] (TQ1_0, TQ2_0) and the plain
//! F32, F16 and BF16 here.

mod fp4;
mod grids;
mod iq;
mod k_quants;
mod legacy;
mod ternary;

use super::GgmlType;
use crate::convert::float::f16_to_f32;
use crate::error::{Error, Result};

/// Values per super-block of the K-quant, IQ and ternary types.
const QK_K: usize = 256;

/// One type stload dequantises.
#[derive(Debug, Clone, Copy)]
pub struct DequantType {
    /// The GGML type number, as GGUF stores it.
    pub ggml: GgmlType,
    /// Dequantises whole blocks of `src` into `dst` (one f32 per value), on the calling thread.
    /// The lengths are checked by [`DequantType::dequantize`]; a kernel given others handles
    /// the whole blocks that fit both.
    kernel: fn(src: &[u8], dst: &mut [f32]),
}

impl DequantType {
    /// ggml's name of the type (`"Q4_K"`).
    pub fn name(&self) -> &'static str {
        self.ggml.name().unwrap_or("?")
    }

    /// Values per block and bytes per block.
    pub fn block(&self) -> (usize, usize) {
        let (values, bytes) = self.ggml.block().unwrap_or((1, 1));
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
        ggml: GgmlType::F32,
        kernel: f32_kernel,
    },
    DequantType {
        ggml: GgmlType::F16,
        kernel: f16_kernel,
    },
    DequantType {
        ggml: GgmlType(2),
        kernel: legacy::q4_0,
    },
    DequantType {
        ggml: GgmlType(3),
        kernel: legacy::q4_1,
    },
    DequantType {
        ggml: GgmlType(6),
        kernel: legacy::q5_0,
    },
    DequantType {
        ggml: GgmlType(7),
        kernel: legacy::q5_1,
    },
    DequantType {
        ggml: GgmlType::Q8_0,
        kernel: legacy::q8_0,
    },
    DequantType {
        ggml: GgmlType(10),
        kernel: k_quants::q2_k,
    },
    DequantType {
        ggml: GgmlType(11),
        kernel: k_quants::q3_k,
    },
    DequantType {
        ggml: GgmlType(12),
        kernel: k_quants::q4_k,
    },
    DequantType {
        ggml: GgmlType(13),
        kernel: k_quants::q5_k,
    },
    DequantType {
        ggml: GgmlType(14),
        kernel: k_quants::q6_k,
    },
    DequantType {
        ggml: GgmlType(16),
        kernel: iq::iq2_xxs,
    },
    DequantType {
        ggml: GgmlType(17),
        kernel: iq::iq2_xs,
    },
    DequantType {
        ggml: GgmlType(18),
        kernel: iq::iq3_xxs,
    },
    DequantType {
        ggml: GgmlType(19),
        kernel: iq::iq1_s,
    },
    DequantType {
        ggml: GgmlType(20),
        kernel: iq::iq4_nl,
    },
    DequantType {
        ggml: GgmlType(21),
        kernel: iq::iq3_s,
    },
    DequantType {
        ggml: GgmlType(22),
        kernel: iq::iq2_s,
    },
    DequantType {
        ggml: GgmlType(23),
        kernel: iq::iq4_xs,
    },
    DequantType {
        ggml: GgmlType(29),
        kernel: iq::iq1_m,
    },
    DequantType {
        ggml: GgmlType::BF16,
        kernel: bf16_kernel,
    },
    DequantType {
        ggml: GgmlType(34),
        kernel: ternary::tq1_0,
    },
    DequantType {
        ggml: GgmlType(35),
        kernel: ternary::tq2_0,
    },
    DequantType {
        ggml: GgmlType(39),
        kernel: fp4::mxfp4,
    },
    DequantType {
        ggml: GgmlType(40),
        kernel: fp4::nvfp4,
    },
];

/// The dequantiser of a GGML type, if stload has one.
pub fn by_ggml(t: GgmlType) -> Option<&'static DequantType> {
    TYPES.iter().find(|d| d.ggml == t)
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
    fn table_sizes_come_from_the_ggml_table() {
        for t in TYPES {
            assert!(t.ggml.block().is_some(), "{}", t.name());
            assert_eq!(by_ggml(t.ggml).map(|d| d.ggml), Some(t.ggml));
            assert_eq!(
                by_name(&t.name().to_lowercase()).map(|d| d.ggml),
                Some(t.ggml)
            );
        }
        assert!(
            by_ggml(GgmlType(15)).is_none(),
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
