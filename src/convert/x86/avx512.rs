//! AVX-512 (F, BW, VL, DQ) + F16C kernels, 32 elements per block, and with AVX512_BF16 one more
//! kernel for F32 → BF16.
//!
//! The hardware conversions are used where they are exact (`vcvtph2ps`, and `vcvtps2ph` with
//! round-to-nearest-even), with a fix-up only in blocks that hold a NaN, since numpy does not set
//! the quiet bit the hardware sets. AVX512_BF16's `vcvtne2ps2bf16` rounds to nearest even too
//! but reads subnormal inputs as zero and keeps NaN payloads, where ml_dtypes keeps subnormals
//! and gives one NaN: blocks holding either go through the integer rounding, which every block
//! uses on CPUs without AVX512_BF16. FP8 narrowing uses integer rounding.
//!
//! The narrowing loops (F32 → BF16 / F16, BF16 → F16) prefetch their input into L2 ahead of the
//! loads (see `PREFETCH_AHEAD`), and use few instructions per block: a single permute gathers
//! 32 results into one register, and the NaN checks are one compare per block.

use std::arch::x86_64::*;

use super::super::float::{self, FloatLayout};
use super::super::lut::{lookup, Table};
use super::avx2::{fence, load256, store256};
use super::{drive, has_avx512, prefetch_ahead, Body};
use crate::Dtype;

/// Elements per SIMD block.
pub(super) const BLOCK: usize = 32;

/// The AVX-512 block loop for a pair, if there is one.
pub(super) fn body(from: Dtype, to: Dtype) -> Option<Body> {
    Some(match (from, to) {
        (Dtype::BF16, Dtype::F32) => bf16_f32_body,
        (Dtype::F16, Dtype::F32) => f16_f32_body,
        (Dtype::F32, Dtype::BF16) => f32_bf16_body,
        (Dtype::F32, Dtype::F16) => f32_f16_body,
        (Dtype::F32, Dtype::F8E4M3) => f32_e4m3_body,
        (Dtype::F32, Dtype::F8E5M2) => f32_e5m2_body,
        (Dtype::F16, Dtype::F8E4M3) => f16_e4m3_body,
        (Dtype::F16, Dtype::F8E5M2) => f16_e5m2_body,
        (Dtype::BF16, Dtype::F8E4M3) => bf16_e4m3_body,
        (Dtype::BF16, Dtype::F8E5M2) => bf16_e5m2_body,
        (Dtype::F32, Dtype::F64) => f32_f64_body,
        (Dtype::F64, Dtype::F32) => f64_f32_body,
        (Dtype::F64, Dtype::F16) => f64_f16_body,
        (Dtype::BF16, Dtype::F16) => bf16_f16_body,
        (Dtype::F16, Dtype::F64) => f16_f64_body,
        (Dtype::I32, Dtype::F32) => i32_f32_body,
        (Dtype::U32, Dtype::F32) => u32_f32_body,
        (Dtype::I64, Dtype::F32) => i64_f32_body,
        (Dtype::U64, Dtype::F32) => u64_f32_body,
        (Dtype::I32, Dtype::F64) => i32_f64_body,
        (Dtype::U32, Dtype::F64) => u32_f64_body,
        (Dtype::I64, Dtype::F64) => i64_f64_body,
        (Dtype::U64, Dtype::F64) => u64_f64_body,
        _ => return None,
    })
}

/// The AVX-512 + AVX512_BF16 block loop for a pair, if it has one of its own.
pub(super) fn body_bf16(from: Dtype, to: Dtype) -> Option<Body> {
    match (from, to) {
        (Dtype::F32, Dtype::BF16) => Some(f32_bf16_ne_body),
        _ => None,
    }
}

