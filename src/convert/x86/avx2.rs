//! AVX2 + F16C kernels, 16 elements per block, for the main pairs (and BF16 → F16, which GGUF
//! export lives on).
//!
//! Same methods as the AVX-512 kernels: hardware F16 conversions with a NaN fix-up in blocks
//! that hold a NaN, integer round-to-nearest-even into BF16, and the narrowing loops prefetch
//! their input.

use std::arch::x86_64::*;

use super::{prefetch_ahead, Body};
use crate::Dtype;

/// Elements per SIMD block.
pub(super) const BLOCK: usize = 16;

/// The AVX2 block loop for a pair, if there is one.
pub(super) fn body(from: Dtype, to: Dtype) -> Option<Body> {
    Some(match (from, to) {
        (Dtype::BF16, Dtype::F32) => bf16_f32_body,
        (Dtype::F16, Dtype::F32) => f16_f32_body,
        (Dtype::F32, Dtype::BF16) => f32_bf16_body,
        (Dtype::F32, Dtype::F16) => f32_f16_body,
        (Dtype::BF16, Dtype::F16) => bf16_f16_body,
        _ => return None,
    })
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn load128(s: &[u8]) -> __m128i {
    let s = &s[..16];
    // SAFETY: `s` has 16 readable bytes; the load is unaligned.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
pub(super) fn load256(s: &[u8]) -> __m256i {
    let s = &s[..32];
    // SAFETY: `s` has 32 readable bytes; the load is unaligned.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
pub(super) fn store256(d: &mut [u8], v: __m256i, stream: bool) {
    let d = &mut d[..32];
    let p = d.as_mut_ptr();
    if stream && (p as usize).is_multiple_of(32) {
        // SAFETY: `d` has 32 writable bytes and `p` is 32-byte aligned, as a streaming store needs.
        unsafe { _mm256_stream_si256(p.cast(), v) }
    } else {
        // SAFETY: `d` has 32 writable bytes; the store is unaligned.
        unsafe { _mm256_storeu_si256(p.cast(), v) }
    }
}

/// Orders streaming stores before anything the caller does next.
#[inline]
#[target_feature(enable = "avx2,f16c")]
pub(super) fn fence(stream: bool) {
    if stream {
        _mm_sfence();
    }
}

#[inline]
#[target_feature(enable = "avx2,f16c")]
fn splat(x: u32) -> __m256i {
    _mm256_set1_epi32(x as i32)
}

/// Mask (all ones per lane) of lanes holding an F32 NaN.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn nan_mask(x: __m256i) -> __m256i {
    // Signed compare is right: the absolute value is below 2^31.
    _mm256_cmpgt_epi32(_mm256_and_si256(x, splat(0x7fff_ffff)), splat(0x7f80_0000))
}

/// 8 F16 → F32 bits; NaN payloads as numpy (no quiet bit added).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn f16x8_to_f32(h: __m128i) -> __m256i {
    let bits = _mm256_castps_si256(_mm256_cvtph_ps(h));
    let nan16 = _mm_cmpgt_epi16(
        _mm_and_si128(h, _mm_set1_epi16(0x7fff)),
        _mm_set1_epi16(0x7c00),
    );
    if _mm_movemask_epi8(nan16) == 0 {
        return bits;
    }
    let x = _mm256_cvtepu16_epi32(h);
    let sign = _mm256_slli_epi32::<16>(_mm256_and_si256(x, splat(0x8000)));
    let payload = _mm256_slli_epi32::<13>(_mm256_and_si256(x, splat(0x3ff)));
    let fix = _mm256_or_si256(_mm256_or_si256(sign, splat(0x7f80_0000)), payload);
    _mm256_blendv_epi8(bits, fix, _mm256_cvtepi16_epi32(nan16))
}

/// Packs two registers of 8 values below 2^16 into 16 u16 in order.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn pack(lo: __m256i, hi: __m256i) -> __m256i {
    // packus interleaves 128-bit lanes; the permute puts them back in order.
    _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packus_epi32(lo, hi))
}

