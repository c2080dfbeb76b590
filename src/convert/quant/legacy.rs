//! ggml's first quantised types, blocks of 32 values: Q4_0 and Q5_0 (one F16 scale, the
//! value of largest magnitude mapped to -8 or -16) and Q4_1 and Q5_1 (an F16 scale and an F16
//! minimum, the range split in 15 or 31 steps). Q5's fifth bits go to a 32-bit mask.
//!
//! As `quantize_row_q4_0_ref` and its siblings compute them: `x * (1/d)` plus 8.5 (or 16.5,
//! or 0.5 after subtracting the minimum), truncated by C's float-to-integer cast, then capped.

use super::{check_lengths, cvtt_i32, put_f16};

/// Values per block of every type here.
pub(crate) const QK: usize = 32;
/// Bytes per Q4_0 block: the scale, then 16 bytes of two 4-bit values each.
pub(crate) const Q4_0_BYTES: usize = 18;
/// Bytes per Q4_1 block: scale, minimum, 16 bytes of values.
pub(crate) const Q4_1_BYTES: usize = 20;
/// Bytes per Q5_0 block: scale, the 32 fifth bits, 16 bytes of low 4 bits.
pub(crate) const Q5_0_BYTES: usize = 22;
/// Bytes per Q5_1 block: scale, minimum, fifth bits, low 4 bits.
pub(crate) const Q5_1_BYTES: usize = 24;

/// `x` and its value of largest magnitude (the first one on a tie), as the reference scans.
fn signed_max(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// The smallest and largest value (NaN never compares, as in the reference).
fn min_max(x: &[f32]) -> (f32, f32) {
    let (mut min, mut max) = (f32::MAX, -f32::MAX);
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// `1/d`, or 0 for a zero scale (a NaN scale counts as non-zero, as C's `d ? ... : 0`).
fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// C's `(int8_t)f` on x86-64: a 32-bit truncation, then the low byte.
fn to_i8(f: f32) -> i8 {
    cvtt_i32(f) as i8
}

/// C's `(uint8_t)f` on x86-64.
fn to_u8(f: f32) -> u8 {
    cvtt_i32(f) as u8
}

/// `MIN(cap, (int8_t)f)` stored in a `uint8_t`.
fn capped(f: f32, cap: i8) -> u8 {
    to_i8(f).min(cap) as u8
}

/// Quantises `src` (a whole number of 32-value blocks) to Q4_0 in `dst`.
pub fn quantize_q4_0(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK, Q4_0_BYTES, "q4_0");
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q4_0_BYTES)) {
        let d = signed_max(x) / -8.0;
        let id = inverse(d);
        put_f16(y, d);
        for j in 0..QK / 2 {
            let lo = capped(x[j] * id + 8.5, 15);
            let hi = capped(x[j + QK / 2] * id + 8.5, 15);
            y[2 + j] = lo | (hi << 4);
        }
    }
}

/// Quantises `src` (a whole number of 32-value blocks) to Q4_1 in `dst`.
pub fn quantize_q4_1(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK, Q4_1_BYTES, "q4_1");
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q4_1_BYTES)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 15.0;
        let id = inverse(d);
        put_f16(y, d);
        put_f16(&mut y[2..], min);
        for j in 0..QK / 2 {
            let lo = capped((x[j] - min) * id + 0.5, 15);
            let hi = capped((x[j + QK / 2] - min) * id + 0.5, 15);
            y[4 + j] = lo | (hi << 4);
        }
    }
}

/// Packs 32 five-bit values: the low nibbles two to a byte after the mask's 4 bytes at `at`.
fn put_q5(y: &mut [u8], at: usize, q: impl Fn(usize) -> (u8, u8)) {
    let mut qh = 0u32;
    for j in 0..QK / 2 {
        let (lo, hi) = q(j);
        y[at + 4 + j] = (lo & 0x0f) | ((hi & 0x0f) << 4);
        qh |= u32::from((lo & 0x10) >> 4) << j;
        qh |= u32::from((hi & 0x10) >> 4) << (j + QK / 2);
    }
    y[at..at + 4].copy_from_slice(&qh.to_le_bytes());
}