/// Table lookup for an 8-bit source (`table` is its table into `to`), with AVX-512 permutes.
pub(crate) fn lut(from: Dtype, to: Dtype, table: &Table, src: &[u8], dst: &mut [u8], stream: bool) {
    let out_size = to.byte_size().unwrap_or(8);
    let reference = |s: &[u8], d: &mut [u8]| match out_size {
        2 => lookup::<2>(table, s, d),
        4 => lookup::<4>(table, s, d),
        _ => lookup::<8>(table, s, d),
    };
    // F32 and F64 results come from the high halves of the F32 table; check they suffice.
    let f32_table = table_f32(from).filter(|t| t.iter().all(|&e| e & 0xffff == 0));
    let body = match (to, f32_table) {
        (Dtype::F16 | Dtype::BF16, _) => |t: &Table, s: &[u8], d: &mut [u8], st| {
            // SAFETY: only run after the CPU check below.
            unsafe { lut16_body(t, s, d, st) }
        },
        (Dtype::F32, Some(_)) => |t: &Table, s: &[u8], d: &mut [u8], st| {
            // SAFETY: only run after the CPU check below.
            unsafe { lut32_body(t, s, d, st) }
        },
        (Dtype::F64, Some(_)) => |t: &Table, s: &[u8], d: &mut [u8], st| {
            // SAFETY: only run after the CPU check below.
            unsafe { lut64_body(t, s, d, st) }
        },
        _ => return reference(src, dst),
    };
    if !has_avx512() {
        return reference(src, dst);
    }
    let t = f32_table.filter(|_| to == Dtype::F64).unwrap_or(table);
    drive(
        src,
        dst,
        (1, out_size, BLOCK),
        stream,
        reference,
        |s, d, st| body(t, s, d, st),
    );
}

fn table_f32(from: Dtype) -> Option<&'static Table> {
    super::super::lut::table(from, Dtype::F32)
}

// ---- loads and stores -------------------------------------------------------------------

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn load512(s: &[u8]) -> __m512i {
    let s = &s[..64];
    // SAFETY: `s` has 64 readable bytes; the load is unaligned.
    unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn store512(d: &mut [u8], v: __m512i, stream: bool) {
    let d = &mut d[..64];
    let p = d.as_mut_ptr();
    if stream && (p as usize).is_multiple_of(64) {
        // SAFETY: `d` has 64 writable bytes and `p` is 64-byte aligned, as a streaming store needs.
        unsafe { _mm512_stream_si512(p.cast(), v) }
    } else {
        // SAFETY: `d` has 64 writable bytes; the store is unaligned.
        unsafe { _mm512_storeu_si512(p.cast(), v) }
    }
}

/// Joins two halves into one register (low half first).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn splat(x: u32) -> __m512i {
    _mm512_set1_epi32(x as i32)
}

// ---- element math on 16 lanes ------------------------------------------------------------

/// 16 F16 → F32 bits; NaN payloads as numpy (no quiet bit added).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f16x16_to_f32(h: __m256i) -> __m512i {
    let bits = _mm512_castps_si512(_mm512_cvtph_ps(h));
    let abs = _mm256_and_si256(h, _mm256_set1_epi16(0x7fff));
    let nan = _mm256_cmpgt_epu16_mask(abs, _mm256_set1_epi16(0x7c00));
    if nan == 0 {
        return bits;
    }
    let x = _mm512_cvtepu16_epi32(h);
    let sign = _mm512_slli_epi32::<16>(_mm512_and_si512(x, splat(0x8000)));
    let payload = _mm512_slli_epi32::<13>(_mm512_and_si512(x, splat(0x3ff)));
    let fix = _mm512_or_si512(_mm512_or_si512(sign, splat(0x7f80_0000)), payload);
    _mm512_mask_blend_epi32(nan, bits, fix)
}

/// Mask of lanes holding an F32 NaN.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn nan_mask(x: __m512i) -> __mmask16 {
    _mm512_cmpgt_epu32_mask(_mm512_and_si512(x, splat(0x7fff_ffff)), splat(0x7f80_0000))
}

