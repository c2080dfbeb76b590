//! The FP4 (E2M1) block types: MXFP4 (32 values, an E8M0 power-of-two scale) and NVFP4 (64
//! values in 4 groups of 16, each with an unsigned E4M3 scale). Levels are E2M1 doubled, so
//! the scales are halved.

use super::each_block;

/// E2M1 values times two, by 4-bit code (`kvalues_mxfp4`).
const LEVELS: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// Half of the E8M0 scale `e`, 2^(e-128), as f32 bits (subnormal for `e` < 2).
#[inline(always)]
fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        u32::from(e - 1) << 23
    };
    f32::from_bits(bits)
}

/// Half of the unsigned E4M3 scale `x` (bias 7; 0 and 0x7F are zero, the sign bit ignored).
#[inline(always)]
fn ue4m3_half(x: u8) -> f32 {
    if x == 0 || x == 0x7F {
        return 0.0;
    }
    let (exp, man) = (i32::from((x >> 3) & 0x0F), f32::from(x & 0x07));
    let raw = if exp == 0 {
        man * f32::from_bits(0x3b00_0000) // 2^-9
    } else {
        (1.0 + man / 8.0) * f32::from_bits(((exp - 7 + 127) as u32) << 23)
    };
    raw * 0.5
}

pub(super) fn mxfp4(src: &[u8], dst: &mut [f32]) {
    each_block::<17, 32>(src, dst, |b, y| {
        let d = e8m0_half(b[0]);
        for j in 0..16 {
            let q = b[1 + j];
            y[j] = d * f32::from(LEVELS[usize::from(q & 0x0F)]);
            y[j + 16] = d * f32::from(LEVELS[usize::from(q >> 4)]);
        }
    });
}

pub(super) fn nvfp4(src: &[u8], dst: &mut [f32]) {
    each_block::<36, 64>(src, dst, |b, y| {
        for (s, group) in y.chunks_exact_mut(16).enumerate() {
            let d = ue4m3_half(b[s]);
            for j in 0..8 {
                let q = b[4 + 8 * s + j];
                group[j] = d * f32::from(LEVELS[usize::from(q & 0x0F)]);
                group[j + 8] = d * f32::from(LEVELS[usize::from(q >> 4)]);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_halved_powers() {
        assert_eq!(e8m0_half(127), 0.5);
        assert_eq!(e8m0_half(0), 2f32.powi(-128));
        assert_eq!(e8m0_half(1), 2f32.powi(-127));
        assert_eq!(ue4m3_half(0x38), 0.5); // exponent 7, mantissa 0: 1.0
        assert_eq!(ue4m3_half(0x01), 2f32.powi(-10));
        assert_eq!(ue4m3_half(0x7F), 0.0);
        assert_eq!(ue4m3_half(0xFF), 240.0);
    }
}
