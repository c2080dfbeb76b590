//! Quantisation kernels for ggml's block types, bit-identical to ggml's reference quantisers
//! (`quantize_row_*_ref`, the path llama.cpp's quantizer takes without an importance matrix).
//!
//! [`TYPES`] is the one description of every type stload can quantise to: its GGML type, block
//! size, bytes per block and kernel, so the GGUF writer and reader share it. Each kernel follows
//! the reference's order of f32 operations, its rounding helper (`nearest_int`), its
//! float-to-integer casts as x86-64 performs them, and its F32→F16 rounding, with no fused
//! multiply-add (ggml's reference is built without one), so the bytes are equal.
//!
//! Kernels: [`legacy`] (Q4_0, Q4_1, Q5_0, Q5_1 in blocks of 32), [`k_quants`] (Q2_K to Q6_K in
//! super-blocks of 256), [`iq4`] (IQ4_NL, IQ4_XS), [`ternary`] (TQ1_0, TQ2_0) and [`q8_0`].

pub mod iq4;
pub mod k_quants;
pub mod legacy;
pub mod q8_0;
pub mod ternary;

use crate::gguf_format::GgmlType;

/// Values per super-block of the K-quant, IQ4_XS and ternary types.
pub(crate) const QK_K: usize = 256;

/// Panics unless `src` is a whole number of `block`-value blocks and `dst` exactly their bytes
/// (`bytes` a block): the kernels' precondition, which [`QuantType::quantize`] returns as an
/// error before calling them.
pub(crate) fn check_lengths(src: &[f32], dst: &[u8], block: usize, bytes: usize, name: &str) {
    assert!(
        src.len().is_multiple_of(block) && dst.len() == src.len() / block * bytes,
        "{name}: {} values into {} bytes",
        src.len(),
        dst.len()
    );
}

/// One quantised block type.
#[derive(Debug, Clone, Copy)]
pub struct QuantType {
    /// The GGML type number, as GGUF stores it.
    pub ggml: GgmlType,
    /// ggml's name of the type (`"Q4_K"`).
    pub name: &'static str,
    /// Values per block.
    pub block: usize,
    /// Bytes per block.
    pub block_bytes: usize,
    /// Quantises a whole number of blocks of `src` into `dst` (`block_bytes` per block), on the
    /// calling thread. Panics if the lengths do not match; [`QuantType::quantize`] checks them.
    pub kernel: fn(src: &[f32], dst: &mut [u8]),
}

fn q8_0_kernel(src: &[f32], dst: &mut [u8]) {
    q8_0::quantize(src, dst, 1);
}

/// Every type stload quantises to, in GGML type number order.
pub static TYPES: &[QuantType] = &[
    QuantType {
        ggml: GgmlType(2),
        name: "Q4_0",
        block: legacy::QK,
        block_bytes: legacy::Q4_0_BYTES,
        kernel: legacy::quantize_q4_0,
    },
    QuantType {
        ggml: GgmlType(3),
        name: "Q4_1",
        block: legacy::QK,
        block_bytes: legacy::Q4_1_BYTES,
        kernel: legacy::quantize_q4_1,
    },
    QuantType {
        ggml: GgmlType(6),
        name: "Q5_0",
        block: legacy::QK,
        block_bytes: legacy::Q5_0_BYTES,
        kernel: legacy::quantize_q5_0,
    },
    QuantType {
        ggml: GgmlType(7),
        name: "Q5_1",
        block: legacy::QK,
        block_bytes: legacy::Q5_1_BYTES,
        kernel: legacy::quantize_q5_1,
    },
    QuantType {
        ggml: GgmlType::Q8_0,
        name: "Q8_0",
        block: q8_0::BLOCK,
        block_bytes: q8_0::BLOCK_BYTES,
        kernel: q8_0_kernel,
    },
    QuantType {
        ggml: GgmlType(10),
        name: "Q2_K",
        block: QK_K,
        block_bytes: k_quants::Q2_K_BYTES,
        kernel: k_quants::quantize_q2_k,
    },
    QuantType {
        ggml: GgmlType(11),
        name: "Q3_K",
        block: QK_K,
        block_bytes: k_quants::Q3_K_BYTES,
        kernel: k_quants::quantize_q3_k,
    },
    QuantType {
        ggml: GgmlType(12),
        name: "Q4_K",
        block: QK_K,
        block_bytes: k_quants::Q4_K_BYTES,
        kernel: k_quants::quantize_q4_k,
    },
    QuantType {
        ggml: GgmlType(13),
        name: "Q5_K",
        block: QK_K,
        block_bytes: k_quants::Q5_K_BYTES,
        kernel: k_quants::quantize_q5_k,
    },
    QuantType {
        ggml: GgmlType(14),
        name: "Q6_K",
        block: QK_K,
        block_bytes: k_quants::Q6_K_BYTES,
        kernel: k_quants::quantize_q6_k,
    },
    QuantType {
        ggml: GgmlType(20),
        name: "IQ4_NL",
        block: iq4::QK4_NL,
        block_bytes: iq4::IQ4_NL_BYTES,
        kernel: iq4::quantize_iq4_nl,
    },
    QuantType {
        ggml: GgmlType(23),
        name: "IQ4_XS",
        block: QK_K,
        block_bytes: iq4::IQ4_XS_BYTES,
        kernel: iq4::quantize_iq4_xs,
    },
    QuantType {
        ggml: GgmlType(34),
        name: "TQ1_0",
        block: QK_K,
        block_bytes: ternary::TQ1_0_BYTES,
        kernel: ternary::quantize_tq1_0,
    },
    QuantType {
        ggml: GgmlType(35),
        name: "TQ2_0",
        block: QK_K,
        block_bytes: ternary::TQ2_0_BYTES,
        kernel: ternary::quantize_tq2_0,
    },
];