/// 16 F32 → F16, round to nearest even; NaN as numpy's software cast.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f32x16_to_f16(x: __m512i) -> __m256i {
    let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_castsi512_ps(x),
    );
    let nan = nan_mask(x);
    if nan == 0 {
        return h;
    }
    let payload = _mm512_max_epu32(
        _mm512_and_si512(_mm512_srli_epi32::<13>(x), splat(0x3ff)),
        splat(1),
    );
    let sign = _mm512_and_si512(_mm512_srli_epi32::<16>(x), splat(0x8000));
    let fix = _mm512_or_si512(_mm512_or_si512(sign, splat(0x7c00)), payload);
    _mm256_mask_blend_epi16(nan, h, _mm512_cvtepi32_epi16(fix))
}

/// The index of `_mm512_permutex2var_epi16` that takes the high 16 bits of each 32-bit lane of
/// two registers: 32 words in order, the first register's first.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn high_words() -> __m512i {
    _mm512_set_epi16(
        63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27, 25, 23, 21, 19,
        17, 15, 13, 11, 9, 7, 5, 3, 1,
    )
}

/// 16 F32 → BF16 in the high 16 bits of each lane, integer round to nearest even; NaN becomes
/// the canonical one with its sign (ml_dtypes).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f32x16_round_bf16(x: __m512i) -> __m512i {
    let f = _mm512_castsi512_ps(x);
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(f, f);
    // NaN lanes become sign | 0x7fc0_0000 first (the low half is then zero and rounding keeps
    // it): one ternary-logic op, (x & sign) | quiet NaN.
    let x = _mm512_mask_ternarylogic_epi32::<0xea>(x, nan, splat(0x8000_0000), splat(0x7fc0_0000));
    let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(x), splat(1));
    _mm512_add_epi32(_mm512_add_epi32(x, splat(0x7fff)), lsb)
}

/// 32 F32 → BF16 (`lo`'s 16 first), integer round to nearest even; canonical NaN.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f32x32_to_bf16(lo: __m512i, hi: __m512i) -> __m512i {
    _mm512_permutex2var_epi16(f32x16_round_bf16(lo), high_words(), f32x16_round_bf16(hi))
}

/// 16 F32 → an FP8 format, round to nearest even, with ml_dtypes' overflow and NaN rules.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f32x16_to_f8(x: __m512i, f: &FloatLayout) -> __m128i {
    let (m, rebias) = (f.man, (127 - f.bias) as u32);
    let abs = _mm512_and_si512(x, splat(0x7fff_ffff));
    let sign = _mm512_and_si512(_mm512_srli_epi32::<24>(x), splat(0x80));
    // Normal results: round the F32 mantissa at the target's last bit, then rebias.
    let shift = splat(23 - m);
    let lsb = _mm512_and_si512(_mm512_srlv_epi32(abs, shift), splat(1));
    let rounded = _mm512_add_epi32(_mm512_add_epi32(abs, splat((1 << (22 - m)) - 1)), lsb);
    let normal = _mm512_sub_epi32(_mm512_srlv_epi32(rounded, shift), splat(rebias << m));
    // Subnormal results: adding 2^k whose ulp is the target's smallest subnormal makes the FPU
    // round (to nearest even) at exactly that bit; the low bits are then the encoding.
    let magic = (rebias + (23 - m) + 1) << 23;
    let sum = _mm512_add_ps(_mm512_castsi512_ps(abs), _mm512_castsi512_ps(splat(magic)));
    let subnormal = _mm512_sub_epi32(_mm512_castps_si512(sum), splat(magic));
    let tiny = _mm512_cmplt_epu32_mask(abs, splat((rebias + 1) << 23));
    let enc = _mm512_mask_mov_epi32(normal, tiny, subnormal);
    // Overflow (and infinity, and for E4M3FN NaN) clamps to infinity, or to E4M3FN's NaN.
    let enc = _mm512_min_epu32(enc, splat(if f.inf { f.inf_bits() } else { f.nan }));
    let enc = if f.inf {
        _mm512_mask_mov_epi32(enc, nan_mask(x), splat(f.nan))
    } else {
        enc
    };
    _mm512_cvtepi32_epi8(_mm512_or_si512(enc, sign))
}

