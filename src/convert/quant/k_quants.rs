//! ggml's K-quants: super-blocks of 256 values cut into 16 sub-blocks of 16 (Q2_K, Q3_K, Q6_K)
//! or 8 of 32 (Q4_K, Q5_K), each with a scale (and for Q2/Q4/Q5 a minimum) that is itself
//! quantised against the super-block's F16 scale.
//!
//! As `quantize_row_q{2..6}_K_ref` compute them: each sub-block's scale comes from the same
//! search (`make_qkx2_quants` for the types with a minimum, `make_q3_quants` for Q3_K,
//! `make_qx_quants` for Q6_K), with the same weights, trial steps and comparisons, in f32 and
//! in the reference's order of operations; then every value is quantised again against the
//! scales as stored.

use super::{check_lengths, fp16_to_fp32, nearest_int, put_f16, QK_K};

/// Bytes per Q2_K block: 16 scale/min bytes, 64 bytes of 2-bit values, F16 scale and minimum.
pub(crate) const Q2_K_BYTES: usize = 84;
/// Bytes per Q3_K block: 32 bytes of high bits, 64 of low 2 bits, 12 of 6-bit scales, F16 scale.
pub(crate) const Q3_K_BYTES: usize = 110;
/// Bytes per Q4_K block: F16 scale and minimum, 12 bytes of 6-bit scales and minimums, 128
/// bytes of 4-bit values.
pub(crate) const Q4_K_BYTES: usize = 144;
/// Bytes per Q5_K block: as Q4_K, plus 32 bytes of fifth bits before the low nibbles.
pub(crate) const Q5_K_BYTES: usize = 176;
/// Bytes per Q6_K block: 128 bytes of low 4 bits, 64 of high 2 bits, 16 signed scales, F16 scale.
pub(crate) const Q6_K_BYTES: usize = 210;

/// The reference's threshold below which a group counts as all zero.
const GROUP_MAX_EPS: f32 = 1e-15;

fn f16_at(y: &[u8], at: usize) -> f32 {
    fp16_to_fp32(u16::from_le_bytes([y[at], y[at + 1]]))
}

/// `make_qkx2_quants`: the scale and minimum of an affine quantisation of `x` to 0..=`nmax`,
/// chosen by a weighted error over `nstep + 1` trial scales. Writes the levels to `l` and
/// returns `(scale, -min)`.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l[..n].fill(0);
        return (0.0, -min);
    }
    let nmax_f = nmax as f32;
    let mut iscale = nmax_f / (max - min);
    let mut scale = 1.0 / iscale;
    let err = |diff: f32| if use_mad { diff.abs() } else { diff * diff };
    let mut best_error = 0.0f32;
    for i in 0..n {
        let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l[i] = q as u8;
        let diff = scale * l[i] as f32 + min - x[i];
        best_error += weights[i] * err(diff);
    }
    if nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax_f) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = q as u8;
            let w = weights[i];
            let lf = q as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * err(diff);
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// The value of largest magnitude (the first on a tie) and that magnitude.
fn signed_max(x: &[f32]) -> (f32, f32) {
    let (mut max, mut amax) = (0.0f32, 0.0f32);
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    (max, amax)
}