/// The quantised type with GGML number `t`, if stload has its kernel.
pub fn by_type(t: GgmlType) -> Option<&'static QuantType> {
    TYPES.iter().find(|q| q.ggml == t)
}

/// The quantised type named `name` (ggml's name, any case), if stload has its kernel.
pub fn by_name(name: &str) -> Option<&'static QuantType> {
    TYPES.iter().find(|q| q.name.eq_ignore_ascii_case(name))
}

/// Why [`QuantType::quantize`] refused its arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    /// The number of values is not a multiple of the block size.
    #[error("{name}: {values} values are not a multiple of the block size {block}")]
    PartialBlock {
        /// The type's name.
        name: &'static str,
        /// Values given.
        values: usize,
        /// The type's block size.
        block: usize,
    },
    /// The output is not exactly one block's bytes per block of input.
    #[error("{name}: {values} values need {needed} bytes, the output has {given}")]
    OutputSize {
        /// The type's name.
        name: &'static str,
        /// Values given.
        values: usize,
        /// Bytes the blocks take.
        needed: usize,
        /// Bytes of the output.
        given: usize,
    },
}

impl QuantType {
    /// Bytes that `values` values take in this type, or `None` when `values` is not a whole
    /// number of blocks.
    pub fn bytes_for(&self, values: usize) -> Option<usize> {
        if values.is_multiple_of(self.block) {
            (values / self.block).checked_mul(self.block_bytes)
        } else {
            None
        }
    }

    /// Refuses `values` values into `given` bytes unless they are whole blocks and exactly
    /// their bytes.
    fn check(&self, values: usize, given: usize) -> Result<(), QuantError> {
        let needed = self.bytes_for(values).ok_or(QuantError::PartialBlock {
            name: self.name,
            values,
            block: self.block,
        })?;
        if given != needed {
            return Err(QuantError::OutputSize {
                name: self.name,
                values,
                needed,
                given,
            });
        }
        Ok(())
    }

    /// Quantises `src` (a whole number of blocks) into `dst` (exactly its bytes) on the calling
    /// thread.
    pub fn quantize(&self, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
        self.check(src.len(), dst.len())?;
        (self.kernel)(src, dst);
        Ok(())
    }

    /// [`QuantType::quantize`] on up to `threads` threads, each taking runs of whole blocks
    /// (every block is quantised on its own, so the bytes do not depend on the split).
    pub fn quantize_threads(
        &self,
        src: &[f32],
        dst: &mut [u8],
        threads: usize,
    ) -> Result<(), QuantError> {
        let blocks = src.len() / self.block;
        if threads <= 1 || blocks < 2 * PIECE_BLOCKS {
            return self.quantize(src, dst);
        }
        self.check(src.len(), dst.len())?;
        let per = blocks.div_ceil(threads * 4).max(PIECE_BLOCKS);
        let work = src
            .chunks(per * self.block)
            .zip(dst.chunks_mut(per * self.block_bytes));
        crate::parallel::try_for_each(work, threads, |(s, d)| self.quantize(s, d))
    }
}

/// Fewest blocks a thread of [`QuantType::quantize_threads`] takes at a time.
const PIECE_BLOCKS: usize = 64;

