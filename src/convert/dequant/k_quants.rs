//! The K-quants: super-blocks of 256 values in 16 or 8 groups, each group with a small integer
//! scale (and for Q2_K, Q4_K, Q5_K a minimum) over the super-block's F16 scales. A group's
//! scale `d * sc` is computed first, then `scale * q - min`, as the reference does.

use super::{each_block, f16_at, QK_K};

/// Bytes of each type's super-block (ggml's `block_q*_K`).
const Q2_K_BYTES: usize = 84;
const Q3_K_BYTES: usize = 110;
const Q4_K_BYTES: usize = 144;
const Q5_K_BYTES: usize = 176;
const Q6_K_BYTES: usize = 210;

/// Layout of the 2-bit planes shared by Q2_K, Q3_K and TQ2_0: value `f` of a super-block is
/// bits `2s..2s+2` of byte `32h + l` of its 64 bytes, where `f = 128h + 32s + l`.
#[inline(always)]
pub(super) fn two_bits(qs: &[u8], f: usize) -> u8 {
    let (h, s, l) = (f / 128, (f / 32) % 4, f % 32);
    (qs[32 * h + l] >> (2 * s)) & 3
}

pub(super) fn q2_k(src: &[u8], dst: &mut [f32]) {
    each_block::<Q2_K_BYTES, QK_K>(src, dst, |b, y| {
        let (scales, qs) = (&b[..16], &b[16..80]);
        let (d, dmin) = (f16_at(b, 80), f16_at(b, 82));
        for (g, group) in y.chunks_exact_mut(16).enumerate() {
            let dl = d * f32::from(scales[g] & 0x0F);
            let ml = dmin * f32::from(scales[g] >> 4);
            for (i, v) in group.iter_mut().enumerate() {
                *v = dl * f32::from(two_bits(qs, 16 * g + i)) - ml;
            }
        }
    });
}

pub(super) fn q3_k(src: &[u8], dst: &mut [f32]) {
    each_block::<Q3_K_BYTES, QK_K>(src, dst, |b, y| {
        let (hmask, qs, sc) = (&b[..32], &b[32..96], &b[96..108]);
        let d = f16_at(b, 108);
        for (g, group) in y.chunks_exact_mut(16).enumerate() {
            let low = (sc[g % 8] >> (4 * (g / 8))) & 0x0F;
            let high = (sc[8 + g % 4] >> (2 * (g / 4))) & 0x03;
            let dl = d * f32::from((low | (high << 4)) as i8 - 32);
            for (i, v) in group.iter_mut().enumerate() {
                let f = 16 * g + i;
                // The high bit set means no offset; clear means minus 4.
                let hbit = (hmask[f % 32] >> (f / 32)) & 1;
                let q = two_bits(qs, f) as i8 - (((hbit ^ 1) << 2) as i8);
                *v = dl * f32::from(q);
            }
        }
    });
}

/// The 6-bit scales and minimums of Q4_K and Q5_K's 8 groups (`get_scale_min_k4`).
#[inline(always)]
fn scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 0x3F, s[j + 4] & 0x3F)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30),
            (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30),
        )
    }
}

pub(super) fn q4_k(src: &[u8], dst: &mut [f32]) {
    each_block::<Q4_K_BYTES, QK_K>(src, dst, |b, y| {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let (scales, qs) = (&b[4..16], &b[16..]);
        for (g, group) in y.chunks_exact_mut(32).enumerate() {
            let (sc, m) = scale_min(scales, g);
            let (dl, ml) = (d * f32::from(sc), dmin * f32::from(m));
            let (bytes, shift) = (&qs[32 * (g / 2)..32 * (g / 2) + 32], 4 * (g % 2));
            for (v, &q) in group.iter_mut().zip(bytes) {
                *v = dl * f32::from((q >> shift) & 0x0F) - ml;
            }
        }
    });
}

pub(super) fn q5_k(src: &[u8], dst: &mut [f32]) {
    each_block::<Q5_K_BYTES, QK_K>(src, dst, |b, y| {
        let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
        let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..]);
        for (g, group) in y.chunks_exact_mut(32).enumerate() {
            let (sc, m) = scale_min(scales, g);
            let (dl, ml) = (d * f32::from(sc), dmin * f32::from(m));
            let (bytes, shift) = (&qs[32 * (g / 2)..32 * (g / 2) + 32], 4 * (g % 2));
            for (l, v) in group.iter_mut().enumerate() {
                let q = ((bytes[l] >> shift) & 0x0F) | (((qh[l] >> g) & 1) << 4);
                *v = dl * f32::from(q) - ml;
            }
        }
    });
}

pub(super) fn q6_k(src: &[u8], dst: &mut [f32]) {
    each_block::<Q6_K_BYTES, QK_K>(src, dst, |b, y| {
        let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
        let d = f16_at(b, 208);
        for (g, group) in y.chunks_exact_mut(16).enumerate() {
            let dl = d * f32::from(scales[g] as i8);
            for (i, v) in group.iter_mut().enumerate() {
                let f = 16 * g + i;
                let (h, r) = (f / 128, f % 128);
                let low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
                let high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 0x03;
                *v = dl * f32::from((low | (high << 4)) as i8 - 32);
            }
        }
    });
}