/// `make_q3_quants` with `do_rmse`: a symmetric quantisation of `x` to -nmax..nmax-1, refined
/// value by value for the error weighted by x². Writes levels + nmax to `l` (0 for an
/// all-zero group) and returns the scale.
fn make_q3_quants(nmax: i32, x: &[f32], l: &mut [i8]) -> f32 {
    let n = x.len();
    let (max, amax) = signed_max(x);
    if amax < GROUP_MAX_EPS {
        l[..n].fill(0);
        return 0.0;
    }
    let iscale = (-nmax) as f32 / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for i in 0..n {
        let q = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
        l[i] = q as i8;
        let w = x[i] * x[i];
        sumlx += w * x[i] * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for i in 0..n {
            let w = x[i] * x[i];
            let li = l[i] as f32;
            let mut slx = sumlx - w * x[i] * li;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * li * li;
                let new_l = nearest_int(x[i] * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != i32::from(l[i]) {
                    let nl = new_l as f32;
                    slx += w * x[i] * nl;
                    sl2 += w * nl * nl;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l[i] = new_l as i8;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for v in &mut l[..n] {
        *v += nmax as i8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// `make_qx_quants` with `rmse_type` 1 and no importance weights (weights x²): a symmetric
/// quantisation to -nmax..nmax-1, the best of 19 trial scales. Writes levels + nmax to `l` (0
/// for an all-zero group) and returns the scale.
fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [i8]) -> f32 {
    let n = x.len();
    let (max, amax) = signed_max(x);
    if amax < GROUP_MAX_EPS {
        l[..n].fill(0);
        return 0.0;
    }
    let clamp = |v: i32| v.clamp(-nmax, nmax - 1);
    let mut iscale = (-nmax) as f32 / max;
    let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
    for i in 0..n {
        let q = clamp(nearest_int(iscale * x[i]));
        l[i] = (nmax + q) as i8;
        let w = x[i] * x[i];
        sumlx += w * x[i] * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &xi in x {
            let q = clamp(nearest_int(iscale * xi)) as f32;
            let w = xi * xi;
            sumlx += w * xi * q;
            suml2 += w * q * q;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for i in 0..n {
                l[i] = (nmax + clamp(nearest_int(iscale * x[i]))) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Packs 256 2-bit levels as Q2_K and Q3_K store them: byte `l` of each 32-byte group holds
/// values `l`, `l + 32`, `l + 64`, `l + 96` of its 128.
fn pack_2bit(l: &[u8], qs: &mut [u8]) {
    for j in (0..QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] =
                l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

/// Quantises `src` (a whole number of 256-value super-blocks) to Q2_K in `dst`.
pub fn quantize_q2_k(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK_K, Q2_K_BYTES, "q2_k");
    const Q4SCALE: f32 = 15.0;
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 16];
    let mut weights = [0.0f32; 16];
    let mut mins = [0.0f32; QK_K / 16];
    let mut scales = [0.0f32; QK_K / 16];
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q2_K_BYTES)) {
        let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
        for j in 0..QK_K / 16 {
            let xs = &x[16 * j..16 * j + 16];
            for (w, v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            let (s, m) = make_qkx2_quants(
                3,
                xs,
                &weights,
                &mut l[16 * j..16 * j + 16],
                &mut laux,
                -0.5,
                0.1,
                15,
                true,
            );
            scales[j] = s;
            mins[j] = m;
            if s > max_scale {
                max_scale = s;
            }
            if m > max_min {
                max_min = m;
            }
        }
        // Layout: scales[16], qs[64], d, dmin.
        let (sc, rest) = y.split_at_mut(16);
        let (qs, dd) = rest.split_at_mut(64);
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for j in 0..QK_K / 16 {
                sc[j] = nearest_int(iscale * scales[j]) as u8;
            }
            put_f16(dd, max_scale / Q4SCALE);
        } else {
            sc.fill(0);
            put_f16(dd, 0.0);
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for j in 0..QK_K / 16 {
                sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
            }
            put_f16(&mut dd[2..], max_min / Q4SCALE);
        } else {
            put_f16(&mut dd[2..], 0.0);
        }
        let (d_all, m_all) = (f16_at(dd, 0), f16_at(dd, 2));
        for j in 0..QK_K / 16 {
            let d = d_all * (sc[j] & 0xf) as f32;
            if d == 0.0 {
                continue;
            }
            let dm = m_all * (sc[j] >> 4) as f32;
            for ii in 0..16 {
                l[16 * j + ii] = nearest_int((x[16 * j + ii] + dm) / d).clamp(0, 3) as u8;
            }
        }
        pack_2bit(&l, qs);
    }
}

/// Quantises `src` (a whole number of 256-value super-blocks) to Q3_K in `dst`.
pub fn quantize_q3_k(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK_K, Q3_K_BYTES, "q3_k");
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; QK_K / 16];
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q3_K_BYTES)) {
        let (mut max_scale, mut amax) = (0.0f32, 0.0f32);
        for j in 0..QK_K / 16 {
            scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
            let scale = scales[j].abs();
            if scale > amax {
                amax = scale;
                max_scale = scales[j];
            }
        }
        // Layout: hmask[32], qs[64], scales[12], d.
        let (hmask, rest) = y.split_at_mut(32);
        let (qs, rest) = rest.split_at_mut(64);
        let (sc, dd) = rest.split_at_mut(12);
        sc.fill(0);
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for j in 0..QK_K / 16 {
                // C: `int8_t l = nearest_int(...)`, truncated to 8 bits before the clamp.
                let q = (nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32;
                if j < 8 {
                    sc[j] = (q & 0xf) as u8;
                } else {
                    sc[j - 8] |= ((q & 0xf) << 4) as u8;
                }
                sc[j % 4 + 8] |= ((q >> 4) << (2 * (j / 4))) as u8;
            }
            put_f16(dd, 1.0 / iscale);
        } else {
            put_f16(dd, 0.0);
        }
        let d_all = f16_at(dd, 0);
        for j in 0..QK_K / 16 {
            let low = if j < 8 { sc[j] & 0xf } else { sc[j - 8] >> 4 };
            let s = (low | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i8 - 32;
            let d = d_all * s as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-4, 3) + 4) as i8;
            }
        }
        // The high bit of values 0..32 goes to bit 0 of hmask[0..32], of 32..64 to bit 1, ...
        hmask.fill(0);
        let mut lu = [0u8; QK_K];
        for (j, (&v, u)) in l.iter().zip(lu.iter_mut()).enumerate() {
            let mut v = v as u8;
            if v > 3 {
                hmask[j % 32] |= 1 << (j / 32);
                v -= 4;
            }
            *u = v;
        }
        pack_2bit(&lu, qs);
    }
}

