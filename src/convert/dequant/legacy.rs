//! The blocks of 32 values: Q4_0, Q4_1, Q5_0, Q5_1 (an F16 scale, for the `_1` types an F16
//! minimum, then 4-bit levels, for Q5 a 32-bit mask of fifth bits) and Q8_0 (an F16 scale and
//! 32 signed bytes). Value `j < 16` is the low nibble of byte `j`, value `j + 16` its high one.

use super::{each_block, f16_at, u32_at};

pub(super) fn q4_0(src: &[u8], dst: &mut [f32]) {
    each_block::<18, 32>(src, dst, |b, y| {
        let d = f16_at(b, 0);
        for j in 0..16 {
            let q = b[2 + j];
            y[j] = d * f32::from((q & 0x0F) as i8 - 8);
            y[j + 16] = d * f32::from((q >> 4) as i8 - 8);
        }
    });
}

pub(super) fn q4_1(src: &[u8], dst: &mut [f32]) {
    each_block::<20, 32>(src, dst, |b, y| {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for j in 0..16 {
            let q = b[4 + j];
            y[j] = d * f32::from(q & 0x0F) + m;
            y[j + 16] = d * f32::from(q >> 4) + m;
        }
    });
}

/// The two 5-bit levels of byte `j` of a Q5 block: nibbles plus bits `j` and `j + 16` of `qh`.
#[inline(always)]
fn five_bits(q: u8, qh: u32, j: usize) -> (u8, u8) {
    let h0 = ((qh >> j) & 1) as u8;
    let h1 = ((qh >> (j + 16)) & 1) as u8;
    ((q & 0x0F) | (h0 << 4), (q >> 4) | (h1 << 4))
}

pub(super) fn q5_0(src: &[u8], dst: &mut [f32]) {
    each_block::<22, 32>(src, dst, |b, y| {
        let (d, qh) = (f16_at(b, 0), u32_at(b, 2));
        for j in 0..16 {
            let (lo, hi) = five_bits(b[6 + j], qh, j);
            y[j] = d * f32::from(lo as i8 - 16);
            y[j + 16] = d * f32::from(hi as i8 - 16);
        }
    });
}

pub(super) fn q5_1(src: &[u8], dst: &mut [f32]) {
    each_block::<24, 32>(src, dst, |b, y| {
        let (d, m, qh) = (f16_at(b, 0), f16_at(b, 2), u32_at(b, 4));
        for j in 0..16 {
            let (lo, hi) = five_bits(b[8 + j], qh, j);
            y[j] = d * f32::from(lo) + m;
            y[j + 16] = d * f32::from(hi) + m;
        }
    });
}

pub(super) fn q8_0(src: &[u8], dst: &mut [f32]) {
    each_block::<34, 32>(src, dst, |b, y| {
        let d = f16_at(b, 0);
        for (v, &q) in y.iter_mut().zip(&b[2..]) {
            *v = f32::from(q as i8) * d;
        }
    });
}
