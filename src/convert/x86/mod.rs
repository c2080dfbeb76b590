//! x86-64 kernels, chosen at run time: AVX-512 (F/BW/VL/DQ) and AVX2, both with F16C.
//!
//! Each kernel converts a body of whole blocks with SIMD; the few elements before the first
//! 64-byte aligned output (when streaming) and after the last block go through the scalar
//! reference, so every kernel gives exactly the reference's bits (the tests check all levels).

mod avx2;
mod avx512;

use super::scalar::{self, KernelFn};
use super::Isa;
use crate::Dtype;

/// A SIMD block loop: converts whole blocks; `stream` selects cache-bypassing stores (only
/// honoured where the output is aligned for them). Unsafe: the CPU must have the features the
/// loop is compiled for.
type Body = unsafe fn(&[u8], &mut [u8], bool);

/// A SIMD kernel for one pair: the block loop, and the reference for the remaining elements.
#[derive(Clone, Copy)]
pub(crate) struct Simd {
    isa: Isa,
    block: usize,
    body: Body,
    reference: KernelFn,
    sizes: (usize, usize),
}

impl Simd {
    /// Converts `src` into `dst` (whole, matching elements).
    pub(crate) fn run(&self, src: &[u8], dst: &mut [u8], stream: bool) {
        if detected() < self.isa {
            return (self.reference)(src, dst);
        }
        let (fs, ts) = self.sizes;
        drive(
            src,
            dst,
            (fs, ts, self.block),
            stream,
            self.reference,
            |s, d, st| {
                // SAFETY: the CPU has the features of `self.isa`, which `body` is compiled for.
                unsafe { (self.body)(s, d, st) }
            },
        );
    }
}

fn has_avx512() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512dq")
        && is_x86_feature_detected!("f16c")
}

fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c")
}

/// The highest level this CPU supports.
pub(crate) fn detected() -> Isa {
    if has_avx512() {
        Isa::Avx512
    } else if has_avx2() {
        Isa::Avx2
    } else {
        Isa::Portable
    }
}

/// The SIMD kernel for a pair at `isa` (already clamped to what the CPU has), if there is one.
pub(crate) fn kernel(from: Dtype, to: Dtype, isa: Isa) -> Option<Simd> {
    let reference = scalar::kernel(from, to)?;
    let sizes = (from.byte_size()?, to.byte_size()?);
    let avx512 = || avx512::body(from, to).map(|b| (Isa::Avx512, avx512::BLOCK, b));
    let avx2 = || avx2::body(from, to).map(|b| (Isa::Avx2, avx2::BLOCK, b));
    let (isa, block, body) = match isa {
        Isa::Avx512 => avx512().or_else(avx2),
        Isa::Avx2 => avx2(),
        Isa::Scalar | Isa::Portable => None,
    }?;
    Some(Simd {
        isa,
        block,
        body,
        reference,
        sizes,
    })
}

pub(crate) use avx512::lut as lut_avx512;

/// Runs a SIMD `body` over whole blocks of `block` elements, and the `reference` over the rest.
///
/// `body` gets slices of exactly a multiple of `block` elements, and `stream` only when the
/// output slice starts 64-byte aligned.
fn drive(
    src: &[u8],
    dst: &mut [u8],
    (fs, ts, block): (usize, usize, usize),
    stream: bool,
    reference: impl Fn(&[u8], &mut [u8]),
    body: impl FnOnce(&[u8], &mut [u8], bool),
) {
    let n = src.len() / fs;
    let misalign = dst.as_ptr() as usize % 64;
    let (head, stream) = match misalign {
        _ if !stream => (0, false),
        0 => (0, true),
        // Elements never line up with 64 bytes if the output is not element-aligned.
        m if m % ts != 0 => (0, false),
        m => (((64 - m) / ts).min(n), true),
    };
    let body_n = (n - head) / block * block;
    let (src_head, src_rest) = src.split_at(head * fs);
    let (dst_head, dst_rest) = dst.split_at_mut(head * ts);
    reference(src_head, dst_head);
    let (src_body, src_tail) = src_rest.split_at(body_n * fs);
    let (dst_body, dst_tail) = dst_rest.split_at_mut(body_n * ts);
    if body_n > 0 {
        body(src_body, dst_body, stream);
    }
    reference(src_tail, dst_tail);
}

const MXCSR_DAZ: u32 = 1 << 6;
const MXCSR_EXCEPTION_MASKS: u32 = 0x3f << 7;
const MXCSR_ROUNDING: u32 = 3 << 13;
const MXCSR_FTZ: u32 = 1 << 15;

fn read_mxcsr() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: stmxcsr stores the 4-byte MXCSR register into the local variable; SSE is part of
    // the x86-64 baseline.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags)) };
    v
}

fn write_mxcsr(v: u32) {
    // SAFETY: ldmxcsr loads a valid MXCSR value (reserved bits come from a value read from the
    // register); it only changes floating-point modes of this thread.
    unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, preserves_flags)) };
}

/// Restores the caller's MXCSR when dropped, even on unwinding.
struct RestoreMxcsr(u32);

impl Drop for RestoreMxcsr {
    fn drop(&mut self) {
        write_mxcsr(self.0);
    }
}

/// Runs `f` with MXCSR in its default state (round to nearest even, subnormals neither flushed
/// nor read as zero, exceptions masked), restoring the caller's state afterwards.
pub(crate) fn with_default_mxcsr<R>(f: impl FnOnce() -> R) -> R {
    let saved = read_mxcsr();
    let wanted = (saved & !(MXCSR_DAZ | MXCSR_FTZ | MXCSR_ROUNDING)) | MXCSR_EXCEPTION_MASKS;
    if saved == wanted {
        return f();
    }
    let _restore = RestoreMxcsr(saved);
    write_mxcsr(wanted);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mxcsr_is_reset_and_restored() {
        let saved = read_mxcsr();
        write_mxcsr(saved | MXCSR_DAZ | MXCSR_FTZ | MXCSR_ROUNDING);
        let inside = with_default_mxcsr(|| {
            // 2^-149 + 0 stays subnormal only without DAZ/FTZ.
            let tiny = std::hint::black_box(f32::from_bits(1));
            (
                read_mxcsr(),
                (tiny + std::hint::black_box(0.0f32)).to_bits(),
            )
        });
        let after = read_mxcsr();
        write_mxcsr(saved);
        assert_eq!(inside.0 & (MXCSR_DAZ | MXCSR_FTZ | MXCSR_ROUNDING), 0);
        assert_eq!(inside.1, 1);
        assert_eq!(
            after & (MXCSR_DAZ | MXCSR_FTZ | MXCSR_ROUNDING),
            MXCSR_DAZ | MXCSR_FTZ | MXCSR_ROUNDING
        );
    }
}
