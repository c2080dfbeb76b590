//! ggml's ternary types for BitNet-style weights: every value becomes -1, 0 or +1 times the
//! super-block's largest magnitude (an F16 scale at the end of the block). TQ2_0 stores each
//! trit in 2 bits; TQ1_0 packs 5 trits per byte (4 in its last 4 bytes) as a base-3 fraction
//! of 256, so a multiply by 3 shifts the next trit out.
//!
//! As `quantize_row_tq1_0_ref` and `quantize_row_tq2_0_ref` compute them: `lroundf(x / max)`
//! (half away from zero) plus one, in the reference's packing order.

use super::{check_lengths, put_f16, QK_K};

/// Bytes per TQ1_0 block: 48 bytes of 5 trits, 4 bytes of 4 trits, the F16 scale.
pub(crate) const TQ1_0_BYTES: usize = 54;
/// Bytes per TQ2_0 block: 64 bytes of 4 two-bit trits, the F16 scale.
pub(crate) const TQ2_0_BYTES: usize = 66;

/// `lroundf(v) + 1` as the reference's `int` holds it: C's `lroundf` on x86-64 gives
/// `LONG_MIN` for NaN and values out of range, whose low 32 bits are 0.
fn trit(v: f32) -> u8 {
    let r = v.round();
    let l = if r.is_nan() || !(-9.223_372e18..9.223_372e18).contains(&r) {
        i64::MIN
    } else {
        r as i64
    };
    (l as i32).wrapping_add(1) as u8
}

/// The largest magnitude of a super-block (NaN never wins, as with C's `MAX`), its F16 bytes
/// written to `d`, and the multiplier `1/max` (0 for an all-zero block).
fn scale(x: &[f32], d: &mut [u8]) -> f32 {
    let mut amax = 0.0f32;
    for &v in x {
        // C's MAX(a, b) is `a > b ? a : b`: a NaN on the right is taken.
        let a = v.abs();
        amax = if amax > a { amax } else { a };
    }
    put_f16(d, amax);
    if amax != 0.0 {
        1.0 / amax
    } else {
        0.0
    }
}

/// Trits `x[at + k * stride]` for `k` in `0..count`, most significant first, as a base-3
/// number in a byte (wrapping, as the reference's `uint8_t`), scaled to a fraction of 256
/// rounded up.
fn pack5(x: &[f32], id: f32, at: usize, stride: usize, count: usize) -> u8 {
    let mut q = 0u8;
    for k in 0..count {
        q = q
            .wrapping_mul(3)
            .wrapping_add(trit(x[at + k * stride] * id));
    }
    if count == 4 {
        q = q.wrapping_mul(3);
    }
    (u32::from(q) * 256).div_ceil(243) as u8
}

/// Quantises `src` (a whole number of 256-value super-blocks) to TQ1_0 in `dst`.
pub fn quantize_tq1_0(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK_K, TQ1_0_BYTES, "tq1_0");
    for (x, y) in src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(TQ1_0_BYTES))
    {
        let id = scale(x, &mut y[52..]);
        // Bytes 0..32: values 0..160, byte m holding m, m+32, ..., m+128.
        for (m, b) in y[..32].iter_mut().enumerate() {
            *b = pack5(x, id, m, 32, 5);
        }
        // Bytes 32..48: values 160..240, byte m holding 160+m, 176+m, ..., 224+m.
        for (m, b) in y[32..48].iter_mut().enumerate() {
            *b = pack5(x, id, 160 + m, 16, 5);
        }
        // Bytes 48..52: values 240..256, byte j holding 240+j, 244+j, 248+j, 252+j.
        for (j, b) in y[48..52].iter_mut().enumerate() {
            *b = pack5(x, id, 240 + j, 4, 4);
        }
    }
}

/// Quantises `src` (a whole number of 256-value super-blocks) to TQ2_0 in `dst`.
pub fn quantize_tq2_0(src: &[f32], dst: &mut [u8]) {
    check_lengths(src, dst, QK_K, TQ2_0_BYTES, "tq2_0");
    for (x, y) in src
        .chunks_exact(QK_K)
        .zip(dst.chunks_exact_mut(TQ2_0_BYTES))
    {
        let id = scale(x, &mut y[64..]);
        for (g, j) in (0..64).step_by(32).enumerate() {
            for m in 0..32 {
                let mut q = 0u8;
                for n in 0..4 {
                    let t = trit(x[128 * g + m + n * 32] * id);
                    q = q.wrapping_add((t & 3) << (2 * n));
                }
                y[j + m] = q;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_lengths_and_levels() {
        let mut x = [0.0f32; 256];
        x[0] = 2.0;
        x[32] = -2.0;
        x[1] = 0.9; // 0.45 rounds to 0
        x[2] = 1.0; // 0.5 rounds away from zero
        let mut y = [0u8; TQ2_0_BYTES];
        quantize_tq2_0(&x, &mut y);
        assert_eq!(y[0], 2 | (1 << 4) | (1 << 6)); // +1, -1 (trit 0), 0, 0
        assert_eq!(y[1], 1 | (1 << 2) | (1 << 4) | (1 << 6));
        assert_eq!(y[2], 2 | (1 << 2) | (1 << 4) | (1 << 6));
        let mut y = [0u8; TQ1_0_BYTES];
        quantize_tq1_0(&x, &mut y);
        // Trits 2, 0, 1, 1, 1 = 2*81 + 0 + 9 + 3 + 1 = 175, as 256ths rounded up: 185.
        assert_eq!(y[0], 185);
        assert_eq!(&y[52..], &half::f16::from_f32(2.0).to_le_bytes());
    }
}