// ---- block loops ------------------------------------------------------------------------

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn bf16_f32_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(64).zip(dst.chunks_exact_mut(128)) {
        let (lo, hi) = (load256(s), load256(&s[32..]));
        store512(
            d,
            _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(lo)),
            stream,
        );
        store512(
            &mut d[64..],
            _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(hi)),
            stream,
        );
    }
    fence(stream);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f16_f32_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(64).zip(dst.chunks_exact_mut(128)) {
        let (lo, hi) = (load256(s), load256(&s[32..]));
        store512(d, f16x16_to_f32(lo), stream);
        store512(&mut d[64..], f16x16_to_f32(hi), stream);
    }
    fence(stream);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f32_bf16_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(128).zip(dst.chunks_exact_mut(64)) {
        prefetch_ahead(s);
        prefetch_ahead(&s[64..]);
        let (lo, hi) = (load512(s), load512(&s[64..]));
        store512(d, f32x32_to_bf16(lo, hi), stream);
    }
    fence(stream);
}

/// F32 → BF16 with `vcvtne2ps2bf16` (32 elements per instruction), and the integer rounding
/// for blocks holding a NaN or a subnormal, which the instruction does not give as ml_dtypes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,f16c")]
fn f32_bf16_ne_body(src: &[u8], dst: &mut [u8], stream: bool) {
    // vfpclassps categories: quiet NaN (0x01), subnormal (0x20), signalling NaN (0x80).
    const NAN_OR_SUBNORMAL: i32 = 0x01 | 0x20 | 0x80;
    for (s, d) in src.chunks_exact(128).zip(dst.chunks_exact_mut(64)) {
        prefetch_ahead(s);
        prefetch_ahead(&s[64..]);
        let (lo, hi) = (load512(s), load512(&s[64..]));
        let (flo, fhi) = (_mm512_castsi512_ps(lo), _mm512_castsi512_ps(hi));
        let special = _mm512_kor(
            _mm512_fpclass_ps_mask::<NAN_OR_SUBNORMAL>(flo),
            _mm512_fpclass_ps_mask::<NAN_OR_SUBNORMAL>(fhi),
        );
        let r = if special == 0 {
            // The second operand fills the low half.
            let bh = _mm512_cvtne2ps_pbh(fhi, flo);
            // SAFETY: both are 512-bit vectors of plain bits; every bit pattern is valid in each.
            unsafe { std::mem::transmute::<__m512bh, __m512i>(bh) }
        } else {
            f32x32_to_bf16(lo, hi)
        };
        store512(d, r, stream);
    }
    fence(stream);
}

/// Mask of the 32 16-bit lanes of `h` that hold an F16 NaN.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f16_nan_mask(h: __m512i) -> __mmask32 {
    _mm512_cmpgt_epu16_mask(
        _mm512_and_si512(h, _mm512_set1_epi16(0x7fff)),
        _mm512_set1_epi16(0x7c00),
    )
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f32_f16_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(128).zip(dst.chunks_exact_mut(64)) {
        prefetch_ahead(s);
        prefetch_ahead(&s[64..]);
        let (lo, hi) = (load512(s), load512(&s[64..]));
        let cvt = |x: __m512i| {
            _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm512_castsi512_ps(x),
            )
        };
        let h = join(cvt(lo), cvt(hi));
        // The hardware gives a NaN exactly for a NaN, but with the quiet bit set: one check of
        // the 32 results, and the rare block with a NaN is redone with numpy's NaN.
        let h = if f16_nan_mask(h) == 0 {
            h
        } else {
            join(f32x16_to_f16(lo), f32x16_to_f16(hi))
        };
        store512(d, h, stream);
    }
    fence(stream);
}

/// How 16 source lanes become F32 bits before FP8 narrowing.
#[derive(Clone, Copy)]
enum Widen {
    F32,
    /// NaN bits do not matter here: FP8 NaN is canonical.
    F16,
    Bf16,
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn widen(s: &[u8], w: Widen) -> __m512i {
    match w {
        Widen::F32 => load512(s),
        Widen::F16 => _mm512_castps_si512(_mm512_cvtph_ps(load256(s))),
        Widen::Bf16 => _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(load256(s))),
    }
}