/// 8 F32 → BF16 in the low 16 bits of each lane; integer round to nearest even, canonical NaN.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn f32x8_to_bf16(x: __m256i) -> __m256i {
    let lsb = _mm256_and_si256(_mm256_srli_epi32::<16>(x), splat(1));
    let r = _mm256_srli_epi32::<16>(_mm256_add_epi32(_mm256_add_epi32(x, splat(0x7fff)), lsb));
    let nan = _mm256_or_si256(
        _mm256_and_si256(_mm256_srli_epi32::<16>(x), splat(0x8000)),
        splat(0x7fc0),
    );
    _mm256_blendv_epi8(r, nan, nan_mask(x))
}

/// 8 F32 → F16 in the low 16 bits of each lane; NaN as numpy's software cast.
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn f32x8_to_f16(x: __m256i) -> __m256i {
    let h = _mm256_cvtepu16_epi32(_mm256_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(
        _mm256_castsi256_ps(x),
    ));
    let nan = nan_mask(x);
    if _mm256_movemask_epi8(nan) == 0 {
        return h;
    }
    let payload = _mm256_max_epu32(
        _mm256_and_si256(_mm256_srli_epi32::<13>(x), splat(0x3ff)),
        splat(1),
    );
    let sign = _mm256_and_si256(_mm256_srli_epi32::<16>(x), splat(0x8000));
    let fix = _mm256_or_si256(_mm256_or_si256(sign, splat(0x7c00)), payload);
    _mm256_blendv_epi8(h, fix, nan)
}

/// 8 BF16 → F16 in the low 16 bits of each lane: the exact F32 value rounded once by the
/// hardware; NaN becomes the canonical one with its sign (ml_dtypes).
#[inline]
#[target_feature(enable = "avx2,f16c")]
fn bf16x8_to_f16(b: __m128i) -> __m256i {
    let x = _mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(b));
    let h = _mm256_cvtepu16_epi32(_mm256_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(
        _mm256_castsi256_ps(x),
    ));
    let nan = nan_mask(x);
    if _mm256_movemask_epi8(nan) == 0 {
        return h;
    }
    let sign = _mm256_and_si256(_mm256_srli_epi32::<16>(x), splat(0x8000));
    _mm256_blendv_epi8(h, _mm256_or_si256(sign, splat(0x7e00)), nan)
}

#[target_feature(enable = "avx2,f16c")]
fn bf16_f16_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(32).zip(dst.chunks_exact_mut(32)) {
        prefetch_ahead(s);
        store256(
            d,
            pack(bf16x8_to_f16(load128(s)), bf16x8_to_f16(load128(&s[16..]))),
            stream,
        );
    }
    fence(stream);
}

#[target_feature(enable = "avx2,f16c")]
fn bf16_f32_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(32).zip(dst.chunks_exact_mut(64)) {
        let (lo, hi) = (load128(s), load128(&s[16..]));
        store256(
            d,
            _mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(lo)),
            stream,
        );
        store256(
            &mut d[32..],
            _mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(hi)),
            stream,
        );
    }
    fence(stream);
}

#[target_feature(enable = "avx2,f16c")]
fn f16_f32_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(32).zip(dst.chunks_exact_mut(64)) {
        store256(d, f16x8_to_f32(load128(s)), stream);
        store256(&mut d[32..], f16x8_to_f32(load128(&s[16..])), stream);
    }
    fence(stream);
}

#[target_feature(enable = "avx2,f16c")]
fn f32_bf16_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(64).zip(dst.chunks_exact_mut(32)) {
        prefetch_ahead(s);
        store256(
            d,
            pack(f32x8_to_bf16(load256(s)), f32x8_to_bf16(load256(&s[32..]))),
            stream,
        );
    }
    fence(stream);
}

#[target_feature(enable = "avx2,f16c")]
fn f32_f16_body(src: &[u8], dst: &mut [u8], stream: bool) {
    for (s, d) in src.chunks_exact(64).zip(dst.chunks_exact_mut(32)) {
        prefetch_ahead(s);
        store256(
            d,
            pack(f32x8_to_f16(load256(s)), f32x8_to_f16(load256(&s[32..]))),
            stream,
        );
    }
    fence(stream);
}
