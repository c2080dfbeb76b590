//! The IQ types. IQ4_NL and IQ4_XS pick each value from 16 non-linear levels; the others
//! (IQ1_S, IQ1_M, IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S) pick groups of 8 or 4 values at once
//! from a lattice table (`grids`) with sign bits, under a per-group scale. The scale of a
//! group is computed first, then `scale * grid * sign` (or `scale * (grid + delta)`).

use super::grids::{IQ1S, IQ2S, IQ2XS, IQ2XXS, IQ3S, IQ3XXS};
use super::{each_block, f16_at, u16_at, u32_at, QK_K};

/// The 16 levels of IQ4_NL and IQ4_XS (`kvalues_iq4nl`).
const LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// IQ1's shift of the grid values, signed by the group's delta bit.
const IQ1_DELTA: f32 = 0.125;

/// The 8 sign bits of a 7-bit index: the index plus an eighth bit making the parity even
/// (`ksigns_iq2xs`).
#[inline(always)]
fn ksigns(i: u32) -> u8 {
    let i = (i & 0x7F) as u8;
    i | (((i.count_ones() & 1) as u8) << 7)
}

/// `v` times `1.0` or `-1.0` by bit `j` of `signs`, as a multiplication does it: a NaN keeps
/// its sign (a negation, which a compiler may put in place of the multiplication, would flip it).
#[inline(always)]
fn signed(v: f32, signs: u8, j: usize) -> f32 {
    if signs >> j & 1 == 0 || v.is_nan() {
        v
    } else {
        -v
    }
}

/// Byte `j` of a grid entry (grid values are below 64, or -1..=1 for IQ1 as i8).
#[inline(always)]
fn grid_u8(entry: u64, j: usize) -> f32 {
    f32::from((entry >> (8 * j)) as u8)
}

/// Writes `db * grid[j] * sign[j]` for the 8 values of one IQ2 group.
#[inline(always)]
fn iq2_group(y: &mut [f32], db: f32, entry: u64, signs: u8) {
    for (j, v) in y.iter_mut().enumerate().take(8) {
        *v = signed(db * grid_u8(entry, j), signs, j);
    }
}

pub(super) fn iq2_xxs(src: &[u8], dst: &mut [f32]) {
    each_block::<66, QK_K>(src, dst, |b, y| {
        let d = f16_at(b, 0);
        for (ib, out) in y.chunks_exact_mut(32).enumerate() {
            let (aux0, aux1) = (u32_at(b, 2 + 8 * ib), u32_at(b, 6 + 8 * ib));
            let db = d * (0.5 + (aux1 >> 28) as f32) * 0.25;
            for (l, group) in out.chunks_exact_mut(8).enumerate() {
                let entry = IQ2XXS[((aux0 >> (8 * l)) & 0xFF) as usize];
                iq2_group(group, db, entry, ksigns(aux1 >> (7 * l)));
            }
        }
    });
}

pub(super) fn iq2_xs(src: &[u8], dst: &mut [f32]) {
    each_block::<74, QK_K>(src, dst, |b, y| {
        let d = f16_at(b, 0);
        let scales = &b[66..74];
        for (i, group) in y.chunks_exact_mut(8).enumerate() {
            let ls = (scales[i / 4] >> (4 * ((i / 2) % 2))) & 0x0F;
            let db = d * (0.5 + f32::from(ls)) * 0.25;
            let q = u16_at(b, 2 + 2 * i);
            iq2_group(
                group,
                db,
                IQ2XS[usize::from(q & 511)],
                ksigns(u32::from(q >> 9)),
            );
        }
    });
}

pub(super) fn iq2_s(src: &[u8], dst: &mut [f32]) {
    each_block::<82, QK_K>(src, dst, |b, y| {
        let d = f16_at(b, 0);
        let (qs, signs, qh, scales) = (&b[2..34], &b[34..66], &b[66..74], &b[74..82]);
        for (i, group) in y.chunks_exact_mut(8).enumerate() {
            let ls = (scales[i / 4] >> (4 * ((i / 2) % 2))) & 0x0F;
            let db = d * (0.5 + f32::from(ls)) * 0.25;
            let high = (qh[i / 4] >> (2 * (i % 4))) & 3;
            let index = usize::from(qs[i]) | (usize::from(high) << 8);
            iq2_group(group, db, IQ2S[index], signs[i]);
        }
    });
}

pub(super) fn iq3_xxs(src: &[u8], dst: &mut [f32]) {
    each_block::<98, QK_K>(src, dst, |b, y| {
        let d = f16_at(b, 0);
        let qs = &b[2..66];
        for (ib, out) in y.chunks_exact_mut(32).enumerate() {
            let aux = u32_at(b, 66 + 4 * ib);
            let db = d * (0.5 + (aux >> 28) as f32) * 0.5;
            for (l, group) in out.chunks_exact_mut(8).enumerate() {
                let signs = ksigns(aux >> (7 * l));
                for (j, v) in group.iter_mut().enumerate() {
                    let entry = IQ3XXS[usize::from(qs[8 * ib + 2 * l + j / 4])];
                    *v = signed(db * grid_u8(u64::from(entry), j % 4), signs, j);
                }
            }
        }
    });
}