/// FP8 narrowing of 32 elements per block.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn to_f8_body(src: &[u8], dst: &mut [u8], stream: bool, w: Widen, f: &FloatLayout) {
    let in_size = match w {
        Widen::F32 => 4,
        Widen::F16 | Widen::Bf16 => 2,
    };
    for (s, d) in src
        .chunks_exact(BLOCK * in_size)
        .zip(dst.chunks_exact_mut(BLOCK))
    {
        let lo = f32x16_to_f8(widen(s, w), f);
        let hi = f32x16_to_f8(widen(&s[16 * in_size..], w), f);
        store256(
            d,
            _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi),
            stream,
        );
    }
    fence(stream);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f32_e4m3_body(src: &[u8], dst: &mut [u8], stream: bool) {
    to_f8_body(src, dst, stream, Widen::F32, &float::E4M3);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f32_e5m2_body(src: &[u8], dst: &mut [u8], stream: bool) {
    to_f8_body(src, dst, stream, Widen::F32, &float::E5M2);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f16_e4m3_body(src: &[u8], dst: &mut [u8], stream: bool) {
    to_f8_body(src, dst, stream, Widen::F16, &float::E4M3);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f16_e5m2_body(src: &[u8], dst: &mut [u8], stream: bool) {
    to_f8_body(src, dst, stream, Widen::F16, &float::E5M2);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn bf16_e4m3_body(src: &[u8], dst: &mut [u8], stream: bool) {
    to_f8_body(src, dst, stream, Widen::Bf16, &float::E4M3);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn bf16_e5m2_body(src: &[u8], dst: &mut [u8], stream: bool) {
    to_f8_body(src, dst, stream, Widen::Bf16, &float::E5M2);
}

/// A 256-entry table of 16-bit values, as eight registers of 32 entries.
struct Table16([__m512i; 8]);

impl Table16 {
    /// Takes bits `shift..shift + 16` of each entry.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    fn new(table: &Table, shift: u32) -> Table16 {
        let mut words = [0u16; 256];
        for (w, &e) in words.iter_mut().zip(table.iter()) {
            *w = (e >> shift) as u16;
        }
        let mut regs = [_mm512_setzero_si512(); 8];
        for (r, chunk) in regs.iter_mut().zip(words.chunks_exact(32)) {
            // SAFETY: `chunk` is 32 u16 = 64 readable bytes; the load is unaligned.
            *r = unsafe { _mm512_loadu_si512(chunk.as_ptr().cast()) };
        }
        Table16(regs)
    }

    /// Looks up 32 byte indices (zero-extended to 16-bit lanes): four 64-entry permutes, then
    /// bits 6 and 7 of the index pick among them.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
    fn lookup(&self, idx: __m512i) -> __m512i {
        let t = &self.0;
        let r0 = _mm512_permutex2var_epi16(t[0], idx, t[1]);
        let r1 = _mm512_permutex2var_epi16(t[2], idx, t[3]);
        let r2 = _mm512_permutex2var_epi16(t[4], idx, t[5]);
        let r3 = _mm512_permutex2var_epi16(t[6], idx, t[7]);
        let bit6 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(0x40));
        let bit7 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(0x80));
        let lo = _mm512_mask_blend_epi16(bit6, r0, r1);
        let hi = _mm512_mask_blend_epi16(bit6, r2, r3);
        _mm512_mask_blend_epi16(bit7, lo, hi)
    }
}

/// 8-bit sources into 16-bit targets: the entries themselves.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn lut16_body(table: &Table, src: &[u8], dst: &mut [u8], stream: bool) {
    let t = Table16::new(table, 0);
    for (s, d) in src.chunks_exact(32).zip(dst.chunks_exact_mut(64)) {
        store512(d, t.lookup(_mm512_cvtepu8_epi16(load256(s))), stream);
    }
    fence(stream);
}

/// 32 F32 results of 8-bit sources, as two registers: every such value has at most 8
/// significant bits, so the low 16 bits of its F32 encoding are zero and a 16-bit table of the
/// high halves is enough.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn lut_f32x32(t: &Table16, s: &[u8]) -> (__m512i, __m512i) {
    let hi16 = t.lookup(_mm512_cvtepu8_epi16(load256(s)));
    let lo = _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(hi16)));
    let hi = _mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64::<1>(hi16)));
    (lo, hi)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn lut32_body(table: &Table, src: &[u8], dst: &mut [u8], stream: bool) {
    let t = Table16::new(table, 16);
    for (s, d) in src.chunks_exact(32).zip(dst.chunks_exact_mut(128)) {
        let (lo, hi) = lut_f32x32(&t, s);
        store512(d, lo, stream);
        store512(&mut d[64..], hi, stream);
    }
    fence(stream);
}