/// Sub-block scales and minimums of Q4_K and Q5_K: 8 of each, 6 bits, packed into 12 bytes.
fn put_scales_k4(scales: &[f32; 8], mins: &[f32; 8], max_scale: f32, max_min: f32, sc: &mut [u8]) {
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    for j in 0..QK_K / 32 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            sc[j] = ls;
            sc[j + 4] = lm;
        } else {
            sc[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
            sc[j - 4] |= (ls >> 4) << 6;
            sc[j] |= (lm >> 4) << 6;
        }
    }
}

/// Scale and minimum of sub-block `j` from the 12 packed bytes (`get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The shared part of Q4_K and Q5_K: scales, minimums and levels 0..=`nmax` of one
/// super-block; writes d, dmin and the 12 scale bytes to `y[..16]` and the levels to `l`.
fn k4_levels(x: &[f32], y: &mut [u8], l: &mut [u8; QK_K], nmax: i32, rmin: f32, nstep: i32) {
    let mut laux = [0u8; 32];
    let mut weights = [0.0f32; 32];
    let mut mins = [0.0f32; 8];
    let mut scales = [0.0f32; 8];
    let (mut max_scale, mut max_min) = (0.0f32, 0.0f32);
    for j in 0..QK_K / 32 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) = make_qkx2_quants(
            nmax,
            xs,
            &weights,
            &mut l[32 * j..32 * j + 32],
            &mut laux,
            rmin,
            0.1,
            nstep,
            false,
        );
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    put_scales_k4(&scales, &mins, max_scale, max_min, &mut y[4..16]);
    put_f16(y, max_scale / 63.0);
    put_f16(&mut y[2..], max_min / 63.0);
    let (d_all, m_all) = (f16_at(y, 0), f16_at(y, 2));
    for j in 0..QK_K / 32 {
        let (sc, m) = scale_min_k4(j, &y[4..16]);
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dm = m_all * m as f32;
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / d).clamp(0, nmax) as u8;
        }
    }
}

/// Quantises `src` (a whole number of 256-value super-blocks) to Q4_K in `dst`.
pub fn quantize_q4_k(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK_K, Q4_K_BYTES, "q4_k");
    let mut l = [0u8; QK_K];
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q4_K_BYTES)) {
        k4_levels(x, y, &mut l, 15, -1.0, 20);
        let qs = &mut y[16..];
        for (g, j) in (0..QK_K).step_by(64).enumerate() {
            for i in 0..32 {
                qs[32 * g + i] = l[j + i] | (l[j + i + 32] << 4);
            }
        }
    }
}