pub(super) fn iq3_s(src: &[u8], dst: &mut [f32]) {
    each_block::<110, QK_K>(src, dst, |b, y| {
        let d = f16_at(b, 0);
        let (qs, qh, signs, scales) = (&b[2..66], &b[66..74], &b[74..106], &b[106..110]);
        for (ib, out) in y.chunks_exact_mut(32).enumerate() {
            let ls = (scales[ib / 2] >> (4 * (ib % 2))) & 0x0F;
            let db = d * f32::from(1 + 2 * ls);
            for (f, v) in out.iter_mut().enumerate() {
                let i = 8 * ib + f / 4; // grid entry of 4 values
                let high = (qh[i / 8] >> (i % 8)) & 1;
                let entry = IQ3S[usize::from(qs[i]) | (usize::from(high) << 8)];
                let s = 32 * ib + f; // sign bit of the value
                *v = signed(db * grid_u8(u64::from(entry), f % 4), signs[s / 8], s % 8);
            }
        }
    });
}

/// Writes `dl * (grid[j] + delta)` for the 8 values of one IQ1 group.
#[inline(always)]
fn iq1_group(y: &mut [f32], dl: f32, index: usize, delta: f32) {
    let entry = IQ1S[index];
    for (j, v) in y.iter_mut().enumerate().take(8) {
        *v = dl * (f32::from((entry >> (8 * j)) as u8 as i8) + delta);
    }
}

pub(super) fn iq1_s(src: &[u8], dst: &mut [f32]) {
    each_block::<50, QK_K>(src, dst, |b, y| {
        let d = f16_at(b, 0);
        let qs = &b[2..34];
        for (ib, out) in y.chunks_exact_mut(32).enumerate() {
            let qh = u16_at(b, 34 + 2 * ib);
            let dl = d * f32::from(2 * ((qh >> 12) & 7) + 1);
            let delta = if qh & 0x8000 == 0 {
                IQ1_DELTA
            } else {
                -IQ1_DELTA
            };
            for (l, group) in out.chunks_exact_mut(8).enumerate() {
                let index = usize::from(qs[4 * ib + l]) | (usize::from((qh >> (3 * l)) & 7) << 8);
                iq1_group(group, dl, index, delta);
            }
        }
    });
}

pub(super) fn iq1_m(src: &[u8], dst: &mut [f32]) {
    each_block::<56, QK_K>(src, dst, |b, y| {
        let (qs, qh) = (&b[..32], &b[32..48]);
        let sc = [u16_at(b, 48), u16_at(b, 50), u16_at(b, 52), u16_at(b, 54)];
        // The F16 scale is spread over the top nibbles of the four scale words.
        let bits =
            (sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000);
        let d = f16_at(&bits.to_le_bytes(), 0);
        for (i, group) in y.chunks_exact_mut(8).enumerate() {
            let k = i / 2; // 3-bit scale of 16 values
            let dl = d * f32::from(2 * ((sc[k / 4] >> (3 * (k % 4))) & 7) + 1);
            let h = qh[i / 2] >> (4 * (i % 2));
            let index = usize::from(qs[i]) | (usize::from(h & 7) << 8);
            let delta = if h & 0x08 == 0 { IQ1_DELTA } else { -IQ1_DELTA };
            iq1_group(group, dl, index, delta);
        }
    });
}

pub(super) fn iq4_nl(src: &[u8], dst: &mut [f32]) {
    each_block::<18, 32>(src, dst, |b, y| {
        let d = f16_at(b, 0);
        for j in 0..16 {
            let q = b[2 + j];
            y[j] = d * f32::from(LEVELS[usize::from(q & 0x0F)]);
            y[j + 16] = d * f32::from(LEVELS[usize::from(q >> 4)]);
        }
    });
}

pub(super) fn iq4_xs(src: &[u8], dst: &mut [f32]) {
    each_block::<136, QK_K>(src, dst, |b, y| {
        let d = f16_at(b, 0);
        let scales_h = u16_at(b, 2);
        let (scales_l, qs) = (&b[4..8], &b[8..]);
        for (k, out) in y.chunks_exact_mut(32).enumerate() {
            let low = (scales_l[k / 2] >> (4 * (k % 2))) & 0x0F;
            let high = ((scales_h >> (2 * k)) & 3) as u8;
            let dl = d * f32::from((low | (high << 4)) as i8 - 32);
            for l in 0..16 {
                let q = qs[16 * k + l];
                out[l] = dl * f32::from(LEVELS[usize::from(q & 0x0F)]);
                out[l + 16] = dl * f32::from(LEVELS[usize::from(q >> 4)]);
            }
        }
    });
}