/// 8-bit sources into F64: the F32 result widened, which is exact (and keeps the canonical
/// NaN canonical), so the F32 table of the same source is used.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn lut64_body(table: &Table, src: &[u8], dst: &mut [u8], stream: bool) {
    let t = Table16::new(table, 16);
    for (s, d) in src.chunks_exact(32).zip(dst.chunks_exact_mut(256)) {
        let (lo, hi) = lut_f32x32(&t, s);
        let quarters = [
            _mm512_castsi512_si256(lo),
            _mm512_extracti64x4_epi64::<1>(lo),
            _mm512_castsi512_si256(hi),
            _mm512_extracti64x4_epi64::<1>(hi),
        ];
        for (q, out) in quarters.into_iter().zip(d.chunks_exact_mut(64)) {
            store512(
                out,
                _mm512_castpd_si512(_mm512_cvtps_pd(_mm256_castsi256_ps(q))),
                stream,
            );
        }
    }
    fence(stream);
}

// ---- F64 and the remaining 16-bit pairs --------------------------------------------------

/// The two 256-bit halves of a register.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn halves(v: __m512i) -> [__m256i; 2] {
    [_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v)]
}

/// F32 → F64 with the FPU: exact, and NaN gets the quiet bit as numpy's cast does.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f32_f64_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(64).zip(dst.chunks_exact_mut(128)) {
        for (h, out) in halves(load512(s)).into_iter().zip(d.chunks_exact_mut(64)) {
            store512(
                out,
                _mm512_castpd_si512(_mm512_cvtps_pd(_mm256_castsi256_ps(h))),
                stream,
            );
        }
    }
    fence(stream);
}

/// F64 → F32 with the FPU (round to nearest even; NaN quiet with its top payload bits).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f64_f32_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(128).zip(dst.chunks_exact_mut(64)) {
        let lo = _mm256_castps_si256(_mm512_cvtpd_ps(_mm512_castsi512_pd(load512(s))));
        let hi = _mm256_castps_si256(_mm512_cvtpd_ps(_mm512_castsi512_pd(load512(&s[64..]))));
        store512(d, join(lo, hi), stream);
    }
    fence(stream);
}