/// ggml's `nearest_int`: rounds to nearest, ties to even, by adding 1.5 × 2^23 and reading the
/// low mantissa bits. Out of ±2^22 (and for NaN) the result is whatever those bits give, as in
/// the reference, which asserts the range only in debug builds.
#[inline]
pub(crate) fn nearest_int(f: f32) -> i32 {
    let v = f + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// A C float-to-integer conversion as x86-64 performs it (`cvttss2si`): truncation toward
/// zero, and `i32::MIN` for NaN and values out of range (C leaves those undefined; Rust's `as`
/// would saturate instead).
#[inline]
pub(crate) fn cvtt_i32(f: f32) -> i32 {
    if f.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&f) {
        i32::MIN
    } else {
        f as i32
    }
}

/// ggml's scalar F32→F16 conversion (`ggml_compute_fp32_to_fp16`): round to nearest even,
/// overflow to infinity, every NaN to the quiet NaN 0x7e00 with the input's sign.
#[inline]
pub(crate) fn fp32_to_fp16(f: f32) -> u16 {
    let scale_to_inf = f32::from_bits(0x7780_0000); // 2^112
    let scale_to_zero = f32::from_bits(0x0880_0000); // 2^-110
    let mut base = (f.abs() * scale_to_inf) * scale_to_zero;
    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    let bias = (shl1_w & 0xff00_0000).max(0x7100_0000);
    base += f32::from_bits((bias >> 1) + 0x0780_0000);
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7c00;
    let mantissa_bits = bits & 0x0000_0fff;
    let nonsign = exp_bits + mantissa_bits;
    ((sign >> 16)
        | if shl1_w > 0xff00_0000 {
            0x7e00
        } else {
            nonsign
        }) as u16
}

/// F16 bits to f32, exactly.
#[inline]
pub(crate) fn fp16_to_fp32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

/// Rounds `f` to F16 as ggml stores a scale and writes its two little-endian bytes to `out`.
#[inline]
pub(crate) fn put_f16(out: &mut [u8], f: f32) {
    out[..2].copy_from_slice(&fp32_to_fp16(f).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_ggml_type_table() {
        for t in TYPES {
            assert_eq!(t.ggml.name(), Some(t.name), "{}", t.name);
            assert_eq!(
                t.ggml.block(),
                Some((t.block as u64, t.block_bytes as u64)),
                "{}",
                t.name
            );
            assert!(std::ptr::eq(by_type(t.ggml).unwrap(), t));
            assert!(std::ptr::eq(by_name(&t.name.to_lowercase()).unwrap(), t));
        }
        assert!(by_name("iq1_s").is_none());
    }

    #[test]
    fn lengths_are_checked() {
        let t = by_name("q4_k").unwrap();
        assert_eq!(t.bytes_for(512), Some(288));
        assert_eq!(t.bytes_for(100), None);
        let mut out = vec![0u8; 144];
        assert!(matches!(
            t.quantize(&[0.0; 100], &mut out),
            Err(QuantError::PartialBlock { .. })
        ));
        assert!(matches!(
            t.quantize(&[0.0; 512], &mut out),
            Err(QuantError::OutputSize { needed: 288, .. })
        ));
        assert_eq!(t.quantize(&[0.0; 256], &mut out), Ok(()));
    }

    #[test]
    fn every_kernel_fills_its_blocks() {
        let x: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01)
            .collect();
        for t in TYPES {
            let mut out = vec![0xAAu8; t.bytes_for(x.len()).unwrap()];
            t.quantize(&x, &mut out).unwrap();
            // Two equal halves give two equal blocks.
            let mut y = x[..256].to_vec();
            y.extend_from_slice(&x[..256]);
            let mut twice = vec![0u8; out.len()];
            t.quantize(&y, &mut twice).unwrap();
            assert_eq!(twice[..out.len() / 2], twice[out.len() / 2..], "{}", t.name);
        }
    }

    #[test]
    fn helpers_round_like_ggml() {
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(3.5), 4);
        assert_eq!(nearest_int(-2.5), -2);
        assert_eq!(nearest_int(-0.4), 0);
        assert_eq!(cvtt_i32(f32::NAN), i32::MIN);
        assert_eq!(cvtt_i32(-3.9), -3);
        assert_eq!(cvtt_i32(3e9), i32::MIN);
        for f in [
            0.0f32,
            -0.0,
            1.0,
            65504.0,
            65520.0,
            1e-8,
            6e-5,
            -2.5e-6,
            f32::INFINITY,
        ] {
            assert_eq!(fp32_to_fp16(f), half::f16::from_f32(f).to_bits(), "{f}");
        }
        assert_eq!(fp32_to_fp16(f32::NAN), 0x7e00);
        assert_eq!(fp32_to_fp16(-f32::NAN), 0xfe00);
    }
}
