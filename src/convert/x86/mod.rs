//! x86-64 kernels, chosen at run time: AVX-512 (F/BW/VL/DQ, and AVX512_BF16 where present) and
//! AVX2, both with F16C.
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

fn has_avx512_bf16() -> bool {
    has_avx512() && is_x86_feature_detected!("avx512bf16")
}

fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c")
}

/// The highest level this CPU supports.
pub(crate) fn detected() -> Isa {
    if has_avx512_bf16() {
        Isa::Avx512Bf16
    } else if has_avx512() {
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
    let bf16 = || avx512::body_bf16(from, to).map(|b| (Isa::Avx512Bf16, avx512::BLOCK, b));
    let avx512 = || avx512::body(from, to).map(|b| (Isa::Avx512, avx512::BLOCK, b));
    let avx2 = || avx2::body(from, to).map(|b| (Isa::Avx2, avx2::BLOCK, b));
    let (isa, block, body) = match isa {
        Isa::Avx512Bf16 => bf16().or_else(avx512).or_else(avx2),
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

/// How far ahead of its loads a narrowing loop asks for input, in bytes. One thread's demand
/// loads alone do not keep enough cache-line reads in flight to reach the memory bandwidth
/// a copy gets, and a narrowing loop spends more instructions per line than a copy, which
/// leaves fewer lines in flight; a prefetch into L2 (not L1, whose fill buffers the loads and
/// the streaming stores need) this far ahead hides the latency. Measured: 2 to 16 KiB are
/// all close; 4 KiB is one page, which the hardware prefetchers do not cross.
const PREFETCH_AHEAD: usize = 4096;

/// Asks for the cache line [`PREFETCH_AHEAD`] bytes past the start of `s` to be brought into
/// L2. The address may lie past the end of `s`, even of the allocation: a prefetch is only a
/// hint and never faults.
#[inline(always)]
fn prefetch_ahead(s: &[u8]) {
    let p = s.as_ptr().wrapping_add(PREFETCH_AHEAD);
    // SAFETY: prefetcht1 reads no architectural state and never faults, whatever the address;
    // SSE is part of the x86-64 baseline.
    unsafe {
        core::arch::asm!("prefetcht1 [{}]", in(reg) p, options(nostack, preserves_flags, readonly))
    };
}

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
    use crate::buffer::AlignedBuf;

    /// F32 inputs for the narrowing kernels' block logic: rounding edges (halfway cases either
    /// way, overflow into infinity, the F16 and BF16 subnormal boundaries), then blocks of 32
    /// such values with one NaN or subnormal at each position, then random bit patterns.
    fn f32_edge_blocks() -> Vec<u8> {
        let edges: [u32; 24] = [
            0x3f80_8000, // halfway between two BF16, to the even one below
            0x3f81_8000, // halfway, to the even one above
            0x3f80_7fff,
            0x3f80_8001,
            0x7f7f_ffff, // rounds to infinity in BF16
            0x7f7f_7fff,
            0xff7f_8000,
            0x0080_0000, // smallest normal F32
            0x8080_0000,
            0x7f80_0000,
            0xff80_0000,
            0x0000_0000,
            0x8000_0000,
            0x477f_f000, // 65520: rounds to infinity in F16
            0x477f_efff,
            0x3380_0000, // 2^-24, smallest F16 subnormal
            0x3300_0000, // 2^-25, halfway to zero
            0x3300_0001,
            0x3880_0000, // 2^-14, smallest F16 normal
            0x387f_e000,
            0x3d4c_cccd, // 0.05
            0xbd4c_cccd,
            0x4049_0fdb, // pi
            0x1234_5678,
        ];
        let specials: [u32; 6] = [
            0x0000_0001, // smallest subnormal
            0x807f_ffff, // largest negative subnormal
            0x0040_8000,
            0x7f80_0001, // signalling NaN
            0xffc0_0000,
            0x7fff_ffff,
        ];
        let mut words: Vec<u32> = (0..64).map(|i| edges[i % edges.len()]).collect();
        for &sp in &specials {
            for pos in 0..32 {
                let block = (0..32).map(|i| if i == pos { sp } else { edges[(i + pos) % 24] });
                words.extend(block);
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        words.extend((0..1 << 16).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 16) as u32
        }));
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    /// Every BF16 pattern once, scattered (an odd multiplier permutes 2^16) so that NaNs stand
    /// alone in otherwise clean blocks.
    fn bf16_all_scattered() -> Vec<u8> {
        (0..1u32 << 16)
            .flat_map(|i| (i.wrapping_mul(40_503) as u16).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_level_of_the_narrowing_kernels_matches_the_reference() {
        let f32_input = f32_edge_blocks();
        let bf16_input = bf16_all_scattered();
        let pairs = [
            (Dtype::F32, Dtype::BF16, &f32_input),
            (Dtype::F32, Dtype::F16, &f32_input),
            (Dtype::BF16, Dtype::F16, &bf16_input),
        ];
        let mut checked = 0;
        for isa in [Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16] {
            if isa > detected() {
                continue;
            }
            for &(from, to, input) in &pairs {
                let k = kernel(from, to, isa).expect("a SIMD kernel");
                let reference = scalar::kernel(from, to).expect("a reference");
                let n = input.len() / from.byte_size().unwrap_or(1);
                let mut want = vec![0u8; n * to.byte_size().unwrap_or(1)];
                reference(input, &mut want);
                // Streaming stores into an aligned buffer, and plain ones one byte off.
                let mut aligned = AlignedBuf::new_uninit(want.len()).expect("buffer");
                k.run(input, aligned.as_mut_slice(), true);
                assert!(
                    aligned.as_slice() == want,
                    "{from}->{to} at {isa:?}, streaming"
                );
                let mut off = vec![0u8; want.len() + 1];
                k.run(input, &mut off[1..], false);
                assert!(off[1..] == want, "{from}->{to} at {isa:?}, unaligned");
                checked += 1;
            }
        }
        // This test is meant for x86-64 hosts with at least AVX2.
        assert!(checked >= 3, "no SIMD level available");
    }

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