/// Quantises `src` (a whole number of 256-value super-blocks) to Q5_K in `dst`.
pub fn quantize_q5_k(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK_K, Q5_K_BYTES, "q5_k");
    let mut l = [0u8; QK_K];
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q5_K_BYTES)) {
        k4_levels(x, y, &mut l, 31, -0.5, 15);
        // Layout after d, dmin, scales: qh[32], then qs[128].
        let (qh, ql) = y[16..].split_at_mut(32);
        qh.fill(0);
        let (mut m1, mut m2) = (1u8, 2u8);
        for (g, n) in (0..QK_K).step_by(64).enumerate() {
            for j in 0..32 {
                let mut l1 = l[n + j];
                if l1 > 15 {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                let mut l2 = l[n + j + 32];
                if l2 > 15 {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[32 * g + j] = l1 | (l2 << 4);
            }
            m1 <<= 2;
            m2 <<= 2;
        }
    }
}

/// Quantises `src` (a whole number of 256-value super-blocks) to Q6_K in `dst`.
pub fn quantize_q6_k(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK_K, Q6_K_BYTES, "q6_k");
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; QK_K / 16];
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q6_K_BYTES)) {
        let (mut max_scale, mut max_abs_scale) = (0.0f32, 0.0f32);
        for ib in 0..QK_K / 16 {
            let scale =
                make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16]);
            scales[ib] = scale;
            if scale.abs() > max_abs_scale {
                max_abs_scale = scale.abs();
                max_scale = scale;
            }
        }
        // Layout: ql[128], qh[64], scales[16] (signed), d.
        if max_abs_scale < GROUP_MAX_EPS {
            y.fill(0);
            continue;
        }
        let (ql, rest) = y.split_at_mut(128);
        let (qh, rest) = rest.split_at_mut(64);
        let (sc, dd) = rest.split_at_mut(16);
        let iscale = -128.0 / max_scale;
        put_f16(dd, 1.0 / iscale);
        for ib in 0..QK_K / 16 {
            sc[ib] = nearest_int(iscale * scales[ib]).min(127) as i8 as u8;
        }
        let d_all = f16_at(dd, 0);
        for j in 0..QK_K / 16 {
            let d = d_all * (sc[j] as i8) as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                l[16 * j + ii] = (nearest_int(x[16 * j + ii] / d).clamp(-32, 31) + 32) as i8;
            }
        }
        for (g, j) in (0..QK_K).step_by(128).enumerate() {
            let (ql, qh) = (&mut ql[64 * g..64 * g + 64], &mut qh[32 * g..32 * g + 32]);
            for i in 0..32 {
                let v = |k: usize| l[j + i + k] as u8;
                ql[i] = (v(0) & 0xf) | ((v(64) & 0xf) << 4);
                ql[i + 32] = (v(32) & 0xf) | ((v(96) & 0xf) << 4);
                qh[i] =
                    (v(0) >> 4) | ((v(32) >> 4) << 2) | ((v(64) >> 4) << 4) | ((v(96) >> 4) << 6);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(f: Kernel, bytes: usize, x: &[f32]) -> Vec<u8> {
        let mut out = vec![0xAAu8; x.len() / QK_K * bytes];
        f(x, &mut out);
        out
    }

    type Kernel = fn(&[f32], &mut [u8]);

    const ALL: [(Kernel, usize); 5] = [
        (quantize_q2_k, Q2_K_BYTES),
        (quantize_q3_k, Q3_K_BYTES),
        (quantize_q4_k, Q4_K_BYTES),
        (quantize_q5_k, Q5_K_BYTES),
        (quantize_q6_k, Q6_K_BYTES),
    ];

    #[test]
    fn block_lengths_and_zero_blocks() {
        for (f, bytes) in ALL {
            let out = q(f, bytes, &[0.0; 512]);
            assert_eq!(out.len(), 2 * bytes);
            // Zero scales and level 0 everywhere (Q3_K's and Q6_K's all-zero groups keep
            // level 0 rather than the offset, as the reference's do).
            assert!(out.iter().all(|&b| b == 0), "{bytes}");
        }
    }

    #[test]
    fn sub_block_helpers() {
        let mut sc = [0u8; 12];
        let s = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 63.0];
        let m = [63.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 31.5];
        put_scales_k4(&s, &m, 63.0, 63.0, &mut sc);
        for j in 0..8 {
            assert_eq!(scale_min_k4(j, &sc), (s[j] as u8, nearest_int(m[j]) as u8));
        }
        assert_eq!(nearest_int(31.5), 32);
    }

    #[test]
    #[should_panic(expected = "q6_k: 255 values")]
    fn a_partial_block_panics() {
        quantize_q6_k(&[0.0; 255], &mut [0u8; 210]);
    }
}