/// 8 F64 → F16 rounded once, as numpy does: F64 → F32 rounding to odd (truncate, then set the
/// last bit if anything was cut off) keeps enough information for the final F32 → F16 rounding
/// to nearest even to be the correct rounding of the F64 (F32 has 13 more bits than F16).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f64x8_to_f16(x: __m512i) -> __m128i {
    let v = _mm512_castsi512_pd(x);
    let t = _mm512_cvt_roundpd_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
    let inexact = _mm512_cmp_pd_mask::<_CMP_NEQ_UQ>(_mm512_cvtps_pd(t), v);
    let t = _mm256_castps_si256(t);
    let odd = _mm256_mask_or_epi32(t, inexact, t, _mm256_set1_epi32(1));
    let h = _mm256_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(_mm256_castsi256_ps(odd));
    let nan = _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(v, v);
    if nan == 0 {
        return h;
    }
    // numpy: sign, infinity exponent, top payload bits, never a zero payload.
    let payload = _mm512_max_epu64(
        _mm512_and_si512(_mm512_srli_epi64::<42>(x), _mm512_set1_epi64(0x3ff)),
        _mm512_set1_epi64(1),
    );
    let sign = _mm512_and_si512(_mm512_srli_epi64::<48>(x), _mm512_set1_epi64(0x8000));
    let fix = _mm512_or_si512(_mm512_or_si512(sign, _mm512_set1_epi64(0x7c00)), payload);
    _mm_mask_blend_epi16(nan, h, _mm512_cvtepi64_epi16(fix))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f64_f16_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(256).zip(dst.chunks_exact_mut(64)) {
        let q: [__m128i; 4] = std::array::from_fn(|k| f64x8_to_f16(load512(&s[64 * k..])));
        let lo = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(q[0]), q[1]);
        let hi = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(q[2]), q[3]);
        store512(d, join(lo, hi), stream);
    }
    fence(stream);
}

/// 32 BF16 → F16, round to nearest even; every NaN becomes the canonical one with its sign
/// (ml_dtypes).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn bf16x32_to_f16(b: __m512i) -> __m512i {
    // Interleaving with zeros makes F32s whose high half is the BF16 (exact), in the order
    // 0-3, 8-11, .. (low) and 4-7, 12-15, .. (high) within 128-bit lanes; the final
    // permute of 64-bit groups restores the order.
    let zero = _mm512_setzero_si512();
    let cvt = |x: __m512i| {
        _mm512_castsi256_si512(_mm512_cvtps_ph::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(_mm512_castsi512_ps(x)))
    };
    let lo = cvt(_mm512_unpacklo_epi16(zero, b));
    let hi = cvt(_mm512_unpackhi_epi16(zero, b));
    let h = _mm512_permutex2var_epi64(lo, _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0), hi);
    let nan = _mm512_cmpgt_epu16_mask(
        _mm512_and_si512(b, _mm512_set1_epi16(0x7fff)),
        _mm512_set1_epi16(0x7f80),
    );
    if nan == 0 {
        return h;
    }
    let canonical = _mm512_or_si512(
        _mm512_and_si512(b, _mm512_set1_epi16(i16::MIN)),
        _mm512_set1_epi16(0x7e00),
    );
    _mm512_mask_blend_epi16(nan, h, canonical)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn bf16_f16_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(64).zip(dst.chunks_exact_mut(64)) {
        prefetch_ahead(s);
        store512(d, bf16x32_to_f16(load512(s)), stream);
    }
    fence(stream);
}

/// 8 F16 → F64, exact; NaN keeps its payload without the quiet bit (numpy).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f16x8_to_f64(h: __m128i) -> __m512i {
    let bits = _mm512_castpd_si512(_mm512_cvtps_pd(_mm256_cvtph_ps(h)));
    let nan = _mm_cmpgt_epu16_mask(
        _mm_and_si128(h, _mm_set1_epi16(0x7fff)),
        _mm_set1_epi16(0x7c00),
    );
    if nan == 0 {
        return bits;
    }
    let x = _mm512_cvtepu16_epi64(h);
    let sign = _mm512_slli_epi64::<48>(_mm512_and_si512(x, _mm512_set1_epi64(0x8000)));
    let payload = _mm512_slli_epi64::<42>(_mm512_and_si512(x, _mm512_set1_epi64(0x3ff)));
    let fix = _mm512_or_si512(
        _mm512_or_si512(sign, _mm512_set1_epi64(0x7ff0_0000_0000_0000)),
        payload,
    );
    _mm512_mask_blend_epi64(nan, bits, fix)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,f16c")]
fn f16_f64_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(64).zip(dst.chunks_exact_mut(256)) {
        for (k, out) in d.chunks_exact_mut(64).enumerate() {
            let h = &s[16 * k..][..16];
            // SAFETY: `h` has 16 readable bytes; the load is unaligned.
            let v = unsafe { _mm_loadu_si128(h.as_ptr().cast()) };
            store512(out, f16x8_to_f64(v), stream);
        }
    }
    fence(stream);
}

