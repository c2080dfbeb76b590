//! ggml's non-linear 4-bit types: IQ4_NL (blocks of 32, one F16 scale) and IQ4_XS (super-blocks
//! of 256: an F16 scale and a 6-bit scale per 32 values). Each 4-bit index picks one of 16
//! fixed levels (`LEVELS`), the nearest to the value over its block's scale.
//!
//! As `quantize_row_iq4_nl_impl` computes them without an importance matrix: weights x², a
//! first scale from the value of largest magnitude, then 15 trial scales kept by the weighted
//! least-squares criterion, in the reference's order of f32 operations.

use super::{check_lengths, nearest_int, put_f16, QK_K};

/// Values per IQ4_NL block.
pub(crate) const QK4_NL: usize = 32;
/// Bytes per IQ4_NL block: the F16 scale and 16 bytes of two indices each.
pub(crate) const IQ4_NL_BYTES: usize = 18;
/// Bytes per IQ4_XS block: F16 scale, 16 bits of high scale bits, 4 bytes of low scale bits,
/// 128 bytes of indices.
pub(crate) const IQ4_XS_BYTES: usize = 136;

/// The 16 levels an index stands for (`kvalues_iq4nl`).
pub(crate) const LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

const GROUP_MAX_EPS: f32 = 1e-15;
const NTRY: i32 = 7;

/// The index of the level nearest `x` (`best_index_int8`): a binary search, then the nearer
/// of the two neighbours, the upper one on a tie.
fn best_index(x: f32) -> u8 {
    let val = &LEVELS;
    let n = val.len();
    if x <= f32::from(val[0]) {
        return 0;
    }
    if x >= f32::from(val[n - 1]) {
        return (n - 1) as u8;
    }
    let (mut ml, mut mu) = (0usize, n - 1);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < f32::from(val[mav]) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - f32::from(val[mu - 1]) < f32::from(val[mu]) - x {
        (mu - 1) as u8
    } else {
        mu as u8
    }
}

/// The best scale of one block of 32 (0 for an all-zero block).
fn block_scale(xb: &[f32]) -> f32 {
    let mut weight = [0.0f32; 32];
    for (w, &v) in weight.iter_mut().zip(xb) {
        *w = v * v;
    }
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in xb {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        return 0.0;
    }
    let v0 = f32::from(LEVELS[0]);
    let mut d = -max / v0;
    let sums = |id: f32| {
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for (&v, &w) in xb.iter().zip(&weight) {
            let q = f32::from(LEVELS[usize::from(best_index(id * v))]);
            sumqx += w * q * v;
            sumq2 += w * q * q;
        }
        (sumqx, sumq2)
    };
    let (sumqx, sumq2) = sums(1.0 / d);
    d = sumqx / sumq2;
    let mut best = d * sumqx;
    for itry in -NTRY..=NTRY {
        let id = (itry + i32::from(LEVELS[0])) as f32 / max;
        let (sumqx, sumq2) = sums(id);
        if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    d
}

/// Packs 32 indices of a block: byte `j` holds indices `j` and `j + 16`.
fn pack(l: &[u8], q4: &mut [u8]) {
    for j in 0..16 {
        q4[j] = l[j] | (l[16 + j] << 4);
    }
}

/// Quantises `src` (a whole number of 32-value blocks) to IQ4_NL in `dst`.
pub fn quantize_iq4_nl(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK4_NL, IQ4_NL_BYTES, "iq4_nl");
    let mut l = [0u8; QK4_NL];
    for (x, y) in src
        .chunks_exact(QK4_NL)
        .zip(dst.chunks_exact_mut(IQ4_NL_BYTES))
    {
        let d = block_scale(x);
        put_f16(y, d);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        for (li, &v) in l.iter_mut().zip(x) {
            *li = best_index(id * v);
        }
        pack(&l, &mut y[2..]);
    }
}

/// Quantises `src` (a whole number of 256-value super-blocks) to IQ4_XS in `dst`.
pub fn quantize_iq4_xs(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK_K, IQ4_XS_BYTES, "iq4_xs");
    let mut scales = [0.0f32; QK_K / 32];
    let mut l = [0u8; 32];
    for (x, y) in src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(IQ4_XS_BYTES))
    {
        let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
        for (s, xb) in scales.iter_mut().zip(x.chunks_exact(32)) {
            *s = block_scale(xb);
            if s.abs() > amax_scale {
                amax_scale = s.abs();
                max_scale = *s;
            }
        }
        // Layout: d, scales_h (u16), scales_l[4], qs[128].
        y.fill(0);
        let d = -max_scale / 32.0;
        put_f16(y, d);
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut scales_h = 0u16;
        for (ib, (&s, xb)) in scales.iter().zip(x.chunks_exact(32)).enumerate() {
            let q = nearest_int(id * s).clamp(-32, 31);
            let dl = d * q as f32;
            let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
            for (li, &v) in l.iter_mut().zip(xb) {
                *li = best_index(idl * v);
            }
            pack(&l, &mut y[8 + 16 * ib..]);
            let q = (q + 32) as u8;
            y[4 + ib / 2] |= (q & 0xf) << (4 * (ib % 2));
            scales_h |= u16::from(q >> 4) << (2 * (ib % 8));
        }
        y[2..4].copy_from_slice(&scales_h.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_level() {
        assert_eq!(best_index(-500.0), 0);
        assert_eq!(best_index(500.0), 15);
        assert_eq!(best_index(0.0), 8);
        assert_eq!(best_index(-4.5), 8); // the tie between -10 and 1 goes up
        assert_eq!(best_index(-4.6), 7);
    }

    #[test]
    fn block_lengths_and_zero_blocks() {
        let mut out = vec![0xAAu8; 2 * IQ4_NL_BYTES];
        quantize_iq4_nl(&[0.0; 64], &mut out);
        // Scale 0 and every value at the index of level 1, the nearest to 0.
        assert_eq!(&out[..2], &[0, 0]);
        assert!(out[2..18].iter().all(|&b| b == 0x88));
        let mut out = vec![0xAAu8; IQ4_XS_BYTES];
        quantize_iq4_xs(&[0.0; 256], &mut out);
        // d = -0 / 32 = -0; every sub-block scale index 0 + 32.
        assert_eq!(&out[..4], &[0, 0x80, 0xaa, 0xaa]);
    }
}