/// Quantises `src` (a whole number of 32-value blocks) to Q5_0 in `dst`.
pub fn quantize_q5_0(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK, Q5_0_BYTES, "q5_0");
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q5_0_BYTES)) {
        let d = signed_max(x) / -16.0;
        let id = inverse(d);
        put_f16(y, d);
        put_q5(y, 2, |j| {
            (
                capped(x[j] * id + 16.5, 31),
                capped(x[j + QK / 2] * id + 16.5, 31),
            )
        });
    }
}

/// Quantises `src` (a whole number of 32-value blocks) to Q5_1 in `dst`.
pub fn quantize_q5_1(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK, Q5_1_BYTES, "q5_1");
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q5_1_BYTES)) {
        let (min, max) = min_max(x);
        let d = (max - min) / 31.0;
        let id = inverse(d);
        put_f16(y, d);
        put_f16(&mut y[2..], min);
        // No cap here: the reference casts straight to uint8_t.
        put_q5(y, 4, |j| {
            (
                to_u8((x[j] - min) * id + 0.5),
                to_u8((x[j + QK / 2] - min) * id + 0.5),
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(f: fn(&[f32], &mut [u8]), bytes: usize, x: &[f32]) -> Vec<u8> {
        let mut out = vec![0u8; x.len() / QK * bytes];
        f(x, &mut out);
        out
    }

    #[test]
    fn block_lengths() {
        let x = [0.5f32; 64];
        assert_eq!(q(quantize_q4_0, Q4_0_BYTES, &x).len(), 36);
        assert_eq!(q(quantize_q4_1, Q4_1_BYTES, &x).len(), 40);
        assert_eq!(q(quantize_q5_0, Q5_0_BYTES, &x).len(), 44);
        assert_eq!(q(quantize_q5_1, Q5_1_BYTES, &x).len(), 48);
    }

    #[test]
    fn q4_0_maps_the_extreme_to_minus_8() {
        let mut x = [0.0f32; 32];
        x[0] = 8.0;
        x[16] = -4.0;
        let b = q(quantize_q4_0, Q4_0_BYTES, &x);
        assert_eq!(fp16(&b), -1.0);
        // 8 / -1 + 8.5 = 0.5 → 0; -4 / -1 + 8.5 = 12.5 → 12; zeros → 8.
        assert_eq!(b[2], 12 << 4);
        assert_eq!(b[3], 8 | (8 << 4));
    }

    #[test]
    fn q5_1_keeps_the_fifth_bit() {
        let x: Vec<f32> = (0..32).map(|i| i as f32).collect();
        let b = q(quantize_q5_1, Q5_1_BYTES, &x);
        assert_eq!(fp16(&b), 1.0);
        assert_eq!(fp16(&b[2..]), 0.0);
        assert_eq!(u32::from_le_bytes([b[4], b[5], b[6], b[7]]), 0xffff_0000);
        assert_eq!(b[8], 0);
        assert_eq!(b[9], 1 | (1 << 4));
    }

    #[test]
    fn nan_gets_level_0_against_the_finite_values_scale() {
        // The reference's scans skip NaN (no comparison holds), and C's cast of NaN gives the
        // integer 0x80000000, whose low byte is 0.
        let mut x = [0.0f32; 32];
        x[0] = -8.0;
        x[1] = f32::NAN;
        let b = q(quantize_q4_0, Q4_0_BYTES, &x);
        assert_eq!(fp16(&b), 1.0);
        assert_eq!(b[2], 8 << 4); // -8 at level 0, 0 at level 8
        assert_eq!(b[3], 8 << 4); // the NaN at level 0
        let b = q(quantize_q5_1, Q5_1_BYTES, &x);
        assert_eq!(fp16(&b[2..]), -8.0);
        assert_eq!(b[9] & 0x0f, 0);
    }

    #[test]
    fn an_all_negative_zero_block_has_scale_minus_zero() {
        // The running maximum starts at +0.0 and -0.0 never exceeds it: d = 0 / -8 = -0.
        let b = q(quantize_q4_0, Q4_0_BYTES, &[-0.0; 32]);
        assert_eq!(&b[..2], &[0x00, 0x80]);
        assert!(b[2..].iter().all(|&v| v == 0x88));
    }

    #[test]
    #[should_panic(expected = "q4_0: 31 values")]
    fn a_partial_block_panics() {
        quantize_q4_0(&[0.0; 31], &mut [0u8; 18]);
    }

    fn fp16(b: &[u8]) -> f32 {
        super::super::fp16_to_fp32(u16::from_le_bytes([b[0], b[1]]))
    }
}