// ---- wide integers (the FPU rounds to nearest even, as numpy's C casts do) ----------------

/// An integer → float conversion of one register.
#[derive(Clone, Copy)]
enum IntOp {
    I32F32,
    U32F32,
    I64F32,
    U64F32,
    I32F64,
    U32F64,
    I64F64,
    U64F64,
}

/// Converts 64 input bytes: 16 lanes of 32 bits, or 8 of 64 bits (F32 results in the low half).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
fn int_to_float(op: IntOp, v: __m512i) -> __m512i {
    let narrow = |f: __m256| _mm512_castsi256_si512(_mm256_castps_si256(f));
    match op {
        IntOp::I32F32 => _mm512_castps_si512(_mm512_cvtepi32_ps(v)),
        IntOp::U32F32 => _mm512_castps_si512(_mm512_cvtepu32_ps(v)),
        IntOp::I64F32 => narrow(_mm512_cvtepi64_ps(v)),
        IntOp::U64F32 => narrow(_mm512_cvtepu64_ps(v)),
        IntOp::I64F64 => _mm512_castpd_si512(_mm512_cvtepi64_pd(v)),
        IntOp::U64F64 => _mm512_castpd_si512(_mm512_cvtepu64_pd(v)),
        // 32-bit into F64 doubles the width: only the low 8 lanes are converted here.
        IntOp::I32F64 => _mm512_castpd_si512(_mm512_cvtepi32_pd(_mm512_castsi512_si256(v))),
        IntOp::U32F64 => _mm512_castpd_si512(_mm512_cvtepu32_pd(_mm512_castsi512_si256(v))),
    }
}

/// Block loop for integer sources: `in_step` input bytes give `out_step` output bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
fn int_body(src: &[u8], dst: &mut [u8], stream: bool, op: IntOp) {
    let (in_step, out_step) = match op {
        IntOp::I32F32 | IntOp::U32F32 | IntOp::I64F64 | IntOp::U64F64 => (64, 64),
        IntOp::I64F32 | IntOp::U64F32 => (128, 64),
        IntOp::I32F64 | IntOp::U32F64 => (32, 64),
    };
    for (s, d) in src
        .chunks_exact(in_step)
        .zip(dst.chunks_exact_mut(out_step))
    {
        let v = match in_step {
            32 => _mm512_castsi256_si512(load256(s)),
            _ => load512(s),
        };
        let r = int_to_float(op, v);
        let r = if in_step == 128 {
            let hi = int_to_float(op, load512(&s[64..]));
            join(_mm512_castsi512_si256(r), _mm512_castsi512_si256(hi))
        } else {
            r
        };
        store512(d, r, stream);
    }
    fence(stream);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
fn i32_f32_body(src: &[u8], dst: &mut [u8], stream: bool) {
    int_body(src, dst, stream, IntOp::I32F32);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
fn u32_f32_body(src: &[u8], dst: &mut [u8], stream: bool) {
    int_body(src, dst, stream, IntOp::U32F32);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
fn i64_f32_body(src: &[u8], dst: &mut [u8], stream: bool) {
    int_body(src, dst, stream, IntOp::I64F32);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
fn u64_f32_body(src: &[u8], dst: &mut [u8], stream: bool) {
    int_body(src, dst, stream, IntOp::U64F32);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
fn i32_f64_body(src: &[u8], dst: &mut [u8], stream: bool) {
    int_body(src, dst, stream, IntOp::I32F64);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
fn u32_f64_body(src: &[u8], dst: &mut [u8], stream: bool) {
    int_body(src, dst, stream, IntOp::U32F64);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
fn i64_f64_body(src: &[u8], dst: &mut [u8], stream: bool) {
    int_body(src, dst, stream, IntOp::I64F64);
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,f16c")]
fn u64_f64_body(src: &[u8], dst: &mut [u8], stream: bool) {
    int_body(src, dst, stream, IntOp::U64F64);
}
